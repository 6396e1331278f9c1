//! Recording the authorised queries this node serves (docs/access.md "Query
//! receipts").
//!
//! When the API answers a lender's signed request with restricted records that
//! an authorisation opened, it [`QueryRecorder::record`]s one [`QueryEntry`] per
//! subject (the lender's signed request is the evidence) and gives the lender a
//! receipt signed by this node's key. Entries wait in a bounded queue; the
//! flusher ([`run_flusher`]) takes them every `flush_ms` (or as soon as
//! `batch` are waiting) and submits them as `RecordQueries` transactions signed
//! by this node's key, through the same admission as any client transaction
//! (gossiped, validated by every node, committed by consensus).
//!
//! A full queue refuses the read (503 `query_queue_full`) rather than serve it
//! unrecorded. A node that holds no key of a validator or observer in force
//! cannot record, so it refuses authorised reads of restricted records (503
//! `cannot_record`) and serves everything else.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};
use yrd_consensus::crypto::{PublicKey, SecretKey};
use yrd_ledger::queries::{QueryEntry, QueryRecords, MAX_QUERY_ENTRIES};
use yrd_ledger::tx::{SignedTransaction, Transaction, TxBody, MAX_TX_BYTES};

use crate::shared::Shared;

/// `[queries]` in node.toml (docs/node.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueriesConfig {
    /// Longest a served query waits before its record transaction is submitted.
    /// Far below `MAX_RECORD_LAG_BLOCKS` blocks (the consensus bound), so a
    /// record always lands in time under normal operation.
    pub flush_ms: u64,
    /// Submit early once this many entries wait (about `batch / 12` record
    /// transactions at once: 12 entries fill a 4 KiB transaction).
    pub batch: usize,
    /// Most entries waiting. At 2,000 authorised queries a second and a flush
    /// every 500 ms, about 1,000 wait; 65,536 (about 25 MiB) absorbs half a
    /// minute of the chain not taking transactions (a full mempool, a halt)
    /// before reads are refused.
    pub max_queued: usize,
}

impl Default for QueriesConfig {
    fn default() -> Self {
        QueriesConfig { flush_ms: 500, batch: 1024, max_queued: 65_536 }
    }
}

impl QueriesConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.flush_ms == 0 || self.flush_ms > 60_000 {
            return Err(format!("queries.flush_ms must be 1 to 60000 (it is {})", self.flush_ms));
        }
        if self.batch == 0 || self.max_queued == 0 || self.batch > self.max_queued {
            return Err(format!(
                "queries.batch ({}) and queries.max_queued ({}) must be positive, batch at most max_queued",
                self.batch, self.max_queued
            ));
        }
        Ok(())
    }
}

/// Why a served query could not be queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("this node has {queued} authorised queries waiting to be recorded on chain (at most {max}); try again shortly or ask another node")]
    QueueFull { queued: usize, max: usize },
    #[error("this node cannot record queries on chain (its key is not a validator's or observer's in force), so it serves no restricted records to lenders; ask another node")]
    CannotRecord,
}

impl RecordError {
    pub fn code(&self) -> &'static str {
        match self {
            RecordError::QueueFull { .. } => "query_queue_full",
            RecordError::CannotRecord => "cannot_record",
        }
    }
}

/// The queue of served queries and the key that signs their records.
pub struct QueryRecorder {
    key: Option<SecretKey>,
    config: QueriesConfig,
    queue: Mutex<VecDeque<QueryEntry>>,
    wake: tokio::sync::Notify,
    /// The next sequence number to sign with (at least the ledger's last + 1).
    next_sequence: Mutex<u64>,
}

impl QueryRecorder {
    pub fn new(key: Option<SecretKey>, config: QueriesConfig) -> QueryRecorder {
        QueryRecorder { key, config, queue: Mutex::new(VecDeque::new()), wake: tokio::sync::Notify::new(), next_sequence: Mutex::new(0) }
    }

    /// The key receipts and records are signed with.
    pub fn key(&self) -> Option<&SecretKey> {
        self.key.as_ref()
    }

    pub fn public(&self) -> Option<PublicKey> {
        self.key.as_ref().map(|k| k.public())
    }

    /// Whether `entries` more fit; reserves nothing (the read is then built and
    /// [`QueryRecorder::record`] checks again).
    pub fn has_room(&self, entries: usize) -> Result<(), RecordError> {
        let queued = self.queue.lock().map(|q| q.len()).unwrap_or(usize::MAX);
        if queued.saturating_add(entries) > self.config.max_queued {
            return Err(RecordError::QueueFull { queued, max: self.config.max_queued });
        }
        Ok(())
    }

    /// Queues served queries; all or none.
    pub fn record(&self, entries: Vec<QueryEntry>, metrics: &crate::metrics::Metrics) -> Result<(), RecordError> {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if q.len().saturating_add(entries.len()) > self.config.max_queued {
            metrics.queries_refused.inc();
            return Err(RecordError::QueueFull { queued: q.len(), max: self.config.max_queued });
        }
        q.extend(entries);
        metrics.query_queue_depth.set(q.len() as i64);
        if q.len() >= self.config.batch {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Entries waiting.
    pub fn queued(&self) -> usize {
        self.queue.lock().map(|q| q.len()).unwrap_or(0)
    }

    /// Takes every waiting entry.
    fn take(&self) -> Vec<QueryEntry> {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.drain(..).collect()
    }

    /// Signs `entries` into as few record transactions as fit (at most
    /// [`MAX_QUERY_ENTRIES`] entries and [`MAX_TX_BYTES`] bytes each), with
    /// sequence numbers from `first` on.
    pub fn sign_records(key: &SecretKey, chain: yrd_consensus::crypto::Hash32, first: u64, entries: Vec<QueryEntry>) -> Vec<SignedTransaction> {
        let sign = |entries: Vec<QueryEntry>, sequence: u64| -> Option<SignedTransaction> {
            let tx = Transaction { chain, issuer: key.public(), sequence, body: TxBody::RecordQueries(QueryRecords { entries }) };
            tx.sign(key).ok()
        };
        let encoded_len = |t: &SignedTransaction| t.encode().map_or(usize::MAX, |b| b.len());
        // A record transaction's size is its size with no entries plus each
        // entry's encoding (the entry count's prefix stays one byte up to
        // MAX_QUERY_ENTRIES): measured once, not by signing every candidate.
        let empty = sign(Vec::new(), first).map_or(usize::MAX, |t| encoded_len(&t));
        let mut groups: Vec<Vec<QueryEntry>> = Vec::new();
        let (mut batch, mut size) = (Vec::new(), empty);
        // One entry per request and subject (consensus refuses a record holding
        // one twice; the API's replay cache makes a second answer impossible anyway).
        let mut seen = std::collections::HashSet::new();
        // One request key's entries per transaction: a query audit file carries a
        // record transaction whole, and a lender's file must not show another
        // lender's queries (`proof_queries::query_audit` leaves mixed ones out).
        let mut by_key: Vec<(yrd_consensus::crypto::PublicKey, Vec<QueryEntry>)> = Vec::new();
        for e in entries.into_iter().filter(|e| seen.insert((e.request.key, e.request.nonce, e.subject))) {
            match by_key.iter_mut().find(|(k, _)| *k == e.request.key) {
                Some((_, v)) => v.push(e),
                None => by_key.push((e.request.key, vec![e])),
            }
        }
        for (_, key_entries) in by_key {
            for e in key_entries {
                let len = yrd_consensus::codec::encode(&e).map_or(usize::MAX, |b| b.len());
                if !batch.is_empty() && (batch.len() >= MAX_QUERY_ENTRIES || size.saturating_add(len) > MAX_TX_BYTES) {
                    groups.push(std::mem::take(&mut batch));
                    size = empty;
                }
                size = size.saturating_add(len);
                batch.push(e);
            }
            if !batch.is_empty() {
                groups.push(std::mem::take(&mut batch));
                size = empty;
            }
        }
        let mut out = Vec::new();
        let mut sequence = first;
        for group in groups {
            let mut pending = vec![group];
            while let Some(g) = pending.pop() {
                match sign(g.clone(), sequence) {
                    // The size estimate is exact; should it ever not be, halve.
                    Some(t) if encoded_len(&t) > MAX_TX_BYTES && g.len() > 1 => {
                        let mut g = g;
                        let back = g.split_off(g.len() / 2);
                        pending.push(back);
                        pending.push(g);
                    }
                    Some(t) => {
                        out.push(t);
                        sequence += 1;
                    }
                    None => warn!(entries = g.len(), "could not sign a query record transaction"),
                }
            }
        }
        out
    }

    /// Signs `entries` into record transactions numbered consecutively after the
    /// ledger's last sequence number for this key and after every one used before
    /// (no gaps: the issuer index costs a key per 64 sequence numbers used).
    fn sign_numbered(&self, key: &SecretKey, chain: yrd_consensus::crypto::Hash32, ledger_last: Option<u64>, entries: Vec<QueryEntry>) -> Vec<SignedTransaction> {
        let mut next = self.next_sequence.lock().unwrap_or_else(|e| e.into_inner());
        let first = (*next).max(ledger_last.map_or(1, |l| l + 1));
        let txs = QueryRecorder::sign_records(key, chain, first, entries);
        *next = first + txs.len() as u64;
        txs
    }
}

/// Submits the queued queries every `flush_ms` (or when `batch` wait) until
/// `stop` turns true; a last flush on the way out.
pub async fn run_flusher(shared: std::sync::Arc<Shared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let recorder = &shared.queries;
    let Some(key) = recorder.key.clone() else { return };
    let period = Duration::from_millis(recorder.config.flush_ms);
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(period) => false,
            _ = recorder.wake.notified() => false,
            _ = stop.wait_for(|s| *s) => true,
        };
        flush(&shared, &key).await;
        if stopping {
            return;
        }
    }
}

/// Submits every waiting entry now.
pub async fn flush(shared: &Shared, key: &SecretKey) {
    let recorder = &shared.queries;
    let entries = recorder.take();
    shared.metrics.query_queue_depth.set(0);
    if entries.is_empty() {
        return;
    }
    let count = entries.len();
    let ledger_last = shared.ledger.read().ok().and_then(|l| l.last_sequence(&key.public()).ok().flatten());
    let txs = recorder.sign_numbered(key, shared.chain, ledger_last, entries);
    let bytes: Vec<Vec<u8>> = txs.iter().filter_map(|t| t.encode().ok()).collect();
    let items: Vec<&[u8]> = bytes.iter().map(|b| b.as_slice()).collect();
    let results = shared.submit(&items).await;
    let mut refused = 0usize;
    for (tx, r) in txs.iter().zip(&results) {
        let n = match &tx.tx.body {
            TxBody::RecordQueries(q) => q.entries.len(),
            _ => 0,
        };
        match r {
            Ok(_) => {
                shared.metrics.queries_submitted.inc_by(n as u64);
            }
            Err(e) => {
                refused += n;
                shared.metrics.queries_unrecorded.inc_by(n as u64);
                warn!(error = %e, entries = n, "a query-record transaction was refused: these queries are served but not recorded");
            }
        }
    }
    if refused == 0 {
        info!(entries = count, transactions = txs.len(), "query records submitted");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrd_consensus::crypto::sha256;
    use yrd_ledger::queries::{Nonce, SignedRequest};
    use yrd_ledger::tx::TxId;
    use yrd_ledger::uscc::Uscc;

    fn entry(lender: &SecretKey, chain: &yrd_consensus::crypto::Hash32, node: &SecretKey, n: u64) -> QueryEntry {
        let path = format!("/v1/subjects/{}/attestations", Uscc::sample(n));
        let request = SignedRequest::sign(lender, chain, &node.public(), "GET", &path, b"", 1_800_000_000_000 + n, Nonce::random()).unwrap();
        QueryEntry {
            request,
            subject: Uscc::sample(n),
            authorisation: TxId(sha256(&[&n.to_be_bytes()])),
            response: sha256(&[b"answer"]),
            served_at_ms: 1_800_000_000_000 + n,
            height: 7,
        }
    }

    #[test]
    fn records_are_packed_under_the_transaction_limits_numbered_without_gaps_and_lose_no_entry() {
        let node = SecretKey::from_seed(b"node");
        let lender = SecretKey::from_seed(b"lender");
        let chain = sha256(&[b"chain"]);
        let entries: Vec<QueryEntry> = (1..=100).map(|n| entry(&lender, &chain, &node, n)).collect();
        let recorder = QueryRecorder::new(Some(node.clone()), QueriesConfig::default());
        let txs = recorder.sign_numbered(&node, chain, Some(41), entries.clone());
        assert!(txs.len() > 1);
        let mut back = Vec::new();
        for (i, t) in txs.iter().enumerate() {
            assert_eq!(t.tx.sequence, 42 + i as u64, "consecutive after the ledger's last");
            assert!(t.encode().unwrap().len() <= MAX_TX_BYTES);
            t.verify_signature().unwrap();
            let TxBody::RecordQueries(q) = &t.tx.body else { panic!("not a record") };
            q.check_format().unwrap();
            back.extend(q.entries.iter().cloned());
        }
        assert_eq!(back, entries, "every entry, in order");
        // As few as fit: no transaction could have taken the next one's first entry.
        for w in txs.windows(2) {
            let (TxBody::RecordQueries(a), TxBody::RecordQueries(b)) = (&w[0].tx.body, &w[1].tx.body) else { unreachable!() };
            let mut more = a.entries.clone();
            more.push(b.entries[0].clone());
            let bigger = QueryRecorder::sign_records(&node, chain, 1, more.clone());
            assert!(
                more.len() > MAX_QUERY_ENTRIES || bigger.len() > 1,
                "a transaction of {} entries left room for another",
                a.entries.len()
            );
        }
        // The next flush continues after them, even if the ledger has not seen them yet.
        let more = recorder.sign_numbered(&node, chain, Some(41), vec![entry(&lender, &chain, &node, 1)]);
        assert_eq!(more[0].tx.sequence, 42 + txs.len() as u64);
    }

    #[test]
    fn each_record_holds_one_request_keys_entries() {
        let node = SecretKey::from_seed(b"node");
        let (a, b) = (SecretKey::from_seed(b"lender a"), SecretKey::from_seed(b"lender b"));
        let chain = sha256(&[b"chain"]);
        // Interleaved reads of two lenders, few enough for one transaction.
        let entries: Vec<QueryEntry> =
            (1..=6).map(|n| entry(if n % 2 == 0 { &a } else { &b }, &chain, &node, n)).collect();
        let txs = QueryRecorder::sign_records(&node, chain, 1, entries.clone());
        assert_eq!(txs.len(), 2, "one transaction per lender key");
        let mut back = Vec::new();
        for t in &txs {
            let TxBody::RecordQueries(q) = &t.tx.body else { panic!("not a record") };
            let key = q.entries[0].request.key;
            assert!(q.entries.iter().all(|e| e.request.key == key), "a record mixes request keys");
            back.extend(q.entries.iter().cloned());
        }
        // Nothing lost; each key's entries keep their order.
        assert_eq!(back.len(), entries.len());
        for k in [b.public(), a.public()] {
            let mine = |v: &[QueryEntry]| v.iter().filter(|e| e.request.key == k).cloned().collect::<Vec<_>>();
            assert_eq!(mine(&back), mine(&entries));
        }
    }
}
