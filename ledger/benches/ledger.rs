//! Transaction signature verification (the rule, one at a time; and ed25519 batch
//! verification as a reference), and appending a
//! 1,000-transaction block to the sled store (validate + commit + flush).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use yrd_consensus::types::Round;
use yrd_ledger::store::Ledger;
use yrd_ledger::testkit::TestChain;
use yrd_ledger::tx::{AttestationKind, SignedTransaction, TAG_TRANSACTION};
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
    // The reference figure only: ed25519 batch verification (the node never batches;
    // see yrd_consensus::sigrule). Issue 12 compares the node's CPU per attestation
    // with it.
    for n in [8usize, 32, 128, 1024] {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("reference_batch_{n}"), |b| {
            let msgs: Vec<Vec<u8>> = batch[..n]
                .iter()
                .map(|t| yrd_consensus::crypto::signing_bytes(TAG_TRANSACTION, &t.tx.signing_payload().unwrap()))
                .collect();
            let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
            let sigs: Vec<ed25519_dalek::Signature> =
                batch[..n].iter().map(|t| ed25519_dalek::Signature::from_bytes(&t.signature.0)).collect();
            let keys: Vec<ed25519_dalek::VerifyingKey> =
                batch[..n].iter().map(|t| ed25519_dalek::VerifyingKey::from_bytes(&t.tx.issuer.0).unwrap()).collect();
            b.iter(|| ed25519_dalek::verify_batch(&refs, &sigs, &keys).unwrap())
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
                let proposer = ledger.validators_at(h).unwrap().proposer(h, Round(0));
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
