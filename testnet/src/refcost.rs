//! The yardstick of the bench's CPU figure (issue 12, item 4): what one
//! signature costs in a batched ed25519 check, and in a single strict check as
//! the chain makes it, measured on this machine in this run. Absolute CPU times
//! differ between machines; "node CPU per attestation = k × a batched check"
//! compares across them.
//!
//! - **batched**: ed25519-dalek's `verify_batch` over 1,024 signatures by 16
//!   keys of 200-byte payloads with the chain's domain separation (what
//!   `ledger/benches/ledger.rs` `tx_signature/verify_batch_1024` measures; the
//!   chain itself never batches, `yrd_consensus::sigrule`);
//! - **single**: `PublicKey::verify`, the strict rule every path of the chain
//!   uses, through its key cache.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use yrd_consensus::crypto::{signing_bytes, SecretKey};

const TAG: &[u8] = b"yrd-testnet/reference";
const BATCH: usize = 1024;
const KEYS: usize = 16;

/// Per-signature costs, µs.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Reference {
    pub batched_us: f64,
    pub single_us: f64,
}

/// Measures both for about `budget` in all (at least two batches and 256
/// single checks, whatever the budget).
pub fn measure(budget: Duration) -> Reference {
    let keys: Vec<SecretKey> = (0..KEYS).map(|i| SecretKey::from_seed(format!("reference key {i}").as_bytes())).collect();
    let payloads: Vec<Vec<u8>> = (0..BATCH).map(|i| (0..200).map(|j| (i * 31 + j * 7) as u8).collect()).collect();
    let sigs: Vec<_> = payloads.iter().enumerate().map(|(i, p)| keys[i % KEYS].sign(TAG, p)).collect();
    let publics: Vec<_> = (0..BATCH).map(|i| keys[i % KEYS].public()).collect();

    let msgs: Vec<Vec<u8>> = payloads.iter().map(|p| signing_bytes(TAG, p)).collect();
    let msg_refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
    let dalek_sigs: Vec<ed25519_dalek::Signature> = sigs.iter().map(|s| ed25519_dalek::Signature::from_bytes(&s.0)).collect();
    let dalek_keys: Vec<ed25519_dalek::VerifyingKey> = publics
        .iter()
        .map(|k| ed25519_dalek::VerifyingKey::from_bytes(&k.0).expect("a key made here is a valid point"))
        .collect();

    let half = budget / 2;
    let start = Instant::now();
    let mut batches = 0u64;
    while batches < 2 || start.elapsed() < half {
        ed25519_dalek::verify_batch(&msg_refs, &dalek_sigs, &dalek_keys).expect("signatures made here verify");
        batches += 1;
    }
    let batched_us = start.elapsed().as_secs_f64() * 1e6 / (batches as f64 * BATCH as f64);

    let start = Instant::now();
    let mut singles = 0u64;
    while singles < 256 || start.elapsed() < half {
        let i = singles as usize % BATCH;
        publics[i].verify(TAG, &payloads[i], &sigs[i]).expect("signatures made here verify");
        singles += 1;
    }
    let single_us = start.elapsed().as_secs_f64() * 1e6 / singles as f64;
    Reference { batched_us, single_us }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_costs_are_measured_and_a_batch_is_cheaper_per_signature() {
        let r = measure(Duration::from_millis(200));
        assert!(r.batched_us > 0.0 && r.single_us > 0.0, "{r:?}");
        // Not a speed limit: batching amortises the scalar multiplications, so
        // per signature it costs less than a strict single check on any machine.
        assert!(r.batched_us < r.single_us, "{r:?}");
    }
}
