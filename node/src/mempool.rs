//! The mempool: bounded, deduplicated, FIFO, validated on admission.
//!
//! Every transaction in it has passed decoding, the stateless rules, the
//! signature check and the stateful rules against the committed ledger at the
//! time it arrived. A full mempool refuses new transactions (back-pressure: the
//! API answers 503), and so does one whose queue would take longer than
//! `mempool.max_wait_ms` to finalise ([`crate::admission`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::admission::{DelayGate, Overloaded};

use yrd_consensus::crypto::PublicKey;
use yrd_ledger::tx::{SignedTransaction, TxId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Added,
    /// Already pending; nothing changed.
    AlreadyPending,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    #[error("mempool is full ({0} pending transactions); retry later")]
    Full(usize),
    #[error("another pending transaction of this issuer already uses sequence number {0}")]
    SequencePending(u64),
}

struct Entry {
    tx: SignedTransaction,
    seq_no: u64,
    arrived: Instant,
}

pub struct Mempool {
    max: usize,
    next: u64,
    by_id: HashMap<TxId, Entry>,
    order: BTreeMap<u64, TxId>,
    sequences: HashSet<(PublicKey, u64)>,
    gate: DelayGate,
}

impl Mempool {
    /// A mempool bounded by count only.
    pub fn new(max: usize) -> Mempool {
        Mempool::with_max_wait(max, None)
    }

    /// A mempool bounded by count and, for clients, by the expected wait of what
    /// it admits (`None`: count only).
    pub fn with_max_wait(max: usize, max_wait: Option<Duration>) -> Mempool {
        Mempool {
            max,
            next: 0,
            by_id: HashMap::new(),
            order: BTreeMap::new(),
            sequences: HashSet::new(),
            gate: DelayGate::new(max_wait, Instant::now()),
        }
    }

    /// Whether a client's `incoming` transactions may queue behind the pending
    /// ones: refused while the oldest pending one has waited past the target
    /// (checked before any signature work, so refusing is cheap).
    pub fn admission_check(&mut self, incoming: usize) -> Result<(), Overloaded> {
        let pending = self.by_id.len();
        let oldest = self.oldest_arrival();
        self.gate.check(pending, incoming, oldest, Instant::now())
    }

    /// When the oldest pending transaction arrived (the head of the FIFO).
    pub fn oldest_arrival(&self) -> Option<Instant> {
        let (_, id) = self.order.first_key_value()?;
        self.by_id.get(id).map(|e| e.arrived)
    }

    /// How long the oldest pending transaction has waited (zero when empty).
    pub fn oldest_wait(&self) -> Duration {
        self.oldest_arrival().map(|t| t.elapsed()).unwrap_or_default()
    }

    /// The oldest pending transaction's wait above which clients are refused
    /// (`None`: admission by count only).
    pub fn admission_target(&self) -> Option<Duration> {
        self.gate.target()
    }

    /// A block of `txs` transactions was committed (the finalisation rate).
    pub fn note_committed(&mut self, txs: usize) {
        self.gate.committed(txs, Instant::now());
    }

    /// Transactions finalised per second lately (status and metrics).
    pub fn finalised_per_s(&mut self) -> f64 {
        self.gate.rate_per_s(Instant::now())
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.max
    }

    pub fn contains(&self, id: &TxId) -> bool {
        self.by_id.contains_key(id)
    }

    /// Adds a transaction that has already been fully validated.
    pub fn insert(&mut self, id: TxId, tx: SignedTransaction) -> Result<Admission, MempoolError> {
        if self.by_id.contains_key(&id) {
            return Ok(Admission::AlreadyPending);
        }
        if self.by_id.len() >= self.max {
            return Err(MempoolError::Full(self.by_id.len()));
        }
        let key = (tx.tx.issuer, tx.tx.sequence);
        if self.sequences.contains(&key) {
            return Err(MempoolError::SequencePending(tx.tx.sequence));
        }
        self.sequences.insert(key);
        let seq_no = self.next;
        self.next += 1;
        self.order.insert(seq_no, id);
        self.by_id.insert(id, Entry { tx, seq_no, arrived: Instant::now() });
        Ok(Admission::Added)
    }

    /// The oldest `max` pending transactions (they stay pending until committed).
    pub fn candidates(&self, max: usize) -> Vec<SignedTransaction> {
        self.order.values().take(max).filter_map(|id| self.by_id.get(id)).map(|e| e.tx.clone()).collect()
    }

    /// Removes transactions (committed, or found invalid); returns when each arrived.
    pub fn remove(&mut self, ids: &[TxId]) -> Vec<Instant> {
        let mut arrived = Vec::new();
        for id in ids {
            if let Some(e) = self.by_id.remove(id) {
                self.order.remove(&e.seq_no);
                self.sequences.remove(&(e.tx.tx.issuer, e.tx.tx.sequence));
                arrived.push(e.arrived);
            }
        }
        arrived
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrd_ledger::testkit::TestChain;
    use yrd_ledger::tx::AttestationKind;
    use yrd_ledger::uscc::Uscc;

    #[test]
    fn bounded_deduplicated_fifo() {
        let chain = TestChain::new(1, 1);
        let txs: Vec<_> = (0..4).map(|i| chain.attestation(0, i, Uscc::sample(i), AttestationKind::RedList)).collect();
        let mut m = Mempool::new(3);
        for t in &txs[..3] {
            assert_eq!(m.insert(t.id().unwrap(), t.clone()), Ok(Admission::Added));
        }
        assert_eq!(m.insert(txs[0].id().unwrap(), txs[0].clone()), Ok(Admission::AlreadyPending));
        assert_eq!(m.insert(txs[3].id().unwrap(), txs[3].clone()), Err(MempoolError::Full(3)));
        assert_eq!(m.candidates(2), txs[..2].to_vec());
        m.remove(&[txs[0].id().unwrap()]);
        assert_eq!(m.candidates(10), txs[1..3].to_vec());
        // Same issuer and sequence, different content: refused while the first is pending.
        let clash = chain.attestation(0, 1, Uscc::sample(99), AttestationKind::Commitment);
        assert_eq!(m.insert(clash.id().unwrap(), clash), Err(MempoolError::SequencePending(1)));
    }

    #[test]
    fn the_oldest_arrival_is_the_head_of_the_fifo() {
        let chain = TestChain::new(1, 1);
        let txs: Vec<_> = (0..3).map(|i| chain.attestation(0, i, Uscc::sample(i), AttestationKind::RedList)).collect();
        let mut m = Mempool::new(10);
        assert_eq!(m.oldest_arrival(), None);
        assert_eq!(m.oldest_wait(), Duration::ZERO);
        let mut arrivals = Vec::new();
        for t in &txs {
            m.insert(t.id().unwrap(), t.clone()).unwrap();
            arrivals.push(m.by_id[&t.id().unwrap()].arrived);
        }
        assert_eq!(m.oldest_arrival(), Some(arrivals[0]));
        // Committing a later one leaves the head; committing the head moves it on.
        m.remove(&[txs[1].id().unwrap()]);
        assert_eq!(m.oldest_arrival(), Some(arrivals[0]));
        m.remove(&[txs[0].id().unwrap()]);
        assert_eq!(m.oldest_arrival(), Some(arrivals[2]));
        m.remove(&[txs[2].id().unwrap()]);
        assert_eq!(m.oldest_arrival(), None);
    }
}
