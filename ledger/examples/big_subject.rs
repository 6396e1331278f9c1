//! Figures for a subject with many records (BENCHMARKS.md "Big subjects"):
//! generates a store with `N` records about one subject straight through the
//! ledger (build, certify, commit; 1,000 per block, no consensus), then measures
//! the report pages a node serves (built under the ledger, as the API does,
//! and serialised as compact JSON), their verification alone and together, and
//! the time to append one record to that subject.
//!
//!     cargo run --release -p yrd-ledger --example big_subject -- 100000 1024
//!
//! Arguments: records (default 100,000), page size (default 1,024).

use std::time::{Duration, Instant};

use yrd_ledger::genesis::ChainParams;
use yrd_ledger::proof::{self, Report};
use yrd_ledger::store::Ledger;
use yrd_ledger::testkit::TestChain;
use yrd_ledger::tx::{AttestationKind, RevocationReason};
use yrd_ledger::uscc::Uscc;

const NOW: u64 = 1_900_000_000_000;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), String> {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let n = args.first().copied().unwrap_or(100_000);
    let limit = args.get(1).copied().unwrap_or(proof::MAX_REPORT_PAGE_ENTRIES);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    // No restricted kind: every record in full, as a covered lender reads it.
    let chain = TestChain::with_params(4, 2, ChainParams { restricted_kinds: vec![], ..ChainParams::default() });
    let mut ledger = Ledger::open(dir.path(), chain.genesis.clone()).map_err(|e| e.to_string())?;
    let subject = Uscc::sample(1);
    let t = Instant::now();
    let ids = chain.fill_subject(&mut ledger, 1, subject, n, 1_000, 1)?;
    eprintln!("generated {n} records of {subject} in {:.1} s (1,000 per block)", t.elapsed().as_secs_f64());
    let revs: Vec<_> = (0..4u64).map(|k| chain.revocation(0, 1 + k, ids[(k * n / 4) as usize], RevocationReason::Repair)).collect();
    chain.commit_next(&mut ledger, revs)?;
    chain.fill_subject(&mut ledger, 1, Uscc::sample(2), 3, 3, n + 1)?;

    // Append one record (a block of one transaction: build, commit, fsync).
    let mut big = Vec::new();
    let mut small = Vec::new();
    for k in 0..9 {
        for (s, out, seq) in [(subject, &mut big, n + 10 + 2 * k), (Uscc::sample(2), &mut small, n + 11 + 2 * k)] {
            let tx = chain.attestation(1, seq, s, AttestationKind::RedList);
            let t = Instant::now();
            chain.commit_next(&mut ledger, vec![tx])?;
            out.push(ms(t.elapsed()));
        }
    }
    let count = n + 9;
    eprintln!(
        "append one record, median of 9 (block of 1 tx: build + commit + fsync): subject of {count} records {:.2} ms, subject of 3 records {:.2} ms",
        median(big),
        median(small)
    );
    let size = std::fs::read_dir(dir.path()).map_err(|e| e.to_string())?.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum::<u64>();
    eprintln!("store on disk: {:.1} MB", size as f64 / 1e6);

    // One page in the middle: build (what the node does under its read lock) + JSON, verify.
    let mut build = Vec::new();
    let mut json = String::new();
    for _ in 0..5 {
        let t = Instant::now();
        let r = proof::report_page(&ledger, &subject, count / 2, limit, &|_| true).map_err(|e| e.to_string())?;
        json = serde_json::to_string(&r).map_err(|e| e.to_string())?;
        build.push(ms(t.elapsed()));
    }
    let mut verify = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let v = proof::parse_file(json.as_bytes()).and_then(|f| proof::verify_file(&chain.genesis, &f, NOW)).map_err(|e| e.to_string())?;
        verify.push(ms(t.elapsed()));
        let proof::AnyVerdict::Report(v) = v else { return Err("not a report".into()) };
        assert!(!v.complete && v.count == count && v.from == count / 2);
    }
    eprintln!(
        "one page of {limit} records (from {}): {} bytes compact JSON; build + serialise median {:.1} ms; parse + verify median {:.1} ms",
        count / 2,
        json.len(),
        median(build),
        median(verify)
    );
    // A page of one record: the smallest proof that a record is at its place.
    let one = serde_json::to_string(&proof::report_page(&ledger, &subject, count / 2, 1, &|_| true).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let bundle = serde_json::to_string(&proof::bundle(&ledger, &ids[(n / 2) as usize]).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    eprintln!("page of 1 record: {} bytes; proof bundle of one record of this subject: {} bytes", one.len(), bundle.len());

    // Every page, then all verified together.
    let t = Instant::now();
    let mut pages: Vec<Report> = Vec::new();
    let mut bytes = 0usize;
    let mut from = 0;
    while from < count {
        let r = proof::report_page(&ledger, &subject, from, limit, &|_| true).map_err(|e| e.to_string())?;
        bytes += serde_json::to_string(&r).map_err(|e| e.to_string())?.len();
        pages.push(r);
        from += limit;
    }
    let build_all = t.elapsed();
    let t = Instant::now();
    let all = proof::verify_report_pages(&chain.genesis, &pages, NOW).map_err(|e| e.to_string())?;
    let verify_all = t.elapsed();
    assert!(all.complete && all.count == count && all.attestations.len() as u64 == count);
    eprintln!(
        "all {} pages ({count} records): {bytes} bytes; built one after another in {:.2} s; verified together in {:.2} s",
        pages.len(),
        build_all.as_secs_f64(),
        verify_all.as_secs_f64()
    );
    Ok(())
}
