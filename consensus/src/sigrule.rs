//! The signature rule: the one function that decides whether an ed25519
//! signature is valid, for every path that judges one (API single and batch
//! submissions, gossip admission, block validation, sync, commit certificates,
//! proofs, `yrd verify`, the audit). `docs/ledger.md` ("Signatures") states it for
//! people writing their own verifier.
//!
//! **Key rule** (checked when a key enters the genesis, and again, once per key
//! and process, before it verifies anything): the 32 bytes are the *canonical*
//! encoding of a curve point (y < p; the sign bit is not set for x = 0), the
//! point is not of small order, and it lies in the prime-order subgroup (no
//! torsion component). Every key made by ed25519 key generation passes.
//!
//! **Signature rule**, for a signature `R ‖ s` by a key `A` that passed the key
//! rule, on message `M`:
//! 1. `s` is a canonical scalar: `s < L`;
//! 2. `R` is not the encoding of the identity point;
//! 3. with `k = SHA-512(R ‖ A ‖ M) mod L`, the canonical encoding of the point
//!    `[s]B − [k]A` equals the 32 bytes `R` (the cofactorless equation, compared
//!    as bytes).
//!
//! For such keys this is exactly ed25519-dalek's `verify_strict` (a test checks
//! it on honest and crafted signatures): the byte comparison rejects every
//! non-canonical `R`, and `[s]B − [k]A` lies in the prime-order subgroup, so the
//! only small-order `R` it could equal is the identity, which rule 2 rejects.
//!
//! Signatures are **never verified in batches**. The ed25519 batch equation
//! multiplies each signature's equation by a random scalar; a signature whose `R`
//! carries a torsion component (a "mixed-order R", `R = rB + T`) fails the rule
//! above but drops out of a batch whenever its random scalar is a multiple of
//! T's order — so a batch would accept it in about half of its compositions, and
//! two nodes that batch the same transaction differently would disagree about a
//! block. Telling such an `R` apart costs a full scalar multiplication, more than
//! batching saves, so each signature is checked on its own, and the same bytes
//! get the same verdict on every path, in every node, every time.
//!
//! Speed: a key is prepared once (decompressed and checked; the most-used keys
//! also get a fixed-base table of their multiples), and the point `[s]B − [k]A`
//! is computed from two fixed-base tables, which is about a third cheaper than a
//! double-base multiplication. The tables change the cost, never the verdict.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use curve25519_dalek::constants::ED25519_BASEPOINT_TABLE;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsBasepointTable, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{BasepointTable, IsIdentity};
use sha2::{Digest, Sha512};

/// The encoding of the identity point (x = 0, y = 1).
pub const IDENTITY_ENCODING: [u8; 32] = {
    let mut b = [0u8; 32];
    b[0] = 1;
    b
};

/// Prepared keys kept by [`prepare`] (one entry per distinct key verified with;
/// keys come from the genesis, so this is never reached on a real chain).
pub const PREPARED_KEYS_MAX: usize = 4096;
/// Keys that also get a fixed-base table (30 KiB each, 1–2 ms to build): the
/// first this many keys verified with.
pub const TABLE_KEYS_MAX: usize = 256;

/// Why a public key fails the key rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not the encoding of a curve point")]
    NotOnCurve,
    #[error("a non-canonical encoding of a curve point")]
    NonCanonical,
    #[error("a point of small order (a weak key: signatures by it prove nothing)")]
    SmallOrder,
    #[error("a point with a torsion component (not in the prime-order subgroup)")]
    Torsion,
}

/// A key that passed the key rule, ready to verify with.
#[derive(Clone)]
pub struct PreparedKey(Arc<Inner>);

struct Inner {
    bytes: [u8; 32],
    /// −A, for the double-base multiplication when there is no table.
    minus_a: EdwardsPoint,
    /// Multiples of −A, for the fixed-base multiplication.
    table: Option<Box<EdwardsBasepointTable>>,
}

impl std::fmt::Debug for PreparedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PreparedKey({})", hex::encode(&self.0.bytes[..6]))
    }
}

/// Checks the key rule on 32 key bytes; returns the point.
pub fn check_key(bytes: &[u8; 32]) -> Result<EdwardsPoint, KeyError> {
    let point = CompressedEdwardsY(*bytes).decompress().ok_or(KeyError::NotOnCurve)?;
    if point.compress().0 != *bytes {
        return Err(KeyError::NonCanonical);
    }
    if point.is_small_order() {
        return Err(KeyError::SmallOrder);
    }
    if !point.is_torsion_free() {
        return Err(KeyError::Torsion);
    }
    Ok(point)
}

static PREPARED: OnceLock<Mutex<HashMap<[u8; 32], PreparedKey>>> = OnceLock::new();

/// The prepared form of a key (checked once per process and cached).
pub fn prepare(bytes: &[u8; 32]) -> Result<PreparedKey, KeyError> {
    let cache = PREPARED.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(k) = cache.lock().ok().and_then(|c| c.get(bytes).cloned()) {
        return Ok(k);
    }
    let tables_in_use = cache.lock().map(|c| c.values().filter(|k| k.0.table.is_some()).count()).unwrap_or(usize::MAX);
    let key = build(bytes, tables_in_use < TABLE_KEYS_MAX)?;
    if let Ok(mut c) = cache.lock() {
        if c.len() >= PREPARED_KEYS_MAX {
            c.clear();
        }
        c.insert(*bytes, key.clone());
    }
    Ok(key)
}

/// Checks the key rule and prepares the key, with or without a fixed-base table,
/// bypassing the cache (the fuzz target `sig_rule` compares the two paths).
pub fn build(bytes: &[u8; 32], with_table: bool) -> Result<PreparedKey, KeyError> {
    let minus_a = -check_key(bytes)?;
    let table = with_table.then(|| Box::new(EdwardsBasepointTable::create(&minus_a)));
    Ok(PreparedKey(Arc::new(Inner { bytes: *bytes, minus_a, table })))
}

impl PreparedKey {
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0.bytes
    }

    /// The signature rule (module docs) for the 64 signature bytes over `msg`.
    pub fn verify(&self, msg: &[u8], signature: &[u8; 64]) -> bool {
        let mut r = [0u8; 32];
        r.copy_from_slice(&signature[..32]);
        let mut s_bytes = [0u8; 32];
        s_bytes.copy_from_slice(&signature[32..]);
        // Rule 1: s < L.
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else { return false };
        // Rule 2: R is not the identity.
        if r == IDENTITY_ENCODING {
            return false;
        }
        // Rule 3: encode([s]B − [k]A) == R.
        let digest: [u8; 64] = Sha512::new().chain_update(r).chain_update(self.0.bytes).chain_update(msg).finalize().into();
        let k = Scalar::from_bytes_mod_order_wide(&digest);
        let point = match &self.0.table {
            Some(t) => ED25519_BASEPOINT_TABLE.mul_base(&s) + t.mul_base(&k),
            None => EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &self.0.minus_a, &s),
        };
        !point.is_identity() && point.compress().0 == r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixed-base table changes the cost, never the verdict.
    #[test]
    fn with_and_without_a_table_the_verdict_is_the_same() {
        use crate::adversary::{sign_crafted, Craft};
        use crate::crypto::{signing_bytes, SecretKey};
        for seed in 0..4u8 {
            let sk = SecretKey::from_seed(&[b't', seed]);
            let (fast, slow) = (build(&sk.public().0, true).unwrap(), build(&sk.public().0, false).unwrap());
            let payload = [seed; 40];
            let msg = signing_bytes(b"t", &payload);
            let mut sigs = vec![sk.sign(b"t", &payload)];
            sigs.extend(Craft::all().into_iter().map(|c| sign_crafted(&sk, b"t", &payload, c, &[seed])));
            for (i, sig) in sigs.iter().enumerate() {
                assert_eq!(fast.verify(&msg, &sig.0), slow.verify(&msg, &sig.0), "seed {seed}, signature {i}");
                assert_eq!(fast.verify(&msg, &sig.0), i == 0, "seed {seed}, signature {i}");
            }
        }
    }

    #[test]
    fn identity_encoding_is_the_identity() {
        let p = CompressedEdwardsY(IDENTITY_ENCODING).decompress().unwrap();
        assert!(p.is_identity());
    }

    #[test]
    fn key_rule_rejects_each_kind_of_bad_key_with_its_reason() {
        let good = crate::crypto::SecretKey::from_seed(b"k").public().0;
        assert!(check_key(&good).is_ok());
        // Identity and the order-2 point (0, -1): small order.
        assert_eq!(check_key(&IDENTITY_ENCODING).err(), Some(KeyError::SmallOrder));
        let mut order2 = [0xffu8; 32];
        order2[0] = 0xec;
        order2[31] = 0x7f;
        assert_eq!(check_key(&order2).err(), Some(KeyError::SmallOrder));
        // y = p + 1 encodes the identity non-canonically.
        let mut noncanon = order2;
        noncanon[0] = 0xee;
        assert_eq!(check_key(&noncanon).err(), Some(KeyError::NonCanonical));
        // A good key plus the order-2 point: mixed order.
        let mixed = (CompressedEdwardsY(good).decompress().unwrap()
            + CompressedEdwardsY(order2).decompress().unwrap())
        .compress()
        .0;
        assert_eq!(check_key(&mixed).err(), Some(KeyError::Torsion));
        // x = 0 with the sign bit set is not canonical (the sign of 0 is +).
        let mut neg_zero = IDENTITY_ENCODING;
        neg_zero[31] |= 0x80;
        assert!(check_key(&neg_zero).is_err());
        // y = 2 is not on the curve.
        let mut off = [0u8; 32];
        off[0] = 2;
        assert_eq!(check_key(&off).err(), Some(KeyError::NotOnCurve));
    }
}
