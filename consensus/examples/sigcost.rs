//! Scratch: cost of the signature rule's multiplication variants.
use std::time::Instant;
use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, ED25519_BASEPOINT_TABLE};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsBasepointTable, EdwardsPoint, VartimeEdwardsPrecomputation};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{BasepointTable, VartimePrecomputedMultiscalarMul};
use sha2::{Digest, Sha512};
use yrd_consensus::crypto::{signing_bytes, SecretKey};

fn main() {
    let sk = SecretKey::from_seed(b"bench");
    let pk = sk.public().0;
    let n = 20000;
    let msgs: Vec<Vec<u8>> = (0..n).map(|i: u32| signing_bytes(b"t", &i.to_le_bytes().repeat(60))).collect();
    let sigs: Vec<[u8; 64]> = (0..n).map(|i: u32| sk.sign(b"t", &i.to_le_bytes().repeat(60)).0).collect();
    let key = yrd_consensus::sigrule::build(&pk, true).unwrap();
    let key2 = yrd_consensus::sigrule::build(&pk, false).unwrap();
    let a = CompressedEdwardsY(pk).decompress().unwrap();
    let pre = VartimeEdwardsPrecomputation::new([ED25519_BASEPOINT_POINT, -a]);
    let t = Instant::now();
    for i in 0..n as usize { assert!(key.verify(&msgs[i], &sigs[i])); }
    println!("table (ct)      {:.1} us", t.elapsed().as_secs_f64() * 1e6 / n as f64);
    let t = Instant::now();
    for i in 0..n as usize { assert!(key2.verify(&msgs[i], &sigs[i])); }
    println!("double vartime  {:.1} us", t.elapsed().as_secs_f64() * 1e6 / n as f64);
    let t = Instant::now();
    for i in 0..n as usize {
        let r: [u8; 32] = sigs[i][..32].try_into().unwrap();
        let s = Scalar::from_canonical_bytes(sigs[i][32..].try_into().unwrap()).unwrap();
        let d: [u8; 64] = Sha512::new().chain_update(r).chain_update(pk).chain_update(&msgs[i]).finalize().into();
        let k = Scalar::from_bytes_mod_order_wide(&d);
        let p = pre.vartime_multiscalar_mul([s, k]);
        assert!(p.compress().0 == r);
    }
    println!("precomp vartime {:.1} us", t.elapsed().as_secs_f64() * 1e6 / n as f64);
    let t = Instant::now();
    let mut x = ED25519_BASEPOINT_POINT;
    for _ in 0..n { x = x + x; let _ = x.compress(); }
    println!("compress        {:.2} us", t.elapsed().as_secs_f64() * 1e6 / n as f64);
    let t = Instant::now();
    for i in 0..n as usize { let _ = Sha512::new().chain_update(&sigs[i][..32]).chain_update(pk).chain_update(&msgs[i]).finalize(); }
    println!("sha512          {:.2} us", t.elapsed().as_secs_f64() * 1e6 / n as f64);
    let _ = (ED25519_BASEPOINT_TABLE, EdwardsBasepointTable::create(&a).mul_base(&Scalar::ONE));
    let _ = EdwardsPoint::default();
}
