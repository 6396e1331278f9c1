//! Admission by queueing delay: a client's transactions are refused at once
//! (HTTP 503 `overloaded`, with a `Retry-After` hint) while the oldest pending
//! transaction has already waited longer than the admission target: what is left
//! of `mempool.max_wait_ms` after three recent block times (at most half of it).
//!
//! Why not only the mempool count: offered more than it can finalise, a chain
//! with a 50,000-transaction mempool queues 10–15 s of work at ~3,500/s, and every
//! accepted transaction waits that long (BENCHMARKS.md, "Overload"). Refusing
//! what cannot be served in time keeps throughput at capacity and the latency of
//! what was accepted bounded; the client learns at once and may retry later or
//! elsewhere.
//!
//! Why the oldest one's wait (its *sojourn*, as in CoDel) and not a rate
//! estimate: the mempool is FIFO — blocks take the oldest pending transactions
//! first — so a transaction admitted now waits about as long as the oldest one
//! has waited so far. That is measured, not predicted. A first version divided the
//! queue by the rate committed over the last seconds; that rate is itself limited
//! by what the gate let in, so after a dip (one slow block) the gate admitted a
//! shorter queue, blocks got smaller, the measured rate stayed low and throughput
//! settled at half of capacity (BENCHMARKS.md, "Overload"). The sojourn does not
//! feed back that way: while the chain keeps up, the oldest transaction is young
//! and everything is admitted; once it falls behind, the oldest ages past the
//! target and new work is refused until the queue has drained — the queue settles
//! at about capacity × target, enough to fill every block.
//!
//! The target leaves room for the blocks: what is admitted when the oldest has
//! waited just under the target still waits for the block being finalised and
//! then for its own block and commit round. So the target is the bound less three
//! recent block times (the mean interval between the last blocks that carried
//! transactions, within [`RATE_WINDOW`]), never more than half the bound and
//! never less than a tenth; before two such blocks, half. At saturation on the
//! reference machine blocks take 200–350 ms, so the target settles near 0.1–0.4 s
//! and what is accepted is final within the bound (BENCHMARKS.md, "Overload").
//! The block time feeds back the stable way: a slower block lowers the target, the
//! queue and so the next blocks shrink, and blocks speed up again; and since the
//! verdict still waits for the head of the queue to age, a chain that keeps up is
//! never refused, however slow its blocks.
//!
//! A queue of at most [`ALWAYS_ADMIT_TXS`] after the request, or an empty one, is
//! never refused for delay: one batch request (up to `MAX_BATCH`) always fits an
//! empty queue, and a node whose chain is stalled still takes that much (it is
//! refused past it, since its oldest transaction only ages). A sudden burst after
//! an idle spell is bounded by the count limit and the batch size, not by this gate.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How far back the finalisation rate (status, metrics and the `Retry-After`
/// hint) looks: several blocks at saturation, short enough to follow a change of
/// capacity within seconds.
pub const RATE_WINDOW: Duration = Duration::from_secs(3);

/// A queue this long (after the request) is never refused for delay; neither is
/// an empty one, so one full batch request (`MAX_BATCH`) always fits.
pub const ALWAYS_ADMIT_TXS: usize = 500;

/// Recent block times taken off the bound to give the admission target.
pub const BLOCK_TIMES_RESERVED: u32 = 3;

/// Longest `Retry-After` hint, seconds: past this a client should rather try
/// another node or look at the chain's health.
pub const MAX_RETRY_AFTER_S: u64 = 30;

/// Why a submission was refused for delay.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "node is overloaded: the oldest of its {pending} pending transactions has waited {oldest_wait_ms} ms, more \
     than the {target_ms} ms admission target (mempool.max_wait_ms = {max_wait_ms} ms less three recent block times, at most half); {rate_per_s:.0}/s \
     finalised over the last {window_s} s; retry after {retry_after_s} s or submit to another node"
)]
pub struct Overloaded {
    pub pending: usize,
    pub incoming: usize,
    pub oldest_wait_ms: u64,
    pub target_ms: u64,
    pub rate_per_s: f64,
    pub window_s: u64,
    pub max_wait_ms: u64,
    /// Seconds after which the queue should have drained below the target.
    pub retry_after_s: u64,
}

/// The refusal rule, and the transactions committed over the last [`RATE_WINDOW`].
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

    /// The oldest pending transaction's wait above which clients are refused: the
    /// bound less [`BLOCK_TIMES_RESERVED`] recent block times, within a tenth and a
    /// half of the bound (half before two blocks with transactions were seen).
    pub fn target(&self) -> Option<Duration> {
        self.max_wait.map(|m| match self.block_time() {
            Some(b) => m.saturating_sub(b * BLOCK_TIMES_RESERVED).clamp(m / 10, m / 2),
            None => m / 2,
        })
    }

    /// Mean interval between the blocks with transactions committed within the
    /// window (`None` before two of them).
    pub fn block_time(&self) -> Option<Duration> {
        let (first, last) = (self.commits.front()?.0, self.commits.back()?.0);
        let gaps = self.commits.len().checked_sub(1).filter(|g| *g > 0)?;
        Some(last.saturating_duration_since(first) / gaps as u32)
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

    /// Whether `incoming` more transactions may join `pending` ones, the oldest of
    /// which arrived at `oldest` (`None`: nothing pending).
    pub fn check(&mut self, pending: usize, incoming: usize, oldest: Option<Instant>, now: Instant) -> Result<(), Overloaded> {
        self.expire(now);
        let (Some(max_wait), Some(target)) = (self.max_wait, self.target()) else { return Ok(()) };
        if pending == 0 || pending.saturating_add(incoming) <= ALWAYS_ADMIT_TXS {
            return Ok(());
        }
        let waited = oldest.map(|t| now.saturating_duration_since(t)).unwrap_or_default();
        if waited <= target {
            return Ok(());
        }
        let rate = self.rate_per_s(now);
        // The queue beyond what drains within the target, at the recent rate; with
        // nothing finalised lately it has no expected end.
        let excess_s = if rate > 0.0 { pending as f64 / rate - target.as_secs_f64() } else { f64::INFINITY };
        Err(Overloaded {
            pending,
            incoming,
            oldest_wait_ms: waited.as_millis() as u64,
            target_ms: target.as_millis() as u64,
            rate_per_s: rate,
            window_s: RATE_WINDOW.as_secs(),
            max_wait_ms: max_wait.as_millis() as u64,
            retry_after_s: if excess_s.is_finite() { (excess_s.ceil().max(1.0) as u64).min(MAX_RETRY_AFTER_S) } else { MAX_RETRY_AFTER_S },
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
    fn refuses_only_long_queues_whose_oldest_transaction_waited_past_the_target() {
        let t0 = Instant::now();
        let mut g = DelayGate::new(Some(ms(1000)), t0);
        assert_eq!(g.target(), Some(ms(500)));
        // A short queue is admitted however old its head: a stalled chain still
        // takes one batch.
        assert!(g.check(0, ALWAYS_ADMIT_TXS, None, t0).is_ok());
        assert!(g.check(ALWAYS_ADMIT_TXS - 1, 1, Some(t0), t0 + ms(60_000)).is_ok());
        // A long queue whose oldest waited up to the target: admitted, whatever
        // the rate says (nothing finalised yet here).
        assert!(g.check(40_000, 1000, Some(t0), t0 + ms(500)).is_ok());
        // Past the target, with nothing finalised: refused, and the hint is the
        // longest (no expected end).
        let e = g.check(ALWAYS_ADMIT_TXS, 1, Some(t0), t0 + ms(501)).unwrap_err();
        assert_eq!((e.oldest_wait_ms, e.target_ms, e.max_wait_ms, e.retry_after_s), (501, 500, 1000, MAX_RETRY_AFTER_S));
        // 3,000 per second finalised for 3 s: blocks of 900 every 300 ms.
        for i in 1..=10u64 {
            g.committed(900, t0 + ms(300 * i));
        }
        let now = t0 + ms(3000);
        assert!((g.rate_per_s(now) - 3000.0).abs() < 1.0);
        // Blocks every 300 ms: the target is the bound less three of them.
        assert_eq!((g.block_time(), g.target()), (Some(ms(300)), Some(ms(100))));
        // The oldest arrived 600 ms ago: refused; 9,000 pending drain in 3 s, 2.9 s
        // past the target: retry after 3 s.
        let e = g.check(9000, 500, Some(now - ms(600)), now).unwrap_err();
        assert_eq!((e.pending, e.incoming, e.oldest_wait_ms, e.retry_after_s), (9000, 500, 600, 3), "{e:?}");
        assert!(e.to_string().contains("retry after 3 s") && e.to_string().contains("mempool.max_wait_ms"), "{e}");
        // A queue within the target's drain gets the shortest hint, never 0.
        assert_eq!(g.check(2100, 1, Some(now - ms(600)), now).unwrap_err().retry_after_s, 1);
        // However long the queue, a head younger than the target is admitted: the
        // gate never starves a chain that keeps up (the rate plays no part in the
        // verdict).
        assert!(g.check(9000, 1000, Some(now - ms(100)), now).is_ok());
        assert!(g.check(9000, 1000, Some(now - ms(100)), now + ms(10_000)).is_err(), "the same head, 10 s later");
    }

    #[test]
    fn the_rate_never_decides_a_verdict() {
        // Property over a grid: the verdict depends only on the queue length and
        // the oldest one's wait, never on what was committed lately.
        let t0 = Instant::now();
        for committed in [0usize, 10, 5_000, 1_000_000] {
            let mut g = DelayGate::new(Some(ms(800)), t0);
            g.committed(committed, t0 + ms(1000));
            let now = t0 + ms(2000);
            for pending in [0usize, 1, 498, 499, 500, 2001, 50_000] {
                for waited in [0u64, 399, 400, 401, 5000] {
                    let verdict = g.check(pending, 1, Some(now - ms(waited)), now).is_ok();
                    let expected = pending < ALWAYS_ADMIT_TXS || waited <= 400;
                    assert_eq!(verdict, expected, "committed {committed} pending {pending} waited {waited}");
                }
            }
        }
    }

    #[test]
    fn the_target_leaves_three_block_times_within_a_tenth_and_a_half_of_the_bound() {
        let t0 = Instant::now();
        for (block_ms, target_ms) in [(10u64, 500u64), (100, 500), (200, 400), (250, 250), (300, 100), (400, 100), (2000, 100)] {
            let mut g = DelayGate::new(Some(ms(1000)), t0);
            assert_eq!(g.target(), Some(ms(500)), "before any block");
            g.committed(100, t0 + ms(10));
            assert_eq!(g.target(), Some(ms(500)), "one block gives no interval");
            // Empty blocks do not count as blocks that carried transactions.
            g.committed(0, t0 + ms(10 + block_ms / 2));
            g.committed(100, t0 + ms(10 + block_ms));
            assert_eq!(g.block_time(), Some(ms(block_ms)));
            assert_eq!(g.target(), Some(ms(target_ms)), "blocks every {block_ms} ms");
            // The verdict follows the target: a long queue whose head waited just
            // past it is refused, just under it admitted.
            let now = t0 + ms(10 + block_ms);
            assert!(g.check(5000, 1, Some(now - ms(target_ms)), now).is_ok());
            assert!(g.check(5000, 1, Some(now - ms(target_ms + 1)), now).is_err());
            // An empty queue takes a whole batch whatever the target.
            assert!(g.check(0, 2000, None, now).is_ok());
        }
        // Blocks older than the window no longer count: half again.
        let mut g = DelayGate::new(Some(ms(1000)), t0);
        g.committed(100, t0 + ms(100));
        g.committed(100, t0 + ms(500));
        assert_eq!(g.target(), Some(ms(100)));
        assert!(g.check(5000, 1, Some(t0 + ms(10_000) - ms(499)), t0 + ms(10_000)).is_ok());
        assert_eq!(g.target(), Some(ms(500)));
    }

    #[test]
    fn a_zero_bound_means_count_only() {
        let t0 = Instant::now();
        let mut g = DelayGate::new(None, t0);
        assert_eq!(g.target(), None);
        assert!(g.check(1_000_000, 2000, Some(t0), t0 + ms(3_600_000)).is_ok());
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
