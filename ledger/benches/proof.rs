//! Proofs: bundle and report verification speed, file sizes, and the subject-map
//! update cost per block as the ledger grows to 1,000,000 attestations.
//!
//! Run: `cargo bench -p yrd-ledger --bench proof -- --warm-up-time 1 --measurement-time 3`
//!
//! Sizes are printed to stderr (`size ...` lines) before the timings.

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use yrd_consensus::crypto::{sha256, Hash32};
use yrd_consensus::types::Round;
use yrd_ledger::proof;
use yrd_ledger::store::Ledger;
use yrd_ledger::subjects::SubjectMap;
use yrd_ledger::testkit::TestChain;
use yrd_ledger::tx::{AttestationKind, RevocationReason, TxId};
use yrd_ledger::uscc::Uscc;

/// Attestations in the ledger the bundles are made from.
const LEDGER_TXS: u64 = 100_000;
/// Distinct subjects they are about (two records per subject on average).
const LEDGER_SUBJECTS: u64 = 50_000;
const BLOCK_TXS: u64 = 2_000;
/// Records about the subject of the large report.
const BIG_SUBJECT_RECORDS: u64 = 100;
const NOW: u64 = 1_900_000_000_000;

struct Built {
    _dir: tempfile::TempDir,
    chain: TestChain,
    ledger: Ledger,
    active: TxId,
    revoked: TxId,
}

fn build_ledger() -> Built {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let chain = TestChain::new(4, 2);
    let mut ledger = Ledger::open(dir.path(), chain.genesis.clone()).unwrap();
    let big = Uscc::sample(LEDGER_SUBJECTS + 1);
    let mut seq = 0u64;
    let mut first = None;
    let mut n = 0u64;
    while n < LEDGER_TXS {
        let mut txs = Vec::with_capacity(BLOCK_TXS as usize);
        for _ in 0..BLOCK_TXS.min(LEDGER_TXS - n) {
            seq += 1;
            let subject = if n.is_multiple_of(LEDGER_TXS / BIG_SUBJECT_RECORDS) { big } else { Uscc::sample(n % LEDGER_SUBJECTS) };
            let tx = chain.attestation(0, seq, subject, AttestationKind::ALL[(n % 7) as usize]);
            first.get_or_insert(tx.id().unwrap());
            txs.push(tx);
            n += 1;
        }
        commit(&mut ledger, &chain, txs);
    }
    let revoked = first.unwrap();
    seq += 1;
    commit(&mut ledger, &chain, vec![chain.revocation(0, seq, revoked, RevocationReason::Repair)]);
    // An active attestation about a subject with two records, in the middle of the log.
    let active = ledger.by_subject(&Uscc::sample(LEDGER_SUBJECTS / 2 + 7), 0).unwrap()[0].id;
    eprintln!("built a ledger of {LEDGER_TXS} attestations about {LEDGER_SUBJECTS} subjects in {:?}", started.elapsed());
    Built { _dir: dir, chain, ledger, active, revoked }
}

fn commit(ledger: &mut Ledger, chain: &TestChain, txs: Vec<yrd_ledger::tx::SignedTransaction>) {
    let h = ledger.height().next();
    let proposer = ledger.validators_at(h).unwrap().proposer(h, Round(0));
    let built = ledger.build_block(txs, proposer, Round(0), 1_800_000_000_000 + h.0).unwrap();
    assert!(built.rejected.is_empty());
    let cert = chain.certify(&built.block.header);
    ledger.commit(&built.block, &cert).unwrap();
}

fn bench_proofs(c: &mut Criterion) {
    let b = build_ledger();
    let g = &b.chain.genesis;
    let active = proof::bundle(&b.ledger, &b.active).unwrap();
    let revoked = proof::bundle(&b.ledger, &b.revoked).unwrap();
    let big = proof::report(&b.ledger, &Uscc::sample(LEDGER_SUBJECTS + 1)).unwrap();
    let small = proof::report(&b.ledger, &Uscc::sample(LEDGER_SUBJECTS / 2 + 7)).unwrap();
    let absent = proof::report(&b.ledger, &Uscc::sample(LEDGER_SUBJECTS * 10)).unwrap();
    let size = |v: &dyn erased::Ser| v.json_len();
    eprintln!(
        "size bundle active {} B (inclusion {} hashes, subject proof {} siblings, record of {} entries)",
        size(&active),
        active.attestation.inclusion.len(),
        active.subject.proof.siblings.len(),
        b.ledger.subject_record(&Uscc::sample(LEDGER_SUBJECTS / 2 + 7)).unwrap().unwrap().entries.len()
    );
    eprintln!("size bundle revoked {} B (record of {} entries)", size(&revoked), big.entries.len());
    eprintln!("size report {} records {} B", small.entries.len(), size(&small));
    eprintln!("size report {} records {} B", big.entries.len(), size(&big));
    eprintln!("size report absent {} B", size(&absent));
    let active_json = serde_json::to_vec(&active).unwrap();

    let mut grp = c.benchmark_group("proof_verify");
    grp.throughput(Throughput::Elements(1));
    grp.bench_function("bundle_active", |bn| bn.iter(|| proof::verify_bundle(g, black_box(&active), NOW).unwrap()));
    grp.bench_function("bundle_active_with_json_parse", |bn| {
        bn.iter(|| {
            let f = proof::parse_file(black_box(&active_json)).unwrap();
            proof::verify_file(g, &f, NOW).unwrap()
        })
    });
    grp.bench_function("bundle_revoked_100_record_subject", |bn| {
        bn.iter(|| proof::verify_bundle(g, black_box(&revoked), NOW).unwrap())
    });
    grp.bench_function("report_2_records", |bn| bn.iter(|| proof::verify_report(g, black_box(&small), NOW).unwrap()));
    grp.bench_function("report_100_records", |bn| bn.iter(|| proof::verify_report(g, black_box(&big), NOW).unwrap()));
    grp.bench_function("report_absent", |bn| bn.iter(|| proof::verify_report(g, black_box(&absent), NOW).unwrap()));
    grp.finish();

    let mut grp = c.benchmark_group("proof_build");
    grp.bench_function("bundle", |bn| bn.iter(|| proof::bundle(&b.ledger, black_box(&b.active)).unwrap()));
    grp.bench_function("report_100_records", |bn| {
        bn.iter(|| proof::report(&b.ledger, black_box(&Uscc::sample(LEDGER_SUBJECTS + 1))).unwrap())
    });
    grp.finish();
}

/// JSON size of a file without naming its type.
mod erased {
    pub trait Ser {
        fn json_len(&self) -> usize;
    }
    impl<T: serde::Serialize> Ser for T {
        fn json_len(&self) -> usize {
            serde_json::to_vec(self).map(|v| v.len()).unwrap_or(0)
        }
    }
}

fn key(i: u64) -> [u8; 32] {
    sha256(&[b"subject", &i.to_be_bytes()]).0
}

fn value(i: u64, round: u64) -> Hash32 {
    sha256(&[&i.to_be_bytes(), &round.to_be_bytes()])
}

/// One block's worth of subject-map work as the ledger grows: 1,000 changed
/// subjects per block, at maps of 10k, 100k and 1M subjects (1M subjects means
/// at least 1M attestations).
fn bench_subject_map(c: &mut Criterion) {
    let mut grp = c.benchmark_group("subject_map_1000_changes");
    grp.sample_size(20);
    grp.throughput(Throughput::Elements(1_000));
    for size in [10_000u64, 100_000, 1_000_000] {
        let started = Instant::now();
        let entries: Vec<([u8; 32], Hash32)> = (0..size).map(|i| (key(i), value(i, 0))).collect();
        let rss_before = rss_bytes();
        let mut map = SubjectMap::from_entries(&entries);
        let rss_after = rss_bytes();
        drop(entries);
        eprintln!(
            "built a subject map of {size} subjects in {:?}; resident memory +{} MB (~{} B per subject)",
            started.elapsed(),
            rss_after.saturating_sub(rss_before) / 1_000_000,
            rss_after.saturating_sub(rss_before) / size
        );
        let mut round = 0u64;
        // 1,000 existing subjects get a new record each (the map keeps its size;
        // inserting a new subject costs the same path walk plus one split).
        let changes = |round: u64| -> Vec<([u8; 32], Hash32)> {
            (0..1_000u64).map(|j| {
                let i = (round * 7_919 + j * 104_729) % size;
                (key(i), value(i, round + 1))
            }).collect()
        };
        grp.bench_function(format!("root_with_at_{size}"), |bn| {
            bn.iter_batched(
                || {
                    round += 1;
                    changes(round)
                },
                |ch| map.root_with(&ch),
                BatchSize::SmallInput,
            )
        });
        grp.bench_function(format!("apply_at_{size}"), |bn| {
            bn.iter_batched(
                || {
                    round += 1;
                    changes(round)
                },
                |ch| map.apply(&ch),
                BatchSize::SmallInput,
            )
        });
        eprintln!("subject map now holds {} subjects", map.len());
    }
    grp.finish();
}

/// Resident set size of this process (Linux), 0 elsewhere.
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4096)
}

criterion_group!(benches, bench_proofs, bench_subject_map);
criterion_main!(benches);
