//! Integration tests of the permissioned network layer, on 127.0.0.1 only.
//!
//! Every wait is a condition with a bounded timeout; every node a test starts, it stops.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use libp2p::identity::Keypair;
use tokio::sync::mpsc;
use tokio::time::timeout;
use yrd_node::net::{
    self, ed25519_from_peer_id, peer_id_from_ed25519, Multiaddr, NetConfig, NetError, NetEvent,
    NetHandle, PeerId, Topic, Verdict,
};

const CHAIN: &str = "00c0ffee00c0ffee";
const WAIT: Duration = Duration::from_secs(15);

fn secret(i: u8) -> [u8; 32] {
    [i; 32]
}

fn public(i: u8) -> [u8; 32] {
    let mut sk = secret(i);
    let kp = Keypair::ed25519_from_bytes(&mut sk).expect("valid seed");
    kp.public().try_into_ed25519().expect("ed25519").to_bytes()
}

fn pid(i: u8) -> PeerId {
    peer_id_from_ed25519(&public(i)).expect("valid key")
}

struct Node {
    net: NetHandle,
    events: mpsc::Receiver<NetEvent>,
    addr: Multiaddr,
}

impl Node {
    fn id(&self) -> PeerId {
        self.net.local_peer_id()
    }

    /// Dial address with the /p2p/ suffix.
    fn p2p_addr(&self) -> Multiaddr {
        self.addr
            .clone()
            .with(libp2p::multiaddr::Protocol::P2p(self.id()))
    }

    /// Waits (bounded) for the first event matching `pred`, discarding others. Gossip
    /// messages discarded on the way are ignored (reported as `Ignore`).
    async fn wait_for(&mut self, what: &str, mut pred: impl FnMut(&NetEvent) -> bool) -> NetEvent {
        let net = self.net.clone();
        let events = &mut self.events;
        let found = timeout(WAIT, async {
            loop {
                let ev = events.recv().await.expect("event channel open");
                if pred(&ev) {
                    return ev;
                }
                if let NetEvent::Gossip { id, from, .. } = ev {
                    net.report(id, from, Verdict::Ignore).await.expect("report");
                }
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
    }

    /// Waits for the next gossip message; returns (topic, from, author, bytes) and
    /// reports `verdict` for it.
    async fn next_gossip(&mut self, verdict: Verdict) -> (Topic, PeerId, PeerId, Vec<u8>) {
        match self
            .wait_for("gossip", |e| matches!(e, NetEvent::Gossip { .. }))
            .await
        {
            NetEvent::Gossip {
                topic,
                from,
                author,
                id,
                bytes,
            } => {
                self.net.report(id, from, verdict).await.expect("report");
                (topic, from, author, bytes)
            }
            _ => unreachable!(),
        }
    }

    async fn stop(self) {
        self.net.shutdown().await;
    }
}

fn config(i: u8, allowed: &[u8], bootstrap: Vec<Multiaddr>) -> NetConfig {
    let mut cfg = NetConfig::new(secret(i), CHAIN);
    cfg.allowed = allowed.iter().map(|&j| public(j)).collect();
    cfg.bootstrap = bootstrap;
    cfg
}

async fn start(cfg: NetConfig) -> Node {
    let (net, events) = net::start(cfg).await.expect("network starts");
    let addr = net
        .listen_addrs()
        .await
        .expect("addrs")
        .into_iter()
        .next()
        .expect("one listen address");
    Node { net, events, addr }
}

/// Polls `cond` every 50 ms until it holds, at most `WAIT`.
async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn topic_peers_at_least(net: &NetHandle, n: usize) -> bool {
    for t in Topic::ALL {
        if net.topic_peers(t).await.expect("topic peers").len() < n {
            return false;
        }
    }
    true
}

#[test]
fn identity_helpers() {
    let p = pid(1);
    assert_eq!(net::local_peer_id(&secret(1)).unwrap(), p);
    assert_eq!(ed25519_from_peer_id(&p), Some(public(1)));
    assert_ne!(pid(2), p);
}

#[tokio::test]
async fn config_is_validated() {
    let mut cfg = NetConfig::new(secret(1), "bad tag/with slash");
    assert!(matches!(
        net::start(cfg.clone()).await,
        Err(NetError::Config(_))
    ));
    cfg.chain_tag = CHAIN.into();
    cfg.max_request_bytes = 0;
    assert!(matches!(net::start(cfg).await, Err(NetError::Config(_))));
}

/// A — B — C in a line (A and C do not know each other): gossip on both topics from A
/// reaches C only because B accepts and forwards it; a message B rejects goes no further.
#[tokio::test]
async fn gossip_reaches_everyone_through_validation() {
    let all = [1, 2, 3];
    let mut a = start(config(1, &all, vec![])).await;
    let mut b = start(config(2, &all, vec![a.p2p_addr()])).await;
    // C's bootstrap address has no /p2p/ suffix: its peer id is learnt on connection.
    let mut c = start(config(3, &all, vec![b.addr.clone()])).await;

    eventually("B subscribed to by A and C", || {
        topic_peers_at_least(&b.net, 2)
    })
    .await;
    eventually("A sees B's subscriptions", || {
        topic_peers_at_least(&a.net, 1)
    })
    .await;
    eventually("C sees B's subscriptions", || {
        topic_peers_at_least(&c.net, 1)
    })
    .await;

    a.net
        .publish(Topic::Transactions, b"tx from a".to_vec())
        .await
        .expect("publish tx");
    a.net
        .publish(Topic::Consensus, b"vote from a".to_vec())
        .await
        .expect("publish vote");

    let mut at_b = vec![];
    for _ in 0..2 {
        let (topic, from, author, bytes) = b.next_gossip(Verdict::Accept).await;
        assert_eq!((from, author), (a.id(), a.id()));
        at_b.push((topic, bytes));
    }
    let mut at_c = vec![];
    for _ in 0..2 {
        let (topic, from, author, bytes) = c.next_gossip(Verdict::Accept).await;
        assert_eq!(from, b.id(), "forwarded by B");
        assert_eq!(author, a.id(), "signed by A");
        at_c.push((topic, bytes));
    }
    for got in [&mut at_b, &mut at_c] {
        got.sort_by_key(|(t, _)| *t == Topic::Consensus);
        assert_eq!(
            *got,
            vec![
                (Topic::Transactions, b"tx from a".to_vec()),
                (Topic::Consensus, b"vote from a".to_vec())
            ]
        );
    }

    // C publishes a bad message then a good one; B rejects the bad one, so A must see
    // only the good one.
    c.net
        .publish(Topic::Transactions, b"bad".to_vec())
        .await
        .expect("publish bad");
    let (_, _, _, bytes) = b.next_gossip(Verdict::Reject).await;
    assert_eq!(bytes, b"bad");
    c.net
        .publish(Topic::Transactions, b"good".to_vec())
        .await
        .expect("publish good");
    let (_, _, _, bytes) = b.next_gossip(Verdict::Accept).await;
    assert_eq!(bytes, b"good");
    let (_, from, author, bytes) = a.next_gossip(Verdict::Accept).await;
    assert_eq!(
        (from, author, bytes.as_slice()),
        (b.id(), c.id(), &b"good"[..])
    );
    assert_eq!(b.net.stats().gossip_rejected, 1);

    // A node does not receive its own messages, and oversize gossip is refused locally.
    let too_big = vec![0u8; NetConfig::new(secret(1), CHAIN).max_gossip_bytes + 1];
    assert!(matches!(
        a.net.publish(Topic::Consensus, too_big).await,
        Err(NetError::TooLarge { .. })
    ));

    // The traffic counters (yrd_p2p_bytes_*, yrd_gossip_*): A and C published two each
    // (the oversize one never left A), B none; B received four first copies (forwarded
    // copies are not counted again) and A the one B forwarded; every node's wire
    // counters moved, by at least what it carried.
    let (sa, sb, sc) = (a.net.stats(), b.net.stats(), c.net.stats());
    assert_eq!((sa.gossip_published, sb.gossip_published, sc.gossip_published), (2, 0, 2), "{sa:?} {sb:?} {sc:?}");
    assert_eq!((sa.gossip_received, sb.gossip_received), (1, 4), "{sa:?} {sb:?}");
    let payloads = (b"tx from a".len() + b"vote from a".len()) as u64;
    for s in [&sa, &sb, &sc] {
        assert!(s.bytes_sent > payloads && s.bytes_received > payloads, "{s:?}");
    }

    a.stop().await;
    b.stop().await;
    c.stop().await;
}

/// A node whose key is not allowed dials an allowed node: it is refused, ends up with no
/// connection, receives no gossip and no sync response, while the allowed nodes work on.
#[tokio::test]
async fn unknown_key_is_refused_and_receives_nothing() {
    let allowed = [1, 2];
    let mut a = start(config(1, &allowed, vec![])).await;
    let mut b = start(config(2, &allowed, vec![a.p2p_addr()])).await;
    // The intruder (key 9) believes A is a peer and dials it.
    let mut r = start(config(9, &[1, 2], vec![a.p2p_addr()])).await;

    let refused = a
        .wait_for("refusal of the intruder", |e| {
            matches!(e, NetEvent::ConnectionRefused { .. })
        })
        .await;
    match refused {
        NetEvent::ConnectionRefused { peer, inbound, .. } => {
            assert_eq!(peer, r.id());
            assert!(inbound);
        }
        _ => unreachable!(),
    }
    assert!(a.net.stats().refused_connections >= 1);
    assert!(!a.net.peers().await.unwrap().contains(&r.id()));

    // The allowed pair keeps working.
    eventually("A and B subscribed", || topic_peers_at_least(&a.net, 1)).await;
    eventually("B sees A's subscriptions", || {
        topic_peers_at_least(&b.net, 1)
    })
    .await;
    a.net
        .publish(Topic::Consensus, b"for validators only".to_vec())
        .await
        .expect("publish");
    let (_, _, _, bytes) = b.next_gossip(Verdict::Accept).await;
    assert_eq!(bytes, b"for validators only");

    // The intruder has no connection, no subscribed peers, and its request fails.
    eventually("intruder has no connections", || async {
        r.net.peers().await.unwrap().is_empty()
    })
    .await;
    assert!(r
        .net
        .topic_peers(Topic::Consensus)
        .await
        .unwrap()
        .is_empty());
    assert!(r
        .net
        .request(a.id(), b"give me blocks".to_vec())
        .await
        .is_err());
    assert!(r
        .net
        .publish(Topic::Transactions, b"spam".to_vec())
        .await
        .is_err());
    // Drain what the intruder got: connection churn at most, never gossip or requests.
    while let Ok(ev) = r.events.try_recv() {
        assert!(
            !matches!(ev, NetEvent::Gossip { .. } | NetEvent::Request { .. }),
            "intruder received {ev:?}"
        );
    }

    // And A never saw anything from it beyond refusals.
    while let Ok(ev) = a.events.try_recv() {
        match ev {
            NetEvent::ConnectionRefused { peer, .. } => assert_eq!(peer, r.id()),
            NetEvent::PeerConnected(p) | NetEvent::PeerDisconnected(p) => assert_ne!(p, r.id()),
            NetEvent::Gossip { author, .. } => assert_ne!(author, r.id()),
            NetEvent::Request { peer, .. } => assert_ne!(peer, r.id()),
        }
    }

    a.stop().await;
    b.stop().await;
    r.stop().await;
}

/// Answers every request on `node` in a task: the reply is `len` zero bytes where `len`
/// is the request parsed as a decimal number, or the request reversed otherwise. Records
/// the size of every request seen. Ends when the node stops.
fn spawn_responder(
    node: Node,
) -> (
    NetHandle,
    Arc<Mutex<Vec<usize>>>,
    tokio::task::JoinHandle<()>,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (net, mut events) = (node.net, node.events);
    let (net2, seen2) = (net.clone(), seen.clone());
    let task = tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            if let NetEvent::Request { bytes, channel, .. } = ev {
                seen2.lock().unwrap().push(bytes.len());
                let reply = match std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|s| s.parse::<usize>().ok())
                {
                    Some(n) => vec![0u8; n],
                    None => bytes.iter().rev().copied().collect(),
                };
                let _ = net2.respond(channel, reply).await;
            }
        }
    });
    (net, seen, task)
}

#[tokio::test]
async fn request_response_round_trip_and_caps() {
    let allowed = [1, 2];
    let mut cfg_a = config(1, &allowed, vec![]);
    cfg_a.max_response_bytes = 1_000; // A accepts small responses only
    cfg_a.request_timeout = Duration::from_secs(5);
    let mut a = start(cfg_a).await;
    let mut cfg_b = config(2, &allowed, vec![a.p2p_addr()]);
    cfg_b.max_request_bytes = 1_000; // B accepts small requests only
    cfg_b.max_response_bytes = 10_000; // and sends responses up to 10 kB
    let b = start(cfg_b).await;
    let b_id = b.id();
    // A has no address for B: requests go over the connection B opened.
    a.wait_for(
        "A connected to B",
        |e| matches!(e, NetEvent::PeerConnected(p) if *p == b_id),
    )
    .await;
    let (b_net, seen, responder) = spawn_responder(b);

    // Round trip.
    assert_eq!(
        a.net
            .request(b_id, b"hello".to_vec())
            .await
            .expect("round trip"),
        b"olleh"
    );
    assert_eq!(
        a.net
            .request(b_id, b"1000".to_vec())
            .await
            .expect("at the cap")
            .len(),
        1000
    );

    // Response over the requester's cap: B sends it, A's codec refuses it from the prefix.
    let err = a
        .net
        .request(b_id, b"5000".to_vec())
        .await
        .expect_err("oversize response");
    assert!(matches!(err, NetError::Request { .. }), "{err}");

    // Response over the responder's own cap: never sent; the requester gets an error.
    assert!(a.net.request(b_id, b"20000".to_vec()).await.is_err());

    // Request over the responder's cap: refused by B's codec, never delivered to B's app.
    let big = vec![b'x'; 2_000];
    assert!(a.net.request(b_id, big).await.is_err());
    assert!(!seen.lock().unwrap().contains(&2_000));

    // Request over the requester's own cap: refused locally.
    let huge = vec![b'x'; 65 << 10];
    assert!(matches!(
        a.net.request(b_id, huge).await,
        Err(NetError::TooLarge { .. })
    ));

    // Request to a peer that is not allowed: refused locally.
    assert!(matches!(
        a.net.request(pid(9), b"hi".to_vec()).await,
        Err(NetError::NotAllowed(_))
    ));

    // Nothing crashed: still connected, still answering.
    assert_eq!(
        a.net
            .request(b_id, b"abc".to_vec())
            .await
            .expect("still works"),
        b"cba"
    );
    assert!(a.net.peers().await.unwrap().contains(&b_id));

    a.stop().await;
    b_net.shutdown().await;
    timeout(WAIT, responder)
        .await
        .expect("responder ends")
        .expect("responder ok");
}

/// A keeps B in its bootstrap list; B is stopped and restarted on the same port (with no
/// bootstrap of its own), and A reconnects to it by itself within a few seconds. Gossip
/// flows again afterwards.
#[tokio::test]
async fn restarted_peer_is_reconnected() {
    let allowed = [1, 2];
    let b = start(config(2, &allowed, vec![])).await;
    let (b_id, b_listen, b_dial) = (b.id(), b.addr.clone(), b.p2p_addr());
    let mut a = start(config(1, &allowed, vec![b_dial])).await;
    a.wait_for(
        "A connected to B",
        |e| matches!(e, NetEvent::PeerConnected(p) if *p == b_id),
    )
    .await;

    b.stop().await;
    a.wait_for(
        "A sees B gone",
        |e| matches!(e, NetEvent::PeerDisconnected(p) if *p == b_id),
    )
    .await;

    let mut cfg_b = config(2, &allowed, vec![]);
    cfg_b.listen = b_listen.clone();
    let restarted = Instant::now();
    let mut b = start(cfg_b).await;
    assert_eq!(b.addr, b_listen, "same port");
    a.wait_for(
        "A reconnected to B",
        |e| matches!(e, NetEvent::PeerConnected(p) if *p == b_id),
    )
    .await;
    let took = restarted.elapsed();
    assert!(took < Duration::from_secs(5), "reconnect took {took:?}");

    eventually("B sees A's subscriptions", || {
        topic_peers_at_least(&b.net, 1)
    })
    .await;
    eventually("A sees B's subscriptions", || {
        topic_peers_at_least(&a.net, 1)
    })
    .await;
    a.net
        .publish(Topic::Consensus, b"after restart".to_vec())
        .await
        .expect("publish");
    let (_, _, _, bytes) = b.next_gossip(Verdict::Accept).await;
    assert_eq!(bytes, b"after restart");

    a.stop().await;
    b.stop().await;
}

/// The application does not read its events: the network drops and counts gossip instead
/// of blocking, keeps serving commands, and keeps connection events for later.
#[tokio::test]
async fn slow_application_does_not_block_the_network() {
    let allowed = [1, 2];
    let mut a = start(config(1, &allowed, vec![])).await;
    let mut cfg_b = config(2, &allowed, vec![a.p2p_addr()]);
    cfg_b.event_capacity = 1;
    let mut b = start(cfg_b).await; // B's events are not read until the end
    let b_id = b.id();
    a.wait_for(
        "A connected to B",
        |e| matches!(e, NetEvent::PeerConnected(p) if *p == b_id),
    )
    .await;
    eventually("A sees B's subscriptions", || {
        topic_peers_at_least(&a.net, 1)
    })
    .await;

    for i in 0..20u32 {
        a.net
            .publish(Topic::Transactions, i.to_be_bytes().to_vec())
            .await
            .expect("publish");
    }
    eventually("B received all 20", || async {
        b.net.stats().gossip_received == 20
    })
    .await;
    // At most one event fits; the first one (PeerConnected) took it.
    assert!(b.net.stats().dropped_events >= 20, "{:?}", b.net.stats());
    assert_eq!(
        b.net.peers().await.expect("still serving commands"),
        vec![a.id()]
    );

    // A leaves while B's channel is still full: the disconnection is not lost.
    let a_id = a.id();
    a.stop().await;
    eventually("B sees A gone", || async {
        b.net.peers().await.unwrap().is_empty()
    })
    .await;
    let first = timeout(WAIT, b.events.recv())
        .await
        .expect("event")
        .expect("open");
    assert!(
        matches!(first, NetEvent::PeerConnected(p) if p == a_id),
        "{first:?}"
    );
    let second = timeout(WAIT, b.events.recv())
        .await
        .expect("event")
        .expect("open");
    assert!(
        matches!(second, NetEvent::PeerDisconnected(p) if p == a_id),
        "{second:?}"
    );
    b.stop().await;
}

/// A TCP relay between two nodes that can be frozen: it then stops moving bytes without
/// closing anything, like a peer that lost power or a partitioned link.
async fn freezable_relay(
    target: std::net::SocketAddr,
) -> (
    u16,
    Arc<std::sync::atomic::AtomicBool>,
    tokio::task::JoinHandle<()>,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind relay");
    let port = listener.local_addr().expect("relay addr").port();
    let frozen = Arc::new(AtomicBool::new(false));
    let frozen2 = frozen.clone();
    let task = tokio::spawn(async move {
        let mut pipes = tokio::task::JoinSet::new();
        while let Ok((inbound, _)) = listener.accept().await {
            let Ok(outbound) = tokio::net::TcpStream::connect(target).await else {
                continue;
            };
            let (ri, wi) = inbound.into_split();
            let (ro, wo) = outbound.into_split();
            for (mut r, mut w) in [(ri, wo), (ro, wi)] {
                let frozen = frozen2.clone();
                pipes.spawn(async move {
                    let mut buf = vec![0u8; 16 << 10];
                    loop {
                        let n = match r.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        if frozen.load(Ordering::SeqCst) {
                            std::future::pending::<()>().await; // hold the sockets open, silent
                        }
                        if w.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        }
    }); // dropping `pipes` with the task aborts the pipes
    (port, frozen, task)
}

/// A peer that goes silent without closing TCP is detected by ping and disconnected.
/// (Slow: ~11 s, bounded by libp2p's stream-negotiation timeout.)
#[tokio::test]
async fn silent_peer_is_disconnected_by_ping() {
    let allowed = [1, 2];
    let b = start(config(2, &allowed, vec![])).await;
    let b_id = b.id();
    let b_sock = match b.addr.iter().collect::<Vec<_>>().as_slice() {
        [libp2p::multiaddr::Protocol::Ip4(ip), libp2p::multiaddr::Protocol::Tcp(port)] => {
            std::net::SocketAddr::from((*ip, *port))
        }
        other => panic!("unexpected listen address {other:?}"),
    };
    let (relay_port, frozen, relay) = freezable_relay(b_sock).await;
    let via_relay: Multiaddr = format!("/ip4/127.0.0.1/tcp/{relay_port}/p2p/{b_id}")
        .parse()
        .unwrap();
    let mut cfg_a = config(1, &allowed, vec![via_relay]);
    cfg_a.ping_interval = Duration::from_millis(200);
    cfg_a.ping_timeout = Duration::from_millis(500);
    let mut a = start(cfg_a).await;
    a.wait_for(
        "A connected to B via the relay",
        |e| matches!(e, NetEvent::PeerConnected(p) if *p == b_id),
    )
    .await;

    // Freeze once ping runs on the connection.
    eventually("a ping answered", || async { a.net.stats().pings_ok >= 2 }).await;
    frozen.store(true, std::sync::atomic::Ordering::SeqCst);
    let frozen_at = Instant::now();
    // First failure: the ping itself times out (500 ms); second: opening a fresh ping
    // stream times out (libp2p's 10 s negotiation timeout). Then the connection is closed.
    let gone = timeout(Duration::from_secs(30), async {
        loop {
            match a.events.recv().await.expect("events") {
                NetEvent::PeerDisconnected(p) if p == b_id => return,
                _ => {}
            }
        }
    });
    gone.await.expect("silent connection closed within 30 s");
    let took = frozen_at.elapsed();
    assert!(took < Duration::from_secs(25), "detection took {took:?}");
    assert_eq!(a.net.stats().ping_closures, 1);

    a.stop().await;
    b.stop().await;
    relay.abort();
}

/// Nodes of different chains (different chain tags) may connect but share no protocol:
/// no gossip subscriptions, no sync.
#[tokio::test]
async fn different_chains_do_not_talk() {
    let allowed = [1, 2];
    let mut a = start(config(1, &allowed, vec![])).await;
    let mut cfg_b = config(2, &allowed, vec![a.p2p_addr()]);
    cfg_b.chain_tag = "0badc0de0badc0de".into();
    let b = start(cfg_b).await;
    let b_id = b.id();
    // B's key is allowed, so the connection opens; its hello names another chain,
    // so A refuses it and never reports it connected (net/hello.rs).
    let net = a.net.clone();
    eventually("A refuses B for its chain", || {
        let net = net.clone();
        async move { net.stats().wrong_chain >= 1 }
    })
    .await;
    assert!(!a.net.peers().await.unwrap().contains(&b_id));
    let connected = timeout(Duration::from_millis(500), a.wait_for("B counted as connected", |e| matches!(e, NetEvent::PeerConnected(p) if *p == b_id))).await;
    assert!(connected.is_err(), "B must never be reported connected");
    assert!(b.net.stats().wrong_chain >= 1, "B refuses A too");
    assert!(a
        .net
        .topic_peers(Topic::Consensus)
        .await
        .unwrap()
        .is_empty());
    assert!(a
        .net
        .publish(Topic::Consensus, b"vote".to_vec())
        .await
        .is_err());
    a.stop().await;
    b.stop().await;
}
