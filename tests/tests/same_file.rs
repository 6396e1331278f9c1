//! Same block, same file (issue 14): every node stores and serves the
//! canonical certificate of each block (ledger/src/canonical_cert.rs), so the
//! same proof file fetched from any of the four validators is byte-identical —
//! lenders archive and compare files by hash.

use std::time::{Duration, Instant};

use serde_json::Value;
use yrd_ledger::tx::AttestationKind;
use yrd_ledger::uscc::Uscc;
use yrd_tests::Cluster;

/// The raw body of `GET path` on node `i` (not re-serialised: bytes as served).
fn raw(c: &Cluster, i: usize, path: &str) -> String {
    let url = format!("{}{}", c.nodes[i].api, path);
    let mut resp = ureq::get(&url).call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(resp.status().as_u16(), 200, "GET {url}");
    resp.body_mut().with_config().limit(64 << 20).read_to_string().expect("body")
}

fn anchor_height(file: &str) -> u64 {
    let v: Value = serde_json::from_str(file).expect("JSON");
    let header = hex::decode(v["anchor"]["header"].as_str().expect("anchor.header")).expect("hex");
    u64::from_be_bytes(header[32..40].try_into().unwrap()) // after the 32-byte chain id
}

#[test]
fn every_node_serves_the_same_file_for_the_same_block() {
    let mut c = Cluster::start(4);
    for i in 0..4 {
        c.wait_height(i, 1, 60);
    }
    let s = Uscc::sample(601);
    let mut ids = Vec::new();
    for (k, node) in [(1u64, 0usize), (2, 1), (3, 2)] {
        let tx = c.chain.attestation(0, k, s, AttestationKind::RedList);
        let (status, body) = c.submit(node, &tx);
        assert_eq!(status, 202, "{body}");
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    for i in 0..4 {
        for id in &ids {
            c.wait_final(i, id, 60);
        }
    }
    let tip = (0..4).filter_map(|i| c.height(i)).min().unwrap();
    for i in 0..4 {
        c.wait_height(i, tip + 3, 60);
    }

    // Files anchored at fixed heights below the tip: exactly the same bytes.
    let path = format!("/v1/proofs/consistency?from=1&to={tip}");
    let first = raw(&c, 0, &path);
    for i in 1..4 {
        assert_eq!(raw(&c, i, &path), first, "node {} serves another consistency file for blocks 1..{tip}", c.nodes[i].name);
    }

    // Reports and bundles are anchored at the latest block (one a second): ask
    // the four nodes until one round of answers lands on one anchor, three times.
    // A round fetched within milliseconds of a commit may reach a node before
    // the last precommits of that block: one such round is tolerated, no more.
    let report = format!("/v1/proofs/subjects/{s}");
    let bundle = format!("/v1/proofs/attestations/{}", ids[0]);
    let deadline = Instant::now() + Duration::from_secs(90);
    let (mut same, mut differ) = (0, Vec::new());
    while same < 3 {
        assert!(Instant::now() < deadline, "only {same} rounds on one anchor before the deadline; differing: {differ:?}");
        for path in [&report, &bundle] {
            let files: Vec<String> = (0..4).map(|i| raw(&c, i, path)).collect();
            let heights: Vec<u64> = files.iter().map(|f| anchor_height(f)).collect();
            if heights.iter().any(|h| *h != heights[0]) {
                continue;
            }
            if files.iter().all(|f| f == &files[0]) {
                same += 1;
            } else {
                let by: Vec<usize> = (1..4).filter(|i| files[*i] != files[0]).collect();
                differ.push((path.clone(), heights[0], by));
                assert!(differ.len() <= 1, "the same file differs between nodes: {differ:?}");
            }
        }
    }
}
