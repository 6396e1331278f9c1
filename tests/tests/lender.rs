//! The lender walk-through on four real validators (docs/access.md, README): a
//! lender records an enterprise's authorisation with `yrd lender authorise`, then
//! reads the enterprise's restricted records with `yrd query|report --key` on every
//! node; anonymous and other readers see only public records and redacted
//! commitments (in listings and in a subject report that verifies offline); after `yrd lender withdraw` the lender is refused again.

use std::process::{Command, Output};

use yrd_ledger::tx::AttestationKind;
use yrd_ledger::uscc::Uscc;
use yrd_tests::{yrd_bin, Cluster};

fn yrd(args: &[&str]) -> Output {
    Command::new(yrd_bin()).args(args).output().expect("run yrd")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn a_lender_reads_restricted_records_only_while_authorised_on_every_node() {
    let mut c = Cluster::start(4);
    for i in 0..4 {
        c.wait_height(i, 1, 60);
    }
    let dir = c.path().to_path_buf();
    let bank_key = dir.join("bank-0.key");
    yrd_node::keys::write_key_file(&bank_key, &c.chain.lender_keys[0]).unwrap();
    let other_key = dir.join("bank-1.key");
    yrd_node::keys::write_key_file(&other_key, &c.chain.lender_keys[1]).unwrap();
    let (bank, other) = (bank_key.to_str().unwrap(), other_key.to_str().unwrap());
    let subject = Uscc::sample(601);
    let s = subject.as_str();

    let rating = c.chain.attestation(0, 1, subject, AttestationKind::CreditRating);
    let penalty = c.chain.attestation(1, 1, subject, AttestationKind::AdministrativePenalty);
    for tx in [&rating, &penalty] {
        let (status, body) = c.submit(0, tx);
        assert_eq!(status, 202, "{body}");
    }
    let rating_id = rating.id().unwrap().to_hex();
    let penalty_id = penalty.id().unwrap().to_hex();
    c.wait_final(0, &rating_id, 60);
    c.wait_final(0, &penalty_id, 60);

    // Before any authorisation: the lender is refused, anonymous readers see the
    // penalty and only a commitment of the rating.
    let o = yrd(&["query", "--node", &c.nodes[1].api, "--subject", s, "--key", bank]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("no_authorisation"), "{}", text(&o));
    let o = yrd(&["query", "--node", &c.nodes[1].api, "--subject", s, "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains(&penalty_id) && !text(&o).contains(&rating_id), "{}", text(&o));
    // ...and an anonymous subject report: the penalty in full, the rating as its
    // commitment only; it verifies offline and still proves the list complete.
    let anon = dir.join("report-anonymous.json");
    let o = yrd(&["report", "--node", &c.nodes[1].api, "--subject", s, "--out", anon.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let file = std::fs::read_to_string(&anon).unwrap();
    assert!(!file.contains(&rating_id) && !file.contains(&rating.encode().map(hex::encode).unwrap()), "{file}");
    let o = yrd(&["verify", anon.to_str().unwrap(), "--genesis", c.genesis_path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("records      2: 1 shown (1 active), 1 redacted") && text(&o).contains(&penalty_id), "{}", text(&o));

    // The lender records the enterprise's consent.
    let consent = dir.join("consent.pdf");
    std::fs::write(&consent, b"signed consent of the enterprise").unwrap();
    let until = (yrd_node::shared::now_ms() + 30 * 24 * 3600 * 1000).to_string();
    let node0 = c.nodes[0].api.clone();
    let o = yrd(&[
        "lender", "authorise", "--node", &node0, "--key", bank, "--subject", s, "--purpose", "loan-application",
        "--consent", consent.to_str().unwrap(), "--until", &until, "--wait",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let auth_id = String::from_utf8_lossy(&o.stdout).split_whitespace().find(|w| w.len() == 64).expect("authorisation id").to_string();

    // Every node serves the lender the rating, and a report it can verify offline.
    for i in 0..4 {
        c.wait_height(i, c.height(0).unwrap(), 60);
        let o = yrd(&["query", "--node", &c.nodes[i].api, "--subject", s, "--key", bank, "--json"]);
        assert!(o.status.success(), "node {i}: {}", text(&o));
        assert!(text(&o).contains(&rating_id), "node {i}: {}", text(&o));
        let report = dir.join(format!("report-{i}.json"));
        let o = yrd(&["report", "--node", &c.nodes[i].api, "--subject", s, "--key", bank, "--out", report.to_str().unwrap()]);
        assert!(o.status.success(), "node {i}: {}", text(&o));
        let o = yrd(&["verify", report.to_str().unwrap(), "--genesis", c.genesis_path.to_str().unwrap()]);
        assert!(o.status.success(), "node {i}: {}", text(&o));
        // Another lender still is refused; anonymous still sees only the commitment.
        let o = yrd(&["query", "--node", &c.nodes[i].api, "--subject", s, "--key", other]);
        assert!(!o.status.success() && text(&o).contains("no_authorisation"), "node {i}: {}", text(&o));
        let (status, body) = c.get(i, &format!("/v1/attestations/{rating_id}")).unwrap();
        assert_eq!(status, 403, "node {i}: {body}");
    }

    // A signed request is good at one node only: the same request, taken to the
    // other nodes (each has its own replay cache), is refused there — served and
    // recorded once, by the node it was signed for.
    let path = format!("/v1/subjects/{s}/attestations");
    let node0_key = c.nodes[0].key;
    let request = yrd_ledger::queries::SignedRequest::sign(
        &c.chain.lender_keys[0], &c.chain.chain, &node0_key, "GET", &path, b"",
        yrd_node::shared::now_ms(), yrd_ledger::queries::Nonce::random(),
    )
    .unwrap();
    let headers = request.headers(&node0_key);
    for i in 1..4 {
        let (status, body) = c.get_with_headers(i, &path, &headers).expect("node answers");
        assert_eq!((status, body["code"].as_str()), (401, Some("wrong_node")), "node {i}: {body}");
    }
    let (status, body) = c.get_with_headers(0, &path, &headers).expect("node answers");
    assert_eq!(status, 200, "{body}");
    assert!(body.to_string().contains(&rating_id), "{body}");
    let (status, body) = c.get_with_headers(0, &path, &headers).expect("node answers");
    assert_eq!((status, body["code"].as_str()), (401, Some("replayed_request")), "{body}");

    // Every authorised read (a query and a report on each node, and the one
    // request above on node 0) is recorded on
    // chain by the node that served it, and `yrd audit queries` lists all of them,
    // proofs checked offline, on every node — to an agency, and to the lender for
    // its own; the other lender has none.
    let admin = dir.join("agency-2.key");
    yrd_node::keys::write_key_file(&admin, &c.chain.agency_keys[2]).unwrap();
    let genesis = c.genesis_path.to_str().unwrap().to_string();
    let names: Vec<String> = c.chain.genesis.validators.iter().map(|v| v.name.clone()).collect();
    let audit = |i: usize, key: &str| -> Vec<serde_json::Value> {
        let o = yrd(&["audit", "queries", "--node", &c.nodes[i].api, "--subject", s, "--key", key, "--genesis", &genesis, "--json"]);
        assert!(o.status.success(), "node {i}: {}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("node {i}: {e}: {}", text(&o)));
        assert_eq!(v["verified"], true, "node {i}: {v}");
        v["verdict"]["queries"].as_array().cloned().unwrap_or_default()
    };
    for i in 0..4 {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let queries = audit(i, admin.to_str().unwrap());
            let by_node =
                |n: &str| queries.iter().filter(|q| q["node"] == n && q["lender"] == "bank-0" && q["authorisation"] == auth_id.as_str()).count();
            let expected = |n: &String| if n == &names[0] { 3 } else { 2 };
            if names.iter().all(|n| by_node(n) == expected(n)) {
                assert_eq!(queries.len(), 9, "node {i}: {queries:?}");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "node {i}: not every authorised read is recorded after 60 s: {queries:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        assert_eq!(audit(i, bank).len(), 9, "node {i}: the lender lists its own queries");
        assert!(audit(i, other).is_empty(), "node {i}: the other lender made no query");
    }

    // The enterprise withdraws its consent through its agency.
    let o = yrd(&["lender", "withdraw", "--node", &node0, "--key", admin.to_str().unwrap(), "--id", &auth_id, "--wait"]);
    assert!(o.status.success(), "{}", text(&o));
    let h = c.height(0).unwrap();
    for i in 0..4 {
        c.wait_height(i, h, 60);
        let o = yrd(&["query", "--node", &c.nodes[i].api, "--subject", s, "--key", bank]);
        assert!(!o.status.success(), "node {i}: {}", text(&o));
        assert!(text(&o).contains("authorisation_withdrawn"), "node {i}: {}", text(&o));
    }
}
