//! Operators' experience (issue 15), on real processes over loopback: a stalled chain
//! is visible (status, WARN, /health/ready, `--wait` progress), logs name peers by
//! their genesis name, and the build-info metric carries the version.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use yrd_tests::{yrd_bin, Cluster};

/// Polls `f` every 100 ms until it returns `Some`, or panics after `secs` with `what`
/// and the node's log.
fn until<T>(c: &Cluster, node: usize, secs: u64, what: &str, mut f: impl FnMut(&Cluster) -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f(c) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} within {secs} s; log tail of {}:\n{}", c.nodes[node].name, c.nodes[node].log_tail(40));
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn liveness(c: &Cluster, i: usize) -> Option<Value> {
    c.get(i, "/v1/status").map(|(_, v)| v["liveness"].clone()).filter(Value::is_object)
}

fn log(c: &Cluster, i: usize) -> String {
    std::fs::read_to_string(&c.nodes[i].log).unwrap_or_default()
}

/// Why: "a stalled chain (two of four validators down) logs nothing for 40 s, and
/// `status` shows no loss of quorum; `--wait` prints nothing until it ends", and
/// "logs name peers by peer id, never by agency"; "no health endpoint, no version
/// metric".
#[test]
fn two_of_four_down_is_quorum_lost_in_status_a_warn_not_ready_and_wait_progress() {
    let mut c = Cluster::start(4);
    c.wait_height(0, 2, 60);

    // Healthy: quorum present, ready, live, the version metric.
    let l = until(&c, 0, 30, "quorum present with 4 validators", |c| liveness(c, 0).filter(|l| l["validators_connected"] == 4));
    assert_eq!(l["quorum"], true, "{l}");
    assert_eq!(l["validators_needed"], 3);
    assert_eq!(l["catching_up"], false);
    let (code, body) = c.get(0, "/health/live").expect("live answers");
    assert_eq!((code, &body["live"]), (200, &Value::Bool(true)), "{body}");
    let (code, body) = until(&c, 0, 20, "ready", |c| c.get(0, "/health/ready").filter(|(s, _)| *s == 200));
    assert_eq!(body["ready"], true, "{code} {body}");
    assert_eq!(c.metric(0, &format!("yrd_build_info{{version=\"{}\"}}", env!("CARGO_PKG_VERSION"))), Some(1.0));
    assert_eq!(c.metric(0, "yrd_quorum_present"), Some(1.0));

    // Logs name peers by their genesis name next to the peer id.
    let text = log(&c, 0);
    let named = text.lines().any(|l| l.contains("peer connected") && l.contains(&format!("agency={}", c.nodes[1].name)));
    assert!(named, "no 'peer connected … agency={}' line in:\n{}", c.nodes[1].name, c.nodes[0].log_tail(40));

    // Two of four down: quorum lost, named.
    c.kill(2);
    c.kill(3);
    let l = until(&c, 0, 30, "quorum lost in status", |c| liveness(c, 0).filter(|l| l["quorum"] == false));
    assert_eq!(l["validators_connected"], 2, "{l}");
    let missing: Vec<&str> = l["validators_missing"].as_array().expect("missing").iter().filter_map(Value::as_str).collect();
    assert_eq!(missing, vec![c.nodes[2].name.as_str(), c.nodes[3].name.as_str()]);
    let (code, body) = c.get(0, "/health/ready").expect("ready answers");
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["code"], "not_ready");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("quorum lost")), "{body}");
    let out = Command::new(yrd_bin()).args(["status", "--node", &c.nodes[0].api]).output().expect("yrd status");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("quorum      LOST: 2 validators connected, 3 needed"), "{text}");
    assert!(text.contains(&c.nodes[2].name), "{text}");

    // A WARN within seconds (not 40 s of silence), naming the cause.
    let warned = until(&c, 0, 20, "a stall WARN", |c| {
        log(c, 0).lines().find(|l| l.contains("WARN") && l.contains("no block final for") && l.contains("quorum lost")).map(str::to_string)
    });
    assert!(warned.contains("validators_connected=2") && warned.contains("validators_needed=3"), "{warned}");
    assert_eq!(c.metric(0, "yrd_quorum_present"), Some(0.0));

    // `--wait` shows progress (forced on, as on a terminal) and says why nothing is final.
    let key = c.issuer_key_file(0);
    let out = Command::new(yrd_bin())
        .args(["attest", "--node", &c.nodes[0].api, "--key"])
        .arg(&key)
        .args(["--subject", "91350100M000100Y43", "--kind", "credit-rating", "--grade", "A"])
        .args(["--evidence-digest", &"ab".repeat(32), "--wait", "--timeout", "4"])
        .env("YRD_PROGRESS", "1")
        .output()
        .expect("yrd attest");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "times out: {err}");
    assert!(err.lines().filter(|l| l.starts_with("waiting ")).count() >= 2, "progress lines in:\n{err}");
    assert!(err.contains("QUORUM LOST (2 of 3 needed"), "{err}");

    // Back: quorum present, blocks final, ready again, and the log says so.
    c.start_node(2);
    let h = c.height(0).unwrap_or(0);
    c.wait_height(0, h + 2, 60);
    until(&c, 0, 30, "quorum back", |c| liveness(c, 0).filter(|l| l["quorum"] == true));
    until(&c, 0, 30, "ready again", |c| c.get(0, "/health/ready").filter(|(s, _)| *s == 200));
    assert!(log(&c, 0).contains("blocks are final again"), "{}", c.nodes[0].log_tail(20));
}

/// Why: "a node started with another chain's genesis logs only 'peer does not speak
/// this chain's gossipsub', and every node's `status` and `yrd_peers` still count it
/// as a connected peer".
#[test]
fn a_node_on_another_chain_is_refused_with_both_chain_ids_and_never_counted() {
    let mut c = Cluster::prepare(4, &[]);
    // Node 3 gets a genesis with the same keys and another time: another chain.
    let mut other = c.chain.genesis.clone();
    other.genesis_time_ms += 1;
    let other_id = other.chain_id().expect("chain id").to_hex();
    let ours = c.chain.chain.to_hex();
    let other_path = c.path().join("other-genesis.json");
    std::fs::write(&other_path, other.to_json_pretty()).expect("write genesis");
    let config = std::fs::read_to_string(&c.nodes[3].config).expect("config");
    let config = config.replace(&c.genesis_path.display().to_string(), &other_path.display().to_string());
    std::fs::write(&c.nodes[3].config, config).expect("config");
    for i in 0..4 {
        c.start_node(i);
    }
    c.wait_height(0, 3, 60);

    let warned = until(&c, 0, 30, "a wrong-chain WARN", |c| {
        log(c, 0).lines().find(|l| l.contains("WARN") && l.contains("peer is on another chain")).map(str::to_string)
    });
    assert!(warned.contains(&ours) && warned.contains(&other_id), "both chain ids in: {warned}");
    assert!(warned.contains("same genesis.json"), "the remedy in: {warned}");
    assert!(warned.contains(&format!("agency={}", c.nodes[3].name)), "{warned}");
    let theirs = until(&c, 3, 30, "the other side's WARN", |c| {
        log(c, 3).lines().find(|l| l.contains("peer is on another chain")).map(str::to_string)
    });
    assert!(theirs.contains(&ours) && theirs.contains(&other_id), "{theirs}");

    // Never counted: status, yrd_peers; the configured peer shows why.
    let h = c.height(0).unwrap_or(0);
    c.wait_height(0, h + 3, 30);
    let (_, status) = c.get(0, "/v1/status").expect("status");
    let peers: Vec<&str> = status["peers"].as_array().expect("peers").iter().filter_map(|p| p["name"].as_str()).collect();
    assert!(!peers.contains(&c.nodes[3].name.as_str()), "{peers:?}");
    assert_eq!(peers.len(), 2, "{status}");
    assert_eq!(c.metric(0, "yrd_peers"), Some(2.0));
    let entry = status["configured_peers"]
        .as_array()
        .expect("configured_peers")
        .iter()
        .find(|p| p["addr"].as_str().is_some_and(|a| a.ends_with(&format!("/tcp/{}", c.nodes[3].p2p))))
        .cloned()
        .expect("node 3 is a configured peer");
    assert_eq!(entry["state"], "wrong_chain", "{entry}");
    assert!(entry["last_error"].as_str().is_some_and(|e| e.contains(&other_id)), "{entry}");
    assert!(!log(&c, 0).lines().any(|l| l.contains("WARN") && l.contains("does not speak this chain's gossipsub")));
}

/// Why: "an unreachable or mistyped peer address says nothing at the default log
/// level, and `status` does not list the configured peers or their state".
#[test]
fn unreachable_configured_peers_are_warned_about_and_listed_with_their_state() {
    let mut c = Cluster::prepare(4, &[]);
    c.start_node(0);
    c.start_node(1);
    let entry_of = |c: &Cluster, i: usize| -> Option<Value> {
        let (_, status) = c.get(0, "/v1/status")?;
        status["configured_peers"].as_array()?.iter().find(|p| p["addr"].as_str().is_some_and(|a| a.ends_with(&format!("/tcp/{}", c.nodes[i].p2p)))).cloned()
    };
    let down = until(&c, 0, 30, "node 2 listed as unreachable", |c| entry_of(c, 2).filter(|e| e["state"] == "unreachable" && e["failures"].as_u64() >= Some(3)));
    assert!(down["last_error"].as_str().is_some_and(|e| !e.is_empty()), "{down}");
    assert!(down["retry_in_ms"].as_u64().is_some(), "{down}");
    assert_eq!(down["name"], c.nodes[2].name.as_str());
    until(&c, 0, 30, "node 1 listed as connected", |c| entry_of(c, 1).filter(|e| e["state"] == "connected"));
    let warned = until(&c, 0, 30, "an unreachable WARN", |c| {
        log(c, 0).lines().find(|l| l.contains("WARN") && l.contains("configured peer unreachable") && l.contains(&format!("/tcp/{}", c.nodes[2].p2p))).map(str::to_string)
    });
    assert!(warned.contains(&format!("agency={}", c.nodes[2].name)), "{warned}");
    let out = Command::new(yrd_bin()).args(["status", "--node", &c.nodes[0].api]).output().expect("yrd status");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("configured  3 peer(s)"), "{text}");
    assert!(text.contains("unreachable"), "{text}");

    // It comes up: connected, and the log says so.
    c.start_node(2);
    until(&c, 0, 30, "node 2 connected", |c| entry_of(c, 2).filter(|e| e["state"] == "connected"));
    until(&c, 0, 10, "a reachable-again line", |c| log(c, 0).contains("configured peer reachable again").then_some(()));
}

/// Why: "a libp2p port already used by another `yrd` is not detected: two processes
/// listen on the same port and share the connections".
#[test]
fn a_listen_port_in_use_refuses_to_start() {
    let mut c = Cluster::prepare(4, &[]);
    c.start_node(0);
    c.wait_height(0, 0, 30); // node 0 is up and listening
    let out = Command::new(yrd_bin())
        .args(["node", "--config"])
        .arg(&c.nodes[1].config)
        .args(["--listen", &format!("/ip4/127.0.0.1/tcp/{}", c.nodes[0].p2p)])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("yrd node");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("port {} is already in use", c.nodes[0].p2p)), "{err}");
    assert!(c.nodes[0].is_running());
}

/// Why: "a second node started with a live validator's key starts without a warning".
#[test]
fn a_second_process_with_a_live_validators_key_is_reported_on_both_sides() {
    let mut c = Cluster::start(4);
    c.wait_height(0, 2, 60);
    // A copy of node 3 (same key and peers) with its own data, ports and log.
    let dir = c.path().join("impostor");
    std::fs::create_dir_all(&dir).expect("dir");
    let log_path = dir.join("node.log");
    let logf = std::fs::File::create(&log_path).expect("log");
    let mut child = Command::new(yrd_bin())
        .args(["node", "--config"])
        .arg(&c.nodes[3].config)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--api", &format!("127.0.0.1:{}", yrd_ledger::testkit::free_port())])
        .args(["--listen", &format!("/ip4/127.0.0.1/tcp/{}", yrd_ledger::testkit::free_port())])
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(logf.try_clone().expect("log"))
        .stderr(logf)
        .spawn()
        .expect("spawn the second process");
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut seen_here, mut seen_there) = (None, None);
    while Instant::now() < deadline && (seen_here.is_none() || seen_there.is_none()) {
        seen_here = seen_here.or_else(|| {
            log(&c, 0).lines().find(|l| l.contains("ERROR") && l.contains("two processes run with the key of")).map(str::to_string)
        });
        seen_there = seen_there.or_else(|| {
            std::fs::read_to_string(&log_path).unwrap_or_default().lines().find(|l| l.contains("ERROR") && l.contains("peer reports: two processes")).map(str::to_string)
        });
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let here = seen_here.unwrap_or_else(|| panic!("no ERROR on node 0:\n{}", c.nodes[0].log_tail(40)));
    assert!(here.contains(&c.nodes[3].name), "{here}");
    assert!(seen_there.is_some(), "no ERROR in the second process' log:\n{}", std::fs::read_to_string(&log_path).unwrap_or_default());
}

fn yrd(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(yrd_bin()).args(args).output().expect("run yrd");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string(), String::from_utf8_lossy(&out.stderr).to_string())
}

/// Why: "no backup or restore procedure". A backup taken from a running node under
/// load restores into a store that `yrd audit verify-ledger` accepts, holding the
/// records; a tampered backup is refused.
#[test]
fn a_backup_of_a_running_node_restores_and_passes_verify_ledger() {
    use yrd_ledger::tx::AttestationKind;
    use yrd_ledger::uscc::Uscc;
    let mut c = Cluster::start(4);
    c.wait_height(0, 1, 60);
    let mut ids = Vec::new();
    for seq in 1..=20u64 {
        let tx = c.chain.attestation((seq % 4) as usize, seq, Uscc::sample(seq), AttestationKind::ALL[(seq % 7) as usize]);
        let (status, body) = c.submit(0, &tx);
        assert_eq!(status, 202, "{body}");
        ids.push(body["id"].as_str().expect("id").to_string());
    }
    for id in &ids {
        c.wait_final(0, id, 60);
    }
    let genesis = c.genesis_path.display().to_string();
    let file = c.path().join("sh.yrdbak");
    let file_s = file.display().to_string();
    // Blocks carry restricted records: without an agency's signature the node refuses.
    let (code, out, err) = yrd(&["backup", "--node", &c.nodes[0].api, "--out", &file_s, "--json"]);
    assert_eq!(code, Some(2), "an unsigned backup is refused: {out}{err}");
    assert!(err.contains("restricted") && err.contains("admin key"), "{err}");
    assert!(!file.exists(), "nothing written for a refused backup");
    let admin = c.path().join("agency-0.key");
    yrd_node::keys::write_key_file(&admin, &c.chain.agency_keys[0]).expect("admin key");
    // The node keeps committing (empty blocks) while the backup runs.
    let (code, out, err) =
        yrd(&["backup", "--node", &c.nodes[0].api, "--key", &admin.display().to_string(), "--out", &file_s, "--json"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    let height = v["height"].as_u64().expect("height");
    assert!(height >= 1 && v["bytes"].as_u64() > Some(0), "{v}");
    assert_eq!(v["chain_id"], c.chain.chain.to_hex());

    let restored = c.path().join("restored");
    let restored_s = restored.display().to_string();
    let (code, out, err) = yrd(&["restore", "--from", &file_s, "--data", &restored_s, "--genesis", &genesis]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(&format!("height {height}")), "{out}");
    let (code, out, err) = yrd(&["audit", "verify-ledger", "--data", &restored_s, "--genesis", &genesis, "--json"]);
    assert_eq!(code, Some(0), "verify-ledger on the restored store: {out}{err}");
    let report: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(report["consistent"], true, "{report}");
    assert_eq!(report["height"].as_u64(), Some(height), "{report}");
    assert_eq!(report["transactions"].as_u64(), Some(20), "{report}");

    // Restoring over a store, and a tampered file, are refused.
    let (code, _, err) = yrd(&["restore", "--from", &file_s, "--data", &restored_s, "--genesis", &genesis]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("already holds a store"), "{err}");
    let mut bytes = std::fs::read(&file).expect("read backup");
    let last = bytes.len() - 10;
    bytes[last] ^= 0x55; // inside the last block's certificate
    let bad = c.path().join("bad.yrdbak");
    std::fs::write(&bad, &bytes).expect("write");
    let (code, out, err) = yrd(&["restore", "--from", &bad.display().to_string(), "--data", &c.path().join("r2").display().to_string(), "--genesis", &genesis]);
    assert!(matches!(code, Some(1) | Some(2)), "a tampered backup is refused: {code:?} {out}{err}");
    assert_ne!(code, Some(0));

    // A stopped node's directory backs up with --data.
    c.stop(1);
    let file2 = c.path().join("js.yrdbak").display().to_string();
    let (code, out, err) = yrd(&["backup", "--data", &c.nodes[1].data_dir.display().to_string(), "--genesis", &genesis, "--out", &file2]);
    assert_eq!(code, Some(0), "{out}{err}");
}

/// Why: "a resyncing node shows no progress". A validator stopped while the others
/// finalise 80 blocks is restarted: it logs that it is catching up and how
/// far (`catching up: at height H of B known (N blocks behind)`), `GET /v1/status`
/// says `catching_up` with the height it is at and the best known, `/health/ready`
/// answers 503 naming the heights while it lasts, and it logs `caught up at height`
/// when done — then is ready, at the others' height.
#[test]
fn a_restarted_validator_reports_catching_up_how_far_and_then_that_it_caught_up() {
    use yrd_ledger::tx::AttestationKind;
    use yrd_ledger::uscc::Uscc;
    /// Blocks the others finalise while node 3 is down: two sync batches (64
    /// blocks each, node/src/wire.rs), and at least CATCH_UP_LOG_BLOCKS (8).
    const GAP_BLOCKS: u64 = 80;
    let mut c = Cluster::prepare(4, &[]);
    // While node 3 is down, every fourth height waits out its propose timeout: a
    // short one (loopback answers in milliseconds) keeps this test quick.
    for n in &c.nodes {
        let config = std::fs::read_to_string(&n.config).expect("config");
        std::fs::write(&n.config, config.replace("propose_timeout_ms = 1500", "propose_timeout_ms = 300")).expect("config");
    }
    for i in 0..4 {
        c.start_node(i);
    }
    c.wait_height(3, 2, 60);
    c.stop(3);
    let stopped_at = c.height(0).expect("node 0 answers");
    // A stream of attestations: a block every block interval (50 ms here) instead
    // of an empty one a second.
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut seq = 0u64;
    while c.height(0).is_some_and(|h| h < stopped_at + GAP_BLOCKS) {
        assert!(Instant::now() < deadline, "the others did not finalise {GAP_BLOCKS} blocks in time (at {:?})", c.height(0));
        seq += 1;
        let tx = c.chain.attestation((seq % 4) as usize, seq, Uscc::sample(seq), AttestationKind::ALL[(seq % 7) as usize]);
        let (status, body) = c.submit(0, &tx);
        if status == 503 && body["code"] == "overloaded" {
            // Three validators of four wait out every fourth height's timeout: the
            // queue may outgrow the admission target. Back off as a client should,
            // and offer the same sequence number again.
            seq -= 1;
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        assert_eq!(status, 202, "{body}");
    }
    let target = c.height(0).expect("node 0 answers");

    c.start_node(3);
    // Every status answer while it starts: (height, catching_up, best_known_height).
    let mut seen_catching_up = None;
    let mut seen_not_ready = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some((_, s)) = c.get(3, "/v1/status") {
            let h = s["height"].as_u64().unwrap_or(0);
            let l = &s["liveness"];
            if l["catching_up"] == true && seen_catching_up.is_none() {
                seen_catching_up = Some((h, l["best_known_height"].as_u64().unwrap_or(0)));
                if let Some((503, body)) = c.get(3, "/health/ready") {
                    seen_not_ready = Some(body);
                }
            }
            if h >= target && l["catching_up"] == false {
                break;
            }
        }
        assert!(Instant::now() < deadline, "node 3 did not catch up to {target}; log tail:\n{}", c.nodes[3].log_tail(40));
        std::thread::sleep(Duration::from_millis(5));
    }
    let (h, best) = seen_catching_up.unwrap_or_else(|| panic!("status never said catching_up; log tail:\n{}", c.nodes[3].log_tail(40)));
    assert!(h + 2 <= best && best <= target + 5, "catching up at {h} of {best} (target {target})");
    if let Some(body) = seen_not_ready {
        assert_eq!(body["code"], "not_ready", "{body}");
        assert!(body["error"].as_str().is_some_and(|e| e.contains("catching up: at height")), "{body}");
    }

    // The log: how far at the start, then done.
    let text = log(&c, 3);
    let started = text
        .lines()
        .find(|l| l.contains("INFO") && l.contains("catching up: at height") && l.contains("blocks behind"))
        .unwrap_or_else(|| panic!("no catching-up line in:\n{}", c.nodes[3].log_tail(40)))
        .to_string();
    let field = |line: &str, key: &str| -> u64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{key}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key}= in {line}"))
    };
    let (from, known) = (field(&started, "height"), field(&started, "best_known_height"));
    assert!(from <= stopped_at + 1 && known >= from + 8, "{started}");
    let done = until(&c, 3, 30, "a caught-up line", |c| {
        log(c, 3).lines().find(|l| l.contains("INFO") && l.contains("caught up at height")).map(str::to_string)
    });
    assert!(field(&done, "height") + 2 > known && field(&done, "from_height") == from, "{done}");
    let now = log(&c, 3);
    assert!(now.find(&started).expect("start line") < now.find(&done).expect("done line"), "started before done");
    until(&c, 3, 30, "ready after catching up", |c| c.get(3, "/health/ready").filter(|(s, _)| *s == 200));
    println!("stopped at {stopped_at}, restarted with the others at {target}; status saw {h} of {best}; {started}; {done}");
}
