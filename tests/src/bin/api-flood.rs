//! `api-flood`: a connection-flood client for `tests/tests/api_abuse.rs` (one
//! process opens at most what its descriptor limit allows, so the test runs two).
//!
//! ```text
//! api-flood ADDR IDLE HALF_HEAD HALF_BODY ATTACK_MS HOLD_MS RECONNECT_MS
//! ```
//! Opens IDLE connections that send nothing, HALF_HEAD that send part of a request
//! head, and HALF_BODY that send a whole head announcing the largest batch body and
//! then nothing, all to ADDR (127.0.0.1 only). For ATTACK_MS every connection the
//! server closes is opened again RECONNECT_MS later. Then, for up to HOLD_MS, the
//! connections still open are held without reconnecting, to see whether the server
//! closes them. Prints one JSON line when the flood is established
//! (`{"event": "established", ...}`) and one summary line at the end.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

#[derive(Default)]
struct Counts {
    opened: AtomicUsize,
    open: AtomicUsize,
    peak_open: AtomicUsize,
    cut: AtomicUsize,
    connect_errors: AtomicUsize,
    open_at_end: AtomicUsize,
    closed_in_hold: AtomicUsize,
    still_open: AtomicUsize,
}

#[derive(Clone, Copy)]
enum Kind {
    Idle,
    HalfHead,
    HalfBody,
}

/// New connections per second while the flood is being set up (per kind).
const RAMP_PER_S: usize = 2_000;

/// The largest batch body (`yrd_node::api::MAX_BATCH_BODY_BYTES`).
const BATCH_BODY_BYTES: usize = yrd_node::api::MAX_BATCH_BODY_BYTES;

fn prefix(kind: Kind) -> Vec<u8> {
    match kind {
        Kind::Idle => Vec::new(),
        Kind::HalfHead => b"POST /v1/transactions/batch HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: appl".to_vec(),
        Kind::HalfBody => format!(
            "POST /v1/transactions/batch HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
             content-length: {BATCH_BODY_BYTES}\r\n\r\n"
        )
        .into_bytes(),
    }
}

/// Reads until the server closes (true) or `until` (false).
async fn wait_closed(s: &mut TcpStream, until: Instant) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match tokio::time::timeout_at(until, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

async fn attacker(addr: SocketAddr, kind: Kind, attack_end: Instant, hold_end: Instant, reconnect: Duration, c: Arc<Counts>) {
    let prefix = prefix(kind);
    while Instant::now() < attack_end {
        let mut s = match tokio::time::timeout(Duration::from_secs(3), TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            _ => {
                c.connect_errors.fetch_add(1, Relaxed);
                tokio::time::sleep(reconnect).await;
                continue;
            }
        };
        c.opened.fetch_add(1, Relaxed);
        let now_open = c.open.fetch_add(1, Relaxed) + 1;
        c.peak_open.fetch_max(now_open, Relaxed);
        if !prefix.is_empty() && s.write_all(&prefix).await.is_err() {
            c.open.fetch_sub(1, Relaxed);
            c.cut.fetch_add(1, Relaxed);
            tokio::time::sleep(reconnect).await;
            continue;
        }
        if wait_closed(&mut s, attack_end).await {
            c.open.fetch_sub(1, Relaxed);
            c.cut.fetch_add(1, Relaxed);
            tokio::time::sleep(reconnect).await;
            continue;
        }
        // The attack is over: hold this connection and see whether the server
        // closes it.
        c.open_at_end.fetch_add(1, Relaxed);
        if wait_closed(&mut s, hold_end).await {
            c.closed_in_hold.fetch_add(1, Relaxed);
        } else {
            c.still_open.fetch_add(1, Relaxed);
        }
        c.open.fetch_sub(1, Relaxed);
        return;
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    assert_eq!(args.len(), 8, "usage: api-flood ADDR IDLE HALF_HEAD HALF_BODY ATTACK_MS HOLD_MS RECONNECT_MS");
    let addr: SocketAddr = args[1].parse().expect("ADDR");
    assert!(addr.ip().is_loopback(), "api-flood only talks to loopback");
    let n: Vec<u64> = args[2..].iter().map(|a| a.parse().expect("number")).collect();
    let (mut idle, mut half_head, mut half_body) = (n[0] as usize, n[1] as usize, n[2] as usize);
    let (attack, hold, reconnect) =
        (Duration::from_millis(n[3]), Duration::from_millis(n[4]), Duration::from_millis(n[5]));
    // Descriptors: the sockets, plus a few for the runtime and stdio.
    let limit = yrd_tests::raise_nofile() as usize;
    let total = idle + half_head + half_body;
    let room = limit.saturating_sub(64);
    if total > room {
        let scale = |k: usize| k * room / total;
        eprintln!("api-flood: descriptor limit {limit} allows {room} sockets, not {total}: scaling down");
        (idle, half_head, half_body) = (scale(idle), scale(half_head), scale(half_body));
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async move {
        let counts = Arc::new(Counts::default());
        let start = Instant::now();
        let (attack_end, hold_end) = (start + attack, start + attack + hold);
        let mut tasks = Vec::new();
        // Interleave the kinds so each is spread over the whole ramp-up.
        // Opened at RAMP_PER_S, not all at once: a burst beyond the server's
        // accept queue only leaves half-open sockets in the kernel.
        let mut left = [(Kind::Idle, idle), (Kind::HalfHead, half_head), (Kind::HalfBody, half_body)];
        let mut ramp = tokio::time::interval(Duration::from_millis(10));
        while left.iter().any(|(_, k)| *k > 0) {
            ramp.tick().await;
            for _ in 0..RAMP_PER_S / 100 {
                for (kind, k) in left.iter_mut() {
                    if *k > 0 {
                        *k -= 1;
                        tasks.push(tokio::spawn(attacker(addr, *kind, attack_end, hold_end, reconnect, counts.clone())));
                    }
                }
            }
        }
        let target = idle + half_head + half_body;
        // Established: most connections open at once, or 5 s into the attack.
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let open = counts.open.load(Relaxed);
            if open * 10 >= target * 9 || start.elapsed() > Duration::from_secs(5) {
                println!(
                    "{}",
                    serde_json::json!({"event": "established", "open": open, "target": target,
                        "after_ms": start.elapsed().as_millis() as u64})
                );
                break;
            }
        }
        for t in tasks {
            let _ = t.await;
        }
        let g = |a: &AtomicUsize| a.load(Relaxed);
        println!(
            "{}",
            serde_json::json!({
                "event": "summary", "target": target, "opened": g(&counts.opened), "peak_open": g(&counts.peak_open),
                "cut": g(&counts.cut), "connect_errors": g(&counts.connect_errors),
                "open_at_end": g(&counts.open_at_end), "closed_in_hold": g(&counts.closed_in_hold),
                "still_open": g(&counts.still_open),
            })
        );
    });
}
