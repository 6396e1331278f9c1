//! Issue 15: "a test runs every example command in README.md and docs/cli.md against
//! a live testnet so they cannot rot".
//!
//! One four-validator cluster on 127.0.0.1 serves every example. Each `yrd …` line of
//! the docs' ```sh blocks runs, in the order of the docs, with its placeholders
//! filled in (see [`Run::fill`]) and must exit 0 and print what [`EXPECT`] says a
//! reader would see. Three working directories stand in for the reader's:
//!
//! - **setup**, one per document (`yrd init`, `yrd keygen`, `yrd genesis --out`):
//!   these write new keys and a new genesis, as an agency does before the chain
//!   exists. Files they create
//!   that the cluster does not define (e.g. `zj-issuer-2.key`) are copied to *live*.
//! - **live** (everything else): the cluster's genesis, issuer, lender and agency
//!   keys under the names the docs use (`genesis.json`, `keys/sh-issuer.key`,
//!   `keys/bank.key`, `/tmp/yrd/shanghai/admin.key`, …), node URLs pointing at the
//!   cluster.
//! - **stopped** (commands with `--data`: backup of a stopped node, restore,
//!   `audit verify-ledger`): run last, on a copy of a validator's store taken after
//!   that validator was stopped, as the docs say ("stop the node first").
//!
//! An example that cannot run here is listed in [`NOT_RUN`] with the reason; it must
//! still be accepted by the argument parser. A new example that neither runs nor is
//! listed, or a listed one no longer in the docs, fails this test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use yrd_consensus::crypto::SecretKey;
use yrd_tests::{yrd_bin, Cluster};

/// Examples that are not run, with the reason (matched as the start of the line).
const NOT_RUN: &[(&str, &str)] = &[
    ("yrd node --config shanghai.toml", "starts a long-running node: the cluster's nodes are started with this very command (tests/src/lib.rs, Cluster::start_node)"),
    ("yrd node --config suzhou.toml", "starts the node of the validator the example adds; a fifth process is not needed to show the proposal, approvals and membership"),
    ("yrd node --config /etc/yrd/shanghai.toml", "starts a long-running node from a system path (deploy/yrd-node.service runs it)"),
    ("yrd node --config node.toml --data-dir", "starts a long-running node with overrides; the overrides are run by tests/tests/operators.rs (--listen, --api, --data-dir)"),
    ("yrd gov approve …", "prose: `…` stands for the arguments of the approvals shown just above, which run"),
];

/// What each command prints on success: (start of the command, text its standard
/// output must contain). The first matching entry applies; every command that runs
/// must match one.
const EXPECT: &[(&str, &[&str])] = &[
    ("yrd init", &["peer"]),
    ("yrd keygen", &[HEX64]),
    ("yrd genesis inspect", &["chain id", "n = 4 validators, f = 1 may fail, quorum 3", "shanghai"]),
    ("yrd genesis", &[HEX64]),
    ("yrd verify genesis.json", &["VERIFIED: a valid genesis"]),
    ("yrd verify", &["VERIFIED"]),
    ("yrd key show", &["peer id", "in genesis   validator shanghai"]),
    ("yrd status --json", &["\"height\"", "\"liveness\""]),
    ("yrd status", &["height", "quorum      present"]),
    ("yrd uscc check --code", &["91350100M000100Y43"]),
    ("yrd uscc check", &["duplicate"]),
    ("yrd attest", &["height", "active"]),
    ("yrd revoke", &["final at height"]),
    ("yrd query --id", &["\"status\":\"revoked\""]),
    ("yrd query --issuer", &["shanghai-credit"]),
    ("yrd query", &["record(s) at height"]),
    ("yrd gov propose", &["final at height"]),
    ("yrd gov approve", &["final at height"]),
    ("yrd gov show", &["state        approved", "effective from height"]),
    ("yrd gov members", &["suzhou"]),
    ("yrd lender authorise", &["final at height"]),
    ("yrd lender withdraw", &["final at height"]),
    ("yrd report", &["yrd-"]),
    ("yrd proof", &["yrd-proof-bundle"]),
    ("yrd audit queries", &["bank-0"]),
    ("yrd audit trace", &["VERIFIED"]),
    ("yrd audit consistency", &["VERIFIED"]),
    ("yrd audit verify-ledger", &["CONSISTENT: every check passed"]),
    ("yrd backup", &["height"]),
    ("yrd restore", &["height"]),
];

/// Examples whose output shows a later block's content: a served read is recorded on
/// chain by a transaction the node submits up to `queries.flush_ms` later
/// (docs/access.md), so `yrd audit queries` right after the reads may list none yet.
/// These are run again (for up to 30 s) until their output has what [`EXPECT`] says.
const EVENTUALLY: &[&str] = &["yrd audit queries"];

/// In [`EXPECT`]: a 64-hex-digit word (a key or an id).
const HEX64: &str = "<64 hex digits>";

/// One example: the document, the command line, where its standard output goes.
#[derive(Debug, Clone)]
struct Example {
    doc: &'static str,
    line: String,
    redirect: Option<String>,
}

/// The `yrd …` command lines of the ```sh blocks of a Markdown file, continuation
/// lines joined, comments dropped, `> FILE` kept apart.
fn examples(doc: &'static str, markdown: &str) -> Vec<Example> {
    let mut out = Vec::new();
    let mut in_sh = false;
    let mut current = String::new();
    for line in markdown.lines() {
        if line.starts_with("```") {
            in_sh = line.trim() == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let text = line.trim();
        let (body, continued) = match text.strip_suffix('\\') {
            Some(b) => (b, true),
            None => (text, false),
        };
        current.push_str(body);
        current.push(' ');
        if !continued {
            let cmd = current.split(" #").next().unwrap_or("").trim().to_string();
            current.clear();
            if !cmd.starts_with("yrd ") {
                continue;
            }
            assert!(!cmd.contains("&&") && !cmd.contains('|'), "{doc}: `{cmd}`: one command per line, please");
            let (line, redirect) = match cmd.split_once(" > ") {
                Some((c, f)) => (c.trim().to_string(), Some(f.trim().to_string())),
                None => (cmd, None),
            };
            out.push(Example { doc, line, redirect });
        }
    }
    out
}

/// Splits a command line into words (double-quoted words kept whole).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// The first 64-hex-digit word of a text (a transaction or proposal id).
fn first_id(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_ascii_hexdigit()).find(|w| w.len() == 64).map(str::to_string)
}

/// Where a command runs (see the module comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Setup,
    Live,
    Stopped,
}

fn place_of(line: &str) -> Place {
    let w = words(line);
    let sub = w.get(1).map(String::as_str).unwrap_or("");
    let next = w.get(2).map(String::as_str).unwrap_or("");
    if sub == "init" || sub == "keygen" || (sub == "genesis" && next != "inspect") {
        Place::Setup
    } else if w.iter().any(|x| x == "--data") {
        Place::Stopped
    } else {
        Place::Live
    }
}

/// The state the examples build on each other (ids they print) and the directories.
struct Run {
    setup: PathBuf,
    live: PathBuf,
    stopped: PathBuf,
    node0: String,
    node1: String,
    /// Fresh keys for `<hex>` placeholders (every one distinct).
    fresh: u32,
    last_attestation: Option<String>,
    /// The last attestation signed with `keys/sh-issuer.key` (docs/cli.md's `86ec6eec…`).
    sh_attestation: Option<String>,
    proposal: Option<String>,
    consent: Option<String>,
    /// The height from which the last proposal `yrd gov show` showed takes effect.
    effective: Option<u64>,
    height: u64,
}

impl Run {
    fn fresh_public(&mut self) -> String {
        self.fresh += 1;
        SecretKey::from_seed(format!("doc-example-{}", self.fresh).as_bytes()).public().to_hex()
    }

    /// The example with its placeholders replaced by values of this cluster.
    fn fill(&mut self, line: &str) -> String {
        let missing = |what: &str| -> String { panic!("`{line}` needs {what}, which no earlier example made") };
        let mut s = line
            .replace("3a7bd3e2…(64 hex)", &"3a7bd3e2".repeat(8))
            .replace(['[', ']'], "")
            .replace("$SH", &self.node0)
            .replace("http://127.0.0.1:8601", &self.node0)
            .replace("http://127.0.0.1:8602", &self.node1)
            .replace("/tmp/yrd/", &format!("{}/yrd/", self.live.display()))
            .replace("/var/lib/yrd/", &format!("{}/var/lib/yrd/", self.stopped.display()))
            // Heights of a long-lived chain; this one is young.
            .replace("--from 100 --to 5000", &format!("--from 2 --to {}", self.height));
        for placeholder in ["0f3c…(64 hex)", "<admin hex>", "<validator hex>", "<issuer hex>", "<hex>"] {
            while s.contains(placeholder) {
                let key = self.fresh_public();
                s = s.replacen(placeholder, &key, 1);
            }
        }
        if s.contains("86ec6eec…") {
            let id = self.sh_attestation.clone().unwrap_or_else(|| missing("an attestation by keys/sh-issuer.key"));
            s = s.replace("86ec6eec…", &id);
        }
        if s.contains("<attestation id>") {
            let id = self.last_attestation.clone().unwrap_or_else(|| missing("an attestation"));
            s = s.replace("<attestation id>", &id);
        }
        if s.contains("<id>") {
            let id = if s.starts_with("yrd gov") { self.proposal.clone() } else { self.consent.clone() };
            s = s.replace("<id>", &id.unwrap_or_else(|| missing("a proposal or consent id")));
        }
        assert!(!s.contains('<') && !s.contains('…'), "unfilled placeholder in `{s}` (from `{line}`)");
        s
    }

    /// Each document's setup starts afresh (both write a `genesis.json`).
    fn dir(&self, place: Place, doc: &str) -> PathBuf {
        match place {
            Place::Setup => self.setup.join(doc.replace(['/', '.'], "-")),
            Place::Live => self.live.clone(),
            Place::Stopped => self.stopped.clone(),
        }
    }

    /// Remembers the ids an example printed, for the examples after it.
    fn remember(&mut self, line: &str, stdout: &str) {
        let json: Option<serde_json::Value> = serde_json::from_str(stdout).ok();
        let id = match json.as_ref().and_then(|v| v["id"].as_str()) {
            Some(id) => Some(id.to_string()),
            None => first_id(stdout),
        };
        if line.starts_with("yrd attest") {
            self.last_attestation = id.clone();
            if line.contains("keys/sh-issuer.key") {
                self.sh_attestation = id;
            }
        } else if line.starts_with("yrd gov propose") {
            self.proposal = id;
        } else if line.starts_with("yrd lender authorise") {
            self.consent = id;
        } else if line.starts_with("yrd gov show") {
            self.effective = stdout.split("effective from height ").nth(1).and_then(|r| r.split_whitespace().next()).and_then(|h| h.parse().ok());
        }
    }
}

/// Runs `yrd` with `args` in `dir`; (exit code, stdout, stderr).
fn yrd_in(dir: &Path, args: &[String], node: &str) -> (Option<i32>, String, String) {
    let out = Command::new(yrd_bin())
        .args(args)
        .current_dir(dir)
        .env("YRD_NODE", node)
        .env_remove("YRD_GENESIS")
        .env("TZ", "UTC")
        .output()
        .expect("run yrd");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string(), String::from_utf8_lossy(&out.stderr).to_string())
}

fn write_key(path: &Path, key: &SecretKey) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("key dir");
    yrd_node::keys::write_key_file(path, key).expect("write key");
}

/// Files of `from` (recursively) that `to` lacks are copied there.
fn copy_new_files(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).expect("read dir").flatten() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            std::fs::create_dir_all(&dst).expect("mkdir");
            copy_new_files(&src, &dst);
        } else if !dst.exists() {
            std::fs::copy(&src, &dst).expect("copy");
        }
    }
}

/// The files the docs name, made from the cluster's keys and genesis.
fn fixtures(c: &Cluster, run: &Run) {
    let ch = &c.chain;
    let live = &run.live;
    std::fs::copy(&c.genesis_path, live.join("genesis.json")).expect("genesis");
    std::fs::copy(&c.genesis_path, run.stopped.join("genesis.json")).expect("genesis");
    write_key(&live.join("sh-issuer.key"), &ch.issuer_keys[0]);
    write_key(&live.join("keys/sh-issuer.key"), &ch.issuer_keys[0]);
    write_key(&live.join("keys/js-issuer.key"), &ch.issuer_keys[1]);
    write_key(&live.join("keys/bank.key"), &ch.lender_keys[0]);
    write_key(&live.join("keys/shanghai-admin.key"), &ch.agency_keys[0]);
    write_key(&live.join("admin.key"), &ch.agency_keys[0]);
    for (i, name) in ["shanghai", "jiangsu", "zhejiang"].iter().enumerate() {
        write_key(&live.join(format!("yrd/{name}/admin.key")), &ch.agency_keys[i]);
    }
    write_key(&live.join("sh/validator.key"), &ch.validator_keys[0]);
    for (name, body) in [
        ("decision.pdf", "tax credit decision 2026-118"),
        ("decision-2026-118.pdf", "administrative penalty decision 2026-118"),
        ("approval.pdf", "approval of the repair"),
        ("consent-2026-118.pdf", "the enterprise consents to a loan application check"),
    ] {
        std::fs::write(live.join(name), body).expect("evidence file");
    }
    // An extract of a register: the code in the second column, one code twice.
    std::fs::write(
        live.join("register.csv"),
        "name,uscc,city\nA Co,91350100M000100Y43,Fuzhou\nB Co,91310115MA1H7K2Q4X,Shanghai\nA Co again,91350100M000100Y43,Fuzhou\n",
    )
    .expect("register");
    // The genesis example of docs/cli.md names key files the examples before it do
    // not all write.
    for name in ["js-validator", "zj-validator", "ah-validator", "js-issuer", "zj-issuer", "ah-issuer"] {
        write_key(&run.dir(Place::Setup, "docs/cli.md").join(format!("keys/{name}.key")), &SecretKey::from_seed(format!("doc-setup-{name}").as_bytes()));
    }
}

/// The argument parser accepts a command that is not run (only its first real
/// step, reading a file or reaching a node, may fail).
fn assert_parses(doc: &str, line: &str, dir: &Path) {
    let (_, _, err) = yrd_in(dir, &words(line)[1..], "http://127.0.0.1:1");
    for clap_error in ["Usage:", "unexpected argument", "unrecognized subcommand", "required arguments were not provided", "invalid value"] {
        assert!(!err.contains(clap_error), "{doc}: `{line}` is refused by the argument parser:\n{err}");
    }
}

#[test]
fn every_example_command_in_the_readme_and_cli_doc_runs_against_a_live_testnet() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut all = Vec::new();
    for doc in ["README.md", "docs/cli.md"] {
        let text = std::fs::read_to_string(format!("{root}/{doc}")).expect("read doc");
        let found = examples(doc, &text);
        assert!(found.len() >= 15, "{doc}: only {} example commands found", found.len());
        all.extend(found);
    }
    for (prefix, _) in NOT_RUN {
        assert!(all.iter().any(|e| e.line.starts_with(prefix)), "NOT_RUN lists `{prefix}`, which no doc has any more");
    }

    let mut c = Cluster::start(4);
    let base = c.path().join("examples");
    let mut run = Run {
        setup: base.join("setup"),
        live: base.join("live"),
        stopped: base.join("stopped"),
        node0: c.nodes[0].api.clone(),
        node1: c.nodes[1].api.clone(),
        fresh: 0,
        last_attestation: None,
        sh_attestation: None,
        proposal: None,
        consent: None,
        effective: None,
        height: 0,
    };
    for d in [&run.setup, &run.live, &run.stopped] {
        std::fs::create_dir_all(d).expect("dir");
    }
    fixtures(&c, &run);
    c.wait_height(0, 2, 60);

    let mut ran: BTreeMap<String, usize> = BTreeMap::new();
    let mut deferred = Vec::new();
    let mut skipped = 0;
    for ex in &all {
        if let Some((_, reason)) = NOT_RUN.iter().find(|(p, _)| ex.line.starts_with(p)) {
            assert!(!reason.is_empty());
            if !ex.line.contains('…') {
                assert_parses(ex.doc, &ex.line, &run.live);
            }
            skipped += 1;
            continue;
        }
        let place = place_of(&ex.line);
        if place == Place::Stopped {
            deferred.push(ex.clone());
            continue;
        }
        run_one(&c, &mut run, ex, place, &mut ran);
    }

    // The stopped-node examples, on a copy of validator 3's store (the others keep
    // their quorum while it is down).
    c.stop(3);
    let copy = run.stopped.join("var/lib/yrd/data");
    yrd_ledger::testkit::copy_dir(&c.nodes[3].data_dir, &copy).expect("copy the store");
    yrd_ledger::testkit::copy_dir(&c.nodes[3].data_dir, &run.stopped.join("data")).expect("copy the store");
    for ex in &deferred {
        run_one(&c, &mut run, ex, Place::Stopped, &mut ran);
    }

    let total: usize = ran.values().sum();
    println!("{total} examples ran, {skipped} listed as not run: {ran:?}");
    assert_eq!(total + skipped, all.len());
    assert!(total >= 40, "only {total} examples ran");
}

fn run_one(c: &Cluster, run: &mut Run, ex: &Example, place: Place, ran: &mut BTreeMap<String, usize>) {
    // README: the joining node "catches up and votes from height E", and only then
    // does `yrd gov members` list it; wait for E as the reader does.
    if let (true, Some(e)) = (ex.line.starts_with("yrd gov members"), run.effective) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while c.height(0).is_none_or(|h| h < e) {
            assert!(Instant::now() < deadline, "height {e} not reached; log tail:\n{}", c.nodes[0].log_tail(20));
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    run.height = c.height(0).unwrap_or(run.height);
    let line = run.fill(&ex.line);
    let dir = run.dir(place, ex.doc);
    std::fs::create_dir_all(&dir).expect("dir");
    let args = words(&line);
    let (prefix, wanted) = EXPECT
        .iter()
        .find(|(p, _)| ex.line.starts_with(p))
        .unwrap_or_else(|| panic!("{}: `{}` runs, but EXPECT says nothing about its output; add what it must print", ex.doc, ex.line));
    let has = |out: &str, w: &str| if w == HEX64 { first_id(out).is_some() } else { out.contains(w) };
    let again_until = Instant::now() + Duration::from_secs(if EVENTUALLY.iter().any(|p| ex.line.starts_with(p)) { 30 } else { 0 });
    let started = Instant::now();
    let (out, err) = loop {
        let (code, out, err) = yrd_in(&dir, &args[1..], &run.node0);
        assert_eq!(
            code,
            Some(0),
            "{}: `{}`\nran as `{line}` in {} ({:?}):\nstdout:\n{out}\nstderr:\n{err}\nnode 0 log tail:\n{}",
            ex.doc,
            ex.line,
            dir.display(),
            started.elapsed(),
            c.nodes[0].log_tail(20)
        );
        if wanted.iter().all(|w| has(&out, w)) || Instant::now() >= again_until {
            break (out, err);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let took = started.elapsed();
    for w in *wanted {
        assert!(has(&out, w), "{}: `{line}` printed no {w:?}:\n{out}\nstderr:\n{err}", ex.doc);
    }
    if let Some(file) = &ex.redirect {
        std::fs::write(dir.join(file), &out).expect("write the redirected output");
    }
    if place == Place::Setup {
        copy_new_files(&dir, &run.live);
    }
    println!("{} ran `{line}` ({} ms): {}", ex.doc, took.as_millis(), out.lines().next().unwrap_or(""));
    run.remember(&ex.line, &out);
    *ran.entry(prefix.to_string()).or_default() += 1;
    if took > Duration::from_secs(10) {
        println!("slow example ({took:?}): {line}");
    }
}
