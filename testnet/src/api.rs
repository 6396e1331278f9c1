//! A small blocking client for the node HTTP API (docs/api.md): one `ureq` agent
//! per thread (connection reuse), timeouts on everything, and typed views of the
//! few answers the testnet reads. Unknown fields are ignored, so the node may add
//! fields freely.

use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// A connection-reusing client for one node.
#[derive(Clone)]
pub struct Api {
    agent: ureq::Agent,
    /// `http://127.0.0.1:8601`, no trailing slash.
    pub base: String,
    /// Keys that read restricted records (docs/access.md) and the chain id:
    /// [`Api::attestation`] retries a 403 signed with each in turn.
    readers: Vec<yrd_consensus::crypto::SecretKey>,
    chain: yrd_consensus::crypto::Hash32,
    /// The node's key (`node_key` in its status), read once, when the first
    /// signed request is made: a signed request names the node it is sent to.
    node: std::sync::OnceLock<yrd_consensus::crypto::PublicKey>,
}

/// Largest answer body read (a block of the largest size as JSON fits).
const MAX_ANSWER_BYTES: u64 = 64 * 1024 * 1024;

/// The status and body text of an answer (body at most [`MAX_ANSWER_BYTES`]).
fn read_answer(resp: &mut ureq::http::Response<ureq::Body>) -> std::result::Result<(u16, String), ureq::Error> {
    let status = resp.status().as_u16();
    let text = resp.body_mut().with_config().limit(MAX_ANSWER_BYTES).read_to_string()?;
    Ok((status, text))
}

/// An HTTP answer whose status we look at ourselves.
pub struct Answer {
    pub status: u16,
    pub body: serde_json::Value,
}

impl Api {
    /// `timeout` bounds each whole request (connect, send, receive).
    pub fn new(base: &str, timeout: Duration) -> Api {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .timeout_connect(Some(Duration::from_secs(2)))
            .http_status_as_error(false)
            .max_idle_connections_per_host(4)
            .build();
        Api {
            agent: config.into(),
            base: base.trim_end_matches('/').to_string(),
            readers: Vec::new(),
            chain: yrd_consensus::crypto::Hash32::default(),
            node: std::sync::OnceLock::new(),
        }
    }

    /// The same client, reading restricted records with `keys` (issuers read
    /// their own records, a lender its own consent transactions).
    pub fn with_readers(mut self, keys: Vec<yrd_consensus::crypto::SecretKey>, chain: yrd_consensus::crypto::Hash32) -> Api {
        self.readers = keys;
        self.chain = chain;
        self
    }

    /// The node's key, from its status (once).
    pub fn node_key(&self) -> Result<yrd_consensus::crypto::PublicKey> {
        if let Some(k) = self.node.get() {
            return Ok(*k);
        }
        let status = self.status()?;
        let hex = status.node_key.ok_or_else(|| anyhow!("{}: the node reports no node_key: it takes no signed requests", self.base))?;
        let key = yrd_consensus::crypto::PublicKey::from_hex(&hex).map_err(|e| anyhow!("{}: malformed node_key: {e}", self.base))?;
        Ok(*self.node.get_or_init(|| key))
    }

    /// GET `path` signed with `key` for this node (docs/access.md): the status
    /// and body text.
    pub fn get_signed(&self, path: &str, key: &yrd_consensus::crypto::SecretKey) -> Result<(u16, String)> {
        let url = self.url(path);
        let node = self.node_key()?;
        let ts = crate::setup::now_ms();
        let nonce = yrd_ledger::queries::Nonce::random();
        let r = yrd_ledger::queries::SignedRequest::sign(key, &self.chain, &node, "GET", path, b"", ts, nonce)?;
        let mut request = self.agent.get(&url);
        for (name, value) in r.headers(&node) {
            request = request.header(name, value);
        }
        let mut resp = request
            .call()
            .with_context(|| format!("GET {url}"))?;
        read_answer(&mut resp).with_context(|| format!("GET {url}: unreadable answer"))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// GET `path`: the full URL, the status and the body text (at most 64 MiB).
    fn get_raw(&self, path: &str) -> Result<(String, u16, String)> {
        let url = self.url(path);
        let mut resp = self.agent.get(&url).call().with_context(|| format!("GET {url}"))?;
        let (status, text) = read_answer(&mut resp).with_context(|| format!("GET {url}: unreadable answer"))?;
        Ok((url, status, text))
    }

    /// GET `path`, expecting 200 and a JSON body of type `T`.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let (url, status, text) = self.get_raw(path)?;
        if status != 200 {
            return Err(anyhow!("GET {url}: HTTP {status}: {}", text.trim()));
        }
        serde_json::from_str(&text).with_context(|| format!("GET {url}: unexpected answer"))
    }

    /// GET `path`; `Ok(None)` on 404.
    pub fn get_opt<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>> {
        match self.get_text(path)? {
            Some(text) => serde_json::from_str(&text)
                .map(Some)
                .with_context(|| format!("GET {}: unexpected answer", self.url(path))),
            None => Ok(None),
        }
    }

    /// GET `path` as text; `Ok(None)` on 404.
    pub fn get_text(&self, path: &str) -> Result<Option<String>> {
        let (url, status, text) = self.get_raw(path)?;
        match status {
            200 => Ok(Some(text)),
            404 => Ok(None),
            _ => Err(anyhow!("GET {url}: HTTP {status}: {}", text.trim())),
        }
    }

    /// POST a JSON body given as text; returns the status and the JSON answer
    /// (`null` if the answer was not JSON).
    pub fn post_raw(&self, path: &str, json_body: String) -> Result<Answer> {
        let url = self.url(path);
        let mut resp = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(json_body)
            .with_context(|| format!("POST {url}"))?;
        let status = resp.status().as_u16();
        let text = read_answer(&mut resp).map(|(_, text)| text).unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        Ok(Answer { status, body })
    }

    pub fn status(&self) -> Result<Status> {
        self.get("/v1/status")
    }

    pub fn block(&self, height: u64) -> Result<Option<Block>> {
        self.get_opt(&format!("/v1/blocks/{height}"))
    }

    pub fn attestation(&self, id: &str) -> Result<Option<Record>> {
        let path = format!("/v1/attestations/{id}");
        let (url, status, text) = self.get_raw(&path)?;
        let text = match status {
            200 => text,
            404 => return Ok(None),
            // A restricted record or a consent transaction: read it with a key that may.
            403 => {
                let found = self.readers.iter().find_map(|k| match self.get_signed(&path, k) {
                    Ok((200, t)) => Some(t),
                    _ => None,
                });
                found.ok_or_else(|| anyhow!("GET {url}: HTTP 403 with every reader key: {}", text.trim()))?
            }
            _ => return Err(anyhow!("GET {url}: HTTP {status}: {}", text.trim())),
        };
        serde_json::from_str(&text).map(Some).with_context(|| format!("GET {url}: unexpected answer"))
    }

    /// Long-polls until the committed height is at least `height` or `timeout_ms`
    /// passes; returns the current height. `Ok(None)` if the node has no such
    /// endpoint (then poll [`Api::status`]).
    pub fn wait_height(&self, height: u64, timeout_ms: u64) -> Result<Option<u64>> {
        #[derive(Deserialize)]
        struct Waited {
            height: u64,
        }
        Ok(self
            .get_opt::<Waited>(&format!("/v1/wait/{height}?timeout_ms={timeout_ms}"))?
            .map(|w| w.height))
    }
}

/// `GET /v1/status`.
#[derive(Debug, Clone, Deserialize)]
pub struct Status {
    #[serde(default)]
    pub chain_id: String,
    /// The node's key (hex), what signed requests to it name.
    #[serde(default)]
    pub node_key: Option<String>,
    pub height: u64,
    #[serde(default)]
    pub mempool_size: u64,
    /// Connected peers (only counted here).
    #[serde(default)]
    pub peers: Vec<serde::de::IgnoredAny>,
}

/// `GET /v1/blocks/{height}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Block {
    pub height: u64,
    /// The block hash (hex).
    #[serde(default)]
    pub hash: String,
    /// Ids, or `{"redacted": true, "commitment", ..}` for records the caller may
    /// not read (docs/api.md).
    #[serde(default)]
    pub transactions: Vec<BlockEntry>,
}

/// An entry of a block's `transactions`: the id, or for a transaction the
/// caller may not read, its commitment (docs/access.md "What each route shows").
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum BlockEntry {
    Id(String),
    Redacted { commitment: String },
}

impl BlockEntry {
    /// The id, or the commitment of a redacted entry (hex).
    pub fn key(&self) -> &str {
        match self {
            BlockEntry::Id(id) => id,
            BlockEntry::Redacted { commitment } => commitment,
        }
    }
}

/// `GET /v1/attestations/{id}`: an attestation or revocation, or a pending one.
#[derive(Debug, Clone, Deserialize)]
pub struct Record {
    pub status: String,
    #[serde(default)]
    pub height: Option<u64>,
    #[serde(default)]
    pub block_hash: Option<String>,
    #[serde(default)]
    pub revoked_by: Option<String>,
    #[serde(default)]
    pub revocation_reason: Option<String>,
}

impl Record {
    /// Committed in a block (any status but `pending`).
    pub fn is_final(&self) -> bool {
        self.status != "pending" && self.height.is_some()
    }
}

/// `POST /v1/transactions/batch`'s answer: one result per submitted transaction,
/// in order (docs/api.md).
#[derive(Debug, Deserialize)]
pub struct BatchAnswer {
    pub results: Vec<BatchEntry>,
}

/// One transaction's result in a batch: `status` when admitted, else `error`
/// and `code`.
#[derive(Debug, Deserialize)]
pub struct BatchEntry {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
}
