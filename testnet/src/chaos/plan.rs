//! The fault schedule: a pure function of the seed and the options, so a run can
//! be printed up front (`--plan`) and repeated exactly. One RNG (SplitMix64, no
//! dependency whose stream could change under us) draws everything in a fixed
//! order: the kinds in seeded shuffled rounds (each round holds every enabled kind
//! once, so a window that fits one round fires every kind), then per fault its
//! start gap, duration, target nodes and parameter.

use std::fmt;

use serde::Serialize;

/// Shortest and longest time a fault lasts, ms: long enough for a round timeout
/// (a few seconds) to pass under it, short enough that a 2-minute window holds
/// a round of every kind.
pub const FAULT_MS: (u64, u64) = (4_000, 10_000);
/// Quiet time between one fault's end and the next one's start on the same
/// slot, ms: the chain gets to make progress in between.
pub const GAP_MS: (u64, u64) = (1_000, 3_000);
/// Clock jumps, seconds either way: from inside the 30 s "ahead" tolerance of
/// block timestamps to well beyond it (docs/node.md), both directions.
pub const CLOCK_JUMP_S: (i64, i64) = (5, 120);
/// One-way loss, percent of packets.
pub const LOSS_PCT: (u64, u64) = (20, 100);
/// Slow fsync: delay per call, ms.
pub const FSYNC_DELAY_MS: (u64, u64) = (50, 500);

/// What can go wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// SIGKILL, restart after the duration.
    Kill,
    /// SIGSTOP, SIGCONT after the duration.
    Stop,
    /// A minority of f nodes cut off from the rest (nft drop both ways).
    Partition,
    /// A single node cut off from every other.
    Isolate,
    /// One node's packets to one peer dropped with probability P (nft numgen).
    Loss,
    /// One node's wall clock jumps by ±S seconds (libfaketime), restored after.
    Clock,
    /// One node's data directory filled to the last byte, emptied after.
    DiskFull,
    /// One node's fsync / fdatasync sleep D ms per call (LD_PRELOAD shim).
    SlowFsync,
}

impl FaultKind {
    pub const ALL: [FaultKind; 8] = [
        FaultKind::Kill,
        FaultKind::Stop,
        FaultKind::Partition,
        FaultKind::Isolate,
        FaultKind::Loss,
        FaultKind::Clock,
        FaultKind::DiskFull,
        FaultKind::SlowFsync,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Stop => "stop",
            FaultKind::Partition => "partition",
            FaultKind::Isolate => "isolate",
            FaultKind::Loss => "loss",
            FaultKind::Clock => "clock",
            FaultKind::DiskFull => "disk-full",
            FaultKind::SlowFsync => "slow-fsync",
        }
    }

    pub fn parse(s: &str) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// Needs each node in its own network namespace.
    pub fn needs_namespaces(self) -> bool {
        matches!(self, FaultKind::Partition | FaultKind::Isolate | FaultKind::Loss)
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One scheduled fault.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fault {
    /// When it starts and how long it lasts, ms from the start of the window.
    pub at_ms: u64,
    pub duration_ms: u64,
    pub kind: FaultKind,
    /// The faulty nodes (indexes): the minority of a partition, the sender of a
    /// loss, the one node otherwise.
    pub nodes: Vec<usize>,
    /// The other end of a one-way loss.
    pub peer: Option<usize>,
    /// Loss percent, clock jump in seconds (signed), or fsync delay in ms.
    pub param: i64,
}

impl Fault {
    pub fn end_ms(&self) -> u64 {
        self.at_ms + self.duration_ms
    }

    /// `+12.3s kill AH for 6.1s` and the like.
    pub fn describe(&self, names: &[&str]) -> String {
        let who: Vec<&str> = self.nodes.iter().map(|&i| names.get(i).copied().unwrap_or("?")).collect();
        let who = who.join("+");
        let what = match self.kind {
            FaultKind::Kill => format!("SIGKILL {who}, restart"),
            FaultKind::Stop => format!("SIGSTOP {who}, SIGCONT"),
            FaultKind::Partition => format!("partition {who} from the rest"),
            FaultKind::Isolate => format!("isolate {who}"),
            FaultKind::Loss => format!(
                "drop {}% of {who} → {}",
                self.param,
                self.peer.and_then(|p| names.get(p).copied()).unwrap_or("?")
            ),
            FaultKind::Clock => format!("clock of {who} {:+} s", self.param),
            FaultKind::DiskFull => format!("fill the disk of {who}"),
            FaultKind::SlowFsync => format!("fsync of {who} +{} ms", self.param),
        };
        format!(
            "+{:>6.1}s  {:<10} {what}, for {:.1} s",
            self.at_ms as f64 / 1000.0,
            self.kind.name(),
            self.duration_ms as f64 / 1000.0
        )
    }
}

/// SplitMix64: tiny, fast, and its stream is fixed forever.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) (the relays' jitter).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `lo..=hi` (`lo` if `hi <= lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }

    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next_u64() % n as u64) as usize
    }

    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// What the schedule depends on (besides the seed).
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub validators: usize,
    /// How long faults are injected, ms (every fault ends inside the window).
    pub window_ms: u64,
    /// The kinds to draw from, in a fixed order.
    pub kinds: Vec<FaultKind>,
}

/// f = ⌊(n − 1)/3⌋: how many nodes may be faulty at once.
pub fn faults_tolerated(n: usize) -> usize {
    n.saturating_sub(1) / 3
}

/// The schedule for `seed`: faults in start order. At most f nodes are faulty at
/// any moment, and a node has one fault at a time: the plan keeps f slots, each
/// running faults back to back with a gap, each fault's nodes drawn from those
/// no other slot holds at that time.
pub fn plan(seed: u64, opts: &PlanOptions) -> Vec<Fault> {
    let mut rng = Rng::new(seed);
    let n = opts.validators;
    let f = faults_tolerated(n);
    if f == 0 || opts.kinds.is_empty() {
        return Vec::new();
    }
    let mut kinds_queue: Vec<FaultKind> = Vec::new();
    // Per slot: when it is free again, and the nodes it holds until then.
    let mut slots: Vec<(u64, Vec<usize>)> = vec![(0, Vec::new()); f];
    let mut out: Vec<Fault> = Vec::new();
    // Slots take turns in order of when they are free (ties: lowest index).
    loop {
        let s = (0..f).min_by_key(|&s| (slots[s].0, s)).unwrap_or(0);
        if kinds_queue.is_empty() {
            kinds_queue = opts.kinds.clone();
            rng.shuffle(&mut kinds_queue);
            kinds_queue.reverse();
        }
        let Some(&kind) = kinds_queue.last() else { break };
        let gap = rng.range(GAP_MS.0, GAP_MS.1);
        let duration = rng.range(FAULT_MS.0, FAULT_MS.1);
        // A partition takes the whole budget: it waits until every slot is free.
        let free_at = if kind == FaultKind::Partition {
            slots.iter().map(|x| x.0).max().unwrap_or(0)
        } else {
            slots[s].0
        };
        let at = free_at + gap;
        if at + duration > opts.window_ms {
            break;
        }
        kinds_queue.pop();
        // Nodes busy in another slot over [at, at + duration): any slot whose
        // current fault has not ended by `at` (slots only move forward, and a
        // slot's next fault avoids the nodes this one takes).
        let busy: Vec<usize> = (0..f)
            .filter(|&o| o != s && slots[o].0 > at)
            .flat_map(|o| slots[o].1.clone())
            .collect();
        let mut free: Vec<usize> = (0..n).filter(|i| !busy.contains(i)).collect();
        rng.shuffle(&mut free);
        let want = if kind == FaultKind::Partition { f } else { 1 };
        let nodes: Vec<usize> = free.iter().copied().take(want.min(free.len())).collect();
        let (peer, param) = match kind {
            FaultKind::Loss => {
                let others: Vec<usize> = (0..n).filter(|i| !nodes.contains(i)).collect();
                let p = others[rng.below(others.len())];
                (Some(p), rng.range(LOSS_PCT.0, LOSS_PCT.1) as i64)
            }
            FaultKind::Clock => {
                let mag = rng.range(CLOCK_JUMP_S.0 as u64, CLOCK_JUMP_S.1 as u64) as i64;
                let sign = if rng.below(2) == 0 { 1 } else { -1 };
                (None, sign * mag)
            }
            FaultKind::SlowFsync => (None, rng.range(FSYNC_DELAY_MS.0, FSYNC_DELAY_MS.1) as i64),
            _ => (None, 0),
        };
        out.push(Fault { at_ms: at, duration_ms: duration, kind, nodes: nodes.clone(), peer, param });
        if kind == FaultKind::Partition {
            for slot in slots.iter_mut() {
                *slot = (at + duration, Vec::new());
            }
        }
        slots[s] = (at + duration, nodes);
    }
    out.sort_by_key(|x| (x.at_ms, x.kind));
    out
}

/// The most nodes faulty at once in `faults` (for the tests and the summary).
pub fn max_concurrent_faulty(faults: &[Fault]) -> usize {
    let mut most = 0;
    for a in faults {
        let t = a.at_ms;
        let mut nodes: Vec<usize> = faults
            .iter()
            .filter(|b| b.at_ms <= t && t < b.end_ms())
            .flat_map(|b| b.nodes.clone())
            .collect();
        let all = nodes.len();
        nodes.sort_unstable();
        nodes.dedup();
        // A node with two faults at once would show up here as a duplicate.
        most = most.max(nodes.len().max(all));
    }
    most
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(n: usize, secs: u64) -> PlanOptions {
        PlanOptions { validators: n, window_ms: secs * 1000, kinds: FaultKind::ALL.to_vec() }
    }

    #[test]
    fn same_seed_same_plan_other_seed_other_plan() {
        for seed in [0u64, 1, 42, 0xDEAD_BEEF] {
            let a = plan(seed, &opts(4, 120));
            let b = plan(seed, &opts(4, 120));
            assert_eq!(a, b, "seed {seed}");
            assert!(!a.is_empty(), "seed {seed}");
        }
        assert_ne!(plan(1, &opts(4, 120)), plan(2, &opts(4, 120)));
    }

    #[test]
    fn at_most_f_faulty_and_inside_the_window() {
        for n in 4..=10 {
            for seed in 0..200u64 {
                let o = opts(n, 300);
                let p = plan(seed, &o);
                let f = faults_tolerated(n);
                assert!(max_concurrent_faulty(&p) <= f, "n {n} seed {seed}: {p:?}");
                for x in &p {
                    assert!(x.end_ms() <= o.window_ms, "seed {seed}");
                    assert!(!x.nodes.is_empty() && x.nodes.iter().all(|&i| i < n), "seed {seed}");
                    if x.kind == FaultKind::Loss {
                        let peer = x.peer.expect("a loss has a peer");
                        assert!(peer < n && !x.nodes.contains(&peer), "seed {seed}");
                    }
                }
            }
        }
    }

    #[test]
    fn two_minutes_fire_every_kind() {
        for seed in 0..100u64 {
            let p = plan(seed, &opts(4, 120));
            for k in FaultKind::ALL {
                assert!(p.iter().any(|x| x.kind == k), "seed {seed}: no {k} in {p:?}");
            }
        }
    }

    #[test]
    fn only_the_kinds_asked_for() {
        let o = PlanOptions { validators: 4, window_ms: 120_000, kinds: vec![FaultKind::Kill, FaultKind::Clock] };
        let p = plan(7, &o);
        assert!(p.iter().all(|x| matches!(x.kind, FaultKind::Kill | FaultKind::Clock)));
        assert!(p.iter().any(|x| x.kind == FaultKind::Kill) && p.iter().any(|x| x.kind == FaultKind::Clock));
    }

    #[test]
    fn concurrency_check_sees_overlaps() {
        // The checker of the property is itself able to fail.
        let f = |at, nodes: Vec<usize>| Fault { at_ms: at, duration_ms: 1000, kind: FaultKind::Kill, nodes, peer: None, param: 0 };
        assert_eq!(max_concurrent_faulty(&[f(0, vec![0]), f(500, vec![1])]), 2);
        assert_eq!(max_concurrent_faulty(&[f(0, vec![0]), f(500, vec![0])]), 2);
        assert_eq!(max_concurrent_faulty(&[f(0, vec![0]), f(1000, vec![1])]), 1);
    }

    #[test]
    fn kinds_parse_by_name() {
        for k in FaultKind::ALL {
            assert_eq!(FaultKind::parse(k.name()), Some(k));
        }
        assert_eq!(FaultKind::parse("meteor"), None);
    }
}
