//! Fail-stop storage with real processes. One validator of four keeps its data
//! on a small tmpfs (RAM, never the root filesystem):
//!
//! - with load running, it stops at its disk reserve (after refusing new work
//!   below its low mark), or — the reserve off — fails with ENOSPC; either way
//!   with the error logged as an ERROR first and a non-zero exit within a bound,
//!   while the other three keep finalising;
//! - with its disk filled outright, its next write fails and it exits within a
//!   bound (it used to hang in its final flush, deaf to SIGTERM).
//!
//! Each time, once there is room again, it restarts without intervention (the
//! store reopens at its last complete block, repaired if the failed write tore
//! it), catches up, still holds every block its API showed as final, and
//! `yrd audit verify-ledger` says CONSISTENT.
//!
//! Needs root (mount); each test is skipped with the reason otherwise.

use std::io::Write;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use yrd_ledger::testkit::TestChain;
use yrd_ledger::tx::AttestationKind;
use yrd_ledger::uscc::Uscc;
use yrd_tests::{yrd_bin, Cluster, Tmpfs};

/// The validator whose data directory is on the tmpfs.
const SMALL: usize = 3;
/// Attestations per batch submission of the load.
const LOAD_BATCH: u64 = 400;
/// A node whose store failed must have exited this long after it logged the
/// error (its own shutdown steps are bounded at 5 + 5 s, the runtime's at 5 s).
const EXIT_BOUND_S: u64 = 30;
/// How long the load may run before the small disk must have stopped the node.
const LOAD_LIMIT_S: u64 = 300;
const MIB: u64 = 1024 * 1024;

/// Each test runs a four-node cluster under load: they take turns, so that the
/// timings (exit bounds, catch-up) and the disk figures are each test's own.
static SERIAL: Mutex<()> = Mutex::new(());

/// Acknowledged attestations checked one by one on every node (the rest are
/// counted): a seeded sample and the last ones acknowledged.
const ACKED_SAMPLE: usize = 150;
const ACKED_LAST: usize = 50;
const ACKED_SAMPLE_SEED: u64 = 0x5eed_ac4e;

/// Submits attestations to the nodes other than the small one, in batches, until
/// stopped; collects the ids the API acknowledged (202 pending).
fn start_load(c: &Cluster, stop: Arc<AtomicBool>, accepted: Arc<Mutex<Vec<String>>>) -> std::thread::JoinHandle<()> {
    let chain = TestChain::new(4, 4);
    let apis: Vec<String> = c.nodes[..SMALL].iter().map(|n| n.api.clone()).collect();
    std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .into();
        let mut n = 1u64;
        let mut turn = 0usize;
        while !stop.load(Ordering::Relaxed) {
            let txs: Vec<String> = (n..n + LOAD_BATCH)
                .map(|i| {
                    let tx = chain.attestation((i % 4) as usize, i, Uscc::sample(i), AttestationKind::ALL[(i % 7) as usize]);
                    hex::encode(tx.encode().expect("encode"))
                })
                .collect();
            n += LOAD_BATCH;
            let url = format!("{}/v1/transactions/batch", apis[turn % apis.len()]);
            turn += 1;
            let Ok(mut resp) = agent.post(&url).header("content-type", "application/json").send(json!({ "txs": txs }).to_string())
            else {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            };
            let body: Value = resp.body_mut().read_json().unwrap_or(Value::Null);
            let ids: Vec<String> = body["results"]
                .as_array()
                .map(|r| r.iter().filter(|e| e["status"] == "pending").filter_map(|e| e["id"].as_str().map(String::from)).collect())
                .unwrap_or_default();
            let ok = ids.len();
            if let Ok(mut a) = accepted.lock() {
                a.extend(ids);
            }
            if (ok as u64) < LOAD_BATCH {
                std::thread::sleep(Duration::from_millis(200)); // mempool full: back off
            }
        }
    })
}

/// Appends the hashes of the blocks node `i` serves as final, up to its height.
fn record_blocks(c: &Cluster, i: usize, seen: &mut Vec<(u64, String)>) {
    let Some(h) = c.height(i) else { return };
    let mut next = seen.last().map_or(1, |(h, _)| h + 1);
    while next <= h {
        match c.get(i, &format!("/v1/blocks/{next}")) {
            Some((200, b)) => match b["hash"].as_str() {
                Some(hash) => seen.push((next, hash.to_string())),
                None => return,
            },
            _ => return,
        }
        next += 1;
    }
}

/// The ERROR with which the node stops on a storage failure (the driver's, or
/// the stall watch's). sled's background flusher, or an API query that hit the
/// failing store, may log an ERROR of their own first; those do not stop it.
fn node_error(c: &Cluster, i: usize) -> Option<String> {
    let log = std::fs::read_to_string(&c.nodes[i].log).unwrap_or_default();
    log.lines().find(|l| l.contains(" ERROR yrd_node::node: ") && l.contains("storage failure")).map(str::to_string)
}

/// Every ERROR line in node `i`'s log (for the test's output).
fn error_lines(c: &Cluster, i: usize) -> Vec<String> {
    let log = std::fs::read_to_string(&c.nodes[i].log).unwrap_or_default();
    log.lines().filter(|l| l.contains(" ERROR ")).map(str::to_string).collect()
}

/// Waits for node `i` to log its ERROR (bounded by `secs`), then for it to exit
/// within [`EXIT_BOUND_S`]: returns the line and the (non-zero) exit status.
fn wait_fail_stop(c: &mut Cluster, i: usize, secs: u64, mut each: impl FnMut(&Cluster)) -> (String, std::process::ExitStatus) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let line = loop {
        each(c);
        if let Some(line) = node_error(c, i) {
            break line;
        }
        let name = c.nodes[i].name.clone();
        assert!(c.nodes[i].is_running(), "{name} exited without logging an ERROR:\n{}", c.nodes[i].log_tail(30));
        assert!(Instant::now() < deadline, "{name} did not stop within {secs} s; log tail:\n{}", c.nodes[i].log_tail(20));
        std::thread::sleep(Duration::from_millis(200));
    };
    let logged = Instant::now();
    let status = c.wait_exit(i, EXIT_BOUND_S).unwrap_or_else(|| {
        panic!(
            "{} logged its failure but did not exit within {EXIT_BOUND_S} s (a hang on the failed store?):\n{}",
            c.nodes[i].name,
            c.nodes[i].log_tail(20)
        )
    });
    assert!(!status.success(), "{} stopped on a storage failure with a success status", c.nodes[i].name);
    println!("{} exited {} ms after its ERROR, with {status}; its ERROR lines:", c.nodes[i].name, logged.elapsed().as_millis());
    for l in error_lines(c, i) {
        println!("    {l}");
    }
    (line, status)
}

/// The other three keep finalising: a few more blocks, and a new attestation
/// final on node 0. Returns its id.
fn others_keep_finalising(c: &mut Cluster) -> String {
    let h0 = c.height(0).expect("node 0 answers");
    c.wait_height(0, h0 + 3, 60);
    let tx = c.chain.attestation(1, 20_000_000_000, Uscc::sample(11), AttestationKind::Commitment);
    // After a load the mempool may still be full for a while (503 mempool_full).
    let deadline = Instant::now() + Duration::from_secs(120);
    let body = loop {
        let (status, body) = c.submit(0, &tx);
        if status == 202 {
            break body;
        }
        assert!(status == 503 && body["code"] == "mempool_full" && Instant::now() < deadline, "{status} {body}");
        std::thread::sleep(Duration::from_millis(500));
    };
    let id = body["id"].as_str().expect("id").to_string();
    c.wait_final(0, &id, 60);
    id
}

/// Every attestation the API acknowledged (`acked`) is final on every node: the
/// mempools drain, every node's log holds at least that many transactions, and
/// a seeded sample plus the last ones acknowledged are each final on every node.
fn acknowledged_final_everywhere(c: &mut Cluster, acked: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while (0..c.nodes.len()).any(|i| c.get(i, "/v1/status").is_none_or(|(_, v)| v["mempool_size"].as_u64() != Some(0))) {
        assert!(Instant::now() < deadline, "the mempools did not drain");
        std::thread::sleep(Duration::from_millis(500));
    }
    let top = c.height(0).expect("node 0 answers");
    for i in 0..c.nodes.len() {
        c.wait_height(i, top, 60);
    }
    let mut sample: Vec<&String> = acked.iter().rev().take(ACKED_LAST).collect();
    let mut x = ACKED_SAMPLE_SEED;
    for _ in 0..ACKED_SAMPLE.min(acked.len()) {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        sample.push(&acked[(x >> 33) as usize % acked.len()]);
    }
    for i in 0..c.nodes.len() {
        let log_size = c.get(i, "/v1/status").and_then(|(_, v)| v["log_size"].as_u64()).expect("status");
        assert!(
            log_size >= acked.len() as u64,
            "{} holds {log_size} transactions, fewer than the {} acknowledged",
            c.nodes[i].name,
            acked.len()
        );
        for id in &sample {
            c.wait_final(i, id, 60);
        }
    }
    println!(
        "{} attestations acknowledged: every node's log holds at least as many; {} of them (seed {ACKED_SAMPLE_SEED:#x} and the last {ACKED_LAST}) checked final on each of the {} nodes",
        acked.len(),
        sample.len(),
        c.nodes.len()
    );
}

/// Restarts the small node (its disk has room again) and checks it recovered:
/// catches up with node 0, keeps every block it showed as final, agrees block by
/// block, sees `after_id` and every acknowledged attestation (`acked`) final (as
/// every other node does), stops cleanly on SIGTERM, and its store passes the
/// auditor. Returns the repair line it logged at start, if any.
fn restart_and_check(c: &mut Cluster, shown: &[(u64, String)], after_id: &str, acked: &[String]) -> Option<String> {
    c.start_node(SMALL);
    let target = c.height(0).expect("node 0 answers");
    c.wait_height(SMALL, target, 180);
    let log = std::fs::read_to_string(&c.nodes[SMALL].log).unwrap_or_default();
    let repaired = log.lines().find(|l| l.contains("store repaired at open")).map(str::to_string);
    let name = c.nodes[SMALL].name.clone();
    for (h, hash) in shown {
        let (status, b) = c.get(SMALL, &format!("/v1/blocks/{h}")).expect("block");
        assert_eq!(status, 200, "block {h} that {name} showed as final is gone: {b}");
        assert_eq!(b["hash"].as_str(), Some(hash.as_str()), "block {h} changed on {name}");
    }
    for h in 1..=target {
        let a = c.get(0, &format!("/v1/blocks/{h}")).expect("block").1["hash"].clone();
        let b = c.get(SMALL, &format!("/v1/blocks/{h}")).expect("block").1["hash"].clone();
        assert_eq!(a, b, "block {h} differs between {} and {name}", c.nodes[0].name);
    }
    c.wait_final(SMALL, after_id, 60);
    acknowledged_final_everywhere(c, acked);
    let status = c.stop(SMALL).expect("running");
    assert!(status.success(), "{name} exited with {status} on SIGTERM");
    let out = Command::new(yrd_bin())
        .args(["audit", "verify-ledger", "--data"])
        .arg(&c.nodes[SMALL].data_dir)
        .arg("--genesis")
        .arg(&c.genesis_path)
        .output()
        .expect("yrd audit verify-ledger");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("CONSISTENT"), "verify-ledger: {text}{}", String::from_utf8_lossy(&out.stderr));
    println!("{name}: restarted, caught up to {target}, the {} blocks it had shown final still there, store CONSISTENT", shown.len());
    repaired
}

/// Prepares the cluster with the small node's data directory on a tmpfs and
/// `storage` appended to its config; `None` (test skipped) without root.
fn small_disk_cluster(name: &str, tmpfs_mib: u64, storage: &str) -> Option<(Cluster, Tmpfs)> {
    let c = Cluster::prepare(4, &[]);
    let fs = match Tmpfs::mount(&c.nodes[SMALL].data_dir, tmpfs_mib) {
        Ok(fs) => fs,
        Err(reason) => {
            println!("SKIPPED {name}: {reason}");
            return None;
        }
    };
    let config = c.nodes[SMALL].config.clone();
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str(storage);
    std::fs::write(&config, text).expect("config");
    Some((c, fs))
}

/// What a load scenario expects.
struct Expect {
    /// Every one of these is in the node's ERROR line.
    in_error: &'static [&'static str],
    /// Below its low mark the node answered a submission 503 `disk_low`.
    low_refusal: bool,
    /// Free space on its disk when it exited, at least.
    free_at_exit_min: u64,
}

/// Load until the small node fail-stops, then the checks of the module docs.
fn small_disk_under_load(name: &str, tmpfs_mib: u64, storage: &str, expect: Expect) {
    let Some((mut c, fs)) = small_disk_cluster(name, tmpfs_mib, storage) else { return };
    for i in 0..4 {
        c.start_node(i);
    }
    for i in 0..4 {
        c.wait_height(i, 1, 60);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let load = start_load(&c, stop.clone(), accepted.clone());
    // Meanwhile: what the small node's API shows final, and whether it refuses work.
    let mut shown: Vec<(u64, String)> = Vec::new();
    let mut refused_low: Option<Value> = None;
    let mut probe = 0u64;
    let (line, status) = wait_fail_stop(&mut c, SMALL, LOAD_LIMIT_S, |c| {
        record_blocks(c, SMALL, &mut shown);
        if refused_low.is_none() {
            probe += 1;
            let tx = c.chain.attestation(0, 10_000_000_000 + probe, Uscc::sample(7), AttestationKind::RedList);
            if let Some((503, body)) = c.post(SMALL, "/v1/transactions", &json!({ "tx": hex::encode(tx.encode().expect("encode")) })) {
                if body["code"] == "disk_low" {
                    refused_low = Some(body);
                }
            }
        }
    });
    let free_at_exit = fs.free_bytes();
    println!(
        "{name}: ERROR after {} attestations accepted by the others: {line}\n{name}: exit {status}, {} KiB free on its disk, its API showed {} blocks final",
        accepted.lock().map_or(0, |a| a.len()),
        free_at_exit / 1024,
        shown.len()
    );
    for want in expect.in_error {
        assert!(line.contains(want), "the ERROR does not name the failure ({want:?}): {line}");
    }
    if expect.low_refusal {
        let body = refused_low.as_ref().unwrap_or_else(|| panic!("{name}: the node never answered 503 disk_low before it stopped"));
        assert!(body["error"].as_str().is_some_and(|e| e.contains("low on disk space")), "{body}");
        println!("{name}: below its low mark the API answered 503 {body}");
    }
    assert!(
        free_at_exit >= expect.free_at_exit_min,
        "{name}: {free_at_exit} bytes free at exit, expected at least {}",
        expect.free_at_exit_min
    );

    // The others keep finalising under the load, and after it.
    let h0 = c.height(0).expect("node 0 answers");
    c.wait_height(0, h0 + 3, 60);
    stop.store(true, Ordering::Relaxed);
    load.join().expect("load thread");
    let after_id = others_keep_finalising(&mut c);
    fs.resize(tmpfs_mib * 8);
    let acked = accepted.lock().map(|a| a.clone()).unwrap_or_default();
    if let Some(line) = restart_and_check(&mut c, &shown, &after_id, &acked) {
        println!("{name}: at restart: {line}");
    }
    drop(c);
    drop(fs);
}

#[test]
fn a_validator_on_a_full_disk_fails_stop_then_restarts_and_catches_up() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // No reserve: the write that does not fit fails with ENOSPC.
    small_disk_under_load(
        "full disk (reserve 0)",
        32,
        "\n[storage]\nreserve_mib = 0\nlow_mib = 0\n",
        Expect { in_error: &["storage failure", "No space left on device"], low_refusal: false, free_at_exit_min: 0 },
    );
}

#[test]
fn a_validator_stops_at_its_disk_reserve_before_the_disk_fills() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Below 40 MiB free no new work; a block that could leave less than 8 MiB stops it.
    // The node stops by its own check (the ERROR names the reserve, no write
    // failed). The reserve is there to absorb sled's background work, which goes
    // on until the process exits: once (CI-like run, 30 Nov 2026) the check saw
    // 11 MiB free and refused block 58, and 3.1 MiB were free at exit (16 MiB in
    // the run after). So the bound at exit is that the disk did not fill, with a
    // margin, not that the whole reserve is left.
    small_disk_under_load(
        "disk reserve",
        64,
        "\n[storage]\nreserve_mib = 8\nlow_mib = 40\n",
        Expect { in_error: &["storage failure", "disk reserve reached"], low_refusal: true, free_at_exit_min: MIB },
    );
}

#[test]
fn a_node_whose_store_failed_exits_within_a_bound() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let name = "store failed";
    let Some((mut c, fs)) = small_disk_cluster(name, 32, "\n[storage]\nreserve_mib = 0\nlow_mib = 0\n") else { return };
    for i in 0..4 {
        c.start_node(i);
    }
    for i in 0..4 {
        c.wait_height(i, 2, 60);
    }
    let mut shown = Vec::new();
    record_blocks(&c, SMALL, &mut shown);
    // Fill the disk outright: the node's next write (an empty block each second,
    // or the safety state before a vote) fails with ENOSPC.
    let filler = fs.path().join("filler");
    let mut f = std::fs::File::create(&filler).expect("filler");
    for chunk in [MIB as usize, 4096, 1] {
        let buf = vec![0u8; chunk];
        while f.write_all(&buf).is_ok() {}
    }
    drop(f);
    println!("{name}: disk filled, {} bytes free", fs.free_bytes());
    let (line, _) = wait_fail_stop(&mut c, SMALL, 60, |c| record_blocks(c, SMALL, &mut shown));
    assert!(line.contains("storage failure") && line.contains("No space left on device"), "{line}");
    println!("{name}: {line}");

    let after_id = others_keep_finalising(&mut c);
    std::fs::remove_file(&filler).expect("remove filler");
    if let Some(line) = restart_and_check(&mut c, &shown, &after_id, &[]) {
        println!("{name}: at restart: {line}");
    }
    drop(c);
    drop(fs);
}

/// Disk used by a validator that resyncs the whole chain from its peers, against
/// the live store of one that followed it: peak during the resync and at the
/// end, with `du` (allocated blocks). Printed, and bounded by
/// [`RESYNC_DISK_RATIO_MAX`] times the live store.
#[test]
fn resync_uses_disk_proportional_to_the_chain() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = Cluster::start(4);
    for i in 0..4 {
        c.wait_height(i, 1, 60);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let load = start_load(&c, stop.clone(), accepted.clone());
    let h0 = c.height(0).expect("node 0 answers");
    c.wait_height(0, h0 + RESYNC_LOAD_BLOCKS, 300);
    stop.store(true, Ordering::Relaxed);
    load.join().expect("load thread");
    // Let the mempools drain into blocks, then measure at rest.
    let deadline = Instant::now() + Duration::from_secs(120);
    while c.get(0, "/v1/status").is_some_and(|(_, v)| v["mempool_size"].as_u64().unwrap_or(0) > 0) {
        assert!(Instant::now() < deadline, "the mempool did not drain");
        std::thread::sleep(Duration::from_millis(500));
    }
    let target = c.height(0).expect("node 0 answers");
    c.wait_height(SMALL, target, 60);
    let status = c.get(0, "/v1/status").expect("status").1;
    let live = yrd_tests::du_bytes(&c.nodes[0].data_dir);
    let follower = yrd_tests::du_bytes(&c.nodes[SMALL].data_dir);
    // Wipe the follower and let it resync from empty, watching its disk use.
    c.kill(SMALL);
    std::fs::remove_dir_all(&c.nodes[SMALL].data_dir).expect("wipe");
    c.start_node(SMALL);
    let mut peak = 0u64;
    let deadline = Instant::now() + Duration::from_secs(300);
    while c.height(SMALL).is_none_or(|h| h < target) {
        peak = peak.max(yrd_tests::du_bytes(&c.nodes[SMALL].data_dir));
        assert!(Instant::now() < deadline && c.nodes[SMALL].is_running(), "no resync to {target}:\n{}", c.nodes[SMALL].log_tail(20));
        std::thread::sleep(Duration::from_millis(200));
    }
    let after = yrd_tests::du_bytes(&c.nodes[SMALL].data_dir);
    peak = peak.max(after);
    // A few seconds at rest: sled's background flusher and segment cleaner.
    std::thread::sleep(Duration::from_secs(5));
    let settled = yrd_tests::du_bytes(&c.nodes[SMALL].data_dir);
    let mib = |b: u64| b as f64 / MIB as f64;
    println!(
        "resync: chain of {target} blocks, {} transactions; live store {:.1} MiB (a follower's {:.1} MiB); \
         resync from empty: peak {:.1} MiB, at catch-up {:.1} MiB, 5 s later {:.1} MiB (peak/live {:.2})",
        status["log_size"],
        mib(live),
        mib(follower),
        mib(peak),
        mib(after),
        mib(settled),
        peak as f64 / live as f64
    );
    assert!(
        peak <= live * RESYNC_DISK_RATIO_MAX,
        "resync took {peak} bytes at its peak, more than {RESYNC_DISK_RATIO_MAX}× the live store's {live}"
    );
}

/// Blocks of load before the resync measurement.
const RESYNC_LOAD_BLOCKS: u64 = 20;
/// A resync may take at most this many times the live store's disk.
const RESYNC_DISK_RATIO_MAX: u64 = 2;
