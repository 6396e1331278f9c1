//! The API server's limits (docs/node.md "HTTP limits"), against a real server on
//! 127.0.0.1:0 with small limits, driven by raw TCP sockets: header, idle and body
//! timeouts, the connection cap with eviction of the stalest waiter, 503 when
//! every connection is busy, the in-flight body budget, early 413, limits applied
//! while parsing a batch, and a shutdown that does not wait for idle clients.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
mod common;

use std::time::{Duration, Instant};

use serde_json::Value;
use yrd_consensus::types::Height;
use yrd_ledger::testkit::TestChain;
use yrd_node::api::{self, ServeLimits};

/// A served API with the given limits.
struct Server(common::Served);

impl std::ops::Deref for Server {
    type Target = common::Served;
    fn deref(&self) -> &common::Served {
        &self.0
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut common::Served {
        &mut self.0
    }
}

impl Server {
    fn start(limits: ServeLimits) -> Server {
        let chain = TestChain::new(4, 2);
        Server(common::serve(&chain, common::Options { limits, records_queries: false, ..Default::default() }))
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    /// A GET on a new connection; the answer.
    fn get(&self, path: &str) -> (u16, Value) {
        let mut s = self.connect();
        send(&mut s, format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes());
        answer(&mut s).unwrap_or_else(|| panic!("no answer to GET {path}"))
    }

    /// The value of a metric (a line `name value`).
    fn metric(&self, name: &str) -> f64 {
        let text = self.shared.metrics.render();
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')).map(|v| v.trim().parse().unwrap()))
            .unwrap_or_else(|| panic!("{name} not in {text}"))
    }
}

fn limits(max_connections: usize, header_ms: u64, idle_ms: u64, body_ms: u64) -> ServeLimits {
    ServeLimits {
        max_connections,
        max_long_polls: max_connections,
        header_timeout: Duration::from_millis(header_ms),
        idle_timeout: Duration::from_millis(idle_ms),
        body_timeout: Duration::from_millis(body_ms),
        max_body_bytes_in_flight: api::MAX_BATCH_BODY_BYTES,
        request_skew_ms: api::auth::DEFAULT_REQUEST_SKEW_MS,
    }
}

fn send(s: &mut TcpStream, bytes: &[u8]) {
    s.write_all(bytes).unwrap();
}

/// Reads one answer (head and `content-length` body); `None` if the connection
/// closed first.
fn answer(s: &mut TcpStream) -> Option<(u16, Value)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = &buf[head_end..head_end + len];
    let v = serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into()));
    if status >= 300 && status != 431 {
        assert!(v["error"].is_string() && v["code"].is_string(), "{status}: error shape {v}");
    }
    Some((status, v))
}

/// How long until the server closes `s` (EOF or reset), if within `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    s.set_read_timeout(Some(within)).unwrap();
    let mut b = [0u8; 1024];
    loop {
        match s.read(&mut b) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return None,
            Err(_) => return Some(start.elapsed()),
        }
    }
}

/// Waits (bounded) until `cond` holds.
fn wait_until(what: &str, within: Duration, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "{what} not within {within:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends a request head with `expect: 100-continue` and waits for the `100
/// Continue`, which the server sends when the handler starts reading the body
/// (its budget share reserved, the connection waiting for body bytes).
fn start_body(s: &mut TcpStream, path: &str, content_length: usize) {
    send(s, format!("POST {path} HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: {content_length}\r\n\r\n").as_bytes());
    let want = b"HTTP/1.1 100 Continue\r\n\r\n";
    let mut got = vec![0u8; want.len()];
    s.read_exact(&mut got).expect("100 Continue");
    assert_eq!(&got[..], &want[..], "{}", String::from_utf8_lossy(&got));
}

const HALF_HEAD: &[u8] = b"POST /v1/transactions/batch HTTP/1.1\r\nhost: x\r\ncontent-le";

#[test]
fn a_silent_connection_and_a_half_sent_head_are_closed_at_the_header_timeout() {
    let s = Server::start(limits(64, 400, 5_000, 5_000));
    let opened = Instant::now();
    let mut silent = s.connect();
    let mut half = s.connect();
    send(&mut half, HALF_HEAD);
    // A head trickled a byte at a time, from another thread.
    let mut trickle = s.connect();
    let trickler = std::thread::spawn(move || {
        let start = Instant::now();
        for b in b"GET /v1/status HTTP/1.1\r\nhost: x\r\nx-pad: ".iter().cycle() {
            if trickle.write_all(&[*b]).is_err() || start.elapsed() > Duration::from_secs(5) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        (closed_within(&mut trickle, Duration::from_secs(1)).is_some(), start.elapsed())
    });
    for (what, c) in [("silent", &mut silent), ("half-sent head", &mut half)] {
        assert!(closed_within(c, Duration::from_secs(5)).is_some(), "{what} connection never closed");
        let t = opened.elapsed();
        eprintln!("{what}: closed {t:?} after opening (header timeout 400 ms)");
        assert!(t >= Duration::from_millis(350) && t < Duration::from_millis(400 + 250 + 500), "{what}: {t:?}");
    }
    let (closed, t) = trickler.join().unwrap();
    eprintln!("trickled head: closed after {t:?}");
    assert!(closed && t < Duration::from_millis(400 + 250 + 500), "a trickled head was accepted for {t:?}");
    assert!(s.metric("yrd_api_connections_timed_out_total") >= 3.0);
    // The server itself is fine.
    assert_eq!(s.get("/v1/status").0, 200);
}

#[test]
fn a_kept_alive_connection_is_closed_at_the_idle_timeout_not_the_header_timeout() {
    let s = Server::start(limits(64, 300, 1_200, 5_000));
    let mut c = s.connect();
    send(&mut c, b"GET /v1/status HTTP/1.1\r\nhost: x\r\n\r\n");
    assert_eq!(answer(&mut c).unwrap().0, 200);
    let t = closed_within(&mut c, Duration::from_secs(5)).expect("idle kept-alive connection never closed");
    eprintln!("kept-alive connection closed {t:?} after its answer (idle timeout 1200 ms, header 300 ms)");
    assert!(t >= Duration::from_millis(1_000), "closed too early ({t:?}): the idle timeout is 1200 ms");
    assert!(t < Duration::from_millis(1_200 + 250 + 800), "{t:?}");
    // Requests in time on the same connection keep it open.
    let mut c = s.connect();
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(400));
        send(&mut c, b"GET /v1/status HTTP/1.1\r\nhost: x\r\n\r\n");
        assert_eq!(answer(&mut c).expect("kept-alive connection closed while in use").0, 200);
    }
}

#[test]
fn at_the_cap_a_new_connection_closes_the_stalest_waiter_and_is_served() {
    let s = Server::start(limits(4, 10_000, 10_000, 10_000));
    // Four silent connections fill the cap; the first opened is the stalest.
    let mut idle: Vec<TcpStream> = Vec::new();
    for _ in 0..4 {
        idle.push(s.connect()); // accepted in this order
    }
    // Clients keep their (kept-alive) connections, so each round is at the cap.
    let mut clients = Vec::new();
    for (round, victim) in idle.iter_mut().enumerate() {
        let mut c = s.connect();
        send(&mut c, b"GET /v1/status HTTP/1.1\r\nhost: x\r\n\r\n");
        assert_eq!(answer(&mut c).map(|a| a.0), Some(200), "round {round}");
        assert!(
            closed_within(victim, Duration::from_secs(3)).is_some(),
            "round {round}: the stalest connection was not closed"
        );
        clients.push(c);
    }
    assert_eq!(s.metric("yrd_api_connections_evicted_total"), 4.0);
    // The clients, answered after the silent ones opened, are still connected.
    for c in &mut clients {
        send(c, b"GET /v1/status HTTP/1.1\r\nhost: x\r\n\r\n");
        assert_eq!(answer(c).map(|a| a.0), Some(200));
    }
}

#[test]
fn a_stalled_body_is_evicted_at_the_cap_like_an_idle_connection() {
    let s = Server::start(limits(1, 10_000, 10_000, 10_000));
    let mut stalled = s.connect();
    start_body(&mut stalled, "/v1/transactions", 1000);
    send(&mut stalled, b"{\"tx\":");
    assert_eq!(s.get("/v1/status").0, 200, "a stalled body kept a client out");
    assert!(closed_within(&mut stalled, Duration::from_secs(3)).is_some(), "stalled body not closed");
}

#[test]
fn when_every_connection_is_busy_a_new_one_gets_503_too_many_connections() {
    let s = Server::start(limits(3, 10_000, 10_000, 10_000));
    let mut polls: Vec<TcpStream> = (0..3).map(|_| s.connect()).collect();
    for p in &mut polls {
        send(p, b"GET /v1/wait/100?timeout_ms=4000 HTTP/1.1\r\nhost: x\r\n\r\n");
    }
    // Each long poll subscribes to the committed height when its handler runs.
    wait_until("three long polls running", Duration::from_secs(5), || s.shared.committed.receiver_count() == 3);
    let (status, v) = s.get("/v1/status");
    assert_eq!((status, v["code"].as_str().unwrap()), (503, "too_many_connections"), "{v}");
    assert!(v["error"].as_str().unwrap().contains("retry"), "{v}");
    // The long polls were not disturbed; when they end, clients get in again.
    s.shared.committed.send_replace(Height(100));
    for p in &mut polls {
        let (status, v) = answer(p).expect("long poll answered");
        assert_eq!((status, v["timed_out"].as_bool()), (200, Some(false)), "{v}");
    }
    assert_eq!(s.get("/v1/status").0, 200);
    assert!(s.metric("yrd_api_connections_refused_total") >= 1.0);
}

#[test]
fn long_polls_hold_at_most_half_of_the_connections() {
    // Four connections: two may wait; the others stay for short requests.
    let s = Server::start(ServeLimits { max_long_polls: api::long_poll_cap(4), ..limits(4, 10_000, 10_000, 10_000) });
    assert_eq!(api::long_poll_cap(4), 2);
    let mut polls: Vec<TcpStream> = (0..2).map(|_| s.connect()).collect();
    for p in &mut polls {
        send(p, b"GET /v1/wait/100?timeout_ms=20000 HTTP/1.1\r\nhost: x\r\n\r\n");
    }
    wait_until("two long polls running", Duration::from_secs(5), || s.shared.committed.receiver_count() == 2);
    // A third is refused at once, with the reason and a retry hint.
    let mut third = s.connect();
    send(&mut third, b"GET /v1/wait/100?timeout_ms=20000 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    let mut raw = Vec::new();
    third.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).to_lowercase();
    assert!(raw.starts_with("http/1.1 503"), "{raw}");
    assert!(raw.contains("retry-after: 1\r\n"), "{raw}");
    assert!(raw.contains("\"code\":\"busy\"") && raw.contains("too many long polls"), "{raw}");
    assert_eq!(s.metric("yrd_api_long_polls_refused_total"), 1.0);
    // Short requests still get in, and so does a wait for a height already reached.
    assert_eq!(s.get("/v1/status").0, 200);
    let (status, v) = s.get("/v1/wait/0?timeout_ms=20000");
    assert_eq!((status, v["timed_out"].as_bool()), (200, Some(false)), "{v}");
    // When the waits end, their permits are back.
    s.shared.committed.send_replace(Height(100));
    for p in &mut polls {
        let (status, v) = answer(p).expect("long poll answered");
        assert_eq!((status, v["timed_out"].as_bool()), (200, Some(false)), "{v}");
    }
    drop(polls);
    let (status, v) = s.get("/v1/wait/101?timeout_ms=50");
    assert_eq!((status, v["timed_out"].as_bool()), (200, Some(true)), "{v}");
    assert_eq!(s.metric("yrd_api_long_polls_refused_total"), 1.0);
}

#[test]
fn a_body_announced_and_never_sent_gets_408_body_timeout() {
    let s = Server::start(limits(64, 10_000, 10_000, 700));
    let mut c = s.connect();
    let start = Instant::now();
    send(&mut c, b"POST /v1/transactions/batch HTTP/1.1\r\nhost: x\r\ncontent-length: 5000\r\n\r\n{\"txs\": [");
    let (status, v) = answer(&mut c).expect("an answer before the connection closes");
    let t = start.elapsed();
    assert_eq!((status, v["code"].as_str().unwrap()), (408, "body_timeout"), "{v}");
    assert!(v["error"].as_str().unwrap().contains("9 of 5000 bytes"), "{v}");
    assert!(t >= Duration::from_millis(650) && t < Duration::from_millis(3_000), "{t:?}");
    assert!(closed_within(&mut c, Duration::from_secs(3)).is_some(), "connection left open after 408");
}

#[test]
fn bodies_beyond_the_in_flight_budget_get_503_busy_until_the_budget_is_back() {
    // The budget is one largest batch body.
    let s = Server::start(limits(64, 10_000, 10_000, 1_500));
    let mut hog = s.connect();
    start_body(&mut hog, "/v1/transactions/batch", api::MAX_BATCH_BODY_BYTES);
    let mut small = s.connect();
    let body = br#"{"txs": []}"#;
    send(&mut small, format!("POST /v1/transactions/batch HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n", body.len()).as_bytes());
    let (status, v) = answer(&mut small).expect("answer");
    assert_eq!((status, v["code"].as_str().unwrap()), (503, "busy"), "{v}");
    assert!(v["error"].as_str().unwrap().contains("retry later"), "{v}");
    assert_eq!(s.metric("yrd_api_bodies_refused_total"), 1.0);
    // The hog times out; its reservation is released.
    let (status, v) = answer(&mut hog).expect("hog answered");
    assert_eq!((status, v["code"].as_str().unwrap()), (408, "body_timeout"), "{v}");
    let mut again = s.connect();
    send(&mut again, format!("POST /v1/transactions/batch HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n", body.len()).as_bytes());
    send(&mut again, body);
    let (status, v) = answer(&mut again).expect("answer");
    assert_eq!((status, v), (200, serde_json::json!({"results": []})));
}

#[test]
fn an_oversize_content_length_is_refused_before_the_body_is_sent() {
    let s = Server::start(limits(64, 10_000, 10_000, 10_000));
    let mut c = s.connect();
    send(&mut c, b"POST /v1/transactions/batch HTTP/1.1\r\nhost: x\r\ncontent-length: 1000000000\r\n\r\n");
    let start = Instant::now();
    let (status, v) = answer(&mut c).expect("answer without the body");
    assert_eq!((status, v["code"].as_str().unwrap()), (413, "body_too_large"), "{v}");
    assert!(v["error"].as_str().unwrap().contains("1000000000 bytes"), "{v}");
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn batch_limits_apply_while_parsing() {
    let s = Server::start(limits(64, 10_000, 10_000, 10_000));
    let post = |body: &[u8]| {
        let mut c = s.connect();
        send(&mut c, format!("POST /v1/transactions/batch HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n", body.len()).as_bytes());
        send(&mut c, body);
        answer(&mut c).expect("answer")
    };
    // The issue's body: 16 MB of empty strings.
    let mut huge = b"{\"txs\":[".to_vec();
    while huge.len() < api::MAX_BATCH_BODY_BYTES - 8 {
        huge.extend_from_slice(b"\"\",");
    }
    huge.extend_from_slice(b"\"\"]}");
    let (status, v) = post(&huge);
    assert_eq!((status, v["code"].as_str().unwrap()), (400, "batch_too_large"), "{v}");
    assert!(v["error"].as_str().unwrap().contains("more than 2000"), "{v}");
    // An entry longer than any transaction stops parsing too.
    let long = format!("{{\"txs\": [\"00\", \"{}\"]}}", "ab".repeat(5000));
    let (status, v) = post(long.as_bytes());
    assert_eq!((status, v["code"].as_str().unwrap()), (400, "too_large"), "{v}");
    assert!(v["error"].as_str().unwrap().contains("transaction 1 of the batch is 10000 hex characters"), "{v}");
}

#[test]
fn shutdown_closes_idle_and_stalled_connections_without_waiting_for_them() {
    let mut s = Server::start(limits(64, 30_000, 30_000, 30_000));
    let mut idle: Vec<TcpStream> = (0..20).map(|_| s.connect()).collect();
    let mut stalled = s.connect();
    start_body(&mut stalled, "/v1/transactions", 100);
    let mut half = s.connect();
    send(&mut half, HALF_HEAD);
    // And one long poll in progress, which the shutdown wakes.
    let mut poll = s.connect();
    send(&mut poll, b"GET /v1/wait/100?timeout_ms=30000 HTTP/1.1\r\nhost: x\r\n\r\n");
    wait_until("long poll running", Duration::from_secs(5), || s.shared.committed.receiver_count() == 1);
    let took = s.shutdown();
    eprintln!("shutdown with 22 idle or stalled connections and a long poll took {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    let (status, v) = answer(&mut poll).expect("the long poll is answered");
    assert_eq!((status, v["timed_out"].as_bool()), (200, Some(true)));
    for c in idle.iter_mut().chain([&mut stalled, &mut half]) {
        assert!(closed_within(c, Duration::from_secs(1)).is_some(), "a connection survived the shutdown");
    }
    assert!(TcpStream::connect(s.addr).is_err(), "still accepting after shutdown");
}
