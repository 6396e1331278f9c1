//! State shared between the consensus driver and the HTTP API.

use std::collections::{HashSet, VecDeque};
use std::sync::{Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};
use yrd_consensus::crypto::{Hash32, PublicKey};
use yrd_consensus::types::{Height, Round};
use yrd_ledger::genesis::Genesis;
use yrd_ledger::store::Ledger;
use yrd_ledger::tx::{SignedTransaction, TxId};
use yrd_ledger::validate::{check_untrusted_batch, TxError};

use crate::disk::DiskSpace;
use crate::fatal::WriteWatch;
use crate::health::Health;
use crate::admission::Overloaded;
use crate::mempool::{Admission, Mempool, MempoolError};
use crate::metrics::Metrics;

/// Most transactions in one batch submission.
pub const MAX_BATCH: usize = 2000;

/// Wall-clock milliseconds since the Unix epoch (the node's clock; never used
/// inside consensus rules except as the proposer's block timestamp).
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Why a submission was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// Permanently invalid: HTTP 400 with the reason.
    #[error("{0}")]
    Invalid(#[from] TxError),
    /// Valid but conflicting with a pending transaction: HTTP 409.
    #[error("{0}")]
    Conflict(MempoolError),
    /// Back-pressure: HTTP 503.
    #[error("{0}")]
    Busy(MempoolError),
    /// The queue would take longer than `mempool.max_wait_ms` to finalise: HTTP 503
    /// with `Retry-After` (docs/api.md, "Overload").
    #[error("{0}")]
    Overloaded(#[from] Overloaded),
    /// Free disk space is below `storage.low_mib`: HTTP 503, retry on another node.
    #[error("{0}")]
    DiskLow(String),
    /// The node is shutting down or its store failed: HTTP 500.
    #[error("node unavailable: {0}")]
    Unavailable(String),
    /// The node halted (a certified block fails its validation): HTTP 503.
    #[error("this node has halted at height {height} and is not following the chain ({reason}); submit to another node")]
    Halted { height: u64, reason: String },
}

impl SubmitError {
    pub fn code(&self) -> &'static str {
        match self {
            SubmitError::Invalid(e) => e.code(),
            SubmitError::Conflict(_) => "sequence_pending",
            SubmitError::Busy(_) => "mempool_full",
            SubmitError::Overloaded(_) => "overloaded",
            SubmitError::DiskLow(_) => "disk_low",
            SubmitError::Unavailable(_) => "unavailable",
            SubmitError::Halted { .. } => "halted",
        }
    }
}

/// An admitted transaction: its id and whether it was new.
pub type Admitted = (TxId, Admission);

/// Consensus progress, for status and metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsensusStatus {
    pub height: Height,
    pub round: Round,
    pub step: &'static str,
    /// Our index in the validator set of `height` (None: not a validator there).
    pub validator_index: Option<u32>,
}

/// Where transactions being admitted come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A client of the API: every rule is checked against the ledger, so that the
    /// client learns at once about a replay or a used sequence number.
    Client,
    /// Another validator's gossip: decoding, the stateless rules and signatures are
    /// checked, and replays of recently committed transactions (late gossip) are
    /// dropped from memory; the index lookups are left to block building and
    /// validation, which repeat them anyway (and drop whatever fails). This halves
    /// the ledger lookups per transaction on every validator.
    Gossip,
}

/// Ids of the transactions in the last committed blocks, for dropping late
/// gossip without an index lookup.
#[derive(Debug, Default)]
pub struct RecentCommits {
    ids: HashSet<TxId>,
    blocks: VecDeque<Vec<TxId>>,
}

impl RecentCommits {
    /// Ids kept (whole blocks; the oldest block goes first).
    pub const CAPACITY: usize = 100_000;

    pub fn contains(&self, id: &TxId) -> bool {
        self.ids.contains(id)
    }

    /// Blocks remembered.
    pub fn blocks(&self) -> usize {
        self.blocks.len()
    }

    /// Blocks kept at most (bounds the bookkeeping when blocks are small).
    pub const MAX_BLOCKS: usize = 1024;

    pub fn push_block(&mut self, ids: &[TxId]) {
        if ids.is_empty() {
            return; // an empty block: nothing to remember
        }
        self.ids.extend(ids.iter().copied());
        self.blocks.push_back(ids.to_vec());
        while (self.ids.len() > Self::CAPACITY || self.blocks.len() > Self::MAX_BLOCKS) && self.blocks.len() > 1 {
            if let Some(old) = self.blocks.pop_front() {
                for id in &old {
                    self.ids.remove(id);
                }
            }
        }
    }
}

pub struct Shared {
    /// This node's name in the genesis.
    pub name: String,
    /// Our validator index, if we are a validator.
    pub validator_index: Option<u32>,
    pub genesis: Genesis,
    pub chain: Hash32,
    pub ledger: RwLock<Ledger>,
    pub mempool: Mutex<Mempool>,
    /// Transactions of the last blocks committed (see [`Source::Gossip`]).
    pub recent: Mutex<RecentCommits>,
    pub metrics: Metrics,
    pub consensus: Mutex<ConsensusStatus>,
    /// Ed25519 keys of connected peers.
    pub peers: Mutex<Vec<PublicKey>>,
    /// The committed height; API long-polls wait on it.
    pub committed: watch::Sender<Height>,
    /// Canonical bytes of transactions admitted through the API, for the driver
    /// to gossip.
    pub gossip_out: mpsc::Sender<Vec<Vec<u8>>>,
    /// Free space on the data directory and the reserve (no new work when low).
    pub disk: DiskSpace,
    /// The store write in progress, for the stall watchdog.
    pub writes: WriteWatch,
    /// Halt and clock conditions, for status.
    pub health: Mutex<Health>,
    /// Authorised queries served, waiting to be recorded on chain.
    pub queries: crate::queries::QueryRecorder,
}

impl Shared {
    /// Validates transactions from outside (API or gossip) and admits them into
    /// the mempool. Returns one result per input, in order.
    pub fn admit(&self, items: &[&[u8]], source: Source) -> Vec<Result<Admitted, SubmitError>> {
        if !self.disk.accepting() {
            let reason = format!(
                "node {} is low on disk space ({} MiB free): it takes no new transactions; submit to another node",
                self.name,
                self.disk.free_bytes() / (1024 * 1024)
            );
            self.metrics.txs_rejected.inc_by(items.len() as u64);
            return items.iter().map(|_| Err(SubmitError::DiskLow(reason.clone()))).collect();
        }
        // Decode, stateless rules and signatures first, without any lock.
        if let Some(h) = self.health.lock().ok().and_then(|h| h.halt.clone()) {
            return items.iter().map(|_| Err(SubmitError::Halted { height: h.height, reason: h.reason.clone() })).collect();
        }
        // Decode, stateless rules and signatures first, without any lock (but
        // against the membership in force for the next block).
        let membership = match self.ledger.read() {
            Ok(l) => l.next_membership(),
            Err(_) => return items.iter().map(|_| Err(SubmitError::Unavailable("ledger lock poisoned".into()))).collect(),
        };
        let checked: Vec<Result<(SignedTransaction, TxId), TxError>> =
            check_untrusted_batch(&membership, &self.chain, items);
        let Ok(ledger) = self.ledger.read() else {
            return items.iter().map(|_| Err(SubmitError::Unavailable("ledger lock poisoned".into()))).collect();
        };
        if let Some(e) = ledger.write_failed() {
            let reason = format!("its store failed ({e}); it is stopping");
            return items.iter().map(|_| Err(SubmitError::Unavailable(reason.clone()))).collect();
        }
        let recent = match source {
            Source::Client => None,
            Source::Gossip => match self.recent.lock() {
                Ok(r) => Some(r),
                Err(_) => return items.iter().map(|_| Err(SubmitError::Unavailable("lock poisoned".into()))).collect(),
            },
        };
        let Ok(mut mempool) = self.mempool.lock() else {
            return items.iter().map(|_| Err(SubmitError::Unavailable("mempool lock poisoned".into()))).collect();
        };
        // Gossip skips the ledger lookups while the mempool is less than half full
        // (the proposer's build judges every transaction against the ledger
        // anyway). Past half, it looks them up like a client's: else a peer
        // re-gossiping old committed transactions (public, validly signed) could
        // fill the mempool with them between this node's proposals and have
        // clients refused `mempool_full`.
        let lookups = recent.is_none() || mempool.len() >= mempool.capacity() / 2;
        let mut out = Vec::with_capacity(items.len());
        for c in checked {
            let r = c.map_err(SubmitError::from).and_then(|(tx, id)| {
                match &recent {
                    Some(r) if r.contains(&id) => return Err(TxError::Duplicate(id).into()),
                    _ if lookups => match ledger.check_tx(&tx, &id) {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            // Possibly admitted from gossip without the lookups: drop it.
                            mempool.remove(&[id]);
                            return Err(e.into());
                        }
                        Err(e) => return Err(SubmitError::Unavailable(format!("the ledger could not be read: {e}"))),
                    },
                    _ => {}
                }
                if mempool.contains(&id) {
                    return Ok((id, Admission::AlreadyPending));
                }
                match mempool.insert(id, tx) {
                    Ok(a) => Ok((id, a)),
                    Err(e @ MempoolError::Full(_)) => Err(SubmitError::Busy(e)),
                    Err(e) => Err(SubmitError::Conflict(e)),
                }
            });
            match &r {
                Ok(_) => self.metrics.txs_submitted.inc(),
                Err(_) => self.metrics.txs_rejected.inc(),
            };
            out.push(r);
        }
        self.metrics.mempool_size.set(mempool.len() as i64);
        out
    }

    /// Refuses a client's `incoming` transactions at once if they would wait
    /// longer than the admission bound (before decoding or any signature work).
    pub fn check_overload(&self, incoming: usize) -> Result<(), SubmitError> {
        let Ok(mut mempool) = self.mempool.lock() else {
            return Err(SubmitError::Unavailable("mempool lock poisoned".into()));
        };
        mempool.admission_check(incoming).map_err(|e| {
            self.metrics.txs_rejected.inc_by(incoming as u64);
            self.metrics.txs_refused_overload.inc_by(incoming as u64);
            SubmitError::Overloaded(e)
        })
    }

    /// Admits transactions from a client; also returns the canonical bytes of
    /// those that are new, for gossip (see [`Shared::queue_gossip`]).
    pub fn admit_client(&self, items: &[&[u8]]) -> (Vec<Result<Admitted, SubmitError>>, Vec<Vec<u8>>) {
        let results = self.admit(items, Source::Client);
        let fresh = items
            .iter()
            .zip(&results)
            .filter(|(_, r)| matches!(r, Ok((_, Admission::Added))))
            .map(|(b, _)| b.to_vec())
            .collect();
        (results, fresh)
    }

    /// Hands newly admitted transactions to the driver for gossip. If the driver
    /// is gone the node is shutting down; the transactions stay in our mempool and
    /// are proposed by us when it is our turn.
    pub async fn queue_gossip(&self, fresh: Vec<Vec<u8>>) {
        if !fresh.is_empty() {
            let _ = self.gossip_out.send(fresh).await;
        }
    }

    /// Submits transactions from a client: admits them and queues the new ones
    /// for gossip. One result per input.
    pub async fn submit(&self, items: &[&[u8]]) -> Vec<Result<Admitted, SubmitError>> {
        let (results, fresh) = self.admit_client(items);
        self.queue_gossip(fresh).await;
        results
    }

    /// Bookkeeping after a block with these transactions is committed: they are
    /// remembered as recent commits (late gossip of them is dropped) and leave the
    /// mempool. Returns when each of those in our mempool arrived there.
    pub fn forget_committed(&self, ids: &[TxId]) -> Vec<std::time::Instant> {
        if let Ok(mut r) = self.recent.lock() {
            r.push_block(ids);
        }
        match self.mempool.lock() {
            Ok(mut m) => {
                m.note_committed(ids.len());
                m.remove(ids)
            }
            Err(_) => Vec::new(),
        }
    }

    pub fn height(&self) -> Height {
        *self.committed.borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrd_consensus::crypto::sha256;

    fn id(i: u64) -> TxId {
        TxId(sha256(&[&i.to_be_bytes()]))
    }

    #[test]
    fn recent_commits_forget_whole_old_blocks_and_stay_bounded() {
        let mut r = RecentCommits::default();
        r.push_block(&[id(1), id(2)]);
        r.push_block(&[]);
        assert_eq!(r.blocks(), 1, "empty blocks are not remembered");
        // Many small blocks: at most MAX_BLOCKS are kept, the oldest go first.
        for b in 0..RecentCommits::MAX_BLOCKS as u64 + 10 {
            r.push_block(&[id(1000 + b)]);
        }
        assert_eq!(r.blocks(), RecentCommits::MAX_BLOCKS);
        assert!(!r.contains(&id(1)) && !r.contains(&id(1000)));
        assert!(r.contains(&id(1000 + RecentCommits::MAX_BLOCKS as u64 + 9)));
        // A huge block pushes out everything before it, but is itself kept.
        let big: Vec<TxId> = (0..RecentCommits::CAPACITY as u64 + 5).map(|i| id(1_000_000 + i)).collect();
        r.push_block(&big);
        assert_eq!(r.blocks(), 1);
        assert!(r.contains(&big[0]) && !r.contains(&id(1005)));
    }
}
