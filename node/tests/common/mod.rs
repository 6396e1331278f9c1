//! A real API server on 127.0.0.1:0 over an in-process [`Shared`] whose driver is
//! not running: nothing is finalised unless a test commits blocks into the ledger
//! itself. Shared by the node's API tests (api, api_limits, access, overload).

#![allow(dead_code)] // each test file uses its own part of this

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use yrd_consensus::crypto::PublicKey;
use yrd_consensus::types::{Height, Round};
use yrd_ledger::store::Ledger;
use yrd_ledger::testkit::TestChain;
use yrd_node::api::{self, ServeLimits};
use yrd_node::mempool::Mempool;
use yrd_node::metrics::Metrics;
use yrd_node::queries::{QueriesConfig, QueryRecorder};
use yrd_node::shared::{ConsensusStatus, RecentCommits, Shared};

/// How the served node is set up; [`Options::default`] is validator 0
/// ("shanghai") of the chain with a 100-transaction mempool, no peers, query
/// records signed by its key and the default server limits.
pub struct Options {
    /// Serve this ledger (already opened on the chain's genesis) instead of a
    /// fresh one.
    pub ledger: Option<Ledger>,
    pub mempool: Mempool,
    pub peers: Vec<PublicKey>,
    /// Sign query records with validator 0's key (`false`: a node that records none).
    pub records_queries: bool,
    pub queries: QueriesConfig,
    pub limits: ServeLimits,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            ledger: None,
            mempool: Mempool::new(100),
            peers: vec![],
            records_queries: true,
            queries: QueriesConfig::default(),
            limits: ServeLimits::default(),
        }
    }
}

/// The served API; stops the server when dropped.
pub struct Served {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub shared: Arc<Shared>,
    /// What the node handed to the network for gossip.
    pub gossip: Mutex<mpsc::Receiver<Vec<Vec<u8>>>>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

/// Serves `chain`'s genesis from a fresh temp-dir ledger (or `opts.ledger`).
pub fn serve(chain: &TestChain, opts: Options) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let ledger = match opts.ledger {
        Some(l) => l,
        None => Ledger::open(dir.path(), chain.genesis.clone()).unwrap(),
    };
    let (gossip_out, gossip) = mpsc::channel(1024);
    let signer = opts.records_queries.then(|| chain.validator_keys[0].clone());
    let shared = Arc::new(Shared {
        name: "shanghai".into(),
        validator_index: Some(0),
        genesis: chain.genesis.clone(),
        chain: chain.chain,
        ledger: RwLock::new(ledger),
        mempool: Mutex::new(opts.mempool),
        recent: Mutex::new(RecentCommits::default()),
        metrics: Metrics::new(),
        consensus: Mutex::new(ConsensusStatus { height: Height(1), round: Round(0), step: "propose", validator_index: Some(0) }),
        peers: Mutex::new(opts.peers),
        committed: watch::channel(Height(0)).0,
        gossip_out,
        disk: yrd_node::disk::DiskSpace::unlimited(dir.path()),
        writes: Default::default(),
        health: Default::default(),
        queries: QueryRecorder::new(signer, opts.queries),
    });
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop, stop_rx) = oneshot::channel::<()>();
    let served = shared.clone();
    let limits = opts.limits;
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            api::serve(listener, served, limits, async move {
                let _ = stop_rx.await;
            })
            .await
        })
    });
    let addr = addr_rx.recv().unwrap();
    Served {
        addr,
        base: format!("http://{addr}"),
        shared,
        gossip: Mutex::new(gossip),
        stop: Some(stop),
        server: Some(server),
        _dir: dir,
    }
}

/// A blocking HTTP client that returns error statuses as answers.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(60))).build().into()
}

impl Served {
    /// Stops the server and waits for `serve` to return, which must be `Ok`;
    /// how long that took.
    pub fn shutdown(&mut self) -> Duration {
        let start = Instant::now();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.join().expect("server thread panicked").expect("serve returned an error");
        }
        start.elapsed()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
    }
}

/// The configuration of validator `i` of `chain` for an in-process [`yrd_node::node::Node`]
/// on 127.0.0.1: its key written under `dir`, data in `dir/data{i}`, p2p on `port`,
/// the API on an ephemeral port, 50 ms blocks and an empty block after a second
/// (used by the multi-node tests: cluster, byzantine).
pub fn validator_config(
    chain: &TestChain,
    i: usize,
    dir: &std::path::Path,
    genesis: &std::path::Path,
    port: u16,
    peers: Vec<String>,
) -> yrd_node::config::NodeConfig {
    use yrd_node::config::{ConsensusConfig, HttpConfig, MempoolConfig, NodeConfig};
    let key = dir.join(format!("v{i}.key"));
    yrd_node::keys::write_key_file(&key, &chain.validator_keys[i]).unwrap();
    NodeConfig {
        name: chain.genesis.validators[i].name.clone(),
        genesis: genesis.to_path_buf(),
        key,
        data_dir: dir.join(format!("data{i}")),
        listen: format!("/ip4/127.0.0.1/tcp/{port}"),
        api: "127.0.0.1:0".into(),
        peers,
        log_format: "text".into(),
        mempool: MempoolConfig::default(),
        consensus: ConsensusConfig { block_interval_ms: 50, empty_block_after_ms: 1000, ..ConsensusConfig::default() },
        storage: Default::default(),
        http: HttpConfig::default(),
        queries: Default::default(),
    }
}
