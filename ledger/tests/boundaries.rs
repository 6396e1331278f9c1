//! Consensus rules at their exact boundaries, and rules no other test pinned: a
//! block of exactly `max_block_txs`, a transaction of exactly `MAX_TX_BYTES`, the
//! proposer of the round, an issuer's kinds, a target revoked twice in one block,
//! an authorisation withdrawn at the very millisecond it ends, the approval
//! threshold met exactly, a proposal's latest deadline, and the activation delay of
//! a freeze mixed with other changes. Each test fails when its rule is moved by one
//! (found by planting such bugs: `<` for `<=`, a dropped check).

use yrd_consensus::types::{Round, ValidatorIndex};
use yrd_ledger::consent::{ConsentError, Purpose, WithdrawReason};
use yrd_ledger::genesis::Genesis;
use yrd_ledger::governance::{threshold_met, Change, GovError, Outcome};
use yrd_ledger::store::{BlockError, Ledger};
use yrd_ledger::testkit::TestChain;
use yrd_ledger::tx::{AttestationKind, RevocationReason, SignedTransaction, TxBody, TxId, MAX_TX_BYTES};
use yrd_ledger::uscc::Uscc;
use yrd_ledger::validate::TxError;

fn open(chain: &TestChain) -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path(), chain.genesis.clone()).unwrap();
    (dir, ledger)
}

/// A test chain whose genesis `edit` changed (the chain id follows).
fn chain_with(edit: impl FnOnce(&mut Genesis)) -> TestChain {
    let mut chain = TestChain::new(4, 2);
    edit(&mut chain.genesis);
    chain.genesis.validate().unwrap();
    chain.chain = chain.genesis.chain_id().unwrap();
    chain
}

fn id(tx: &SignedTransaction) -> TxId {
    tx.id().unwrap()
}

fn proposer(ledger: &Ledger) -> ValidatorIndex {
    let h = ledger.height().next();
    ledger.validators_at(h).unwrap().proposer(h, Round(0))
}

fn admit(ledger: &Ledger, tx: &SignedTransaction) -> Result<(), TxError> {
    yrd_ledger::validate::check_stateless(&ledger.next_membership(), &ledger.chain_id(), tx)?;
    ledger.check_tx(tx, &id(tx)).expect("the store is readable")
}

#[test]
fn a_block_of_exactly_max_block_txs_is_valid_and_one_more_is_not() {
    let chain = chain_with(|g| g.params.max_block_txs = 3);
    let (_d, ledger) = open(&chain);
    let txs: Vec<SignedTransaction> =
        (1..=4).map(|s| chain.attestation(0, s, Uscc::sample(s), AttestationKind::RedList)).collect();
    let built = ledger.build_block(txs.clone(), proposer(&ledger), Round(0), 5).unwrap();
    assert_eq!(built.block.txs.len(), 3, "the builder fills the block to the limit");
    ledger.validate_block(&built.block, &|_| false).expect("a block of exactly max_block_txs");
    let mut four = built.block.clone();
    four.txs.push(txs[3].clone());
    four.header.tx_count += 1;
    assert!(matches!(ledger.validate_block(&four, &|_| false), Err(BlockError::TooManyTxs { got: 4, max: 3 })));
}

/// An attestation whose encoding is exactly `len` bytes (fields beyond the
/// format's limits: the size is judged first).
fn tx_of_len(chain: &TestChain, sequence: u64, len: usize) -> SignedTransaction {
    let make = |last: usize| {
        let tx = chain.attestation(0, sequence, Uscc::sample(sequence), AttestationKind::RedList);
        let TxBody::Attest(mut a) = tx.tx.body.clone() else { unreachable!() };
        a.fields = (0..14).map(|i| (format!("f{i:02}"), "x".repeat(250))).collect();
        a.fields.push(("last".into(), "y".repeat(last)));
        chain.sign(0, sequence, TxBody::Attest(a))
    };
    let mut last = 0;
    for _ in 0..8 {
        let now = make(last).encode().unwrap().len();
        if now == len {
            return make(last);
        }
        last = (last as i64 + len as i64 - now as i64).max(0) as usize;
    }
    panic!("no attestation of exactly {len} bytes");
}

#[test]
fn a_transaction_of_exactly_max_tx_bytes_is_not_too_large_and_one_byte_more_is() {
    let chain = TestChain::new(4, 2);
    let (_d, ledger) = open(&chain);
    let m = chain.membership();
    // Admission judges the raw bytes before decoding them.
    let at = yrd_ledger::validate::check_untrusted_bytes(&m, &chain.chain, &vec![0u8; MAX_TX_BYTES]).unwrap_err();
    assert!(!matches!(at, TxError::TooLarge { .. }), "{at:?}");
    let over = yrd_ledger::validate::check_untrusted_bytes(&m, &chain.chain, &vec![0u8; MAX_TX_BYTES + 1]).unwrap_err();
    assert!(matches!(over, TxError::TooLarge { len } if len == MAX_TX_BYTES + 1), "{over:?}");
    // Block execution judges a transaction's encoding the same way.
    for (len, too_large) in [(MAX_TX_BYTES, false), (MAX_TX_BYTES + 1, true)] {
        let tx = tx_of_len(&chain, 1, len);
        assert_eq!(tx.encode().unwrap().len(), len);
        let built = ledger.build_block(vec![tx.clone()], proposer(&ledger), Round(0), 5).unwrap();
        assert!(built.block.txs.is_empty(), "an attestation with 15 fields is invalid either way");
        let (_, error) = &built.rejected[0];
        assert_eq!(matches!(error, TxError::TooLarge { .. }), too_large, "{len} bytes: {error:?}");
    }
}

#[test]
fn a_block_from_another_validator_than_the_rounds_proposer_is_refused() {
    let chain = TestChain::new(4, 2);
    let (_d, ledger) = open(&chain);
    let a = chain.attestation(0, 1, Uscc::sample(1), AttestationKind::RedList);
    let expected = proposer(&ledger);
    let built = ledger.build_block(vec![a], expected, Round(0), 5).unwrap();
    ledger.validate_block(&built.block, &|_| false).unwrap();
    for other in (0..4).map(ValidatorIndex).filter(|v| *v != expected) {
        let mut b = built.block.clone();
        b.header.proposer = other;
        match ledger.validate_block(&b, &|_| false) {
            Err(BlockError::WrongProposer { expected: e, got, .. }) => assert_eq!((e, got), (expected, other)),
            r => panic!("a block of round 0 by {other:?} (proposer {expected:?}): {r:?}"),
        }
    }
}

#[test]
fn an_issuer_attests_only_the_kinds_it_may() {
    let chain = chain_with(|g| g.issuers[1].kinds = vec![AttestationKind::RedList]);
    let (_d, ledger) = open(&chain);
    let allowed = chain.attestation(1, 1, Uscc::sample(1), AttestationKind::RedList);
    let not = chain.attestation(1, 2, Uscc::sample(2), AttestationKind::CreditRating);
    admit(&ledger, &allowed).unwrap();
    assert!(matches!(admit(&ledger, &not), Err(TxError::KindNotAllowed { kind: AttestationKind::CreditRating, .. })));
    let built = ledger.build_block(vec![allowed.clone(), not.clone()], proposer(&ledger), Round(0), 5).unwrap();
    assert_eq!(built.block.txs, vec![allowed]);
    assert!(matches!(built.rejected.as_slice(), [(i, TxError::KindNotAllowed { .. })] if *i == id(&not)));
}

#[test]
fn a_target_revoked_twice_in_one_block_is_refused_the_second_time() {
    let chain = TestChain::new(4, 2);
    let (_d, mut ledger) = open(&chain);
    let a = chain.attestation(0, 1, Uscc::sample(1), AttestationKind::RedList);
    chain.commit_next(&mut ledger, vec![a.clone()]).unwrap();
    let r1 = chain.revocation(0, 2, id(&a), RevocationReason::Repair);
    let r2 = chain.revocation(0, 3, id(&a), RevocationReason::Dispute);
    let built = ledger.build_block(vec![r1.clone(), r2.clone()], proposer(&ledger), Round(0), 5).unwrap();
    assert_eq!(built.block.txs, vec![r1.clone()]);
    assert!(matches!(built.rejected.as_slice(), [(i, TxError::AlreadyRevoked { by, .. })] if *i == id(&r2) && *by == id(&r1)));
    // A block holding both (its header as the proposer would make it) is refused.
    let mut both = built.block.clone();
    both.txs.push(r2);
    both.header.tx_count += 1;
    assert!(matches!(
        ledger.validate_block(&both, &|_| false),
        Err(BlockError::InvalidTx { index: 1, error: TxError::AlreadyRevoked { .. } })
    ));
}

#[test]
fn an_authorisation_ends_at_its_valid_until_millisecond() {
    let chain = TestChain::new(4, 2);
    let (_d, mut ledger) = open(&chain);
    let t1 = TestChain::block_time_ms(1);
    let until = t1 + 1_000;
    let s = Uscc::sample(1);
    let a = chain.authorisation(0, 1, s, Purpose::LoanApplication, until);
    chain.commit_next_at(&mut ledger, vec![a.clone()], &[], t1).unwrap();
    let w = chain.withdrawal(&chain.lender_keys[0], 2, id(&a), WithdrawReason::ConsentWithdrawn);
    // One millisecond before its end it can be withdrawn; at its end it has expired.
    let before = ledger.build_block(vec![w.clone()], proposer(&ledger), Round(0), until - 1).unwrap();
    assert_eq!(before.block.txs, vec![w.clone()], "{:?}", before.rejected);
    let at = ledger.build_block(vec![w.clone()], proposer(&ledger), Round(0), until).unwrap();
    assert!(
        matches!(at.rejected.as_slice(), [(_, TxError::Consent(ConsentError::AlreadyExpired { at_ms, .. }))] if *at_ms == until),
        "{:?}",
        at.rejected
    );
}

#[test]
fn the_approval_threshold_is_strictly_more_than_the_fraction() {
    // Two thirds (the default): 2 of 3 is exactly two thirds — not enough.
    assert!(!threshold_met(2, 3, 2, 3));
    assert!(threshold_met(3, 3, 2, 3));
    assert!(!threshold_met(2, 4, 2, 3));
    assert!(threshold_met(3, 4, 2, 3));
    // One half: 2 of 4 is not more than half, 3 of 4 is.
    assert!(!threshold_met(2, 4, 1, 2));
    assert!(threshold_met(3, 4, 1, 2));
    // On a chain of three agencies: two approvals are exactly two thirds, not enough.
    let chain = chain_with(|g| {
        g.agencies.truncate(3);
        let names: Vec<String> = g.agencies.iter().map(|a| a.name.clone()).collect();
        for l in g.lenders.iter_mut().filter(|l| !names.contains(&l.sponsor)) {
            l.sponsor = names[0].clone();
        }
    });
    let (_d, mut ledger) = open(&chain);
    let p = chain.propose(0, 1, vec![Change::FreezeIssuer { name: chain.genesis.issuers[0].name.clone() }], 100);
    chain.commit_next(&mut ledger, vec![p.clone()]).unwrap();
    chain.commit_next(&mut ledger, vec![chain.approve(1, 1, id(&p))]).unwrap();
    assert_eq!(ledger.gov().proposal(&id(&p)).unwrap().outcome, Outcome::Open, "2 of 3 approved it");
    chain.commit_next(&mut ledger, vec![chain.approve(2, 1, id(&p))]).unwrap();
    assert!(matches!(ledger.gov().proposal(&id(&p)).unwrap().outcome, Outcome::Approved { .. } | Outcome::Applied { .. }));
}

#[test]
fn a_proposals_deadline_may_be_the_last_height_its_ttl_allows_and_no_later() {
    let chain = TestChain::new(4, 2);
    let (_d, ledger) = open(&chain);
    let h = ledger.height().next().0;
    let ttl = chain.genesis.params.governance.max_proposal_ttl_blocks;
    let change = || vec![Change::FreezeIssuer { name: chain.genesis.issuers[0].name.clone() }];
    admit(&ledger, &chain.propose(0, 1, change(), h + ttl)).expect("deadline h + ttl");
    admit(&ledger, &chain.propose(0, 1, change(), h)).expect("deadline h");
    match admit(&ledger, &chain.propose(0, 1, change(), h + ttl + 1)) {
        Err(TxError::Governance(GovError::BadDeadline { deadline, height, max })) => {
            assert_eq!((deadline, height, max), (h + ttl + 1, h, h + ttl))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn only_a_proposal_of_freezes_alone_takes_effect_at_the_next_block() {
    let chain = TestChain::new(4, 2);
    let (_d, mut ledger) = open(&chain);
    let d = chain.genesis.params.governance.activation_delay_blocks;
    let name = chain.genesis.issuers[0].name.clone();
    let freeze = Change::FreezeIssuer { name: name.clone() };
    let rights = Change::SetIssuerRights { name: chain.genesis.issuers[1].name.clone(), kinds: vec![AttestationKind::RedList], may_revoke_any: false };
    let alone = chain.propose(0, 1, vec![freeze.clone()], 100);
    let mixed = chain.propose(1, 1, vec![rights, Change::FreezeIssuer { name: chain.genesis.issuers[1].name.clone() }], 100);
    chain.commit_next(&mut ledger, vec![alone.clone(), mixed.clone()]).unwrap();
    let approvals = vec![chain.approve(1, 2, id(&alone)), chain.approve(2, 1, id(&alone)), chain.approve(0, 2, id(&mixed)), chain.approve(2, 2, id(&mixed))];
    chain.commit_next(&mut ledger, approvals).unwrap();
    let a = ledger.height().0;
    let effective = |p: &SignedTransaction| match ledger.gov().proposal(&id(p)).unwrap().outcome {
        Outcome::Approved { effective, .. } | Outcome::Applied { effective, .. } => effective,
        ref o => panic!("{o:?}"),
    };
    assert_eq!(effective(&alone), a + 1, "a freeze alone: the next block");
    assert_eq!(effective(&mixed), a + d, "a freeze with another change: the activation delay");
}

#[test]
fn an_approval_by_an_agency_removed_since_no_longer_counts() {
    let chain = TestChain::new(4, 2);
    let (_d, mut ledger) = open(&chain);
    let g = &chain.genesis;
    let gone = (0..g.agencies.len()).rev().find(|i| !g.lenders.iter().any(|l| l.sponsor == g.agencies[*i].name)).unwrap();
    let others: Vec<usize> = (0..4).filter(|i| *i != gone).collect();
    // The agency to be removed proposes P (its own approval).
    let p = chain.propose(gone, 1, vec![Change::FreezeIssuer { name: g.issuers[0].name.clone() }], 1_000);
    let remove = chain.propose(others[0], 1, vec![Change::RemoveAgency { name: g.agencies[gone].name.clone() }], 1_000);
    chain.commit_next(&mut ledger, vec![p.clone(), remove.clone()]).unwrap();
    chain.commit_next(&mut ledger, vec![chain.approve(others[1], 1, id(&remove)), chain.approve(others[2], 1, id(&remove))]).unwrap();
    while ledger.gov().proposal(&id(&remove)).unwrap().state_at(ledger.height().0) != "applied" {
        chain.commit_next(&mut ledger, vec![]).unwrap();
    }
    // Two of the three agencies left approve: with the removed agency's approval
    // that would be three; two of three is not more than two thirds.
    chain.commit_next(&mut ledger, vec![chain.approve(others[0], 2, id(&p)), chain.approve(others[1], 2, id(&p))]).unwrap();
    assert_eq!(ledger.gov().proposal(&id(&p)).unwrap().outcome, Outcome::Open);
    chain.commit_next(&mut ledger, vec![chain.approve(others[2], 2, id(&p))]).unwrap();
    assert!(matches!(ledger.gov().proposal(&id(&p)).unwrap().outcome, Outcome::Approved { .. } | Outcome::Applied { .. }));
}

#[test]
fn an_approval_in_the_same_block_as_its_proposal_is_refused() {
    let chain = TestChain::new(4, 2);
    let (_d, mut ledger) = open(&chain);
    let p = chain.propose(0, 1, vec![Change::FreezeIssuer { name: chain.genesis.issuers[0].name.clone() }], 1_000);
    let a1 = chain.approve(1, 1, id(&p));
    let built = ledger.build_block(vec![p.clone(), a1.clone()], proposer(&ledger), Round(0), 5).unwrap();
    assert_eq!(built.block.txs, vec![p.clone()]);
    assert!(
        matches!(built.rejected.as_slice(), [(i, TxError::Governance(GovError::UnknownProposal(q)))] if *i == id(&a1) && *q == id(&p)),
        "{:?}",
        built.rejected
    );
    // In the next block it counts.
    chain.commit_next(&mut ledger, vec![p.clone()]).unwrap();
    chain.commit_next(&mut ledger, vec![a1]).unwrap();
    assert_eq!(ledger.gov().proposal(&id(&p)).unwrap().approvals.len(), 2);
}

/// Consensus constants the specification states (docs/access.md, docs/proofs.md):
/// every node and every offline verifier must use the same values.
#[test]
fn the_documented_consensus_constants() {
    assert_eq!(yrd_ledger::consent::RETIRED_KEY_GRACE_BLOCKS, 16);
    assert_eq!(yrd_ledger::queries::MAX_RECORD_LAG_BLOCKS, 600);
    assert_eq!(yrd_ledger::queries::MAX_SERVED_AHEAD_MS, 60_000);
    assert_eq!(MAX_TX_BYTES, 4096);
    assert_eq!(yrd_ledger::governance::MAX_MEMBER_VALIDATORS, 16);
}

#[test]
fn a_block_that_does_not_name_the_tip_as_its_parent_is_refused() {
    let chain = TestChain::new(4, 2);
    let (_d, mut ledger) = open(&chain);
    chain.commit_next(&mut ledger, vec![chain.attestation(0, 1, Uscc::sample(1), AttestationKind::RedList)]).unwrap();
    let a = chain.attestation(0, 2, Uscc::sample(2), AttestationKind::RedList);
    let built = ledger.build_block(vec![a], proposer(&ledger), Round(0), 5).unwrap();
    ledger.validate_block(&built.block, &|_| false).unwrap();
    let mut b = built.block.clone();
    b.header.parent.0[0] ^= 1;
    match ledger.validate_block(&b, &|_| false) {
        Err(BlockError::WrongParent { expected, got }) => assert_eq!((expected, got), (built.block.header.parent, b.header.parent)),
        r => panic!("{r:?}"),
    }
}
