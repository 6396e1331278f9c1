//! The subject map: an authenticated map from USCC to the set of records about
//! that subject, committed to by every block header (`subjects_root`).
//!
//! It is a compact sparse Merkle tree over 256-bit keys `SHA-256(uscc)`:
//! - the empty subtree hashes to 32 zero bytes;
//! - a subtree holding exactly one entry is that entry's leaf,
//!   `H(0x00 ‖ key ‖ value)`, at whatever depth it sits;
//! - any other subtree is `H(0x01 ‖ left ‖ right)`, left = next key bit 0.
//!
//! A leaf's value commits to the list of every attestation about the subject
//! with its current status, one entry at a time:
//! `H(TAG_SUBJECT_RECORD ‖ canonical(RecordRoot { subject, count, root }))` where
//! `root` is the RFC 9162 root over the entries' commitments
//! `H(TAG_SUBJECT_ENTRY ‖ canonical(SubjectEntry))`, in commit order. A lender
//! who holds a page of the record with its range proof, and the map proof
//! against a certified header, knows those are entries `from..to` of exactly
//! `count` as of that height; pages covering `0..count` are the complete list.
//! Because each entry enters the value only through its hash, a proof file can
//! carry an entry its reader may not see as that hash alone ([`RecordPage`],
//! [`EntryView::Redacted`]) and the value still verifies: the record stays
//! provably complete without revealing the hidden entry.
//! Absence is proved by an empty slot or by another key's leaf sitting where the
//! path ends.
//!
//! Updates cost O(log n) hashes per changed subject; the tree lives in memory
//! and is rebuilt from the stored records when the store opens. It is kept
//! small (issue 12 item 6): a leaf holds its key and value only (its hash is
//! recomputed when a parent is rehashed or a proof passes it), an internal node
//! its two children and its hash, and there is no second index of the leaves —
//! a lookup walks the tree (about log2(n) steps). `examples/subject_map_memory.rs`
//! measures the resident bytes per enterprise.

use serde::{Deserialize, Serialize};
use yrd_consensus::codec::{self, CodecError};
use yrd_consensus::crypto::{sha256, signing_bytes, Hash32, PublicKey};
use yrd_consensus::types::Height;

use crate::merkle::{self, MemoryLog};
use crate::merkle_range::{root_from_range, RangeError};
use crate::tx::{AttestationKind, RevocationReason, TxId};
use crate::uscc::Uscc;

/// Domain tag of subject-record value hashes.
pub const TAG_SUBJECT_RECORD: &[u8] = b"ledger/subject-record";
/// Domain tag of the hash of one entry of a subject record (its commitment).
pub const TAG_SUBJECT_ENTRY: &[u8] = b"ledger/subject-entry";
/// Largest encoded subject record we accept from the wire.
pub const MAX_SUBJECT_RECORD_BYTES: usize = 4 * 1024 * 1024;

/// One attestation about a subject, with its current status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectEntry {
    pub id: TxId,
    pub height: Height,
    pub issuer: PublicKey,
    pub kind: AttestationKind,
    pub valid_until_ms: Option<u64>,
    /// `Some` once revoked: the revoking transaction and why.
    pub revoked: Option<(TxId, RevocationReason)>,
}

/// Everything about one subject, in commit order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectRecord {
    pub subject: Uscc,
    pub entries: Vec<SubjectEntry>,
}

impl SubjectEntry {
    /// The entry's commitment: `H(signing_bytes("ledger/subject-entry",
    /// canonical(SubjectEntry)))`. It reveals nothing of the entry to whoever
    /// does not know its transaction id (32 bytes of a SHA-256 over the signed
    /// transaction): the id enters the hash, so its other fields cannot be
    /// guessed and checked against it.
    pub fn commitment(&self) -> Result<Hash32, CodecError> {
        let bytes = codec::encode(self)?;
        Ok(sha256(&[&signing_bytes(TAG_SUBJECT_ENTRY, &bytes)]))
    }
}

/// What a subject-map value hashes: the subject, how many entries its record
/// has, and the RFC 9162 root over their commitments in commit order (leaf
/// `H(0x00 ‖ commitment)`, node `H(0x01 ‖ l ‖ r)`), so a page of entries can be
/// proven in place without the others ([`RecordPage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordRoot {
    pub subject: Uscc,
    pub count: u64,
    pub root: Hash32,
}

impl RecordRoot {
    /// `H(signing_bytes("ledger/subject-record", canonical(self)))`.
    pub fn value_hash(&self) -> Result<Hash32, CodecError> {
        let bytes = codec::encode(self)?;
        Ok(sha256(&[&signing_bytes(TAG_SUBJECT_RECORD, &bytes)]))
    }
}

/// The leaf of the entries tree for an entry's commitment: `H(0x00 ‖ commitment)`.
pub fn entry_leaf(commitment: &Hash32) -> Hash32 {
    merkle::leaf_hash(&commitment.0)
}

/// The entries tree of a whole record (every complete node), for building and
/// checking stores and for tests; the store keeps the same nodes on disk.
pub fn entries_tree(commitments: &[Hash32]) -> MemoryLog {
    let mut log = MemoryLog::new();
    let leaves: Vec<Hash32> = commitments.iter().map(entry_leaf).collect();
    log.append_leaf_hashes(&leaves);
    log
}

impl SubjectRecord {
    /// Each entry's commitment, in commit order.
    pub fn commitments(&self) -> Result<Vec<Hash32>, CodecError> {
        self.entries.iter().map(SubjectEntry::commitment).collect()
    }

    /// The subject, the count and the root of the entries tree.
    pub fn record_root(&self) -> Result<RecordRoot, CodecError> {
        let tree = entries_tree(&self.commitments()?);
        Ok(RecordRoot { subject: self.subject, count: self.entries.len() as u64, root: tree.root() })
    }

    /// The map value this record commits to (through each entry's commitment).
    pub fn value_hash(&self) -> Result<Hash32, CodecError> {
        self.record_root()?.value_hash()
    }

    pub fn decode(bytes: &[u8]) -> Result<SubjectRecord, CodecError> {
        codec::decode(bytes, MAX_SUBJECT_RECORD_BYTES, "subject record")
    }
}

/// One entry of a subject record as a proof file carries it: in full, or — for
/// a reader who may not see it (docs/access.md) — only its commitment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryView {
    Full(SubjectEntry),
    Redacted(Hash32),
}

impl EntryView {
    /// The entry's commitment: computed for a full entry, as given for a redacted one.
    pub fn commitment(&self) -> Result<Hash32, CodecError> {
        match self {
            EntryView::Full(e) => e.commitment(),
            EntryView::Redacted(c) => Ok(*c),
        }
    }

    fn of(e: &SubjectEntry, show: &dyn Fn(&SubjectEntry) -> bool) -> Result<EntryView, CodecError> {
        if show(e) {
            Ok(EntryView::Full(e.clone()))
        } else {
            e.commitment().map(EntryView::Redacted)
        }
    }
}

/// Why a page does not give a record root.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error(transparent)]
    Range(#[from] RangeError),
}

/// Entries `[from, from + entries.len())` of a subject record of `count`
/// entries, some possibly redacted, with the range proof that places them in
/// the record's entries tree: it hashes to the same map value as the whole
/// record. A page with `from = 0` and every entry needs no proof hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordPage {
    pub subject: Uscc,
    /// How many entries the whole record has.
    pub count: u64,
    /// The position of the first entry of the page in the record.
    pub from: u64,
    pub entries: Vec<EntryView>,
    /// The range proof ([`crate::merkle_range`]): the hashes of the subtrees
    /// outside the page, left to right.
    pub proof: Vec<Hash32>,
}

impl RecordPage {
    /// The whole `record` as one page, showing the entries `show` accepts and
    /// redacting the others.
    pub fn of(record: &SubjectRecord, show: &dyn Fn(&SubjectEntry) -> bool) -> Result<RecordPage, CodecError> {
        let entries = record.entries.iter().map(|e| EntryView::of(e, show)).collect::<Result<Vec<_>, _>>()?;
        Ok(RecordPage { subject: record.subject, count: record.entries.len() as u64, from: 0, entries, proof: Vec::new() })
    }

    /// The whole record, every entry in full.
    pub fn full(record: &SubjectRecord) -> RecordPage {
        let entries = record.entries.iter().cloned().map(EntryView::Full).collect();
        RecordPage { subject: record.subject, count: record.entries.len() as u64, from: 0, entries, proof: Vec::new() }
    }

    /// Entries `[from, to)` of an in-memory record, with their range proof.
    pub fn range(record: &SubjectRecord, from: u64, to: u64, show: &dyn Fn(&SubjectEntry) -> bool) -> Result<RecordPage, PageError> {
        let count = record.entries.len() as u64;
        if from >= to || to > count {
            return Err(RangeError::OutOfRange { from, to, size: count }.into());
        }
        let tree = entries_tree(&record.commitments()?);
        let proof = crate::merkle_range::range_proof(&tree, from, to, count)
            .map_err(|_| RangeError::OutOfRange { from, to, size: count })?;
        let entries = record.entries[from as usize..to as usize]
            .iter()
            .map(|e| EntryView::of(e, show))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RecordPage { subject: record.subject, count, from, entries, proof })
    }

    /// One past the position of the last entry of the page.
    pub fn to(&self) -> u64 {
        self.from.saturating_add(self.entries.len() as u64)
    }

    /// Whether the page holds the whole record.
    pub fn is_complete(&self) -> bool {
        self.from == 0 && self.entries.len() as u64 == self.count
    }

    /// The record root the page proves: the entries tree's root recomputed
    /// from the page's commitments and its range proof.
    pub fn record_root(&self) -> Result<RecordRoot, PageError> {
        let leaves = self.entries.iter().map(|e| e.commitment().map(|c| entry_leaf(&c))).collect::<Result<Vec<_>, _>>()?;
        let root = root_from_range(self.from, &leaves, self.count, &self.proof)?;
        Ok(RecordRoot { subject: self.subject, count: self.count, root })
    }

    /// The map value of the record this page was cut from.
    pub fn value_hash(&self) -> Result<Hash32, PageError> {
        Ok(self.record_root()?.value_hash()?)
    }

    /// How many entries are redacted.
    pub fn redacted(&self) -> usize {
        self.entries.iter().filter(|e| matches!(e, EntryView::Redacted(_))).count()
    }
}

/// The map key of a subject.
pub fn subject_key(subject: &Uscc) -> [u8; 32] {
    sha256(&[subject.as_str().as_bytes()]).0
}

fn leaf_hash(key: &[u8; 32], value: &Hash32) -> Hash32 {
    sha256(&[&[0u8], key, &value.0])
}

fn internal_hash(left: &Hash32, right: &Hash32) -> Hash32 {
    sha256(&[&[1u8], &left.0, &right.0])
}

/// Bit `depth` of `key`, most significant bit of byte 0 first.
fn bit(key: &[u8; 32], depth: usize) -> bool {
    (key[depth / 8] >> (7 - depth % 8)) & 1 == 1
}

enum Node {
    Empty,
    /// A leaf's hash is `leaf_hash(key, value)`, computed when asked (storing it
    /// would make every node of the tree a third bigger).
    Leaf { key: [u8; 32], value: Hash32 },
    Internal { left: Box<Node>, right: Box<Node>, hash: Hash32 },
}

impl Node {
    fn hash(&self) -> Hash32 {
        match self {
            Node::Empty => Hash32::ZERO,
            Node::Leaf { key, value } => leaf_hash(key, value),
            Node::Internal { hash, .. } => *hash,
        }
    }

    fn leaf(key: [u8; 32], value: Hash32) -> Node {
        Node::Leaf { key, value }
    }

    fn internal(left: Node, right: Node) -> Node {
        let hash = internal_hash(&left.hash(), &right.hash());
        Node::Internal { left: Box::new(left), right: Box::new(right), hash }
    }

    /// Builds the subtree at `depth` holding exactly `items` (sorted, distinct).
    fn build(depth: usize, items: &[([u8; 32], Hash32)]) -> Node {
        match items {
            [] => Node::Empty,
            [(k, v)] => Node::leaf(*k, *v),
            _ => {
                let split = items.partition_point(|(k, _)| !bit(k, depth));
                Node::internal(Node::build(depth + 1, &items[..split]), Node::build(depth + 1, &items[split..]))
            }
        }
    }

    /// Applies sorted, distinct `changes` (insert or overwrite) to the subtree at
    /// `depth`, in place: internal nodes on the changed paths keep their
    /// allocations and get their hash recomputed; only where a leaf or an empty
    /// slot is replaced is a subtree built. Returns how many keys were new.
    fn apply(&mut self, depth: usize, changes: &[([u8; 32], Hash32)]) -> usize {
        if changes.is_empty() {
            return 0;
        }
        match self {
            Node::Empty => {
                *self = Node::build(depth, changes);
                changes.len()
            }
            Node::Leaf { key, value } => {
                let items = merge_leaf(*key, *value, changes);
                // The leaf's key is new only if no change overwrote it.
                let new = items.len() - 1;
                *self = Node::build(depth, &items);
                new
            }
            Node::Internal { left, right, hash } => {
                let split = changes.partition_point(|(k, _)| !bit(k, depth));
                let new = left.apply(depth + 1, &changes[..split]) + right.apply(depth + 1, &changes[split..]);
                *hash = internal_hash(&left.hash(), &right.hash());
                new
            }
        }
    }

    /// The hash the subtree would have after `changes`, without changing it.
    fn hash_with(&self, depth: usize, changes: &[([u8; 32], Hash32)]) -> Hash32 {
        if changes.is_empty() {
            return self.hash();
        }
        match self {
            Node::Empty => hash_of_items(depth, changes),
            Node::Leaf { key, value, .. } => hash_of_items(depth, &merge_leaf(*key, *value, changes)),
            Node::Internal { left, right, .. } => {
                let split = changes.partition_point(|(k, _)| !bit(k, depth));
                internal_hash(&left.hash_with(depth + 1, &changes[..split]), &right.hash_with(depth + 1, &changes[split..]))
            }
        }
    }
}

fn hash_of_items(depth: usize, items: &[([u8; 32], Hash32)]) -> Hash32 {
    match items {
        [] => Hash32::ZERO,
        [(k, v)] => leaf_hash(k, v),
        _ => {
            let split = items.partition_point(|(k, _)| !bit(k, depth));
            internal_hash(&hash_of_items(depth + 1, &items[..split]), &hash_of_items(depth + 1, &items[split..]))
        }
    }
}

/// `changes` plus the existing leaf unless a change overwrites it; stays sorted.
fn merge_leaf(key: [u8; 32], value: Hash32, changes: &[([u8; 32], Hash32)]) -> Vec<([u8; 32], Hash32)> {
    let mut items = changes.to_vec();
    if let Err(pos) = items.binary_search_by(|(k, _)| k.cmp(&key)) {
        items.insert(pos, (key, value));
    }
    items
}

/// Sorts changes by key and keeps the last value given for each key.
fn normalise(changes: &[([u8; 32], Hash32)]) -> Vec<([u8; 32], Hash32)> {
    let mut v: Vec<([u8; 32], Hash32)> = Vec::with_capacity(changes.len());
    let mut sorted: Vec<(usize, &([u8; 32], Hash32))> = changes.iter().enumerate().collect();
    sorted.sort_by(|a, b| a.1 .0.cmp(&b.1 .0).then(a.0.cmp(&b.0)));
    for (_, (k, val)) in sorted {
        match v.last_mut() {
            Some(last) if &last.0 == k => last.1 = *val,
            _ => v.push((*k, *val)),
        }
    }
    v
}

/// The in-memory subject map.
pub struct SubjectMap {
    root: Node,
    /// Keys in the map.
    len: u64,
}

impl Default for SubjectMap {
    fn default() -> Self {
        SubjectMap { root: Node::Empty, len: 0 }
    }
}

/// What a proof ends on, where the path to the key stops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProofTerminal {
    /// The key is present with this value hash.
    Present { value: Hash32 },
    /// The path ends on an empty subtree: the key is absent.
    Empty,
    /// The path ends on another key's leaf: the key is absent.
    Other { key: Hash32, value: Hash32 },
}

/// A membership or absence proof: sibling hashes from the root down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectProof {
    pub siblings: Vec<Hash32>,
    pub terminal: ProofTerminal,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubjectProofError {
    #[error("subject-map proof has {0} siblings, more than the 256 a key has bits")]
    TooLong(usize),
    #[error("subject-map proof ends on a leaf of another key that does not share the path")]
    OtherKeyOffPath,
    #[error("subject-map proof ends on the key itself, so it cannot prove absence")]
    OtherKeyIsSame,
    #[error("subject-map root mismatch: proof gives {computed}, header has {expected}")]
    RootMismatch { computed: Hash32, expected: Hash32 },
    #[error("subject-map proof shows {got}, expected {expected}")]
    WrongKind { expected: &'static str, got: &'static str },
    #[error("subject record value mismatch: record hashes to {computed}, proof has {proved}")]
    ValueMismatch { computed: Hash32, proved: Hash32 },
}

impl SubjectMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds the map from (subject key, value) pairs in any order.
    pub fn from_entries(entries: &[([u8; 32], Hash32)]) -> Self {
        let items = normalise(entries);
        SubjectMap { root: Node::build(0, &items), len: items.len() as u64 }
    }

    pub fn root(&self) -> Hash32 {
        self.root.hash()
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The root after `changes`, leaving the map unchanged (for proposals).
    pub fn root_with(&self, changes: &[([u8; 32], Hash32)]) -> Hash32 {
        self.root.hash_with(0, &normalise(changes))
    }

    /// Inserts or overwrites values.
    pub fn apply(&mut self, changes: &[([u8; 32], Hash32)]) {
        let changes = normalise(changes);
        self.len += self.root.apply(0, &changes) as u64;
    }

    /// The key's value: a walk down the tree (what `prove` walks).
    pub fn get(&self, key: &[u8; 32]) -> Option<Hash32> {
        let mut node = &self.root;
        let mut depth = 0;
        loop {
            match node {
                Node::Empty => return None,
                Node::Leaf { key: k, value, .. } => return (k == key).then_some(*value),
                Node::Internal { left, right, .. } => {
                    node = if bit(key, depth) { right } else { left };
                    depth += 1;
                }
            }
        }
    }

    /// A proof of the key's value, or of its absence.
    pub fn prove(&self, key: &[u8; 32]) -> SubjectProof {
        let mut siblings = Vec::new();
        let mut node = &self.root;
        let mut depth = 0;
        loop {
            match node {
                Node::Empty => return SubjectProof { siblings, terminal: ProofTerminal::Empty },
                Node::Leaf { key: k, value, .. } => {
                    let terminal = if k == key {
                        ProofTerminal::Present { value: *value }
                    } else {
                        ProofTerminal::Other { key: Hash32(*k), value: *value }
                    };
                    return SubjectProof { siblings, terminal };
                }
                Node::Internal { left, right, .. } => {
                    let (next, sibling) = if bit(key, depth) { (right, left) } else { (left, right) };
                    siblings.push(sibling.hash());
                    node = next;
                    depth += 1;
                }
            }
        }
    }
}

impl SubjectProof {
    /// Recomputes the root from the proof for `key`.
    pub fn compute_root(&self, key: &[u8; 32]) -> Result<Hash32, SubjectProofError> {
        let depth = self.siblings.len();
        if depth > 256 {
            return Err(SubjectProofError::TooLong(depth));
        }
        let mut h = match &self.terminal {
            ProofTerminal::Present { value } => leaf_hash(key, value),
            ProofTerminal::Empty => Hash32::ZERO,
            ProofTerminal::Other { key: other, value } => {
                if &other.0 == key {
                    return Err(SubjectProofError::OtherKeyIsSame);
                }
                if (0..depth).any(|d| bit(&other.0, d) != bit(key, d)) {
                    return Err(SubjectProofError::OtherKeyOffPath);
                }
                leaf_hash(&other.0, value)
            }
        };
        for (d, sibling) in self.siblings.iter().enumerate().rev() {
            h = if bit(key, d) { internal_hash(sibling, &h) } else { internal_hash(&h, sibling) };
        }
        Ok(h)
    }

    /// Verifies that `key` maps to `value` under `root`.
    pub fn verify_present(&self, key: &[u8; 32], value: &Hash32, root: &Hash32) -> Result<(), SubjectProofError> {
        match &self.terminal {
            ProofTerminal::Present { value: v } if v == value => {}
            ProofTerminal::Present { value: v } => {
                return Err(SubjectProofError::ValueMismatch { computed: *value, proved: *v })
            }
            ProofTerminal::Empty => return Err(SubjectProofError::WrongKind { expected: "present", got: "empty" }),
            ProofTerminal::Other { .. } => {
                return Err(SubjectProofError::WrongKind { expected: "present", got: "other key" })
            }
        }
        self.check_root(key, root)
    }

    /// Verifies that `key` is absent under `root`.
    pub fn verify_absent(&self, key: &[u8; 32], root: &Hash32) -> Result<(), SubjectProofError> {
        if matches!(self.terminal, ProofTerminal::Present { .. }) {
            return Err(SubjectProofError::WrongKind { expected: "absent", got: "present" });
        }
        self.check_root(key, root)
    }

    fn check_root(&self, key: &[u8; 32], root: &Hash32) -> Result<(), SubjectProofError> {
        let computed = self.compute_root(key)?;
        if &computed != root {
            return Err(SubjectProofError::RootMismatch { computed, expected: *root });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> [u8; 32] {
        sha256(&[&i.to_be_bytes()]).0
    }
    fn val(i: u32) -> Hash32 {
        sha256(&[b"v", &i.to_be_bytes()])
    }

    #[test]
    fn incremental_equals_bulk_and_speculative() {
        let mut m = SubjectMap::new();
        let mut all = Vec::new();
        for batch in 0..20u32 {
            let changes: Vec<_> = (0..batch % 7 + 1).map(|j| (key(batch * 3 + j), val(batch * 100 + j))).collect();
            let predicted = m.root_with(&changes);
            m.apply(&changes);
            assert_eq!(m.root(), predicted, "batch {batch}");
            all.extend(changes);
            assert_eq!(m.root(), SubjectMap::from_entries(&all).root(), "batch {batch}");
        }
        assert_eq!(m.len(), SubjectMap::from_entries(&all).len());
        // Lookups give the last value applied, for present, overwritten and absent
        // keys; the count is of distinct keys.
        let expected: std::collections::HashMap<[u8; 32], Hash32> = all.iter().copied().collect();
        assert_eq!(m.len(), expected.len() as u64);
        for i in 0..80 {
            assert_eq!(m.get(&key(i)), expected.get(&key(i)).copied(), "key {i}");
        }
        assert!(m.get(&key(3)).is_some() && m.get(&key(79)).is_none());
    }

    #[test]
    fn proofs_of_presence_and_absence() {
        let entries: Vec<_> = (0..200).map(|i| (key(i), val(i))).collect();
        let m = SubjectMap::from_entries(&entries);
        let root = m.root();
        for i in 0..200 {
            let p = m.prove(&key(i));
            p.verify_present(&key(i), &val(i), &root).unwrap();
            assert!(p.verify_present(&key(i), &val(i + 1), &root).is_err());
            assert!(p.verify_absent(&key(i), &root).is_err());
        }
        for i in 200..400 {
            let p = m.prove(&key(i));
            p.verify_absent(&key(i), &root).unwrap();
            assert!(p.verify_present(&key(i), &val(i), &root).is_err());
            // A proof for one absent key does not prove another.
            assert!(p.verify_absent(&key(i + 1000), &root).is_err() || m.prove(&key(i + 1000)) == p);
        }
    }

    #[test]
    fn a_view_with_redacted_entries_hashes_like_the_record() {
        let entry = |i: u32, revoked: bool| SubjectEntry {
            id: TxId(sha256(&[b"id", &i.to_be_bytes()])),
            height: Height(u64::from(i) + 1),
            issuer: PublicKey([i as u8; 32]),
            kind: AttestationKind::ALL[i as usize % AttestationKind::ALL.len()],
            valid_until_ms: i.is_multiple_of(2).then_some(1_900_000_000_000),
            revoked: revoked.then(|| (TxId(sha256(&[b"rev", &i.to_be_bytes()])), RevocationReason::Repair)),
        };
        let record = SubjectRecord { subject: Uscc::sample(1), entries: (0..6).map(|i| entry(i, i == 3)).collect() };
        let value = record.value_hash().unwrap();
        assert_eq!(RecordPage::full(&record).value_hash().unwrap(), value);
        for mask in 0u32..64 {
            let view = RecordPage::of(&record, &|e| mask & (1 << (e.height.0 - 1)) == 0).unwrap();
            assert_eq!(view.redacted(), mask.count_ones() as usize);
            assert_eq!(view.value_hash().unwrap(), value, "mask {mask:06b}");
        }
        // Every change to the view changes the value: order, a commitment, an entry removed.
        let view = RecordPage::of(&record, &|e| e.height.0 % 2 == 0).unwrap();
        let mut swapped = view.clone();
        swapped.entries.swap(0, 2);
        assert_ne!(swapped.value_hash().unwrap(), value);
        let mut changed = view.clone();
        if let EntryView::Redacted(c) = &mut changed.entries[0] {
            c.0[0] ^= 1;
        }
        assert_ne!(changed.value_hash().unwrap(), value);
        let mut removed = view.clone();
        removed.entries.remove(0);
        assert_ne!(removed.value_hash().ok(), Some(value));
        removed.count -= 1;
        assert_ne!(removed.value_hash().unwrap(), value);
        let mut revived = view;
        revived.entries[3] = EntryView::Full(SubjectEntry { revoked: None, ..entry(3, false) });
        assert_ne!(revived.value_hash().unwrap(), value);
        // Every page of the record, redacted or not, hashes to the record's value.
        for from in 0..6 {
            for to in from + 1..=6 {
                let page = RecordPage::range(&record, from, to, &|e| e.height.0 % 2 == 0).unwrap();
                assert_eq!(page.value_hash().unwrap(), value, "{from}..{to}");
                assert_eq!(page.is_complete(), from == 0 && to == 6);
            }
        }
    }

    #[test]
    fn empty_map_proves_absence() {
        let m = SubjectMap::new();
        assert_eq!(m.root(), Hash32::ZERO);
        m.prove(&key(1)).verify_absent(&key(1), &Hash32::ZERO).unwrap();
    }

    #[test]
    fn tampered_proofs_fail() {
        let entries: Vec<_> = (0..50).map(|i| (key(i), val(i))).collect();
        let m = SubjectMap::from_entries(&entries);
        let root = m.root();
        let p = m.prove(&key(7));
        for s in 0..p.siblings.len() {
            for b in 0..256 {
                let mut q = p.clone();
                q.siblings[s].0[b / 8] ^= 1 << (b % 8);
                assert!(q.verify_present(&key(7), &val(7), &root).is_err());
            }
        }
        let mut q = p.clone();
        q.siblings.pop();
        assert!(q.verify_present(&key(7), &val(7), &root).is_err());
    }
}
