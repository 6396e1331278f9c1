//! The main job end to end: `yrd-testnet` brings up four validators, finalises
//! its sample attestations, and `yrd query` against every node returns the same
//! records in the same blocks with the same hashes; its load client sees every
//! accepted attestation final and its read client gets lender-signed reports,
//! each recorded on chain; SIGINT stops everything.

use std::io::BufReader;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use yrd_tests::{read_until, yrd_bin};

struct KillOnDrop(std::process::Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn query(api: &str, args: &[&str]) -> Value {
    let out = Command::new(yrd_bin()).args(["query", "--node", api, "--json"]).args(args).output().expect("yrd query");
    assert!(out.status.success(), "yrd query {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("query JSON")
}

#[test]
fn the_testnet_finalises_its_samples_identically_on_all_four_nodes_carries_load_and_reads_and_stops_on_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let tdir = dir.path().join("tn");
    let bin = yrd_bin().with_file_name("yrd-testnet");
    assert!(bin.exists(), "{} missing: cargo build --workspace --bins", bin.display());
    let mut child = KillOnDrop(
        Command::new(&bin)
            .arg("--dir")
            .arg(&tdir)
            .env("YRD_BIN", yrd_bin())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn yrd-testnet"),
    );
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let ready = read_until(&mut out, 180, |l| l.contains("Press Ctrl-C"));
    assert!(ready.is_some(), "yrd-testnet never reported the samples final");
    // Keep draining its output so it never blocks on a full pipe.
    let drain = std::thread::spawn(move || {
        let _ = std::io::copy(&mut out, &mut std::io::sink());
    });

    let testnet: Value = serde_json::from_str(&std::fs::read_to_string(tdir.join("testnet.json")).unwrap()).unwrap();
    let nodes = testnet["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 4);
    let names: Vec<&str> = nodes.iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["shanghai", "jiangsu", "zhejiang", "anhui"]);
    assert!(std::path::Path::new(testnet["genesis"].as_str().unwrap()).is_absolute());
    for i in testnet["issuers"].as_array().unwrap() {
        assert!(std::path::Path::new(i["key_file"].as_str().unwrap()).exists());
    }
    // Every issuer's records, seen from every node: same ids, heights and block hashes.
    let mut total = 0;
    for issuer in testnet["issuers"].as_array().unwrap() {
        let name = issuer["name"].as_str().unwrap();
        // Signed with the issuer's key: it reads its own restricted records in full
        // (docs/access.md); anonymous listings redact them.
        let key_file = issuer["key_file"].as_str().unwrap();
        let views: Vec<Vec<(String, u64, String, String)>> = nodes
            .iter()
            .map(|n| {
                let v = query(n["api"].as_str().unwrap(), &["--issuer", name, "--key", key_file]);
                v["attestations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| {
                        (
                            a["id"].as_str().unwrap().to_string(),
                            a["height"].as_u64().expect("final"),
                            a["block_hash"].as_str().unwrap().to_string(),
                            a["status"].as_str().unwrap().to_string(),
                        )
                    })
                    .collect()
            })
            .collect();
        assert!(!views[0].is_empty(), "{name} has no sample records");
        assert!(views.windows(2).all(|w| w[0] == w[1]), "{name}: nodes disagree: {views:?}");
        total += views[0].len();
    }
    assert!(total >= 8, "only {total} sample records");

    // The load client against the running testnet: every accepted attestation is
    // seen final in a block (restricted ones appear to its anonymous block reads
    // as commitments: the client must still find them).
    let tjson = tdir.join("testnet.json");
    let last_json = |out: &std::process::Output| -> Value {
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().rev().find(|l| l.starts_with('{')).unwrap_or_else(|| panic!("no JSON report in:\n{text}"));
        serde_json::from_str(line).expect("report JSON")
    };
    let out = Command::new(&bin)
        .args(["load", "--rate", "200", "--duration", "3", "--drain", "60", "--json", "--testnet"])
        .arg(&tjson)
        .output()
        .expect("yrd-testnet load");
    let load = last_json(&out);
    assert!(out.status.success(), "yrd-testnet load failed: {load}\n{}", String::from_utf8_lossy(&out.stderr));
    let accepted = load["accepted"].as_u64().unwrap();
    assert!(accepted >= 500, "only {accepted} attestations accepted: {load}");
    assert_eq!(load["finalized"].as_u64(), Some(accepted), "not every accepted attestation was seen final: {load}");
    assert_eq!(load["rejected_other"].as_u64(), Some(0), "{load}");
    assert!(load["p50_ms"].as_f64().unwrap() > 0.0, "{load}");

    // Authorised reads: lender-signed subject reports from one node, each served
    // with a receipt and each recorded on chain.
    let out = Command::new(&bin)
        .args(["reads", "--duration", "2", "--subjects", "3", "--threads", "2", "--node", "1", "--json", "--testnet"])
        .arg(&tjson)
        .output()
        .expect("yrd-testnet reads");
    let reads = last_json(&out);
    assert!(out.status.success(), "yrd-testnet reads failed: {reads}\n{}", String::from_utf8_lossy(&out.stderr));
    let served = reads["served"].as_u64().unwrap();
    assert!(served > 0, "{reads}");
    assert_eq!(reads["recorded"].as_u64(), Some(served), "served reads and query records on chain differ: {reads}");
    assert_eq!(reads["errors"].as_u64(), Some(0), "{reads}");
    assert!(reads["refused"].as_array().unwrap().is_empty(), "{reads}");
    // A report holds the subject's six records (three of them restricted, read in full).
    assert!(reads["mean_bytes"].as_u64().unwrap() > 1000, "{reads}");

    // SIGINT stops the testnet and every node it started.
    let pid = child.0.id();
    let _ = Command::new("kill").args(["-INT", &pid.to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "yrd-testnet did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "yrd-testnet exited with {status}");
    let _ = drain.join();
    for n in nodes {
        let api = n["api"].as_str().unwrap();
        let addr = api.trim_start_matches("http://");
        assert!(std::net::TcpStream::connect(addr).is_err(), "a node still answers at {api} after the testnet stopped");
    }
}
