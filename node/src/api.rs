//! The HTTP JSON API and the Prometheus `/metrics` endpoint.
//!
//! The contract is `docs/api.md`; the machine-readable description is
//! `docs/openapi.yaml`. Every non-2xx answer is `{"error": reason, "code": rule}`,
//! including malformed JSON, bad path or query parameters, unknown routes, wrong
//! methods and oversize bodies (axum's plain-text rejections never reach a client).
//!
//! Handlers never hold the ledger or mempool lock across an `.await`: each takes
//! the locks it needs inside a plain block, in the same order as
//! [`Shared::admit`] (ledger, then mempool). Batch admission (signature checks of
//! up to [`MAX_BATCH`] transactions) runs on the blocking pool so it does not stall
//! the runtime that also drives consensus.
//!
//! The server around the router ([`server`]) caps connections and bounds every
//! wait on a client; bodies are read within a size limit, a deadline and a budget
//! shared by all connections ([`body`]); the batch body is parsed with its limits
//! applied while parsing ([`batch`]).

pub mod auth;
pub mod batch;
pub mod body;
pub mod conns;
mod backup;
mod console;
mod gov;
pub mod receipts;
pub mod redact;
mod health;
pub mod server;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, RwLockReadGuard};
use std::time::{Duration, Instant};

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use yrd_consensus::crypto::{Hash32, PublicKey};
use yrd_consensus::types::Height;
use yrd_ledger::access::Reader;
use yrd_ledger::genesis::IssuerInfo;
use yrd_ledger::store::{Ledger, Status, StoreError, TxRecord};
use yrd_ledger::tx::{TxBody, TxId, MAX_TX_BYTES};
use yrd_ledger::uscc::Uscc;

use crate::shared::{now_ms, Shared, SubmitError, MAX_BATCH};

pub use body::MAX_BODY_BYTES_IN_FLIGHT_LIMIT;
pub use server::{long_poll_cap, ServeLimits};

/// Largest body of `POST /v1/transactions`: one hex transaction plus JSON framing.
pub const MAX_SUBMIT_BODY_BYTES: usize = 2 * MAX_TX_BYTES + 1024;
/// Largest body of `POST /v1/transactions/batch`: room for [`MAX_BATCH`]
/// transactions of the largest size (about 16 MiB), so every valid batch fits.
pub const MAX_BATCH_BODY_BYTES: usize = MAX_BATCH * (2 * MAX_TX_BYTES + 8) + 1024;
/// Default and largest `limit` of the by-issuer query.
pub const ISSUER_LIMIT_DEFAULT: u32 = 100;
pub const ISSUER_LIMIT_MAX: u32 = 1000;
/// Default and largest `timeout_ms` of `GET /v1/wait/{height}`.
pub const WAIT_TIMEOUT_DEFAULT_MS: u64 = 10_000;
pub const WAIT_TIMEOUT_MAX_MS: u64 = 30_000;

/// Content type of the `/metrics` answer.
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// The error body of every non-2xx answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    /// Human-readable reason.
    pub error: String,
    /// Machine-readable rule: a [`yrd_ledger::validate::TxError::code`] or one of
    /// the API's own (`bad_json`, `bad_body`, `bad_hex`, `bad_id`, `bad_uscc`, `bad_height`,
    /// `bad_query`, `bad_path`, `batch_too_large`, `body_too_large`, `body_timeout`, `not_found`,
    /// `method_not_allowed`, `not_attestation`, `sequence_pending`, `mempool_full`, `overloaded`, `busy`, `disk_low`,
    /// `too_many_connections`, `unavailable`, `internal`; access, docs/access.md: 401
    /// `signature_incomplete`, `bad_signature_header`, `stale_request`, `unknown_key`,
    /// `key_retired`, `bad_signature`, `replayed_request`; 403 `restricted`,
    /// `no_authorisation`, `authorisation_expired`, `authorisation_withdrawn`).
    pub code: String,
}

/// An error answer: status, rule code and reason.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    error: String,
    /// Seconds for a `Retry-After` header (503 `overloaded`).
    retry_after_s: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, error: impl Into<String>) -> ApiError {
        ApiError { status, code, error: error.into(), retry_after_s: None }
    }
    fn bad_request(code: &'static str, error: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, error)
    }
    fn not_found(error: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", error)
    }
    fn internal(error: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", error)
    }
    fn store(e: StoreError) -> ApiError {
        tracing::error!(error = %e, "ledger query failed");
        ApiError::internal(format!("ledger query failed: {e}"))
    }
    fn submit(e: &SubmitError) -> ApiError {
        let status = match e {
            SubmitError::Invalid(_) => StatusCode::BAD_REQUEST,
            SubmitError::Conflict(_) => StatusCode::CONFLICT,
            SubmitError::Busy(_) | SubmitError::DiskLow(_) | SubmitError::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            SubmitError::Unavailable(_) => StatusCode::INTERNAL_SERVER_ERROR,
            SubmitError::Halted { .. } => StatusCode::SERVICE_UNAVAILABLE,
        };
        let mut err = ApiError::new(status, e.code(), e.to_string());
        if let SubmitError::Overloaded(o) = e {
            err.retry_after_s = Some(o.retry_after_s);
        }
        err
    }
    pub fn status(&self) -> StatusCode {
        self.status
    }
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: self.error, code: self.code.to_string() };
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after_s {
            resp.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(s));
        }
        resp
    }
}

impl From<ApiError> for ErrorBody {
    fn from(e: ApiError) -> ErrorBody {
        ErrorBody { error: e.error, code: e.code.to_string() }
    }
}

type ApiResult<T> = Result<T, ApiError>;

// ---------------------------------------------------------------------------
// Extractors that answer in our error shape
// ---------------------------------------------------------------------------

/// A request type with its endpoint's body limit.
pub trait BodyLimit {
    const MAX_BODY_BYTES: usize;
}

impl BodyLimit for SubmitRequest {
    const MAX_BODY_BYTES: usize = MAX_SUBMIT_BODY_BYTES;
}

/// Reads a body within its endpoint's limit and the server's body limits, counting
/// bodies refused for the budget.
async fn read_body(req: Request, max_bytes: usize, app: &AppState) -> Result<body::ReadBody, ApiError> {
    body::read(req, max_bytes, &app.body).await.inspect_err(|e| {
        if e.code == "busy" {
            app.shared.metrics.api_bodies_refused.inc();
        }
    })
}

/// A JSON body. Content-Type is not required (the body is always parsed as JSON);
/// a body over the endpoint's limit gives 413, one not complete in time 408, one
/// that does not fit the in-flight budget 503, anything unparsable 400 with the
/// reason. The second field is the body's share of the budget, held until the
/// handler returns.
pub struct ApiJson<T>(pub T, Option<tokio::sync::OwnedSemaphorePermit>);

impl<T: DeserializeOwned + BodyLimit + Send> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &AppState) -> Result<Self, ApiError> {
        let body = read_body(req, T::MAX_BODY_BYTES, app).await?;
        parse_json_body(&body.bytes).map(|v| ApiJson(v, body.permit))
    }
}

/// How [`ApiJson`] reads a body: UTF-8 (RFC 8259 §8.1) checked first, as the
/// batch body's parser does — serde_json skips the strings of unknown keys
/// without checking them — then JSON into `T`; a refusal is 400 `bad_json`
/// with the reason.
pub fn parse_json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    batch::require_utf8(bytes).map_err(|e| ApiError::bad_request("bad_json", e.to_string()))?;
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request("bad_json", format!("invalid JSON body: {e}")))
}

/// The body of `POST /v1/transactions/batch`, parsed by [`batch::parse`] (limits
/// applied while parsing), with its share of the budget.
pub struct BatchBody(Vec<batch::Entry>, Option<tokio::sync::OwnedSemaphorePermit>);

impl FromRequest<AppState> for BatchBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &AppState) -> Result<Self, ApiError> {
        let body = read_body(req, MAX_BATCH_BODY_BYTES, app).await?;
        match batch::parse(&body.bytes) {
            Ok(entries) => Ok(BatchBody(entries, body.permit)),
            Err(e @ batch::BatchParseError::TooMany { .. }) => Err(ApiError::bad_request("batch_too_large", e.to_string())),
            Err(e @ batch::BatchParseError::EntryTooLarge { .. }) => Err(ApiError::bad_request("too_large", e.to_string())),
            Err(e @ (batch::BatchParseError::Json(_) | batch::BatchParseError::NotUtf8 { .. })) => {
                Err(ApiError::bad_request("bad_json", e.to_string()))
            }
        }
    }
}

/// A path parameter whose rejection is our JSON error.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| ApiPath(t))
            .map_err(|e| ApiError::bad_request("bad_path", e.body_text()))
    }
}

/// A query string whose rejection is our JSON error.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(t)| ApiQuery(t))
            .map_err(|e| ApiError::bad_request("bad_query", e.body_text()))
    }
}

/// Who sent the request ([`auth`]): anonymous, or a verified signed request
/// (checked once per request by [`authenticate`], on every route).
pub struct Signed(pub auth::Caller);

impl<S: Send + Sync> FromRequestParts<S> for Signed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(Signed(parts.extensions.get::<auth::Caller>().cloned().unwrap_or_else(auth::Caller::anonymous)))
    }
}

/// Middleware: a request carrying any `X-YRD-*` header is a signed request and is
/// verified here, on every route (a forged, stale or replayed one is refused 401
/// whatever it asks for); the caller goes into the request's extensions.
async fn authenticate(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    if !req.headers().keys().any(|k| k.as_str().starts_with("x-yrd-")) {
        return next.run(req).await;
    }
    let membership = match app.ledger() {
        Ok(l) => l.next_membership(),
        Err(e) => return e.into_response(),
    };
    let Some(node) = app.shared.queries.public() else {
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "cannot_record", "this node has no key: it cannot take signed requests").into_response();
    };
    match app.auth.authenticate(&app.shared.chain, &node, &membership, req.method(), req.uri(), req.headers(), now_ms()) {
        Ok(caller) => {
            if let (yrd_ledger::access::Viewer::Lender { .. }, Some(e)) = (&caller.viewer, behind_for_lenders(&app)) {
                return e.into_response();
            }
            req.extensions_mut().insert(caller.clone());
            let response = next.run(req).await;
            receipts::record_and_sign(&app.shared, &caller, response).await
        }
        Err(e) => e.into_response(),
    }
}

/// A node this many blocks or more behind the best height it knows of refuses
/// lenders' signed requests (503 `catching_up`): a lender's read is judged
/// against the consent at this node's tip, and a node behind has not seen a
/// withdrawal or an expiry the chain already holds. Not fewer: under load a
/// healthy node may trail its peers by a block or two for a moment.
pub const LENDER_READ_MAX_LAG_BLOCKS: u64 = 8;

/// The refusal of [`LENDER_READ_MAX_LAG_BLOCKS`]. Other readers' rights do not
/// lapse that way.
fn behind_for_lenders(app: &AppState) -> Option<ApiError> {
    let height = app.shared.height().0;
    let best = app.shared.health.lock().ok().map(|h| h.liveness.clone())?;
    if best.best_known_height < height.saturating_add(LENDER_READ_MAX_LAG_BLOCKS) {
        return None;
    }
    let mut e = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "catching_up",
        format!(
            "node {} is catching up (at height {height} of {} known): a lender's read is judged against the consent \
             at this node's tip, which may miss a withdrawal; ask another node, or retry when it has caught up",
            app.shared.name, best.best_known_height
        ),
    );
    e.retry_after_s = Some(1);
    Some(e)
}

// ---------------------------------------------------------------------------
// Wire types
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
pub struct SubmitRequest {
    /// Hex of the canonical `SignedTransaction` bytes.
    pub tx: String,
}

/// An accepted (or already pending) transaction.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Submitted {
    pub id: String,
    pub status: String,
}

/// One entry of a batch answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum BatchEntry {
    Ok(Submitted),
    Err(ErrorBody),
}

#[derive(Debug, Serialize)]
struct BatchResponse {
    results: Vec<BatchEntry>,
}

#[derive(Debug, Serialize)]
struct IssuerJson {
    name: String,
    region: String,
    key: String,
}

impl IssuerJson {
    fn of(i: &IssuerInfo) -> IssuerJson {
        IssuerJson { name: i.name.clone(), region: i.region.to_string(), key: i.key.to_hex() }
    }
}

/// A committed attestation or revocation (docs/api.md, "attestation object").
/// Fields that do not apply to the transaction type are `null`.
#[derive(Debug, Serialize)]
struct AttestationJson {
    id: String,
    status: &'static str,
    height: u64,
    block_hash: String,
    block_time_ms: u64,
    log_index: u64,
    issuer: IssuerJson,
    sequence: u64,
    #[serde(rename = "type")]
    tx_type: &'static str,
    subject: Option<String>,
    kind: Option<&'static str>,
    grade: Option<String>,
    severity: Option<&'static str>,
    evidence: Option<String>,
    issued_at_ms: u64,
    valid_from_ms: Option<u64>,
    valid_until_ms: Option<u64>,
    fields: Option<BTreeMap<String, String>>,
    revoked_by: Option<String>,
    revocation_reason: Option<&'static str>,
    target: Option<String>,
    reason: Option<&'static str>,
    tx: String,
}

fn attestation_json(ledger: &Ledger, r: &TxRecord) -> ApiResult<AttestationJson> {
    let t = &r.tx.tx;
    // The signer as it was at the record's height (keys rotate).
    let m = ledger.membership_at(r.height);
    let issuer = match (m.issuer_any(&t.issuer), m.agency(&t.issuer)) {
        (Some(i), _) => IssuerJson::of(i),
        (None, Some(a)) => IssuerJson { name: a.name.clone(), region: a.region.to_string(), key: t.issuer.to_hex() },
        (None, None) => IssuerJson { name: String::new(), region: String::new(), key: t.issuer.to_hex() },
    };
    let (revoked_by, revocation_reason) = match &r.status {
        Status::Revoked { by, reason } => (Some(by.to_hex()), Some(reason.as_str())),
        _ => (None, None),
    };
    let bytes = r.tx.encode().map_err(|e| ApiError::internal(format!("cannot encode stored transaction: {e}")))?;
    let mut out = AttestationJson {
        id: r.id.to_hex(),
        status: r.status.name(),
        height: r.height.0,
        block_hash: r.block_hash.to_hex(),
        block_time_ms: r.block_time_ms,
        log_index: r.log_index,
        issuer,
        sequence: t.sequence,
        tx_type: "attestation",
        subject: None,
        kind: None,
        grade: None,
        severity: None,
        evidence: None,
        issued_at_ms: 0,
        valid_from_ms: None,
        valid_until_ms: None,
        fields: None,
        revoked_by,
        revocation_reason,
        target: None,
        reason: None,
        tx: hex::encode(bytes),
    };
    match &t.body {
        TxBody::Attest(a) => {
            out.subject = Some(a.subject.as_str().to_string());
            out.kind = Some(a.kind.as_str());
            out.grade = a.grade.map(|g| g.letter().to_string());
            out.severity = a.severity.map(|s| s.as_str());
            out.evidence = Some(a.evidence.to_hex());
            out.issued_at_ms = a.issued_at_ms;
            out.valid_from_ms = Some(a.valid_from_ms);
            out.valid_until_ms = a.valid_until_ms;
            out.fields = Some(a.fields.iter().cloned().collect());
        }
        TxBody::Revoke(rv) => {
            out.tx_type = "revocation";
            out.evidence = rv.evidence.map(|e| e.to_hex());
            out.issued_at_ms = rv.issued_at_ms;
            out.target = Some(rv.target.to_hex());
            out.reason = Some(rv.reason.as_str());
        }
        TxBody::Propose(_) => out.tx_type = "proposal",
        TxBody::Approve(a) => {
            out.tx_type = "approval";
            out.target = Some(a.proposal.to_hex());
        }
        TxBody::Authorise(_) | TxBody::Withdraw(_) | TxBody::RecordQueries(_) => out.tx_type = t.body.type_name(),
    }
    Ok(out)
}

/// A transaction in a listing: in full, or redacted ([`redact::redact`]).
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum RecordJson {
    Full(Box<AttestationJson>),
    Redacted(redact::RedactedJson),
    /// In an issuer's listing: the sequence number alone (see [`by_issuer`]).
    RedactedSequence { redacted: bool, sequence: u64 },
}

fn attestations_json(reader: &Reader<'_>, records: &[TxRecord]) -> ApiResult<Vec<RecordJson>> {
    records
        .iter()
        .map(|r| match redact::redact(reader, &r.tx, r.height, r.log_index)? {
            Some(redacted) => Ok(RecordJson::Redacted(redacted)),
            None => Ok(RecordJson::Full(Box::new(attestation_json(reader.ledger(), r)?))),
        })
        .collect()
}

#[derive(Debug, Serialize)]
struct SubjectResponse {
    subject: String,
    height: u64,
    attestations: Vec<RecordJson>,
}

#[derive(Debug, Serialize)]
struct IssuerResponse {
    issuer: IssuerJson,
    attestations: Vec<RecordJson>,
    /// The issuer's highest committed sequence number.
    last_sequence: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct IssuerQuery {
    after: Option<u64>,
    limit: Option<u32>,
}

#[derive(Debug, Serialize)]
struct ValidatorRef {
    index: u32,
    name: String,
}

#[derive(Debug, Serialize)]
struct SignerJson {
    index: u32,
    name: String,
    /// Hex of the precommit signature (an addition to docs/api.md, for auditors).
    signature: String,
}

#[derive(Debug, Serialize)]
struct CertificateJson {
    round: u32,
    signers: Vec<SignerJson>,
}

#[derive(Debug, Serialize)]
struct BlockJson {
    height: u64,
    hash: String,
    parent: String,
    proposer: ValidatorRef,
    round: u32,
    timestamp_ms: u64,
    tx_count: u32,
    log_size: u64,
    log_root: String,
    subjects_root: String,
    /// Ids in block order; a transaction the caller may not read is redacted.
    transactions: Vec<TxRefJson>,
    certificate: Option<CertificateJson>,
}

/// A transaction of a block: its id, or its redacted form.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum TxRefJson {
    Id(String),
    Redacted(redact::RedactedJson),
}

#[derive(Debug, Serialize)]
struct PeerJson {
    name: Option<String>,
    key: String,
}

#[derive(Debug, Serialize)]
struct ValidatorJson {
    index: u32,
    name: String,
    region: String,
    key: String,
}

#[derive(Debug, Serialize)]
struct StatusResponse {
    chain_id: String,
    chain_name: String,
    node: String,
    /// This node's key (hex): what a signed request names in `X-YRD-Node` and
    /// signs, and what its query receipts are signed with. Null for a node
    /// without a key (it takes no signed requests).
    node_key: Option<String>,
    validator: bool,
    validator_index: Option<u32>,
    height: u64,
    round: u32,
    step: &'static str,
    last_block_hash: String,
    last_block_time_ms: u64,
    log_size: u64,
    mempool_size: usize,
    mempool_capacity: usize,
    peers: Vec<PeerJson>,
    validators: Vec<ValidatorJson>,
    /// Set when a certified block fails this node's validation (it stopped following the chain).
    halted: Option<crate::health::Halt>,
    /// This node's clock against the other validators' (null until a proposal was seen).
    clock: Option<crate::health::ClockStatus>,
    /// The membership in force and the governance proposals pending.
    governance: gov::GovernanceStatus,
    /// Quorum connected, time since the last block, catching up (`api/health.rs`).
    liveness: crate::liveness::LivenessStatus,
    /// The peers of the config (`peers`) and where each stands: connected,
    /// connecting, dialing, unreachable (retried with backoff) or wrong_chain.
    configured_peers: Vec<crate::net::PeerDialStatus>,
}

#[derive(Debug, Deserialize)]
struct WaitQuery {
    timeout_ms: Option<u64>,
}

#[derive(Debug, Serialize)]
struct WaitResponse {
    height: u64,
    timed_out: bool,
}

// ---------------------------------------------------------------------------
// Router and server
// ---------------------------------------------------------------------------

#[derive(Clone)]
pub struct AppState {
    shared: Arc<Shared>,
    /// Set to `true` when the server shuts down: long polls return at once.
    /// Kept here (not only in `serve`) so a receiver never sees it dropped.
    stopping: Arc<watch::Sender<bool>>,
    /// Body deadline and in-flight budget.
    body: Arc<body::BodyLimits>,
    /// Signed requests: skew window and replay cache.
    auth: Arc<auth::RequestAuth>,
    /// Permits for long polls (`ServeLimits::max_long_polls`).
    long_polls: Arc<tokio::sync::Semaphore>,
    max_long_polls: usize,
}

impl AppState {
    fn ledger(&self) -> ApiResult<RwLockReadGuard<'_, Ledger>> {
        usable(self.shared.ledger.read().map_err(|_| ApiError::internal("ledger lock poisoned"))?)
    }

    /// Runs `f` with the ledger's read lock on tokio's blocking pool. Reads may
    /// decode whole blocks or build proofs over many of them (milliseconds to
    /// tens of milliseconds); on the runtime's few worker threads, which also
    /// carry the network, that would hold up gossip and consensus messages.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Shared, &Ledger) -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            let ledger = usable(shared.ledger.read().map_err(|_| ApiError::internal("ledger lock poisoned"))?)?;
            f(&shared, &ledger)
        })
        .await
        .map_err(|e| ApiError::internal(format!("read task failed: {e}")))?
    }

    /// [`AppState::read`], except that when `small` says (under the read lock)
    /// that this read is short, it runs at once on the calling worker thread:
    /// handing a read of a few hundred microseconds to the blocking pool and back
    /// takes two thread wake-ups (futex: ~9 % of a serving node's CPU against
    /// ~28 % for building the reports themselves, BENCHMARKS.md "Authorised
    /// queries"). The other reads go to the pool.
    async fn read_small_inline<T: Send + 'static>(
        &self,
        small: impl FnOnce(&Ledger) -> ApiResult<bool>,
        f: impl FnOnce(&Shared, &Ledger) -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        {
            let ledger = self.ledger()?;
            if small(&ledger)? {
                return f(&self.shared, &ledger);
            }
        }
        self.read(f).await
    }
}

/// The ledger, unless a block write to it failed: the node is stopping, and
/// the store may show part of a block that was never acknowledged.
fn usable(ledger: RwLockReadGuard<'_, Ledger>) -> ApiResult<RwLockReadGuard<'_, Ledger>> {
    match ledger.write_failed() {
        Some(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unavailable",
            format!("node unavailable: its store failed ({e}); it is stopping"),
        )),
        None => Ok(ledger),
    }
}

/// The API router (every endpoint of docs/api.md, `/metrics`, JSON 404/405), with
/// the default body limits. [`serve`] adds the connection limits around it.
pub fn router(shared: Arc<Shared>) -> Router {
    let limits = ServeLimits::default();
    build(AppState {
        shared,
        stopping: Arc::new(watch::channel(false).0),
        body: Arc::new(body::BodyLimits::new(limits.body_timeout, limits.max_body_bytes_in_flight)),
        auth: Arc::new(auth::RequestAuth::new(limits.request_skew_ms)),
        long_polls: Arc::new(tokio::sync::Semaphore::new(limits.max_long_polls)),
        max_long_polls: limits.max_long_polls,
    })
}

fn build(state: AppState) -> Router {
    Router::new()
        .route("/v1/transactions", post(submit_one))
        .route("/v1/transactions/batch", post(submit_batch))
        .route("/v1/attestations/{id}", get(get_attestation))
        .route("/v1/subjects/{uscc}/attestations", get(by_subject))
        .route("/v1/issuers/{name}/attestations", get(by_issuer))
        .route("/v1/blocks/latest", get(latest_block))
        .route("/v1/blocks/{height}", get(block_at))
        .route("/v1/status", get(status))
        .route("/v1/wait/{height}", get(wait))
        .route("/v1/proofs/attestations/{id}", get(proof_bundle))
        .route("/v1/proofs/subjects/{uscc}", get(proof_report))
        .route("/v1/proofs/consistency", get(proof_consistency))
        .route("/v1/audit/attestations/{id}", get(audit_trace))
        .route("/v1/audit/queries/{uscc}", get(audit_queries))
        .route("/v1/governance/proposals", get(gov::proposals))
        .route("/v1/governance/proposals/{id}", get(gov::proposal))
        .route("/v1/governance/membership", get(gov::membership))
        .route("/metrics", get(metrics))
        .route("/v1/backup/blocks", get(backup::blocks))
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/console", get(console::index))
        .route("/console/", get(console::index))
        .route("/console/{asset}", get(console::asset))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(middleware::from_fn(trace_request))
        .with_state(state)
}

/// Serves the API on `listener` within `limits` until `shutdown` completes, then
/// stops accepting, wakes pending long polls and lets requests in progress finish
/// (for at most [`server::SHUTDOWN_GRACE`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stopping = Arc::new(watch::channel(false).0);
    let body = Arc::new(body::BodyLimits::new(limits.body_timeout, limits.max_body_bytes_in_flight));
    let auth = Arc::new(auth::RequestAuth::new(limits.request_skew_ms));
    let long_polls = Arc::new(tokio::sync::Semaphore::new(limits.max_long_polls));
    let app = build(AppState { shared: shared.clone(), stopping: stopping.clone(), body, auth, long_polls, max_long_polls: limits.max_long_polls });
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(
            %addr,
            max_connections = limits.max_connections,
            max_long_polls = limits.max_long_polls,
            header_timeout_ms = limits.header_timeout.as_millis() as u64,
            idle_timeout_ms = limits.idle_timeout.as_millis() as u64,
            body_timeout_ms = limits.body_timeout.as_millis() as u64,
            max_body_bytes_in_flight = limits.max_body_bytes_in_flight,
            "HTTP API listening"
        );
    }
    let conns = Arc::new(conns::Conns::new(limits.max_connections, crate::fdlimit::CLOSING_SLACK));
    server::run(listener, app, conns, &limits, &shared.metrics, stopping, shutdown).await;
    Ok(())
}

/// One debug event per request (method, path, status, latency); a warning for 5xx
/// other than 503.
async fn trace_request(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let uri = req.uri().clone();
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let latency_us = start.elapsed().as_micros() as u64;
    // 503 is back-pressure (mempool full, body budget used up), which a flood of
    // clients can cause thousands of times a second: not worth a warning each.
    if resp.status().is_server_error() && resp.status() != StatusCode::SERVICE_UNAVAILABLE {
        tracing::warn!(%method, path = uri.path(), status, latency_us, "api request failed");
    } else {
        tracing::debug!(%method, path = uri.path(), status, latency_us, "api request");
    }
    resp
}

async fn not_found(req: Request) -> Response {
    let err = ApiError::not_found(format!("no route for {} {}", req.method(), req.uri().path()));
    refuse_unread(req, err).await
}

async fn method_not_allowed(req: Request) -> Response {
    let err = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("method {} is not allowed on {}", req.method(), req.uri().path()),
    );
    refuse_unread(req, err).await
}

/// Most of a request body that no handler wants (an unknown route, a wrong
/// method) is read and discarded, so that the connection can carry the client's
/// next request: a few requests' worth.
const UNREAD_BODY_DRAIN_BYTES: usize = 64 * 1024;

/// How long such a body may take to arrive before the connection is given up.
const UNREAD_BODY_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Answers `err` to a request whose body no handler reads. A body left unread
/// makes the server close the connection after the answer; a client that kept it
/// for its next request would find it closed (an I/O error instead of an answer).
/// So the body is drained when it is small and arrives promptly, and otherwise the
/// answer carries `Connection: close` so that clients do not reuse the connection.
async fn refuse_unread(req: Request, err: ApiError) -> Response {
    let conn = req.extensions().get::<body::ConnHandle>().cloned();
    let deadline = tokio::time::Instant::now() + UNREAD_BODY_DRAIN_TIMEOUT;
    let stream = req.into_body().into_data_stream();
    let drained = body::drain(stream, 0, UNREAD_BODY_DRAIN_BYTES, deadline, conn.as_ref()).await;
    let mut resp = err.into_response();
    if !drained {
        resp.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
    }
    resp
}

// ---------------------------------------------------------------------------
// Transactions
// ---------------------------------------------------------------------------

/// The `tx` field of a submission: at most [`MAX_TX_BYTES`] bytes of hex (the fuzz
/// target `api_submit` calls it as the handler does).
pub fn decode_tx_hex(s: &str) -> ApiResult<Vec<u8>> {
    if s.len() > 2 * MAX_TX_BYTES {
        return Err(ApiError::bad_request(
            "too_large",
            format!("transaction is {} hex characters, more than the {MAX_TX_BYTES}-byte limit", s.len()),
        ));
    }
    hex::decode(s).map_err(|e| ApiError::bad_request("bad_hex", format!("tx is not valid hex: {e}")))
}

fn pending(id: &TxId) -> Submitted {
    Submitted { id: id.to_hex(), status: "pending".into() }
}

async fn submit_one(State(app): State<AppState>, ApiJson(req, _budget): ApiJson<SubmitRequest>) -> ApiResult<Response> {
    app.shared.check_overload(1).map_err(|e| ApiError::submit(&e))?;
    let bytes = decode_tx_hex(&req.tx)?;
    let mut results = app.shared.submit(&[&bytes]).await;
    match results.pop() {
        Some(Ok((id, _))) => Ok((StatusCode::ACCEPTED, Json(pending(&id))).into_response()),
        Some(Err(e)) => Err(ApiError::submit(&e)),
        None => Err(ApiError::internal("admission returned no result")),
    }
}

/// `POST /v1/transactions/batch`. The body's budget share (`_budget`) is held
/// until the answer is built: the decoded transactions are at most half the body.
async fn submit_batch(State(app): State<AppState>, BatchBody(entries, _budget): BatchBody) -> ApiResult<Json<BatchResponse>> {
    // Refused as a whole, before any hex or signature work, if the batch would
    // wait longer than the admission bound (503 `overloaded`, Retry-After).
    app.shared.check_overload(entries.len()).map_err(|e| ApiError::submit(&e))?;
    let mut results: Vec<Option<BatchEntry>> = vec![None; entries.len()];
    let mut decoded = Vec::with_capacity(entries.len());
    let mut slots = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        match entry {
            Ok(b) => {
                decoded.push(b);
                slots.push(i);
            }
            Err(e) => {
                results[i] = Some(BatchEntry::Err(ErrorBody { error: format!("tx is not valid hex: {e}"), code: "bad_hex".into() }))
            }
        }
    }
    // Signature checks of a whole batch take tens of milliseconds: keep them off
    // the async workers (`Shared::submit` split in two: the CPU work runs on the
    // blocking pool and only the gossip hand-off is awaited).
    let shared = app.shared.clone();
    let (admitted, fresh) = tokio::task::spawn_blocking(move || {
        let refs: Vec<&[u8]> = decoded.iter().map(|b| b.as_slice()).collect();
        shared.admit_client(&refs)
    })
    .await
    .map_err(|e| ApiError::internal(format!("admission task failed: {e}")))?;
    for (slot, r) in slots.into_iter().zip(admitted) {
        results[slot] = Some(match r {
            Ok((id, _)) => BatchEntry::Ok(pending(&id)),
            Err(e) => BatchEntry::Err(ErrorBody { error: e.to_string(), code: e.code().to_string() }),
        });
    }
    app.shared.queue_gossip(fresh).await;
    let results = results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                BatchEntry::Err(ErrorBody { error: "admission returned no result".into(), code: "internal".into() })
            })
        })
        .collect();
    Ok(Json(BatchResponse { results }))
}

// ---------------------------------------------------------------------------
// Attestations
// ---------------------------------------------------------------------------

fn parse_id(s: &str) -> ApiResult<TxId> {
    if s.len() != 64 {
        return Err(ApiError::bad_request(
            "bad_id",
            format!("attestation id must be 64 hex characters, got {}", s.chars().count()),
        ));
    }
    Hash32::from_hex(s).map(TxId).map_err(|e| ApiError::bad_request("bad_id", format!("attestation id is not hex: {e}")))
}

async fn get_attestation(State(app): State<AppState>, Signed(caller): Signed, ApiPath(id): ApiPath<String>) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let now = now_ms();
    app.read(move |shared, ledger| {
        if let Some(r) = ledger.tx_record(&id, now).map_err(ApiError::store)? {
            let reader = caller.reader(ledger);
            redact::require(&reader, &r.tx, r.height, r.log_index)?;
            return Ok(Json(attestation_json(ledger, &r)?).into_response());
        }
        // Ledger, then mempool: the lock order of `Shared::admit`.
        let is_pending = shared.mempool.lock().map_err(|_| ApiError::internal("mempool lock poisoned"))?.contains(&id);
        if is_pending {
            return Ok(Json(pending(&id)).into_response());
        }
        Err(ApiError::not_found(format!("attestation {id} not found")))
    })
    .await
}

async fn by_subject(
    State(app): State<AppState>,
    Signed(caller): Signed,
    ApiPath(input): ApiPath<String>,
) -> ApiResult<Json<SubjectResponse>> {
    let subject =
        Uscc::parse(&input).map_err(|e| ApiError::bad_request("bad_uscc", format!("invalid USCC {input:?}: {e}")))?;
    let now = now_ms();
    app.read(move |_, ledger| {
        let reader = caller.reader(ledger);
        redact::require_coverage(&reader, &subject)?;
        let records = ledger.by_subject(&subject, now).map_err(ApiError::store)?;
        Ok(Json(SubjectResponse {
            subject: subject.as_str().to_string(),
            height: ledger.height().0,
            attestations: attestations_json(&reader, &records)?,
        }))
    })
    .await
}

/// An issuer of the membership in force by name, or by its current key in hex
/// (frozen issuers included).
fn find_issuer(m: &yrd_ledger::governance::Membership, name: &str) -> Option<IssuerInfo> {
    m.issuer_by_name(name)
        .or_else(|| PublicKey::from_hex(name).ok().and_then(|k| m.issuer_any(&k)))
        .cloned()
}

async fn by_issuer(
    State(app): State<AppState>,
    Signed(caller): Signed,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<IssuerQuery>,
) -> ApiResult<Json<IssuerResponse>> {
    let limit = q.limit.unwrap_or(ISSUER_LIMIT_DEFAULT);
    if limit == 0 || limit > ISSUER_LIMIT_MAX {
        return Err(ApiError::bad_request(
            "bad_query",
            format!("limit must be between 1 and {ISSUER_LIMIT_MAX}, got {limit}"),
        ));
    }
    let now = now_ms();
    app.read(move |_, ledger| {
        let issuer = find_issuer(&ledger.next_membership(), &name)
            .ok_or_else(|| ApiError::not_found(format!("issuer {name:?} is not an issuer of the membership in force")))?;
        let records = ledger.by_issuer(&issuer.key, q.after, limit as usize, now).map_err(ApiError::store)?;
        let reader = caller.reader(ledger);
        // A record the caller may not read is listed by its sequence number only
        // (paging goes on): its commitment and place (height, log index), as the
        // subject's listing shows them, would name the issuer of that redacted entry.
        let attestations = attestations_json(&reader, &records)?
            .into_iter()
            .zip(&records)
            .map(|(j, r)| match j {
                RecordJson::Redacted(_) => RecordJson::RedactedSequence { redacted: true, sequence: r.tx.tx.sequence },
                full => full,
            })
            .collect();
        Ok(Json(IssuerResponse {
            issuer: IssuerJson::of(&issuer),
            attestations,
            last_sequence: ledger.last_sequence(&issuer.key).map_err(ApiError::store)?,
        }))
    })
    .await
}

// ---------------------------------------------------------------------------
// Blocks, status, wait, metrics
// ---------------------------------------------------------------------------

fn parse_height(s: &str) -> ApiResult<Height> {
    s.parse::<u64>()
        .map(Height)
        .map_err(|_| ApiError::bad_request("bad_height", format!("height {s:?} is not a non-negative integer")))
}

/// The name of validator `index` of the set in force at `height`.
fn validator_name(ledger: &Ledger, height: Height, index: u32) -> String {
    ledger.membership_at(height).validators.get(index as usize).map(|v| v.name.clone()).unwrap_or_default()
}

fn block_json(reader: &Reader<'_>, height: Height) -> ApiResult<BlockJson> {
    let ledger = reader.ledger();
    let tip = ledger.height();
    let not_found = || ApiError::not_found(format!("block {height} not found (the chain is at height {tip})"));
    if height.0 == 0 || height > tip {
        return Err(not_found());
    }
    let block = ledger.block(height).map_err(ApiError::store)?.ok_or_else(not_found)?;
    let certificate = ledger.certificate(height).map_err(ApiError::store)?;
    let h = &block.header;
    let hash = h.hash().map_err(|e| ApiError::internal(format!("cannot hash block header: {e}")))?;
    let ids = block.tx_ids().map_err(|e| ApiError::internal(format!("cannot hash block transactions: {e}")))?;
    let first_log_index = h.log_size - u64::from(h.tx_count);
    let transactions = block
        .txs
        .iter()
        .zip(&ids)
        .enumerate()
        .map(|(i, (tx, id))| match redact::redact(reader, tx, height, first_log_index + i as u64)? {
            Some(r) => Ok(TxRefJson::Redacted(r)),
            None => Ok(TxRefJson::Id(id.to_hex())),
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(BlockJson {
        height: h.height.0,
        hash: hash.to_hex(),
        parent: h.parent.to_hex(),
        proposer: ValidatorRef { index: h.proposer.0, name: validator_name(ledger, height, h.proposer.0) },
        round: h.round.0,
        timestamp_ms: h.timestamp_ms,
        tx_count: h.tx_count,
        log_size: h.log_size,
        log_root: h.log_root.to_hex(),
        subjects_root: h.subjects_root.to_hex(),
        transactions,
        certificate: certificate.map(|c| CertificateJson {
            round: c.round.0,
            signers: c
                .signatures
                .iter()
                .map(|(i, s)| SignerJson { index: i.0, name: validator_name(ledger, height, i.0), signature: s.to_hex() })
                .collect(),
        }),
    })
}

async fn block_at(State(app): State<AppState>, Signed(caller): Signed, ApiPath(height): ApiPath<String>) -> ApiResult<Json<BlockJson>> {
    let height = parse_height(&height)?;
    app.read(move |_, ledger| Ok(Json(block_json(&caller.reader(ledger), height)?))).await
}

async fn latest_block(State(app): State<AppState>, Signed(caller): Signed) -> ApiResult<Json<BlockJson>> {
    app.read(move |_, ledger| {
        if ledger.height().0 == 0 {
            return Err(ApiError::not_found("no block has been committed yet"));
        }
        Ok(Json(block_json(&caller.reader(ledger), ledger.height())?))
    })
    .await
}

async fn status(State(app): State<AppState>) -> ApiResult<Json<StatusResponse>> {
    let s = &app.shared;
    let poisoned = |what: &str| ApiError::internal(format!("{what} lock poisoned"));
    let genesis = &s.genesis;
    let (height, last_block_hash, last_block_time_ms, log_size, governance, validators, in_force) = {
        let ledger = app.ledger()?;
        let next = ledger.height().next();
        (
            ledger.height().0,
            ledger.last_hash().to_hex(),
            ledger.last_header().map_or(genesis.genesis_time_ms, |h| h.timestamp_ms),
            ledger.log_size(),
            gov::governance_status(&ledger)?,
            gov::validators_at(&ledger, next),
            ledger.next_membership(),
        )
    };
    let consensus = *s.consensus.lock().map_err(|_| poisoned("consensus"))?;
    let (mempool_size, mempool_capacity) = {
        let m = s.mempool.lock().map_err(|_| poisoned("mempool"))?;
        (m.len(), m.capacity())
    };
    let peer_keys = s.peers.lock().map_err(|_| poisoned("peers"))?.clone();
    let health = s.health.lock().map_err(|_| poisoned("health"))?.clone();
    let peer_name = |k: &PublicKey| {
        in_force
            .validators
            .iter()
            .find(|v| &v.key == k)
            .map(|v| v.name.clone())
            .or_else(|| in_force.observers.iter().find(|o| &o.key == k).map(|o| o.name.clone()))
    };
    Ok(Json(StatusResponse {
        chain_id: s.chain.to_hex(),
        chain_name: genesis.chain_name.clone(),
        node: s.name.clone(),
        node_key: s.queries.public().map(|k| k.to_hex()),
        validator: consensus.validator_index.is_some(),
        validator_index: consensus.validator_index,
        height,
        round: consensus.round.0,
        step: consensus.step,
        last_block_hash,
        last_block_time_ms,
        log_size,
        mempool_size,
        mempool_capacity,
        peers: peer_keys.iter().map(|k| PeerJson { name: peer_name(k), key: k.to_hex() }).collect(),
        validators,
        halted: health.halt,
        clock: health.clock,
        governance,
        liveness: self::health::liveness(s, &in_force, &peer_keys, height),
        configured_peers: health.configured_peers,
    }))
}

async fn wait(
    State(app): State<AppState>,
    ApiPath(height): ApiPath<String>,
    ApiQuery(q): ApiQuery<WaitQuery>,
) -> ApiResult<Json<WaitResponse>> {
    let target = parse_height(&height)?;
    let timeout = Duration::from_millis(q.timeout_ms.unwrap_or(WAIT_TIMEOUT_DEFAULT_MS).min(WAIT_TIMEOUT_MAX_MS));
    if app.shared.height() >= target {
        return Ok(Json(WaitResponse { height: app.shared.height().0, timed_out: false }));
    }
    // Held until the answer: at most `max_long_polls` wait at once.
    let Ok(_permit) = app.long_polls.clone().try_acquire_owned() else {
        app.shared.metrics.api_long_polls_refused.inc();
        let mut err = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!(
                "too many long polls: {} requests already wait for a height on this node, as many as half of \
                 its connections may; retry later or poll GET /v1/status",
                app.max_long_polls
            ),
        );
        err.retry_after_s = Some(1);
        return Err(err);
    };
    let mut committed = app.shared.committed.subscribe();
    let mut stopping = app.stopping.subscribe();
    let reached = tokio::select! {
        r = tokio::time::timeout(timeout, committed.wait_for(|h| *h >= target)) => matches!(r, Ok(Ok(_))),
        _ = stopping.wait_for(|s| *s) => false,
    };
    let height = app.shared.height();
    Ok(Json(WaitResponse { height: height.0, timed_out: !reached && height < target }))
}

async fn metrics(State(app): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], app.shared.metrics.render()).into_response()
}

// ---------------------------------------------------------------------------
// Proofs and audit (docs/proofs.md): files a lender or auditor verifies offline
// ---------------------------------------------------------------------------

fn proof_error(e: yrd_ledger::proof::BuildError) -> ApiError {
    use yrd_ledger::proof::BuildError;
    match e {
        BuildError::NotFound(_) | BuildError::NoBlocks | BuildError::NoSuchHeight { .. } => ApiError::not_found(e.to_string()),
        BuildError::NotAttestation { .. } => ApiError::bad_request("not_attestation", e.to_string()),
        BuildError::HeightsOutOfOrder { .. } | BuildError::NoSuchEntries { .. } => ApiError::bad_request("bad_query", e.to_string()),
        BuildError::Store(e) => ApiError::store(e),
        BuildError::Codec(e) => ApiError::internal(format!("cannot encode proof: {e}")),
    }
}

/// 403 unless the caller reads committed transaction `id` in full (a proof
/// bundle or trace holds its bytes). Unknown ids pass (the builder says 404).
/// The subject's other records are not in the file: a bundle carries the
/// page of the subject record with this attestation's entry alone.
fn require_tx(reader: &Reader<'_>, id: &TxId, now_ms: u64) -> ApiResult<Option<Uscc>> {
    let ledger = reader.ledger();
    let Some(r) = ledger.tx_record(id, now_ms).map_err(ApiError::store)? else { return Ok(None) };
    redact::require(reader, &r.tx, r.height, r.log_index)?;
    // A bundle of a revoked attestation holds the revocation's bytes too.
    if let Status::Revoked { by, .. } = &r.status {
        if let Some(rv) = ledger.tx_record(by, now_ms).map_err(ApiError::store)? {
            redact::require(reader, &rv.tx, rv.height, rv.log_index)?;
        }
    }
    Ok(match &r.tx.tx.body {
        TxBody::Attest(a) => Some(a.subject),
        _ => None,
    })
}

async fn proof_bundle(
    State(app): State<AppState>,
    Signed(caller): Signed,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<yrd_ledger::proof::Bundle>> {
    let id = parse_id(&id)?;
    let now = now_ms();
    app.read(move |_, ledger| {
        let reader = caller.reader(ledger);
        require_tx(&reader, &id, now)?;
        // The bundle's subject record is the page of this entry alone: nothing to redact.
        yrd_ledger::proof::bundle(ledger, &id).map(Json).map_err(proof_error)
    })
    .await
}

/// `?from=&limit=` of a subject report: the page of records `from ..
/// from + limit` (default: from 0, [`REPORT_PAGE_ENTRIES_DEFAULT`] records).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    from: Option<u64>,
    limit: Option<u64>,
}

/// Records per report page when `limit` is not given: a subject with up to this
/// many records gets its complete report from one request (~0.4 MB of JSON);
/// bigger ones page with `from` (the cap is `MAX_REPORT_PAGE_ENTRIES`).
const REPORT_PAGE_ENTRIES_DEFAULT: u64 = 256;

/// Report pages of at most this many records are built on the worker thread
/// that received the request ([`AppState::read_small_inline`]): about 20 µs of
/// CPU per record in a 60,000-transaction log (BENCHMARKS.md "Authorised
/// queries"), tens of µs when each record lies in another block, so well under
/// a millisecond; longer pages go to the blocking pool, so that a worker, which
/// also carries gossip and consensus, never stalls for long.
const INLINE_REPORT_ENTRIES_MAX: u64 = 16;

/// Initial size of a report's JSON buffer: the fixed part (anchor, subject
/// proof, record view) and, per record on the page, about what a record with
/// its inclusion proof takes (~2 KB, a revoked one twice that), so the buffer
/// rarely grows while the report is written.
fn report_json_capacity(entries: u64) -> usize {
    8 * 1024 + (entries.min(MAX_REPORT_JSON_ENTRIES_ESTIMATE) as usize) * 2560
}

/// Records counted in [`report_json_capacity`] at most (a bigger page grows its buffer).
const MAX_REPORT_JSON_ENTRIES_ESTIMATE: u64 = 256;

/// A JSON answer written once into a buffer of `capacity` bytes (axum's `Json`
/// starts at 128 bytes and doubles, copying the answer about seven times for a
/// 12 KB report).
fn json_sized<T: Serialize>(value: &T, capacity: usize) -> ApiResult<Response> {
    let mut buf = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut buf, value).map_err(|e| ApiError::internal(format!("cannot write the answer as JSON: {e}")))?;
    Ok(([(header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/json"))], buf).into_response())
}

async fn proof_report(
    State(app): State<AppState>,
    Signed(caller): Signed,
    ApiPath(input): ApiPath<String>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> ApiResult<Response> {
    use yrd_ledger::proof::MAX_REPORT_PAGE_ENTRIES;
    let subject =
        Uscc::parse(&input).map_err(|e| ApiError::bad_request("bad_uscc", format!("invalid USCC {input:?}: {e}")))?;
    let from = q.from.unwrap_or(0);
    let limit = q.limit.unwrap_or(REPORT_PAGE_ENTRIES_DEFAULT);
    if limit == 0 || limit > MAX_REPORT_PAGE_ENTRIES {
        return Err(ApiError::bad_request(
            "bad_query",
            format!("limit {limit}: a page holds 1 to {MAX_REPORT_PAGE_ENTRIES} records (ask for more pages with from)"),
        ));
    }
    // Records on the page: the page is cut at the record's end.
    let page_entries = |ledger: &Ledger| -> ApiResult<u64> {
        let count = ledger.subject_head(&subject).map_err(ApiError::store)?.map_or(0, |h| h.count);
        Ok(count.saturating_sub(from).min(limit))
    };
    let small = move |ledger: &Ledger| Ok(page_entries(ledger)? <= INLINE_REPORT_ENTRIES_MAX);
    app.read_small_inline(small, move |_, ledger| {
        let reader = caller.reader(ledger);
        redact::require_coverage(&reader, &subject)?;
        // Records the caller may not read are in the report as their commitments only.
        let shown = redact::visible_entries(&reader, &subject, from, limit)?;
        let report =
            yrd_ledger::proof::report_page(ledger, &subject, from, limit, &|e| shown.contains(&e.id)).map_err(proof_error)?;
        json_sized(&report, report_json_capacity(report.entries.len() as u64))
    })
    .await
}

#[derive(Debug, Deserialize)]
struct ConsistencyQuery {
    from: u64,
    to: u64,
}

async fn proof_consistency(
    State(app): State<AppState>,
    ApiQuery(q): ApiQuery<ConsistencyQuery>,
) -> ApiResult<Json<yrd_ledger::proof::Consistency>> {
    app.read(move |_, ledger| {
        yrd_ledger::proof::consistency(ledger, Height(q.from), Height(q.to)).map(Json).map_err(proof_error)
    })
    .await
}

async fn audit_trace(
    State(app): State<AppState>,
    Signed(caller): Signed,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<yrd_ledger::proof::Trace>> {
    let id = parse_id(&id)?;
    let now = now_ms();
    app.read(move |_, ledger| {
        let reader = caller.reader(ledger);
        require_tx(&reader, &id, now)?;
        yrd_ledger::proof::trace(ledger, &id).map(Json).map_err(proof_error)
    })
    .await
}

#[derive(Debug, Deserialize)]
struct QueriesQuery {
    /// First height to list query records from (default 1).
    from: Option<u64>,
}

/// `GET /v1/audit/queries/{uscc}`: who read the subject's restricted records —
/// a `yrd-query-audit` file (every query record about the subject from height
/// `from`, each in its certified block, with the lenders' signed requests),
/// verifiable offline (`yrd audit queries`, `yrd verify`). Agencies (an
/// enterprise asks through its agency; auditors act for one) see every entry; a
/// lender sees its own queries only; anyone else is refused 403 `restricted`.
async fn audit_queries(
    State(app): State<AppState>,
    Signed(caller): Signed,
    ApiPath(input): ApiPath<String>,
    ApiQuery(q): ApiQuery<QueriesQuery>,
) -> ApiResult<Json<yrd_ledger::proof_queries::QueryAudit>> {
    use yrd_ledger::access::Viewer;
    let subject =
        Uscc::parse(&input).map_err(|e| ApiError::bad_request("bad_uscc", format!("invalid USCC {input:?}: {e}")))?;
    let lender = match &caller.viewer {
        Viewer::Agency { .. } => None,
        Viewer::Lender { name } => Some(name.clone()),
        Viewer::Anonymous | Viewer::Issuer { .. } => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "restricted",
                "query records are read by agencies (sign with an agency's admin key) and by each lender for its own queries",
            ))
        }
    };
    let from = Height(q.from.unwrap_or(1));
    app.read(move |_, ledger| {
        let keep = |ledger: &Ledger, height: Height, e: &yrd_ledger::queries::QueryEntry| match &lender {
            None => true,
            Some(name) => {
                yrd_ledger::consent::lender_name(&ledger.membership_at(height), &e.request.key).as_ref() == Some(name)
            }
        };
        yrd_ledger::proof_queries::query_audit(ledger, &subject, from, &keep).map(Json).map_err(proof_error)
    })
    .await
}
