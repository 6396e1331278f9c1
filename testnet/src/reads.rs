//! `yrd-testnet reads`: authorised subject reports as fast as one node serves
//! them (issue 11's read benchmark, BENCHMARKS.md "Authorised queries").
//!
//! * Setup: `--subjects` sample enterprises each get six attestations (three of
//!   restricted kinds: tax credit, commitment, credit rating; three public) from
//!   the four issuers, and the testnet's lender (`DIR/lender.key`) records an
//!   authorisation (授权) for each; all of it is waited for until final.
//! * Reads: `--threads` client threads ask one node (`--node`) back to back for
//!   `GET /v1/proofs/subjects/{uscc}` (the subject report with its proofs),
//!   each request signed by the lender (docs/access.md): the node checks the
//!   signature and the replay cache, looks the authorisation up, serves the
//!   restricted records, queues a query record and returns a signed receipt. A
//!   read counts as served only if it is `200` with the `X-YRD-Receipt` header.
//! * Afterwards it waits (bounded) for the node's query records to be final and
//!   counts them through `GET /v1/audit/queries/{uscc}` (signed by the lender,
//!   who sees its own entries): every served read must be recorded on chain.
//!
//! Run it next to `yrd-testnet bench --rate 1000 …` (or `load`) to measure
//! reads while the chain carries writes.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use yrd_consensus::crypto::{sha256, SecretKey};
use yrd_ledger::consent::{Authorisation, Purpose};
use yrd_ledger::queries::{Nonce, SignedRequest};
use yrd_ledger::tx::{Transaction, TxBody};
use yrd_ledger::uscc::Uscc;

use crate::api::Api;
use crate::load::{load_attestation, load_chain};
use crate::setup::now_ms;
use crate::stats::percentile;

/// Sample indexes of the read benchmark's enterprises: far from the load's
/// (`0..100_000`), so their reports hold exactly the records set up here.
const SUBJECT_BASE: u64 = 10_000_000;
/// Attestations set up per enterprise (`load_attestation`'s six kinds in turn).
const RECORDS_PER_SUBJECT: u64 = 6;
/// Longest wait for the setup's transactions and the query records to be final.
const FINAL_WAIT: Duration = Duration::from_secs(120);

#[derive(clap::Args, Debug, Clone)]
pub struct ReadsArgs {
    /// The testnet to read from (its testnet.json; the lender key is DIR/lender.key next to it)
    #[arg(long)]
    pub testnet: PathBuf,
    /// The node to read from (index into testnet.json's nodes)
    #[arg(long, default_value_t = 0)]
    pub node: usize,
    /// Enterprises to read about (each gets 6 attestations and an authorisation)
    #[arg(long, default_value_t = 32)]
    pub subjects: u64,
    /// Client threads reading back to back
    #[arg(long, default_value_t = 8)]
    pub threads: usize,
    /// How long to read, in seconds
    #[arg(long, default_value_t = 30.0)]
    pub duration: f64,
    /// The lender's key file (default: lender.key next to testnet.json)
    #[arg(long)]
    pub lender_key: Option<PathBuf>,
    /// Print the report as one JSON line at the end
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReadsReport {
    pub node: String,
    pub subjects: u64,
    pub threads: usize,
    pub duration_s: f64,
    /// `200` answers carrying a signed receipt.
    pub served: u64,
    pub served_per_s: f64,
    /// Answers of any other status (by status), and transport errors.
    pub refused: Vec<(u16, u64)>,
    pub errors: u64,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// Mean size of a report.
    pub mean_bytes: u64,
    /// Query entries of this lender about these subjects found on chain after
    /// the run (the setup's reads included: none are made).
    pub recorded: u64,
    /// Seconds after the last read until `recorded` reached `served` (or the wait ended).
    pub record_wait_s: f64,
}

pub fn run(args: &ReadsArgs) -> Result<ReadsReport> {
    if args.subjects == 0 || args.threads == 0 || !(args.duration > 0.0 && args.duration.is_finite()) {
        bail!("--subjects, --threads and --duration must be positive");
    }
    let chain = load_chain(&args.testnet)?;
    let base = chain.apis.get(args.node).cloned().with_context(|| {
        format!("--node {}: {} lists {} nodes", args.node, args.testnet.display(), chain.apis.len())
    })?;
    let key_path = match &args.lender_key {
        Some(p) => p.clone(),
        None => args.testnet.parent().unwrap_or(std::path::Path::new(".")).join("lender.key"),
    };
    let lender = yrd_node::keys::read_key_file(&key_path)
        .with_context(|| format!("the lender's key ({})", key_path.display()))?;
    // Setup reads its transactions back as their issuers (their own records: no
    // query record) and the lender (its own authorisations), so that the only
    // query records of this lender are those of the measured reads.
    let readers: Vec<SecretKey> = chain.issuers.iter().cloned().chain([lender.clone()]).collect();
    let api = Api::new(&base, Duration::from_secs(30)).with_readers(readers, chain.chain);
    let subjects: Vec<Uscc> = (0..args.subjects).map(|i| Uscc::sample(SUBJECT_BASE + i)).collect();

    // Setup: records and authorisations, final before reading.
    let now = now_ms();
    // Single-use sequence numbers below any the load or the samples use (those
    // start at the current time × 1000): a day back.
    let seq_base = now.saturating_sub(86_400_000).saturating_mul(1000);
    let mut txs = Vec::new();
    for (i, subject) in subjects.iter().enumerate() {
        for r in 0..RECORDS_PER_SUBJECT {
            let n = i as u64 * RECORDS_PER_SUBJECT + r;
            let issuer = &chain.issuers[(n % chain.issuers.len() as u64) as usize];
            let mut a = load_attestation(r, now);
            a.subject = *subject;
            a.evidence = sha256(&[b"yrd-testnet reads", &n.to_be_bytes(), &now.to_be_bytes()]);
            let tx = Transaction { chain: chain.chain, issuer: issuer.public(), sequence: seq_base + n, body: TxBody::Attest(a) };
            txs.push(tx.sign(issuer)?);
        }
        let auth = Authorisation {
            subject: *subject,
            purpose: Purpose::LoanApplication,
            consent: sha256(&[b"yrd-testnet reads consent", subject.as_str().as_bytes()]),
            issued_at_ms: now,
            valid_until_ms: now + 30 * 24 * 3600 * 1000,
        };
        let tx = Transaction { chain: chain.chain, issuer: lender.public(), sequence: seq_base + i as u64, body: TxBody::Authorise(auth) };
        txs.push(tx.sign(&lender)?);
    }
    eprintln!("reads: setting up {} enterprises ({} transactions) on {base}", subjects.len(), txs.len());
    let mut ids = Vec::new();
    for chunk in txs.chunks(crate::load::MAX_BATCH) {
        let body = serde_json::json!({
            "txs": chunk.iter().map(|t| t.encode().map(hex::encode)).collect::<Result<Vec<_>, _>>()?
        })
        .to_string();
        let ans = api.post_raw("/v1/transactions/batch", body)?;
        if ans.status != 202 && ans.status != 200 {
            bail!("{base} refused the setup batch: HTTP {} {}", ans.status, ans.body);
        }
        for t in chunk {
            ids.push(t.id()?.to_hex());
        }
    }
    let deadline = Instant::now() + FINAL_WAIT;
    for id in &ids {
        loop {
            if api.attestation(id)?.is_some_and(|r| r.is_final()) {
                break;
            }
            if Instant::now() > deadline {
                bail!("setup transaction {id} was not final within {} s", FINAL_WAIT.as_secs());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let before = count_recorded(&api, &subjects, &lender)?;

    // Reads.
    eprintln!(
        "reads: {} threads asking {base} for signed subject reports for {} s",
        args.threads, args.duration
    );
    let stop = Arc::new(AtomicBool::new(false));
    let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    let refused = Arc::new(Mutex::new(std::collections::BTreeMap::<u16, u64>::new()));
    let (errors, bytes) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..args.threads {
        let (stop, latencies, refused, errors, bytes) =
            (stop.clone(), latencies.clone(), refused.clone(), errors.clone(), bytes.clone());
        let (base, lender, subjects, chain_id) = (base.clone(), lender.clone(), subjects.clone(), chain.chain);
        let node = api.node_key()?;
        handles.push(std::thread::Builder::new().name(format!("reader-{t}")).spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(30)))
                .http_status_as_error(false)
                .build()
                .into();
            let mut mine = Vec::new();
            // Threads start at different enterprises and walk them in turn.
            let mut i = t;
            while !stop.load(Ordering::Relaxed) {
                let subject = &subjects[i % subjects.len()];
                i += 1;
                let path = format!("/v1/proofs/subjects/{subject}");
                let Ok(req) = SignedRequest::sign(&lender, &chain_id, &node, "GET", &path, b"", now_ms(), Nonce::random()) else {
                    errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let mut request = agent.get(format!("{base}{path}"));
                for (name, value) in req.headers(&node) {
                    request = request.header(name, value);
                }
                let t0 = Instant::now();
                match request.call() {
                    Ok(mut resp) => {
                        let status = resp.status().as_u16();
                        let receipt = resp.headers().contains_key("x-yrd-receipt");
                        let body = resp.body_mut().with_config().limit(64 << 20).read_to_vec();
                        let ms = t0.elapsed().as_secs_f64() * 1000.0;
                        match body {
                            Ok(b) if status == 200 && receipt => {
                                mine.push(ms);
                                bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
                            }
                            Ok(_) => *refused.lock().unwrap_or_else(|e| e.into_inner()).entry(status).or_default() += 1,
                            Err(_) => {
                                errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latencies.lock().unwrap_or_else(|e| e.into_inner()).extend(mine);
        })?);
    }
    std::thread::sleep(Duration::from_secs_f64(args.duration));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut lat = std::mem::take(&mut *latencies.lock().unwrap_or_else(|e| e.into_inner()));
    lat.sort_by(f64::total_cmp);
    let served = lat.len() as u64;

    // Every served read recorded on chain.
    let t_end = Instant::now();
    let deadline = t_end + FINAL_WAIT;
    let mut recorded = 0;
    while Instant::now() < deadline {
        recorded = count_recorded(&api, &subjects, &lender)?.saturating_sub(before);
        if recorded >= served {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let refused = std::mem::take(&mut *refused.lock().unwrap_or_else(|e| e.into_inner())).into_iter().collect();
    Ok(ReadsReport {
        node: base,
        subjects: args.subjects,
        threads: args.threads,
        duration_s: elapsed,
        served,
        served_per_s: served as f64 / elapsed,
        refused,
        errors: errors.load(Ordering::Relaxed),
        p50_ms: percentile(&lat, 50.0),
        p90_ms: percentile(&lat, 90.0),
        p99_ms: percentile(&lat, 99.0),
        max_ms: lat.last().copied(),
        mean_bytes: bytes.load(Ordering::Relaxed).checked_div(served).unwrap_or(0),
        recorded,
        record_wait_s: t_end.elapsed().as_secs_f64(),
    })
}

/// Query entries of `lender` about `subjects` on chain, as the lender sees
/// them (`GET /v1/audit/queries/{uscc}`, signed, following `next_from`).
fn count_recorded(api: &Api, subjects: &[Uscc], lender: &SecretKey) -> Result<u64> {
    let mut total = 0u64;
    for s in subjects {
        let mut from = 0u64;
        loop {
            let path = if from == 0 { format!("/v1/audit/queries/{s}") } else { format!("/v1/audit/queries/{s}?from={from}") };
            let (status, text) = api.get_signed(&path, lender)?;
            if status != 200 {
                bail!("GET {path}: HTTP {status} {}", text.trim());
            }
            let v: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("GET {path}: not JSON"))?;
            for r in v.get("records").and_then(|r| r.as_array()).map(|a| a.as_slice()).unwrap_or_default() {
                total += r.get("entries").and_then(|e| e.as_array()).map_or(0, |e| e.len() as u64);
            }
            match v.get("next_from").and_then(|n| n.as_u64()) {
                Some(n) if n > from => from = n,
                _ => break,
            }
        }
    }
    Ok(total)
}

pub fn print_report(r: &ReadsReport) {
    let ms = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.1} ms"));
    println!("node               {}", r.node);
    println!("served             {} signed subject reports in {:.1} s ({:.0}/s), {} threads, {} enterprises", r.served, r.duration_s, r.served_per_s, r.threads, r.subjects);
    println!("latency            p50 {}  p90 {}  p99 {}  max {}", ms(r.p50_ms), ms(r.p90_ms), ms(r.p99_ms), ms(r.max_ms));
    println!("report size        {} bytes on average", r.mean_bytes);
    println!("refused            {:?} (status, count); {} transport errors", r.refused, r.errors);
    println!("recorded on chain  {} of {} served reads ({:.1} s after the last read)", r.recorded, r.served, r.record_wait_s);
}
