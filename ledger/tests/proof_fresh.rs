//! What a lender needs besides a valid proof: whether a record applies yet
//! (`not-yet-valid` before its `valid_from_ms`, docs/proofs.md step 13) and
//! how old the answer is (the anchor's age, refused past a maximum age:
//! `check_freshness`, step 32).

use yrd_consensus::crypto::sha256;
use yrd_ledger::proof::{self, AnyVerdict, Check, ProofFile};
use yrd_ledger::store::{Ledger, Status};
use yrd_ledger::testkit::TestChain;
use yrd_ledger::tx::{Attestation, AttestationKind, RevocationReason, SignedTransaction, TxBody};
use yrd_ledger::uscc::Uscc;

/// The times of the records: valid from `FROM` until `UNTIL`.
const FROM: u64 = 1_900_000_000_000;
const UNTIL: u64 = FROM + 86_400_000;

fn dated(chain: &TestChain, seq: u64, subject: Uscc) -> SignedTransaction {
    let a = Attestation {
        subject,
        kind: AttestationKind::CourtEnforcement,
        grade: None,
        severity: None,
        evidence: sha256(&[b"court", &seq.to_be_bytes()]),
        issued_at_ms: FROM - 1_000,
        valid_from_ms: FROM,
        valid_until_ms: Some(UNTIL),
        fields: vec![],
    };
    chain.sign(1, seq, TxBody::Attest(a))
}

#[test]
fn a_record_before_its_valid_from_is_not_yet_valid_then_active_then_expired() {
    let dir = tempfile::tempdir().unwrap();
    let chain = TestChain::new(4, 2);
    let mut ledger = Ledger::open(dir.path(), chain.genesis.clone()).unwrap();
    let s = Uscc::sample(4);
    let future = dated(&chain, 1, s);
    let revoked = dated(&chain, 2, s);
    chain.commit_next(&mut ledger, vec![future.clone(), revoked.clone()]).unwrap();
    let rev = chain.revocation(1, 3, revoked.id().unwrap(), RevocationReason::Error);
    chain.commit_next(&mut ledger, vec![rev]).unwrap();
    let bundle = proof::bundle(&ledger, &future.id().unwrap()).unwrap();
    let status_at = |now: u64| proof::verify_bundle(&chain.genesis, &bundle, now).unwrap().attestation.status;
    assert_eq!(status_at(FROM - 1), Status::NotYetValid);
    assert_eq!(status_at(FROM), Status::Active);
    assert_eq!(status_at(UNTIL - 1), Status::Active);
    assert_eq!(status_at(UNTIL), Status::Expired);
    // Revoked wins over not yet valid.
    let rb = proof::bundle(&ledger, &revoked.id().unwrap()).unwrap();
    assert!(matches!(proof::verify_bundle(&chain.genesis, &rb, FROM - 1).unwrap().attestation.status, Status::Revoked { .. }));
    // A report says the same per record; so does the node's index (what the API shows).
    let report = proof::report(&ledger, &s).unwrap();
    let v = proof::verify_report(&chain.genesis, &report, FROM - 1).unwrap();
    let names: Vec<&str> = v.attestations.iter().map(|a| a.status.name()).collect();
    assert_eq!(names, ["not-yet-valid", "revoked"]);
    assert_eq!(ledger.tx_record(&future.id().unwrap(), FROM - 1).unwrap().unwrap().status, Status::NotYetValid);
    assert_eq!(ledger.tx_record(&future.id().unwrap(), FROM).unwrap().unwrap().status, Status::Active);
    // The JSON a verdict is printed as.
    assert_eq!(serde_json::to_value(Status::NotYetValid).unwrap(), serde_json::json!({"state": "not-yet-valid"}));
}

#[test]
fn a_stale_file_is_refused_past_the_maximum_age_and_its_age_is_always_given() {
    let dir = tempfile::tempdir().unwrap();
    let chain = TestChain::new(4, 2);
    let mut ledger = Ledger::open(dir.path(), chain.genesis.clone()).unwrap();
    let s = Uscc::sample(5);
    let a = chain.attestation(0, 1, s, AttestationKind::RedList);
    chain.commit_next(&mut ledger, vec![a.clone()]).unwrap();
    let anchor_ms = TestChain::block_time_ms(1);
    let file = ProofFile::Bundle(proof::bundle(&ledger, &a.id().unwrap()).unwrap());
    let ten_min = 600_000;
    // Fresh: 9 minutes old against a 10-minute maximum.
    let (v, f) = proof::verify_file_fresh(&chain.genesis, &file, anchor_ms + 540_000, Some(ten_min)).unwrap();
    assert!(matches!(v, AnyVerdict::Bundle(_)));
    assert_eq!((f.anchor_height, f.anchor_time_ms, f.age_ms, f.max_age_ms), (1, anchor_ms, 540_000, Some(ten_min)));
    // Exactly the maximum age passes; one millisecond more does not.
    proof::verify_file_fresh(&chain.genesis, &file, anchor_ms + ten_min, Some(ten_min)).unwrap();
    let e = proof::verify_file_fresh(&chain.genesis, &file, anchor_ms + ten_min + 1, Some(ten_min)).unwrap_err();
    assert_eq!(e.check, Check::Freshness, "{e}");
    assert!(e.message.contains("block 1") && e.message.contains("10m 0.001s") && e.message.contains("10m"), "{e}");
    // Without a maximum, any age passes and is still reported.
    let (_, f) = proof::verify_file_fresh(&chain.genesis, &file, anchor_ms + 7 * 86_400_000, None).unwrap();
    assert_eq!(f.age_ms, 7 * 86_400_000);
    // Judged at a time before the anchor: a negative age, never refused as stale.
    let (_, f) = proof::verify_file_fresh(&chain.genesis, &file, anchor_ms - 5, Some(0)).unwrap();
    assert_eq!(f.age_ms, -5);
    // A newer block makes a newer anchor: the same record, fresh again.
    let b = chain.attestation(0, 2, s, AttestationKind::RedList);
    chain.commit_next(&mut ledger, vec![b]).unwrap();
    let newer = ProofFile::Bundle(proof::bundle(&ledger, &a.id().unwrap()).unwrap());
    let (_, f) = proof::verify_file_fresh(&chain.genesis, &newer, TestChain::block_time_ms(2), Some(0)).unwrap();
    assert_eq!((f.anchor_height, f.age_ms), (2, 0));
}
