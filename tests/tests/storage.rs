//! Fail-stop storage with real processes: one validator of four keeps its data
//! on a small tmpfs while load runs. It must stop — at its disk reserve, or on
//! ENOSPC when the reserve is off — with the error logged as an ERROR first and a
//! non-zero exit within a bound (no hang in its final flush), while the other
//! three keep finalising. Once the tmpfs is enlarged it must restart without
//! intervention (the store reopens at its last complete block), catch up, keep
//! every block its API showed as final, and pass `yrd audit verify-ledger`.
//!
//! Needs root (mount); skipped with the reason otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use yrd_ledger::testkit::TestChain;
use yrd_ledger::tx::AttestationKind;
use yrd_ledger::uscc::Uscc;
use yrd_tests::{yrd_bin, Cluster};

/// The validator whose data directory is on the tmpfs.
const SMALL: usize = 3;
/// Attestations per batch submission of the load.
const LOAD_BATCH: u64 = 400;
/// A node whose store failed must exit within this long of logging the error.
const EXIT_BOUND_S: u64 = 30;

/// A tmpfs mounted over a directory, unmounted (lazily) when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, mib: u64) -> Result<Tmpfs, String> {
        if !Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0") {
            return Err("needs root to mount a tmpfs".into());
        }
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "yrd-test-disk"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("mount -t tmpfs failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }

    fn resize(&self, mib: u64) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={mib}m")])
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "cannot resize the tmpfs at {} to {mib} MiB", self.0.display());
    }

    /// Free bytes, as `df` sees them.
    fn free_bytes(&self) -> u64 {
        let out = Command::new("df").args(["-B1", "--output=avail"]).arg(&self.0).output().expect("df");
        String::from_utf8_lossy(&out.stdout).lines().nth(1).and_then(|l| l.trim().parse().ok()).expect("df output")
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Submits attestations to nodes 0..SMALL in batches until stopped; counts the
/// accepted ones.
fn start_load(c: &Cluster, stop: Arc<AtomicBool>, accepted: Arc<AtomicU64>) -> std::thread::JoinHandle<()> {
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
            let ok = body["results"].as_array().map_or(0, |r| r.iter().filter(|e| e["status"] == "pending").count());
            accepted.fetch_add(ok as u64, Ordering::Relaxed);
            if (ok as u64) < LOAD_BATCH {
                std::thread::sleep(Duration::from_millis(200)); // mempool full: back off
            }
        }
    })
}

/// Hashes of the blocks node `i` serves as final, from `from` up to its height.
fn record_blocks(c: &Cluster, i: usize, seen: &mut Vec<(u64, String)>) {
    let Some(h) = c.height(i) else { return };
    let mut next = seen.last().map_or(1, |(h, _)| h + 1);
    while next <= h {
        match c.get(i, &format!("/v1/blocks/{next}")) {
            Some((200, b)) => seen.push((next, b["hash"].as_str().expect("hash").to_string())),
            _ => return,
        }
        next += 1;
    }
}

/// Runs the scenario; `storage` is the `[storage]` section of the small node's config.
fn small_disk_scenario(name: &str, tmpfs_mib: u64, storage: &str, expect_in_error: &[&str]) {
    let mut c = Cluster::prepare(4, &[]);
    let fs = match Tmpfs::mount(&c.nodes[SMALL].data_dir, tmpfs_mib) {
        Ok(fs) => fs,
        Err(reason) => {
            println!("SKIPPED {name}: {reason}");
            return;
        }
    };
    let config = c.nodes[SMALL].config.clone();
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str(storage);
    std::fs::write(&config, text).expect("config");
    for i in 0..4 {
        c.start_node(i);
    }
    for i in 0..4 {
        c.wait_height(i, 1, 60);
    }

    // Load until the small node stops; meanwhile record what its API shows final.
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicU64::new(0));
    let load = start_load(&c, stop.clone(), accepted.clone());
    let mut shown: Vec<(u64, String)> = Vec::new();
    let mut refused_low = None;
    let deadline = Instant::now() + Duration::from_secs(240);
    let error_seen = loop {
        record_blocks(&c, SMALL, &mut shown);
        if refused_low.is_none() {
            // Does the node still accept work? (503 disk_low once below the low mark.)
            let tx = c.chain.attestation(0, 10_000_000_000 + shown.len() as u64, Uscc::sample(7), AttestationKind::RedList);
            if let Some((503, body)) = c.post(SMALL, "/v1/transactions", &json!({ "tx": hex::encode(tx.encode().unwrap()) })) {
                if body["code"] == "disk_low" {
                    refused_low = Some(body);
                }
            }
        }
        let log = std::fs::read_to_string(&c.nodes[SMALL].log).unwrap_or_default();
        if let Some(line) = log.lines().find(|l| l.contains(" ERROR ")) {
            break line.to_string();
        }
        assert!(c.nodes[SMALL].is_running(), "{} exited without logging an ERROR:\n{}", c.nodes[SMALL].name, c.nodes[SMALL].log_tail(30));
        assert!(Instant::now() < deadline, "{} did not stop within 240 s of load ({} attestations accepted); log tail:\n{}",
            c.nodes[SMALL].name, accepted.load(Ordering::Relaxed), c.nodes[SMALL].log_tail(20));
        std::thread::sleep(Duration::from_millis(200));
    };
    println!("{name}: first ERROR after {} attestations accepted: {error_seen}", accepted.load(Ordering::Relaxed));
    for want in expect_in_error {
        assert!(error_seen.contains(want), "the first ERROR does not name the failure ({want:?}): {error_seen}");
    }
    let status = c
        .wait_exit(SMALL, EXIT_BOUND_S)
        .unwrap_or_else(|| panic!("{} logged its failure but did not exit within {EXIT_BOUND_S} s:\n{}", c.nodes[SMALL].name, c.nodes[SMALL].log_tail(20)));
    assert!(!status.success(), "{} stopped on a storage failure with a success status", c.nodes[SMALL].name);
    let free_at_exit = fs.free_bytes();
    println!("{name}: {} exited with {status}; {free_at_exit} bytes free on its disk; its API showed {} blocks final", c.nodes[SMALL].name, shown.len());

    // The other three keep finalising.
    let h0 = c.height(0).expect("node 0 answers");
    c.wait_height(0, h0 + 3, 60);
    stop.store(true, Ordering::Relaxed);
    load.join().expect("load thread");
    let tx = c.chain.attestation(1, 20_000_000_000, Uscc::sample(11), AttestationKind::Commitment);
    let (status, body) = c.submit(0, &tx);
    assert_eq!(status, 202, "{body}");
    let after_id = body["id"].as_str().expect("id").to_string();
    c.wait_final(0, &after_id, 60);

    // More room; the node restarts by itself, catches up and agrees.
    fs.resize(tmpfs_mib * 8);
    c.start_node(SMALL);
    let target = c.height(0).expect("node 0 answers");
    c.wait_height(SMALL, target, 180);
    let log = std::fs::read_to_string(&c.nodes[SMALL].log).unwrap_or_default();
    if let Some(line) = log.lines().find(|l| l.contains("repaired")) {
        println!("{name}: at restart: {line}");
    }
    for (h, hash) in &shown {
        let (status, b) = c.get(SMALL, &format!("/v1/blocks/{h}")).expect("block");
        assert_eq!(status, 200, "block {h} that {} showed as final is gone: {b}", c.nodes[SMALL].name);
        assert_eq!(b["hash"].as_str(), Some(hash.as_str()), "block {h} changed on {}", c.nodes[SMALL].name);
    }
    for h in 1..=target {
        let a = c.get(0, &format!("/v1/blocks/{h}")).expect("block").1["hash"].clone();
        let b = c.get(SMALL, &format!("/v1/blocks/{h}")).expect("block").1["hash"].clone();
        assert_eq!(a, b, "block {h} differs between {} and {}", c.nodes[0].name, c.nodes[SMALL].name);
    }
    c.wait_final(SMALL, &after_id, 60);

    // A clean stop, then the auditor's verdict on its store.
    let status = c.stop(SMALL).expect("running");
    assert!(status.success(), "{} exited with {status} on SIGTERM", c.nodes[SMALL].name);
    let out = Command::new(yrd_bin())
        .args(["audit", "verify-ledger", "--data"])
        .arg(&c.nodes[SMALL].data_dir)
        .arg("--genesis")
        .arg(&c.genesis_path)
        .output()
        .expect("yrd audit verify-ledger");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("CONSISTENT"), "verify-ledger: {text}{}", String::from_utf8_lossy(&out.stderr));
    println!("{name}: restarted, caught up to {target}, {} blocks it had shown final still there, store CONSISTENT", shown.len());
    if let Some(body) = refused_low {
        println!("{name}: below the low mark the API answered 503 {body}");
    }
    drop(c);
    drop(fs);
}

#[test]
fn a_validator_on_a_full_disk_fails_stop_then_restarts_and_catches_up() {
    // No reserve: the write that does not fit fails with ENOSPC.
    small_disk_scenario(
        "full disk (reserve 0)",
        32,
        "\n[storage]\nreserve_mib = 0\nlow_mib = 0\n",
        &["No space left on device"],
    );
}
