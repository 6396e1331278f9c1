//! Prometheus metrics, served at `/metrics`.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

pub struct Metrics {
    registry: Registry,
    pub height: Gauge,
    pub round: Gauge,
    pub mempool_size: Gauge,
    pub peers: Gauge,
    pub txs_committed: Counter,
    pub txs_submitted: Counter,
    pub txs_rejected: Counter,
    /// Refused for delay: the oldest pending transaction had waited past the admission target (`admission.rs`; also in `txs_rejected`).
    pub txs_refused_overload: Counter,
    pub blocks_committed: Counter,
    pub commit_latency_seconds: Histogram,
    pub block_txs: Histogram,
    pub block_write_seconds: Histogram,
    pub invalid_messages: Counter,
    /// Transaction gossip batches ignored because ADMISSION_QUEUE batches were already waiting (node.rs).
    pub gossip_batches_shed: Counter,
    pub disk_free_bytes: Gauge,
    pub disk_low: Gauge,
    pub halted: Gauge,
    pub clock_offset_ms: Gauge,
    /// HTTP API connections open (or being closed), sampled 4 times a second.
    pub api_connections: Gauge,
    /// API connections closed to make room for a new one at the cap.
    pub api_connections_evicted: Counter,
    /// API connections refused at the cap (every connection busy).
    pub api_connections_refused: Counter,
    /// API connections closed by the header or idle timeout.
    pub api_connections_timed_out: Counter,
    /// Request bodies refused because the in-flight body budget was used up.
    pub api_bodies_refused: Counter,
    /// Long polls refused (503 busy) because half of the connections already wait.
    pub api_long_polls_refused: Counter,
    /// Authorised queries served and waiting to be submitted in a record transaction.
    pub query_queue_depth: Gauge,
    /// Query entries submitted in record transactions this node signed.
    pub queries_submitted: Counter,
    /// Query entries whose record transaction this node's mempool refused.
    pub queries_unrecorded: Counter,
    /// Authorised reads refused 503 because the query queue was full.
    pub queries_refused: Counter,
    /// 1 while a quorum of validators is connected (`liveness.rs`).
    pub quorum_present: Gauge,
    /// Seconds since this node last committed a block (sampled 4 times a second).
    pub last_block_age_seconds: Gauge,
    /// Bytes written to and read from peers' TCP connections, and gossip messages
    /// published and received (copied from the network's counters 4 times a second).
    pub p2p_bytes_sent: Counter,
    pub p2p_bytes_received: Counter,
    pub gossip_published: Counter,
    pub gossip_received: Counter,
}

/// The version this binary was built from, as served by `yrd_build_info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

impl Metrics {
    pub fn new() -> Metrics {
        let mut m = Metrics {
            height: Gauge::default(),
            round: Gauge::default(),
            mempool_size: Gauge::default(),
            peers: Gauge::default(),
            txs_committed: Counter::default(),
            txs_submitted: Counter::default(),
            txs_rejected: Counter::default(),
            txs_refused_overload: Counter::default(),
            blocks_committed: Counter::default(),
            commit_latency_seconds: Histogram::new(
                [0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0],
            ),
            block_txs: Histogram::new([0.0, 1.0, 10.0, 100.0, 500.0, 1000.0, 2000.0, 4096.0]),
            block_write_seconds: Histogram::new([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 1.0, 2.5]),
            invalid_messages: Counter::default(),
            gossip_batches_shed: Counter::default(),
            disk_free_bytes: Gauge::default(),
            disk_low: Gauge::default(),
            halted: Gauge::default(),
            clock_offset_ms: Gauge::default(),
            api_connections: Gauge::default(),
            api_connections_evicted: Counter::default(),
            api_connections_refused: Counter::default(),
            api_connections_timed_out: Counter::default(),
            api_bodies_refused: Counter::default(),
            api_long_polls_refused: Counter::default(),
            query_queue_depth: Gauge::default(),
            queries_submitted: Counter::default(),
            queries_unrecorded: Counter::default(),
            queries_refused: Counter::default(),
            quorum_present: Gauge::default(),
            last_block_age_seconds: Gauge::default(),
            p2p_bytes_sent: Counter::default(),
            p2p_bytes_received: Counter::default(),
            gossip_published: Counter::default(),
            gossip_received: Counter::default(),
            registry: Registry::with_prefix("yrd"),
        };
        m.registry.register("height", "Height of the last committed block", m.height.clone());
        m.registry.register("round", "Current consensus round", m.round.clone());
        m.registry.register("mempool_size", "Pending transactions", m.mempool_size.clone());
        m.registry.register("peers", "Connected peers", m.peers.clone());
        m.registry.register("transactions_committed", "Transactions committed", m.txs_committed.clone());
        m.registry.register("transactions_submitted", "Transactions accepted into the mempool", m.txs_submitted.clone());
        m.registry.register("transactions_rejected", "Transactions refused (invalid or mempool full)", m.txs_rejected.clone());
        m.registry.register(
            "transactions_refused_overload",
            "Transactions refused because the oldest pending one had waited more than the admission target (mempool.max_wait_ms less three recent block times, at most half)",
            m.txs_refused_overload.clone(),
        );
        m.registry.register("blocks_committed", "Blocks committed", m.blocks_committed.clone());
        m.registry.register(
            "commit_latency_seconds",
            "Time from a transaction entering this node's mempool to its block being committed here",
            m.commit_latency_seconds.clone(),
        );
        m.registry.register("block_transactions", "Transactions per committed block", m.block_txs.clone());
        m.registry.register(
            "block_write_seconds",
            "Time to write a decided block to the store (certificate check, atomic batch, fsync), on the consensus path",
            m.block_write_seconds.clone(),
        );
        m.registry.register(
            "disk_free_bytes",
            "Free space on the data directory's filesystem (statvfs, before every commit and about once a second)",
            m.disk_free_bytes.clone(),
        );
        m.registry.register(
            "disk_low",
            "1 while free space is below storage.low_mib: no new transactions are accepted; the node stops at storage.reserve_mib",
            m.disk_low.clone(),
        );
        m.registry.register("invalid_messages", "Invalid messages received from peers (three from one peer get it dropped for 60 s)", m.invalid_messages.clone());
        m.registry.register(
            "gossip_batches_shed",
            "Transaction gossip batches not admitted because 64 were already waiting for the admission workers (a validator that authored one still proposes its transactions)",
            m.gossip_batches_shed.clone(),
        );
        m.registry.register(
            "halted",
            "1 when the node stopped following the chain because a certified block fails its validation (see /v1/status)",
            m.halted.clone(),
        );
        m.registry.register(
            "clock_offset_ms",
            "Median over the other validators of (block timestamp - our clock) for the latest block each proposed; beyond +-15000 our clock is wrong",
            m.clock_offset_ms.clone(),
        );
        m.registry.register("api_connections", "HTTP API connections open (sampled every 250 ms)", m.api_connections.clone());
        m.registry.register(
            "query_queue_depth",
            "Authorised queries this node served that wait to be submitted in a query-record transaction",
            m.query_queue_depth.clone(),
        );
        m.registry.register("queries_submitted", "Query entries submitted in record transactions signed by this node", m.queries_submitted.clone());
        m.registry.register(
            "queries_unrecorded",
            "Query entries whose record transaction was refused at admission (served but not recorded: investigate)",
            m.queries_unrecorded.clone(),
        );
        m.registry.register("queries_refused", "Authorised reads refused 503 because the query queue was full", m.queries_refused.clone());
        m.registry.register(
            "api_connections_evicted",
            "API connections closed at the cap to make room (the one waiting longest on its client)",
            m.api_connections_evicted.clone(),
        );
        m.registry.register(
            "api_connections_refused",
            "API connections refused at the cap because every connection had a request in progress",
            m.api_connections_refused.clone(),
        );
        m.registry.register(
            "api_connections_timed_out",
            "API connections closed by the header or idle timeout",
            m.api_connections_timed_out.clone(),
        );
        m.registry.register(
            "api_bodies_refused",
            "Request bodies refused (503 busy) because the in-flight body budget was used up",
            m.api_bodies_refused.clone(),
        );
        m.registry.register(
            "api_long_polls_refused",
            "Long polls (GET /v1/wait) refused (503 busy) because half of the API connections already wait",
            m.api_long_polls_refused.clone(),
        );
        m.registry.register("build", "The yrd version of this node (the value is always 1)", Info::new(vec![("version".to_string(), VERSION.to_string())]));
        m.registry.register(
            "quorum_present",
            "1 while enough validators are connected for blocks to become final (n - f, counting this node if a validator)",
            m.quorum_present.clone(),
        );
        m.registry.register(
            "last_block_age_seconds",
            "Seconds since this node last committed a block; a WARN is logged from 5 s",
            m.last_block_age_seconds.clone(),
        );
        m.registry.register(
            "p2p_bytes_sent",
            "Bytes written to peers' TCP connections (noise, yamux and every protocol included; sampled 4 times a second)",
            m.p2p_bytes_sent.clone(),
        );
        m.registry.register("p2p_bytes_received", "Bytes read from peers' TCP connections (sampled 4 times a second)", m.p2p_bytes_received.clone());
        m.registry.register(
            "gossip_published",
            "Gossip messages (transaction batches, consensus messages) this node published; each goes to every connected peer",
            m.gossip_published.clone(),
        );
        m.registry.register("gossip_received", "Gossip messages received from peers, before validation (duplicates excluded)", m.gossip_received.clone());
        m
    }

    /// Brings the network counters up to the network's own figures.
    pub fn sample_network(&self, s: &crate::net::NetStats) {
        let up = |c: &Counter, now: u64| c.inc_by(now.saturating_sub(c.get()));
        up(&self.p2p_bytes_sent, s.bytes_sent);
        up(&self.p2p_bytes_received, s.bytes_received);
        up(&self.gossip_published, s.gossip_published);
        up(&self.gossip_received, s.gossip_received);
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_info_carries_the_version() {
        let text = Metrics::new().render();
        let line = format!("yrd_build_info{{version=\"{VERSION}\"}} 1");
        assert!(text.contains(&line), "{line} not in\n{text}");
    }
}
