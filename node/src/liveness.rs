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

/// No block final for this long is a stall worth a WARN. A live chain finalises a
/// block at least every second (an empty block after 1 s when idle, sooner under
/// load), so five seconds is five missed intervals — while a single slow round
/// (the proposer down: a 3 s propose timeout) does not warn.
pub const STALL_WARN_AFTER: Duration = Duration::from_secs(5);
/// While stalled, the WARN is repeated this often (not every tick).
pub const STALL_WARN_EVERY: Duration = Duration::from_secs(30);
/// A node this many blocks or more behind the best height it knows of is catching
/// up (not ready). One block behind is ordinary: the others may have committed a
/// moment sooner.
pub const CATCHING_UP_BLOCKS: u64 = 2;

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
    /// `since_commit`: time since the last block this node committed.
    pub fn check(&mut self, since_commit: Duration, now: Instant) -> StallVerdict {
        if since_commit < STALL_WARN_AFTER {
            return match self.warned_at.take() {
                Some(_) => StallVerdict::Resumed,
                None => StallVerdict::Quiet,
            };
        }
        let due = self.warned_at.is_none_or(|t| now.saturating_duration_since(t) >= STALL_WARN_EVERY);
        if due {
            self.warned_at = Some(now);
            StallVerdict::Warn(since_commit)
        } else {
            StallVerdict::Quiet
        }
    }
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
}
