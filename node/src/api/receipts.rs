//! Query receipts (docs/access.md "Query receipts"): after a lender's signed
//! request is answered with restricted records an authorisation opened, the
//! query is queued to be recorded on chain ([`crate::queries`]) and the answer
//! carries a receipt signed by this node's key, one per subject opened:
//!
//! - `X-YRD-Receipt`: hex of `canonical(Receipt)` — chain, this node's key, the
//!   digest of the lender's signed request, the subject, the authorisation, the
//!   SHA-256 of the answer body, the time and the committed height served at;
//! - `X-YRD-Receipt-Signature`: hex of this node's ed25519 signature over
//!   `signing_bytes("api/receipt", those bytes)`.
//!
//! The lender keeps both with the answer: they prove what this node showed it,
//! and, with the chain, whether the node recorded the query. If the query
//! cannot be queued (queue full, or this node cannot sign records) the answer
//! is replaced by a 503: a restricted record is never served unrecorded.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use yrd_consensus::crypto::sha256;
use yrd_ledger::access::Viewer;
use yrd_ledger::queries::QueryEntry;

use super::auth::Caller;
use super::ApiError;
use crate::queries::RecordError;
use crate::shared::{now_ms, Shared};

pub const HEADER_RECEIPT: &str = "x-yrd-receipt";
pub const HEADER_RECEIPT_SIGNATURE: &str = "x-yrd-receipt-signature";

/// Largest answer body digested for a receipt: the largest file the API builds
/// (a subject report or proof file, `yrd_ledger::proof::MAX_FILE_BYTES`).
pub const MAX_RECORDED_RESPONSE_BYTES: usize = yrd_ledger::proof::MAX_FILE_BYTES;

fn refuse(shared: &Shared, e: RecordError) -> Response {
    if matches!(e, RecordError::QueueFull { .. }) {
        shared.metrics.queries_refused.inc();
    }
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.code(), e.to_string()).into_response()
}

/// Records the query `response` answers (if it showed a lender restricted
/// records) and adds the receipts; see the module docs.
pub async fn record_and_sign(shared: &Shared, caller: &Caller, response: Response) -> Response {
    let (Some(request), Viewer::Lender { .. }) = (&caller.request, &caller.viewer) else { return response };
    let opened = caller.opened.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if opened.authorisations.is_empty() || !response.status().is_success() {
        return response;
    }
    let Some(key) = shared.queries.key() else { return refuse(shared, RecordError::CannotRecord) };
    let in_force = shared.ledger.read().map(|l| l.next_membership().node_by_key(&key.public()).is_some()).unwrap_or(false);
    if !in_force {
        return refuse(shared, RecordError::CannotRecord);
    }
    if let Err(e) = shared.queries.has_room(opened.authorisations.len()) {
        return refuse(shared, e);
    }
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_RECORDED_RESPONSE_BYTES).await {
        Ok(b) => b,
        Err(e) => return ApiError::internal(format!("cannot read the answer to digest it for its receipt: {e}")).into_response(),
    };
    let digest = sha256(&[&bytes]);
    let served_at_ms = now_ms();
    let entries: Vec<QueryEntry> = opened
        .authorisations
        .iter()
        .map(|(subject, authorisation)| QueryEntry {
            request: request.clone(),
            subject: *subject,
            authorisation: *authorisation,
            response: digest,
            served_at_ms,
            height: opened.height,
        })
        .collect();
    let mut receipts = Vec::with_capacity(entries.len());
    for e in &entries {
        let signed = e.receipt(&shared.chain, &key.public()).and_then(|r| Ok((r.encode()?, r.sign(key)?)));
        match signed {
            Ok((bytes, signature)) => receipts.push((hex::encode(bytes), signature.to_hex())),
            Err(e) => return ApiError::internal(format!("cannot sign the receipt: {e}")).into_response(),
        }
    }
    if let Err(e) = shared.queries.record(entries, &shared.metrics) {
        return refuse(shared, e);
    }
    let mut response = Response::from_parts(parts, Body::from(bytes));
    for (receipt, signature) in receipts {
        // Hex is always a valid header value.
        if let (Ok(r), Ok(s)) = (HeaderValue::from_str(&receipt), HeaderValue::from_str(&signature)) {
            response.headers_mut().append(HEADER_RECEIPT, r);
            response.headers_mut().append(HEADER_RECEIPT_SIGNATURE, s);
        }
    }
    response
}
