//! Randomised simulation of n real cores (docs/consensus.md, "Simulator").
//!
//! `YRD_SIM_SEEDS=N` sets the number of seeds per test (default 1000; 200 and 100
//! for the reconfiguration tests from 4 and 7 validators, whose runs cost about
//! twice as much: they must also finalise blocks under the last set; 300 and 150
//! for the aimed tests of 4 and 7 validators);
//! `YRD_SIM_SEED_START=K` starts at seed K instead of 0 (to shard long runs);
//! `YRD_SIM_KEEP_GOING=1` counts failing seeds instead of stopping at the first;
//! `YRD_SIM_SEED=S` replays one seed with a printed report (`YRD_SIM_TRACE=1`
//! adds every event and action).

use std::time::Instant;

use yrd_consensus::sim::{self, Behaviour, ChangeKind, Coverage, ReconfigConfig, SimConfig, SimReport, Violation};

fn seed_count() -> u64 {
    seed_count_or(1000)
}

fn seed_count_or(default: u64) -> u64 {
    std::env::var("YRD_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
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
    let mut kinds = [0u64; 4];
    let mut sizes = (usize::MAX, 0);
    let mut after_change = 0;
    let mut coverage = Coverage::default();
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
        total.stale_messages += report.stale_messages;
        total.stale_certificates += report.stale_certificates;
        total.rotations += report.rotations;
        for c in &report.changes {
            kinds[c.kind as usize] += 1;
        }
        sizes = (sizes.0.min(report.set_sizes.0), sizes.1.max(report.set_sizes.1));
        after_change += report.heights_after_last_change;
        coverage.add(&report.coverage);
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
    println!("{test}: coverage {coverage:?}");
    if kinds.iter().sum::<u64>() > 0 {
        println!(
            "{test}: set changes: {} additions, {} removals, {} rotations ({} key restarts), {} re-additions; set sizes {}..={}; \
             {} heights finalised by every honest node at or above the last change; stale keys sent {} messages and {} \
             certificates valid for their old set, none counted",
            kinds[ChangeKind::Add as usize],
            kinds[ChangeKind::Remove as usize],
            kinds[ChangeKind::Rotate as usize],
            total.rotations,
            kinds[ChangeKind::Readd as usize],
            sizes.0,
            sizes.1,
            after_change,
            total.stale_messages,
            total.stale_certificates
        );
    }
}

fn replay(seed: u64, label: &str, filter: &str) -> String {
    let n = label
        .strip_prefix("all_sizes_")
        .and_then(|rest| rest.rsplit_once('n'))
        .filter(|(_, n)| n.parse::<usize>().is_ok())
        .map(|(_, n)| format!("YRD_SIM_N={n} "))
        .unwrap_or_default();
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


/// The aiming adversary (docs/consensus.md, "Simulator"): targeted delivery of
/// honest votes before the heal, and Byzantine validators that re-propose old
/// values with real or forged proofs of lock, vote for what they push or nil,
/// propose out of turn, forge certificates with repeated, unknown or too few
/// signers and forget their lock.
#[test]
fn n4_f1_aimed_random_seeds() {
    let test = "n4_f1_aimed_random_seeds";
    run_seeds_n(test, test, seed_count_or(AIMED_SEEDS), |seed| SimConfig::new(4, 1, seed).aimed());
}

/// The same with 7 validators (2 Byzantine, colluding).
#[test]
fn n7_f2_aimed_random_seeds() {
    let test = "n7_f2_aimed_random_seeds";
    run_seeds_n(test, test, seed_count_or(AIMED_SEEDS / 2), |seed| SimConfig::new(7, 2, seed).aimed());
}

/// Seeds of the aimed n = 4 test in CI (half as many for n = 7, whose seeds cost
/// about twice as much). Every planted bug of scripts/mutants.sh is killed within
/// the first 60 (docs/consensus.md, "Planted bugs").
const AIMED_SEEDS: u64 = 300;

/// Starting from 4 validators (1 Byzantine), 1 to 4 changes of the set at
/// random heights — additions, removals, rotations, re-additions; sets of 1 to 8
/// — under the same faults, with f of every height's set Byzantine and every
/// stale key signing for heights after it left.
#[test]
fn n4_reconfig_random_seeds() {
    let test = "n4_reconfig_random_seeds";
    // A run with changes costs about twice one without (it must also finalise
    // blocks under the last set): fewer seeds keep the suite's wall time.
    run_seeds_n(test, test, seed_count_or(200), |seed| SimConfig::new(4, 1, seed).with_reconfig(ReconfigConfig::default()));
}

/// The same from 7 validators (2 Byzantine).
#[test]
fn n7_reconfig_random_seeds() {
    let test = "n7_reconfig_random_seeds";
    run_seeds_n(test, test, seed_count_or(100), |seed| SimConfig::new(7, 2, seed).with_reconfig(ReconfigConfig::default()));
}

/// Negative control for reconfiguration: every honest core is handed, for each
/// height, the set in force before the latest change (a node that verifies a
/// height with the previous set). The checker must report a certificate that
/// does not verify against the set of its height within a bounded number of
/// seeds. If this fails, the checker is blind to stale sets.
#[test]
fn negative_control_stale_sets_caught() {
    let max_seeds = 200;
    let mut other = Vec::new();
    for seed in 0..max_seeds {
        let stale = ReconfigConfig { stale_sets: true, ..ReconfigConfig::default() };
        let report = sim::run(SimConfig::new(4, 1, seed).with_reconfig(stale));
        match &report.violation {
            Some(v @ Violation::Certificate { .. }) => {
                println!("negative control (stale sets): seed {seed} caught as expected: {v}; earlier seeds caught otherwise: {other:?}");
                return;
            }
            Some(v) => other.push((seed, format!("{v:?}").chars().take(60).collect::<String>())),
            None => {}
        }
    }
    panic!("no certificate violation in {max_seeds} seeds with stale validator sets (other violations: {other:?}): the checker is blind");
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
        let a = sim::run(SimConfig::new(7, 2, seed).with_reconfig(ReconfigConfig::default()));
        let b = sim::run(SimConfig::new(7, 2, seed).with_reconfig(ReconfigConfig::default()));
        assert!(!a.changes.is_empty(), "seed {seed}: no change planned");
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "seed {seed} with reconfiguration");
    }
}

/// Runs `make(n, f, seed)` for every size n from 1 to 16 with f Byzantine.
fn all_sizes(prefix: &str, filter: &str, seeds: u64, make: impl Fn(usize, usize, u64) -> SimConfig) {
    for n in 1..=16usize {
        let f = (n - 1) / 3;
        let test = format!("{prefix}{n}");
        if replay_seed().is_some() && std::env::var("YRD_SIM_N").ok().and_then(|v| v.parse().ok()) != Some(n) {
            continue;
        }
        run_seeds_n(&test, filter, seeds, |seed| make(n, f, seed));
    }
}

/// Every validator-set size from 1 to 16, with f Byzantine validators.
#[test]
fn all_sizes_1_to_16() {
    all_sizes("all_sizes_n", "all_sizes_1_to_16", (seed_count() / 100).max(5), SimConfig::new);
}

/// Every size from 1 to 16 against the aiming adversary.
#[test]
fn all_sizes_1_to_16_aimed() {
    all_sizes("all_sizes_aimed_n", "all_sizes_1_to_16_aimed", (seed_count() / 100).max(5), |n, f, seed| {
        SimConfig::new(n, f, seed).aimed()
    });
}

/// Every initial size from 1 to 16 with changes of the set (sets of 1 to 16).
#[test]
fn all_sizes_1_to_16_reconfig() {
    all_sizes("all_sizes_reconfig_n", "all_sizes_1_to_16_reconfig", (seed_count() / 300).max(3), |n, f, seed| {
        SimConfig::new(n, f, seed).with_reconfig(ReconfigConfig::default())
    });
}
