//! The chaos run's client side: a paced load of real signed attestations, every
//! acceptance recorded, and one follower per node that reads every block the node
//! reports (height by height, from 1), recording its hash and what it holds —
//! the history the checker judges.
//!
//! Submissions are spread round-robin over the nodes, each node with its own
//! sender thread and a small queue: a stopped or partitioned node holds up only
//! its own share (what does not fit its queue is not sent, and counted).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use yrd_consensus::crypto::{sha256, Hash32, SecretKey};
use yrd_ledger::tx::{Transaction, TxBody};

use super::checker::{Key, NodeChain};
use crate::api::{Api, BatchAnswer};
use crate::setup::now_ms;

/// A pacing tick: what is due is sent every this many ms.
const TICK_MS: u64 = 100;
/// Batches waiting for one node's sender, at most: beyond, a slow node's share
/// is dropped (counted as not sent) instead of piling up.
const QUEUE_BATCHES: usize = 4;
/// Timeout of one API request: a stopped node must not hold a sender long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// A follower's wait between polls when its node has no new block.
const FOLLOW_IDLE: Duration = Duration::from_millis(200);

/// A signed attestation ready to send.
struct Signed {
    id: Key,
    commitment: Key,
    hex: String,
}

/// Counters of the load.
#[derive(Debug, Default)]
pub struct LoadCounters {
    pub submitted: AtomicU64,
    pub accepted: AtomicU64,
    pub refused: AtomicU64,
    pub transport_errors: AtomicU64,
    /// Due but not sent: the node's queue was full (it was slow or stopped).
    pub not_sent: AtomicU64,
}

/// The running load and followers.
pub struct Workload {
    stop_load: Arc<AtomicBool>,
    stop_follow: Arc<AtomicBool>,
    load_threads: Vec<JoinHandle<()>>,
    follow_threads: Vec<JoinHandle<()>>,
    pub acked: Arc<Mutex<Vec<(Key, Key)>>>,
    pub live: Arc<Vec<Mutex<NodeChain>>>,
    pub counters: Arc<LoadCounters>,
    /// First few distinct refusal reasons.
    pub errors: Arc<Mutex<Vec<String>>>,
}


fn note(errors: &Mutex<Vec<String>>, e: String) {
    if let Ok(mut v) = errors.lock() {
        if v.len() < 8 && !v.contains(&e) {
            v.push(e);
        }
    }
}

/// Parses a 64-hex-digit id or commitment.
pub fn parse_key(s: &str) -> Option<Key> {
    let mut k = [0u8; 32];
    hex::decode_to_slice(s, &mut k).ok()?;
    Some(k)
}

/// Reads node blocks from `from` up while they exist, into `chain`. Returns the
/// next height to read. Stops at the first error or missing block.
pub fn read_blocks(api: &Api, chain: &Mutex<NodeChain>, from: u64, stop: &AtomicBool) -> u64 {
    let mut h = from;
    while !stop.load(Ordering::Relaxed) {
        match api.block(h) {
            Ok(Some(b)) if b.height == h => {
                let keys: Vec<Key> = b.transactions.iter().filter_map(|e| parse_key(e.key())).collect();
                if let Ok(mut c) = chain.lock() {
                    c.hashes.insert(h, b.hash.clone());
                    c.keys.extend(keys);
                }
                h += 1;
            }
            _ => break,
        }
    }
    h
}

impl Workload {
    /// Starts the followers at once and the load at `rate` per second.
    pub fn start(
        apis: &[String],
        names: &[String],
        chain: Hash32,
        issuers: Vec<SecretKey>,
        rate: f64,
    ) -> Result<Workload> {
        if issuers.is_empty() || apis.is_empty() {
            return Err(anyhow!("no issuers or no nodes to load"));
        }
        let stop_load = Arc::new(AtomicBool::new(false));
        let stop_follow = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let counters = Arc::new(LoadCounters::default());
        let errors = Arc::new(Mutex::new(Vec::new()));
        let live: Arc<Vec<Mutex<NodeChain>>> = Arc::new(
            names.iter().map(|n| Mutex::new(NodeChain { name: n.clone(), ..Default::default() })).collect(),
        );
        let mut follow_threads = Vec::new();
        for (i, url) in apis.iter().enumerate() {
            let api = Api::new(url, REQUEST_TIMEOUT);
            let live = live.clone();
            let stop = stop_follow.clone();
            follow_threads.push(std::thread::Builder::new().name(format!("follow-{i}")).spawn(move || {
                let mut next = 1;
                while !stop.load(Ordering::Relaxed) {
                    let before = next;
                    next = read_blocks(&api, &live[i], next, &stop);
                    if next == before {
                        std::thread::sleep(FOLLOW_IDLE);
                    }
                }
            })?);
        }
        let mut load_threads = Vec::new();
        let mut queues: Vec<SyncSender<Vec<Signed>>> = Vec::new();
        for (i, url) in apis.iter().enumerate() {
            let (tx, rx) = sync_channel::<Vec<Signed>>(QUEUE_BATCHES);
            queues.push(tx);
            let api = Api::new(url, REQUEST_TIMEOUT);
            let (acked, counters, errors) = (acked.clone(), counters.clone(), errors.clone());
            load_threads.push(
                std::thread::Builder::new()
                    .name(format!("send-{i}"))
                    .spawn(move || sender(api, rx, &acked, &counters, &errors))?,
            );
        }
        let stop = stop_load.clone();
        let c = counters.clone();
        load_threads.push(
            std::thread::Builder::new()
                .name("pacer".into())
                .spawn(move || pacer(chain, issuers, rate, queues, &stop, &c))?,
        );
        Ok(Workload { stop_load, stop_follow, load_threads, follow_threads, acked, live, counters, errors })
    }

    /// Stops submitting and waits for the senders.
    pub fn stop_load(&mut self) {
        self.stop_load.store(true, Ordering::SeqCst);
        for t in self.load_threads.drain(..) {
            let _ = t.join();
        }
    }

    /// Stops the followers and returns what they saw.
    pub fn stop_follow(&mut self) -> Vec<NodeChain> {
        self.stop_follow.store(true, Ordering::SeqCst);
        for t in self.follow_threads.drain(..) {
            let _ = t.join();
        }
        self.live.iter().map(|c| c.lock().map(|c| c.clone()).unwrap_or_default()).collect()
    }

    /// The highest height each follower has read.
    pub fn followed(&self) -> Vec<u64> {
        self.live
            .iter()
            .map(|c| c.lock().ok().and_then(|c| c.hashes.keys().next_back().copied()).unwrap_or(0))
            .collect()
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        self.stop_load();
        let _ = self.stop_follow();
    }
}

/// Signs attestations as they fall due and hands batches round-robin to the
/// nodes' queues.
fn pacer(
    chain: Hash32,
    issuers: Vec<SecretKey>,
    rate: f64,
    queues: Vec<SyncSender<Vec<Signed>>>,
    stop: &AtomicBool,
    counters: &LoadCounters,
) {
    let now0 = now_ms();
    // Single-use sequence numbers from a per-run base (as the load client does).
    let base = now0.saturating_mul(1000);
    let k = issuers.len() as u64;
    let t0 = Instant::now();
    let mut made = 0u64;
    let mut turn = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let due = (t0.elapsed().as_secs_f64() * rate) as u64;
        if due > made {
            let mut batch = Vec::with_capacity((due - made) as usize);
            while made < due {
                let n = made;
                made += 1;
                let i = (n % k) as usize;
                let tx = Transaction {
                    chain,
                    issuer: issuers[i].public(),
                    sequence: base + n / k,
                    body: TxBody::Attest(crate::load::load_attestation(n, now0)),
                };
                let Ok(signed) = tx.sign(&issuers[i]) else { continue };
                let Ok(bytes) = signed.encode() else { continue };
                batch.push(Signed {
                    id: sha256(&[&bytes]).0,
                    commitment: yrd_ledger::merkle::leaf_hash(&bytes).0,
                    hex: hex::encode(&bytes),
                });
            }
            let len = batch.len() as u64;
            match queues[turn % queues.len()].try_send(batch) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    counters.not_sent.fetch_add(len, Ordering::Relaxed);
                }
            }
            turn += 1;
        }
        std::thread::sleep(Duration::from_millis(TICK_MS));
    }
}

fn sender(
    api: Api,
    rx: Receiver<Vec<Signed>>,
    acked: &Mutex<Vec<(Key, Key)>>,
    counters: &LoadCounters,
    errors: &Mutex<Vec<String>>,
) {
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
        counters.submitted.fetch_add(batch.len() as u64, Ordering::Relaxed);
        match api.post_raw("/v1/transactions/batch", std::mem::take(&mut body)) {
            Ok(ans) if ans.status == 200 => match serde_json::from_value::<BatchAnswer>(ans.body) {
                Ok(a) if a.results.len() == batch.len() => {
                    let mut ok = Vec::new();
                    for (p, e) in batch.iter().zip(a.results) {
                        if e.status.is_some() && e.error.is_none() {
                            ok.push((p.id, p.commitment));
                        } else {
                            counters.refused.fetch_add(1, Ordering::Relaxed);
                            note(errors, format!("{}: {}", e.code.unwrap_or_default(), e.error.unwrap_or_default()));
                        }
                    }
                    counters.accepted.fetch_add(ok.len() as u64, Ordering::Relaxed);
                    if let Ok(mut a) = acked.lock() {
                        a.extend(ok);
                    }
                }
                _ => {
                    counters.refused.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    note(errors, "batch answer with the wrong number of results".into());
                }
            },
            Ok(ans) => {
                counters.refused.fetch_add(batch.len() as u64, Ordering::Relaxed);
                let code = ans.body.get("code").and_then(|c| c.as_str()).unwrap_or("");
                note(errors, format!("HTTP {} {code}", ans.status));
            }
            Err(_) => {
                counters.transport_errors.fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
        }
    }
}

/// Ids of accepted attestations that appear (by id or commitment) in any chain.
pub fn reported_committed(acked: &[(Key, Key)], live: &[NodeChain]) -> HashSet<Key> {
    acked
        .iter()
        .filter(|(id, c)| live.iter().any(|ch| ch.keys.contains(id) || ch.keys.contains(c)))
        .map(|(id, _)| *id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_committed_are_found_by_id_or_commitment() {
        let id = [1u8; 32];
        assert_eq!(parse_key(&hex::encode(id)), Some(id));
        assert_eq!(parse_key("zz"), None);
        let mut a = NodeChain::default();
        a.keys.insert([1; 32]);
        let mut b = NodeChain::default();
        b.keys.insert([12; 32]);
        let acked = vec![([1; 32], [11; 32]), ([2; 32], [12; 32]), ([3; 32], [13; 32])];
        let r = reported_committed(&acked, &[a, b]);
        assert_eq!(r, [[1u8; 32], [2; 32]].into_iter().collect());
    }
}
