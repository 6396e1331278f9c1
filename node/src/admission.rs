//! Admission by queueing delay: a client's transactions are refused at once
//! (HTTP 503 `overloaded`, with a `Retry-After` hint) when the last of them would
//! wait longer than `mempool.max_wait_ms` before it is final, at the rate this
//! node has been finalising transactions lately.
//!
//! Why not only the mempool count: offered more than it can finalise, a chain
//! with a 50,000-transaction mempool queues 10–15 s of work at ~3,500/s, and every
//! accepted transaction waits that long (BENCHMARKS.md, "Overload"). Refusing
//! what cannot be served in time keeps throughput at capacity and the latency of
//! what was accepted bounded; the client learns at once and may retry later or
//! elsewhere.
//!
//! The expected wait of a new transaction is `(pending + incoming) / rate`, where
//! `pending` counts the mempool (on every validator it holds what all the others
//! admitted too: transactions are gossiped) and `rate` is what was committed in
//! the last [`RATE_WINDOW`]. A transaction leaves the mempool when its block is
//! committed, so that wait is the time to finality, not only to a proposal.
//! Below [`ALWAYS_ADMIT_TXS`] pending transactions nothing is refused for delay:
//! an idle or starting chain has no recent rate to go by, and a queue that short
//! drains in a block or two.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How far back the finalisation rate looks: several blocks at saturation (one
/// every 0.3–0.6 s) so one large or small block does not swing it, short enough
/// to follow a change of capacity (a validator down, another machine's load)
/// within seconds.
pub const RATE_WINDOW: Duration = Duration::from_secs(3);

/// Pending transactions below which nothing is refused for delay: one full batch
/// request (`MAX_BATCH`) always fits an empty queue, and a chain that has been
/// idle (no recent rate) is not refused its first load.
pub const ALWAYS_ADMIT_TXS: usize = 2000;

/// Longest `Retry-After` hint, seconds: past this a client should rather try
/// another node or look at the chain's health.
pub const MAX_RETRY_AFTER_S: u64 = 30;

/// Why a submission was refused for delay.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "node is overloaded: {pending} transactions pending and {incoming} more would wait about {expected_wait_ms} ms \
     to be final at the {rate_per_s:.0}/s finalised over the last {window_s} s, more than the {max_wait_ms} ms \
     admission bound (mempool.max_wait_ms); retry after {retry_after_s} s or submit to another node"
)]
pub struct Overloaded {
    pub pending: usize,
    pub incoming: usize,
    pub expected_wait_ms: u64,
    pub rate_per_s: f64,
    pub window_s: u64,
    pub max_wait_ms: u64,
    /// Seconds after which the queue should have drained below the bound.
    pub retry_after_s: u64,
}

/// Transactions committed over the last [`RATE_WINDOW`], and the refusal rule.
#[derive(Debug)]
pub struct DelayGate {
    /// `None`: admission by count only (`mempool.max_wait_ms = 0`).
    max_wait: Option<Duration>,
    /// `(when, how many)` per committed block within the window.
    commits: VecDeque<(Instant, u64)>,
    in_window: u64,
    started: Instant,
}

impl DelayGate {
    pub fn new(max_wait: Option<Duration>, now: Instant) -> DelayGate {
        DelayGate { max_wait, commits: VecDeque::new(), in_window: 0, started: now }
    }

    pub fn max_wait(&self) -> Option<Duration> {
        self.max_wait
    }

    fn expire(&mut self, now: Instant) {
        while let Some((t, n)) = self.commits.front().copied() {
            if now.saturating_duration_since(t) <= RATE_WINDOW {
                break;
            }
            self.commits.pop_front();
            self.in_window -= n;
        }
    }

    /// A block of `txs` transactions was committed at `now`.
    pub fn committed(&mut self, txs: usize, now: Instant) {
        self.expire(now);
        if txs > 0 {
            self.commits.push_back((now, txs as u64));
            self.in_window += txs as u64;
        }
    }

    /// Transactions finalised per second over the window (over the time since
    /// start while that is shorter).
    pub fn rate_per_s(&mut self, now: Instant) -> f64 {
        self.expire(now);
        let span = now.saturating_duration_since(self.started).min(RATE_WINDOW).as_secs_f64();
        if span <= 0.0 {
            return 0.0;
        }
        self.in_window as f64 / span
    }

    /// Whether `incoming` more transactions may join `pending` ones.
    pub fn check(&mut self, pending: usize, incoming: usize, now: Instant) -> Result<(), Overloaded> {
        let Some(max_wait) = self.max_wait else { return Ok(()) };
        let queue = pending.saturating_add(incoming);
        if queue <= ALWAYS_ADMIT_TXS {
            return Ok(());
        }
        let rate = self.rate_per_s(now);
        // With nothing finalised lately, a queue this long has no expected end.
        let wait_s = if rate > 0.0 { queue as f64 / rate } else { f64::INFINITY };
        if wait_s <= max_wait.as_secs_f64() {
            return Ok(());
        }
        let over_s = wait_s - max_wait.as_secs_f64();
        Err(Overloaded {
            pending,
            incoming,
            expected_wait_ms: if wait_s.is_finite() { (wait_s * 1000.0).round() as u64 } else { u64::MAX },
            rate_per_s: rate,
            window_s: RATE_WINDOW.as_secs(),
            max_wait_ms: max_wait.as_millis() as u64,
            retry_after_s: if over_s.is_finite() { (over_s.ceil() as u64).clamp(1, MAX_RETRY_AFTER_S) } else { MAX_RETRY_AFTER_S },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(x: u64) -> Duration {
        Duration::from_millis(x)
    }

    #[test]
    fn admits_short_queues_always_and_long_ones_only_within_the_bound() {
        let t0 = Instant::now();
        let mut g = DelayGate::new(Some(ms(1000)), t0);
        // Idle, just started: no rate, but a short queue is admitted.
        assert!(g.check(0, ALWAYS_ADMIT_TXS, t0).is_ok());
        // A long queue with nothing finalised has no expected end: refused.
        let e = g.check(ALWAYS_ADMIT_TXS, 1, t0 + ms(10)).unwrap_err();
        assert_eq!((e.expected_wait_ms, e.retry_after_s), (u64::MAX, MAX_RETRY_AFTER_S));
        // 3,000 per second finalised for 3 s: blocks of 900 every 300 ms.
        for i in 1..=10u64 {
            g.committed(900, t0 + ms(300 * i));
        }
        let now = t0 + ms(3000);
        let rate = g.rate_per_s(now);
        assert!((rate - 3000.0).abs() < 1.0, "{rate}");
        // 2,900 pending + 100: one second of work, admitted; 200 more is not.
        assert!(g.check(2900, 100, now).is_ok());
        let e = g.check(5500, 500, now).unwrap_err();
        assert_eq!((e.pending, e.incoming, e.expected_wait_ms, e.retry_after_s), (5500, 500, 2000, 1));
        assert!(e.to_string().contains("retry after 1 s"), "{e}");
        let e = g.check(20_000, 1, now).unwrap_err();
        assert_eq!(e.retry_after_s, 6, "{e:?}");
        // The rate follows the window: 4 s without commits and it is gone.
        assert_eq!(g.rate_per_s(now + ms(4000)), 0.0);
        assert!(g.check(3000, 1, now + ms(4000)).is_err());
        assert!(g.check(1000, 1, now + ms(4000)).is_ok());
    }

    #[test]
    fn a_zero_bound_means_count_only() {
        let t0 = Instant::now();
        let mut g = DelayGate::new(None, t0);
        assert!(g.check(1_000_000, 2000, t0).is_ok());
    }

    #[test]
    fn the_rate_counts_only_the_window_and_empty_blocks_add_nothing() {
        let t0 = Instant::now();
        let mut g = DelayGate::new(Some(ms(1000)), t0);
        g.committed(3000, t0 + ms(100));
        g.committed(0, t0 + ms(200));
        // Half a second after start: 3,000 over 0.5 s.
        assert!((g.rate_per_s(t0 + ms(500)) - 6000.0).abs() < 1.0);
        g.committed(1500, t0 + ms(3500));
        // At 4 s the first block (0.1 s) has left the 3-s window.
        assert!((g.rate_per_s(t0 + ms(4000)) - 500.0).abs() < 1.0);
    }
}
