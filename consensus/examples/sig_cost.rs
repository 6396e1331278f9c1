//! The reference cost for BENCHMARKS.md: the two ways `sigrule` can compute
//! `[s]B − [k]A` (two fixed-base tables, as it does for prepared keys, vs the
//! variable-time double-base multiplication) and the point encoding that ends a
//! strict check.
//!
//! ```sh
//! cargo run --release -p yrd-consensus --example sig_cost
//! ```
use std::time::Instant;

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, ED25519_BASEPOINT_TABLE};
use curve25519_dalek::edwards::{EdwardsBasepointTable, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::BasepointTable;

fn main() {
    let n = 20_000u32;
    let a: EdwardsPoint = ED25519_BASEPOINT_POINT * Scalar::from(123_456_789u64);
    let table = EdwardsBasepointTable::create(&a);
    let scalars: Vec<Scalar> =
        (0..n).map(|i| Scalar::from_bytes_mod_order_wide(&[(i % 251) as u8 ^ 0x5a; 64]) + Scalar::from(u64::from(i))).collect();
    let t = Instant::now();
    let mut acc = EdwardsPoint::default();
    for s in &scalars {
        acc += ED25519_BASEPOINT_TABLE.mul_base(s) + table.mul_base(s);
    }
    let tables = t.elapsed() / n;
    let t = Instant::now();
    for s in &scalars {
        acc += EdwardsPoint::vartime_double_scalar_mul_basepoint(s, &a, s);
    }
    let vartime = t.elapsed() / n;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(acc.compress());
    }
    let compress = t.elapsed() / n;
    println!(
        "[s]B - [k]A: two fixed-base tables {tables:?}, variable-time double-base {vartime:?}; point encoding {compress:?} (checksum {})",
        acc.compress().0[0]
    );
}
