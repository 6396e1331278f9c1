//! `yrd lender`: a lender records an enterprise's consent (授权) on chain, or the
//! end of it (docs/access.md).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail};
use yrd_ledger::consent::{Authorisation, Purpose, WithdrawReason, Withdrawal, MAX_AUTHORISATION_VALIDITY_MS};
use yrd_ledger::tx::{TxBody, TxId};
use yrd_ledger::uscc::Uscc;

use super::attest::{evidence_digest, now_ms, parse_time_ms, submit, SubmitArgs};
use super::client::{Client, NodeArgs};

#[derive(clap::Args)]
#[command(
    long_about = "\
Record an enterprise's authorisation (授权) for a lender on chain, or its withdrawal.

An authorisation, signed with the lender's key, names the enterprise (USCC), the purpose
(loan-application, post-loan-monitoring, guarantee), the end of its validity (at most one
year after the block that records it) and the SHA-256 of the enterprise's signed consent
document: --consent FILE is hashed locally and never sent. From the block that commits
it until its end or its withdrawal, the lender's signed requests (`yrd query|report|proof
--key`) read the enterprise's restricted records (credit ratings, tax credit grades,
commitments).

A withdrawal (the enterprise withdrew its consent, the purpose ended, or the record was an
error) is signed by the lender or by any agency (admin key) or issuer: an enterprise can
ask its local credit agency.

Sequence numbers, --wait, --json and exit statuses are as for `yrd attest`.",
    after_help = "\
Examples:
  yrd lender authorise --key keys/bank.key --subject 91310115MA1H7K2Q4X \\
    --purpose loan-application --consent consent-2026-118.pdf --until 2027-06-30T23:59:59+08:00 --wait
  yrd lender withdraw --key keys/bank.key --id <authorisation id> --reason consent-withdrawn --wait
  yrd report --key keys/bank.key --subject 91310115MA1H7K2Q4X"
)]
pub struct Args {
    #[command(subcommand)]
    command: LenderCommand,
}

#[derive(clap::Subcommand)]
enum LenderCommand {
    /// Sign and submit an authorisation (the enterprise's consent) for a lender
    Authorise(AuthoriseArgs),
    /// Sign and submit the withdrawal of an authorisation
    Withdraw(WithdrawArgs),
}

#[derive(clap::Args)]
struct AuthoriseArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// The lender's key file
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The enterprise's Unified Social Credit Code
    #[arg(long, value_name = "USCC")]
    subject: String,
    /// loan-application, post-loan-monitoring or guarantee
    #[arg(long, value_name = "PURPOSE")]
    purpose: String,
    /// The enterprise's signed consent document; its SHA-256 is signed (the file is not sent)
    #[arg(long, value_name = "FILE", conflicts_with = "consent_digest", required_unless_present = "consent_digest")]
    consent: Option<PathBuf>,
    /// SHA-256 of the consent document, 64 hex digits
    #[arg(long, value_name = "HEX")]
    consent_digest: Option<String>,
    /// End of validity: RFC 3339 with offset, or ms since the Unix epoch (at most one year ahead)
    #[arg(long, value_name = "TIME")]
    until: String,
    #[command(flatten)]
    submit: SubmitArgs,
}

#[derive(clap::Args)]
struct WithdrawArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// Key file: the authorisation's lender, an agency's admin key or an issuer key
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Id of the authorisation transaction (64 hex digits)
    #[arg(long, value_name = "ID")]
    id: String,
    /// consent-withdrawn, purpose-ended or error
    #[arg(long, value_name = "REASON", default_value = "consent-withdrawn")]
    reason: String,
    /// The enterprise's withdrawal notice; its SHA-256 is signed (the file is not sent)
    #[arg(long, value_name = "FILE", conflicts_with = "evidence_digest")]
    evidence: Option<PathBuf>,
    /// SHA-256 of the withdrawal notice, 64 hex digits
    #[arg(long, value_name = "HEX")]
    evidence_digest: Option<String>,
    #[command(flatten)]
    submit: SubmitArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        LenderCommand::Authorise(a) => authorise(a),
        LenderCommand::Withdraw(a) => withdraw(a),
    }
}

fn authorise(a: AuthoriseArgs) -> anyhow::Result<ExitCode> {
    let subject = Uscc::parse(&a.subject).map_err(|e| anyhow!("--subject: invalid USCC {:?}: {e}", a.subject))?;
    let purpose: Purpose = a.purpose.parse().map_err(|e: String| anyhow!("--purpose: {}", e.replace("Purpose", "purpose")))?;
    let consent = evidence_digest(a.consent.as_ref(), a.consent_digest.as_deref())
        .map_err(|e| anyhow!("{}", e.to_string().replace("evidence", "consent")))?
        .ok_or_else(|| anyhow!("give --consent FILE or --consent-digest HEX"))?;
    let now = now_ms()?;
    let until = parse_time_ms(&a.until).map_err(|e| anyhow!("--until: {e}"))?;
    if until <= now {
        bail!("--until {} is not in the future", a.until);
    }
    if until > now + MAX_AUTHORISATION_VALIDITY_MS {
        bail!("--until {} is more than one year ahead (366 days at most): the enterprise must renew its consent", a.until);
    }
    let client = Client::new(&a.node.node)?;
    let key = yrd_node::keys::read_key_file(&a.key)?;
    let body = Authorisation { subject, purpose, consent, issued_at_ms: now, valid_until_ms: until };
    submit(&client, &key, TxBody::Authorise(body), &a.submit)
}

fn withdraw(a: WithdrawArgs) -> anyhow::Result<ExitCode> {
    let authorisation = TxId::from_hex(&a.id).map_err(|e| anyhow!("--id must be an authorisation id of 64 hex digits: {e}"))?;
    let reason: WithdrawReason =
        a.reason.parse().map_err(|e: String| anyhow!("--reason: {}", e.replace("WithdrawReason", "reason")))?;
    let evidence = evidence_digest(a.evidence.as_ref(), a.evidence_digest.as_deref())?;
    let client = Client::new(&a.node.node)?;
    let key = yrd_node::keys::read_key_file(&a.key)?;
    let body = Withdrawal { authorisation, reason, evidence, issued_at_ms: now_ms()? };
    submit(&client, &key, TxBody::Withdraw(body), &a.submit)
}
