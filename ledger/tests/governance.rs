//! Governance on the ledger (docs/governance.md): proposals approved by more than
//! two thirds of the agencies change the membership at a height fixed by the chain;
//! too few approvals, expired proposals, non-members and duplicate approvals never
//! change anything; frozen and rotated keys stop signing from their height on while
//! what they signed before stays valid; the state survives a reopen and the audit
//! replays it.

use yrd_consensus::crypto::SecretKey;
use yrd_consensus::types::{Height, Round};
use yrd_ledger::genesis::{IssuerInfo, Region, ValidatorInfo};
use yrd_ledger::governance::{Change, GovError, Outcome, RetireReason};
use yrd_ledger::store::{BlockError, Ledger};
use yrd_ledger::testkit::TestChain;
use yrd_ledger::tx::{AttestationKind, SignedTransaction, TxId};
use yrd_ledger::uscc::Uscc;
use yrd_ledger::validate::TxError;

fn open(chain: &TestChain) -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path(), chain.genesis.clone()).unwrap();
    (dir, ledger)
}

/// Commits `txs` as the next block (all must be accepted).
fn commit(chain: &TestChain, ledger: &mut Ledger, txs: Vec<SignedTransaction>, extra: &[SecretKey]) {
    chain.commit_next_with(ledger, txs, extra).unwrap_or_else(|e| panic!("height {}: {e}", ledger.height().next()));
}

/// The verdict the ledger gives `tx` as part of the next block.
fn admit(ledger: &Ledger, tx: &SignedTransaction) -> Result<(), TxError> {
    let membership = ledger.next_membership();
    yrd_ledger::validate::check_stateless(&membership, &ledger.chain_id(), tx)?;
    ledger.check_tx(tx, &tx.id().unwrap()).expect("the store is readable")
}

fn new_validator(name: &str, seed: &[u8]) -> (ValidatorInfo, SecretKey) {
    let k = SecretKey::from_seed(seed);
    (ValidatorInfo { name: name.into(), region: Region::parse("JS").unwrap(), key: k.public() }, k)
}

fn id(t: &SignedTransaction) -> TxId {
    t.id().unwrap()
}

#[test]
fn a_validator_joins_after_more_than_two_thirds_approve_and_d_blocks_pass() {
    let chain = TestChain::new(4, 4);
    let (_d, mut ledger) = open(&chain);
    commit(&chain, &mut ledger, vec![], &[]);
    let (suzhou, suzhou_key) = new_validator("suzhou", b"suzhou");
    let p = chain.propose(0, 1, vec![Change::AddValidator(suzhou.clone())], 100);
    commit(&chain, &mut ledger, vec![p.clone()], &[]); // height 2: 1 of 4
    commit(&chain, &mut ledger, vec![chain.approve(1, 1, id(&p))], &[]); // height 3: 2 of 4, not > 2/3
    assert_eq!(ledger.gov().proposal(&id(&p)).unwrap().outcome, Outcome::Open);
    commit(&chain, &mut ledger, vec![chain.approve(2, 1, id(&p))], &[]); // height 4: 3 of 4
    let delay = chain.genesis.params.governance.activation_delay_blocks;
    assert_eq!(
        ledger.gov().proposal(&id(&p)).unwrap().outcome,
        Outcome::Approved { height: 4, index: 0, effective: 4 + delay }
    );
    // A fourth approval comes too late: the proposal is closed.
    assert!(matches!(admit(&ledger, &chain.approve(3, 1, id(&p))), Err(TxError::Governance(GovError::ProposalClosed { .. }))));
    // Known ahead: the set of the effective height includes suzhou, the one before not.
    let eff = Height(4 + delay);
    assert_eq!(ledger.validators_at(Height(eff.0 - 1)).unwrap().len(), 4);
    while ledger.height().next() < eff {
        assert_eq!(ledger.validators_at(ledger.height().next()).unwrap().len(), 4);
        commit(&chain, &mut ledger, vec![], &[]);
    }
    let set = ledger.validators_at(eff).unwrap();
    assert_eq!(set.len(), 5);
    assert!(set.index_of(&suzhou.key).is_some());
    assert_eq!(ledger.next_membership().validators.len(), 5);
    // Five validators: the quorum is 4, and suzhou's key can be one of them.
    commit(&chain, &mut ledger, vec![], &[suzhou_key]);
    assert_eq!(ledger.gov().proposal(&id(&p)).unwrap().state_at(ledger.height().0), "applied");
    // The header of every block commits to the membership in force.
    let h = ledger.last_header().unwrap().clone();
    assert_eq!(h.membership, ledger.membership_at(h.height).hash().unwrap());
}

#[test]
fn too_few_approvals_an_expired_proposal_a_non_member_and_a_duplicate_approval_change_nothing() {
    let chain = TestChain::new(4, 2);
    let (_d, mut ledger) = open(&chain);
    commit(&chain, &mut ledger, vec![], &[]);
    let (v, _) = new_validator("wuxi", b"wuxi");
    let p = chain.propose(0, 1, vec![Change::AddValidator(v)], 4);
    commit(&chain, &mut ledger, vec![p.clone()], &[]); // height 2, deadline 4
    commit(&chain, &mut ledger, vec![chain.approve(1, 1, id(&p))], &[]); // height 3
    // The same agency again: refused, and it would not count.
    let again = chain.approve(1, 2, id(&p));
    assert!(matches!(admit(&ledger, &again), Err(TxError::Governance(GovError::AlreadyApproved { .. }))));
    // Non-members: an issuer key, a validator key, a stranger.
    let stranger = SecretKey::from_seed(b"stranger");
    for key in [&chain.issuer_keys[0], &chain.validator_keys[0], &stranger] {
        let t = chain.sign_with(key, 7, yrd_ledger::tx::TxBody::Approve(yrd_ledger::governance::GovApproval { proposal: id(&p) }));
        assert!(matches!(admit(&ledger, &t), Err(TxError::Governance(GovError::NotAnAgency(_)))), "{key:?}");
        let t = chain.sign_with(key, 8, yrd_ledger::tx::TxBody::Propose(yrd_ledger::governance::GovProposal {
            changes: vec![Change::RemoveValidator { name: "anhui".into() }],
            deadline: 100,
            summary: String::new(),
        }));
        assert!(matches!(admit(&ledger, &t), Err(TxError::Governance(GovError::NotAnAgency(_)))), "{key:?}");
    }
    commit(&chain, &mut ledger, vec![], &[]); // height 4 (the deadline) passes with 2 of 4
    commit(&chain, &mut ledger, vec![], &[]); // height 5
    let late = chain.approve(2, 1, id(&p));
    assert!(matches!(admit(&ledger, &late), Err(TxError::Governance(GovError::ProposalExpired { .. }))));
    for _ in 0..6 {
        commit(&chain, &mut ledger, vec![], &[]);
    }
    assert_eq!(ledger.gov().proposal(&id(&p)).unwrap().state_at(ledger.height().0), "expired");
    assert_eq!(ledger.next_membership().validators.len(), 4);
    assert_eq!(*ledger.next_membership(), chain.membership());
    // A block carrying the duplicate approval is refused by validation.
    let h = ledger.height().next();
    let set = ledger.validators_at(h).unwrap();
    let built = ledger.build_block(vec![chain.approve(1, 3, id(&p))], set.proposer(h, Round(0)), Round(0), 2_000_000_000_000).unwrap();
    assert!(built.block.txs.is_empty(), "block building leaves the invalid approval out");
}

#[test]
fn a_frozen_issuer_key_signs_nothing_new_and_old_records_stay_valid_until_a_new_key() {
    let chain = TestChain::new(4, 2);
    let (_d, mut ledger) = open(&chain);
    let before = chain.attestation(1, 1, Uscc::sample(1), AttestationKind::RedList);
    commit(&chain, &mut ledger, vec![before.clone()], &[]); // height 1
    let issuer_name = chain.genesis.issuers[1].name.clone();
    let p = chain.propose(0, 1, vec![Change::FreezeIssuer { name: issuer_name.clone() }], 100);
    commit(&chain, &mut ledger, vec![p.clone()], &[]); // 2
    commit(&chain, &mut ledger, vec![chain.approve(1, 1, id(&p)), chain.approve(2, 1, id(&p))], &[]); // 3: approved
    // A freeze takes effect at the next block.
    assert_eq!(ledger.gov().proposal(&id(&p)).unwrap().outcome, Outcome::Applied { height: 3, index: 1, effective: 4 });
    let after = chain.attestation(1, 2, Uscc::sample(2), AttestationKind::RedList);
    match admit(&ledger, &after) {
        Err(TxError::RetiredKey { reason: RetireReason::Frozen, since: 4, .. }) => {}
        other => panic!("{other:?}"),
    }
    // What it signed before stays on the ledger, active.
    let rec = ledger.tx_record(&id(&before), TestChain::block_time_ms(3)).unwrap().unwrap();
    assert_eq!(rec.status.name(), "active");
    // A new key (rotation) ends the freeze; the old key stays retired.
    let new_key = SecretKey::from_seed(b"issuer-1-new");
    let p2 = chain.propose(0, 2, vec![Change::RotateIssuerKey { name: issuer_name.clone(), key: new_key.public() }], 100);
    commit(&chain, &mut ledger, vec![p2.clone()], &[]);
    commit(&chain, &mut ledger, vec![chain.approve(1, 2, id(&p2)), chain.approve(3, 1, id(&p2))], &[]);
    while ledger.gov().proposal(&id(&p2)).unwrap().state_at(ledger.height().0) != "applied" {
        commit(&chain, &mut ledger, vec![], &[]);
    }
    let m = ledger.next_membership();
    assert!(!m.is_frozen(&issuer_name));
    assert_eq!(m.issuer_by_name(&issuer_name).unwrap().key, new_key.public());
    let fresh = chain.sign_with(&new_key, 1, yrd_ledger::tx::TxBody::Attest(match &chain.attestation(1, 3, Uscc::sample(3), AttestationKind::RedList).tx.body {
        yrd_ledger::tx::TxBody::Attest(a) => a.clone(),
        _ => unreachable!(),
    }));
    commit(&chain, &mut ledger, vec![fresh], &[]);
    assert!(matches!(admit(&ledger, &chain.attestation(1, 4, Uscc::sample(4), AttestationKind::RedList)), Err(TxError::RetiredKey { .. })));
    // The new key may revoke what the old key signed (same issuer).
    let revoke = chain.sign_with(&new_key, 2, yrd_ledger::tx::TxBody::Revoke(yrd_ledger::tx::Revocation {
        target: id(&before),
        reason: yrd_ledger::tx::RevocationReason::Repair,
        evidence: None,
        issued_at_ms: 1,
    }));
    commit(&chain, &mut ledger, vec![revoke], &[]);
}

#[test]
fn a_rotated_validator_key_no_longer_certifies_and_a_retired_key_never_returns() {
    let chain = TestChain::new(4, 1);
    let (_d, mut ledger) = open(&chain);
    commit(&chain, &mut ledger, vec![], &[]);
    let new_key = SecretKey::from_seed(b"validator-3-new");
    let p = chain.propose(0, 1, vec![Change::RotateValidatorKey { name: chain.genesis.validators[3].name.clone(), key: new_key.public() }], 100);
    commit(&chain, &mut ledger, vec![p.clone()], &[]);
    commit(&chain, &mut ledger, vec![chain.approve(1, 1, id(&p)), chain.approve(2, 1, id(&p))], &[]);
    let effective = ledger.gov().proposal(&id(&p)).unwrap().effective().unwrap();
    while ledger.height().next().0 < effective {
        commit(&chain, &mut ledger, vec![], &[]);
    }
    // A certificate from validators 1, 2 and 3's *old* key: refused at the effective height.
    let h = ledger.height().next();
    let set = ledger.validators_at(h).unwrap();
    let built = ledger.build_block(vec![], set.proposer(h, Round(0)), Round(0), 2_000_000_000_000).unwrap();
    let old_set = chain.genesis.validator_set().unwrap();
    let old_keys = vec![chain.validator_keys[1].clone(), chain.validator_keys[2].clone(), chain.validator_keys[3].clone()];
    let stale = chain.certify_with(&old_keys, &old_set, &built.block.header).unwrap();
    assert!(matches!(ledger.commit(&built.block, &stale), Err(BlockError::Certificate(_))));
    // The same validators with the new key: accepted.
    let keys = vec![chain.validator_keys[1].clone(), chain.validator_keys[2].clone(), new_key.clone()];
    let good = chain.certify_with(&keys, &set, &built.block.header).unwrap();
    ledger.commit(&built.block, &good).unwrap();
    // The old key can never come back, in any role.
    let p2 = chain.propose(0, 2, vec![Change::AddIssuer(IssuerInfo {
        name: "recycled".into(),
        region: Region::parse("AH").unwrap(),
        key: chain.validator_keys[3].public(),
        kinds: AttestationKind::ALL.to_vec(),
        may_revoke_any: false,
    })], 100);
    match admit(&ledger, &p2) {
        Err(TxError::Governance(GovError::BadChange { index: 0, reason })) => assert!(reason.contains("retired"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn two_proposals_that_conflict_the_later_one_fails_whole_and_is_recorded() {
    let chain = TestChain::new(4, 1);
    let (_d, mut ledger) = open(&chain);
    commit(&chain, &mut ledger, vec![], &[]);
    let (a, _) = new_validator("nantong", b"nantong-a");
    let (b, _) = new_validator("nantong", b"nantong-b");
    let (c, _) = new_validator("yangzhou", b"yangzhou");
    let p1 = chain.propose(0, 1, vec![Change::AddValidator(a)], 100);
    // p2 adds yangzhou and a second "nantong": it applies on its own, but not after p1.
    let p2 = chain.propose(1, 1, vec![Change::AddValidator(c), Change::AddValidator(b)], 100);
    commit(&chain, &mut ledger, vec![p1.clone(), p2.clone()], &[]);
    commit(&chain, &mut ledger, vec![chain.approve(1, 2, id(&p1)), chain.approve(2, 1, id(&p1))], &[]);
    commit(&chain, &mut ledger, vec![chain.approve(0, 2, id(&p2)), chain.approve(2, 2, id(&p2))], &[]);
    for _ in 0..6 {
        commit(&chain, &mut ledger, vec![], &[]);
    }
    assert_eq!(ledger.gov().proposal(&id(&p1)).unwrap().state_at(ledger.height().0), "applied");
    match &ledger.gov().proposal(&id(&p2)).unwrap().outcome {
        Outcome::Failed { change: 1, reason, .. } => assert!(reason.contains("already exists"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let m = ledger.next_membership();
    assert_eq!(m.validators.len(), 5, "p2 failed whole: yangzhou was not added either");
    assert!(m.validators.iter().all(|v| v.name != "yangzhou"));
}

#[test]
fn governance_survives_a_reopen_and_the_audit_replays_it() {
    let chain = TestChain::new(4, 2);
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(dir.path(), chain.genesis.clone()).unwrap();
    commit(&chain, &mut ledger, vec![], &[]);
    let (v, vk) = new_validator("changzhou", b"changzhou");
    let p = chain.propose(0, 1, vec![Change::AddValidator(v), Change::FreezeIssuer { name: chain.genesis.issuers[0].name.clone() }], 100);
    commit(&chain, &mut ledger, vec![p.clone()], &[]);
    commit(&chain, &mut ledger, vec![chain.approve(1, 1, id(&p)), chain.approve(3, 1, id(&p))], &[]);
    // Reopen while the change is approved but not yet in force.
    let expected_sets: Vec<usize> = (1..=12).map(|h| ledger.validators_at(Height(h)).map(|s| s.len()).unwrap_or(0)).collect();
    drop(ledger);
    let mut ledger = Ledger::open(dir.path(), chain.genesis.clone()).unwrap();
    for h in 1..=ledger.height().0 + 2 {
        assert_eq!(ledger.validators_at(Height(h)).unwrap().len(), expected_sets[h as usize - 1], "height {h}");
    }
    for _ in 0..6 {
        commit(&chain, &mut ledger, vec![], std::slice::from_ref(&vk));
    }
    assert_eq!(ledger.next_membership().validators.len(), 5);
    drop(ledger);
    let report = yrd_ledger::audit::verify_store(dir.path(), &chain.genesis).unwrap();
    assert_eq!(report.height.0, 9);
    let ledger = Ledger::open(dir.path(), chain.genesis.clone()).unwrap();
    assert_eq!(ledger.next_membership().validators.len(), 5);
    assert_eq!(ledger.gov().proposal(&id(&p)).unwrap().state_at(9), "applied");
}

/// Rights that follow a name (revocation and reads for an issuer, approvals for an
/// agency, authorisations for a lender) never pass to a newcomer under a removed
/// member's name; a rotation keeps the name, and an unused name is free.
#[test]
fn a_removed_agencys_or_issuers_name_is_never_given_again() {
    use yrd_ledger::genesis::AgencyInfo;
    use yrd_ledger::governance::Membership;
    let chain = TestChain::new(4, 2);
    let m = Membership::from_genesis(&chain.genesis);
    let issuer = m.issuers[1].clone();
    let agency = m.agencies[3].clone();
    let k = |s: &[u8]| SecretKey::from_seed(s).public();

    let mut gone = m.clone();
    gone.apply(&Change::RemoveIssuer { name: issuer.name.clone() }, 5).unwrap();
    gone.apply(&Change::RemoveAgency { name: agency.name.clone() }, 5).unwrap();
    let again_issuer = Change::AddIssuer(IssuerInfo { key: k(b"newcomer issuer"), ..issuer.clone() });
    let err = gone.clone().apply(&again_issuer, 9).unwrap_err().to_string();
    assert!(err.contains("belonged to a removed issuer") && err.contains("never reused"), "{err}");
    let again_agency = Change::AddAgency(AgencyInfo { key: k(b"newcomer agency"), ..agency.clone() });
    let err = gone.clone().apply(&again_agency, 9).unwrap_err().to_string();
    assert!(err.contains("belonged to a removed agency") && err.contains("never reused"), "{err}");
    // Other names are free.
    let mut ok = gone.clone();
    ok.apply(&Change::AddIssuer(IssuerInfo { name: "zj-new-issuer".into(), key: k(b"newcomer issuer"), ..issuer.clone() }), 9).unwrap();
    ok.apply(&Change::AddAgency(AgencyInfo { name: "zj-new-agency".into(), key: k(b"newcomer agency"), ..agency.clone() }), 9).unwrap();
    // A rotated (not removed) issuer keeps its name and its rights.
    let mut rotated = m.clone();
    rotated.apply(&Change::RotateIssuerKey { name: issuer.name.clone(), key: k(b"rotated issuer") }, 5).unwrap();
    assert_eq!(rotated.issuer_by_name(&issuer.name).unwrap().key, k(b"rotated issuer"));
}

/// A genesis holds at most as many validators as governance may ever reach (16,
/// as docs/proofs.md and the console's verifier say), not the consensus layer's
/// larger bound.
#[test]
fn a_genesis_holds_at_most_sixteen_validators() {
    use yrd_ledger::governance::MAX_MEMBER_VALIDATORS;
    let chain = TestChain::new(MAX_MEMBER_VALIDATORS, 2);
    chain.genesis.validate().unwrap();
    let mut more = chain.genesis.clone();
    more.validators.push(new_validator("validator-extra", b"validator-extra").0);
    match more.validate() {
        Err(e @ yrd_ledger::genesis::GenesisError::TooMany { what: "validators", count: 17, max: 16 }) => {
            assert!(e.to_string().contains("17"), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

/// A leaked agency key's approval stops counting once the key is rotated: the
/// proposal it approved needs the threshold without it, and the agency may
/// approve again with its new key. The audit replays the same verdicts.
#[test]
fn an_approval_by_a_key_rotated_out_since_no_longer_counts() {
    use yrd_ledger::governance::approval_counts;
    let chain = TestChain::new(4, 2);
    let (dir, mut ledger) = open(&chain);
    commit(&chain, &mut ledger, vec![], &[]); // 1
    // Agency 3 (its key about to leak) proposes P: its own approval, 1 of 3 needed.
    let p = chain.propose(3, 1, vec![Change::FreezeIssuer { name: chain.genesis.issuers[0].name.clone() }], 1_000);
    commit(&chain, &mut ledger, vec![p.clone()], &[]); // 2
    // The agencies rotate agency 3's key (0 proposes; 1 and 2 approve).
    let new3 = SecretKey::from_seed(b"agency-3-new");
    let name3 = chain.genesis.agencies[3].name.clone();
    let rot = chain.propose(0, 1, vec![Change::RotateAgencyKey { name: name3.clone(), key: new3.public() }], 1_000);
    commit(&chain, &mut ledger, vec![rot.clone()], &[]); // 3
    commit(&chain, &mut ledger, vec![chain.approve(1, 1, id(&rot)), chain.approve(2, 1, id(&rot))], &[]); // 4: approved
    while ledger.gov().proposal(&id(&rot)).unwrap().state_at(ledger.height().0) != "applied" {
        commit(&chain, &mut ledger, vec![], &[]);
    }
    let m = ledger.next_membership();
    let rec = ledger.gov().proposal(&id(&p)).unwrap().clone();
    assert!(!approval_counts(&m, &rec.approvals[0]), "the rotated key's approval still counts");
    // Two more agencies approve P: with the old key's approval it would be three
    // of four; without it, two — P stays open.
    commit(&chain, &mut ledger, vec![chain.approve(0, 2, id(&p)), chain.approve(1, 2, id(&p))], &[]);
    assert_eq!(ledger.gov().proposal(&id(&p)).unwrap().outcome, Outcome::Open);
    // Agency 3 approves again with its new key: three that count, approved.
    let again = chain.sign_with(&new3, 1, yrd_ledger::tx::TxBody::Approve(yrd_ledger::governance::GovApproval { proposal: id(&p) }));
    admit(&ledger, &again).unwrap();
    commit(&chain, &mut ledger, vec![again.clone()], &[]);
    assert!(matches!(ledger.gov().proposal(&id(&p)).unwrap().outcome, Outcome::Approved { .. } | Outcome::Applied { .. }));
    // Closed now: no more approvals.
    let twice = chain.sign_with(&new3, 2, yrd_ledger::tx::TxBody::Approve(yrd_ledger::governance::GovApproval { proposal: id(&p) }));
    assert!(matches!(admit(&ledger, &twice), Err(TxError::Governance(GovError::ProposalClosed { .. }))));
    // The audit replays it to the same state.
    let height = ledger.height();
    drop(ledger);
    let report = yrd_ledger::audit::verify_store(dir.path(), &chain.genesis).unwrap();
    assert_eq!(report.height, height);
}
