//! The consensus core: a pure Tendermint state machine.
//!
//! [`Core::handle`] takes one [`Event`] and returns the [`Action`]s the node must
//! execute **in order**. The core does no I/O, reads no clock and draws no
//! randomness; time arrives as [`Event::Timeout`] after the node has honoured an
//! [`Action::ScheduleTimeout`].
//!
//! Rules are annotated with the line of Algorithm 1 of "The latest gossip on BFT
//! consensus" (Buchman, Kwon, Milosevic; arXiv 1807.04938) they implement, e.g.
//! `// L22`, or with the section of `docs/consensus.md` that explains a deviation
//! (`// D1` ...).
//!
//! # Contract with the node
//!
//! * Construct with [`Core::new`] from the last persisted [`SafetyState`] (or
//!   `SafetyState::default()` for a validator that never signed), the next
//!   height the node has no block for, and the validator sets in force at that
//!   height and the one after ([`HeightSets`], derived by the ledger from committed
//!   blocks); then feed [`Event::Start`].
//! * Every message, certificate and piece of evidence is checked against the set
//!   of its own height. Our index at a height is the position of our key in that
//!   height's set; where our key is absent we follow the chain without signing.
//! * Execute actions in the order given. [`Action::PersistSafety`] must be durable
//!   before the node executes the next action: it always precedes the broadcast of
//!   the signature it covers.
//! * Before [`Event::Proposal`], the node fetches the block body and checks it
//!   against ledger state; `valid` is that verdict (deterministic across honest
//!   nodes). A body that cannot be fetched is reported as `valid: false`, or the
//!   proposal is simply not handed in.
//! * [`Action::Commit`] means "decided": persist block and certificate, then feed
//!   [`Event::Committed`] for that height with the sets of the two heights after
//!   it; only then does the core start the next height.
//! * The core never panics on what a peer sent; invalid input yields
//!   [`Action::Rejected`] and is otherwise ignored. The node need not loop its own
//!   broadcasts back; if it does they are recognised as duplicates.

use std::collections::{BTreeMap, BTreeSet};

use crate::certificate::{CertificateError, CommitCertificate};
use crate::crypto::{Hash32, PublicKey, SecretKey};
use crate::evidence::Equivocation;
use crate::messages::{MessageError, Proposal, SignedProposal, SignedVote, Vote, VoteKind};
use crate::safety::{self, LockedValue, SafetyState, SignCheck, SignStep, SignedSlot};
use crate::types::{BlockHash, Height, Round, ValidatorIndex, ValidatorSet};

/// Messages for rounds more than this far above our round are not stored (they
/// still count for the round skip, L55). Bounds memory against Byzantine peers.
pub const MAX_ROUNDS_AHEAD: u32 = 32;

/// D5: distinct votes kept per validator, kind and round: the first one and up to
/// three conflicting ones (an equivocator's votes count for each value it
/// signed, which is safe: quorum intersection needs only the honest votes, and it
/// keeps a relayed proof of lock countable). When full, a vote for a value with
/// no known proposal is evicted first.
pub const MAX_VOTES_PER_SLOT: usize = 4;

/// Validator sets of past heights kept (one per height, shared, not copied) so
/// that messages from peers up to this many heights behind are checked against
/// the set of their own height, and answered with `PeerBehind`, even across a
/// change of the set. Older messages are checked against the oldest set we hold
/// and only feed catch-up hints (docs/consensus.md §7, D6).
pub const MAX_PAST_SETS: usize = 16;

/// D6: whenever a precommit timeout takes the core into a round that is a
/// multiple of this, it asks the node to sync (`SyncNeeded`), even if it
/// recognises no peer ahead: after a change of the validator set a node that is
/// behind cannot verify messages of heights beyond the next one, so the usual
/// hint (f + 1 peers seen ahead) may never fire.
/// Two rounds: a height that needs a third round is already in trouble, and a
/// probe costs one request per peer.
pub const SYNC_PROBE_ROUNDS: u32 = 2;

/// Round-timeout settings: `base + round × delta` milliseconds per step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeoutConfig {
    pub propose_base_ms: u64,
    pub propose_delta_ms: u64,
    pub prevote_base_ms: u64,
    pub prevote_delta_ms: u64,
    pub precommit_base_ms: u64,
    pub precommit_delta_ms: u64,
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        TimeoutConfig {
            propose_base_ms: 3000,
            propose_delta_ms: 500,
            prevote_base_ms: 1000,
            prevote_delta_ms: 500,
            precommit_base_ms: 1000,
            precommit_delta_ms: 500,
        }
    }
}

impl TimeoutConfig {
    /// `timeoutPropose(round)` etc. of the paper: grows linearly with the round,
    /// so that after GST some round's timeouts exceed the message delay.
    pub fn duration_ms(&self, step: Step, round: Round) -> u64 {
        let (base, delta) = match step {
            Step::Propose => (self.propose_base_ms, self.propose_delta_ms),
            Step::Prevote => (self.prevote_base_ms, self.prevote_delta_ms),
            Step::Precommit => (self.precommit_base_ms, self.precommit_delta_ms),
        };
        base.saturating_add(delta.saturating_mul(u64::from(round.0)))
    }
}

/// Static configuration of a core. The validator sets, which change with the
/// height, come separately ([`HeightSets`]).
#[derive(Debug, Clone)]
pub struct Config {
    /// The chain id (genesis hash); every signed message carries it.
    pub chain: Hash32,
    pub timeouts: TimeoutConfig,
}

/// The validator sets in force at the core's height (`current`) and at the
/// height after it (`next`). The ledger derives the set of height h from the
/// blocks up to h − D (a change takes effect D ≥ 2 blocks after the block that
/// completes its approvals), so while the core works on h both are fixed by
/// blocks the node has already committed (docs/consensus.md §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeightSets {
    pub current: ValidatorSet,
    pub next: ValidatorSet,
}

impl HeightSets {
    /// The same set at both heights: no change takes effect at the next height.
    pub fn fixed(set: ValidatorSet) -> HeightSets {
        HeightSets { current: set.clone(), next: set }
    }
}

/// The step of a round (paper: `step_p`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    Propose,
    Prevote,
    Precommit,
}

/// A timeout the node must deliver back as [`Event::Timeout`] after the scheduled
/// duration. Stale timeouts (another height, round or step) are ignored by the
/// core, so the node never needs to cancel one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timeout {
    pub height: Height,
    pub round: Round,
    pub step: Step,
}

/// Inputs of the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Begin `next_height` (given to [`Core::new`]). Must be the first event.
    Start,
    /// A proposal from the network with the application's verdict on its body.
    Proposal { proposal: SignedProposal, valid: bool },
    /// A prevote or precommit from the network.
    Vote(SignedVote),
    /// A timeout previously requested by [`Action::ScheduleTimeout`] has expired.
    Timeout(Timeout),
    /// The node built the block requested by [`Action::RequestProposal`].
    ProposalValue { height: Height, round: Round, value: BlockHash },
    /// A commit certificate obtained by sync, for the current height or the next
    /// one (the only heights whose sets the core holds). Feed sync results in
    /// height order; anything further ahead is refused
    /// ([`Rejection::CertificateTooFarAhead`]).
    CommitCertified(CommitCertificate),
    /// The block decided at `height` (announced by [`Action::Commit`]) is durably
    /// stored: start the next height. `sets` are the sets in force at
    /// `height + 1` (`current`, the same set handed over as `next` before) and
    /// `height + 2` (`next`).
    Committed { height: Height, sets: HeightSets },
}

/// Outputs of the core, to be executed in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Durably store this state before executing any further action.
    PersistSafety(SafetyState),
    BroadcastProposal(SignedProposal),
    /// Broadcast a vote. Usually our own; when re-proposing a locked/valid value
    /// the core also re-broadcasts the 2f + 1 prevotes that justify it.
    BroadcastVote(SignedVote),
    ScheduleTimeout { timeout: Timeout, duration_ms: u64 },
    /// We are the proposer: build a block for `(height, round)` and answer with
    /// [`Event::ProposalValue`]. The node must keep the body available.
    RequestProposal { height: Height, round: Round },
    /// The block `certificate.block_hash` is decided at `certificate.height`:
    /// persist block and certificate, then feed [`Event::Committed`].
    Commit(CommitCertificate),
    /// A validator signed two conflicting messages.
    Evidence(Equivocation),
    /// The validator with key `peer` sent a message for `height`, which is
    /// already decided: send it that height's certificate and block (emitted at
    /// most once per `(height, round)` the peer is seen at).
    PeerBehind { peer: PublicKey, height: Height },
    /// Fetch certificates and blocks from `height` (our current height) on and
    /// feed them in order as [`Event::CommitCertified`]. Emitted at most once per
    /// round of ours, when f + 1 validators of the next height's set are seen at
    /// heights above ours (`ahead` is the highest height at which f + 1 are), and
    /// (D6) after a height was decided from a certificate, or every
    /// [`SYNC_PROBE_ROUNDS`] rounds without a decision (then `ahead` = `height`:
    /// nothing is known about the peers).
    SyncNeeded { height: Height, ahead: Height },
    /// An input was dropped as invalid.
    Rejected(Rejection),
}

/// Why an input was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("invalid proposal at height {height} round {round}: {error}")]
    InvalidProposal { height: Height, round: Round, error: MessageError },
    #[error("invalid vote at height {height} round {round} from {validator}: {error}")]
    InvalidVote { height: Height, round: Round, validator: ValidatorIndex, error: MessageError },
    #[error("invalid commit certificate for height {height}: {error}")]
    InvalidCertificate { height: Height, error: CertificateError },
    #[error(
        "commit certificate for height {height} cannot be verified yet: the validator sets of heights \
         {current} and the next one are the only ones known; feed certificates in height order"
    )]
    CertificateTooFarAhead { height: Height, current: Height },
    #[error(
        "the validator set handed over for height {height} differs from the one given for it a height \
         earlier; messages and certificates kept for height {height} were dropped"
    )]
    InconsistentSets { height: Height },
    #[error("event {what} is not expected now (height {height})")]
    Unexpected { what: &'static str, height: Height },
}

/// Why a core could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("height 0 is genesis; consensus starts at height 1")]
    GenesisHeight,
}

#[derive(Debug, Clone)]
struct StoredProposal {
    signed: SignedProposal,
}

/// The message log of one height.
#[derive(Debug, Clone, Default)]
struct HeightLog {
    proposals: BTreeMap<Round, StoredProposal>,
    prevotes: BTreeMap<Round, VoteSet>,
    precommits: BTreeMap<Round, VoteSet>,
    /// The application's verdict per block hash (from `Event::Proposal`).
    verdicts: BTreeMap<BlockHash, bool>,
    /// Highest round each validator sent any message for at this height (L55).
    max_round: BTreeMap<ValidatorIndex, Round>,
    /// Slots for which evidence was already emitted: (round, kind, validator),
    /// kind 0 = proposal, 1 = prevote, 2 = precommit.
    evidence: BTreeSet<(Round, u8, ValidatorIndex)>,
}

impl HeightLog {
    fn votes(&self, kind: VoteKind) -> &BTreeMap<Round, VoteSet> {
        match kind {
            VoteKind::Prevote => &self.prevotes,
            VoteKind::Precommit => &self.precommits,
        }
    }

    fn count(&self, kind: VoteKind, round: Round, value: Option<&BlockHash>) -> usize {
        self.votes(kind)
            .get(&round)
            .map_or(0, |m| m.count(value))
    }

    fn count_any(&self, kind: VoteKind, round: Round) -> usize {
        self.votes(kind).get(&round).map_or(0, |m| m.count_any())
    }

    /// One vote per validator for `value` at `round`, in validator order.
    fn votes_for(&self, kind: VoteKind, round: Round, value: Option<&BlockHash>) -> Vec<SignedVote> {
        self.votes(kind).get(&round).map_or_else(Vec::new, |m| m.for_value(value).cloned().collect())
    }

    /// Stores a verified vote. Returns the validator's first vote at this slot if
    /// `sv` conflicts with it (equivocation), `None` otherwise.
    fn insert_vote(&mut self, sv: SignedVote) -> Option<SignedVote> {
        let verdicts = &self.verdicts;
        let set = match sv.vote.kind {
            VoteKind::Prevote => &mut self.prevotes,
            VoteKind::Precommit => &mut self.precommits,
        };
        set.entry(sv.vote.round).or_default().insert(sv, verdicts)
    }

    fn saw_round(&mut self, validator: ValidatorIndex, round: Round) {
        let e = self.max_round.entry(validator).or_insert(round);
        if *e < round {
            *e = round;
        }
    }
}

/// Votes of one kind at one round: per validator, its first vote and up to
/// [`MAX_VOTES_PER_SLOT`] − 1 conflicting ones.
#[derive(Debug, Clone, Default)]
struct VoteSet {
    by_validator: BTreeMap<ValidatorIndex, Vec<SignedVote>>,
}

impl VoteSet {
    /// Number of validators with a vote for `value`.
    fn count(&self, value: Option<&BlockHash>) -> usize {
        self.by_validator.values().filter(|vs| vs.iter().any(|v| v.vote.value.as_ref() == value)).count()
    }

    /// Number of validators with any vote.
    fn count_any(&self) -> usize {
        self.by_validator.len()
    }

    fn for_value<'a>(&'a self, value: Option<&'a BlockHash>) -> impl Iterator<Item = &'a SignedVote> + 'a {
        self.by_validator.values().filter_map(move |vs| vs.iter().find(|v| v.vote.value.as_ref() == value))
    }

    fn contains(&self, sv: &SignedVote) -> bool {
        self.by_validator.get(&sv.vote.validator).is_some_and(|vs| vs.contains(sv))
    }

    fn insert(&mut self, sv: SignedVote, verdicts: &BTreeMap<BlockHash, bool>) -> Option<SignedVote> {
        let vs = self.by_validator.entry(sv.vote.validator).or_default();
        let Some(first) = vs.first().cloned() else {
            vs.push(sv);
            return None;
        };
        if vs.iter().any(|v| v.vote == sv.vote) {
            return None; // same vote (a different encoding of the signature cannot verify)
        }
        if vs.len() < MAX_VOTES_PER_SLOT {
            vs.push(sv);
        } else if let Some(pos) =
            vs.iter().skip(1).position(|v| v.vote.value.is_some_and(|h| !verdicts.contains_key(&h)))
        {
            vs[pos + 1] = sv;
        }
        Some(first)
    }
}

/// Per-round "for the first time" flags of the paper.
#[derive(Debug, Clone, Copy, Default)]
struct Fired {
    /// L36 has fired in this round.
    l36: bool,
    /// L47: timeoutPrecommit scheduled after 2f + 1 precommits.
    l47: bool,
    /// We asked the node for a block in this round and wait for it.
    awaiting_value: bool,
}

/// The consensus state machine of one validator (or observer).
#[derive(Debug)]
pub struct Core {
    cfg: Config,
    key: Option<SecretKey>,
    /// The public half of `key`.
    public: Option<PublicKey>,
    /// The sets in force at `height` and `height + 1`.
    sets: HeightSets,
    /// The sets of up to [`MAX_PAST_SETS`] heights below `height` (those this core
    /// went through).
    past_sets: BTreeMap<Height, ValidatorSet>,
    /// Our index at `height`: the position of our key in `sets.current`, `None`
    /// when we do not vote at this height.
    me: Option<ValidatorIndex>,
    safety: SafetyState,
    started: bool,
    height: Height,
    round: Round,
    step: Step,
    fired: Fired,
    /// paper: lockedRound_p, lockedValue_p
    locked: Option<(Round, BlockHash)>,
    /// paper: validRound_p, validValue_p
    valid: Option<(Round, BlockHash)>,
    /// The decision at `height`, waiting for `Event::Committed`.
    decided: Option<CommitCertificate>,
    /// The decision at `height` came from a certificate (sync), not from our own
    /// log: we were behind, so we ask for the next height at once (D6).
    decided_from_certificate: bool,
    log: HeightLog,
    /// Verified messages for `height + 1`, replayed when we get there.
    next_log: HeightLog,
    /// Verified certificates for `height` (before `Start`) and `height + 1`.
    held_certs: BTreeMap<Height, CommitCertificate>,
    /// Highest (height, round) each validator was seen at (for SyncNeeded), by
    /// key: an index means different validators at different heights.
    peer_progress: BTreeMap<PublicKey, (Height, Round)>,
    /// Highest old (height, round) per peer for which PeerBehind was emitted.
    behind_reported: BTreeMap<PublicKey, (Height, Round)>,
    sync_requested: Option<(Height, Round)>,
    stats: CoreStats,
}

/// Counters for benchmarks and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CoreStats {
    pub signatures_verified: u64,
    pub signatures_made: u64,
    pub duplicates_dropped: u64,
    /// Messages for heights whose set the core does not hold that did not
    /// verify against the nearest set it holds: dropped without blame (D6).
    pub unverifiable_dropped: u64,
}

/// The set a message of some height is checked against.
#[derive(Debug, Clone)]
struct MessageSet {
    set: ValidatorSet,
    /// `set` is the set in force at the message's height: a message that does
    /// not verify against it is invalid. Otherwise it is the nearest set we hold:
    /// a message that verifies only feeds catch-up hints, one that does not is
    /// dropped without blame (its signer may sit at another position there).
    exact: bool,
}

impl Core {
    /// Builds a core. `key` is `None` for a node that never signs (an observer);
    /// a node with a key votes at the heights whose set holds its key and follows
    /// the chain without signing at the others. `safety` is the last persisted
    /// state; `next_height` is the lowest height the node has no block for; `sets`
    /// are the sets in force at `next_height` and `next_height + 1`.
    pub fn new(
        config: Config,
        key: Option<SecretKey>,
        safety: SafetyState,
        next_height: Height,
        sets: HeightSets,
    ) -> Result<Core, ConfigError> {
        if next_height.0 == 0 {
            return Err(ConfigError::GenesisHeight);
        }
        let public = key.as_ref().map(SecretKey::public);
        let me = public.and_then(|p| sets.current.index_of(&p));
        Ok(Core {
            cfg: config,
            key,
            public,
            sets,
            past_sets: BTreeMap::new(),
            me,
            safety,
            started: false,
            height: next_height,
            round: Round(0),
            step: Step::Propose,
            fired: Fired::default(),
            locked: None,
            valid: None,
            decided: None,
            decided_from_certificate: false,
            log: HeightLog::default(),
            next_log: HeightLog::default(),
            held_certs: BTreeMap::new(),
            peer_progress: BTreeMap::new(),
            behind_reported: BTreeMap::new(),
            sync_requested: None,
            stats: CoreStats::default(),
        })
    }

    /// Convenience for `handle(Event::Start)`.
    #[must_use]
    pub fn start(&mut self) -> Vec<Action> {
        self.handle(Event::Start)
    }

    /// Processes one event; returns the actions to execute in order.
    #[must_use]
    pub fn handle(&mut self, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Start => self.on_start(&mut out),
            Event::Proposal { proposal, valid } => self.on_proposal(proposal, valid, &mut out),
            Event::Vote(vote) => self.on_vote(vote, &mut out),
            Event::Timeout(t) => self.on_timeout(t, &mut out),
            Event::ProposalValue { height, round, value } => self.on_proposal_value(height, round, value, &mut out),
            Event::CommitCertified(cert) => self.on_certificate(cert, &mut out),
            Event::Committed { height, sets } => self.on_committed(height, sets, &mut out),
        }
        if self.started {
            self.progress(&mut out);
        }
        out
    }

    pub fn height(&self) -> Height {
        self.height
    }
    pub fn round(&self) -> Round {
        self.round
    }
    pub fn step(&self) -> Step {
        self.step
    }
    /// The highest (height, round) a verified message signed by `peer` was at.
    pub fn peer_progress(&self, peer: &PublicKey) -> Option<(Height, Round)> {
        self.peer_progress.get(peer).copied()
    }
    /// The sets in force at the current height and the next.
    pub fn sets(&self) -> &HeightSets {
        &self.sets
    }
    /// The set in force at `height`, if the core holds it: the current and next
    /// heights, and up to [`MAX_PAST_SETS`] heights below (those it went through).
    pub fn set_for(&self, height: Height) -> Option<&ValidatorSet> {
        if height == self.height {
            Some(&self.sets.current)
        } else if height == self.height.next() {
            Some(&self.sets.next)
        } else {
            self.past_sets.get(&height)
        }
    }
    /// Our index at the current height (`None`: we do not vote at this height).
    pub fn index(&self) -> Option<ValidatorIndex> {
        self.me
    }
    /// The in-memory safety state (what the last `PersistSafety` carried, or newer
    /// lock/valid values not yet persisted).
    pub fn safety(&self) -> &SafetyState {
        &self.safety
    }
    pub fn locked(&self) -> Option<(Round, BlockHash)> {
        self.locked
    }
    /// The decision at the current height, if made and not yet `Committed`.
    pub fn decided(&self) -> Option<&CommitCertificate> {
        self.decided.as_ref()
    }
    pub fn stats(&self) -> CoreStats {
        self.stats
    }
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// n − f of the current height's set.
    fn quorum(&self) -> usize {
        self.sets.current.quorum()
    }

    /// f + 1 of the current height's set.
    fn honest_threshold(&self) -> usize {
        self.sets.current.honest_threshold()
    }

    /// The proposer is a pure function of (height, round, the set of that height).
    fn is_proposer(&self, round: Round) -> bool {
        self.me.is_some() && self.me == Some(self.sets.current.proposer(self.height, round))
    }

    // ---------------------------------------------------------------- start

    fn on_start(&mut self, out: &mut Vec<Action>) {
        if self.started {
            out.push(Action::Rejected(Rejection::Unexpected { what: "Start", height: self.height }));
            return;
        }
        self.started = true;
        // Restart at the height we last signed in: restore the lock (safety) and
        // the valid value (liveness), and rejoin the round we last signed in.
        let h = self.height;
        let restore = |lv: Option<LockedValue>| lv.filter(|l| l.height == h).map(|l| (l.round, l.value));
        self.locked = restore(self.safety.locked);
        self.valid = restore(self.safety.valid);
        if let Some((valid_round, _)) = self.valid {
            // Our own disk: the proof was verified before it was persisted.
            let proofs = self.safety.valid_proof.clone();
            for v in proofs.into_iter().filter(|v| v.vote.height == h && v.vote.round == valid_round) {
                let _ = self.log.insert_vote(v);
            }
        }
        let round = match self.safety.last_signed {
            Some(s) if s.height == h => s.round,
            _ => Round(0),
        };
        if let Some(cert) = self.held_certs.remove(&h) {
            // A certificate for this height arrived before Start.
            self.round = round;
            self.decide(cert, true, out);
            return;
        }
        self.start_round(round, out); // L10
    }

    // ---------------------------------------------------------------- rounds

    /// L11 StartRound(round).
    fn start_round(&mut self, round: Round, out: &mut Vec<Action>) {
        self.round = round; // L12
        self.step = Step::Propose; // L13
        self.fired = Fired::default();
        // L21 schedules timeoutPropose only for non-proposers; D1: we schedule it
        // for the proposer too, so a node that never answers RequestProposal
        // cannot stall the round.
        self.schedule(Step::Propose, out);
        if self.is_proposer(round) && self.key.is_some() {
            // L14
            if let Some(signed) = self.safety.last_signed.filter(|s| {
                s.height == self.height && s.round == round && s.step == SignStep::Proposal
            }) {
                // Restarted after proposing in this round: re-propose the very same
                // message (anything else would equivocate).
                if let Some(value) = signed.value {
                    self.propose(value, signed.pol_round, out);
                }
            } else if let Some((valid_round, valid_value)) = self.valid {
                // L15-L16, L19: re-propose validValue with validRound as proof of
                // lock; D2: also re-broadcast the 2f + 1 prevotes that prove it.
                self.propose(valid_value, Some(valid_round), out);
            } else {
                // L18 getValue()
                self.fired.awaiting_value = true;
                out.push(Action::RequestProposal { height: self.height, round });
            }
        }
    }

    fn schedule(&self, step: Step, out: &mut Vec<Action>) {
        out.push(Action::ScheduleTimeout {
            timeout: Timeout { height: self.height, round: self.round, step },
            duration_ms: self.cfg.timeouts.duration_ms(step, self.round),
        });
    }

    fn on_proposal_value(&mut self, height: Height, round: Round, value: BlockHash, out: &mut Vec<Action>) {
        if height != self.height || round != self.round || !self.fired.awaiting_value || self.decided.is_some() {
            return; // stale: the round moved on while the node built the block
        }
        self.fired.awaiting_value = false;
        if self.step == Step::Propose {
            self.propose(value, None, out); // L19 with validRound = −1
        }
    }

    /// L19: sign and broadcast a proposal, then treat it as received (the node
    /// built or already validated the block, so it is valid).
    fn propose(&mut self, value: BlockHash, pol_round: Option<Round>, out: &mut Vec<Action>) {
        let (Some(me), Some(_)) = (self.me, &self.key) else { return };
        let proposal = Proposal {
            chain: self.cfg.chain,
            height: self.height,
            round: self.round,
            value,
            pol_round,
            proposer: me,
        };
        let slot = SignedSlot {
            height: self.height,
            round: self.round,
            step: SignStep::Proposal,
            value: Some(value),
            pol_round,
        };
        let Some(signed) = self.sign_with_check(slot, out, |key| proposal.clone().sign(key).ok()) else { return };
        out.push(Action::BroadcastProposal(signed.clone()));
        if let Some(pol) = pol_round {
            // D2: the proof of lock travels with the proposal.
            for v in self.log.votes_for(VoteKind::Prevote, pol, Some(&value)) {
                out.push(Action::BroadcastVote(v));
            }
        }
        self.log.verdicts.insert(value, true);
        self.log.saw_round(me, self.round);
        self.log.proposals.insert(self.round, StoredProposal { signed });
    }

    /// Applies the double-sign rule to `slot`; on success returns the signed
    /// message, with `PersistSafety` pushed first when the slot is new.
    fn sign_with_check<T>(
        &mut self,
        slot: SignedSlot,
        out: &mut Vec<Action>,
        sign: impl FnOnce(&SecretKey) -> Option<T>,
    ) -> Option<T> {
        let key = self.key.as_ref()?;
        match safety::check_sign(&self.safety, &slot) {
            SignCheck::Fresh => {
                self.safety.last_signed = Some(slot);
                self.safety.locked = self.locked.map(|(round, value)| LockedValue { height: self.height, round, value });
                self.safety.valid = self.valid.map(|(round, value)| LockedValue { height: self.height, round, value });
                self.safety.valid_proof = match self.valid {
                    Some((round, value)) => self.log.votes_for(VoteKind::Prevote, round, Some(&value)),
                    None => Vec::new(),
                };
                out.push(Action::PersistSafety(self.safety.clone()));
            }
            SignCheck::SameMessage => {}
            SignCheck::Conflicts { .. } | SignCheck::Regresses { .. } => return None,
        }
        self.stats.signatures_made += 1;
        sign(key)
    }

    /// Signs and broadcasts our vote, and counts it. After a restart the slot may
    /// already hold a different signed vote: then we re-send that one instead
    /// (the identical message, so no equivocation).
    fn vote(&mut self, kind: VoteKind, value: Option<BlockHash>, out: &mut Vec<Action>) {
        let Some(me) = self.me else { return };
        if self.key.is_none() {
            return;
        }
        let step = match kind {
            VoteKind::Prevote => SignStep::Prevote,
            VoteKind::Precommit => SignStep::Precommit,
        };
        let mut slot = SignedSlot { height: self.height, round: self.round, step, value, pol_round: None };
        if let SignCheck::Conflicts { signed } = safety::check_sign(&self.safety, &slot) {
            slot = signed;
        }
        let vote = Vote { chain: self.cfg.chain, kind, height: self.height, round: self.round, value: slot.value, validator: me };
        let Some(signed) = self.sign_with_check(slot, out, |key| vote.sign(key).ok()) else { return };
        out.push(Action::BroadcastVote(signed.clone()));
        self.log.saw_round(me, self.round);
        let _ = self.log.insert_vote(signed);
    }

    /// Enter the prevote step after voting. D3: timeoutPrevote is scheduled on
    /// entering the step rather than on 2f + 1 prevotes (L34), so that a node never
    /// waits without a timer when messages are lost.
    fn prevote_and_advance(&mut self, value: Option<BlockHash>, out: &mut Vec<Action>) {
        self.vote(VoteKind::Prevote, value, out);
        self.step = Step::Prevote;
        self.schedule(Step::Prevote, out);
    }

    /// Enter the precommit step after voting. D3: timeoutPrecommit is also
    /// scheduled on entering the step (in addition to L47).
    fn precommit_and_advance(&mut self, value: Option<BlockHash>, out: &mut Vec<Action>) {
        self.vote(VoteKind::Precommit, value, out);
        self.step = Step::Precommit;
        self.schedule(Step::Precommit, out);
    }

    // ---------------------------------------------------------------- timeouts

    fn on_timeout(&mut self, t: Timeout, out: &mut Vec<Action>) {
        if !self.started || self.decided.is_some() || t.height != self.height || t.round != self.round {
            return; // stale
        }
        match t.step {
            // L57-L60 OnTimeoutPropose
            Step::Propose if self.step == Step::Propose => self.prevote_and_advance(None, out),
            // L61-L64 OnTimeoutPrevote
            Step::Prevote if self.step == Step::Prevote => self.precommit_and_advance(None, out),
            // L65-L67 OnTimeoutPrecommit
            Step::Precommit => {
                let round = self.round.next();
                self.start_round(round, out);
                // D6: a height we time out of this many rounds may be one the
                // others left long ago, across a set change we cannot see past
                // (their messages do not verify against the sets we hold): ask
                // for certificates. A round skip (L55) means peers are still here.
                if round.0.is_multiple_of(SYNC_PROBE_ROUNDS) {
                    self.request_sync(self.height, out);
                }
            }
            _ => {}
        }
    }

    // ---------------------------------------------------------------- messages

    /// The set a message of `height` is checked against: the set of its height
    /// when we hold it (current, next, or one of the last [`MAX_PAST_SETS`]),
    /// else the nearest set we hold, for catch-up hints only (D6).
    fn set_for_message(&self, height: Height) -> MessageSet {
        if let Some(set) = self.set_for(height) {
            return MessageSet { set: set.clone(), exact: true };
        }
        let nearest = if height > self.height {
            &self.sets.next
        } else {
            self.past_sets.values().next().unwrap_or(&self.sets.current)
        };
        MessageSet { set: nearest.clone(), exact: false }
    }

    /// Height bookkeeping common to proposals and votes, after verification.
    fn note_peer(&mut self, peer: PublicKey, height: Height, round: Round, out: &mut Vec<Action>) {
        let e = self.peer_progress.entry(peer).or_insert((height, round));
        if *e < (height, round) {
            *e = (height, round);
        }
        // Our decided height counts as done: peers still there need the certificate.
        let done_below = if self.decided.is_some() { self.height.next() } else { self.height };
        if height < done_below {
            let last = self.behind_reported.get(&peer).copied();
            if last.is_none_or(|l| l < (height, round)) {
                self.behind_reported.insert(peer, (height, round));
                out.push(Action::PeerBehind { peer, height });
            }
        }
    }

    /// Cheap pre-check before paying for a signature: is this (height, round)
    /// from this validator worth verifying at all?
    fn worth_verifying(&self, peer: &PublicKey, height: Height, round: Round) -> bool {
        let done_below = if self.decided.is_some() { self.height.next() } else { self.height };
        if height < done_below {
            // Only to emit PeerBehind, once per (height, round) of the peer.
            return self.behind_reported.get(peer).is_none_or(|l| *l < (height, round));
        }
        if height > self.height.next() {
            // Only to count towards SyncNeeded.
            return self.peer_progress.get(peer).is_none_or(|p| *p < (height, round));
        }
        true
    }

    /// A message failed verification: an invalid message if it was checked against
    /// the set of its own height, else dropped without blame (D6).
    fn refuse(&mut self, exact: bool, rejection: Rejection, out: &mut Vec<Action>) {
        if exact {
            out.push(Action::Rejected(rejection));
        } else {
            self.stats.unverifiable_dropped += 1;
        }
    }

    /// The log a verified message of `(height, round)` from `validator` goes to,
    /// if it is stored at all. Its round is recorded for the round skip (L55) even
    /// when the message is too far ahead to be stored.
    fn log_for(&mut self, validator: ValidatorIndex, height: Height, round: Round) -> Option<&mut HeightLog> {
        if height == self.height && self.decided.is_none() {
            self.log.saw_round(validator, round);
            if round.0 > self.round.0.saturating_add(MAX_ROUNDS_AHEAD) {
                return None;
            }
            Some(&mut self.log)
        } else if height == self.height.next() {
            self.next_log.saw_round(validator, round);
            if round.0 > MAX_ROUNDS_AHEAD {
                return None;
            }
            Some(&mut self.next_log)
        } else {
            None
        }
    }

    fn on_proposal(&mut self, sp: SignedProposal, valid: bool, out: &mut Vec<Action>) {
        if !self.started {
            out.push(Action::Rejected(Rejection::Unexpected { what: "Proposal before Start", height: self.height }));
            return;
        }
        let p = &sp.proposal;
        let (height, round, proposer) = (p.height, p.round, p.proposer);
        // Duplicate of what we hold: no signature work.
        if self.is_stored_proposal(&sp) {
            self.stats.duplicates_dropped += 1;
            return;
        }
        // The set of the proposal's height: its signer, and its proposer (a pure
        // function of height, round and that set).
        let MessageSet { set, exact } = self.set_for_message(height);
        let signer = set.key(proposer).copied();
        if signer.is_some_and(|k| !self.worth_verifying(&k, height, round)) {
            return;
        }
        if signer.is_some() {
            self.stats.signatures_verified += 1;
        }
        if let Err(error) = sp.verify(&self.cfg.chain, &set) {
            self.refuse(exact, Rejection::InvalidProposal { height, round, error }, out);
            return;
        }
        let Some(signer) = signer else { return }; // verify checked the index
        self.note_peer(signer, height, round, out);
        let Some(log) = self.log_for(proposer, height, round) else { return };
        match log.proposals.get(&round) {
            Some(first) if first.signed.proposal != sp.proposal => {
                if log.evidence.insert((round, 0, proposer)) {
                    out.push(Action::Evidence(Equivocation::Proposal { first: first.signed.clone(), second: sp }));
                }
            }
            Some(_) => {}
            None => {
                log.verdicts.entry(sp.proposal.value).or_insert(valid);
                log.proposals.insert(round, StoredProposal { signed: sp });
            }
        }
    }

    fn is_stored_proposal(&self, sp: &SignedProposal) -> bool {
        let p = &sp.proposal;
        let log = if p.height == self.height {
            &self.log
        } else if p.height == self.height.next() {
            &self.next_log
        } else {
            return false;
        };
        log.proposals.get(&p.round).is_some_and(|s| &s.signed == sp)
    }

    fn on_vote(&mut self, sv: SignedVote, out: &mut Vec<Action>) {
        if !self.started {
            out.push(Action::Rejected(Rejection::Unexpected { what: "Vote before Start", height: self.height }));
            return;
        }
        let v = &sv.vote;
        let (height, round, validator, kind) = (v.height, v.round, v.validator, v.kind);
        if self.is_stored_vote(&sv) {
            self.stats.duplicates_dropped += 1;
            return;
        }
        // Checked against the set of the vote's height: a key removed or rotated
        // out at that height is not in it, so its vote never counts.
        let MessageSet { set, exact } = self.set_for_message(height);
        let signer = set.key(validator).copied();
        if signer.is_some_and(|k| !self.worth_verifying(&k, height, round)) {
            return;
        }
        if signer.is_some() {
            self.stats.signatures_verified += 1;
        }
        if let Err(error) = sv.verify(&self.cfg.chain, &set) {
            self.refuse(exact, Rejection::InvalidVote { height, round, validator, error }, out);
            return;
        }
        let Some(signer) = signer else { return }; // verify checked the index
        self.note_peer(signer, height, round, out);
        let Some(log) = self.log_for(validator, height, round) else { return };
        let kind_tag = match kind {
            VoteKind::Prevote => 1,
            VoteKind::Precommit => 2,
        };
        if let Some(first) = log.insert_vote(sv.clone()) {
            if log.evidence.insert((round, kind_tag, validator)) {
                out.push(Action::Evidence(Equivocation::Vote { first, second: sv }));
            }
        }
    }

    fn is_stored_vote(&self, sv: &SignedVote) -> bool {
        let v = &sv.vote;
        let log = if v.height == self.height {
            &self.log
        } else if v.height == self.height.next() {
            &self.next_log
        } else {
            return false;
        };
        log.votes(v.kind).get(&v.round).is_some_and(|m| m.contains(sv))
    }

    // ---------------------------------------------------------------- certificates

    /// A certificate from sync: verified against the set of its height, which the
    /// core holds for the current and the next height only.
    fn on_certificate(&mut self, cert: CommitCertificate, out: &mut Vec<Action>) {
        let h = cert.height;
        if h < self.height || (h == self.height && self.decided.is_some()) || self.held_certs.contains_key(&h) {
            return; // already decided or already held
        }
        let set = if h == self.height {
            &self.sets.current
        } else if h == self.height.next() {
            &self.sets.next
        } else {
            out.push(Action::Rejected(Rejection::CertificateTooFarAhead { height: h, current: self.height }));
            return;
        };
        self.stats.signatures_verified += cert.signatures.len() as u64;
        if let Err(error) = cert.verify(&self.cfg.chain, set, h, &cert.block_hash) {
            out.push(Action::Rejected(Rejection::InvalidCertificate { height: h, error }));
            return;
        }
        if h == self.height && self.started {
            self.decide(cert, true, out);
        } else {
            self.held_certs.insert(h, cert);
        }
    }

    /// `from_certificate`: the decision came from a certificate handed in rather
    /// than from precommits in our own log.
    fn decide(&mut self, cert: CommitCertificate, from_certificate: bool, out: &mut Vec<Action>) {
        // L51: decision_p[h_p] = v. L52-L54 (next height) wait for Event::Committed.
        self.decided = Some(cert.clone());
        self.decided_from_certificate = from_certificate;
        out.push(Action::Commit(cert));
    }

    fn on_committed(&mut self, height: Height, sets: HeightSets, out: &mut Vec<Action>) {
        if self.decided.as_ref().map(|c| c.height) != Some(height) {
            out.push(Action::Rejected(Rejection::Unexpected { what: "Committed", height }));
            return;
        }
        // L52-L54: next height, reset lock, valid value and message log.
        let from_certificate = self.decided_from_certificate;
        self.decided = None;
        self.decided_from_certificate = false;
        self.height = height.next();
        self.locked = None;
        self.valid = None;
        self.log = std::mem::take(&mut self.next_log);
        self.held_certs = self.held_certs.split_off(&self.height);
        // The sets move on by one height; the one we leave is kept a while to
        // check late messages of peers still there.
        let consistent = sets.current == self.sets.next;
        let left = std::mem::replace(&mut self.sets, sets);
        self.past_sets.insert(height, left.current);
        while self.past_sets.len() > MAX_PAST_SETS {
            self.past_sets.pop_first();
        }
        self.me = self.public.and_then(|p| self.sets.current.index_of(&p));
        if !consistent {
            // What we verified for this height was checked against another set:
            // drop it (the ledger's set is authoritative) and say so.
            self.log = HeightLog::default();
            self.held_certs.clear();
            out.push(Action::Rejected(Rejection::InconsistentSets { height: self.height }));
        }
        // Per-peer bookkeeping is by key; forget keys no set we hold contains.
        let known: BTreeSet<PublicKey> = self
            .past_sets
            .values()
            .chain([&self.sets.current, &self.sets.next])
            .flat_map(|s| s.keys().iter().copied())
            .collect();
        self.peer_progress.retain(|k, _| known.contains(k));
        self.behind_reported.retain(|k, _| known.contains(k));
        if let Some(cert) = self.held_certs.remove(&self.height) {
            self.decide(cert, true, out);
            return;
        }
        self.start_round(Round(0), out);
        if from_certificate {
            // D6: we were behind; the peers may be further ahead than we can
            // tell (their messages may not verify against the sets we hold).
            self.request_sync(self.height, out);
        }
    }

    /// Emits `SyncNeeded` unless it was already emitted in this round.
    fn request_sync(&mut self, ahead: Height, out: &mut Vec<Action>) {
        if self.sync_requested.is_some_and(|s| s >= (self.height, self.round)) {
            return;
        }
        self.sync_requested = Some((self.height, self.round));
        out.push(Action::SyncNeeded { height: self.height, ahead });
    }

    // ---------------------------------------------------------------- upon rules

    /// Fires every enabled rule until none is: the "upon" clauses of Algorithm 1.
    fn progress(&mut self, out: &mut Vec<Action>) {
        // Each rule fires at most once per (height, round, step), and rounds only
        // increase up to the highest round seen, so this terminates. The bound is a
        // defence against our own bugs.
        for _ in 0..10_000 {
            if self.decided.is_some() {
                return;
            }
            self.check_sync(out);
            if self.try_decide(out) || self.try_round_skip(out) {
                continue;
            }
            let fired = match self.step {
                Step::Propose => self.try_prevote_proposal(out),
                Step::Prevote => self.try_lock(out) || self.try_precommit_nil(out),
                Step::Precommit => self.try_lock(out),
            };
            if fired || self.try_schedule_precommit_timeout(out) {
                continue;
            }
            return;
        }
    }

    /// L49-L54 (with D4): a proposal for v (any round; we only need its body and validity)
    /// and 2f + 1 precommits for v at some round r: decide v.
    fn try_decide(&mut self, out: &mut Vec<Action>) -> bool {
        let quorum = self.quorum();
        let mut found = None;
        for (round, votes) in &self.log.precommits {
            if votes.count_any() < quorum {
                continue;
            }
            let mut tally: BTreeMap<BlockHash, usize> = BTreeMap::new();
            for vs in votes.by_validator.values() {
                let values: BTreeSet<BlockHash> = vs.iter().filter_map(|v| v.vote.value).collect();
                for value in values {
                    *tally.entry(value).or_default() += 1;
                }
            }
            // L50 valid(v): the application's verdict on a proposal we received.
            if let Some((value, _)) = tally
                .into_iter()
                .find(|(value, n)| *n >= quorum && self.log.verdicts.get(value) == Some(&true))
            {
                found = Some((*round, value));
                break;
            }
        }
        let Some((round, value)) = found else { return false };
        let signatures = self
            .log
            .votes_for(VoteKind::Precommit, round, Some(&value))
            .into_iter()
            .map(|v| (v.vote.validator, v.signature))
            .collect();
        let cert = CommitCertificate { height: self.height, round, block_hash: value, signatures };
        self.decide(cert, false, out);
        true
    }

    /// L55-L56: f + 1 validators sent messages for rounds above ours: skip to the
    /// highest round r such that f + 1 validators were seen at r or above.
    fn try_round_skip(&mut self, out: &mut Vec<Action>) -> bool {
        let mut rounds: Vec<Round> = self.log.max_round.values().copied().filter(|r| *r > self.round).collect();
        let need = self.honest_threshold();
        if rounds.len() < need {
            return false;
        }
        rounds.sort_unstable_by(|a, b| b.cmp(a));
        let target = rounds[need - 1];
        self.start_round(target, out);
        true
    }

    /// L22-L27 and L28-L33, while step = propose.
    fn try_prevote_proposal(&mut self, out: &mut Vec<Action>) -> bool {
        let Some(stored) = self.log.proposals.get(&self.round) else { return false };
        let value = stored.signed.proposal.value;
        let pol_round = stored.signed.proposal.pol_round;
        let valid = self.log.verdicts.get(&value) == Some(&true);
        let prevote = match pol_round {
            // L22-L23
            None => valid && safety::may_prevote_fresh(self.locked, &value),
            // L28: needs 2f + 1 prevotes for v at vr (vr < round checked by verify).
            Some(vr) => {
                if self.log.count(VoteKind::Prevote, vr, Some(&value)) < self.quorum() {
                    return false;
                }
                // L29
                valid && safety::may_prevote_with_pol(self.locked, &value, vr)
            }
        };
        // L24/L30 prevote id(v), else L26/L32 prevote nil; L27/L33 step ← prevote.
        self.prevote_and_advance(prevote.then_some(value), out);
        true
    }

    /// L36-L43: proposal for v at our round, valid, and 2f + 1 prevotes for v, while
    /// step ≥ prevote, for the first time in this round.
    fn try_lock(&mut self, out: &mut Vec<Action>) -> bool {
        if self.fired.l36 {
            return false;
        }
        let Some(stored) = self.log.proposals.get(&self.round) else { return false };
        let value = stored.signed.proposal.value;
        if self.log.verdicts.get(&value) != Some(&true) || self.log.count(VoteKind::Prevote, self.round, Some(&value)) < self.quorum() {
            return false;
        }
        self.fired.l36 = true;
        // L42-L43 (set before signing so the persisted state carries it)
        self.valid = Some((self.round, value));
        if self.step == Step::Prevote {
            // L37-L41
            self.locked = Some((self.round, value));
            self.precommit_and_advance(Some(value), out);
        }
        true
    }

    /// L44-L46: 2f + 1 prevotes for nil while step = prevote.
    fn try_precommit_nil(&mut self, out: &mut Vec<Action>) -> bool {
        if self.log.count(VoteKind::Prevote, self.round, None) < self.quorum() {
            return false;
        }
        self.precommit_and_advance(None, out);
        true
    }

    /// L47-L48: 2f + 1 precommits of any kind at our round, first time.
    fn try_schedule_precommit_timeout(&mut self, out: &mut Vec<Action>) -> bool {
        if self.fired.l47 || self.log.count_any(VoteKind::Precommit, self.round) < self.quorum() {
            return false;
        }
        self.fired.l47 = true;
        self.schedule(Step::Precommit, out);
        true
    }

    /// docs/consensus.md "Catch-up": f + 1 validators of the next height's set
    /// seen at heights above ours means at least one honest validator decided our
    /// height; ask the node to sync.
    fn check_sync(&mut self, out: &mut Vec<Action>) {
        if self.sync_requested.is_some_and(|s| s >= (self.height, self.round)) {
            return;
        }
        // Messages above our height were checked against the next height's set
        // (exactly for height + 1, as the nearest set beyond): count by its f.
        let mut heights: Vec<Height> =
            self.peer_progress.values().map(|(h, _)| *h).filter(|h| *h > self.height).collect();
        let need = self.sets.next.honest_threshold();
        if heights.len() < need {
            return;
        }
        heights.sort_unstable_by(|a, b| b.cmp(a));
        self.request_sync(heights[need - 1], out);
    }
}
