//! The web console (docs/console.md) in a real headless Chromium against a live
//! four-validator testnet: every page loads without console errors or failed
//! requests and asks nothing of any host but the node; navigation works by mouse
//! and keyboard; the subject page lists exactly what `yrd query --subject` lists;
//! the verify page (node/console/verify.js) gives the verdict `yrd verify` gives,
//! for honest files and for every tampered variant, case by case — on the live
//! chain, and on files of a chain whose membership changed five times by
//! governance (`ChangedChain`, built in-process: the replay of steps 23–29, with
//! tampered governance sections), and for crafted Ed25519 signatures and weak keys
//! (the signature and key rules of docs/proofs.md §2).
//!
//! Skips (printing why) when no Chromium binary is found (`chromium` on PATH, or
//! `$YRD_CHROMIUM`). Screenshots of each page go to `target/console-screenshots/`.
//! One cluster, one browser; the tamper seed is fixed and printed on failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use yrd_consensus::adversary::{sign_crafted, weak_keys, Craft};
use yrd_consensus::crypto::SecretKey;
use yrd_consensus::types::Height;
use yrd_ledger::genesis::Genesis;
use yrd_ledger::proof;
use yrd_consensus::crypto::sha256;
use yrd_ledger::consent::Purpose;
use yrd_ledger::proof_queries::query_audit;
use yrd_ledger::queries::{Nonce, QueryEntry, QueryRecords, SignedRequest};
use yrd_ledger::testkit::{json_leaves, ChangedChain, TestChain};
use yrd_ledger::tx::{AttestationKind, RevocationReason, SignedTransaction, TxBody, TxId, TAG_TRANSACTION};
use yrd_ledger::uscc::Uscc;
use yrd_tests::chromium::{find_chromium, Browser};
use yrd_tests::{yrd_bin, Cluster};

/// Seed of the choice of tampered bytes (printed on failure).
const TAMPER_SEED: u64 = 0x5eed_c0de;
/// Byte positions tampered per hex field (plus the first and last two).
const TAMPER_POSITIONS: usize = 6;
/// Every how-many-th generic tamper case runs on the governance files (each case
/// replays the governance section: the full set took 40 s of CI time).
const GOV_TAMPER_STRIDE: usize = 8;
/// Files verified by the page per DevTools call.
const JS_BATCH: usize = 60;

fn submit_final(c: &mut Cluster, node: usize, tx: &SignedTransaction) -> String {
    let (status, body) = c.submit(node, tx);
    assert_eq!(status, 202, "submit: {body}");
    let id = body["id"].as_str().expect("id").to_string();
    c.wait_final(node, &id, 60);
    id
}

fn screenshots_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("exe");
    // target/debug/deps/console-… → target/
    let target = exe.ancestors().nth(3).map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("target"));
    target.join("console-screenshots")
}

fn check_page(b: &mut Browser, what: &str) {
    let problems = b.take_problems();
    assert!(problems.is_empty(), "{what}: {problems:#?}\nbrowser log: {}", b.log.display());
}

/// Waits until the page `page` is rendered (no loading marker).
fn wait_page(b: &mut Browser, page: &str) {
    let expr = format!(
        "(() => {{ const m = document.querySelector('main'); return !!m && m.dataset.page === '{page}' && !m.querySelector(':scope > .loading'); }})()"
    );
    b.wait_for(&expr, 20).unwrap_or_else(|e| panic!("{e}; log: {}", b.log.display()));
}

fn text_of(b: &mut Browser, selector: &str) -> String {
    let sel = serde_json::to_string(selector).unwrap();
    b.eval(&format!("(document.querySelector({sel}) || {{}}).textContent || ''")).unwrap().as_str().unwrap_or_default().to_string()
}

// ---------------------------------------------------------------------------
// Tampering (the cases of ledger/tests/proof.rs `tamper_everything`, sampled)
// ---------------------------------------------------------------------------


/// A small deterministic generator (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Tampered variants of `file`, as (description, file text): each hex field's
/// bytes xor 0x01 / 0x80 at its first two, last two and some chosen positions, a
/// byte appended and one removed; numbers ±1 and xor 2^40; other strings one
/// character changed; each array element removed and the first duplicated; plus
/// whole-file format cases (missing, unknown and duplicated keys, trailing text,
/// a fractional number, an upper-case hash).
fn tampered(file: &Value, rng: &mut Rng) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let paths = json_leaves(file);
    let mut push = |what: String, v: &Value| out.push((what, v.to_string()));
    for (path, pointer) in &paths {
        if path.ends_with("[]") {
            let arr = file.pointer(pointer).unwrap().as_array().unwrap().clone();
            let base = path.trim_end_matches("[]");
            for i in 0..arr.len() {
                let mut v = file.clone();
                v.pointer_mut(pointer).unwrap().as_array_mut().unwrap().remove(i);
                push(format!("{base}: element {i} removed"), &v);
            }
            if let Some(first) = arr.first() {
                let mut v = file.clone();
                v.pointer_mut(pointer).unwrap().as_array_mut().unwrap().push(first.clone());
                push(format!("{base}: element 0 duplicated"), &v);
            }
            continue;
        }
        match file.pointer(pointer).unwrap() {
            Value::String(s) if s.len() % 2 == 0 && !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()) && path != "subject" => {
                let bytes = hex::decode(s).unwrap();
                let n = bytes.len();
                let mut positions: Vec<usize> = vec![0, 1.min(n - 1), n.saturating_sub(2), n - 1];
                for _ in 0..TAMPER_POSITIONS {
                    positions.push((rng.next() % n as u64) as usize);
                }
                positions.sort_unstable();
                positions.dedup();
                for i in positions {
                    for mask in [0x01u8, 0x80] {
                        let mut t = bytes.clone();
                        t[i] ^= mask;
                        let mut v = file.clone();
                        *v.pointer_mut(pointer).unwrap() = Value::String(hex::encode(&t));
                        push(format!("{path}: byte {i} ^ {mask:#04x}"), &v);
                    }
                }
                for (t, what) in [(format!("{s}00"), "byte appended"), (s[..s.len() - 2].to_string(), "byte removed")] {
                    let mut v = file.clone();
                    *v.pointer_mut(pointer).unwrap() = Value::String(t);
                    push(format!("{path}: {what}"), &v);
                }
                if s.len() == 64 && s.bytes().any(|b| b.is_ascii_alphabetic()) {
                    let mut v = file.clone();
                    *v.pointer_mut(pointer).unwrap() = Value::String(s.to_uppercase());
                    push(format!("{path}: upper case"), &v);
                }
            }
            Value::String(s) => {
                for i in 0..s.len() {
                    let mut t = s.clone().into_bytes();
                    t[i] = if t[i] == b'0' { b'1' } else { b'0' };
                    let mut v = file.clone();
                    *v.pointer_mut(pointer).unwrap() = Value::String(String::from_utf8(t).unwrap());
                    push(format!("{path}: character {i} changed"), &v);
                }
            }
            Value::Number(num) => {
                let n = num.as_u64().unwrap();
                for m in [n.wrapping_add(1), n.wrapping_sub(1), n ^ (1 << 40)] {
                    let mut v = file.clone();
                    *v.pointer_mut(pointer).unwrap() = Value::from(m);
                    push(format!("{path}: {n} -> {m}"), &v);
                }
            }
            _ => {}
        }
    }
    // Whole-file format cases.
    let text = file.to_string();
    let first_key = file.as_object().and_then(|m| m.keys().next().cloned()).unwrap_or_default();
    let mut v = file.clone();
    v.as_object_mut().unwrap().remove(&first_key);
    out.push((format!("{first_key} removed"), v.to_string()));
    let mut v = file.clone();
    v.as_object_mut().unwrap().insert("note".into(), Value::from("trust me"));
    out.push(("unknown key".into(), v.to_string()));
    let version = file["version"].as_u64().expect("a version");
    out.push(("duplicate key".into(), format!("{{\"version\":{version},{}", &text[1..])));
    out.push(("trailing text".into(), format!("{text} x")));
    let exact = format!("\"version\":{version}");
    assert!(text.contains(&exact), "the file's text holds {exact}");
    out.push(("fractional version".into(), text.replacen(&exact, &format!("{exact}.0"), 1)));
    out.push(("not JSON".into(), text[..text.len() / 2].to_string()));
    out
}

/// Tampered governance sections of `file` (its `"governance"` at `pointer`), as
/// (description, file text): each block dropped, each transaction dropped
/// (a truncated replay), neighbouring blocks and transactions swapped, a block
/// duplicated, headers swapped between blocks (a block at the wrong height),
/// positions moved, each precommit signature and each agency signature altered,
/// the membership hash of each header changed, an inclusion hash dropped, the
/// whole section emptied.
fn governance_tampers(file: &Value, pointer: &str) -> Vec<(String, String)> {
    let gov = file.pointer(pointer).expect("a governance section").as_array().expect("an array").clone();
    assert!(gov.len() >= 2, "the chain changed membership more than once");
    let mut out = Vec::new();
    let mut with = |what: String, f: &dyn Fn(&mut Vec<Value>)| {
        let mut v = file.clone();
        let g = v.pointer_mut(pointer).unwrap().as_array_mut().unwrap();
        f(g);
        out.push((what, v.to_string()));
    };
    let flip_last = |s: &Value| -> Value {
        let mut b = hex::decode(s.as_str().unwrap()).unwrap();
        *b.last_mut().unwrap() ^= 0x01;
        Value::from(hex::encode(b))
    };
    with("governance emptied".into(), &|g| g.clear());
    for i in 0..gov.len() {
        with(format!("governance[{i}] dropped"), &|g| {
            g.remove(i);
        });
        with(format!("governance[{i}] duplicated"), &|g| g.insert(i + 1, g[i].clone()));
        if i + 1 < gov.len() {
            with(format!("governance[{i}] and [{}] swapped", i + 1), &|g| g.swap(i, i + 1));
            with(format!("governance[{i}] and [{}] headers swapped", i + 1), &|g| {
                let h = g[i]["block"]["header"].clone();
                g[i]["block"]["header"] = g[i + 1]["block"]["header"].clone();
                g[i + 1]["block"]["header"] = h;
            });
        }
        // The last byte of the last precommit signature; the last byte of the header (its membership hash).
        with(format!("governance[{i}] precommit signature altered"), &|g| {
            g[i]["block"]["certificate"] = flip_last(&g[i]["block"]["certificate"]);
        });
        with(format!("governance[{i}] membership hash altered"), &|g| {
            g[i]["block"]["header"] = flip_last(&g[i]["block"]["header"]);
        });
        let txs = gov[i]["txs"].as_array().unwrap().len();
        for j in 0..txs {
            with(format!("governance[{i}].txs[{j}] dropped"), &|g| {
                g[i]["txs"].as_array_mut().unwrap().remove(j);
            });
            with(format!("governance[{i}].txs[{j}] signature altered"), &|g| {
                g[i]["txs"][j]["tx"] = flip_last(&g[i]["txs"][j]["tx"]);
            });
            for delta in [1i64, -1] {
                let p = gov[i]["txs"][j]["position"].as_i64().unwrap() + delta;
                if p >= 0 {
                    with(format!("governance[{i}].txs[{j}] position {delta:+}"), &|g| g[i]["txs"][j]["position"] = Value::from(p));
                }
            }
            if !gov[i]["txs"][j]["inclusion"].as_array().unwrap().is_empty() {
                with(format!("governance[{i}].txs[{j}] an inclusion hash dropped"), &|g| {
                    g[i]["txs"][j]["inclusion"].as_array_mut().unwrap().pop();
                });
            }
            if j + 1 < txs {
                with(format!("governance[{i}].txs[{j}] and [{}] swapped", j + 1), &|g| {
                    g[i]["txs"].as_array_mut().unwrap().swap(j, j + 1);
                });
            }
        }
    }
    out
}

fn json<T: serde::Serialize>(x: &T) -> Value {
    serde_json::to_value(x).expect("a proof file as JSON")
}

/// `tx_hex` with its signature (the last 64 bytes) replaced by `craft` made with `sk`.
fn crafted_tx(tx_hex: &str, sk: &SecretKey, craft: Craft, nonce: u8) -> String {
    let mut bytes = hex::decode(tx_hex).unwrap();
    let n = bytes.len() - 64;
    let sig = sign_crafted(sk, TAG_TRANSACTION, &bytes[..n], craft, &[nonce]);
    bytes[n..].copy_from_slice(&sig.0);
    hex::encode(bytes)
}

/// `cert_hex` with its first precommit signature replaced by `craft` made with
/// `sk` (the key of that signer) over the vote it stands for (docs/proofs.md §2).
fn crafted_certificate(cert_hex: &str, chain: &[u8; 32], sk: &SecretKey, craft: Craft, nonce: u8) -> String {
    let mut b = hex::decode(cert_hex).unwrap();
    // CommitCertificate { height u64, round u32, block_hash [32], signatures: u64 count, (u32 index, [64])... }
    let (height, round, block_hash, index) = (&b[0..8], &b[8..12], &b[12..44], &b[52..56]);
    let mut vote = chain.to_vec();
    vote.extend_from_slice(&1u32.to_be_bytes()); // Precommit
    vote.extend_from_slice(height);
    vote.extend_from_slice(round);
    vote.push(1); // Some(block hash)
    vote.extend_from_slice(block_hash);
    vote.extend_from_slice(index);
    let sig = sign_crafted(sk, yrd_consensus::messages::TAG_VOTE, &vote, craft, &[nonce]);
    b[56..120].copy_from_slice(&sig.0);
    hex::encode(b)
}

/// Runs `cases` through the page and the library; asserts they agree case by case
/// and that the library's verdict is `expect(i)` for case `i`. Returns the
/// page's verdicts.
fn agree(b: &mut Browser, name: &str, genesis: &Genesis, genesis_text: &str, cases: &[(String, String)], now_ms: u64, expect: &dyn Fn(usize) -> Option<&'static str>) -> Vec<String> {
    let texts: Vec<&str> = cases.iter().map(|(_, t)| t.as_str()).collect();
    let js = js_verdicts(b, &texts, genesis_text, now_ms);
    assert_eq!(js.len(), cases.len());
    let mut problems = Vec::new();
    for (i, ((what, text), js)) in cases.iter().zip(&js).enumerate() {
        let rust = rust_verdict(genesis, text, now_ms);
        let js_check = js.split(':').next().unwrap_or_default();
        if js_check != rust {
            problems.push(format!("{name} / {what}: yrd verify says {rust}, the page says {js}"));
        }
        if let Some(want) = expect(i) {
            if rust != want {
                problems.push(format!("{name} / {what}: yrd verify says {rust}, expected {want}"));
            }
        }
    }
    assert!(problems.is_empty(), "{} of {} cases (seed {TAMPER_SEED:#x}):\n{}", problems.len(), cases.len(), problems.join("\n"));
    js
}

/// The verify page on files of a chain whose membership changed by governance,
/// and on crafted signatures and weak keys: the page and `yrd verify` agree.
fn governance_and_crafted_cases(b: &mut Browser, dir: &Path, rng: &mut Rng) -> usize {
    let store = dir.join("changed-chain");
    let mut c = ChangedChain::build(&store).expect("build the changed chain");
    let genesis = &c.chain.genesis;
    let genesis_text = genesis.to_json_pretty();
    let genesis_path = dir.join("changed-genesis.json");
    std::fs::write(&genesis_path, &genesis_text).unwrap();
    // Judged at a fixed time (the chain's blocks are dated by TestChain::block_time_ms).
    let now_ms = 1_900_000_000_000;
    let files: Vec<(&str, Value)> = vec![
        ("gov-bundle-frozen-issuer", json(&proof::bundle(&c.ledger, &c.before_freeze).unwrap())),
        ("gov-bundle-revoked-by-rotated-key", json(&proof::bundle(&c.ledger, &c.revoked).unwrap())),
        ("gov-report", json(&proof::report(&c.ledger, &yrd_ledger::uscc::Uscc::sample(1)).unwrap())),
        ("gov-trace", json(&proof::trace(&c.ledger, &c.revoked).unwrap())),
        ("gov-consistency", json(&proof::consistency(&c.ledger, Height(1), Height(17)).unwrap())),
    ];
    // A query audit file (§4.2) on top: lender 0 authorised for subject 1 in block
    // 18, its signed read recorded by shanghai in block 19.
    let s1 = Uscc::sample(1);
    let auth = c.chain.authorisation(0, 1, s1, Purpose::LoanApplication, TestChain::block_time_ms(18) + 30 * 24 * 3600 * 1000);
    c.chain.commit_next_with(&mut c.ledger, vec![auth.clone()], &c.new_validator_keys).expect("block 18");
    let served_ms = TestChain::block_time_ms(18);
    let path = format!("/v1/subjects/{s1}/attestations");
    let node = c.chain.validator_keys[0].public();
    let request = SignedRequest::sign(&c.chain.lender_keys[0], &c.chain.chain, &node, "GET", &path, b"", served_ms, Nonce([7; 16])).unwrap();
    let entry = QueryEntry { request, subject: s1, authorisation: auth.id().unwrap(), response: sha256(&[b"answer"]), served_at_ms: served_ms, height: 18 };
    let record = c.chain.sign_with(&c.chain.validator_keys[0], 1, TxBody::RecordQueries(QueryRecords { entries: vec![entry] }));
    c.chain.commit_next_with(&mut c.ledger, vec![record], &c.new_validator_keys).expect("block 19");
    let audit = json(&query_audit(&c.ledger, &s1, Height(1), &|_, _, _| true).unwrap());
    assert_eq!(audit["records"].as_array().unwrap().len(), 1, "{audit}");
    let mut files = files;
    files.push(("gov-query-audit", audit));
    let mut total = 0;
    for (i, (name, file)) in files.iter().enumerate() {
        let pointer = if *name == "gov-trace" { "/current/governance" } else { "/governance" };
        assert_eq!(file.pointer(pointer).unwrap().as_array().unwrap().len(), 8, "{name}: the five changes' eight blocks (2-7, 10, 11)");
        eprintln!("{name}: {} bytes", file.to_string().len());
        let mut cases: Vec<(String, String)> = vec![("honest".into(), file.to_string())];
        cases.extend(governance_tampers(file, pointer));
        // The generic tampers on two files, sampled (each case replays eight
        // governance blocks; all 2,000 of the bundle's took 40 s): every kind of
        // field of the governance section, and of a query audit.
        if i == 0 || *name == "gov-query-audit" {
            cases.extend(tampered(file, rng).into_iter().step_by(GOV_TAMPER_STRIDE));
        }
        let started = std::time::Instant::now();
        let js = agree(b, name, genesis, &genesis_text, &cases, now_ms, &|k| if k == 0 { Some("verified") } else { None });
        let rejected = cases.len() - 1;
        // Every tamper is a real change: the library rejects it (checked in agree's
        // comparison: the page said the same). Count the governance ones.
        // A query audit does not prove its list complete (docs/proofs.md §4.2): the
        // file without its one record is a valid (empty) listing, for both.
        let complete_list_not_proven = |w: &str| *name == "gov-query-audit" && w == "records: element 0 removed";
        let accepted: Vec<&str> = cases
            .iter()
            .zip(&js)
            .skip(1)
            .filter(|((w, _), v)| *v == "verified" && !complete_list_not_proven(w))
            .map(|((w, _), _)| w.as_str())
            .collect();
        assert!(accepted.is_empty(), "{name}: tampered files accepted by both: {accepted:?}");
        eprintln!(
            "{name}: {} cases in {:.1} s: the honest file verified by both, {rejected} tampered ones rejected by both naming the same check (or, for the query audit without its record, accepted by both)",
            cases.len(),
            started.elapsed().as_secs_f64()
        );
        // The CLI itself on the honest file and some tampered ones.
        for (k, (what, text)) in cases.iter().enumerate().step_by((cases.len() / 3).max(1)) {
            let p = dir.join(format!("{name}-{k}.json"));
            std::fs::write(&p, text).unwrap();
            let cli = cli_verdict(&p, &genesis_path, now_ms);
            assert_eq!(js[k].split(':').next().unwrap_or_default(), cli, "{name} / {what}: page vs yrd verify");
        }
        total += cases.len();
    }
    // A query audit's subject is read as people type it (Uscc::parse, docs/proofs.md
    // §4.2 step 1), unlike a report's: both readers normalise alike.
    let (audit_name, audit) = files.last().unwrap();
    let typed = s1.as_str();
    let subjects: [(String, &'static str); 6] = [
        (typed.to_lowercase(), "verified"),
        (format!("{}-{}", &typed[..9], &typed[9..]), "verified"),
        (format!(" \t{typed}\r\n"), "verified"),
        (format!("{}\t{}", &typed[..9], &typed[9..]), "format"),
        (format!("{}\u{ff10}", &typed[..17]), "format"),
        (format!("{typed}0"), "format"),
    ];
    let cases: Vec<(String, String)> = subjects
        .iter()
        .map(|(sub, _)| {
            let mut v = audit.clone();
            v["subject"] = Value::from(sub.clone());
            (format!("subject {sub:?}"), v.to_string())
        })
        .collect();
    agree(b, audit_name, genesis, &genesis_text, &cases, now_ms, &|k| Some(subjects[k].1));
    total += cases.len();

    // The honest bundle's verdict in the page: the changes and the frozen key, as `yrd verify --json` gives them.
    let v = b
        .eval(&format!(
            "(async () => {{ const m = await import('/console/verify.js'); const r = await m.verifyFile({}, {}, {now_ms}); return r.verdict; }})()",
            serde_json::to_string(&files[0].1.to_string()).unwrap(),
            serde_json::to_string(&genesis_text).unwrap()
        ))
        .expect("verdict");
    let p = dir.join("gov-bundle.json");
    std::fs::write(&p, files[0].1.to_string()).unwrap();
    let o = Command::new(yrd_bin())
        .args(["verify", p.to_str().unwrap(), "--genesis", genesis_path.to_str().unwrap(), "--json", "--at", &now_ms.to_string()])
        .output()
        .unwrap();
    let cli: Value = serde_json::from_slice(&o.stdout).expect("yrd verify --json");
    let cli = &cli["verdict"];
    assert_eq!(v["attestation"]["issuer"]["retired"], serde_json::json!({"reason": "frozen", "since": 8}), "{v}");
    assert_eq!(v["attestation"]["issuer"], cli["attestation"]["issuer"]);
    assert_eq!(v["anchor"]["signers"], cli["anchor"]["signers"], "the anchor's signers: the validators the changes lead to");
    assert_eq!(v["governance"].as_array().unwrap().len(), 5);
    for k in 0..5 {
        for f in ["proposal", "proposer", "summary", "approved_at", "effective", "changes"] {
            assert_eq!(v["governance"][k][f], cli["governance"][k][f], "governance[{k}].{f}");
        }
    }

    // Crafted Ed25519 signatures (consensus/src/adversary.rs): each breaks the
    // signature rule in its own way; the page rejects each as `yrd verify` does.
    let bundle = &files[0].1;
    let mut cases: Vec<(String, String)> = Vec::new();
    let mut expected: Vec<&'static str> = Vec::new();
    for (n, craft) in Craft::all().into_iter().enumerate() {
        let nonce = n as u8;
        // The attestation (issuer 1's first key, in force at its height).
        let mut v = bundle.clone();
        v["attestation"]["tx"] = Value::from(crafted_tx(bundle["attestation"]["tx"].as_str().unwrap(), &c.chain.issuer_keys[1], craft, nonce));
        cases.push((format!("attestation signed {craft:?}"), v.to_string()));
        expected.push("issuer-signature");
        // A proposal (agency 0's key).
        let mut v = bundle.clone();
        v["governance"][0]["txs"][0]["tx"] =
            Value::from(crafted_tx(bundle["governance"][0]["txs"][0]["tx"].as_str().unwrap(), &c.chain.agency_keys[0], craft, nonce));
        cases.push((format!("proposal signed {craft:?}"), v.to_string()));
        expected.push("governance");
        // A precommit of the first governance block (genesis validators).
        let cert = bundle["governance"][0]["block"]["certificate"].as_str().unwrap();
        let signer = u32::from_be_bytes(hex::decode(cert).unwrap()[52..56].try_into().unwrap()) as usize;
        let mut v = bundle.clone();
        v["governance"][0]["block"]["certificate"] = Value::from(crafted_certificate(cert, &c.chain.chain.0, &c.chain.validator_keys[signer], craft, nonce));
        cases.push((format!("precommit signed {craft:?}"), v.to_string()));
        expected.push("certificate");
    }
    agree(b, "crafted signatures", genesis, &genesis_text, &cases, now_ms, &|k| Some(expected[k]));
    for (k, (what, text)) in cases.iter().enumerate().filter(|(_, (w, _))| w.contains("NonCanonicalS") || w.contains("SmallOrderR(0)")) {
        let p = dir.join(format!("crafted-{k}.json"));
        std::fs::write(&p, text).unwrap();
        assert_eq!(cli_verdict(&p, &genesis_path, now_ms), expected[k], "{what}: yrd verify");
    }
    eprintln!("crafted signatures: {} cases, each rejected by both with the same check", cases.len());
    total += cases.len();

    // Weak keys (small order, non-canonical, mixed order) in the genesis: both refuse it.
    let honest = bundle.to_string();
    let mut weak = 0;
    for (what, key) in weak_keys(&c.chain.issuer_keys[0]) {
        let mut g: Value = serde_json::from_str(&genesis_text).unwrap();
        g["issuers"][0]["key"] = Value::from(key.to_hex());
        let text = g.to_string();
        assert!(Genesis::from_json(text.as_bytes()).is_err(), "{what} key {}: the library refuses the genesis", key.to_hex());
        let js = js_verdicts(b, &[honest.as_str()], &text, now_ms);
        assert!(js[0].starts_with("genesis:"), "{what} key {}: the page says {}", key.to_hex(), js[0]);
        weak += 1;
    }
    eprintln!("weak genesis keys: {weak}, each refused by both");
    total + weak
}

/// The library's verdict (what `yrd verify` prints): "verified" or the check.
fn rust_verdict(genesis: &yrd_ledger::genesis::Genesis, text: &str, now_ms: u64) -> String {
    match proof::parse_file(text.as_bytes()).and_then(|f| proof::verify_file(genesis, &f, now_ms)) {
        Ok(_) => "verified".into(),
        Err(e) => e.check.as_str().to_string(),
    }
}

/// The page's verdicts for `files`, in order: "verified" or "check: error".
fn js_verdicts(b: &mut Browser, files: &[&str], genesis: &str, now_ms: u64) -> Vec<String> {
    let mut out = Vec::new();
    for chunk in files.chunks(JS_BATCH) {
        let expr = format!(
            "(async () => {{ const m = await import('/console/verify.js'); const g = {}; const out = []; \
             for (const f of {}) {{ const r = await m.verifyFile(f, g, {now_ms}); out.push(r.verified ? 'verified' : r.check + ': ' + r.error); }} \
             return out; }})()",
            serde_json::to_string(genesis).unwrap(),
            serde_json::to_string(chunk).unwrap()
        );
        let v = b.eval(&expr).expect("verify.js");
        out.extend(v.as_array().expect("array").iter().map(|x| x.as_str().unwrap_or_default().to_string()));
    }
    out
}

fn cli_verdict(file: &Path, genesis: &Path, now_ms: u64) -> String {
    let o = Command::new(yrd_bin())
        .args(["verify", file.to_str().unwrap(), "--genesis", genesis.to_str().unwrap(), "--json", "--at", &now_ms.to_string()])
        .output()
        .expect("yrd verify");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    match (o.status.code(), v["verified"].as_bool()) {
        (Some(0), Some(true)) => "verified".into(),
        (Some(1), Some(false)) => v["check"].as_str().unwrap_or("?").to_string(),
        other => format!("exit {other:?}: {}", String::from_utf8_lossy(&o.stderr)),
    }
}

// ---------------------------------------------------------------------------

#[test]
fn the_console_in_a_real_browser_against_a_live_testnet() {
    let Some(chromium) = find_chromium() else {
        eprintln!("SKIPPED: no chromium binary on PATH (apt-get install chromium, or set YRD_CHROMIUM)");
        return;
    };
    let mut c = Cluster::start(4);
    for i in 0..4 {
        c.wait_height(i, 1, 60);
    }
    let (s1, s2) = (Uscc::sample(701), Uscc::sample(702));
    let tx = c.chain.attestation(0, 1, s1, AttestationKind::RedList);
    let a = submit_final(&mut c, 0, &tx);
    let tx = c.chain.attestation(1, 1, s1, AttestationKind::CourtEnforcement);
    let b_id = submit_final(&mut c, 1, &tx);
    let tx = c.chain.revocation(1, 2, TxId::from_hex(&b_id).unwrap(), RevocationReason::Repair);
    let rev = submit_final(&mut c, 2, &tx);
    // Restricted by default (docs/access.md): the console, anonymous, sees its commitment only.
    let tx = c.chain.attestation(2, 1, s1, AttestationKind::TaxCredit);
    let restricted = submit_final(&mut c, 3, &tx);
    let base = c.nodes[0].api.clone();
    let shots = screenshots_dir();

    // The assets: types, CSP, caching, JSON 404.
    let agent = ureq::Agent::new_with_defaults();
    let resp = agent.get(format!("{base}/console")).call().expect("GET /console");
    let h = resp.headers();
    assert_eq!(h.get("content-type").unwrap(), "text/html; charset=utf-8");
    let csp = h.get("content-security-policy").unwrap().to_str().unwrap().to_string();
    assert!(csp.contains("default-src 'self'") && csp.contains("script-src 'self'") && !csp.contains("unsafe"), "{csp}");
    let etag = h.get("etag").expect("etag").to_str().unwrap().to_string();
    assert_eq!(h.get("cache-control").unwrap(), "no-cache");
    let again = agent.get(format!("{base}/console")).header("if-none-match", &etag).call().expect("revalidate");
    assert_eq!(again.status().as_u16(), 304);
    for (asset, ty) in [("app.js", "text/javascript"), ("verify.js", "text/javascript"), ("style.css", "text/css")] {
        let r = agent.get(format!("{base}/console/{asset}")).call().expect(asset);
        assert!(r.headers().get("content-type").unwrap().to_str().unwrap().starts_with(ty), "{asset}");
    }
    let (status, body) = c.get(0, "/console/nope.js").expect("404");
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")), "{body}");

    let mut br = Browser::start(&chromium, 1366, 768).expect("start chromium");
    eprintln!("chromium pid {} (log {})", br.pid(), br.log.display());

    // Chain page: height, validators with region and liveness, recent blocks, charts.
    br.navigate(&format!("{base}/console")).unwrap();
    wait_page(&mut br, "chain");
    br.wait_for("document.querySelectorAll('#validators tbody tr').length === 4", 10).unwrap();
    let vals = text_of(&mut br, "#validators");
    for region in ["SH", "JS", "ZJ", "AH"] {
        assert!(vals.contains(region), "{vals}");
    }
    assert!(!vals.contains("missing"), "every validator is connected: {vals}");
    br.wait_for("document.querySelectorAll('#recent-blocks tbody tr').length >= 2", 10).unwrap();
    // Traffic while the page samples /metrics (every 2 s) until both charts have
    // points: the latency chart needs commits in two sampling intervals, which a
    // fixed burst may not span on a loaded machine.
    let s3 = Uscc::sample(703);
    let charts = "!!document.querySelector('#chart-tps polyline') && !!document.querySelector('#chart-latency polyline')";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    for seq in 1.. {
        let tx = c.chain.attestation(3, seq, s3, AttestationKind::RedList);
        let (status, body) = c.submit(seq as usize % 4, &tx);
        assert_eq!(status, 202, "{body}");
        if seq >= 6 && br.eval(charts).unwrap() == Value::Bool(true) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "charts not drawn after {seq} attestations in 60 s");
        std::thread::sleep(std::time::Duration::from_millis(400));
    }
    br.screenshot(&shots.join("chain.png")).unwrap();
    check_page(&mut br, "chain page");

    // Keyboard: the search box takes a USCC as people type it (lower case, hyphens).
    br.eval("document.getElementById('q').focus()").unwrap();
    let typed = format!("{}-{}", &s1.as_str()[..9].to_lowercase(), &s1.as_str()[9..]);
    br.type_text(&typed).unwrap();
    // The chain keeps growing (a block a second when idle): the page's
    // completeness height lies between the tip before it loads and `yrd query`'s after.
    let before_page = c.height(0).unwrap();
    br.press("Enter").unwrap();
    wait_page(&mut br, "subject");
    assert_eq!(br.eval("location.hash").unwrap(), format!("#/subject/{s1}"));

    // Subject page: exactly the records (and redacted commitments) `yrd query` lists.
    let o = Command::new(yrd_bin()).args(["query", "--node", &base, "--subject", s1.as_str(), "--json"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let q: Value = serde_json::from_slice(&o.stdout).unwrap();
    let cli_list: Vec<String> = q["attestations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().map(str::to_string).unwrap_or_else(|| format!("redacted:{}", r["commitment"].as_str().unwrap_or("?"))))
        .collect();
    let page_list: Vec<String> = serde_json::from_value(
        br.eval("[...document.querySelectorAll('#subject-records tbody tr')].map(r => r.dataset.id || ('redacted:' + r.dataset.redacted))").unwrap(),
    )
    .unwrap();
    assert_eq!(page_list, cli_list, "subject page vs yrd query --subject");
    assert_eq!(page_list.len(), 3);
    assert!(page_list.contains(&a) && page_list.contains(&b_id) && !page_list.contains(&restricted));
    let page_height: u64 = text_of(&mut br, "#complete-height").parse().expect("a height on the subject page");
    let cli_height = q["height"].as_u64().unwrap();
    assert!(
        (before_page..=cli_height).contains(&page_height),
        "completeness height {page_height} on the page, not within {before_page}..={cli_height} (tip before it, yrd query after it)"
    );
    assert!(br.eval("!!document.querySelector('#subject-timeline circle')").unwrap() == Value::Bool(true));
    br.screenshot(&shots.join("subject.png")).unwrap();
    check_page(&mut br, "subject page");

    // A real mouse click on the revoked record's link: the record page.
    br.click(&format!("#subject-records tr[data-id='{b_id}'] a[href^='#/record/']")).unwrap();
    wait_page(&mut br, "record");
    let timeline = text_of(&mut br, "#timeline");
    assert!(timeline.contains("revoked by") && timeline.contains("credit repair"), "{timeline}");
    assert!(br.eval(&format!("!!document.querySelector(\"#timeline a[href='#/record/{rev}']\")")).unwrap() == Value::Bool(true));
    let signers = text_of(&mut br, "#record-signers");
    assert!(signers.contains("SH") || signers.contains("JS"), "{signers}");
    br.screenshot(&shots.join("record.png")).unwrap();
    check_page(&mut br, "record page");

    // Block page by keyboard: type the height in the search box.
    let height = c.get(0, &format!("/v1/attestations/{b_id}")).unwrap().1["height"].as_u64().unwrap();
    br.eval("document.getElementById('q').focus()").unwrap();
    br.type_text(&height.to_string()).unwrap();
    br.press("Enter").unwrap();
    wait_page(&mut br, "block");
    assert!(br.eval(&format!("!!document.querySelector(\"#block-txs tr[data-id='{b_id}']\")")).unwrap() == Value::Bool(true));
    let signed = br.eval("document.querySelectorAll('#signers li[data-signer]').length").unwrap().as_u64().unwrap();
    assert!(signed >= 3, "a quorum of 4 signed: {signed}");
    br.screenshot(&shots.join("block.png")).unwrap();
    check_page(&mut br, "block page");
    // Tab reaches the "previous block" link, Enter follows it.
    br.eval("(() => { const h = document.querySelector('main h1'); h.setAttribute('tabindex', '-1'); h.focus(); return true; })()").unwrap();
    let mut reached = false;
    for _ in 0..40 {
        br.press("Tab").unwrap();
        if br.eval("document.activeElement && document.activeElement.id").unwrap() == "prev-block" {
            reached = true;
            break;
        }
    }
    assert!(reached, "Tab reaches the previous-block link");
    assert_eq!(br.eval("getComputedStyle(document.activeElement).outlineStyle").unwrap(), "solid", "focus is visible");
    br.press("Enter").unwrap();
    br.wait_for(&format!("location.hash === '#/block/{}'", height - 1), 10).unwrap();
    wait_page(&mut br, "block");
    check_page(&mut br, "previous block");

    // A restricted record: the API refuses it (403) and the page says so.
    br.navigate(&format!("{base}/console#/record/{restricted}")).unwrap();
    wait_page(&mut br, "record");
    assert!(text_of(&mut br, "main").contains("restricted"), "{}", text_of(&mut br, "main"));
    let problems = br.take_problems();
    assert!(problems.iter().all(|p| p.what.contains("403")), "only the API's 403: {problems:#?}");

    // Language: Chinese, remembered across a reload, then back.
    br.navigate(&format!("{base}/console#/subject/{s1}")).unwrap();
    wait_page(&mut br, "subject");
    br.click("#lang").unwrap();
    br.wait_for("document.documentElement.lang === 'zh-CN'", 10).unwrap();
    wait_page(&mut br, "subject");
    assert!(text_of(&mut br, "main").contains("截至高度"), "{}", text_of(&mut br, "main"));
    br.navigate(&format!("{base}/console#/chain")).unwrap();
    wait_page(&mut br, "chain");
    assert!(text_of(&mut br, "main h1").contains("链"), "language remembered");
    br.screenshot(&shots.join("chain-zh.png")).unwrap();
    br.click("#lang").unwrap();
    br.wait_for("document.documentElement.lang === 'en'", 10).unwrap();
    wait_page(&mut br, "chain");
    check_page(&mut br, "language toggle");

    // Files to verify, fetched as an anonymous caller.
    let dir = c.path().to_path_buf();
    let genesis_text = std::fs::read_to_string(&c.genesis_path).unwrap();
    let tip = c.height(0).unwrap();
    let files: Vec<(&str, Value)> = vec![
        ("bundle-revoked", c.get(0, &format!("/v1/proofs/attestations/{b_id}")).unwrap().1),
        ("bundle-active", c.get(1, &format!("/v1/proofs/attestations/{a}")).unwrap().1),
        ("report", c.get(2, &format!("/v1/proofs/subjects/{s1}")).unwrap().1),
        ("report-absent", c.get(3, &format!("/v1/proofs/subjects/{s2}")).unwrap().1),
        // The middle record of three alone: a page with a range proof on both sides.
        ("report-page", c.get(2, &format!("/v1/proofs/subjects/{s1}?from=1&limit=1")).unwrap().1),
        ("trace", c.get(0, &format!("/v1/audit/attestations/{b_id}")).unwrap().1),
        ("consistency", c.get(0, &format!("/v1/proofs/consistency?from=1&to={tip}")).unwrap().1),
    ];
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;

    // The verify page, through its form: honest bundle accepted, a tampered one
    // rejected naming the same check as `yrd verify`.
    br.navigate(&format!("{base}/console#/verify")).unwrap();
    wait_page(&mut br, "verify");
    let bundle_path = dir.join("bundle-revoked.json");
    std::fs::write(&bundle_path, files[0].1.to_string()).unwrap();
    br.set_files("#verify-file", &[&bundle_path]).unwrap();
    br.set_files("#verify-genesis", &[&c.genesis_path]).unwrap();
    br.click("#verify-run").unwrap();
    br.wait_for("!!document.querySelector('#verdict')", 20).unwrap();
    assert_eq!(br.eval("document.querySelector('#verdict').dataset.verdict").unwrap(), "accept", "{}", text_of(&mut br, "#verify-out"));
    assert!(text_of(&mut br, "#verdict").contains("revoked"));
    br.screenshot(&shots.join("verify.png")).unwrap();
    let mut bad = files[0].1.clone();
    // The last byte of the last precommit signature, flipped.
    let mut cert = hex::decode(bad["anchor"]["certificate"].as_str().unwrap()).unwrap();
    *cert.last_mut().unwrap() ^= 0x01;
    bad["anchor"]["certificate"] = Value::from(hex::encode(&cert));
    let bad_path = dir.join("bundle-tampered.json");
    std::fs::write(&bad_path, bad.to_string()).unwrap();
    br.set_files("#verify-file", &[&bad_path]).unwrap();
    br.click("#verify-run").unwrap();
    br.wait_for("document.querySelector('#verdict') && document.querySelector('#verdict').dataset.verdict === 'reject'", 20).unwrap();
    let page_check = br.eval("document.querySelector('#verdict').dataset.check").unwrap();
    assert_eq!(page_check, "certificate");
    assert_eq!(page_check, cli_verdict(&bad_path, &c.genesis_path, now_ms), "page vs yrd verify on a forged certificate");
    br.screenshot(&shots.join("verify-rejected.png")).unwrap();
    check_page(&mut br, "verify page");

    // verify.js against the library `yrd verify` runs, case by case.
    let mut rng = Rng(TAMPER_SEED);
    let mut total = 0;
    for (name, file) in &files {
        let mut cases: Vec<(String, String)> = vec![("honest".into(), file.to_string())];
        cases.extend(tampered(file, &mut rng));
        let texts: Vec<&str> = cases.iter().map(|(_, t)| t.as_str()).collect();
        let js = js_verdicts(&mut br, &texts, &genesis_text, now_ms);
        assert_eq!(js.len(), cases.len());
        let mut disagreements = Vec::new();
        let mut rejected = 0;
        let mut accepted = Vec::new();
        for ((what, text), js) in cases.iter().zip(&js) {
            let rust = rust_verdict(&c.chain.genesis, text, now_ms);
            let js_check = js.split(':').next().unwrap_or_default();
            if rust != "verified" {
                rejected += 1;
            } else if what != "honest" {
                accepted.push(what.as_str());
            }
            if js_check != rust {
                disagreements.push(format!("{name} / {what}: yrd verify says {rust}, the page says {js}"));
            }
        }
        assert_eq!(js[0], "verified", "{name}: the honest file verifies in the page");
        assert!(accepted.is_empty(), "{name}: every variant is a real change that yrd verify rejects: {accepted:?}");
        assert!(
            disagreements.is_empty(),
            "{} of {} cases disagree (seed {TAMPER_SEED:#x}):\n{}",
            disagreements.len(),
            cases.len(),
            disagreements.join("\n")
        );
        eprintln!("{name}: {} cases: the honest file verified by both, {rejected} tampered ones rejected by both naming the same check", cases.len());
        total += cases.len();
        // The CLI itself on the honest file and a few tampered ones.
        for (i, (what, text)) in cases.iter().enumerate().step_by((cases.len() / 4).max(1)) {
            let p = dir.join(format!("{name}-{i}.json"));
            std::fs::write(&p, text).unwrap();
            let cli = cli_verdict(&p, &c.genesis_path, now_ms);
            assert_eq!(js[i].split(':').next().unwrap_or_default(), cli, "{name} / {what}: page vs yrd verify");
        }
    }
    assert!(total > 500, "only {total} cases");
    check_page(&mut br, "verifier runs");

    // A chain whose membership changed: the replay, tampered sections, crafted
    // signatures and weak keys, page and library case by case.
    let gov_cases = governance_and_crafted_cases(&mut br, &dir, &mut rng);
    assert!(gov_cases > 500, "only {gov_cases} governance and crafted cases");
    // Through the form: the changes in force shown with the verdict.
    br.navigate(&format!("{base}/console#/verify")).unwrap();
    wait_page(&mut br, "verify");
    br.set_files("#verify-file", &[&dir.join("gov-bundle.json")]).unwrap();
    br.set_files("#verify-genesis", &[&dir.join("changed-genesis.json")]).unwrap();
    br.click("#verify-run").unwrap();
    br.wait_for("!!document.querySelector('#verdict')", 20).unwrap();
    assert_eq!(br.eval("document.querySelector('#verdict').dataset.verdict").unwrap(), "accept", "{}", text_of(&mut br, "#verify-out"));
    let shown = text_of(&mut br, "#verdict-governance");
    assert!(shown.contains("add validator suzhou") && shown.contains("remove validator zhejiang"), "{shown}");
    br.screenshot(&shots.join("verify-governance.png")).unwrap();
    check_page(&mut br, "verify page, governance");
    let outside: Vec<String> =
        br.requests().into_iter().filter(|u| !u.starts_with(&base) && !u.starts_with("data:") && !u.starts_with("about:")).collect();
    assert!(outside.is_empty(), "requests to anything but the node: {outside:?}");
    eprintln!("screenshots in {}", shots.display());
}
