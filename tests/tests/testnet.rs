//! The main job end to end: `yrd-testnet` brings up four validators, finalises
//! its sample attestations, and `yrd query` against every node returns the same
//! records in the same blocks with the same hashes; its load client sees every
//! accepted attestation final and its read client gets lender-signed reports,
//! each recorded on chain; SIGINT stops everything.

use std::io::BufReader;
use std::process::{Command, Stdio};

use serde_json::Value;
use yrd_tests::{read_until, yrd_bin};

use yrd_tests::KillOnDrop;

fn get_json(url: &str) -> Value {
    let mut resp = ureq::get(url).call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let body = resp.body_mut().read_to_string().unwrap();
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: {e}: {body}"))
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
    let status = interrupt(&mut child.0);
    assert!(status.success(), "yrd-testnet exited with {status}");
    let _ = drain.join();
    for n in nodes {
        let api = n["api"].as_str().unwrap();
        let addr = api.trim_start_matches("http://");
        assert!(std::net::TcpStream::connect(addr).is_err(), "a node still answers at {api} after the testnet stopped");
    }
}

/// Sends SIGINT to a running `yrd-testnet` and waits (30 s at most) for it to exit.
fn interrupt(child: &mut std::process::Child) -> std::process::ExitStatus {
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    yrd_tests::wait_child(child, 30, "yrd-testnet after SIGINT")
}

/// `yrd-testnet --validators 7`: seven processes (the founding four, then Suzhou,
/// Ningbo, Wuhu; f = 2, five signatures make a block final) come up, finalise the
/// samples identically on all seven and stop on SIGINT with exit 0 (which the
/// testnet gives only if every sample was final on every node and the lender's
/// report verified).
#[test]
fn seven_validators_come_up_and_finalise_the_samples() {
    let dir = tempfile::tempdir().unwrap();
    let tdir = dir.path().join("tn7");
    let bin = yrd_bin().with_file_name("yrd-testnet");
    let mut child = KillOnDrop(
        Command::new(&bin)
            .args(["--validators", "7", "--dir"])
            .arg(&tdir)
            .env("YRD_BIN", yrd_bin())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn yrd-testnet"),
    );
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let ready = read_until(&mut out, 240, |l| {
        lines.lock().unwrap().push(l.to_string());
        l.contains("Press Ctrl-C")
    });
    let seen = lines.lock().unwrap().join("\n");
    assert!(ready.is_some(), "yrd-testnet --validators 7 never reached its summary:\n{seen}");
    assert!(seen.contains("Starting 7 validators (f = 2"), "{seen}");
    assert!(seen.contains("All 7 validators are up"), "{seen}");
    assert!(seen.contains("on all 7 nodes"), "samples not followed on all seven nodes:\n{seen}");
    assert!(!seen.contains("DISAGREEMENT"), "{seen}");
    let drain = std::thread::spawn(move || {
        let _ = std::io::copy(&mut out, &mut std::io::sink());
    });
    let testnet: Value = serde_json::from_str(&std::fs::read_to_string(tdir.join("testnet.json")).unwrap()).unwrap();
    let names: Vec<&str> = testnet["nodes"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["shanghai", "jiangsu", "zhejiang", "anhui", "suzhou", "ningbo", "wuhu"]);
    // Every node is at a height ≥ 1 with six peers, and the seven agree on block 1.
    let mut hashes = Vec::new();
    for n in testnet["nodes"].as_array().unwrap() {
        let api = n["api"].as_str().unwrap();
        let status = get_json(&format!("{api}/v1/status"));
        assert!(status["height"].as_u64().unwrap() >= 1, "{status}");
        assert_eq!(status["peers"].as_array().unwrap().len(), 6, "{status}");
        let block = get_json(&format!("{api}/v1/blocks/1"));
        hashes.push(block["hash"].as_str().unwrap().to_string());
    }
    assert!(hashes.windows(2).all(|w| w[0] == w[1]), "block 1 differs: {hashes:?}");

    let status = interrupt(&mut child.0);
    assert!(status.success(), "yrd-testnet --validators 7 exited with {status} (a sample not final, or the report did not verify)");
    let _ = drain.join();
}

/// N outside 4..=16 is refused before anything is created, with the range in the reason.
#[test]
fn validators_outside_four_to_sixteen_are_refused_clearly() {
    let bin = yrd_bin().with_file_name("yrd-testnet");
    for n in ["3", "17"] {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(&bin).args(["--validators", n, "--dir"]).arg(dir.path().join("x")).env("YRD_BIN", yrd_bin()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{n}: {err}");
        assert!(err.contains(&format!("--validators {n} is outside 4..=16")), "{n}: {err}");
        assert!(!dir.path().join("x").join("genesis.json").exists());
        let out = Command::new(&bin).args(["bench", "--validators", n, "--rate", "10", "--duration", "1"]).env("YRD_BIN", yrd_bin()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "bench {n}: {err}");
        assert!(err.contains("is outside 4..=16"), "bench {n}: {err}");
    }
}
