//! End-to-end tests of `yrd keygen`, `genesis`, `node`, `attest`, `revoke`, `query` and
//! `status`: the real binary, real files, and for the commands that talk to a node a
//! tiny fake node (a std `TcpListener` thread speaking just enough HTTP/1.1) that
//! records what it was sent, so the tests can decode and verify the submitted
//! transactions. Live-node behaviour is left to the workspace integration tests.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use yrd_consensus::crypto::{sha256, Hash32};
use yrd_ledger::genesis::Genesis;
use yrd_ledger::tx::{AttestationKind, Grade, RevocationReason, Severity, SignedTransaction, TxBody};

const SUBJECT: &str = "91350100M000100Y43";
const COMMANDS: [&str; 8] = ["init", "keygen", "genesis", "node", "attest", "revoke", "query", "status"];

fn yrd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_yrd"));
    c.env_remove("YRD_NODE").env("TZ", "UTC");
    c
}

fn run(args: &[&str]) -> Output {
    yrd().args(args).output().expect("run yrd")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("utf-8 stderr")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let o = run(&["keygen", "--out", p(&path)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    (path, stdout(&o).trim().to_string())
}

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as u64
}

// ---------------------------------------------------------------- fake node

/// One recorded request: method, path (with query), body.
type Request = (String, String, String);
type Handler = dyn Fn(&str, &str, &str) -> (u16, Value) + Send + Sync;

struct FakeNode {
    url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl FakeNode {
    /// Serves `handler(method, path, body) -> (status, json)` on 127.0.0.1, one
    /// connection at a time, until the test process exits.
    fn start(handler: impl Fn(&str, &str, &str) -> (u16, Value) + Send + Sync + 'static) -> FakeNode {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake node");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        let handler: Box<Handler> = Box::new(handler);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let _ = serve(stream, &*handler, &recorded);
            }
        });
        FakeNode { url, requests }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    fn posted_tx(&self) -> SignedTransaction {
        let posts: Vec<Request> = self.requests().into_iter().filter(|r| r.0 == "POST").collect();
        assert_eq!(posts.len(), 1, "exactly one POST: {posts:?}");
        assert_eq!(posts[0].1, "/v1/transactions");
        let body: Value = serde_json::from_str(&posts[0].2).expect("POST body is JSON");
        let bytes = hex::decode(body["tx"].as_str().expect("tx field")).expect("tx is hex");
        let tx = SignedTransaction::decode(&bytes).expect("canonical transaction");
        tx.verify_signature().expect("signature verifies");
        tx
    }
}

fn serve(stream: TcpStream, handler: &Handler, recorded: &Mutex<Vec<Request>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut content_length = 0usize;
    let mut chunked = false;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap_or((header, ""));
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => content_length = value.trim().parse().unwrap_or(0),
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        body.resize(content_length, 0);
        reader.read_exact(&mut body)?;
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    recorded.lock().unwrap().push((method.clone(), path.clone(), body.clone()));
    let (status, answer) = handler(&method, &path, &body);
    let text = answer.to_string();
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    )?;
    stream.flush()
}

fn chain() -> Hash32 {
    sha256(&[b"test chain"])
}

/// The fake node's key, as its status reports it.
fn node_key() -> yrd_consensus::crypto::PublicKey {
    yrd_consensus::crypto::SecretKey::from_seed(b"fake node").public()
}

fn status_json() -> Value {
    json!({
        "chain_id": chain().to_hex(), "chain_name": "yrd-test", "node": "shanghai", "node_key": node_key().to_hex(), "validator": true,
        "height": 41, "round": 0, "step": "propose", "last_block_hash": "ab".repeat(32),
        "last_block_time_ms": 1_767_196_800_000u64, "log_size": 1234, "mempool_size": 3,
        "mempool_capacity": 200000, "peers": [{"name": "jiangsu", "key": "cd".repeat(32)}],
        "validators": [{"index": 0, "name": "shanghai", "region": "SH", "key": "ef".repeat(32)}]
    })
}

/// A record as the node reports it once final.
fn final_record(id: &str, height: u64) -> Value {
    json!({"id": id, "status": "active", "height": height, "block_hash": "b1".repeat(32),
           "block_time_ms": 0, "log_index": 3, "type": "attestation", "subject": SUBJECT,
           "kind": "administrative-penalty", "grade": null, "severity": "general",
           "issuer": {"name": "shanghai-credit", "region": "SH", "key": "00".repeat(32)}})
}

/// A node that accepts every transaction; `/v1/attestations/{id}` is pending for the
/// first `pending_polls` polls, then final at height 7.
fn accepting_node(pending_polls: usize) -> FakeNode {
    let polls = Mutex::new(0usize);
    let submitted = Mutex::new(String::new());
    FakeNode::start(move |method, path, body| match (method, path) {
        ("GET", "/v1/status") => (200, status_json()),
        ("POST", "/v1/transactions") => {
            let v: Value = serde_json::from_str(body).unwrap();
            let tx = SignedTransaction::decode(&hex::decode(v["tx"].as_str().unwrap()).unwrap()).unwrap();
            let id = tx.id().unwrap().to_hex();
            *submitted.lock().unwrap() = id.clone();
            (202, json!({"id": id, "status": "pending"}))
        }
        ("GET", p) if p.starts_with("/v1/attestations/") => {
            let id = submitted.lock().unwrap().clone();
            if !p.ends_with(&id) {
                return (404, json!({"error": format!("attestation {} not found", &p[17..])}));
            }
            let mut n = polls.lock().unwrap();
            *n += 1;
            if *n <= pending_polls {
                (200, json!({"id": id, "status": "pending"}))
            } else {
                (200, final_record(&id, 7))
            }
        }
        _ => (404, json!({"error": "no such route"})),
    })
}

/// An issuer key and an evidence file in a fresh directory.
fn issuer_setup() -> (tempfile::TempDir, PathBuf, String, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "issuer.key");
    let evidence = dir.path().join("decision.pdf");
    std::fs::write(&evidence, b"%PDF-1.4 decision 2026-118").unwrap();
    (dir, key, public, evidence)
}

// ---------------------------------------------------------------- help

#[test]
fn help_for_every_command_exits_0_with_an_example() {
    for command in COMMANDS {
        let o = run(&[command, "--help"]);
        assert_eq!(code(&o), 0, "{command} --help: {}", stderr(&o));
        let text = stdout(&o);
        assert!(text.contains("Example"), "{command} --help has no example:\n{text}");
        assert!(text.contains(&format!("yrd {command}")), "{command} --help example does not run yrd {command}");
    }
    let o = run(&["--help"]);
    for command in COMMANDS {
        assert!(stdout(&o).contains(command), "top-level help lists {command}");
    }
}

#[test]
fn node_help_says_where_every_config_field_is_documented() {
    let o = run(&["node", "--help"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    for key in ["docs/node.md", "Configuration", "reference", "yrd init", "[mempool]", "[consensus]", "[storage]", "[http]", "RLIMIT_NOFILE"] {
        assert!(text.contains(key), "yrd node --help lacks {key:?}:\n{text}");
    }
    // What it points to lists every field (docs/node.md is checked against the
    // config struct by yrd-node's config_doc tests).
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/node.md")).unwrap();
    assert!(doc.contains("## Configuration reference"));
    for f in yrd_node::config_doc::FIELDS {
        assert!(doc.contains(&format!("| `{}` |", f.path())), "docs/node.md lacks {}", f.path());
    }
}

// ---------------------------------------------------------------- keygen

#[test]
fn keygen_writes_an_owner_only_key_file_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.key");
    let o = run(&["keygen", "--out", p(&path), "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).expect("one JSON object");
    let public = v["public_key"].as_str().unwrap().to_string();
    assert_eq!(public.len(), 64);
    assert!(v["file"].as_str().unwrap().ends_with("k.key"));
    let key = yrd_node::keys::read_key_file(&path).expect("a readable key file");
    assert_eq!(key.public().to_hex(), public);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    let before = std::fs::read(&path).unwrap();
    let o = run(&["keygen", "--out", p(&path)]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("refusing to overwrite"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&path).unwrap(), before, "the key file is untouched");

    // Without --json: the bare public key, and a different one each time.
    let (_, other) = keygen(dir.path(), "other.key");
    assert_eq!(other.len(), 64);
    assert_ne!(other, public);
}

// ---------------------------------------------------------------- genesis

struct Agencies {
    dir: tempfile::TempDir,
    validators: Vec<String>,
    issuers: Vec<String>,
    issuer_keys: Vec<String>,
}

fn four_agencies() -> Agencies {
    let dir = tempfile::tempdir().unwrap();
    let mut validators = Vec::new();
    let mut issuers = Vec::new();
    let mut issuer_keys = Vec::new();
    for (name, region) in [("shanghai", "SH"), ("jiangsu", "JS"), ("zhejiang", "ZJ"), ("anhui", "AH")] {
        let (vkey, _) = keygen(dir.path(), &format!("{name}-validator.key"));
        let (ikey, ipub) = keygen(dir.path(), &format!("{name}-issuer.key"));
        validators.push(format!("{name}:{region}:{}", p(&vkey)));
        issuers.push(format!("{name}-credit:{region}:{}", p(&ikey)));
        issuer_keys.push(ipub);
    }
    Agencies { dir, validators, issuers, issuer_keys }
}

fn genesis_args(a: &Agencies, out: &Path) -> Vec<String> {
    let mut args: Vec<String> = ["genesis", "--out", p(out), "--chain-name", "yrd-test"].map(String::from).to_vec();
    for v in &a.validators {
        args.extend(["--validator".into(), v.clone()]);
    }
    for i in &a.issuers {
        args.extend(["--issuer".into(), i.clone()]);
    }
    args
}

#[test]
fn genesis_from_key_files_is_valid_and_prints_the_chain_id() {
    let mut a = four_agencies();
    // Kinds, revoke-any, and a hex public key instead of a key file.
    a.issuers[1] = format!("{}:tax-credit,administrative-penalty", a.issuers[1]);
    a.issuers[2] = format!("{}:all:revoke-any", a.issuers[2]);
    a.issuers[3] = format!("{}:revoke-any", a.issuers[3]);
    let observer = yrd_node::keys::generate().public().to_hex();
    let out = a.dir.path().join("genesis.json");
    let mut args = genesis_args(&a, &out);
    args.extend(["--observer".into(), format!("bank-of-shanghai:{observer}")]);
    args.extend(["--max-block-txs".into(), "2000".into(), "--genesis-time".into(), "2026-01-01T00:00:00+08:00".into()]);
    let o = yrd().args(&args).output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    let genesis = Genesis::from_json(&std::fs::read(&out).unwrap()).expect("Genesis::from_json accepts it");
    assert_eq!(stdout(&o).trim(), genesis.chain_id().unwrap().to_hex());
    assert_eq!(genesis.chain_name, "yrd-test");
    assert_eq!(genesis.genesis_time_ms, 1_767_196_800_000);
    assert_eq!(genesis.params.max_block_txs, 2000);
    assert_eq!(genesis.validators.len(), 4);
    let regions: Vec<&str> = genesis.validators.iter().map(|v| v.region.as_str()).collect();
    assert_eq!(regions, ["SH", "JS", "ZJ", "AH"]);
    let names: Vec<&str> = genesis.issuers.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["shanghai-credit", "jiangsu-credit", "zhejiang-credit", "anhui-credit"]);
    for (issuer, key) in genesis.issuers.iter().zip(&a.issuer_keys) {
        assert_eq!(&issuer.key.to_hex(), key);
    }
    assert_eq!(genesis.issuers[0].kinds, AttestationKind::ALL);
    assert!(!genesis.issuers[0].may_revoke_any);
    assert_eq!(genesis.issuers[1].kinds, [AttestationKind::AdministrativePenalty, AttestationKind::TaxCredit]);
    assert_eq!(genesis.issuers[2].kinds, AttestationKind::ALL);
    assert!(genesis.issuers[2].may_revoke_any);
    assert_eq!(genesis.issuers[3].kinds, AttestationKind::ALL);
    assert!(genesis.issuers[3].may_revoke_any);
    assert_eq!(genesis.observers[0].name, "bank-of-shanghai");
    assert_eq!(genesis.observers[0].key.to_hex(), observer);

    // The same inputs with a fixed time give the same chain id; --json reports it.
    let out2 = a.dir.path().join("genesis2.json");
    let mut args2 = args.clone();
    args2[2] = p(&out2).to_string();
    args2.push("--json".into());
    let o2 = yrd().args(&args2).output().unwrap();
    assert_eq!(code(&o2), 0, "{}", stderr(&o2));
    let v: Value = serde_json::from_str(&stdout(&o2)).unwrap();
    assert_eq!(v["chain_id"], stdout(&o).trim());
    assert_eq!((v["validators"].as_u64(), v["issuers"].as_u64(), v["observers"].as_u64()), (Some(4), Some(4), Some(1)));

    // An existing genesis is never overwritten.
    let o3 = yrd().args(&args).output().unwrap();
    assert_eq!(code(&o3), 2);
    assert!(stderr(&o3).contains("refusing to overwrite"), "{}", stderr(&o3));
}

#[test]
fn genesis_errors_name_the_argument_and_the_reason() {
    let a = four_agencies();
    let v0 = a.validators[0].clone();
    let i0 = a.issuers[0].clone();
    let i0_key = i0.split(':').nth(2).unwrap().to_string();
    let v0_key = v0.split(':').nth(2).unwrap().to_string();
    let cases: Vec<(&str, String, &[&str])> = vec![
        ("unknown region", "--validator".into(), &["--validator \"shanghai:XJ:", "unknown region \"XJ\"", "SH, JS, ZJ, AH"]),
        ("bad region", "--validator".into(), &["region code \"S1\" must be"]),
        ("unknown kind", "--issuer".into(), &["--issuer \"shanghai-credit:SH:", "unknown kind 'red-lst'", "red-list"]),
        ("duplicate name", "--issuer".into(), &["name \"shanghai\" is already used by --validator"]),
        ("duplicate key", "--issuer".into(), &["is already used by --validator", "needs its own key"]),
        ("too few parts", "--validator".into(), &["expected NAME:REGION:KEY", "got 2 part(s)"]),
        ("missing key file", "--validator".into(), &["key file /nonexistent/v.key does not exist"]),
        ("bad revoke flag", "--issuer".into(), &["must be `revoke-any`"]),
        ("bad hex key", "--observer".into(), &["--observer \"bank:", "does not exist"]),
    ];
    for (what, _, expected) in cases {
        let mut a2 = Agencies { dir: tempfile::tempdir().unwrap(), validators: a.validators.clone(), issuers: a.issuers.clone(), issuer_keys: vec![] };
        let mut extra: Vec<String> = Vec::new();
        match what {
            "unknown region" => a2.validators[0] = v0.replace(":SH:", ":XJ:"),
            "bad region" => a2.validators[0] = v0.replace(":SH:", ":S1:"),
            "unknown kind" => a2.issuers[0] = format!("{i0}:red-list,red-lst"),
            "duplicate name" => a2.issuers[0] = format!("shanghai:SH:{i0_key}"),
            "duplicate key" => a2.issuers[0] = format!("shanghai-credit:SH:{v0_key}"),
            "too few parts" => a2.validators[0] = "shanghai:SH".into(),
            "missing key file" => a2.validators[0] = "shanghai:SH:/nonexistent/v.key".into(),
            "bad revoke flag" => a2.issuers[0] = format!("{i0}:all:revoke"),
            "bad hex key" => extra.extend(["--observer".into(), format!("bank:{}", "g".repeat(64))]),
            _ => unreachable!(),
        }
        let out = a2.dir.path().join("genesis.json");
        let mut args = genesis_args(&a2, &out);
        args.extend(extra);
        let o = yrd().args(&args).output().unwrap();
        let err = stderr(&o);
        assert_eq!(code(&o), 2, "{what}: {err}");
        assert!(err.starts_with("yrd: error: "), "{what}: {err}");
        for e in expected {
            assert!(err.contains(e), "{what}: expected {e:?} in {err}");
        }
        assert!(!out.exists(), "{what}: no genesis written");
    }

    // An invalid whole genesis (Genesis::validate) is reported too.
    let out = a.dir.path().join("g.json");
    let mut args = genesis_args(&a, &out);
    args.extend(["--max-block-txs".into(), "0".into()]);
    let o = yrd().args(&args).output().unwrap();
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("invalid genesis: chain parameter max_block_txs = 0"), "{}", stderr(&o));
    // --validator and --issuer are required.
    let o = run(&["genesis", "--out", p(&out), "--chain-name", "x"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--validator"));
}

// ---------------------------------------------------------------- attest

#[test]
fn attest_submits_a_signed_canonical_transaction_with_the_given_fields() {
    let (_dir, key, public, evidence) = issuer_setup();
    let node = accepting_node(0);
    let before = now_us();
    let o = run(&[
        "attest", "--node", &node.url, "--key", p(&key), "--subject", "9135-0100-m000100y43",
        "--kind", "administrative-penalty", "--severity", "general", "--evidence", p(&evidence),
        "--valid-until", "2027-12-31T23:59:59+08:00", "--field", "decision-no=沪市监罚〔2026〕118号",
        "--field", "authority=shanghai-amr", "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let tx = node.posted_tx();
    let v: Value = serde_json::from_str(&stdout(&o)).expect("one JSON object");
    assert_eq!(v["id"], tx.id().unwrap().to_hex());
    assert_eq!(v["height"], Value::Null);
    assert_eq!(v["status"], "pending");

    assert_eq!(tx.tx.chain, chain());
    assert_eq!(tx.tx.issuer.to_hex(), public);
    let after = now_us();
    assert!((before..=after).contains(&tx.tx.sequence), "sequence is the time in µs: {}", tx.tx.sequence);
    let TxBody::Attest(a) = &tx.tx.body else { panic!("an attestation") };
    assert_eq!(a.subject.as_str(), SUBJECT);
    assert_eq!(a.kind, AttestationKind::AdministrativePenalty);
    assert_eq!(a.severity, Some(Severity::General));
    assert_eq!(a.grade, None);
    assert_eq!(a.evidence, sha256(&[b"%PDF-1.4 decision 2026-118"]));
    assert_eq!(a.valid_until_ms, Some(1_830_268_799_000));
    assert_eq!(a.valid_from_ms, a.issued_at_ms);
    assert!(a.issued_at_ms >= before / 1000 && a.issued_at_ms <= after / 1000 + 1);
    let fields: Vec<(&str, &str)> = a.fields.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    assert_eq!(fields, [("authority", "shanghai-amr"), ("decision-no", "沪市监罚〔2026〕118号")]);
    // Chain id first, then the one submission.
    let reqs = node.requests();
    assert_eq!((reqs[0].0.as_str(), reqs[0].1.as_str()), ("GET", "/v1/status"));
    assert_eq!(reqs.len(), 2);
}

#[test]
fn attest_with_digest_grade_and_sequence_prints_the_bare_id() {
    let (_dir, key, _, _) = issuer_setup();
    let node = accepting_node(0);
    let digest = "3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b";
    let o = run(&[
        "attest", "--node", &node.url, "--key", p(&key), "--subject", SUBJECT, "--kind", "tax-credit",
        "--grade", "M", "--evidence-digest", digest, "--sequence", "42", "--valid-from", "1767196800000",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let tx = node.posted_tx();
    assert_eq!(stdout(&o), format!("{}\n", tx.id().unwrap().to_hex()));
    assert_eq!(tx.tx.sequence, 42);
    let TxBody::Attest(a) = &tx.tx.body else { panic!("an attestation") };
    assert_eq!(a.grade, Some(Grade::M));
    assert_eq!(a.evidence.to_hex(), digest);
    assert_eq!(a.valid_from_ms, 1_767_196_800_000);
    assert_eq!(a.valid_until_ms, None);
}

#[test]
fn attest_wait_polls_until_final_and_prints_the_height() {
    let (_dir, key, _, evidence) = issuer_setup();
    let node = accepting_node(2);
    let o = run(&[
        "attest", "--node", &node.url, "--key", p(&key), "--subject", SUBJECT, "--kind", "red-list",
        "--evidence", p(&evidence), "--wait", "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let id = node.posted_tx().id().unwrap().to_hex();
    let v: Value = serde_json::from_str(&stdout(&o)).expect("one JSON object");
    assert_eq!(v["id"], id);
    assert_eq!(v["height"], 7);
    assert_eq!(v["block_hash"], "b1".repeat(32));
    assert_eq!(v["status"], "active");
    let polls = node.requests().iter().filter(|r| r.1 == format!("/v1/attestations/{id}")).count();
    assert_eq!(polls, 3, "two pending answers, then final");

    // Text: the id, then the height.
    let node = accepting_node(1);
    let o = run(&[
        "attest", "--node", &node.url, "--key", p(&key), "--subject", SUBJECT, "--kind", "red-list",
        "--evidence", p(&evidence), "--wait",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let id = node.posted_tx().id().unwrap().to_hex();
    assert_eq!(stdout(&o), format!("{id}\nfinal at height 7 in block {} (status active)\n", "b1".repeat(32)));
}

#[test]
fn attest_wait_times_out_with_status_2_and_still_prints_the_id() {
    let (_dir, key, _, evidence) = issuer_setup();
    let node = accepting_node(usize::MAX);
    let o = run(&[
        "attest", "--node", &node.url, "--key", p(&key), "--subject", SUBJECT, "--kind", "red-list",
        "--evidence", p(&evidence), "--wait", "--timeout", "1",
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let id = node.posted_tx().id().unwrap().to_hex();
    assert_eq!(stdout(&o), format!("{id}\n"));
    assert!(stderr(&o).contains(&format!("transaction {id} is not final after 1 s")), "{}", stderr(&o));
    assert!(stderr(&o).contains("yrd query --id"));
}

#[test]
fn attest_rejected_by_the_node_exits_1_with_the_nodes_reason() {
    let (_dir, key, _, evidence) = issuer_setup();
    for (status, error, code_name, exit) in [
        (400, "issuer \"x\" is not allowed to issue red-list attestations", "kind_not_allowed", 1),
        (409, "another pending transaction of this issuer already uses sequence number 5", "sequence_used", 1),
        (503, "mempool full (200000 transactions); retry later", "mempool_full", 2),
        (500, "storage failure", "internal", 2),
    ] {
        let node = FakeNode::start(move |method, path, _| match (method, path) {
            ("GET", "/v1/status") => (200, status_json()),
            _ => (status, json!({"error": error, "code": code_name})),
        });
        let o = run(&[
            "attest", "--node", &node.url, "--key", p(&key), "--subject", SUBJECT, "--kind", "red-list",
            "--evidence", p(&evidence), "--json",
        ]);
        assert_eq!(code(&o), exit, "HTTP {status}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(error), "HTTP {status}: {err}");
        assert!(err.contains(&format!("node answered {status} ({code_name})")), "{err}");
        assert_eq!(err.contains("rejected the transaction"), exit == 1, "{err}");
        assert!(stdout(&o).is_empty());
    }
}

#[test]
fn attest_checks_its_input_before_contacting_the_node() {
    let (_dir, key, _, evidence) = issuer_setup();
    let node = accepting_node(0);
    let base = ["attest", "--node", &node.url, "--key", p(&key)];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--subject", SUBJECT, "--kind", "red-list"], "evidence is required: give --evidence FILE or --evidence-digest HEX"),
        (vec!["--subject", "91350100M000100Y44", "--kind", "red-list", "--evidence", p(&evidence)], "--subject \"91350100M000100Y44\": check character"),
        (vec!["--subject", SUBJECT, "--kind", "blacklist", "--evidence", p(&evidence)], "--kind: unknown kind 'blacklist'"),
        (vec!["--subject", SUBJECT, "--kind", "credit-rating", "--evidence", p(&evidence)], "credit-rating attestations need a grade"),
        (vec!["--subject", SUBJECT, "--kind", "credit-rating", "--grade", "M", "--evidence", p(&evidence)], "grade M is not valid"),
        (vec!["--subject", SUBJECT, "--kind", "red-list", "--severity", "minor", "--evidence", p(&evidence)], "red-list attestations carry no severity"),
        (vec!["--subject", SUBJECT, "--kind", "red-list", "--evidence-digest", "abc"], "--evidence-digest must be a SHA-256 digest"),
        (vec!["--subject", SUBJECT, "--kind", "red-list", "--evidence", "/nonexistent/e.pdf"], "cannot read evidence file /nonexistent/e.pdf"),
        (vec!["--subject", SUBJECT, "--kind", "red-list", "--evidence", p(&evidence), "--valid-until", "2027-12-31"], "--valid-until"),
        (vec!["--subject", SUBJECT, "--kind", "red-list", "--evidence", p(&evidence), "--field", "novalue"], "--field \"novalue\": expected NAME=VALUE"),
        (vec!["--subject", SUBJECT, "--kind", "red-list", "--evidence", p(&evidence), "--field", "a=1", "--field", "a=2"], "given twice"),
        (vec!["--subject", SUBJECT, "--kind", "red-list", "--evidence", p(&evidence), "--field", "Bad Name=1"], "public field name"),
    ];
    for (extra, expected) in cases {
        let o = yrd().args(base).args(&extra).output().unwrap();
        assert_eq!(code(&o), 2, "{extra:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(expected), "{extra:?}: expected {expected:?} in {}", stderr(&o));
    }
    assert!(node.requests().is_empty(), "nothing was sent: {:?}", node.requests());

    // A key file others can read is refused.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let o = yrd().args(base).args(["--subject", SUBJECT, "--kind", "red-list", "--evidence", p(&evidence)]).output().unwrap();
        assert_eq!(code(&o), 2);
        assert!(stderr(&o).contains("chmod 600"), "{}", stderr(&o));
    }
}

#[test]
fn an_unreachable_node_is_reported_with_its_url() {
    let (_dir, key, _, evidence) = issuer_setup();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let o = run(&["attest", "--node", &url, "--key", p(&key), "--subject", SUBJECT, "--kind", "red-list", "--evidence", p(&evidence)]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains(&format!("yrd: error: cannot reach node at {url}: ")), "{}", stderr(&o));
    for args in [vec!["status"], vec!["query", "--subject", SUBJECT]] {
        let o = yrd().args(&args).env("YRD_NODE", format!("127.0.0.1:{port}/")).output().unwrap();
        assert_eq!(code(&o), 2, "{args:?}");
        assert!(stderr(&o).contains(&format!("cannot reach node at {url}: ")), "{args:?}: {}", stderr(&o));
    }
    let o = run(&["status", "--node", "https://example.org"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("https is not supported"));
}

// ---------------------------------------------------------------- revoke

#[test]
fn revoke_submits_a_signed_revocation() {
    let (_dir, key, public, evidence) = issuer_setup();
    let node = accepting_node(0);
    let target = "5f".repeat(32);
    let o = run(&[
        "revoke", "--node", &node.url, "--key", p(&key), "--id", &target, "--reason", "repair",
        "--evidence", p(&evidence), "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let tx = node.posted_tx();
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["id"], tx.id().unwrap().to_hex());
    assert_eq!(tx.tx.issuer.to_hex(), public);
    assert_eq!(tx.tx.chain, chain());
    let TxBody::Revoke(r) = &tx.tx.body else { panic!("a revocation") };
    assert_eq!(r.target.to_hex(), target);
    assert_eq!(r.reason, RevocationReason::Repair);
    assert_eq!(r.evidence, Some(sha256(&[b"%PDF-1.4 decision 2026-118"])));

    // Evidence is optional for revocations; --wait works the same way.
    let node = accepting_node(0);
    let o = run(&["revoke", "--node", &node.url, "--key", p(&key), "--id", &target, "--reason", "Dispute", "--wait"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let tx = node.posted_tx();
    let TxBody::Revoke(r) = &tx.tx.body else { panic!("a revocation") };
    assert_eq!((r.reason, r.evidence), (RevocationReason::Dispute, None));
    assert!(stdout(&o).contains("final at height 7"));

    for (args, expected) in [
        (vec!["--id", "xyz", "--reason", "repair"], "--id must be an attestation id of 64 hex digits"),
        (vec!["--id", target.as_str(), "--reason", "forgiven"], "--reason: unknown reason 'forgiven'"),
    ] {
        let o = yrd().args(["revoke", "--node", &node.url, "--key", p(&key)]).args(&args).output().unwrap();
        assert_eq!(code(&o), 2);
        assert!(stderr(&o).contains(expected), "{}", stderr(&o));
    }
}

// ---------------------------------------------------------------- query

fn query_node() -> FakeNode {
    FakeNode::start(|method, path, _| {
        let id_a = "a1".repeat(32);
        match (method, path) {
            ("GET", p) if p == format!("/v1/subjects/{SUBJECT}/attestations") => (
                200,
                json!({"subject": SUBJECT, "height": 41, "attestations": [
                    final_record(&id_a, 7),
                    {"id": "c3".repeat(32), "status": "revocation", "height": 9, "block_hash": "b2".repeat(32),
                     "type": "revocation", "target": id_a, "reason": "repair",
                     "issuer": {"name": "shanghai-credit", "region": "SH", "key": "00".repeat(32)}},
                ]}),
            ),
            ("GET", p) if p == format!("/v1/attestations/{id_a}") => (200, final_record(&id_a, 7)),
            ("GET", p) if p.starts_with("/v1/attestations/") => (404, json!({"error": "attestation not found"})),
            ("GET", p) if p.starts_with("/v1/issuers/shanghai%20credit/attestations") => (
                200,
                json!({"issuer": {"name": "shanghai credit", "region": "SH", "key": "00".repeat(32)},
                       "attestations": [{"id": "d4".repeat(32), "status": "pending"}], "last_sequence": 12}),
            ),
            ("GET", p) if p.starts_with("/v1/issuers/") => (404, json!({"error": "unknown issuer", "code": "not_found"})),
            _ => (404, json!({"error": "no such route"})),
        }
    })
}

/// A signed read names the node it is for, read from the node's status: a
/// node whose status has no `node_key` is refused with the reason, before any
/// request is signed.
#[test]
fn a_signed_read_needs_the_node_key_from_the_status() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = keygen(dir.path(), "lender.key");
    let node = FakeNode::start(|method, path, _| match (method, path) {
        ("GET", "/v1/status") => {
            let mut v = status_json();
            v.as_object_mut().unwrap().remove("node_key");
            (200, v)
        }
        _ => (404, json!({"error": "no such route"})),
    });
    let o = run(&["query", "--node", &node.url, "--subject", SUBJECT, "--key", p(&key)]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("reports no node_key in /v1/status: it cannot take signed requests"), "{}", stderr(&o));
    assert_eq!(node.requests().iter().map(|r| r.1.as_str()).collect::<Vec<_>>(), vec!["/v1/status"], "nothing signed was sent");
}

#[test]
fn query_by_subject_prints_a_table_or_json() {
    let node = query_node();
    let o = run(&["query", "--node", &node.url, "--subject", "91350100m000100y43"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], format!("subject {SUBJECT}: 2 record(s) at height 41"));
    for column in ["ID", "STATUS", "HEIGHT", "BLOCK", "KIND", "SUBJECT", "ISSUER"] {
        assert!(lines[1].contains(column), "{}", lines[1]);
    }
    assert!(lines[2].starts_with(&"a1".repeat(32)));
    for cell in ["active", " 7 ", &format!("{}…", "b1".repeat(8)), "administrative-penalty (general)", SUBJECT, "shanghai-credit (SH)"] {
        assert!(lines[2].contains(cell), "{cell:?} in {}", lines[2]);
    }
    assert!(lines[3].contains("revocation (repair) of a1a1a1a1a1a1…"), "{}", lines[3]);

    let o = run(&["query", "--node", &node.url, "--subject", SUBJECT, "--json"]);
    assert_eq!(code(&o), 0);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["subject"], SUBJECT);
    let list = v["attestations"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    for r in list {
        for key in ["id", "status", "height", "block_hash"] {
            assert!(!r[key].is_null(), "{key} in {r}");
        }
    }

    // An invalid USCC is refused with the reason, without asking the node.
    let before = node.requests().len();
    let o = run(&["query", "--node", &node.url, "--subject", "91350100M000100Y44"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("check character"), "{}", stderr(&o));
    assert_eq!(node.requests().len(), before);
}

#[test]
fn query_by_id_and_by_issuer() {
    let node = query_node();
    let id_a = "a1".repeat(32);
    let o = run(&["query", "--node", &node.url, "--id", &id_a.to_uppercase(), "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["attestations"][0]["id"], id_a);
    assert_eq!(v["attestations"][0]["height"], 7);
    assert_eq!(v["attestations"][0]["block_hash"], "b1".repeat(32));

    let missing = "ee".repeat(32);
    let o = run(&["query", "--node", &node.url, "--id", &missing]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains(&format!("no attestation {missing}")), "{}", stderr(&o));

    // Issuer names are percent-encoded; pending records get null height and block_hash.
    let o = run(&["query", "--node", &node.url, "--issuer", "shanghai credit", "--json", "--limit", "1", "--after", "5"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let r = &v["attestations"][0];
    assert_eq!((r["status"].as_str(), r["height"].is_null(), r["block_hash"].is_null()), (Some("pending"), true, true));
    assert!(node.requests().iter().any(|r| r.1 == "/v1/issuers/shanghai%20credit/attestations?limit=1&after=5"));

    let o = run(&["query", "--node", &node.url, "--issuer", "nobody"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("node answered 404 (not_found): unknown issuer"), "{}", stderr(&o));

    // Exactly one of --subject, --id, --issuer.
    assert_eq!(code(&run(&["query", "--node", &node.url])), 2);
    assert_eq!(code(&run(&["query", "--node", &node.url, "--id", &id_a, "--subject", SUBJECT])), 2);
}

/// Why: "human tables are up to 187 columns wide"; "`query --id` has no detail view".
#[test]
fn query_tables_fit_the_terminal_width_and_an_id_gets_a_detail_view() {
    let node = query_node();
    let o = yrd().args(["query", "--node", &node.url, "--subject", SUBJECT]).env("COLUMNS", "80").output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    for line in text.lines() {
        assert!(line.chars().count() <= 80, "{} columns: {line}", line.chars().count());
    }
    assert!(text.contains(&format!("{}…", "a1".repeat(8))), "ids shortened:\n{text}");
    // Not a terminal and no COLUMNS: whole cells, for scripts.
    let o = yrd().args(["query", "--node", &node.url, "--subject", SUBJECT]).env_remove("COLUMNS").output().unwrap();
    assert!(stdout(&o).contains(&"a1".repeat(32)));

    let o = yrd().args(["query", "--node", &node.url, "--id", &"a1".repeat(32)]).env_remove("COLUMNS").output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    for expected in [format!("id           {}", "a1".repeat(32)), "status       active".into(), format!("block        {}", "b1".repeat(32)), "height       7".into()] {
        assert!(text.contains(&expected), "{expected:?} in\n{text}");
    }
    assert!(!text.contains("ID  "), "no table header in the detail view:\n{text}");
}

// ---------------------------------------------------------------- status

#[test]
fn status_prints_a_summary_or_the_json_and_reads_yrd_node() {
    let node = FakeNode::start(|_, path, _| if path == "/v1/status" { (200, status_json()) } else { (404, json!({"error": "no"})) });
    let o = yrd().args(["status", "--json"]).env("YRD_NODE", &node.url).output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["height"], 41);
    assert_eq!(v, status_json());

    let o = run(&["status", "--node", &node.url]);
    assert_eq!(code(&o), 0);
    let text = stdout(&o);
    for expected in [
        "node        shanghai (validator)",
        &format!("chain       yrd-test {}", chain().to_hex()),
        "height      41 (round 0, step propose)",
        "2025-12-31 16:00:00.000 UTC",
        "mempool     3 / 200000",
        "peers       1: jiangsu",
        "validators  1",
    ] {
        assert!(text.contains(expected), "{expected:?} in\n{text}");
    }
}

/// Why: "times show only in UTC". The local zone by default (TZ), UTC with --utc.
#[test]
fn times_are_local_by_default_and_utc_with_the_flag() {
    let node = FakeNode::start(|_, path, _| if path == "/v1/status" { (200, status_json()) } else { (404, json!({"error": "no"})) });
    let o = yrd().args(["status", "--node", &node.url]).env("TZ", "Asia/Shanghai").output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("2026-01-01 00:00:00.000 CST +08:00"), "{}", stdout(&o));
    let o = yrd().args(["status", "--node", &node.url, "--utc"]).env("TZ", "Asia/Shanghai").output().unwrap();
    assert!(stdout(&o).contains("2025-12-31 16:00:00.000 UTC"), "{}", stdout(&o));
    let o = yrd().args(["--utc", "status", "--node", &node.url]).env("TZ", "America/New_York").output().unwrap();
    assert!(stdout(&o).contains("2025-12-31 16:00:00.000 UTC"), "{}", stdout(&o));
    let o = yrd().args(["status", "--node", &node.url]).env("TZ", "America/New_York").output().unwrap();
    assert!(stdout(&o).contains("2025-12-31 11:00:00.000 EST -05:00"), "{}", stdout(&o));
}

// ---------------------------------------------------------------- node

#[test]
fn node_refuses_a_bad_config_or_bad_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["node", "--config", p(&dir.path().join("missing.toml"))]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("cannot read config file"), "{}", stderr(&o));

    let config = dir.path().join("node.toml");
    std::fs::write(&config, "name = \"shanghai\"\ngenesis = \"genesis.json\"\nkey = \"v.key\"\ndata_dir = \"data\"\n").unwrap();
    let cases: BTreeMap<&str, (Vec<&str>, &str)> = BTreeMap::from([
        ("api", (vec!["--api", "localhost"], "api = \"localhost\" is not an address")),
        ("listen", (vec!["--listen", "tcp://0.0.0.0:1"], "is not a multiaddr")),
        ("peer", (vec!["--peer", "10.0.0.2:26601"], "peer \"10.0.0.2:26601\" is not a multiaddr")),
    ]);
    for (what, (flags, expected)) in cases {
        let o = yrd().args(["node", "--config", p(&config)]).args(&flags).output().unwrap();
        assert_eq!(code(&o), 2, "{what}");
        assert!(stderr(&o).contains(expected), "{what}: {}", stderr(&o));
        assert!(stderr(&o).contains("after applying the command-line flags"), "{what}: {}", stderr(&o));
    }
    let o = run(&["node", "--config", p(&config), "--log-format", "xml"]);
    assert_eq!(code(&o), 2);
}

use yrd_ledger::testkit::free_port;

/// The `yrd node` glue with the real node: a one-validator chain started from a TOML
/// file with flag overrides, an attestation submitted with `--wait`, queried, and the
/// node stopped by SIGTERM with exit status 0. (Multi-node behaviour is tested by the
/// workspace integration tests.)
#[cfg(unix)]
#[test]
fn node_runs_a_one_validator_chain_that_finalises_an_attestation() {
    let dir = tempfile::tempdir().unwrap();
    let (vkey, _) = keygen(dir.path(), "v.key");
    let (ikey, _) = keygen(dir.path(), "i.key");
    let genesis = dir.path().join("genesis.json");
    let o = run(&[
        "genesis", "--out", p(&genesis), "--chain-name", "cli-test",
        "--validator", &format!("shanghai:SH:{}", p(&vkey)), "--issuer", &format!("shanghai-credit:sh:{}", p(&ikey)),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let chain_id = stdout(&o).trim().to_string();
    let config = dir.path().join("node.toml");
    // The file's api and data_dir are overridden by flags.
    std::fs::write(
        &config,
        "name = \"shanghai\"\ngenesis = \"genesis.json\"\nkey = \"v.key\"\ndata_dir = \"unused\"\napi = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    let api = format!("127.0.0.1:{}", free_port());
    let data = dir.path().join("data");
    let child = yrd()
        .args(["node", "--config", p(&config), "--data-dir", p(&data), "--api", &api])
        .args(["--listen", &format!("/ip4/127.0.0.1/tcp/{}", free_port()), "--log-format", "json"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!("http://{api}");
    let started = std::time::Instant::now();
    let status = loop {
        let o = run(&["status", "--node", &url, "--json"]);
        if code(&o) == 0 {
            break serde_json::from_str::<Value>(&stdout(&o)).unwrap();
        }
        assert!(started.elapsed().as_secs() < 60, "node did not come up: {}", stderr(&o));
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(status["chain_id"], chain_id);
    assert!(status["height"].is_u64());

    let evidence = dir.path().join("e.pdf");
    std::fs::write(&evidence, b"decision").unwrap();
    let o = run(&[
        "attest", "--node", &url, "--key", p(&ikey), "--subject", SUBJECT, "--kind", "credit-rating", "--grade", "A",
        "--evidence", p(&evidence), "--wait", "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let height = v["height"].as_u64().expect("a height once final");
    // A credit rating is restricted (docs/access.md): anonymous readers are refused,
    // its issuer reads it with its own key.
    let o = run(&["query", "--node", &url, "--id", v["id"].as_str().unwrap(), "--json"]);
    assert_ne!(code(&o), 0, "{}", stdout(&o));
    assert!(stderr(&o).contains("403 (restricted)"), "{}", stderr(&o));
    let o = run(&["query", "--node", &url, "--id", v["id"].as_str().unwrap(), "--json", "--key", p(&ikey)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let q: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(q["attestations"][0]["height"].as_u64(), Some(height));
    assert_eq!(q["attestations"][0]["status"], "active");
    assert_eq!(q["attestations"][0]["block_hash"], v["block_hash"]);
    assert!(data.exists(), "--data-dir was used");

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    let first = log.lines().next().expect("some log");
    assert!(serde_json::from_str::<Value>(first).is_ok(), "JSON log lines: {first}");
}
