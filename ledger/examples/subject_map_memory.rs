//! Resident memory per distinct enterprise of the in-memory subject map
//! (`yrd_ledger::subjects::SubjectMap`), from the process's VmRSS before and
//! after (allocator overhead and fragmentation included; Linux):
//! `cargo run --release -p yrd-ledger --example subject_map_memory [N]`
//! (default 1,000,000 enterprises, inserted in blocks of 1,000 as a node does).

use yrd_consensus::crypto::sha256;
use yrd_ledger::subjects::SubjectMap;

/// This process's resident memory, from /proc/self/status (Linux).
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let before = rss_bytes();
    let started = std::time::Instant::now();
    let mut map = SubjectMap::new();
    let mut i = 0u64;
    while i < n {
        let block: Vec<_> = (i..(i + 1000).min(n)).map(|j| (sha256(&[b"k", &j.to_be_bytes()]).0, sha256(&[b"v", &j.to_be_bytes()]))).collect();
        i += block.len() as u64;
        map.apply(&block);
    }
    let built = started.elapsed();
    let bytes = rss_bytes().saturating_sub(before);
    let probe = sha256(&[b"k", &(n / 2).to_be_bytes()]).0;
    let t = std::time::Instant::now();
    let mut found = 0;
    for _ in 0..100_000 {
        found += usize::from(map.get(&probe).is_some());
    }
    let get_ns = t.elapsed().as_nanos() as f64 / 100_000.0;
    println!(
        "{n} enterprises: {} bytes more resident ({:.0} B each), root {}, built in {:.2} s, get {get_ns:.0} ns ({found} found)",
        bytes,
        bytes as f64 / n as f64,
        map.root(),
        built.as_secs_f64()
    );
}
