//! `yrd backup`: a consistent copy of a node's certified blocks, from a running node
//! (`--node`, through `GET /v1/backup/blocks`) or a stopped node's data directory
//! (`--data`). `yrd restore` (`restore.rs`) rebuilds a data directory from it,
//! checking every certificate and block again.
//!
//! File format (version 1): one JSON line
//! `{"type": "yrd-backup", "version": 1, "chain_id", "chain_name", "height"}`, then
//! frames `u32 big-endian length ‖ bytes`, each the block-sync response encoding
//! (`yrd_node::wire::SyncResponse::Blocks`: block bytes and commit certificate) of
//! consecutive blocks from 1 to `height`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};
use yrd_consensus::codec;
use yrd_consensus::types::Height;
use yrd_ledger::store::Ledger;
use yrd_node::wire::{self, SyncResponse};

use super::client::{Client, NodeArgs};

pub const BACKUP_TYPE: &str = "yrd-backup";
/// Blocks asked for per request (the endpoint's own cap).
const BLOCKS_PER_REQUEST: u64 = wire::MAX_SYNC_BLOCKS as u64;

#[derive(clap::Args)]
#[command(
    long_about = "\
Back up a node's ledger: every certified block (its canonical bytes and its commit
certificate) from block 1 to the node's height when the backup starts.

From a running node (--node URL, the default): blocks are fetched through the API
(GET /v1/backup/blocks), each request read under the store's read lock; committed blocks
never change, so the file is the chain exactly as of that height. Blocks carry every
record, restricted ones included, so the node answers only requests signed with an
agency's admin key: --key ADMIN_KEY. From a stopped node:
--data DIR --genesis GENESIS reads its store directly (sled locks the directory of a
running node, and this command then says so).

The file is written next to --out and renamed when complete. Restore it with `yrd
restore`, which re-checks every block and certificate against the genesis; then `yrd
audit verify-ledger` re-verifies the restored store.",
    after_help = "\
Examples:
  yrd backup --node http://127.0.0.1:8601 --key shanghai-admin.key --out /backup/shanghai-$(date +%F).yrdbak
  yrd backup --data /var/lib/yrd/data --genesis /etc/yrd/genesis.json --out sh.yrdbak
  yrd restore --from sh.yrdbak --data /var/lib/yrd/data-new --genesis /etc/yrd/genesis.json

Exit status: 0 written; 2 the node or store cannot be read, or the file cannot be written."
)]
pub struct Args {
    #[command(flatten)]
    node: NodeArgs,

    /// An agency's admin key file: signs the requests to a running node (its
    /// backup route answers agencies only)
    #[arg(long, value_name = "ADMIN_KEY", conflicts_with = "data")]
    key: Option<PathBuf>,

    /// A stopped node's data directory (instead of --node)
    #[arg(long, value_name = "DIR", requires = "genesis")]
    data: Option<PathBuf>,

    /// The chain's genesis file (with --data)
    #[arg(long, value_name = "GENESIS")]
    genesis: Option<PathBuf>,

    /// Backup file to create (must not exist)
    #[arg(long, value_name = "FILE")]
    out: PathBuf,

    /// Print {"file", "height", "blocks", "bytes", "chain_id"} instead of text
    #[arg(long)]
    json: bool,
}

/// Where blocks come from.
trait Source {
    /// The SyncResponse bytes of blocks `from..from + max` (fewer at the tip).
    fn chunk(&mut self, from: u64, max: u64) -> anyhow::Result<Vec<u8>>;
}

struct NodeSource(Client);

impl Source for NodeSource {
    fn chunk(&mut self, from: u64, max: u64) -> anyhow::Result<Vec<u8>> {
        Ok(self.0.get_bytes(&format!("/v1/backup/blocks?from={from}&max={max}"), wire::MAX_SYNC_RESPONSE_BYTES as u64)?)
    }
}

struct StoreSource(Ledger);

impl Source for StoreSource {
    fn chunk(&mut self, from: u64, max: u64) -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::new();
        for h in from..from + max {
            let (Some(b), Some(c)) = (self.0.block_bytes(Height(h))?, self.0.certificate(Height(h))?) else { break };
            out.push((b, c));
        }
        Ok(codec::encode(&SyncResponse::Blocks(out))?)
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (mut source, chain_id, chain_name, height): (Box<dyn Source>, String, String, u64) = match &args.data {
        Some(dir) => {
            let genesis = super::verify::load_genesis(args.genesis.as_deref().context("--genesis is required with --data")?)?;
            let store = dir.join("ledger");
            if !store.is_dir() {
                bail!("{} has no store (expected {})", dir.display(), store.display());
            }
            let ledger = Ledger::open(&store, genesis.clone()).map_err(|e| {
                let text = e.to_string();
                if text.contains("lock") || text.contains("WouldBlock") || text.contains("temporarily unavailable") {
                    anyhow!("cannot open the store in {}: {text} — a running node holds it; back it up with --node URL instead", dir.display())
                } else {
                    anyhow!("cannot open the store in {}: {text}", dir.display())
                }
            })?;
            let chain = ledger.chain_id().to_hex();
            let h = ledger.height().0;
            (Box::new(StoreSource(ledger)), chain, genesis.chain_name.clone(), h)
        }
        None => {
            let client = Client::signing(&args.node.node, args.key.as_ref())?;
            let status = client.get("/v1/status")?;
            let field = |k: &str| status.get(k).and_then(Value::as_str).map(str::to_string).ok_or_else(|| anyhow!("node status lacks {k}"));
            let h = status.get("height").and_then(Value::as_u64).context("node status lacks height")?;
            (Box::new(NodeSource(client)), field("chain_id")?, field("chain_name")?, h)
        }
    };
    let partial = args.out.with_extension("partial");
    if args.out.exists() {
        bail!("refusing to overwrite {}", args.out.display());
    }
    let written = write_backup(source.as_mut(), &partial, &chain_id, &chain_name, height);
    let (blocks, bytes) = match written {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, &args.out).with_context(|| format!("cannot rename {} to {}", partial.display(), args.out.display()))?;
    if args.json {
        println!("{}", json!({"file": args.out.display().to_string(), "height": height, "blocks": blocks, "bytes": bytes, "chain_id": chain_id}));
    } else {
        println!("backup of {chain_name} {chain_id} at height {height}: {blocks} blocks, {bytes} bytes in {}", args.out.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn write_backup(source: &mut dyn Source, path: &Path, chain_id: &str, chain_name: &str, height: u64) -> anyhow::Result<(u64, u64)> {
    let file = std::fs::OpenOptions::new().write(true).create_new(true).open(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let header = json!({"type": BACKUP_TYPE, "version": 1, "chain_id": chain_id, "chain_name": chain_name, "height": height});
    writeln!(out, "{header}")?;
    let mut from = 1u64;
    let mut bytes = 0u64;
    while from <= height {
        let max = BLOCKS_PER_REQUEST.min(height - from + 1);
        let chunk = source.chunk(from, max)?;
        let SyncResponse::Blocks(blocks) = wire::decode_sync_response(&chunk).context("the node sent a malformed block chunk")?;
        if blocks.is_empty() {
            bail!("the node has no block {from} (its height was {height} when the backup started)");
        }
        let n = (blocks.len() as u64).min(max);
        let chunk = if n < blocks.len() as u64 { codec::encode(&SyncResponse::Blocks(blocks.into_iter().take(n as usize).collect()))? } else { chunk };
        out.write_all(&(chunk.len() as u32).to_be_bytes())?;
        out.write_all(&chunk)?;
        bytes += chunk.len() as u64;
        from += n;
    }
    let file = out.into_inner().map_err(|e| anyhow!("cannot write {}: {}", path.display(), e.error()))?;
    file.sync_all().with_context(|| format!("cannot write {}", path.display()))?;
    Ok((height, bytes))
}
