//! RFC 9162 Merkle log: published vectors, exhaustive small-tree checks, tamper tests.
//!
//! Vectors: RFC 6962 reference leaves and roots as published in
//! transparency-dev/merkle `testonly/constants.go` (LeafInputs, NodeHashes,
//! RootHashes) and the proof vectors of `proof/verify_test.go` (same values as
//! google/certificate-transparency-go `merkletree/merkle_verifier_test.go`).

use std::collections::HashMap;

use yrd_consensus::crypto::Hash32;
use yrd_ledger::merkle::{
    append_nodes, consistency_proof, empty_root, inclusion_proof, leaf_hash, node_hash, reference_root, root,
    verify_consistency, verify_inclusion, MemoryLog, MerkleError, NodeSource, ProofError,
};

fn h(s: &str) -> Hash32 {
    Hash32::from_hex(s).expect("test vector is 64 hex chars")
}

fn rfc_leaves() -> Vec<Vec<u8>> {
    [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    .iter()
    .map(|s| hex::decode(s).expect("hex"))
    .collect()
}

/// RootHashes(), indexed by tree size 0..=8.
const RFC_ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// NodeHashes(): every complete node of the 8-leaf tree, by level.
fn rfc_node_hashes() -> Vec<Vec<Hash32>> {
    vec![
        vec![
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
            h("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
        ],
        vec![
            h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
        ],
        vec![
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
        vec![h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")],
    ]
}

/// Published inclusion proofs: (leaf index, tree size, proof).
fn rfc_inclusion_vectors() -> Vec<(u64, u64, Vec<Hash32>)> {
    vec![
        (0, 1, vec![]),
        (
            0,
            8,
            vec![
                h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ],
        ),
        (
            5,
            8,
            vec![
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
        (2, 3, vec![h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
        (
            1,
            5,
            vec![
                h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            ],
        ),
    ]
}

/// Published consistency proofs: (size1, size2, proof).
fn rfc_consistency_vectors() -> Vec<(u64, u64, Vec<Hash32>)> {
    vec![
        (1, 1, vec![]),
        (
            1,
            8,
            vec![
                h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ],
        ),
        (
            6,
            8,
            vec![
                h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
        (
            2,
            5,
            vec![
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            ],
        ),
        (
            6,
            7,
            vec![
                h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
    ]
}

fn rfc_log() -> MemoryLog {
    let mut log = MemoryLog::new();
    for leaf in rfc_leaves() {
        log.append(&leaf);
    }
    log
}

// ---------------------------------------------------------------- published vectors

#[test]
fn rfc6962_roots_for_sizes_0_to_8() {
    let leaves = rfc_leaves();
    let mut log = MemoryLog::new();
    assert_eq!(log.root(), h(RFC_ROOTS[0]));
    assert_eq!(empty_root(), h(RFC_ROOTS[0]));
    for (n, leaf) in leaves.iter().enumerate() {
        log.append(leaf);
        let want = h(RFC_ROOTS[n + 1]);
        assert_eq!(log.root(), want, "store root, size {}", n + 1);
        assert_eq!(reference_root(&leaves[..=n]), want, "reference root, size {}", n + 1);
    }
    for (size, want) in RFC_ROOTS.iter().enumerate() {
        assert_eq!(log.root_at(size as u64), Ok(h(want)), "historical root, size {size}");
    }
}

#[test]
fn rfc6962_complete_nodes_match_published_node_hashes() {
    assert_eq!(rfc_log().levels(), rfc_node_hashes().as_slice());
}

#[test]
fn rfc6962_inclusion_vectors_generate_and_verify() {
    let log = rfc_log();
    let leaves = rfc_leaves();
    for (index, size, want) in rfc_inclusion_vectors() {
        assert_eq!(log.inclusion_proof(index, size).as_ref(), Ok(&want), "index {index} size {size}");
        let leaf = leaf_hash(&leaves[index as usize]);
        let root = h(RFC_ROOTS[size as usize]);
        assert_eq!(verify_inclusion(&leaf, index, size, &want, &root), Ok(()));
        for (what, probe) in corrupt_inclusion(index, size, &want, &root, &leaf) {
            let res = verify_inclusion(&probe.leaf, probe.index, probe.size, &probe.proof, &probe.root);
            assert!(res.is_err(), "{what} verified: index {index} size {size}");
        }
    }
}

#[test]
fn rfc6962_consistency_vectors_generate_and_verify() {
    let log = rfc_log();
    for (size1, size2, want) in rfc_consistency_vectors() {
        assert_eq!(log.consistency_proof(size1, size2).as_ref(), Ok(&want), "{size1} -> {size2}");
        let (root1, root2) = (h(RFC_ROOTS[size1 as usize]), h(RFC_ROOTS[size2 as usize]));
        assert_eq!(verify_consistency(size1, size2, &root1, &root2, &want), Ok(()));
        if want.is_empty() {
            continue;
        }
        for (what, p) in corrupt_consistency(size1, size2, &root1, &root2, &want) {
            let res = verify_consistency(p.size1, p.size2, &p.root1, &p.root2, &p.proof);
            assert!(res.is_err(), "{what} verified: {size1} -> {size2}");
        }
    }
}

/// The special-case table of transparency-dev/merkle `TestVerifyConsistency`.
#[test]
fn consistency_special_cases() {
    let r1 = leaf_hash(b"don't care 1");
    let r2 = leaf_hash(b"don't care 2");
    let e = empty_root();
    let cases: [(u64, u64, Hash32, Hash32, Vec<Hash32>, bool); 13] = [
        (0, 0, r1, r2, vec![], false),
        (1, 1, r1, r2, vec![], false),
        (0, 0, r1, r1, vec![], true),
        (0, 1, r1, r2, vec![], true),
        (1, 1, r2, r2, vec![], true),
        (1, 0, r1, r2, vec![], false),
        (2, 1, r1, r2, vec![], false),
        (1, 2, r1, r2, vec![], false),
        (0, 0, e, r2, vec![], false),
        (1, 1, e, r2, vec![], false),
        (0, 0, e, e, vec![e], false),
        (0, 1, e, e, vec![e], false),
        (1, 1, e, e, vec![e], false),
    ];
    for (size1, size2, root1, root2, proof, ok) in cases {
        let res = verify_consistency(size1, size2, &root1, &root2, &proof);
        assert_eq!(res.is_ok(), ok, "{size1} -> {size2}: {res:?}");
    }
    let err = verify_consistency(1, 2, &r1, &r2, &[]).unwrap_err();
    assert_eq!(err, ProofError::EmptyConsistencyProof { size1: 1, size2: 2 });
    let err = verify_consistency(1, 1, &e, &r2, &[]).unwrap_err();
    assert_eq!(err, ProofError::EqualSizeRootsDiffer { size: 1, root1: e, root2: r2 });
    let err = verify_consistency(0, 5, &e, &r2, &[e]).unwrap_err();
    assert_eq!(err, ProofError::ProofMustBeEmpty { size1: 0, size2: 5, got: 1 });
}

/// The invalid probes of transparency-dev/merkle `TestVerifyInclusion`.
#[test]
fn inclusion_special_cases() {
    let some = leaf_hash(b"some");
    for (index, size) in [(0u64, 0u64), (0, 1), (1, 0), (2, 1)] {
        assert!(verify_inclusion(&some, index, size, &[], &Hash32::ZERO).is_err());
        assert!(verify_inclusion(&Hash32::ZERO, index, size, &[], &empty_root()).is_err());
        assert!(verify_inclusion(&some, index, size, &[], &empty_root()).is_err());
    }
    // A one-leaf tree: root == leaf hash, empty proof.
    let leaf = leaf_hash(b"data");
    assert_eq!(verify_inclusion(&leaf, 0, 1, &[], &leaf), Ok(()));
    assert_eq!(
        verify_inclusion(&leaf, 1, 1, &[], &leaf),
        Err(ProofError::IndexOutOfRange { index: 1, size: 1 })
    );
}

#[test]
fn oversized_proofs_are_rejected_before_any_hashing() {
    let x = leaf_hash(b"x");
    assert_eq!(
        verify_inclusion(&x, 0, u64::MAX, &[x; 65], &x),
        Err(ProofError::InclusionProofTooLong { got: 65, max: 64 })
    );
    assert_eq!(
        verify_consistency(1, u64::MAX, &x, &x, &[x; 129]),
        Err(ProofError::ConsistencyProofTooLong { got: 129, max: 128 })
    );
    // Extreme but legal sizes only cost the length check.
    assert!(matches!(
        verify_inclusion(&x, u64::MAX - 1, u64::MAX, &[x; 64], &x),
        Err(ProofError::InclusionProofLength { got: 64, expected: 63, .. })
    ));
    assert!(matches!(
        verify_consistency(3, u64::MAX, &x, &x, &[x; 128]),
        Err(ProofError::ConsistencyProofLength { got: 128, expected: 65, .. })
    ));
}

// ----------------------------------------------------------- independent references

/// Distinct leaf contents, so no two subtrees share a hash.
fn test_leaves(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("credit attestation #{i}").into_bytes()).collect()
}

fn k_of(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// PATH(m, D[n]) straight from RFC 9162 §2.1.3.1 over the raw leaves.
fn reference_path(m: usize, d: &[Vec<u8>]) -> Vec<Hash32> {
    if d.len() == 1 {
        return vec![];
    }
    let k = k_of(d.len());
    if m < k {
        let mut p = reference_path(m, &d[..k]);
        p.push(reference_root(&d[k..]));
        p
    } else {
        let mut p = reference_path(m - k, &d[k..]);
        p.push(reference_root(&d[..k]));
        p
    }
}

/// SUBPROOF(m, D[n], b) straight from RFC 9162 §2.1.4.1 over the raw leaves.
fn reference_subproof(m: usize, d: &[Vec<u8>], b: bool) -> Vec<Hash32> {
    if m == d.len() {
        return if b { vec![] } else { vec![reference_root(d)] };
    }
    let k = k_of(d.len());
    if m <= k {
        let mut p = reference_subproof(m, &d[..k], b);
        p.push(reference_root(&d[k..]));
        p
    } else {
        let mut p = reference_subproof(m - k, &d[k..], false);
        p.push(reference_root(&d[..k]));
        p
    }
}

/// Side of each sibling along PATH(m, D[n]) (true = sibling on the left), from the
/// recursive definition. The RFC verifier's hashing is a function of this shape
/// alone, so two (index, size) pairs with equal shapes accept the same proof.
fn inclusion_shape(m: u64, n: u64) -> Vec<bool> {
    if n == 1 {
        return vec![];
    }
    let k = k_of(n as usize) as u64;
    let (mut s, left) = if m < k { (inclusion_shape(m, k), false) } else { (inclusion_shape(m - k, n - k), true) };
    s.push(left);
    s
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// The proof's first hash is the old tree's rightmost complete subtree.
    Seed,
    /// Left sibling: extends both the old and the new root.
    Left,
    /// Right sibling: extends the new root only.
    Right,
}

/// Shape of SUBPROOF(m, D[n], b), from the recursive definition (see `inclusion_shape`).
fn consistency_shape(m: u64, n: u64, b: bool) -> Vec<Op> {
    if m == n {
        return if b { vec![] } else { vec![Op::Seed] };
    }
    let k = k_of(n as usize) as u64;
    let mut s;
    if m <= k {
        s = consistency_shape(m, k, b);
        s.push(Op::Right);
    } else {
        s = consistency_shape(m - k, n - k, false);
        s.push(Op::Left);
    }
    s
}

/// Tiny deterministic PRNG (splitmix64) for sampling and batch splits.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn flip(hash: &Hash32, bit: usize) -> Hash32 {
    let mut out = *hash;
    out.0[bit / 8] ^= 1 << (bit % 8);
    out
}

/// Bits to flip in one hash: all 256 for small trees, a deterministic sample above.
fn bits_to_flip(exhaustive: bool, rng: &mut Rng) -> Vec<usize> {
    if exhaustive {
        (0..256).collect()
    } else {
        let mut bits = vec![0, 7, 128, 255];
        bits.extend((0..4).map(|_| rng.below(256) as usize));
        bits
    }
}

const EXHAUSTIVE_SIZE_MAX: u64 = 20;
const SIZE_MAX: u64 = 64;

// ------------------------------------------------------------------- exhaustive tests

#[test]
fn store_roots_match_reference_for_every_size() {
    let leaves = test_leaves(SIZE_MAX as usize);
    let mut log = MemoryLog::new();
    for n in 1..=SIZE_MAX as usize {
        log.append(&leaves[n - 1]);
        assert_eq!(log.root(), reference_root(&leaves[..n]), "size {n}");
    }
    for n in 0..=SIZE_MAX {
        assert_eq!(log.root_at(n), Ok(reference_root(&leaves[..n as usize])), "historical size {n}");
    }
}

#[test]
fn inclusion_proofs_match_reference_and_verify_for_every_size_and_index() {
    let leaves = test_leaves(SIZE_MAX as usize);
    let mut log = MemoryLog::new();
    for leaf in &leaves {
        log.append(leaf);
    }
    for n in 1..=SIZE_MAX {
        let root = reference_root(&leaves[..n as usize]);
        for i in 0..n {
            let proof = log.inclusion_proof(i, n).expect("in range");
            assert_eq!(proof, reference_path(i as usize, &leaves[..n as usize]), "PATH({i}, D[{n}])");
            let leaf = leaf_hash(&leaves[i as usize]);
            assert_eq!(verify_inclusion(&leaf, i, n, &proof, &root), Ok(()), "index {i} size {n}");
        }
    }
}

#[test]
fn consistency_proofs_match_reference_and_verify_for_every_pair() {
    let leaves = test_leaves(SIZE_MAX as usize);
    let mut log = MemoryLog::new();
    for leaf in &leaves {
        log.append(leaf);
    }
    let roots: Vec<Hash32> = (0..=SIZE_MAX as usize).map(|n| reference_root(&leaves[..n])).collect();
    for n in 0..=SIZE_MAX {
        for m in 0..=n {
            let proof = log.consistency_proof(m, n).expect("in range");
            let want = if m == 0 || m == n {
                vec![]
            } else {
                reference_subproof(m as usize, &leaves[..n as usize], true)
            };
            assert_eq!(proof, want, "PROOF({m}, D[{n}])");
            let res = verify_consistency(m, n, &roots[m as usize], &roots[n as usize], &proof);
            assert_eq!(res, Ok(()), "{m} -> {n}");
        }
    }
}

#[test]
fn tampered_inclusion_proofs_fail() {
    let leaves = test_leaves(SIZE_MAX as usize + 1);
    let mut log = MemoryLog::new();
    for leaf in &leaves {
        log.append(leaf);
    }
    let roots: Vec<Hash32> = (0..=leaves.len()).map(|n| reference_root(&leaves[..n])).collect();
    let mut rng = Rng(0x5eed_0001);
    let mut same_shape_accepts = 0u32;
    for n in 1..=SIZE_MAX {
        let exhaustive = n <= EXHAUSTIVE_SIZE_MAX;
        let root = roots[n as usize];
        for i in 0..n {
            let leaf = leaf_hash(&leaves[i as usize]);
            let proof = log.inclusion_proof(i, n).expect("in range");
            let ok = |l: &Hash32, i: u64, n: u64, p: &[Hash32], r: &Hash32| verify_inclusion(l, i, n, p, r).is_ok();
            // Any single bit of any proof hash, of the leaf hash, or of the root.
            for j in 0..proof.len() {
                for bit in bits_to_flip(exhaustive, &mut rng) {
                    let mut bad = proof.clone();
                    bad[j] = flip(&bad[j], bit);
                    assert!(!ok(&leaf, i, n, &bad, &root), "proof[{j}] bit {bit}, index {i} size {n}");
                }
            }
            for bit in bits_to_flip(exhaustive, &mut rng) {
                assert!(!ok(&flip(&leaf, bit), i, n, &proof, &root), "leaf bit {bit}, index {i} size {n}");
                assert!(!ok(&leaf, i, n, &proof, &flip(&root, bit)), "root bit {bit}, index {i} size {n}");
            }
            // Another leaf position in the same tree never verifies.
            for i2 in [i.wrapping_sub(1), i + 1] {
                assert!(!ok(&leaf, i2, n, &proof, &root), "index {i2} for {i}, size {n}");
            }
            for n2 in [n - 1, n + 1] {
                // Against the genuine tree head of the other size: always rejected.
                assert!(!ok(&leaf, i, n2, &proof, &roots[n2 as usize]), "size {n2} head, index {i} size {n}");
                // With the root kept, RFC 9162 verification depends on the size only
                // through the path shape, so it accepts exactly when the shapes agree.
                // (That (root, size) pair is no real tree head; signed heads bind both.)
                let same_shape = i < n2 && inclusion_shape(i, n2) == inclusion_shape(i, n);
                assert_eq!(ok(&leaf, i, n2, &proof, &root), same_shape, "size {n2} for {n}, index {i}");
                same_shape_accepts += u32::from(same_shape);
            }
            // Truncated, extended and reordered proofs.
            if let Some((_, head)) = proof.split_last() {
                assert!(!ok(&leaf, i, n, head, &root), "truncated, index {i} size {n}");
            }
            let mut longer = proof.clone();
            longer.push(root);
            assert!(!ok(&leaf, i, n, &longer, &root), "trailing root, index {i} size {n}");
            let mut longer = vec![leaf];
            longer.extend_from_slice(&proof);
            assert!(!ok(&leaf, i, n, &longer, &root), "preceding leaf, index {i} size {n}");
            if proof.len() >= 2 {
                let mut swapped = proof.clone();
                swapped.swap(0, 1);
                assert!(!ok(&leaf, i, n, &swapped, &root), "swapped, index {i} size {n}");
            }
        }
    }
    // Keep the caveat visible: these exist (e.g. index 1 in sizes 3 and 4).
    assert!(same_shape_accepts > 0);
    assert_eq!(inclusion_shape(1, 3), inclusion_shape(1, 4));
}

#[test]
fn tampered_consistency_proofs_fail() {
    let leaves = test_leaves(SIZE_MAX as usize + 1);
    let mut log = MemoryLog::new();
    for leaf in &leaves {
        log.append(leaf);
    }
    let roots: Vec<Hash32> = (0..=leaves.len()).map(|n| reference_root(&leaves[..n])).collect();
    let mut rng = Rng(0x5eed_0002);
    for n in 2..=SIZE_MAX {
        let exhaustive = n <= EXHAUSTIVE_SIZE_MAX;
        let root2 = roots[n as usize];
        for m in 1..n {
            let root1 = roots[m as usize];
            let proof = log.consistency_proof(m, n).expect("in range");
            let ok = |m: u64, n: u64, r1: &Hash32, r2: &Hash32, p: &[Hash32]| verify_consistency(m, n, r1, r2, p).is_ok();
            for j in 0..proof.len() {
                for bit in bits_to_flip(exhaustive, &mut rng) {
                    let mut bad = proof.clone();
                    bad[j] = flip(&bad[j], bit);
                    assert!(!ok(m, n, &root1, &root2, &bad), "proof[{j}] bit {bit}, {m} -> {n}");
                }
            }
            for bit in bits_to_flip(exhaustive, &mut rng) {
                assert!(!ok(m, n, &flip(&root1, bit), &root2, &proof), "root1 bit {bit}, {m} -> {n}");
                assert!(!ok(m, n, &root1, &flip(&root2, bit), &proof), "root2 bit {bit}, {m} -> {n}");
            }
            let shape = consistency_shape(m, n, true);
            for (m2, n2) in [(m - 1, n), (m + 1, n), (m, n - 1), (m, n + 1)] {
                // Against the genuine tree heads of the other sizes: always rejected.
                let (r1, r2) = (&roots[m2 as usize], &roots[n2 as usize]);
                assert!(!ok(m2, n2, r1, r2, &proof), "heads {m2} -> {n2} for {m} -> {n}");
                // With the roots kept: accepted exactly when the proof shape agrees.
                let same_shape = 0 < m2 && m2 < n2 && consistency_shape(m2, n2, true) == shape;
                assert_eq!(ok(m2, n2, &root1, &root2, &proof), same_shape, "sizes {m2} -> {n2} for {m} -> {n}");
            }
            assert!(!ok(m, n, &root2, &root1, &proof), "swapped roots, {m} -> {n}");
            assert!(!ok(m, n, &root1, &root2, &[]), "empty proof, {m} -> {n}");
            if let Some((_, head)) = proof.split_last() {
                assert!(!ok(m, n, &root1, &root2, head), "truncated, {m} -> {n}");
            }
            for extra in [root1, root2, proof[0]] {
                let mut longer = proof.clone();
                longer.push(extra);
                assert!(!ok(m, n, &root1, &root2, &longer), "trailing hash, {m} -> {n}");
                let mut longer = vec![extra];
                longer.extend_from_slice(&proof);
                assert!(!ok(m, n, &root1, &root2, &longer), "preceding hash, {m} -> {n}");
            }
        }
    }
}

// ---------------------------------------------------------------------- appending

#[test]
fn batch_splits_yield_identical_nodes() {
    let leaves: Vec<Hash32> = test_leaves(SIZE_MAX as usize).iter().map(|l| leaf_hash(l)).collect();
    let mut one_by_one = MemoryLog::new();
    let mut prefixes = vec![one_by_one.clone()];
    for leaf in &leaves {
        one_by_one.append_leaf_hashes(std::slice::from_ref(leaf));
        prefixes.push(one_by_one.clone());
    }
    // Every two-way split of every size.
    for n in 0..=leaves.len() {
        for a in 0..=n {
            let mut log = MemoryLog::new();
            log.append_leaf_hashes(&leaves[..a]);
            log.append_leaf_hashes(&leaves[a..n]);
            assert_eq!(log, prefixes[n], "split {a} + {} of {n}", n - a);
        }
    }
    // Random multi-way splits (deterministic seed).
    let mut rng = Rng(0x5eed_0003);
    for _ in 0..200 {
        let mut log = MemoryLog::new();
        let mut at = 0;
        while at < leaves.len() {
            let step = 1 + rng.below(9) as usize;
            let end = (at + step).min(leaves.len());
            log.append_leaf_hashes(&leaves[at..end]);
            at = end;
        }
        assert_eq!(log, one_by_one);
    }
}

#[test]
fn append_nodes_emits_exactly_the_new_complete_nodes() {
    let leaves: Vec<Hash32> = test_leaves(SIZE_MAX as usize).iter().map(|l| leaf_hash(l)).collect();
    let mut full = MemoryLog::new();
    full.append_leaf_hashes(&leaves);
    for n in 0..=leaves.len() {
        for k in 0..=(leaves.len() - n).min(9) {
            let mut log = MemoryLog::new();
            log.append_leaf_hashes(&leaves[..n]);
            let nodes = append_nodes(&log, n as u64, &leaves[n..n + k]).expect("append");
            // Exactly the nodes complete at n + k but not at n, each with the right hash.
            let mut want = Vec::new();
            for (level, row) in full.levels().iter().enumerate() {
                let width = 1u64 << level;
                for (index, hash) in row.iter().enumerate() {
                    let end = (index as u64 + 1) * width;
                    if end > n as u64 && end <= (n + k) as u64 {
                        want.push((level as u8, index as u64, *hash));
                    }
                }
            }
            let mut got = nodes.clone();
            got.sort();
            want.sort();
            assert_eq!(got, want, "append {k} at {n}");
            // Children come before parents.
            for (pos, &(level, index, _)) in nodes.iter().enumerate() {
                if level > 0 {
                    let child = (level - 1, index * 2 + 1);
                    let child_pos = nodes.iter().position(|&(l, i, _)| (l, i) == child);
                    assert!(child_pos.is_some_and(|c| c < pos), "right child of ({level}, {index}) first");
                }
            }
        }
    }
}

/// A sled-shaped store: one map of nodes plus a separately stored size, written in
/// one batch, as the ledger's store does.
#[derive(Default)]
struct MapStore {
    nodes: HashMap<(u8, u64), Hash32>,
    size: u64,
}

#[derive(Debug, PartialEq)]
struct NotFound(u8, u64);

impl NodeSource for MapStore {
    type Error = NotFound;
    fn node(&self, level: u8, index: u64) -> Result<Hash32, NotFound> {
        self.nodes.get(&(level, index)).copied().ok_or(NotFound(level, index))
    }
    fn tree_size(&self) -> Result<u64, NotFound> {
        Ok(self.size)
    }
}

#[test]
fn key_value_store_via_append_nodes() {
    let data = test_leaves(100);
    let mut store = MapStore::default();
    let mut mem = MemoryLog::new();
    let mut rng = Rng(0x5eed_0004);
    let mut at = 0;
    while at < data.len() {
        let end = (at + 1 + rng.below(12) as usize).min(data.len());
        let batch: Vec<Hash32> = data[at..end].iter().map(|d| leaf_hash(d)).collect();
        let nodes = append_nodes(&store, store.size, &batch).expect("append");
        for (level, index, hash) in nodes {
            assert!(store.nodes.insert((level, index), hash).is_none(), "node written twice");
        }
        store.size = end as u64;
        mem.append_leaf_hashes(&batch);
        at = end;
    }
    // Complete nodes only: 2n - popcount(n).
    assert_eq!(store.nodes.len(), 2 * 100 - 3);
    for n in 0..=100u64 {
        assert_eq!(root(&store, n).ok(), mem.root_at(n).ok(), "size {n}");
    }
    assert_eq!(inclusion_proof(&store, 37, 99).ok(), mem.inclusion_proof(37, 99).ok());
    assert_eq!(consistency_proof(&store, 37, 99).ok(), mem.consistency_proof(37, 99).ok());
    assert_eq!(root(&store, 101), Err(MerkleError::SizeBeyondLog { size: 101, stored: 100 }));
    // A stale size is refused rather than forking the log.
    assert_eq!(
        append_nodes(&store, 99, &[leaf_hash(b"fork")]),
        Err(MerkleError::AppendSizeMismatch { given: 99, stored: 100 })
    );
    // A store that lost a node reports it.
    store.nodes.remove(&(6, 0));
    assert_eq!(root(&store, 100), Err(MerkleError::Source(NotFound(6, 0))));
}

#[test]
fn node_hash_composes_roots_of_power_of_two_halves() {
    let leaves = test_leaves(16);
    let left = reference_root(&leaves[..8]);
    let right = reference_root(&leaves[8..]);
    assert_eq!(node_hash(&left, &right), reference_root(&leaves));
}

// ------------------------------------------------------------------ corruption probes

struct InclusionProbe {
    index: u64,
    size: u64,
    proof: Vec<Hash32>,
    root: Hash32,
    leaf: Hash32,
}

/// The corruptions of transparency-dev/merkle `corruptInclusionProof`.
fn corrupt_inclusion(
    index: u64,
    size: u64,
    proof: &[Hash32],
    root: &Hash32,
    leaf: &Hash32,
) -> Vec<(String, InclusionProbe)> {
    let some = h("abacaba000000000000000000000000000000000000000000060061e00123456");
    let p = |what: &str, index: u64, size: u64, proof: Vec<Hash32>, root: Hash32, leaf: Hash32| {
        (what.to_string(), InclusionProbe { index, size, proof, root, leaf })
    };
    let with = |front: Option<Hash32>, back: Option<Hash32>| {
        let mut v: Vec<Hash32> = front.into_iter().collect();
        v.extend_from_slice(proof);
        v.extend(back);
        v
    };
    let mut out = vec![
        p("index - 1", index.wrapping_sub(1), size, proof.to_vec(), *root, *leaf),
        p("index + 1", index + 1, size, proof.to_vec(), *root, *leaf),
        p("index ^ 2", index ^ 2, size, proof.to_vec(), *root, *leaf),
        p("size * 2", index, size * 2, proof.to_vec(), *root, *leaf),
        p("size / 2", index, size / 2, proof.to_vec(), *root, *leaf),
        p("wrong leaf", index, size, proof.to_vec(), *root, leaf_hash(b"WrongLeaf")),
        p("empty root", index, size, proof.to_vec(), empty_root(), *leaf),
        p("random root", index, size, proof.to_vec(), some, *leaf),
        p("trailing garbage", index, size, with(None, Some(Hash32::ZERO)), *root, *leaf),
        p("trailing root", index, size, with(None, Some(*root)), *root, *leaf),
        p("preceding garbage", index, size, with(Some(Hash32::ZERO), None), *root, *leaf),
        p("preceding root", index, size, with(Some(*root), None), *root, *leaf),
    ];
    for i in 0..proof.len() {
        let mut bad = proof.to_vec();
        bad[i].0[0] ^= 8;
        out.push(p(&format!("modified proof[{i}] bit 3"), index, size, bad, *root, *leaf));
    }
    if let Some((_, head)) = proof.split_last() {
        out.push(p("removed component", index, size, head.to_vec(), *root, *leaf));
    }
    if proof.len() > 1 {
        let mut bad = vec![proof[0], some];
        bad.extend_from_slice(&proof[1..]);
        out.push(p("inserted component", index, size, bad, *root, *leaf));
    }
    out
}

struct ConsistencyProbe {
    size1: u64,
    size2: u64,
    root1: Hash32,
    root2: Hash32,
    proof: Vec<Hash32>,
}

/// The corruptions of transparency-dev/merkle `corruptConsistencyProof`.
fn corrupt_consistency(
    size1: u64,
    size2: u64,
    root1: &Hash32,
    root2: &Hash32,
    proof: &[Hash32],
) -> Vec<(String, ConsistencyProbe)> {
    let wrong = leaf_hash(b"WrongRoot");
    let p = |what: &str, size1: u64, size2: u64, root1: Hash32, root2: Hash32, proof: Vec<Hash32>| {
        (what.to_string(), ConsistencyProbe { size1, size2, root1, root2, proof })
    };
    let with = |front: Option<Hash32>, back: Option<Hash32>| {
        let mut v: Vec<Hash32> = front.into_iter().collect();
        v.extend_from_slice(proof);
        v.extend(back);
        v
    };
    let (r1, r2) = (*root1, *root2);
    let mut out = vec![
        p("size1 - 1", size1 - 1, size2, r1, r2, proof.to_vec()),
        p("size1 + 1", size1 + 1, size2, r1, r2, proof.to_vec()),
        p("size1 ^ 2", size1 ^ 2, size2, r1, r2, proof.to_vec()),
        p("size2 * 2", size1, size2 * 2, r1, r2, proof.to_vec()),
        p("size2 / 2", size1, size2 / 2, r1, r2, proof.to_vec()),
        p("wrong root1", size1, size2, wrong, r2, proof.to_vec()),
        p("wrong root2", size1, size2, r1, wrong, proof.to_vec()),
        p("swapped roots", size1, size2, r2, r1, proof.to_vec()),
        p("empty proof", size1, size2, r1, r2, vec![]),
        p("trailing garbage", size1, size2, r1, r2, with(None, Some(Hash32::ZERO))),
        p("trailing root1", size1, size2, r1, r2, with(None, Some(r1))),
        p("trailing root2", size1, size2, r1, r2, with(None, Some(r2))),
        p("preceding garbage", size1, size2, r1, r2, with(Some(Hash32::ZERO), None)),
        p("preceding root1", size1, size2, r1, r2, with(Some(r1), None)),
        p("preceding root2", size1, size2, r1, r2, with(Some(r2), None)),
        p("preceding proof[0]", size1, size2, r1, r2, with(Some(proof[0]), None)),
    ];
    if let Some((_, head)) = proof.split_last() {
        out.push(p("truncated proof", size1, size2, r1, r2, head.to_vec()));
    }
    for i in 0..proof.len() {
        let mut bad = proof.to_vec();
        bad[i].0[0] ^= 16;
        out.push(p(&format!("modified proof[{i}] bit 4"), size1, size2, r1, r2, bad));
    }
    out
}
