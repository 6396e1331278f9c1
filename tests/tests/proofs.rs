//! Lenders' proofs and auditors' tools against a live four-validator testnet:
//! bundles and reports fetched over the API verify offline with `yrd verify`;
//! tampered files fail naming the check; revocations show up; audit trace,
//! consistency and verify-ledger work on real nodes' data.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use yrd_ledger::tx::{AttestationKind, RevocationReason, SignedTransaction};
use yrd_ledger::uscc::Uscc;
use yrd_tests::{yrd_bin, Cluster};

fn submit_final(c: &mut Cluster, node: usize, tx: &SignedTransaction) -> String {
    let (status, body) = c.submit(node, tx);
    assert_eq!(status, 202, "submit to {}: {body}", c.nodes[node].name);
    let id = body["id"].as_str().expect("id").to_string();
    c.wait_final(node, &id, 60);
    id
}

fn yrd(args: &[&str]) -> Output {
    Command::new(yrd_bin()).args(args).output().expect("run yrd")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn verify(file: &Path, genesis: &Path) -> Output {
    yrd(&["verify", file.to_str().unwrap(), "--genesis", genesis.to_str().unwrap()])
}

fn write(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

#[test]
fn lenders_and_auditors_check_a_live_chain_offline() {
    // Every kind public: this test is about proof files in full (redacted ones,
    // for callers who may not read every record, are tested in tests/lender.rs,
    // node/tests/access.rs and cli/tests/verify_redacted.rs).
    let params = yrd_ledger::genesis::ChainParams { restricted_kinds: vec![], ..Default::default() };
    let mut c = Cluster::prepare_with(yrd_ledger::testkit::TestChain::with_params(4, 4, params), &[]);
    for i in 0..4 {
        c.start_node(i);
    }
    for i in 0..4 {
        c.wait_height(i, 1, 60);
    }
    let genesis = c.genesis_path.clone();
    let g = genesis.to_str().unwrap().to_string();
    let dir = c.path().to_path_buf();
    let (s1, s2) = (Uscc::sample(501), Uscc::sample(502));
    let tx = c.chain.attestation(0, 1, s1, AttestationKind::RedList);
    let a = submit_final(&mut c, 0, &tx);
    let tx = c.chain.attestation(1, 1, s1, AttestationKind::TaxCredit);
    let b = submit_final(&mut c, 1, &tx);
    let tx = c.chain.revocation(1, 2, yrd_ledger::tx::TxId::from_hex(&b).unwrap(), RevocationReason::Repair);
    let rev = submit_final(&mut c, 2, &tx);
    let tx = c.chain.attestation(2, 1, s2, AttestationKind::CreditRating);
    submit_final(&mut c, 3, &tx);

    // Bundle of an active attestation, fetched by the CLI from node 0, verified offline.
    let bundle_a = dir.join("bundle-a.json");
    let o = yrd(&["proof", "--node", &c.nodes[0].api, &a, "--out", bundle_a.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let o = verify(&bundle_a, &genesis);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("VERIFIED") && out.contains("ACTIVE") && out.contains("shanghai-credit (SH, Shanghai 上海)"), "{out}");
    assert!(out.contains(s1.as_str()) && out.contains("red-list") && out.contains("signed by"), "{out}");

    // The revoked one, from another node (stdout redirect form): revoked, by which record.
    let o = yrd(&["proof", "--node", &c.nodes[2].api, &b]);
    assert!(o.status.success(), "{}", text(&o));
    let bundle_b = dir.join("bundle-b.json");
    std::fs::write(&bundle_b, &o.stdout).unwrap();
    let o = verify(&bundle_b, &genesis);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    eprintln!("--- yrd verify bundle-b.json ---\n{out}");
    assert!(out.contains("REVOKED (repair)") && out.contains(&rev) && out.contains("jiangsu-credit"), "{out}");
    let o = yrd(&["verify", bundle_b.to_str().unwrap(), "--genesis", &g, "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verified"], true);
    assert_eq!(v["verdict"]["attestation"]["status"]["state"], "revoked");
    assert_eq!(v["verdict"]["attestation"]["status"]["by"], rev.as_str());

    // A tampered bundle fails, naming the check; exit status 1.
    let original: Value = serde_json::from_slice(&std::fs::read(&bundle_a).unwrap()).unwrap();
    let flip = |v: &Value, pointer: &str, at: usize| {
        let mut t = v.clone();
        let s = t.pointer(pointer).unwrap().as_str().unwrap().to_string();
        let mut bytes = hex::decode(&s).unwrap();
        let n = bytes.len();
        bytes[at % n] ^= 1;
        *t.pointer_mut(pointer).unwrap() = Value::String(hex::encode(bytes));
        t
    };
    for (pointer, at, check) in [
        ("/attestation/tx", 200, "issuer-signature"),
        ("/anchor/header", 60, "certificate"),
        ("/anchor/certificate", 100, "certificate"),
        ("/attestation/inclusion/0", 3, "log-inclusion"),
        ("/subject/record", 30, "subject-map"),
    ] {
        let tampered = dir.join("tampered.json");
        write(&tampered, &flip(&original, pointer, at));
        let o = verify(&tampered, &genesis);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(1), "{pointer}: {out}");
        eprintln!("--- yrd verify tampered.json ({pointer}) ---\n{out}");
        assert!(out.contains(&format!("the {check} check failed")), "{pointer}: {out}");
    }
    // Every byte of every hex field of the bundles and the report served by the
    // live node, flipped one at a time, fails verification naming a check that
    // belongs to that field (library verifier, same code as `yrd verify`).
    let b_json: Value = serde_json::from_slice(&std::fs::read(&bundle_b).unwrap()).unwrap();
    let (_, r_json) = c.get(0, &format!("/v1/proofs/subjects/{}", s1.as_str())).unwrap();
    let mut flipped = 0;
    for file in [&original, &b_json, &r_json] {
        flipped += flip_every_byte(&c.chain.genesis, file, "", &String::new());
    }
    assert!(flipped > 3000, "{flipped}");

    // Forged certificates on the live bundle: unknown keys, too few signers,
    // signatures over another block.
    let header = hex::decode(original["anchor"]["header"].as_str().unwrap()).unwrap();
    let header: yrd_ledger::block::BlockHeader = yrd_consensus::codec::decode(&header, 1024, "header").unwrap();
    let hash = header.hash().unwrap();
    let sign = |keys: &[(u32, yrd_consensus::crypto::SecretKey)], block: yrd_consensus::crypto::Hash32| {
        let signatures = keys
            .iter()
            .map(|(i, k)| {
                let vote = yrd_consensus::Vote {
                    chain: c.chain.chain,
                    kind: yrd_consensus::VoteKind::Precommit,
                    height: header.height,
                    round: header.round,
                    value: Some(block),
                    validator: yrd_consensus::ValidatorIndex(*i),
                };
                (yrd_consensus::ValidatorIndex(*i), vote.sign(k).unwrap().signature)
            })
            .collect();
        yrd_consensus::CommitCertificate { height: header.height, round: header.round, block_hash: hash, signatures }
    };
    let stranger = |i: u32| (i, yrd_consensus::crypto::SecretKey::from_seed(format!("forger-{i}").as_bytes()));
    let real = |i: u32| (i, c.chain.validator_keys[i as usize].clone());
    for (name, cert) in [
        ("unknown keys", sign(&[stranger(0), stranger(1), stranger(2)], hash)),
        ("too few signers", sign(&[real(0), real(1)], hash)),
        ("signatures over another block", sign(&[real(0), real(1), real(2)], yrd_consensus::crypto::sha256(&[b"another block"]))),
    ] {
        let mut forged = original.clone();
        forged["anchor"]["certificate"] = Value::String(hex::encode(yrd_consensus::codec::encode(&cert).unwrap()));
        let path = dir.join("forged.json");
        write(&path, &forged);
        let o = verify(&path, &genesis);
        assert_eq!(o.status.code(), Some(1), "{name}: {}", text(&o));
        assert!(text(&o).contains("the certificate check failed"), "{name}: {}", text(&o));
    }
    // A quorum of the real keys re-signing verifies (the forgeries failed for their fault).
    let mut resigned = original.clone();
    let cert = sign(&[real(1), real(2), real(3)], hash);
    resigned["anchor"]["certificate"] = Value::String(hex::encode(yrd_consensus::codec::encode(&cert).unwrap()));
    write(&dir.join("resigned.json"), &resigned);
    assert_eq!(verify(&dir.join("resigned.json"), &genesis).status.code(), Some(0));

    // Hiding the revocation of b fails.
    let mut hidden: Value = serde_json::from_slice(&std::fs::read(&bundle_b).unwrap()).unwrap();
    hidden["revocation"] = Value::Null;
    let tampered = dir.join("hidden.json");
    write(&tampered, &hidden);
    let o = verify(&tampered, &genesis);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("the revocation check failed"), "{}", text(&o));

    // The subject report: both records, statuses, complete; leaving one out fails.
    let report = dir.join("report.json");
    let o = yrd(&["report", "--node", &c.nodes[1].api, "--subject", &s1.as_str().to_lowercase(), "--out", report.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let o = verify(&report, &genesis);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    eprintln!("--- yrd verify report.json ---\n{out}");
    assert!(out.contains("records      2 (1 active)") && out.contains(&a) && out.contains(&b), "{out}");
    let mut short: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    short["entries"].as_array_mut().unwrap().remove(0);
    write(&tampered, &short);
    let o = verify(&tampered, &genesis);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("the completeness check failed"), "{}", text(&o));

    // Paged: one page of one record is a proven range, not the complete record;
    // every page fetched into a directory (from two nodes' pages alike) proves it
    // complete; a page left out is a gap.
    let page = dir.join("page.json");
    let o = yrd(&["report", "--node", &c.nodes[2].api, "--subject", s1.as_str(), "--from", "1", "--limit", "1", "--out", page.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let o = verify(&page, &genesis);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("records 1..2 (positions from 1: 2 to 2) of exactly 2") && out.contains("a RANGE"), "{out}");
    let pages = dir.join("pages");
    let o = yrd(&["report", "--node", &c.nodes[0].api, "--subject", s1.as_str(), "--all", "--limit", "1", "--out", pages.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read_dir(&pages).unwrap().count(), 2);
    let o = verify(&pages, &genesis);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("the list is complete") && out.contains("records 0..2 of 2 (complete)") && out.contains(&a) && out.contains(&b), "{out}");
    std::fs::remove_file(pages.join("page-000000000000.json")).unwrap();
    std::fs::copy(&page, pages.join("page-000000000001.json")).unwrap();
    let o = verify(&pages, &genesis);
    assert_eq!(o.status.code(), Some(0), "one page is a range: {}", text(&o));
    assert!(text(&o).contains("a RANGE"), "{}", text(&o));
    let o = yrd(&["report", "--node", &c.nodes[0].api, "--subject", s1.as_str(), "--all", "--limit", "1", "--out", pages.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let first = pages.join("page-000000000000.json");
    std::fs::rename(&first, dir.join("page0.json")).unwrap();
    let o = yrd(&["verify", pages.join("page-000000000001.json").to_str().unwrap(), dir.join("page0.json").to_str().unwrap(), "--genesis", &g]);
    assert_eq!(o.status.code(), Some(1), "pages out of order: {}", text(&o));
    assert!(text(&o).contains("the completeness check failed"), "{}", text(&o));

    // A USCC with no records: a valid proof of absence.
    let absent = dir.join("absent.json");
    let o = yrd(&["report", "--node", &c.nodes[3].api, "--subject", Uscc::sample(9_999).as_str(), "--out", absent.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let o = verify(&absent, &genesis);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("records      none"), "{}", text(&o));

    // The API refuses a bundle for a revocation id, and unknown ids.
    let (status, body) = c.get(0, &format!("/v1/proofs/attestations/{rev}")).unwrap();
    assert_eq!((status, body["code"].as_str()), (400, Some("not_attestation")), "{body}");
    let (status, _) = c.get(0, &format!("/v1/proofs/attestations/{}", "ab".repeat(32))).unwrap();
    assert_eq!(status, 404);

    // Audit trace: committed block, signers, the revocation in its block.
    let o = yrd(&["audit", "trace", "--node", &c.nodes[0].api, &b, "--genesis", &g]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("committed in") && out.contains("revoked in") && out.contains("REVOKED"), "{out}");
    let trace = dir.join("trace.json");
    let o = yrd(&["audit", "trace", "--node", &c.nodes[0].api, &b, "--save", trace.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(verify(&trace, &genesis).status.code(), Some(0));

    // Consistency: the log at the tip extends the log at height 1.
    let tip = c.height(0).unwrap();
    let o = yrd(&["audit", "consistency", "--node", &c.nodes[0].api, "--from", "1", "--to", &tip.to_string(), "--genesis", &g]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("extends the log at block 1"), "{out}");

    // verify-ledger: refused while the node runs (sled lock), passes once stopped,
    // with or without the genesis file.
    let data = c.nodes[3].data_dir.to_str().unwrap().to_string();
    let o = yrd(&["audit", "verify-ledger", "--data", &data, "--genesis", &g]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("stop the node first"), "{}", text(&o));
    c.stop(3);
    let o = yrd(&["audit", "verify-ledger", "--data", &data, "--genesis", &g]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("CONSISTENT"), "{out}");
    let o = yrd(&["audit", "verify-ledger", "--data", &data]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("internal consistency only"), "{}", text(&o));

    // A byte changed in a copy of the node's sled files is found (exit 1).
    let copy = dir.join("copy");
    yrd_ledger::testkit::copy_dir(&c.nodes[3].data_dir, &copy).unwrap();
    let db = copy.join("ledger").join("db");
    let mut bytes = std::fs::read(&db).unwrap();
    let used = bytes.iter().rposition(|b| *b != 0).unwrap();
    // A byte inside the newest data (the last block's records).
    let at = used - 40;
    bytes[at] ^= 0x10;
    std::fs::write(&db, bytes).unwrap();
    let o = yrd(&["audit", "verify-ledger", "--data", copy.to_str().unwrap(), "--genesis", &g]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "flip at {at}: {out}");
    assert!(out.contains("INCONSISTENT"), "{out}");
}

/// Flips every byte of every hex string under `v` (one at a time) and checks the
/// failed check fits the field. Returns the number of flips.
fn flip_every_byte(genesis: &yrd_ledger::genesis::Genesis, root: &Value, pointer: &str, path: &String) -> usize {
    use yrd_ledger::proof::{self, Check};
    let here = root.pointer(pointer).unwrap().clone();
    match here {
        Value::Object(m) => m.keys().map(|k| flip_every_byte(genesis, root, &format!("{pointer}/{k}"), &format!("{path}.{k}"))).sum(),
        Value::Array(a) => (0..a.len()).map(|i| flip_every_byte(genesis, root, &format!("{pointer}/{i}"), path)).sum(),
        Value::String(s) if !path.ends_with(".type") && path != ".subject" => {
            let bytes = hex::decode(&s).unwrap();
            let allowed: &[Check] = if path.contains("revocation") {
                &[Check::Decode, Check::Revocation]
            } else if path.ends_with("header") {
                &[Check::Decode, Check::Chain, Check::Certificate]
            } else if path.ends_with("certificate") {
                &[Check::Decode, Check::Certificate]
            } else if path.ends_with("attestation.tx") {
                &[Check::Decode, Check::Transaction, Check::IssuerSignature]
            } else if path.contains("inclusion") {
                &[Check::LogInclusion]
            } else {
                &[Check::Decode, Check::SubjectMap]
            };
            for i in 0..bytes.len() {
                let mut t = bytes.clone();
                t[i] ^= 0x04;
                let mut v = root.clone();
                *v.pointer_mut(pointer).unwrap() = Value::String(hex::encode(t));
                let r = proof::parse_file(v.to_string().as_bytes()).and_then(|f| proof::verify_file(genesis, &f, 0));
                let check = r.expect_err(&format!("{path} byte {i} flipped verified")).check;
                assert!(allowed.contains(&check), "{path} byte {i}: {check:?}, expected one of {allowed:?}");
            }
            bytes.len()
        }
        _ => 0,
    }
}
