//! Node configuration: a TOML file, overridable by command-line flags.
//!
//! ```toml
//! name = "shanghai"                       # must match a validator or observer in the genesis
//! genesis = "/etc/yrd/genesis.json"
//! key = "/etc/yrd/shanghai.key"           # validator (or observer) key file, mode 0600
//! data_dir = "/var/lib/yrd/shanghai"
//! listen = "/ip4/0.0.0.0/tcp/26601"       # libp2p
//! api = "127.0.0.1:8601"                  # HTTP API and /metrics
//! peers = ["/ip4/10.0.0.2/tcp/26601/p2p/12D3KooW..."]
//! log_format = "text"                     # or "json"
//!
//! [mempool]
//! max_txs = 50000
//! max_wait_ms = 1000                      # refuse (503 overloaded) while the oldest pending waited > this less 3 block times
//!
//! [consensus]
//! propose_timeout_ms = 3000
//! block_interval_ms = 0                   # least time between blocks (0: as soon as the previous is final)
//! empty_block_after_ms = 30000            # idle: one empty block this often (liveness heartbeat)
//! max_block_txs = 4096                    # also capped by the genesis
//!
//! [storage]
//! reserve_mib = 256                       # free space never written into (0: off)
//! low_mib = 1024                          # below this, no new work is accepted
//! [http]                                  # limits of the HTTP API (docs/node.md)
//! max_connections = 4096                  # lowered at start to what the fd limit allows
//! fd_reserve = 512                        # file descriptors kept for libp2p, sled, logs
//! header_timeout_ms = 10000               # connection open -> complete request head
//! idle_timeout_ms = 30000                 # answer sent -> complete next request head
//! body_timeout_ms = 30000                 # request head -> complete body
//! max_body_bytes_in_flight = 67108864     # request bodies being read, all connections
//! ```
//! Relative paths are resolved against the config file's directory.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub name: String,
    pub genesis: PathBuf,
    pub key: PathBuf,
    pub data_dir: PathBuf,
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default = "default_api")]
    pub api: String,
    #[serde(default)]
    pub peers: Vec<String>,
    #[serde(default = "default_log_format")]
    pub log_format: String,
    #[serde(default)]
    pub mempool: MempoolConfig,
    #[serde(default)]
    pub consensus: ConsensusConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub queries: crate::queries::QueriesConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MempoolConfig {
    /// Most pending transactions; submissions beyond get HTTP 503.
    pub max_txs: usize,
    /// Bound on a client's wait to finality: while the oldest pending transaction
    /// has waited more than half of it, submissions get HTTP 503 `overloaded` with
    /// `Retry-After` (0: admission by count only). See [`crate::admission`].
    pub max_wait_ms: u64,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        MempoolConfig { max_txs: 50_000, max_wait_ms: 1000 }
    }
}

impl MempoolConfig {
    /// The admission bound on queueing delay, `None` when off.
    pub fn max_wait(&self) -> Option<std::time::Duration> {
        (self.max_wait_ms > 0).then(|| std::time::Duration::from_millis(self.max_wait_ms))
    }
}

/// Shortest heartbeat: below this an idle chain is as busy as the old one-block-
/// a-second chain this setting was made to avoid.
pub const MIN_EMPTY_BLOCK_AFTER_MS: u64 = 100;
/// Longest heartbeat: an hour without a block is as long as a stalled quorum
/// may go unnoticed from the chain alone.
pub const MAX_EMPTY_BLOCK_AFTER_MS: u64 = 3_600_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsensusConfig {
    pub propose_timeout_ms: u64,
    pub propose_timeout_delta_ms: u64,
    pub vote_timeout_ms: u64,
    pub vote_timeout_delta_ms: u64,
    /// Least time between the previous block and our proposal of the next
    /// (0: propose as soon as the previous block is final and transactions wait).
    pub block_interval_ms: u64,
    /// With no transaction waiting, the proposer proposes an empty block only
    /// after this long, and the others hold their round-0 proposal timeout until
    /// then (an idle chain writes one block per this interval: its heartbeat).
    pub empty_block_after_ms: u64,
    /// Most transactions we put in a block (the genesis cap also applies).
    pub max_block_txs: u32,
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        ConsensusConfig {
            propose_timeout_ms: 3000,
            propose_timeout_delta_ms: 500,
            vote_timeout_ms: 1000,
            vote_timeout_delta_ms: 500,
            block_interval_ms: 0,
            empty_block_after_ms: 30_000,
            max_block_txs: 4096,
        }
    }
}

/// Free space on the data directory's filesystem (`disk.rs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Free space (MiB) the node never writes into: a commit that could leave
    /// less stops the node (ERROR, exit status 2) before the disk fills, keeping
    /// room for sled's recovery and the repair at the next start. 0 turns the
    /// check off (a full disk then fails a write with ENOSPC, which also stops
    /// the node).
    pub reserve_mib: u64,
    /// Below this much free space (MiB) the node takes no new work — API
    /// submissions get 503 `disk_low`, gossiped transactions are not admitted,
    /// its proposals are empty — and logs a WARN at most once a minute; it keeps
    /// committing the blocks the others finalise until the reserve. At least
    /// `reserve_mib`; 0 turns it off.
    pub low_mib: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        // A few hundred MiB: several thousand full blocks' worth of sled writes
        // at their worst amplification, and room to reopen and repair.
        StorageConfig { reserve_mib: 256, low_mib: 1024 }
    }
}

/// Limits of the HTTP API server (`node/src/api/server.rs`, docs/node.md "HTTP
/// limits"). Every field has a default, so config files without `[http]` keep working.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Most API connections open at once. At start it is lowered to what the
    /// file-descriptor limit allows after `fd_reserve`. A connection beyond the cap
    /// closes the open connection that has waited longest on its client (no request,
    /// or a stalled body); if every connection has a request in progress it is
    /// answered 503 `too_many_connections` and closed.
    pub max_connections: usize,
    /// File descriptors kept out of the API's reach, for libp2p (peer connections,
    /// dials, listeners), sled (its files) and logs. The API's connection cap is
    /// the descriptor limit minus this reserve, so a flood of API connections can
    /// never starve the network or the store.
    pub fd_reserve: u64,
    /// Time from a connection opening to its first request head being complete;
    /// a connection that sends nothing, or only part of a head, is closed then.
    pub header_timeout_ms: u64,
    /// Time from an answer to the next request head on the same (kept-alive)
    /// connection being complete; an idle connection is closed then.
    pub idle_timeout_ms: u64,
    /// Time from a request head to its whole body having arrived; a body not
    /// complete by then is answered 408 `body_timeout` and the connection closed.
    pub body_timeout_ms: u64,
    /// Most bytes of request bodies being received at once, over all connections
    /// (each body reserves its announced length, or its endpoint's limit if it
    /// announces none, before a byte is read). A body that does not fit is answered
    /// 503 `busy` without being read. At least one largest batch must fit.
    pub max_body_bytes_in_flight: usize,
    /// Half-width of the window of accepted timestamps of signed (lender, issuer,
    /// agency) requests around this node's clock; it also bounds how long the
    /// replay cache remembers a nonce (docs/access.md).
    pub request_skew_ms: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_connections: 4096,
            fd_reserve: 512,
            header_timeout_ms: 10_000,
            idle_timeout_ms: 30_000,
            body_timeout_ms: 30_000,
            max_body_bytes_in_flight: 64 << 20,
            request_skew_ms: crate::api::auth::DEFAULT_REQUEST_SKEW_MS,
        }
    }
}

fn default_listen() -> String {
    "/ip4/127.0.0.1/tcp/26601".into()
}
fn default_api() -> String {
    "127.0.0.1:8601".into()
}
fn default_log_format() -> String {
    "text".into()
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("config file {path} is invalid: {reason}")]
    Parse { path: String, reason: String },
    #[error("config: {0}")]
    Invalid(String),
}

impl NodeConfig {
    /// Reads a TOML config; relative paths are taken relative to its directory.
    pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read { path: p.clone(), reason: e.to_string() })?;
        let mut cfg: NodeConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse { path: p, reason: e.to_string() })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for f in [&mut cfg.genesis, &mut cfg.key, &mut cfg.data_dir] {
            if f.is_relative() {
                *f = base.join(&*f);
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.queries.validate().map_err(ConfigError::Invalid)?;
        if self.name.trim().is_empty() {
            return Err(ConfigError::Invalid("name must not be empty".into()));
        }
        if self.api.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::Invalid(format!("api = {:?} is not an address like 127.0.0.1:8601", self.api)));
        }
        if self.listen.parse::<libp2p::Multiaddr>().is_err() {
            return Err(ConfigError::Invalid(format!(
                "listen = {:?} is not a multiaddr like /ip4/127.0.0.1/tcp/26601",
                self.listen
            )));
        }
        for p in &self.peers {
            if p.parse::<libp2p::Multiaddr>().is_err() {
                return Err(ConfigError::Invalid(format!("peer {p:?} is not a multiaddr like /ip4/127.0.0.1/tcp/26602")));
            }
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return Err(ConfigError::Invalid(format!("log_format = {:?} must be \"text\" or \"json\"", self.log_format)));
        }
        if self.mempool.max_txs == 0 {
            return Err(ConfigError::Invalid("mempool.max_txs must be at least 1".into()));
        }
        let c = &self.consensus;
        if c.propose_timeout_ms == 0 || c.vote_timeout_ms == 0 || c.max_block_txs == 0 {
            return Err(ConfigError::Invalid("consensus timeouts and max_block_txs must be positive".into()));
        }
        if !(MIN_EMPTY_BLOCK_AFTER_MS..=MAX_EMPTY_BLOCK_AFTER_MS).contains(&c.empty_block_after_ms) {
            return Err(ConfigError::Invalid(format!(
                "consensus.empty_block_after_ms = {} must be between {MIN_EMPTY_BLOCK_AFTER_MS} and {MAX_EMPTY_BLOCK_AFTER_MS} (the idle chain's heartbeat: one empty block this often)",
                c.empty_block_after_ms
            )));
        }
        let st = &self.storage;
        if st.low_mib != 0 && st.low_mib < st.reserve_mib {
            return Err(ConfigError::Invalid(format!(
                "storage.low_mib = {} is below storage.reserve_mib = {}: the node must stop taking work before it reaches the reserve (or set low_mib = 0 to never refuse work)",
                st.low_mib, st.reserve_mib
            )));
        }
        self.http.validate()
    }
}

impl HttpConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_connections == 0 {
            return Err(ConfigError::Invalid("http.max_connections must be at least 1".into()));
        }
        if self.header_timeout_ms == 0 || self.idle_timeout_ms == 0 || self.body_timeout_ms == 0 {
            return Err(ConfigError::Invalid(
                "http.header_timeout_ms, http.idle_timeout_ms and http.body_timeout_ms must be positive".into(),
            ));
        }
        let batch = crate::api::MAX_BATCH_BODY_BYTES;
        if self.max_body_bytes_in_flight < batch {
            return Err(ConfigError::Invalid(format!(
                "http.max_body_bytes_in_flight = {} is less than one largest batch body ({batch} bytes)",
                self.max_body_bytes_in_flight
            )));
        }
        if self.max_body_bytes_in_flight > crate::api::MAX_BODY_BYTES_IN_FLIGHT_LIMIT {
            return Err(ConfigError::Invalid(format!(
                "http.max_body_bytes_in_flight = {} is more than {} bytes",
                self.max_body_bytes_in_flight,
                crate::api::MAX_BODY_BYTES_IN_FLIGHT_LIMIT
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
name = "shanghai"
genesis = "genesis.json"
key = "sh.key"
data_dir = "data"
"#;

    fn load(text: &str) -> Result<NodeConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, text).unwrap();
        NodeConfig::load(&path)
    }

    #[test]
    fn a_file_without_http_gets_the_default_limits() {
        let cfg = load(BASE).unwrap();
        assert_eq!(cfg.http, HttpConfig::default());
        assert_eq!(cfg.http.max_connections, 4096);
        assert_eq!(cfg.http.max_body_bytes_in_flight, 64 << 20);
    }

    #[test]
    fn http_limits_are_read_and_the_rest_defaulted() {
        let cfg = load(&format!("{BASE}\n[http]\nmax_connections = 100\nheader_timeout_ms = 2500\n")).unwrap();
        assert_eq!(cfg.http.max_connections, 100);
        assert_eq!(cfg.http.header_timeout_ms, 2500);
        assert_eq!(cfg.http.idle_timeout_ms, HttpConfig::default().idle_timeout_ms);
        // Written out and read back: the same.
        let again: NodeConfig = toml::from_str(&cfg.to_toml()).unwrap();
        assert_eq!(again.http, cfg.http);
    }

    #[test]
    fn bad_http_limits_are_refused_with_the_reason() {
        for (section, needle) in [
            ("max_conections = 5", "unknown field `max_conections`"),
            ("max_connections = 0", "http.max_connections must be at least 1"),
            ("body_timeout_ms = 0", "must be positive"),
            ("max_body_bytes_in_flight = 1000000", "less than one largest batch body (16401024 bytes)"),
        ] {
            let e = load(&format!("{BASE}\n[http]\n{section}\n")).unwrap_err();
            assert!(e.to_string().contains(needle), "{section}: {e}");
        }
    }
}
