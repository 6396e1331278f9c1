//! Transaction signature verification (one, batched), and appending a
//! 1,000-transaction block to the sled store (validate + commit + flush).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use yrd_consensus::types::Round;
use yrd_ledger::store::Ledger;
use yrd_ledger::testkit::TestChain;
use yrd_ledger::tx::{verify_batch, AttestationKind, SignedTransaction};
use yrd_ledger::uscc::Uscc;

fn txs(chain: &TestChain, from: u64, n: u64) -> Vec<SignedTransaction> {
    (from..from + n)
        .map(|i| chain.attestation((i % 4) as usize, i, Uscc::sample(i), AttestationKind::ALL[(i % 7) as usize]))
        .collect()
}

fn signatures(c: &mut Criterion) {
    let chain = TestChain::new(4, 4);
    let batch = txs(&chain, 0, 1024);
    let mut g = c.benchmark_group("tx_signature");
    g.throughput(Throughput::Elements(1));
    g.bench_function("verify_one", |b| b.iter(|| batch[0].verify_signature().unwrap()));
    // What batching buys: admission verifies whatever batch arrived together.
    for n in [8usize, 32, 128, 1024] {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("verify_batch_{n}"), |b| {
            let refs: Vec<&SignedTransaction> = batch[..n].iter().collect();
            b.iter(|| verify_batch(&refs).unwrap())
        });
    }
    g.throughput(Throughput::Elements(1));
    g.bench_function("sign_one", |b| {
        let tx = batch[0].tx.clone();
        b.iter(|| tx.clone().sign(&chain.issuer_keys[0]).unwrap())
    });
    g.bench_function("decode_and_id", |b| {
        let bytes = batch[0].encode().unwrap();
        b.iter(|| SignedTransaction::decode(&bytes).unwrap().id().unwrap())
    });
    g.finish();
}

fn store_append(c: &mut Criterion) {
    let chain = TestChain::new(4, 4);
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(dir.path(), chain.genesis.clone()).unwrap();
    let mut next = 0u64;
    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Elements(1000));
    g.sample_size(20);
    // Signatures are pre-verified (as for transactions admitted to the mempool);
    // what is measured is state checks, log, subject map, encoding, the atomic
    // batch write and the fsync.
    g.bench_function("append_block_1000_txs", |b| {
        b.iter_batched(
            || {
                let t = txs(&chain, next, 1000);
                next += 1000;
                t
            },
            |t| {
                let h = ledger.height().next();
                let proposer = ledger.validators().proposer(h, Round(0));
                let built = ledger.build_block(t, proposer, Round(0), 1_800_000_000_000 + h.0).unwrap();
                let cert = chain.certify(&built.block.header);
                ledger.commit(&built.block, &cert).unwrap();
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, signatures, store_append);
criterion_main!(benches);
