//! Range proofs and leaf updates over an RFC 9162 Merkle tree (the shape of
//! [`crate::merkle`]: leaf `H(0x00 ‖ data)`, node `H(0x01 ‖ l ‖ r)`, the left
//! subtree of `n` leaves holding the largest power of two below `n`).
//!
//! A subject's record commits to its entries through such a tree
//! ([`crate::subjects`]); a page of entries `[from, to)` is proven against the
//! root with a *range proof*: walking the RFC's recursion from the root, every
//! subtree wholly outside the range contributes its hash, in left-to-right
//! order; subtrees wholly inside are computed from the page's leaves, and the
//! others are split. The verifier walks the same recursion over the tree
//! shape of `size` leaves, so for a given size the proof fixes `from` and the
//! number of leaves: a page cannot claim another place. It does NOT fix the
//! size by itself (a hash standing for a right-edge subtree can stand for a
//! subtree of another size: leaves `0..2` of 3 and of 4 give the same walk),
//! which is why a subject's value hashes the count beside the root
//! ([`crate::subjects::RecordRoot`], docs/proofs.md §2).
//!
//! [`update_nodes`] recomputes the complete nodes above one changed leaf (a
//! revoked entry): O(log n) hashes and node reads.

use yrd_consensus::crypto::Hash32;

use crate::merkle::{node_hash, range_hash, split_point, LogNode, MerkleError, NodeSource};

/// Most hashes a range proof carries: at most two per level (one each side of
/// the range) of a tree of 2^64 leaves.
pub const RANGE_PROOF_HASHES_MAX: usize = 128;

/// Why a range proof does not give a root.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("a page must hold at least one entry")]
    EmptyRange,
    #[error("entries {from}..{to} are not within a record of {size} entries")]
    OutOfRange { from: u64, to: u64, size: u64 },
    #[error("range proof has {got} hashes, over the limit of {max}")]
    TooLong { got: usize, max: usize },
    #[error("range proof ran out of hashes")]
    TooFewHashes,
    #[error("range proof has hashes left over after reaching the root ({left} unused)")]
    LeftoverHashes { left: usize },
}

/// The range proof of leaves `[from, to)` in the tree of the first `size` leaves
/// of `source`: the hashes of the maximal subtrees outside the range, left to
/// right. `from < to <= size <= tree_size()`.
pub fn range_proof<S: NodeSource>(source: &S, from: u64, to: u64, size: u64) -> Result<Vec<Hash32>, MerkleError<S::Error>> {
    let stored = source.tree_size().map_err(MerkleError::Source)?;
    if size > stored {
        return Err(MerkleError::SizeBeyondLog { size, stored });
    }
    if from >= to || to > size {
        return Err(MerkleError::IndexOutOfRange { index: to.max(from), size });
    }
    let mut out = Vec::with_capacity(2 * 64);
    walk_proof(source, 0, size, from, to, &mut out)?;
    Ok(out)
}

fn walk_proof<S: NodeSource>(source: &S, lo: u64, hi: u64, from: u64, to: u64, out: &mut Vec<Hash32>) -> Result<(), MerkleError<S::Error>> {
    if to <= lo || hi <= from {
        out.push(range_hash(source, lo, hi)?);
        return Ok(());
    }
    if from <= lo && hi <= to {
        return Ok(());
    }
    // Partly inside: at least two leaves, so the RFC's split applies.
    let k = split_point(hi - lo);
    walk_proof(source, lo, lo + k, from, to, out)?;
    walk_proof(source, lo + k, hi, from, to, out)
}

/// The root of a tree of `size` leaves whose leaves `[from, from + leaves.len())`
/// are `leaves` (leaf hashes), given their range proof. Every hash of the proof
/// must be used, exactly once.
pub fn root_from_range(from: u64, leaves: &[Hash32], size: u64, proof: &[Hash32]) -> Result<Hash32, RangeError> {
    if leaves.is_empty() {
        return Err(RangeError::EmptyRange);
    }
    let to = from
        .checked_add(leaves.len() as u64)
        .ok_or(RangeError::OutOfRange { from, to: u64::MAX, size })?;
    if to > size {
        return Err(RangeError::OutOfRange { from, to, size });
    }
    if proof.len() > RANGE_PROOF_HASHES_MAX {
        return Err(RangeError::TooLong { got: proof.len(), max: RANGE_PROOF_HASHES_MAX });
    }
    let mut next = 0usize;
    let root = walk_root(0, size, from, to, leaves, proof, &mut next)?;
    if next != proof.len() {
        return Err(RangeError::LeftoverHashes { left: proof.len() - next });
    }
    Ok(root)
}

fn walk_root(lo: u64, hi: u64, from: u64, to: u64, leaves: &[Hash32], proof: &[Hash32], next: &mut usize) -> Result<Hash32, RangeError> {
    if to <= lo || hi <= from {
        let h = proof.get(*next).ok_or(RangeError::TooFewHashes)?;
        *next += 1;
        return Ok(*h);
    }
    if hi - lo == 1 {
        // Inside the range (not disjoint, one leaf).
        return leaves.get((lo - from) as usize).copied().ok_or(RangeError::TooFewHashes);
    }
    let k = split_point(hi - lo);
    let left = walk_root(lo, lo + k, from, to, leaves, proof, next)?;
    let right = walk_root(lo + k, hi, from, to, leaves, proof, next)?;
    Ok(node_hash(&left, &right))
}

/// The complete nodes that change when leaf `index` of a tree of `size`
/// leaves becomes `leaf`: the leaf itself, then each complete ancestor, child
/// before parent. `source` must already show earlier changes of the same batch.
pub fn update_nodes<S: NodeSource>(source: &S, index: u64, leaf: Hash32, size: u64) -> Result<Vec<LogNode>, MerkleError<S::Error>> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let (mut level, mut i, mut h) = (0u8, index, leaf);
    let mut out = vec![(level, i, h)];
    loop {
        let parent = i >> 1;
        let plevel = level + 1;
        // The parent exists (is complete) iff (parent + 1) · 2^plevel ≤ size.
        let complete = plevel < 64 && (parent + 1).checked_mul(1u64 << plevel).is_some_and(|end| end <= size);
        if !complete {
            break;
        }
        let sibling = source.node(level, i ^ 1).map_err(MerkleError::Source)?;
        h = if i & 1 == 1 { node_hash(&sibling, &h) } else { node_hash(&h, &sibling) };
        i = parent;
        level = plevel;
        out.push((level, i, h));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{leaf_hash, reference_root, MemoryLog};

    fn leaves(n: u64) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("leaf {i}").into_bytes()).collect()
    }

    #[test]
    fn every_range_of_small_trees_proves_the_root() {
        for size in 1..=33u64 {
            let data = leaves(size);
            let mut log = MemoryLog::new();
            for d in &data {
                log.append(d);
            }
            let root = reference_root(&data);
            let hashes: Vec<Hash32> = data.iter().map(|d| leaf_hash(d)).collect();
            for from in 0..size {
                for to in from + 1..=size {
                    let proof = range_proof(&log, from, to, size).unwrap();
                    let page = &hashes[from as usize..to as usize];
                    assert_eq!(root_from_range(from, page, size, &proof).unwrap(), root, "size {size} {from}..{to}");
                    // Another place, another total or a shorter page do not give the root.
                    if from > 0 {
                        assert_ne!(root_from_range(from - 1, page, size, &proof).ok(), Some(root), "shifted left");
                    }
                    if to < size {
                        assert_ne!(root_from_range(from + 1, page, size, &proof).ok(), Some(root), "shifted right");
                    }
                    // (Another size can give the same root: the value hashes the count too.)
                    if page.len() > 1 {
                        assert_ne!(root_from_range(from, &page[1..], size, &proof).ok(), Some(root), "entry dropped");
                    }
                    assert!(proof.len() <= 2 * 64);
                }
            }
        }
    }

    #[test]
    fn updating_a_leaf_recomputes_its_complete_ancestors() {
        for size in 1..=40u64 {
            for index in 0..size {
                let mut data = leaves(size);
                let mut log = MemoryLog::new();
                for d in &data {
                    log.append(d);
                }
                data[index as usize] = b"changed".to_vec();
                let nodes = update_nodes(&log, index, leaf_hash(b"changed"), size).unwrap();
                let patched = Patched { log: &log, nodes: &nodes };
                assert_eq!(crate::merkle::root(&patched, size).unwrap(), reference_root(&data), "size {size} index {index}");
            }
        }
    }

    struct Patched<'a> {
        log: &'a MemoryLog,
        nodes: &'a [LogNode],
    }

    impl NodeSource for Patched<'_> {
        type Error = crate::merkle::MissingNode;
        fn node(&self, level: u8, index: u64) -> Result<Hash32, Self::Error> {
            match self.nodes.iter().find(|(l, i, _)| *l == level && *i == index) {
                Some((_, _, h)) => Ok(*h),
                None => self.log.node(level, index),
            }
        }
        fn tree_size(&self) -> Result<u64, Self::Error> {
            self.log.tree_size()
        }
    }
}
