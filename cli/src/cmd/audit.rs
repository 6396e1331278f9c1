//! `yrd audit`: an auditor's tools. `trace` (provenance of one attestation),
//! `consistency` (the ledger only grew between two heights), `verify-ledger`
//! (re-check a node's whole store from genesis) and `queries` (who read an
//! enterprise's restricted records, with proofs).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use yrd_ledger::proof;

use super::client::{path_segment, Client, NodeArgs};
use super::verify::{finish, load_genesis};
use crate::EXIT_CHECK_FAILED;

#[derive(clap::Args)]
#[command(
    long_about = "\
Audit tools. `trace` shows where an attestation came from (issuer, transaction, the block
that committed it and the validators that signed it, later revocations in their own
blocks) with proofs checked offline; `consistency` checks an RFC 9162 consistency proof
that the transaction log at one height extends the log at an earlier height, with both
headers' commit certificates; `verify-ledger` re-checks a node's whole sled store from
genesis and reports the first inconsistency and where it is.

Exit status: 0 every check passed; 1 a check failed; 2 usage error, unreachable node or
unreadable file."
)]
pub struct Args {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(clap::Subcommand)]
enum AuditCommand {
    /// Provenance of one attestation: issuer, transaction, block, signers, revocations, with proofs
    Trace(TraceArgs),
    /// Prove the ledger only grew between two heights (RFC 9162 consistency proof, checked offline)
    Consistency(ConsistencyArgs),
    /// Re-check a (stopped) node's whole store from genesis: hashes, certificates, log and map roots, indexes
    VerifyLedger(VerifyLedgerArgs),
    /// Who read an enterprise's restricted records: every query record on chain, with proofs
    Queries(QueriesArgs),
}

#[derive(clap::Args)]
#[command(
    long_about = "\
Who read an enterprise's restricted records, when, under which authorisation: every
query record about the subject on chain (recorded by the node that served the query, with
the lender's signed request inside), each proven in its certified block and checked
offline — the block's certificate, the record's place in the log, the node's key in
force, the lender's signature over its request. Works against any node (the records are
on chain). Agencies read every record (sign with an agency's admin key); a lender reads
its own (sign with its key).",
    after_help = "\
Example:
  yrd audit queries --node http://127.0.0.1:8601 --genesis genesis.json \
      --key shanghai-admin.key --subject 91310000MA1FL8XQ30"
)]
struct QueriesArgs {
    #[command(flatten)]
    node: NodeArgs,

    /// The enterprise's USCC
    #[arg(long, value_name = "USCC")]
    subject: String,

    /// Key file to sign the request with (an agency's admin key, or a lender's)
    #[arg(long = "key", value_name = "FILE")]
    key: Option<PathBuf>,

    /// List records from this height on (default 1); the answer says where the next page starts
    #[arg(long, value_name = "HEIGHT")]
    from: Option<u64>,

    /// The chain's genesis file, to check the records offline
    #[arg(long, value_name = "GENESIS", env = "YRD_GENESIS")]
    genesis: PathBuf,

    /// Print the verdict as JSON
    #[arg(long)]
    json: bool,

    /// Also write the query audit file (check it later with `yrd verify`)
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,
}

#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  yrd audit trace --node http://127.0.0.1:8601 --genesis genesis.json 3f1c...e9
  yrd audit trace --node http://127.0.0.1:8601 --genesis genesis.json --key sh-issuer.key 3f1c...e9
    (a restricted kind: the key of its issuer or of a lender covering its subject)")]
struct TraceArgs {
    #[command(flatten)]
    node: NodeArgs,

    /// A restricted record (docs/access.md) is traced only with the key of its
    /// issuer or of a lender whose authorisation covers its subject
    #[command(flatten)]
    read_key: super::client::ReadKeyArgs,

    /// The attestation id (64 hex characters)
    #[arg(value_name = "ID")]
    id: String,

    /// The chain's genesis file, to check the trace offline (required unless --save alone)
    #[arg(long, value_name = "GENESIS", env = "YRD_GENESIS")]
    genesis: Option<PathBuf>,

    /// Print the verdict as JSON
    #[arg(long)]
    json: bool,

    /// Also write the trace file (check it later with `yrd verify FILE --genesis GENESIS`)
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,
}

#[derive(clap::Args)]
#[command(after_help = "\
Example:
  yrd audit consistency --node http://127.0.0.1:8601 --genesis genesis.json --from 10 --to 250")]
struct ConsistencyArgs {
    #[command(flatten)]
    node: NodeArgs,

    /// The earlier height
    #[arg(long, value_name = "H1")]
    from: u64,

    /// The later height
    #[arg(long, value_name = "H2")]
    to: u64,

    /// The chain's genesis file: the certificates of both headers are checked against it
    #[arg(long, value_name = "GENESIS", env = "YRD_GENESIS")]
    genesis: PathBuf,

    /// Print the verdict as JSON
    #[arg(long)]
    json: bool,

    /// Also write the proof file (check it later with `yrd verify`)
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,
}

#[derive(clap::Args)]
#[command(
    long_about = "\
Re-check a node's whole store from genesis, block by block: canonical encoding, the
header hash chain, proposers, every commit certificate, every transaction (chain, issuer
and kind, signature, revocation rules), the RFC 9162 log (size, root, every stored node),
the subject-map root, every index entry, and that nothing is stored beyond what the
blocks justify. Stops at the first inconsistency and says where it is.

The node must be stopped: sled locks its directory while the node runs (copying the
directory of a running node gives a crash-consistent copy that can be checked).

Without --genesis the genesis stored in the store itself is used; that proves only that
the store is internally consistent, not that it is the chain you think: give the
genesis file you trust.",
    after_help = "\
Example:
  yrd audit verify-ledger --data /var/lib/yrd/shanghai --genesis genesis.json"
)]
struct VerifyLedgerArgs {
    /// The node's data directory (holding `ledger/`), or the sled directory itself
    #[arg(long, value_name = "DIR")]
    data: PathBuf,

    /// The chain's genesis file (default: the copy in the store, which proves internal consistency only)
    #[arg(long, value_name = "FILE")]
    genesis: Option<PathBuf>,

    /// Print the result as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        AuditCommand::Trace(a) => trace(a),
        AuditCommand::Consistency(a) => consistency(a),
        AuditCommand::VerifyLedger(a) => verify_ledger(a),
        AuditCommand::Queries(a) => queries(a),
    }
}

fn queries(args: QueriesArgs) -> anyhow::Result<ExitCode> {
    let genesis = load_genesis(&args.genesis)?;
    let subject = yrd_ledger::uscc::Uscc::parse(args.subject.trim())
        .map_err(|e| anyhow::anyhow!("--subject {:?} is not a valid USCC: {e}", args.subject))?;
    let client = Client::signing(&args.node.node, args.key.as_ref())?;
    let mut path = format!("/v1/audit/queries/{}", path_segment(subject.as_str()));
    if let Some(from) = args.from {
        path.push_str(&format!("?from={from}"));
    }
    let value = client.get(&path)?;
    if let Some(p) = &args.save {
        super::proof::write_json(&value, Some(p))?;
    }
    let result = proof::parse_file(value.to_string().as_bytes()).and_then(|f| proof::verify_file(&genesis, &f, 0));
    // The node must answer about the subject asked, not another.
    if let Ok(proof::AnyVerdict::Queries(v)) = &result {
        if v.subject != subject {
            println!("NOT VERIFIED: the node answered about {}, not {subject}", v.subject);
            return Ok(ExitCode::from(EXIT_CHECK_FAILED));
        }
    } else if result.is_ok() {
        println!("NOT VERIFIED: the node answered with another kind of file than a query audit");
        return Ok(ExitCode::from(EXIT_CHECK_FAILED));
    }
    Ok(finish(&result, args.json))
}

fn trace(args: TraceArgs) -> anyhow::Result<ExitCode> {
    let client = Client::signing(&args.node.node, args.read_key.key.as_ref())?;
    let id = args.id.trim().to_ascii_lowercase();
    let value = client.get(&format!("/v1/audit/attestations/{}", path_segment(&id)))?;
    if let Some(path) = &args.save {
        super::proof::write_json(&value, Some(path))?;
    }
    let Some(genesis_path) = &args.genesis else {
        if args.save.is_some() {
            return Ok(ExitCode::SUCCESS);
        }
        anyhow::bail!(
            "give --genesis GENESIS (or set YRD_GENESIS) to check the trace offline; \
             --save FILE alone writes it unchecked for `yrd verify`"
        );
    };
    let genesis = load_genesis(genesis_path)?;
    let now = super::attest::now_ms()?;
    let result = proof::parse_file(value.to_string().as_bytes()).and_then(|f| proof::verify_file(&genesis, &f, now));
    Ok(finish(&result, args.json))
}

fn consistency(args: ConsistencyArgs) -> anyhow::Result<ExitCode> {
    let genesis = load_genesis(&args.genesis)?;
    let client = Client::new(&args.node.node)?;
    let value = client.get(&format!("/v1/proofs/consistency?from={}&to={}", args.from, args.to))?;
    if let Some(path) = &args.save {
        super::proof::write_json(&value, Some(path))?;
    }
    let result = proof::parse_file(value.to_string().as_bytes()).and_then(|f| proof::verify_file(&genesis, &f, 0));
    // The node must answer for the heights asked, not others.
    if let Ok(proof::AnyVerdict::Consistency(v)) = &result {
        if (v.from.height, v.to.height) != (args.from, args.to) {
            println!(
                "NOT VERIFIED: the node answered for heights {} → {}, not {} → {}",
                v.from.height, v.to.height, args.from, args.to
            );
            return Ok(ExitCode::from(EXIT_CHECK_FAILED));
        }
    }
    Ok(finish(&result, args.json))
}

/// DIR may be a node data directory (with `ledger/` inside) or the sled directory.
fn sled_dir(dir: &Path) -> PathBuf {
    let inner = dir.join("ledger");
    if inner.join("conf").is_file() {
        inner
    } else {
        dir.to_path_buf()
    }
}

fn verify_ledger(args: VerifyLedgerArgs) -> anyhow::Result<ExitCode> {
    if !args.data.is_dir() {
        anyhow::bail!("{} is not a directory", args.data.display());
    }
    let dir = sled_dir(&args.data);
    if !dir.join("conf").is_file() || !dir.join("db").is_file() {
        anyhow::bail!(
            "no sled store in {} (nor in {}/ledger): give a node's data directory",
            args.data.display(),
            args.data.display()
        );
    }
    let (result, source) = match &args.genesis {
        Some(path) => {
            let genesis = load_genesis(path)?;
            (yrd_ledger::audit::verify_store(&dir, &genesis).map(|r| (genesis, r)), format!("the genesis file {}", path.display()))
        }
        None => (
            yrd_ledger::audit::verify_store_self(&dir),
            "the genesis stored in the store itself (this proves internal consistency only; give --genesis to check it is your chain)"
                .to_string(),
        ),
    };
    match result {
        Ok((genesis, r)) => {
            let chain = genesis.chain_id().map(|c| c.to_hex()).unwrap_or_default();
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "consistent": true, "store": dir.display().to_string(), "genesis": source,
                        "chain_name": genesis.chain_name, "chain_id": chain,
                        "height": r.height.0, "transactions": r.transactions, "subjects": r.subjects,
                        "log_root": r.log_root, "last_block_hash": r.last_block_hash,
                    })
                );
            } else {
                println!("CONSISTENT: every check passed for the store in {}", dir.display());
                println!("checked against   {source}");
                println!("chain             {} {chain}", genesis.chain_name);
                println!("height            {}", r.height);
                println!("transactions      {}", r.transactions);
                println!("subjects          {}", r.subjects);
                println!("log root          {}", r.log_root);
                println!("last block hash   {}", r.last_block_hash);
                println!("Compare the height and last block hash with a certified block (e.g. a proof bundle's anchor):");
                println!("a store can only be checked for what it holds, not for blocks it lost.");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if e.problem.contains("stop the node first") => {
            anyhow::bail!("{}: {}", e.location, e.problem)
        }
        Err(e) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({ "consistent": false, "store": dir.display().to_string(), "location": e.location, "problem": e.problem })
                );
            } else {
                println!("INCONSISTENT: the store in {} fails verification", dir.display());
                println!("where             {}", e.location);
                println!("problem           {}", e.problem);
            }
            Ok(ExitCode::from(EXIT_CHECK_FAILED))
        }
    }
}
