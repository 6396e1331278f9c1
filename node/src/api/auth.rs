//! Signed requests (docs/access.md "Signed requests"): who is asking.
//!
//! A request without any `X-YRD-*` signature header is anonymous. A signed one
//! carries all five: `X-YRD-Key` (64 hex), `X-YRD-Node` (64 hex: the key of the
//! node it is sent to, `node_key` in `GET /v1/status`), `X-YRD-Timestamp` (ms
//! since the Unix epoch, decimal), `X-YRD-Nonce` (32 hex: 16 random bytes) and
//! `X-YRD-Signature` (128 hex), the ed25519 signature of the key over
//! `signing_bytes("api/request", canonical{chain, node, method, path-and-query,
//! SHA-256(body), timestamp_ms, nonce})` ([`yrd_ledger::queries::SignedRequest`]).
//! Read routes are GETs: the body digest is that of the empty body.
//!
//! Refusals are 401 with the reason: a header missing or malformed
//! (`signature_incomplete`, `bad_signature_header`), a timestamp outside the skew
//! window (`stale_request`), a request signed for another node (`wrong_node`:
//! the replay cache is this node's own, so a request must be good at one node
//! only), a key that is not a lender, issuer or agency in force
//! (`unknown_key`, or `key_retired`), a signature that does not verify
//! (`bad_signature`), a (key, nonce) seen before within the window
//! (`replayed_request`). The replay cache holds every accepted (key, nonce) whose
//! timestamp is still inside the window, at most [`MAX_REPLAY_ENTRIES`]; when it is
//! full of unexpired entries a signed request is refused 503 `busy` (never let
//! through unchecked).

use std::collections::{BTreeSet, HashSet};
use std::sync::Mutex;

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use yrd_consensus::crypto::{sha256, Hash32, PublicKey, Signature};
use yrd_ledger::access::{OpenedSink, Viewer};
use yrd_ledger::governance::Membership;
use yrd_ledger::queries::{Nonce, SignedRequest, MAX_REQUEST_PATH_BYTES};

use super::ApiError;

pub const HEADER_KEY: &str = "x-yrd-key";
pub const HEADER_NODE: &str = "x-yrd-node";
pub const HEADER_TIMESTAMP: &str = "x-yrd-timestamp";
pub const HEADER_NONCE: &str = "x-yrd-nonce";
pub const HEADER_SIGNATURE: &str = "x-yrd-signature";

/// Default half-width of the window of accepted request timestamps around the
/// node's clock: clocks of lenders' servers (NTP) are within seconds; two minutes
/// also absorbs a slow client, and it bounds the replay cache (below).
pub const DEFAULT_REQUEST_SKEW_MS: u64 = 120_000;
/// Most (key, nonce) entries remembered. An entry is 24 bytes of data (a 128-bit
/// digest of key and nonce, and the timestamp) in a set and an ordered set, about
/// 100 bytes with their overhead: 50 MiB at most. At 2,000 signed requests a
/// second, a ±2-minute window holds about 240,000 (requests are stamped near now).
pub const MAX_REPLAY_ENTRIES: usize = 524_288;

/// Who asked: the viewer the rule sees and, for a signed request, the request
/// (the evidence a query record carries).
#[derive(Debug, Clone)]
pub struct Caller {
    pub viewer: Viewer,
    pub request: Option<SignedRequest>,
    /// What the request's readers opened (restricted records let through by an
    /// authorisation): read after the handler to record the query.
    pub opened: OpenedSink,
}

impl Caller {
    pub fn anonymous() -> Caller {
        Caller { viewer: Viewer::Anonymous, request: None, opened: OpenedSink::default() }
    }

    /// THE reader of every route: at the committed tip, noting what it opens.
    pub fn reader<'a>(&self, ledger: &'a yrd_ledger::store::Ledger) -> yrd_ledger::access::Reader<'a> {
        yrd_ledger::access::Reader::with_sink(ledger, self.viewer.clone(), self.opened.clone())
    }
}

/// The replay cache (see the module docs).
#[derive(Default)]
struct ReplayCache {
    seen: HashSet<u128>,
    by_time: BTreeSet<(u64, u128)>,
}

impl ReplayCache {
    /// Forgets entries whose timestamp is before `cutoff_ms` (their requests are
    /// refused as stale now anyway).
    fn prune(&mut self, cutoff_ms: u64) {
        while let Some(&(ts, id)) = self.by_time.first() {
            if ts >= cutoff_ms {
                break;
            }
            self.by_time.pop_first();
            self.seen.remove(&id);
        }
    }
}

/// Request authentication: the skew window and the replay cache.
pub struct RequestAuth {
    skew_ms: u64,
    replay: Mutex<ReplayCache>,
}

fn unauthorised(code: &'static str, reason: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, reason)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()))
            .map_err(|_| unauthorised("bad_signature_header", format!("header {name} is not ASCII"))),
    }
}

impl RequestAuth {
    pub fn new(skew_ms: u64) -> RequestAuth {
        RequestAuth { skew_ms, replay: Mutex::new(ReplayCache::default()) }
    }

    pub fn skew_ms(&self) -> u64 {
        self.skew_ms
    }

    /// Who sent a request with these method, URI and headers (body: empty), at
    /// the node's time `now_ms`, under `membership` (the one in force for the
    /// next block), on chain `chain`, to the node whose key is `node`.
    #[allow(clippy::too_many_arguments)]
    pub fn authenticate(
        &self,
        chain: &Hash32,
        node: &PublicKey,
        membership: &Membership,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        now_ms: u64,
    ) -> Result<Caller, ApiError> {
        let parts = [HEADER_KEY, HEADER_NODE, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE]
            .map(|h| header(headers, h));
        let [key, to, ts, nonce, sig] = parts;
        let (key, to, ts, nonce, sig) = (key?, to?, ts?, nonce?, sig?);
        if key.is_none() && to.is_none() && ts.is_none() && nonce.is_none() && sig.is_none() {
            return Ok(Caller::anonymous());
        }
        let (Some(key), Some(to), Some(ts), Some(nonce), Some(sig)) = (key, to, ts, nonce, sig) else {
            return Err(unauthorised(
                "signature_incomplete",
                "a signed request carries all of X-YRD-Key, X-YRD-Node, X-YRD-Timestamp, X-YRD-Nonce and X-YRD-Signature",
            ));
        };
        let bad = |what: &str, e: String| unauthorised("bad_signature_header", format!("{what}: {e}"));
        let key = PublicKey::from_hex(key).map_err(|e| bad("X-YRD-Key", e.to_string()))?;
        let to = PublicKey::from_hex(to).map_err(|e| bad("X-YRD-Node", e.to_string()))?;
        let timestamp_ms: u64 = ts.parse().map_err(|_| bad("X-YRD-Timestamp", format!("{ts:?} is not milliseconds since the Unix epoch")))?;
        let nonce = Nonce::from_hex(nonce).map_err(|e| bad("X-YRD-Nonce", e.to_string()))?;
        let signature = Signature::from_hex(sig).map_err(|e| bad("X-YRD-Signature", e.to_string()))?;
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        if path.len() > MAX_REQUEST_PATH_BYTES {
            return Err(bad("path", format!("{} bytes; a signed request's path and query is at most {MAX_REQUEST_PATH_BYTES}", path.len())));
        }
        // The window first: a stale request costs no signature check.
        if timestamp_ms.abs_diff(now_ms) > self.skew_ms {
            return Err(unauthorised(
                "stale_request",
                format!("timestamp {timestamp_ms} is {} ms from this node's clock {now_ms}; at most {} ms are accepted", timestamp_ms.abs_diff(now_ms), self.skew_ms),
            ));
        }
        // Then the node: a request signed for another node is refused before any
        // signature work, and would not verify here anyway.
        if &to != node {
            let name = |k: &PublicKey| membership.node_by_key(k).map_or_else(|| "an unknown node".to_string(), |n| format!("node {n:?}"));
            return Err(unauthorised(
                "wrong_node",
                format!(
                    "the request is signed for {} ({to}); this is {} ({node}): sign each request for the node it is sent to (its key is `node_key` in GET /v1/status)",
                    name(&to),
                    name(node)
                ),
            ));
        }
        let viewer = viewer_of(membership, &key)?;
        let request = SignedRequest {
            key,
            method: method.as_str().to_string(),
            path: path.to_string(),
            body: sha256(&[b""]),
            timestamp_ms,
            nonce,
            signature,
        };
        request.check_format().map_err(|e| bad("request", e))?;
        request
            .verify(chain, node)
            .map_err(|_| unauthorised("bad_signature", "the signature does not verify over this request (node, method, path and query, body digest, timestamp, nonce) on this chain"))?;
        self.remember(&request, now_ms)?;
        Ok(Caller { viewer, request: Some(request), opened: OpenedSink::default() })
    }

    /// Records the (key, nonce) of a verified request, refusing a replay.
    fn remember(&self, request: &SignedRequest, now_ms: u64) -> Result<(), ApiError> {
        let digest = sha256(&[&request.key.0, &request.nonce.0]);
        let mut id_bytes = [0u8; 16];
        id_bytes.copy_from_slice(&digest.0[..16]);
        let id = u128::from_be_bytes(id_bytes);
        let mut cache = self.replay.lock().map_err(|_| ApiError::internal("replay cache lock poisoned"))?;
        if cache.seen.contains(&id) {
            return Err(unauthorised(
                "replayed_request",
                format!("nonce {} was already used by this key; sign every request with a fresh nonce", request.nonce.to_hex()),
            ));
        }
        if cache.seen.len() >= MAX_REPLAY_ENTRIES {
            cache.prune(now_ms.saturating_sub(self.skew_ms));
            if cache.seen.len() >= MAX_REPLAY_ENTRIES {
                return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", "too many signed requests in the replay window; retry shortly"));
            }
        }
        cache.seen.insert(id);
        cache.by_time.insert((request.timestamp_ms, id));
        // Amortised pruning: entries leave once they fall out of the window.
        if cache.by_time.len().is_multiple_of(1024) {
            cache.prune(now_ms.saturating_sub(self.skew_ms));
        }
        Ok(())
    }

    /// Entries in the replay cache (for tests and metrics).
    pub fn replay_entries(&self) -> usize {
        self.replay.lock().map(|c| c.seen.len()).unwrap_or(0)
    }
}

/// The viewer a key is in `membership`: a lender, an issuer (current key, not
/// frozen) or an agency's admin key. A frozen issuer's key is retired (a freeze
/// answers a leaked key): it reads nothing, as it signs nothing, until a rotation
/// gives the issuer a new key.
fn viewer_of(membership: &Membership, key: &PublicKey) -> Result<Viewer, ApiError> {
    if let Some(l) = membership.lender(key) {
        return Ok(Viewer::Lender { name: l.name.clone() });
    }
    if let Some(i) = membership.issuer(key) {
        return Ok(Viewer::Issuer { name: i.name.clone() });
    }
    if let Some(a) = membership.agency(key) {
        return Ok(Viewer::Agency { name: a.name.clone() });
    }
    if let Some(r) = membership.retired_key(key) {
        return Err(unauthorised(
            "key_retired",
            format!("key {} of {} {:?} was retired ({}) at height {}", key.to_hex(), r.role, r.name, r.reason, r.since),
        ));
    }
    Err(unauthorised("unknown_key", format!("key {} is not the key of a lender, issuer or agency in force", key.to_hex())))
}
