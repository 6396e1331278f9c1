//! Redaction (docs/access.md "What each route shows"): the one function every
//! read route passes every transaction it would show through.
//!
//! [`redact`] asks the ledger's rule ([`Reader::visible`]) and gives either
//! nothing (the caller reads the transaction in full) or the redacted form: the
//! RFC 9162 leaf hash of the transaction (`H(0x00 ‖ canonical(tx))`, which an
//! inclusion proof against a certified log root checks), its height and its log
//! index — no id, type, kind, subject, issuer, grade, fields, evidence or bytes.
//! Routes that show one transaction ([`require`]) answer 403 instead, with the
//! reason the caller cannot read it and nothing about the record.

use std::collections::HashSet;

use axum::http::StatusCode;
use serde::Serialize;
use yrd_consensus::types::Height;
use yrd_ledger::access::{Reader, Viewer};
use yrd_ledger::consent::{Coverage, GrantState};
use yrd_ledger::tx::{SignedTransaction, TxId};
use yrd_ledger::uscc::Uscc;

use super::{ApiError, ApiResult};

/// A transaction the caller may not read, as listings show it.
#[derive(Debug, Clone, Serialize)]
pub struct RedactedJson {
    /// Always `true`: tells a redacted entry from a full one.
    pub redacted: bool,
    /// Hex of the RFC 9162 leaf hash `SHA-256(0x00 ‖ canonical(SignedTransaction))`.
    pub commitment: String,
    pub height: u64,
    pub log_index: u64,
}

/// THE redaction function: `None` when the reader's viewer sees `tx` (committed
/// at `height`, log position `log_index`) in full, else its redacted form.
pub fn redact(reader: &Reader<'_>, tx: &SignedTransaction, height: Height, log_index: u64) -> ApiResult<Option<RedactedJson>> {
    if reader.visible(tx, height).map_err(ApiError::store)? {
        return Ok(None);
    }
    let bytes = tx.encode().map_err(|e| ApiError::internal(format!("cannot encode stored transaction: {e}")))?;
    Ok(Some(RedactedJson {
        redacted: true,
        commitment: yrd_ledger::merkle::leaf_hash(&bytes).to_hex(),
        height: height.0,
        log_index,
    }))
}

/// The records `from .. from + limit` of the subject (one report page) that a
/// proof file shows the reader in full: those whose attestation, and
/// revocation if revoked, [`redact`] lets through. Proof files carry every
/// other entry of the page as its commitment only
/// (`yrd_ledger::proof::report_page`), so they stay provably complete.
///
/// Judged from the subject record's entries ([`Reader::entry_visible`], the
/// same rule as [`redact`] of both transactions) without reading them.
pub fn visible_entries(reader: &Reader<'_>, subject: &Uscc, from: u64, limit: u64) -> ApiResult<HashSet<TxId>> {
    let ledger = reader.ledger();
    let mut shown = HashSet::new();
    let Some(head) = ledger.subject_head(subject).map_err(ApiError::store)? else { return Ok(shown) };
    let to = from.saturating_add(limit).min(head.count);
    for e in ledger.subject_entries(subject, from, to).map_err(ApiError::store)? {
        if reader.entry_visible(subject, &e).map_err(ApiError::store)? {
            shown.insert(e.id);
        }
    }
    Ok(shown)
}

/// For routes that show one transaction: `Ok` when [`redact`] lets the caller
/// read it, else 403 with why (never what the record is).
pub fn require(reader: &Reader<'_>, tx: &SignedTransaction, height: Height, log_index: u64) -> ApiResult<()> {
    match redact(reader, tx, height, log_index)? {
        None => Ok(()),
        Some(_) => Err(forbidden_record(reader.viewer())),
    }
}

fn forbidden_record(viewer: &Viewer) -> ApiError {
    let reason = match viewer {
        Viewer::Anonymous => "this record is restricted: sign the request with the key of a lender whose authorisation covers its subject, or of its issuer".to_string(),
        Viewer::Lender { name } => format!("this record is restricted and no authorisation of lender {name:?} in force covers it"),
        Viewer::Issuer { name } => format!("this record is restricted and issuer {name:?} did not issue it"),
        Viewer::Agency { name } => format!("this record is restricted; agency {name:?} reads consent and query records, not other issuers' restricted records"),
    };
    ApiError::new(StatusCode::FORBIDDEN, "restricted", reason)
}

/// For routes about one subject: a lender's signed request is refused 403 unless
/// an authorisation covers the subject now, with the reason (none, expired,
/// withdrawn). Anyone else passes (and sees what [`redact`] lets through).
pub fn require_coverage(reader: &Reader<'_>, subject: &Uscc) -> ApiResult<()> {
    let Viewer::Lender { name } = reader.viewer() else { return Ok(()) };
    match reader.coverage(subject).map_err(ApiError::store)? {
        Coverage::Covered(_) => Ok(()),
        Coverage::None => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "no_authorisation",
            format!("lender {name:?} holds no authorisation for {subject}: record the enterprise's consent first (yrd lender authorise)"),
        )),
        Coverage::Ended(g, GrantState::Expired { at_ms }) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "authorisation_expired",
            format!("lender {name:?}'s authorisation {} for {subject} expired at {at_ms} ms", g.id),
        )),
        Coverage::Ended(g, GrantState::Withdrawn { by, height }) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "authorisation_withdrawn",
            format!("lender {name:?}'s authorisation {} for {subject} was withdrawn by {by} at height {height}", g.id),
        )),
        Coverage::Ended(g, GrantState::Active) => Err(ApiError::internal(format!("authorisation {} is active but does not cover", g.id))),
    }
}
