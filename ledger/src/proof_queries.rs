//! Query audit files (`"type": "yrd-query-audit"`, docs/proofs.md "Query audit
//! files"): who read a subject's restricted records, when and under which
//! authorisation — every query record about the subject, each proven in the
//! block that committed it, with the lender's signed request inside.
//!
//! Built by a node for `GET /v1/audit/queries/{uscc}` ([`query_audit`]) and
//! verified offline by `yrd audit queries` and `yrd verify`
//! ([`verify_query_audit`]): the anchor and every record block are certified
//! under the membership the governance section replays; each record transaction
//! is at its place in its block's log, signed by a validator or observer in force
//! at that height; each listed entry is about the subject, carries a request
//! signed by a lender's key whose signature over its request to the recording
//! node verifies (checked for every entry with the record's own signature,
//! `SignedTransaction::verify_signature`, as consensus does), and was recorded within
//! [`MAX_RECORD_LAG_BLOCKS`] of the height it was served at.
//!
//! What a file does not prove: that it lists *every* query about the subject
//! (the chain commits to query records through the log, not through a per-subject
//! map; a node could leave records out of a listing). Another node's listing of
//! the same chain, or the blocks themselves, show any omission.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use yrd_consensus::crypto::{Hash32, PublicKey};
use yrd_consensus::types::Height;

use crate::consent::request_lender;
use crate::genesis::Genesis;
use crate::proof::{
    block_tx, check_format, fail, latest_anchor, verify_block_tx, Anchor, BlockInfo, BlockTx, BuildError, Check, Ctx, GovBlock,
    VerifyError, FORMAT_VERSION,
};
use crate::queries::{QueryEntry, MAX_RECORD_LAG_BLOCKS};
use crate::store::Ledger;
use crate::tx::{TxBody, TxId};
use crate::uscc::Uscc;

pub const QUERY_AUDIT_TYPE: &str = "yrd-query-audit";
/// Most query-record entries in one file (one page of the API): a record
/// transaction with its block anchor is 2–4 KiB, so a page stays under a few MiB.
pub const MAX_QUERY_AUDIT_ENTRIES: usize = 1024;

/// The queries about one subject (`"type": "yrd-query-audit"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryAudit {
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u32,
    /// The enterprise (USCC) whose file was read.
    pub subject: String,
    /// The latest block when the file was made; the governance section replays
    /// the membership up to it.
    pub anchor: Anchor,
    pub governance: Vec<GovBlock>,
    /// Record transactions in commit order, with the positions of the entries
    /// about the subject.
    pub records: Vec<QueryRecordProof>,
    /// When the listing stopped at the page limit: the height to ask from next.
    #[serde(deserialize_with = "crate::strict_json::required")]
    pub next_from: Option<u64>,
}

/// One query-record transaction in its block and the entries of it a file lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryRecordProof {
    pub record: BlockTx,
    pub entries: Vec<u16>,
}

/// A verified query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedQuery {
    /// The block that recorded the query, and its time.
    pub height: u64,
    pub block_time_ms: u64,
    /// The record transaction and the entry's position in it.
    pub record: TxId,
    pub entry: u16,
    /// The node that served and recorded it (validator or observer name).
    pub node: String,
    pub lender: String,
    pub lender_key: PublicKey,
    /// `SignedRequest::digest` (what the node's receipt names).
    pub request: Hash32,
    pub method: String,
    pub path: String,
    pub requested_at_ms: u64,
    pub authorisation: TxId,
    /// SHA-256 of the answer the lender received.
    pub response: Hash32,
    pub served_at_ms: u64,
    pub served_height: u64,
}

/// What a verified query audit file says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryAuditVerdict {
    pub subject: Uscc,
    pub anchor: BlockInfo,
    pub queries: Vec<VerifiedQuery>,
    pub next_from: Option<u64>,
}

/// The query audit of `subject` from height `from`, at most
/// [`MAX_QUERY_AUDIT_ENTRIES`] entries (a block's entries are never split across
/// pages unless one block alone holds more), keeping only the entries `keep`
/// accepts (a lender sees its own queries), in record transactions all of whose
/// entries `keep` accepts (the file carries each record whole).
pub fn query_audit(
    ledger: &Ledger,
    subject: &Uscc,
    from: Height,
    keep: &dyn Fn(&Ledger, Height, &QueryEntry) -> bool,
) -> Result<QueryAudit, BuildError> {
    let (header, anchor) = latest_anchor(ledger)?;
    let mut found = ledger.query_records(subject, from, MAX_QUERY_AUDIT_ENTRIES + 1)?;
    let mut next_from = None;
    if found.len() > MAX_QUERY_AUDIT_ENTRIES {
        let cut = found[MAX_QUERY_AUDIT_ENTRIES].height;
        found.retain(|q| q.height < cut);
        if found.is_empty() {
            // One block holds more than a page: that block alone.
            found = ledger.query_records(subject, cut, usize::MAX)?;
            found.retain(|q| q.height == cut);
            next_from = Some(cut.0 + 1);
        } else {
            next_from = Some(cut.0);
        }
    }
    let mut records: Vec<QueryRecordProof> = Vec::new();
    // The record transaction in the file is whole (its bytes are the log leaf),
    // so it shows every entry it holds, about any subject: it is listed only if
    // `keep` accepts all of them (a lender's file never shows another lender's
    // queries; record transactions hold one request key's entries each,
    // `node::queries`, but a Byzantine or older recorder may have mixed them).
    let mut last: Option<(TxId, bool)> = None;
    for q in found.into_iter().filter(|q| keep(ledger, q.height, &q.query)) {
        if last.map(|(id, _)| id) != Some(q.tx_id) {
            let whole = record_kept_whole(ledger, &q.tx_id, q.height, keep)?;
            if whole {
                records.push(QueryRecordProof { record: block_tx(ledger, &q.tx_id)?, entries: Vec::new() });
            }
            last = Some((q.tx_id, whole));
        }
        if last.is_some_and(|(_, whole)| whole) {
            if let Some(r) = records.last_mut() {
                r.entries.push(q.entry);
            }
        }
    }
    Ok(QueryAudit {
        kind: QUERY_AUDIT_TYPE.into(),
        version: FORMAT_VERSION,
        subject: subject.as_str().to_string(),
        anchor,
        governance: crate::proof_gov::section(ledger, header.height)?,
        records,
        next_from,
    })
}

/// Whether `keep` accepts every entry of record transaction `id` (committed at `height`).
fn record_kept_whole(
    ledger: &Ledger,
    id: &TxId,
    height: Height,
    keep: &dyn Fn(&Ledger, Height, &QueryEntry) -> bool,
) -> Result<bool, BuildError> {
    let rec = ledger.tx_record(id, 0)?.ok_or(BuildError::NotFound(*id))?;
    Ok(match &rec.tx.tx.body {
        crate::tx::TxBody::RecordQueries(r) => r.entries.iter().all(|e| keep(ledger, height, e)),
        _ => false,
    })
}

/// Verifies a query audit file offline (docs/proofs.md "Query audit files").
pub fn verify_query_audit(genesis: &Genesis, q: &QueryAudit) -> Result<QueryAuditVerdict, VerifyError> {
    check_format(&q.kind, q.version, QUERY_AUDIT_TYPE)?;
    let subject = Uscc::parse(&q.subject).map_err(|e| fail(Check::Format, format!("subject {:?}: {e}", q.subject)))?;
    let listed: usize = q.records.iter().map(|r| r.entries.len()).sum();
    let ctx = Ctx::for_anchor(genesis, "anchor", &q.anchor, "governance", &q.governance)?;
    let (_, anchor) = ctx.anchor("anchor", &q.anchor)?;
    let mut seen: HashSet<(TxId, u16)> = HashSet::new();
    let mut last_height = 0u64;
    let mut queries = Vec::with_capacity(listed);
    for (i, r) in q.records.iter().enumerate() {
        let field = format!("records[{i}]");
        let (header, info, tx, id) = verify_block_tx(&ctx, &format!("{field}.record"), &r.record, Check::Transaction)?;
        let h = header.height.0;
        if h < last_height {
            return Err(fail(Check::Format, format!("{field} is in block {h}, before the previous record's block {last_height}")));
        }
        last_height = h;
        let TxBody::RecordQueries(records) = &tx.tx.body else {
            return Err(fail(Check::QueryRecord, format!("{field}.record is a {}, not a query record", tx.tx.body.type_name())));
        };
        let m = ctx.membership(h);
        let node = m.node_by_key(&tx.tx.issuer).map(str::to_string).ok_or_else(|| {
            fail(Check::QueryRecord, format!("{field}.record is signed by {}, not a validator or observer in force at height {h}", tx.tx.issuer))
        })?;
        if r.entries.is_empty() {
            return Err(fail(Check::Format, format!("{field}.entries is empty")));
        }
        for &e in &r.entries {
            let at = format!("{field}.entries[{e}]");
            let entry = records
                .entries
                .get(e as usize)
                .ok_or_else(|| fail(Check::QueryRecord, format!("{at}: the record holds {} entries", records.entries.len())))?;
            if !seen.insert((id, e)) {
                return Err(fail(Check::Format, format!("{at} is listed twice")));
            }
            if entry.subject != subject {
                return Err(fail(Check::QueryRecord, format!("{at} is about {}, not {subject}", entry.subject)));
            }
            let lender = request_lender(m, &entry.request.key, entry.height)
                .map_err(|reason| fail(Check::QueryRecord, format!("{at}: {reason} (at height {h})")))?;
            entry.request.check_format().map_err(|reason| fail(Check::QueryRecord, format!("{at}: {reason}")))?;
            // The lender's signature over its request to this node was verified
            // with the record's own signatures (`verify_block_tx`: every entry).
            if entry.height >= h || h > entry.height.saturating_add(MAX_RECORD_LAG_BLOCKS) {
                return Err(fail(
                    Check::QueryRecord,
                    format!("{at}: served at height {} and recorded at {h} (at most {MAX_RECORD_LAG_BLOCKS} blocks later)", entry.height),
                ));
            }
            let request = entry.request.digest().map_err(|e| fail(Check::Decode, format!("{at}: {e}")))?;
            queries.push(VerifiedQuery {
                height: h,
                block_time_ms: info.time_ms,
                record: id,
                entry: e,
                node: node.clone(),
                lender,
                lender_key: entry.request.key,
                request,
                method: entry.request.method.clone(),
                path: entry.request.path.clone(),
                requested_at_ms: entry.request.timestamp_ms,
                authorisation: entry.authorisation,
                response: entry.response,
                served_at_ms: entry.served_at_ms,
                served_height: entry.height,
            });
        }
    }
    Ok(QueryAuditVerdict { subject, anchor, queries, next_from: q.next_from })
}
