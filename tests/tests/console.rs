//! The web console (docs/console.md) in a real headless Chromium against a live
//! four-validator testnet: every page loads without console errors or failed
//! requests and asks nothing of any host but the node; navigation works by mouse
//! and keyboard; the subject page lists exactly what `yrd query --subject` lists;
//! the verify page (node/console/verify.js) gives the verdict `yrd verify` gives,
//! for honest files and for every tampered variant, case by case.
//!
//! Skips (printing why) when no Chromium binary is found (`chromium` on PATH, or
//! `$YRD_CHROMIUM`). Screenshots of each page go to `target/console-screenshots/`.
//! One cluster, one browser; the tamper seed is fixed and printed on failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use yrd_ledger::proof;
use yrd_ledger::tx::{AttestationKind, RevocationReason, SignedTransaction, TxId};
use yrd_ledger::uscc::Uscc;
use yrd_tests::chromium::{find_chromium, Browser};
use yrd_tests::{yrd_bin, Cluster};

/// Seed of the choice of tampered bytes (printed on failure).
const TAMPER_SEED: u64 = 0x5eed_c0de;
/// Byte positions tampered per hex field (plus the first and last two).
const TAMPER_POSITIONS: usize = 6;
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

/// Every leaf of a JSON value: (path, JSON pointer); arrays also as `path[]`.
fn leaves(v: &Value, path: String, pointer: String, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                leaves(x, p, format!("{pointer}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                leaves(x, format!("{path}[{i}]"), format!("{pointer}/{i}"), out);
            }
            out.push((format!("{path}[]"), pointer));
        }
        _ => out.push((path, pointer)),
    }
}

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
    let mut paths = Vec::new();
    leaves(file, String::new(), String::new(), &mut paths);
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
    // Some traffic while the page samples /metrics: both charts get points.
    let s3 = Uscc::sample(703);
    for seq in 1..=6 {
        let tx = c.chain.attestation(3, seq, s3, AttestationKind::RedList);
        let (status, body) = c.submit(seq as usize % 4, &tx);
        assert_eq!(status, 202, "{body}");
        std::thread::sleep(std::time::Duration::from_millis(400));
    }
    br.wait_for("!!document.querySelector('#chart-tps polyline') && !!document.querySelector('#chart-latency polyline')", 20).unwrap();
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
    let outside: Vec<String> =
        br.requests().into_iter().filter(|u| !u.starts_with(&base) && !u.starts_with("data:") && !u.starts_with("about:")).collect();
    assert!(outside.is_empty(), "requests to anything but the node: {outside:?}");
    eprintln!("screenshots in {}", shots.display());
}
