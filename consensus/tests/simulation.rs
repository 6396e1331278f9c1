//! Randomised simulation of n real cores (docs/consensus.md, "Simulator").
//!
//! `YRD_SIM_SEEDS=N` raises the number of seeds per test (default 1000);
//! `YRD_SIM_SEED=S` replays one seed with a printed report.

use std::time::Instant;

use yrd_consensus::sim::{self, SimConfig, SimReport};

fn seed_count() -> u64 {
    std::env::var("YRD_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(1000)
}

fn replay_seed() -> Option<u64> {
    std::env::var("YRD_SIM_SEED").ok().and_then(|s| s.parse().ok())
}

/// Runs `make(seed)` for every seed; panics on the first violation with the seed
/// and the replay command.
fn run_seeds(test: &str, make: impl Fn(u64) -> SimConfig) {
    let seeds: Vec<u64> = match replay_seed() {
        Some(s) => vec![s],
        None => (0..seed_count()).collect(),
    };
    let started = Instant::now();
    let mut total = SimReport::default();
    let mut worst_liveness = 0;
    let trace = std::env::var("YRD_SIM_TRACE").is_ok_and(|v| v == "1");
    for &seed in &seeds {
        let mut cfg = make(seed);
        cfg.trace = trace && replay_seed().is_some();
        let report = sim::run(cfg);
        if replay_seed().is_some() {
            println!("{report:#?}");
        }
        if let Some(v) = &report.violation {
            panic!("{test}: seed {seed} violated an invariant: {v}\n{}\nreport: {report:?}", sim::replay_hint(seed, test));
        }
        total.max_height += report.min_height;
        total.messages_sent += report.messages_sent;
        total.signatures_verified += report.signatures_verified;
        total.evidence += report.evidence;
        total.crashes += report.crashes;
        total.partitions += report.partitions;
        worst_liveness = worst_liveness.max(report.liveness_ms.unwrap_or(0));
    }
    println!(
        "{test}: {} seeds ok in {:.1?}: {} blocks finalised by every honest node, {} crashes, {} partitions, {} evidence, worst heal-to-liveness {} ms simulated",
        seeds.len(),
        started.elapsed(),
        total.max_height,
        total.crashes,
        total.partitions,
        total.evidence,
        worst_liveness
    );
}

#[test]
fn n4_f1_byzantine_random_seeds() {
    run_seeds("n4_f1", |seed| SimConfig::new(4, 1, seed));
}

#[test]
fn n7_f2_byzantine_random_seeds() {
    run_seeds("n7_f2", |seed| SimConfig::new(7, 2, seed));
}
