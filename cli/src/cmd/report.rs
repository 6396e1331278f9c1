//! `yrd report --node URL --subject USCC`: fetch the subject report (every record
//! about an enterprise, provably complete) from `GET /v1/proofs/subjects/{uscc}`:
//! one page (`--from`, `--limit`), or every page of a big record into a
//! directory, one file per page (`--all --out DIR`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use yrd_ledger::proof::{self, Report, MAX_REPORT_PAGE_ENTRIES};
use yrd_ledger::uscc::Uscc;

use super::client::{Client, NodeArgs};

/// How many times `--all` starts over when the record changes while its pages
/// are fetched (a new record about the subject, or a revocation): each start
/// fetches every page again, so a record that changes faster than its pages
/// can be read is reported as such instead of looping.
const ALL_PAGES_ATTEMPTS_MAX: u32 = 5;

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

A report is one page of the record: records --from (default 0), at most --limit
(default 256, at most 1024). A page proves that its records are records i..j of exactly
N as of its block; a subject with at most --limit records is complete in one page.
--all fetches every page into --out DIR, one file per page (page-<from>.json, 12 digits;
older page-*.json files there are removed first);
`yrd verify DIR` then proves the record complete. The pages must prove the same record:
when it changes while they are fetched (a new record or a revocation), --all starts
over (at most 5 times).

The node is not trusted: check the file offline with `yrd verify FILE --genesis GENESIS`.

Exit status: 0 printed; 2 invalid USCC, the node cannot be reached or has no block yet,
or (--all) the record kept changing.",
    after_help = "\
Examples:
  yrd report --node http://127.0.0.1:8601 --subject 91310000MA1K4CXX1H > report.json
  yrd verify report.json --genesis genesis.json
  yrd report --node http://127.0.0.1:8601 --subject 91310000MA1K4CXX1H --from 1024 --limit 1024 > page.json
  yrd report --node http://127.0.0.1:8601 --subject 91310000MA1K4CXX1H --all --limit 1024 --out pages/
  yrd verify pages/ --genesis genesis.json"
)]
pub struct Args {
    #[command(flatten)]
    node: NodeArgs,

    #[command(flatten)]
    read_key: super::client::ReadKeyArgs,

    /// The enterprise's Unified Social Credit Code
    #[arg(long, value_name = "USCC")]
    subject: String,

    /// Write the report to this file instead of standard output (with --all: the directory for the pages)
    #[arg(long, short, value_name = "FILE")]
    out: Option<PathBuf>,

    /// The first record of the page (0 = the oldest)
    #[arg(long, value_name = "N", default_value_t = 0)]
    from: u64,

    /// Records per page (1 to 1024)
    #[arg(long, value_name = "N", default_value_t = 256)]
    limit: u64,

    /// Fetch every page of the record into the directory --out, one file per page
    #[arg(long, requires = "out")]
    all: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let subject = Uscc::parse(&args.subject).map_err(|e| anyhow::anyhow!("invalid USCC {:?}: {e}", args.subject))?;
    if args.limit == 0 || args.limit > MAX_REPORT_PAGE_ENTRIES {
        anyhow::bail!("--limit {}: a page holds 1 to {MAX_REPORT_PAGE_ENTRIES} records", args.limit);
    }
    let client = Client::signing(&args.node.node, args.read_key.key.as_ref())?;
    let page = |from: u64| client.get(&format!("/v1/proofs/subjects/{}?from={from}&limit={}", subject.as_str(), args.limit));
    if !args.all {
        let report = page(args.from)?;
        super::proof::write_json(&report, args.out.as_ref())?;
        return Ok(ExitCode::SUCCESS);
    }
    let dir = args.out.as_ref().context("--all needs --out DIR")?;
    for attempt in 1..=ALL_PAGES_ATTEMPTS_MAX {
        let mut pages: Vec<(u64, serde_json::Value)> = Vec::new();
        let mut first: Option<proof::PageSpan> = None;
        let mut from = 0u64;
        let changed = loop {
            let value = page(from)?;
            let report: Report = serde_json::from_value(value.clone()).context("the node sent a report that is not one")?;
            let span = proof::page_span(&report).map_err(|e| anyhow::anyhow!("the node sent a malformed page: {e}"))?;
            pages.push((from, value));
            let Some(span) = span else { break false };
            match &first {
                None => first = Some(span),
                Some(f) if f.count != span.count || f.root != span.root || span.from != from => break true,
                Some(_) => {}
            }
            if span.to >= span.count {
                break false;
            }
            from = span.to;
        };
        if changed {
            eprintln!("the record changed while its pages were fetched (attempt {attempt}); starting over");
            continue;
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        // Pages of an earlier fetch would be verified with these: remove them.
        for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if name.starts_with("page-") && name.ends_with(".json") {
                std::fs::remove_file(&path).with_context(|| format!("cannot remove the old page {}", path.display()))?;
            }
        }
        for (from, value) in &pages {
            super::proof::write_json(value, Some(&dir.join(format!("page-{from:012}.json"))))?;
        }
        let count = first.map_or(0, |f| f.count);
        eprintln!("{} page(s), {count} record(s) of {subject} in {}: verify with `yrd verify {} --genesis GENESIS`", pages.len(), dir.display(), dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    anyhow::bail!("the record of {subject} changed {ALL_PAGES_ATTEMPTS_MAX} times while its pages were fetched; try again later or with a larger --limit")
}
