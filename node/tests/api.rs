//! The HTTP API against docs/api.md: a real server on 127.0.0.1:0 over an
//! in-process `Shared` (temp-dir ledger, small mempool), driven by a blocking
//! HTTP client. Blocks are committed straight into the ledger.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use yrd_consensus::crypto::Hash32;
use yrd_consensus::types::Round;
use yrd_ledger::block::Block;
use yrd_ledger::testkit::TestChain;
use yrd_ledger::tx::{
    Attestation, AttestationKind, Grade, RevocationReason, Severity, SignedTransaction, Transaction, TxBody,
};
use yrd_ledger::uscc::Uscc;
use yrd_node::api;
use yrd_node::mempool::Mempool;
use yrd_node::shared::Shared;

/// A served API over a fresh chain.
struct Harness {
    base: String,
    shared: Arc<Shared>,
    chain: TestChain,
    agent: ureq::Agent,
    served: common::Served,
}

impl Harness {
    fn new(mempool_capacity: usize) -> Harness {
        // Every kind public: these tests pin the API's shapes; who may read
        // restricted kinds is tested in tests/access.rs.
        let params = yrd_ledger::genesis::ChainParams { restricted_kinds: vec![], ..Default::default() };
        let chain = TestChain::with_params(4, 2, params);
        let peers = vec![chain.validator_keys[1].public(), chain.validator_keys[2].public()];
        let served =
            common::serve(&chain, common::Options { mempool: Mempool::new(mempool_capacity), peers, ..Default::default() });
        Harness { base: served.base.clone(), shared: served.shared.clone(), chain, agent: common::agent(), served }
    }

    fn answer(resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, Value) {
        let mut resp = resp.unwrap();
        let status = resp.status().as_u16();
        let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        let text = resp.body_mut().with_config().limit(64 << 20).read_to_string().unwrap();
        assert!(ct.starts_with("application/json"), "{status}: content-type {ct:?}, body {text}");
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {text}"));
        if status >= 300 {
            assert!(v["error"].is_string() && v["code"].is_string(), "error shape: {v}");
            assert_eq!(v.as_object().unwrap().len(), 2, "error body has exactly error and code: {v}");
        }
        (status, v)
    }

    fn get(&self, path: &str) -> (u16, Value) {
        Self::answer(self.agent.get(format!("{}{path}", self.base)).call())
    }

    fn post_raw(&self, path: &str, body: impl Into<Vec<u8>>) -> (u16, Value) {
        Self::answer(
            self.agent.post(format!("{}{path}", self.base)).header("content-type", "application/json").send(&body.into()[..]),
        )
    }

    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_raw(path, serde_json::to_vec(body).unwrap())
    }

    fn submit(&self, tx: &SignedTransaction) -> (u16, Value) {
        self.post("/v1/transactions", &json!({ "tx": hex::encode(tx.encode().unwrap()) }))
    }

    /// Commits `txs` as the next block (as the driver would) and publishes the height.
    fn commit(&self, txs: Vec<SignedTransaction>) -> Block {
        let ids: Vec<_> = txs.iter().map(|t| t.id().unwrap()).collect();
        let block = {
            let mut ledger = self.shared.ledger.write().unwrap();
            let h = ledger.height().next();
            let proposer = ledger.validators_at(h).unwrap().proposer(h, Round(0));
            let built = ledger.build_block(txs, proposer, Round(0), 1_800_000_000_000 + h.0).unwrap();
            assert!(built.rejected.is_empty(), "rejected: {:?}", built.rejected);
            let cert = self.chain.certify(&built.block.header);
            ledger.commit(&built.block, &cert).unwrap();
            built.block
        };
        self.shared.forget_committed(&ids);
        self.shared.committed.send_replace(block.header.height);
        block
    }

    fn gossiped(&self) -> Vec<SignedTransaction> {
        let mut rx = self.served.gossip.lock().unwrap();
        let mut out = Vec::new();
        while let Ok(batch) = rx.try_recv() {
            out.extend(batch.iter().map(|b| SignedTransaction::decode(b).unwrap()));
        }
        out
    }

    fn shutdown(&mut self) {
        self.served.shutdown();
    }
}

fn att(h: &Harness, issuer: usize, seq: u64, subject: u64, kind: AttestationKind) -> SignedTransaction {
    h.chain.attestation(issuer, seq, Uscc::sample(subject), kind)
}

fn hex_of(tx: &SignedTransaction) -> String {
    hex::encode(tx.encode().unwrap())
}

// ---------------------------------------------------------------------------
// Submission
// ---------------------------------------------------------------------------

#[test]
fn submit_valid_is_accepted_and_resubmission_is_still_pending() {
    let h = Harness::new(100);
    let tx = att(&h, 0, 1, 1, AttestationKind::RedList);
    let id = tx.id().unwrap().to_hex();
    let (status, v) = h.submit(&tx);
    assert_eq!(status, 202, "{v}");
    assert_eq!(v, json!({"id": id, "status": "pending"}));
    let (status, v) = h.submit(&tx);
    assert_eq!(status, 202, "{v}");
    assert_eq!(v, json!({"id": id, "status": "pending"}));
    assert_eq!(h.gossiped(), vec![tx], "gossiped once, not again when already pending");
    // Pending transactions: id and status only.
    let (status, v) = h.get(&format!("/v1/attestations/{id}"));
    assert_eq!(status, 200);
    assert_eq!(v, json!({"id": id, "status": "pending"}));
}

#[test]
fn malformed_input_gets_400_with_the_reason() {
    let h = Harness::new(100);
    let (status, v) = h.post("/v1/transactions", &json!({"tx": "zz12"}));
    assert_eq!((status, v["code"].as_str().unwrap()), (400, "bad_hex"), "{v}");
    assert!(v["error"].as_str().unwrap().contains("hex"), "{v}");

    let (status, v) = h.post("/v1/transactions", &json!({"tx": "abc"}));
    assert_eq!((status, v["code"].as_str().unwrap()), (400, "bad_hex"), "odd length: {v}");

    let (status, v) = h.post_raw("/v1/transactions", "{\"tx\": ");
    assert_eq!((status, v["code"].as_str().unwrap()), (400, "bad_json"), "{v}");
    assert!(v["error"].as_str().unwrap().contains("JSON"), "{v}");

    let (status, v) = h.post("/v1/transactions", &json!({"transaction": "00"}));
    assert_eq!((status, v["code"].as_str().unwrap()), (400, "bad_json"), "{v}");
    assert!(v["error"].as_str().unwrap().contains("missing field `tx`"), "{v}");

    // Invalid UTF-8 in the string of an ignored key: serde_json would skip it
    // unread; the body is refused as the batch body is (RFC 8259 §8.1).
    let (status, v) = h.post_raw("/v1/transactions", b"{\"note\": \"\xc7x\", \"tx\": \"00010203\"}".to_vec());
    assert_eq!((status, v["code"].as_str().unwrap()), (400, "bad_json"), "{v}");
    assert!(v["error"].as_str().unwrap().contains("not UTF-8 (byte 10"), "{v}");

    // Valid hex, not a transaction.
    let (status, v) = h.post("/v1/transactions", &json!({"tx": "00010203"}));
    assert_eq!((status, v["code"].as_str().unwrap()), (400, "decode"), "{v}");

    // Too long for any transaction.
    let (status, v) = h.post("/v1/transactions", &json!({"tx": "00".repeat(4097)}));
    assert_eq!((status, v["code"].as_str().unwrap()), (400, "too_large"), "{v}");

    // A structurally invalid attestation (credit rating without a grade).
    let mut a = Attestation {
        subject: Uscc::sample(1),
        kind: AttestationKind::CreditRating,
        grade: None,
        severity: None,
        evidence: Hash32([1; 32]),
        issued_at_ms: 1,
        valid_from_ms: 1,
        valid_until_ms: None,
        fields: vec![],
    };
    let tx = h.chain.sign(0, 1, TxBody::Attest(a.clone()));
    let (status, v) = h.submit(&tx);
    assert_eq!((status, v["code"].as_str().unwrap()), (400, "format"), "{v}");
    assert!(v["error"].as_str().unwrap().contains("need a grade"), "{v}");
    a.grade = Some(Grade::B);
    a.severity = Some(Severity::Minor);
    let (status, v) = h.submit(&h.chain.sign(0, 1, TxBody::Attest(a)));
    assert_eq!((status, v["code"].as_str().unwrap()), (400, "format"), "{v}");
    assert!(h.gossiped().is_empty());
    assert_eq!(h.shared.mempool.lock().unwrap().len(), 0);
}

#[test]
fn bad_signature_and_wrong_chain_are_rejected() {
    let h = Harness::new(100);
    let mut tx = att(&h, 0, 1, 1, AttestationKind::RedList);
    tx.signature.0[5] ^= 1;
    let (status, v) = h.submit(&tx);
    assert_eq!((status, v["code"].as_str().unwrap()), (400, "bad_signature"), "{v}");
    assert!(v["error"].as_str().unwrap().contains("signature"), "{v}");

    let other = Transaction {
        chain: Hash32([7; 32]),
        issuer: h.chain.issuer_keys[0].public(),
        sequence: 1,
        body: att(&h, 0, 1, 1, AttestationKind::RedList).tx.body,
    }
    .sign(&h.chain.issuer_keys[0])
    .unwrap();
    let (status, v) = h.submit(&other);
    assert_eq!((status, v["code"].as_str().unwrap()), (400, "wrong_chain"), "{v}");
    assert!(v["error"].as_str().unwrap().contains("chain"), "{v}");
}

#[test]
fn replays_and_sequence_conflicts() {
    let h = Harness::new(100);
    let a = att(&h, 0, 1, 1, AttestationKind::RedList);
    assert_eq!(h.submit(&a).0, 202);
    h.commit(vec![a.clone()]);

    // The committed transaction again: a replay.
    let (status, v) = h.submit(&a);
    assert_eq!((status, v["code"].as_str().unwrap()), (400, "duplicate"), "{v}");
    assert!(v["error"].as_str().unwrap().contains(&a.id().unwrap().to_hex()), "{v}");

    // A different transaction reusing the committed sequence number.
    let (status, v) = h.submit(&att(&h, 0, 1, 2, AttestationKind::RedList));
    assert_eq!((status, v["code"].as_str().unwrap()), (400, "sequence_used"), "{v}");

    // Two pending transactions with one sequence number: 409.
    assert_eq!(h.submit(&att(&h, 0, 2, 1, AttestationKind::Commitment)).0, 202);
    let (status, v) = h.submit(&att(&h, 0, 2, 2, AttestationKind::Commitment));
    assert_eq!((status, v["code"].as_str().unwrap()), (409, "sequence_pending"), "{v}");
}

#[test]
fn full_mempool_gets_503() {
    let h = Harness::new(2);
    assert_eq!(h.submit(&att(&h, 0, 1, 1, AttestationKind::RedList)).0, 202);
    assert_eq!(h.submit(&att(&h, 0, 2, 2, AttestationKind::RedList)).0, 202);
    let (status, v) = h.submit(&att(&h, 0, 3, 3, AttestationKind::RedList));
    assert_eq!((status, v["code"].as_str().unwrap()), (503, "mempool_full"), "{v}");
    assert!(v["error"].as_str().unwrap().contains("retry"), "{v}");
    // An already-pending transaction is still answered 202 when full.
    assert_eq!(h.submit(&att(&h, 0, 1, 1, AttestationKind::RedList)).0, 202);
}

#[test]
fn batch_answers_each_entry_in_order() {
    let h = Harness::new(4);
    let a = att(&h, 0, 1, 1, AttestationKind::RedList);
    let b = att(&h, 1, 1, 2, AttestationKind::TaxCredit);
    let mut bad_sig = att(&h, 1, 2, 3, AttestationKind::RedList);
    bad_sig.signature.0[0] ^= 0x80;
    let conflict = att(&h, 0, 1, 9, AttestationKind::RedList);
    let fill: Vec<_> = (10..13).map(|s| att(&h, 1, s, s, AttestationKind::Commitment)).collect();
    let body = json!({"txs": [
        hex_of(&a), "not hex", hex_of(&bad_sig), hex_of(&a), hex_of(&b), hex_of(&conflict),
        hex_of(&fill[0]), hex_of(&fill[1]), hex_of(&fill[2]),
    ]});
    let (status, v) = h.post("/v1/transactions/batch", &body);
    assert_eq!(status, 200, "{v}");
    let r = v["results"].as_array().unwrap();
    assert_eq!(r.len(), 9);
    let pending = |tx: &SignedTransaction| json!({"id": tx.id().unwrap().to_hex(), "status": "pending"});
    assert_eq!(r[0], pending(&a));
    assert_eq!(r[1]["code"], "bad_hex");
    assert_eq!(r[2]["code"], "bad_signature");
    assert_eq!(r[3], pending(&a), "a repeat within the batch is already pending");
    assert_eq!(r[4], pending(&b));
    assert_eq!(r[5]["code"], "sequence_pending");
    assert_eq!(r[6], pending(&fill[0]));
    assert_eq!(r[7], pending(&fill[1]));
    assert_eq!(r[8]["code"], "mempool_full");
    for e in [&r[1], &r[2], &r[5], &r[8]] {
        assert!(e["error"].as_str().is_some_and(|s| !s.is_empty()), "{e}");
    }
    assert_eq!(h.gossiped(), vec![a.clone(), b.clone(), fill[0].clone(), fill[1].clone()]);

    let (status, v) = h.post("/v1/transactions/batch", &json!({"txs": []}));
    assert_eq!((status, v), (200, json!({"results": []})));
    let (status, v) = h.post("/v1/transactions/batch", &json!({"txs": vec!["00"; 2001]}));
    assert_eq!((status, v["code"].as_str().unwrap()), (400, "batch_too_large"), "{v}");
    let (status, v) = h.post("/v1/transactions/batch", &json!({"txs": "00"}));
    assert_eq!((status, v["code"].as_str().unwrap()), (400, "bad_json"), "{v}");
}

#[test]
fn a_batch_of_2000_transactions_is_admitted() {
    let h = Harness::new(5000);
    let txs: Vec<_> = (1..=2000).map(|s| att(&h, (s % 2) as usize, s, s, AttestationKind::RedList)).collect();
    let body = json!({"txs": txs.iter().map(hex_of).collect::<Vec<_>>()});
    let start = Instant::now();
    let (status, v) = h.post("/v1/transactions/batch", &body);
    eprintln!("a batch of 2000 admitted in {:?}", start.elapsed());
    assert_eq!(status, 200);
    let r = v["results"].as_array().unwrap();
    assert_eq!(r.len(), 2000);
    assert!(r.iter().all(|e| e["status"] == "pending"), "{:?}", r.iter().find(|e| e["status"] != "pending"));
    assert_eq!(h.shared.mempool.lock().unwrap().len(), 2000);
}

// ---------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------

/// Every key of the attestation object in docs/api.md.
const ATTESTATION_KEYS: &[&str] = &[
    "id", "status", "height", "block_hash", "block_time_ms", "log_index", "issuer", "sequence", "type", "subject",
    "kind", "grade", "severity", "evidence", "issued_at_ms", "valid_from_ms", "valid_until_ms", "fields",
    "revoked_by", "revocation_reason", "target", "reason", "tx",
];

fn assert_attestation_shape(v: &Value) {
    for k in ATTESTATION_KEYS {
        assert!(v.get(k).is_some(), "attestation object lacks {k:?}: {v}");
    }
}

#[test]
fn attestation_by_id_committed_revoked_pending_and_unknown() {
    let h = Harness::new(100);
    let subject = Uscc::sample(7);
    let a = Attestation {
        subject,
        kind: AttestationKind::TaxCredit,
        grade: Some(Grade::M),
        severity: None,
        evidence: Hash32([9; 32]),
        issued_at_ms: 1_700_000_000_123,
        valid_from_ms: 1_700_000_000_000,
        valid_until_ms: Some(4_000_000_000_000),
        fields: vec![("decision".into(), "SH-2026-17".into()), ("year".into(), "2025".into())],
    };
    let rated = h.chain.sign(0, 1, TxBody::Attest(a));
    let other = att(&h, 1, 1, 8, AttestationKind::SeriousDishonesty);
    let block = h.commit(vec![other.clone(), rated.clone()]);
    let id = rated.id().unwrap().to_hex();

    let (status, v) = h.get(&format!("/v1/attestations/{id}"));
    assert_eq!(status, 200, "{v}");
    assert_attestation_shape(&v);
    assert_eq!(v["id"], id);
    assert_eq!(v["status"], "active");
    assert_eq!(v["height"], 1);
    assert_eq!(v["block_hash"], block.header.hash().unwrap().to_hex());
    assert_eq!(v["block_time_ms"], block.header.timestamp_ms);
    assert_eq!(v["log_index"], 1);
    assert_eq!(v["issuer"], json!({"name": "shanghai-credit", "region": "SH", "key": h.chain.issuer_keys[0].public().to_hex()}));
    assert_eq!(v["sequence"], 1);
    assert_eq!(v["type"], "attestation");
    assert_eq!(v["subject"], subject.as_str());
    assert_eq!(v["kind"], "tax-credit");
    assert_eq!(v["grade"], "M");
    assert_eq!(v["severity"], Value::Null);
    assert_eq!(v["evidence"], Hash32([9; 32]).to_hex());
    assert_eq!(v["issued_at_ms"], 1_700_000_000_123u64);
    assert_eq!(v["valid_from_ms"], 1_700_000_000_000u64);
    assert_eq!(v["valid_until_ms"], 4_000_000_000_000u64);
    assert_eq!(v["fields"], json!({"decision": "SH-2026-17", "year": "2025"}));
    assert_eq!((&v["revoked_by"], &v["revocation_reason"]), (&Value::Null, &Value::Null));
    assert_eq!((&v["target"], &v["reason"]), (&Value::Null, &Value::Null));
    assert_eq!(v["tx"], hex_of(&rated));
    // The hex is the submission format: decoding it gives the same transaction.
    let again = SignedTransaction::decode(&hex::decode(v["tx"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(again, rated);

    // Revoke it; both the original and the revocation report it.
    let rev = h.chain.revocation(0, 2, rated.id().unwrap(), RevocationReason::Repair);
    h.commit(vec![rev.clone()]);
    let (_, v) = h.get(&format!("/v1/attestations/{id}"));
    assert_eq!(v["status"], "revoked");
    assert_eq!(v["revoked_by"], rev.id().unwrap().to_hex());
    assert_eq!(v["revocation_reason"], "repair");
    let (status, v) = h.get(&format!("/v1/attestations/{}", rev.id().unwrap()));
    assert_eq!(status, 200);
    assert_attestation_shape(&v);
    assert_eq!(v["status"], "revocation");
    assert_eq!(v["type"], "revocation");
    assert_eq!(v["height"], 2);
    assert_eq!(v["target"], id);
    assert_eq!(v["reason"], "repair");
    assert_eq!(v["subject"], Value::Null);

    // Pending.
    let p = att(&h, 1, 2, 9, AttestationKind::RedList);
    assert_eq!(h.submit(&p).0, 202);
    let (status, v) = h.get(&format!("/v1/attestations/{}", p.id().unwrap()));
    assert_eq!((status, v), (200, json!({"id": p.id().unwrap().to_hex(), "status": "pending"})));

    // Unknown and malformed ids.
    let unknown = Hash32([3; 32]).to_hex();
    let (status, v) = h.get(&format!("/v1/attestations/{unknown}"));
    assert_eq!(status, 404);
    assert_eq!(v, json!({"error": format!("attestation {unknown} not found"), "code": "not_found"}));
    let (status, v) = h.get("/v1/attestations/xyz");
    assert_eq!((status, v["code"].as_str().unwrap()), (400, "bad_id"), "{v}");
    let (status, v) = h.get(&format!("/v1/attestations/{}", "g".repeat(64)));
    assert_eq!((status, v["code"].as_str().unwrap()), (400, "bad_id"), "{v}");
}

#[test]
fn attestations_by_subject() {
    let h = Harness::new(100);
    let subject = Uscc::sample(42);
    let a = h.chain.attestation(0, 1, subject, AttestationKind::RedList);
    let b = h.chain.attestation(1, 1, subject, AttestationKind::CreditRating);
    let c = att(&h, 1, 2, 43, AttestationKind::RedList);
    h.commit(vec![a.clone(), c]);
    h.commit(vec![b.clone()]);

    // Lower case with hyphens and spaces is normalised.
    let messy = format!(" {}-{} ", subject.as_str()[..9].to_ascii_lowercase(), subject.as_str()[9..].to_ascii_lowercase());
    let (status, v) = h.get(&format!("/v1/subjects/{}/attestations", messy.replace(' ', "%20")));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["subject"], subject.as_str());
    assert_eq!(v["height"], 2);
    let list = v["attestations"].as_array().unwrap();
    let ids: Vec<_> = list.iter().map(|x| x["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, vec![a.id().unwrap().to_hex(), b.id().unwrap().to_hex()]);
    list.iter().for_each(assert_attestation_shape);
    assert_eq!(list[1]["grade"], "A");
    assert_eq!(list[1]["kind"], "credit-rating");

    // A valid code with no records.
    let none = Uscc::sample(999);
    let (status, v) = h.get(&format!("/v1/subjects/{none}/attestations"));
    assert_eq!((status, v), (200, json!({"subject": none.as_str(), "height": 2, "attestations": []})));

    // A wrong check character: 400 naming the problem.
    let s = subject.as_str();
    let last = s.as_bytes()[17];
    let wrong = if last == b'0' { '1' } else { '0' };
    let bad = format!("{}{wrong}", &s[..17]);
    let (status, v) = h.get(&format!("/v1/subjects/{bad}/attestations"));
    assert_eq!((status, v["code"].as_str().unwrap()), (400, "bad_uscc"), "{v}");
    assert!(v["error"].as_str().unwrap().contains("check character"), "{v}");
    let (status, v) = h.get("/v1/subjects/91350100M0001/attestations");
    assert_eq!(status, 400);
    assert!(v["error"].as_str().unwrap().contains("expected 18 characters"), "{v}");
    let (status, v) = h.get(&format!("/v1/subjects/{}O/attestations", &s[..17]));
    assert_eq!(status, 400);
    assert!(v["error"].as_str().unwrap().contains("not allowed"), "{v}");
}

#[test]
fn attestations_by_issuer_with_after_and_limit() {
    let h = Harness::new(100);
    let txs: Vec<_> = (1..=5).map(|s| att(&h, 1, s, s, AttestationKind::Commitment)).collect();
    h.commit(txs[..3].to_vec());
    h.commit(txs[3..].to_vec());
    h.commit(vec![att(&h, 0, 1, 1, AttestationKind::RedList)]);
    let seqs = |v: &Value| v["attestations"].as_array().unwrap().iter().map(|x| x["sequence"].as_u64().unwrap()).collect::<Vec<_>>();

    let (status, v) = h.get("/v1/issuers/jiangsu-credit/attestations");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["issuer"], json!({"name": "jiangsu-credit", "region": "JS", "key": h.chain.issuer_keys[1].public().to_hex()}));
    assert_eq!(seqs(&v), vec![1, 2, 3, 4, 5]);
    assert_eq!(v["last_sequence"], 5);
    v["attestations"].as_array().unwrap().iter().for_each(assert_attestation_shape);

    let (_, v) = h.get("/v1/issuers/jiangsu-credit/attestations?after=2&limit=2");
    assert_eq!(seqs(&v), vec![3, 4]);
    let (_, v) = h.get("/v1/issuers/jiangsu-credit/attestations?after=5");
    assert_eq!(seqs(&v), Vec::<u64>::new());
    assert_eq!(v["last_sequence"], 5);
    let (_, v) = h.get("/v1/issuers/jiangsu-credit/attestations?limit=1000");
    assert_eq!(seqs(&v).len(), 5);

    // The issuer's key in hex names it too.
    let (status, v) = h.get(&format!("/v1/issuers/{}/attestations?limit=1", h.chain.issuer_keys[1].public().to_hex()));
    assert_eq!((status, seqs(&v)), (200, vec![1]));

    let (status, v) = h.get("/v1/issuers/nobody/attestations");
    assert_eq!((status, v["code"].as_str().unwrap()), (404, "not_found"), "{v}");
    for q in ["limit=0", "limit=1001", "after=abc", "limit=-1"] {
        let (status, v) = h.get(&format!("/v1/issuers/jiangsu-credit/attestations?{q}"));
        assert_eq!((status, v["code"].as_str().unwrap()), (400, "bad_query"), "{q}: {v}");
    }
}

#[test]
fn issuer_without_records_has_null_last_sequence() {
    let h = Harness::new(100);
    let (status, v) = h.get("/v1/issuers/shanghai-credit/attestations");
    assert_eq!(status, 200);
    assert_eq!(v["attestations"], json!([]));
    assert_eq!(v["last_sequence"], Value::Null);
}

// ---------------------------------------------------------------------------
// Blocks, status, wait, metrics, errors
// ---------------------------------------------------------------------------

#[test]
fn blocks_by_height_and_latest() {
    let h = Harness::new(100);
    let (status, v) = h.get("/v1/blocks/latest");
    assert_eq!((status, v["code"].as_str().unwrap()), (404, "not_found"), "no blocks yet: {v}");
    let (status, _) = h.get("/v1/blocks/0");
    assert_eq!(status, 404);

    let a = att(&h, 0, 1, 1, AttestationKind::RedList);
    let b = att(&h, 1, 1, 2, AttestationKind::RedList);
    let b1 = h.commit(vec![a.clone(), b.clone()]);
    let b2 = h.commit(vec![]);

    let (status, v) = h.get("/v1/blocks/1");
    assert_eq!(status, 200, "{v}");
    let hd = &b1.header;
    let expected = json!({
        "height": 1,
        "hash": hd.hash().unwrap().to_hex(),
        "parent": hd.parent.to_hex(),
        "proposer": {"index": hd.proposer.0, "name": h.chain.genesis.validators[hd.proposer.0 as usize].name},
        "round": 0,
        "timestamp_ms": hd.timestamp_ms,
        "tx_count": 2,
        "log_size": 2,
        "log_root": hd.log_root.to_hex(),
        "subjects_root": hd.subjects_root.to_hex(),
        "transactions": [a.id().unwrap().to_hex(), b.id().unwrap().to_hex()],
    });
    for (k, want) in expected.as_object().unwrap() {
        assert_eq!(&v[k], want, "field {k}");
    }
    let cert = &v["certificate"];
    assert_eq!(cert["round"], 0);
    let signers = cert["signers"].as_array().unwrap();
    assert_eq!(signers.len(), 3, "quorum of 4");
    assert_eq!(signers[0]["index"], 0);
    assert_eq!(signers[0]["name"], "shanghai");
    assert_eq!(signers[2]["name"], "zhejiang");

    let (status, v) = h.get("/v1/blocks/latest");
    assert_eq!(status, 200);
    assert_eq!(v["height"], 2);
    assert_eq!(v["hash"], b2.header.hash().unwrap().to_hex());
    assert_eq!(v["parent"], hd.hash().unwrap().to_hex());
    assert_eq!(v["transactions"], json!([]));

    let (status, v) = h.get("/v1/blocks/3");
    assert_eq!((status, v["code"].as_str().unwrap()), (404, "not_found"));
    assert!(v["error"].as_str().unwrap().contains("height 2"), "{v}");
    for bad in ["abc", "-1", "18446744073709551616"] {
        let (status, v) = h.get(&format!("/v1/blocks/{bad}"));
        assert_eq!((status, v["code"].as_str().unwrap()), (400, "bad_height"), "{bad}: {v}");
    }
}

#[test]
fn status_reports_chain_consensus_mempool_peers_and_validators() {
    let h = Harness::new(100);
    h.commit(vec![att(&h, 0, 1, 1, AttestationKind::RedList)]);
    assert_eq!(h.submit(&att(&h, 0, 2, 2, AttestationKind::RedList)).0, 202);
    let (status, v) = h.get("/v1/status");
    assert_eq!(status, 200, "{v}");
    let ledger = h.shared.ledger.read().unwrap();
    assert_eq!(v["chain_id"], h.chain.chain.to_hex());
    assert_eq!(v["chain_name"], "yrd-test");
    assert_eq!(v["node"], "shanghai");
    assert_eq!(v["validator"], true);
    assert_eq!(v["height"], 1);
    assert_eq!(v["round"], 0);
    assert_eq!(v["step"], "propose");
    assert_eq!(v["last_block_hash"], ledger.last_hash().to_hex());
    assert_eq!(v["last_block_time_ms"], ledger.last_header().unwrap().timestamp_ms);
    assert_eq!(v["log_size"], 1);
    assert_eq!(v["mempool_size"], 1);
    assert_eq!(v["mempool_capacity"], 100);
    assert_eq!(
        v["peers"],
        json!([
            {"name": "jiangsu", "key": h.chain.validator_keys[1].public().to_hex()},
            {"name": "zhejiang", "key": h.chain.validator_keys[2].public().to_hex()},
        ])
    );
    let validators = v["validators"].as_array().unwrap();
    assert_eq!(validators.len(), 4);
    assert_eq!(
        validators[3],
        json!({"index": 3, "name": "anhui", "region": "AH", "key": h.chain.validator_keys[3].public().to_hex()})
    );
}

#[test]
fn wait_returns_on_commit_or_timeout() {
    let h = Harness::new(100);
    let (status, v) = h.get("/v1/wait/0");
    assert_eq!((status, v), (200, json!({"height": 0, "timed_out": false})));

    let start = Instant::now();
    let (status, v) = h.get("/v1/wait/1?timeout_ms=150");
    assert_eq!((status, v), (200, json!({"height": 0, "timed_out": true})));
    assert!(start.elapsed() >= Duration::from_millis(140), "waited {:?}", start.elapsed());

    let (status, v) = h.get("/v1/wait/1?timeout_ms=soon");
    assert_eq!((status, v["code"].as_str().unwrap()), (400, "bad_query"), "{v}");

    std::thread::scope(|s| {
        let waiter = s.spawn(|| h.get("/v1/wait/1?timeout_ms=20000"));
        std::thread::sleep(Duration::from_millis(200));
        h.commit(vec![att(&h, 0, 1, 1, AttestationKind::RedList)]);
        let start = Instant::now();
        let (status, v) = waiter.join().unwrap();
        assert_eq!((status, v), (200, json!({"height": 1, "timed_out": false})));
        assert!(start.elapsed() < Duration::from_secs(5));
    });
}

#[test]
fn shutdown_wakes_long_polls_and_stops_the_server() {
    let mut h = Harness::new(100);
    let url = format!("{}/v1/wait/5?timeout_ms=30000", h.base);
    let agent = h.agent.clone();
    let waiter = std::thread::spawn(move || Harness::answer(agent.get(url).call()));
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    h.shutdown();
    let (status, v) = waiter.join().unwrap();
    assert_eq!((status, v), (200, json!({"height": 0, "timed_out": true})));
    assert!(start.elapsed() < Duration::from_secs(10), "shutdown took {:?}", start.elapsed());
    assert!(h.agent.get(format!("{}/v1/status", h.base)).call().is_err(), "server is gone");
}

#[test]
fn metrics_are_openmetrics_text() {
    let h = Harness::new(100);
    h.shared.metrics.height.set(7);
    let mut resp = h.agent.get(format!("{}/metrics", h.base)).call().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers().get("content-type").unwrap().to_str().unwrap(),
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = resp.body_mut().read_to_string().unwrap();
    assert!(text.contains("yrd_height 7"), "{text}");
    assert!(text.contains("yrd_mempool_size"), "{text}");
    assert!(text.contains("yrd_commit_latency_seconds_bucket"), "{text}");
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    // Every metric docs/openapi.yaml names is served.
    let spec = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.yaml")).unwrap();
    let section = spec.split("Metrics are prefixed").nth(1).unwrap().split("responses:").next().unwrap();
    let named: Vec<&str> = section
        .split('`')
        .filter(|w| w.starts_with("yrd_") && w.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .collect();
    assert!(named.len() >= 12, "{named:?}");
    for name in named {
        assert!(text.contains(&format!("\n{name}")), "docs/openapi.yaml names {name}, /metrics lacks it:\n{text}");
    }
}

#[test]
fn unknown_routes_wrong_methods_and_oversize_bodies_answer_json() {
    let h = Harness::new(100);
    let (status, v) = h.get("/v1/nothing/here");
    assert_eq!(status, 404);
    assert_eq!(v, json!({"error": "no route for GET /v1/nothing/here", "code": "not_found"}));
    let (status, _) = h.get("/");
    assert_eq!(status, 404);

    let (status, v) = h.get("/v1/transactions");
    assert_eq!((status, v["code"].as_str().unwrap()), (405, "method_not_allowed"), "{v}");
    let (status, v) = h.post("/v1/status", &json!({}));
    assert_eq!((status, v["code"].as_str().unwrap()), (405, "method_not_allowed"), "{v}");

    // Over the single-transaction limit (about 9 KiB).
    let big = json!({"tx": "00".repeat(api::MAX_SUBMIT_BODY_BYTES)});
    let (status, v) = h.post("/v1/transactions", &big);
    assert_eq!((status, v["code"].as_str().unwrap()), (413, "body_too_large"), "{v}");
    // Over the batch limit.
    let huge = vec![b' '; api::MAX_BATCH_BODY_BYTES + 1];
    let (status, v) = h.post_raw("/v1/transactions/batch", huge);
    assert_eq!((status, v["code"].as_str().unwrap()), (413, "body_too_large"), "{v}");

    // A path segment that is not UTF-8 gets our JSON error too (the console's
    // asset route answered axum's plain-text 400).
    for path in ["/console/%FF", "/v1/attestations/%FF"] {
        let (status, v) = h.get(path);
        assert_eq!((status, v["code"].as_str().unwrap_or("")), (400, "bad_path"), "{path}: {v}");
    }

    // The server is still fine afterwards.
    assert_eq!(h.get("/v1/status").0, 200);
}

/// A request whose body no handler reads (wrong method, unknown route) must not
/// leave its keep-alive connection unusable: the next request on the same
/// connection gets its answer. (The server used to close such a connection after
/// the answer, and a client that had pooled it got an I/O error — found as a
/// flaky failure of the test above under load.) A body too big to drain closes
/// the connection, and the answer says so.
#[test]
fn a_refused_request_with_a_body_keeps_the_connection_usable() {
    use std::io::{BufRead, BufReader, Read, Write};
    let h = Harness::new(10);
    let addr = h.base.trim_start_matches("http://").to_string();
    let stream = std::net::TcpStream::connect(&addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    // One answer: status, headers (lower-cased names), body.
    let answer = |reader: &mut BufReader<std::net::TcpStream>| -> (u16, Vec<(String, String)>, String) {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let status: u16 = line.split_whitespace().nth(1).unwrap_or_else(|| panic!("no status line: {line:?}")).parse().unwrap();
        let mut headers = Vec::new();
        loop {
            let mut l = String::new();
            reader.read_line(&mut l).unwrap();
            let l = l.trim_end();
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':').unwrap();
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let len: usize = headers.iter().find(|(k, _)| k == "content-length").map(|(_, v)| v.parse().unwrap()).unwrap_or(0);
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body).unwrap();
        (status, headers, String::from_utf8(body).unwrap())
    };
    let body = vec![b'x'; 4096];
    for (method, path, expected) in [("POST", "/v1/status", 405), ("PUT", "/v1/nothing/here", 404)] {
        write!(writer, "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\n\r\n", body.len()).unwrap();
        writer.write_all(&body).unwrap();
        let (status, headers, text) = answer(&mut reader);
        assert_eq!(status, expected, "{method} {path}: {text}");
        assert!(!headers.iter().any(|(k, v)| k == "connection" && v == "close"), "{method} {path}: {headers:?}");
        // The same connection serves the next request.
        write!(writer, "GET /v1/status HTTP/1.1\r\nhost: {addr}\r\n\r\n").unwrap();
        let (status, _, text) = answer(&mut reader);
        assert_eq!(status, 200, "after {method} {path}: {text}");
    }
    // A slow client: the body arrives a moment after the head (what a loaded
    // machine does to a client that writes them separately). The server used to
    // answer at once and close the connection under it.
    write!(writer, "POST /v1/status HTTP/1.1\r\nhost: {addr}\r\ncontent-length: 2\r\n\r\n").unwrap();
    writer.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300)); // the client's delay, not a wait for the server
    writer.write_all(b"{}").unwrap();
    let (status, headers, text) = answer(&mut reader);
    assert_eq!(status, 405, "{text}");
    assert!(!headers.iter().any(|(k, v)| k == "connection" && v == "close"), "{headers:?}");
    write!(writer, "GET /v1/status HTTP/1.1\r\nhost: {addr}\r\n\r\n").unwrap();
    let (status, _, text) = answer(&mut reader);
    assert_eq!(status, 200, "after a slow body: {text}");

    // A body over what is drained: the answer announces the close.
    let big = 1 << 20;
    write!(writer, "POST /v1/status HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {big}\r\n\r\n").unwrap();
    let _ = writer.write_all(&vec![b'x'; big]);
    let (status, headers, _) = answer(&mut reader);
    assert_eq!(status, 405);
    assert!(headers.iter().any(|(k, v)| k == "connection" && v == "close"), "{headers:?}");
}

#[test]
fn openapi_describes_every_route_and_the_body_limits() {
    let spec = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.yaml")).unwrap();
    let h = Harness::new(10);
    let routes = [
        ("post", "/v1/transactions", "/v1/transactions"),
        ("post", "/v1/transactions/batch", "/v1/transactions/batch"),
        ("get", "/v1/attestations/{id}", "/v1/attestations/00"),
        ("get", "/v1/subjects/{uscc}/attestations", "/v1/subjects/x/attestations"),
        ("get", "/v1/issuers/{name}/attestations", "/v1/issuers/shanghai-credit/attestations"),
        ("get", "/v1/blocks/latest", "/v1/blocks/latest"),
        ("get", "/v1/blocks/{height}", "/v1/blocks/1"),
        ("get", "/v1/status", "/v1/status"),
        ("get", "/v1/wait/{height}", "/v1/wait/0"),
        ("get", "/v1/proofs/attestations/{id}", "/v1/proofs/attestations/00"),
        ("get", "/v1/proofs/subjects/{uscc}", "/v1/proofs/subjects/x"),
        ("get", "/v1/proofs/consistency", "/v1/proofs/consistency?from=1&to=1"),
        ("get", "/v1/audit/attestations/{id}", "/v1/audit/attestations/00"),
        ("get", "/v1/audit/queries/{uscc}", "/v1/audit/queries/x"),
        ("get", "/v1/governance/proposals", "/v1/governance/proposals"),
        ("get", "/v1/governance/proposals/{id}", "/v1/governance/proposals/00"),
        ("get", "/v1/governance/membership", "/v1/governance/membership"),
        ("get", "/v1/backup/blocks", "/v1/backup/blocks?from=0"),
        ("get", "/health/live", "/health/live"),
        ("get", "/health/ready", "/health/ready"),
    ];
    let documented: Vec<&str> =
        spec.lines().filter(|l| l.starts_with("  /") && l.ends_with(':')).map(|l| l.trim().trim_end_matches(':')).collect();
    let mut expected: Vec<&str> = routes.iter().map(|r| r.1).collect();
    expected.extend(["/metrics", "/console", "/console/{asset}"]);
    assert_eq!(documented, expected, "docs/openapi.yaml paths");
    // The console's routes (docs/console.md): an unknown asset is the console's 404, not "no route".
    let (status, v) = h.get("/console/nope.js");
    assert_eq!(status, 404);
    assert!(v["error"].as_str().unwrap_or("").starts_with("no console asset"), "{v}");
    for (method, template, example) in routes {
        let (_, v) = if method == "get" { h.get(example) } else { h.post(example, &json!({})) };
        assert!(!v["error"].as_str().unwrap_or("").starts_with("no route"), "{template} is not routed: {v}");
    }
    assert!(spec.contains(&format!("`POST /v1/transactions` {} bytes", api::MAX_SUBMIT_BODY_BYTES)));
    let batch = api::MAX_BATCH_BODY_BYTES.to_string();
    let with_commas = format!("{},{},{}", &batch[..2], &batch[2..5], &batch[5..]);
    assert!(spec.contains(&format!("{with_commas} bytes")), "batch limit {with_commas} documented");
}

/// Gossip admission checks decoding, rules and signatures, drops late gossip of
/// recently committed transactions from memory, and leaves the index lookups to
/// block building, which drops what the ledger refuses — until the mempool is
/// half full, when it looks gossip up too.
#[test]
fn gossip_admission_drops_late_gossip_and_block_building_drops_older_replays() {
    use yrd_node::shared::{SubmitError, Source};
    use yrd_ledger::validate::TxError;
    let h = Harness::new(100);
    let old = h.chain.attestation(0, 1, Uscc::sample(1), AttestationKind::RedList);
    let recent = h.chain.attestation(0, 2, Uscc::sample(2), AttestationKind::RedList);
    h.commit(vec![old.clone()]);
    // Push `old` out of the recent-commits window, as many blocks later would.
    {
        let mut r = h.shared.recent.lock().unwrap();
        let filler: Vec<_> = (0..yrd_node::shared::RecentCommits::CAPACITY as u64 + 1)
            .map(|i| yrd_ledger::tx::TxId(yrd_consensus::crypto::sha256(&[&i.to_be_bytes()])))
            .collect();
        r.push_block(&filler);
        r.push_block(&[]);
        assert!(!r.contains(&old.id().unwrap()));
    }
    h.commit(vec![recent.clone()]);
    let fresh = h.chain.attestation(1, 1, Uscc::sample(3), AttestationKind::RedList);
    let mut forged = h.chain.attestation(1, 2, Uscc::sample(4), AttestationKind::RedList);
    forged.signature.0[0] ^= 1;
    let bytes: Vec<Vec<u8>> = [&old, &recent, &fresh, &forged].iter().map(|t| t.encode().unwrap()).collect();
    let refs: Vec<&[u8]> = bytes.iter().map(|b| b.as_slice()).collect();

    let results = h.shared.admit(&refs, Source::Gossip);
    assert!(results[0].is_ok(), "an old replay is not looked up on gossip: {:?}", results[0]);
    assert!(matches!(results[1], Err(SubmitError::Invalid(TxError::Duplicate(_)))), "{:?}", results[1]);
    assert!(results[2].is_ok(), "{:?}", results[2]);
    assert!(matches!(results[3], Err(SubmitError::Invalid(TxError::BadSignature))), "{:?}", results[3]);
    // Block building leaves the old replay out and reports it, so the driver drops it.
    let candidates = h.shared.mempool.lock().unwrap().candidates(10);
    assert_eq!(candidates.len(), 2);
    let ledger = h.shared.ledger.read().unwrap();
    let hgt = ledger.height().next();
    let built = ledger.build_block(candidates, ledger.validators_at(hgt).unwrap().proposer(hgt, Round(0)), Round(0), 1_900_000_000_000).unwrap();
    assert_eq!(built.block.txs, vec![fresh.clone()]);
    assert_eq!(built.rejected.len(), 1);
    assert_eq!(built.rejected[0], (old.id().unwrap(), TxError::Duplicate(old.id().unwrap())));
    drop(ledger);
    // A client submitting the old replay is told at once, and it leaves the mempool.
    let client = h.shared.admit(&refs[..1], Source::Client);
    assert!(matches!(client[0], Err(SubmitError::Invalid(TxError::Duplicate(_)))), "{:?}", client[0]);
    assert!(!h.shared.mempool.lock().unwrap().contains(&old.id().unwrap()));
    assert!(h.shared.mempool.lock().unwrap().contains(&fresh.id().unwrap()));

    // Once the mempool is half full, gossip is looked up like a client's: a peer
    // re-gossiping old committed transactions cannot fill it with them.
    let more: Vec<Vec<u8>> =
        (10..59u64).map(|s| h.chain.attestation(1, s, Uscc::sample(100 + s), AttestationKind::RedList).encode().unwrap()).collect();
    let more_refs: Vec<&[u8]> = more.iter().map(|b| b.as_slice()).collect();
    assert!(h.shared.admit(&more_refs, Source::Gossip).iter().all(|r| r.is_ok()));
    assert_eq!(h.shared.mempool.lock().unwrap().len(), 50, "half of the 100");
    let again = h.shared.admit(&refs[..1], Source::Gossip);
    assert!(matches!(again[0], Err(SubmitError::Invalid(TxError::Duplicate(_)))), "{:?}", again[0]);
    assert!(!h.shared.mempool.lock().unwrap().contains(&old.id().unwrap()));
}
