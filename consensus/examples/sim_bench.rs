//! Simulator throughput: simulated blocks per CPU-second, messages and signature
//! verifications per block, for n = 4, 7, 16.
//!
//! ```sh
//! cargo run --release -p yrd-consensus --example sim_bench            # default 200 blocks per scenario
//! YRD_BENCH_BLOCKS=500 cargo run --release -p yrd-consensus --example sim_bench
//! ```
//!
//! Scenarios: `clean` (no faults, no Byzantine validators, run to the block target),
//! `faulty` (the seeded fault mix of the test suite with f Byzantine validators; 3 s
//! of faults then heal; many seeds until the block target) and `reconfig` (`faulty`
//! with 1 to 4 changes of the validator set per seed, starting from n).
//! CPU time is this process's user + system time from /proc/self/stat (Linux);
//! elsewhere wall time is used.

use std::time::Instant;

use yrd_consensus::sim::{self, ReconfigConfig, SimConfig, SimReport};

fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the ")" that ends the command name; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0) // USER_HZ is 100 on Linux
}

struct Totals {
    blocks: u64,
    messages: u64,
    verified: u64,
    signed: u64,
    runs: u64,
}

fn add(t: &mut Totals, r: &SimReport) {
    assert!(r.violation.is_none(), "seed {}: {:?}", r.seed, r.violation);
    t.blocks += r.max_height;
    t.messages += r.messages_sent;
    t.verified += r.signatures_verified;
    t.signed += r.signatures_made;
    t.runs += 1;
}

fn main() {
    let blocks: u64 = std::env::var("YRD_BENCH_BLOCKS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    println!("scenario  n  f | runs blocks | blocks/CPU-s | msgs/block | sig-verif/block | signs/block | CPU s");
    for scenario in ["clean", "faulty", "reconfig"] {
        for n in [4usize, 7, 16] {
            let f = (n - 1) / 3;
            let mut t = Totals { blocks: 0, messages: 0, verified: 0, signed: 0, runs: 0 };
            let cpu0 = cpu_seconds();
            let wall0 = Instant::now();
            let mut seed = 0;
            while t.blocks < blocks {
                let cfg = if scenario == "clean" {
                    let mut c = SimConfig::new(n, 0, seed);
                    c.faults = false;
                    c.phase1_ms = u64::MAX / 4;
                    c.phase1_max_height = blocks;
                    c
                } else if scenario == "faulty" {
                    SimConfig::new(n, f, seed)
                } else {
                    SimConfig::new(n, f, seed).with_reconfig(ReconfigConfig::default())
                };
                add(&mut t, &sim::run(cfg));
                seed += 1;
            }
            let cpu = match (cpu0, cpu_seconds()) {
                (Some(a), Some(b)) if b > a => b - a,
                _ => wall0.elapsed().as_secs_f64(),
            };
            let fb = if scenario == "clean" { 0 } else { f };
            println!(
                "{scenario:<8} {n:>2} {fb:>2} | {:>4} {:>6} | {:>12.1} | {:>10.1} | {:>15.1} | {:>11.1} | {:>5.2}",
                t.runs,
                t.blocks,
                t.blocks as f64 / cpu,
                t.messages as f64 / t.blocks as f64,
                t.verified as f64 / t.blocks as f64,
                t.signed as f64 / t.blocks as f64,
                cpu
            );
        }
    }
}
