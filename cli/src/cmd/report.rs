//! `yrd report --node URL --subject USCC`: fetch the subject report (every record
//! about an enterprise, provably complete) from `GET /v1/proofs/subjects/{uscc}`.

use std::path::PathBuf;
use std::process::ExitCode;

use yrd_ledger::uscc::Uscc;

use super::client::{Client, NodeArgs};

#[derive(clap::Args)]
#[command(
    long_about = "\
Fetch the subject report of one enterprise from a node and print it (JSON,
docs/proofs.md): the latest block header with its commit certificate, the subject's
record with its subject-map proof — or a proof that there is no record — and every
attestation (and revocation) the record lists, each with its inclusion proof. A verified
report shows ALL the records about the subject as of its block, not just the ones the
borrower chose to show. Restricted records the caller may not read (anonymous, or a key
without an authorisation covering them) are in the file as their commitments only: the
report stays provably complete and reveals nothing else about them. Sign with --key
(a lender whose authorisation covers the subject, or the issuer) to see them in full.

The node is not trusted: check the file offline with `yrd verify FILE --genesis GENESIS`.

Exit status: 0 printed; 2 invalid USCC, or the node cannot be reached or has no block yet.",
    after_help = "\
Examples:
  yrd report --node http://127.0.0.1:8601 --subject 91310000MA1K4CXX1H > report.json
  yrd verify report.json --genesis genesis.json"
)]
pub struct Args {
    #[command(flatten)]
    node: NodeArgs,

    #[command(flatten)]
    read_key: super::client::ReadKeyArgs,

    /// The enterprise's Unified Social Credit Code
    #[arg(long, value_name = "USCC")]
    subject: String,

    /// Write the report to this file instead of standard output
    #[arg(long, short, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let subject = Uscc::parse(&args.subject).map_err(|e| anyhow::anyhow!("invalid USCC {:?}: {e}", args.subject))?;
    let client = Client::signing(&args.node.node, args.read_key.key.as_ref())?;
    let report = client.get(&format!("/v1/proofs/subjects/{}", subject.as_str()))?;
    super::proof::write_json(&report, args.out.as_ref())?;
    Ok(ExitCode::SUCCESS)
}
