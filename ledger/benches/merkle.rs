//! Merkle log at 1,000,000 leaves: append, root, proof generation and verification.
//!
//! Run: `cargo bench -p yrd-ledger --bench merkle -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use yrd_consensus::crypto::Hash32;
use yrd_ledger::merkle::{
    append_nodes, consistency_proof, inclusion_proof, leaf_hash, root, verify_consistency, verify_inclusion,
    MemoryLog,
};

const LOG_SIZE: u64 = 1_000_000;
const BATCH: u64 = 1_000;
const INDEX: u64 = 123_457;
const OLD_SIZE: u64 = 654_321;

fn leaf(i: u64) -> Hash32 {
    leaf_hash(format!("credit attestation #{i}").as_bytes())
}

fn build(size: u64) -> MemoryLog {
    let started = Instant::now();
    let mut log = MemoryLog::new();
    let leaves: Vec<Hash32> = (0..size).map(leaf).collect();
    for chunk in leaves.chunks(BATCH as usize) {
        log.append_leaf_hashes(chunk);
    }
    eprintln!("built a {size}-leaf MemoryLog in {:?} (1,000-leaf batches)", started.elapsed());
    log
}

fn bench_merkle(c: &mut Criterion) {
    let log = build(LOG_SIZE);
    let batch: Vec<Hash32> = (LOG_SIZE..LOG_SIZE + BATCH).map(leaf).collect();

    let mut g = c.benchmark_group("merkle_append_at_1M");
    g.throughput(Throughput::Elements(BATCH));
    // What a block commit computes: the new complete nodes for a 1,000-leaf batch.
    g.bench_function("append_nodes_1000", |b| {
        b.iter(|| append_nodes(black_box(&log), LOG_SIZE, black_box(&batch)).expect("append"))
    });
    // The same plus writing the nodes into a MemoryLog (clone made outside the timing).
    g.sample_size(10);
    g.bench_function("memorylog_append_1000", |b| {
        b.iter_custom(|iters| {
            let mut grown = log.clone();
            let started = Instant::now();
            for _ in 0..iters {
                grown.append_leaf_hashes(black_box(&batch));
            }
            started.elapsed()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("merkle_at_1M");
    g.bench_function("root_1000000", |b| b.iter(|| root(black_box(&log), LOG_SIZE).expect("root")));
    g.bench_function("root_999999", |b| b.iter(|| root(black_box(&log), LOG_SIZE - 1).expect("root")));

    let proof = inclusion_proof(&log, INDEX, LOG_SIZE).expect("proof");
    let head = root(&log, LOG_SIZE).expect("root");
    let leaf_h = leaf(INDEX);
    verify_inclusion(&leaf_h, INDEX, LOG_SIZE, &proof, &head).expect("valid proof");
    g.bench_function("inclusion_proof", |b| {
        b.iter(|| inclusion_proof(black_box(&log), black_box(INDEX), LOG_SIZE).expect("proof"))
    });
    g.bench_function("verify_inclusion", |b| {
        b.iter(|| verify_inclusion(black_box(&leaf_h), INDEX, LOG_SIZE, black_box(&proof), &head).expect("valid"))
    });

    let cproof = consistency_proof(&log, OLD_SIZE, LOG_SIZE).expect("proof");
    let old_head = root(&log, OLD_SIZE).expect("root");
    verify_consistency(OLD_SIZE, LOG_SIZE, &old_head, &head, &cproof).expect("valid proof");
    g.bench_function("consistency_proof", |b| {
        b.iter(|| consistency_proof(black_box(&log), black_box(OLD_SIZE), LOG_SIZE).expect("proof"))
    });
    g.bench_function("verify_consistency", |b| {
        b.iter(|| {
            verify_consistency(OLD_SIZE, LOG_SIZE, black_box(&old_head), &head, black_box(&cproof)).expect("valid")
        })
    });
    eprintln!(
        "inclusion proof ({INDEX}, {LOG_SIZE}): {} hashes; consistency proof ({OLD_SIZE} -> {LOG_SIZE}): {} hashes",
        proof.len(),
        cproof.len()
    );
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = bench_merkle
}
criterion_main!(benches);
