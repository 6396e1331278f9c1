//! Conditions an operator must see: a halt on a certified block that fails local
//! validation, and a clock that drifts from the other validators'. Shown in
//! `GET /v1/status`, as metrics and as log lines (docs/node.md, "Health").

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Why the node stopped following the chain: a block certified by a quorum fails
/// our own validation (a bug on one side, or more than f validators misbehaving;
/// docs/consensus.md, "A certified block we cannot validate").
#[derive(Debug, Clone, Serialize)]
pub struct Halt {
    pub height: u64,
    pub block_hash: String,
    pub reason: String,
    pub since_ms: u64,
}

/// Validators whose latest offset is kept (more than any validator set holds);
/// beyond it the lowest-indexed entry gives way.
pub const CLOCK_PROPOSERS_MAX: usize = 256;
/// Our clock is reported wrong when the median offset is beyond this: half the
/// 30 s a proposal's timestamp may be ahead of our clock before we refuse it.
pub const CLOCK_WARN_MS: i64 = 15_000;
/// Offsets are clamped to ± this (about 31 years): a timestamp is a proposer's
/// claim, any u64, and `timestamp − our clock` must not overflow.
pub const CLOCK_OFFSET_MAX_MS: i64 = 1_000_000_000_000;
/// At most one clock warning per this long.
const CLOCK_WARN_EVERY: Duration = Duration::from_secs(60);

/// `timestamp_ms − now_ms`, clamped to ±[`CLOCK_OFFSET_MAX_MS`]: defined for every
/// pair of u64 (a proposer may put any number in its block's timestamp).
pub fn clock_offset_ms(timestamp_ms: u64, now_ms: u64) -> i64 {
    let d = i128::from(timestamp_ms) - i128::from(now_ms);
    d.clamp(-i128::from(CLOCK_OFFSET_MAX_MS), i128::from(CLOCK_OFFSET_MAX_MS)) as i64
}

/// The offset of the other validators' clocks from ours, estimated from the
/// timestamps of blocks they proposed (`timestamp − our clock` when we first see
/// the block; the proposer stamps it when it builds it, so the figure also holds
/// the network and consensus delay, well under a second when healthy).
///
/// One sample per validator, its latest: the median is over validators, not over
/// proposals, so a validator that signs many proposals with a wild timestamp
/// moves it no more than one that signs one (with n = 4 a node sees three
/// others, and one liar cannot move the median of three).
#[derive(Debug, Default)]
pub struct ClockMonitor {
    latest: BTreeMap<u32, i64>,
    last_warn: Option<Instant>,
}

/// What the clock monitor concluded from a new sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockVerdict {
    Ok,
    /// Drifted beyond [`CLOCK_WARN_MS`]; `warn` is true when a WARN is due now.
    Drifted { offset_ms: i64, warn: bool },
}

impl ClockMonitor {
    /// Records `block timestamp − our clock` (see [`clock_offset_ms`]) for a block
    /// that validator `proposer` proposed, replacing its previous sample.
    pub fn sample(&mut self, proposer: u32, offset_ms: i64, now: Instant) -> ClockVerdict {
        let offset_ms = offset_ms.clamp(-CLOCK_OFFSET_MAX_MS, CLOCK_OFFSET_MAX_MS);
        if self.latest.len() >= CLOCK_PROPOSERS_MAX && !self.latest.contains_key(&proposer) {
            self.latest.pop_first();
        }
        self.latest.insert(proposer, offset_ms);
        match self.offset_ms() {
            Some(o) if o.unsigned_abs() > CLOCK_WARN_MS.unsigned_abs() => {
                let warn = self.last_warn.is_none_or(|t| now.duration_since(t) >= CLOCK_WARN_EVERY);
                if warn {
                    self.last_warn = Some(now);
                }
                ClockVerdict::Drifted { offset_ms: o, warn }
            }
            _ => ClockVerdict::Ok,
        }
    }

    /// The median of the validators' latest samples (the lower one of an even
    /// count; `None` before the first).
    pub fn offset_ms(&self) -> Option<i64> {
        if self.latest.is_empty() {
            return None;
        }
        let mut v: Vec<i64> = self.latest.values().copied().collect();
        v.sort_unstable();
        Some(v[(v.len() - 1) / 2])
    }

    /// Whether our clock is within [`CLOCK_WARN_MS`] of the others' (true while unknown).
    pub fn ok(&self) -> bool {
        self.offset_ms().is_none_or(|o| o.unsigned_abs() <= CLOCK_WARN_MS.unsigned_abs())
    }
}

/// The clock part of `GET /v1/status`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct ClockStatus {
    /// Median of `block timestamp − our clock` over the last blocks other
    /// validators proposed; positive when our clock is behind theirs.
    pub offset_ms: Option<i64>,
    /// False when the offset is beyond ±15 s: fix the clock (NTP); beyond ±30 s
    /// this node refuses the others' proposals (or they refuse ours).
    pub ok: bool,
}

/// Health shared with the API.
#[derive(Debug, Clone, Default)]
pub struct Health {
    pub halt: Option<Halt>,
    pub clock: Option<ClockStatus>,
    /// Quorum, last block and catching up (`liveness.rs`).
    pub liveness: crate::liveness::Liveness,
    /// The configured peers and where each stands (`net.rs`).
    pub configured_peers: Vec<crate::net::PeerDialStatus>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hour_slow_clock_is_reported_once_a_minute_and_the_median_ignores_outliers() {
        let mut m = ClockMonitor::default();
        let t0 = Instant::now();
        assert!(m.ok());
        assert_eq!(m.sample(1, 120, t0), ClockVerdict::Ok);
        // One wild validator does not move the median of three.
        assert_eq!(m.sample(2, 3_600_000, t0), ClockVerdict::Ok);
        assert_eq!(m.sample(3, -80, t0), ClockVerdict::Ok);
        assert_eq!(m.offset_ms(), Some(120));
        // Our clock an hour slow: every block looks an hour in the future.
        let mut warns = 0;
        for i in 0..30u64 {
            if let ClockVerdict::Drifted { offset_ms, warn } = m.sample(1 + (i % 3) as u32, 3_600_000 + i as i64, t0 + Duration::from_secs(i)) {
                assert!(offset_ms > 3_599_000);
                warns += warn as u32;
            }
        }
        assert_eq!(warns, 1, "one WARN per minute");
        assert!(!m.ok());
        assert!(matches!(m.sample(1, 3_600_000, t0 + Duration::from_secs(61)), ClockVerdict::Drifted { warn: true, .. }));
        // Fixed: the validators' next proposals are on time again.
        for v in 1..=3 {
            m.sample(v, 50, t0);
        }
        assert!(m.ok());
        assert_eq!(m.offset_ms(), Some(50));
    }

    #[test]
    fn one_validator_signing_many_wild_timestamps_counts_once() {
        let mut m = ClockMonitor::default();
        let t0 = Instant::now();
        m.sample(1, 100, t0);
        m.sample(2, -100, t0);
        m.sample(3, 40, t0);
        for i in 0..1_000 {
            m.sample(2, CLOCK_OFFSET_MAX_MS - i, t0);
        }
        assert_eq!(m.offset_ms(), Some(100), "the median of the three validators' latest");
        assert!(m.ok());
        // Bounded however many indices are claimed.
        for v in 0..10_000u32 {
            m.sample(v, 0, t0);
        }
        assert!(m.latest.len() <= CLOCK_PROPOSERS_MAX);
    }

    #[test]
    fn offsets_of_any_timestamp_are_defined_and_clamped() {
        // A timestamp near or past 2^63 once overflowed `ts as i64 - now as i64`
        // (overflow checks are on in release builds: the node panicked).
        let now = 1_790_000_000_000u64;
        for ts in [0, 1, now, now + 5, 1 << 63, (1 << 63) + now, u64::MAX - 1, u64::MAX] {
            let o = clock_offset_ms(ts, now);
            assert!(o.unsigned_abs() <= CLOCK_OFFSET_MAX_MS.unsigned_abs(), "{ts}: {o}");
            let mut m = ClockMonitor::default();
            let _ = m.sample(0, o, Instant::now());
            let _ = m.ok();
        }
        assert_eq!(clock_offset_ms(now + 5, now), 5);
        assert_eq!(clock_offset_ms(now - 7, now), -7);
        assert_eq!(clock_offset_ms(u64::MAX, 0), CLOCK_OFFSET_MAX_MS);
        assert_eq!(clock_offset_ms(0, u64::MAX), -CLOCK_OFFSET_MAX_MS);
        // Extreme raw offsets handed to the monitor are clamped too.
        let mut m = ClockMonitor::default();
        assert!(matches!(m.sample(0, i64::MIN, Instant::now()), ClockVerdict::Drifted { .. }));
        assert_eq!(m.offset_ms(), Some(-CLOCK_OFFSET_MAX_MS));
    }
}
