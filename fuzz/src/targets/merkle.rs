//! The RFC 9162 log (`merkle`): for a tree of leaves from the input, the
//! library's root equals the reference root computed from the leaves, every
//! inclusion and consistency proof it makes verifies, and a proof with one hash
//! changed, or checked against another index or size, does not.
use crate::Bytes;
use yrd_ledger::merkle::{leaf_hash, reference_root, verify_consistency, verify_inclusion, MemoryLog};

/// One execution: panics when a property fails.
pub fn run(data: &[u8]) {
    let mut input = Bytes(data);
    let size = 1 + u64::from(input.u8() % 70);
    let (pick, other, flip) = (input.u8(), input.u8(), input.u8());
    let leaves: Vec<Vec<u8>> = (0..size).map(|i| vec![input.u8(), i as u8]).collect();
    let mut tree = MemoryLog::new();
    for l in &leaves {
        tree.append(l);
    }
    let root = tree.root();
    assert_eq!(root, reference_root(&leaves), "the tree's root is not the reference root");
    let index = u64::from(pick) % size;
    let proof = tree.inclusion_proof(index, size).expect("an inclusion proof in range");
    let leaf = leaf_hash(&leaves[index as usize]);
    assert!(verify_inclusion(&leaf, index, size, &proof, &root).is_ok(), "a true inclusion proof fails");
    if !proof.is_empty() {
        let mut bad = proof.clone();
        let at = usize::from(flip) % bad.len();
        bad[at].0[usize::from(flip) % 32] ^= 1;
        assert!(verify_inclusion(&leaf, index, size, &bad, &root).is_err(), "a changed inclusion proof verifies");
    }
    let wrong = u64::from(other) % size;
    if wrong != index && leaves[wrong as usize] != leaves[index as usize] {
        assert!(verify_inclusion(&leaf, wrong, size, &proof, &root).is_err(), "a proof verifies at another index");
    }
    let size1 = 1 + u64::from(other) % size;
    let root1 = tree.root_at(size1).expect("a root in range");
    assert_eq!(root1, reference_root(&leaves[..size1 as usize]), "an old root is not the reference root");
    let cproof = tree.consistency_proof(size1, size).expect("a consistency proof in range");
    assert!(verify_consistency(size1, size, &root1, &root, &cproof).is_ok(), "a true consistency proof fails");
    if !cproof.is_empty() {
        let mut bad = cproof.clone();
        let at = usize::from(flip) % bad.len();
        bad[at].0[usize::from(pick) % 32] ^= 1;
        assert!(verify_consistency(size1, size, &root1, &root, &bad).is_err(), "a changed consistency proof verifies");
    }
}
