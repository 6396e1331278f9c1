//! Reads of one request, each store value fetched once ([`ReadMemo`]).
//!
//! A subject report proves every record of its page in the log: per record the
//! transaction's block (cut out of it), its block header (for the log index) and
//! an RFC 9162 audit path, about 2·log₂(log size) log nodes read from
//! 256-node chunks. The records of one page share many of these: every path
//! runs through the same right border of the log, the upper levels of any two
//! paths lie in the same chunks, and records committed together share their
//! block. Profiled at 1,000 attestations/s with lender reads (BENCHMARKS.md
//! "Authorised queries"), the separate store reads were ~14 % of the serving
//! node's CPU.
//!
//! The hashes of the log's incomplete right-border ranges, which every path
//! at one size shares, are computed once too.
//!
//! A memo lives for one request, under the ledger's read lock (no block is
//! committed while it lives), so what it remembers is exactly what the store
//! holds: no invalidation exists because nothing it holds can change. It holds
//! at most the values one page touches (`MAX_REPORT_PAGE_ENTRIES` records).

use std::cell::RefCell;
use std::collections::HashMap;

use yrd_consensus::crypto::Hash32;
use yrd_consensus::types::Height;

use super::{LoggedTx, Ledger, StoreError, TxLocation, LOG_CHUNK};
use crate::merkle::{self, NodeSource};
use crate::tx::TxId;

/// The store values one request reads, fetched once each (module docs).
pub struct ReadMemo<'a> {
    ledger: &'a Ledger,
    /// Log chunks by (level, chunk index).
    chunks: RefCell<HashMap<(u8, u64), sled::IVec>>,
    /// Stored blocks by height.
    blocks: RefCell<HashMap<Height, sled::IVec>>,
    /// The log index of each block's first transaction, by height.
    first_log_index: RefCell<HashMap<Height, u64>>,
    /// Hashes of incomplete log ranges (the right border every path shares).
    ranges: RefCell<HashMap<(u64, u64), Hash32>>,
}

impl<'a> ReadMemo<'a> {
    pub fn new(ledger: &'a Ledger) -> ReadMemo<'a> {
        ReadMemo {
            ledger,
            chunks: RefCell::new(HashMap::new()),
            blocks: RefCell::new(HashMap::new()),
            first_log_index: RefCell::new(HashMap::new()),
            ranges: RefCell::new(HashMap::new()),
        }
    }

    pub fn ledger(&self) -> &'a Ledger {
        self.ledger
    }

    /// [`Ledger::logged_tx`], each block and header read once per memo.
    pub fn logged_tx(&self, id: &TxId) -> Result<Option<LoggedTx>, StoreError> {
        let Some(loc) = self.ledger.tx_location(id)? else { return Ok(None) };
        let bytes = self.tx_bytes_at(&loc)?;
        Ok(Some(LoggedTx { bytes, height: loc.height, log_index: self.first_log_index(loc.height)? + loc.index as u64 }))
    }

    /// [`Ledger::inclusion_proof`], each log chunk read once per memo.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash32>, StoreError> {
        merkle::inclusion_proof(self, index, size).map_err(super::log_err)
    }

    fn tx_bytes_at(&self, loc: &TxLocation) -> Result<Vec<u8>, StoreError> {
        let block = memo(&self.blocks, loc.height, || self.ledger.indexed_block(loc.height))?;
        super::tx_in_block(&block, loc)
    }

    fn first_log_index(&self, height: Height) -> Result<u64, StoreError> {
        memo(&self.first_log_index, height, || self.ledger.first_log_index(height))
    }
}

/// The value under `key` in `cell`, loaded and kept there the first time.
fn memo<K: std::hash::Hash + Eq, V: Clone>(
    cell: &RefCell<HashMap<K, V>>,
    key: K,
    load: impl FnOnce() -> Result<V, StoreError>,
) -> Result<V, StoreError> {
    if let Some(v) = cell.borrow().get(&key) {
        return Ok(v.clone());
    }
    let v = load()?;
    cell.borrow_mut().insert(key, v.clone());
    Ok(v)
}

impl NodeSource for ReadMemo<'_> {
    type Error = StoreError;

    fn node(&self, level: u8, index: u64) -> Result<Hash32, StoreError> {
        let chunk = memo(&self.chunks, (level, index / LOG_CHUNK), || self.ledger.log_chunk(level, index))?;
        super::log_node_in_chunk(&chunk, level, index)
    }

    fn tree_size(&self) -> Result<u64, StoreError> {
        Ok(self.ledger.log_size)
    }

    fn remembered_range(&self, lo: u64, hi: u64) -> Option<Hash32> {
        self.ranges.borrow().get(&(lo, hi)).copied()
    }

    fn remember_range(&self, lo: u64, hi: u64, hash: Hash32) {
        self.ranges.borrow_mut().insert((lo, hi), hash);
    }
}
