//! RFC 9162 (RFC 6962 §2.1) Merkle tree log over transactions.
//!
//! * leaf hash  = SHA-256(0x00 ‖ leaf bytes)
//! * node hash  = SHA-256(0x01 ‖ left ‖ right)
//! * empty tree = SHA-256("")
//!
//! # Storage model
//!
//! The log is stored as its *complete* subtree nodes only. Node `(level, index)`
//! covers leaves `[index·2^level, (index+1)·2^level)` and exists once the tree size
//! is at least `(index+1)·2^level`; level 0 nodes are the leaf hashes. A node never
//! changes once written, so a store needs no per-leaf rewriting and no key for an
//! incomplete node. The hash of a right-edge *incomplete* subtree is computed on
//! demand from complete nodes (at most ~64 reads).
//!
//! [`append_nodes`] computes every node that comes into existence when leaves are
//! appended, so a store (e.g. sled) can write them together with the new size in one
//! atomic batch. [`root`], [`inclusion_proof`] and [`consistency_proof`] read nodes
//! through [`NodeSource`]; [`verify_inclusion`] and [`verify_consistency`] need no
//! store at all (lenders run them offline).
//!
//! Generation follows RFC 9162 §2.1.3.1 (PATH) and §2.1.4.1 (SUBPROOF / PROOF);
//! verification follows §2.1.3.2 and §2.1.4.2 step by step (the step numbers are
//! cited in the code).

use yrd_consensus::crypto::{sha256, Hash32};

/// Domain-separation prefix of a leaf hash (RFC 9162 §2.1.1).
pub const LEAF_PREFIX: u8 = 0x00;
/// Domain-separation prefix of an interior node hash (RFC 9162 §2.1.1).
pub const NODE_PREFIX: u8 = 0x01;
/// Most hashes an inclusion proof may carry (a tree of 2^64 leaves has depth 64).
pub const INCLUSION_PROOF_HASHES_MAX: usize = 64;
/// Most hashes a consistency proof may carry.
pub const CONSISTENCY_PROOF_HASHES_MAX: usize = 128;

/// `SHA-256(0x00 ‖ data)`: the hash of one log entry.
pub fn leaf_hash(data: &[u8]) -> Hash32 {
    sha256(&[&[LEAF_PREFIX], data])
}

/// `SHA-256(0x01 ‖ l ‖ r)`: the hash of an interior node.
pub fn node_hash(l: &Hash32, r: &Hash32) -> Hash32 {
    sha256(&[&[NODE_PREFIX], &l.0, &r.0])
}

/// `SHA-256("")`: the root of the empty tree.
pub fn empty_root() -> Hash32 {
    sha256(&[])
}

/// The recursive MTH definition of RFC 9162 §2.1.1, computed naively over the whole
/// leaf list. Reference for tests; O(n) hashes and recursion depth O(log n).
pub fn reference_root(leaves: &[Vec<u8>]) -> Hash32 {
    match leaves.len() {
        0 => empty_root(),
        1 => leaf_hash(&leaves[0]),
        n => {
            let k = split_point(n as u64) as usize;
            node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
        }
    }
}

/// The largest power of two strictly less than `n` (the RFC's `k`). Requires `n >= 2`.
pub(crate) fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// A complete node as written to storage: `(level, index, hash)`.
pub type LogNode = (u8, u64, Hash32);

/// Read access to the complete nodes of a log.
pub trait NodeSource {
    type Error;

    /// The hash of complete node `(level, index)`. Only called for nodes that exist
    /// at a size `<= tree_size()`.
    fn node(&self, level: u8, index: u64) -> Result<Hash32, Self::Error>;

    /// The number of leaves currently stored.
    fn tree_size(&self) -> Result<u64, Self::Error>;

    /// MTH(D[lo:hi]) of an incomplete range if this source remembers it from an
    /// earlier [`NodeSource::remember_range`] (a source that holds still can skip
    /// re-hashing the log's right border, which every audit path at one size
    /// shares). Default: remembers nothing.
    fn remembered_range(&self, _lo: u64, _hi: u64) -> Option<Hash32> {
        None
    }

    /// Offers MTH(D[lo:hi]) of an incomplete range to remember.
    fn remember_range(&self, _lo: u64, _hi: u64, _hash: Hash32) {}
}

/// Failure to compute a root or proof from a store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError<E> {
    #[error("node store failed: {0}")]
    Source(E),
    #[error("leaf index {index} is not in a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("tree size {size} is beyond the stored size {stored}")]
    SizeBeyondLog { size: u64, stored: u64 },
    #[error("consistency proof asked from size {size1} to smaller size {size2}")]
    SizesOutOfOrder { size1: u64, size2: u64 },
    #[error("append at size {given}, but the store holds {stored} leaves")]
    AppendSizeMismatch { given: u64, stored: u64 },
    #[error("appending {count} leaves to a tree of size {size} overflows u64")]
    SizeOverflow { size: u64, count: u64 },
}

/// Computes every complete node that comes into existence when `new_leaves` (leaf
/// hashes) are appended to a tree of `size` leaves held by `source`, including the
/// leaves themselves at level 0.
///
/// Nodes come in creation order, children before parents; the caller writes all of
/// them together with the new size in one atomic batch. `size` must equal
/// `source.tree_size()`: appending at any other size would fork the log.
///
/// Cost: `k` leaf nodes plus fewer than `k + 64` interior hashes, and at most one
/// source read per level (the old tree's right-edge nodes), i.e. O(k + log n).
pub fn append_nodes<S: NodeSource>(
    source: &S,
    size: u64,
    new_leaves: &[Hash32],
) -> Result<Vec<LogNode>, MerkleError<S::Error>> {
    let stored = source.tree_size().map_err(MerkleError::Source)?;
    if size != stored {
        return Err(MerkleError::AppendSizeMismatch { given: size, stored });
    }
    let count = new_leaves.len() as u64;
    if size.checked_add(count).is_none() {
        return Err(MerkleError::SizeOverflow { size, count });
    }
    let mut out = Vec::with_capacity(new_leaves.len() * 2 + 64);
    // Nodes completed in this batch that have no parent yet, left to right. The one
    // immediately left of a new node at the same level is always on top.
    let mut pending: Vec<LogNode> = Vec::with_capacity(64);
    for (offset, leaf) in new_leaves.iter().enumerate() {
        let (mut level, mut index, mut hash) = (0u8, size + offset as u64, *leaf);
        out.push((level, index, hash));
        // An odd index is a right child: its parent is complete now.
        while index & 1 == 1 {
            let left = match pending.last() {
                Some(&(l, i, h)) if l == level && i == index - 1 => {
                    pending.pop();
                    h
                }
                // The sibling holds no new leaf, so it lies wholly in the old tree.
                _ => source.node(level, index - 1).map_err(MerkleError::Source)?,
            };
            hash = node_hash(&left, &hash);
            index >>= 1;
            level += 1;
            out.push((level, index, hash));
        }
        pending.push((level, index, hash));
    }
    Ok(out)
}

/// MTH(D[lo:hi]) for a range produced by the RFC recursion: `lo` is a multiple of the
/// largest power of two `>= hi - lo`, so every left part is one complete node and
/// only the right edge needs recursion. `hi > lo`.
pub(crate) fn range_hash<S: NodeSource>(source: &S, lo: u64, hi: u64) -> Result<Hash32, MerkleError<S::Error>> {
    let n = hi - lo;
    if n.is_power_of_two() {
        let level = n.trailing_zeros() as u8;
        return source.node(level, lo >> level).map_err(MerkleError::Source);
    }
    if let Some(h) = source.remembered_range(lo, hi) {
        return Ok(h);
    }
    let k = split_point(n);
    let left = range_hash(source, lo, lo + k)?;
    let right = range_hash(source, lo + k, hi)?;
    let h = node_hash(&left, &right);
    source.remember_range(lo, hi, h);
    Ok(h)
}

fn check_size<S: NodeSource>(source: &S, size: u64) -> Result<(), MerkleError<S::Error>> {
    let stored = source.tree_size().map_err(MerkleError::Source)?;
    if size > stored {
        return Err(MerkleError::SizeBeyondLog { size, stored });
    }
    Ok(())
}

/// The root (MTH) of the first `size` leaves, for any `size <= tree_size()`.
pub fn root<S: NodeSource>(source: &S, size: u64) -> Result<Hash32, MerkleError<S::Error>> {
    check_size(source, size)?;
    if size == 0 {
        return Ok(empty_root());
    }
    range_hash(source, 0, size)
}

/// The audit path PATH(index, D[size]) of RFC 9162 §2.1.3.1, leaf to root.
pub fn inclusion_proof<S: NodeSource>(
    source: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash32>, MerkleError<S::Error>> {
    check_size(source, size)?;
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let mut proof = Vec::with_capacity(64);
    path(source, index, 0, size, &mut proof)?;
    Ok(proof)
}

/// PATH(m, D[lo:hi]), `lo <= m < hi`, appended to `out` leaf to root.
fn path<S: NodeSource>(
    source: &S,
    m: u64,
    lo: u64,
    hi: u64,
    out: &mut Vec<Hash32>,
) -> Result<(), MerkleError<S::Error>> {
    // PATH(0, {d(0)}) = {}
    if hi - lo == 1 {
        return Ok(());
    }
    let k = split_point(hi - lo);
    if m < lo + k {
        // PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n])   for m < k
        path(source, m, lo, lo + k, out)?;
        out.push(range_hash(source, lo + k, hi)?);
    } else {
        // PATH(m, D[n]) = PATH(m - k, D[k:n]) : MTH(D[0:k])   for m >= k
        path(source, m, lo + k, hi, out)?;
        out.push(range_hash(source, lo, lo + k)?);
    }
    Ok(())
}

/// The consistency proof PROOF(size1, D[size2]) of RFC 9162 §2.1.4.1. Empty when
/// `size1 == 0` or `size1 == size2` (those are consistent without a proof).
pub fn consistency_proof<S: NodeSource>(
    source: &S,
    size1: u64,
    size2: u64,
) -> Result<Vec<Hash32>, MerkleError<S::Error>> {
    if size1 > size2 {
        return Err(MerkleError::SizesOutOfOrder { size1, size2 });
    }
    check_size(source, size2)?;
    let mut proof = Vec::with_capacity(64);
    if size1 == 0 || size1 == size2 {
        return Ok(proof);
    }
    // PROOF(m, D[n]) = SUBPROOF(m, D[n], true)
    subproof(source, size1, 0, size2, true, &mut proof)?;
    Ok(proof)
}

/// SUBPROOF(m, D[lo:hi], b) where `m` counts the old tree's leaves inside `[lo, hi)`.
fn subproof<S: NodeSource>(
    source: &S,
    m: u64,
    lo: u64,
    hi: u64,
    b: bool,
    out: &mut Vec<Hash32>,
) -> Result<(), MerkleError<S::Error>> {
    let n = hi - lo;
    if m == n {
        // SUBPROOF(m, D[m], true) = {};  SUBPROOF(m, D[m], false) = {MTH(D[m])}
        if !b {
            out.push(range_hash(source, lo, hi)?);
        }
        return Ok(());
    }
    let k = split_point(n);
    if m <= k {
        // SUBPROOF(m, D[n], b) = SUBPROOF(m, D[0:k], b) : MTH(D[k:n])   for m <= k
        subproof(source, m, lo, lo + k, b, out)?;
        out.push(range_hash(source, lo + k, hi)?);
    } else {
        // SUBPROOF(m, D[n], b) = SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])   for m > k
        subproof(source, m - k, lo + k, hi, false, out)?;
        out.push(range_hash(source, lo, lo + k)?);
    }
    Ok(())
}

/// Why a proof failed to verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is not in a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("inclusion proof has {got} hashes, over the limit of {max}")]
    InclusionProofTooLong { got: usize, max: usize },
    #[error("inclusion proof has {got} hashes, a tree of size {size} at index {index} needs {expected}")]
    InclusionProofLength { got: usize, index: u64, size: u64, expected: usize },
    #[error("root mismatch: computed {computed}, expected {expected}")]
    RootMismatch { computed: Hash32, expected: Hash32 },
    #[error("consistency proof has {got} hashes, over the limit of {max}")]
    ConsistencyProofTooLong { got: usize, max: usize },
    #[error("consistency proof from size {size1} to smaller size {size2}")]
    SizesOutOfOrder { size1: u64, size2: u64 },
    #[error("trees of equal size {size} have different roots {root1} and {root2}")]
    EqualSizeRootsDiffer { size: u64, root1: Hash32, root2: Hash32 },
    #[error("consistency proof from size {size1} to {size2} must be empty, got {got} hashes")]
    ProofMustBeEmpty { size1: u64, size2: u64, got: usize },
    #[error("consistency proof from size {size1} to {size2} is empty")]
    EmptyConsistencyProof { size1: u64, size2: u64 },
    #[error("consistency proof has {got} hashes, sizes {size1} to {size2} need {expected}")]
    ConsistencyProofLength { got: usize, size1: u64, size2: u64, expected: usize },
    #[error("old root mismatch: computed {computed}, expected {expected}")]
    OldRootMismatch { computed: Hash32, expected: Hash32 },
    #[error("new root mismatch: computed {computed}, expected {expected}")]
    NewRootMismatch { computed: Hash32, expected: Hash32 },
    #[error("proof has hashes left over after reaching the root ({left} unused)")]
    LeftoverHashes { left: usize },
    #[error("proof ran out of hashes below the root")]
    TooFewHashes,
}

/// The number of hashes in PATH(index, D[size]); requires `index < size`.
pub fn inclusion_proof_len(index: u64, size: u64) -> usize {
    debug_assert!(index < size);
    // Levels where the path runs beside a full sibling, then the right-border levels
    // where the incomplete edge has been collapsed into one hash per set bit.
    let inner = 64 - (index ^ (size - 1)).leading_zeros();
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner + border) as usize
}

/// The number of hashes in PROOF(size1, D[size2]); 0 when `size1 == 0` or
/// `size1 == size2`. Requires `size1 <= size2`.
pub fn consistency_proof_len(size1: u64, size2: u64) -> usize {
    debug_assert!(size1 <= size2);
    if size1 == 0 || size1 == size2 {
        return 0;
    }
    // The proof is the inclusion path of leaf size1 - 1 in D[size2], minus the levels
    // inside the largest complete subtree ending at size1, plus that subtree's hash
    // unless it is the whole old tree (a power of two), which the verifier knows.
    let shift = size1.trailing_zeros() as usize;
    let seed = usize::from(!size1.is_power_of_two());
    inclusion_proof_len(size1 - 1, size2) - shift + seed
}

/// Verifies that `leaf_hash` is leaf `index` of the tree of `size` leaves with root
/// `root`, by RFC 9162 §2.1.3.2.
pub fn verify_inclusion(
    leaf_hash: &Hash32,
    index: u64,
    size: u64,
    proof: &[Hash32],
    root: &Hash32,
) -> Result<(), ProofError> {
    if proof.len() > INCLUSION_PROOF_HASHES_MAX {
        return Err(ProofError::InclusionProofTooLong { got: proof.len(), max: INCLUSION_PROOF_HASHES_MAX });
    }
    // 1. If leaf_index >= tree_size, fail.
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // Not an RFC step: the loop below would reject a wrong length anyway (steps 4, 5);
    // checking first gives a clear message.
    let expected = inclusion_proof_len(index, size);
    if proof.len() != expected {
        return Err(ProofError::InclusionProofLength { got: proof.len(), index, size, expected });
    }
    // 2. Set fn to leaf_index and sn to tree_size - 1.
    let (mut fnode, mut snode) = (index, size - 1);
    // 3. Set r to hash.
    let mut r = *leaf_hash;
    // 4. For each value p in the inclusion_path array:
    for (used, p) in proof.iter().enumerate() {
        // If sn is 0, stop the iteration and fail.
        if snode == 0 {
            return Err(ProofError::LeftoverHashes { left: proof.len() - used });
        }
        if fnode & 1 == 1 || fnode == snode {
            // If LSB(fn) is set, or fn equals sn: r = HASH(0x01 || p || r)
            r = node_hash(p, &r);
            // If LSB(fn) is not set, right-shift fn and sn until LSB(fn) is set or fn is 0.
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            // Otherwise: r = HASH(0x01 || r || p)
            r = node_hash(&r, p);
        }
        // Finally, right-shift both fn and sn one time.
        fnode >>= 1;
        snode >>= 1;
    }
    // 5. sn must be 0 and r must equal root_hash.
    if snode != 0 {
        return Err(ProofError::TooFewHashes);
    }
    if r != *root {
        return Err(ProofError::RootMismatch { computed: r, expected: *root });
    }
    Ok(())
}

/// Verifies that the tree of `size2` leaves with root `root2` extends the tree of
/// `size1` leaves with root `root1`, by RFC 9162 §2.1.4.2.
///
/// `size1 == size2` needs an empty proof and equal roots; `size1 == 0` is consistent
/// with any tree, with an empty proof.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    root1: &Hash32,
    root2: &Hash32,
    proof: &[Hash32],
) -> Result<(), ProofError> {
    if proof.len() > CONSISTENCY_PROOF_HASHES_MAX {
        return Err(ProofError::ConsistencyProofTooLong { got: proof.len(), max: CONSISTENCY_PROOF_HASHES_MAX });
    }
    if size1 > size2 {
        return Err(ProofError::SizesOutOfOrder { size1, size2 });
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::ProofMustBeEmpty { size1, size2, got: proof.len() });
        }
        if root1 != root2 {
            return Err(ProofError::EqualSizeRootsDiffer { size: size1, root1: *root1, root2: *root2 });
        }
        return Ok(());
    }
    if size1 == 0 {
        if !proof.is_empty() {
            return Err(ProofError::ProofMustBeEmpty { size1, size2, got: proof.len() });
        }
        return Ok(());
    }
    // Now 0 < size1 < size2.
    // 1. If consistency_path is an empty array, fail.
    if proof.is_empty() {
        return Err(ProofError::EmptyConsistencyProof { size1, size2 });
    }
    // Not an RFC step: the loop below would reject a wrong length anyway (steps 6, 7);
    // checking first gives a clear message.
    let expected = consistency_proof_len(size1, size2);
    if proof.len() != expected {
        return Err(ProofError::ConsistencyProofLength { got: proof.len(), size1, size2, expected });
    }
    // 2. If first is an exact power of 2, prepend first_hash to consistency_path.
    let (seed, rest) = if size1.is_power_of_two() {
        (*root1, proof)
    } else {
        (proof[0], &proof[1..])
    };
    // 3. Set fn to first - 1 and sn to second - 1.
    let (mut fnode, mut snode) = (size1 - 1, size2 - 1);
    // 4. If LSB(fn) is set, right-shift fn and sn equally until LSB(fn) is not set.
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    // 5. Set both fr and sr to the first value in the consistency_path array.
    let (mut fr, mut sr) = (seed, seed);
    // 6. For each subsequent value c in the consistency_path array:
    for (used, c) in rest.iter().enumerate() {
        // If sn is 0, stop the iteration and fail.
        if snode == 0 {
            return Err(ProofError::LeftoverHashes { left: rest.len() - used });
        }
        if fnode & 1 == 1 || fnode == snode {
            // fr = HASH(0x01 || c || fr); sr = HASH(0x01 || c || sr)
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            // If LSB(fn) is not set, right-shift fn and sn until LSB(fn) is set or fn is 0.
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            // Otherwise: sr = HASH(0x01 || sr || c)
            sr = node_hash(&sr, c);
        }
        // Finally, right-shift both fn and sn one time.
        fnode >>= 1;
        snode >>= 1;
    }
    // 7. fr must equal first_hash, sr must equal second_hash, and sn must be 0.
    if snode != 0 {
        return Err(ProofError::TooFewHashes);
    }
    if fr != *root1 {
        return Err(ProofError::OldRootMismatch { computed: fr, expected: *root1 });
    }
    if sr != *root2 {
        return Err(ProofError::NewRootMismatch { computed: sr, expected: *root2 });
    }
    Ok(())
}

/// A store could not serve a node it should hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("node (level {level}, index {index}) is not in the log")]
pub struct MissingNode {
    pub level: u8,
    pub index: u64,
}

/// An in-memory log: `levels[l][i]` is complete node `(l, i)`. For tests and clients.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryLog {
    levels: Vec<Vec<Hash32>>,
}

impl MemoryLog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Appends one entry; returns its leaf index.
    pub fn append(&mut self, leaf_data: &[u8]) -> u64 {
        let index = self.size();
        self.append_leaf_hashes(&[leaf_hash(leaf_data)]);
        index
    }

    /// Appends a batch of leaf hashes; returns the new size.
    pub fn append_leaf_hashes(&mut self, leaves: &[Hash32]) -> u64 {
        // Only a bug in this module can make this fail: the store always serves its own
        // right-edge nodes, and a u64 leaf count cannot be reached in memory.
        let nodes = append_nodes(&*self, self.size(), leaves).expect("MemoryLog serves its own nodes");
        self.write_nodes(&nodes);
        self.size()
    }

    /// Writes nodes produced by [`append_nodes`] for this log's current size.
    fn write_nodes(&mut self, nodes: &[LogNode]) {
        for &(level, index, hash) in nodes {
            let level = usize::from(level);
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let row = &mut self.levels[level];
            assert_eq!(row.len() as u64, index, "append_nodes must produce nodes in order");
            row.push(hash);
        }
    }

    /// Root of the whole log.
    pub fn root(&self) -> Hash32 {
        self.root_at(self.size()).expect("the current size is always stored")
    }

    /// Root at any earlier size.
    pub fn root_at(&self, size: u64) -> Result<Hash32, MerkleError<MissingNode>> {
        root(self, size)
    }

    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash32>, MerkleError<MissingNode>> {
        inclusion_proof(self, index, size)
    }

    pub fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Vec<Hash32>, MerkleError<MissingNode>> {
        consistency_proof(self, size1, size2)
    }

    /// All complete nodes, level by level (for comparing logs in tests).
    pub fn levels(&self) -> &[Vec<Hash32>] {
        &self.levels
    }
}

impl NodeSource for MemoryLog {
    type Error = MissingNode;

    fn node(&self, level: u8, index: u64) -> Result<Hash32, MissingNode> {
        self.levels
            .get(usize::from(level))
            .and_then(|row| usize::try_from(index).ok().and_then(|i| row.get(i)))
            .copied()
            .ok_or(MissingNode { level, index })
    }

    fn tree_size(&self) -> Result<u64, MissingNode> {
        Ok(self.size())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Hash32 {
        Hash32::from_hex(s).unwrap()
    }

    #[test]
    fn hashes_are_domain_separated() {
        assert_eq!(empty_root(), h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
        assert_eq!(leaf_hash(b""), h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"));
        let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
        let mut concat = vec![NODE_PREFIX];
        concat.extend_from_slice(&a.0);
        concat.extend_from_slice(&b.0);
        assert_eq!(node_hash(&a, &b), sha256(&[&concat]));
        assert_ne!(node_hash(&a, &b), node_hash(&b, &a));
        assert_ne!(leaf_hash(&concat[1..]), node_hash(&a, &b));
    }

    #[test]
    fn split_point_is_largest_power_of_two_below() {
        for n in 2u64..=1025 {
            let k = split_point(n);
            assert!(k.is_power_of_two() && k < n && 2 * k >= n, "n={n} k={k}");
        }
        assert_eq!(split_point(u64::MAX), 1 << 63);
        assert_eq!(split_point((1 << 63) + 1), 1 << 63);
        assert_eq!(split_point(1 << 63), 1 << 62);
    }

    #[test]
    fn proof_len_formulas_match_generated_proofs() {
        let mut log = MemoryLog::new();
        for n in 1u64..=40 {
            log.append(&n.to_be_bytes());
            for i in 0..n {
                assert_eq!(log.inclusion_proof(i, n).unwrap().len(), inclusion_proof_len(i, n), "i={i} n={n}");
            }
            for m in 0..=n {
                assert_eq!(log.consistency_proof(m, n).unwrap().len(), consistency_proof_len(m, n), "m={m} n={n}");
            }
        }
        assert_eq!(inclusion_proof_len(0, u64::MAX), 64);
        assert_eq!(inclusion_proof_len(u64::MAX - 1, u64::MAX), 63);
        assert!(consistency_proof_len(3, u64::MAX) <= CONSISTENCY_PROOF_HASHES_MAX);
    }

    #[test]
    fn append_rejects_wrong_size() {
        let mut log = MemoryLog::new();
        log.append(b"x");
        let err = append_nodes(&log, 0, &[leaf_hash(b"y")]).unwrap_err();
        assert_eq!(err, MerkleError::AppendSizeMismatch { given: 0, stored: 1 });
        let err = append_nodes(&log, 2, &[leaf_hash(b"y")]).unwrap_err();
        assert_eq!(err, MerkleError::AppendSizeMismatch { given: 2, stored: 1 });
    }

    #[test]
    fn append_reads_only_the_right_edge() {
        struct Counting<'a>(&'a MemoryLog, std::cell::Cell<u32>);
        impl NodeSource for Counting<'_> {
            type Error = MissingNode;
            fn node(&self, level: u8, index: u64) -> Result<Hash32, MissingNode> {
                self.1.set(self.1.get() + 1);
                self.0.node(level, index)
            }
            fn tree_size(&self) -> Result<u64, MissingNode> {
                self.0.tree_size()
            }
        }
        let mut log = MemoryLog::new();
        let leaves: Vec<Hash32> = (0u32..1023).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        log.append_leaf_hashes(&leaves);
        let counting = Counting(&log, std::cell::Cell::new(0));
        let nodes = append_nodes(&counting, 1023, &[leaf_hash(b"x")]).unwrap();
        // 1023 = 0b11_1111_1111: the new leaf completes one node per level up to 1024.
        assert_eq!(nodes.len(), 11);
        assert_eq!(counting.1.get(), 10);
        assert_eq!(nodes.last().map(|n| (n.0, n.1)), Some((10, 0)));
    }

    #[test]
    fn store_errors_for_bad_arguments() {
        let mut log = MemoryLog::new();
        for i in 0u8..5 {
            log.append(&[i]);
        }
        assert_eq!(log.root_at(6), Err(MerkleError::SizeBeyondLog { size: 6, stored: 5 }));
        assert_eq!(log.inclusion_proof(5, 5), Err(MerkleError::IndexOutOfRange { index: 5, size: 5 }));
        assert_eq!(log.inclusion_proof(0, 0), Err(MerkleError::IndexOutOfRange { index: 0, size: 0 }));
        assert_eq!(log.inclusion_proof(0, 6), Err(MerkleError::SizeBeyondLog { size: 6, stored: 5 }));
        assert_eq!(log.consistency_proof(4, 3), Err(MerkleError::SizesOutOfOrder { size1: 4, size2: 3 }));
        assert_eq!(log.consistency_proof(2, 6), Err(MerkleError::SizeBeyondLog { size: 6, stored: 5 }));
        assert_eq!(log.consistency_proof(0, 5), Ok(vec![]));
        assert_eq!(log.consistency_proof(5, 5), Ok(vec![]));
    }

    #[test]
    fn error_messages_are_specific() {
        let leaf = leaf_hash(b"x");
        let err = verify_inclusion(&leaf, 2, 7, &[leaf; 2], &leaf).unwrap_err();
        assert_eq!(err.to_string(), "inclusion proof has 2 hashes, a tree of size 7 at index 2 needs 3");
        let err = verify_inclusion(&leaf, 0, 1, &[], &empty_root()).unwrap_err();
        assert_eq!(err.to_string(), format!("root mismatch: computed {leaf}, expected {}", empty_root()));
        let err = verify_inclusion(&leaf, 0, 1, &[leaf; 65], &leaf).unwrap_err();
        assert_eq!(err.to_string(), "inclusion proof has 65 hashes, over the limit of 64");
        let err = verify_consistency(3, 2, &leaf, &leaf, &[]).unwrap_err();
        assert_eq!(err.to_string(), "consistency proof from size 3 to smaller size 2");
        let err = verify_consistency(3, 4, &leaf, &leaf, &[leaf; 129]).unwrap_err();
        assert_eq!(err.to_string(), "consistency proof has 129 hashes, over the limit of 128");
        let err = verify_consistency(3, 7, &leaf, &leaf, &[leaf]).unwrap_err();
        assert_eq!(err.to_string(), "consistency proof has 1 hashes, sizes 3 to 7 need 4");
    }
}
