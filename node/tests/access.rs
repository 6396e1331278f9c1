//! Access control on every read route (docs/access.md): a property test over
//! random records × every read route × {anonymous, unauthorised lender, wrong
//! signature, authorised lender, issuer}: a caller never sees any field of a
//! restricted record it may not read, while what it may read stays readable
//! (proof bundles and subject reports included: records it may not read are in
//! them as commitments only, and the files verify offline);
//! forged, replayed, stale and incomplete signatures are refused 401; coverage
//! starts at the authorisation's block and ends at its expiry or withdrawal.
//!
//! A real server on 127.0.0.1:0 over an in-process `Shared`; blocks are
//! committed straight into the ledger with block times near the real clock
//! (signed requests are checked against it).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use yrd_consensus::crypto::{sha256, PublicKey, SecretKey};
use yrd_consensus::types::Round;
use yrd_ledger::consent::{Purpose, WithdrawReason};
use yrd_ledger::proof;
use yrd_ledger::queries::{Nonce, SignedRequest};
use yrd_ledger::testkit::TestChain;
use yrd_ledger::tx::{Attestation, AttestationKind, RevocationReason, SignedTransaction, TxBody, TxId};
use yrd_ledger::uscc::Uscc;
use yrd_node::shared::{now_ms, Shared};

struct Harness {
    base: String,
    /// The node's key: what its signed requests name.
    node: PublicKey,
    shared: Arc<Shared>,
    chain: TestChain,
    agent: ureq::Agent,
    _served: common::Served,
}

impl Harness {
    fn new() -> Harness {
        Harness::with_queries(Default::default())
    }

    fn with_queries(queries: yrd_node::queries::QueriesConfig) -> Harness {
        let chain = TestChain::new(4, 2);
        let served = common::serve(&chain, common::Options { queries, ..Default::default() });
        let node = served.shared.queries.public().expect("the node has a key");
        Harness { base: served.base.clone(), node, shared: served.shared.clone(), chain, agent: common::agent(), _served: served }
    }

    /// Commits `txs` as the next block, made now (real clock).
    fn commit(&self, txs: Vec<SignedTransaction>) {
        let mut ledger = self.shared.ledger.write().unwrap();
        let h = ledger.height().next();
        let parent_ms = ledger.last_header().map_or(0, |h| h.timestamp_ms);
        let proposer = ledger.validators_at(h).unwrap().proposer(h, Round(0));
        let built = ledger.build_block(txs, proposer, Round(0), now_ms().max(parent_ms + 1)).unwrap();
        assert!(built.rejected.is_empty(), "rejected: {:?}", built.rejected);
        let cert = self.chain.certify(&built.block.header);
        ledger.commit(&built.block, &cert).unwrap();
        self.shared.committed.send_replace(built.block.header.height);
    }

    /// GET `path` as `caller`: (status, body text).
    fn get_as(&self, caller: &Caller, path: &str) -> (u16, String) {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        for (k, v) in caller.headers(&self.chain, &self.node, path) {
            req = req.header(k, v);
        }
        let mut resp = req.call().unwrap();
        let status = resp.status().as_u16();
        let text = resp.body_mut().with_config().limit(64 << 20).read_to_string().unwrap();
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {status} not JSON ({e}): {text}"));
        if status >= 300 {
            assert!(v["error"].is_string() && v["code"].is_string() && v.as_object().unwrap().len() == 2, "error shape: {v}");
        }
        (status, text)
    }
}

/// Who asks.
#[derive(Debug, Clone)]
enum Caller {
    Anonymous,
    /// Signed with this key (lender, issuer, agency or a stranger).
    Key(String, SecretKey),
    /// Headers of `key` but the signature of `signer`.
    WrongSignature(SecretKey, SecretKey),
}

impl Caller {
    fn name(&self) -> String {
        match self {
            Caller::Anonymous => "anonymous".into(),
            Caller::Key(n, _) => n.clone(),
            Caller::WrongSignature(..) => "wrong-signature".into(),
        }
    }

    fn headers(&self, chain: &TestChain, node: &PublicKey, path: &str) -> Vec<(&'static str, String)> {
        let (key, signer) = match self {
            Caller::Anonymous => return vec![],
            Caller::Key(_, k) => (k, k),
            Caller::WrongSignature(k, s) => (k, s),
        };
        let r = SignedRequest::sign(signer, &chain.chain, node, "GET", path, b"", now_ms(), Nonce::random()).unwrap();
        signed_headers(&key.public().to_hex(), node, &r)
    }
}

fn signed_headers(key_hex: &str, node: &PublicKey, r: &SignedRequest) -> Vec<(&'static str, String)> {
    vec![
        ("X-YRD-Key", key_hex.to_string()),
        ("X-YRD-Node", node.to_hex()),
        ("X-YRD-Timestamp", r.timestamp_ms.to_string()),
        ("X-YRD-Nonce", r.nonce.to_hex()),
        ("X-YRD-Signature", r.signature.to_hex()),
    ]
}

/// One committed record and what would betray it.
#[derive(Debug, Clone)]
struct Record {
    id: TxId,
    subject: Uscc,
    issuer: usize,
    restricted: bool,
    /// An attestation (else a revocation: listings show it through its target).
    attestation: bool,
    /// Strings that appear only in this record's full form.
    secrets: Vec<String>,
}

const SUBJECTS: u64 = 4;

/// Which records a caller may read in full.
type MayRead = Box<dyn Fn(&Record) -> bool>;

/// Random records about 4 subjects by 2 issuers, every kind, some revoked.
fn random_records(h: &Harness, rng: &mut StdRng) -> Vec<Record> {
    let restricted = |k: AttestationKind| h.chain.genesis.params.is_restricted(k);
    let mut records = Vec::new();
    let mut seqs = [0u64; 2];
    for _block in 0..4 {
        let mut txs = Vec::new();
        for _ in 0..rng.gen_range(3..8) {
            let issuer = rng.gen_range(0..2);
            seqs[issuer] += 1;
            let kind = AttestationKind::ALL[rng.gen_range(0..AttestationKind::ALL.len())];
            let subject = Uscc::sample(rng.gen_range(1..=SUBJECTS));
            let secret = format!("SECRET{:016x}", rng.gen::<u64>());
            let evidence = sha256(&[secret.as_bytes()]);
            let a = Attestation {
                subject,
                kind,
                grade: kind.grades().get(rng.gen_range(0..kind.grades().len().max(1))).copied(),
                severity: None,
                evidence,
                issued_at_ms: 1_700_000_000_000,
                valid_from_ms: 1_700_000_000_000,
                valid_until_ms: None,
                fields: vec![("note".into(), secret.clone())],
            };
            let tx = h.chain.sign(issuer, seqs[issuer], TxBody::Attest(a));
            let id = tx.id().unwrap();
            let secrets = vec![id.to_hex(), evidence.to_hex(), secret, hex::encode(&tx.signature.0[..32])];
            records.push(Record { id, subject, issuer, restricted: restricted(kind), attestation: true, secrets });
            txs.push(tx);
        }
        h.commit(txs);
    }
    // Revoke some (by their own issuer), in one more block.
    let mut txs = Vec::new();
    let targets: Vec<Record> = records.iter().filter(|_| rng.gen_bool(0.3)).cloned().collect();
    for t in targets {
        seqs[t.issuer] += 1;
        let tx = h.chain.revocation(t.issuer, seqs[t.issuer], t.id, RevocationReason::Repair);
        let id = tx.id().unwrap();
        let secrets = vec![id.to_hex(), hex::encode(&tx.signature.0[..32])];
        records.push(Record { id, subject: t.subject, issuer: t.issuer, restricted: t.restricted, attestation: false, secrets });
        txs.push(tx);
    }
    if !txs.is_empty() {
        h.commit(txs);
    }
    records
}

/// Every read route that can show a record.
fn routes(h: &Harness, records: &[Record]) -> Vec<String> {
    let mut r = Vec::new();
    for rec in records {
        r.push(format!("/v1/attestations/{}", rec.id));
        r.push(format!("/v1/proofs/attestations/{}", rec.id));
        r.push(format!("/v1/audit/attestations/{}", rec.id));
    }
    for s in 1..=SUBJECTS {
        r.push(format!("/v1/subjects/{}/attestations", Uscc::sample(s)));
        r.push(format!("/v1/proofs/subjects/{}", Uscc::sample(s)));
        r.push(format!("/v1/audit/queries/{}", Uscc::sample(s)));
    }
    for i in &h.chain.genesis.issuers {
        r.push(format!("/v1/issuers/{}/attestations", i.name));
    }
    let height = h.shared.ledger.read().unwrap().height().0;
    for b in 1..=height {
        r.push(format!("/v1/blocks/{b}"));
    }
    r.push("/v1/blocks/latest".into());
    r.push("/v1/backup/blocks?from=1".into());
    r.push("/v1/governance/membership".into());
    r.push("/v1/status".into());
    r
}

#[test]
fn no_caller_sees_a_restricted_record_it_may_not_read_on_any_route() {
    let seed: u64 = std::env::var("YRD_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x05ee_da11);
    println!("seed {seed} (YRD_TEST_SEED to replay)");
    let mut rng = StdRng::seed_from_u64(seed);
    let h = Harness::new();
    h.commit(vec![]);
    // bank-0 is authorised for subject 1; bank-1 for nothing.
    let covered = Uscc::sample(1);
    let auth = h.chain.authorisation(0, 1, covered, Purpose::LoanApplication, now_ms() + 30 * 24 * 3600 * 1000);
    h.commit(vec![auth]);
    let records = random_records(&h, &mut rng);
    let paths = routes(&h, &records);
    let k = &h.chain;
    let callers: Vec<(Caller, MayRead)> = vec![
        (Caller::Anonymous, Box::new(|r: &Record| !r.restricted)),
        (Caller::Key("unauthorised-lender".into(), k.lender_keys[1].clone()), Box::new(|r: &Record| !r.restricted)),
        (Caller::WrongSignature(k.lender_keys[0].clone(), k.lender_keys[1].clone()), Box::new(|_: &Record| false)),
        (Caller::Key("authorised-lender".into(), k.lender_keys[0].clone()), Box::new(move |r: &Record| !r.restricted || r.subject == covered)),
        (Caller::Key("issuer-0".into(), k.issuer_keys[0].clone()), Box::new(|r: &Record| !r.restricted || r.issuer == 0)),
    ];
    let restricted = records.iter().filter(|r| r.restricted).count();
    println!("{} records ({restricted} restricted), {} routes, {} callers", records.len(), paths.len(), callers.len());
    assert!(restricted > 0 && restricted < records.len(), "seed {seed}: the sample needs public and restricted records");
    let (mut reports_redacted, mut reports_full) = (0, 0);
    for (caller, may_read) in &callers {
        for path in &paths {
            let (status, body) = h.get_as(caller, path);
            for r in records.iter().filter(|r| !may_read(r)) {
                for secret in &r.secrets {
                    assert!(
                        !body.contains(secret.as_str()),
                        "seed {seed}: {} read {path} ({status}) and saw {secret} of restricted record {} about {}",
                        caller.name(),
                        r.id,
                        r.subject
                    );
                }
            }
            if let Caller::WrongSignature(..) = caller {
                assert_eq!(status, 401, "seed {seed}: wrong signature on {path}: {body}");
            }
        }
        // What the caller may read stays readable: by id, and in its subject's listing.
        for r in records.iter().filter(|r| may_read(r)) {
            let (status, body) = h.get_as(caller, &format!("/v1/attestations/{}", r.id));
            assert_eq!(status, 200, "seed {seed}: {} cannot read {} ({body})", caller.name(), r.id);
            // A lender's signed subject routes need an authorisation for the subject (403 otherwise).
            let lender_refused = match caller {
                Caller::Key(n, _) if n == "unauthorised-lender" => true,
                Caller::Key(n, _) if n == "authorised-lender" => r.subject != covered,
                _ => false,
            };
            if !lender_refused {
                let (status, body) = h.get_as(caller, &format!("/v1/subjects/{}/attestations", r.subject));
                assert_eq!(status, 200, "seed {seed}: {} listing {}: {body}", caller.name(), r.subject);
                assert!(body.contains(&r.id.to_hex()), "seed {seed}: {} does not see {} in its subject's listing", caller.name(), r.id);
            }
            // Its proof bundle is served (the subject's other records redacted) and verifies offline.
            if r.attestation {
                let (status, body) = h.get_as(caller, &format!("/v1/proofs/attestations/{}", r.id));
                assert_eq!(status, 200, "seed {seed}: {} bundle of {}: {body}", caller.name(), r.id);
                let b: proof::Bundle = serde_json::from_str(&body).unwrap();
                let v = proof::verify_bundle(&h.chain.genesis, &b, now_ms())
                    .unwrap_or_else(|e| panic!("seed {seed}: {} bundle of {}: {e}", caller.name(), r.id));
                assert_eq!(v.attestation.id, r.id);
            }
        }
        // Subject reports: served to every caller that passes the lender rule, with
        // the records it may not read as commitments only — still complete, verified
        // offline, showing exactly what it may read (the secrets check above covers
        // the rest of the body).
        if let Caller::WrongSignature(..) = caller {
            continue;
        }
        for s in 1..=SUBJECTS {
            let subject = Uscc::sample(s);
            let (status, body) = h.get_as(caller, &format!("/v1/proofs/subjects/{subject}"));
            let lender_refused = match caller {
                Caller::Key(n, _) if n == "unauthorised-lender" => true,
                Caller::Key(n, _) if n == "authorised-lender" => subject != covered,
                _ => false,
            };
            if lender_refused {
                assert_eq!(status, 403, "seed {seed}: {} report on {subject}: {body}", caller.name());
                continue;
            }
            assert_eq!(status, 200, "seed {seed}: {} report on {subject}: {body}", caller.name());
            let report: proof::Report = serde_json::from_str(&body).unwrap();
            let v = proof::verify_report(&h.chain.genesis, &report, now_ms())
                .unwrap_or_else(|e| panic!("seed {seed}: {} report on {subject} does not verify: {e}", caller.name()));
            let about: Vec<&Record> = records.iter().filter(|r| r.subject == subject && r.attestation).collect();
            let mut want: Vec<TxId> = about.iter().filter(|r| may_read(r)).map(|r| r.id).collect();
            let mut shown: Vec<TxId> = v.attestations.iter().map(|a| a.id).collect();
            want.sort();
            shown.sort();
            assert_eq!(shown, want, "seed {seed}: {} report on {subject} shows other records", caller.name());
            assert_eq!(v.redacted.len(), about.len() - want.len(), "seed {seed}: {} report on {subject}", caller.name());
            if v.redacted.is_empty() {
                reports_full += 1;
            } else {
                reports_redacted += 1;
            }
            let json: Value = serde_json::from_str(&body).unwrap();
            for e in json["entries"].as_array().unwrap() {
                if e.get("redacted").is_some() {
                    assert_eq!(e.as_object().unwrap().len(), 1, "a redacted report entry is its commitment only: {e}");
                }
            }
        }
    }
    println!("{reports_redacted} redacted and {reports_full} full subject reports verified");
    assert!(reports_redacted > 0 && reports_full > 0, "seed {seed}: the sample needs both kinds of report");
    // Redacted entries in a listing still count every record (completeness).
    let (_, body) = h.get_as(&Caller::Anonymous, &format!("/v1/subjects/{covered}/attestations"));
    let v: Value = serde_json::from_str(&body).unwrap();
    let listed = v["attestations"].as_array().unwrap();
    assert_eq!(listed.len(), records.iter().filter(|r| r.subject == covered && r.attestation).count());
    for e in listed {
        if e["redacted"] == Value::Bool(true) {
            assert_eq!(e.as_object().unwrap().len(), 4, "a redacted entry is commitment, height, log index only: {e}");
        }
    }
}

#[test]
fn forged_replayed_stale_and_incomplete_signatures_are_refused() {
    let h = Harness::new();
    h.commit(vec![]);
    let path = format!("/v1/subjects/{}/attestations", Uscc::sample(1));
    let key = &h.chain.lender_keys[0];
    let call = |headers: Vec<(&'static str, String)>, p: &str| {
        let mut req = h.agent.get(format!("{}{p}", h.base));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let mut resp = req.call().unwrap();
        let status = resp.status().as_u16();
        let v: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
        (status, v["code"].as_str().unwrap_or("").to_string())
    };
    let node = &h.node;
    let sign = |p: &str, ts: u64, nonce: Nonce| SignedRequest::sign(key, &h.chain.chain, node, "GET", p, b"", ts, nonce).unwrap();
    // Replay: the same signed request twice.
    let r = sign(&path, now_ms(), Nonce::random());
    let hd = signed_headers(&key.public().to_hex(), node, &r);
    assert_eq!(call(hd.clone(), &path), (403, "no_authorisation".into()), "first use: valid signature, no authorisation");
    assert_eq!(call(hd, &path), (401, "replayed_request".into()));
    // Stale and future timestamps.
    for ts in [now_ms() - 10 * 60_000, now_ms() + 10 * 60_000] {
        let r = sign(&path, ts, Nonce::random());
        assert_eq!(call(signed_headers(&key.public().to_hex(), node, &r), &path), (401, "stale_request".into()));
    }
    // Signed for another path, another chain, another method.
    let r = sign("/v1/subjects/91350100M000100Y43/attestations", now_ms(), Nonce::random());
    assert_eq!(call(signed_headers(&key.public().to_hex(), node, &r), &path), (401, "bad_signature".into()));
    let other_chain = SignedRequest::sign(key, &sha256(&[b"other chain"]), node, "GET", &path, b"", now_ms(), Nonce::random()).unwrap();
    assert_eq!(call(signed_headers(&key.public().to_hex(), node, &other_chain), &path), (401, "bad_signature".into()));
    let post = SignedRequest::sign(key, &h.chain.chain, node, "POST", &path, b"", now_ms(), Nonce::random()).unwrap();
    assert_eq!(call(signed_headers(&key.public().to_hex(), node, &post), &path), (401, "bad_signature".into()));
    // A failed signature does not burn the nonce: the genuine request with it still works once.
    let nonce = Nonce::random();
    let genuine = sign(&path, now_ms(), nonce);
    let mut forged = signed_headers(&key.public().to_hex(), node, &genuine);
    forged[4].1 = SecretKey::from_seed(b"forger").sign(b"api/request", b"x").to_hex();
    assert_eq!(call(forged, &path), (401, "bad_signature".into()));
    assert_eq!(call(signed_headers(&key.public().to_hex(), node, &genuine), &path).0, 403);
    // Unknown key, missing header, malformed header.
    let stranger = SecretKey::from_seed(b"stranger");
    let r = SignedRequest::sign(&stranger, &h.chain.chain, node, "GET", &path, b"", now_ms(), Nonce::random()).unwrap();
    assert_eq!(call(signed_headers(&stranger.public().to_hex(), node, &r), &path), (401, "unknown_key".into()));
    let mut partial = signed_headers(&key.public().to_hex(), node, &sign(&path, now_ms(), Nonce::random()));
    partial.pop();
    assert_eq!(call(partial, &path), (401, "signature_incomplete".into()));
    let mut bad = signed_headers(&key.public().to_hex(), node, &sign(&path, now_ms(), Nonce::random()));
    bad[3].1 = "zz".into();
    assert_eq!(call(bad, &path), (401, "bad_signature_header".into()));
    // Good at one node only: a request signed for another validator is refused
    // here, named or not — the replay cache is per node, so a request taken to
    // another node would otherwise be served (and recorded) twice.
    let elsewhere = h.chain.validator_keys.iter().map(|k| k.public()).find(|k| k != node).expect("another validator");
    let r = SignedRequest::sign(key, &h.chain.chain, &elsewhere, "GET", &path, b"", now_ms(), Nonce::random()).unwrap();
    let (status, code) = call(signed_headers(&key.public().to_hex(), &elsewhere, &r), &path);
    assert_eq!((status, code.as_str()), (401, "wrong_node"));
    let mut named_here = signed_headers(&key.public().to_hex(), &elsewhere, &r);
    named_here[1].1 = node.to_hex();
    assert_eq!(call(named_here, &path), (401, "bad_signature".into()), "signed for another node, sent naming this one");
    let mut no_node = signed_headers(&key.public().to_hex(), node, &sign(&path, now_ms(), Nonce::random()));
    no_node.remove(1);
    assert_eq!(call(no_node, &path), (401, "signature_incomplete".into()));
}

#[test]
fn coverage_starts_at_the_authorisation_and_ends_at_withdrawal_or_expiry() {
    let h = Harness::new();
    h.commit(vec![]);
    let s1 = Uscc::sample(1);
    let s2 = Uscc::sample(2);
    let rating = h.chain.attestation(0, 1, s1, AttestationKind::CreditRating);
    let rating2 = h.chain.attestation(0, 2, s2, AttestationKind::TaxCredit);
    h.commit(vec![rating.clone(), rating2.clone()]);
    let lender = Caller::Key("bank-0".into(), h.chain.lender_keys[0].clone());
    let by_id = |t: &SignedTransaction| format!("/v1/attestations/{}", t.id().unwrap());
    let code = |(status, body): (u16, String)| -> (u16, String) {
        let v: Value = serde_json::from_str(&body).unwrap();
        (status, v["code"].as_str().unwrap_or("").to_string())
    };
    let listing = |s: &Uscc| format!("/v1/subjects/{s}/attestations");
    assert_eq!(code(h.get_as(&lender, &listing(&s1))), (403, "no_authorisation".into()));
    assert_eq!(code(h.get_as(&lender, &by_id(&rating))), (403, "restricted".into()));
    // Authorised: from the block that commits it.
    let a = h.chain.authorisation(0, 1, s1, Purpose::LoanApplication, now_ms() + 24 * 3600 * 1000);
    let short_until = now_ms() + 1_500;
    let short = h.chain.authorisation(0, 2, s2, Purpose::Guarantee, short_until);
    h.commit(vec![a.clone(), short]);
    assert_eq!(h.get_as(&lender, &by_id(&rating)).0, 200);
    let (status, body) = h.get_as(&lender, &listing(&s1));
    assert_eq!(status, 200);
    assert!(body.contains(&rating.id().unwrap().to_hex()));
    // The other lender still sees nothing of it.
    let other = Caller::Key("bank-1".into(), h.chain.lender_keys[1].clone());
    assert_eq!(code(h.get_as(&other, &by_id(&rating))), (403, "restricted".into()));
    // Expiry is judged by block time, never the node's clock: past the end by the
    // clock, the tip (made before it) still covers the read...
    let deadline = Instant::now() + Duration::from_secs(20);
    while now_ms() <= short_until + 10 {
        assert!(Instant::now() < deadline, "the clock never passed the validity end");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(h.get_as(&lender, &listing(&s2)).0, 200, "the tip's time is before the validity end");
    // ...and the first block made after it ends it.
    h.commit(vec![]);
    assert_eq!(code(h.get_as(&lender, &listing(&s2))), (403, "authorisation_expired".into()));
    assert_eq!(code(h.get_as(&lender, &by_id(&rating2))), (403, "restricted".into()));
    // Withdrawal by an agency: ends at its block.
    let w = h.chain.withdrawal(&h.chain.agency_keys[1], 1, a.id().unwrap(), WithdrawReason::ConsentWithdrawn);
    h.commit(vec![w]);
    assert_eq!(code(h.get_as(&lender, &listing(&s1))), (403, "authorisation_withdrawn".into()));
    assert_eq!(code(h.get_as(&lender, &by_id(&rating))), (403, "restricted".into()));
    // The issuer keeps full access to its own records; agencies see the consent transactions.
    let issuer = Caller::Key("issuer-0".into(), h.chain.issuer_keys[0].clone());
    assert_eq!(h.get_as(&issuer, &by_id(&rating)).0, 200);
    let agency = Caller::Key("agency-0".into(), h.chain.agency_keys[0].clone());
    assert_eq!(h.get_as(&agency, &by_id(&a)).0, 200);
    assert_eq!(code(h.get_as(&Caller::Anonymous, &by_id(&a))), (403, "restricted".into()));
    assert_eq!(h.get_as(&lender, &by_id(&a)).0, 200, "a lender reads its own authorisation");
    assert_eq!(code(h.get_as(&other, &by_id(&a))), (403, "restricted".into()));
}

#[test]
fn an_issuers_listing_does_not_tie_it_to_a_subjects_redacted_entries() {
    let h = Harness::new();
    let s2 = Uscc::sample(2);
    let public = h.chain.attestation(1, 1, s2, AttestationKind::RedList);
    let penalty = h.chain.attestation(1, 2, s2, AttestationKind::CreditRating);
    h.commit(vec![public.clone(), penalty.clone()]);
    let name = h.chain.genesis.issuers[1].name.clone();
    let json = |caller: &Caller, path: &str| -> Value {
        let (status, body) = h.get_as(caller, path);
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    };
    let subject = json(&Caller::Anonymous, &format!("/v1/subjects/{s2}/attestations"));
    let hidden: Vec<&Value> = subject["attestations"].as_array().unwrap().iter().filter(|r| r["redacted"] == true).collect();
    assert_eq!(hidden.len(), 1, "{subject}");
    let listing = json(&Caller::Anonymous, &format!("/v1/issuers/{name}/attestations"));
    let entries = listing["attestations"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{listing}");
    assert_eq!(entries[0]["id"], public.id().unwrap().to_hex());
    // The restricted one: its sequence number, nothing to join on.
    assert_eq!(entries[1], serde_json::json!({"redacted": true, "sequence": 2}));
    let text = listing.to_string();
    assert!(!text.contains(hidden[0]["commitment"].as_str().unwrap()), "{text}");
    // Its issuer sees it in full.
    let issuer = Caller::Key("issuer-1".into(), h.chain.issuer_keys[1].clone());
    let own = json(&issuer, &format!("/v1/issuers/{name}/attestations"));
    assert_eq!(own["attestations"][1]["id"], penalty.id().unwrap().to_hex());
}

#[test]
fn a_node_behind_the_chain_refuses_lenders_reads_until_it_has_caught_up() {
    let h = Harness::new();
    let s1 = Uscc::sample(1);
    let a = h.chain.authorisation(0, 1, s1, Purpose::LoanApplication, now_ms() + 24 * 3600 * 1000);
    h.commit(vec![h.chain.attestation(0, 1, s1, AttestationKind::CreditRating), a]);
    let path = format!("/v1/subjects/{s1}/attestations");
    let lender = Caller::Key("bank-0".into(), h.chain.lender_keys[0].clone());
    assert_eq!(h.get_as(&lender, &path).0, 200);
    // The node learns the chain is eight blocks further on (it may have missed a
    // withdrawal): lenders are sent elsewhere, with the reason.
    let lag = yrd_node::api::LENDER_READ_MAX_LAG_BLOCKS;
    let height = h.shared.height().0;
    h.shared.health.lock().unwrap().liveness.best_known_height = height + lag;
    let (status, body) = h.get_as(&lender, &path);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((status, v["code"].as_str().unwrap()), (503, "catching_up"), "{body}");
    assert!(v["error"].as_str().unwrap().contains(&format!("at height {height} of {} known", height + lag)), "{body}");
    // Others read as before (anonymous: the redacted listing).
    assert_eq!(h.get_as(&Caller::Anonymous, &path).0, 200);
    // A block less is a moment's lag under load: the lender reads again.
    h.shared.health.lock().unwrap().liveness.best_known_height = height + lag - 1;
    assert_eq!(h.get_as(&lender, &path).0, 200);
}

#[test]
fn a_frozen_issuers_key_reads_nothing() {
    use yrd_ledger::governance::Change;
    let h = Harness::new();
    let rating = h.chain.attestation(1, 1, Uscc::sample(2), AttestationKind::CreditRating);
    h.commit(vec![rating.clone()]);
    let path = format!("/v1/attestations/{}", rating.id().unwrap());
    let issuer = Caller::Key("issuer-1".into(), h.chain.issuer_keys[1].clone());
    assert_eq!(h.get_as(&issuer, &path).0, 200, "the issuer reads its own restricted record");
    assert_eq!(h.get_as(&Caller::Anonymous, &path).0, 403);
    // The agencies freeze it (a leaked key): in force from the next block.
    let name = h.chain.genesis.issuers[1].name.clone();
    let p = h.chain.propose(0, 1, vec![Change::FreezeIssuer { name }], 1_000);
    h.commit(vec![p.clone()]);
    h.commit(vec![h.chain.approve(1, 1, p.id().unwrap()), h.chain.approve(2, 1, p.id().unwrap())]);
    h.commit(vec![]);
    let (status, body) = h.get_as(&issuer, &path);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((status, v["code"].as_str().unwrap()), (401, "key_retired"), "{body}");
    assert!(v["error"].as_str().unwrap().contains("frozen"), "{body}");
    // Its listing by issuer is no longer opened to it either.
    let listing = format!("/v1/issuers/{}/attestations", h.chain.genesis.issuers[1].name);
    assert_eq!(h.get_as(&issuer, &listing).0, 401);
}

/// A lender's signed GET, keeping the request: (status, body, receipts as
/// (receipt bytes hex, signature hex)).
fn signed_get(h: &Harness, key: &SecretKey, path: &str) -> (SignedRequest, u16, String, Vec<(String, String)>) {
    let r = SignedRequest::sign(key, &h.chain.chain, &h.node, "GET", path, b"", now_ms(), Nonce::random()).unwrap();
    let mut req = h.agent.get(format!("{}{path}", h.base));
    for (k, v) in signed_headers(&key.public().to_hex(), &h.node, &r) {
        req = req.header(k, v);
    }
    let mut resp = req.call().unwrap();
    let status = resp.status().as_u16();
    let all = |name: &str| -> Vec<String> {
        resp.headers().get_all(name).iter().map(|v| v.to_str().unwrap().to_string()).collect()
    };
    let receipts: Vec<(String, String)> = all("x-yrd-receipt").into_iter().zip(all("x-yrd-receipt-signature")).collect();
    let body = resp.body_mut().with_config().limit(64 << 20).read_to_string().unwrap();
    (r, status, body, receipts)
}

#[test]
fn an_authorised_read_carries_a_node_signed_receipt_and_is_queued_for_the_chain() {
    use yrd_ledger::queries::Receipt;
    let h = Harness::new();
    h.commit(vec![]);
    let s1 = Uscc::sample(1);
    let rating = h.chain.attestation(0, 1, s1, AttestationKind::CreditRating);
    let penalty = h.chain.attestation(1, 1, Uscc::sample(2), AttestationKind::AdministrativePenalty);
    h.commit(vec![rating.clone(), penalty.clone()]);
    let a = h.chain.authorisation(0, 1, s1, Purpose::LoanApplication, now_ms() + 24 * 3600 * 1000);
    h.commit(vec![a.clone()]);
    let tip = h.shared.ledger.read().unwrap().height().0;
    let key = &h.chain.lender_keys[0];
    assert_eq!(h.shared.queries.queued(), 0);
    // The authorised listing: one receipt, about s1, under a, for exactly this body.
    let path = format!("/v1/subjects/{s1}/attestations");
    let (request, status, body, receipts) = signed_get(&h, key, &path);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&rating.id().unwrap().to_hex()));
    assert_eq!(receipts.len(), 1, "one receipt per subject opened");
    let receipt = Receipt::decode(&hex::decode(&receipts[0].0).unwrap()).unwrap();
    let signature = yrd_consensus::crypto::Signature::from_hex(&receipts[0].1).unwrap();
    receipt.verify(&signature).expect("the receipt is signed by the node's key");
    assert_eq!(receipt.node, h.chain.validator_keys[0].public());
    assert_eq!(receipt.chain, h.chain.chain);
    assert_eq!(receipt.request, request.digest().unwrap(), "the receipt names the lender's signed request");
    assert_eq!(receipt.response, sha256(&[body.as_bytes()]), "the receipt names the body received");
    assert_eq!((receipt.subject, receipt.authorisation, receipt.height), (s1, a.id().unwrap(), tip));
    // A forged receipt (another body) does not verify.
    let mut forged = receipt.clone();
    forged.response = sha256(&[b"another answer"]);
    assert!(forged.verify(&signature).is_err());
    assert_eq!(h.shared.queries.queued(), 1, "the query waits to be recorded");
    // A read that opens nothing restricted (a public record by id; the
    // anonymous and the unauthorised) gets no receipt and records nothing.
    let (_, status, _, receipts) = signed_get(&h, key, &format!("/v1/attestations/{}", penalty.id().unwrap()));
    assert_eq!((status, receipts.len()), (200, 0));
    let (_, status, _, receipts) = signed_get(&h, &h.chain.lender_keys[1], &path);
    assert_eq!((status, receipts.len()), (403, 0));
    assert_eq!(h.get_as(&Caller::Anonymous, &path).0, 200);
    assert_eq!(h.shared.queries.queued(), 1);
}

#[test]
fn a_full_query_queue_refuses_the_read_rather_than_serve_it_unrecorded() {
    let h = Harness::with_queries(yrd_node::queries::QueriesConfig { flush_ms: 500, batch: 2, max_queued: 2 });
    h.commit(vec![]);
    let s1 = Uscc::sample(1);
    let rating = h.chain.attestation(0, 1, s1, AttestationKind::CreditRating);
    h.commit(vec![rating.clone()]);
    h.commit(vec![h.chain.authorisation(0, 1, s1, Purpose::LoanApplication, now_ms() + 24 * 3600 * 1000)]);
    let key = &h.chain.lender_keys[0];
    let path = format!("/v1/attestations/{}", rating.id().unwrap());
    for _ in 0..2 {
        let (_, status, _, receipts) = signed_get(&h, key, &path);
        assert_eq!((status, receipts.len()), (200, 1));
    }
    let (_, status, body, receipts) = signed_get(&h, key, &path);
    assert_eq!(status, 503, "{body}");
    assert!(receipts.is_empty());
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["code"], "query_queue_full");
    assert!(!body.contains(&rating.id().unwrap().to_hex()), "nothing of the record is served");
    assert_eq!(h.shared.queries.queued(), 2);
    // Anonymous and public reads are not affected.
    assert_eq!(h.get_as(&Caller::Anonymous, &format!("/v1/subjects/{s1}/attestations")).0, 200);
}

#[test]
fn query_records_are_listed_with_proofs_to_agencies_and_to_each_lender_for_its_own() {
    use yrd_ledger::queries::{QueryEntry, QueryRecords};
    let h = Harness::new();
    h.commit(vec![]);
    let s1 = Uscc::sample(1);
    let rating = h.chain.attestation(0, 1, s1, AttestationKind::CreditRating);
    h.commit(vec![rating]);
    let a0 = h.chain.authorisation(0, 1, s1, Purpose::LoanApplication, now_ms() + 24 * 3600 * 1000);
    let a1 = h.chain.authorisation(1, 1, s1, Purpose::Guarantee, now_ms() + 24 * 3600 * 1000);
    h.commit(vec![a0.clone(), a1.clone()]);
    let served = h.shared.ledger.read().unwrap().height().0;
    // Each lender reads; the node's queued entries are committed in a record.
    let path = format!("/v1/subjects/{s1}/attestations");
    let (r0, s0, _, _) = signed_get(&h, &h.chain.lender_keys[0], &path);
    let (r1, s1_, _, _) = signed_get(&h, &h.chain.lender_keys[1], &path);
    assert_eq!((s0, s1_), (200, 200));
    let entry = |request: SignedRequest, auth: TxId| QueryEntry {
        request,
        subject: s1,
        authorisation: auth,
        response: sha256(&[b"x"]),
        served_at_ms: now_ms(),
        height: served,
    };
    let record = h.chain.sign_with(
        &h.chain.validator_keys[0],
        1,
        TxBody::RecordQueries(QueryRecords { entries: vec![entry(r0.clone(), a0.id().unwrap()), entry(r1, a1.id().unwrap())] }),
    );
    h.commit(vec![record]);
    let route = format!("/v1/audit/queries/{s1}");
    let genesis = h.chain.genesis.clone();
    let verify = |body: &str| -> yrd_ledger::proof_queries::QueryAuditVerdict {
        match yrd_ledger::proof::verify_file(&genesis, &yrd_ledger::proof::parse_file(body.as_bytes()).unwrap(), 0).unwrap() {
            yrd_ledger::proof::AnyVerdict::Queries(v) => v,
            other => panic!("not a query audit: {other:?}"),
        }
    };
    let agency = Caller::Key("agency-0".into(), h.chain.agency_keys[0].clone());
    let (status, body) = h.get_as(&agency, &route);
    assert_eq!(status, 200, "{body}");
    let v = verify(&body);
    assert_eq!(v.queries.len(), 2);
    assert_eq!(v.queries[0].request, r0.digest().unwrap());
    assert_eq!((v.queries[0].lender.as_str(), v.queries[1].lender.as_str()), ("bank-0", "bank-1"));
    assert_eq!(v.queries[0].served_height, served);
    // A lender sees its own queries only, in records that hold nothing else: the
    // file carries each record transaction whole, so the record above (bank-0's
    // and bank-1's entries, as a Byzantine or older recorder may sign) is left
    // out of bank-1's file; one holding bank-1's entries alone is listed.
    let bank1 = Caller::Key("bank-1".into(), h.chain.lender_keys[1].clone());
    let (status, body) = h.get_as(&bank1, &route);
    assert_eq!(status, 200);
    assert!(verify(&body).queries.is_empty(), "a mixed record was shown to a lender: {body}");
    let (r1b, status, _, _) = signed_get(&h, &h.chain.lender_keys[1], &path);
    assert_eq!(status, 200);
    let own = h.chain.sign_with(
        &h.chain.validator_keys[0],
        2,
        TxBody::RecordQueries(QueryRecords { entries: vec![entry(r1b.clone(), a1.id().unwrap())] }),
    );
    h.commit(vec![own]);
    let (status, body) = h.get_as(&bank1, &route);
    assert_eq!(status, 200);
    let v = verify(&body);
    assert_eq!(v.queries.iter().map(|q| q.lender.as_str()).collect::<Vec<_>>(), vec!["bank-1"]);
    assert_eq!(v.queries[0].request, r1b.digest().unwrap());
    // Every request key in every record transaction of the file is bank-1's.
    let file: Value = serde_json::from_str(&body).unwrap();
    for rec in file["records"].as_array().unwrap() {
        let tx_hex = rec["record"]["included"]["tx"].as_str().unwrap();
        let tx = yrd_ledger::tx::SignedTransaction::decode(&hex::decode(tx_hex).unwrap()).unwrap();
        let TxBody::RecordQueries(q) = &tx.tx.body else { panic!("not a record") };
        assert!(q.entries.iter().all(|e| e.request.key == h.chain.lender_keys[1].public()), "{body}");
    }
    // The agency still sees all three.
    let (_, body) = h.get_as(&agency, &route);
    assert_eq!(verify(&body).queries.len(), 3);
    // Nobody else.
    for caller in [Caller::Anonymous, Caller::Key("issuer-0".into(), h.chain.issuer_keys[0].clone())] {
        let (status, body) = h.get_as(&caller, &route);
        assert_eq!(status, 403, "{}: {body}", caller.name());
    }
    // A tampered file is refused: the lender's request altered.
    let (_, body) = h.get_as(&agency, &route);
    let mut file: Value = serde_json::from_str(&body).unwrap();
    let tx_hex = file["records"][0]["record"]["included"]["tx"].as_str().unwrap().to_string();
    let mut tx = yrd_ledger::tx::SignedTransaction::decode(&hex::decode(&tx_hex).unwrap()).unwrap();
    if let TxBody::RecordQueries(q) = &mut tx.tx.body {
        q.entries[0].request.path = "/v1/subjects/other".into();
    }
    file["records"][0]["record"]["included"]["tx"] = Value::String(hex::encode(tx.encode().unwrap()));
    let err = yrd_ledger::proof::verify_file(&genesis, &yrd_ledger::proof::parse_file(file.to_string().as_bytes()).unwrap(), 0)
        .unwrap_err();
    assert!(matches!(err.check, yrd_ledger::proof::Check::IssuerSignature | yrd_ledger::proof::Check::LogInclusion), "{err:?}");
    // An entry about another subject listed under this one is refused.
    let mut file: Value = serde_json::from_str(&body).unwrap();
    file["subject"] = Value::String(Uscc::sample(2).as_str().to_string());
    let err = yrd_ledger::proof::verify_file(&genesis, &yrd_ledger::proof::parse_file(file.to_string().as_bytes()).unwrap(), 0)
        .unwrap_err();
    assert_eq!(err.check, yrd_ledger::proof::Check::QueryRecord, "{err:?}");
}
