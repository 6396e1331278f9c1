//! Signatures on adversarial points, judged by every way the code base has of
//! judging one (`yrd_consensus::sigrule`):
//! - the rule through the process-wide key cache (`PublicKey::verify`, as every
//!   path of the chain calls it), and through a key prepared with and without
//!   its fixed-base table: always the same verdict;
//! - ed25519-dalek's `verify_strict`: the same verdict for every key that passes
//!   the key rule (the rule's doc says it is exactly that for such keys), and
//!   dalek's lax `verify` accepts whatever the rule accepts;
//! - the ed25519 batch equation over a batch of the items: it accepts every
//!   batch of signatures the rule accepts, and when it accepts a batch holding a
//!   signature the rule refuses, that signature has a point with a small-order
//!   component (key or R) or a non-canonical R — the reason the chain never
//!   batches (sigrule module docs).
//!
//! Each item is signed here from a secret scalar, so that the key, R and s can
//! each carry a torsion point, a non-canonical encoding or raw bytes.
use curve25519_dalek::constants::{ED25519_BASEPOINT_TABLE, EIGHT_TORSION};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::BasepointTable;
use ed25519_dalek::{Signature as DalekSignature, VerifyingKey};
use sha2::{Digest, Sha512};
use yrd_consensus::adversary::NON_CANONICAL_SMALL_ORDER;
use yrd_consensus::crypto::{signing_bytes, PublicKey, Signature};
use std::cell::RefCell;
use std::collections::HashMap;
use yrd_consensus::sigrule::{build, check_key, KeyError, PreparedKey};
use crate::Bytes;

const TAG: &[u8] = b"fuzz/sig";
/// L, little-endian: added to s for a non-canonical scalar.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0x10,
];

struct Item {
    key: [u8; 32],
    payload: Vec<u8>,
    sig: [u8; 64],
}

fn scalar_of(seed: u8) -> Scalar {
    let d: [u8; 64] = Sha512::new().chain_update(b"fuzz-key").chain_update([seed]).finalize().into();
    Scalar::from_bytes_mod_order_wide(&d)
}

fn add_l(s: &[u8; 32]) -> [u8; 32] {
    let mut out = *s;
    let mut carry = 0u16;
    for (i, l) in L.iter().enumerate() {
        let v = out[i] as u16 + *l as u16 + carry;
        out[i] = v as u8;
        carry = v >> 8;
    }
    out
}

/// One signed item, everything chosen by the input.
fn item(input: &mut Bytes) -> Item {
    let (key_sel, r_sel, s_sel, len) = (input.u8(), input.u8(), input.u8(), input.u8() % 48);
    let payload: Vec<u8> = (0..len).map(|_| input.u8()).collect();
    let a = scalar_of(key_sel & 7);
    let mut point_a: EdwardsPoint = ED25519_BASEPOINT_TABLE.mul_base(&a) + EIGHT_TORSION[usize::from((key_sel >> 3) & 7)];
    let mut key = point_a.compress().0;
    if key_sel & 0x40 != 0 {
        key = input.array::<32>();
        point_a = CompressedEdwardsY(key).decompress().unwrap_or(point_a);
    }
    let _ = point_a;
    let msg = signing_bytes(TAG, &payload);
    let nonce: [u8; 64] = Sha512::new().chain_update(b"fuzz-nonce").chain_update(&msg).chain_update([r_sel]).finalize().into();
    let r = if r_sel & 0x08 != 0 { Scalar::ZERO } else { Scalar::from_bytes_mod_order_wide(&nonce) };
    let mut big_r = (ED25519_BASEPOINT_TABLE.mul_base(&r) + EIGHT_TORSION[usize::from(r_sel & 7)]).compress().0;
    match r_sel >> 4 & 3 {
        1 => big_r = input.array::<32>(),
        2 => big_r = NON_CANONICAL_SMALL_ORDER[usize::from(r_sel >> 6) % NON_CANONICAL_SMALL_ORDER.len()],
        _ => {}
    }
    let k: [u8; 64] = Sha512::new().chain_update(big_r).chain_update(key).chain_update(&msg).finalize().into();
    let s = r + Scalar::from_bytes_mod_order_wide(&k) * a;
    let mut s_bytes = s.to_bytes();
    match s_sel & 3 {
        1 => s_bytes = add_l(&s_bytes),
        2 => s_bytes = input.array::<32>(),
        3 => s_bytes[usize::from(s_sel >> 2) % 32] ^= 1 << (s_sel >> 5 & 7),
        _ => {}
    }
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&big_r);
    sig[32..].copy_from_slice(&s_bytes);
    Item { key, payload, sig }
}

/// Whether a point of the item is outside what the rule accepts on its own:
/// a key failing the key rule, or an R that is not a canonical encoding of a
/// torsion-free point other than the identity.
fn suspicious(it: &Item) -> bool {
    let mut r = [0u8; 32];
    r.copy_from_slice(&it.sig[..32]);
    check_key(&it.key).is_err()
        || match CompressedEdwardsY(r).decompress() {
            None => true,
            Some(p) => p.compress().0 != r || p.is_small_order() || !p.is_torsion_free(),
        }
}

type Prepared = (Result<PreparedKey, KeyError>, Result<PreparedKey, KeyError>);

thread_local! {
    /// Keys prepared with and without a table, by key (a table costs
    /// milliseconds; the inputs reuse a few dozen keys).
    static BUILT: RefCell<HashMap<[u8; 32], Prepared>> = RefCell::new(HashMap::new());
}

/// Most keys kept in [`BUILT`] before it is emptied.
const BUILT_KEYS_MAX: usize = 512;

fn built(key: &[u8; 32]) -> Prepared {
    BUILT.with(|b| {
        let mut b = b.borrow_mut();
        if b.len() >= BUILT_KEYS_MAX {
            b.clear();
        }
        b.entry(*key).or_insert_with(|| (build(key, true), build(key, false))).clone()
    })
}

/// One execution: panics when a property fails.
pub fn run(data: &[u8]) {
    let mut input = Bytes(data);
    let count = 1 + usize::from(input.u8() % 4);
    let items: Vec<Item> = (0..count).map(|_| item(&mut input)).collect();
    let mut verdicts = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let msg = signing_bytes(TAG, &it.payload);
        let rule = PublicKey(it.key).verify(TAG, &it.payload, &Signature(it.sig)).is_ok();
        let key_ok = check_key(&it.key).is_ok();
        match built(&it.key) {
            (Ok(fast), Ok(slow)) => {
                assert_eq!(fast.verify(&msg, &it.sig), rule, "item {i}: the table path differs from the cached path");
                assert_eq!(slow.verify(&msg, &it.sig), rule, "item {i}: the plain path differs from the cached path");
            }
            (fast, slow) => {
                assert!(fast.is_err() && slow.is_err() && !key_ok, "item {i}: the key rule gave two answers");
                assert!(!rule, "item {i}: a key failing the key rule verified a signature");
            }
        }
        let dalek_key = VerifyingKey::from_bytes(&it.key).ok();
        let sig = DalekSignature::from_bytes(&it.sig);
        if key_ok {
            let strict = dalek_key.is_some_and(|k| k.verify_strict(&msg, &sig).is_ok());
            assert_eq!(strict, rule, "item {i}: verify_strict disagrees with the rule on a key that passes the key rule");
        }
        if rule {
            let lax = dalek_key.is_some_and(|k| ed25519_dalek::Verifier::verify(&k, &msg, &sig).is_ok());
            assert!(lax, "item {i}: the rule accepts what dalek's lax verify refuses");
        }
        verdicts.push(rule);
    }
    let keys: Option<Vec<VerifyingKey>> = items.iter().map(|it| VerifyingKey::from_bytes(&it.key).ok()).collect();
    let Some(keys) = keys else { return };
    let msgs: Vec<Vec<u8>> = items.iter().map(|it| signing_bytes(TAG, &it.payload)).collect();
    let msg_refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
    let sigs: Vec<DalekSignature> = items.iter().map(|it| DalekSignature::from_bytes(&it.sig)).collect();
    let batch = ed25519_dalek::verify_batch(&msg_refs, &sigs, &keys).is_ok();
    if verdicts.iter().all(|v| *v) {
        assert!(batch, "the batch equation refuses a batch of signatures the rule accepts");
    }
    if batch {
        for (i, (it, v)) in items.iter().zip(&verdicts).enumerate() {
            assert!(*v || suspicious(it), "item {i}: the batch accepts a signature the rule refuses, with no small-order part");
        }
    }
}
