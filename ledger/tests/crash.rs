//! Crash test: a child process appends blocks as fast as it can; the parent
//! kills it with SIGKILL at random moments, reopens the store each time, and
//! checks that every block the child reported committed is there, that only
//! whole blocks are there, and that every index agrees with the blocks.
//!
//! This is a `harness = false` test: the same binary is the parent and (with
//! `YRD_CRASH_CHILD_DIR` set) the child. `YRD_CRASH_SEED` and
//! `YRD_CRASH_ROUNDS` override the defaults.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use yrd_consensus::types::Round;
use yrd_ledger::audit::verify_store;
use yrd_ledger::store::Ledger;
use yrd_ledger::testkit::TestChain;
use yrd_ledger::tx::{AttestationKind, RevocationReason, TxBody};
use yrd_ledger::uscc::Uscc;

const TXS_PER_BLOCK: u64 = 40;

fn chain() -> TestChain {
    TestChain::new(4, 4)
}

/// Child: append blocks forever, reporting each height after `commit` returns.
fn child(dir: &Path) -> ! {
    let chain = chain();
    let mut ledger = Ledger::open(dir, chain.genesis.clone()).expect("child: open");
    loop {
        let h = ledger.height().next();
        let base = ledger.log_size();
        let mut txs = Vec::new();
        // Revoke the first attestation of the previous block, if any.
        if let Some(prev) = ledger.block(ledger.height()).expect("child: read") {
            if let Some(t) = prev.txs.first() {
                if matches!(t.tx.body, TxBody::Attest(_)) {
                    let issuer = chain.issuer_keys.iter().position(|k| k.public() == t.tx.issuer).unwrap();
                    txs.push(chain.revocation(issuer, 1_000_000 + h.0, t.id().unwrap(), RevocationReason::Repair));
                }
            }
        }
        for i in 0..TXS_PER_BLOCK {
            let n = base + i;
            let kind = AttestationKind::ALL[(n % 7) as usize];
            // A few subjects get many records; most get one.
            let subject = Uscc::sample(if n.is_multiple_of(5) { n % 17 } else { n });
            txs.push(chain.attestation((n % 4) as usize, n, subject, kind));
        }
        let proposer = ledger.validators_at(h).unwrap().proposer(h, Round(0));
        let built = ledger.build_block(txs, proposer, Round(0), 1_800_000_000_000 + h.0).expect("child: build");
        assert!(built.rejected.is_empty(), "child: rejected {:?}", built.rejected);
        let cert = chain.certify(&built.block.header);
        ledger.commit(&built.block, &cert).expect("child: commit");
        println!("committed {}", h.0);
    }
}

struct KillOnDrop(Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn main() {
    if let Ok(dir) = std::env::var("YRD_CRASH_CHILD_DIR") {
        child(Path::new(&dir));
    }
    // `cargo test -- --list` and filters: behave like a one-test harness.
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        println!("crash_kill_9_at_random_moments: test");
        return;
    }
    let seed: u64 = std::env::var("YRD_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_c0de);
    let rounds: u32 = std::env::var("YRD_CRASH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(50);
    println!("crash test: seed {seed} (replay with YRD_CRASH_SEED={seed}), {rounds} kills");
    let result = std::panic::catch_unwind(|| run(seed, rounds));
    match result {
        Ok(()) => {
            println!("test crash_kill_9_at_random_moments ... ok");
            println!("\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
        }
        Err(_) => {
            println!("test crash_kill_9_at_random_moments ... FAILED (seed {seed}; replay with YRD_CRASH_SEED={seed})");
            println!("\ntest result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out");
            std::process::exit(101);
        }
    }
}

fn run(seed: u64, rounds: u32) {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let chain = chain();
    let mut rng = seed | 1;
    let mut durable = 0u64;
    let mut kills_after_commit = 0;
    for round in 0..rounds {
        let mut child = KillOnDrop(
            Command::new(&exe)
                .env("YRD_CRASH_CHILD_DIR", dir.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap(),
        );
        let stdout = child.0.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<u64>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(h) = line.strip_prefix("committed ").and_then(|h| h.parse().ok()) {
                    if tx.send(h).is_err() {
                        break;
                    }
                }
            }
        });
        // Wait for a random number (0..6) of commits, then a random extra delay, then kill.
        let wait_commits = xorshift(&mut rng) % 6;
        let mut seen = 0;
        while seen < wait_commits {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(h) => {
                    durable = durable.max(h);
                    seen += 1;
                }
                Err(e) => panic!("round {round}: child made no progress within 60 s: {e}"),
            }
        }
        std::thread::sleep(Duration::from_micros(xorshift(&mut rng) % 20_000));
        child.0.kill().unwrap();
        child.0.wait().unwrap();
        reader.join().unwrap();
        while let Ok(h) = rx.try_recv() {
            durable = durable.max(h);
        }
        if seen > 0 {
            kills_after_commit += 1;
        }

        // Whole blocks only, indexes agree, nothing reported committed is lost.
        let report = verify_store(dir.path(), &chain.genesis)
            .unwrap_or_else(|e| panic!("round {round} (seed {seed}): store inconsistent after kill: {e}"));
        assert!(
            report.height.0 >= durable,
            "round {round} (seed {seed}): block {durable} was reported committed but the store holds only {}",
            report.height
        );
        assert!(report.transactions >= TXS_PER_BLOCK * report.height.0, "every block holds its {TXS_PER_BLOCK} attestations");
        let ledger = Ledger::open(dir.path(), chain.genesis.clone())
            .unwrap_or_else(|e| panic!("round {round} (seed {seed}): reopen failed: {e}"));
        assert_eq!(ledger.height(), report.height);
        assert_eq!(ledger.last_hash(), report.last_block_hash);
        durable = report.height.0;
    }
    assert!(durable > 0, "the child never committed a block");
    println!("crash test: {rounds} kills ({kills_after_commit} after at least one commit), final height {durable}");
}
