//! `yrd verify FILE --genesis GENESIS`: offline verification of proof bundles,
//! subject reports, audit traces and consistency proofs (docs/proofs.md), and
//! the verdict a loan officer reads. Also the printing helpers `proof`, `report`
//! and `audit` share.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use yrd_ledger::genesis::Genesis;
use yrd_ledger::proof::{
    self, AnyVerdict, AppliedProposal, AttestationInfo, BlockInfo, ConsistencyVerdict, ReportVerdict, TraceVerdict, Verdict,
    VerifyError,
};
use yrd_ledger::store::Status;

use crate::EXIT_CHECK_FAILED;

#[derive(clap::Args)]
#[command(
    long_about = "\
Verify a proof file offline, with only the genesis file: a proof bundle (`yrd proof`),
a subject report (`yrd report`), an audit trace (`yrd audit trace --save`) or a
consistency proof (`yrd audit consistency --save`). No node is contacted.

Given a genesis file (`yrd verify genesis.json`), checks that it is a valid genesis and
prints its chain id with what it says (as `yrd genesis inspect`); with --genesis too,
says whether both files are the same chain (exit 1 if not).

The checks run in the order docs/proofs.md gives: format, decoding, chain, the
governance section (the membership changes since the genesis, replayed block by
block: each certified by the validators then in force, each header committing to the
replayed membership), commit certificate (a quorum of the validators in force at the
block's height signed it), each transaction (chain, issuer signature, issuer in force
and allowed the kind at the record's height), inclusion in the block's transaction
log, the subject record in the block's subject map, the status (active, expired,
revoked and by which record), the revocation, and for reports completeness (every
record the map lists, nothing more).

Prints the verdict: issuer (and whether its key was later frozen, rotated or
removed), subject, kind, grade, status, height, time, the validators that signed and
the membership changes in force, and the file's age: how long before --at (or now)
its anchor block was made. Nothing after the anchor is in the file (a later
revocation, say): --max-age DURATION refuses a file older than that (the freshness
check, exit 1). A record whose valid-from time has not come is NOT YET VALID.
--json prints the verdict as JSON (schema: docs/proofs.md §4.0).

A subject report of a big enterprise comes in pages (`yrd report --all --out DIR`):
give every page file, or the directory holding them, and they are verified together —
each page, then that all prove the same record (same count and entries root) and
follow each other with no gap or overlap. The verdict says whether the files prove
the COMPLETE record or only records i..j of exactly N (one page alone: a range).

Exit status: 0 every check passed; 1 a check failed (the first failed check is named);
2 the file or the genesis cannot be read.",
    after_help = "\
Examples:
  yrd proof --node http://127.0.0.1:8601 <ID> > bundle.json
  yrd verify bundle.json --genesis genesis.json
  yrd verify bundle.json --genesis genesis.json --max-age 10m
  yrd report --subject 91310000MA1K4CXX1H > report.json && yrd verify report.json --genesis genesis.json --json
  yrd report --subject 91310000MA1K4CXX1H --all --out pages/ && yrd verify pages/ --genesis genesis.json"
)]
pub struct Args {
    /// The proof file (`-` for standard input); several files, or a directory
    /// of `*.json` files (taken in name order), are the pages of one subject report
    #[arg(value_name = "FILE", required = true, num_args = 1..)]
    files: Vec<PathBuf>,

    /// The chain's genesis file: the only thing trusted (required unless FILE is itself a genesis)
    #[arg(long, value_name = "GENESIS", env = "YRD_GENESIS")]
    genesis: Option<PathBuf>,

    /// Print the verdict as JSON
    #[arg(long)]
    json: bool,

    /// Judge validity, expiry and the file's age at this time instead of now
    /// (RFC 3339 with an offset, e.g. 2027-12-31T23:59:59+08:00, or milliseconds since the epoch)
    #[arg(long, value_name = "TIME")]
    at: Option<String>,

    /// Refuse a file whose anchor (the certified block it proves against) is older
    /// than this at --at or now (e.g. 90s, 10m, 1h30m, 7d): a revocation after the
    /// anchor is not in the file
    #[arg(long, value_name = "DURATION")]
    max_age: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let paths = page_paths(&args.files)?;
    if paths.len() > 1 {
        return verify_pages(&args, &paths);
    }
    let file = &paths[0];
    let bytes = read_input(file)?;
    if looks_like_genesis(&bytes) {
        return verify_genesis(&args, file, &bytes);
    }
    let Some(genesis_path) = &args.genesis else {
        anyhow::bail!("--genesis GENESIS is required to verify {} (or set YRD_GENESIS)", file.display());
    };
    let genesis = load_genesis(genesis_path)?;
    let now = match &args.at {
        Some(t) => super::attest::parse_time_ms(t)?,
        None => super::attest::now_ms()?,
    };
    let max_age_ms = args.max_age.as_deref().map(super::duration::parse_duration_ms).transpose()?;
    let result = proof::parse_file(&bytes).and_then(|file| proof::verify_file(&genesis, &file, now));
    Ok(finish_fresh(&result, now, max_age_ms, args.json))
}

/// The files to verify: as given, or the `*.json` files of a directory in name order.
fn page_paths(files: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for f in files {
        if f.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(f)
                .with_context(|| format!("cannot read the directory {}", f.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            if inside.is_empty() {
                anyhow::bail!("{} holds no .json file", f.display());
            }
            inside.sort();
            out.extend(inside);
        } else {
            out.push(f.clone());
        }
    }
    Ok(out)
}

/// Several files: the pages of one subject report, verified together
/// (`proof::verify_report_pages`).
fn verify_pages(args: &Args, paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let Some(genesis_path) = &args.genesis else {
        anyhow::bail!("--genesis GENESIS is required to verify report pages (or set YRD_GENESIS)");
    };
    let genesis = load_genesis(genesis_path)?;
    let now = match &args.at {
        Some(t) => super::attest::parse_time_ms(t)?,
        None => super::attest::now_ms()?,
    };
    let max_age_ms = args.max_age.as_deref().map(super::duration::parse_duration_ms).transpose()?;
    let mut pages = Vec::with_capacity(paths.len());
    let mut failed = None;
    for (k, p) in paths.iter().enumerate() {
        let bytes = read_input(p)?;
        match proof::parse_file(&bytes) {
            Ok(proof::ProofFile::Report(r)) => pages.push(r),
            Ok(_) => {
                failed = Some(VerifyError { check: proof::Check::Format, message: format!("{} (page {k}) is not a subject report", p.display()) });
                break;
            }
            Err(e) => {
                failed = Some(VerifyError { check: e.check, message: format!("{} (page {k}): {}", p.display(), e.message) });
                break;
            }
        }
    }
    let result = match failed {
        Some(e) => Err(e),
        None => proof::verify_report_pages(&genesis, &pages, now).map(AnyVerdict::Report),
    };
    Ok(finish_fresh(&result, now, max_age_ms, args.json))
}

/// [`finish`] with the anchor's age at `at_ms` printed (and, with `max_age_ms`,
/// a file older than that refused as the `freshness` check).
pub fn finish_fresh(result: &Result<AnyVerdict, VerifyError>, at_ms: u64, max_age_ms: Option<u64>, json: bool) -> ExitCode {
    let verdict = match result {
        Ok(v) => v,
        Err(_) => return finish(result, json),
    };
    let freshness = proof::check_freshness(verdict, at_ms, max_age_ms);
    if json {
        let age = match &freshness {
            Ok(f) => serde_json::to_value(f).unwrap_or_default(),
            Err(_) => serde_json::to_value(freshness_of(verdict, at_ms, max_age_ms)).unwrap_or_default(),
        };
        match &freshness {
            Ok(_) => println!("{}", serde_json::json!({ "verified": true, "freshness": age, "verdict": verdict })),
            Err(e) => println!("{}", serde_json::json!({ "verified": false, "check": e.check, "error": e.message, "freshness": age })),
        }
        return if freshness.is_ok() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_CHECK_FAILED) };
    }
    match freshness {
        Ok(f) => {
            print_verdict(verdict);
            print_age(&f);
            ExitCode::SUCCESS
        }
        Err(e) => {
            print_age(&freshness_of(verdict, at_ms, max_age_ms));
            finish(&Err(e), false)
        }
    }
}

/// The anchor's age without the maximum-age rule (for printing a refused file's age).
fn freshness_of(v: &AnyVerdict, at_ms: u64, max_age_ms: Option<u64>) -> proof::Freshness {
    let mut f = proof::check_freshness(v, at_ms, None).unwrap_or(proof::Freshness {
        anchor_height: 0,
        anchor_time_ms: 0,
        at_ms,
        age_ms: 0,
        max_age_ms: None,
    });
    f.max_age_ms = max_age_ms;
    f
}

fn print_age(f: &proof::Freshness) {
    let age = if f.age_ms >= 0 {
        format!("{} old", proof::duration_text(f.age_ms as u64))
    } else {
        format!("{} after the evaluation time", proof::duration_text(f.age_ms.unsigned_abs()))
    };
    let limit = match f.max_age_ms {
        Some(m) => format!(" (maximum age {})", proof::duration_text(m)),
        None => " (no maximum age set: anything after the anchor is not in this file)".to_string(),
    };
    println!("age          {age} at {}: as of block {} at {}{limit}", time_text(f.at_ms), f.anchor_height, time_text(f.anchor_time_ms));
}

/// A genesis has `chain_name` and `validators` at the top and none of the proof
/// files' `format` or `type` fields.
fn looks_like_genesis(bytes: &[u8]) -> bool {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return false;
    };
    map.contains_key("chain_name") && map.contains_key("validators") && !map.contains_key("format") && !map.contains_key("type")
}

/// `yrd verify genesis.json`: the file is valid and this is its chain id (and, with
/// `--genesis`, whether the two files are the same chain). Exit 1 if they differ
/// or the file is not a valid genesis.
fn verify_genesis(args: &Args, file: &Path, bytes: &[u8]) -> anyhow::Result<ExitCode> {
    let genesis = match Genesis::from_json(bytes) {
        Ok(g) => g,
        Err(e) => {
            if args.json {
                println!("{}", serde_json::json!({ "verified": false, "check": "genesis", "error": e.to_string() }));
            } else {
                println!("NOT VERIFIED: {} is not a valid genesis", file.display());
                println!("  {e}");
            }
            return Ok(ExitCode::from(EXIT_CHECK_FAILED));
        }
    };
    let chain_id = genesis.chain_id().context("cannot encode the genesis")?;
    let other = match &args.genesis {
        Some(path) => Some(load_genesis(path)?.chain_id().context("cannot encode the genesis")?),
        None => None,
    };
    let same = other.map(|o| o == chain_id);
    if args.json {
        let mut v = super::genesis_inspect::to_json(&genesis)?;
        v["verified"] = serde_json::json!(same.unwrap_or(true));
        v["type"] = serde_json::json!("genesis");
        if let Some(o) = other {
            v["expected_chain_id"] = serde_json::json!(o.to_hex());
        }
        println!("{v}");
    } else {
        match (same, other) {
            (Some(false), Some(o)) => {
                println!("NOT VERIFIED: {} is another chain than {}", file.display(), args.genesis.as_deref().unwrap_or(Path::new("")).display());
                println!("  chain id {} here, {} expected", chain_id.to_hex(), o.to_hex());
                return Ok(ExitCode::from(EXIT_CHECK_FAILED));
            }
            (Some(true), _) => println!("VERIFIED: a valid genesis, the same chain as --genesis"),
            _ => println!("VERIFIED: a valid genesis"),
        }
        super::genesis_inspect::print(&genesis)?;
    }
    Ok(if same == Some(false) { ExitCode::from(EXIT_CHECK_FAILED) } else { ExitCode::SUCCESS })
}

/// Reads and validates a genesis file.
pub fn load_genesis(path: &Path) -> anyhow::Result<Genesis> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read the genesis file {}", path.display()))?;
    Genesis::from_json(&bytes).with_context(|| format!("{} is not a valid genesis", path.display()))
}

fn read_input(path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin().take(proof::MAX_FILE_BYTES as u64 + 1).read_to_end(&mut bytes).context("cannot read standard input")?;
    } else {
        let f = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        f.take(proof::MAX_FILE_BYTES as u64 + 1).read_to_end(&mut bytes).with_context(|| format!("cannot read {}", path.display()))?;
    }
    Ok(bytes)
}

/// Prints the verdict (or the failed check) and returns the exit status.
pub fn finish(result: &Result<AnyVerdict, VerifyError>, json: bool) -> ExitCode {
    match result {
        Ok(v) => {
            if json {
                println!("{}", serde_json::json!({ "verified": true, "verdict": v }));
            } else {
                print_verdict(v);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            if json {
                println!("{}", serde_json::json!({ "verified": false, "check": e.check, "error": e.message }));
            } else {
                println!("NOT VERIFIED: the {} check failed", e.check);
                println!("  {}", e.message);
                println!("  Do not rely on this file.");
            }
            ExitCode::from(EXIT_CHECK_FAILED)
        }
    }
}

pub fn print_verdict(v: &AnyVerdict) {
    match v {
        AnyVerdict::Bundle(b) => print_bundle(b),
        AnyVerdict::Report(r) => print_report(r),
        AnyVerdict::Trace(t) => print_trace(t),
        AnyVerdict::Consistency(c) => print_consistency(c),
        AnyVerdict::Queries(q) => print_queries(q),
    }
}

fn print_bundle(v: &Verdict) {
    println!("VERIFIED: proof bundle — every check passed");
    println!("chain        {} {}", v.chain_name, v.chain_id);
    print_attestation(&v.attestation, "");
    print_anchor("as of", &v.anchor);
    print_governance(&v.governance);
}

fn print_report(v: &ReportVerdict) {
    if v.complete {
        println!("VERIFIED: subject report — every check passed; the list is complete as of block {}", v.anchor.height);
    } else {
        println!(
            "VERIFIED: subject report — every check passed; records {}..{} (positions from 1: {} to {}) of exactly {} as of block {}",
            v.from,
            v.to,
            v.from + 1,
            v.to,
            v.count,
            v.anchor.height
        );
        println!("             a RANGE, not the complete record: fetch every page (yrd report --all) for the whole list");
    }
    println!("chain        {} {}", v.chain_name, v.chain_id);
    println!("subject      {}", v.subject);
    if v.count > 0 {
        println!("coverage     records {}..{} of {}{}", v.from, v.to, v.count, if v.complete { " (complete)" } else { " (range)" });
    }
    print_anchor("as of", &v.anchor);
    print_governance(&v.governance);
    if v.attestations.is_empty() && v.redacted.is_empty() {
        println!("records      none: the subject map proves there is no record about {}", v.subject);
        return;
    }
    let active = v.attestations.iter().filter(|a| a.status == Status::Active).count();
    let total = v.attestations.len() + v.redacted.len();
    if v.redacted.is_empty() {
        println!("records      {} ({} active)", v.attestations.len(), active);
    } else {
        println!(
            "records      {total}: {} shown ({active} active), {} redacted (restricted records this reader may not see)",
            v.attestations.len(),
            v.redacted.len()
        );
        println!("             the list is complete: every record is shown or stands as its commitment");
    }
    let mut shown = v.attestations.iter();
    let mut hidden = v.redacted.iter().peekable();
    for i in v.from..v.from + total as u64 {
        println!();
        if hidden.peek().is_some_and(|r| r.position == i) {
            if let Some(r) = hidden.next() {
                println!("  [{}] REDACTED  commitment {}", i + 1, r.commitment);
            }
        } else if let Some(a) = shown.next() {
            println!("  [{}]", i + 1);
            print_attestation(a, "  ");
        }
    }
}

fn print_trace(v: &TraceVerdict) {
    println!("VERIFIED: audit trace — every check passed");
    println!("chain        {} {}", v.current.chain_name, v.current.chain_id);
    print_attestation(&v.current.attestation, "");
    print_anchor("committed in", &v.origin);
    for r in &v.revocations {
        print_anchor("revoked in", r);
    }
    print_anchor("status as of", &v.current.anchor);
    print_governance(&v.current.governance);
}

fn print_consistency(v: &ConsistencyVerdict) {
    println!(
        "VERIFIED: the log at block {} ({} transactions) extends the log at block {} ({} transactions)",
        v.to.height, v.to.log_size, v.from.height, v.from.log_size
    );
    println!("chain        {} {}", v.chain_name, v.chain_id);
    print_anchor("from", &v.from);
    println!("  log root   {}", v.from_log_root);
    print_anchor("to", &v.to);
    println!("  log root   {}", v.to_log_root);
    print_governance(&v.governance);
}

fn print_queries(v: &yrd_ledger::proof_queries::QueryAuditVerdict) {
    println!(
        "VERIFIED: {} recorded quer{} about {}, each in a certified block, each request signed by its lender",
        v.queries.len(),
        if v.queries.len() == 1 { "y" } else { "ies" },
        v.subject
    );
    print_anchor("as of", &v.anchor);
    for q in &v.queries {
        println!(
            "  {}  lender {:<16} {} {}  served by {} at height {}, recorded in block {} ({})",
            time_text(q.served_at_ms),
            q.lender,
            q.method,
            q.path,
            q.node,
            q.served_height,
            q.height,
            q.record
        );
        println!("      authorisation {}  request {}  answer sha256 {}", q.authorisation, q.request, q.response);
    }
    if let Some(next) = v.next_from {
        println!("  (more: ask again from height {next})");
    }
    println!("  Not proven: that the list is complete (compare another node's, or read the blocks).");
}

/// The membership changes the file proved, in the order they took effect.
fn print_governance(applied: &[AppliedProposal]) {
    if applied.is_empty() {
        println!("membership   the genesis' (no change in force)");
        return;
    }
    println!("membership   the genesis and {} change(s), replayed from the genesis:", applied.len());
    for p in applied {
        println!("  from block {} (approved in block {}, proposed by {}): {}", p.effective, p.approved_at, p.proposer, p.changes.join("; "));
    }
}

/// " — key frozen at block 8" when the key was retired by the anchor.
fn retired_text(p: &proof::Party) -> String {
    match &p.retired {
        Some(r) => format!(" — key {} at block {}", r.reason, r.since),
        None => String::new(),
    }
}

fn party(p: &proof::Party) -> String {
    if p.name.is_empty() {
        p.key.to_hex()
    } else {
        let desc = yrd_ledger::genesis::Region::parse(&p.region).map(|r| r.description()).unwrap_or("");
        if desc.is_empty() {
            format!("{} ({})", p.name, p.region)
        } else {
            format!("{} ({}, {desc})", p.name, p.region)
        }
    }
}

fn print_attestation(a: &AttestationInfo, pad: &str) {
    println!("{pad}attestation  {}", a.id);
    println!("{pad}subject      {}", a.subject);
    let mut kind = a.kind.clone();
    if let Some(g) = a.grade {
        kind.push_str(&format!(", grade {g}"));
    }
    if let Some(s) = &a.severity {
        kind.push_str(&format!(", severity {s}"));
    }
    println!("{pad}kind         {kind}");
    println!("{pad}issuer       {}, sequence {}", party(&a.issuer), a.sequence);
    if let Some(r) = &a.issuer.retired {
        println!(
            "{pad}issuer key   {} at block {}, after this record (committed in block {}): the record stays valid; the key signs nothing new",
            r.reason, r.since, a.height
        );
    }
    println!("{pad}issued at    {}", time_text(a.issued_at_ms));
    let until = a.valid_until_ms.map_or("until revoked".to_string(), |u| format!("until {}", time_text(u)));
    println!("{pad}valid        from {} {until}", time_text(a.valid_from_ms));
    println!("{pad}evidence     {}", a.evidence);
    for (k, val) in &a.fields {
        println!("{pad}field        {k} = {val}");
    }
    let status = match &a.status {
        Status::Active => "ACTIVE".to_string(),
        Status::NotYetValid => format!("NOT YET VALID (valid from {})", time_text(a.valid_from_ms)),
        Status::Expired => "EXPIRED".to_string(),
        Status::Revoked { by, reason } => format!("REVOKED ({reason}) by record {by}"),
        Status::Revocation { target } => format!("revocation of {target}"),
        Status::Governance => "governance transaction".to_string(),
        Status::Consent => "authorisation or withdrawal".to_string(),
        Status::Queries => "query records".to_string(),
    };
    println!("{pad}status       {status}");
    if let Some(r) = &a.revocation {
        println!("{pad}revoked by   {}{} at {}, log index {}", party(&r.by), retired_text(&r.by), time_text(r.issued_at_ms), r.log_index);
    }
    println!("{pad}committed    block {}, log index {}", a.height, a.log_index);
}

fn print_anchor(label: &str, b: &BlockInfo) {
    println!("{label:<12} block {} at {} (hash {})", b.height, time_text(b.time_ms), b.hash);
    let names: Vec<String> = b.signers.iter().map(|p| format!("{}{}", party(p), retired_text(p))).collect();
    println!("  signed by  {} validators: {}", names.len(), names.join(", "));
}

/// Milliseconds since the epoch as a date and time in the local zone (UTC with `--utc`).
pub fn time_text(ms: u64) -> String {
    super::localtime::format_ms(ms, false)
}
