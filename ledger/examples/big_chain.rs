//! A long chain, for the memory, restart and query figures of issue 12 item 6
//! (BENCHMARKS.md, "Where a validator's memory goes"): generates a store of
//! `N` attestations about `E` enterprises straight through the ledger (build,
//! certify, commit; no consensus, no network; a second thread signs while the
//! first commits), then reopens it as a restarted node would and serves subject
//! reports and proof bundles from it.
//!
//!     cargo run --release -p yrd-ledger --example big_chain -- 10000000 1000000 /var/tmp/big
//!
//! Arguments: attestations (default 10,000,000), enterprises (default 1,000,000),
//! directory (default: a fresh temporary one, removed at the end; a given one is
//! kept and must not exist yet). Prints progress to stderr every 250 blocks.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use yrd_ledger::genesis::ChainParams;
use yrd_ledger::proof;
use yrd_ledger::store::Ledger;
use yrd_ledger::testkit::TestChain;
use yrd_ledger::tx::{AttestationKind, SignedTransaction};
use yrd_ledger::uscc::Uscc;

/// Attestations per block: the chain's default block limit.
const PER_BLOCK: u64 = 4096;
const ISSUERS: usize = 4;

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn dir_bytes(p: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => total += dir_bytes(&e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("reopen") {
        return reopen(&args[1..]);
    }
    let n: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000_000);
    let enterprises: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000).max(1);
    let tmp;
    let dir = match args.get(2) {
        Some(d) => {
            let p = std::path::PathBuf::from(d);
            if p.exists() {
                return Err(format!("{} exists already", p.display()));
            }
            p
        }
        None => {
            tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
            tmp.path().join("store")
        }
    };
    let chain = TestChain::with_params(4, ISSUERS, ChainParams::default());
    let genesis = chain.genesis.clone();
    let mut ledger = Ledger::open(&dir, genesis.clone()).map_err(|e| e.to_string())?;
    let rss0 = status_kib("VmRSS:");

    // The signer: blocks of attestations, subjects in turn, issuers in turn.
    let (tx, rx) = mpsc::sync_channel::<Vec<SignedTransaction>>(4);
    let signer_chain = TestChain::with_params(4, ISSUERS, ChainParams::default());
    let signer = std::thread::spawn(move || {
        let mut next = 0u64;
        while next < n {
            let k = PER_BLOCK.min(n - next);
            let block: Vec<SignedTransaction> = (next..next + k)
                .map(|i| {
                    let issuer = (i % ISSUERS as u64) as usize;
                    let seq = i / ISSUERS as u64 + 1;
                    let subject = Uscc::sample(i % enterprises);
                    signer_chain.attestation(issuer, seq, subject, AttestationKind::ALL[(i % 7) as usize])
                })
                .collect();
            if tx.send(block).is_err() {
                return;
            }
            next += k;
        }
    });

    let t0 = Instant::now();
    let mut done = 0u64;
    let mut blocks = 0u64;
    let mut last = Instant::now();
    while let Ok(txs) = rx.recv() {
        done += txs.len() as u64;
        chain.commit_next(&mut ledger, txs)?;
        blocks += 1;
        if blocks.is_multiple_of(250) || last.elapsed() > Duration::from_secs(60) {
            last = Instant::now();
            eprintln!(
                "{done} attestations in {blocks} blocks, {:.0} s, {:.0}/s; VmRSS {:.0} MiB, VmHWM {:.0} MiB; {:.2} GB on disk",
                t0.elapsed().as_secs_f64(),
                done as f64 / t0.elapsed().as_secs_f64(),
                mib(status_kib("VmRSS:")),
                mib(status_kib("VmHWM:")),
                dir_bytes(&dir) as f64 / 1e9
            );
        }
    }
    signer.join().map_err(|_| "the signer panicked".to_string())?;
    let gen_s = t0.elapsed().as_secs_f64();
    let rss_end = status_kib("VmRSS:");
    let hwm = status_kib("VmHWM:");
    let height = ledger.height().0;
    drop(ledger);
    let disk = dir_bytes(&dir);
    println!(
        "generated: {done} attestations about {} enterprises in {blocks} blocks ({PER_BLOCK} each) in {gen_s:.0} s ({:.0}/s, signing on a second thread); \
         store {:.2} GB on disk ({:.0} B per attestation); resident {:.0} MiB at the end ({:.0} MiB before the first block), peak {:.0} MiB",
        enterprises.min(n),
        done as f64 / gen_s,
        disk as f64 / 1e9,
        disk as f64 / done as f64,
        mib(rss_end),
        mib(rss0),
        mib(hwm)
    );

    // Restart in a fresh process, as a node starts: nothing of the generation's heap.
    let status = std::process::Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .arg("reopen")
        .arg(&dir)
        .arg(enterprises.min(n).to_string())
        .arg(n.to_string())
        .arg(height.to_string())
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("the reopening process failed: {status}"));
    }
    Ok(())
}

/// `reopen DIR ENTERPRISES N HEIGHT`: opens the store as a restarted node would,
/// then serves reports and bundles from it (a fresh process: its memory is the
/// restarted ledger's).
fn reopen(args: &[String]) -> Result<(), String> {
    let dir = std::path::PathBuf::from(&args[0]);
    let enterprises: u64 = args[1].parse().map_err(|_| "enterprises")?;
    let n: u64 = args[2].parse().map_err(|_| "n")?;
    let height: u64 = args[3].parse().map_err(|_| "height")?;
    let chain = TestChain::with_params(4, ISSUERS, ChainParams::default());
    let genesis = chain.genesis.clone();
    // Restart: what a node's ledger does when it starts on this store.
    let before = status_kib("VmRSS:");
    let t = Instant::now();
    let ledger = Ledger::open(&dir, genesis).map_err(|e| e.to_string())?;
    let open_s = t.elapsed().as_secs_f64();
    let after = status_kib("VmRSS:");
    println!(
        "restart: Ledger::open on {height} blocks took {open_s:.1} s; resident {:.0} → {:.0} MiB (+{:.0} MiB, {:.0} B per enterprise)",
        mib(before),
        mib(after),
        mib(after.saturating_sub(before)),
        after.saturating_sub(before) as f64 * 1024.0 / enterprises as f64
    );

    // Queries on it: a subject report (first page, as the node's report route builds
    // it under its read lock) for random enterprises, and a proof bundle.
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut report_ms = Vec::new();
    let mut report_bytes = 0usize;
    for _ in 0..500 {
        let s = Uscc::sample(next() % enterprises);
        let t = Instant::now();
        let r = proof::report_page(&ledger, &s, 0, proof::MAX_REPORT_PAGE_ENTRIES, &|_| true).map_err(|e| e.to_string())?;
        let json = serde_json::to_string(&r).map_err(|e| e.to_string())?;
        report_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        report_bytes += json.len();
    }
    let mut bundle_ms = Vec::new();
    for _ in 0..500 {
        // Attestation i, signed again (signatures are deterministic): its id.
        let i = next() % n;
        let (issuer, seq) = ((i % ISSUERS as u64) as usize, i / ISSUERS as u64 + 1);
        let id = chain
            .attestation(issuer, seq, Uscc::sample(i % enterprises), AttestationKind::ALL[(i % 7) as usize])
            .id()
            .map_err(|e| e.to_string())?;
        let t = Instant::now();
        let b = proof::bundle(&ledger, &id).map_err(|e| e.to_string())?;
        let _ = serde_json::to_string(&b).map_err(|e| e.to_string())?;
        bundle_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "queries (cold cache after the restart, 500 each): subject report (~{} records, {} B of JSON) p50 {:.2} ms, p99 {:.2} ms; \
         proof bundle p50 {:.2} ms, p99 {:.2} ms; resident {:.0} MiB after them",
        n / enterprises,
        report_bytes / 500,
        pct(&mut report_ms, 0.5),
        pct(&mut report_ms, 0.99),
        pct(&mut bundle_ms, 0.5),
        pct(&mut bundle_ms, 0.99),
        mib(status_kib("VmRSS:"))
    );
    Ok(())
}
