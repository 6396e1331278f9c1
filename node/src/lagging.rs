//! Which lagging validators are sent a certified block, and when.
//!
//! A validator whose messages are for a height we have finished is probably
//! behind; after [`PEER_BEHIND_GRACE`] at that height it is sent the block it
//! lacks (gossip `Certified`). Most such messages are late votes from a validator
//! that is finishing the height itself, hence the grace. A validator that is
//! really behind also fetches blocks itself (sync), so a push is a shortcut, and
//! pushing the *same* block again soon helps nobody: a validator that sends old
//! votes with ever higher rounds (a broken or Byzantine one) would otherwise make
//! every node push it a whole block every grace period. So a block is pushed to a
//! validator at most once per [`PUSH_REPEAT`] unless that validator has moved to a
//! later height since; catching up height by height is pushed as before.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use yrd_consensus::crypto::PublicKey;
use yrd_consensus::types::Height;

/// How long a validator must stay at a finished height before it is sent the
/// certified block of that height.
pub const PEER_BEHIND_GRACE: Duration = Duration::from_secs(2);

/// A validator sent the block of a height is not sent that height or a lower one
/// again within this time.
pub const PUSH_REPEAT: Duration = Duration::from_secs(30);

/// Validators seen behind, and the pushes made to them.
#[derive(Debug, Default)]
pub struct Lagging {
    /// Validators seen at a finished height: (lowest such height, when to look again).
    behind: BTreeMap<PublicKey, (Height, Instant)>,
    /// The last push to each validator: (height, when).
    pushed: BTreeMap<PublicKey, (Height, Instant)>,
}

impl Lagging {
    /// `peer` was seen at `height`, a height we have finished.
    pub fn seen_behind(&mut self, peer: PublicKey, height: Height, now: Instant) {
        let e = self.behind.entry(peer).or_insert((height, now + PEER_BEHIND_GRACE));
        e.0 = e.0.min(height);
    }

    /// The pushes due at `now`: each validator seen behind at least the grace
    /// ago, for which `still_behind` holds, and not sent that height (or a lower
    /// one) within [`PUSH_REPEAT`]. The caller sends them; they count as sent.
    pub fn due(&mut self, now: Instant, still_behind: impl Fn(&PublicKey, Height) -> bool) -> Vec<(PublicKey, Height)> {
        self.pushed.retain(|_, (_, at)| now.saturating_duration_since(*at) < PUSH_REPEAT);
        let ripe: Vec<(PublicKey, Height)> =
            self.behind.iter().filter(|(_, (_, at))| *at <= now).map(|(v, (h, _))| (*v, *h)).collect();
        let mut out = Vec::new();
        for (peer, height) in ripe {
            self.behind.remove(&peer);
            if !still_behind(&peer, height) {
                continue;
            }
            if self.pushed.get(&peer).is_some_and(|(h, _)| *h >= height) {
                continue;
            }
            self.pushed.insert(peer, (height, now));
            out.push((peer, height));
        }
        out
    }

    /// Validators tracked (seen behind, or pushed to within [`PUSH_REPEAT`]).
    pub fn tracked(&self) -> usize {
        self.behind.len() + self.pushed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> PublicKey {
        PublicKey([b; 32])
    }

    #[test]
    fn a_block_is_pushed_after_the_grace_once_per_repeat_unless_the_peer_moved_on() {
        let t0 = Instant::now();
        let mut l = Lagging::default();
        let behind = |_: &PublicKey, _: Height| true;
        l.seen_behind(key(1), Height(7), t0);
        // Not before the grace; the lowest height seen is the one pushed.
        l.seen_behind(key(1), Height(5), t0 + Duration::from_millis(500));
        assert!(l.due(t0 + PEER_BEHIND_GRACE - Duration::from_millis(1), behind).is_empty());
        assert_eq!(l.due(t0 + PEER_BEHIND_GRACE, behind), vec![(key(1), Height(5))]);
        // Seen at the same height again and again (old votes, rising rounds):
        // not pushed again within the repeat time ...
        let mut t = t0 + PEER_BEHIND_GRACE;
        for _ in 0..10 {
            l.seen_behind(key(1), Height(5), t);
            t += PEER_BEHIND_GRACE;
            assert!(l.due(t, behind).is_empty(), "pushed the same block again");
        }
        // ... nor a lower height; a later one is (catching up block by block).
        l.seen_behind(key(1), Height(4), t);
        assert!(l.due(t + PEER_BEHIND_GRACE, behind).is_empty());
        l.seen_behind(key(1), Height(6), t + PEER_BEHIND_GRACE);
        assert_eq!(l.due(t + 2 * PEER_BEHIND_GRACE, behind), vec![(key(1), Height(6))]);
        // After the repeat time the same height is pushed again.
        let later = t + 2 * PEER_BEHIND_GRACE + PUSH_REPEAT;
        l.seen_behind(key(1), Height(6), later);
        assert_eq!(l.due(later + PEER_BEHIND_GRACE, behind), vec![(key(1), Height(6))]);
    }

    #[test]
    fn a_peer_no_longer_behind_is_not_pushed_and_others_are_independent() {
        let t0 = Instant::now();
        let mut l = Lagging::default();
        l.seen_behind(key(1), Height(3), t0);
        l.seen_behind(key(2), Height(3), t0);
        let due = l.due(t0 + PEER_BEHIND_GRACE, |k, _| *k == key(2));
        assert_eq!(due, vec![(key(2), Height(3))]);
        // Key 1 was not pushed, so when it is behind again it is.
        l.seen_behind(key(1), Height(3), t0 + PEER_BEHIND_GRACE);
        assert_eq!(l.due(t0 + 2 * PEER_BEHIND_GRACE, |_, _| true), vec![(key(1), Height(3))]);
        // Pushes are forgotten after the repeat time: bookkeeping stays bounded.
        assert_eq!(l.tracked(), 2);
        l.due(t0 + 2 * PEER_BEHIND_GRACE + PUSH_REPEAT, |_, _| true);
        assert_eq!(l.tracked(), 0);
    }
}
