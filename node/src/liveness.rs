//! Liveness an operator must see (docs/node.md, "Liveness and readiness"): whether a
//! quorum of validators is reachable, how long since this node last saw a block
//! become final, and whether it is catching up. Shown in `GET /v1/status`
//! (`liveness`), by `GET /health/ready`, and as a WARN when the chain stalls.
//!
//! The rules here are pure functions of their inputs; the driver (`node.rs`) feeds
//! them and the API reads what it stored.

use std::time::{Duration, Instant};

use serde::Serialize;
use yrd_consensus::crypto::PublicKey;

/// Blocks overdue this long are a stall worth a WARN (overdue: counted from when
/// a block was due — transactions waiting, or the idle chain's heartbeat passed;
/// `Driver::stalled_for`). Under load a block is final within tens of
/// milliseconds, so five seconds is many missed blocks — while a single slow
/// round (the proposer down: a 3 s propose timeout) does not warn.
pub const STALL_WARN_AFTER: Duration = Duration::from_secs(5);
/// While stalled, the WARN is repeated this often (not every tick).
pub const STALL_WARN_EVERY: Duration = Duration::from_secs(30);
/// A node this many blocks or more behind the best height it knows of is catching
/// up (not ready). One block behind is ordinary: the others may have committed a
/// moment sooner.
pub const CATCHING_UP_BLOCKS: u64 = 2;
/// A catch-up is logged (INFO, with its progress and its end) only from this many
/// blocks behind: a node a few blocks behind for a moment (a slow commit under
/// load) is ordinary and would only add noise. It ends, as [`CATCHING_UP_BLOCKS`]
/// says, when fewer than two blocks remain.
pub const CATCH_UP_LOG_BLOCKS: u64 = 8;
/// While catching up, the progress is logged this often.
pub const CATCH_UP_LOG_EVERY: Duration = Duration::from_secs(5);

/// What the driver knows, stored for the API (inside [`crate::health::Health`]).
#[derive(Debug, Clone, Default)]
pub struct Liveness {
    /// The highest final height this node knows exists: its own, or one the
    /// other validators are past (their consensus messages, blocks fetched by sync).
    pub best_known_height: u64,
    /// When this node last committed a block (or started).
    pub last_commit_at: Option<Instant>,
}

impl Liveness {
    /// Whether a node at `height` is catching up to [`Self::best_known_height`].
    pub fn catching_up(&self, height: u64) -> bool {
        self.best_known_height >= height + CATCHING_UP_BLOCKS
    }
}

/// Validators reachable against the quorum, from this node's view of the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuorumView {
    /// Validators connected, counting this node if it is one.
    pub connected: usize,
    /// The quorum: n − f of the validators in force.
    pub needed: usize,
    /// n.
    pub validators: usize,
    /// Names of the validators not connected (this node excluded).
    pub missing: Vec<String>,
}

impl QuorumView {
    pub fn present(&self) -> bool {
        self.connected >= self.needed
    }
}

/// The quorum view of `validators` (name, key) in force, given the keys of the
/// connected peers and this node's own key.
pub fn quorum_view(validators: &[(String, PublicKey)], connected: &[PublicKey], me: &PublicKey) -> QuorumView {
    let n = validators.len();
    let f = n.saturating_sub(1) / 3;
    let mut up = 0;
    let mut missing = Vec::new();
    for (name, key) in validators {
        if key == me || connected.contains(key) {
            up += 1;
        } else {
            missing.push(name.clone());
        }
    }
    QuorumView { connected: up, needed: n - f, validators: n, missing }
}

/// The `liveness` object of `GET /v1/status`.
#[derive(Debug, Clone, Serialize)]
pub struct LivenessStatus {
    /// True when enough validators are connected for blocks to become final.
    pub quorum: bool,
    pub validators_connected: usize,
    pub validators_needed: usize,
    pub validators_missing: Vec<String>,
    /// Milliseconds since this node last committed a block (or started).
    pub last_block_age_ms: u64,
    /// The highest final height this node knows of.
    pub best_known_height: u64,
    pub catching_up: bool,
}

impl LivenessStatus {
    pub fn new(view: QuorumView, live: &Liveness, height: u64, now: Instant) -> LivenessStatus {
        LivenessStatus {
            quorum: view.present(),
            validators_connected: view.connected,
            validators_needed: view.needed,
            validators_missing: view.missing,
            last_block_age_ms: live.last_commit_at.map_or(0, |t| now.saturating_duration_since(t).as_millis() as u64),
            best_known_height: live.best_known_height.max(height),
            catching_up: live.catching_up(height),
        }
    }
}

/// Decides when a stall is logged.
#[derive(Debug, Default)]
pub struct StallMonitor {
    warned_at: Option<Instant>,
}

/// What to log after a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StallVerdict {
    /// Nothing to say.
    Quiet,
    /// No block final for the given time: WARN now.
    Warn(Duration),
    /// Blocks are final again after a stall that was warned about: INFO.
    Resumed,
}

impl StallMonitor {
    /// `overdue`: how long a block has been due and not committed here.
    pub fn check(&mut self, overdue: Duration, now: Instant) -> StallVerdict {
        if overdue < STALL_WARN_AFTER {
            return match self.warned_at.take() {
                Some(_) => StallVerdict::Resumed,
                None => StallVerdict::Quiet,
            };
        }
        let due = self.warned_at.is_none_or(|t| now.saturating_duration_since(t) >= STALL_WARN_EVERY);
        if due {
            self.warned_at = Some(now);
            StallVerdict::Warn(overdue)
        } else {
            StallVerdict::Quiet
        }
    }
}

/// Decides when a catch-up (a node far behind fetching blocks) is logged: its
/// start, its progress every [`CATCH_UP_LOG_EVERY`], its end.
#[derive(Debug, Default)]
pub struct CatchUpMonitor {
    /// Since when, from which height, and when the progress was last logged.
    current: Option<CatchUp>,
}

#[derive(Debug, Clone, Copy)]
struct CatchUp {
    started_at: Instant,
    from_height: u64,
    logged_at: Instant,
}

/// What to log after a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatchUpVerdict {
    /// Nothing to say.
    Quiet,
    /// Far behind: catching up starts (INFO with how far).
    Started,
    /// Still catching up; time to log the progress.
    Progress,
    /// Caught up, having started at `from_height` `took` ago.
    CaughtUp { from_height: u64, took: Duration },
}

impl CatchUpMonitor {
    /// `height`: this node's committed height; `best_known`: the highest final
    /// height it knows of.
    pub fn check(&mut self, height: u64, best_known: u64, now: Instant) -> CatchUpVerdict {
        let behind = best_known.saturating_sub(height);
        match self.current {
            None if behind >= CATCH_UP_LOG_BLOCKS => {
                self.current = Some(CatchUp { started_at: now, from_height: height, logged_at: now });
                CatchUpVerdict::Started
            }
            None => CatchUpVerdict::Quiet,
            Some(c) if behind < CATCHING_UP_BLOCKS => {
                self.current = None;
                CatchUpVerdict::CaughtUp { from_height: c.from_height, took: now.saturating_duration_since(c.started_at) }
            }
            Some(ref mut c) if now.saturating_duration_since(c.logged_at) >= CATCH_UP_LOG_EVERY => {
                c.logged_at = now;
                CatchUpVerdict::Progress
            }
            Some(_) => CatchUpVerdict::Quiet,
        }
    }
}

/// `height` as a share of `best_known`, in whole per cent (100 when nothing is known).
pub fn percent_of(height: u64, best_known: u64) -> u64 {
    if best_known == 0 {
        return 100;
    }
    (u128::from(height.min(best_known)) * 100 / u128::from(best_known)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> PublicKey {
        PublicKey([b; 32])
    }

    fn four() -> Vec<(String, PublicKey)> {
        ["shanghai", "jiangsu", "zhejiang", "anhui"].iter().enumerate().map(|(i, n)| (n.to_string(), key(i as u8))).collect()
    }

    #[test]
    fn two_of_four_validators_is_no_quorum_and_names_the_missing() {
        let v = four();
        let q = quorum_view(&v, &[key(1), key(2), key(3)], &key(0));
        assert_eq!((q.connected, q.needed, q.validators), (4, 3, 4));
        assert!(q.present() && q.missing.is_empty());
        let q = quorum_view(&v, &[key(1)], &key(0));
        assert_eq!((q.connected, q.needed), (2, 3));
        assert!(!q.present());
        assert_eq!(q.missing, vec!["zhejiang".to_string(), "anhui".to_string()]);
        // An observer (not a validator) counts only its peers.
        let q = quorum_view(&v, &[key(1), key(2)], &key(9));
        assert_eq!(q.connected, 2);
        assert!(!q.present());
        // One validator: itself is the quorum.
        let q = quorum_view(&v[..1], &[], &key(0));
        assert!(q.present());
    }

    #[test]
    fn a_stall_warns_after_five_seconds_then_every_thirty_and_says_when_it_ends() {
        let mut m = StallMonitor::default();
        let t0 = Instant::now();
        assert_eq!(m.check(Duration::from_secs(1), t0), StallVerdict::Quiet);
        assert_eq!(m.check(Duration::from_millis(4_999), t0), StallVerdict::Quiet);
        assert_eq!(m.check(Duration::from_secs(5), t0), StallVerdict::Warn(Duration::from_secs(5)));
        assert_eq!(m.check(Duration::from_secs(20), t0 + Duration::from_secs(15)), StallVerdict::Quiet);
        assert_eq!(m.check(Duration::from_secs(35), t0 + Duration::from_secs(30)), StallVerdict::Warn(Duration::from_secs(35)));
        assert_eq!(m.check(Duration::from_millis(10), t0 + Duration::from_secs(31)), StallVerdict::Resumed);
        assert_eq!(m.check(Duration::from_millis(10), t0 + Duration::from_secs(32)), StallVerdict::Quiet);
    }

    #[test]
    fn catching_up_is_two_blocks_or_more_behind() {
        let l = Liveness { best_known_height: 10, last_commit_at: None };
        assert!(!l.catching_up(10));
        assert!(!l.catching_up(9));
        assert!(l.catching_up(8));
        assert!(l.catching_up(0));
    }

    #[test]
    fn a_catch_up_is_logged_from_eight_behind_with_progress_every_five_seconds_until_under_two() {
        let mut m = CatchUpMonitor::default();
        let t0 = Instant::now();
        // A few blocks behind is ordinary: nothing.
        assert_eq!(m.check(10, 17, t0), CatchUpVerdict::Quiet);
        assert_eq!(m.check(10, 18, t0), CatchUpVerdict::Started);
        assert_eq!(m.check(12, 18, t0 + Duration::from_secs(4)), CatchUpVerdict::Quiet);
        assert_eq!(m.check(14, 30, t0 + Duration::from_secs(5)), CatchUpVerdict::Progress);
        assert_eq!(m.check(20, 30, t0 + Duration::from_secs(6)), CatchUpVerdict::Quiet);
        // Two behind is still catching up; one behind is done.
        assert_eq!(m.check(28, 30, t0 + Duration::from_secs(7)), CatchUpVerdict::Quiet);
        assert_eq!(
            m.check(29, 30, t0 + Duration::from_secs(8)),
            CatchUpVerdict::CaughtUp { from_height: 10, took: Duration::from_secs(8) }
        );
        assert_eq!(m.check(29, 30, t0 + Duration::from_secs(9)), CatchUpVerdict::Quiet);
        assert_eq!(m.check(29, 36, t0 + Duration::from_secs(9)), CatchUpVerdict::Quiet);
    }

    #[test]
    fn percent_of_is_whole_per_cent_and_never_above_100() {
        assert_eq!(percent_of(12, 80), 15);
        assert_eq!(percent_of(80, 80), 100);
        assert_eq!(percent_of(90, 80), 100);
        assert_eq!(percent_of(0, 0), 100);
        assert_eq!(percent_of(u64::MAX - 1, u64::MAX), 99);
    }
}
