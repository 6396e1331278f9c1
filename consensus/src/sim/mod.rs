//! Deterministic simulator: real [`Core`]s on a seeded, faulty network with a
//! virtual clock (enabled by the `sim` feature).
//!
//! One seed fixes everything: fault parameters, message delays, losses,
//! duplicates, partitions, crashes, which validators are Byzantine and what they
//! do, and (with [`ReconfigConfig`]) how the validator set changes. All state lives
//! in `BTreeMap`s and `Vec`s, so the same seed replays the same run bit for bit.
//!
//! * **Phase 1** (faults): loss, delay and reordering, duplication, partitions
//!   that heal, honest crashes with restart from the persisted [`SafetyState`] and
//!   the decided chain, Byzantine validators (see [`Behaviour`]), and validator-set
//!   changes at heights drawn from the seed (module `plan`): additions, removals,
//!   rotations and re-additions, with every stale key in the adversary's hands.
//! * **Phase 2** (healed): no loss, no partition, crashed nodes restarted. Every
//!   honest node (member or not) must finalise `new_blocks_required` blocks beyond
//!   the highest height any honest node had at the heal, and beyond the last
//!   change of the set, within `phase2_max_ms`.
//!
//! Invariants are checked on every action as it is executed, i.e. after every
//! step: agreement, validity, certificate integrity against the set of the
//! certificate's height, no honest double-sign, persist-before-sign, no honest
//! signature at a height where its key is not a member, no honest message
//! rejected, evidence only against Byzantine validators. See docs/consensus.md,
//! "Simulator".

mod aim;
mod byzantine;
mod plan;
mod rng;

use std::collections::BTreeMap;
use std::fmt;

pub use plan::{Change, ChangeKind, ReconfigConfig, SIM_MAX_SET_SIZE};
pub use rng::Rng;

use crate::certificate::CommitCertificate;
use crate::core::{Action, Config, Core, Event, HeightSets, TimeoutConfig};
use crate::crypto::{sha256, Hash32};
use crate::messages::{SignedProposal, SignedVote, VoteKind};
use crate::safety::{check_sign, SafetyState, SignCheck, SignStep, SignedSlot};
use crate::types::{BlockHash, Height, Round, ValidatorIndex};
use plan::{KeyId, Plan};

/// What a Byzantine validator does. Each wraps an honest core and rewrites what
/// it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Behaviour {
    /// Sends nothing at all.
    Silent,
    /// Colluding split-brain: the Byzantine proposer proposes two blocks, one to
    /// each half of the honest validators, and every Byzantine validator votes for
    /// each half's block towards that half. With f + 1 of them this forks.
    Split,
    /// A random mix per message: honest, equivocating, bad signature,
    /// impersonation, votes for unknown blocks, far-future rounds and heights,
    /// wrong chain, bogus certificates, invalid blocks, silence.
    Chaos,
    /// Colluding and aiming (module `aim`, with [`SimConfig::aim`]): re-proposes
    /// old values with real or forged proofs of lock, votes for what it pushes
    /// or nil, proposes out of turn, forges certificates with repeated, unknown or
    /// too few signers, and forgets its lock (amnesia restarts).
    Aim,
}

/// Parameters of one simulation. Fault rates are drawn from the seed unless
/// `faults` is false.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Size of the initial validator set.
    pub n: usize,
    /// Number of Byzantine validators in the initial set (at most f unless
    /// `allow_excess_byzantine`). With reconfiguration, processes added later are
    /// Byzantine while the set they join has fewer than its f.
    pub byzantine: usize,
    /// Forces every Byzantine validator to this behaviour (else drawn per seed).
    pub behaviour: Option<Behaviour>,
    pub allow_excess_byzantine: bool,
    pub seed: u64,
    /// Inject network faults and crashes in phase 1.
    pub faults: bool,
    pub phase1_ms: u64,
    pub phase2_max_ms: u64,
    pub new_blocks_required: u64,
    /// Stop phase 1 early once an honest node reaches this height (0 = never).
    pub phase1_max_height: u64,
    pub timeouts: TimeoutConfig,
    /// Validator-set changes (`None`: the genesis set stays in force).
    pub reconfig: Option<ReconfigConfig>,
    /// Print every event and action to stderr (set by `YRD_SIM_TRACE=1` in tests).
    pub trace: bool,
    /// The aiming adversary (module `aim`): targeted delivery of honest votes
    /// before the heal, and every Byzantine validator `Behaviour::Aim`.
    pub aim: bool,
}

impl SimConfig {
    pub fn new(n: usize, byzantine: usize, seed: u64) -> SimConfig {
        SimConfig {
            n,
            byzantine,
            behaviour: None,
            allow_excess_byzantine: false,
            seed,
            faults: true,
            phase1_ms: 3_000,
            phase2_max_ms: 120_000,
            new_blocks_required: 2,
            phase1_max_height: 0,
            timeouts: TimeoutConfig {
                propose_base_ms: 300,
                propose_delta_ms: 100,
                prevote_base_ms: 150,
                prevote_delta_ms: 50,
                precommit_base_ms: 150,
                precommit_delta_ms: 50,
            },
            reconfig: None,
            trace: false,
            aim: false,
        }
    }

    /// The same run against the aiming adversary (module `aim`).
    pub fn aimed(mut self) -> SimConfig {
        self.aim = true;
        // Room for a lock attack to play out before the heal: rounds whose
        // proposals the adversary holds back time out.
        self.phase1_ms = AIMED_PHASE1_MS;
        self.behaviour = Some(Behaviour::Aim);
        self
    }

    /// The same run with validator-set changes drawn from the seed.
    pub fn with_reconfig(mut self, reconfig: ReconfigConfig) -> SimConfig {
        self.reconfig = Some(reconfig);
        self
    }
}

/// An invariant the run broke. `node` is a process (it may hold different keys
/// at different heights); `validator` in a signing violation is the process too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    Agreement { height: Height, first: BlockHash, second: BlockHash, node: usize },
    Validity { height: Height, block: BlockHash, node: usize, reason: &'static str },
    /// A certificate an honest node accepted (or evidence it emitted) does not
    /// verify against the set in force at its height.
    Certificate { height: Height, node: usize, error: String },
    DoubleSign { validator: usize, first: SignedSlot, second: SignedSlot },
    SignedBeforePersist { validator: usize, slot: SignedSlot },
    /// An honest node signed at a height where its key is not the member at the
    /// index it signed as (not a member, or a stale index).
    NonMemberSigned { node: usize, height: Height, index: ValidatorIndex },
    HonestRejected { from: usize, to: usize, reason: String },
    FalseEvidence { accused: usize, node: usize },
    Liveness { node: usize, height: u64, required: u64, at_ms: u64 },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

/// Outcome of one run.
#[derive(Debug, Clone, Default)]
pub struct SimReport {
    pub seed: u64,
    pub violation: Option<Violation>,
    /// Highest height decided by an honest node.
    pub max_height: u64,
    /// Lowest height decided by an honest node.
    pub min_height: u64,
    /// Point-to-point messages put on the wire (a broadcast to n − 1 counts n − 1).
    pub messages_sent: u64,
    pub messages_delivered: u64,
    pub signatures_verified: u64,
    pub signatures_made: u64,
    pub evidence: u64,
    pub crashes: u64,
    pub partitions: u64,
    pub sim_time_ms: u64,
    /// Simulated time from the heal until every honest node had the required blocks.
    pub liveness_ms: Option<u64>,
    pub byzantine: Vec<(usize, Behaviour)>,
    /// The planned changes of the validator set.
    pub changes: Vec<Change>,
    /// Smallest and largest set in force during the run.
    pub set_sizes: (usize, usize),
    /// Heights at or above the last change that every honest node finalised.
    pub heights_after_last_change: u64,
    /// Processes restarted with a rotated key.
    pub rotations: u64,
    /// Messages signed by stale keys (removed or rotated out) for heights where
    /// they are not members, sent to every node.
    pub stale_messages: u64,
    /// Certificates forged by stale keys that verify against the set they were
    /// members of (but not against the set of the height), sent to every node.
    pub stale_certificates: u64,
    /// Which protocol states the run reached (to compare schedules and seeds).
    pub coverage: Coverage,
}

/// States a run reached and attacks it made: printed per run on replay and
/// summed per test, to see which schedules reach the states the lock rules guard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Highest round an honest core entered.
    pub max_round: u32,
    /// Honest cores that locked (L36) at a round above 0.
    pub locks_above_round0: u64,
    /// An honest core moved its lock to another value at the same height (L36
    /// at a later round, after a newer polka).
    pub relocks: u64,
    /// An honest core locked while another honest core at the same height held a
    /// lock on a different value.
    pub split_locks: u64,
    /// An honest node decided while another honest core at that height was
    /// locked on a different value (the start of every lock attack).
    pub decided_against_a_lock: u64,
    /// Honest prevotes for a proposal with a proof of lock (L28-L29).
    pub pol_prevotes: u64,
    /// Honest precommits for nil after a nil polka or timeout (L44, L61).
    pub nil_precommits: u64,
    /// Aim: honest vote deliveries held back from all but one victim.
    pub targeted_deliveries: u64,
    /// Aim: Byzantine proposals with a proof-of-lock round (real or forged).
    pub pol_proposals: u64,
    pub out_of_turn_proposals: u64,
    pub forged_certificates: u64,
    pub amnesia_restarts: u64,
    /// Aim: heights at which one honest node decided alone and the adversary
    /// then tried to make the others decide another block.
    pub lock_attacks: u64,
    /// Aim: proposals of another block made during lock attacks.
    pub attack_proposals: u64,
}

impl Coverage {
    /// Adds `other` (the maximum for `max_round`).
    pub fn add(&mut self, o: &Coverage) {
        self.max_round = self.max_round.max(o.max_round);
        self.locks_above_round0 += o.locks_above_round0;
        self.relocks += o.relocks;
        self.split_locks += o.split_locks;
        self.decided_against_a_lock += o.decided_against_a_lock;
        self.pol_prevotes += o.pol_prevotes;
        self.nil_precommits += o.nil_precommits;
        self.targeted_deliveries += o.targeted_deliveries;
        self.pol_proposals += o.pol_proposals;
        self.out_of_turn_proposals += o.out_of_turn_proposals;
        self.forged_certificates += o.forged_certificates;
        self.amnesia_restarts += o.amnesia_restarts;
        self.lock_attacks += o.lock_attacks;
        self.attack_proposals += o.attack_proposals;
    }
}

/// How to replay a seed of one of the `consensus/tests/simulation.rs` tests.
pub fn replay_hint(seed: u64, test: &str) -> String {
    format!("replay with: YRD_SIM_SEED={seed} cargo test -p yrd-consensus --test simulation {test} -- --nocapture")
}

/// Phase 1 of an aimed run (`SimConfig::aimed`).
const AIMED_PHASE1_MS: u64 = 5_000;

/// Sender of messages the adversary makes up with stale keys: it is everywhere
/// (no partition holds it back) and never honest.
const ADVERSARY: usize = usize::MAX;

/// Certificates beyond the next height a node keeps until it gets there (the
/// core verifies only the current and next height's: the node feeds them in
/// order).
const MAX_PENDING_CERTS: usize = 64;

/// Certificates a node answers a sync request with.
const SYNC_BATCH: usize = 8;

/// A certificate as a map key: height, round, block and every signature.
type CertKey = (Height, Round, BlockHash, Vec<(u32, [u8; 64])>);

#[derive(Debug, Clone)]
enum Msg {
    Proposal(SignedProposal),
    Vote(SignedVote),
    Cert(CommitCertificate),
    SyncRequest(Height),
}

#[derive(Debug, Clone)]
enum SimEvent {
    Deliver { to: usize, from: usize, msg: Msg },
    Timer { node: usize, incarnation: u64, event: Event },
    /// `torn`: the node crashes right after its next `PersistSafety`, before the
    /// signature it covers is sent (a crash between persist and broadcast).
    Crash { node: usize, torn: bool },
    /// Starts a node that is down (after a crash, a key rotation, or for the
    /// first time).
    Restart { node: usize },
    /// Amnesia: a Byzantine node restarts with an empty safety state.
    Forget { node: usize },
    PartitionStart,
    PartitionEnd,
    Heal,
}

#[derive(Debug, Clone)]
struct BlockInfo {
    height: Height,
    valid: bool,
}

/// What a node keeps on disk: survives crashes.
#[derive(Debug, Clone, Default)]
struct Disk {
    safety: SafetyState,
    chain: Vec<CommitCertificate>,
}

struct Node {
    core: Option<Core>,
    incarnation: u64,
    disk: Disk,
    byz: Option<Behaviour>,
    /// The key the running core was built with.
    key: KeyId,
    /// The core's height and our index there after its last event: a broadcast
    /// vote with this height and index is our own signature.
    signer: Option<(Height, ValidatorIndex)>,
    verified_before: u64,
    made_before: u64,
    /// Crash right after the next PersistSafety.
    torn_crash: bool,
    /// Certificates beyond the core's next height, with their sender, fed in
    /// order as the core gets there.
    pending_certs: BTreeMap<Height, (CommitCertificate, usize)>,
}

#[derive(Debug, Clone)]
struct Net {
    loss_per_mille: u64,
    dup_per_mille: u64,
    delay_min_ms: u64,
    delay_max_ms: u64,
    spike_per_mille: u64,
    partition: Option<Vec<bool>>,
}

/// One simulation in progress.
pub struct Sim {
    cfg: SimConfig,
    rng: Rng,
    chain: Hash32,
    plan: Plan,
    nodes: Vec<Node>,
    queue: BTreeMap<(u64, u64), SimEvent>,
    seq: u64,
    now: u64,
    net: Net,
    healed: bool,
    blocks: BTreeMap<BlockHash, BlockInfo>,
    block_counter: u64,
    /// First decision per height by an honest node.
    decided: BTreeMap<Height, BlockHash>,
    /// Every slot an honest key released a signature for.
    signed: BTreeMap<(KeyId, Height, Round, SignStep), SignedSlot>,
    /// Certificates the checker verified against the set of their height (most
    /// are committed by every honest node): the verdict, computed once.
    checked_certs: BTreeMap<CertKey, Result<(), String>>,
    /// Split-brain plan of the colluding Byzantine validators.
    splits: BTreeMap<(Height, Round), (BlockHash, BlockHash)>,
    /// Honest processes on side B of the split (the rest are side A).
    side_b: std::collections::BTreeSet<usize>,
    heal_target: Option<u64>,
    healed_at: u64,
    report: SimReport,
    /// The aiming adversary, if `cfg.aim`.
    aim: Option<aim::Aim>,
    /// Per honest process: the height and lock of its core after its last event
    /// (coverage).
    locks: BTreeMap<usize, (Height, Option<(Round, BlockHash)>)>,
    /// (height, round, value) of every proposal with a proof of lock sent (coverage).
    pol_proposals: std::collections::BTreeSet<(Height, Round, BlockHash)>,
}

impl Sim {
    pub fn new(cfg: SimConfig) -> Sim {
        let mut rng = Rng::new(cfg.seed);
        let f = cfg.n.saturating_sub(1) / 3;
        assert!(cfg.allow_excess_byzantine || cfg.byzantine <= f, "{} Byzantine of {} exceeds f = {f}", cfg.byzantine, cfg.n);
        assert!(cfg.byzantine <= cfg.n);
        assert!(cfg.n >= 1 && cfg.n <= SIM_MAX_SET_SIZE);
        let plan = Plan::new(&cfg, &mut rng);
        let processes = plan.byzantine.len();
        let side_b = (0..processes).filter(|p| plan.byzantine[*p].is_none()).filter(|_| rng.chance(500)).collect();
        let net = if cfg.faults {
            let delay_min_ms = rng.range(1, 20);
            Net {
                loss_per_mille: rng.range(0, 250),
                dup_per_mille: rng.range(0, 150),
                delay_min_ms,
                delay_max_ms: delay_min_ms + rng.range(0, 150),
                spike_per_mille: rng.range(0, 50),
                partition: None,
            }
        } else {
            Net { loss_per_mille: 0, dup_per_mille: 0, delay_min_ms: 5, delay_max_ms: 20, spike_per_mille: 0, partition: None }
        };
        let chain = sha256(&[b"sim-chain", &cfg.seed.to_be_bytes()]);
        let nodes = (0..processes)
            .map(|p| Node {
                core: None,
                incarnation: 0,
                disk: Disk::default(),
                byz: plan.byzantine[p],
                key: plan.key_at(p, Height(1)),
                signer: None,
                verified_before: 0,
                made_before: 0,
                torn_crash: false,
                pending_certs: BTreeMap::new(),
            })
            .collect();
        let sizes = plan.epochs.iter().map(|e| e.set.len());
        let set_sizes = (sizes.clone().min().unwrap_or(cfg.n), sizes.max().unwrap_or(cfg.n));
        let report = SimReport {
            seed: cfg.seed,
            byzantine: (0..processes).filter_map(|p| plan.byzantine[p].map(|b| (p, b))).collect(),
            changes: plan.changes.clone(),
            set_sizes,
            ..SimReport::default()
        };
        let aim = cfg.aim.then(|| aim::Aim::new(cfg.seed));
        Sim {
            aim,
            locks: BTreeMap::new(),
            pol_proposals: std::collections::BTreeSet::new(),
            cfg,
            rng,
            chain,
            plan,
            nodes,
            queue: BTreeMap::new(),
            seq: 0,
            now: 0,
            net,
            healed: false,
            blocks: BTreeMap::new(),
            block_counter: 0,
            decided: BTreeMap::new(),
            signed: BTreeMap::new(),
            checked_certs: BTreeMap::new(),
            splits: BTreeMap::new(),
            side_b,
            heal_target: None,
            healed_at: 0,
            report,
        }
    }

    fn honest(&self) -> Vec<usize> {
        (0..self.nodes.len()).filter(|i| self.nodes[*i].byz.is_none()).collect()
    }

    fn push(&mut self, at: u64, ev: SimEvent) {
        self.seq += 1;
        self.queue.insert((at, self.seq), ev);
    }

    fn config(&self) -> Config {
        Config { chain: self.chain, timeouts: self.cfg.timeouts }
    }

    /// The sets a core at `height` is handed (what the ledger would derive).
    fn sets_for(&self, height: Height) -> HeightSets {
        HeightSets { current: self.plan.handed_set(height).clone(), next: self.plan.handed_set(height.next()).clone() }
    }

    /// Runs to completion (a violation, liveness reached, or the time limit).
    pub fn run(mut self) -> SimReport {
        let p1 = self.cfg.phase1_ms;
        for i in 0..self.nodes.len() {
            if i < self.plan.initial_processes {
                self.boot(i);
            } else {
                // A process added later starts as a non-member at some point of
                // phase 1 and follows the chain.
                let at = if self.rng.chance(500) { 0 } else { self.rng.below(p1.max(1)) };
                self.push(at, SimEvent::Restart { node: i });
            }
        }
        // Phase-1 fault schedule.
        if self.cfg.faults {
            let partitions = self.rng.below(3);
            for _ in 0..partitions {
                let at = self.rng.below(p1);
                self.push(at, SimEvent::PartitionStart);
                let end = at + self.rng.range(100, 1500);
                self.push(end, SimEvent::PartitionEnd);
            }
            let crashes = self.rng.below(4);
            for _ in 0..crashes {
                let node = self.rng.below(self.nodes.len() as u64) as usize;
                if self.nodes[node].byz.is_some() {
                    continue;
                }
                let at = self.rng.below(p1);
                let torn = self.rng.chance(500);
                self.push(at, SimEvent::Crash { node, torn });
                let back = at + self.rng.range(10, 2000);
                self.push(back, SimEvent::Restart { node });
            }
        }
        if let Some(aim) = self.aim.as_mut() {
            let mut forget = Vec::new();
            for (i, node) in self.nodes.iter().enumerate() {
                if node.byz == Some(Behaviour::Aim) {
                    for _ in 0..aim.rng.below(aim::MAX_AMNESIA_RESTARTS + 1) {
                        forget.push((aim.rng.below(p1.max(1)), i));
                    }
                }
            }
            for (at, node) in forget {
                self.push(at, SimEvent::Forget { node });
            }
        }
        let heal_at = self.cfg.phase1_ms;
        self.push(heal_at, SimEvent::Heal);
        while let Some(((at, _), ev)) = self.queue.pop_first() {
            let healed_at = if self.healed { self.healed_at } else { heal_at };
            if at > healed_at.saturating_add(self.cfg.phase2_max_ms) {
                break;
            }
            self.now = at;
            self.step(ev);
            if self.report.violation.is_some() {
                break;
            }
            if let Some(target) = self.heal_target {
                if self.honest().iter().all(|i| self.nodes[*i].disk.chain.len() as u64 >= target) {
                    self.report.liveness_ms = Some(self.now - self.healed_at);
                    break;
                }
            } else if self.cfg.phase1_max_height > 0 && self.report.max_height >= self.cfg.phase1_max_height {
                // Phase 1 is long enough: heal now.
                self.step(SimEvent::Heal);
            }
        }
        if self.report.violation.is_none() && self.report.liveness_ms.is_none() {
            let target = self.heal_target.unwrap_or(0);
            let worst = self.honest().into_iter().min_by_key(|i| self.nodes[*i].disk.chain.len()).unwrap_or(0);
            self.report.violation = Some(Violation::Liveness {
                node: worst,
                height: self.nodes[worst].disk.chain.len() as u64,
                required: target,
                at_ms: self.now,
            });
        }
        self.finish()
    }

    fn finish(mut self) -> SimReport {
        self.report.sim_time_ms = self.now;
        let honest = self.honest();
        self.report.min_height = honest.iter().map(|i| self.nodes[*i].disk.chain.len() as u64).min().unwrap_or(0);
        self.report.heights_after_last_change =
            (self.report.min_height + 1).saturating_sub(self.plan.last_change().0);
        for node in &self.nodes {
            let (v, m) = node.core.as_ref().map_or((0, 0), |c| (c.stats().signatures_verified, c.stats().signatures_made));
            self.report.signatures_verified += node.verified_before + v;
            self.report.signatures_made += node.made_before + m;
        }
        self.report
    }

    /// Starts process `i` from its disk, with the key it holds at its next height.
    fn boot(&mut self, i: usize) {
        let next = Height(self.nodes[i].disk.chain.len() as u64 + 1);
        let key = self.plan.key_at(i, next);
        self.nodes[i].key = key;
        let core = Core::new(
            self.config(),
            Some(self.plan.keys[key].clone()),
            self.nodes[i].disk.safety.clone(),
            next,
            self.sets_for(next),
        )
        .expect("valid sim config");
        self.nodes[i].core = Some(core);
        self.feed(i, Event::Start, None);
    }

    fn step(&mut self, ev: SimEvent) {
        match ev {
            SimEvent::Deliver { to, from, msg } => {
                if self.nodes[to].core.is_none() {
                    return;
                }
                self.report.messages_delivered += 1;
                match msg {
                    Msg::Proposal(p) => {
                        let valid = self.blocks.get(&p.proposal.value).is_some_and(|b| b.valid && b.height == p.proposal.height);
                        self.feed(to, Event::Proposal { proposal: p, valid }, Some(from));
                    }
                    Msg::Vote(v) => self.feed(to, Event::Vote(v), Some(from)),
                    Msg::Cert(c) => self.deliver_cert(to, c, from),
                    Msg::SyncRequest(h) => {
                        if self.nodes[to].byz == Some(Behaviour::Aim) && !self.healed {
                            return;
                        }
                        let chain = &self.nodes[to].disk.chain;
                        let certs: Vec<CommitCertificate> =
                            chain.iter().skip(h.0.saturating_sub(1) as usize).take(SYNC_BATCH).cloned().collect();
                        for c in certs {
                            self.send(to, from, Msg::Cert(c));
                        }
                    }
                }
            }
            SimEvent::Timer { node, incarnation, event } => {
                if self.nodes[node].incarnation == incarnation && self.nodes[node].core.is_some() {
                    let committed = matches!(event, Event::Committed { .. });
                    self.feed(node, event, None);
                    if committed {
                        self.feed_pending_certs(node);
                    }
                }
            }
            SimEvent::Crash { node, torn } => {
                if self.healed {
                    return;
                }
                if torn {
                    self.nodes[node].torn_crash = true;
                } else if self.nodes[node].core.is_some() {
                    self.crash(node);
                    self.report.crashes += 1;
                }
            }
            SimEvent::Restart { node } => {
                self.nodes[node].torn_crash = false;
                if self.nodes[node].core.is_none() {
                    self.boot(node);
                }
            }
            SimEvent::Forget { node } => {
                if !self.healed && self.nodes[node].core.is_some() {
                    self.crash(node);
                    self.nodes[node].disk.safety = SafetyState::default();
                    self.report.coverage.amnesia_restarts += 1;
                    self.boot(node);
                }
            }
            SimEvent::PartitionStart => {
                if !self.healed {
                    let sides: Vec<bool> = (0..self.nodes.len()).map(|_| self.rng.chance(500)).collect();
                    self.net.partition = Some(sides);
                    self.report.partitions += 1;
                }
            }
            SimEvent::PartitionEnd => self.net.partition = None,
            SimEvent::Heal => {
                if self.healed {
                    return;
                }
                self.healed = true;
                self.healed_at = self.now;
                self.net = Net { loss_per_mille: 0, partition: None, spike_per_mille: 0, delay_max_ms: self.net.delay_max_ms.min(60), ..self.net.clone() };
                for i in 0..self.nodes.len() {
                    if self.nodes[i].core.is_none() {
                        self.boot(i);
                    }
                }
                // Liveness with the final set: beyond the top at the heal, and
                // beyond the last change of the set.
                let top = self.honest().iter().map(|i| self.nodes[*i].disk.chain.len() as u64).max().unwrap_or(0);
                let base = top.max(self.plan.last_change().0.saturating_sub(1));
                self.heal_target = Some(base + self.cfg.new_blocks_required);
            }
        }
    }

    fn crash(&mut self, node: usize) {
        self.nodes[node].torn_crash = false;
        self.nodes[node].pending_certs.clear();
        self.nodes[node].signer = None;
        if let Some(core) = self.nodes[node].core.take() {
            self.nodes[node].verified_before += core.stats().signatures_verified;
            self.nodes[node].made_before += core.stats().signatures_made;
            self.nodes[node].incarnation += 1;
        }
    }

    /// The node layer's handling of a certificate: the core verifies those of its
    /// current and next height; later ones wait until it gets there.
    fn deliver_cert(&mut self, to: usize, cert: CommitCertificate, from: usize) {
        let Some(core) = self.nodes[to].core.as_ref() else { return };
        if cert.height <= core.height().next() {
            self.feed(to, Event::CommitCertified(cert), Some(from));
            return;
        }
        let pending = &mut self.nodes[to].pending_certs;
        if pending.len() < MAX_PENDING_CERTS && !pending.contains_key(&cert.height) {
            pending.insert(cert.height, (cert, from));
        }
    }

    /// After a height change: feed the kept certificates the core can now verify.
    fn feed_pending_certs(&mut self, i: usize) {
        loop {
            let Some(core) = self.nodes[i].core.as_ref() else { return };
            let (h, next) = (core.height(), core.height().next());
            let pending = &mut self.nodes[i].pending_certs;
            *pending = pending.split_off(&h);
            let Some(entry) = pending.first_entry().filter(|e| *e.key() <= next) else { return };
            let (cert, from) = entry.remove();
            self.feed(i, Event::CommitCertified(cert), Some(from));
        }
    }

    fn send(&mut self, from: usize, to: usize, msg: Msg) {
        if from == to {
            return;
        }
        self.report.messages_sent += 1;
        if self.aim.is_some() && from != ADVERSARY && self.aim_blocks(from, to, &msg) {
            return;
        }
        if let Some(sides) = &self.net.partition {
            if from != ADVERSARY && sides[from] != sides[to] {
                return;
            }
        }
        if self.rng.chance(self.net.loss_per_mille) {
            return;
        }
        let copies = if self.rng.chance(self.net.dup_per_mille) { 2 } else { 1 };
        for _ in 0..copies {
            let mut delay = self.rng.range(self.net.delay_min_ms, self.net.delay_max_ms);
            if self.rng.chance(self.net.spike_per_mille) {
                delay += self.rng.range(200, 2000);
            }
            let at = self.now + delay;
            self.push(at, SimEvent::Deliver { to, from, msg: msg.clone() });
        }
    }

    fn broadcast(&mut self, from: usize, msg: Msg) {
        if let Msg::Proposal(p) = &msg {
            if p.proposal.pol_round.is_some() {
                self.pol_proposals.insert((p.proposal.height, p.proposal.round, p.proposal.value));
            }
        }
        if let (Some(aim), Msg::Vote(sv)) = (self.aim.as_mut(), &msg) {
            aim.observe_vote(sv);
        }
        for to in 0..self.nodes.len() {
            self.send(from, to, msg.clone());
        }
    }

    /// Hands `event` to node `i` and executes the resulting actions in order.
    fn feed(&mut self, i: usize, event: Event, from: Option<usize>) {
        let incarnation = self.nodes[i].incarnation;
        let Some(core) = self.nodes[i].core.as_mut() else { return };
        if self.cfg.trace {
            eprintln!("{:>7} n{i} h{} r{} {:?} <- {:?} {:?}", self.now, core.height().0, core.round().0, core.step(), from, event);
        }
        let actions = core.handle(event);
        let signer = core.index().map(|me| (core.height(), me));
        let state = (core.height(), core.round(), core.locked());
        self.nodes[i].signer = signer;
        if self.nodes[i].byz.is_none() {
            self.cover_core(i, state, &actions);
        }
        for action in actions {
            if self.cfg.trace {
                eprintln!("{:>7} n{i}   -> {:?}", self.now, action);
            }
            self.execute(i, action, from);
            if self.report.violation.is_some() || self.nodes[i].incarnation != incarnation {
                return; // a violation, or a crash dropped the remaining actions
            }
        }
    }

    /// Coverage: what honest node `i`'s core reached with its last event.
    fn cover_core(&mut self, i: usize, (height, round, locked): (Height, Round, Option<(Round, BlockHash)>), actions: &[Action]) {
        let c = &mut self.report.coverage;
        c.max_round = c.max_round.max(round.0);
        for a in actions {
            if let Action::BroadcastVote(v) = a {
                if self.nodes[i].signer != Some((v.vote.height, v.vote.validator)) {
                    continue;
                }
                match (v.vote.kind, v.vote.value) {
                    (VoteKind::Precommit, None) => c.nil_precommits += 1,
                    (VoteKind::Prevote, Some(b)) if self.pol_proposals.contains(&(v.vote.height, v.vote.round, b)) => c.pol_prevotes += 1,
                    _ => {}
                }
            }
        }
        let before = self.locks.insert(i, (height, locked));
        let Some((r, value)) = locked else { return };
        let changed = match before {
            Some((h, Some((_, old)))) if h == height => old != value,
            _ => true,
        };
        if !changed && before.is_some_and(|(_, l)| l.map(|l| l.0) == Some(r)) {
            return;
        }
        if r.0 > 0 {
            c.locks_above_round0 += 1;
        }
        if matches!(before, Some((h, Some((_, old)))) if h == height && old != value) {
            c.relocks += 1;
        }
        let split = self.locks.iter().any(|(j, (h, l))| *j != i && *h == height && l.is_some_and(|(_, w)| w != value));
        if split {
            self.report.coverage.split_locks += 1;
        }
    }

    fn violate(&mut self, v: Violation) {
        if self.report.violation.is_none() {
            self.report.violation = Some(v);
        }
    }

    fn new_block(&mut self, height: Height, valid: bool, tag: &[u8]) -> BlockHash {
        self.block_counter += 1;
        let hash = sha256(&[b"sim-block", &self.cfg.seed.to_be_bytes(), &self.block_counter.to_be_bytes(), tag]);
        self.blocks.insert(hash, BlockInfo { height, valid });
        hash
    }

    /// True if a vote or proposal at `(height, index)` broadcast by node `i` is
    /// its own signature (not a relayed proof-of-lock prevote).
    fn is_own(&self, i: usize, height: Height, index: ValidatorIndex) -> bool {
        self.nodes[i].signer == Some((height, index))
    }

    fn execute(&mut self, i: usize, action: Action, from: Option<usize>) {
        let byz = self.nodes[i].byz;
        match action {
            Action::PersistSafety(s) => {
                self.nodes[i].disk.safety = s;
                if self.nodes[i].torn_crash && !self.healed {
                    self.crash(i);
                    self.report.crashes += 1;
                }
            }
            Action::BroadcastProposal(p) => match byz {
                None => {
                    let slot = SignedSlot {
                        height: p.proposal.height,
                        round: p.proposal.round,
                        step: SignStep::Proposal,
                        value: Some(p.proposal.value),
                        pol_round: p.proposal.pol_round,
                    };
                    self.check_membership(i, p.proposal.height, p.proposal.proposer);
                    self.check_signature_release(i, slot);
                    self.stale_keys_react(p.proposal.height, p.proposal.round, Some(p.proposal.value));
                    self.broadcast(i, Msg::Proposal(p));
                }
                Some(b) => self.byzantine_proposal(i, b, p),
            },
            Action::BroadcastVote(v) => match byz {
                None => {
                    if self.is_own(i, v.vote.height, v.vote.validator) {
                        let step = match v.vote.kind {
                            VoteKind::Prevote => SignStep::Prevote,
                            VoteKind::Precommit => SignStep::Precommit,
                        };
                        let slot = SignedSlot { height: v.vote.height, round: v.vote.round, step, value: v.vote.value, pol_round: None };
                        self.check_membership(i, v.vote.height, v.vote.validator);
                        self.check_signature_release(i, slot);
                        self.stale_keys_react(v.vote.height, v.vote.round, v.vote.value);
                    }
                    let (h, r) = (v.vote.height, v.vote.round);
                    self.broadcast(i, Msg::Vote(v));
                    if self.aim.is_some() {
                        self.aim_attack_round(h, r);
                    }
                }
                Some(b) => self.byzantine_vote(i, b, v),
            },
            Action::ScheduleTimeout { timeout, duration_ms } => {
                let incarnation = self.nodes[i].incarnation;
                self.push(self.now + duration_ms, SimEvent::Timer { node: i, incarnation, event: Event::Timeout(timeout) });
            }
            Action::RequestProposal { height, round } => {
                let valid = !(byz == Some(Behaviour::Chaos) && self.rng.chance(400));
                let value = self.new_block(height, valid, &(i as u64).to_be_bytes());
                // Building a block takes the node a little time.
                let incarnation = self.nodes[i].incarnation;
                let at = self.now + self.rng.range(1, 10);
                self.push(at, SimEvent::Timer { node: i, incarnation, event: Event::ProposalValue { height, round, value } });
            }
            Action::Commit(cert) => self.commit(i, cert),
            Action::Evidence(e) => {
                self.report.evidence += 1;
                let h = e.height();
                let set = self.plan.set_at(h).clone();
                let accused = e.signer(&set).and_then(|k| self.plan.key_of.get(&k)).map(|k| self.plan.key_process[*k]);
                if byz.is_none() && accused.is_some_and(|a| self.nodes[a].byz.is_none()) {
                    self.violate(Violation::FalseEvidence { accused: accused.unwrap_or(0), node: i });
                }
                if let Err(err) = e.verify(&self.chain, &set) {
                    self.violate(Violation::Certificate { height: h, node: i, error: format!("evidence does not verify: {err}") });
                }
            }
            Action::PeerBehind { peer, height } => {
                // An aiming Byzantine keeps decisions to itself until the heal.
                if byz == Some(Behaviour::Silent) || (byz == Some(Behaviour::Aim) && !self.healed) {
                    return;
                }
                let to = self.plan.key_of.get(&peer).map(|k| self.plan.key_process[*k]);
                let cert = self.nodes[i].disk.chain.get((height.0 as usize).wrapping_sub(1)).cloned();
                if let (Some(to), Some(c)) = (to, cert) {
                    self.send(i, to, Msg::Cert(c));
                }
            }
            Action::SyncNeeded { height, .. } => {
                if byz == Some(Behaviour::Silent) {
                    return;
                }
                // About to be fed the certificate of this height from an earlier
                // answer: no new request.
                if self.nodes[i].pending_certs.contains_key(&height) {
                    return;
                }
                self.broadcast(i, Msg::SyncRequest(height));
            }
            Action::Rejected(reason) => {
                if byz.is_none() {
                    if let Some(from) = from {
                        if self.nodes.get(from).is_some_and(|n| n.byz.is_none()) {
                            self.violate(Violation::HonestRejected { from, to: i, reason: reason.to_string() });
                        }
                    }
                }
            }
        }
    }

    /// `Action::Commit`: check it, store it, and report `Committed` a little later
    /// with the sets of the two heights after it. A process whose key rotates at
    /// the next height restarts with the new key instead (the operator's restart).
    fn commit(&mut self, i: usize, cert: CommitCertificate) {
        if self.nodes[i].byz.is_none() {
            let first = !self.decided.contains_key(&cert.height);
            self.check_commit(i, &cert);
            if first && self.report.violation.is_none() {
                self.aim_first_decision(i, cert.height, cert.round, cert.block_hash);
            }
        }
        let h = cert.height;
        let disk = &mut self.nodes[i].disk;
        if h.0 == disk.chain.len() as u64 + 1 {
            disk.chain.push(cert);
        }
        let len = disk.chain.len() as u64;
        if self.nodes[i].byz.is_none() {
            self.report.max_height = self.report.max_height.max(len);
        }
        if self.plan.key_at(i, Height(len + 1)) != self.nodes[i].key {
            self.crash(i);
            self.report.rotations += 1;
            self.push(self.now + 1, SimEvent::Restart { node: i });
            return;
        }
        // Storing the block takes a little time; a crash before `Committed`
        // restarts the node at the next height from its disk.
        let incarnation = self.nodes[i].incarnation;
        let at = self.now + self.rng.range(1, 5);
        let sets = self.sets_for(h.next());
        self.push(at, SimEvent::Timer { node: i, incarnation, event: Event::Committed { height: h, sets } });
    }

    /// An honest node signs at `(height, index)` only if its key is the member at
    /// `index` of the set in force at `height`.
    fn check_membership(&mut self, i: usize, height: Height, index: ValidatorIndex) {
        let key = self.plan.publics[self.nodes[i].key];
        if self.plan.set_at(height).key(index) != Some(&key) {
            self.violate(Violation::NonMemberSigned { node: i, height, index });
        }
    }

    /// No honest double-sign (per key), and the signature was persisted before release.
    fn check_signature_release(&mut self, i: usize, slot: SignedSlot) {
        match check_sign(&self.nodes[i].disk.safety, &slot) {
            SignCheck::SameMessage | SignCheck::Regresses { .. } => {}
            SignCheck::Fresh | SignCheck::Conflicts { .. } => {
                self.violate(Violation::SignedBeforePersist { validator: i, slot });
            }
        }
        let key = (self.nodes[i].key, slot.height, slot.round, slot.step);
        match self.signed.get(&key) {
            Some(first) if *first != slot => {
                let first = *first;
                self.violate(Violation::DoubleSign { validator: i, first, second: slot });
            }
            Some(_) => {}
            None => {
                self.signed.insert(key, slot);
            }
        }
    }

    /// Agreement, validity, and the certificate verifies against the set in force
    /// at its height (so never one made by a stale set).
    fn check_commit(&mut self, i: usize, cert: &CommitCertificate) {
        let h = cert.height;
        let key: CertKey =
            (h, cert.round, cert.block_hash, cert.signatures.iter().map(|(v, s)| (v.0, s.0)).collect());
        let verdict = match self.checked_certs.get(&key) {
            Some(v) => v.clone(),
            None => {
                let set = self.plan.set_at(h);
                let v = cert
                    .verify(&self.chain, set, h, &cert.block_hash)
                    .map_err(|e| e.to_string())
                    .and_then(|()| independent_certificate_check(&self.chain, set, cert));
                self.checked_certs.insert(key, v.clone());
                v
            }
        };
        if let Err(error) = verdict {
            self.violate(Violation::Certificate { height: h, node: i, error });
            return;
        }
        if self.locks.iter().any(|(j, (lh, l))| *j != i && *lh == h && l.is_some_and(|(_, w)| w != cert.block_hash)) {
            self.report.coverage.decided_against_a_lock += 1;
        }
        match self.blocks.get(&cert.block_hash) {
            None => self.violate(Violation::Validity { height: h, block: cert.block_hash, node: i, reason: "never proposed" }),
            Some(b) if !b.valid => self.violate(Violation::Validity { height: h, block: cert.block_hash, node: i, reason: "invalid block" }),
            Some(b) if b.height != h => self.violate(Violation::Validity { height: h, block: cert.block_hash, node: i, reason: "block built for another height" }),
            Some(_) => {}
        }
        match self.decided.get(&h) {
            Some(first) if *first != cert.block_hash => {
                let first = *first;
                self.violate(Violation::Agreement { height: h, first, second: cert.block_hash, node: i });
            }
            Some(_) => {}
            None => {
                self.decided.insert(h, cert.block_hash);
            }
        }
    }
}

/// The checker's own certificate check, sharing no code with
/// `CommitCertificate::verify` or `ValidatorSet::quorum` (a bug planted there must
/// not blind the checker): distinct known signers, strictly more than two thirds
/// of the set plus the fault bound's rounding (n − ⌊(n − 1)/3⌋), every signature
/// over that signer's precommit.
fn independent_certificate_check(chain: &Hash32, set: &crate::types::ValidatorSet, cert: &CommitCertificate) -> Result<(), String> {
    let n = set.len();
    let needed = n - (n - 1) / 3;
    let mut signers = std::collections::BTreeSet::new();
    for (j, sig) in &cert.signatures {
        if !signers.insert(j.0) {
            return Err(format!("checker: signer {} appears twice", j.0));
        }
        let key = set.verifying_key(*j).ok_or_else(|| format!("checker: signer {} is not in the set of {n}", j.0))?;
        let vote = crate::messages::Vote {
            chain: *chain,
            kind: VoteKind::Precommit,
            height: cert.height,
            round: cert.round,
            value: Some(cert.block_hash),
            validator: *j,
        };
        let payload = vote.signing_payload().map_err(|e| e.to_string())?;
        crate::crypto::verify_with(key, crate::messages::TAG_VOTE, &payload, sig)
            .map_err(|_| format!("checker: signature of {} does not verify", j.0))?;
    }
    if signers.len() < needed {
        return Err(format!("checker: {} distinct signers, a quorum of {n} needs {needed}", signers.len()));
    }
    Ok(())
}

/// Runs one seed.
pub fn run(cfg: SimConfig) -> SimReport {
    Sim::new(cfg).run()
}
