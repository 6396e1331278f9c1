//! `yrd revoke`: sign a revocation of an earlier attestation and submit it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::anyhow;
use yrd_ledger::tx::{Revocation, RevocationReason, TxBody, TxId};

use super::attest::{evidence_digest, now_ms, submit, SubmitArgs};
use super::client::{Client, NodeArgs};

#[derive(clap::Args)]
#[command(
    long_about = "\
Sign a revocation of an attestation with an issuer key and submit it to a node.

The attestation is never deleted: once the revocation is final, its status becomes
`revoked` (and records the revocation's id and reason). Only the attestation's issuer,
or an issuer with `revoke-any` in the genesis, may revoke it, and only once.

Reasons: repair (信用修复, the enterprise completed credit repair), dispute (异议处理, a
dispute about the record was upheld), error (the issuer published it in error).
--evidence FILE or --evidence-digest HEX optionally points to the decision document
(repair approval, dispute ruling) by its SHA-256 digest; the file is hashed locally and
never sent.

Sequence numbers, --wait, --timeout, --json and the exit status are as for `yrd attest`:
the default sequence number is the current time in microseconds; the revocation id is
printed (with --wait, then the height of its block); exit 1 when the node rejects the
revocation (e.g. not_authorised, already_revoked, target_unknown), 2 when it cannot be
carried out.",
    after_help = "\
Examples:
  yrd revoke --key keys/sh-issuer.key --id 5f2c…e81a --reason repair \\
    --evidence repair-approval-2026-031.pdf --wait
  yrd revoke --node http://10.0.0.3:8601 --key keys/zj-issuer.key --id 5f2c…e81a --reason error --json"
)]
pub struct Args {
    #[command(flatten)]
    node: NodeArgs,

    /// Issuer key file (the attestation's issuer, or an issuer allowed to revoke any)
    #[arg(long, value_name = "FILE")]
    key: PathBuf,

    /// Id of the attestation to revoke (64 hex digits)
    #[arg(long, value_name = "ID")]
    id: String,

    /// Why: repair, dispute or error
    #[arg(long, value_name = "REASON")]
    reason: String,

    /// The decision document; its SHA-256 is signed (the file is not sent)
    #[arg(long, value_name = "FILE", conflicts_with = "evidence_digest")]
    evidence: Option<PathBuf>,

    /// SHA-256 of the decision document, 64 hex digits
    #[arg(long, value_name = "HEX")]
    evidence_digest: Option<String>,

    #[command(flatten)]
    submit: SubmitArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.node.node)?;
    let target = TxId::from_hex(&args.id).map_err(|e| anyhow!("--id must be an attestation id of 64 hex digits: {e}"))?;
    let reason: RevocationReason = args
        .reason
        .parse()
        .map_err(|e: String| anyhow!("--reason: {}", e.replace("RevocationReason", "reason")))?;
    let evidence = evidence_digest(args.evidence.as_ref(), args.evidence_digest.as_deref())?;
    let key = yrd_node::keys::read_key_file(&args.key)?;
    let revocation = Revocation { target, reason, evidence, issued_at_ms: now_ms()? };
    submit(&client, &key, TxBody::Revoke(revocation), &args.submit)
}
