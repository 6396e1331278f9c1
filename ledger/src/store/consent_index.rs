//! Reading the consent indexes: authorisations by `(subject, lender)` (`a`) and
//! query records by `(subject, height)` (`q`) (docs/access.md, docs/ledger.md
//! "Store"). Written by `Ledger::write` with the block that changes them.

use yrd_consensus::types::Height;

use super::{Ledger, StoreError, TxLocation};
use crate::consent::{self, ConsentSource, Grant, Target};
use crate::queries::QueryEntry;
use crate::tx::{SignedTransaction, TxBody, TxId};
use crate::uscc::Uscc;

/// One query record as listed for a subject: where it is and what it says.
#[derive(Debug, Clone)]
pub struct QueryRecordAt {
    /// The block and position of the record transaction.
    pub height: Height,
    pub index: u32,
    /// The position of the entry in the transaction.
    pub entry: u16,
    pub tx_id: TxId,
    /// The record transaction (signed by the serving node).
    pub tx: SignedTransaction,
    pub query: QueryEntry,
}

impl Ledger {
    /// A committed transaction and the height of its block.
    pub fn committed_tx(&self, id: &TxId) -> Result<Option<(SignedTransaction, Height)>, StoreError> {
        match self.tx_location(id)? {
            Some(loc) => Ok(Some((self.tx_at(&loc)?, loc.height))),
            None => Ok(None),
        }
    }

    /// The authorisations `lender` (by name) holds for `subject`, with their state.
    pub fn grants(&self, subject: &Uscc, lender: &str) -> Result<Vec<Grant>, StoreError> {
        match self.tree.get(consent::grant_key(subject, lender))? {
            Some(v) => Ok(consent::decode_grants(&v)?),
            None => Ok(Vec::new()),
        }
    }

    /// Every lender's authorisations for `subject`: (lender name, grants).
    pub fn grants_of_subject(&self, subject: &Uscc) -> Result<Vec<(String, Vec<Grant>)>, StoreError> {
        let mut prefix = vec![b'a'];
        prefix.extend_from_slice(subject.as_str().as_bytes());
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(&prefix) {
            let (k, v) = item?;
            let name = String::from_utf8(k[prefix.len()..].to_vec())
                .map_err(|_| StoreError::Corrupt("authorisation index key holds a non-UTF-8 lender name".into()))?;
            out.push((name, consent::decode_grants(&v)?));
        }
        Ok(out)
    }

    /// The transaction at position `index` of block `height`.
    pub fn tx_in_block(&self, height: Height, index: u32) -> Result<Option<(TxId, SignedTransaction)>, StoreError> {
        let part = index / super::TX_INDEX_PART as u32;
        let Some(v) = self.tree.get(super::tx_index_key(height, part))? else { return Ok(None) };
        let at = (index as usize % super::TX_INDEX_PART) * super::TX_INDEX_ENTRY;
        let Some(e) = v.get(at..at + super::TX_INDEX_ENTRY) else { return Ok(None) };
        let (id, offset, len) = super::decode_tx_index_entry(e);
        let tx = self.tx_at(&TxLocation { height, index, offset, len })?;
        Ok(Some((id, tx)))
    }

    /// Every query record about `subject`, in commit order, from height `from` on,
    /// at most `limit` of them.
    pub fn query_records(&self, subject: &Uscc, from: Height, limit: usize) -> Result<Vec<QueryRecordAt>, StoreError> {
        let start = consent::query_key(subject, from.0);
        let end = consent::query_key(subject, u64::MAX);
        let mut out = Vec::new();
        'blocks: for item in self.tree.range(start..=end) {
            let (k, v) = item?;
            let height = Height(super::u64_of(&k[19..], "query index height")?);
            let entries = consent::decode_query_index(&v)
                .ok_or_else(|| StoreError::Corrupt(format!("query index of {subject} at height {height} is malformed")))?;
            for (index, entry) in entries {
                if out.len() >= limit {
                    break 'blocks;
                }
                let (tx_id, tx) = self.tx_in_block(height, index)?.ok_or_else(|| {
                    StoreError::Corrupt(format!("query index points at transaction {index} of block {height}, which is missing"))
                })?;
                let TxBody::RecordQueries(q) = &tx.tx.body else {
                    return Err(StoreError::Corrupt(format!("query index points at a {} in block {height}", tx.tx.body.type_name())));
                };
                let query = q.entries.get(entry as usize).cloned().ok_or_else(|| {
                    StoreError::Corrupt(format!("query index points at entry {entry} of a record with {}", q.entries.len()))
                })?;
                out.push(QueryRecordAt { height, index, entry, tx_id, tx: tx.clone(), query });
            }
        }
        Ok(out)
    }
}

impl ConsentSource for Ledger {
    type Error = StoreError;

    fn grants(&self, subject: &Uscc, lender: &str) -> Result<Vec<Grant>, StoreError> {
        Ledger::grants(self, subject, lender)
    }

    fn target(&self, id: &TxId) -> Result<Target, StoreError> {
        let Some((tx, height)) = self.committed_tx(id)? else { return Ok(Target::Missing) };
        let TxBody::Authorise(a) = &tx.tx.body else { return Ok(Target::Other) };
        let lender = consent::lender_name(&self.membership_at(height), &tx.tx.issuer)
            .ok_or_else(|| StoreError::Corrupt(format!("authorisation {id} is signed by no lender's key")))?;
        Ok(Target::Authorisation { subject: a.subject, lender, height: height.0 })
    }

    fn block_time_ms(&self, height: u64) -> Result<Option<u64>, StoreError> {
        if height == 0 || height > self.height().0 {
            return Ok(None);
        }
        if let Some(h) = self.last_header().filter(|h| h.height.0 == height) {
            return Ok(Some(h.timestamp_ms));
        }
        Ok(self.header(Height(height))?.map(|h| h.timestamp_ms))
    }
}
