//! `yrd restore`: rebuild a node's data directory from a `yrd backup` file, checking
//! every block and commit certificate against the genesis as the node itself would
//! (`Ledger::commit`). The format is in `backup.rs`.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use yrd_consensus::codec;
use yrd_ledger::block::Block;
use yrd_ledger::store::Ledger;
use yrd_node::wire::{self, SyncResponse};

use super::backup::BACKUP_TYPE;

/// Longest header line read.
const MAX_HEADER_BYTES: u64 = 4096;

#[derive(clap::Args)]
#[command(
    long_about = "\
Restore a node's data directory from a `yrd backup` file. The directory must not hold a
store yet. Every block is checked again as the node checks a block it fetches: its
commit certificate against the validators in force (from the genesis, replaying every
membership change), and every transaction and root. The node then starts at the
backup's height and fetches later blocks from its peers. Check the result with `yrd
audit verify-ledger --data DIR --genesis GENESIS`.",
    after_help = "\
Examples:
  yrd restore --from sh.yrdbak --data /var/lib/yrd/data --genesis /etc/yrd/genesis.json
  yrd audit verify-ledger --data /var/lib/yrd/data --genesis /etc/yrd/genesis.json

Exit status: 0 restored; 1 a block or certificate in the file does not verify, or the
file is for another chain; 2 the file cannot be read or the directory already has a store."
)]
pub struct Args {
    /// The backup file
    #[arg(long, value_name = "FILE")]
    from: PathBuf,

    /// Data directory to create (the node's data_dir); must not hold a store
    #[arg(long, value_name = "DIR")]
    data: PathBuf,

    /// The chain's genesis file
    #[arg(long, value_name = "GENESIS", env = "YRD_GENESIS")]
    genesis: PathBuf,

    /// Print {"height", "blocks", "data"} instead of text
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let genesis = super::verify::load_genesis(&args.genesis)?;
    let file = std::fs::File::open(&args.from).with_context(|| format!("cannot read {}", args.from.display()))?;
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    (&mut reader).take(MAX_HEADER_BYTES).read_line(&mut line).with_context(|| format!("cannot read {}", args.from.display()))?;
    let header: Value = serde_json::from_str(line.trim()).with_context(|| format!("{} is not a yrd backup (no header line)", args.from.display()))?;
    if header.get("type").and_then(Value::as_str) != Some(BACKUP_TYPE) || header.get("version").and_then(Value::as_u64) != Some(1) {
        bail!("{} is not a version-1 yrd backup", args.from.display());
    }
    let height = header.get("height").and_then(Value::as_u64).context("backup header lacks height")?;
    let chain = genesis.chain_id().context("cannot encode the genesis")?.to_hex();
    if header.get("chain_id").and_then(Value::as_str) != Some(chain.as_str()) {
        eprintln!(
            "yrd: error: {} is a backup of chain {}, not of this genesis' chain {chain}",
            args.from.display(),
            header.get("chain_id").and_then(Value::as_str).unwrap_or("?")
        );
        return Ok(ExitCode::from(crate::EXIT_CHECK_FAILED));
    }
    let store = args.data.join("ledger");
    if store.exists() {
        bail!("{} already holds a store ({}): restore into an empty directory", args.data.display(), store.display());
    }
    std::fs::create_dir_all(&args.data).with_context(|| format!("cannot create {}", args.data.display()))?;
    let mut ledger = Ledger::open(&store, genesis).with_context(|| format!("cannot create the store in {}", args.data.display()))?;
    let mut blocks = 0u64;
    loop {
        let mut len = [0u8; 4];
        match reader.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", args.from.display())),
        }
        let len = u32::from_be_bytes(len) as usize;
        if len > wire::MAX_SYNC_RESPONSE_BYTES {
            bail!("{}: a chunk of {len} bytes is larger than any the node serves", args.from.display());
        }
        let mut chunk = vec![0u8; len];
        reader.read_exact(&mut chunk).with_context(|| format!("{} is truncated", args.from.display()))?;
        let SyncResponse::Blocks(pairs) = wire::decode_sync_response(&chunk).context("malformed chunk in the backup")?;
        for (bytes, cert) in pairs {
            let block = Block::decode(&bytes, codec::MAX_ENCODED_BYTES).context("malformed block in the backup")?;
            let h = block.header.height.0;
            if let Err(e) = ledger.commit(&block, &cert) {
                eprintln!("yrd: error: block {h} of the backup does not verify: {e}");
                return Ok(ExitCode::from(crate::EXIT_CHECK_FAILED));
            }
            blocks += 1;
        }
    }
    if ledger.height().0 != height {
        bail!("{} ends at height {} but its header says {height}: the file is truncated", args.from.display(), ledger.height().0);
    }
    ledger.db().flush().context("cannot flush the restored store")?;
    if args.json {
        println!("{}", json!({"height": height, "blocks": blocks, "data": args.data.display().to_string()}));
    } else {
        println!("restored {blocks} blocks into {} (height {height}); every certificate and block verified", args.data.display());
    }
    Ok(ExitCode::SUCCESS)
}
