//! Conditions an operator must see: a halt on a certified block that fails local
//! validation, and a clock that drifts from the other validators'. Shown in
//! `GET /v1/status`, as metrics and as log lines (docs/node.md, "Health").

use std::collections::VecDeque;
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

/// Offsets kept to estimate our clock against the other validators'.
pub const CLOCK_SAMPLES: usize = 15;
/// Our clock is reported wrong when the median offset is beyond this: half the
/// 30 s a proposal's timestamp may be ahead of our clock before we refuse it.
pub const CLOCK_WARN_MS: i64 = 15_000;
/// At most one clock warning per this long.
const CLOCK_WARN_EVERY: Duration = Duration::from_secs(60);

/// The offset of the other validators' clocks from ours, estimated from the
/// timestamps of blocks they proposed (`timestamp − our clock` when we first see
/// the block; the proposer stamps it when it builds it, so the figure also holds
/// the network and consensus delay, well under a second when healthy).
#[derive(Debug, Default)]
pub struct ClockMonitor {
    samples: VecDeque<i64>,
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
    /// Records `block timestamp − our clock` for a block another validator proposed.
    pub fn sample(&mut self, offset_ms: i64, now: Instant) -> ClockVerdict {
        if self.samples.len() == CLOCK_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(offset_ms);
        match self.offset_ms() {
            Some(o) if o.abs() > CLOCK_WARN_MS => {
                let warn = self.last_warn.is_none_or(|t| now.duration_since(t) >= CLOCK_WARN_EVERY);
                if warn {
                    self.last_warn = Some(now);
                }
                ClockVerdict::Drifted { offset_ms: o, warn }
            }
            _ => ClockVerdict::Ok,
        }
    }

    /// The median of the recent samples (the lower one of an even count; `None`
    /// before the first).
    pub fn offset_ms(&self) -> Option<i64> {
        if self.samples.is_empty() {
            return None;
        }
        let mut v: Vec<i64> = self.samples.iter().copied().collect();
        v.sort_unstable();
        Some(v[(v.len() - 1) / 2])
    }

    /// Whether our clock is within [`CLOCK_WARN_MS`] of the others' (true while unknown).
    pub fn ok(&self) -> bool {
        self.offset_ms().is_none_or(|o| o.abs() <= CLOCK_WARN_MS)
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
        assert_eq!(m.sample(120, t0), ClockVerdict::Ok);
        // One wild sample does not move the median.
        assert_eq!(m.sample(3_600_000, t0), ClockVerdict::Ok);
        assert_eq!(m.sample(-80, t0), ClockVerdict::Ok);
        assert_eq!(m.offset_ms(), Some(120));
        // Our clock an hour slow: every block looks an hour in the future.
        let mut warns = 0;
        for i in 0..CLOCK_SAMPLES as u64 {
            if let ClockVerdict::Drifted { offset_ms, warn } = m.sample(3_600_000 + i as i64, t0 + Duration::from_secs(i)) {
                assert!(offset_ms > 3_599_000);
                warns += warn as u32;
            }
        }
        assert_eq!(warns, 1, "one WARN per minute");
        assert!(!m.ok());
        assert!(matches!(m.sample(3_600_000, t0 + Duration::from_secs(61)), ClockVerdict::Drifted { warn: true, .. }));
        // Fixed: the window fills with good samples again.
        for _ in 0..CLOCK_SAMPLES {
            m.sample(50, t0);
        }
        assert!(m.ok());
    }
}
