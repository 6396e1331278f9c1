//! `yrd proof --node URL ID`: fetch a lender's proof bundle for one attestation
//! (`GET /v1/proofs/attestations/{id}`) and print it, for `yrd verify`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::client::{Client, NodeArgs};

#[derive(clap::Args)]
#[command(
    long_about = "\
Fetch the proof bundle of one attestation from a node and print it (JSON, docs/proofs.md):
the signed transaction, its inclusion proof in the transaction log, the latest block
header with its commit certificate, the subject record with its subject-map proof (the
status: active, expired, or revoked and by which record) and, if revoked, the revocation
with its own inclusion proof.

The node is not trusted: check the file offline with `yrd verify FILE --genesis GENESIS`.

Exit status: 0 printed; 2 the node cannot be reached, does not know the id, or the id
is a revocation.",
    after_help = "\
Examples:
  yrd proof --node http://127.0.0.1:8601 3f1c...e9 > bundle.json
  yrd verify bundle.json --genesis genesis.json"
)]
pub struct Args {
    #[command(flatten)]
    node: NodeArgs,

    #[command(flatten)]
    read_key: super::client::ReadKeyArgs,

    /// The attestation id (64 hex characters)
    #[arg(value_name = "ID")]
    id: String,

    /// Write the bundle to this file instead of standard output
    #[arg(long, short, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = Client::signing(&args.node.node, args.read_key.key.as_ref())?;
    let id = args.id.trim().to_ascii_lowercase();
    let bundle = client.get(&format!("/v1/proofs/attestations/{}", super::client::path_segment(&id)))?;
    write_json(&bundle, args.out.as_ref())?;
    Ok(ExitCode::SUCCESS)
}

/// Pretty JSON to the file or standard output.
pub fn write_json(v: &serde_json::Value, out: Option<&PathBuf>) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(v)? + "\n";
    match out {
        Some(path) => std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display())),
        None => {
            use std::io::Write;
            std::io::stdout().write_all(text.as_bytes())?;
            Ok(())
        }
    }
}
