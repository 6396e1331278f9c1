//! The HTTP client shared by the commands that talk to a node (`attest`, `revoke`,
//! `query`, `status`): the `--node` argument, a `ureq` agent with timeouts, and the
//! API's error shape (`{"error": .., "code": ..}`, docs/api.md) turned into clear
//! messages and exit statuses.

use std::fmt;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;

use crate::{EXIT_CHECK_FAILED, EXIT_USAGE};

/// The node used when neither `--node` nor `YRD_NODE` is given.
pub const DEFAULT_NODE: &str = "http://127.0.0.1:8601";

/// Longest time to set up a TCP connection to the node.
const CONNECT_TIMEOUT_MS: u64 = 5_000;
/// Longest time for one whole request, answer included.
const REQUEST_TIMEOUT_MS: u64 = 15_000;
/// Largest answer body read from a node.
const ANSWER_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// `--node URL`, flattened into every command that talks to a node.
#[derive(clap::Args, Debug, Clone)]
pub struct NodeArgs {
    /// Base URL of a node's HTTP API (http only; `host:port` alone means http://host:port)
    #[arg(long, value_name = "URL", env = "YRD_NODE", default_value = DEFAULT_NODE)]
    pub node: String,
}

/// What can go wrong talking to a node.
#[derive(Debug)]
pub enum NodeError {
    /// No HTTP answer at all: connection refused, DNS, timeout, broken connection.
    Unreachable { url: String, reason: String },
    /// The node answered with a non-2xx status and (usually) `{"error", "code"}`.
    Status { status: u16, error: String, code: Option<String> },
    /// A 2xx answer that is not the JSON the API promises.
    BadAnswer { url: String, reason: String },
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeError::Unreachable { url, reason } => write!(f, "cannot reach node at {url}: {reason}"),
            NodeError::Status { status, error, code, .. } => match code {
                Some(code) => write!(f, "node answered {status} ({code}): {error}"),
                None => write!(f, "node answered {status}: {error}"),
            },
            NodeError::BadAnswer { url, reason } => write!(f, "unexpected answer from node at {url}: {reason}"),
        }
    }
}

impl std::error::Error for NodeError {}

impl NodeError {
    pub fn status(&self) -> Option<u16> {
        match self {
            NodeError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True when the node refused a submitted transaction for what it is (400 invalid,
    /// 409 sequence already pending, 413 too large): resubmitting it unchanged cannot
    /// succeed. Such refusals exit with status 1; everything else (unreachable node,
    /// 503 mempool full, 5xx, …) with status 2.
    pub fn is_rejection(&self) -> bool {
        matches!(self.status(), Some(400 | 409 | 413))
    }
}

/// Prints `error` the way `main` prints errors and returns the matching exit status
/// for a failed submission (see [`NodeError::is_rejection`]).
pub fn report_submit_error(error: &NodeError) -> ExitCode {
    if error.is_rejection() {
        eprintln!("yrd: error: node rejected the transaction: {error}");
        ExitCode::from(EXIT_CHECK_FAILED)
    } else {
        eprintln!("yrd: error: {error}");
        ExitCode::from(EXIT_USAGE)
    }
}

/// `--key FILE` of the read commands (`query`, `report`, `proof`, `audit trace`): sign the
/// requests with a lender's (or issuer's, or agency's) key (docs/access.md).
#[derive(clap::Args, Debug, Clone)]
pub struct ReadKeyArgs {
    /// Key file to sign the requests with: a lender reads restricted records about
    /// subjects its authorisations cover, an issuer its own records
    #[arg(long = "key", value_name = "FILE")]
    pub key: Option<std::path::PathBuf>,
}

/// A node's HTTP API.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    /// Signs GET requests when set.
    signer: Option<Signer>,
}

/// How a client signs its requests: the key, and the chain and node it signs
/// for (both read from the node's `/v1/status`: a signed request is good on one
/// chain, at one node).
#[derive(Clone)]
struct Signer {
    key: yrd_consensus::crypto::SecretKey,
    chain: yrd_consensus::crypto::Hash32,
    node: yrd_consensus::crypto::PublicKey,
}

impl Client {
    /// Normalises the URL (adds `http://` when there is no scheme, drops trailing `/`)
    /// and refuses what this build cannot speak.
    pub fn new(node: &str) -> anyhow::Result<Client> {
        let trimmed = node.trim().trim_end_matches('/');
        if trimmed.is_empty() {
            anyhow::bail!("--node is empty; give a URL such as {DEFAULT_NODE}");
        }
        let base = if trimmed.starts_with("http://") {
            trimmed.to_string()
        } else if trimmed.starts_with("https://") {
            anyhow::bail!(
                "--node {trimmed}: https is not supported by this build of yrd; use http:// \
                 (the API is meant for loopback or a private network, or a TLS-terminating proxy)"
            );
        } else if trimmed.contains("://") {
            anyhow::bail!("--node {trimmed}: only http:// URLs are supported");
        } else {
            format!("http://{trimmed}")
        };
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_millis(CONNECT_TIMEOUT_MS)))
            .timeout_global(Some(Duration::from_millis(REQUEST_TIMEOUT_MS)))
            .build();
        Ok(Client { agent: ureq::Agent::new_with_config(config), base, signer: None })
    }

    /// The same node, with GET requests signed by `key` for the chain and node
    /// its `/v1/status` names.
    pub fn signed_with(&self, key: yrd_consensus::crypto::SecretKey) -> anyhow::Result<Client> {
        let status = self.get("/v1/status")?;
        let field = |name: &str| {
            status
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow::anyhow!("node at {} reports no {name} in /v1/status: it cannot take signed requests", self.base))
        };
        let chain = yrd_consensus::crypto::Hash32::from_hex(field("chain_id")?)
            .map_err(|e| anyhow::anyhow!("node at {} reports a malformed chain_id: {e}", self.base))?;
        let node = yrd_consensus::crypto::PublicKey::from_hex(field("node_key")?)
            .map_err(|e| anyhow::anyhow!("node at {} reports a malformed node_key: {e}", self.base))?;
        Ok(Client { agent: self.agent.clone(), base: self.base.clone(), signer: Some(Signer { key, chain, node }) })
    }

    /// A client whose GET requests are signed with the key in `key` (if any).
    pub fn signing(node: &str, key: Option<&std::path::PathBuf>) -> anyhow::Result<Client> {
        let client = Client::new(node)?;
        match key {
            Some(path) => client.signed_with(yrd_node::keys::read_key_file(path)?),
            None => Ok(client),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET path` (path starts with `/`) → the JSON answer.
    pub fn get(&self, path: &str) -> Result<Value, NodeError> {
        let url = format!("{}{path}", self.base);
        let request = self.sign_get(self.agent.get(&url).header("Accept", "application/json"), &url, path)?;
        self.finish(url, request.call())
    }

    /// Adds the signature headers to a GET of `path` when this client signs.
    fn sign_get(
        &self,
        mut request: ureq::RequestBuilder<ureq::typestate::WithoutBody>,
        url: &str,
        path: &str,
    ) -> Result<ureq::RequestBuilder<ureq::typestate::WithoutBody>, NodeError> {
        if let Some(Signer { key, chain, node }) = &self.signer {
            let ts = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            let signed = yrd_ledger::queries::SignedRequest::sign(key, chain, node, "GET", path, b"", ts, yrd_ledger::queries::Nonce::random())
                .map_err(|e| NodeError::BadAnswer { url: url.to_string(), reason: format!("cannot sign the request: {e}") })?;
            for (name, value) in signed.headers(node) {
                request = request.header(name, value);
            }
        }
        Ok(request)
    }

    /// `GET path` → the raw answer body (at most `limit` bytes), for binary answers.
    pub fn get_bytes(&self, path: &str, limit: u64) -> Result<Vec<u8>, NodeError> {
        let url = format!("{}{path}", self.base);
        let mut response = self
            .sign_get(self.agent.get(&url), &url, path)?
            .call()
            .map_err(|e| NodeError::Unreachable { url: self.base.clone(), reason: describe(&e) })?;
        let status = response.status().as_u16();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| NodeError::Unreachable { url: self.base.clone(), reason: describe(&e) })?;
        if (200..300).contains(&status) {
            return Ok(bytes);
        }
        let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
        let error = parsed.as_ref().and_then(|v| v.get("error")).and_then(Value::as_str).unwrap_or("(no reason given)").to_string();
        let code = parsed.as_ref().and_then(|v| v.get("code")).and_then(Value::as_str).map(str::to_string);
        Err(NodeError::Status { status, error, code })
    }

    /// `POST path` with a JSON body → the JSON answer.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value, NodeError> {
        let url = format!("{}{path}", self.base);
        let answer = self.agent.post(&url).header("Accept", "application/json").send_json(body);
        self.finish(url, answer)
    }

    fn finish(
        &self,
        url: String,
        answer: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value, NodeError> {
        let mut response = answer.map_err(|e| NodeError::Unreachable { url: self.base.clone(), reason: describe(&e) })?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(ANSWER_BYTES_MAX)
            .read_to_string()
            .map_err(|e| NodeError::Unreachable { url: self.base.clone(), reason: describe(&e) })?;
        if (200..300).contains(&status) {
            return serde_json::from_str(&text)
                .map_err(|e| NodeError::BadAnswer { url, reason: format!("not JSON ({e}): {}", snippet(&text)) });
        }
        let parsed: Option<Value> = serde_json::from_str(&text).ok();
        let error = parsed
            .as_ref()
            .and_then(|v| v.get("error"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| if text.trim().is_empty() { format!("(no reason given) for {url}") } else { snippet(&text) });
        let code = parsed.as_ref().and_then(|v| v.get("code")).and_then(Value::as_str).map(str::to_string);
        Err(NodeError::Status { status, error, code })
    }
}

fn describe(error: &ureq::Error) -> String {
    match error {
        ureq::Error::Io(e) => e.to_string(),
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::HostNotFound => "host not found".into(),
        other => other.to_string(),
    }
}

/// The first 200 characters of an unexpected answer, on one line.
fn snippet(text: &str) -> String {
    let one_line: String = text.trim().chars().map(|c| if c.is_control() { ' ' } else { c }).take(200).collect();
    one_line
}

/// Percent-encodes one URL path segment (issuer names may hold spaces or Chinese).
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A string field of a JSON answer, or `-` for tables.
pub fn text_field<'a>(v: &'a Value, key: &str) -> std::borrow::Cow<'a, str> {
    match v.get(key) {
        Some(Value::String(s)) => std::borrow::Cow::Borrowed(s.as_str()),
        None | Some(Value::Null) => std::borrow::Cow::Borrowed("-"),
        Some(other) => std::borrow::Cow::Owned(other.to_string()),
    }
}
