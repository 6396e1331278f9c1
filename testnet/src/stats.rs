//! Pure helpers of the load client: pacing and percentiles.

use std::time::Duration;

/// How many transactions are due at `elapsed` into a run at `rate_per_s` that
/// has already sent `sent` and may send `total` in all: the whole-number part of
/// `rate × elapsed`, less what was sent, never beyond `total`. Calling it on every
/// tick keeps the long-run rate exact whatever the tick jitter: a late tick sends
/// more, and nothing is lost to rounding.
pub fn due(rate_per_s: f64, elapsed: Duration, sent: u64, total: u64) -> u64 {
    let target = (rate_per_s * elapsed.as_secs_f64()).floor();
    let target = if target.is_finite() && target > 0.0 {
        target as u64
    } else {
        0
    };
    target.min(total).saturating_sub(sent)
}

/// Transactions per request and the time between requests: `batch` if given
/// (capped at `max_batch`), else what is due in 10 ms; the interval is the time
/// `batch` transactions take at `rate_per_s`, kept within 10..=1000 ms.
pub fn pacing(rate_per_s: f64, batch: Option<usize>, max_batch: usize) -> (usize, Duration) {
    let batch = batch
        .unwrap_or_else(|| (rate_per_s / 100.0).ceil() as usize)
        .clamp(1, max_batch);
    let interval_s = (batch as f64 / rate_per_s.max(1e-9)).clamp(0.010, 1.0);
    (batch, Duration::from_secs_f64(interval_s))
}

/// The `p`-th percentile (0 < p ≤ 100) of `sorted` by the nearest-rank method:
/// the smallest value with at least p % of the values at or below it.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_nearest_rank() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[7.0], 50.0), Some(7.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&v, 0.1), Some(1.0));
        // Ten values: p99 is the largest, p50 the fifth.
        let w: Vec<f64> = (1..=10).map(|i| f64::from(i) * 10.0).collect();
        assert_eq!(percentile(&w, 50.0), Some(50.0));
        assert_eq!(percentile(&w, 99.0), Some(100.0));
        // 1000 values with 11 slow ones: the p99 sees a slow one, p50 does not.
        let mut x = vec![10.0; 989];
        x.extend(vec![900.0; 11]);
        assert_eq!(percentile(&x, 50.0), Some(10.0));
        assert_eq!(percentile(&x, 99.0), Some(900.0));
    }

    #[test]
    fn due_holds_the_rate_under_jittery_ticks() {
        // 5,000/s for 3 s with ticks between 5 and 25 ms: every transaction goes out,
        // never ahead of schedule, and at most one tick's worth late.
        let (rate, total) = (5000.0, 15_000u64);
        let mut sent = 0u64;
        let mut t = Duration::ZERO;
        let mut step = 0u64;
        while t < Duration::from_millis(3100) {
            let n = due(rate, t, sent, total);
            sent += n;
            assert!(
                sent as f64 <= rate * t.as_secs_f64() + 1e-9,
                "ahead of schedule at {t:?}"
            );
            let behind = rate * t.as_secs_f64() - sent as f64;
            assert!(behind < 1.0 || sent == total, "behind by {behind} at {t:?}");
            step = step
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            t += Duration::from_millis(5 + (step >> 33) % 21);
        }
        assert_eq!(sent, total);
        // Nothing more once done, nothing before the start.
        assert_eq!(due(rate, Duration::from_secs(10), total, total), 0);
        assert_eq!(due(rate, Duration::ZERO, 0, total), 0);
    }

    #[test]
    fn due_catches_up_after_a_stall() {
        // 1,000/s: nothing for 200 ms (a slow request), then the backlog is due at once.
        assert_eq!(due(1000.0, Duration::from_millis(10), 0, 10_000), 10);
        assert_eq!(due(1000.0, Duration::from_millis(210), 10, 10_000), 200);
        // Fractional rates accumulate: 0.5/s gives one every 2 s.
        assert_eq!(due(0.5, Duration::from_millis(1999), 0, 10), 0);
        assert_eq!(due(0.5, Duration::from_millis(2000), 0, 10), 1);
    }

    #[test]
    fn pacing_small_batches() {
        assert_eq!(pacing(1000.0, None, 2000), (10, Duration::from_millis(10)));
        assert_eq!(pacing(5000.0, None, 2000), (50, Duration::from_millis(10)));
        assert_eq!(
            pacing(5000.0, Some(100), 2000),
            (100, Duration::from_millis(20))
        );
        assert_eq!(pacing(10.0, None, 2000), (1, Duration::from_millis(100)));
        assert_eq!(pacing(1e6, Some(5000), 2000).0, 2000);
        assert_eq!(pacing(0.1, None, 2000).1, Duration::from_secs(1));
    }
}
