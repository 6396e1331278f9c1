//! `yrd-testnet load`: the load client the bench runs as a separate process.
//!
//! * A signer thread pre-signs real attestations (every issuer in turn, single-use
//!   sequence numbers from a per-run base) ahead of time, so signing never holds the
//!   rate back.
//! * The pacer releases what is due every tick (`stats::due`) in small batches,
//!   round-robin over the nodes; one sender thread per node posts its batches
//!   to `POST /v1/transactions/batch`, noting each transaction's submit time just
//!   before the request.
//! * A follower waits for new heights on the first node (`GET /v1/wait/{h}`, or
//!   polling `GET /v1/status`) and reads each new block (`GET /v1/blocks/{h}`):
//!   the time a block is seen is the commit time of every transaction in it.
//!
//! After the run it waits (bounded) for the accepted transactions to be final and
//! reports counts, finalised per second and commit latency percentiles.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use yrd_consensus::crypto::{sha256, Hash32, SecretKey};
use yrd_ledger::genesis::Genesis;
use yrd_ledger::tx::{Attestation, AttestationKind, Grade, Severity, Transaction, TxBody};
use yrd_ledger::uscc::Uscc;

use crate::api::{Api, BatchAnswer};
use crate::setup::{now_ms, TestnetFile};
use crate::stats::{due, pacing, percentile};

/// Most transactions in one batch request (the API's limit).
pub const MAX_BATCH: usize = 2000;
/// Pre-signed transactions travel in chunks of this many.
const CHUNK: usize = 256;
/// Runs of at most this many attestations are signed whole before the clock
/// starts (about 0.9 KB each while they wait: 220 MB at most).
const PRESIGN_ALL_MAX: u64 = 250_000;
/// Distinct sample enterprises the load is about.
const SUBJECTS: u64 = 100_000;

#[derive(clap::Args, Debug, Clone)]
pub struct LoadArgs {
    /// The testnet to load (its testnet.json)
    #[arg(long)]
    pub testnet: PathBuf,
    /// Target submission rate, attestations per second
    #[arg(long)]
    pub rate: f64,
    /// How long to submit, in seconds
    #[arg(long)]
    pub duration: f64,
    /// Attestations per request (default: what is due in 10 ms, at most 2000)
    #[arg(long)]
    pub batch: Option<usize>,
    /// Longest wait, after submitting, for accepted attestations to be final (seconds)
    #[arg(long, default_value_t = 30.0)]
    pub drain: f64,
    /// Print the report as one JSON line at the end
    #[arg(long)]
    pub json: bool,
}

/// What the load client reports (the bench adds the nodes' CPU and memory).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LoadReport {
    /// Finalised attestations per second over the measurement window: between the
    /// first and the last commit seen, not counting the first commit's own
    /// attestations (they arrived before the window opened).
    pub finalized_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    pub rate: f64,
    pub duration_s: f64,
    /// Sent to the API.
    pub submitted: u64,
    /// Answered "pending".
    pub accepted: u64,
    /// Accepted and seen in a block.
    pub finalized: u64,
    /// Refused with 503 (`overloaded`, `mempool_full`, ...): back-pressure.
    pub rejected_503: u64,
    /// How long a refused request took to be answered: p50 and p99 over the
    /// requests answered 503 as a whole (a refusal should be prompt), ms.
    #[serde(default)]
    pub refusal_p50_ms: f64,
    #[serde(default)]
    pub refusal_p99_ms: f64,
    /// Refused for any other reason (400, 409, ...).
    pub rejected_other: u64,
    /// Lost to transport errors (timeouts, refused connections).
    pub transport_errors: u64,
    /// Achieved submission rate over the submission period.
    pub submitted_per_s: f64,
    /// Seconds from the first to the last commit seen (the measurement window).
    pub window_s: f64,
    /// Finalised per second from the first submission to the last commit
    /// (includes the start-up block and the final commit latency).
    pub end_to_end_per_s: f64,
    /// Blocks seen during the run and the heights they span.
    pub blocks: u64,
    pub first_height: u64,
    pub last_height: u64,
    /// CPU time of this client (all threads) as % of one core over the run.
    pub client_cpu_pct: f64,
    /// First few distinct rejection reasons, `code: reason`.
    pub errors: Vec<String>,
}

struct Prepared {
    id: [u8; 32],
    /// The transaction's log leaf hash: what a block shows an anonymous reader
    /// in place of the id of a restricted record (docs/access.md).
    commitment: [u8; 32],
    hex: String,
}

/// An accepted transaction: its id, its commitment and when it was submitted.
type Accepted = ([u8; 32], [u8; 32], Instant);

#[derive(Default)]
struct SenderResult {
    accepted: Vec<Accepted>,
    submitted: u64,
    rejected_503: u64,
    /// Answer time of each request refused with 503 as a whole, ms.
    refusal_ms: Vec<f64>,
    rejected_other: u64,
    transport_errors: u64,
    errors: Vec<String>,
}


/// The issuers' keys and the chain id, read from `testnet.json` and its genesis.
pub(crate) struct Chain {
    pub(crate) chain: Hash32,
    pub(crate) issuers: Vec<SecretKey>,
    pub(crate) apis: Vec<String>,
}

pub(crate) fn load_chain(path: &std::path::Path) -> Result<Chain> {
    let tf = TestnetFile::load(path)?;
    let gbytes = std::fs::read(&tf.genesis)
        .with_context(|| format!("cannot read {}", tf.genesis.display()))?;
    let genesis =
        Genesis::from_json(&gbytes).with_context(|| format!("{}", tf.genesis.display()))?;
    let chain = genesis.chain_id()?;
    let mut issuers = Vec::new();
    for i in &tf.issuers {
        let key = yrd_node::keys::read_key_file(&i.key_file)?;
        let registered = genesis
            .issuer_by_name(&i.name)
            .ok_or_else(|| anyhow!("issuer {} is not in the genesis", i.name))?;
        if registered.key != key.public() {
            bail!(
                "{} is not the key of issuer {} in the genesis",
                i.key_file.display(),
                i.name
            );
        }
        issuers.push(key);
    }
    if issuers.is_empty() || tf.nodes.is_empty() {
        bail!("{} lists no issuers or no nodes", path.display());
    }
    Ok(Chain {
        chain,
        issuers,
        apis: tf.nodes.iter().map(|n| n.api.clone()).collect(),
    })
}

/// The `n`-th load attestation: realistic kinds in turn, about one of
/// [`SUBJECTS`] sample enterprises.
pub(crate) fn load_attestation(n: u64, now: u64) -> Attestation {
    let (kind, grade, severity) = match n % 6 {
        0 => (
            AttestationKind::TaxCredit,
            Some([Grade::A, Grade::B, Grade::M, Grade::C][(n / 6 % 4) as usize]),
            None,
        ),
        1 => (
            AttestationKind::AdministrativePenalty,
            None,
            Some(Severity::General),
        ),
        2 => (AttestationKind::RedList, None, None),
        3 => (AttestationKind::Commitment, None, None),
        4 => (AttestationKind::CreditRating, Some(Grade::B), None),
        _ => (
            AttestationKind::CourtEnforcement,
            None,
            Some(Severity::Serious),
        ),
    };
    Attestation {
        subject: Uscc::sample(n.wrapping_mul(7919) % SUBJECTS),
        kind,
        grade,
        severity,
        evidence: sha256(&[
            b"yrd-testnet load evidence",
            &n.to_be_bytes(),
            &now.to_be_bytes(),
        ]),
        issued_at_ms: now,
        valid_from_ms: now,
        valid_until_ms: if grade.is_some() {
            Some(now + 365 * 24 * 3600 * 1000)
        } else {
            None
        },
        fields: vec![("decision-no".to_string(), format!("LOAD-{now}-{n}"))],
    }
}

/// Signs `total` attestations, in chunks, into `out`; counts them in `made`.
fn signer(
    chain: Hash32,
    issuers: Vec<SecretKey>,
    total: u64,
    out: SyncSender<Vec<Prepared>>,
    made: Arc<AtomicU64>,
) {
    let now = now_ms();
    // Single-use sequence numbers: a per-run base leaves room for 1,000 per ms
    // between runs against the same testnet, and never meets the samples' 1, 2, ...
    let base = now.saturating_mul(1000);
    let k = issuers.len() as u64;
    let mut chunk = Vec::with_capacity(CHUNK);
    for n in 0..total {
        let i = (n % k) as usize;
        let tx = Transaction {
            chain,
            issuer: issuers[i].public(),
            sequence: base + n / k,
            body: TxBody::Attest(load_attestation(n, now)),
        };
        let Ok(signed) = tx.sign(&issuers[i]) else {
            continue;
        };
        let Ok(bytes) = signed.encode() else { continue };
        chunk.push(Prepared {
            id: sha256(&[&bytes]).0,
            commitment: yrd_ledger::merkle::leaf_hash(&bytes).0,
            hex: hex::encode(&bytes),
        });
        if chunk.len() == CHUNK || n + 1 == total {
            made.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            if out
                .send(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)))
                .is_err()
            {
                return;
            }
        }
    }
}

/// Posts the batches it receives to one node.
fn sender(api: Api, rx: Receiver<Vec<Prepared>>, accepted_count: Arc<AtomicU64>) -> SenderResult {
    let mut r = SenderResult::default();
    let mut body = String::new();
    while let Ok(batch) = rx.recv() {
        body.clear();
        body.push_str("{\"txs\":[");
        for (i, p) in batch.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            let _ = write!(body, "\"{}\"", p.hex);
        }
        body.push_str("]}");
        let t = Instant::now();
        r.submitted += batch.len() as u64;
        match api.post_raw("/v1/transactions/batch", std::mem::take(&mut body)) {
            Ok(ans) if ans.status == 200 => match serde_json::from_value::<BatchAnswer>(ans.body) {
                Ok(a) if a.results.len() == batch.len() => {
                    for (p, e) in batch.iter().zip(a.results) {
                        if e.status.is_some() && e.error.is_none() {
                            r.accepted.push((p.id, p.commitment, t));
                            accepted_count.fetch_add(1, Ordering::Relaxed);
                        } else if e.code.as_deref() == Some("mempool_full") {
                            r.rejected_503 += 1;
                        } else {
                            r.rejected_other += 1;
                            note(
                                &mut r.errors,
                                &format!(
                                    "{}: {}",
                                    e.code.unwrap_or_default(),
                                    e.error.unwrap_or_default()
                                ),
                            );
                        }
                    }
                }
                _ => {
                    r.rejected_other += batch.len() as u64;
                    note(
                        &mut r.errors,
                        "batch answer with the wrong number of results",
                    );
                }
            },
            Ok(ans) if ans.status == 503 => {
                r.rejected_503 += batch.len() as u64;
                r.refusal_ms.push(t.elapsed().as_secs_f64() * 1000.0);
                let code = ans.body.get("code").and_then(|c| c.as_str()).unwrap_or("");
                note(&mut r.errors, &format!("HTTP 503 {code}"));
            }
            Ok(ans) => {
                r.rejected_other += batch.len() as u64;
                note(&mut r.errors, &format!("HTTP {}: {}", ans.status, ans.body));
            }
            Err(e) => {
                r.transport_errors += batch.len() as u64;
                note(&mut r.errors, &format!("{e:#}"));
            }
        }
    }
    r
}

fn note(errors: &mut Vec<String>, e: &str) {
    if errors.len() < 5 && !errors.iter().any(|x| x == e) {
        errors.push(e.to_string());
    }
}

/// Commit times of every transaction seen in a block since the start.
#[derive(Default)]
struct Commits {
    /// When each transaction was seen in a block, by id — or by commitment for
    /// the restricted records a block shows anonymous readers as commitments.
    at: HashMap<[u8; 32], Instant>,
    blocks: u64,
    first_height: u64,
    last_height: u64,
}

fn follower(
    api: Api,
    from_height: u64,
    commits: Arc<Mutex<Commits>>,
    stop: Arc<AtomicBool>,
) -> Result<()> {
    let mut next = from_height + 1;
    let mut long_poll = true;
    while !stop.load(Ordering::Relaxed) {
        let tip = if long_poll {
            match api.wait_height(next, 500) {
                Ok(Some(h)) => h,
                Ok(None) => {
                    long_poll = false;
                    continue;
                }
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            }
        } else {
            std::thread::sleep(Duration::from_millis(20));
            match api.status() {
                Ok(s) => s.height,
                Err(_) => continue,
            }
        };
        if tip < next {
            continue;
        }
        let seen = Instant::now();
        for h in next..=tip {
            let block = loop {
                match api.block(h) {
                    Ok(Some(b)) if b.height == h => break b,
                    Ok(Some(b)) => bail!("asked for block {h}, got block {}", b.height),
                    Ok(None) => bail!("block {h} not found although the node reports height {tip}"),
                    Err(_) if !stop.load(Ordering::Relaxed) => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    Err(e) => return Err(e),
                }
            };
            let mut c = commits.lock().map_err(|_| anyhow!("lock poisoned"))?;
            for entry in &block.transactions {
                let mut raw = [0u8; 32];
                if hex::decode_to_slice(entry.key(), &mut raw).is_ok() {
                    c.at.entry(raw).or_insert(seen);
                }
            }
            if c.blocks == 0 {
                c.first_height = h;
            }
            c.blocks += 1;
            c.last_height = h;
        }
        next = tip + 1;
    }
    Ok(())
}

/// CPU time (user + system) of this process in seconds.
fn own_cpu_s() -> f64 {
    crate::procs::cpu_ticks(std::process::id()).unwrap_or(0) as f64
        / crate::procs::clock_ticks_per_s() as f64
}

pub fn run(args: &LoadArgs) -> Result<LoadReport> {
    let positive = |x: f64| x > 0.0 && x.is_finite();
    if !positive(args.rate) || !positive(args.duration) {
        bail!("--rate and --duration must be positive");
    }
    let chain = load_chain(&args.testnet)?;
    let total = (args.rate * args.duration).round().max(1.0) as u64;
    let (batch, interval) = pacing(args.rate, args.batch, MAX_BATCH);
    let apis: Vec<Api> = chain
        .apis
        .iter()
        .map(|u| Api::new(u, Duration::from_secs(30)))
        .collect();
    let status = apis[0].status().context("the first node does not answer")?;
    if !status.chain_id.is_empty() && status.chain_id != chain.chain.to_hex() {
        bail!(
            "{} serves chain {}, but the genesis in {} is chain {}",
            chain.apis[0],
            status.chain_id,
            args.testnet.display(),
            chain.chain.to_hex()
        );
    }
    let start_height = status.height;
    eprintln!(
        "load: {total} attestations at {} /s for {} s, batches of {batch} every {} ms, round-robin over {} nodes; from height {start_height}",
        args.rate,
        args.duration,
        interval.as_millis(),
        apis.len()
    );

    // Pre-sign: a run of at most PRESIGN_ALL_MAX attestations is signed whole
    // before the clock starts, so that signing (a fifth of a core at 10,000/s)
    // does not take CPU from the validators it measures; a longer one is signed
    // about 3 s ahead (bounded memory), at least 1 s of it before the start.
    let made = Arc::new(AtomicU64::new(0));
    let presign_all = total <= PRESIGN_ALL_MAX;
    let ahead_chunks = if presign_all {
        (total as usize).div_ceil(CHUNK).max(1)
    } else {
        ((args.rate * 3.0) as usize / CHUNK).clamp(4, 4096)
    };
    let (sign_tx, sign_rx) = sync_channel::<Vec<Prepared>>(ahead_chunks);
    let signer_handle = {
        let (chain_id, issuers, made) = (chain.chain, chain.issuers.clone(), made.clone());
        std::thread::Builder::new()
            .name("signer".into())
            .spawn(move || signer(chain_id, issuers, total, sign_tx, made))?
    };
    let want_ready = if presign_all {
        total
    } else {
        total
            .min(args.rate.ceil() as u64)
            .min((ahead_chunks * CHUNK) as u64)
    };
    let t_sign = Instant::now();
    if presign_all {
        eprintln!("load: signing all {total} before the clock starts (runs of at most {PRESIGN_ALL_MAX}; longer ones sign as they go)");
    }
    while made.load(Ordering::Relaxed) < want_ready && t_sign.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(5));
    }
    if presign_all {
        eprintln!("load: signed {} in {:.1} s", made.load(Ordering::Relaxed), t_sign.elapsed().as_secs_f64());
    }

    let commits = Arc::new(Mutex::new(Commits::default()));
    let stop_follow = Arc::new(AtomicBool::new(false));
    let follower_handle = {
        let (api, commits, stop) = (
            Api::new(&chain.apis[0], Duration::from_secs(10)),
            commits.clone(),
            stop_follow.clone(),
        );
        std::thread::Builder::new()
            .name("follower".into())
            .spawn(move || follower(api, start_height, commits, stop))?
    };

    let accepted_count = Arc::new(AtomicU64::new(0));
    let mut queues = Vec::new();
    let mut senders = Vec::new();
    for (i, api) in apis.iter().enumerate() {
        // About 2 s of batches may queue per node before the pacer waits.
        let cap = ((2.0 / interval.as_secs_f64()) as usize / apis.len()).max(4);
        let (tx, rx) = sync_channel::<Vec<Prepared>>(cap);
        let (api, count) = (api.clone(), accepted_count.clone());
        senders.push(
            std::thread::Builder::new()
                .name(format!("sender-{i}"))
                .spawn(move || sender(api, rx, count))?,
        );
        queues.push(tx);
    }

    // Pace.
    let cpu0 = own_cpu_s();
    let t0 = Instant::now();
    let mut sent = 0u64;
    let mut buf: VecDeque<Prepared> = VecDeque::new();
    let mut node = 0usize;
    let mut tick = 0u64;
    let mut next_report = Duration::from_secs(1);
    while sent < total {
        let mut n = due(args.rate, t0.elapsed(), sent, total);
        while n > 0 {
            let k = (n as usize).min(batch);
            while buf.len() < k {
                match sign_rx.recv() {
                    Ok(chunk) => buf.extend(chunk),
                    Err(_) => break,
                }
            }
            let k = k.min(buf.len());
            if k == 0 {
                bail!("the signer stopped early");
            }
            let b: Vec<Prepared> = buf.drain(..k).collect();
            if queues[node].send(b).is_err() {
                bail!("sender {node} stopped");
            }
            node = (node + 1) % queues.len();
            sent += k as u64;
            n -= k as u64;
        }
        let el = t0.elapsed();
        if el >= next_report {
            next_report += Duration::from_secs(1);
            let c = commits
                .lock()
                .map(|c| (c.at.len(), c.last_height))
                .unwrap_or_default();
            eprintln!(
                "load: {:>5.1} s  sent {sent} ({:.0}/s)  accepted {}  in blocks {}  height {}",
                el.as_secs_f64(),
                sent as f64 / el.as_secs_f64(),
                accepted_count.load(Ordering::Relaxed),
                c.0,
                c.1
            );
        }
        tick += 1;
        let wake = interval * tick as u32;
        let el = t0.elapsed();
        if wake > el {
            std::thread::sleep(wake - el);
        }
    }
    drop(queues);
    let mut results = Vec::new();
    for s in senders {
        results.push(s.join().map_err(|_| anyhow!("a sender thread panicked"))?);
    }
    let send_end = t0.elapsed();
    let _ = signer_handle.join();

    // Drain: wait for the accepted ones to be final.
    let accepted: Vec<Accepted> = results
        .iter_mut()
        .flat_map(|r| std::mem::take(&mut r.accepted))
        .collect();
    let drain_deadline = Instant::now() + Duration::from_secs_f64(args.drain.max(0.0));
    let mut last_print = Instant::now();
    loop {
        let finalised = {
            let c = commits.lock().map_err(|_| anyhow!("lock poisoned"))?;
            accepted
                .iter()
                .filter(|(id, commitment, _)| c.at.contains_key(id) || c.at.contains_key(commitment))
                .count()
        };
        if finalised == accepted.len()
            || Instant::now() >= drain_deadline
            || follower_handle.is_finished()
        {
            break;
        }
        if last_print.elapsed() >= Duration::from_secs(1) {
            last_print = Instant::now();
            eprintln!("load: draining: {finalised}/{} final", accepted.len());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    stop_follow.store(true, Ordering::Relaxed);
    let wall = t0.elapsed();
    let cpu = own_cpu_s() - cpu0;
    match follower_handle.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("load: warning: following blocks failed: {e:#}"),
        Err(_) => eprintln!("load: warning: the follower panicked"),
    }

    let c = commits.lock().map_err(|_| anyhow!("lock poisoned"))?;
    let mut lat_ms: Vec<f64> = Vec::with_capacity(accepted.len());
    let mut commit_times: Vec<Instant> = Vec::with_capacity(accepted.len());
    for (id, commitment, t) in &accepted {
        if let Some(at) = c.at.get(id).or_else(|| c.at.get(commitment)) {
            lat_ms.push(at.saturating_duration_since(*t).as_secs_f64() * 1000.0);
            commit_times.push(*at);
        }
    }
    lat_ms.sort_by(|a, b| a.total_cmp(b));
    let finalized = lat_ms.len() as u64;
    let (finalized_per_s, window_s) = window_rate(&commit_times);
    let end_to_end_s = commit_times
        .iter()
        .max()
        .map_or(0.0, |l| l.saturating_duration_since(t0).as_secs_f64());
    let mut errors = Vec::new();
    for r in &results {
        for e in &r.errors {
            note(&mut errors, e);
        }
    }
    let sum = |f: fn(&SenderResult) -> u64| results.iter().map(f).sum::<u64>();
    let mut refusal_ms: Vec<f64> = results.iter().flat_map(|r| r.refusal_ms.iter().copied()).collect();
    refusal_ms.sort_by(|a, b| a.total_cmp(b));
    Ok(LoadReport {
        finalized_per_s,
        p50_ms: percentile(&lat_ms, 50.0).unwrap_or(0.0),
        p99_ms: percentile(&lat_ms, 99.0).unwrap_or(0.0),
        max_ms: lat_ms.last().copied().unwrap_or(0.0),
        mean_ms: if lat_ms.is_empty() {
            0.0
        } else {
            lat_ms.iter().sum::<f64>() / lat_ms.len() as f64
        },
        rate: args.rate,
        duration_s: args.duration,
        submitted: sum(|r| r.submitted),
        accepted: accepted.len() as u64,
        finalized,
        rejected_503: sum(|r| r.rejected_503),
        refusal_p50_ms: percentile(&refusal_ms, 50.0).unwrap_or(0.0),
        refusal_p99_ms: percentile(&refusal_ms, 99.0).unwrap_or(0.0),
        rejected_other: sum(|r| r.rejected_other),
        transport_errors: sum(|r| r.transport_errors),
        submitted_per_s: sum(|r| r.submitted) as f64 / send_end.as_secs_f64().max(1e-9),
        window_s,
        end_to_end_per_s: if end_to_end_s > 0.0 {
            finalized as f64 / end_to_end_s
        } else {
            0.0
        },
        blocks: c.blocks,
        first_height: c.first_height,
        last_height: c.last_height,
        client_cpu_pct: cpu / wall.as_secs_f64().max(1e-9) * 100.0,
        errors,
    })
}

/// Commits per second between the first and the last commit event, not counting
/// the first event's own transactions (they arrived before the window opened):
/// `(n − n_first) / (t_last − t_first)`. Returns `(rate, window_s)`; `(0, 0)` with
/// fewer than two commit events.
pub fn window_rate(commit_times: &[Instant]) -> (f64, f64) {
    let (Some(first), Some(last)) = (commit_times.iter().min(), commit_times.iter().max()) else {
        return (0.0, 0.0);
    };
    let window = last.saturating_duration_since(*first).as_secs_f64();
    if window <= 0.0 {
        return (0.0, 0.0);
    }
    let n_first = commit_times.iter().filter(|t| *t == first).count();
    ((commit_times.len() - n_first) as f64 / window, window)
}

pub fn print_report(r: &LoadReport) {
    println!(
        "submitted          {} ({:.0}/s, target {}/s for {} s)",
        r.submitted, r.submitted_per_s, r.rate, r.duration_s
    );
    println!(
        "accepted           {}   rejected: {} busy (503), {} other, {} transport errors",
        r.accepted, r.rejected_503, r.rejected_other, r.transport_errors
    );
    if r.rejected_503 > 0 {
        println!(
            "refusals answered p50 {:.1} ms   p99 {:.1} ms (requests refused 503 as a whole)",
            r.refusal_p50_ms, r.refusal_p99_ms
        );
    }
    println!(
        "finalised          {} in {} blocks (heights {}..{})",
        r.finalized, r.blocks, r.first_height, r.last_height
    );
    println!(
        "finalised per s    {:.0} (first to last commit, {:.1} s); {:.0} from first submission to last commit",
        r.finalized_per_s, r.window_s, r.end_to_end_per_s
    );
    println!(
        "commit latency     p50 {:.0} ms   p99 {:.0} ms   max {:.0} ms   mean {:.0} ms",
        r.p50_ms, r.p99_ms, r.max_ms, r.mean_ms
    );
    println!("load client CPU    {:.0}% of one core", r.client_cpu_pct);
    for e in &r.errors {
        println!("rejection          {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_attestations_are_valid_and_varied() {
        let now = 1_780_000_000_000;
        let mut kinds = std::collections::BTreeSet::new();
        for n in 0..600 {
            let a = load_attestation(n, now);
            a.check_format().unwrap_or_else(|e| panic!("{n}: {e}"));
            kinds.insert(a.kind);
        }
        assert!(kinds.len() >= 6);
    }

    #[test]
    fn window_rate_excludes_the_first_commit() {
        let t = Instant::now();
        assert_eq!(window_rate(&[]), (0.0, 0.0));
        assert_eq!(window_rate(&[t, t]), (0.0, 0.0));
        // Blocks of 100 every 100 ms for 1 s: 1,000 per second.
        let mut times = Vec::new();
        for b in 0..=10u64 {
            times.extend(std::iter::repeat_n(t + Duration::from_millis(100 * b), 100));
        }
        let (rate, window) = window_rate(&times);
        assert!((window - 1.0).abs() < 1e-9);
        assert!((rate - 1000.0).abs() < 1e-6, "{rate}");
    }

    #[test]
    fn signer_makes_distinct_valid_transactions() {
        let issuers: Vec<SecretKey> = (0..4)
            .map(|i| SecretKey::from_seed(format!("i{i}").as_bytes()))
            .collect();
        let (tx, rx) = sync_channel(100);
        let made = Arc::new(AtomicU64::new(0));
        signer(Hash32::default(), issuers, 600, tx, made.clone());
        let all: Vec<Prepared> = rx.try_iter().flatten().collect();
        assert_eq!(all.len(), 600);
        assert_eq!(made.load(Ordering::Relaxed), 600);
        let ids: std::collections::HashSet<[u8; 32]> = all.iter().map(|p| p.id).collect();
        assert_eq!(ids.len(), 600);
        let bytes = hex::decode(&all[7].hex).unwrap();
        let st = yrd_ledger::tx::SignedTransaction::decode(&bytes).unwrap();
        st.verify_signature().unwrap();
        assert_eq!(st.id().unwrap().0 .0, all[7].id);
    }
}
