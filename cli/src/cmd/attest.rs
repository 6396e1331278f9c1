//! `yrd attest`: sign an attestation with an issuer key and submit it to a node;
//! optionally wait until it is final. Also the submit-and-wait logic `yrd revoke`
//! shares, and the time parsing `yrd genesis` shares.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};
use yrd_consensus::crypto::{sha256, Hash32, SecretKey};
use yrd_ledger::tx::{Attestation, AttestationKind, Grade, Severity, SignedTransaction, Transaction, TxBody};
use yrd_ledger::uscc::Uscc;

use super::client::{report_submit_error, Client, NodeArgs, NodeError};
use crate::{EXIT_CHECK_FAILED, EXIT_USAGE};

/// Largest evidence file hashed (the document stays off chain; only its digest is signed).
const EVIDENCE_FILE_BYTES_MAX: u64 = 1024 * 1024 * 1024;
/// Longest `--timeout` accepted, in seconds.
const WAIT_TIMEOUT_S_MAX: u64 = 3600;

#[derive(clap::Args)]
#[command(
    long_about = "\
Sign a credit attestation with an issuer key and submit it to a node.

The attestation says KIND about the enterprise with Unified Social Credit Code USCC. It
points to an off-chain evidence document (the decision, rating report, judgment, …) by
its SHA-256 digest: give the document with --evidence FILE (it is hashed locally and
never sent) or its digest with --evidence-digest HEX. One of the two is required:
personal data never goes on the chain, but every record must be traceable to its
document.

Kinds: red-list, serious-dishonesty, administrative-penalty, credit-rating (needs
--grade A|B|C|D), tax-credit (needs --grade A|B|M|C|D), court-enforcement, commitment.
--severity minor|general|serious is allowed for administrative-penalty,
serious-dishonesty and court-enforcement. --field name=value adds a short public field
(at most 8; names of a-z, 0-9, '-', '_'; values up to 256 bytes), e.g. a decision number.

The transaction is signed for the chain id the node reports (GET /v1/status) and
carries a sequence number, which each issuer may use once. By default the sequence
number is the current time in microseconds since the Unix epoch: unique for one issuer
in practice without any state, as long as one issuer key does not sign twice in the
same microsecond (e.g. from two machines with skewed clocks — give --sequence N there).

Prints the attestation id (the transaction id). With --wait, then waits until the
attestation is in a finalised block (BFT finality: final means final) and prints its
height; --timeout bounds the wait (default 30 s). --json prints one object
{\"id\", \"height\", \"block_hash\", \"status\"} (height and block_hash null without --wait).

Exit status: 0 submitted (and with --wait, final); 1 the node rejected the transaction
(HTTP 400 invalid, 409 sequence number already pending, 413 too large: resubmitting it
unchanged cannot succeed; the node's reason is printed), or with --wait the node dropped
it; 2 usage error, unreadable key or evidence, unreachable node, mempool full (503, retry
later), or --wait timed out (the transaction may still become final: check with
`yrd query --id ID`).",
    after_help = "\
Examples:
  yrd attest --key keys/sh-issuer.key --subject 91350100M000100Y43 \\
    --kind administrative-penalty --severity general --evidence decision-2026-118.pdf \\
    --field decision-no=沪市监罚〔2026〕118号 --wait
  yrd attest --node http://10.0.0.2:8601 --key keys/js-issuer.key --subject 91110000600037341L \\
    --kind tax-credit --grade A --evidence-digest 3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b \\
    --valid-until 2027-12-31T23:59:59+08:00 --json"
)]
pub struct Args {
    #[command(flatten)]
    node: NodeArgs,

    /// Issuer key file (from `yrd keygen`; registered as an issuer in the genesis)
    #[arg(long, value_name = "FILE")]
    key: PathBuf,

    /// The enterprise's Unified Social Credit Code (18 characters)
    #[arg(long, value_name = "USCC")]
    subject: String,

    /// What it says: red-list, serious-dishonesty, administrative-penalty, credit-rating, tax-credit, court-enforcement, commitment
    #[arg(long, value_name = "KIND")]
    kind: String,

    /// The evidence document; its SHA-256 is signed (the file is not sent)
    #[arg(long, value_name = "FILE", conflicts_with = "evidence_digest")]
    evidence: Option<PathBuf>,

    /// SHA-256 of the evidence document, 64 hex digits
    #[arg(long, value_name = "HEX")]
    evidence_digest: Option<String>,

    /// Grade, for credit-rating (A B C D) and tax-credit (A B M C D)
    #[arg(long, value_name = "G")]
    grade: Option<String>,

    /// Severity, for administrative-penalty, serious-dishonesty, court-enforcement: minor, general, serious
    #[arg(long, value_name = "S")]
    severity: Option<String>,

    /// Start of validity, RFC 3339 or milliseconds since the Unix epoch (default: now)
    #[arg(long, value_name = "TIME")]
    valid_from: Option<String>,

    /// End of validity, RFC 3339 (2027-12-31T23:59:59+08:00) or milliseconds since the Unix epoch (default: until revoked)
    #[arg(long, value_name = "TIME")]
    valid_until: Option<String>,

    /// A public field name=value (repeatable, at most 8)
    #[arg(long = "field", value_name = "NAME=VALUE")]
    fields: Vec<String>,

    #[command(flatten)]
    submit: SubmitArgs,
}

/// Options shared by `attest` and `revoke`.
#[derive(clap::Args)]
pub struct SubmitArgs {
    /// Sequence number (single-use per issuer); default: current time in microseconds
    #[arg(long, value_name = "N")]
    pub sequence: Option<u64>,

    /// Wait until the transaction is final and print its block height
    #[arg(long)]
    pub wait: bool,

    /// Longest wait for --wait, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=WAIT_TIMEOUT_S_MAX))]
    pub timeout: u64,

    /// Print one JSON object {"id", "height", "block_hash", "status"}
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.node.node)?;
    let key = yrd_node::keys::read_key_file(&args.key)?;
    let attestation = build_attestation(&args)?;
    attestation.check_format().map_err(|e| anyhow!("invalid attestation: {e}"))?;
    submit(&client, &key, TxBody::Attest(attestation), &args.submit)
}

fn build_attestation(args: &Args) -> anyhow::Result<Attestation> {
    let subject = Uscc::parse(&args.subject).map_err(|e| anyhow!("--subject {:?}: {e}", args.subject))?;
    let kind: AttestationKind = args.kind.parse().map_err(|e: String| anyhow!("--kind: {}", e.replace("AttestationKind", "kind")))?;
    let grade = args
        .grade
        .as_deref()
        .map(|g| g.parse::<Grade>().map_err(|e| anyhow!("--grade: {}", e.replace("Grade", "grade"))))
        .transpose()?;
    let severity = args
        .severity
        .as_deref()
        .map(|s| s.parse::<Severity>().map_err(|e| anyhow!("--severity: {}", e.replace("Severity", "severity"))))
        .transpose()?;
    let evidence = evidence_digest(args.evidence.as_ref(), args.evidence_digest.as_deref())?
        .ok_or_else(|| anyhow!("evidence is required: give --evidence FILE or --evidence-digest HEX"))?;
    let issued_at_ms = now_ms()?;
    let valid_from_ms = match &args.valid_from {
        Some(t) => parse_time_ms(t).context("--valid-from")?,
        None => issued_at_ms,
    };
    let valid_until_ms = args.valid_until.as_deref().map(|t| parse_time_ms(t).context("--valid-until")).transpose()?;
    let fields = parse_fields(&args.fields)?;
    Ok(Attestation { subject, kind, grade, severity, evidence, issued_at_ms, valid_from_ms, valid_until_ms, fields })
}

/// `--evidence FILE` (hashed) or `--evidence-digest HEX`; `None` if neither.
pub fn evidence_digest(file: Option<&PathBuf>, digest: Option<&str>) -> anyhow::Result<Option<Hash32>> {
    match (file, digest) {
        (Some(_), Some(_)) => bail!("give either --evidence or --evidence-digest, not both"),
        (Some(path), None) => {
            let meta = std::fs::metadata(path).with_context(|| format!("cannot read evidence file {}", path.display()))?;
            if !meta.is_file() {
                bail!("evidence {} is not a file", path.display());
            }
            if meta.len() > EVIDENCE_FILE_BYTES_MAX {
                bail!("evidence file {} is {} bytes, more than the {EVIDENCE_FILE_BYTES_MAX}-byte limit", path.display(), meta.len());
            }
            let bytes = std::fs::read(path).with_context(|| format!("cannot read evidence file {}", path.display()))?;
            Ok(Some(sha256(&[&bytes])))
        }
        (None, Some(hex)) => Hash32::from_hex(hex)
            .map(Some)
            .map_err(|e| anyhow!("--evidence-digest must be a SHA-256 digest of 64 hex digits: {e}")),
        (None, None) => Ok(None),
    }
}

/// `name=value` pairs, sorted by name (the signed order); a repeated name is an error.
fn parse_fields(specs: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let mut fields = Vec::with_capacity(specs.len());
    for spec in specs {
        let (name, value) =
            spec.split_once('=').ok_or_else(|| anyhow!("--field {spec:?}: expected NAME=VALUE"))?;
        fields.push((name.trim().to_string(), value.to_string()));
    }
    fields.sort();
    if let Some(w) = fields.windows(2).find(|w| w[0].0 == w[1].0) {
        bail!("--field {:?} is given twice; each public field name may appear once", w[0].0);
    }
    Ok(fields)
}

/// Fetches the chain id, signs, submits, prints, and with `--wait` waits for finality.
pub fn submit(client: &Client, key: &SecretKey, body: TxBody, opts: &SubmitArgs) -> anyhow::Result<ExitCode> {
    let chain = chain_id(client)?;
    let sequence = match opts.sequence {
        Some(n) => n,
        None => now_us()?,
    };
    let tx = Transaction { chain, issuer: key.public(), sequence, body };
    let signed: SignedTransaction = tx.sign(key).context("cannot encode the transaction")?;
    let bytes = signed.encode().context("cannot encode the transaction")?;
    let id = signed.id().context("cannot encode the transaction")?.to_hex();

    match client.post("/v1/transactions", &json!({ "tx": hex::encode(&bytes) })) {
        Ok(answer) => {
            if let Some(theirs) = answer.get("id").and_then(Value::as_str) {
                if !theirs.eq_ignore_ascii_case(&id) {
                    bail!("node at {} answered with id {theirs} for transaction {id}", client.base());
                }
            }
        }
        Err(e) => return Ok(report_submit_error(&e)),
    }

    if !opts.wait {
        print_result(opts.json, &id, None)?;
        return Ok(ExitCode::SUCCESS);
    }
    if !opts.json {
        // The id first, so it is not lost if the wait fails.
        println!("{id}");
        std::io::stdout().flush()?;
    }
    // The submitter reads its own transaction (a restricted record, a consent
    // transaction) with its own key: the polls are signed (docs/access.md).
    let reader = match client.signed_with(key.clone()) {
        Ok(r) => r,
        Err(e) => {
            if opts.json {
                print_result(true, &id, None)?;
            }
            eprintln!("yrd: error: transaction {id} was submitted, but its finality cannot be awaited: {e:#}; check with `yrd query --id {id}`");
            return Ok(ExitCode::from(crate::EXIT_USAGE));
        }
    };
    match wait_final(&reader, &id, Duration::from_secs(opts.timeout)) {
        Ok(record) => {
            if opts.json {
                print_result(true, &id, Some(&record))?;
            } else {
                let height = record.get("height").map(Value::to_string).unwrap_or_else(|| "?".into());
                let block = record.get("block_hash").and_then(Value::as_str).unwrap_or("?");
                let status = record.get("status").and_then(Value::as_str).unwrap_or("?");
                println!("final at height {height} in block {block} (status {status})");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(failure) => {
            if opts.json {
                print_result(true, &id, None)?;
            }
            match failure {
                WaitFailure::Dropped(secs) => {
                    eprintln!(
                        "yrd: error: transaction {id} is neither pending nor on the ledger after {secs} s: the node dropped it"
                    );
                    Ok(ExitCode::from(EXIT_CHECK_FAILED))
                }
                WaitFailure::TimedOut(secs, last) => {
                    let why = last.map(|e| format!(" (last error: {e})")).unwrap_or_default();
                    eprintln!(
                        "yrd: error: transaction {id} is not final after {secs} s{why}; it may still be: \
                         check with `yrd query --id {id}`"
                    );
                    Ok(ExitCode::from(EXIT_USAGE))
                }
                WaitFailure::Fatal(e) => {
                    eprintln!("yrd: error: while waiting for {id}: {e}");
                    Ok(ExitCode::from(EXIT_USAGE))
                }
            }
        }
    }
}

fn print_result(json: bool, id: &str, record: Option<&Value>) -> anyhow::Result<()> {
    if json {
        let field = |k: &str| record.and_then(|r| r.get(k)).cloned().unwrap_or(Value::Null);
        let status = record.map(|r| r.get("status").cloned().unwrap_or(Value::Null)).unwrap_or_else(|| json!("pending"));
        println!("{}", json!({"id": id, "height": field("height"), "block_hash": field("block_hash"), "status": status}));
    } else {
        println!("{id}");
    }
    Ok(())
}

/// The chain id the node serves, from `GET /v1/status`.
pub fn chain_id(client: &Client) -> anyhow::Result<Hash32> {
    let status = client.get("/v1/status")?;
    let hex = status
        .get("chain_id")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("node at {} reports no chain_id in /v1/status", client.base()))?;
    Hash32::from_hex(hex).map_err(|e| anyhow!("node at {} reports a malformed chain_id {hex:?}: {e}", client.base()))
}

enum WaitFailure {
    /// The node no longer knows the transaction (not pending, not committed).
    Dropped(u64),
    /// Still pending (or the node unreachable) at the deadline.
    TimedOut(u64, Option<NodeError>),
    Fatal(NodeError),
}

/// Polls `GET /v1/attestations/{id}` until its status is not `pending`. A node that
/// is briefly unreachable (restarting) is retried until the deadline.
fn wait_final(client: &Client, id: &str, timeout: Duration) -> Result<Value, WaitFailure> {
    let start = Instant::now();
    let mut interval = Duration::from_millis(50);
    let mut last_error = None;
    let mut missing = false;
    let mut progress = super::progress::Progress::new();
    let short: String = id.chars().take(16).collect();
    loop {
        match client.get(&format!("/v1/attestations/{id}")) {
            Ok(record) => {
                missing = false;
                last_error = None;
                let status = record.get("status").and_then(Value::as_str).unwrap_or("pending");
                if status != "pending" {
                    progress.finish();
                    return Ok(record);
                }
            }
            Err(e) if e.status() == Some(404) => missing = true,
            Err(e @ NodeError::Unreachable { .. }) => last_error = Some(e),
            Err(e) if e.status().is_some_and(|s| s >= 500) => last_error = Some(e),
            Err(e) => return Err(WaitFailure::Fatal(e)),
        }
        if start.elapsed() >= Duration::from_secs(1) {
            progress.update(client, &format!("{short}…"));
        }
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            progress.finish();
            let secs = timeout.as_secs();
            return Err(if missing { WaitFailure::Dropped(secs) } else { WaitFailure::TimedOut(secs, last_error) });
        }
        std::thread::sleep(interval.min(timeout - elapsed));
        interval = (interval * 2).min(Duration::from_millis(500));
    }
}

pub fn now_ms() -> anyhow::Result<u64> {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).context("the system clock is before 1970")?;
    u64::try_from(d.as_millis()).context("the system clock is out of range")
}

fn now_us() -> anyhow::Result<u64> {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).context("the system clock is before 1970")?;
    u64::try_from(d.as_micros()).context("the system clock is out of range")
}

/// A time as milliseconds since the Unix epoch: either those milliseconds (digits
/// only) or RFC 3339 with an explicit offset, e.g. `2027-12-31T23:59:59+08:00`,
/// `2027-12-31T15:59:59.5Z`.
pub fn parse_time_ms(input: &str) -> anyhow::Result<u64> {
    let s = input.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<u64>().map_err(|e| anyhow!("{s:?}: {e}"));
    }
    parse_rfc3339_ms(s).ok_or_else(|| {
        anyhow!(
            "{input:?} is not a time: give RFC 3339 with a time and offset, e.g. 2027-12-31T23:59:59+08:00 \
             or 2027-12-31T15:59:59Z, or milliseconds since the Unix epoch"
        )
    })
}

fn parse_rfc3339_ms(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let first3: String = frac[..digits].chars().chain("000".chars()).take(3).collect();
        millis = first3.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        _ => {
            let ob = rest.as_bytes();
            if ob.len() != 6 || !matches!(ob[0], b'+' | b'-') || ob[3] != b':' {
                return None;
            }
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            if oh > 23 || om > 59 {
                return None;
            }
            if ob[0] == b'-' {
                -(oh * 60 + om)
            } else {
                oh * 60 + om
            }
        }
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month[(month - 1) as usize] {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let second = second.min(59); // a leap second counts as :59
    let days = days_from_civil(year, month, day);
    let ms = ((days * 86_400 + hour * 3600 + minute * 60 + second) - offset_min * 60) * 1000 + millis;
    u64::try_from(ms).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = (if y >= 0 { y } else { y - 399 }) / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_and_millis() {
        assert_eq!(parse_time_ms("0").unwrap(), 0);
        assert_eq!(parse_time_ms("1700000000000").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time_ms("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(parse_time_ms("2001-09-09T01:46:40Z").unwrap(), 1_000_000_000_000);
        assert_eq!(parse_time_ms("2001-09-09T09:46:40+08:00").unwrap(), 1_000_000_000_000);
        assert_eq!(parse_time_ms("2001-09-09T01:46:40.25Z").unwrap(), 1_000_000_000_250);
        assert_eq!(parse_time_ms("2024-02-29T00:00:00Z").unwrap(), 1_709_164_800_000);
        for bad in ["", "2027-12-31", "2023-02-29T00:00:00Z", "2027-12-31T24:00:00Z", "2027-12-31T00:00:00", "x"] {
            assert!(parse_time_ms(bad).is_err(), "{bad:?}");
        }
    }
}
