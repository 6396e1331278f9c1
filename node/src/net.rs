//! Permissioned peer-to-peer network layer.
//!
//! Moves opaque bytes; it knows nothing of ledger or consensus types. One tokio task owns
//! the libp2p `Swarm`; the application talks to it through a cloneable [`NetHandle`] and
//! receives [`NetEvent`]s on a bounded channel. See `docs/network.md`.
//!
//! * Transport: TCP, noise (XX, ed25519 identities), yamux.
//! * Identity: the node's 32-byte ed25519 secret key; peers are known by their 32-byte
//!   ed25519 public keys ([`peer_id_from_ed25519`]).
//! * Permissioning: connections from or to a peer whose key is not in
//!   [`NetConfig::allowed`] are refused right after the noise handshake authenticates
//!   the remote, before any protocol runs (so a refused peer is sent nothing).
//! * Gossip ([`Topic::Transactions`], [`Topic::Consensus`]): gossipsub, signed messages,
//!   strict validation, message id = SHA-256 of topic and data. Every received message is
//!   held (not forwarded) until the application reports a [`Verdict`] with
//!   [`NetHandle::report`]. A node does **not** receive its own published messages.
//! * Block sync: one request–response protocol with length-prefixed frames capped at
//!   [`NetConfig::max_request_bytes`] / [`NetConfig::max_response_bytes`].
//! * Reconnects: bootstrap peers that are not connected are redialled with exponential
//!   backoff ([`NetConfig::reconnect_min`] .. [`NetConfig::reconnect_max`]).
//!
//! The swarm task never blocks on the application: when the event channel is full a
//! gossip or request event is dropped and counted ([`NetStats::dropped_events`]) — the
//! message is reported as `Ignore`, the request's stream is closed — while connection
//! events wait in a small backlog, in order, so the application's view of who is
//! connected stays right.

mod codec;
pub mod hello;
mod listen;
mod names;
mod permission;

pub use names::PeerNames;

use hello::Hello;

use std::{
    collections::{HashMap, HashSet, VecDeque},
    fmt,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use futures::StreamExt;
use libp2p::{
    core::upgrade,
    gossipsub::{self, IdentTopic, MessageAcceptance, MessageAuthenticity, MessageId, TopicHash},
    identity::{self, Keypair},
    multiaddr::Protocol,
    noise, ping, request_response,
    swarm::{dial_opts::DialOpts, ConnectionId, DialError, NetworkBehaviour, SwarmEvent},
    tcp, yamux, StreamProtocol, Swarm, SwarmBuilder, Transport as _,
};
use tokio::sync::{mpsc, oneshot};

pub use codec::SyncCodec;
pub use libp2p::{Multiaddr, PeerId};
pub use permission::Refusal;

/// Bytes gossipsub adds around a message's data (signature, key, topic, sequence number,
/// protobuf framing). `max_transmit_size` is `max_gossip_bytes + GOSSIP_OVERHEAD`.
pub const GOSSIP_OVERHEAD: usize = 1024;

/// A connection that lasted at least this long counts as healthy: its loss resets the
/// reconnect backoff.
const STABLE_CONNECTION: Duration = Duration::from_secs(5);

/// How often the swarm task looks for bootstrap peers to redial.
const REDIAL_TICK: Duration = Duration::from_millis(100);

/// Commands queued from handles to the swarm task.
const COMMAND_CAPACITY: usize = 1024;

/// Connection events (connected, disconnected, refused) waiting for room in a full event
/// channel; past this the oldest is dropped.
const MAX_CONTROL_BACKLOG: usize = 1024;

/// How long `start` waits for the listener to come up.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------
// Identity
// ---------------------------------------------------------------------------------------

/// The libp2p `PeerId` of the node whose ed25519 public key is `pk`.
///
/// Fails only when `pk` is not a valid ed25519 point.
pub fn peer_id_from_ed25519(pk: &[u8; 32]) -> Result<PeerId, NetError> {
    let key = identity::ed25519::PublicKey::try_from_bytes(pk)
        .map_err(|e| NetError::Key(format!("public key: {e}")))?;
    Ok(identity::PublicKey::from(key).to_peer_id())
}

/// The ed25519 public key inside `peer`, if `peer` was derived from one (always the
/// case for peers this layer lets connect).
pub fn ed25519_from_peer_id(peer: &PeerId) -> Option<[u8; 32]> {
    let mh = peer.as_ref();
    if mh.code() != 0 {
        return None; // not an identity multihash: the key is not inlined
    }
    let key = identity::PublicKey::try_decode_protobuf(mh.digest()).ok()?;
    Some(key.try_into_ed25519().ok()?.to_bytes())
}

/// The `PeerId` this node will have with secret key `sk`.
pub fn local_peer_id(sk: &[u8; 32]) -> Result<PeerId, NetError> {
    Ok(keypair(sk)?.public().to_peer_id())
}

fn keypair(sk: &[u8; 32]) -> Result<Keypair, NetError> {
    let mut bytes = *sk; // `ed25519_from_bytes` zeroises its argument
    Keypair::ed25519_from_bytes(&mut bytes).map_err(|e| NetError::Key(format!("secret key: {e}")))
}

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

/// Network configuration. Build with [`NetConfig::new`] and adjust fields.
#[derive(Clone)]
pub struct NetConfig {
    /// The node's ed25519 secret key (seed), 32 bytes.
    pub secret_key: [u8; 32],
    /// Short chain tag used in topic and protocol names (e.g. the first 16 hex digits of
    /// the chain id): `[A-Za-z0-9_-]{1,64}`. Nodes of different chains do not talk.
    pub chain_tag: String,
    /// Address to listen on, e.g. `/ip4/127.0.0.1/tcp/0`.
    pub listen: Multiaddr,
    /// Peers to dial and keep dialled, with or without a `/p2p/<peer-id>` suffix.
    pub bootstrap: Vec<Multiaddr>,
    /// Ed25519 public keys allowed to connect (validators and listed observers). The
    /// node's own key is always allowed.
    pub allowed: Vec<[u8; 32]>,
    /// Names of keys (their genesis names) for the logs: `agency=NAME` next to
    /// each peer id. Keys not listed are logged as `agency=?`.
    pub names: Vec<([u8; 32], String)>,
    /// The full chain id (hex) and chain name, sent in the hello (`net/hello.rs`) so
    /// that a peer on another chain is told apart and reported with both ids.
    pub chain_id: String,
    pub chain_name: String,
    /// Largest gossip payload accepted or published.
    pub max_gossip_bytes: usize,
    /// Largest sync request sent or accepted.
    pub max_request_bytes: usize,
    /// Largest sync response sent or accepted.
    pub max_response_bytes: usize,
    /// Timeout of an outbound request (and of reading any sync frame).
    pub request_timeout: Duration,
    /// Capacity of the event channel to the application.
    pub event_capacity: usize,
    /// First reconnect delay after a bootstrap peer is lost or a dial fails.
    pub reconnect_min: Duration,
    /// Largest reconnect delay (the delay doubles per failure up to this).
    pub reconnect_max: Duration,
    /// Idle time after which a connection with no active protocol is closed.
    pub idle_timeout: Duration,
    /// Every connection is pinged this often ...
    pub ping_interval: Duration,
    /// ... and closed after two consecutive pings unanswered for this long (a peer that
    /// vanished without closing TCP: power loss, partition).
    pub ping_timeout: Duration,
    /// Accept every gossip message that passes gossipsub's own checks without waiting for
    /// [`NetHandle::report`] (the application still receives it). Off by default.
    pub auto_accept_gossip: bool,
}

impl NetConfig {
    /// Defaults: listen on `/ip4/127.0.0.1/tcp/0`, no bootstrap, only self allowed,
    /// gossip ≤ 1 MiB, request ≤ 64 KiB, response ≤ 16 MiB, request timeout 10 s,
    /// 4096 buffered events, reconnect 200 ms .. 3 s, idle timeout 1 h, ping every 5 s
    /// with a 10 s timeout.
    pub fn new(secret_key: [u8; 32], chain_tag: impl Into<String>) -> Self {
        NetConfig {
            secret_key,
            chain_tag: chain_tag.into(),
            listen: "/ip4/127.0.0.1/tcp/0".parse().expect("static multiaddr"),
            bootstrap: Vec::new(),
            allowed: Vec::new(),
            names: Vec::new(),
            chain_id: String::new(),
            chain_name: String::new(),
            max_gossip_bytes: 1 << 20,
            max_request_bytes: 64 << 10,
            max_response_bytes: 16 << 20,
            request_timeout: Duration::from_secs(10),
            event_capacity: 4096,
            reconnect_min: Duration::from_millis(200),
            reconnect_max: Duration::from_secs(3),
            idle_timeout: Duration::from_secs(3600),
            ping_interval: Duration::from_secs(5),
            ping_timeout: Duration::from_secs(10),
            auto_accept_gossip: false,
        }
    }

    fn validate(&self) -> Result<(), NetError> {
        let bad = |m: &str| Err(NetError::Config(m.to_string()));
        let tag_ok = !self.chain_tag.is_empty()
            && self.chain_tag.len() <= 64
            && self
                .chain_tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !tag_ok {
            return bad("chain_tag must be 1..=64 characters of [A-Za-z0-9_-]");
        }
        if self.max_gossip_bytes == 0 || self.max_gossip_bytes > 64 << 20 {
            return bad("max_gossip_bytes must be in 1..=64 MiB");
        }
        for (name, v) in [
            ("max_request_bytes", self.max_request_bytes),
            ("max_response_bytes", self.max_response_bytes),
        ] {
            if v == 0 || v > u32::MAX as usize {
                return Err(NetError::Config(format!("{name} must be in 1..=u32::MAX")));
            }
        }
        if self.request_timeout.is_zero() || self.event_capacity == 0 {
            return bad("request_timeout and event_capacity must be non-zero");
        }
        if self.ping_interval.is_zero() || self.ping_timeout.is_zero() {
            return bad("ping_interval and ping_timeout must be non-zero");
        }
        if self.reconnect_min.is_zero() || self.reconnect_max < self.reconnect_min {
            return bad("need 0 < reconnect_min <= reconnect_max");
        }
        Ok(())
    }

    /// Gossipsub topic name of `topic` on this chain.
    pub fn topic_name(&self, topic: Topic) -> String {
        format!("yrd/{}/{}", self.chain_tag, topic.suffix())
    }

    /// Protocol name of block sync on this chain.
    pub fn sync_protocol(&self) -> String {
        format!("/yrd/{}/sync/1", self.chain_tag)
    }
}

impl fmt::Debug for NetConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetConfig")
            .field("secret_key", &"<redacted>")
            .field("chain_tag", &self.chain_tag)
            .field("listen", &self.listen)
            .field("bootstrap", &self.bootstrap)
            .field("allowed", &self.allowed.len())
            .field("max_gossip_bytes", &self.max_gossip_bytes)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------

/// The two gossip topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    Transactions,
    Consensus,
}

impl Topic {
    pub const ALL: [Topic; 2] = [Topic::Transactions, Topic::Consensus];

    fn suffix(self) -> &'static str {
        match self {
            Topic::Transactions => "tx",
            Topic::Consensus => "consensus",
        }
    }
}

/// Identifier of a gossip message (SHA-256 of topic name, 0x00, data).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct GossipId(pub Vec<u8>);

impl fmt::Debug for GossipId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex: String = self.0.iter().take(8).map(|b| format!("{b:02x}")).collect();
        write!(f, "GossipId({hex})")
    }
}

/// The application's verdict on a received gossip message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: forward it to our mesh peers.
    Accept,
    /// Permanently invalid (bad signature, malformed): drop it and penalise the peer
    /// that sent it. Never use for "not yet" or "already have it".
    Reject,
    /// Not useful now (stale, duplicate, can't check yet): drop it, no penalty.
    Ignore,
}

/// Where a sync response goes. Answer with [`NetHandle::respond`]; dropping it closes the
/// requester's stream (the requester sees an error).
pub struct ResponseChannel {
    peer: PeerId,
    inner: request_response::ResponseChannel<Vec<u8>>,
}

impl ResponseChannel {
    pub fn peer(&self) -> PeerId {
        self.peer
    }
}

impl fmt::Debug for ResponseChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseChannel")
            .field("peer", &self.peer)
            .finish()
    }
}

/// What the network tells the application.
#[derive(Debug)]
pub enum NetEvent {
    /// A gossip message. Report a [`Verdict`] for it with [`NetHandle::report`] (unless
    /// `auto_accept_gossip`); it is not forwarded until accepted.
    Gossip {
        topic: Topic,
        /// The peer that forwarded it to us (the one penalised on `Reject`).
        from: PeerId,
        /// The peer that signed and published it.
        author: PeerId,
        id: GossipId,
        bytes: Vec<u8>,
    },
    /// A block-sync request.
    Request {
        peer: PeerId,
        bytes: Vec<u8>,
        channel: ResponseChannel,
    },
    /// First connection to an allowed peer established.
    PeerConnected(PeerId),
    /// Last connection to a peer closed.
    PeerDisconnected(PeerId),
    /// A connection refused because the remote's key is not allowed.
    ConnectionRefused {
        peer: PeerId,
        inbound: bool,
        addr: Option<Multiaddr>,
    },
}

/// Counters since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Connections refused because the peer is not allowed.
    pub refused_connections: u64,
    /// Events dropped because the application's channel was full.
    pub dropped_events: u64,
    /// Gossip messages received (before validation).
    pub gossip_received: u64,
    /// Gossip messages rejected (by the application or because the author is not allowed).
    pub gossip_rejected: u64,
    /// Pings answered (connection health).
    pub pings_ok: u64,
    /// Connections closed because pings went unanswered.
    pub ping_closures: u64,
    /// Peers refused because their hello named another chain.
    pub wrong_chain: u64,
    /// Bytes written to peers' TCP connections (noise, yamux and every protocol included).
    pub bytes_sent: u64,
    /// Bytes read from peers' TCP connections.
    pub bytes_received: u64,
    /// Gossip messages this node published (each goes to every connected subscriber).
    pub gossip_published: u64,
}

#[derive(Default)]
struct Counters {
    refused_connections: AtomicU64,
    dropped_events: AtomicU64,
    gossip_received: AtomicU64,
    gossip_rejected: AtomicU64,
    pings_ok: AtomicU64,
    ping_closures: AtomicU64,
    /// Peers refused because their hello named another chain.
    wrong_chain: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    gossip_published: AtomicU64,
}

/// At most one WARN about refused connections per this long.
const REFUSAL_WARN_EVERY: Duration = Duration::from_secs(10);
/// A configured peer is reported unreachable (WARN) from this many dials failed in
/// a row: one or two failures are ordinary while the peer starts or restarts.
const DIAL_WARN_AFTER: u32 = 3;
/// ... and again at most this often while it stays unreachable.
const DIAL_WARN_EVERY: Duration = Duration::from_secs(60);
/// A peer on another chain is logged at WARN at most this often (it is redialled
/// every few seconds if configured).
const WRONG_CHAIN_WARN_EVERY: Duration = Duration::from_secs(60);

/// The reason of a failed dial, in one line (libp2p's transport errors nest).
fn dial_error_text(error: &DialError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text.replace('\n', " ")
}

/// One configured peer (`peers` in the config) and where it stands.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PeerDialStatus {
    /// The configured address (without `/p2p/`).
    pub addr: String,
    /// The peer id, configured or learnt on the last connection.
    pub peer_id: Option<String>,
    /// Its genesis name, when known.
    pub name: Option<String>,
    /// `connected`, `connecting` (first dial not answered yet), `dialing` (retry in
    /// progress), `unreachable` (dials failing; retried with backoff) or
    /// `wrong_chain` (it answered, on another chain).
    pub state: &'static str,
    /// Dials failed in a row.
    pub failures: u32,
    pub last_error: Option<String>,
    /// When the next dial is due, when not connected.
    pub retry_in_ms: Option<u64>,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("invalid network config: {0}")]
    Config(String),
    #[error("invalid ed25519 key: {0}")]
    Key(String),
    #[error("cannot build the transport: {0}")]
    Transport(String),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: Multiaddr, reason: String },
    #[error("{what} of {len} bytes exceeds the cap of {max}")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("peer {0} is not in the allowed set")]
    NotAllowed(PeerId),
    #[error("publish on {topic:?} failed: {reason}")]
    Publish { topic: Topic, reason: String },
    #[error("request to {peer} failed: {reason}")]
    Request { peer: PeerId, reason: String },
    #[error("the network task has stopped")]
    Stopped,
}

// ---------------------------------------------------------------------------------------
// Handle
// ---------------------------------------------------------------------------------------

type Reply<T> = oneshot::Sender<Result<T, NetError>>;

enum Command {
    Publish {
        topic: Topic,
        bytes: Vec<u8>,
        reply: Reply<GossipId>,
    },
    Request {
        peer: PeerId,
        bytes: Vec<u8>,
        reply: Reply<Vec<u8>>,
    },
    Respond {
        channel: ResponseChannel,
        bytes: Vec<u8>,
    },
    Report {
        id: GossipId,
        from: PeerId,
        verdict: Verdict,
    },
    Peers(oneshot::Sender<Vec<PeerId>>),
    Ban { peer: PeerId, duration: Duration },
    SetAllowed { keys: Vec<[u8; 32]>, names: Vec<([u8; 32], String)> },
    TopicPeers(Topic, oneshot::Sender<Vec<PeerId>>),
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    DialStatus(oneshot::Sender<Vec<PeerDialStatus>>),
    Shutdown(oneshot::Sender<()>),
}

/// Cloneable handle to the network task. The task stops on [`NetHandle::shutdown`] or
/// when every handle is dropped.
#[derive(Clone)]
pub struct NetHandle {
    cmd: mpsc::Sender<Command>,
    local: PeerId,
    counters: Arc<Counters>,
    max_gossip_bytes: usize,
    max_request_bytes: usize,
    max_response_bytes: usize,
}

impl fmt::Debug for NetHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetHandle")
            .field("local", &self.local)
            .finish()
    }
}

impl NetHandle {
    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local
    }

    async fn send(&self, c: Command) -> Result<(), NetError> {
        self.cmd.send(c).await.map_err(|_| NetError::Stopped)
    }

    /// Publishes `bytes` on `topic` to every subscribed peer (flood publish). Fails if no
    /// peer is subscribed yet, or if the message is too large. The message is not
    /// delivered back to this node.
    pub async fn publish(&self, topic: Topic, bytes: Vec<u8>) -> Result<GossipId, NetError> {
        if bytes.len() > self.max_gossip_bytes {
            return Err(NetError::TooLarge {
                what: "gossip message",
                len: bytes.len(),
                max: self.max_gossip_bytes,
            });
        }
        let (reply, rx) = oneshot::channel();
        self.send(Command::Publish {
            topic,
            bytes,
            reply,
        })
        .await?;
        rx.await.map_err(|_| NetError::Stopped)?
    }

    /// Sends a sync request to `peer` and waits for its response (at most
    /// `request_timeout`).
    pub async fn request(&self, peer: PeerId, bytes: Vec<u8>) -> Result<Vec<u8>, NetError> {
        if bytes.len() > self.max_request_bytes {
            return Err(NetError::TooLarge {
                what: "request",
                len: bytes.len(),
                max: self.max_request_bytes,
            });
        }
        let (reply, rx) = oneshot::channel();
        self.send(Command::Request { peer, bytes, reply }).await?;
        rx.await.map_err(|_| NetError::Stopped)?
    }

    /// Answers a request. A response over `max_response_bytes` is not sent (the
    /// requester's stream is closed) and `TooLarge` is returned.
    pub async fn respond(&self, channel: ResponseChannel, bytes: Vec<u8>) -> Result<(), NetError> {
        if bytes.len() > self.max_response_bytes {
            drop(channel);
            return Err(NetError::TooLarge {
                what: "response",
                len: bytes.len(),
                max: self.max_response_bytes,
            });
        }
        self.send(Command::Respond { channel, bytes }).await
    }

    /// Reports the verdict on gossip message `id` received from `from` (exactly once per
    /// [`NetEvent::Gossip`]).
    pub async fn report(
        &self,
        id: GossipId,
        from: PeerId,
        verdict: Verdict,
    ) -> Result<(), NetError> {
        self.send(Command::Report { id, from, verdict }).await
    }

    /// Drops a misbehaving peer: closes its connections and refuses it (in and out)
    /// for `duration`.
    pub async fn ban(&self, peer: PeerId, duration: Duration) -> Result<(), NetError> {
        self.send(Command::Ban { peer, duration }).await
    }

    /// Replaces the keys allowed to connect (validators and observers of the
    /// memberships in force and approved; the node's own key stays allowed).
    /// Connected peers no longer allowed are disconnected. `names` are added to
    /// the names the logs give peers (`agency=`), so a member added by governance
    /// is named like the founding ones.
    pub async fn set_allowed(&self, keys: Vec<[u8; 32]>, names: Vec<([u8; 32], String)>) -> Result<(), NetError> {
        self.send(Command::SetAllowed { keys, names }).await
    }

    /// Peers with at least one open connection.
    pub async fn peers(&self) -> Result<Vec<PeerId>, NetError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Peers(tx)).await?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// Connected peers known to be subscribed to `topic` (those a publish reaches).
    pub async fn topic_peers(&self, topic: Topic) -> Result<Vec<PeerId>, NetError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::TopicPeers(topic, tx)).await?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// Ed25519 keys of the connected peers.
    pub async fn peer_keys(&self) -> Result<Vec<[u8; 32]>, NetError> {
        Ok(self
            .peers()
            .await?
            .iter()
            .filter_map(ed25519_from_peer_id)
            .collect())
    }

    /// Addresses this node listens on (with the real port when `listen` used port 0).
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::ListenAddrs(tx)).await?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// The configured peers (`bootstrap`) and where each stands.
    pub async fn dial_status(&self) -> Result<Vec<PeerDialStatus>, NetError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::DialStatus(tx)).await?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// Counters since start.
    pub fn stats(&self) -> NetStats {
        let c = &self.counters;
        NetStats {
            refused_connections: c.refused_connections.load(Ordering::Relaxed),
            dropped_events: c.dropped_events.load(Ordering::Relaxed),
            gossip_received: c.gossip_received.load(Ordering::Relaxed),
            gossip_rejected: c.gossip_rejected.load(Ordering::Relaxed),
            pings_ok: c.pings_ok.load(Ordering::Relaxed),
            ping_closures: c.ping_closures.load(Ordering::Relaxed),
            wrong_chain: c.wrong_chain.load(Ordering::Relaxed),
            bytes_sent: c.bytes_sent.load(Ordering::Relaxed),
            bytes_received: c.bytes_received.load(Ordering::Relaxed),
            gossip_published: c.gossip_published.load(Ordering::Relaxed),
        }
    }

    /// Stops the network task: closes the listener and every connection. Returns once the
    /// swarm is dropped (the listen port is free again). Idempotent.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.cmd.send(Command::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Swarm
// ---------------------------------------------------------------------------------------

#[derive(NetworkBehaviour)]
struct Behaviour {
    // First, so that a refused connection never reaches the other protocols.
    permission: permission::Permission,
    ping: ping::Behaviour,
    gossipsub: gossipsub::Behaviour,
    sync: request_response::Behaviour<SyncCodec>,
    hello: request_response::Behaviour<SyncCodec>,
}

fn gossip_config(cfg: &NetConfig) -> Result<gossipsub::Config, NetError> {
    gossipsub::ConfigBuilder::default()
        .protocol_id_prefix(format!("/yrd/{}/meshsub", cfg.chain_tag))
        .validation_mode(gossipsub::ValidationMode::Strict)
        .validate_messages()
        .max_transmit_size(cfg.max_gossip_bytes + GOSSIP_OVERHEAD)
        .message_id_fn(|m: &gossipsub::Message| {
            let h = yrd_consensus::crypto::sha256(&[m.topic.as_str().as_bytes(), &[0], &m.data]);
            MessageId::new(&h.0)
        })
        // Small permissioned networks (4..16 nodes): a tight mesh, and publishing floods
        // to every subscribed peer, so 1..3 peers are enough.
        .mesh_n_low(2)
        .mesh_n(4)
        .mesh_n_high(8)
        .mesh_outbound_min(1)
        .gossip_lazy(4)
        .flood_publish(true)
        .heartbeat_initial_delay(Duration::from_millis(100))
        .heartbeat_interval(Duration::from_millis(500))
        .build()
        .map_err(|e| NetError::Config(format!("gossipsub: {e}")))
}

/// Peer scoring: only invalid messages cost score (`Reject`ed by the application or
/// failing gossipsub's own checks), plus gossipsub's protocol-misbehaviour penalty. No
/// delivery-rate or IP-colocation penalties: every node of a local testnet shares one IP,
/// and the consensus topic may be quiet for long stretches.
fn score_params(
    topics: &[TopicHash],
) -> (gossipsub::PeerScoreParams, gossipsub::PeerScoreThresholds) {
    let topic = gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.0,
        first_message_deliveries_weight: 0.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -10.0,
        invalid_message_deliveries_decay: 0.9, // per second: ~20 s to forgive a burst
        ..Default::default()
    };
    let params = gossipsub::PeerScoreParams {
        topics: topics.iter().map(|t| (t.clone(), topic.clone())).collect(),
        app_specific_weight: 0.0,
        ip_colocation_factor_weight: 0.0,
        ..Default::default()
    };
    // score = -10 * invalid²: 3 invalid messages → no gossip to/from it; 8 → graylisted.
    let thresholds = gossipsub::PeerScoreThresholds {
        gossip_threshold: -50.0,
        publish_threshold: -100.0,
        graylist_threshold: -500.0,
        accept_px_threshold: 10.0,
        opportunistic_graft_threshold: 20.0,
    };
    (params, thresholds)
}

fn build_swarm(
    cfg: &NetConfig,
    key: Keypair,
    allowed: HashSet<PeerId>,
    counters: &Arc<Counters>,
) -> Result<Swarm<Behaviour>, NetError> {
    let topics: Vec<TopicHash> = Topic::ALL
        .iter()
        .map(|t| IdentTopic::new(cfg.topic_name(*t)).hash())
        .collect();
    let mut gossipsub = gossipsub::Behaviour::new(
        MessageAuthenticity::Signed(key.clone()),
        gossip_config(cfg)?,
    )
    .map_err(|e| NetError::Config(format!("gossipsub: {e}")))?;
    let (params, thresholds) = score_params(&topics);
    gossipsub
        .with_peer_score(params, thresholds)
        .map_err(|e| NetError::Config(format!("peer score: {e}")))?;

    let protocol = StreamProtocol::try_from_owned(cfg.sync_protocol())
        .map_err(|e| NetError::Config(format!("sync protocol name: {e}")))?;
    let codec = SyncCodec {
        max_request_bytes: cfg.max_request_bytes,
        max_response_bytes: cfg.max_response_bytes,
        read_timeout: cfg.request_timeout,
    };
    let sync = request_response::Behaviour::with_codec(
        codec,
        [(protocol, request_response::ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(cfg.request_timeout)
            .with_max_concurrent_streams(64),
    );
    let ping = ping::Behaviour::new(
        ping::Config::new()
            .with_interval(cfg.ping_interval)
            .with_timeout(cfg.ping_timeout),
    );
    let hello = request_response::Behaviour::with_codec(
        SyncCodec {
            max_request_bytes: hello::MAX_HELLO_BYTES,
            max_response_bytes: hello::MAX_HELLO_BYTES,
            read_timeout: cfg.request_timeout,
        },
        [(StreamProtocol::new(hello::HELLO_PROTOCOL), request_response::ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(cfg.request_timeout).with_max_concurrent_streams(8),
    );
    let behaviour = Behaviour {
        permission: permission::Permission::new(allowed),
        ping,
        gossipsub,
        sync,
        hello,
    };

    let idle = cfg.idle_timeout;
    let swarm = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        // What `with_tcp` builds, with the TCP stream wrapped to count its bytes.
        .with_other_transport(|key| -> Result<_, Box<dyn std::error::Error + Send + Sync>> {
            let traffic = counters.clone();
            Ok(tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
                .map(move |stream, _| Counted { inner: stream, counters: traffic.clone() })
                .upgrade(upgrade::Version::V1Lazy)
                .authenticate(noise::Config::new(key)?)
                .multiplex(yamux::Config::default())
                // A connection that has not finished the noise handshake and the
                // multiplexer negotiation by then is closed: before it, the peer is
                // nobody (not yet checked against the allowed keys), and without a
                // deadline anyone who can reach the port could hold sockets open.
                .timeout(UPGRADE_TIMEOUT))
        })
        .map_err(|e| NetError::Transport(e.to_string()))?
        .with_behaviour(|_| behaviour)
        .map_err(|e| NetError::Transport(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
        .build();
    Ok(swarm)
}

/// Longest a new connection may take to authenticate (noise) and negotiate its
/// multiplexer.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts the network on the current tokio runtime: listens on `cfg.listen` (waiting
/// until the listener is up), subscribes to both topics, starts dialling the bootstrap
/// peers, and returns the handle and the event receiver.
pub async fn start(cfg: NetConfig) -> Result<(NetHandle, mpsc::Receiver<NetEvent>), NetError> {
    cfg.validate()?;
    let key = keypair(&cfg.secret_key)?;
    let local = key.public().to_peer_id();
    let mut allowed = HashSet::with_capacity(cfg.allowed.len() + 1);
    allowed.insert(local);
    for pk in &cfg.allowed {
        allowed.insert(peer_id_from_ed25519(pk)?);
    }

    let counters = Arc::new(Counters::default());
    let mut swarm = build_swarm(&cfg, key, allowed.clone(), &counters)?;
    let mut topics = HashMap::new();
    for t in Topic::ALL {
        let it = IdentTopic::new(cfg.topic_name(t));
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&it)
            .map_err(|e| NetError::Config(format!("subscribe: {e}")))?;
        topics.insert(t, it.hash());
    }

    listen::check_free(&cfg.listen).map_err(|reason| NetError::Listen { addr: cfg.listen.clone(), reason })?;
    swarm
        .listen_on(cfg.listen.clone())
        .map_err(|e| NetError::Listen {
            addr: cfg.listen.clone(),
            reason: e.to_string(),
        })?;
    wait_listening(&mut swarm, &cfg.listen).await?;

    let bootstrap = bootstrap_entries(&cfg, &local, &mut swarm);
    let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_CAPACITY);
    let (ev_tx, ev_rx) = mpsc::channel(cfg.event_capacity);
    let handle = NetHandle {
        cmd: cmd_tx,
        local,
        counters: counters.clone(),
        max_gossip_bytes: cfg.max_gossip_bytes,
        max_request_bytes: cfg.max_request_bytes,
        max_response_bytes: cfg.max_response_bytes,
    };
    let task = Task {
        swarm,
        events: ev_tx,
        counters,
        allowed,
        names: PeerNames::new(&cfg.names),
        hello: Hello {
            chain_id: if cfg.chain_id.is_empty() { cfg.chain_tag.clone() } else { cfg.chain_id.clone() },
            chain_name: cfg.chain_name.clone(),
            instance: hello::new_instance(),
            warning: None,
        },
        verified: HashMap::new(),
        wrong_chain_warned: HashMap::new(),
        remote_addrs: HashMap::new(),
        instances: HashMap::new(),
        topics,
        bootstrap,
        dials: HashMap::new(),
        pending: HashMap::new(),
        backlog: VecDeque::new(),
        refused_seen: HashSet::new(),
        refusal_warned_at: None,
        refusals_unlogged: 0,
        auto_accept: cfg.auto_accept_gossip,
        reconnect_min: cfg.reconnect_min,
        reconnect_max: cfg.reconnect_max,
    };
    tracing::info!(peer = %local, listen = %cfg.listen, bootstrap = cfg.bootstrap.len(), "network started");
    tokio::spawn(task.run(cmd_rx));
    Ok((handle, ev_rx))
}

async fn wait_listening(swarm: &mut Swarm<Behaviour>, addr: &Multiaddr) -> Result<(), NetError> {
    let fail = |reason: String| NetError::Listen {
        addr: addr.clone(),
        reason,
    };
    let wait = async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr { address, .. } => {
                    tracing::info!(%address, "listening");
                    return Ok(());
                }
                SwarmEvent::ListenerError { error, .. } => return Err(fail(error.to_string())),
                SwarmEvent::ListenerClosed { reason, .. } => {
                    return Err(fail(format!("listener closed: {reason:?}")));
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(LISTEN_TIMEOUT, wait)
        .await
        .map_err(|_| fail("timed out".into()))?
}

// ---------------------------------------------------------------------------------------
// Swarm task
// ---------------------------------------------------------------------------------------

/// A bootstrap address and its redial state.
struct Bootstrap {
    /// Dial address without the `/p2p/` suffix.
    addr: Multiaddr,
    /// From the `/p2p/` suffix: dials insist on this key.
    configured: Option<PeerId>,
    /// The peer at `addr`: `configured`, or learnt on the last successful dial (an entry
    /// without suffix is dialled by address only, so a node that comes back with another
    /// key is learnt again; the allow list still decides whether it may connect).
    peer: Option<PeerId>,
    dialing: Option<ConnectionId>,
    backoff: Duration,
    next_at: Instant,
    connected_since: Option<Instant>,
    /// Dials failed in a row, the last error, and when it was last logged at WARN.
    failures: u32,
    last_error: Option<String>,
    warned_at: Option<Instant>,
    /// Set when the peer at this address turned out to be on another chain.
    wrong_chain: Option<String>,
}

fn bootstrap_entries(
    cfg: &NetConfig,
    local: &PeerId,
    swarm: &mut Swarm<Behaviour>,
) -> Vec<Bootstrap> {
    let now = Instant::now();
    let mut out: Vec<Bootstrap> = Vec::new();
    for full in &cfg.bootstrap {
        let mut addr = full.clone();
        let peer = match addr.iter().last() {
            Some(Protocol::P2p(p)) => {
                addr.pop();
                Some(p)
            }
            _ => None,
        };
        if peer.as_ref() == Some(local) || out.iter().any(|b| b.addr == addr) {
            continue; // ourselves (configs often list every validator), or a duplicate
        }
        if let Some(p) = peer {
            swarm.add_peer_address(p, addr.clone());
        }
        out.push(Bootstrap {
            addr,
            configured: peer,
            peer,
            dialing: None,
            backoff: cfg.reconnect_min,
            next_at: now,
            connected_since: None,
            failures: 0,
            last_error: None,
            warned_at: None,
            wrong_chain: None,
        });
    }
    out
}

struct Task {
    swarm: Swarm<Behaviour>,
    events: mpsc::Sender<NetEvent>,
    counters: Arc<Counters>,
    allowed: HashSet<PeerId>,
    names: PeerNames,
    /// What this node says in its hello.
    hello: Hello,
    /// Peers whose hello named our chain, with their process instance: only these
    /// count as connected.
    verified: HashMap<PeerId, String>,
    /// Peers on another chain: when that was last logged at WARN.
    wrong_chain_warned: HashMap<PeerId, Instant>,
    /// Remote address of each peer's first connection (for messages).
    remote_addrs: HashMap<PeerId, Multiaddr>,
    /// The process instance each live connection's hello named: two instances at
    /// once are two processes with one key.
    instances: HashMap<PeerId, HashMap<ConnectionId, String>>,
    topics: HashMap<Topic, TopicHash>,
    bootstrap: Vec<Bootstrap>,
    /// Our bootstrap dials in flight: connection → index into `bootstrap`.
    dials: HashMap<ConnectionId, usize>,
    pending: HashMap<request_response::OutboundRequestId, (PeerId, Reply<Vec<u8>>)>,
    /// Connection events waiting for room in the event channel.
    backlog: VecDeque<NetEvent>,
    /// Peers already refused once (later refusals are logged at debug level).
    refused_seen: HashSet<PeerId>,
    /// When a refusal was last logged at WARN, and new peers refused since unlogged.
    refusal_warned_at: Option<Instant>,
    refusals_unlogged: u64,
    auto_accept: bool,
    reconnect_min: Duration,
    reconnect_max: Duration,
}

impl Task {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut tick = tokio::time::interval(REDIAL_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let ack = loop {
            tokio::select! {
                ev = self.swarm.select_next_some() => self.on_swarm_event(ev),
                cmd = commands.recv() => match cmd {
                    None => break None,
                    Some(Command::Shutdown(ack)) => break Some(ack),
                    Some(c) => self.on_command(c),
                },
                _ = tick.tick() => self.redial(),
            }
            if !self.backlog.is_empty() {
                self.flush_backlog();
            }
        };
        let local = *self.swarm.local_peer_id();
        for (_, (peer, reply)) in self.pending.drain() {
            let _ = reply.send(Err(NetError::Request {
                peer,
                reason: "network stopped".into(),
            }));
        }
        drop(self.swarm);
        tracing::info!(peer = %local, "network stopped");
        if let Some(ack) = ack {
            let _ = ack.send(());
        }
    }

    /// Hands an event to the application without ever waiting; `false` if it was dropped.
    fn emit(&self, ev: NetEvent) -> bool {
        match self.events.try_send(ev) {
            Ok(()) => true,
            Err(_) => {
                bump(&self.counters.dropped_events);
                tracing::debug!("event channel full or closed: event dropped");
                false
            }
        }
    }

    /// Hands a connection event to the application, keeping it (in order) if the channel
    /// is full.
    fn emit_control(&mut self, ev: NetEvent) {
        if self.backlog.is_empty() {
            match self.events.try_send(ev) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Closed(_)) => return,
                Err(mpsc::error::TrySendError::Full(ev)) => self.backlog.push_back(ev),
            }
        } else {
            self.backlog.push_back(ev);
        }
        if self.backlog.len() > MAX_CONTROL_BACKLOG {
            self.backlog.pop_front();
            bump(&self.counters.dropped_events);
        }
    }

    fn flush_backlog(&mut self) {
        while let Some(ev) = self.backlog.pop_front() {
            match self.events.try_send(ev) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(ev)) => {
                    self.backlog.push_front(ev);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.backlog.clear();
                    return;
                }
            }
        }
    }

    fn topic_of(&self, hash: &TopicHash) -> Option<Topic> {
        self.topics
            .iter()
            .find(|(_, h)| *h == hash)
            .map(|(t, _)| *t)
    }

    fn on_command(&mut self, c: Command) {
        match c {
            Command::Publish {
                topic,
                bytes,
                reply,
            } => {
                let hash = self.topics[&topic].clone();
                let r = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(hash, bytes)
                    .map(|id| {
                        bump(&self.counters.gossip_published);
                        GossipId(id.0)
                    })
                    .map_err(|e| NetError::Publish {
                        topic,
                        reason: e.to_string(),
                    });
                let _ = reply.send(r);
            }
            Command::Request { peer, bytes, reply } => {
                if !self.allowed.contains(&peer) {
                    let _ = reply.send(Err(NetError::NotAllowed(peer)));
                    return;
                }
                let id = self.swarm.behaviour_mut().sync.send_request(&peer, bytes);
                self.pending.insert(id, (peer, reply));
            }
            Command::Respond { channel, bytes } => {
                let peer = channel.peer;
                if self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel.inner, bytes)
                    .is_err()
                {
                    tracing::debug!(%peer, "response not sent: the request stream is gone");
                }
            }
            Command::Report { id, from, verdict } => self.report(id, from, verdict),
            Command::Ban { peer, duration } => {
                tracing::warn!(%peer, agency = %self.names.of(&peer), secs = duration.as_secs(), "dropping a misbehaving peer");
                self.swarm.behaviour_mut().permission.ban(peer, Instant::now() + duration);
                let _ = self.swarm.disconnect_peer_id(peer);
            }
            Command::SetAllowed { keys, names } => {
                self.names.add(&names);
                let mut allowed: HashSet<PeerId> = keys.iter().filter_map(|k| peer_id_from_ed25519(k).ok()).collect();
                allowed.insert(*self.swarm.local_peer_id());
                if allowed != self.allowed {
                    tracing::info!(allowed = allowed.len(), "allowed peers changed (membership)");
                }
                self.allowed = allowed.clone();
                for peer in self.swarm.behaviour_mut().permission.set_allowed(allowed) {
                    tracing::info!(%peer, agency = %self.names.of(&peer), "peer no longer in the membership: disconnecting");
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
            }
            Command::Peers(tx) => {
                let _ = tx.send(self.swarm.connected_peers().filter(|p| self.verified.contains_key(p)).copied().collect());
            }
            Command::DialStatus(tx) => {
                let _ = tx.send(self.dial_status());
            }
            Command::TopicPeers(topic, tx) => {
                let hash = &self.topics[&topic];
                let peers = self.swarm.behaviour().gossipsub.all_peers();
                let _ = tx.send(
                    peers
                        .filter(|(_, ts)| ts.contains(&hash))
                        .map(|(p, _)| *p)
                        .collect(),
                );
            }
            Command::ListenAddrs(tx) => {
                let _ = tx.send(self.swarm.listeners().cloned().collect());
            }
            Command::Shutdown(_) => unreachable!("handled in run"),
        }
    }

    fn report(&mut self, id: GossipId, from: PeerId, verdict: Verdict) {
        let acceptance = match verdict {
            Verdict::Accept => MessageAcceptance::Accept,
            Verdict::Reject => {
                bump(&self.counters.gossip_rejected);
                MessageAcceptance::Reject
            }
            Verdict::Ignore => MessageAcceptance::Ignore,
        };
        let known = self
            .swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(&MessageId(id.0), &from, acceptance);
        if !known {
            tracing::debug!(%from, ?verdict, "verdict for a gossip message no longer in the cache");
        }
    }

    fn on_swarm_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::Behaviour(BehaviourEvent::Permission(r)) => self.on_refusal(r),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(e)) => self.on_ping(e),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(e)) => self.on_gossip(e),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(e)) => self.on_sync(e),
            SwarmEvent::Behaviour(BehaviourEvent::Hello(e)) => self.on_hello(e),
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                let now = Instant::now();
                if let Some(i) = self.dials.remove(&connection_id) {
                    let b = &mut self.bootstrap[i];
                    b.dialing = None;
                    if b.peer != Some(peer_id) {
                        b.peer = Some(peer_id);
                        self.swarm.add_peer_address(peer_id, b.addr.clone());
                    }
                }
                for b in self
                    .bootstrap
                    .iter_mut()
                    .filter(|b| b.peer == Some(peer_id))
                {
                    b.connected_since.get_or_insert(now);
                    // Reachable, whoever dialled.
                    if b.failures >= DIAL_WARN_AFTER {
                        tracing::info!(addr = %b.addr, peer = %peer_id, agency = %self.names.of(&peer_id), failures = b.failures, "configured peer reachable again");
                    }
                    b.failures = 0;
                    b.last_error = None;
                    b.warned_at = None;
                }
                if num_established.get() == 1 {
                    // Counted as connected once its hello names our chain (on_hello).
                    self.remote_addrs.insert(peer_id, endpoint.get_remote_address().clone());
                    let ours = self.hello.encode();
                    self.swarm.behaviour_mut().hello.send_request(&peer_id, ours);
                    tracing::debug!(peer = %peer_id, addr = %endpoint.get_remote_address(), "connection established; hello sent");
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, connection_id, num_established, .. } if num_established > 0 => {
                if let Some(live) = self.instances.get_mut(&peer_id) {
                    live.remove(&connection_id);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                cause,
                ..
            } => {
                let now = Instant::now();
                let (min, max) = (self.reconnect_min, self.reconnect_max);
                for b in self
                    .bootstrap
                    .iter_mut()
                    .filter(|b| b.peer == Some(peer_id))
                {
                    let stable = b
                        .connected_since
                        .take()
                        .is_some_and(|t| now - t >= STABLE_CONNECTION);
                    if stable {
                        b.backoff = min;
                    }
                    b.next_at = now + b.backoff;
                    b.backoff = (b.backoff * 2).min(max);
                }
                self.remote_addrs.remove(&peer_id);
                self.instances.remove(&peer_id);
                if self.verified.remove(&peer_id).is_some() {
                    tracing::info!(peer = %peer_id, agency = %self.names.of(&peer_id), cause = ?cause.map(|c| c.to_string()), "peer disconnected");
                    self.emit_control(NetEvent::PeerDisconnected(peer_id));
                }
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                if let Some(i) = self.dials.remove(&connection_id) {
                    self.dial_failed(i, &error);
                } else {
                    tracing::debug!(peer = ?peer_id, %error, "outgoing connection failed");
                }
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                peer_id,
                ..
            } => {
                tracing::debug!(peer = ?peer_id, addr = %send_back_addr, %error, "incoming connection failed");
            }
            SwarmEvent::ListenerError { error, .. } => tracing::warn!(%error, "listener error"),
            SwarmEvent::ListenerClosed {
                reason, addresses, ..
            } => {
                tracing::warn!(?addresses, ?reason, "listener closed");
            }
            _ => {}
        }
    }

    /// Logs a refused connection: WARN the first time per peer, at most one WARN
    /// per [`REFUSAL_WARN_EVERY`] (peers with fresh keys each time cannot flood the
    /// log; the next WARN says how many were not logged), DEBUG otherwise.
    fn on_refusal(&mut self, r: Refusal) {
        bump(&self.counters.refused_connections);
        let new_peer = self.refused_seen.insert(r.peer);
        if self.refused_seen.len() > 4096 {
            self.refused_seen.clear();
        }
        let now = Instant::now();
        let due = self.refusal_warned_at.is_none_or(|t| now.duration_since(t) >= REFUSAL_WARN_EVERY);
        if new_peer && due {
            let unlogged = std::mem::take(&mut self.refusals_unlogged);
            self.refusal_warned_at = Some(now);
            tracing::warn!(peer = %r.peer, inbound = r.inbound, addr = ?r.addr, unlogged, "connection refused: peer not allowed (not a validator or observer of the membership)");
        } else {
            if new_peer {
                self.refusals_unlogged += 1;
            }
            tracing::debug!(peer = %r.peer, inbound = r.inbound, addr = ?r.addr, "connection refused: peer not allowed");
        }
        self.emit_control(NetEvent::ConnectionRefused {
            peer: r.peer,
            inbound: r.inbound,
            addr: r.addr,
        });
    }

    /// Ping reports a failure after two consecutive unanswered pings: the connection is
    /// dead even if TCP has not noticed, so close it (the peer, if it is a bootstrap peer,
    /// is then redialled).
    fn on_ping(&mut self, e: ping::Event) {
        match e.result {
            Ok(_) => bump(&self.counters.pings_ok),
            Err(ping::Failure::Unsupported) => {
                tracing::debug!(peer = %e.peer, "peer does not support ping");
            }
            Err(error) => {
                tracing::warn!(peer = %e.peer, agency = %self.names.of(&e.peer), %error, "ping failed: closing the connection");
                bump(&self.counters.ping_closures);
                self.swarm.close_connection(e.connection);
            }
        }
    }

    fn on_gossip(&mut self, e: gossipsub::Event) {
        let gossipsub::Event::Message {
            propagation_source: from,
            message_id,
            message,
        } = e
        else {
            if let gossipsub::Event::GossipsubNotSupported { peer_id } = e {
                if !self.wrong_chain_warned.contains_key(&peer_id) {
                    tracing::debug!(peer = %peer_id, agency = %self.names.of(&peer_id), "peer does not speak this chain's gossipsub");
                }
            }
            return;
        };
        bump(&self.counters.gossip_received);
        let topic = self.topic_of(&message.topic);
        // Strict validation guarantees a signed author; it must be an allowed key too.
        let author = message.source.filter(|a| self.allowed.contains(a));
        let (Some(topic), Some(author)) = (topic, author) else {
            tracing::warn!(%from, author = ?message.source, topic = %message.topic, "gossip from unknown author or topic: rejected");
            bump(&self.counters.gossip_rejected);
            self.swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(&message_id, &from, MessageAcceptance::Reject);
            return;
        };
        let id = GossipId(message_id.0.clone());
        if self.auto_accept {
            self.swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(&message_id, &from, MessageAcceptance::Accept);
        }
        let ev = NetEvent::Gossip {
            topic,
            from,
            author,
            id,
            bytes: message.data,
        };
        if !self.emit(ev) && !self.auto_accept {
            // The application never saw it: don't hold it, don't forward it.
            self.swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(&message_id, &from, MessageAcceptance::Ignore);
        }
    }

    fn on_sync(&mut self, e: request_response::Event<Vec<u8>, Vec<u8>>) {
        use request_response::{Event, Message};
        match e {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let channel = ResponseChannel {
                    peer,
                    inner: channel,
                };
                // If dropped, the channel is dropped with it and the requester sees an error.
                let _ = self.emit(NetEvent::Request {
                    peer,
                    bytes: request,
                    channel,
                });
            }
            Event::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some((_, reply)) = self.pending.remove(&request_id) {
                    let _ = reply.send(Ok(response));
                } else {
                    tracing::debug!(%peer, "response to an unknown request");
                }
            }
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                tracing::debug!(%peer, %error, "sync request failed");
                if let Some((_, reply)) = self.pending.remove(&request_id) {
                    let _ = reply.send(Err(NetError::Request {
                        peer,
                        reason: error.to_string(),
                    }));
                }
            }
            Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "inbound sync request failed");
            }
            Event::ResponseSent { .. } => {}
        }
    }

    /// The hello exchange (`net/hello.rs`): answer a peer's hello with ours, and
    /// judge the peer by its hello — same chain: connected; another chain: WARN
    /// with both ids, disconnected; another process with a key already connected:
    /// ERROR on both sides.
    fn on_hello(&mut self, e: request_response::Event<Vec<u8>, Vec<u8>>) {
        use request_response::{Event, Message, OutboundFailure};
        match e {
            Event::Message { peer, connection_id, message: Message::Request { request, channel, .. } } => {
                let theirs = Hello::decode(&request);
                let mut answer = self.hello.clone();
                if let Ok(t) = &theirs {
                    answer.warning = self.duplicate_instance(&peer, connection_id, t);
                }
                let _ = self.swarm.behaviour_mut().hello.send_response(channel, answer.encode());
                // Not closed here on another chain: our own hello's answer closes it, so
                // that the peer gets our answer and learns both chain ids too.
                self.judge_hello(peer, connection_id, theirs, false);
            }
            Event::Message { peer, connection_id, message: Message::Response { response, .. } } => {
                self.judge_hello(peer, connection_id, Hello::decode(&response), true);
            }
            Event::OutboundFailure { peer, error, .. } => {
                if matches!(error, OutboundFailure::UnsupportedProtocols) {
                    tracing::warn!(peer = %peer, agency = %self.names.of(&peer), "peer does not speak the hello protocol (another yrd version?): disconnecting");
                    let _ = self.swarm.disconnect_peer_id(peer);
                } else if self.wrong_chain_warned.contains_key(&peer) {
                    let _ = self.swarm.disconnect_peer_id(peer);
                } else if self.swarm.is_connected(&peer) && !self.verified.contains_key(&peer) {
                    // Not a verdict on the peer (a timeout under load): the gossip and
                    // sync protocols are chain-specific anyway, so count it.
                    tracing::debug!(%peer, %error, "hello failed; counting the peer as connected");
                    self.mark_connected(peer, String::new());
                }
            }
            Event::InboundFailure { peer, error, .. } => tracing::debug!(%peer, %error, "inbound hello failed"),
            Event::ResponseSent { .. } => {}
        }
    }

    /// If another process with the same key as `peer` is already connected here:
    /// the text both operators must read.
    fn duplicate_instance(&self, peer: &PeerId, connection: ConnectionId, theirs: &Hello) -> Option<String> {
        let live = self.instances.get(peer)?;
        let (_, known) = live.iter().find(|(c, i)| **c != connection && !i.is_empty() && **i != theirs.instance)?;
        Some(format!(
            "two processes run with the key of {} (peer id {peer}): node {} sees instances {known} and {} connected at once; stop one of them: a validator key used by two processes can sign conflicting votes",
            self.names.of(peer),
            self.names.of(self.swarm.local_peer_id()),
            theirs.instance
        ))
    }

    /// `close`: disconnect a peer on another chain now (after the answer to our own
    /// hello; the peer's hello is answered first).
    fn judge_hello(&mut self, peer: PeerId, connection: ConnectionId, theirs: Result<Hello, hello::HelloError>, close: bool) {
        let addr = self.remote_addrs.get(&peer).map(|a| a.to_string()).unwrap_or_default();
        let theirs = match theirs {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(%peer, agency = %self.names.of(&peer), %addr, error = %e, "malformed hello: disconnecting");
                let _ = self.swarm.disconnect_peer_id(peer);
                return;
            }
        };
        if let Some(w) = &theirs.warning {
            tracing::error!(%peer, agency = %self.names.of(&peer), "peer reports: {w}");
        }
        if !self.hello.same_chain(&theirs) {
            let now = Instant::now();
            let due = self.wrong_chain_warned.get(&peer).is_none_or(|t| now.duration_since(*t) >= WRONG_CHAIN_WARN_EVERY);
            let message = hello::wrong_chain_message(&self.hello, &theirs);
            if due {
                self.wrong_chain_warned.insert(peer, now);
                if self.wrong_chain_warned.len() > 4096 {
                    self.wrong_chain_warned.retain(|_, t| now.duration_since(*t) < WRONG_CHAIN_WARN_EVERY);
                }
                tracing::warn!(%peer, agency = %self.names.of(&peer), %addr, their_chain = %theirs.chain_id, our_chain = %self.hello.chain_id, "{message}");
            } else {
                tracing::debug!(%peer, %addr, their_chain = %theirs.chain_id, "peer on another chain refused again");
            }
            for b in self.bootstrap.iter_mut().filter(|b| b.peer == Some(peer)) {
                b.wrong_chain = Some(theirs.chain());
            }
            bump(&self.counters.wrong_chain);
            if close {
                let _ = self.swarm.disconnect_peer_id(peer);
            }
            return;
        }
        if let Some(dup) = self.duplicate_instance(&peer, connection, &theirs) {
            tracing::error!(%peer, agency = %self.names.of(&peer), %addr, "{dup}");
        }
        self.instances.entry(peer).or_default().insert(connection, theirs.instance.clone());
        for b in self.bootstrap.iter_mut().filter(|b| b.peer == Some(peer)) {
            b.wrong_chain = None;
        }
        self.wrong_chain_warned.remove(&peer);
        if !self.verified.contains_key(&peer) && self.swarm.is_connected(&peer) {
            self.mark_connected(peer, theirs.instance);
        }
    }

    fn mark_connected(&mut self, peer: PeerId, instance: String) {
        self.verified.insert(peer, instance);
        let addr = self.remote_addrs.get(&peer).map(|a| a.to_string()).unwrap_or_default();
        tracing::info!(%peer, agency = %self.names.of(&peer), %addr, "peer connected");
        self.emit_control(NetEvent::PeerConnected(peer));
    }

    /// Where each configured peer stands, for `status`.
    fn dial_status(&self) -> Vec<PeerDialStatus> {
        let now = Instant::now();
        self.bootstrap
            .iter()
            .filter(|b| b.peer != Some(*self.swarm.local_peer_id()))
            .map(|b| {
                let connected = b.peer.is_some_and(|p| self.verified.contains_key(&p));
                let state = if connected {
                    "connected"
                } else if b.wrong_chain.is_some() {
                    "wrong_chain"
                } else if b.dialing.is_some() {
                    "dialing"
                } else if b.failures > 0 {
                    "unreachable"
                } else {
                    "connecting"
                };
                PeerDialStatus {
                    addr: b.addr.to_string(),
                    peer_id: b.peer.map(|p| p.to_string()),
                    name: b.peer.map(|p| self.names.of(&p).to_string()).filter(|n| n != names::UNKNOWN),
                    state,
                    failures: b.failures,
                    last_error: if connected { None } else { b.wrong_chain.clone().map(|c| format!("on another chain: {c}")).or_else(|| b.last_error.clone()) },
                    retry_in_ms: (!connected && b.dialing.is_none()).then(|| b.next_at.saturating_duration_since(now).as_millis() as u64),
                }
            })
            .collect()
    }

    fn dial_failed(&mut self, i: usize, error: &DialError) {
        let (min, max) = (self.reconnect_min, self.reconnect_max);
        let b = &mut self.bootstrap[i];
        b.dialing = None;
        if let DialError::LocalPeerId { .. } = error {
            // A bootstrap address without /p2p/ that turned out to be ourselves.
            b.peer = Some(*self.swarm.local_peer_id());
            b.next_at = Instant::now() + Duration::from_secs(3600 * 24 * 365);
            return;
        }
        let now = Instant::now();
        b.next_at = now + b.backoff;
        b.failures = b.failures.saturating_add(1);
        let reason = dial_error_text(error);
        b.last_error = Some(reason.clone());
        let due = b.failures >= DIAL_WARN_AFTER && b.warned_at.is_none_or(|t| now.duration_since(t) >= DIAL_WARN_EVERY);
        if due {
            b.warned_at = Some(now);
            let who = b.configured.map(|p| self.names.of(&p).to_string()).unwrap_or_else(|| names::UNKNOWN.into());
            tracing::warn!(
                addr = %b.addr,
                agency = %who,
                failures = b.failures,
                error = %reason,
                retry_in_ms = b.backoff.as_millis() as u64,
                "configured peer unreachable: check its address and port in `peers`, that it runs, and firewalls; retrying"
            );
        } else {
            tracing::debug!(addr = %b.addr, error = %reason, retry_in = ?b.backoff, "bootstrap dial failed");
        }
        b.backoff = (b.backoff * 2).clamp(min, max);
    }

    fn redial(&mut self) {
        let now = Instant::now();
        let local = *self.swarm.local_peer_id();
        for i in 0..self.bootstrap.len() {
            let b = &self.bootstrap[i];
            if b.dialing.is_some() || now < b.next_at || b.peer == Some(local) {
                continue;
            }
            if let Some(p) = b.peer {
                if self.swarm.is_connected(&p) {
                    continue;
                }
            }
            let opts = match b.configured {
                Some(p) => DialOpts::peer_id(p).addresses(vec![b.addr.clone()]).build(),
                None => DialOpts::unknown_peer_id().address(b.addr.clone()).build(),
            };
            let id = opts.connection_id();
            match self.swarm.dial(opts) {
                Ok(()) => {
                    self.bootstrap[i].dialing = Some(id);
                    self.dials.insert(id, i);
                }
                Err(DialError::DialPeerConditionFalse(_)) => {
                    // Already dialling or connected through another path: check again later.
                    self.bootstrap[i].next_at = now + self.reconnect_min;
                }
                Err(e) => self.dial_failed(i, &e),
            }
        }
    }
}

/// A peer's TCP stream, counting the bytes it carries into [`NetStats::bytes_sent`] and
/// [`NetStats::bytes_received`] (what the wire carries: noise, yamux and every protocol).
struct Counted<S> {
    inner: S,
    counters: Arc<Counters>,
}

impl<S: futures::AsyncRead + Unpin> futures::AsyncRead for Counted<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = &polled {
            self.counters.bytes_received.fetch_add(*n as u64, Ordering::Relaxed);
        }
        polled
    }
}

impl<S: futures::AsyncWrite + Unpin> futures::AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = &polled {
            self.counters.bytes_sent.fetch_add(*n as u64, Ordering::Relaxed);
        }
        polled
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_close(cx)
    }
}
