//! # yrd-node
//!
//! The validator node of the YRD credit chain: the permissioned libp2p network
//! ([`net`]), the consensus driver that wires the pure core to the network,
//! timers and the sled store ([`node`]), the mempool ([`mempool`]) and its admission by queueing delay ([`admission`]), the HTTP JSON
//! API with Prometheus metrics ([`api`]), configuration ([`config`], documented field by
//! field in [`config_doc`]), key
//! files ([`keys`]), the descriptor limit ([`fdlimit`]), the disk reserve ([`disk`])
//! and what a storage failure does ([`fatal`]). This is the only crate with tokio and libp2p.

pub mod admission;
pub mod api;
pub mod config;
pub mod config_doc;
pub mod disk;
pub mod fatal;
pub mod fdlimit;
pub mod health;
pub mod keys;
pub mod lagging;
pub mod liveness;
pub mod net;
pub mod mempool;
pub mod metrics;
pub mod shared;
pub mod node;
pub mod queries;
pub mod wire;

pub use node::run;
