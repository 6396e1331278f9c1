//! A subject with many records (issue 14, "big subjects"): its report is served
//! in pages (`GET /v1/proofs/subjects/{uscc}?from=&limit=`), each page proves
//! "records i..j of exactly N", every page together the complete record; the
//! route refuses pages over the cap and past the end with the error shape of
//! every API error; appending to the big subject stays cheap.
//!
//! The store is generated straight through the ledger (build, certify, commit:
//! no consensus), `YRD_BIG_SUBJECT_RECORDS` records (default 3,000; the
//! BENCHMARKS.md figures are this test with 100,000), 1,000 per block, served
//! by a real API server on 127.0.0.1:0. Figures (bytes, fetch and verify
//! times, append time) are printed to standard error:
//!
//!     YRD_BIG_SUBJECT_RECORDS=100000 cargo test --release -p yrd-node --test big_subject -- --nocapture

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use yrd_ledger::genesis::ChainParams;
use yrd_ledger::proof::{self, Report};
use yrd_ledger::store::Ledger;
use yrd_ledger::testkit::TestChain;
use yrd_ledger::tx::{AttestationKind, RevocationReason};
use yrd_ledger::uscc::Uscc;
use yrd_node::shared::Shared;

const NOW: u64 = 1_900_000_000_000;

struct Server {
    base: String,
    shared: Arc<Shared>,
    agent: ureq::Agent,
    _served: common::Served,
}

impl Server {
    fn start(ledger: Ledger, chain: &TestChain) -> Server {
        let served = common::serve(chain, common::Options { ledger: Some(ledger), ..Default::default() });
        let agent: ureq::Agent =
            ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(120))).build().into();
        Server { base: served.base.clone(), shared: served.shared.clone(), agent, _served: served }
    }

    /// GET `path`: (status, body).
    fn get(&self, path: &str) -> (u16, String) {
        let mut resp = self.agent.get(format!("{}{path}", self.base)).call().unwrap();
        let status = resp.status().as_u16();
        (status, resp.body_mut().with_config().limit(64 << 20).read_to_string().unwrap())
    }
}

fn records() -> u64 {
    std::env::var("YRD_BIG_SUBJECT_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3_000)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[test]
fn a_big_subject_is_served_in_pages_that_prove_the_complete_record() {
    let n = records();
    let dir = tempfile::tempdir().unwrap();
    // No restricted kind: an anonymous reader gets every record in full (the
    // lender's view), so the figures are those of full pages.
    let params = ChainParams { restricted_kinds: vec![], ..ChainParams::default() };
    let chain = TestChain::with_params(4, 2, params);
    let mut ledger = Ledger::open(&dir.path().join("store"), chain.genesis.clone()).unwrap();
    let subject = Uscc::sample(1);
    let t = Instant::now();
    let ids = chain.fill_subject(&mut ledger, 1, subject, n, 1_000, 1).unwrap();
    let generate = t.elapsed();
    // A few revocations spread over the record, and a small subject beside it.
    let revs: Vec<_> = (0..4u64).map(|k| chain.revocation(0, 1 + k, ids[(k * n / 4) as usize], RevocationReason::Repair)).collect();
    chain.commit_next(&mut ledger, revs).unwrap();
    chain.fill_subject(&mut ledger, 1, Uscc::sample(2), 3, 3, n + 1).unwrap();
    eprintln!("generated {n} records of {subject} in {:.1} s", generate.as_secs_f64());

    // Appending one record to the big subject, and to the small one (one block each).
    let mut append = |s: Uscc, seq: u64| {
        let tx = chain.attestation(1, seq, s, AttestationKind::RedList);
        let t = Instant::now();
        chain.commit_next(&mut ledger, vec![tx]).unwrap();
        t.elapsed()
    };
    let mut big_ms = Vec::new();
    let mut small_ms = Vec::new();
    for k in 0..5 {
        big_ms.push(ms(append(subject, n + 10 + 2 * k)));
        small_ms.push(ms(append(Uscc::sample(2), n + 11 + 2 * k)));
    }
    big_ms.sort_by(f64::total_cmp);
    small_ms.sort_by(f64::total_cmp);
    eprintln!(
        "append one record (block of one tx, build + commit + fsync), median of 5: big subject ({} records) {:.2} ms, small subject {:.2} ms",
        n + 5,
        big_ms[2],
        small_ms[2]
    );
    let count = n + 5;

    let server = Server::start(ledger, &chain);
    let path = |from: u64, limit: u64| format!("/v1/proofs/subjects/{}?from={from}&limit={limit}", subject.as_str());

    // The cap and the end of the record: 400 with the error shape.
    for (p, want) in [
        (path(0, proof::MAX_REPORT_PAGE_ENTRIES + 1), "limit"),
        (path(0, 0), "limit"),
        (path(count, 10), "would be empty"),
        (format!("/v1/proofs/subjects/{}?from=x", subject.as_str()), ""),
        (format!("/v1/proofs/subjects/{}?page=2", subject.as_str()), ""),
    ] {
        let (status, body) = server.get(&p);
        assert_eq!(status, 400, "{p}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert!(v["error"].as_str().unwrap().contains(want) && v["code"].is_string() && v.as_object().unwrap().len() == 2, "{p}: {v}");
    }
    // Without from/limit: the first 256 records, a proven range.
    let (status, body) = server.get(&format!("/v1/proofs/subjects/{}", subject.as_str()));
    assert_eq!(status, 200, "{body}");
    let first: Report = serde_json::from_str(&body).unwrap();
    let v = proof::verify_report(&chain.genesis, &first, NOW).unwrap();
    assert_eq!((v.from, v.to, v.count, v.complete), (0, 256, count, false));

    let limit = proof::MAX_REPORT_PAGE_ENTRIES;
    // One page: bytes, fetch time, verify time.
    let mut fetch_one = Vec::new();
    let mut body_one = String::new();
    for _ in 0..5 {
        let t = Instant::now();
        let (status, body) = server.get(&path(count / 2, limit));
        fetch_one.push(ms(t.elapsed()));
        assert_eq!(status, 200);
        body_one = body;
    }
    fetch_one.sort_by(f64::total_cmp);
    let page: Report = serde_json::from_str(&body_one).unwrap();
    let mut verify_one = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let v = proof::parse_file(body_one.as_bytes()).and_then(|f| proof::verify_file(&chain.genesis, &f, NOW)).unwrap();
        verify_one.push(ms(t.elapsed()));
        let proof::AnyVerdict::Report(v) = v else { panic!("not a report verdict") };
        assert_eq!((v.from, v.count, v.complete), (count / 2, count, false));
        assert_eq!(v.attestations.len() as u64, limit.min(count - count / 2));
    }
    verify_one.sort_by(f64::total_cmp);
    drop(page);
    eprintln!(
        "one page of {limit} records: {} bytes (compact JSON), fetch median {:.1} ms, verify median {:.1} ms",
        body_one.len(),
        fetch_one[2],
        verify_one[2]
    );

    // Every page: total bytes, fetch time, then all verified together.
    let t = Instant::now();
    let mut pages = Vec::new();
    let mut bytes = 0usize;
    let mut from = 0;
    while from < count {
        let (status, body) = server.get(&path(from, limit));
        assert_eq!(status, 200, "page from {from}: {body}");
        bytes += body.len();
        pages.push(proof::parse_file(body.as_bytes()).unwrap());
        from += limit;
    }
    let fetch_all = t.elapsed();
    let reports: Vec<Report> = pages
        .into_iter()
        .map(|p| match p {
            proof::ProofFile::Report(r) => r,
            _ => panic!("not a report"),
        })
        .collect();
    let t = Instant::now();
    let all = proof::verify_report_pages(&chain.genesis, &reports, NOW).unwrap();
    let verify_all = t.elapsed();
    assert!(all.complete && all.count == count && all.attestations.len() as u64 == count);
    assert_eq!(all.attestations.iter().filter(|a| a.status.name() == "revoked").count(), 4);
    assert_eq!(all.attestations[..n as usize].iter().map(|a| a.id).collect::<Vec<_>>(), ids);
    eprintln!(
        "all {} pages ({count} records): {bytes} bytes, fetched one after another in {:.2} s, verified together in {:.2} s",
        reports.len(),
        fetch_all.as_secs_f64(),
        verify_all.as_secs_f64()
    );
    drop(server.shared.ledger.read().unwrap());
}
