//! The consensus driver: wires the pure core to the network, real timers, the
//! mempool and the sled store, and runs the HTTP API.
//!
//! One task owns the [`Core`] and executes its actions strictly in order; in
//! particular `PersistSafety` is written and flushed before the next action (the
//! broadcast of the vote it covers) runs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use libp2p::PeerId;
use tokio::sync::{mpsc, watch};
use tracing::{debug, error, info, warn};
use yrd_consensus::codec;
use yrd_consensus::core::{Action, Config as CoreConfig, Core, Event, HeightSets, Rejection, TimeoutConfig};
use yrd_consensus::crypto::{Hash32, PublicKey};
use yrd_consensus::types::{BlockHash, Height, Round, ValidatorIndex};
use yrd_consensus::{CommitCertificate, SafetyState, Timeout};
use yrd_ledger::block::Block;
use yrd_ledger::genesis::Genesis;
use yrd_ledger::store::{BlockError, Ledger};
use yrd_ledger::tx::TxId;

use crate::config::NodeConfig;
use crate::disk::DiskSpace;
use crate::fatal::{StorageFailure, WriteWatch};
use crate::health::{ClockMonitor, ClockStatus, ClockVerdict, Halt};
use crate::keys::read_key_file;
use crate::lagging::Lagging;
use crate::liveness::{self, CatchUpMonitor, CatchUpVerdict, Liveness, StallMonitor, StallVerdict};
use crate::mempool::Mempool;
use crate::metrics::Metrics;
use crate::net::{self, NetConfig, NetEvent, NetHandle, Topic, Verdict};
use crate::shared::{now_ms, ConsensusStatus, Shared};
use crate::wire::{self, ConsensusMsg, SyncRequest, SyncResponse, TxBatch};

const SAFETY_KEY: &[u8] = b"safety";

/// A block fetched by sync with the certificate that makes it final.
type CertifiedPair = (Block, CommitCertificate);
/// Gossip transaction batches at least this often.
const TX_GOSSIP_INTERVAL_MS: u64 = 10;
/// Accept block timestamps at most this far ahead of our clock.
const MAX_CLOCK_DRIFT_MS: u64 = 30_000;
/// Proposals for future heights kept until we get there.
const MAX_FUTURE_PROPOSALS: usize = 64;
/// How often sync is retried for a decided block whose body we lack.
const BODY_SYNC_RETRY: Duration = Duration::from_secs(1);
/// Of the MAX_FUTURE_PROPOSALS, at most this many from one gossip author.
const FUTURE_PROPOSALS_PER_AUTHOR: usize = 8;
/// Most block bodies held for the current height (proposals of its rounds, ours,
/// synced): rounds within core::MAX_ROUNDS_AHEAD, a few values each at most from
/// honest proposers.
const MAX_BODIES: usize = 128;
/// A peer that sends this many invalid messages is dropped ...
const STRIKES_BEFORE_BAN: u32 = 3;
/// ... for this long (it may reconnect afterwards; every message is still verified).
const BAN_DURATION: Duration = Duration::from_secs(60);
/// Gossiped transaction batches admitted concurrently (one per core).
const ADMISSION_WORKERS: usize = 2;
/// Transaction gossip batches admitted at once or waiting for a worker; past
/// this a new batch is ignored (metric `yrd_gossip_batches_shed_total`).
const ADMISSION_QUEUE: usize = 64;
/// Sync requests served at once (one per peer).
const SYNC_SERVING: usize = 4;

/// At shutdown, how long the API may take to finish its requests ...
const API_DRAIN: Duration = Duration::from_secs(5);
/// ... the network to close ...
const NET_SHUTDOWN: Duration = Duration::from_secs(5);
/// ... and the store's final flush (an fsync of at most a block's worth of
/// writes; longer means the disk hangs, and the node exits with an error
/// rather than waiting on it).
const FINAL_FLUSH: Duration = Duration::from_secs(10);
/// How often the driver measures free disk space (and before every commit).
const DISK_REFRESH: Duration = Duration::from_secs(1);
/// How often the driver stores its liveness for the API and checks for a stall
/// (a quarter of a second is fresh enough for `status` and costs one scan of the
/// validators' progress).
const LIVENESS_REFRESH: Duration = Duration::from_millis(250);

/// How often the stall watch looks at the store write in progress.
const STALL_CHECK: Duration = Duration::from_millis(500);

/// Runs a node until SIGINT or SIGTERM, or until it fails. A store write that
/// does not return within [`crate::fatal::STALL_LIMIT`] ([`crate::fatal::STALL_LIMIT_FULL_DISK`] on a full
/// disk) ends the process (status 2): see [`crate::fatal`].
pub async fn run(config: NodeConfig) -> anyhow::Result<()> {
    let node = Node::start(config).await?;
    watch_for_stalls(Arc::downgrade(&node.shared));
    let shutdown = shutdown_signal();
    node.run_until(shutdown).await
}

/// Exits the process when a store write hangs: a blocked flush cannot be
/// cancelled, and a node stuck in one neither votes nor stops on SIGTERM.
fn watch_for_stalls(shared: std::sync::Weak<Shared>) {
    let spawned = std::thread::Builder::new().name("yrd-stall-watch".into()).spawn(move || loop {
        std::thread::sleep(STALL_CHECK);
        let Some(shared) = shared.upgrade() else { return };
        if let Some(hung) = shared.writes.hung(|| shared.disk.measure().ok()) {
            error!(
                write = %hung.what,
                seconds = hung.took.as_secs(),
                free_bytes = hung.free_bytes,
                "storage failure: {hung}; exiting with status 2 — on restart the store reopens at its last complete block"
            );
            std::process::exit(2);
        }
    });
    if let Err(e) = spawned {
        warn!(error = %e, "cannot start the storage stall watch");
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => info!("SIGTERM received, shutting down"),
                    _ = int.recv() => info!("SIGINT received, shutting down"),
                }
                return;
            }
            _ => warn!("cannot install signal handlers; stop with Ctrl-C"),
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// A started node: network up, API listening, consensus ready.
pub struct Node {
    shared: Arc<Shared>,
    net: NetHandle,
    events: mpsc::Receiver<NetEvent>,
    gossip_in: mpsc::Receiver<Vec<Vec<u8>>>,
    api_addr: std::net::SocketAddr,
    api_shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    api_task: tokio::task::JoinHandle<std::io::Result<()>>,
    driver: Driver,
}

impl Node {
    pub async fn start(config: NodeConfig) -> anyhow::Result<Node> {
        // Before anything opens a descriptor: every connection and file needs one.
        let fds = crate::fdlimit::raise_to_hard()?;
        info!(before = fds.before, soft = fds.soft, hard = fds.hard, "file-descriptor limit (RLIMIT_NOFILE)");
        let max_connections = crate::fdlimit::api_connection_cap(config.http.max_connections, fds.soft, config.http.fd_reserve)?;
        info!(
            max_connections,
            configured = config.http.max_connections,
            fd_limit = fds.soft,
            fd_reserve = config.http.fd_reserve,
            "API connection cap"
        );
        let genesis_bytes = std::fs::read(&config.genesis)
            .with_context(|| format!("cannot read genesis file {}", config.genesis.display()))?;
        let genesis = Genesis::from_json(&genesis_bytes)
            .with_context(|| format!("invalid genesis file {}", config.genesis.display()))?;
        let key = read_key_file(&config.key)?;
        let me = key.public();
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
        let disk = DiskSpace::new(&config.data_dir, &config.storage);
        let ledger = Ledger::open(&config.data_dir.join("ledger"), genesis.clone())
            .with_context(|| format!("cannot open the ledger in {}", config.data_dir.display()))?;
        if let Some(r) = ledger.repair_report() {
            warn!(
                recorded_height = r.recorded_height.map(|h| h.0),
                height = r.height.0,
                reason = %r.reason,
                above = r.stopped_at.as_deref().unwrap_or("nothing"),
                changes = %r.changes.join("; "),
                "store repaired at open: a write torn by a crash or a full disk was discarded; resuming from the last complete block (later blocks come from peers)"
            );
        }
        // Who we are in the membership known so far (governance may have added or
        // rotated us since the genesis; a node that joined recently learns it by
        // catching up, so an unknown key is a warning, not an error).
        let membership = ledger.next_membership();
        let validator_index = membership.validators.iter().position(|v| v.key == me).map(|i| ValidatorIndex(i as u32));
        let known_name = membership
            .validators
            .iter()
            .map(|v| (&v.name, v.key))
            .chain(membership.observers.iter().map(|o| (&o.name, o.key)))
            .find(|(_, k)| *k == me)
            .map(|(n, _)| n.clone());
        match &known_name {
            None if membership.retired_key(&me).is_some() => {
                let r = membership.retired_key(&me).map(|r| format!("{} {} {} at height {}", r.role, r.name, r.reason, r.since));
                bail!(
                    "the key in {} ({}) was retired ({}): it can never sign or connect again; use the node's new key",
                    config.key.display(),
                    me.to_hex(),
                    r.unwrap_or_default()
                )
            }
            None => warn!(
                key = %me,
                height = ledger.height().0,
                "this node's key is neither a validator nor an observer of the membership known at this height; peers \
                 accept it only once an approved change adds it (the node then follows the chain, and votes from the \
                 height its addition takes effect)"
            ),
            Some(n) if n != &config.name => {
                bail!("config name {:?} does not match the name {:?} this key has in the membership", config.name, n)
            }
            _ => {}
        }
        let chain = ledger.chain_id();
        let safety_tree = ledger.db().open_tree("consensus")?;
        let safety: SafetyState = match safety_tree.get(SAFETY_KEY)? {
            Some(b) => codec::decode(&b, 4096, "safety state").context("stored consensus safety state is corrupt")?,
            None => SafetyState::default(),
        };
        let height = ledger.height();
        info!(name = %config.name, chain = %chain, height = height.0, validator = ?validator_index, "opened ledger");

        // Network.
        let mut nc = NetConfig::new(key.to_bytes(), chain.to_hex()[..16].to_string());
        nc.listen = config.listen.parse().map_err(|e| anyhow!("listen address {:?}: {e}", config.listen))?;
        nc.bootstrap = config
            .peers
            .iter()
            .map(|p| p.parse().map_err(|e| anyhow!("peer address {p:?}: {e}")))
            .collect::<anyhow::Result<_>>()?;
        nc.allowed = ledger.gov().network_keys_from(height.next().0).iter().map(|k| k.0).collect();
        nc.chain_id = chain.to_hex();
        nc.chain_name = genesis.chain_name.clone();
        // Names for the logs: the membership's (the genesis' plus changes so far).
        nc.names = membership
            .validators
            .iter()
            .map(|v| (v.key.0, v.name.clone()))
            .chain(membership.observers.iter().map(|o| (o.key.0, o.name.clone())))
            .collect();
        nc.max_gossip_bytes = wire::MAX_CONSENSUS_MSG_BYTES;
        nc.max_request_bytes = wire::MAX_SYNC_REQUEST_BYTES;
        nc.max_response_bytes = wire::MAX_SYNC_RESPONSE_BYTES;
        let (net, events) = net::start(nc).await.context("cannot start the network")?;

        let (gossip_out, gossip_in) = mpsc::channel(1024);
        let (committed, _) = watch::channel(height);
        let shared = Arc::new(Shared {
            name: config.name.clone(),
            validator_index: validator_index.map(|v| v.0),
            genesis: genesis.clone(),
            chain,
            ledger: RwLock::new(ledger),
            mempool: Mutex::new(Mempool::with_max_wait(config.mempool.max_txs, config.mempool.max_wait())),
            recent: Mutex::new(crate::shared::RecentCommits::default()),
            metrics: Metrics::new(),
            consensus: Mutex::new(ConsensusStatus {
                height: height.next(),
                round: Round(0),
                step: "propose",
                validator_index: validator_index.map(|v| v.0),
            }),
            peers: Mutex::new(Vec::new()),
            committed,
            gossip_out,
            disk,
            writes: WriteWatch::default(),
            health: Default::default(),
            queries: crate::queries::QueryRecorder::new(Some(key.clone()), config.queries.clone()),
        });
        shared.metrics.height.set(height.0 as i64);
        shared.disk.refresh(&shared.metrics);

        // API, with its connections capped (above) so that descriptors stay for
        // the network and the store.
        let limits = crate::api::ServeLimits::new(&config.http, max_connections);
        let api_bind: std::net::SocketAddr =
            config.api.parse().with_context(|| format!("API address {:?}", config.api))?;
        let listener = crate::api::server::bind(api_bind)
            .with_context(|| format!("cannot listen for the API on {}", config.api))?;
        let api_addr = listener.local_addr()?;
        let (api_shutdown, api_stop) = tokio::sync::oneshot::channel::<()>();
        let api_task = tokio::spawn(crate::api::serve(listener, shared.clone(), limits, async move {
            let _ = api_stop.await;
        }));

        let c = &config.consensus;
        let timeouts = TimeoutConfig {
            propose_base_ms: c.propose_timeout_ms,
            propose_delta_ms: c.propose_timeout_delta_ms,
            prevote_base_ms: c.vote_timeout_ms,
            prevote_delta_ms: c.vote_timeout_delta_ms,
            precommit_base_ms: c.vote_timeout_ms,
            precommit_delta_ms: c.vote_timeout_delta_ms,
        };
        let sets = {
            let ledger = shared.ledger.read().map_err(|_| anyhow!("ledger lock poisoned"))?;
            sets_after(&ledger, height)?
        };
        // The core gets the key whether or not it is a member now: it signs only at
        // heights whose set holds the key (a validator added or rotated in later).
        let core = Core::new(CoreConfig { chain, timeouts }, Some(key.clone()), safety, height.next(), sets)
            .map_err(|e| anyhow!("consensus: {e}"))?;
        let (strike_tx, strike_rx) = mpsc::channel(256);
        let driver = Driver {
            shared: shared.clone(),
            net: net.clone(),
            core,
            safety_tree,
            timers: BTreeMap::new(),
            timer_seq: 0,
            bodies: HashMap::new(),
            future_proposals: Vec::new(),
            msg_author: None,
            blame_author: false,
            body_sync_at: Instant::now(),
            awaiting_commit: None,
            pending_proposal: None,
            last_commit_at: Instant::now(),
            max_block_txs: c.max_block_txs.min(genesis.params.max_block_txs) as usize,
            block_interval: Duration::from_millis(c.block_interval_ms),
            empty_block_after: Duration::from_millis(c.empty_block_after_ms),
            propose_timeout: Duration::from_millis(c.propose_timeout_ms),
            held_propose: None,
            peer_voted_at: None,
            tx_outbox: Vec::new(),
            synced: BTreeMap::new(),
            sync_inflight: false,
            sync_attempts: 0,
            proposal_bodies: BTreeMap::new(),
            sync_results: mpsc::channel(16),
            peer_keys: HashMap::new(),
            strikes: HashMap::new(),
            strike_tx,
            strike_rx,
            admission: Arc::new(tokio::sync::Semaphore::new(ADMISSION_WORKERS)),
            admission_queue: Arc::new(tokio::sync::Semaphore::new(ADMISSION_QUEUE)),
            sync_serving: SyncServing::default(),
            lagging: Lagging::default(),
            disk_checked_at: Instant::now(),
            halted: None,
            halt_logged: Instant::now(),
            clock: ClockMonitor::default(),
            me,
            stall: StallMonitor::default(),
            catch_up: CatchUpMonitor::default(),
            best_known: height.0,
            liveness_checked_at: Instant::now(),
            allowed_keys: shared.ledger.read().map_err(|_| anyhow!("ledger lock poisoned"))?.gov().network_keys_from(height.next().0),
        };
        Ok(Node { shared, net, events, gossip_in, api_addr, api_shutdown: Some(api_shutdown), api_task, driver })
    }

    pub fn api_addr(&self) -> std::net::SocketAddr {
        self.api_addr
    }

    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Runs the driver until `shutdown` completes or the driver fails, then
    /// stops the API and the network and flushes the store, each step bounded
    /// ([`API_DRAIN`], [`NET_SHUTDOWN`], [`FINAL_FLUSH`]). A failure is logged as
    /// an ERROR before anything else. After a failed store write or read the
    /// store is not touched again: no final flush, and its handles are leaked
    /// for the process exit to close, because sled closes a tree by flushing
    /// until nothing is left, which can be forever after a failed write
    /// ([`crate::fatal`]).
    pub async fn run_until(mut self, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        // The queries the API serves are recorded on chain in batches meanwhile.
        let (flusher_stop, flusher_stopped) = watch::channel(false);
        let flusher = tokio::spawn(crate::queries::run_flusher(self.shared.clone(), flusher_stopped));
        let result = self.driver.run(&mut self.events, &mut self.gossip_in, shutdown).await;
        let mut store_failed = false;
        if let Err(e) = &result {
            match StorageFailure::find(e) {
                Some(failure) => {
                    store_failed = failure.store_failed();
                    error!(
                        // Its Display names its source already; `{e:#}` would repeat it.
                        error = %failure,
                        height = self.shared.height().0,
                        "the node stops on a storage failure: nothing more is written or acknowledged; fix the disk and \
                         restart — the store reopens at its last complete block and fetches the rest from its peers"
                    );
                }
                None => error!(error = %format!("{e:#}"), "the node stops"),
            }
        }
        if let Some(tx) = self.api_shutdown.take() {
            let _ = tx.send(());
        }
        if tokio::time::timeout(API_DRAIN, &mut self.api_task).await.is_err() {
            warn!("the API did not finish its requests within {} s; closing it", API_DRAIN.as_secs());
            self.api_task.abort();
        }
        let _ = flusher_stop.send(true);
        if tokio::time::timeout(API_DRAIN, flusher).await.is_err() {
            warn!("the query-record flusher did not stop within {} s", API_DRAIN.as_secs());
        }
        if tokio::time::timeout(NET_SHUTDOWN, self.net.shutdown()).await.is_err() {
            warn!("the network did not close within {} s", NET_SHUTDOWN.as_secs());
        }
        if store_failed {
            leak_store(self.driver, self.shared);
            info!("stopped without flushing the failed store");
            return result;
        }
        let shared = self.shared.clone();
        let flush = tokio::task::spawn_blocking(move || -> Result<(), String> {
            let ledger = shared.ledger.read().map_err(|_| "ledger lock poisoned".to_string())?;
            ledger.db().flush().map(|_| ()).map_err(|e| e.to_string())
        });
        let flushed = match tokio::time::timeout(FINAL_FLUSH, flush).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(anyhow!("storage failure: the final flush of the store failed: {e}")),
            Ok(Err(e)) => Err(anyhow!("storage failure: the final flush of the store did not complete: {e}")),
            Err(_) => Err(anyhow!(
                "storage failure: the final flush of the store did not finish within {} s (the disk hangs)",
                FINAL_FLUSH.as_secs()
            )),
        };
        if let Err(e) = flushed {
            error!(error = %e, "the node stops with its store possibly not flushed; on restart it reopens at its last complete block");
            leak_store(self.driver, self.shared);
            return result.and(Err(e));
        }
        info!("stopped");
        result
    }
}

/// Leaves the store's handles open for the process exit to close: dropping the
/// last one makes sled flush until nothing is left, which after a failed write
/// may never end (see [`crate::fatal`]). Only for a process about to exit.
fn leak_store(driver: Driver, shared: Arc<Shared>) {
    std::mem::forget(driver);
    std::mem::forget(shared);
}

struct Driver {
    shared: Arc<Shared>,
    net: NetHandle,
    core: Core,
    safety_tree: sled::Tree,
    timers: BTreeMap<(Instant, u64), Timeout>,
    timer_seq: u64,
    /// Block bodies seen for the current and next heights, by hash.
    bodies: HashMap<BlockHash, Block>,
    /// Proposals for heights above ours, replayed when we get there.
    /// Proposals for the next height, with the peer that authored the gossip.
    future_proposals: Vec<(yrd_consensus::SignedProposal, Block, PeerId)>,
    /// The author of the consensus gossip being handled.
    msg_author: Option<PeerId>,
    /// Set while handling a consensus message whose author is to be struck
    /// although the message is reported `Ignore` (see `on_net_event`).
    blame_author: bool,
    /// When sync was last started for a decided block whose body we lack.
    body_sync_at: Instant,
    /// A decided certificate whose block body we still have to fetch.
    awaiting_commit: Option<CommitCertificate>,
    /// We are the proposer and still have to build `(height, round)`; since when.
    pending_proposal: Option<(Height, Round, Instant)>,
    last_commit_at: Instant,
    max_block_txs: usize,
    block_interval: Duration,
    /// Idle (no transaction waiting): the proposer's empty block comes after this.
    empty_block_after: Duration,
    /// Round 0's proposal timeout (held while idle, see [`Driver::hold_if_idle`]).
    propose_timeout: Duration,
    /// Our round-0 proposal timeout, expired while the chain was idle and held
    /// back until transactions wait or the empty block is overdue.
    held_propose: Option<Timeout>,
    /// The height at which a validator's vote reached us: it is working on the
    /// height (a transaction reached it, or its proposal timeout ran), so ours
    /// is not held back either.
    peer_voted_at: Option<Height>,
    tx_outbox: Vec<Vec<u8>>,
    /// Certified blocks fetched by sync, not yet committed.
    synced: BTreeMap<Height, (Block, CommitCertificate)>,
    sync_inflight: bool,
    /// The body kept for each (height, round) proposal (see MAX_BODIES).
    proposal_bodies: BTreeMap<(Height, Round), BlockHash>,
    /// Sync requests started, to rotate the first peer asked.
    sync_attempts: usize,
    sync_results: (mpsc::Sender<Vec<CertifiedPair>>, mpsc::Receiver<Vec<CertifiedPair>>),
    peer_keys: HashMap<PeerId, PublicKey>,
    /// Invalid messages per peer since its last ban.
    strikes: HashMap<PeerId, u32>,
    /// Peers that sent invalid transaction batches (reported by admission tasks).
    strike_tx: mpsc::Sender<PeerId>,
    strike_rx: mpsc::Receiver<PeerId>,
    /// Bounds concurrent admission of gossiped transaction batches.
    admission: Arc<tokio::sync::Semaphore>,
    /// Batches admitted or waiting (ADMISSION_QUEUE).
    admission_queue: Arc<tokio::sync::Semaphore>,
    /// Sync requests being served.
    sync_serving: SyncServing,
    /// Validators seen at a finished height, and the blocks pushed to them.
    lagging: Lagging,
    /// When free disk space was last measured.
    disk_checked_at: Instant,
    /// Set when a certified block fails our validation: we stop following the
    /// chain (docs/consensus.md, "A certified block we cannot validate").
    halted: Option<Halt>,
    /// When the halt was last logged (it is repeated, loud, until resolved).
    halt_logged: Instant,
    /// Our clock against the other validators' (from their proposals' timestamps).
    clock: ClockMonitor,
    /// The keys the network allows to connect (see [`Driver::after_commit`]).
    allowed_keys: Vec<PublicKey>,
    /// This node's key.
    me: PublicKey,
    /// When a stall was last logged (`liveness.rs`).
    stall: StallMonitor,
    /// When a catch-up was last logged (`liveness.rs`).
    catch_up: CatchUpMonitor,
    /// The highest final height known to exist (ours, the peers', synced blocks).
    best_known: u64,
    /// When liveness was last checked and stored for the API.
    liveness_checked_at: Instant,
}

impl Driver {
    /// Counts an invalid message against `peer`; drops the peer after
    /// [`STRIKES_BEFORE_BAN`] of them.
    async fn strike(&mut self, peer: PeerId) {
        self.shared.metrics.invalid_messages.inc();
        let n = self.strikes.entry(peer).or_insert(0);
        *n += 1;
        if *n >= STRIKES_BEFORE_BAN {
            self.strikes.remove(&peer);
            warn!(%peer, "peer sent {STRIKES_BEFORE_BAN} invalid messages; dropping it for {} s", BAN_DURATION.as_secs());
            let _ = self.net.ban(peer, BAN_DURATION).await;
        }
    }

    async fn run(
        &mut self,
        events: &mut mpsc::Receiver<NetEvent>,
        gossip_in: &mut mpsc::Receiver<Vec<Vec<u8>>>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let start = self.core.start();
        self.execute(start).await?;
        let mut tick = tokio::time::interval(Duration::from_millis(TX_GOSSIP_INTERVAL_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            let next_timer = self.timers.keys().next().map(|(at, _)| *at);
            let sleep = async {
                match next_timer {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                ev = events.recv() => match ev {
                    Some(ev) => self.on_net_event(ev).await?,
                    None => bail!("the network task stopped"),
                },
                Some(txs) = gossip_in.recv() => {
                    self.tx_outbox.extend(txs);
                    if self.tx_outbox.len() >= wire::MAX_TX_BATCH {
                        self.flush_tx_gossip().await;
                    }
                }
                _ = sleep => {
                    let now = Instant::now();
                    let due: Vec<_> = self.timers.range(..=(now, u64::MAX)).map(|(k, t)| (*k, *t)).collect();
                    for (k, t) in due {
                        self.timers.remove(&k);
                        if self.halted.is_some() || self.hold_if_idle(t) {
                            continue;
                        }
                        let actions = self.core.handle(Event::Timeout(t));
                        self.execute(actions).await?;
                    }
                }
                Some(peer) = self.strike_rx.recv() => self.strike(peer).await,
                Some(blocks) = self.sync_results.1.recv() => {
                    self.sync_inflight = false;
                    if self.halted.is_some() {
                        continue;
                    }
                    // Only what sync could verify (the certificates of this height and
                    // the next); later blocks are checked when applied.
                    let verified = self.core.height().next().0;
                    if let Some(top) = blocks.iter().map(|(b, _)| b.header.height.0).filter(|h| *h <= verified).max() {
                        self.best_known = self.best_known.max(top);
                    }
                    // Shown before the batch is applied, so a catch-up that fits in
                    // one batch is still seen (and logged) as one.
                    self.note_best_known();
                    let before = self.core.height();
                    for (b, c) in blocks {
                        if b.header.height > self.core.height().0.checked_sub(1).map(Height).unwrap_or_default() {
                            self.synced.insert(b.header.height, (b, c));
                        }
                    }
                    self.apply_synced().await?;
                    self.note_best_known();
                    // Still far behind after a batch that moved us on: ask for the
                    // next one now rather than at the next consensus message (about a
                    // second apart on an idle chain). Only after progress, so a
                    // height claimed but never served cannot make this spin.
                    let height = self.shared.height().0;
                    if self.core.height() > before && self.best_known >= height + liveness::CATCHING_UP_BLOCKS {
                        self.start_sync(self.core.height());
                    }
                }
                _ = tick.tick() => {
                    self.flush_tx_gossip().await;
                    // A decided block whose body we lack: ask again every second
                    // (the core asks once per round; a sync attempt can come back
                    // empty, or with a body that is dropped for not matching).
                    if self.awaiting_commit.is_some() && !self.sync_inflight && self.body_sync_at.elapsed() >= BODY_SYNC_RETRY {
                        self.body_sync_at = Instant::now();
                        self.start_sync(self.core.height());
                    }
                    self.remind_halt();
                    self.release_held_propose().await?;
                    self.maybe_propose().await?;
                    self.help_lagging().await;
                    self.refresh_status();
                    if self.liveness_checked_at.elapsed() >= LIVENESS_REFRESH {
                        self.liveness_checked_at = Instant::now();
                        self.check_liveness();
                        if let Ok(peers) = self.net.dial_status().await {
                            if let Ok(mut h) = self.shared.health.lock() {
                                h.configured_peers = peers;
                            }
                        }
                    }
                    if self.disk_checked_at.elapsed() >= DISK_REFRESH {
                        self.disk_checked_at = Instant::now();
                        self.shared.disk.refresh(&self.shared.metrics);
                    }
                }
            }
        }
    }

    /// Stores what the API shows of liveness (best known height, last commit)
    /// and logs a stall: no block final for [`liveness::STALL_WARN_AFTER`], with
    /// the validators connected against the quorum and those missing.
    fn check_liveness(&mut self) {
        let height = self.shared.height().0;
        self.note_best_known();
        let m = &self.shared.metrics;
        m.last_block_age_seconds.set(self.last_commit_at.elapsed().as_secs() as i64);
        m.sample_network(&self.net.stats());
        let connected: Vec<PublicKey> = self.peer_keys.values().copied().collect();
        let members: Vec<(String, PublicKey)> = match self.shared.ledger.read() {
            Ok(l) => l.next_membership().validators.iter().map(|v| (v.name.clone(), v.key)).collect(),
            Err(_) => return,
        };
        let q = liveness::quorum_view(&members, &connected, &self.me);
        m.quorum_present.set(i64::from(q.present()));
        if self.halted.is_some() {
            return; // the halt has its own ERROR, repeated
        }
        let since = self.last_commit_at.elapsed();
        match self.stall.check(self.stalled_for(since, q.present()), Instant::now()) {
            StallVerdict::Quiet => {}
            StallVerdict::Resumed if since < liveness::STALL_WARN_AFTER => info!(height, "blocks are final again"),
            StallVerdict::Resumed => info!(height, "no block is overdue any more: the quorum is connected and no transaction waits (an idle chain)"),
            StallVerdict::Warn(_) => {
                let cause = if q.present() {
                    "a quorum is connected: look for a halted, catching-up or slow validator, or clocks far apart"
                } else {
                    "quorum lost: too few validators connected for any block to become final; start or reconnect the missing ones"
                };
                warn!(
                    height,
                    round = self.core.round().0,
                    secs_since_last_block = since.as_secs(),
                    validators_connected = q.connected,
                    validators_needed = q.needed,
                    missing = %q.missing.join(","),
                    best_known_height = self.best_known,
                    "no block final for {} s: {cause}",
                    since.as_secs()
                );
            }
        }
    }

    /// How long blocks have been overdue, `since` the last commit: with
    /// transactions waiting, since the oldest of them arrived (or the last
    /// commit, if later); on an idle chain, past the heartbeat's empty block and
    /// a proposal timeout; with the quorum gone, all of it (no block can come).
    fn stalled_for(&self, since: Duration, quorum: bool) -> Duration {
        if !quorum {
            return since;
        }
        let oldest_wait = self.shared.mempool.lock().ok().filter(|m| !m.is_empty()).map(|m| m.oldest_wait());
        match oldest_wait {
            Some(wait) => wait.min(since),
            None => since.saturating_sub(self.empty_block_after + self.propose_timeout),
        }
    }

    /// Updates the highest final height known to exist (ours, the validators'
    /// consensus progress, synced blocks), stores it for the API, and logs a
    /// catch-up's start, progress and end (`liveness::CatchUpMonitor`).
    fn note_best_known(&mut self) {
        let height = self.shared.height().0;
        // A validator working on height h has seen h − 1 final. The (f+1)-th
        // highest claim, as the core's own sync rule: at least one honest
        // validator stands there (one Byzantine validator's vote for height
        // u64::MAX would otherwise make this node "catching up" for good).
        let set = &self.core.sets().current;
        let mut claims: Vec<u64> =
            set.keys().iter().filter_map(|k| self.core.peer_progress(k)).map(|(h, _)| h.0.saturating_sub(1)).collect();
        claims.sort_unstable_by(|a, b| b.cmp(a));
        let f = set.len().saturating_sub(1) / 3;
        let peers_final = claims.get(f).copied().unwrap_or(0);
        self.best_known = self.best_known.max(peers_final).max(height);
        if let Ok(mut h) = self.shared.health.lock() {
            h.liveness = Liveness { best_known_height: self.best_known, last_commit_at: Some(self.last_commit_at) };
        }
        let best = self.best_known;
        match self.catch_up.check(height, best, Instant::now()) {
            CatchUpVerdict::Quiet => {}
            CatchUpVerdict::Started => info!(
                height,
                best_known_height = best,
                behind = best - height,
                "catching up: at height {height} of {best} known ({} blocks behind), fetching blocks from peers",
                best - height
            ),
            CatchUpVerdict::Progress => info!(
                height,
                best_known_height = best,
                "catching up: at height {height} of {best} known ({} %)",
                liveness::percent_of(height, best)
            ),
            CatchUpVerdict::CaughtUp { from_height, took } => info!(
                height,
                from_height,
                secs = took.as_secs_f64(),
                "caught up at height {height}: {} blocks fetched in {:.1} s",
                height.saturating_sub(from_height),
                took.as_secs_f64()
            ),
        }
    }

    /// The genesis (membership) name of a peer's key, for the logs.
    fn name_of(&self, key: &PublicKey) -> String {
        let Ok(l) = self.shared.ledger.read() else { return "?".into() };
        let m = l.next_membership();
        m.validators
            .iter()
            .map(|v| (&v.name, v.key))
            .chain(m.observers.iter().map(|o| (&o.name, o.key)))
            .find(|(_, k)| k == key)
            .map_or_else(|| "?".into(), |(n, _)| n.clone())
    }

    fn refresh_status(&self) {
        let m = &self.shared.metrics;
        m.round.set(self.core.round().0 as i64);
        if let Ok(mut s) = self.shared.consensus.lock() {
            s.height = self.core.height();
            s.round = self.core.round();
            s.validator_index = self.core.index().map(|i| i.0);
            s.step = match self.core.step() {
                yrd_consensus::Step::Propose => "propose",
                yrd_consensus::Step::Prevote => "prevote",
                yrd_consensus::Step::Precommit => "precommit",
            };
        }
        if let Ok(mp) = self.shared.mempool.lock() {
            m.mempool_size.set(mp.len() as i64);
        }
    }

    async fn flush_tx_gossip(&mut self) {
        while !self.tx_outbox.is_empty() {
            let n = gossip_batch_len(&self.tx_outbox);
            let batch = TxBatch(self.tx_outbox.drain(..n).collect());
            let Ok(bytes) = codec::encode(&batch) else { continue };
            if let Err(e) = self.net.publish(Topic::Transactions, bytes).await {
                // No peer yet: our mempool still holds them; we propose them ourselves.
                debug!(error = %e, "transaction gossip not sent");
            }
        }
    }

    async fn on_net_event(&mut self, ev: NetEvent) -> anyhow::Result<()> {
        match ev {
            NetEvent::Gossip { topic: Topic::Transactions, from, author, id, bytes } => {
                // Admission (decoding, signatures, ledger lookups) runs on the blocking
                // pool, at most ADMISSION_WORKERS batches at a time, so that consensus
                // never waits behind it. Verdicts and strikes come back asynchronously.
                // Bounded before any work or waiting: a batch over the batch limit
                // is refused at once, and past ADMISSION_QUEUE batches waiting for a
                // worker the newest is not admitted here (ignored: not forwarded,
                // not struck; its author still holds it in its mempool — a validator
                // proposes it, and a block carrying it has its signatures checked
                // then; an observer's client transactions wait for the author's next
                // gossip of them or are lost with it), so a fast peer cannot pile up
                // tasks and memory behind two workers.
                if bytes.len() > wire::MAX_TX_BATCH_BYTES {
                    warn!(peer = %author, len = bytes.len(), "transaction batch over the batch limit");
                    let _ = self.net.report(id, from, Verdict::Reject).await;
                    self.strike(author).await;
                    return Ok(());
                }
                let Ok(queued) = self.admission_queue.clone().try_acquire_owned() else {
                    self.shared.metrics.gossip_batches_shed.inc();
                    let _ = self.net.report(id, from, Verdict::Ignore).await;
                    return Ok(());
                };
                let shared = self.shared.clone();
                let net = self.net.clone();
                let strikes = self.strike_tx.clone();
                let permits = self.admission.clone();
                tokio::spawn(async move {
                    let _queued = queued;
                    let Ok(_permit) = permits.acquire_owned().await else { return };
                    let verdict = tokio::task::spawn_blocking(move || admit_gossip(&shared, &author, &bytes))
                        .await
                        .unwrap_or(Verdict::Ignore);
                    let _ = net.report(id, from, verdict).await;
                    // The author signed the gossip message: it is the one that broke the
                    // rules (the signature rule is deterministic, so an honest author
                    // never publishes what we refuse). A peer that only relayed it is
                    // not blamed.
                    if verdict == Verdict::Reject {
                        let _ = strikes.send(author).await;
                    }
                });
            }
            NetEvent::Gossip { topic: Topic::Consensus, from, author, id, bytes } => {
                let verdict = match wire::decode_consensus(&bytes) {
                    Err(e) => {
                        warn!(peer = %author, error = %e, "malformed consensus message");
                        Verdict::Reject
                    }
                    Ok(msg) => {
                        self.blame_author = false;
                        self.msg_author = Some(author);
                        let verdict = self.on_consensus_msg(msg).await;
                        self.msg_author = None;
                        verdict?
                    }
                };
                let _ = self.net.report(id, from, verdict).await;
                // Blame the author, never a relay (see the transaction topic above).
                // Some faults are the author's but a relay may have forwarded them
                // honestly without the means to see them (a vote it did not verify,
                // the body of a height it has not reached): those are `Ignore` for
                // gossipsub, which scores the relay, and struck here against the
                // author only.
                if verdict == Verdict::Reject || std::mem::take(&mut self.blame_author) {
                    self.strike(author).await;
                }
            }
            NetEvent::Request { peer, bytes, channel } => {
                let (from, max) = match wire::decode_sync_request(&bytes) {
                    Ok(SyncRequest::Blocks { from, max }) => (from, max),
                    Err(e) => {
                        warn!(%peer, error = %e, "malformed sync request");
                        self.strike(peer).await;
                        return Ok(());
                    }
                };
                // Served on the blocking pool (reading and encoding up to 4 MiB is
                // no work for the consensus task), one request per peer at a time
                // and SYNC_SERVING in all; a request beyond that is dropped (the
                // asker times out and asks again, or asks another peer).
                let Some(slot) = self.sync_serving.admit(peer) else {
                    debug!(%peer, "sync request dropped: already serving this peer or too many");
                    drop(channel);
                    return Ok(());
                };
                let shared = self.shared.clone();
                let net = self.net.clone();
                tokio::spawn(async move {
                    let response = tokio::task::spawn_blocking(move || sync_response(&shared, from, max)).await.ok().flatten();
                    match response {
                        Some(r) => {
                            let _ = net.respond(channel, r).await;
                        }
                        None => drop(channel),
                    }
                    drop(slot);
                });
            }
            NetEvent::PeerConnected(p) => {
                let agency = match net::ed25519_from_peer_id(&p) {
                    Some(k) => {
                        self.peer_keys.insert(p, PublicKey(k));
                        self.name_of(&PublicKey(k))
                    }
                    None => "?".into(),
                };
                info!(peer = %p, %agency, "peer connected");
                self.update_peers();
            }
            NetEvent::PeerDisconnected(p) => {
                let agency = self.peer_keys.remove(&p).map_or_else(|| "?".into(), |k| self.name_of(&k));
                info!(peer = %p, %agency, "peer disconnected");
                self.update_peers();
            }
            NetEvent::ConnectionRefused { peer, inbound, .. } => {
                // The network task logs refusals, rate-limited (docs/network.md).
                debug!(%peer, inbound, "refused a connection from a peer that is not in the genesis");
            }
        }
        Ok(())
    }

    fn update_peers(&self) {
        let keys: Vec<PublicKey> = self.peer_keys.values().copied().collect();
        self.shared.metrics.peers.set(keys.len() as i64);
        if let Ok(mut p) = self.shared.peers.lock() {
            *p = keys;
        }
    }

    /// Handles a consensus message; returns the gossip verdict.
    async fn on_consensus_msg(&mut self, msg: ConsensusMsg) -> anyhow::Result<Verdict> {
        if self.halted.is_some() {
            return Ok(Verdict::Ignore);
        }
        let height = self.core.height();
        match msg {
            ConsensusMsg::Vote(v) => {
                if v.vote.kind == yrd_consensus::messages::VoteKind::Precommit && v.vote.height < height {
                    // A late precommit for a block we committed: it may lower the
                    // stored certificate to the canonical one (ledger/src/canonical_cert.rs).
                    let mut ledger = self.shared.ledger.write().map_err(|_| anyhow!("ledger lock poisoned"))?;
                    ledger
                        .offer_precommit(&v)
                        .map_err(|e| StorageFailure::store(format!("updating the certificate of block {}", v.vote.height), e))?;
                }
                let voted = v.vote.height;
                let actions = self.core.handle(Event::Vote(v));
                let rejected = actions.iter().any(|a| matches!(a, Action::Rejected(_)));
                // A vote that fails verification against the exact set of its height
                // (bad signature, unknown index, wrong chain) is the sender's fault:
                // honest nodes forward only votes that verify. Struck like an invalid
                // proposal, so that a peer cannot make us check signatures for free.
                let invalid = actions.iter().any(|a| matches!(a, Action::Rejected(Rejection::InvalidVote { .. })));
                if !rejected && voted == height {
                    // Another validator works on this height: not idle (hold_if_idle).
                    self.peer_voted_at = Some(height);
                }
                self.execute(actions).await?;
                if invalid {
                    self.blame_author = true;
                }
                Ok(if rejected { Verdict::Ignore } else { Verdict::Accept })
            }
            ConsensusMsg::Proposal { proposal, block } => {
                let chain = self.shared.chain;
                let ph = proposal.proposal.height;
                // Verified against the set of its height; beyond the next height that
                // set is not known yet (we are behind: sync catches up).
                let Some(set) = self.core.set_for(ph).cloned() else { return Ok(Verdict::Ignore) };
                if let Err(e) = proposal.verify(&chain, &set) {
                    warn!(error = %e, "invalid proposal signature");
                    return Ok(Verdict::Reject);
                }
                let hash = block.hash()?;
                if hash != proposal.proposal.value {
                    warn!("proposal's block does not hash to the proposed value");
                    return Ok(Verdict::Reject);
                }
                if block.header.height != ph {
                    warn!(height = ph.0, block_height = block.header.height.0, "proposal of a block of another height");
                    return Ok(Verdict::Reject);
                }
                if ph < height {
                    return Ok(Verdict::Ignore);
                }
                // Rounds the core would not store (core::MAX_ROUNDS_AHEAD): their
                // bodies are not kept either, so that a proposer cannot fill memory
                // with proposals for rounds far ahead.
                let round = proposal.proposal.round;
                let base = if ph == height { self.core.round().0 } else { 0 };
                if round.0 > base.saturating_add(yrd_consensus::core::MAX_ROUNDS_AHEAD) {
                    return Ok(Verdict::Ignore);
                }
                if set.key(proposal.proposal.proposer) != Some(&self.me) {
                    self.sample_clock(proposal.proposal.proposer.0, &block);
                }
                if ph > height {
                    // Its body cannot be checked before we reach its height, so a
                    // relay may have altered it: kept per gossip author (the genuine
                    // copy is authored by the proposer; a relay that alters one
                    // authors its copy), one per round and author, at most
                    // FUTURE_PROPOSALS_PER_AUTHOR per author and MAX_FUTURE_PROPOSALS
                    // in all, so that no peer can crowd out another's.
                    if let Some(author) = self.msg_author {
                        let mine = self.future_proposals.iter().filter(|(_, _, a)| *a == author);
                        let (held, count) = mine.fold((false, 0), |(held, n), (p, _, _)| {
                            (held || (p.proposal.height == ph && p.proposal.round == round), n + 1)
                        });
                        if !held && count < FUTURE_PROPOSALS_PER_AUTHOR && self.future_proposals.len() < MAX_FUTURE_PROPOSALS {
                            self.future_proposals.push((proposal, block, author));
                        }
                    }
                    return Ok(Verdict::Accept);
                }
                let valid = self.check_block(&block)?;
                if !valid && !self.body_matches(&block)? {
                    // The proposer signed the header; whoever changed the body on
                    // the way is to blame, and the core never hears of it (else it
                    // would judge the value invalid and take the genuine copy for a
                    // duplicate).
                    warn!(height = ph.0, "a proposal's body is not the one its signed header commits to (altered on the way): refused");
                    self.blame_author = true;
                    return Ok(Verdict::Ignore);
                }
                // A valid body never gives way to an invalid one under the same hash.
                // One body per round, the first's (the core keeps the first
                // proposal of a round; a second is the proposer equivocating, and
                // it may sign as many as it likes), and at most MAX_BODIES in all:
                // a body not kept is fetched by sync if its value is decided.
                let first_of_round = self.proposal_bodies.get(&(ph, round)).is_none_or(|h| *h == hash);
                let room = self.bodies.len() < MAX_BODIES || self.bodies.contains_key(&hash);
                if first_of_round && room && (valid || !self.bodies.contains_key(&hash)) {
                    self.proposal_bodies.insert((ph, round), hash);
                    self.bodies.insert(hash, block);
                }
                let actions = self.core.handle(Event::Proposal { proposal, valid });
                self.execute(actions).await?;
                self.try_awaiting_commit().await?;
                Ok(Verdict::Accept)
            }
            ConsensusMsg::Certified { block, certificate } => {
                let hash = block.hash()?;
                if hash != certificate.block_hash || block.header.height != certificate.height {
                    return Ok(Verdict::Reject);
                }
                if certificate.height < height {
                    return Ok(Verdict::Ignore);
                }
                let Some(validators) = self.core.set_for(certificate.height).cloned() else {
                    return Ok(Verdict::Ignore); // too far ahead to verify: sync fetches it in order
                };
                if certificate.verify(&self.shared.chain, &validators, certificate.height, &hash).is_err() {
                    return Ok(Verdict::Reject);
                }
                if certificate.height == height && !self.body_matches(&block)? {
                    warn!(height = height.0, "a certified block's body is not the one its header commits to (altered on the way): refused");
                    self.blame_author = true;
                    return Ok(Verdict::Ignore);
                }
                // A block of the next height waits; a copy already held is kept (an
                // altered one is dropped when applied, and sync fetches it again).
                self.synced.entry(certificate.height).or_insert((block, certificate));
                self.apply_synced().await?;
                Ok(Verdict::Accept)
            }
        }
    }

    /// The application's verdict on a proposed block at the current height. A
    /// store that cannot be read is not a verdict on the block: it stops the node.
    fn check_block(&self, block: &Block) -> Result<bool, StorageFailure> {
        if block.header.timestamp_ms > now_ms() + MAX_CLOCK_DRIFT_MS {
            // A wrong clock of ours is reported by the clock monitor (once a minute);
            // with a good clock, the proposer's is wrong (or it is lying).
            if self.clock.ok() {
                warn!(height = block.header.height.0, "proposed block's timestamp is too far in the future");
            } else {
                debug!(height = block.header.height.0, "proposed block's timestamp is too far ahead of our (wrong) clock");
            }
            return Ok(false);
        }
        let Ok(ledger) = self.shared.ledger.read() else { return Ok(false) };
        // Lock the mempool per lookup, not across the whole validation, so that
        // admission is not held up meanwhile.
        let verified = |id: &TxId| self.shared.mempool.lock().map(|m| m.contains(id)).unwrap_or(false);
        let started = Instant::now();
        match ledger.validate_block(block, &verified) {
            Ok(_) => {
                debug!(height = block.header.height.0, txs = block.txs.len(), ms = started.elapsed().as_millis() as u64, "proposal valid");
                Ok(true)
            }
            Err(BlockError::Store(e)) => {
                Err(StorageFailure::store(format!("reading the store to validate proposed block {}", block.header.height), e))
            }
            Err(e) => {
                warn!(height = block.header.height.0, error = %e, "proposed block is invalid");
                Ok(false)
            }
        }
    }

    /// Whether `block`'s body is the one its header commits to
    /// (`Ledger::body_matches_header`); true for a block of another height than
    /// the next (judged when it is the next).
    fn body_matches(&self, block: &Block) -> Result<bool, StorageFailure> {
        let Ok(ledger) = self.shared.ledger.read() else { return Ok(true) };
        if block.header.height != ledger.height().next() {
            return Ok(true);
        }
        ledger
            .body_matches_header(block)
            .map_err(|e| StorageFailure::store(format!("reading the log to check block {}", block.header.height), e))
    }

    /// Feeds certified blocks obtained by sync to the core, in height order.
    async fn apply_synced(&mut self) -> anyhow::Result<()> {
        loop {
            let h = self.core.height();
            let Some((block, cert)) = self.synced.remove(&h) else { break };
            // Drop anything older.
            self.synced = self.synced.split_off(&h);
            if !self.body_matches(&block)? {
                // The certificate signs the header only: the peer that served this
                // body changed it. Drop it and what came with it; the next sync
                // starts from another peer.
                warn!(height = h.0, "a synced block's body is not the one its certified header commits to: dropped");
                self.synced.clear();
                self.start_sync(h);
                break;
            }
            let hash = cert.block_hash;
            self.bodies.insert(hash, block);
            let actions = self.core.handle(Event::CommitCertified(cert));
            self.execute(actions).await?;
            self.try_awaiting_commit().await?;
            if self.core.height() == h {
                break; // not accepted; avoid spinning
            }
        }
        Ok(())
    }

    async fn try_awaiting_commit(&mut self) -> anyhow::Result<()> {
        if let Some(cert) = self.awaiting_commit.take() {
            if self.bodies.contains_key(&cert.block_hash) {
                self.commit(cert).await?;
            } else {
                self.awaiting_commit = Some(cert);
            }
        }
        Ok(())
    }

    /// Executes actions in order. Feeding events back into the core appends
    /// their actions to the queue.
    async fn execute(&mut self, actions: Vec<Action>) -> anyhow::Result<()> {
        let mut queue: std::collections::VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            match action {
                Action::PersistSafety(s) => {
                    // Durable before anything that follows (the vote it covers);
                    // if it cannot be made durable, the vote is never sent.
                    let bytes = codec::encode(&s)?;
                    let doing = "persisting the consensus safety state";
                    let _write = self.shared.writes.begin(|| doing.into());
                    self.safety_tree.insert(SAFETY_KEY, bytes).map_err(|e| StorageFailure::sled(doing, e))?;
                    self.safety_tree.flush().map_err(|e| StorageFailure::sled(doing, e))?;
                }
                Action::BroadcastProposal(p) => {
                    let Some(block) = self.bodies.get(&p.proposal.value) else {
                        warn!("no body for our own proposal; not broadcasting it");
                        continue;
                    };
                    match wire::encode_proposal(&p, block) {
                        Ok(bytes) => self.publish_bytes(bytes).await,
                        Err(e) => warn!(error = %e, "cannot encode our proposal"),
                    }
                }
                Action::BroadcastVote(v) => self.publish(ConsensusMsg::Vote(v)).await,
                Action::ScheduleTimeout { timeout, duration_ms } => {
                    self.timer_seq += 1;
                    self.timers.insert((Instant::now() + Duration::from_millis(duration_ms), self.timer_seq), timeout);
                }
                Action::RequestProposal { height, round } => {
                    self.pending_proposal = Some((height, round, Instant::now()));
                    if let Some(v) = self.maybe_build()? {
                        queue.extend(self.core.handle(Event::ProposalValue { height, round, value: v }));
                    }
                }
                Action::Commit(cert) => {
                    if self.bodies.contains_key(&cert.block_hash) {
                        let h = cert.height;
                        if !self.commit_block(cert)? {
                            return Ok(()); // halted: nothing more is executed
                        }
                        let sets = self.after_commit(h).await?;
                        queue.extend(self.core.handle(Event::Committed { height: h, sets }));
                        self.after_height_change(&mut queue)?;
                    } else {
                        info!(height = cert.height.0, "decided a block whose body we lack; fetching it");
                        self.awaiting_commit = Some(cert);
                        self.start_sync(self.core.height());
                    }
                }
                Action::Evidence(e) => {
                    warn!(evidence = ?e, "equivocation detected");
                }
                Action::PeerBehind { height, peer } => {
                    self.lagging.seen_behind(peer, height, Instant::now());
                }
                Action::SyncNeeded { height, ahead } => {
                    debug!(height = height.0, ahead = ahead.0, "behind; syncing");
                    self.start_sync(height);
                }
                Action::Rejected(r) => debug!(reason = %r, "consensus input rejected"),
            }
        }
        Ok(())
    }

    /// Sends the certified block to each validator still at a finished height
    /// [`crate::lagging::PEER_BEHIND_GRACE`] after it was first seen there, at
    /// most once per [`crate::lagging::PUSH_REPEAT`] for a height (`Lagging::due`).
    async fn help_lagging(&mut self) {
        let ours = self.core.height();
        let core = &self.core;
        let due = self.lagging.due(Instant::now(), |peer, height| {
            height < ours && core.peer_progress(peer).is_none_or(|(h, _)| h <= height)
        });
        for (peer, height) in due {
            let found = {
                let Ok(ledger) = self.shared.ledger.read() else { return };
                match (ledger.block(height), ledger.certificate(height)) {
                    (Ok(Some(b)), Ok(Some(c))) => Some((b, c)),
                    _ => None,
                }
            };
            if let Some((block, certificate)) = found {
                debug!(peer = %peer, height = height.0, "sending a certified block to a lagging validator");
                self.publish(ConsensusMsg::Certified { block, certificate }).await;
            }
        }
    }

    /// After block `height` is stored: the validator sets of the two heights
    /// after it (for the core), and the network's allowed keys when governance
    /// changed who may connect.
    async fn after_commit(&mut self, height: Height) -> anyhow::Result<HeightSets> {
        let (sets, members) = {
            let ledger = self.shared.ledger.read().map_err(|_| anyhow!("ledger lock poisoned"))?;
            (sets_after(&ledger, height)?, ledger.gov().network_members_from(height.next().0))
        };
        let keys: Vec<PublicKey> = members.keys().copied().collect();
        if keys != self.allowed_keys {
            info!(height = height.0, keys = keys.len(), "membership changed: updating the peers allowed to connect");
            let names = members.into_iter().map(|(k, n)| (k.0, n)).collect();
            self.net.set_allowed(keys.iter().map(|k| k.0).collect(), names).await.context("cannot update the allowed peers")?;
            self.allowed_keys = keys;
        }
        if sets.next != sets.current {
            info!(
                from_height = height.next().next().0,
                validators = sets.next.len(),
                before = sets.current.len(),
                "the validator set changes (governance)"
            );
        }
        Ok(sets)
    }

    /// After the core moved to a new height: replay proposals we kept for it.
    fn after_height_change(&mut self, queue: &mut std::collections::VecDeque<Action>) -> Result<(), StorageFailure> {
        let h = self.core.height();
        let (now, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.future_proposals).into_iter().partition(|(p, _, _)| p.proposal.height == h);
        self.future_proposals = later.into_iter().filter(|(p, _, _)| p.proposal.height > h).collect();
        for (proposal, block, _) in now {
            let valid = self.check_block(&block)?;
            if !valid && !self.body_matches(&block)? {
                warn!(height = h.0, "a kept proposal's body is not the one its signed header commits to: dropped");
                continue;
            }
            if let Ok(hash) = block.hash() {
                if valid || !self.bodies.contains_key(&hash) {
                    self.bodies.insert(hash, block);
                }
            }
            queue.extend(self.core.handle(Event::Proposal { proposal, valid }));
        }
        Ok(())
    }

    async fn commit(&mut self, cert: CommitCertificate) -> anyhow::Result<()> {
        let h = cert.height;
        if !self.commit_block(cert)? {
            return Ok(());
        }
        let sets = self.after_commit(h).await?;
        let actions = self.core.handle(Event::Committed { height: h, sets });
        let mut queue = actions.into();
        self.after_height_change(&mut queue)?;
        self.execute(queue.into()).await
    }

    /// Writes a decided block. Returns false if it did not: the node halted, or the
    /// body held was not the certified one and is being fetched again.
    ///
    /// A storage failure is fatal ([`StorageFailure`]: a failed write or read, or
    /// a write that would eat into the disk reserve): we never continue with a
    /// store that may not hold what we voted for, and nothing of the block is
    /// acknowledged. A certified block that fails our own validation (a
    /// `BlockError` other than `Store`) is a different failure: it halts the node,
    /// which stays up, serves what it has, and says why (see [`Driver::halt`]); it
    /// never exits, so a restart cannot loop.
    fn commit_block(&mut self, cert: CommitCertificate) -> anyhow::Result<bool> {
        let block = self.bodies.get(&cert.block_hash).ok_or_else(|| anyhow!("body vanished"))?;
        let h = cert.height;
        let started = Instant::now();
        let committed = {
            let mut ledger = self.shared.ledger.write().map_err(|_| anyhow!("ledger lock poisoned"))?;
            let len = match ledger.cached_block_len(&cert.block_hash) {
                Some(len) => len,
                None => block.encode()?.len(),
            };
            self.shared.disk.check_commit(h.0, len as u64, &self.shared.metrics).map_err(StorageFailure::from)?;
            let _write = self.shared.writes.begin(|| format!("committing block {h}"));
            ledger.commit(block, &cert)
        };
        let ids = match committed {
            Ok(ids) => ids,
            Err(BlockError::Store(e)) => return Err(StorageFailure::store(format!("committing block {h}"), e).into()),
            Err(e) => {
                let body = self.bodies.get(&cert.block_hash).ok_or_else(|| anyhow!("body vanished"))?;
                if !self.body_matches(body)? {
                    // Not a verdict on the quorum: the body is not the certified one
                    // (every path that stores a body checks this first; kept as the
                    // last line before a halt). Fetch it again.
                    warn!(height = h.0, error = %e, "the body held for a certified block is not the one its header commits to: fetching it again");
                    self.bodies.remove(&cert.block_hash);
                    self.awaiting_commit = Some(cert);
                    self.start_sync(h);
                    return Ok(false);
                }
                self.halt(&cert, e.to_string());
                return Ok(false);
            }
        };
        let written = started.elapsed();
        let arrived = self.shared.forget_committed(&ids);
        let m = &self.shared.metrics;
        for a in arrived {
            m.commit_latency_seconds.observe(a.elapsed().as_secs_f64());
        }
        m.height.set(cert.height.0 as i64);
        m.txs_committed.inc_by(ids.len() as u64);
        m.blocks_committed.inc();
        m.block_txs.observe(ids.len() as f64);
        m.block_write_seconds.observe(written.as_secs_f64());
        self.shared.committed.send_replace(cert.height);
        info!(
            height = cert.height.0,
            txs = ids.len(),
            round = cert.round.0,
            hash = %cert.block_hash,
            write_ms = written.as_millis() as u64,
            since_last_ms = self.last_commit_at.elapsed().as_millis() as u64,
            "committed"
        );
        self.bodies.retain(|_, b| b.header.height > cert.height);
        self.proposal_bodies.retain(|(h, _), _| *h > cert.height);
        self.last_commit_at = Instant::now();
        self.pending_proposal = None;
        Ok(true)
    }

    /// Stops following the chain: a block certified by a quorum fails our
    /// validation. Either this node's rules differ from the quorum's (a bug, or a
    /// different version) or more than f validators signed an invalid block; in
    /// both cases going on could only make this node sign or store something it
    /// judges invalid. The node keeps serving its ledger and its status, logs the
    /// halt at ERROR now and every minute, and sets `yrd_halted`; the operator
    /// resolves it (docs/consensus.md).
    fn halt(&mut self, cert: &CommitCertificate, reason: String) {
        let halt = Halt {
            height: cert.height.0,
            block_hash: cert.block_hash.to_hex(),
            reason,
            since_ms: now_ms(),
        };
        error!(
            height = halt.height,
            block = %halt.block_hash,
            reason = %halt.reason,
            "HALTED: a block certified by a quorum of validators fails this node's validation; not following the chain \
             (this node stays up and serves its ledger; see docs/consensus.md, \"A certified block we cannot validate\")"
        );
        self.shared.metrics.halted.set(1);
        if let Ok(mut h) = self.shared.health.lock() {
            h.halt = Some(halt.clone());
        }
        self.halted = Some(halt);
        self.halt_logged = Instant::now();
        self.awaiting_commit = None;
        self.synced.clear();
        self.timers.clear();
        self.pending_proposal = None;
    }

    /// Repeats the halt at ERROR every minute while it lasts.
    fn remind_halt(&mut self) {
        if let Some(h) = &self.halted {
            if self.halt_logged.elapsed() >= Duration::from_secs(60) {
                error!(height = h.height, block = %h.block_hash, reason = %h.reason, "still HALTED: not following the chain");
                self.halt_logged = Instant::now();
            }
        }
    }

    /// Samples our clock against a proposal's timestamp (another validator's).
    fn sample_clock(&mut self, proposer: u32, block: &Block) {
        let offset_ms = crate::health::clock_offset_ms(block.header.timestamp_ms, now_ms());
        let verdict = self.clock.sample(proposer, offset_ms, Instant::now());
        if let ClockVerdict::Drifted { offset_ms, warn: true } = verdict {
            let direction = if offset_ms > 0 { "behind" } else { "ahead of" };
            warn!(
                offset_ms,
                "this node's clock is {} s {direction} the other validators' (median of their latest proposals); \
                 beyond 30 s it refuses their proposals or they refuse its own — fix the clock (NTP)",
                offset_ms.unsigned_abs() / 1000
            );
        }
        let offset = self.clock.offset_ms();
        self.shared.metrics.clock_offset_ms.set(offset.unwrap_or(0));
        if let Ok(mut h) = self.shared.health.lock() {
            h.clock = Some(ClockStatus { offset_ms: offset, ok: self.clock.ok() });
        }
    }

    /// Builds our proposal if it is time: transactions are waiting and the block
    /// interval has passed, or nothing has come for a while (an empty block).
    fn maybe_build(&mut self) -> anyhow::Result<Option<Hash32>> {
        let Some((height, round, since)) = self.pending_proposal else { return Ok(None) };
        if height != self.core.height() || round != self.core.round() {
            self.pending_proposal = None;
            return Ok(None);
        }
        let waiting = self.shared.mempool.lock().map(|m| m.len()).unwrap_or(0);
        // A full block's worth waiting: no reason to wait for the interval.
        let interval_passed = self.last_commit_at.elapsed() >= self.block_interval || waiting >= self.max_block_txs;
        let empty_due = since.elapsed() >= self.empty_block_after || round.0 > 0;
        if !((waiting > 0 && interval_passed) || empty_due) {
            return Ok(None);
        }
        // Low on disk: propose empty blocks (the others' proposals carry the load).
        let candidates = if self.shared.disk.accepting() {
            self.shared.mempool.lock().map(|m| m.candidates(self.max_block_txs)).unwrap_or_default()
        } else {
            Vec::new()
        };
        let me = self.core.index().unwrap_or(ValidatorIndex(0));
        let built = {
            let ledger = self.shared.ledger.read().map_err(|_| anyhow!("ledger lock poisoned"))?;
            let started = Instant::now();
            let built = ledger
                .build_block_within(candidates, me, round, now_ms(), wire::MAX_PROPOSED_BLOCK_BYTES)
                .map_err(|e| StorageFailure::store(format!("building our proposal for block {height}"), e))?;
            debug!(height = height.0, txs = built.block.txs.len(), ms = started.elapsed().as_millis() as u64, "built our proposal");
            built
        };
        if !built.rejected.is_empty() {
            // No longer valid (e.g. a conflicting transaction committed): drop them.
            let ids: Vec<TxId> = built.rejected.iter().map(|(id, _)| *id).collect();
            if let Ok(mut m) = self.shared.mempool.lock() {
                m.remove(&ids);
            }
        }
        let hash = built.block.hash()?;
        self.bodies.insert(hash, built.block);
        self.pending_proposal = None;
        Ok(Some(hash))
    }

    /// Whether no transaction waits in our mempool.
    fn idle(&self) -> bool {
        self.shared.mempool.lock().map(|m| m.is_empty()).unwrap_or(false)
    }

    /// Holds back an expired round-0 proposal timeout while the chain is idle:
    /// the proposer makes no block until transactions wait or its empty block is
    /// due ([`Driver::empty_block_after`]), so voting nil now would only start
    /// round after round of empty proposals — the once-a-second empty blocks this
    /// avoids. Later rounds are never held (a round change is under way).
    fn hold_if_idle(&mut self, t: Timeout) -> bool {
        let hold = t.step == yrd_consensus::Step::Propose
            && t.round.0 == 0
            && t.height == self.core.height()
            && self.peer_voted_at != Some(t.height)
            && self.idle()
            && self.last_commit_at.elapsed() < self.empty_block_after + self.propose_timeout;
        if hold {
            self.held_propose = Some(t);
        }
        hold
    }

    /// Lets a held proposal timeout run again: with transactions waiting, or once
    /// another validator votes at this height (a transaction reached it and not
    /// us, or gossip missed us), it gets a whole new `propose_timeout` (the
    /// proposer has just been given work; if it is down, the round changes that
    /// much later); once the empty block is overdue by a proposal timeout, it
    /// expires at once. A validator that votes nil to force rounds gets no more
    /// than the empty rounds every node made before idling was held back.
    async fn release_held_propose(&mut self) -> anyhow::Result<()> {
        let Some(t) = self.held_propose else { return Ok(()) };
        if t.height != self.core.height() || t.round != self.core.round() {
            self.held_propose = None;
            return Ok(());
        }
        if !self.idle() || self.peer_voted_at == Some(t.height) {
            self.held_propose = None;
            self.timer_seq += 1;
            self.timers.insert((Instant::now() + self.propose_timeout, self.timer_seq), t);
        } else if self.last_commit_at.elapsed() >= self.empty_block_after + self.propose_timeout {
            self.held_propose = None;
            if self.halted.is_none() {
                let actions = self.core.handle(Event::Timeout(t));
                self.execute(actions).await?;
            }
        }
        Ok(())
    }

    async fn maybe_propose(&mut self) -> anyhow::Result<()> {
        if self.pending_proposal.is_none() || self.halted.is_some() {
            return Ok(());
        }
        if let Some(value) = self.maybe_build()? {
            let (h, r) = (self.core.height(), self.core.round());
            let actions = self.core.handle(Event::ProposalValue { height: h, round: r, value });
            self.execute(actions).await?;
        }
        Ok(())
    }

    async fn publish(&self, msg: ConsensusMsg) {
        match codec::encode(&msg) {
            Ok(bytes) => self.publish_bytes(bytes).await,
            Err(e) => warn!(error = %e, "cannot encode consensus message"),
        }
    }

    async fn publish_bytes(&self, bytes: Vec<u8>) {
        if let Err(e) = self.net.publish(Topic::Consensus, bytes).await {
            debug!(error = %e, "consensus message not sent");
        }
    }

    /// Fetches certified blocks from `from` on, from one peer at a time, in the
    /// background. Results come back through `sync_results`.
    fn start_sync(&mut self, from: Height) {
        if self.sync_inflight {
            return;
        }
        let mut peers: Vec<PeerId> = self.peer_keys.keys().copied().collect();
        if peers.is_empty() {
            return;
        }
        // A different first peer each time, so that a peer serving bad bodies
        // (dropped in `apply_synced`) is not asked first again and again.
        peers.sort_unstable();
        self.sync_attempts = self.sync_attempts.wrapping_add(1);
        let first = self.sync_attempts % peers.len();
        peers.rotate_left(first);
        self.sync_inflight = true;
        let net = self.net.clone();
        let tx = self.sync_results.0.clone();
        let chain = self.shared.chain;
        // Certificates are checked here where the set of their height is known
        // (this height and the next); later ones are checked when applied, in
        // order, by the core and by the ledger (the sets may change on the way).
        let base = self.core.height();
        let sets = self.core.sets().clone();
        tokio::spawn(async move {
            let mut out = Vec::new();
            for peer in peers {
                let req = SyncRequest::Blocks { from, max: wire::MAX_SYNC_BLOCKS };
                let Ok(bytes) = codec::encode(&req) else { break };
                let resp = match net.request(peer, bytes).await {
                    Ok(r) => r,
                    Err(e) => {
                        debug!(%peer, error = %e, "sync request failed");
                        continue;
                    }
                };
                let Ok(SyncResponse::Blocks(blocks)) = wire::decode_sync_response(&resp) else {
                    warn!(%peer, "malformed sync response");
                    continue;
                };
                let mut expect = from;
                for (bytes, cert) in blocks {
                    let Ok(block) = Block::decode(&bytes, codec::MAX_ENCODED_BYTES) else { break };
                    let Ok(hash) = block.hash() else { break };
                    let set = if expect == base {
                        Some(&sets.current)
                    } else if expect == base.next() {
                        Some(&sets.next)
                    } else {
                        None
                    };
                    if block.header.height != expect
                        || cert.block_hash != hash
                        || set.is_some_and(|set| cert.verify(&chain, set, expect, &hash).is_err())
                    {
                        warn!(%peer, height = expect.0, "sync response with a bad certificate or block");
                        break;
                    }
                    out.push((block, cert));
                    expect = expect.next();
                }
                if !out.is_empty() {
                    break;
                }
            }
            let _ = tx.send(out).await;
        });
    }
}

/// The validator sets of the two heights after the `committed` one, from the
/// ledger (docs/governance.md: known two heights ahead).
fn sets_after(ledger: &Ledger, committed: Height) -> anyhow::Result<HeightSets> {
    let current = ledger.validators_at(committed.next()).context("validator set of the next height")?;
    let next = ledger.validators_at(committed.next().next()).context("validator set of the height after")?;
    Ok(HeightSets { current, next })
}

/// Admits a gossiped transaction batch; the verdict for gossipsub.
/// How many of the transactions at the front of `outbox` go into the next gossip
/// batch: at most [`wire::MAX_TX_BATCH`] and, encoded, at most
/// [`wire::MAX_TX_BATCH_BYTES`] (each item costs its length prefix too; the
/// batch's own prefix is counted once) — a batch over the byte limit is refused
/// by every peer and its author struck. At least one when `outbox` is not empty
/// (a transaction is at most MAX_TX_BYTES, far under the batch limit).
fn gossip_batch_len(outbox: &[Vec<u8>]) -> usize {
    let mut n = 0;
    let mut len = 8usize;
    for t in outbox.iter().take(wire::MAX_TX_BATCH) {
        let item = 8 + t.len();
        if n > 0 && len + item > wire::MAX_TX_BATCH_BYTES {
            break;
        }
        len += item;
        n += 1;
    }
    n
}

/// The certified blocks from `from` on that a sync request asks for, encoded.
fn sync_response(shared: &Shared, from: Height, max: u32) -> Option<Vec<u8>> {
    let ledger = shared.ledger.read().ok()?;
    let mut out = Vec::new();
    let mut size = 0usize;
    let mut h = from;
    while h <= ledger.height() && out.len() < max.min(wire::MAX_SYNC_BLOCKS) as usize && size < wire::SYNC_RESPONSE_SOFT_BYTES {
        let (Ok(Some(b)), Ok(Some(c))) = (ledger.block_bytes(h), ledger.certificate(h)) else { break };
        size += b.len();
        out.push((b, c));
        h = h.next();
    }
    codec::encode(&SyncResponse::Blocks(out)).ok()
}

/// Sync requests being served: at most one per peer and [`SYNC_SERVING`] in all.
#[derive(Clone, Default)]
struct SyncServing(Arc<Mutex<HashSet<PeerId>>>);

/// A sync request being served; dropping it frees the peer's slot.
struct SyncSlot(SyncServing, PeerId);

impl SyncServing {
    fn admit(&self, peer: PeerId) -> Option<SyncSlot> {
        let mut serving = self.0.lock().ok()?;
        if serving.len() >= SYNC_SERVING || !serving.insert(peer) {
            return None;
        }
        Some(SyncSlot(self.clone(), peer))
    }
}

impl Drop for SyncSlot {
    fn drop(&mut self) {
        if let Ok(mut serving) = (self.0).0.lock() {
            serving.remove(&self.1);
        }
    }
}

fn admit_gossip(shared: &Shared, from: &PeerId, bytes: &[u8]) -> Verdict {
    use crate::shared::SubmitError;
    use yrd_ledger::validate::TxError;
    let batch = match wire::decode_tx_batch(bytes) {
        Ok(b) => b,
        Err(e) => {
            warn!(peer = %from, error = %e, "malformed transaction batch");
            return Verdict::Reject;
        }
    };
    let items: Vec<&[u8]> = batch.0.iter().map(|b| b.as_slice()).collect();
    let results = shared.admit(&items, crate::shared::Source::Gossip);
    // Forged or malformed transactions cannot come from an honest forwarder (it
    // validates before forwarding); stale ones (already committed) can.
    let malformed = results.iter().any(|r| {
        matches!(
            r,
            Err(SubmitError::Invalid(
                TxError::BadSignature | TxError::BadRequestSignature { .. } | TxError::Decode(_) | TxError::TooLarge { .. } | TxError::WrongChain { .. }
            ))
        )
    });
    if malformed {
        warn!(peer = %from, "transaction batch with forged or malformed transactions");
        Verdict::Reject
    } else {
        // Validators dial every other validator and the publisher floods its batch
        // to all of them, so forwarding would only deliver duplicates (each costing
        // decryption, hashing and a gossip-signature check per receiver). A valid
        // batch is therefore not forwarded; a transaction that misses a validator
        // still reaches it inside its issuer node's next proposal.
        Verdict::Ignore
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gossip_batches_stay_within_the_count_and_byte_limits_peers_enforce() {
        for (count, size) in [(2_000usize, 4_096usize), (2_000, 2_600), (2_000, 300), (1, 4_096), (700, 1)] {
            let mut outbox: Vec<Vec<u8>> = (0..count).map(|i| vec![(i % 251) as u8; size]).collect();
            let mut batches = 0;
            while !outbox.is_empty() {
                let n = gossip_batch_len(&outbox);
                assert!(n >= 1, "{count} x {size} B: no progress");
                let batch = TxBatch(outbox.drain(..n).collect());
                let bytes = codec::encode(&batch).unwrap();
                assert!(bytes.len() <= wire::MAX_TX_BATCH_BYTES, "{count} x {size} B: a batch of {} bytes", bytes.len());
                let back = wire::decode_tx_batch(&bytes).expect("every peer accepts the batch");
                assert_eq!(back.0.len(), n);
                // Full, unless it is the last: one more item would not have fit.
                if !outbox.is_empty() && n < wire::MAX_TX_BATCH {
                    assert!(bytes.len() + 8 + outbox[0].len() > wire::MAX_TX_BATCH_BYTES, "{count} x {size} B: batch not full");
                }
                batches += 1;
            }
            assert!(batches >= count.div_ceil(wire::MAX_TX_BATCH));
        }
    }
}
