//! The signature rule (`sigrule`, docs/ledger.md "Signatures"): one verdict for the
//! same bytes, whoever checks them. Honest signatures pass; every crafted one fails;
//! the rule agrees with ed25519-dalek's `verify_strict` on every input tried; the
//! key rule refuses weak keys. Seeds are fixed and printed on failure.

use proptest::prelude::*;
use yrd_consensus::adversary::{sign_crafted, weak_keys, Craft};
use yrd_consensus::crypto::{signing_bytes, CryptoError, PublicKey, SecretKey, Signature};

const TAG: &[u8] = b"ledger/transaction";

fn dalek_strict(key: &PublicKey, msg: &[u8], sig: &Signature) -> bool {
    let Ok(vk) = ed25519_dalek::VerifyingKey::from_bytes(&key.0) else { return false };
    vk.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&sig.0)).is_ok()
}

fn our_rule(key: &PublicKey, payload: &[u8], sig: &Signature) -> bool {
    key.verify(TAG, payload, sig).is_ok()
}

#[test]
fn honest_signatures_pass_and_every_crafted_one_fails() {
    for seed in 0..8u8 {
        let sk = SecretKey::from_seed(&[b'i', seed]);
        let pk = sk.public();
        let payload = [seed; 200];
        assert!(our_rule(&pk, &payload, &sk.sign(TAG, &payload)), "seed {seed}: honest");
        for craft in Craft::all() {
            let sig = sign_crafted(&sk, TAG, &payload, craft, &[seed]);
            assert!(!our_rule(&pk, &payload, &sig), "seed {seed}: {craft:?} accepted");
            assert!(!dalek_strict(&pk, &signing_bytes(TAG, &payload), &sig), "seed {seed}: {craft:?} (dalek)");
        }
    }
}

/// Why the rule never batches: the batch equation accepts a mixed-order R in some
/// compositions (the batch's random weights decide), which is what let one issuer
/// key split the validators. If this ever stops failing, ed25519-dalek changed its
/// batch equation; the rule still does not batch.
#[test]
fn the_batch_equation_accepts_a_mixed_order_r_that_the_rule_rejects() {
    let sk = SecretKey::from_seed(b"batch");
    let pk = sk.public();
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&pk.0).unwrap();
    let mut accepted = 0;
    for i in 0..64u32 {
        let payload = i.to_be_bytes();
        let bad = sign_crafted(&sk, TAG, &payload, Craft::MixedOrderR(4), &payload);
        let good = sk.sign(TAG, b"honest");
        let msgs = [signing_bytes(TAG, &payload), signing_bytes(TAG, b"honest")];
        let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
        let sigs = [ed25519_dalek::Signature::from_bytes(&bad.0), ed25519_dalek::Signature::from_bytes(&good.0)];
        if ed25519_dalek::verify_batch(&refs, &sigs, &[vk, vk]).is_ok() {
            accepted += 1;
        }
        assert!(!our_rule(&pk, &payload, &bad));
    }
    assert!(accepted > 0, "the batch equation never accepted the crafted signature in 64 tries");
}

#[test]
fn weak_keys_are_refused_with_the_reason_and_verify_nothing() {
    let good = SecretKey::from_seed(b"good");
    assert!(good.public().check().is_ok());
    for (what, key) in weak_keys(&good) {
        let err = key.check().expect_err(what);
        assert!(matches!(err, CryptoError::WeakKey(_)), "{what}: {err}");
        // Whatever the signature, a weak key verifies nothing.
        let sig = good.sign(TAG, b"x");
        assert!(key.verify(TAG, b"x", &sig).is_err(), "{what}");
    }
}

fn craft_strategy() -> impl Strategy<Value = Option<Craft>> {
    let all = Craft::all();
    prop_oneof![Just(None), (0..all.len()).prop_map(move |i| Some(all[i]))]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, rng_seed: proptest::test_runner::RngSeed::Fixed(0x5197_2025), ..ProptestConfig::default() })]

    /// On honest, crafted and randomly mutated signatures, our rule and
    /// `verify_strict` give the same verdict (for keys that pass the key rule).
    #[test]
    fn the_rule_is_verify_strict_for_good_keys(
        key_seed in any::<[u8; 8]>(),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        craft in craft_strategy(),
        flip in proptest::option::of((0usize..64, 1u8..=255)),
    ) {
        let sk = SecretKey::from_seed(&key_seed);
        let pk = sk.public();
        let mut sig = match craft {
            None => sk.sign(TAG, &payload),
            Some(c) => sign_crafted(&sk, TAG, &payload, c, &key_seed),
        };
        if let Some((pos, x)) = flip {
            sig.0[pos] ^= x;
        }
        let ours = our_rule(&pk, &payload, &sig);
        let theirs = dalek_strict(&pk, &signing_bytes(TAG, &payload), &sig);
        prop_assert_eq!(ours, theirs, "craft {:?}, flip {:?}", craft, flip);
        if craft.is_some() || flip.is_some() {
            prop_assert!(!ours);
        } else {
            prop_assert!(ours);
        }
    }
}
