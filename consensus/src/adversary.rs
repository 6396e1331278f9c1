//! Signatures and keys crafted to break the signature rule (`sigrule`), for tests,
//! fuzzing and attack harnesses (cargo feature `adversary`; a node never needs it).
//!
//! Each crafted signature is made with the real secret key, so it differs from an
//! honest one only in the way its name says:
//! - [`Craft::MixedOrderR`]: `R = rB + T` with `T` a nonzero torsion point and `s`
//!   computed honestly for that `R`. The cofactorless equation fails (it gives
//!   `rB`, not `R`), but the ed25519 batch equation accepts it whenever the batch's
//!   random weight on it is a multiple of T's order — the bug that let one issuer
//!   key halt the chain.
//! - [`Craft::SmallOrderR`]: `R` a small-order point (`r = 0`), `s = k·a`.
//! - [`Craft::NonCanonicalS`]: an honest signature with `s + L` in place of `s`.
//! - [`Craft::NonCanonicalR`]: an honest signature whose `R` bytes are replaced by
//!   a non-canonical encoding of a small-order point.

use curve25519_dalek::constants::{ED25519_BASEPOINT_TABLE, EIGHT_TORSION};
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::BasepointTable;
use sha2::{Digest, Sha512};

use crate::crypto::{signing_bytes, PublicKey, SecretKey, Signature};

/// A way of breaking a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Craft {
    /// `R = rB + T`, `T` = the 8-torsion point with this index (1..8).
    MixedOrderR(u8),
    /// `R` = the 8-torsion point with this index (0..8; 0 is the identity).
    SmallOrderR(u8),
    NonCanonicalS,
    /// `R` = one of the non-canonical encodings of small-order points.
    NonCanonicalR(u8),
}

impl Craft {
    /// Every craft, for tests that try them all.
    pub fn all() -> Vec<Craft> {
        let mut v: Vec<Craft> = (1..8).map(Craft::MixedOrderR).collect();
        v.extend((0..8).map(Craft::SmallOrderR));
        v.push(Craft::NonCanonicalS);
        v.extend((0..NON_CANONICAL_SMALL_ORDER.len() as u8).map(Craft::NonCanonicalR));
        v
    }
}

/// Non-canonical encodings (y ≥ p, or x = 0 with the sign bit) of small-order points.
pub const NON_CANONICAL_SMALL_ORDER: [[u8; 32]; 4] = {
    // y = p + 1 (the identity), y = p (the order-4 points, y = 0) with either sign,
    // and y = 1 with the sign bit set (x = 0 negated).
    let mut p_plus_1 = [0xffu8; 32];
    p_plus_1[0] = 0xee;
    p_plus_1[31] = 0x7f;
    let mut p = [0xffu8; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    let mut p_neg = [0xffu8; 32];
    p_neg[0] = 0xed;
    let mut one_neg = [0u8; 32];
    one_neg[0] = 1;
    one_neg[31] = 0x80;
    [p_plus_1, p, p_neg, one_neg]
};

/// L = 2^252 + 27742317777372353535851937790883648493, little-endian.
const GROUP_ORDER_LE: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0x10,
];

/// The secret scalar `a` of an ed25519 key (clamped SHA-512 of the seed, mod L).
fn secret_scalar(sk: &SecretKey) -> Scalar {
    let h: [u8; 64] = Sha512::digest(sk.to_bytes()).into();
    let mut a = [0u8; 32];
    a.copy_from_slice(&h[..32]);
    a[0] &= 248;
    a[31] &= 127;
    a[31] |= 64;
    Scalar::from_bytes_mod_order(a)
}

fn challenge(r: &[u8; 32], key: &PublicKey, msg: &[u8]) -> Scalar {
    let d: [u8; 64] = Sha512::new().chain_update(r).chain_update(key.0).chain_update(msg).finalize().into();
    Scalar::from_bytes_mod_order_wide(&d)
}

fn torsion(i: u8) -> EdwardsPoint {
    EIGHT_TORSION[(i % 8) as usize]
}

/// A signature by `sk` over `signing_bytes(tag, payload)` broken as `craft` says.
/// `nonce` varies the signature (any bytes; same inputs, same signature).
pub fn sign_crafted(sk: &SecretKey, tag: &[u8], payload: &[u8], craft: Craft, nonce: &[u8]) -> Signature {
    let msg = signing_bytes(tag, payload);
    let key = sk.public();
    let a = secret_scalar(sk);
    let mut out = [0u8; 64];
    match craft {
        Craft::MixedOrderR(i) | Craft::SmallOrderR(i) => {
            let r = match craft {
                Craft::MixedOrderR(_) => {
                    let d: [u8; 64] = Sha512::new().chain_update(b"craft-nonce").chain_update(nonce).chain_update(&msg).finalize().into();
                    Scalar::from_bytes_mod_order_wide(&d)
                }
                _ => Scalar::ZERO,
            };
            let big_r = (ED25519_BASEPOINT_TABLE.mul_base(&r) + torsion(i)).compress().0;
            let k = challenge(&big_r, &key, &msg);
            let s = r + k * a;
            out[..32].copy_from_slice(&big_r);
            out[32..].copy_from_slice(s.as_bytes());
        }
        Craft::NonCanonicalS => {
            let honest = sk.sign(tag, payload);
            out = honest.0;
            // s + L (< 2^254, so it fits in 32 bytes).
            let mut carry = 0u16;
            for (i, l) in GROUP_ORDER_LE.iter().enumerate() {
                let v = out[32 + i] as u16 + *l as u16 + carry;
                out[32 + i] = v as u8;
                carry = v >> 8;
            }
        }
        Craft::NonCanonicalR(i) => {
            let honest = sk.sign(tag, payload);
            out = honest.0;
            out[..32].copy_from_slice(&NON_CANONICAL_SMALL_ORDER[(i as usize) % NON_CANONICAL_SMALL_ORDER.len()]);
        }
    }
    Signature(out)
}

/// Public keys that break the key rule: small-order points, a non-canonical
/// encoding, and a good key plus a torsion point (mixed order).
pub fn weak_keys(good: &SecretKey) -> Vec<(&'static str, PublicKey)> {
    let mut v: Vec<(&'static str, PublicKey)> =
        (0..8).map(|i| ("small-order", PublicKey(torsion(i).compress().0))).collect();
    v.extend(NON_CANONICAL_SMALL_ORDER.iter().map(|b| ("non-canonical", PublicKey(*b))));
    let a = curve25519_dalek::edwards::CompressedEdwardsY(good.public().0).decompress();
    if let Some(a) = a {
        for i in 1..8 {
            v.push(("mixed-order", PublicKey((a + torsion(i)).compress().0)));
        }
    }
    v
}
