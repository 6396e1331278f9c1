//! What one check of the signature rule costs with each way of computing
//! `[s]B − [k]A` (issue 12, item 4; BENCHMARKS.md, "Profile on a quiet machine"):
//! the fixed-base tables the rule uses for the most-used keys, the variable-time
//! double-base multiplication it uses for the others, and a variable-time
//! precomputed table of B and −A (not used: it was not faster here). Every variant
//! must agree with the rule on every signature it times (asserted).
//!
//! `cargo run --release -p yrd-consensus --example sigcost [-- N]` (default 20,000
//! signatures per variant, one core).
use std::time::Instant;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, VartimeEdwardsPrecomputation};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::VartimePrecomputedMultiscalarMul;
use sha2::{Digest, Sha512};
use yrd_consensus::crypto::{signing_bytes, SecretKey};
use yrd_consensus::sigrule;

fn per_item(n: usize, t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e6 / n as f64
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20_000).max(1);
    let sk = SecretKey::from_seed(b"sigcost");
    let pk = sk.public().0;
    let payloads: Vec<Vec<u8>> = (0..n as u32).map(|i| i.to_le_bytes().repeat(60)).collect();
    let msgs: Vec<Vec<u8>> = payloads.iter().map(|p| signing_bytes(b"t", p)).collect();
    let sigs: Vec<[u8; 64]> = payloads.iter().map(|p| sk.sign(b"t", p).0).collect();

    let with_table = sigrule::build(&pk, true).expect("a generated key passes the key rule");
    let t = Instant::now();
    for (m, s) in msgs.iter().zip(&sigs) {
        assert!(with_table.verify(m, s));
    }
    println!("fixed-base tables (the rule, most-used keys)  {:6.1} µs", per_item(n, t));

    let plain = sigrule::build(&pk, false).expect("a generated key passes the key rule");
    let t = Instant::now();
    for (m, s) in msgs.iter().zip(&sigs) {
        assert!(plain.verify(m, s));
    }
    println!("variable-time double-base (the rule, others)  {:6.1} µs", per_item(n, t));

    let a = CompressedEdwardsY(pk).decompress().expect("a generated key decompresses");
    let table = VartimeEdwardsPrecomputation::new([ED25519_BASEPOINT_POINT, -a]);
    let t = Instant::now();
    for (m, sig) in msgs.iter().zip(&sigs) {
        let r: [u8; 32] = sig[..32].try_into().expect("32 bytes");
        let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(sig[32..].try_into().expect("32 bytes")))
            .expect("an honest signature has a canonical s");
        let d: [u8; 64] = Sha512::new().chain_update(r).chain_update(pk).chain_update(m).finalize().into();
        let k = Scalar::from_bytes_mod_order_wide(&d);
        assert_eq!(table.vartime_multiscalar_mul([s, k]).compress().0, r);
    }
    println!("variable-time precomputed B, −A (not used)    {:6.1} µs", per_item(n, t));
}
