//! Enterprises' authorisations on the ledger (docs/access.md): a lender in force
//! records an authorisation, which covers `(lender, subject)` from the height
//! that commits it until its validity ends or it is withdrawn; withdrawals by
//! the lender or an agency; typed refusals for everything else; lenders join,
//! leave and rotate keys through governance; query records are indexed per
//! subject; the indexes survive a reopen and the audit replays them.

use yrd_consensus::crypto::{sha256, SecretKey};
use yrd_ledger::consent::{coverage, Coverage, GrantState, Purpose, WithdrawReason, MAX_AUTHORISATION_VALIDITY_MS};
use yrd_ledger::genesis::{ChainParams, Genesis, GenesisError, LenderInfo};
use yrd_ledger::governance::{Change, Outcome, RetireReason};
use yrd_ledger::queries::{Nonce, QueryEntry, QueryRecords, SignedRequest};
use yrd_ledger::store::{Ledger, Status};
use yrd_ledger::testkit::TestChain;
use yrd_ledger::tx::{AttestationKind, SignedTransaction, TxBody, TxId};
use yrd_ledger::uscc::Uscc;
use yrd_ledger::validate::TxError;

fn open(chain: &TestChain) -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path(), chain.genesis.clone()).unwrap();
    (dir, ledger)
}

fn commit(chain: &TestChain, ledger: &mut Ledger, txs: Vec<SignedTransaction>) {
    chain.commit_next(ledger, txs).unwrap_or_else(|e| panic!("height {}: {e}", ledger.height().next()));
}

/// The verdict the ledger gives `tx` as part of the next block.
fn admit(ledger: &Ledger, tx: &SignedTransaction) -> Result<(), TxError> {
    let membership = ledger.next_membership();
    yrd_ledger::validate::check_stateless(&membership, &ledger.chain_id(), tx)?;
    ledger.check_tx(tx, &tx.id().unwrap()).expect("the store reads")
}

/// The rule code `tx` is refused with as part of the next block.
fn refused(ledger: &Ledger, tx: &SignedTransaction) -> &'static str {
    match admit(ledger, tx) {
        Ok(()) => panic!("{} was accepted", tx.tx.body.type_name()),
        Err(e) => e.code(),
    }
}

fn id(t: &SignedTransaction) -> TxId {
    t.id().unwrap()
}

/// A validity end `days` after the block the next commit makes.
fn until(ledger: &Ledger, days: u64) -> u64 {
    TestChain::block_time_ms(ledger.height().0 + 1) + days * 24 * 3600 * 1000
}

fn s(i: u64) -> Uscc {
    Uscc::sample(i)
}

#[test]
fn an_authorisation_covers_its_lender_and_subject_from_its_height() {
    let chain = TestChain::new(4, 2);
    let (_d, mut ledger) = open(&chain);
    commit(&chain, &mut ledger, vec![]);
    assert!(ledger.grants(&s(1), "bank-0").unwrap().is_empty(), "nothing before the authorisation");
    let end = until(&ledger, 90);
    let a = chain.authorisation(0, 1, s(1), Purpose::LoanApplication, end);
    commit(&chain, &mut ledger, vec![a.clone()]);
    let grants = ledger.grants(&s(1), "bank-0").unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!((grants[0].id, grants[0].height, grants[0].purpose, grants[0].valid_until_ms), (id(&a), 2, Purpose::LoanApplication, end));
    let now = TestChain::block_time_ms(3);
    match coverage(&grants, u64::MAX, now) {
        Coverage::Covered(g) => assert_eq!(g.id, id(&a)),
        other => panic!("expected covered, got {other:?}"),
    }
    // Another lender, another subject: nothing.
    assert_eq!(coverage(&ledger.grants(&s(1), "bank-1").unwrap(), u64::MAX, now), Coverage::None);
    assert_eq!(coverage(&ledger.grants(&s(2), "bank-0").unwrap(), u64::MAX, now), Coverage::None);
    // The transaction is a consent transaction on the ledger.
    assert_eq!(ledger.tx_record(&id(&a), now).unwrap().map(|r| r.status), Some(Status::Consent));
    // Expiry ends it (the validity end itself is not covered).
    match coverage(&grants, u64::MAX, end) {
        Coverage::Ended(g, GrantState::Expired { at_ms }) => assert_eq!((g.id, at_ms), (id(&a), end)),
        other => panic!("expected expired, got {other:?}"),
    }
}

#[test]
fn validity_must_end_after_the_block_and_within_a_year() {
    let chain = TestChain::new(4, 2);
    let (_d, mut ledger) = open(&chain);
    commit(&chain, &mut ledger, vec![]);
    // Block 2 is made at block_time_ms(2); admission uses the last block's time
    // (or later), so a year after block 1 is within a year of block 2.
    let past = TestChain::block_time_ms(1);
    let a = chain.authorisation(0, 1, s(1), Purpose::Guarantee, past);
    assert_eq!(refused(&ledger, &a), "bad_validity");
    let block2 = TestChain::block_time_ms(2);
    let too_long = block2 + MAX_AUTHORISATION_VALIDITY_MS + 1;
    let a = chain.authorisation(0, 2, s(1), Purpose::Guarantee, too_long);
    assert_eq!(refused(&ledger, &a), "bad_validity");
    // The block builder leaves it out.
    let err = chain.commit_next(&mut ledger, vec![a]).unwrap_err();
    assert!(err.contains("BadValidity"), "{err}");
    assert!(ledger.grants(&s(1), "bank-0").unwrap().is_empty());
    let ok = chain.authorisation(0, 3, s(1), Purpose::Guarantee, TestChain::block_time_ms(ledger.height().0 + 1) + MAX_AUTHORISATION_VALIDITY_MS);
    commit(&chain, &mut ledger, vec![ok]);
    assert_eq!(ledger.grants(&s(1), "bank-0").unwrap().len(), 1, "exactly one year is allowed");
    // Not after issued_at: a format error.
    let mut bad = chain.authorisation(0, 4, s(1), Purpose::Guarantee, until(&ledger, 10));
    if let TxBody::Authorise(a) = &mut bad.tx.body {
        a.issued_at_ms = a.valid_until_ms;
    }
    let bad = chain.sign_with(&chain.lender_keys[0], 4, bad.tx.body.clone());
    assert_eq!(refused(&ledger, &bad), "format");
}

#[test]
fn only_a_lender_in_force_records_an_authorisation() {
    let chain = TestChain::new(4, 2);
    let (_d, mut ledger) = open(&chain);
    commit(&chain, &mut ledger, vec![]);
    let body = chain.authorisation(0, 1, s(1), Purpose::LoanApplication, until(&ledger, 30)).tx.body;
    for key in [&chain.issuer_keys[0], &chain.agency_keys[0], &chain.validator_keys[0], &SecretKey::from_seed(b"stranger")] {
        let t = chain.sign_with(key, 1, body.clone());
        assert_eq!(refused(&ledger, &t), "not_a_lender");
    }
    // A block that carries one anyway is invalid (a proposer cannot slip it in).
    let forged = chain.sign_with(&chain.issuer_keys[0], 1, body);
    let built = ledger
        .build_block(vec![forged], ledger.validators_at(ledger.height().next()).unwrap().proposer(ledger.height().next(), yrd_consensus::types::Round(0)), yrd_consensus::types::Round(0), TestChain::block_time_ms(2))
        .unwrap();
    assert_eq!(built.rejected.len(), 1);
    assert_eq!(built.rejected[0].1.code(), "not_a_lender");
}

#[test]
fn a_withdrawal_by_the_lender_or_an_agency_ends_coverage_from_its_height() {
    let chain = TestChain::new(4, 2);
    let (_d, mut ledger) = open(&chain);
    commit(&chain, &mut ledger, vec![]);
    let end = until(&ledger, 200);
    let a1 = chain.authorisation(0, 1, s(1), Purpose::LoanApplication, end);
    let a2 = chain.authorisation(0, 2, s(2), Purpose::PostLoanMonitoring, end);
    let a3 = chain.authorisation(1, 1, s(1), Purpose::Guarantee, end);
    // Withdrawn in the block that records it: refused (names an earlier block).
    commit(&chain, &mut ledger, vec![a1.clone(), a2.clone(), a3.clone()]);

    // Another lender may not withdraw bank-0's authorisation.
    let w = chain.withdrawal(&chain.lender_keys[1], 2, id(&a1), WithdrawReason::ConsentWithdrawn);
    assert_eq!(refused(&ledger, &w), "withdraw_not_allowed");
    // Unknown target, and a target that is not an authorisation.
    let att = chain.attestation(0, 1, s(1), AttestationKind::CreditRating);
    commit(&chain, &mut ledger, vec![att.clone()]);
    let w = chain.withdrawal(&chain.lender_keys[0], 3, TxId(sha256(&[b"nothing"])), WithdrawReason::Error);
    assert_eq!(refused(&ledger, &w), "authorisation_unknown");
    let w = chain.withdrawal(&chain.lender_keys[0], 3, id(&att), WithdrawReason::Error);
    assert_eq!(refused(&ledger, &w), "not_an_authorisation");
    // Nobody outside the membership.
    let w = chain.withdrawal(&SecretKey::from_seed(b"stranger"), 1, id(&a1), WithdrawReason::ConsentWithdrawn);
    assert_eq!(refused(&ledger, &w), "withdraw_not_allowed");

    // The lender withdraws a1; an agency (admin key) withdraws a2; an issuer a3.
    let w1 = chain.withdrawal(&chain.lender_keys[0], 3, id(&a1), WithdrawReason::ConsentWithdrawn);
    let w2 = chain.withdrawal(&chain.agency_keys[2], 1, id(&a2), WithdrawReason::ConsentWithdrawn);
    let w3 = chain.withdrawal(&chain.issuer_keys[1], 2, id(&a3), WithdrawReason::PurposeEnded);
    let before = ledger.height().0;
    commit(&chain, &mut ledger, vec![w1.clone(), w2.clone(), w3.clone()]);
    let h = before + 1;
    let now = TestChain::block_time_ms(h + 1);
    for (subject, lender, by) in [(s(1), "bank-0", &w1), (s(2), "bank-0", &w2), (s(1), "bank-1", &w3)] {
        let grants = ledger.grants(&subject, lender).unwrap();
        match coverage(&grants, u64::MAX, now) {
            Coverage::Ended(_, GrantState::Withdrawn { by: b, height }) => assert_eq!((b, height), (id(by), h)),
            other => panic!("{subject} {lender}: expected withdrawn, got {other:?}"),
        }
    }
    // Twice: refused with the first withdrawal named.
    let again = chain.withdrawal(&chain.agency_keys[0], 1, id(&a1), WithdrawReason::ConsentWithdrawn);
    match admit(&ledger, &again) {
        Err(TxError::Consent(yrd_ledger::consent::ConsentError::AlreadyWithdrawn { id: a, by })) => {
            assert_eq!((a, by), (id(&a1), id(&w1)))
        }
        other => panic!("expected already_withdrawn, got {other:?}"),
    }
    // A new authorisation covers again (a renewal after a withdrawal).
    let renewed = chain.authorisation(0, 4, s(1), Purpose::LoanApplication, until(&ledger, 30));
    commit(&chain, &mut ledger, vec![renewed.clone()]);
    match coverage(&ledger.grants(&s(1), "bank-0").unwrap(), u64::MAX, TestChain::block_time_ms(ledger.height().0 + 1)) {
        Coverage::Covered(g) => assert_eq!(g.id, id(&renewed)),
        other => panic!("expected covered by the renewal, got {other:?}"),
    }
}

#[test]
fn a_withdrawal_in_the_same_block_as_its_authorisation_is_refused() {
    let chain = TestChain::new(4, 2);
    let (_d, mut ledger) = open(&chain);
    commit(&chain, &mut ledger, vec![]);
    let a = chain.authorisation(0, 1, s(1), Purpose::LoanApplication, until(&ledger, 30));
    let w = chain.withdrawal(&chain.lender_keys[0], 2, id(&a), WithdrawReason::Error);
    let h = ledger.height().next();
    let set = ledger.validators_at(h).unwrap();
    let built = ledger
        .build_block(vec![a.clone(), w], set.proposer(h, yrd_consensus::types::Round(0)), yrd_consensus::types::Round(0), TestChain::block_time_ms(h.0))
        .unwrap();
    assert_eq!(built.block.txs.len(), 1);
    assert_eq!(built.rejected.len(), 1);
    assert_eq!(built.rejected[0].1.code(), "authorisation_unknown");
}

#[test]
fn an_expired_authorisation_cannot_be_withdrawn() {
    let chain = TestChain::new(4, 2);
    let (_d, mut ledger) = open(&chain);
    commit(&chain, &mut ledger, vec![]);
    let end = TestChain::block_time_ms(2) + 1_000;
    let a = chain.authorisation(0, 1, s(1), Purpose::LoanApplication, end);
    commit(&chain, &mut ledger, vec![a.clone()]);
    // A block made after the end.
    chain.commit_next_at(&mut ledger, vec![], &[], end + 5).unwrap();
    let w = chain.withdrawal(&chain.lender_keys[0], 2, id(&a), WithdrawReason::ConsentWithdrawn);
    assert_eq!(refused(&ledger, &w), "authorisation_expired");
}

#[test]
fn sequence_numbers_of_lenders_are_single_use() {
    let chain = TestChain::new(4, 2);
    let (_d, mut ledger) = open(&chain);
    commit(&chain, &mut ledger, vec![]);
    let a = chain.authorisation(0, 7, s(1), Purpose::LoanApplication, until(&ledger, 30));
    commit(&chain, &mut ledger, vec![a.clone()]);
    assert_eq!(refused(&ledger, &a), "duplicate");
    let b = chain.authorisation(0, 7, s(2), Purpose::LoanApplication, until(&ledger, 30));
    assert_eq!(refused(&ledger, &b), "sequence_used");
}

/// Runs an approved proposal of `changes` and waits for its effective height.
fn govern(chain: &TestChain, ledger: &mut Ledger, seq: u64, changes: Vec<Change>) -> u64 {
    let p = chain.propose(0, seq, changes, ledger.height().0 + 100);
    commit(chain, ledger, vec![p.clone()]);
    commit(chain, ledger, vec![chain.approve(1, seq, id(&p)), chain.approve(2, seq, id(&p))]);
    let effective = match ledger.gov().proposal(&id(&p)).unwrap().outcome.clone() {
        Outcome::Approved { effective, .. } => effective,
        other => panic!("proposal not approved: {other:?}"),
    };
    while ledger.height().0 + 1 < effective {
        commit(chain, ledger, vec![]);
    }
    effective
}

#[test]
fn lenders_join_rotate_and_leave_through_governance() {
    let chain = TestChain::new(4, 2);
    let (dir, mut ledger) = open(&chain);
    commit(&chain, &mut ledger, vec![]);
    let newbank = SecretKey::from_seed(b"ningbo-bank");
    let info = LenderInfo { name: "ningbo-bank".into(), sponsor: "zhejiang".into(), key: newbank.public() };
    let a = chain.sign_with(&newbank, 1, chain.authorisation(0, 1, s(1), Purpose::Guarantee, until(&ledger, 30)).tx.body);
    assert_eq!(refused(&ledger, &a), "not_a_lender");
    govern(&chain, &mut ledger, 1, vec![Change::AddLender(info.clone())]);
    // In force from its effective height (the next block).
    let a = chain.sign_with(&newbank, 1, chain.authorisation(0, 1, s(1), Purpose::Guarantee, until(&ledger, 300)).tx.body);
    commit(&chain, &mut ledger, vec![a.clone()]);
    assert_eq!(ledger.grants(&s(1), "ningbo-bank").unwrap().len(), 1);

    // A sponsor that is not an agency, a name taken: the proposal fails.
    let bad = LenderInfo { name: "x-bank".into(), sponsor: "nobody".into(), key: SecretKey::from_seed(b"x").public() };
    assert!(ledger.next_membership().clone().as_ref().clone().apply(&Change::AddLender(bad), 0).is_err());
    let dup = LenderInfo { name: "bank-0".into(), sponsor: "shanghai".into(), key: SecretKey::from_seed(b"y").public() };
    assert!(ledger.next_membership().as_ref().clone().apply(&Change::AddLender(dup), 0).is_err());
    // The sponsor cannot leave while it sponsors a lender.
    assert!(ledger.next_membership().as_ref().clone().apply(&Change::RemoveAgency { name: "zhejiang".into() }, 0).is_err());

    // Rotation: the old key is retired, the authorisation (by name) still covers.
    let rotated = SecretKey::from_seed(b"ningbo-bank-2");
    govern(&chain, &mut ledger, 2, vec![Change::RotateLenderKey { name: "ningbo-bank".into(), key: rotated.public() }]);
    let old = chain.sign_with(&newbank, 2, chain.authorisation(0, 1, s(2), Purpose::Guarantee, until(&ledger, 30)).tx.body);
    assert_eq!(refused(&ledger, &old), "key_retired");
    let now = TestChain::block_time_ms(ledger.height().0 + 1);
    assert!(matches!(coverage(&ledger.grants(&s(1), "ningbo-bank").unwrap(), u64::MAX, now), Coverage::Covered(_)));
    // The rotated key withdraws the authorisation its old key recorded.
    let w = chain.withdrawal(&rotated, 1, id(&a), WithdrawReason::PurposeEnded);
    commit(&chain, &mut ledger, vec![w]);

    // Removal: the key is retired and the name never comes back.
    govern(&chain, &mut ledger, 3, vec![Change::RemoveLender { name: "ningbo-bank".into() }]);
    let m = ledger.next_membership();
    assert!(m.lender_by_name("ningbo-bank").is_none());
    let r = m.retired_key(&rotated.public()).unwrap();
    assert_eq!(r.reason, RetireReason::Removed);
    let again = LenderInfo { name: "ningbo-bank".into(), sponsor: "zhejiang".into(), key: SecretKey::from_seed(b"z").public() };
    assert!(m.as_ref().clone().apply(&Change::AddLender(again), 0).is_err(), "a removed lender's name is never reused");
    let late = chain.sign_with(&rotated, 2, chain.authorisation(0, 1, s(3), Purpose::Guarantee, until(&ledger, 30)).tx.body);
    assert_eq!(refused(&ledger, &late), "key_retired");

    // The indexes survive a reopen and the audit replays them.
    drop(ledger);
    let ledger = Ledger::open(dir.path(), chain.genesis.clone()).unwrap();
    assert_eq!(ledger.grants(&s(1), "ningbo-bank").unwrap().len(), 1);
    drop(ledger);
    yrd_ledger::audit::verify_store(dir.path(), &chain.genesis).unwrap();
}

#[test]
fn restricted_kinds_are_a_chain_parameter_with_the_law_s_defaults() {
    let p = ChainParams::default();
    for k in [AttestationKind::CreditRating, AttestationKind::TaxCredit, AttestationKind::Commitment] {
        assert!(p.is_restricted(k), "{k} is restricted by default");
    }
    for k in [AttestationKind::RedList, AttestationKind::SeriousDishonesty, AttestationKind::AdministrativePenalty, AttestationKind::CourtEnforcement] {
        assert!(!p.is_restricted(k), "{k} is public by law");
    }
    let unsorted =
        ChainParams { restricted_kinds: vec![AttestationKind::TaxCredit, AttestationKind::CreditRating], ..Default::default() };
    assert!(unsorted.validate().is_err());
    // Changed by governance (set-params).
    let chain = TestChain::new(4, 2);
    let (_d, mut ledger) = open(&chain);
    commit(&chain, &mut ledger, vec![]);
    let params = ChainParams { restricted_kinds: vec![AttestationKind::TaxCredit], ..Default::default() };
    govern(&chain, &mut ledger, 1, vec![Change::SetParams(params)]);
    let m = ledger.next_membership();
    assert!(m.params.is_restricted(AttestationKind::TaxCredit));
    assert!(!m.params.is_restricted(AttestationKind::CreditRating));
    // A genesis JSON without the field gets the defaults.
    let mut json: serde_json::Value = serde_json::from_str(&chain.genesis.to_json_pretty()).unwrap();
    json["params"].as_object_mut().unwrap().remove("restricted_kinds");
    json.as_object_mut().unwrap().remove("lenders");
    let g: Genesis = serde_json::from_value(json).unwrap();
    assert_eq!(g.params.restricted_kinds, ChainParams::default().restricted_kinds);
    assert!(g.lenders.is_empty());
}

#[test]
fn the_genesis_checks_its_lenders() {
    let chain = TestChain::new(4, 2);
    let mut g = chain.genesis.clone();
    g.lenders[0].sponsor = "nobody".into();
    assert!(matches!(g.validate(), Err(GenesisError::UnknownSponsor { .. })));
    let mut g = chain.genesis.clone();
    g.lenders[1].key = g.issuers[0].key;
    assert!(matches!(g.validate(), Err(GenesisError::DuplicateKey(_))));
    let mut g = chain.genesis.clone();
    g.lenders[1].name = g.lenders[0].name.clone();
    assert!(matches!(g.validate(), Err(GenesisError::DuplicateName(_))));
    // A lender may share a name with a validator (its own namespace).
    let mut g = chain.genesis.clone();
    g.lenders[1].name = "shanghai".into();
    g.validate().unwrap();
}

/// A query by lender `lender` to validator `node` about `subject` under
/// `authorisation`, served at committed height `height` (time `served_at_ms`).
#[allow(clippy::too_many_arguments)]
fn query_at(chain: &TestChain, node: usize, lender: usize, subject: Uscc, authorisation: TxId, height: u64, served_at_ms: u64, n: u8) -> QueryEntry {
    let path = format!("/v1/subjects/{subject}/attestations");
    let to = chain.validator_keys[node].public();
    let request =
        SignedRequest::sign(&chain.lender_keys[lender], &chain.chain, &to, "GET", &path, b"", served_at_ms - 10, Nonce([n; 16])).unwrap();
    QueryEntry { request, subject, authorisation, response: sha256(&[&[n]]), served_at_ms, height }
}

/// A query served at height 2 (where the tests commit their authorisations).
fn query(chain: &TestChain, node: usize, lender: usize, subject: Uscc, authorisation: TxId, served_at_ms: u64, n: u8) -> QueryEntry {
    query_at(chain, node, lender, subject, authorisation, 2, served_at_ms, n)
}

fn record(chain: &TestChain, node: usize, seq: u64, entries: Vec<QueryEntry>) -> SignedTransaction {
    chain.sign_with(&chain.validator_keys[node], seq, TxBody::RecordQueries(QueryRecords { entries }))
}

/// The reason of the `bad_query_record` refusal of `tx`.
fn bad_record(ledger: &Ledger, tx: &SignedTransaction) -> String {
    match admit(ledger, tx) {
        Err(TxError::Consent(e @ yrd_ledger::consent::ConsentError::BadQueryRecord { .. })) => e.to_string(),
        other => panic!("expected bad_query_record, got {other:?}"),
    }
}

#[test]
fn a_query_record_names_a_committed_height_its_authorisation_covered_and_comes_within_the_lag() {
    use yrd_ledger::queries::MAX_RECORD_LAG_BLOCKS;
    let chain = TestChain::new(4, 2);
    let (dir, mut ledger) = open(&chain);
    commit(&chain, &mut ledger, vec![]);
    // Authorisation a at height 2, valid until just after block 4's time.
    let a = chain.authorisation(0, 1, s(1), Purpose::LoanApplication, TestChain::block_time_ms(4) + 1);
    let b = chain.authorisation(0, 2, s(2), Purpose::LoanApplication, until(&ledger, 30));
    commit(&chain, &mut ledger, vec![a.clone(), b.clone()]);
    let t = TestChain::block_time_ms(3);
    // Height 2 is the tip: a record of a read at height 2 goes into block 3 or later.
    let at_tip = record(&chain, 0, 1, vec![query_at(&chain, 0, 0, s(1), id(&a), 2, t, 1)]);
    admit(&ledger, &at_tip).unwrap();
    let not_yet = record(&chain, 0, 1, vec![query_at(&chain, 0, 0, s(1), id(&a), 3, t, 1)]);
    assert!(bad_record(&ledger, &not_yet).contains("not before this block"));
    // Before the authorisation's block: not covered.
    let before = record(&chain, 0, 1, vec![query_at(&chain, 0, 0, s(1), id(&a), 1, t, 1)]);
    assert!(bad_record(&ledger, &before).contains("not yet committed"), "{}", bad_record(&ledger, &before));
    commit(&chain, &mut ledger, vec![at_tip]);
    // Block 4 ends a's validity (judged by block time, block 4's timestamp is
    // block_time_ms(4) < valid_until; block 5's is past it).
    commit(&chain, &mut ledger, vec![]);
    commit(&chain, &mut ledger, vec![]);
    let t5 = TestChain::block_time_ms(6);
    let at4 = record(&chain, 1, 1, vec![query_at(&chain, 1, 0, s(1), id(&a), 4, t5, 2)]);
    admit(&ledger, &at4).unwrap();
    let at5 = record(&chain, 1, 1, vec![query_at(&chain, 1, 0, s(1), id(&a), 5, t5, 3)]);
    assert!(bad_record(&ledger, &at5).contains("expired"), "{}", bad_record(&ledger, &at5));
    // A withdrawal ends b at its height: a read at that height is not covered.
    let w = chain.withdrawal(&chain.lender_keys[0], 3, id(&b), WithdrawReason::PurposeEnded);
    commit(&chain, &mut ledger, vec![w]);
    let wh = ledger.height().0;
    let after_w = record(&chain, 1, 1, vec![query_at(&chain, 1, 0, s(2), id(&b), wh, t5, 4)]);
    assert!(bad_record(&ledger, &after_w).contains("withdrawn"), "{}", bad_record(&ledger, &after_w));
    let before_w = record(&chain, 1, 1, vec![query_at(&chain, 1, 0, s(2), id(&b), wh - 1, t5, 5)]);
    admit(&ledger, &before_w).unwrap();
    // The lag: a read at height 2 is recordable up to block 2 + MAX_RECORD_LAG_BLOCKS.
    let late = record(&chain, 2, 1, vec![query_at(&chain, 2, 0, s(1), id(&a), 2, t5, 6)]);
    while ledger.height().0 + 1 < 2 + MAX_RECORD_LAG_BLOCKS {
        commit(&chain, &mut ledger, vec![]);
    }
    admit(&ledger, &late).unwrap();
    commit(&chain, &mut ledger, vec![]);
    assert!(bad_record(&ledger, &late).contains("MAX_RECORD_LAG_BLOCKS"), "{}", bad_record(&ledger, &late));
    // The block rule gives the same verdict as admission: a block with it fails.
    let next = ledger.height().next();
    assert!(chain.commit_next(&mut ledger, vec![late]).is_err(), "block {next} with a late record was accepted");
    drop(ledger);
    // The auditor's replay applies the same rules to what was committed.
    yrd_ledger::audit::verify_store(dir.path(), &chain.genesis).unwrap();
}

#[test]
fn a_store_of_an_older_format_is_refused_with_the_reason() {
    // Format 4 (before lenders) and format 7 (query records signed without the
    // node's key, which format 8's consensus rule would refuse).
    for old in [4u64, 7] {
        let chain = TestChain::new(4, 2);
        let dir = tempfile::tempdir().unwrap();
        {
            let mut ledger = Ledger::open(dir.path(), chain.genesis.clone()).unwrap();
            commit(&chain, &mut ledger, vec![]);
            let tree = ledger.db().open_tree("ledger").unwrap();
            // What an older node wrote.
            tree.insert(b"mformat", &old.to_be_bytes()[..]).unwrap();
            ledger.db().flush().unwrap();
        }
        match Ledger::open(dir.path(), chain.genesis.clone()) {
            Err(e @ yrd_ledger::store::StoreError::Format { found, expected }) => {
                assert_eq!((found, expected), (old, yrd_ledger::store::STORE_FORMAT));
                assert!(expected > old);
                let msg = e.to_string();
                assert!(msg.contains(&format!("store format {old}")) && msg.contains("start the node with an empty one"), "{msg}");
            }
            Err(e) => panic!("expected a format refusal, got {e}"),
            Ok(_) => panic!("a format-{old} store was opened"),
        }
    }
}

#[test]
fn query_records_are_indexed_per_subject_and_checked_against_authorisations() {
    let chain = TestChain::new(4, 2);
    let (dir, mut ledger) = open(&chain);
    commit(&chain, &mut ledger, vec![]);
    let a = chain.authorisation(0, 1, s(1), Purpose::LoanApplication, until(&ledger, 30));
    let b = chain.authorisation(1, 1, s(2), Purpose::LoanApplication, until(&ledger, 30));
    commit(&chain, &mut ledger, vec![a.clone(), b.clone()]);
    let t = TestChain::block_time_ms(3);
    let entries = vec![query(&chain, 0, 0, s(1), id(&a), t, 1), query(&chain, 0, 1, s(2), id(&b), t, 2), query(&chain, 0, 0, s(1), id(&a), t, 3)];
    let rec = chain.sign_with(&chain.validator_keys[0], 1, TxBody::RecordQueries(QueryRecords { entries }));
    // Only a node records queries.
    let by_issuer = chain.sign(0, 1, rec.tx.body.clone());
    assert_eq!(refused(&ledger, &by_issuer), "not_a_node");
    // An entry naming another lender's authorisation.
    let wrong = chain.sign_with(
        &chain.validator_keys[1],
        1,
        TxBody::RecordQueries(QueryRecords { entries: vec![query(&chain, 1, 0, s(2), id(&b), t, 4)] }),
    );
    assert_eq!(refused(&ledger, &wrong), "bad_query_record");
    let empty = chain.sign_with(&chain.validator_keys[1], 1, TxBody::RecordQueries(QueryRecords { entries: vec![] }));
    assert_eq!(refused(&ledger, &empty), "format");
    commit(&chain, &mut ledger, vec![rec.clone()]);
    let got = ledger.query_records(&s(1), yrd_consensus::types::Height(0), 100).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got.iter().map(|q| (q.height.0, q.entry, q.query.request.nonce.0[0])).collect::<Vec<_>>(), vec![(3, 0, 1), (3, 2, 3)]);
    assert!(got.iter().all(|q| q.tx_id == id(&rec)));
    // The request in the record is the lender's, verifiable by anyone.
    got[0].query.request.verify(&chain.chain, &chain.validator_keys[0].public()).unwrap();
    assert!(got[0].query.request.verify(&chain.chain, &chain.validator_keys[1].public()).is_err(), "good at one node only");
    assert_eq!(ledger.query_records(&s(2), yrd_consensus::types::Height(0), 100).unwrap().len(), 1);
    assert_eq!(ledger.query_records(&s(1), yrd_consensus::types::Height(4), 100).unwrap().len(), 0);
    drop(ledger);
    let report = yrd_ledger::audit::verify_store(dir.path(), &chain.genesis).unwrap();
    assert_eq!(report.height.0, 3);
}

/// A lender's request is signed for the node it is sent to, and consensus checks
/// every entry's request signature against the recording node's key: a record
/// carrying a request sent to another node (a relay, or a replay by a node that
/// saw it) or a forged one is refused at admission and fails block validation,
/// so no certified block holds one and no query audit can be poisoned by it.
#[test]
fn a_query_record_carries_only_requests_signed_for_its_node_on_every_path() {
    use yrd_consensus::types::Round;
    use yrd_ledger::store::BlockError;
    use yrd_ledger::validate::check_untrusted_bytes;
    let chain = TestChain::new(4, 2);
    let (_dir, mut ledger) = open(&chain);
    // Another validator's copy of the chain (the builder caches its own
    // execution, so the check that matters is another node's).
    let (_dir2, mut other) = open(&chain);
    commit(&chain, &mut ledger, vec![]);
    let a = chain.authorisation(0, 1, s(1), Purpose::LoanApplication, until(&ledger, 30));
    commit(&chain, &mut ledger, vec![a.clone()]);
    for h in 1..=2 {
        let block = ledger.block(yrd_consensus::types::Height(h)).unwrap().unwrap();
        other.commit(&block, &chain.certify(&block.header)).unwrap();
    }
    let t = TestChain::block_time_ms(3);
    let admit_bytes = |tx: &SignedTransaction| {
        check_untrusted_bytes(&ledger.next_membership(), &ledger.chain_id(), &tx.encode().unwrap()).map(|_| ())
    };
    // Lender 0's request to node 0, recorded by node 1.
    let relayed = record(&chain, 1, 1, vec![query(&chain, 0, 0, s(1), id(&a), t, 1)]);
    // Node 1's own record, its second entry's request altered after signing.
    let mut entries = vec![query(&chain, 1, 0, s(1), id(&a), t, 2), query(&chain, 1, 0, s(1), id(&a), t, 3)];
    entries[1].request.timestamp_ms += 1;
    let forged = record(&chain, 1, 2, entries);
    let honest = record(&chain, 1, 3, vec![query(&chain, 1, 0, s(1), id(&a), t, 4)]);
    assert_eq!(admit_bytes(&relayed), Err(TxError::BadRequestSignature { entry: 0 }));
    assert_eq!(admit_bytes(&forged), Err(TxError::BadRequestSignature { entry: 1 }));
    assert_eq!(TxError::BadRequestSignature { entry: 1 }.code(), "bad_request_signature");
    admit_bytes(&honest).unwrap();
    // A proposer that skipped admission (its builder trusts its mempool) puts them
    // in a block: every validator that checks the block refuses it.
    let h = ledger.height().next();
    let proposer = ledger.validators_at(h).unwrap().proposer(h, Round(0));
    for (what, bad, entry) in [("relayed", &relayed, 0), ("forged", &forged, 1)] {
        let built = ledger.build_block(vec![honest.clone(), bad.clone()], proposer, Round(0), t + 10).unwrap();
        assert_eq!(built.block.txs.len(), 2, "{what}: the builder trusts its candidates' signatures");
        match other.validate_block(&built.block, &|_| false) {
            Err(BlockError::InvalidTx { index: 1, error }) => assert_eq!(error, TxError::BadRequestSignature { entry }, "{what}"),
            other => panic!("{what}: expected an invalid transaction, got {other:?}"),
        }
    }
    // The honest record commits, and its request verifies for node 1 only.
    commit(&chain, &mut ledger, vec![honest.clone()]);
    let got = ledger.query_records(&s(1), yrd_consensus::types::Height(0), 100).unwrap();
    assert_eq!(got.len(), 1);
    got[0].query.request.verify(&chain.chain, &chain.validator_keys[1].public()).unwrap();
    assert!(got[0].query.request.verify(&chain.chain, &chain.validator_keys[0].public()).is_err());
}

#[test]
fn the_audit_catches_a_tampered_authorisation_index() {
    let chain = TestChain::new(4, 2);
    let (_d, mut ledger) = open(&chain);
    commit(&chain, &mut ledger, vec![]);
    let a = chain.authorisation(0, 1, s(1), Purpose::LoanApplication, until(&ledger, 30));
    commit(&chain, &mut ledger, vec![a]);
    let tree = ledger.db().open_tree("ledger").unwrap();
    yrd_ledger::audit::verify_tree(&tree, &chain.genesis).unwrap();
    // Extend the authorisation to a later validity by hand: the audit notices.
    let key = yrd_ledger::consent::grant_key(&s(1), "bank-0");
    let mut grants = yrd_ledger::consent::decode_grants(&tree.get(&key).unwrap().unwrap()).unwrap();
    grants[0].valid_until_ms += 1;
    tree.insert(&key, yrd_ledger::consent::encode_grants(&grants).unwrap()).unwrap();
    let err = yrd_ledger::audit::verify_tree(&tree, &chain.genesis).unwrap_err();
    assert!(err.to_string().contains("authorisation index"), "{err}");
    // An authorisation for a lender that never had one.
    tree.insert(yrd_ledger::consent::grant_key(&s(1), "bank-1"), yrd_ledger::consent::encode_grants(&grants).unwrap()).unwrap();
    assert!(yrd_ledger::audit::verify_tree(&tree, &chain.genesis).is_err());
}

#[test]
fn a_torn_write_of_the_consent_indexes_is_repaired_at_open() {
    let chain = TestChain::new(4, 2);
    let dir = tempfile::tempdir().unwrap();
    let (a, rec) = {
        let mut ledger = Ledger::open(dir.path(), chain.genesis.clone()).unwrap();
        commit(&chain, &mut ledger, vec![]);
        let a = chain.authorisation(0, 1, s(1), Purpose::LoanApplication, until(&ledger, 30));
        commit(&chain, &mut ledger, vec![a.clone()]);
        let t = TestChain::block_time_ms(3);
        let rec = record(&chain, 0, 1, vec![query(&chain, 0, 0, s(1), id(&a), t, 1)]);
        commit(&chain, &mut ledger, vec![rec.clone()]);
        // What a failed write of block 4 can leave, and the tip's entry lost.
        let tree = ledger.db().open_tree("ledger").unwrap();
        tree.remove(yrd_ledger::consent::query_key(&s(1), 3)).unwrap();
        tree.insert(yrd_ledger::consent::query_key(&s(2), 4), &[0, 0, 0, 0, 0, 0][..]).unwrap();
        let mut grants = ledger.grants(&s(1), "bank-0").unwrap();
        grants[0].height = 4;
        tree.insert(yrd_ledger::consent::grant_key(&s(3), "bank-1"), yrd_ledger::consent::encode_grants(&grants).unwrap()).unwrap();
        ledger.db().flush().unwrap();
        (a, rec)
    };
    let ledger = Ledger::open(dir.path(), chain.genesis.clone()).unwrap();
    let report = ledger.repair_report().expect("the open repaired the store").to_string();
    assert!(report.contains("authorisation lists") && report.contains("query-record index"), "{report}");
    assert_eq!(ledger.height().0, 3);
    assert_eq!(ledger.grants(&s(1), "bank-0").unwrap().iter().map(|g| g.id).collect::<Vec<_>>(), vec![id(&a)]);
    assert!(ledger.grants(&s(3), "bank-1").unwrap().is_empty());
    let q = ledger.query_records(&s(1), yrd_consensus::types::Height(0), 10).unwrap();
    assert_eq!(q.iter().map(|q| q.tx_id).collect::<Vec<_>>(), vec![id(&rec)]);
    assert!(ledger.query_records(&s(2), yrd_consensus::types::Height(0), 10).unwrap().is_empty());
    drop(ledger);
    yrd_ledger::audit::verify_store(dir.path(), &chain.genesis).unwrap();
}

/// `Reader::entry_visible` (what subject reports use: the rule judged from the
/// subject-record entry) gives, for every kind of viewer and every record
/// (restricted or public, revoked or not), the verdict of `Reader::visible` on
/// the attestation and its revocation read from the store, and notes the same
/// opened authorisations.
#[test]
fn entry_visible_is_visible_of_attestation_and_revocation() {
    use yrd_ledger::access::{Reader, Viewer};
    use yrd_ledger::tx::RevocationReason;
    let chain = TestChain::new(4, 2);
    let (_d, mut ledger) = open(&chain);
    commit(&chain, &mut ledger, vec![]);
    let records = vec![
        chain.attestation(0, 1, s(1), AttestationKind::TaxCredit),
        chain.attestation(0, 2, s(1), AttestationKind::RedList),
        chain.attestation(1, 1, s(1), AttestationKind::CreditRating),
        chain.attestation(1, 2, s(1), AttestationKind::AdministrativePenalty),
    ];
    let end = until(&ledger, 90);
    let mut block = records.clone();
    block.push(chain.authorisation(0, 1, s(1), Purpose::LoanApplication, end));
    commit(&chain, &mut ledger, block);
    // A restricted and a public record revoked, by their issuers.
    commit(
        &chain,
        &mut ledger,
        vec![
            chain.revocation(0, 3, id(&records[0]), RevocationReason::Repair),
            chain.revocation(1, 3, id(&records[3]), RevocationReason::Dispute),
        ],
    );
    let m = ledger.next_membership();
    let issuer = |i: usize| m.issuer_any(&chain.issuer_keys[i].public()).unwrap().name.clone();
    let agency = m.agency(&chain.agency_keys[0].public()).unwrap().name.clone();
    let viewers = vec![
        Viewer::Anonymous,
        Viewer::Lender { name: "bank-0".into() },
        Viewer::Lender { name: "bank-1".into() },
        Viewer::Issuer { name: issuer(0) },
        Viewer::Issuer { name: issuer(1) },
        Viewer::Agency { name: agency },
    ];
    let head = ledger.subject_head(&s(1)).unwrap().unwrap();
    let entries = ledger.subject_entries(&s(1), 0, head.count).unwrap();
    assert_eq!(entries.len(), 4);
    assert_eq!(entries.iter().filter(|e| e.revoked.is_some()).count(), 2);
    let mut shown_somewhere = 0;
    let mut hidden_somewhere = 0;
    for viewer in viewers {
        let by_entry = Reader::new(&ledger, viewer.clone());
        let by_tx = Reader::new(&ledger, viewer.clone());
        for e in &entries {
            let sees = |id: &TxId| {
                let t = ledger.logged_tx(id).unwrap().unwrap();
                by_tx.visible(&t.decode().unwrap(), t.height).unwrap()
            };
            let expected = sees(&e.id) && e.revoked.as_ref().is_none_or(|(by, _)| sees(by));
            let got = by_entry.entry_visible(&s(1), e).unwrap();
            assert_eq!(got, expected, "{viewer:?}, record {:?} ({:?}, revoked {:?})", e.id, e.kind, e.revoked.is_some());
            if got {
                shown_somewhere += 1;
            } else {
                hidden_somewhere += 1;
            }
        }
        assert_eq!(by_entry.opened(), by_tx.opened(), "{viewer:?}: the same authorisations opened");
    }
    assert!(shown_somewhere > 0 && hidden_somewhere > 0, "the cases include both verdicts");
}

#[test]
fn a_query_record_holds_each_request_once_per_subject_and_none_served_long_after_its_key_was_retired() {
    use yrd_ledger::consent::RETIRED_KEY_GRACE_BLOCKS;
    let chain = TestChain::new(4, 2);
    let (dir, mut ledger) = open(&chain);
    commit(&chain, &mut ledger, vec![]);
    let a = chain.authorisation(0, 1, s(1), Purpose::LoanApplication, until(&ledger, 300));
    let b = chain.authorisation(0, 2, s(2), Purpose::LoanApplication, until(&ledger, 300));
    commit(&chain, &mut ledger, vec![a.clone(), b.clone()]);
    let t = TestChain::block_time_ms(3);
    // The same request twice for one subject (a replay would only inflate the
    // lender's read trail) is refused; two requests are fine, and so is one
    // request that opened two subjects (a block or an issuer's list: one entry
    // per subject, the same request in each).
    let twice = record(&chain, 0, 1, vec![query(&chain, 0, 0, s(1), id(&a), t, 1), query(&chain, 0, 0, s(1), id(&a), t, 1)]);
    assert!(bad_record(&ledger, &twice).contains("recorded twice"), "{}", bad_record(&ledger, &twice));
    assert!(chain.commit_next(&mut ledger, vec![twice]).is_err(), "a block with it is refused too");
    let one = query(&chain, 0, 0, s(1), id(&a), t, 2);
    let same_request_other_subject = QueryEntry { subject: s(2), authorisation: id(&b), ..one.clone() };
    let two_subjects = record(&chain, 0, 1, vec![one, same_request_other_subject, query(&chain, 0, 0, s(1), id(&a), t, 3)]);
    admit(&ledger, &two_subjects).unwrap();
    commit(&chain, &mut ledger, vec![two_subjects]);

    // The lender's key is rotated out at height E. A request it signed may have
    // been served up to RETIRED_KEY_GRACE_BLOCKS later (the API authenticates
    // against the membership after its tip and serves a moment later); one
    // served after that cannot have been (the API refuses a retired key), so
    // recording it is a forgery with a leaked key.
    let name = chain.genesis.lenders[0].name.clone();
    let fresh = SecretKey::from_seed(b"lender-0-rotated");
    let e = govern(&chain, &mut ledger, 1, vec![Change::RotateLenderKey { name, key: fresh.public() }]);
    assert_eq!(ledger.next_membership().retired_key(&chain.lender_keys[0].public()).map(|r| r.since), Some(e));
    let last = e + RETIRED_KEY_GRACE_BLOCKS - 1;
    while ledger.height().0 <= last {
        commit(&chain, &mut ledger, vec![]);
    }
    let t = TestChain::block_time_ms(ledger.height().0 + 1);
    let within = record(&chain, 1, 1, vec![query_at(&chain, 1, 0, s(1), id(&a), last, t, 4)]);
    admit(&ledger, &within).unwrap();
    commit(&chain, &mut ledger, vec![within]);
    let after = record(&chain, 1, 2, vec![query_at(&chain, 1, 0, s(1), id(&a), last + 1, t, 5)]);
    assert!(bad_record(&ledger, &after).contains("was retired at height"), "{}", bad_record(&ledger, &after));
    assert!(chain.commit_next(&mut ledger, vec![after]).is_err(), "a block with it is refused too");
    drop(ledger);
    yrd_ledger::audit::verify_store(dir.path(), &chain.genesis).unwrap();
}

/// A withdrawal signed by an agency is not opened to an issuer that bears the
/// agency's name (issuers and agencies have separate namespaces); the issuer that
/// withdraws reads its own withdrawal.
#[test]
fn an_agencys_withdrawal_is_not_read_by_an_issuer_of_the_same_name() {
    use yrd_ledger::access::{may_read, Class, Viewer};
    let mut chain = TestChain::new(4, 2);
    let shared_name = chain.genesis.issuers[0].name.clone();
    let old = std::mem::replace(&mut chain.genesis.agencies[1].name, shared_name.clone());
    for l in chain.genesis.lenders.iter_mut().filter(|l| l.sponsor == old) {
        l.sponsor = shared_name.clone();
    }
    chain.chain = chain.genesis.chain_id().unwrap();
    let (_d, mut ledger) = open(&chain);
    let s = Uscc::sample(1);
    let until = TestChain::block_time_ms(1) + 24 * 3600 * 1000;
    let a = chain.authorisation(0, 1, s, Purpose::LoanApplication, until);
    let b = chain.authorisation(0, 2, s, Purpose::Guarantee, until);
    commit(&chain, &mut ledger, vec![a.clone(), b.clone()]);
    let by_agency = chain.withdrawal(&chain.agency_keys[1], 1, a.id().unwrap(), WithdrawReason::ConsentWithdrawn);
    let by_issuer = chain.withdrawal(&chain.issuer_keys[0], 1, b.id().unwrap(), WithdrawReason::ConsentWithdrawn);
    commit(&chain, &mut ledger, vec![by_agency.clone(), by_issuer.clone()]);
    let h = ledger.height();
    let issuer = Viewer::Issuer { name: shared_name.clone() };
    let agency = Viewer::Agency { name: shared_name };
    let reads = |v: &Viewer, tx: &SignedTransaction| {
        let class = ledger.tx_class(tx, h).unwrap();
        assert!(matches!(class, Class::Consent { .. }), "{class:?}");
        may_read::<()>(v, &class, |_| Ok(false)).unwrap()
    };
    assert!(!reads(&issuer, &by_agency), "the issuer read the agency's withdrawal");
    assert!(reads(&issuer, &by_issuer), "the issuer cannot read its own withdrawal");
    assert!(reads(&agency, &by_agency) && reads(&agency, &by_issuer));
}
