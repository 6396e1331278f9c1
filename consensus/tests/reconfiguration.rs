//! The core with a changing validator set (docs/consensus.md §7,
//! "Reconfiguration"): every message, certificate and vote count is checked
//! against the set of its own height; our index is our key's position in that
//! set; stale keys never count.
//!
//! Keys are `k0`..`k5`. The sets used below:
//! * `A` = [k0, k1, k2, k3] — the set at height 1;
//! * `B` = [k0, k1, k2, k4] — k3 rotated to k4 at the same position;
//! * `C` = [k1, k2, k4, k0, k5] — every index moved, k5 added (n = 5);
//! * `R` = [k0, k1, k2] — k3 removed (n = 3, f = 0).

use yrd_consensus::crypto::sha256;
use yrd_consensus::messages::MessageError;
use yrd_consensus::safety::{SignStep, SignedSlot};
use yrd_consensus::*;

const H: Height = Height(1);
const H2: Height = Height(2);

fn chain() -> Hash32 {
    sha256(&[b"reconfiguration-test-chain"])
}
fn key(i: u8) -> SecretKey {
    SecretKey::from_seed(&[i])
}
fn set_of(keys: &[u8]) -> ValidatorSet {
    ValidatorSet::new(keys.iter().map(|i| key(*i).public()).collect()).unwrap()
}
fn a_set() -> ValidatorSet {
    set_of(&[0, 1, 2, 3])
}
fn b_set() -> ValidatorSet {
    set_of(&[0, 1, 2, 4])
}
fn c_set() -> ValidatorSet {
    set_of(&[1, 2, 4, 0, 5])
}
fn r_set() -> ValidatorSet {
    set_of(&[0, 1, 2])
}
fn sets(current: ValidatorSet, next: ValidatorSet) -> HeightSets {
    HeightSets { current, next }
}
fn block(name: &str) -> BlockHash {
    sha256(&[name.as_bytes()])
}
fn r(x: u32) -> Round {
    Round(x)
}
fn core(me: Option<u8>, height: Height, s: HeightSets) -> Core {
    core_with(me, SafetyState::default(), height, s)
}
fn core_with(me: Option<u8>, safety: SafetyState, height: Height, s: HeightSets) -> Core {
    let cfg = Config { chain: chain(), timeouts: TimeoutConfig::default() };
    let mut c = Core::new(cfg, me.map(key), safety, height, s).unwrap();
    let _ = c.start();
    c
}
/// A vote signed by key `signer` claiming index `index`.
fn vote(kind: VoteKind, signer: u8, index: u32, h: Height, round: Round, value: Option<BlockHash>) -> SignedVote {
    Vote { chain: chain(), kind, height: h, round, value, validator: ValidatorIndex(index) }.sign(&key(signer)).unwrap()
}
fn precommit(signer: u8, index: u32, h: Height, value: BlockHash) -> SignedVote {
    vote(VoteKind::Precommit, signer, index, h, r(0), Some(value))
}
/// A certificate for `value` at `(h, 0)` from `(index, signer)` pairs.
fn cert(h: Height, value: BlockHash, signers: &[(u32, u8)]) -> CommitCertificate {
    CommitCertificate {
        height: h,
        round: r(0),
        block_hash: value,
        signatures: signers.iter().map(|(i, k)| (ValidatorIndex(*i), precommit(*k, *i, h, value).signature)).collect(),
    }
}
/// The rightful proposal at `(h, 0)` in `set`.
fn proposal(set: &ValidatorSet, h: Height, value: BlockHash) -> SignedProposal {
    let p = set.proposer(h, r(0));
    let signer = (0..6u8).find(|i| set.key(p) == Some(&key(*i).public())).unwrap();
    Proposal { chain: chain(), height: h, round: r(0), value, pol_round: None, proposer: p }.sign(&key(signer)).unwrap()
}
fn sched(h: Height, round: Round, step: Step) -> Action {
    Action::ScheduleTimeout { timeout: Timeout { height: h, round, step }, duration_ms: TimeoutConfig::default().duration_ms(step, round) }
}
fn rejected_vote(h: Height, index: u32, error: MessageError) -> Vec<Action> {
    vec![Action::Rejected(Rejection::InvalidVote { height: h, round: r(0), validator: ValidatorIndex(index), error })]
}
/// Decides height 1 from a certificate of `A` and commits it, handing over `next`.
fn commit_height_1(c: &mut Core, next: HeightSets) -> Vec<Action> {
    let acts = c.handle(Event::CommitCertified(cert(H, block("h1"), &[(1, 1), (2, 2), (3, 3)])));
    assert!(matches!(acts.last(), Some(Action::Commit(_))), "{acts:?}");
    c.handle(Event::Committed { height: H, sets: next })
}

#[test]
fn votes_are_checked_against_the_set_of_their_height() {
    let mut c = core(Some(0), H, sets(a_set(), b_set()));
    // Height 2: index 3 is k4; the rotated-out k3 does not count there.
    let v = vote(VoteKind::Prevote, 3, 3, H2, r(0), None);
    assert_eq!(c.handle(Event::Vote(v)), rejected_vote(H2, 3, MessageError::BadSignature(ValidatorIndex(3))));
    let v = vote(VoteKind::Prevote, 4, 3, H2, r(0), None);
    assert_eq!(c.handle(Event::Vote(v.clone())), vec![]);
    let dropped = c.stats().duplicates_dropped;
    assert_eq!(c.handle(Event::Vote(v)), vec![], "stored: the copy is a duplicate");
    assert_eq!(c.stats().duplicates_dropped, dropped + 1);
    // Height 1: index 3 is still k3; k4 is not a member yet.
    let v = vote(VoteKind::Prevote, 4, 3, H, r(0), None);
    assert_eq!(c.handle(Event::Vote(v)), rejected_vote(H, 3, MessageError::BadSignature(ValidatorIndex(3))));
    let v = vote(VoteKind::Prevote, 3, 3, H, r(0), None);
    assert_eq!(c.handle(Event::Vote(v)), vec![]);
}

#[test]
fn certificates_are_checked_against_the_set_of_their_height_current_or_next_only() {
    let mut c = core(Some(0), H, sets(a_set(), b_set()));
    // Signed by A for height 2, whose set is B: k3 does not count there.
    let stale = cert(H2, block("h2"), &[(1, 1), (2, 2), (3, 3)]);
    assert_eq!(
        c.handle(Event::CommitCertified(stale.clone())),
        vec![Action::Rejected(Rejection::InvalidCertificate {
            height: H2,
            error: CertificateError::BadSignature(ValidatorIndex(3)),
        })]
    );
    assert!(stale.verify(&chain(), &a_set(), H2, &block("h2")).is_ok(), "it is a valid certificate of the old set");
    // Height 3: no set known yet; the node must feed certificates in order.
    let far = cert(Height(3), block("h3"), &[(1, 1), (2, 2), (3, 4)]);
    assert_eq!(
        c.handle(Event::CommitCertified(far)),
        vec![Action::Rejected(Rejection::CertificateTooFarAhead { height: Height(3), current: H })]
    );
    // The right certificate of height 2 is kept, and decided once height 1 is.
    let good = cert(H2, block("h2"), &[(1, 1), (2, 2), (3, 4)]);
    assert_eq!(c.handle(Event::CommitCertified(good.clone())), vec![]);
    let acts = commit_height_1(&mut c, sets(b_set(), b_set()));
    assert_eq!(acts, vec![Action::Commit(good)]);
}

#[test]
fn a_removed_validators_votes_never_count() {
    // An observer, so that only others' votes decide.
    let mut c = core(None, H, sets(a_set(), r_set()));
    let _ = commit_height_1(&mut c, sets(r_set(), r_set()));
    assert_eq!(c.height(), H2);
    let v = block("h2");
    assert_eq!(c.handle(Event::Proposal { proposal: proposal(&r_set(), H2, v), valid: true }), vec![sched(H2, r(0), Step::Prevote)]);
    // Quorum of R (n = 3, f = 0) is 3. k3 is gone: neither as its old index nor
    // as anyone else's does its precommit count.
    assert_eq!(
        c.handle(Event::Vote(precommit(3, 3, H2, v))),
        rejected_vote(H2, 3, MessageError::UnknownValidator { index: ValidatorIndex(3), n: 3 })
    );
    assert_eq!(c.handle(Event::Vote(precommit(3, 0, H2, v))), rejected_vote(H2, 0, MessageError::BadSignature(ValidatorIndex(0))));
    assert_eq!(c.handle(Event::Vote(precommit(1, 1, H2, v))), vec![]);
    assert_eq!(c.handle(Event::Vote(precommit(2, 2, H2, v))), vec![]);
    let acts = c.handle(Event::Vote(precommit(0, 0, H2, v)));
    let Some(Action::Commit(decided)) = acts.last() else { panic!("no decision: {acts:?}") };
    assert_eq!(decided.signatures.iter().map(|(i, _)| i.0).collect::<Vec<_>>(), vec![0, 1, 2]);
    decided.verify(&chain(), &r_set(), H2, &v).unwrap();
}

#[test]
fn our_index_is_the_position_of_our_key_in_the_set_of_each_height() {
    let mut c = core(Some(0), H, sets(a_set(), c_set()));
    assert_eq!(c.index(), Some(ValidatorIndex(0)));
    let _ = commit_height_1(&mut c, sets(c_set(), c_set()));
    assert_eq!(c.index(), Some(ValidatorIndex(3)));
    let v = block("h2");
    let acts = c.handle(Event::Proposal { proposal: proposal(&c_set(), H2, v), valid: true });
    let ours = vote(VoteKind::Prevote, 0, 3, H2, r(0), Some(v));
    assert_eq!(
        acts,
        vec![
            Action::PersistSafety(SafetyState {
                last_signed: Some(SignedSlot { height: H2, round: r(0), step: SignStep::Prevote, value: Some(v), pol_round: None }),
                ..SafetyState::default()
            }),
            Action::BroadcastVote(ours.clone()),
            sched(H2, r(0), Step::Prevote),
        ]
    );
    ours.verify(&chain(), &c_set()).unwrap();
}

#[test]
fn the_proposer_is_a_function_of_the_set_of_the_height() {
    let mut c = core(Some(0), H, sets(a_set(), c_set()));
    // In C the proposer of (2, 0) is index 2 (k4); k2 sits at index 1.
    assert_eq!(c_set().proposer(H2, r(0)), ValidatorIndex(2));
    let p = Proposal { chain: chain(), height: H2, round: r(0), value: block("x"), pol_round: None, proposer: ValidatorIndex(1) }
        .sign(&key(2))
        .unwrap();
    assert_eq!(
        c.handle(Event::Proposal { proposal: p, valid: true }),
        vec![Action::Rejected(Rejection::InvalidProposal {
            height: H2,
            round: r(0),
            error: MessageError::WrongProposer { height: H2, round: r(0), expected: ValidatorIndex(2), got: ValidatorIndex(1) },
        })]
    );
    assert_eq!(c.handle(Event::Proposal { proposal: proposal(&c_set(), H2, block("x")), valid: true }), vec![]);
}

#[test]
fn a_removed_key_follows_without_signing_and_signs_again_once_readded() {
    // k3 is a member at height 1, removed at 2, re-added at position 0 at 3.
    let readded = set_of(&[3, 0, 1, 2]);
    let mut c = core(Some(3), H, sets(a_set(), r_set()));
    assert_eq!(c.index(), Some(ValidatorIndex(3)));
    let _ = commit_height_1(&mut c, sets(r_set(), readded.clone()));
    assert_eq!(c.index(), None);
    // Height 2: follows the chain, signs nothing, even when the proposal is good.
    let v2 = block("h2");
    let acts = c.handle(Event::Proposal { proposal: proposal(&r_set(), H2, v2), valid: true });
    assert_eq!(acts, vec![sched(H2, r(0), Step::Prevote)]);
    for signer in 0..3u8 {
        let acts = c.handle(Event::Vote(precommit(signer, u32::from(signer), H2, v2)));
        assert!(acts.iter().all(|a| !matches!(a, Action::PersistSafety(_) | Action::BroadcastVote(_))), "{acts:?}");
    }
    assert!(matches!(c.decided(), Some(d) if d.block_hash == v2));
    let acts = c.handle(Event::Committed { height: H2, sets: sets(readded.clone(), readded.clone()) });
    assert_eq!(c.index(), Some(ValidatorIndex(0)));
    // Height 3: the proposer of (3, 0) in the new set is index 3 (k2); we vote as index 0.
    assert_eq!(acts, vec![sched(Height(3), r(0), Step::Propose)]);
    let v3 = block("h3");
    let acts = c.handle(Event::Proposal { proposal: proposal(&readded, Height(3), v3), valid: true });
    assert!(matches!(acts.first(), Some(Action::PersistSafety(s)) if s.last_signed.is_some_and(|l| l.height == Height(3))), "{acts:?}");
    assert_eq!(acts.get(1), Some(&Action::BroadcastVote(vote(VoteKind::Prevote, 3, 0, Height(3), r(0), Some(v3)))));
}

#[test]
fn a_rotated_in_key_does_not_sign_before_its_height_and_keeps_the_old_safety_state() {
    // The node restarts with k4 at height 1 (where k3 still signs), carrying the
    // safety state k3 persisted: it signs nothing at height 1.
    let persisted = SafetyState {
        last_signed: Some(SignedSlot { height: H, round: r(0), step: SignStep::Prevote, value: Some(block("h1")), pol_round: None }),
        ..SafetyState::default()
    };
    let mut c = core_with(Some(4), persisted.clone(), H, sets(a_set(), b_set()));
    assert_eq!(c.index(), None);
    let acts = c.handle(Event::Proposal { proposal: proposal(&a_set(), H, block("h1")), valid: true });
    assert_eq!(acts, vec![sched(H, r(0), Step::Prevote)]);
    assert_eq!(c.safety(), &persisted);
    let _ = commit_height_1(&mut c, sets(b_set(), b_set()));
    assert_eq!(c.index(), Some(ValidatorIndex(3)));
    let v = block("h2");
    let acts = c.handle(Event::Proposal { proposal: proposal(&b_set(), H2, v), valid: true });
    assert_eq!(acts.get(1), Some(&Action::BroadcastVote(vote(VoteKind::Prevote, 4, 3, H2, r(0), Some(v)))));
}

#[test]
fn peer_behind_names_the_peer_by_key_and_late_messages_use_the_set_of_their_height() {
    let mut c = core(Some(0), H, sets(a_set(), r_set()));
    let _ = commit_height_1(&mut c, sets(r_set(), r_set()));
    // A late prevote of height 1 from k3, index 3 of A (no longer a member): the
    // set of height 1 is kept, so it is recognised and answered.
    let late = vote(VoteKind::Prevote, 3, 3, H, r(1), None);
    assert_eq!(c.handle(Event::Vote(late)), vec![Action::PeerBehind { peer: key(3).public(), height: H }]);
    assert_eq!(c.peer_progress(&key(3).public()), Some((H, r(1))));
    assert_eq!(c.set_for(H), Some(&a_set()));
    // A forgery for height 1 is still invalid there.
    let forged = vote(VoteKind::Prevote, 4, 3, H, r(2), None);
    assert_eq!(
        c.handle(Event::Vote(forged)),
        vec![Action::Rejected(Rejection::InvalidVote {
            height: H,
            round: r(2),
            validator: ValidatorIndex(3),
            error: MessageError::BadSignature(ValidatorIndex(3)),
        })]
    );
}

#[test]
fn d6_beyond_the_next_height_messages_are_hints_and_the_core_probes_for_certificates() {
    let mut c = core(Some(0), H, sets(a_set(), b_set()));
    // Height 5's set is unknown: checked against B, a signer at another position
    // there is dropped without blame; one at the same position counts as a hint.
    let unknown = vote(VoteKind::Prevote, 5, 3, Height(5), r(0), None);
    assert_eq!(c.handle(Event::Vote(unknown)), vec![]);
    assert_eq!(c.stats().unverifiable_dropped, 1);
    let known = vote(VoteKind::Prevote, 4, 3, Height(5), r(0), None);
    assert_eq!(c.handle(Event::Vote(known)), vec![]);
    assert_eq!(c.peer_progress(&key(4).public()), Some((Height(5), r(0))));
    // Timing out of round 1 into round 2 (a multiple of SYNC_PROBE_ROUNDS) asks
    // for certificates although no f + 1 peers were recognised ahead.
    for round in 0..2 {
        let _ = c.handle(Event::Timeout(Timeout { height: H, round: r(round), step: Step::Propose }));
        let _ = c.handle(Event::Timeout(Timeout { height: H, round: r(round), step: Step::Prevote }));
        let acts = c.handle(Event::Timeout(Timeout { height: H, round: r(round), step: Step::Precommit }));
        let probe = Action::SyncNeeded { height: H, ahead: H };
        assert_eq!(acts.contains(&probe), round + 1 == core::SYNC_PROBE_ROUNDS, "round {round}: {acts:?}");
    }
}

#[test]
fn sets_handed_over_inconsistently_are_reported_and_what_was_checked_is_dropped() {
    let mut c = core(Some(0), H, sets(a_set(), b_set()));
    // A vote of height 2 checked against B, then the node says height 2 is C.
    assert_eq!(c.handle(Event::Vote(vote(VoteKind::Precommit, 4, 3, H2, r(0), Some(block("h2"))))), vec![]);
    let acts = commit_height_1(&mut c, sets(c_set(), c_set()));
    assert_eq!(
        acts,
        vec![
            Action::Rejected(Rejection::InconsistentSets { height: H2 }),
            sched(H2, r(0), Step::Propose),
            Action::SyncNeeded { height: H2, ahead: H2 },
        ]
    );
    assert_eq!(c.sets(), &sets(c_set(), c_set()));
}

/// The unit-level control for the simulator's stale-set check: a core handed the
/// set in force before the change accepts the old set's certificate for a height
/// of the new set, and that certificate does not verify against the new set.
#[test]
fn control_a_core_handed_the_previous_set_accepts_a_stale_certificate() {
    let stale_cert = cert(H2, block("stale"), &[(1, 1), (2, 2), (3, 3)]);
    let mut right = core(Some(0), H, sets(a_set(), b_set()));
    let mut wrong = core(Some(0), H, sets(a_set(), a_set()));
    assert!(matches!(right.handle(Event::CommitCertified(stale_cert.clone()))[..], [Action::Rejected(_)]));
    assert_eq!(wrong.handle(Event::CommitCertified(stale_cert.clone())), vec![]);
    let acts = commit_height_1(&mut wrong, sets(a_set(), a_set()));
    assert_eq!(acts, vec![Action::Commit(stale_cert.clone())]);
    assert_eq!(
        stale_cert.verify(&chain(), &b_set(), H2, &block("stale")),
        Err(CertificateError::BadSignature(ValidatorIndex(3)))
    );
}

#[test]
fn evidence_is_checked_against_the_set_of_its_height() {
    let mut c = core(Some(0), H, sets(a_set(), c_set()));
    // Two conflicting prevotes of height 2 by k5, index 4 of C.
    let first = vote(VoteKind::Prevote, 5, 4, H2, r(0), Some(block("x")));
    let second = vote(VoteKind::Prevote, 5, 4, H2, r(0), Some(block("y")));
    assert_eq!(c.handle(Event::Vote(first.clone())), vec![]);
    let acts = c.handle(Event::Vote(second.clone()));
    let evidence = Equivocation::Vote { first, second };
    assert_eq!(acts, vec![Action::Evidence(evidence.clone())]);
    assert_eq!(evidence.signer(&c_set()), Some(key(5).public()));
    evidence.verify(&chain(), &c_set()).unwrap();
    assert!(evidence.verify(&chain(), &a_set()).is_err(), "index 4 means nothing in A");
}
