//! Randomised simulation of n real cores (docs/consensus.md, "Simulator").
//!
//! `YRD_SIM_SEEDS=N` raises the number of seeds per test (default 1000);
//! `YRD_SIM_SEED_START=K` starts at seed K instead of 0 (to shard long runs);
//! `YRD_SIM_KEEP_GOING=1` counts failing seeds instead of stopping at the first;
//! `YRD_SIM_SEED=S` replays one seed with a printed report (`YRD_SIM_TRACE=1`
//! adds every event and action).

use std::time::Instant;

use yrd_consensus::sim::{self, Behaviour, SimConfig, SimReport, Violation};

fn seed_count() -> u64 {
    std::env::var("YRD_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(1000)
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

fn replay_seed() -> Option<u64> {
    std::env::var("YRD_SIM_SEED").ok().and_then(|s| s.parse().ok())
}

/// Runs `make(seed)` for every seed; panics on the first violation with the seed
/// and the replay command.
fn run_seeds(test: &str, make: impl Fn(u64) -> SimConfig) {
    run_seeds_n(test, test, seed_count(), make)
}

/// `filter` is the cargo test name to replay with; `label` names the run.
fn run_seeds_n(label: &str, filter: &str, count: u64, make: impl Fn(u64) -> SimConfig) {
    let test = label;
    let start = env_u64("YRD_SIM_SEED_START").unwrap_or(0);
    let seeds: Vec<u64> = match replay_seed() {
        Some(s) => vec![s],
        None => (start..start + count).collect(),
    };
    let keep_going = std::env::var("YRD_SIM_KEEP_GOING").is_ok_and(|v| v == "1");
    let mut failures: Vec<(u64, String)> = Vec::new();
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
        if (seed - start + 1).is_multiple_of(10_000) && seeds.len() > 1 {
            println!("{test}: {} seeds done in {:.1?}, {} failing", seed - start + 1, started.elapsed(), failures.len());
        }
        if let Some(v) = &report.violation {
            if keep_going {
                println!("{test}: seed {seed} FAILED: {v}; {}", replay(seed, label, filter));
                failures.push((seed, v.to_string()));
                continue;
            }
            panic!("{test}: seed {seed} violated an invariant: {v}\n{}\nreport: {report:?}", replay(seed, label, filter));
        }
        total.max_height += report.min_height;
        total.messages_sent += report.messages_sent;
        total.signatures_verified += report.signatures_verified;
        total.evidence += report.evidence;
        total.crashes += report.crashes;
        total.partitions += report.partitions;
        worst_liveness = worst_liveness.max(report.liveness_ms.unwrap_or(0));
    }
    assert!(failures.is_empty(), "{test}: {} of {} seeds failed: {failures:?}", failures.len(), seeds.len());
    println!(
        "{test}: seeds {start}..{} ({}) ok in {:.1?}: {} blocks finalised by every honest node, {} crashes, {} partitions, {} evidence, worst heal-to-liveness {} ms simulated",
        start + seeds.len() as u64,
        seeds.len(),
        started.elapsed(),
        total.max_height,
        total.crashes,
        total.partitions,
        total.evidence,
        worst_liveness
    );
}

fn replay(seed: u64, label: &str, filter: &str) -> String {
    let n = label.strip_prefix("all_sizes_n").map(|n| format!("YRD_SIM_N={n} ")).unwrap_or_default();
    format!("replay with: YRD_SIM_SEED={seed} {n}cargo test -p yrd-consensus --test simulation {filter} -- --nocapture (add YRD_SIM_TRACE=1 for a full trace)")
}

#[test]
fn n4_f1_byzantine_random_seeds() {
    run_seeds("n4_f1_byzantine_random_seeds", |seed| SimConfig::new(4, 1, seed));
}

#[test]
fn n7_f2_byzantine_random_seeds() {
    run_seeds("n7_f2_byzantine_random_seeds", |seed| SimConfig::new(7, 2, seed));
}

/// Negative control: with f + 1 colluding Byzantine validators (2 of 4) the
/// checker must catch a fork within a bounded number of seeds. If this test
/// fails, the simulator or its checker has gone blind.
#[test]
fn negative_control_f_plus_one_byzantine_forks() {
    let max_seeds = 200;
    for seed in 0..max_seeds {
        let mut cfg = SimConfig::new(4, 2, seed);
        cfg.allow_excess_byzantine = true;
        cfg.behaviour = Some(Behaviour::Split);
        let report = sim::run(cfg);
        if let Some(v @ Violation::Agreement { .. }) = &report.violation {
            println!("negative control: seed {seed} forked as expected: {v}");
            return;
        }
    }
    panic!("no agreement violation found in {max_seeds} seeds with f + 1 Byzantine validators: the checker is blind");
}

/// The same seed gives the same run, bit for bit.
#[test]
fn same_seed_same_run() {
    for seed in [1, 77, 4242] {
        let a = sim::run(SimConfig::new(7, 2, seed));
        let b = sim::run(SimConfig::new(7, 2, seed));
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "seed {seed}");
    }
}

/// Every validator-set size from 1 to 16, with f Byzantine validators.
#[test]
fn all_sizes_1_to_16() {
    let seeds = (seed_count() / 100).max(5);
    for n in 1..=16usize {
        let f = (n - 1) / 3;
        let test = format!("all_sizes_n{n}");
        if replay_seed().is_some() && std::env::var("YRD_SIM_N").ok().and_then(|v| v.parse().ok()) != Some(n) {
            continue;
        }
        run_seeds_n(&test, "all_sizes_1_to_16", seeds, |seed| SimConfig::new(n, f, seed));
    }
}
