//! A short run of every fuzz target in the ordinary test suite (issue 13): the
//! bodies of the libFuzzer targets (`yrd_fuzz::targets`, the same functions the
//! `cargo fuzz` binaries call) run on stable, without libFuzzer's coverage
//! feedback, on
//!
//! 1. every input of the target's seed corpus (`fuzz/corpus/<target>/`, real
//!    traffic of an in-process chain, see `fuzz_seeds.rs`), and then
//! 2. mutants of those inputs, made from a fixed seed the way libFuzzer mutates
//!    (bit flips, interesting bytes and integers, inserted, deleted, repeated
//!    and spliced ranges), for an equal share of `YRD_FUZZ_SMOKE_SECONDS`
//!    (default 48) per target.
//!
//! For long runs, `YRD_FUZZ_SMOKE_RUNS=<n>` runs exactly mutants 0..n of each
//! target instead (no time share: the same inputs on every machine) and
//! `YRD_FUZZ_SMOKE_TARGETS=tx,block` picks targets; `YRD_FUZZ_SMOKE_FROM=<k>`
//! resumes a stopped long run (mutants below `k` are made, not run):
//!
//! ```text
//! YRD_FUZZ_SMOKE_RUNS=10000000 YRD_FUZZ_SMOKE_TARGETS=hello cargo test -p yrd-tests --test fuzz_smoke -- --nocapture
//! ```
//!
//! A failed property (a panic in a target) fails the test, naming the target,
//! the seed and the mutant's number, and keeps the input under
//! `target/fuzz-smoke/<target>/` so that `cargo fuzz run <target> <file>`
//! replays it. One execution running longer than 30 s fails the test too (the
//! input is kept the same way). Replay a run with `YRD_FUZZ_SMOKE_SEED=<seed>`;
//! mutant `k` of a seed is the same input on every machine, only how many
//! mutants fit in the time share differs.
//!
//! The coverage-guided runs (10⁷ executions per target) are `cargo +nightly fuzz
//! run` (fuzz/README.md); this test keeps every target building and passing on
//! its corpus and near it in every CI run, where a cold build of the
//! instrumented targets does not fit.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use yrd_consensus::sim::Rng;

const DEFAULT_SEED: u64 = 0x5eed_f022;
const DEFAULT_SECONDS: u64 = 48;
/// Longest input a mutant grows to (libFuzzer's default `-max_len` is 4096
/// when the corpus is smaller; a bigger seed keeps its own length).
const MAX_LEN: usize = 4096;
/// Longest a single execution may take before the run counts it as a hang.
const HANG: Duration = Duration::from_secs(30);
/// How often a long run (`YRD_FUZZ_SMOKE_RUNS`) prints its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(60);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the tests crate is inside the repository").to_path_buf()
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v.parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// The seed corpus of a target, in file-name order (empty if it has none).
fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = repo().join("fuzz/corpus").join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut paths: Vec<PathBuf> = entries.map(|e| e.expect("a corpus entry").path()).collect();
    paths.sort();
    paths.iter().map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).collect()
}

/// Values that break size and range checks when written over a field.
const INTERESTING: [u64; 12] =
    [0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0xffff, 0x7fff_ffff, 0xffff_ffff, u64::MAX];

/// One to four stacked mutations of a corpus input (or of nothing).
fn mutant(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut data = rng.pick(corpus).cloned().unwrap_or_default();
    let max_len = corpus.iter().map(Vec::len).max().unwrap_or(0).max(MAX_LEN);
    for _ in 0..rng.range(1, 4) {
        let len = data.len() as u64;
        match rng.below(9) {
            // Flip one bit.
            0 if len > 0 => {
                let at = rng.below(len) as usize;
                data[at] ^= 1 << rng.below(8);
            }
            // An interesting or random byte.
            1 if len > 0 => {
                let at = rng.below(len) as usize;
                data[at] = if rng.chance(500) { *rng.pick(&INTERESTING).expect("not empty") as u8 } else { rng.next_u64() as u8 };
            }
            // An interesting integer, 2, 4 or 8 bytes, either byte order.
            2 if len > 0 => {
                let width = [2usize, 4, 8][rng.below(3) as usize].min(data.len());
                let at = rng.below(len - width as u64 + 1) as usize;
                let v = *rng.pick(&INTERESTING).expect("not empty");
                let bytes = if rng.chance(500) { v.to_le_bytes() } else { v.to_be_bytes() };
                let bytes = if rng.chance(500) { &bytes[..width] } else { &bytes[8 - width..] };
                data[at..at + width].copy_from_slice(bytes);
            }
            // Delete a range.
            3 if len > 0 => {
                let at = rng.below(len) as usize;
                let n = rng.range(1, (len - at as u64).min(64)) as usize;
                data.drain(at..at + n);
            }
            // Insert random bytes.
            4 => {
                let at = rng.below(len + 1) as usize;
                let n = rng.range(1, 16) as usize;
                let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                data.splice(at..at, bytes);
            }
            // Repeat a range.
            5 if len > 0 => {
                let at = rng.below(len) as usize;
                let n = rng.range(1, (len - at as u64).min(256)) as usize;
                let copy = data[at..at + n].to_vec();
                let to = rng.below(len + 1) as usize;
                data.splice(to..to, copy);
            }
            // Splice in a range of another corpus input.
            6 => {
                if let Some(other) = rng.pick(corpus).filter(|o| !o.is_empty()) {
                    let from = rng.below(other.len() as u64) as usize;
                    let n = rng.range(1, (other.len() - from) as u64) as usize;
                    let at = rng.below(len + 1) as usize;
                    let end = (at + n).min(data.len());
                    data.splice(at..end, other[from..from + n].iter().copied());
                }
            }
            // Truncate.
            7 if len > 0 => data.truncate(rng.below(len) as usize),
            // Random bytes of a random length.
            _ => {
                let n = rng.below(64) as usize;
                data = (0..n).map(|_| rng.next_u64() as u8).collect();
            }
        }
    }
    data.truncate(max_len);
    data
}

enum Progress {
    /// About to run this input (kept for the report should it hang).
    Running(Vec<u8>),
    Done { target: &'static str, corpus: usize, from: u64, mutants: u64, elapsed: Duration },
    Failed { target: &'static str, which: String, input: Vec<u8>, message: String },
}

fn keep(target: &str, name: &str, input: &[u8]) -> PathBuf {
    let dir = repo().join("target/fuzz-smoke").join(target);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let path = dir.join(name);
    std::fs::write(&path, input).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}

/// The message of a caught panic.
fn message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".into())
}

#[test]
fn every_fuzz_target_passes_on_its_corpus_and_seeded_mutants() {
    let seed = env_u64("YRD_FUZZ_SMOKE_SEED", DEFAULT_SEED);
    let seconds = env_u64("YRD_FUZZ_SMOKE_SECONDS", DEFAULT_SECONDS);
    let runs = std::env::var("YRD_FUZZ_SMOKE_RUNS").ok().map(|_| env_u64("YRD_FUZZ_SMOKE_RUNS", 0));
    let from = env_u64("YRD_FUZZ_SMOKE_FROM", 0);
    assert!(from == 0 || runs.is_some(), "YRD_FUZZ_SMOKE_FROM resumes a long run: set YRD_FUZZ_SMOKE_RUNS too");
    let chosen: Option<Vec<String>> =
        std::env::var("YRD_FUZZ_SMOKE_TARGETS").ok().map(|v| v.split(',').map(|t| t.trim().to_string()).collect());
    let all = yrd_fuzz::targets::ALL;
    if let Some(chosen) = &chosen {
        let unknown: Vec<&String> = chosen.iter().filter(|c| !all.iter().any(|(n, _)| n == c)).collect();
        assert!(unknown.is_empty(), "YRD_FUZZ_SMOKE_TARGETS names no target {unknown:?}; the targets: {:?}", all.iter().map(|t| t.0).collect::<Vec<_>>());
    }
    // Every target keeps its own stream (its index in `ALL`), so that its
    // mutants do not depend on which targets run or how many mutants the
    // targets before it managed.
    let targets: Vec<(usize, &'static str, yrd_fuzz::targets::Run)> = all
        .iter()
        .enumerate()
        .filter(|(_, (n, _))| chosen.as_ref().is_none_or(|c| c.iter().any(|c| c == n)))
        .map(|(i, (n, r))| (i, *n, *r))
        .collect();
    let share = Duration::from_millis(seconds * 1000 / targets.len() as u64);
    match runs {
        Some(n) => println!("fuzz smoke: seed {seed} (replay with YRD_FUZZ_SMOKE_SEED={seed}), {} targets, mutants 0..{n} each", targets.len()),
        None => println!("fuzz smoke: seed {seed} (replay with YRD_FUZZ_SMOKE_SEED={seed}), {} targets, {share:?} each", targets.len()),
    }
    let count = targets.len();

    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for (i, target, run) in targets {
            let attempt = |which: String, input: Vec<u8>| -> bool {
                tx.send(Progress::Running(input.clone())).expect("the test is listening");
                match std::panic::catch_unwind(|| run(&input)) {
                    Ok(()) => true,
                    Err(p) => {
                        let message = message(p.as_ref());
                        tx.send(Progress::Failed { target, which, input, message }).expect("the test is listening");
                        false
                    }
                }
            };
            let seeds = corpus(target);
            let mut ok = true;
            for (n, input) in seeds.iter().enumerate() {
                ok = attempt(format!("corpus input {n}"), input.clone());
                if !ok {
                    break;
                }
            }
            let mut rng = Rng::new(seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut mutants = 0u64;
            // A resumed run makes the mutants it skips (the stream must advance
            // exactly as in the first run) without running them; they passed there.
            while mutants < from {
                mutant(&mut rng, &seeds);
                mutants += 1;
            }
            let start = Instant::now();
            let mut next_report = PROGRESS_EVERY;
            while ok && runs.map_or(start.elapsed() < share, |n| mutants < n) {
                ok = attempt(format!("mutant {mutants} of seed {seed}"), mutant(&mut rng, &seeds));
                mutants += 1;
                // Long runs say how far they got, so that a stopped run still counts.
                if runs.is_some() && start.elapsed() >= next_report {
                    next_report += PROGRESS_EVERY;
                    println!("fuzz smoke: {target}: mutants 0..{mutants} passed so far (this run from {from}), {:.0?}", start.elapsed());
                }
            }
            if ok {
                let elapsed = start.elapsed();
                tx.send(Progress::Done { target, corpus: seeds.len(), from, mutants, elapsed }).expect("the test is listening");
            }
        }
    });

    let mut running = Vec::new();
    let mut failures = Vec::new();
    let mut done = 0;
    while done < count {
        match rx.recv_timeout(HANG) {
            Ok(Progress::Running(input)) => running = input,
            Ok(Progress::Done { target, corpus, from, mutants, elapsed }) => {
                done += 1;
                let rate = (mutants - from) as f64 / elapsed.as_secs_f64().max(1e-3);
                let which = if from == 0 { format!("{mutants} mutants") } else { format!("mutants {from}..{mutants} (resumed)") };
                println!("fuzz smoke: {target}: ok, {corpus} corpus inputs and {which} in {elapsed:.1?} ({rate:.0}/s)");
            }
            Ok(Progress::Failed { target, which, input, message }) => {
                done += 1;
                let path = keep(target, &format!("failed-{seed}"), &input);
                failures.push(format!(
                    "{target}: {which} failed: {message}\n  input ({} bytes) kept in {}\n  replay: (cd fuzz && cargo +nightly fuzz run {target} {})",
                    input.len(),
                    path.display(),
                    path.display()
                ));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let path = keep("hang", &format!("input-{seed}"), &running);
                panic!(
                    "fuzz smoke (seed {seed}): one execution ran over {HANG:?}; after {done} targets; the input ({} bytes) is kept in {}",
                    running.len(),
                    path.display()
                );
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("fuzz smoke (seed {seed}): the runner stopped early"),
        }
    }
    assert!(failures.is_empty(), "fuzz smoke (seed {seed}): {} target(s) failed:\n{}", failures.len(), failures.join("\n"));
}

/// Every binary `fuzz/Cargo.toml` declares is a target this test runs, and
/// the other way round: a new target cannot be left out of CI.
#[test]
fn the_smoke_run_covers_every_fuzz_binary() {
    let manifest = std::fs::read_to_string(repo().join("fuzz/Cargo.toml")).expect("fuzz/Cargo.toml");
    let mut bins = BTreeSet::new();
    let mut in_bin = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if let Some(name) = line.strip_prefix("name = ").filter(|_| in_bin) {
            bins.insert(name.trim_matches('"').to_string());
        }
    }
    let run: BTreeSet<String> = yrd_fuzz::targets::ALL.iter().map(|(n, _)| n.to_string()).collect();
    assert!(!bins.is_empty(), "no [[bin]] found in fuzz/Cargo.toml");
    assert_eq!(run, bins, "yrd_fuzz::targets::ALL and fuzz/Cargo.toml's binaries differ");
    for name in &bins {
        let main = std::fs::read_to_string(repo().join(format!("fuzz/fuzz_targets/{name}.rs"))).expect("the target's binary");
        assert!(
            main.contains(&format!("yrd_fuzz::targets::{name}::run(data)")),
            "fuzz/fuzz_targets/{name}.rs does not call yrd_fuzz::targets::{name}::run"
        );
    }
}
