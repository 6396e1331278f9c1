//! The plan of one run: the keys, which process holds which key from which
//! height, the validator set in force at every height, which processes are
//! Byzantine, and which stale keys the adversary holds.
//!
//! Reconfiguration ([`ReconfigConfig`]) draws changes at random effective
//! heights from the seed: **additions** (a new process, started as a non-member
//! that follows the chain), **removals** (the process may keep running; its key
//! goes to the adversary), **rotations** (the process restarts with a new key when
//! it reaches the effective height; the old key goes to the adversary) and
//! **re-additions** of a removed process under its old key. Every change keeps
//! the Byzantine members of the set in force at each height within that set's f,
//! and the set size within `min_size..=max_size`. The schedule is a function of
//! the height that every honest node is handed, as the ledger would derive it
//! (a change approved at block E − D takes effect at E, D ≥ 2).

use std::collections::{BTreeMap, BTreeSet};

use super::{Behaviour, Rng, SimConfig};
use crate::crypto::{PublicKey, SecretKey};
use crate::types::{Height, ValidatorIndex, ValidatorSet};

/// Position of a key in [`Plan::keys`].
pub(super) type KeyId = usize;

/// Largest set the simulator builds (DESIGN: any n from 1 to at least 16).
pub const SIM_MAX_SET_SIZE: usize = 16;

/// How the validator set changes during a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconfigConfig {
    /// Changes per run, drawn in `1..=max_changes`.
    pub max_changes: u64,
    /// D: a change approved at block E − D takes effect at height E. At least 2,
    /// so the sets of heights h and h + 1 are fixed by blocks up to h − 1.
    pub delay_blocks: u64,
    /// Effective heights are drawn in `D + 1 ..= D + spread_heights`.
    pub spread_heights: u64,
    /// Bounds of the set size (1 ..= 16).
    pub min_size: usize,
    pub max_size: usize,
    /// Negative control: hand every honest core, for each height, the set in
    /// force *before* the latest change (a node that verifies a height with the
    /// previous set). The checker must catch it.
    pub stale_sets: bool,
}

impl Default for ReconfigConfig {
    fn default() -> Self {
        ReconfigConfig {
            max_changes: 4,
            delay_blocks: 2,
            spread_heights: 5,
            min_size: 1,
            max_size: SIM_MAX_SET_SIZE,
            stale_sets: false,
        }
    }
}

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    Add,
    Remove,
    Rotate,
    Readd,
}

/// One change of the validator set, as planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The first height the new set is in force at.
    pub height: Height,
    /// The block whose commit completes the approvals (`height − D`).
    pub approved_at: Height,
    pub kind: ChangeKind,
    /// The process added, removed, re-added or rotated.
    pub process: usize,
    /// Set size after the change.
    pub size: usize,
}

/// The validator set in force from height `from` until the next epoch.
pub(super) struct Epoch {
    pub from: Height,
    pub set: ValidatorSet,
}

/// A key the adversary holds from `from` (the height it stopped being a
/// member) until `until` (re-added), if ever.
pub(super) struct StaleKey {
    pub key: KeyId,
    pub from: Height,
    pub until: Option<Height>,
    /// The epoch in which it was last a member, and its index there.
    pub old_epoch: usize,
    pub old_index: ValidatorIndex,
}

pub(super) struct Plan {
    pub keys: Vec<SecretKey>,
    pub publics: Vec<PublicKey>,
    pub key_of: BTreeMap<PublicKey, KeyId>,
    /// The process each key belongs to.
    pub key_process: Vec<usize>,
    /// Per process: the key it uses from each height on (ascending).
    pub process_keys: Vec<Vec<(Height, KeyId)>>,
    pub byzantine: Vec<Option<Behaviour>>,
    /// Processes that exist from the start (the initial set); later ones start as
    /// non-members at a time the simulator draws.
    pub initial_processes: usize,
    pub epochs: Vec<Epoch>,
    pub stale_keys: Vec<StaleKey>,
    pub changes: Vec<Change>,
    pub stale_sets: bool,
}

/// f = ⌊(n − 1) / 3⌋.
fn max_faulty(n: usize) -> usize {
    n.saturating_sub(1) / 3
}

impl Plan {
    pub fn new(cfg: &SimConfig, rng: &mut Rng) -> Plan {
        let mut plan = Plan {
            keys: Vec::new(),
            publics: Vec::new(),
            key_of: BTreeMap::new(),
            key_process: Vec::new(),
            process_keys: Vec::new(),
            byzantine: Vec::new(),
            initial_processes: cfg.n,
            epochs: Vec::new(),
            stale_keys: Vec::new(),
            changes: Vec::new(),
            stale_sets: cfg.reconfig.is_some_and(|r| r.stale_sets),
        };
        let members: Vec<KeyId> = (0..cfg.n).map(|_| plan.new_process(Height(1))).collect();
        // Which validators of the initial set are Byzantine, and how.
        let mut order: Vec<usize> = (0..cfg.n).collect();
        for i in (1..order.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            order.swap(i, j);
        }
        for &p in &order[..cfg.byzantine] {
            plan.byzantine[p] = Some(draw_behaviour(cfg, rng));
        }
        plan.push_epoch(Height(1), &members);
        if let Some(rc) = cfg.reconfig {
            plan.draw_changes(cfg, &rc, rng, members);
        }
        plan
    }

    fn new_key(&mut self, process: usize) -> KeyId {
        let id = self.keys.len();
        let key = SecretKey::from_seed(format!("sim-{id}").as_bytes());
        self.publics.push(key.public());
        self.key_of.insert(key.public(), id);
        self.keys.push(key);
        self.key_process.push(process);
        id
    }

    fn new_process(&mut self, from: Height) -> KeyId {
        let p = self.process_keys.len();
        self.byzantine.push(None);
        let k = self.new_key(p);
        self.process_keys.push(vec![(from, k)]);
        k
    }

    fn push_epoch(&mut self, from: Height, members: &[KeyId]) {
        let set = ValidatorSet::new(members.iter().map(|k| self.publics[*k]).collect()).expect("distinct sim keys");
        self.epochs.push(Epoch { from, set });
    }

    fn byzantine_members(&self, members: &[KeyId]) -> usize {
        members.iter().filter(|k| self.byzantine[self.key_process[**k]].is_some()).count()
    }

    fn draw_changes(&mut self, cfg: &SimConfig, rc: &ReconfigConfig, rng: &mut Rng, mut members: Vec<KeyId>) {
        assert!(rc.delay_blocks >= 2, "D must be at least 2");
        assert!(1 <= rc.min_size && rc.min_size <= rc.max_size && rc.max_size <= SIM_MAX_SET_SIZE);
        let count = rng.range(1, rc.max_changes.max(1));
        let heights: BTreeSet<u64> =
            (0..count).map(|_| rc.delay_blocks + 1 + rng.below(rc.spread_heights.max(1))).collect();
        let mut removed: BTreeSet<usize> = BTreeSet::new();
        for e in heights {
            let height = Height(e);
            let n = members.len();
            let byz = self.byzantine_members(&members);
            let readd: Vec<usize> = removed
                .iter()
                .copied()
                .filter(|p| self.byzantine[*p].is_none() || byz < max_faulty(n + 1))
                .collect();
            let mut kinds = vec![ChangeKind::Rotate];
            if n < rc.max_size {
                kinds.push(ChangeKind::Add);
                if !readd.is_empty() {
                    kinds.push(ChangeKind::Readd);
                }
            }
            if n > rc.min_size {
                kinds.push(ChangeKind::Remove);
            }
            let kind = *rng.pick(&kinds).unwrap_or(&ChangeKind::Rotate);
            let epoch = self.epochs.len() - 1;
            let process = match kind {
                ChangeKind::Add => {
                    let k = self.new_process(height);
                    let p = self.key_process[k];
                    // f of the set in force are Byzantine: fill up to the new f.
                    if cfg.byzantine > 0 && byz < max_faulty(n + 1) {
                        self.byzantine[p] = Some(draw_behaviour(cfg, rng));
                    }
                    let pos = rng.below(n as u64 + 1) as usize;
                    members.insert(pos, k);
                    p
                }
                ChangeKind::Readd => {
                    let p = *rng.pick(&readd).unwrap_or(&readd[0]);
                    removed.remove(&p);
                    let k = self.current_key(p);
                    if let Some(s) = self.stale_keys.iter_mut().find(|s| s.key == k && s.until.is_none()) {
                        s.until = Some(height);
                    }
                    let pos = rng.below(n as u64 + 1) as usize;
                    members.insert(pos, k);
                    p
                }
                ChangeKind::Remove => {
                    // Removing an honest member must not leave more than the new f
                    // Byzantine ones.
                    let must_be_byzantine = byz > max_faulty(n - 1);
                    let candidates: Vec<usize> = (0..n)
                        .filter(|i| !must_be_byzantine || self.byzantine[self.key_process[members[*i]]].is_some())
                        .collect();
                    let pos = *rng.pick(&candidates).unwrap_or(&0);
                    let k = members.remove(pos);
                    self.stale_keys.push(StaleKey {
                        key: k,
                        from: height,
                        until: None,
                        old_epoch: epoch,
                        old_index: ValidatorIndex(pos as u32),
                    });
                    let p = self.key_process[k];
                    removed.insert(p);
                    p
                }
                ChangeKind::Rotate => {
                    let pos = rng.below(n as u64) as usize;
                    let old = members[pos];
                    let p = self.key_process[old];
                    let k = self.new_key(p);
                    self.process_keys[p].push((height, k));
                    members[pos] = k;
                    self.stale_keys.push(StaleKey {
                        key: old,
                        from: height,
                        until: None,
                        old_epoch: epoch,
                        old_index: ValidatorIndex(pos as u32),
                    });
                    p
                }
            };
            assert!(self.byzantine_members(&members) <= max_faulty(members.len()), "plan broke the f bound");
            self.changes.push(Change {
                height,
                approved_at: Height(e - rc.delay_blocks),
                kind,
                process,
                size: members.len(),
            });
            self.push_epoch(height, &members);
        }
    }

    fn current_key(&self, process: usize) -> KeyId {
        self.process_keys[process].last().map_or(0, |(_, k)| *k)
    }

    /// The key `process` uses at `height`.
    pub fn key_at(&self, process: usize, height: Height) -> KeyId {
        let ks = &self.process_keys[process];
        ks.iter().rev().find(|(from, _)| *from <= height).or(ks.first()).map_or(0, |(_, k)| *k)
    }

    fn epoch_index(&self, height: Height) -> usize {
        self.epochs.iter().rposition(|e| e.from <= height).unwrap_or(0)
    }

    /// The set in force at `height` (the truth, used by the checker).
    pub fn set_at(&self, height: Height) -> &ValidatorSet {
        &self.epochs[self.epoch_index(height)].set
    }

    /// The set an honest core is handed for `height`: the truth, or with
    /// `stale_sets` the set in force before the latest change.
    pub fn handed_set(&self, height: Height) -> &ValidatorSet {
        let e = self.epoch_index(height);
        let e = if self.stale_sets { e.saturating_sub(1) } else { e };
        &self.epochs[e].set
    }

    /// The height of the last change (1 if none).
    pub fn last_change(&self) -> Height {
        self.epochs.last().map_or(Height(1), |e| e.from)
    }

    /// True if the adversary holds `key` at `height`: a stale key, or the key of
    /// a Byzantine process.
    pub fn adversary_holds(&self, key: KeyId, height: Height) -> bool {
        self.byzantine[self.key_process[key]].is_some()
            || self.stale_keys.iter().any(|s| s.key == key && s.from <= height && s.until.is_none_or(|u| height < u))
    }

    pub fn epoch(&self, i: usize) -> &Epoch {
        &self.epochs[i]
    }
}

fn draw_behaviour(cfg: &SimConfig, rng: &mut Rng) -> Behaviour {
    cfg.behaviour.unwrap_or_else(|| match rng.below(3) {
        0 => Behaviour::Silent,
        1 => Behaviour::Split,
        _ => Behaviour::Chaos,
    })
}
