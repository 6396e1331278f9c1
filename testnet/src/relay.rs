//! `yrd-testnet --wan --relay`: the city-to-city delays without network namespaces
//! or `tc netem` (a kernel without `sch_netem`, or no root).
//!
//! Every node stays on 127.0.0.1, but it reaches each other validator through a
//! relay of its own: for the ordered pair (i, j) a TCP listener on 127.0.0.1 that
//! node i's `peers` entry for j points at. Each connection accepted there is joined
//! to j's libp2p port, and every chunk read in either direction is written on after
//! that pair's one-way delay (plus jitter, if asked), in order. Both nodes of a pair
//! dial each other through their own relay, so whichever connection libp2p keeps
//! carries the delay both ways. Nodes learn no other addresses (the node has no
//! identify or discovery protocol), so no traffic between validators bypasses the
//! relays.
//!
//! What it does not emulate, and netem does: packet loss (TCP turns loss into
//! retransmission delays the relay cannot reproduce, so `--loss` is refused with
//! `--relay`), and the per-packet effect of delay on TCP's congestion window
//! (the relay delays bytes, its own loopback legs are not delayed). The timer has
//! tokio's 1 ms resolution: each chunk waits its delay rounded up to the next
//! millisecond tick (measured in the tests below; docs/testnet.md). The load client's
//! API requests and the harness's own status polls are not delayed.
//!
//! The relays run on one thread of their own (a current-thread tokio runtime) in
//! the `yrd-testnet` process and stop with it; they hold their listening sockets
//! from the start, so no port can be taken between choosing and listening.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::chaos::plan::Rng;

/// Bytes read at once from one side of a relayed connection.
const CHUNK: usize = 64 * 1024;
/// Chunks in flight (read, not yet written) per direction; past this the reader
/// waits, so a node that stops reading (SIGSTOP) holds at most 256 × 64 KiB of each
/// link's relay memory, and its peers feel the back-pressure as with a real link.
const IN_FLIGHT: usize = 256;

/// One directed link: node `from` dials `to` through `listen`.
#[derive(Debug, Clone)]
pub struct Link {
    pub from: usize,
    pub to: usize,
    /// Where node `from` dials (127.0.0.1, a port the relay holds).
    pub listen: SocketAddr,
    /// Bytes carried from `from` to `to` and back, over every connection of this link.
    pub bytes_forward: Arc<AtomicU64>,
    pub bytes_back: Arc<AtomicU64>,
}

/// The running relays of one testnet. Dropping it stops them (their thread ends,
/// every relayed connection closes).
pub struct Relays {
    pub links: Vec<Link>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Delay of one direction: `delay_ms` plus a uniform variation of ±`jitter_ms`
/// (never below zero), from a generator seeded per link.
#[derive(Debug, Clone, Copy)]
struct Delay {
    delay: Duration,
    jitter_ms: f64,
}

impl Relays {
    /// Starts a relay for every ordered pair of distinct nodes: node i reaches
    /// node j (libp2p on 127.0.0.1:`p2p_ports[j]`) through `links` entry (i, j),
    /// delayed by `matrix[i][j]` ms one way and `matrix[j][i]` back.
    pub fn start(p2p_ports: &[u16], matrix: &[Vec<f64>], jitter_ms: f64) -> Result<Relays> {
        let n = p2p_ports.len();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the relays' runtime")?;
        // Bind every listener first, on this thread, so a failure is reported here.
        let mut bound = Vec::new();
        for i in 0..n {
            for j in 0..n {
                if i == j {
                    continue;
                }
                let l = rt
                    .block_on(TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
                    .context("cannot open a relay listener on 127.0.0.1")?;
                let addr = l.local_addr()?;
                bound.push((
                    l,
                    Link {
                        from: i,
                        to: j,
                        listen: addr,
                        bytes_forward: Arc::default(),
                        bytes_back: Arc::default(),
                    },
                ));
            }
        }
        let links: Vec<Link> = bound.iter().map(|(_, l)| l.clone()).collect();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let ports = p2p_ports.to_vec();
        let matrix = matrix.to_vec();
        let thread = std::thread::Builder::new()
            .name("wan-relays".into())
            .spawn(move || {
                rt.block_on(async move {
                    for (listener, link) in bound {
                        let target = SocketAddr::from((Ipv4Addr::LOCALHOST, ports[link.to]));
                        let fwd = Delay { delay: ms(matrix[link.from][link.to]), jitter_ms };
                        let back = Delay { delay: ms(matrix[link.to][link.from]), jitter_ms };
                        let seed = (link.from * 64 + link.to) as u64;
                        tokio::spawn(serve(listener, target, fwd, back, link, seed));
                    }
                    let _ = rx.await;
                });
                // Dropping the runtime cancels every relay task and closes its sockets.
            })
            .context("cannot start the relay thread")?;
        Ok(Relays { links, shutdown: Some(tx), thread: Some(thread) })
    }

    /// The address node `from` dials to reach node `to`.
    pub fn address(&self, from: usize, to: usize) -> Option<SocketAddr> {
        self.links.iter().find(|l| l.from == from && l.to == to).map(|l| l.listen)
    }

    /// Bytes carried over every link so far.
    pub fn total_bytes(&self) -> u64 {
        self.links
            .iter()
            .map(|l| l.bytes_forward.load(Ordering::Relaxed) + l.bytes_back.load(Ordering::Relaxed))
            .sum()
    }
}

impl Drop for Relays {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn ms(x: f64) -> Duration {
    Duration::from_secs_f64(x.max(0.0) / 1000.0)
}

/// Accepts connections for one link, each joined to `target` with the delays.
async fn serve(listener: TcpListener, target: SocketAddr, fwd: Delay, back: Delay, link: Link, seed: u64) {
    let mut conn = 0u64;
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            // Out of descriptors or similar: try again shortly rather than spin.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        conn += 1;
        let link = link.clone();
        let seed = seed.wrapping_mul(1_000_003).wrapping_add(conn);
        tokio::spawn(async move {
            // The target not listening (yet, or any more) closes the inbound side:
            // to the dialling node that is a refused connection, as without a relay.
            let Ok(outbound) = TcpStream::connect(target).await else { return };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let (ri, wi) = inbound.into_split();
            let (ro, wo) = outbound.into_split();
            let a = tokio::spawn(pipe(ri, wo, fwd, link.bytes_forward.clone(), seed));
            let b = tokio::spawn(pipe(ro, wi, back, link.bytes_back.clone(), seed ^ 0x9e37_79b9_7f4a_7c15));
            let _ = tokio::join!(a, b);
        });
    }
}

/// Copies `r` to `w`, each chunk written `d` after it was read, in order.
async fn pipe(
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut w: tokio::net::tcp::OwnedWriteHalf,
    d: Delay,
    counter: Arc<AtomicU64>,
    seed: u64,
) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(IN_FLIGHT);
    let writer = tokio::spawn(async move {
        while let Some((due, mut buf)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            // Whatever else is already due goes out in the same write.
            while let Ok((next_due, more)) = rx.try_recv() {
                if next_due > Instant::now() {
                    if w.write_all(&buf).await.is_err() {
                        return;
                    }
                    tokio::time::sleep_until(next_due).await;
                    buf = more;
                    continue;
                }
                buf.extend_from_slice(&more);
            }
            if w.write_all(&buf).await.is_err() {
                return;
            }
        }
        let _ = w.shutdown().await;
    });
    let mut rng = Rng::new(seed);
    let mut last_due = Instant::now();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        counter.fetch_add(n as u64, Ordering::Relaxed);
        let jitter = if d.jitter_ms > 0.0 { (rng.unit() * 2.0 - 1.0) * d.jitter_ms } else { 0.0 };
        let wait = ms(d.delay.as_secs_f64() * 1000.0 + jitter);
        // In order, as on a single TCP connection: never before the chunk ahead.
        let due = (Instant::now() + wait).max(last_due);
        last_due = due;
        if tx.send((due, buf[..n].to_vec())).await.is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}

/// Checks the relays can be used for `n` nodes: refuses what they cannot emulate.
pub fn check(loss_pct: f64) -> Result<()> {
    if loss_pct > 0.0 {
        return Err(anyhow!(
            "--loss cannot be emulated with --relay (TCP turns packet loss into retransmission delays a relay cannot reproduce); \
             use --wan with netem for loss"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// An echo server on 127.0.0.1 (one connection), for timing the relay.
    fn echo() -> (u16, std::thread::JoinHandle<()>) {
        let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 4096];
            loop {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if s.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        (port, h)
    }

    #[test]
    fn a_round_trip_through_the_relay_takes_both_delays_and_keeps_every_byte_in_order() {
        let (port, server) = echo();
        // Node 0 = the client here, node 1 = the echo server: 6 ms there, 9 ms back.
        let matrix = vec![vec![0.0, 6.0], vec![9.0, 0.0]];
        let relays = Relays::start(&[1, port], &matrix, 0.0).unwrap();
        let addr = relays.address(0, 1).unwrap();
        assert_eq!(relays.address(1, 0).map(|a| a.ip()), Some(Ipv4Addr::LOCALHOST.into()));
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut rtts = Vec::new();
        for round in 0..20u32 {
            let msg: Vec<u8> = (0..1000u32).map(|k| (k.wrapping_mul(31) ^ round) as u8).collect();
            let t = std::time::Instant::now();
            s.write_all(&msg).unwrap();
            let mut back = vec![0u8; msg.len()];
            s.read_exact(&mut back).unwrap();
            rtts.push(t.elapsed());
            assert_eq!(back, msg, "round {round}: bytes changed or reordered");
        }
        rtts.sort();
        let min = rtts[0];
        let median = rtts[rtts.len() / 2];
        // 15 ms of delay; tokio's timer rounds each leg up to its 1 ms tick.
        assert!(min >= Duration::from_millis(15), "round trip {min:?} shorter than the 15 ms of delay");
        assert!(median < Duration::from_millis(40), "median round trip {median:?}: the relay adds far more than its delay");
        let l = &relays.links[0];
        assert_eq!((l.from, l.to), (0, 1));
        assert_eq!(l.bytes_forward.load(Ordering::Relaxed), 20_000);
        assert_eq!(l.bytes_back.load(Ordering::Relaxed), 20_000);
        drop(s);
        drop(relays);
        server.join().unwrap();
    }

    #[test]
    fn a_burst_arrives_whole_and_in_order_with_jitter() {
        let (port, server) = echo();
        let matrix = vec![vec![0.0, 2.0], vec![2.0, 0.0]];
        let relays = Relays::start(&[1, port], &matrix, 1.5).unwrap();
        let mut s = std::net::TcpStream::connect(relays.address(0, 1).unwrap()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let msg: Vec<u8> = (0..2_000_000u32).map(|k| (k % 251) as u8).collect();
        let mut w = s.try_clone().unwrap();
        let sent = msg.clone();
        let writer = std::thread::spawn(move || w.write_all(&sent).unwrap());
        let mut back = vec![0u8; msg.len()];
        s.read_exact(&mut back).unwrap();
        writer.join().unwrap();
        assert!(back == msg, "2 MB through a jittered relay came back changed or reordered");
        drop(s);
        drop(relays);
        server.join().unwrap();
    }

    #[test]
    fn loss_is_refused_with_the_reason() {
        assert!(check(0.0).is_ok());
        let e = check(1.0).unwrap_err().to_string();
        assert!(e.contains("--loss") && e.contains("--relay"), "{e}");
    }

    #[test]
    fn a_link_to_a_node_that_is_not_listening_closes_the_dialler() {
        let dead = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = dead.local_addr().unwrap().port();
        drop(dead);
        let relays = Relays::start(&[1, port], &[vec![0.0, 1.0], vec![1.0, 0.0]], 0.0).unwrap();
        let mut s = std::net::TcpStream::connect(relays.address(0, 1).unwrap()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 1];
        // Closed (0 bytes) or reset: either way, not a hang.
        assert!(matches!(s.read(&mut buf), Ok(0) | Err(_)));
    }
}
