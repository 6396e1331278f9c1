//! Table tests for single transitions of the core: `{ desc, input, expected }`.
//!
//! Each case builds a core for validator `me` of a 4-validator set (f = 1,
//! quorum 3), feeds `setup` (outputs ignored), then `input`, and compares the
//! actions exactly. Signatures are deterministic (ed25519), so expected messages
//! are built by signing the same content. Case names cite Algorithm 1 of
//! arXiv 1807.04938 ("L22") or docs/consensus.md.

use yrd_consensus::crypto::sha256;
use yrd_consensus::safety::{LockedValue, SignStep, SignedSlot};
use yrd_consensus::*;

const N: usize = 4;

fn chain() -> Hash32 {
    sha256(&[b"table-test-chain"])
}
fn key(i: u32) -> SecretKey {
    SecretKey::from_seed(&[i as u8])
}
fn set() -> ValidatorSet {
    ValidatorSet::new((0..N as u32).map(|i| key(i).public()).collect()).unwrap()
}
fn block(name: &str) -> BlockHash {
    sha256(&[name.as_bytes()])
}
fn a() -> BlockHash {
    block("A")
}
fn b() -> BlockHash {
    block("B")
}
const H: Height = Height(1);
fn r(x: u32) -> Round {
    Round(x)
}

fn proposal_by(signer: u32, h: Height, round: Round, value: BlockHash, pol: Option<Round>) -> SignedProposal {
    Proposal { chain: chain(), height: h, round, value, pol_round: pol, proposer: ValidatorIndex(signer) }
        .sign(&key(signer))
        .unwrap()
}
/// A proposal from the rightful proposer of (h, round).
fn proposal(h: Height, round: Round, value: BlockHash, pol: Option<Round>) -> SignedProposal {
    let p = set().proposer(h, round).0;
    proposal_by(p, h, round, value, pol)
}
fn vote(kind: VoteKind, i: u32, h: Height, round: Round, value: Option<BlockHash>) -> SignedVote {
    Vote { chain: chain(), kind, height: h, round, value, validator: ValidatorIndex(i) }.sign(&key(i)).unwrap()
}
fn prevote(i: u32, round: Round, value: Option<BlockHash>) -> SignedVote {
    vote(VoteKind::Prevote, i, H, round, value)
}
fn precommit(i: u32, round: Round, value: Option<BlockHash>) -> SignedVote {
    vote(VoteKind::Precommit, i, H, round, value)
}
fn ev_prop(p: SignedProposal, valid: bool) -> Event {
    Event::Proposal { proposal: p, valid }
}
fn ev_vote(v: SignedVote) -> Event {
    Event::Vote(v)
}
fn timeout(h: Height, round: Round, step: Step) -> Event {
    Event::Timeout(Timeout { height: h, round, step })
}
fn sched(h: Height, round: Round, step: Step) -> Action {
    let d = TimeoutConfig::default().duration_ms(step, round);
    Action::ScheduleTimeout { timeout: Timeout { height: h, round, step }, duration_ms: d }
}
fn slot(round: Round, step: SignStep, value: Option<BlockHash>) -> SignedSlot {
    SignedSlot { height: H, round, step, value, pol_round: None }
}
fn lv(round: Round, value: BlockHash) -> Option<LockedValue> {
    Some(LockedValue { height: H, round, value })
}
fn persist(last: SignedSlot, locked: Option<LockedValue>, valid: Option<LockedValue>) -> Action {
    persist_with_proof(last, locked, valid, vec![])
}
fn persist_with_proof(last: SignedSlot, locked: Option<LockedValue>, valid: Option<LockedValue>, valid_proof: Vec<SignedVote>) -> Action {
    Action::PersistSafety(SafetyState { last_signed: Some(last), locked, valid, valid_proof })
}
/// Prevotes for A at round 0 from these validators: the proof of a valid value.
fn proof_a0(validators: &[u32]) -> Vec<SignedVote> {
    validators.iter().map(|i| prevote(*i, r(0), Some(a()))).collect()
}
fn cert(round: Round, value: BlockHash, signers: &[u32]) -> CommitCertificate {
    CommitCertificate {
        height: H,
        round,
        block_hash: value,
        signatures: signers.iter().map(|i| (ValidatorIndex(*i), precommit(*i, round, Some(value)).signature)).collect(),
    }
}

/// Events that bring a non-proposer (validator 0) to round `target` at height 1
/// by timing out every step of rounds below it.
fn time_out_to(target: u32) -> Vec<Event> {
    let mut ev = vec![Event::Start];
    for x in 0..target {
        ev.push(timeout(H, r(x), Step::Propose));
        ev.push(timeout(H, r(x), Step::Prevote));
        ev.push(timeout(H, r(x), Step::Precommit));
    }
    ev
}

struct Case {
    desc: &'static str,
    me: Option<u32>,
    safety: SafetyState,
    setup: Vec<Event>,
    input: Event,
    expected: Vec<Action>,
}

impl Case {
    fn new(desc: &'static str, me: u32, setup: Vec<Event>, input: Event, expected: Vec<Action>) -> Case {
        Case { desc, me: Some(me), safety: SafetyState::default(), setup, input, expected }
    }
}

fn run(case: Case) {
    let cfg = Config { chain: chain(), timeouts: TimeoutConfig::default() };
    let mut core = Core::new(cfg, case.me.map(key), case.safety, H, HeightSets::fixed(set())).unwrap();
    for e in case.setup {
        let _ = core.handle(e);
    }
    let got = core.handle(case.input);
    assert_eq!(got, case.expected, "\ncase: {}\n", case.desc);
}

fn precommit_nil_vote_persist(round: Round) -> Action {
    persist(slot(round, SignStep::Precommit, None), None, None)
}

#[test]
fn table_single_transitions() {
    let pv0 = |round, v| prevote(0, round, v);
    let cases = vec![
        Case::new("L10/L21 start as a non-proposer: schedule timeoutPropose", 0, vec![], Event::Start, vec![sched(H, r(0), Step::Propose)]),
        Case::new(
            "L14/L18 start as the proposer: ask the node for a block (D1: timeoutPropose too)",
            1,
            vec![],
            Event::Start,
            vec![sched(H, r(0), Step::Propose), Action::RequestProposal { height: H, round: r(0) }],
        ),
        Case::new(
            "L19 proposer: persist, broadcast the proposal, then L22 prevote its own block",
            1,
            vec![Event::Start],
            Event::ProposalValue { height: H, round: r(0), value: a() },
            vec![
                Action::PersistSafety(SafetyState {
                    last_signed: Some(SignedSlot { height: H, round: r(0), step: SignStep::Proposal, value: Some(a()), pol_round: None }),
                    locked: None,
                    valid: None,
                    valid_proof: vec![],
                }),
                Action::BroadcastProposal(proposal(H, r(0), a(), None)),
                persist(slot(r(0), SignStep::Prevote, Some(a())), None, None),
                Action::BroadcastVote(prevote(1, r(0), Some(a()))),
                sched(H, r(0), Step::Prevote),
            ],
        ),
        Case::new(
            "stale ProposalValue (another round) is ignored",
            1,
            vec![Event::Start],
            Event::ProposalValue { height: H, round: r(1), value: a() },
            vec![],
        ),
        Case::new(
            "L22-L24 valid proposal, not locked: persist then prevote v (D3: timeoutPrevote)",
            0,
            vec![Event::Start],
            ev_prop(proposal(H, r(0), a(), None), true),
            vec![persist(slot(r(0), SignStep::Prevote, Some(a())), None, None), Action::BroadcastVote(pv0(r(0), Some(a()))), sched(H, r(0), Step::Prevote)],
        ),
        Case::new(
            "L26 invalid proposal: prevote nil",
            0,
            vec![Event::Start],
            ev_prop(proposal(H, r(0), a(), None), false),
            vec![persist(slot(r(0), SignStep::Prevote, None), None, None), Action::BroadcastVote(pv0(r(0), None)), sched(H, r(0), Step::Prevote)],
        ),
        Case::new(
            "L28 proposal with a proof-of-lock round but no 2f+1 prevotes at it yet: wait",
            0,
            time_out_to(1),
            ev_prop(proposal(H, r(1), a(), Some(r(0))), true),
            vec![],
        ),
        Case::new(
            "L28-L30 the third prevote at vr completes the proof of lock: prevote v",
            0,
            {
                let mut s = time_out_to(1);
                s.push(ev_prop(proposal(H, r(1), a(), Some(r(0))), true));
                s.push(ev_vote(prevote(1, r(0), Some(a()))));
                s.push(ev_vote(prevote(2, r(0), Some(a()))));
                s
            },
            ev_vote(prevote(3, r(0), Some(a()))),
            vec![persist(slot(r(1), SignStep::Prevote, Some(a())), None, None), Action::BroadcastVote(pv0(r(1), Some(a()))), sched(H, r(1), Step::Prevote)],
        ),
        Case::new(
            "L34 (subsumed by D3): 2f+1 mixed prevotes schedule nothing new",
            0,
            vec![Event::Start, ev_prop(proposal(H, r(0), a(), None), true), ev_vote(prevote(1, r(0), None))],
            ev_vote(prevote(2, r(0), Some(b()))),
            vec![],
        ),
        Case::new(
            "L36-L41 proposal and 2f+1 prevotes for v in prevote step: lock, persist lock, precommit v",
            0,
            vec![Event::Start, ev_prop(proposal(H, r(0), a(), None), true), ev_vote(prevote(1, r(0), Some(a())))],
            ev_vote(prevote(2, r(0), Some(a()))),
            vec![
                persist_with_proof(slot(r(0), SignStep::Precommit, Some(a())), lv(r(0), a()), lv(r(0), a()), proof_a0(&[0, 1, 2])),
                Action::BroadcastVote(precommit(0, r(0), Some(a()))),
                sched(H, r(0), Step::Precommit),
            ],
        ),
        Case::new(
            "L36 for the first time only: a fourth prevote for v does nothing",
            0,
            vec![
                Event::Start,
                ev_prop(proposal(H, r(0), a(), None), true),
                ev_vote(prevote(1, r(0), Some(a()))),
                ev_vote(prevote(2, r(0), Some(a()))),
            ],
            ev_vote(prevote(3, r(0), Some(a()))),
            vec![],
        ),
        Case::new(
            "L36/L42 in precommit step: record valid value without precommitting",
            0,
            vec![Event::Start, timeout(H, r(0), Step::Propose), timeout(H, r(0), Step::Prevote), ev_prop(proposal(H, r(0), a(), None), true), ev_vote(prevote(1, r(0), Some(a()))), ev_vote(prevote(2, r(0), Some(a())))],
            ev_vote(prevote(3, r(0), Some(a()))),
            vec![],
        ),
        Case::new(
            "L44-L46 2f+1 prevotes for nil in prevote step: precommit nil",
            0,
            vec![Event::Start, timeout(H, r(0), Step::Propose), ev_vote(prevote(1, r(0), None))],
            ev_vote(prevote(2, r(0), None)),
            vec![precommit_nil_vote_persist(r(0)), Action::BroadcastVote(precommit(0, r(0), None)), sched(H, r(0), Step::Precommit)],
        ),
        Case::new(
            "L47 2f+1 precommits of any kind (any step): schedule timeoutPrecommit",
            0,
            vec![Event::Start, ev_vote(precommit(1, r(0), None)), ev_vote(precommit(2, r(0), Some(b())))],
            ev_vote(precommit(3, r(0), None)),
            vec![sched(H, r(0), Step::Precommit)],
        ),
        Case::new(
            "L49-L51 valid proposal and 2f+1 precommits for v: Commit with their certificate",
            0,
            vec![Event::Start, ev_prop(proposal(H, r(0), a(), None), true), ev_vote(precommit(1, r(0), Some(a()))), ev_vote(precommit(2, r(0), Some(a())))],
            ev_vote(precommit(3, r(0), Some(a()))),
            vec![Action::Commit(cert(r(0), a(), &[1, 2, 3]))],
        ),
        Case::new(
            "L49 decides on precommits of an earlier round",
            0,
            {
                let mut s = time_out_to(2);
                s.push(ev_prop(proposal(H, r(0), a(), None), true));
                s.push(ev_vote(precommit(1, r(0), Some(a()))));
                s.push(ev_vote(precommit(2, r(0), Some(a()))));
                s
            },
            ev_vote(precommit(3, r(0), Some(a()))),
            // Validator 0 precommitted nil at round 0, so the certificate has 1, 2, 3.
            vec![Action::Commit(cert(r(0), a(), &[1, 2, 3]))],
        ),
        Case::new(
            "L50 2f+1 precommits for a block the application rejected: no decision",
            0,
            vec![Event::Start, ev_prop(proposal(H, r(0), a(), None), false), ev_vote(precommit(1, r(0), Some(a()))), ev_vote(precommit(2, r(0), Some(a())))],
            ev_vote(precommit(3, r(0), Some(a()))),
            vec![sched(H, r(0), Step::Precommit)],
        ),
        Case::new(
            "L55 f+1 messages from a higher round: StartRound(that round)",
            0,
            vec![Event::Start, ev_vote(prevote(1, r(5), None))],
            ev_vote(precommit(2, r(5), None)),
            vec![sched(H, r(5), Step::Propose)],
        ),
        Case::new(
            "L55 round skip also to rounds too far ahead to store (MAX_ROUNDS_AHEAD)",
            0,
            vec![Event::Start, ev_vote(prevote(1, r(100), None))],
            ev_vote(precommit(2, r(90), None)),
            vec![sched(H, r(90), Step::Propose)],
        ),
        Case::new(
            "L55 needs f+1 distinct validators: one validator's two messages do not skip",
            0,
            vec![Event::Start, ev_vote(prevote(1, r(5), None))],
            ev_vote(precommit(1, r(5), None)),
            vec![],
        ),
        Case::new(
            "L57-L60 timeoutPropose in propose step: prevote nil",
            0,
            vec![Event::Start],
            timeout(H, r(0), Step::Propose),
            vec![persist(slot(r(0), SignStep::Prevote, None), None, None), Action::BroadcastVote(pv0(r(0), None)), sched(H, r(0), Step::Prevote)],
        ),
        Case::new(
            "L61-L64 timeoutPrevote in prevote step: precommit nil",
            0,
            vec![Event::Start, timeout(H, r(0), Step::Propose)],
            timeout(H, r(0), Step::Prevote),
            vec![precommit_nil_vote_persist(r(0)), Action::BroadcastVote(precommit(0, r(0), None)), sched(H, r(0), Step::Precommit)],
        ),
        Case::new(
            "L65-L67 timeoutPrecommit: StartRound(round + 1), timeouts grow with the round",
            0,
            vec![Event::Start],
            timeout(H, r(0), Step::Precommit),
            vec![sched(H, r(1), Step::Propose)],
        ),
        Case::new(
            "L58 stale timeout (old round) is ignored",
            0,
            time_out_to(1),
            timeout(H, r(0), Step::Propose),
            vec![],
        ),
        Case::new(
            "L62 timeoutPrevote outside the prevote step is ignored",
            0,
            vec![Event::Start],
            timeout(H, r(0), Step::Prevote),
            vec![],
        ),
        Case::new(
            "L23 locked on A: a fresh proposal for B gets a nil prevote",
            0,
            {
                let mut s = vec![Event::Start, ev_prop(proposal(H, r(0), a(), None), true)];
                s.extend([1, 2].map(|i| ev_vote(prevote(i, r(0), Some(a())))));
                s.push(timeout(H, r(0), Step::Precommit));
                s
            },
            ev_prop(proposal(H, r(1), b(), None), true),
            vec![
                persist_with_proof(slot(r(1), SignStep::Prevote, None), lv(r(0), a()), lv(r(0), a()), proof_a0(&[0, 1, 2])),
                Action::BroadcastVote(pv0(r(1), None)),
                sched(H, r(1), Step::Prevote),
            ],
        ),
        Case::new(
            "L29 locked on A at round 0: proposal for B with a proof of lock from round 1 ≥ 0 gets a prevote",
            0,
            {
                let mut s = vec![Event::Start, ev_prop(proposal(H, r(0), a(), None), true)];
                s.extend([1, 2].map(|i| ev_vote(prevote(i, r(0), Some(a())))));
                s.push(timeout(H, r(0), Step::Precommit));
                s.push(timeout(H, r(1), Step::Propose));
                s.push(timeout(H, r(1), Step::Prevote));
                s.push(timeout(H, r(1), Step::Precommit));
                s.extend([1, 2, 3].map(|i| ev_vote(prevote(i, r(1), Some(b())))));
                s
            },
            ev_prop(proposal(H, r(2), b(), Some(r(1))), true),
            vec![
                persist_with_proof(slot(r(2), SignStep::Prevote, Some(b())), lv(r(0), a()), lv(r(0), a()), proof_a0(&[0, 1, 2])),
                Action::BroadcastVote(pv0(r(2), Some(b()))),
                sched(H, r(2), Step::Prevote),
            ],
        ),
        Case::new(
            "evidence: a second, different prevote from one validator",
            0,
            vec![Event::Start, ev_vote(prevote(2, r(0), Some(a())))],
            ev_vote(prevote(2, r(0), Some(b()))),
            vec![Action::Evidence(Equivocation::Vote { first: prevote(2, r(0), Some(a())), second: prevote(2, r(0), Some(b())) })],
        ),
        Case::new(
            "evidence: a second, different proposal from the proposer",
            0,
            vec![Event::Start, ev_prop(proposal(H, r(0), a(), None), true)],
            ev_prop(proposal(H, r(0), b(), None), true),
            vec![Action::Evidence(Equivocation::Proposal { first: proposal(H, r(0), a(), None), second: proposal(H, r(0), b(), None) })],
        ),
        Case::new(
            "evidence is emitted once per slot",
            0,
            vec![Event::Start, ev_vote(precommit(2, r(0), Some(a()))), ev_vote(precommit(2, r(0), Some(b())))],
            ev_vote(precommit(2, r(0), None)),
            vec![],
        ),
        Case::new("duplicate vote: dropped silently", 0, vec![Event::Start, ev_vote(prevote(2, r(0), None))], ev_vote(prevote(2, r(0), None)), vec![]),
        Case::new(
            "bad signature: rejected",
            0,
            vec![Event::Start],
            ev_vote({
                let mut v = prevote(2, r(0), None);
                v.signature.0[0] ^= 1;
                v
            }),
            vec![Action::Rejected(Rejection::InvalidVote {
                height: H,
                round: r(0),
                validator: ValidatorIndex(2),
                error: yrd_consensus::messages::MessageError::BadSignature(ValidatorIndex(2)),
            })],
        ),
        Case::new(
            "vote signed by another validator's key (impersonation): rejected",
            0,
            vec![Event::Start],
            ev_vote({
                let mut v = prevote(2, r(0), None);
                v.signature = prevote(3, r(0), None).signature;
                v
            }),
            vec![Action::Rejected(Rejection::InvalidVote {
                height: H,
                round: r(0),
                validator: ValidatorIndex(2),
                error: yrd_consensus::messages::MessageError::BadSignature(ValidatorIndex(2)),
            })],
        ),
        Case::new(
            "unknown validator: rejected",
            0,
            vec![Event::Start],
            ev_vote(Vote { chain: chain(), kind: VoteKind::Prevote, height: H, round: r(0), value: None, validator: ValidatorIndex(9) }.sign(&key(9)).unwrap()),
            vec![Action::Rejected(Rejection::InvalidVote {
                height: H,
                round: r(0),
                validator: ValidatorIndex(9),
                error: yrd_consensus::messages::MessageError::UnknownValidator { index: ValidatorIndex(9), n: 4 },
            })],
        ),
        Case::new(
            "wrong chain: rejected",
            0,
            vec![Event::Start],
            ev_vote(Vote { chain: Hash32::ZERO, kind: VoteKind::Prevote, height: H, round: r(0), value: None, validator: ValidatorIndex(2) }.sign(&key(2)).unwrap()),
            vec![Action::Rejected(Rejection::InvalidVote {
                height: H,
                round: r(0),
                validator: ValidatorIndex(2),
                error: yrd_consensus::messages::MessageError::WrongChain { expected: chain(), got: Hash32::ZERO },
            })],
        ),
        Case::new(
            "proposal from a validator that is not the proposer of the round: rejected",
            0,
            vec![Event::Start],
            ev_prop(proposal_by(3, H, r(0), a(), None), true),
            vec![Action::Rejected(Rejection::InvalidProposal {
                height: H,
                round: r(0),
                error: yrd_consensus::messages::MessageError::WrongProposer { height: H, round: r(0), expected: ValidatorIndex(1), got: ValidatorIndex(3) },
            })],
        ),
        Case::new(
            "catch-up: a vote from the decided height is answered with PeerBehind",
            0,
            vec![Event::Start, Event::CommitCertified(cert(r(0), a(), &[1, 2, 3]))],
            ev_vote(prevote(2, r(1), None)),
            vec![Action::PeerBehind { peer: key(2).public(), height: H }],
        ),
        Case::new(
            "catch-up: f+1 validators at a higher height: SyncNeeded",
            0,
            vec![Event::Start, ev_vote(vote(VoteKind::Prevote, 1, Height(3), r(0), None))],
            ev_vote(vote(VoteKind::Precommit, 2, Height(2), r(4), None)),
            vec![Action::SyncNeeded { height: H, ahead: Height(2) }],
        ),
        Case::new(
            "CommitCertified for the current height: verify and Commit",
            0,
            vec![Event::Start],
            Event::CommitCertified(cert(r(3), b(), &[0, 2, 3])),
            vec![Action::Commit(cert(r(3), b(), &[0, 2, 3]))],
        ),
        Case::new(
            "CommitCertified with too few signatures: rejected",
            0,
            vec![Event::Start],
            Event::CommitCertified(cert(r(0), b(), &[0, 2])),
            vec![Action::Rejected(Rejection::InvalidCertificate {
                height: H,
                error: CertificateError::TooFewSigners { got: 2, needed: 3, n: 4 },
            })],
        ),
        Case::new(
            "L52-L54 Committed: next height, round 0 (validator 0 is not its proposer)",
            0,
            vec![Event::Start, ev_prop(proposal(H, r(0), a(), None), true), ev_vote(precommit(1, r(0), Some(a()))), ev_vote(precommit(2, r(0), Some(a()))), ev_vote(precommit(3, r(0), Some(a())))],
            Event::Committed { height: H, sets: HeightSets::fixed(set()) },
            vec![sched(Height(2), r(0), Step::Propose)],
        ),
        Case::new(
            "D6 Committed after a decision from a certificate (we were behind): next height, and ask for more",
            0,
            vec![Event::Start, Event::CommitCertified(cert(r(0), a(), &[1, 2, 3]))],
            Event::Committed { height: H, sets: HeightSets::fixed(set()) },
            vec![sched(Height(2), r(0), Step::Propose), Action::SyncNeeded { height: Height(2), ahead: Height(2) }],
        ),
        Case::new(
            "Committed for a height not decided: rejected",
            0,
            vec![Event::Start],
            Event::Committed { height: H, sets: HeightSets::fixed(set()) },
            vec![Action::Rejected(Rejection::Unexpected { what: "Committed", height: H })],
        ),
        Case {
            desc: "observer: follows but never signs",
            me: None,
            safety: SafetyState::default(),
            setup: vec![Event::Start],
            input: ev_prop(proposal(H, r(0), a(), None), true),
            expected: vec![sched(H, r(0), Step::Prevote)],
        },
        Case {
            desc: "restart after prevoting A at round 0: rejoins round 0, a proposal for B re-sends the prevote for A (no persist, no conflict)",
            me: Some(0),
            safety: SafetyState { last_signed: Some(slot(r(0), SignStep::Prevote, Some(a()))), locked: None, valid: None, valid_proof: vec![] },
            setup: vec![Event::Start],
            input: ev_prop(proposal(H, r(0), b(), None), true),
            expected: vec![Action::BroadcastVote(pv0(r(0), Some(a()))), sched(H, r(0), Step::Prevote)],
        },
        Case {
            desc: "restart after precommitting at round 2: never signs below it (timeoutPropose of round 2 signs nothing)",
            me: Some(0),
            safety: SafetyState { last_signed: Some(slot(r(2), SignStep::Precommit, None)), locked: None, valid: None, valid_proof: vec![] },
            setup: vec![Event::Start],
            input: timeout(H, r(2), Step::Propose),
            expected: vec![sched(H, r(2), Step::Prevote)],
        },
        Case {
            desc: "restart with a persisted lock on A: a fresh proposal for B gets a nil prevote (L23)",
            me: Some(0),
            safety: SafetyState { last_signed: Some(slot(r(0), SignStep::Precommit, Some(a()))), locked: lv(r(0), a()), valid: lv(r(0), a()), valid_proof: vec![] },
            setup: vec![Event::Start, timeout(H, r(0), Step::Precommit)],
            input: ev_prop(proposal(H, r(1), b(), None), true),
            expected: vec![
                persist(slot(r(1), SignStep::Prevote, None), lv(r(0), a()), lv(r(0), a())),
                Action::BroadcastVote(pv0(r(1), None)),
                sched(H, r(1), Step::Prevote),
            ],
        },
        Case {
            desc: "L15-L16 + D2 restarted proposer with a valid value re-proposes it with its proof of lock",
            me: Some(2),
            safety: SafetyState { last_signed: Some(slot(r(0), SignStep::Precommit, Some(a()))), locked: lv(r(0), a()), valid: lv(r(0), a()), valid_proof: vec![] },
            setup: vec![Event::Start, ev_vote(prevote(0, r(0), Some(a()))), ev_vote(prevote(1, r(0), Some(a())))],
            input: timeout(H, r(0), Step::Precommit),
            expected: vec![
                sched(H, r(1), Step::Propose),
                Action::PersistSafety(SafetyState {
                    last_signed: Some(SignedSlot { height: H, round: r(1), step: SignStep::Proposal, value: Some(a()), pol_round: Some(r(0)) }),
                    locked: lv(r(0), a()),
                    valid: lv(r(0), a()),
                    valid_proof: proof_a0(&[0, 1]),
                }),
                Action::BroadcastProposal(proposal(H, r(1), a(), Some(r(0)))),
                Action::BroadcastVote(prevote(0, r(0), Some(a()))),
                Action::BroadcastVote(prevote(1, r(0), Some(a()))),
                // Only two prevotes for A at round 0 are known, so L28 waits.
            ],
        },
        Case {
            desc: "D2 restarted proposer restores the persisted proof of its valid value and re-broadcasts it",
            me: Some(2),
            safety: SafetyState {
                last_signed: Some(slot(r(0), SignStep::Precommit, Some(a()))),
                locked: lv(r(0), a()),
                valid: lv(r(0), a()),
                valid_proof: proof_a0(&[0, 1, 2]),
            },
            setup: vec![Event::Start],
            input: timeout(H, r(0), Step::Precommit),
            expected: vec![
                sched(H, r(1), Step::Propose),
                Action::PersistSafety(SafetyState {
                    last_signed: Some(SignedSlot { height: H, round: r(1), step: SignStep::Proposal, value: Some(a()), pol_round: Some(r(0)) }),
                    locked: lv(r(0), a()),
                    valid: lv(r(0), a()),
                    valid_proof: proof_a0(&[0, 1, 2]),
                }),
                Action::BroadcastProposal(proposal(H, r(1), a(), Some(r(0)))),
                Action::BroadcastVote(prevote(0, r(0), Some(a()))),
                Action::BroadcastVote(prevote(1, r(0), Some(a()))),
                Action::BroadcastVote(prevote(2, r(0), Some(a()))),
                // Its own proposal with a complete proof: L28-L30 prevote A.
                persist_with_proof(slot(r(1), SignStep::Prevote, Some(a())), lv(r(0), a()), lv(r(0), a()), proof_a0(&[0, 1, 2])),
                Action::BroadcastVote(prevote(2, r(1), Some(a()))),
                sched(H, r(1), Step::Prevote),
            ],
        },
    ];
    let count = cases.len();
    for case in cases {
        run(case);
    }
    assert!(count >= 40, "{count} cases");
}

#[test]
fn new_takes_our_index_from_the_set_of_the_height() {
    let cfg = Config { chain: chain(), timeouts: TimeoutConfig::default() };
    let core = Core::new(cfg.clone(), Some(key(2)), SafetyState::default(), H, HeightSets::fixed(set())).unwrap();
    assert_eq!(core.index(), Some(ValidatorIndex(2)));
    // A key outside the set: a node that follows the chain without signing.
    let core = Core::new(cfg.clone(), Some(key(9)), SafetyState::default(), H, HeightSets::fixed(set())).unwrap();
    assert_eq!(core.index(), None);
    let core = Core::new(cfg.clone(), None, SafetyState::default(), H, HeightSets::fixed(set())).unwrap();
    assert_eq!(core.index(), None);
    assert_eq!(
        Core::new(cfg, None, SafetyState::default(), Height(0), HeightSets::fixed(set())).unwrap_err(),
        ConfigError::GenesisHeight
    );
}

#[test]
fn single_validator_decides_alone() {
    let k = key(0);
    let vs = ValidatorSet::new(vec![k.public()]).unwrap();
    let cfg = Config { chain: chain(), timeouts: TimeoutConfig::default() };
    let mut core = Core::new(cfg, Some(k), SafetyState::default(), H, HeightSets::fixed(vs.clone())).unwrap();
    for h in 1..=3u64 {
        let acts = if h == 1 {
            core.start()
        } else {
            core.handle(Event::Committed { height: Height(h - 1), sets: HeightSets::fixed(vs.clone()) })
        };
        assert!(acts.contains(&Action::RequestProposal { height: Height(h), round: r(0) }), "{acts:?}");
        let v = block(&format!("b{h}"));
        let acts = core.handle(Event::ProposalValue { height: Height(h), round: r(0), value: v });
        let Some(Action::Commit(c)) = acts.last() else { panic!("no commit: {acts:?}") };
        c.verify(&chain(), &vs, Height(h), &v).unwrap();
    }
}
