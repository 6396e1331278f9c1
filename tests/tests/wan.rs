//! `yrd-testnet --wan`: validators in their own network namespaces, joined by veth
//! pairs through a bridge, with the city-to-city delays (docs/testnet.md). The
//! tests need root and iproute2; where namespaces cannot be made they print why
//! and return. On a kernel without sch_netem they run `--wan --no-netem` (the
//! namespaces and links, no delays) and say so. The `--wan --relay` test (the same
//! delays through relays on 127.0.0.1) needs neither root nor netem and always runs.

use std::io::BufReader;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use yrd_tests::{read_until, yrd_bin};

use yrd_tests::KillOnDrop;

/// Why these tests cannot run here, if they cannot.
fn skip_reason() -> Option<String> {
    if !is_root() {
        return Some("not root: network namespaces need root".into());
    }
    if Command::new("ip").arg("-V").output().map(|o| !o.status.success()).unwrap_or(true) {
        return Some("iproute2 (`ip`) is not installed".into());
    }
    let probe = format!("yrdwan-testprobe-{}", std::process::id());
    let made = Command::new("ip").args(["netns", "add", &probe]).output();
    match made {
        Ok(o) if o.status.success() => {
            let _ = Command::new("ip").args(["netns", "del", &probe]).status();
            None
        }
        Ok(o) => Some(format!("cannot create a network namespace: {}", String::from_utf8_lossy(&o.stderr).trim())),
        Err(e) => Some(format!("cannot run ip: {e}")),
    }
}

/// Whether the kernel has netem; if not, the tests run without delays.
fn netem() -> bool {
    let ns = format!("yrdwan-testnetem-{}", std::process::id());
    let ip = |args: &[&str]| Command::new("ip").args(args).output().map(|o| o.status.success()).unwrap_or(false);
    ip(&["netns", "add", &ns]);
    ip(&["-n", &ns, "link", "add", "p0", "type", "veth", "peer", "name", "p1"]);
    let ok = ip(&["netns", "exec", &ns, "tc", "qdisc", "add", "dev", "p0", "root", "netem", "delay", "1ms"]);
    ip(&["netns", "del", &ns]);
    ok
}

fn root_link_exists(pid: u32) -> bool {
    Command::new("ip").args(["link", "show", &format!("yw{pid}h")]).output().map(|o| o.status.success()).unwrap_or(false)
}

/// Reads `child`'s stdout until the testnet's summary ("Press Ctrl-C"), failing
/// with what it printed if it never comes; returns that output and a thread that
/// drains the rest.
fn until_summary(child: &mut KillOnDrop, what: &str) -> (String, std::thread::JoinHandle<()>) {
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let lines = std::sync::Mutex::new(Vec::<String>::new());
    let ready = read_until(&mut out, 300, |l| {
        lines.lock().unwrap().push(l.to_string());
        l.contains("Press Ctrl-C")
    });
    let seen = lines.lock().unwrap().join("\n");
    assert!(ready.is_some(), "the {what} testnet never reached its summary:\n{seen}");
    let drain = std::thread::spawn(move || {
        let _ = std::io::copy(&mut out, &mut std::io::sink());
    });
    (seen, drain)
}

fn wan_cmd(dir: &std::path::Path, validators: usize, with_netem: bool) -> Command {
    let mut c = Command::new(yrd_bin().with_file_name("yrd-testnet"));
    c.args(["--validators", &validators.to_string(), "--wan"]);
    if !with_netem {
        c.arg("--no-netem");
    }
    c.arg("--dir").arg(dir).env("YRD_BIN", yrd_bin()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    c
}


/// Five validators in namespaces finalise the samples identically (the testnet
/// exits 0 only then), each node on its own address with four peers; after
/// SIGINT every namespace and the root-side link are gone.
#[test]
fn validators_in_namespaces_finalise_and_every_namespace_is_removed_on_sigint() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let with_netem = netem();
    if !with_netem {
        eprintln!("note: this kernel has no sch_netem: running --wan --no-netem (namespaces and links without delays)");
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = KillOnDrop(wan_cmd(&dir.path().join("tn"), 5, with_netem).spawn().unwrap());
    let pid = child.0.id();
    let (seen, drain) = until_summary(&mut child, "--wan");
    assert!(seen.contains("on all 5 nodes") && !seen.contains("DISAGREEMENT"), "{seen}");
    if with_netem {
        assert!(seen.contains("one-way delay, ms"), "the matrix is printed:\n{seen}");
    }
    // Namespaces: hub, five nodes, the client.
    let mut ns = yrd_tests::wan_namespaces_of(pid);
    ns.sort();
    assert_eq!(ns.len(), 7, "{ns:?}");
    assert!(root_link_exists(pid));
    // Each node on its own address in 10.77.K.0/24, with four peers.
    let testnet: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("tn/testnet.json")).unwrap()).unwrap();
    let apis: Vec<String> = testnet["nodes"].as_array().unwrap().iter().map(|n| n["api"].as_str().unwrap().to_string()).collect();
    assert_eq!(apis.len(), 5);
    for (i, api) in apis.iter().enumerate() {
        assert!(api.starts_with("http://10.77.") && api.ends_with(&format!(".{}:8600", i + 1)), "{api}");
        let mut resp = ureq::get(&format!("{api}/v1/status")).call().unwrap();
        let status: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
        assert_eq!(status["peers"].as_array().unwrap().len(), 4, "{status}");
        assert!(status["height"].as_u64().unwrap() >= 1, "{status}");
    }
    // The node processes run inside their namespaces.
    let inside = Command::new("ip").args(["netns", "pids", &format!("yrdwan-{pid}-0")]).output().unwrap();
    assert!(!String::from_utf8_lossy(&inside.stdout).trim().is_empty(), "no process in the first node's namespace");

    let _ = Command::new("kill").args(["-INT", &pid.to_string()]).status();
    let status = yrd_tests::wait_child(&mut child.0, 60, "yrd-testnet");
    let _ = drain.join();
    assert!(status.success(), "yrd-testnet --wan exited with {status}");
    assert!(yrd_tests::wan_namespaces_of(pid).is_empty(), "namespaces left: {:?}", yrd_tests::wan_namespaces_of(pid));
    assert!(!root_link_exists(pid), "the root-side veth yw{pid}h is left");
}

/// A run killed with SIGKILL leaves its namespaces and nodes; `--cleanup` removes
/// both (and a fresh run would too).
#[test]
fn cleanup_removes_what_a_killed_run_left() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = wan_cmd(&dir.path().join("tn"), 4, netem());
    cmd.arg("--no-samples");
    let mut child = KillOnDrop(cmd.spawn().unwrap());
    let pid = child.0.id();
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    assert!(read_until(&mut out, 180, |l| l.contains("Press Ctrl-C")).is_some(), "the --wan testnet did not come up");
    let node_pids: Vec<i32> = {
        let o = Command::new("ip").args(["netns", "pids", &format!("yrdwan-{pid}-1")]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).split_whitespace().filter_map(|p| p.parse().ok()).collect()
    };
    assert!(!node_pids.is_empty());
    child.0.kill().unwrap(); // SIGKILL: no guard runs
    let _ = child.0.wait();
    assert_eq!(yrd_tests::wan_namespaces_of(pid).len(), 6, "a killed run leaves hub, 4 nodes, client");

    let out = Command::new(yrd_bin().with_file_name("yrd-testnet")).arg("--cleanup").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(&format!("yrdwan-{pid}-hub")), "{text}");
    assert!(yrd_tests::wan_namespaces_of(pid).is_empty(), "left after --cleanup: {:?}", yrd_tests::wan_namespaces_of(pid));
    assert!(!root_link_exists(pid));
    // The nodes that ran inside were stopped.
    let deadline = Instant::now() + Duration::from_secs(10);
    for p in node_pids {
        while std::path::Path::new(&format!("/proc/{p}")).exists() && is_not_zombie(p) {
            assert!(Instant::now() < deadline, "node {p} still runs after --cleanup");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn is_not_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit(')').next().is_some_and(|r| !r.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

/// Whether the effective uid is 0 (`Uid:` of /proc/self/status: real, effective, …).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0")))
        .unwrap_or(false)
}

/// `--wan --relay` (no root, no netem needed, so it runs everywhere): five validators
/// on 127.0.0.1 whose every peer address is one of the run's relays — never another
/// node's own libp2p port — finalise the samples identically, each with four peers,
/// and their traffic counters move; after SIGINT the relays' ports are closed.
#[test]
fn validators_behind_delay_relays_finalise_and_the_relays_close_on_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let tn = dir.path().join("tn");
    let mut c = Command::new(yrd_bin().with_file_name("yrd-testnet"));
    c.args(["--validators", "5", "--wan", "--relay"])
        .arg("--dir")
        .arg(&tn)
        .env("YRD_BIN", yrd_bin())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = KillOnDrop(c.spawn().unwrap());
    let pid = child.0.id();
    let (seen, drain) = until_summary(&mut child, "--wan --relay");
    assert!(seen.contains("on all 5 nodes") && !seen.contains("DISAGREEMENT"), "{seen}");
    assert!(seen.contains("WAN by relay: 20 TCP relays"), "{seen}");
    assert!(seen.contains("one-way delay, ms"), "the matrix is printed:\n{seen}");

    let testnet: Value = serde_json::from_str(&std::fs::read_to_string(tn.join("testnet.json")).unwrap()).unwrap();
    let nodes = testnet["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 5);
    // Every node's own libp2p port, from its config.
    let port_of = |addr: &str| -> u16 {
        let parts: Vec<&str> = addr.split('/').collect();
        let i = parts.iter().position(|p| *p == "tcp").unwrap_or_else(|| panic!("no tcp in {addr}"));
        parts[i + 1].parse().unwrap()
    };
    let configs: Vec<toml::Value> = nodes
        .iter()
        .map(|n| {
            let name = n["name"].as_str().unwrap();
            toml::from_str(&std::fs::read_to_string(tn.join(name).join("node.toml")).unwrap()).unwrap()
        })
        .collect();
    let own: Vec<u16> = configs.iter().map(|c| port_of(c["listen"].as_str().unwrap())).collect();
    let mut relay_ports = Vec::new();
    for (i, c) in configs.iter().enumerate() {
        let peers = c["peers"].as_array().unwrap();
        assert_eq!(peers.len(), 4);
        for p in peers {
            let p = p.as_str().unwrap();
            assert!(p.starts_with("/ip4/127.0.0.1/tcp/"), "node {i} peer {p}");
            let port = port_of(p);
            assert!(!own.contains(&port), "node {i} dials a node directly: {p}");
            relay_ports.push(port);
        }
    }
    relay_ports.sort();
    relay_ports.dedup();
    assert_eq!(relay_ports.len(), 20, "one relay per ordered pair");
    for (i, n) in nodes.iter().enumerate() {
        let api = n["api"].as_str().unwrap();
        let mut resp = ureq::get(&format!("{api}/v1/status")).call().unwrap();
        let status: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
        assert_eq!(status["peers"].as_array().unwrap().len(), 4, "node {i}: {status}");
        // The traffic counters (sampled every 250 ms) have moved: the samples went through.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut resp = ureq::get(&format!("{api}/metrics")).call().unwrap();
            let text = resp.body_mut().read_to_string().unwrap();
            let value = |name: &str| -> u64 {
                yrd_tests::metric_in(&text, name).unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}")) as u64
            };
            let (sent, received) = (value("yrd_p2p_bytes_sent_total"), value("yrd_p2p_bytes_received_total"));
            let gossip = value("yrd_gossip_published_total") + value("yrd_gossip_received_total");
            if sent > 10_000 && received > 10_000 && gossip > 0 {
                break;
            }
            assert!(Instant::now() < deadline, "node {i}: traffic counters did not move: sent {sent} received {received} gossip {gossip}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    let _ = Command::new("kill").args(["-INT", &pid.to_string()]).status();
    let status = yrd_tests::wait_child(&mut child.0, 60, "yrd-testnet");
    let _ = drain.join();
    assert!(status.success(), "yrd-testnet --wan --relay exited with {status}");
    for port in relay_ports {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "relay port {port} still accepts connections after the run stopped"
        );
    }
}
