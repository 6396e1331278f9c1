//! The checker: verdicts over a recorded history, like Jepsen's checkers. Pure
//! (no I/O), so each check is shown to fail on a fabricated history in the tests.
//!
//! * **liveness** — after healing, every node finalised a block above the highest
//!   height any node had at the heal, within the bound;
//! * **durability** — every attestation some node reported committed (in a block
//!   a follower read) is in the chain of every node;
//! * **never final** — accepted attestations in no node's chain: counted and
//!   reported (allowed: a mempool dies with its process), never a failure by
//!   themselves — the durability check fails if one was reported committed;
//! * **agreement** — no two observations of a height with different block hashes;
//! * **stores** — `yrd audit verify-ledger` said CONSISTENT for every store after
//!   a clean stop;
//! * **crashes** — no node exited except when a fault made it (SIGKILL, a full
//!   disk).

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

/// A transaction id or commitment (what a block lists).
pub type Key = [u8; 32];

/// Examples listed in a failing verdict, at most.
const EXAMPLES: usize = 5;

/// What one node's chain looked like to the followers.
#[derive(Debug, Clone, Default)]
pub struct NodeChain {
    pub name: String,
    /// Block hash at each height read.
    pub hashes: BTreeMap<u64, String>,
    /// Every id or commitment in those blocks.
    pub keys: HashSet<Key>,
}

/// Everything the run recorded.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Each node's chain as read at the end (after healing and a clean drain).
    pub chains: Vec<NodeChain>,
    /// Each node's blocks as the followers read them during the run.
    pub live: Vec<NodeChain>,
    /// Attestations the API accepted: `(id, commitment)`.
    pub acked: Vec<(Key, Key)>,
    /// Ids of accepted attestations some node reported in a block during the run.
    pub reported_committed: HashSet<Key>,
    /// Per node: ms from healing until it finalised a block above the highest
    /// height at the heal (`None`: not within the wait).
    pub recovered_ms: Vec<Option<u64>>,
    pub liveness_bound_ms: u64,
    /// Per node: `(consistent, what verify-ledger said)`.
    pub stores: Vec<(bool, String)>,
    /// Exits no fault explains: `node: status`.
    pub unexpected_exits: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub pass: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verdicts {
    pub liveness: Verdict,
    pub durability: Verdict,
    pub agreement: Verdict,
    pub stores: Verdict,
    pub crashes: Verdict,
    /// Accepted, reported committed, and accepted but in no chain.
    pub accepted: u64,
    pub committed: u64,
    pub never_final: u64,
    pub pass: bool,
}

fn hex8(k: &Key) -> String {
    hex::encode(&k[..8])
}

pub fn liveness(h: &History) -> Verdict {
    if h.recovered_ms.is_empty() {
        return Verdict { pass: false, detail: "no liveness observation (the run did not heal)".into() };
    }
    let mut late = Vec::new();
    let mut worst = 0;
    for (i, r) in h.recovered_ms.iter().enumerate() {
        let name = h.chains.get(i).map_or("?", |c| c.name.as_str());
        match r {
            Some(ms) if *ms <= h.liveness_bound_ms => worst = worst.max(*ms),
            Some(ms) => late.push(format!("{name} after {:.1} s", *ms as f64 / 1000.0)),
            None => late.push(format!("{name} never")),
        }
    }
    if late.is_empty() {
        Verdict {
            pass: true,
            detail: format!(
                "every node finalised new blocks within {:.1} s of healing (bound {} s)",
                worst as f64 / 1000.0,
                h.liveness_bound_ms / 1000
            ),
        }
    } else {
        Verdict {
            pass: false,
            detail: format!("not finalising new blocks within {} s of healing: {}", h.liveness_bound_ms / 1000, late.join(", ")),
        }
    }
}

pub fn durability(h: &History) -> Verdict {
    let commitment_of: BTreeMap<Key, Key> = h.acked.iter().copied().collect();
    let mut missing = 0u64;
    let mut examples = Vec::new();
    for id in &h.reported_committed {
        let c = commitment_of.get(id);
        for chain in &h.chains {
            let present = chain.keys.contains(id) || c.is_some_and(|c| chain.keys.contains(c));
            if !present {
                missing += 1;
                if examples.len() < EXAMPLES {
                    examples.push(format!("{}… not on {}", hex8(id), chain.name));
                }
            }
        }
    }
    if missing == 0 {
        Verdict {
            pass: true,
            detail: format!("all {} attestations reported committed are final on all {} nodes", h.reported_committed.len(), h.chains.len()),
        }
    } else {
        Verdict { pass: false, detail: format!("{missing} (attestation, node) pairs missing, e.g. {}", examples.join("; ")) }
    }
}

/// Accepted attestations in no node's chain.
pub fn never_final(h: &History) -> u64 {
    h.acked
        .iter()
        .filter(|(id, c)| !h.chains.iter().any(|ch| ch.keys.contains(id) || ch.keys.contains(c)))
        .count() as u64
}

pub fn agreement(h: &History) -> Verdict {
    let mut by_height: BTreeMap<u64, Vec<(&str, &str)>> = BTreeMap::new();
    for c in h.chains.iter().chain(h.live.iter()) {
        for (height, hash) in &c.hashes {
            by_height.entry(*height).or_default().push((c.name.as_str(), hash.as_str()));
        }
    }
    let mut conflicts = Vec::new();
    for (height, seen) in &by_height {
        let first = seen[0].1;
        if seen.iter().any(|(_, x)| *x != first) {
            let list: Vec<String> = seen.iter().map(|(n, x)| format!("{n} {}", &x[..x.len().min(12)])).collect();
            conflicts.push(format!("height {height}: {}", list.join(", ")));
        }
    }
    let top = by_height.keys().next_back().copied().unwrap_or(0);
    if conflicts.is_empty() {
        Verdict { pass: true, detail: format!("one block hash per height at all {} heights (1..={top})", by_height.len()) }
    } else {
        let n = conflicts.len();
        conflicts.truncate(EXAMPLES);
        Verdict { pass: false, detail: format!("{n} heights with different blocks: {}", conflicts.join("; ")) }
    }
}

pub fn stores(h: &History) -> Verdict {
    let bad: Vec<String> = h
        .stores
        .iter()
        .enumerate()
        .filter(|(_, (ok, _))| !ok)
        .map(|(i, (_, what))| format!("{}: {what}", h.chains.get(i).map_or("?", |c| c.name.as_str())))
        .collect();
    if h.stores.is_empty() {
        Verdict { pass: false, detail: "no store was checked".into() }
    } else if bad.is_empty() {
        Verdict { pass: true, detail: format!("verify-ledger: CONSISTENT on all {} stores", h.stores.len()) }
    } else {
        Verdict { pass: false, detail: bad.join("; ") }
    }
}

pub fn crashes(h: &History) -> Verdict {
    if h.unexpected_exits.is_empty() {
        Verdict { pass: true, detail: "no node exited except by an injected fault".into() }
    } else {
        Verdict { pass: false, detail: format!("unexpected exits: {}", h.unexpected_exits.join("; ")) }
    }
}

pub fn check(h: &History) -> Verdicts {
    let liveness = liveness(h);
    let durability = durability(h);
    let agreement = agreement(h);
    let stores = stores(h);
    let crashes = crashes(h);
    let pass = liveness.pass && durability.pass && agreement.pass && stores.pass && crashes.pass;
    Verdicts {
        liveness,
        durability,
        agreement,
        stores,
        crashes,
        accepted: h.acked.len() as u64,
        committed: h.reported_committed.len() as u64,
        never_final: never_final(h),
        pass,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(b: u8) -> Key {
        [b; 32]
    }

    /// Four nodes with the same three blocks, ids 1..=6 (commitments 101..=106)
    /// accepted, 1..=5 reported committed and in every chain (4 by commitment:
    /// a redacted entry), 6 never final.
    fn good() -> History {
        let mut chains = Vec::new();
        for name in ["shanghai", "jiangsu", "zhejiang", "anhui"] {
            let mut c = NodeChain { name: name.into(), ..Default::default() };
            for (h, hash) in [(1u64, "aa"), (2, "bb"), (3, "cc")] {
                c.hashes.insert(h, hash.into());
            }
            for b in [1u8, 2, 3, 5] {
                c.keys.insert(k(b));
            }
            c.keys.insert(k(104));
            chains.push(c);
        }
        History {
            live: chains.clone(),
            chains,
            acked: (1..=6u8).map(|b| (k(b), k(100 + b))).collect(),
            reported_committed: (1..=5u8).map(k).collect(),
            recovered_ms: vec![Some(3_000), Some(4_000), Some(2_000), Some(9_000)],
            liveness_bound_ms: 60_000,
            stores: vec![(true, "CONSISTENT".into()); 4],
            unexpected_exits: vec![],
        }
    }

    #[test]
    fn a_good_history_passes() {
        let v = check(&good());
        assert!(v.pass, "{v:?}");
        assert_eq!((v.accepted, v.committed, v.never_final), (6, 5, 1));
    }

    #[test]
    fn a_committed_attestation_missing_on_one_node_fails_durability() {
        let mut h = good();
        h.chains[2].keys.remove(&k(3));
        let v = check(&h);
        assert!(!v.durability.pass && !v.pass, "{v:?}");
        assert!(v.durability.detail.contains("zhejiang"), "{}", v.durability.detail);
        // Found by commitment only: losing the commitment fails too.
        let mut h = good();
        h.chains[0].keys.remove(&k(104));
        assert!(!check(&h).durability.pass);
    }

    #[test]
    fn never_final_is_counted_not_failed_unless_reported_committed() {
        let mut h = good();
        h.acked.push((k(7), k(107)));
        let v = check(&h);
        assert!(v.pass && v.never_final == 2, "{v:?}");
        h.reported_committed.insert(k(7));
        assert!(!check(&h).durability.pass);
    }

    #[test]
    fn two_hashes_at_a_height_fail_agreement() {
        let mut h = good();
        h.chains[3].hashes.insert(2, "b2".into());
        let v = check(&h);
        assert!(!v.agreement.pass && !v.pass, "{v:?}");
        assert!(v.agreement.detail.contains("height 2"), "{}", v.agreement.detail);
        // A block seen during the run and another at the end at the same height.
        let mut h = good();
        h.live[0].hashes.insert(3, "c3".into());
        assert!(!check(&h).agreement.pass);
        // A node that is merely behind (fewer heights) is not a conflict.
        let mut h = good();
        h.chains[1].hashes.remove(&3);
        assert!(check(&h).agreement.pass);
    }

    #[test]
    fn late_or_missing_recovery_fails_liveness() {
        let mut h = good();
        h.recovered_ms[1] = Some(61_000);
        assert!(!check(&h).liveness.pass);
        h.recovered_ms[1] = None;
        let v = check(&h);
        assert!(!v.liveness.pass && v.liveness.detail.contains("jiangsu never"), "{v:?}");
        h.recovered_ms.clear();
        assert!(!check(&h).liveness.pass);
    }

    #[test]
    fn an_inconsistent_store_fails() {
        let mut h = good();
        h.stores[0] = (false, "INCONSISTENT: block 7".into());
        let v = check(&h);
        assert!(!v.stores.pass && v.stores.detail.contains("shanghai"), "{v:?}");
        h.stores.clear();
        assert!(!check(&h).stores.pass);
    }

    #[test]
    fn an_unexplained_exit_fails() {
        let mut h = good();
        h.unexpected_exits.push("anhui: exit status 101".into());
        assert!(!check(&h).crashes.pass);
    }
}
