//! Subject records in sled (store format 7): a record of any size is updated
//! in O(log n) per appended or revoked entry, and any page of it is read and
//! proven without the rest.
//!
//! | prefix | key                                        | value |
//! |--------|--------------------------------------------|-------|
//! | `s`    | USCC (18)                                  | [`SubjectHead`]: entry count and the root of the entries tree |
//! | `e`    | USCC (18) ‖ chunk (u64 BE)                 | entries `64·chunk ..` of the record, canonical `Vec<SubjectEntry>` (up to [`ENTRY_CHUNK`]) |
//! | `n`    | USCC (18) ‖ level (u8) ‖ chunk (u64 BE)    | up to [`NODE_CHUNK`] complete nodes of the entries tree at that level |
//!
//! The entries tree is the RFC 9162 tree over the entries' commitments
//! ([`crate::subjects::entry_leaf`]), stored as its complete nodes exactly like
//! the transaction log ([`crate::merkle`]). Appending `k` entries to a subject
//! writes its head, the last entry chunk and the node chunks the new nodes fall
//! in (about two, amortised); a revocation rewrites one entry chunk and the
//! node chunks on its path (one per level). Nothing is re-hashed but the new
//! leaves and their ancestors.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use yrd_consensus::codec::{self, CodecError};
use yrd_consensus::crypto::Hash32;
use yrd_consensus::types::Height;

use super::{subject_db_key, BlockBatch, Ledger, StoreError};
use crate::merkle::{self, NodeSource};
use crate::merkle_range;
use crate::subjects::{entries_tree, entry_leaf, RecordRoot, SubjectEntry, SubjectRecord};
use crate::tx::{RevocationReason, TxId};
use crate::uscc::Uscc;

/// Entries per `e` key: an append rewrites at most this many entries (~6 KiB),
/// and a page of `k` entries is read from `k / 64 + 2` keys.
pub(crate) const ENTRY_CHUNK: u64 = 64;
/// Node hashes per `n` key (8 KiB), as the log's chunks.
pub(crate) const NODE_CHUNK: u64 = 256;
/// Largest encoded entry chunk accepted from the store (64 entries of at most
/// ~120 bytes, with room).
const MAX_ENTRY_CHUNK_BYTES: usize = 64 * 1024;

/// What `s ‖ USCC` holds: enough for the subject's map value
/// ([`RecordRoot`]) without reading an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectHead {
    pub count: u64,
    pub root: Hash32,
}

impl SubjectHead {
    pub fn record_root(&self, subject: Uscc) -> RecordRoot {
        RecordRoot { subject, count: self.count, root: self.root }
    }
}

pub(crate) fn entry_chunk_key(s: &Uscc, chunk: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(27);
    k.push(b'e');
    k.extend_from_slice(s.as_str().as_bytes());
    k.extend_from_slice(&chunk.to_be_bytes());
    k
}

pub(crate) fn node_chunk_key(s: &Uscc, level: u8, chunk: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(28);
    k.push(b'n');
    k.extend_from_slice(s.as_str().as_bytes());
    k.push(level);
    k.extend_from_slice(&chunk.to_be_bytes());
    k
}

/// A sled key and its value.
pub(crate) type KeyValue = (Vec<u8>, Vec<u8>);

/// Every key and value `rec` is stored as, computed from scratch (what the
/// audit compares and the repair writes; incremental updates give the same bytes).
pub(crate) fn record_kvs(rec: &SubjectRecord) -> Result<Vec<KeyValue>, CodecError> {
    let commitments = rec.commitments()?;
    let tree = entries_tree(&commitments);
    let head = SubjectHead { count: rec.entries.len() as u64, root: tree.root() };
    let mut out = vec![(subject_db_key(&rec.subject), codec::encode(&head)?)];
    for (c, chunk) in rec.entries.chunks(ENTRY_CHUNK as usize).enumerate() {
        out.push((entry_chunk_key(&rec.subject, c as u64), codec::encode(&chunk.to_vec())?));
    }
    for (level, row) in tree.levels().iter().enumerate() {
        for (c, chunk) in row.chunks(NODE_CHUNK as usize).enumerate() {
            let bytes: Vec<u8> = chunk.iter().flat_map(|h| h.0).collect();
            out.push((node_chunk_key(&rec.subject, level as u8, c as u64), bytes));
        }
    }
    Ok(out)
}

/// Complete nodes at `level` of an entries tree over `count` leaves (what its
/// node chunks at that level hold).
fn complete_nodes(count: u64, level: u8) -> u64 {
    count.checked_shr(u32::from(level)).unwrap_or(0)
}

fn decode_entry_chunk(v: &[u8]) -> Result<Vec<SubjectEntry>, StoreError> {
    Ok(codec::decode(v, MAX_ENTRY_CHUNK_BYTES, "subject entry chunk")?)
}

/// A subject's stored entries tree, with this block's changes on top.
pub(crate) struct SubjectNodes<'a> {
    tree: &'a sled::Tree,
    subject: Uscc,
    size: u64,
    extra: HashMap<(u8, u64), Hash32>,
}

impl NodeSource for SubjectNodes<'_> {
    type Error = StoreError;

    fn node(&self, level: u8, index: u64) -> Result<Hash32, StoreError> {
        if let Some(h) = self.extra.get(&(level, index)) {
            return Ok(*h);
        }
        let missing = || StoreError::Corrupt(format!("subject {} has no entries-tree node ({level}, {index})", self.subject));
        let chunk = self.tree.get(node_chunk_key(&self.subject, level, index / NODE_CHUNK))?.ok_or_else(missing)?;
        let off = (index % NODE_CHUNK) as usize * 32;
        let bytes: [u8; 32] = chunk.get(off..off + 32).and_then(|b| b.try_into().ok()).ok_or_else(missing)?;
        Ok(Hash32(bytes))
    }

    fn tree_size(&self) -> Result<u64, StoreError> {
        Ok(self.size)
    }
}

/// One block's changes to one subject: its new head, the entries added or
/// changed (by position) and the entries-tree nodes added or changed.
#[derive(Debug, Clone)]
pub(crate) struct SubjectDelta {
    /// The entry count before the block: chunks wholly past it hold nothing yet,
    /// so writing them needs no read.
    pub old_count: u64,
    pub head: SubjectHead,
    pub entries: BTreeMap<u64, SubjectEntry>,
    pub nodes: BTreeMap<(u8, u64), Hash32>,
}

/// What a block does to one subject: entries revoked (target, its height, by,
/// why) and entries appended, each in block order.
#[derive(Debug, Clone, Default)]
pub(crate) struct SubjectChanges {
    pub revoked: Vec<(TxId, Height, TxId, RevocationReason)>,
    pub appended: Vec<SubjectEntry>,
}

fn tree_err(e: merkle::MerkleError<StoreError>) -> StoreError {
    match e {
        merkle::MerkleError::Source(e) => e,
        other => StoreError::Corrupt(format!("subject entries tree: {other}")),
    }
}

impl Ledger {
    /// The subject's entry count and entries-tree root, if it has a record.
    pub fn subject_head(&self, subject: &Uscc) -> Result<Option<SubjectHead>, StoreError> {
        match self.tree.get(subject_db_key(subject))? {
            Some(v) => Ok(Some(codec::decode(&v, 64, "subject head")?)),
            None => Ok(None),
        }
    }

    fn entry_chunk(&self, subject: &Uscc, chunk: u64) -> Result<Vec<SubjectEntry>, StoreError> {
        let v = self
            .tree
            .get(entry_chunk_key(subject, chunk))?
            .ok_or_else(|| StoreError::Corrupt(format!("subject {subject} has no entry chunk {chunk}")))?;
        decode_entry_chunk(&v)
    }

    /// Entries `[from, to)` of the subject's record (`to` at most its count).
    pub fn subject_entries(&self, subject: &Uscc, from: u64, to: u64) -> Result<Vec<SubjectEntry>, StoreError> {
        let mut out = Vec::with_capacity(to.saturating_sub(from) as usize);
        if from >= to {
            return Ok(out);
        }
        for chunk in from / ENTRY_CHUNK..=(to - 1) / ENTRY_CHUNK {
            let entries = self.entry_chunk(subject, chunk)?;
            let base = chunk * ENTRY_CHUNK;
            for (i, e) in entries.into_iter().enumerate() {
                let pos = base + i as u64;
                if pos >= from && pos < to {
                    out.push(e);
                }
            }
        }
        if out.len() as u64 != to - from {
            return Err(StoreError::Corrupt(format!("subject {subject}: entries {from}..{to} are not all stored")));
        }
        Ok(out)
    }

    /// The whole subject record (every attestation about the subject, with
    /// status): linear in its size; pages and lookups by id need not read it.
    pub fn subject_record(&self, subject: &Uscc) -> Result<Option<SubjectRecord>, StoreError> {
        let Some(head) = self.subject_head(subject)? else { return Ok(None) };
        Ok(Some(SubjectRecord { subject: *subject, entries: self.subject_entries(subject, 0, head.count)? }))
    }

    /// The entry of attestation `id`, committed at `height`, and its position:
    /// a binary search over the entry chunks by height (entries are in commit
    /// order), O(log n) chunk reads.
    pub fn subject_entry(&self, subject: &Uscc, id: &TxId, height: Height) -> Result<Option<(u64, SubjectEntry)>, StoreError> {
        let Some(head) = self.subject_head(subject)? else { return Ok(None) };
        let chunks = head.count.div_ceil(ENTRY_CHUNK);
        let (mut lo, mut hi) = (0u64, chunks);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let last = self.entry_chunk(subject, mid)?.last().map_or(Height(0), |e| e.height);
            if last < height {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        for chunk in lo..chunks {
            let entries = self.entry_chunk(subject, chunk)?;
            if let Some(i) = entries.iter().position(|e| &e.id == id) {
                return Ok(Some((chunk * ENTRY_CHUNK + i as u64, entries[i].clone())));
            }
            if entries.first().is_some_and(|e| e.height > height) {
                break;
            }
        }
        Ok(None)
    }

    /// The range proof of entries `[from, to)` in the subject's entries tree.
    pub fn subject_range_proof(&self, subject: &Uscc, from: u64, to: u64) -> Result<Vec<Hash32>, StoreError> {
        let head = self.subject_head(subject)?.ok_or_else(|| StoreError::NotFound(subject.to_string()))?;
        let nodes = SubjectNodes { tree: &self.tree, subject: *subject, size: head.count, extra: HashMap::new() };
        merkle_range::range_proof(&nodes, from, to, head.count).map_err(tree_err)
    }

    /// The delta a block's `changes` make to `subject`: revoked entries'
    /// leaves updated (O(log n) each), then the new entries appended (O(k + log n)).
    pub(crate) fn subject_delta(&self, subject: &Uscc, changes: &SubjectChanges) -> Result<SubjectDelta, StoreError> {
        let count = self.subject_head(subject)?.map_or(0, |h| h.count);
        let mut nodes = SubjectNodes { tree: &self.tree, subject: *subject, size: count, extra: HashMap::new() };
        let mut entries = BTreeMap::new();
        for (target, height, by, reason) in &changes.revoked {
            let (pos, mut e) = self
                .subject_entry(subject, target, *height)?
                .ok_or_else(|| StoreError::Corrupt(format!("{target} is missing from the record of {subject}")))?;
            e.revoked = Some((*by, *reason));
            let leaf = entry_leaf(&e.commitment()?);
            for (l, i, h) in merkle_range::update_nodes(&nodes, pos, leaf, count).map_err(tree_err)? {
                nodes.extra.insert((l, i), h);
            }
            entries.insert(pos, e);
        }
        let leaves = changes.appended.iter().map(|e| e.commitment().map(|c| entry_leaf(&c))).collect::<Result<Vec<_>, _>>()?;
        for (l, i, h) in merkle::append_nodes(&nodes, count, &leaves).map_err(tree_err)? {
            nodes.extra.insert((l, i), h);
        }
        for (k, e) in changes.appended.iter().enumerate() {
            entries.insert(count + k as u64, e.clone());
        }
        nodes.size = count + leaves.len() as u64;
        let root = merkle::root(&nodes, nodes.size).map_err(tree_err)?;
        Ok(SubjectDelta {
            old_count: count,
            head: SubjectHead { count: nodes.size, root },
            entries,
            nodes: nodes.extra.into_iter().collect(),
        })
    }

    /// Adds the writes of `delta` to the block's batch: the head, each entry
    /// chunk and node chunk it touches (read, patched, written whole). A chunk
    /// that starts at or past what the record held before the block (its entry
    /// count, or `count >> level` complete nodes at a level) is not stored yet
    /// and is not read: new subjects and fresh chunks cost no lookup.
    pub(crate) fn write_subject(&self, batch: &mut BlockBatch, subject: &Uscc, delta: &SubjectDelta) -> Result<(), StoreError> {
        batch.insert(subject_db_key(subject), codec::encode(&delta.head)?);
        let mut chunks: BTreeMap<u64, Vec<(u64, &SubjectEntry)>> = BTreeMap::new();
        for (pos, e) in &delta.entries {
            chunks.entry(pos / ENTRY_CHUNK).or_default().push((pos % ENTRY_CHUNK, e));
        }
        for (chunk, changed) in chunks {
            let key = entry_chunk_key(subject, chunk);
            let stored = chunk.saturating_mul(ENTRY_CHUNK) < delta.old_count;
            let mut entries = match stored.then(|| self.tree.get(&key)).transpose()?.flatten() {
                Some(v) => decode_entry_chunk(&v)?,
                None => Vec::new(),
            };
            for (off, e) in changed {
                let off = off as usize;
                match off.cmp(&entries.len()) {
                    std::cmp::Ordering::Less => entries[off] = e.clone(),
                    std::cmp::Ordering::Equal => entries.push(e.clone()),
                    std::cmp::Ordering::Greater => {
                        return Err(StoreError::Corrupt(format!("subject {subject}: entry chunk {chunk} has a gap before entry {off}")))
                    }
                }
            }
            batch.insert(key, codec::encode(&entries)?);
        }
        let mut chunks: BTreeMap<(u8, u64), Vec<(usize, &Hash32)>> = BTreeMap::new();
        for ((level, index), h) in &delta.nodes {
            chunks.entry((*level, index / NODE_CHUNK)).or_default().push(((index % NODE_CHUNK) as usize * 32, h));
        }
        for ((level, chunk), changed) in chunks {
            let key = node_chunk_key(subject, level, chunk);
            let stored = chunk.saturating_mul(NODE_CHUNK) < complete_nodes(delta.old_count, level);
            let mut bytes = stored.then(|| self.tree.get(&key)).transpose()?.flatten().map(|v| v.to_vec()).unwrap_or_default();
            for (off, h) in changed {
                if off < bytes.len() {
                    bytes[off..off + 32].copy_from_slice(&h.0);
                } else if off == bytes.len() {
                    bytes.extend_from_slice(&h.0);
                } else {
                    return Err(StoreError::Corrupt(format!("subject {subject}: node chunk ({level}, {chunk}) has a gap")));
                }
            }
            batch.insert(key, bytes);
        }
        Ok(())
    }

    /// The check at open (`repair::check_tip`) for one subject the tip block
    /// touched: the head's count matches the entry chunks (the last one holds
    /// exactly the rest, nothing of a later block), and the stored entries
    /// tree holds each of `positions` (the tip's new or revoked entries) as
    /// its leaf with the path above it, under the head's root. O(k log n).
    pub(crate) fn check_subject_at_tip(&self, subject: &Uscc, positions: &[u64]) -> Result<(), String> {
        let head = self.subject_head(subject).map_err(|e| e.to_string())?.ok_or_else(|| format!("subject {subject} has no head"))?;
        let last = head.count.div_ceil(ENTRY_CHUNK).saturating_sub(1);
        let chunk = self.entry_chunk(subject, last).map_err(|e| e.to_string())?;
        if chunk.len() as u64 != head.count - last * ENTRY_CHUNK {
            return Err(format!("subject {subject}: entry chunk {last} holds {} entries, its head counts {}", chunk.len(), head.count));
        }
        let nodes = SubjectNodes { tree: &self.tree, subject: *subject, size: head.count, extra: HashMap::new() };
        for &p in positions {
            let entry = self.subject_entries(subject, p, p + 1).map_err(|e| e.to_string())?;
            let commitment = entry.first().ok_or_else(|| format!("subject {subject}: no entry {p}"))?.commitment().map_err(|e| e.to_string())?;
            for (l, i, h) in merkle_range::update_nodes(&nodes, p, entry_leaf(&commitment), head.count).map_err(|e| e.to_string())? {
                if nodes.node(l, i).map_err(|e| e.to_string())? != h {
                    return Err(format!("subject {subject}: entries-tree node ({l}, {i}) above entry {p} differs from its entries"));
                }
            }
        }
        let root = merkle::root(&nodes, head.count).map_err(|e| e.to_string())?;
        if root != head.root {
            return Err(format!("subject {subject}: the stored entries tree gives root {root}, its head has {}", head.root));
        }
        Ok(())
    }
}

/// The check at open over every subject (`repair::check_tip`): each entry
/// chunk and entries-tree node chunk belongs to a subject with a head and
/// holds exactly what the head's count gives — nothing of a block above the
/// tip, none missing. One pass over the `s`, `e` and `n` keys, reading only the
/// length of each value (as the issuer index is checked at open).
pub(crate) fn check_subject_chunks(tree: &sled::Tree) -> Result<(), String> {
    let err = |e: sled::Error| format!("read failed: {e}");
    let mut heads: HashMap<Vec<u8>, (u64, u64, u64)> = HashMap::new(); // subject → (count, e chunks, n chunks)
    for item in tree.scan_prefix([b's']) {
        let (k, v) = item.map_err(err)?;
        let head: SubjectHead = codec::decode(&v, 64, "subject head").map_err(|e| format!("subject head {}: {e}", hex::encode(&k)))?;
        heads.insert(k[1..].to_vec(), (head.count, 0, 0));
    }
    let name = |k: &[u8]| String::from_utf8_lossy(k.get(1..19).unwrap_or_default()).to_string();
    for item in tree.scan_prefix([b'e']) {
        let (k, v) = item.map_err(err)?;
        let subject = name(&k);
        let chunk = k.get(19..27).and_then(|b| <[u8; 8]>::try_from(b).ok()).map(u64::from_be_bytes).ok_or_else(|| format!("entry chunk key {} is malformed", hex::encode(&k)))?;
        let (count, seen, _) = heads.get_mut(k.get(1..19).unwrap_or_default()).ok_or_else(|| format!("subject {subject} has entry chunks but no head"))?;
        *seen += 1;
        let want = count.saturating_sub(chunk * ENTRY_CHUNK).min(ENTRY_CHUNK);
        let len = v.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()).map(u64::from_be_bytes);
        if want == 0 || len != Some(want) {
            return Err(format!("subject {subject}: entry chunk {chunk} holds {len:?} entries, a record of {count} has {want} there"));
        }
    }
    for item in tree.scan_prefix([b'n']) {
        let (k, v) = item.map_err(err)?;
        let subject = name(&k);
        let level = k.get(19).copied().ok_or_else(|| format!("node chunk key {} is malformed", hex::encode(&k)))?;
        let chunk = k.get(20..28).and_then(|b| <[u8; 8]>::try_from(b).ok()).map(u64::from_be_bytes).ok_or_else(|| format!("node chunk key {} is malformed", hex::encode(&k)))?;
        let (count, _, seen) = heads.get_mut(k.get(1..19).unwrap_or_default()).ok_or_else(|| format!("subject {subject} has entries-tree nodes but no head"))?;
        *seen += 1;
        let want = complete_nodes(*count, level).saturating_sub(chunk * NODE_CHUNK).min(NODE_CHUNK) as usize * 32;
        if want == 0 || v.len() != want {
            return Err(format!("subject {subject}: entries-tree level {level} chunk {chunk} holds {} bytes, a record of {count} has {want}", v.len()));
        }
    }
    for (k, (count, e, n)) in heads {
        let want_e = count.div_ceil(ENTRY_CHUNK);
        let want_n: u64 = (0..64u32).map(|l| (count >> l).div_ceil(NODE_CHUNK)).sum();
        if count == 0 || e != want_e || n != want_n {
            let subject = String::from_utf8_lossy(&k);
            return Err(format!("subject {subject}: {e} entry chunks and {n} node chunks stored, a record of {count} has {want_e} and {want_n}"));
        }
    }
    Ok(())
}

