//! Where the time of a 4,096-transaction block goes: build (execute), validate
//! (execute on a second store), commit (write + fsync). `cargo run --release -p
//! yrd-ledger --example profile_block`.
use std::time::Instant;
use yrd_consensus::types::Round;
use yrd_ledger::store::Ledger;
use yrd_ledger::testkit::TestChain;
use yrd_ledger::tx::AttestationKind;
use yrd_ledger::uscc::Uscc;

fn main() {
    let chain = TestChain::new(4, 4);
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let mut a = Ledger::open(d1.path(), chain.genesis.clone()).unwrap();
    let mut b = Ledger::open(d2.path(), chain.genesis.clone()).unwrap();
    let n = 4096u64;
    for round in 0..8u64 {
        let txs: Vec<_> = (round * n..(round + 1) * n)
            .map(|i| chain.attestation((i % 4) as usize, i, Uscc::sample(i), AttestationKind::ALL[(i % 7) as usize]))
            .collect();
        let h = a.height().next();
        let p = a.validators_at(h).unwrap().proposer(h, Round(0));
        let t0 = Instant::now();
        let built = a.build_block(txs, p, Round(0), 1_800_000_000_000 + h.0).unwrap();
        let t1 = Instant::now();
        b.validate_block(&built.block, &|_| true).unwrap();
        let t2 = Instant::now();
        let cert = chain.certify(&built.block.header);
        let t3 = Instant::now();
        a.commit(&built.block, &cert).unwrap();
        let t4 = Instant::now();
        b.commit(&built.block, &cert).unwrap();
        let bytes = built.block.encode().unwrap().len();
        println!(
            "block {h}: build {:?} ({:.1} µs/tx), validate {:?}, commit {:?} ({:.1} µs/tx), {} bytes",
            t1 - t0,
            (t1 - t0).as_secs_f64() * 1e6 / n as f64,
            t2 - t1,
            t4 - t3,
            (t4 - t3).as_secs_f64() * 1e6 / n as f64,
            bytes
        );
    }
}
