//! Deterministic simulator: n real [`Core`]s on a seeded, faulty network with a
//! virtual clock (enabled by the `sim` feature).
//!
//! One seed fixes everything: fault parameters, message delays, losses,
//! duplicates, partitions, crashes, which validators are Byzantine and what they
//! do. All state lives in `BTreeMap`s and `Vec`s, so the same seed replays the
//! same run bit for bit.
//!
//! * **Phase 1** (faults): loss, delay and reordering, duplication, partitions
//!   that heal, honest crashes with restart from the persisted [`SafetyState`] and
//!   the decided chain, and Byzantine validators (see [`Behaviour`]).
//! * **Phase 2** (healed): no loss, no partition, crashed nodes restarted. Every
//!   honest node must finalise `new_blocks_required` blocks beyond the highest
//!   height any honest node had at the heal, within `phase2_max_ms`.
//!
//! Invariants are checked on every action as it is executed, i.e. after every
//! step: agreement, validity, certificate integrity, no honest double-sign,
//! persist-before-sign, no honest message rejected, evidence only against
//! Byzantine validators. See docs/consensus.md, "Simulator".

mod rng;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

pub use rng::Rng;

use crate::certificate::CommitCertificate;
use crate::core::{Action, Config, Core, Event, TimeoutConfig};
use crate::crypto::{sha256, Hash32, SecretKey};
use crate::messages::{Proposal, SignedProposal, SignedVote, Vote, VoteKind};
use crate::safety::{check_sign, SafetyState, SignCheck, SignStep, SignedSlot};
use crate::types::{BlockHash, Height, Round, ValidatorIndex, ValidatorSet};

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
}

/// Parameters of one simulation. Fault rates are drawn from the seed unless
/// `faults` is false.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub n: usize,
    /// Number of Byzantine validators (at most f unless `allow_excess_byzantine`).
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
    /// Print every event and action to stderr (set by `YRD_SIM_TRACE=1` in tests).
    pub trace: bool,
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
            trace: false,
        }
    }
}

/// An invariant the run broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    Agreement { height: Height, first: BlockHash, second: BlockHash, node: usize },
    Validity { height: Height, block: BlockHash, node: usize, reason: &'static str },
    Certificate { height: Height, node: usize, error: String },
    DoubleSign { validator: usize, first: SignedSlot, second: SignedSlot },
    SignedBeforePersist { validator: usize, slot: SignedSlot },
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
}

/// How to replay a seed of one of the `consensus/tests/simulation.rs` tests.
pub fn replay_hint(seed: u64, test: &str) -> String {
    format!("replay with: YRD_SIM_SEED={seed} cargo test -p yrd-consensus --test simulation {test} -- --nocapture")
}

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
    Restart { node: usize },
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
    key: SecretKey,
    verified_before: u64,
    made_before: u64,
    /// Crash right after the next PersistSafety.
    torn_crash: bool,
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
    set: ValidatorSet,
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
    /// Every slot an honest validator released a signature for.
    signed: BTreeMap<(usize, Height, Round, SignStep), SignedSlot>,
    /// Split-brain plan of the colluding Byzantine validators.
    splits: BTreeMap<(Height, Round), (BlockHash, BlockHash)>,
    /// Honest validators on side B of the split (the rest are side A).
    side_b: BTreeSet<usize>,
    heal_target: Option<u64>,
    healed_at: u64,
    report: SimReport,
}

impl Sim {
    pub fn new(cfg: SimConfig) -> Sim {
        let mut rng = Rng::new(cfg.seed);
        let keys: Vec<SecretKey> = (0..cfg.n).map(|i| SecretKey::from_seed(format!("sim-{i}").as_bytes())).collect();
        let set = ValidatorSet::new(keys.iter().map(|k| k.public()).collect()).expect("distinct keys");
        let f = set.max_faulty();
        assert!(cfg.allow_excess_byzantine || cfg.byzantine <= f, "{} Byzantine of {} exceeds f = {f}", cfg.byzantine, cfg.n);
        assert!(cfg.byzantine <= cfg.n);
        // Which validators are Byzantine, and how.
        let mut order: Vec<usize> = (0..cfg.n).collect();
        for i in (1..order.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            order.swap(i, j);
        }
        let byz: BTreeMap<usize, Behaviour> = order[..cfg.byzantine]
            .iter()
            .map(|&i| {
                let b = cfg.behaviour.unwrap_or_else(|| match rng.below(3) {
                    0 => Behaviour::Silent,
                    1 => Behaviour::Split,
                    _ => Behaviour::Chaos,
                });
                (i, b)
            })
            .collect();
        let honest: Vec<usize> = (0..cfg.n).filter(|i| !byz.contains_key(i)).collect();
        let side_b: BTreeSet<usize> = honest.iter().copied().filter(|_| rng.chance(500)).collect();
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
        let nodes = keys
            .into_iter()
            .enumerate()
            .map(|(i, key)| Node {
                core: None,
                incarnation: 0,
                disk: Disk::default(),
                byz: byz.get(&i).copied(),
                key,
                verified_before: 0,
                made_before: 0,
                torn_crash: false,
            })
            .collect();
        let report = SimReport { seed: cfg.seed, byzantine: byz.into_iter().collect(), ..SimReport::default() };
        Sim {
            cfg,
            rng,
            chain,
            set,
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
            splits: BTreeMap::new(),
            side_b,
            heal_target: None,
            healed_at: 0,
            report,
        }
    }

    fn honest(&self) -> Vec<usize> {
        (0..self.cfg.n).filter(|i| self.nodes[*i].byz.is_none()).collect()
    }

    fn push(&mut self, at: u64, ev: SimEvent) {
        self.seq += 1;
        self.queue.insert((at, self.seq), ev);
    }

    fn config_for(&self, i: usize) -> Config {
        Config { chain: self.chain, validators: self.set.clone(), me: Some(ValidatorIndex(i as u32)), timeouts: self.cfg.timeouts }
    }

    /// Runs to completion (a violation, liveness reached, or the time limit).
    pub fn run(mut self) -> SimReport {
        for i in 0..self.cfg.n {
            self.boot(i);
        }
        // Phase-1 fault schedule.
        if self.cfg.faults {
            let p1 = self.cfg.phase1_ms;
            let partitions = self.rng.below(3);
            for _ in 0..partitions {
                let at = self.rng.below(p1);
                self.push(at, SimEvent::PartitionStart);
                let end = at + self.rng.range(100, 1500);
                self.push(end, SimEvent::PartitionEnd);
            }
            let crashes = self.rng.below(4);
            for _ in 0..crashes {
                let node = self.rng.below(self.cfg.n as u64) as usize;
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
        for i in 0..self.cfg.n {
            let node = &self.nodes[i];
            let (v, m) = node.core.as_ref().map_or((0, 0), |c| (c.stats().signatures_verified, c.stats().signatures_made));
            self.report.signatures_verified += node.verified_before + v;
            self.report.signatures_made += node.made_before + m;
        }
        self.report
    }

    fn boot(&mut self, i: usize) {
        let node = &self.nodes[i];
        let next = Height(node.disk.chain.len() as u64 + 1);
        let core = Core::new(self.config_for(i), Some(node.key.clone()), node.disk.safety.clone(), next).expect("valid sim config");
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
                    Msg::Cert(c) => self.feed(to, Event::CommitCertified(c), Some(from)),
                    Msg::SyncRequest(h) => {
                        let chain = &self.nodes[to].disk.chain;
                        let certs: Vec<CommitCertificate> =
                            chain.iter().skip(h.0.saturating_sub(1) as usize).take(8).cloned().collect();
                        for c in certs {
                            self.send(to, from, Msg::Cert(c));
                        }
                    }
                }
            }
            SimEvent::Timer { node, incarnation, event } => {
                if self.nodes[node].incarnation == incarnation && self.nodes[node].core.is_some() {
                    self.feed(node, event, None);
                }
            }
            SimEvent::Crash { node, torn } => {
                if self.healed {
                    return;
                }
                if torn {
                    self.nodes[node].torn_crash = true;
                } else {
                    self.crash(node);
                }
            }
            SimEvent::Restart { node } => {
                self.nodes[node].torn_crash = false;
                if self.nodes[node].core.is_none() {
                    self.boot(node);
                }
            }
            SimEvent::PartitionStart => {
                if !self.healed {
                    let sides: Vec<bool> = (0..self.cfg.n).map(|_| self.rng.chance(500)).collect();
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
                for i in 0..self.cfg.n {
                    if self.nodes[i].core.is_none() {
                        self.boot(i);
                    }
                }
                let top = self.honest().iter().map(|i| self.nodes[*i].disk.chain.len() as u64).max().unwrap_or(0);
                self.heal_target = Some(top + self.cfg.new_blocks_required);
            }
        }
    }

    fn crash(&mut self, node: usize) {
        self.nodes[node].torn_crash = false;
        if let Some(core) = self.nodes[node].core.take() {
            self.nodes[node].verified_before += core.stats().signatures_verified;
            self.nodes[node].made_before += core.stats().signatures_made;
            self.nodes[node].incarnation += 1;
            self.report.crashes += 1;
        }
    }

    fn send(&mut self, from: usize, to: usize, msg: Msg) {
        if from == to {
            return;
        }
        self.report.messages_sent += 1;
        if let Some(sides) = &self.net.partition {
            if sides[from] != sides[to] {
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
        for to in 0..self.cfg.n {
            self.send(from, to, msg.clone());
        }
    }

    /// Hands `event` to node `i` and executes the resulting actions in order.
    fn feed(&mut self, i: usize, event: Event, from: Option<usize>) {
        let Some(core) = self.nodes[i].core.as_mut() else { return };
        if self.cfg.trace {
            eprintln!("{:>7} n{i} h{} r{} {:?} <- {:?} {:?}", self.now, core.height().0, core.round().0, core.step(), from, event);
        }
        let actions = core.handle(event);
        for action in actions {
            if self.cfg.trace {
                eprintln!("{:>7} n{i}   -> {:?}", self.now, action);
            }
            self.execute(i, action, from);
            if self.report.violation.is_some() || self.nodes[i].core.is_none() {
                return; // a violation, or a torn crash dropped the remaining actions
            }
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

    fn execute(&mut self, i: usize, action: Action, from: Option<usize>) {
        let byz = self.nodes[i].byz;
        match action {
            Action::PersistSafety(s) => {
                self.nodes[i].disk.safety = s;
                if self.nodes[i].torn_crash && !self.healed {
                    self.crash(i);
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
                    self.check_signature_release(i, slot);
                    self.broadcast(i, Msg::Proposal(p));
                }
                Some(b) => self.byzantine_proposal(i, b, p),
            },
            Action::BroadcastVote(v) => match byz {
                None => {
                    if v.vote.validator.0 as usize == i {
                        let step = match v.vote.kind {
                            VoteKind::Prevote => SignStep::Prevote,
                            VoteKind::Precommit => SignStep::Precommit,
                        };
                        let slot = SignedSlot { height: v.vote.height, round: v.vote.round, step, value: v.vote.value, pol_round: None };
                        self.check_signature_release(i, slot);
                    }
                    self.broadcast(i, Msg::Vote(v));
                }
                Some(b) => self.byzantine_vote(i, b, v),
            },
            Action::ScheduleTimeout { timeout, duration_ms } => {
                let incarnation = self.nodes[i].incarnation;
                self.push(self.now + duration_ms, SimEvent::Timer { node: i, incarnation, event: Event::Timeout(timeout) });
            }
            Action::RequestProposal { height, round } => {
                let valid = !(byz == Some(Behaviour::Chaos) && self.rng.chance(400));
                let value = self.new_block(height, valid, &[i as u8]);
                // Building a block takes the node a little time.
                let incarnation = self.nodes[i].incarnation;
                let at = self.now + self.rng.range(1, 10);
                self.push(at, SimEvent::Timer { node: i, incarnation, event: Event::ProposalValue { height, round, value } });
            }
            Action::Commit(cert) => {
                if byz.is_none() {
                    self.check_commit(i, &cert);
                }
                let h = cert.height;
                let disk = &mut self.nodes[i].disk;
                if h.0 == disk.chain.len() as u64 + 1 {
                    disk.chain.push(cert);
                }
                let len = disk.chain.len() as u64;
                if byz.is_none() {
                    self.report.max_height = self.report.max_height.max(len);
                }
                // Storing the block takes a little time; a crash before `Committed`
                // restarts the node at the next height from its disk.
                let incarnation = self.nodes[i].incarnation;
                let at = self.now + self.rng.range(1, 5);
                self.push(at, SimEvent::Timer { node: i, incarnation, event: Event::Committed { height: h } });
            }
            Action::Evidence(e) => {
                self.report.evidence += 1;
                let accused = e.validator().0 as usize;
                if byz.is_none() && self.nodes.get(accused).is_some_and(|n| n.byz.is_none()) {
                    self.violate(Violation::FalseEvidence { accused, node: i });
                }
                if let Err(err) = e.verify(&self.chain, &self.set) {
                    self.violate(Violation::Certificate { height: e.height(), node: i, error: format!("evidence does not verify: {err}") });
                }
            }
            Action::PeerBehind { peer, height } => {
                if byz == Some(Behaviour::Silent) {
                    return;
                }
                let cert = self.nodes[i].disk.chain.get((height.0 as usize).wrapping_sub(1)).cloned();
                if let Some(c) = cert {
                    self.send(i, peer.0 as usize, Msg::Cert(c));
                }
            }
            Action::SyncNeeded { height, .. } => {
                if byz == Some(Behaviour::Silent) {
                    return;
                }
                self.broadcast(i, Msg::SyncRequest(height));
            }
            Action::Rejected(reason) => {
                if byz.is_none() {
                    if let Some(from) = from {
                        if self.nodes[from].byz.is_none() {
                            self.violate(Violation::HonestRejected { from, to: i, reason: reason.to_string() });
                        }
                    }
                }
            }
        }
    }

    /// No honest double-sign, and the signature was persisted before release.
    fn check_signature_release(&mut self, i: usize, slot: SignedSlot) {
        match check_sign(&self.nodes[i].disk.safety, &slot) {
            SignCheck::SameMessage | SignCheck::Regresses { .. } => {}
            SignCheck::Fresh | SignCheck::Conflicts { .. } => {
                self.violate(Violation::SignedBeforePersist { validator: i, slot });
            }
        }
        let key = (i, slot.height, slot.round, slot.step);
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

    fn check_commit(&mut self, i: usize, cert: &CommitCertificate) {
        let h = cert.height;
        if let Err(e) = cert.verify(&self.chain, &self.set, h, &cert.block_hash) {
            self.violate(Violation::Certificate { height: h, node: i, error: e.to_string() });
            return;
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

    // ------------------------------------------------------------ Byzantine

    fn sign_vote(&self, i: usize, vote: Vote) -> SignedVote {
        vote.sign(&self.nodes[i].key).expect("small vote encodes")
    }

    fn sign_proposal(&self, i: usize, p: Proposal) -> SignedProposal {
        p.sign(&self.nodes[i].key).expect("small proposal encodes")
    }

    fn byzantine_proposal(&mut self, i: usize, b: Behaviour, p: SignedProposal) {
        match b {
            Behaviour::Silent => {}
            Behaviour::Split => {
                let (h, r) = (p.proposal.height, p.proposal.round);
                let other = self.new_block(h, true, b"split");
                self.splits.insert((h, r), (p.proposal.value, other));
                let q = self.sign_proposal(i, Proposal { value: other, pol_round: None, ..p.proposal.clone() });
                for to in 0..self.cfg.n {
                    let msg = if self.side_b.contains(&to) { q.clone() } else { p.clone() };
                    self.send(i, to, Msg::Proposal(msg));
                }
            }
            Behaviour::Chaos => {
                let h = p.proposal.height;
                match self.rng.below(6) {
                    0 | 1 => self.broadcast(i, Msg::Proposal(p)),
                    2 => {
                        // Equivocate: a different valid block to each recipient.
                        for to in 0..self.cfg.n {
                            let v = self.new_block(h, true, b"chaos-eq");
                            let q = self.sign_proposal(i, Proposal { value: v, ..p.proposal.clone() });
                            self.send(i, to, Msg::Proposal(q));
                        }
                    }
                    3 => {
                        // A claimed proof of lock that does not exist.
                        if p.proposal.round.0 > 0 {
                            let pol = Round(self.rng.below(u64::from(p.proposal.round.0)) as u32);
                            let q = self.sign_proposal(i, Proposal { pol_round: Some(pol), ..p.proposal.clone() });
                            self.broadcast(i, Msg::Proposal(q));
                        }
                    }
                    4 => {
                        let mut q = p;
                        q.signature.0[7] ^= 0x10;
                        self.broadcast(i, Msg::Proposal(q));
                    }
                    _ => {
                        let v = Hash32(self.rng.next_u64().to_be_bytes().repeat(4).try_into().unwrap_or([0; 32]));
                        let q = self.sign_proposal(i, Proposal { value: v, ..p.proposal.clone() });
                        self.broadcast(i, Msg::Proposal(q));
                    }
                }
            }
        }
    }

    fn byzantine_vote(&mut self, i: usize, b: Behaviour, sv: SignedVote) {
        if sv.vote.validator.0 as usize != i {
            // Re-broadcast of someone else's vote (proof of lock): pass it on.
            if b != Behaviour::Silent {
                self.broadcast(i, Msg::Vote(sv));
            }
            return;
        }
        match b {
            Behaviour::Silent => {}
            Behaviour::Split => {
                let v = &sv.vote;
                match self.splits.get(&(v.height, v.round)).copied() {
                    Some((a, bb)) => {
                        let va = self.sign_vote(i, Vote { value: Some(a), ..v.clone() });
                        let vb = self.sign_vote(i, Vote { value: Some(bb), ..v.clone() });
                        for to in 0..self.cfg.n {
                            let msg = if self.side_b.contains(&to) { vb.clone() } else { va.clone() };
                            self.send(i, to, Msg::Vote(msg));
                        }
                    }
                    None => self.broadcast(i, Msg::Vote(sv)),
                }
            }
            Behaviour::Chaos => self.chaos_vote(i, sv),
        }
    }

    fn chaos_vote(&mut self, i: usize, sv: SignedVote) {
        let v = sv.vote.clone();
        match self.rng.below(10) {
            0..=2 => self.broadcast(i, Msg::Vote(sv)),
            3 => {
                // Equivocate: per recipient, the real vote, nil, or another block.
                let known: Vec<BlockHash> =
                    self.blocks.iter().filter(|(_, b)| b.height == v.height).map(|(h, _)| *h).collect();
                for to in 0..self.cfg.n {
                    let value = match self.rng.below(3) {
                        0 => v.value,
                        1 => None,
                        _ => self.rng.pick(&known).copied(),
                    };
                    let m = self.sign_vote(i, Vote { value, ..v.clone() });
                    self.send(i, to, Msg::Vote(m));
                }
            }
            4 => {
                let mut m = sv;
                m.signature.0[3] ^= 1;
                self.broadcast(i, Msg::Vote(m));
            }
            5 => {
                // Impersonation: claims another validator, signed with our key.
                let victim = ValidatorIndex(self.rng.below(self.cfg.n as u64) as u32);
                let m = self.sign_vote(i, Vote { validator: victim, ..v });
                self.broadcast(i, Msg::Vote(m));
            }
            6 => {
                let unknown = sha256(&[b"unknown", &self.rng.next_u64().to_be_bytes()]);
                let m = self.sign_vote(i, Vote { value: Some(unknown), ..v });
                self.broadcast(i, Msg::Vote(m));
            }
            7 => {
                // Far-future round or height, or another chain.
                let m = match self.rng.below(3) {
                    0 => Vote { round: Round(v.round.0.saturating_add(self.rng.range(2, 5000) as u32)), ..v },
                    1 => Vote { height: Height(v.height.0 + self.rng.range(1, 1000)), ..v },
                    _ => Vote { chain: Hash32::ZERO, ..v },
                };
                let m = self.sign_vote(i, m);
                self.broadcast(i, Msg::Vote(m));
            }
            8 => {
                // A bogus certificate for the vote's height.
                let bogus = CommitCertificate {
                    height: v.height,
                    round: v.round,
                    block_hash: sha256(&[b"bogus", &self.rng.next_u64().to_be_bytes()]),
                    signatures: (0..self.set.quorum() as u32).map(|k| (ValidatorIndex(k), sv.signature)).collect(),
                };
                self.broadcast(i, Msg::Cert(bogus));
                self.broadcast(i, Msg::Vote(sv));
            }
            _ => {} // silence for this one
        }
    }
}

/// Runs one seed.
pub fn run(cfg: SimConfig) -> SimReport {
    Sim::new(cfg).run()
}
