//! Lenders' proof bundles, subject reports, auditors' traces and consistency
//! proofs: building them from a [`Ledger`], and verifying them offline with only
//! the genesis.
//!
//! Every file is versioned JSON (`"type"`, `"version"`, [`FORMAT_VERSION`]). Everything that is
//! hashed or signed travels as the lowercase hex of its canonical bytes (header,
//! certificate, transaction, subject record), so a verifier hashes exactly the
//! bytes it was given; proofs are arrays of hex hashes. Nothing in a file is
//! informational: every field is checked, so changing any byte of any field makes
//! verification fail. `docs/proofs.md` is the specification; the checks below run
//! in the order it gives, and a failure names the first [`Check`] that failed.
//!
//! All proofs in one bundle or report are against one *anchor*: a block header
//! with its commit certificate (the latest block when the file was made). The
//! transaction log inclusion proofs are against the anchor's `(log_size,
//! log_root)`, the subject-map proof against its `subjects_root`.
//!
//! A file carries a subject record as a *page* ([`RecordPage`]): entries
//! `from..to` of exactly `count`, with the range proof that places them in the
//! record's entries tree, whose root the subject-map value commits to. A report
//! of a big subject is several pages ([`report_page`], [`verify_report_pages`]);
//! pages that prove the same record and cover `0..count` are the complete list.
//!
//! A file made for a reader who may not see every record about the subject
//! (docs/access.md) carries those entries of the subject record as their
//! commitments only ([`EntryView::Redacted`], [`ReportEntry::Redacted`]): the
//! page still hashes to the value in the map, so it stays provably complete,
//! and nothing of the hidden records is in the file.
//!
//! The validators that certify an anchor, and the issuers in force at a
//! record's height, follow from the genesis and the governance changes since:
//! every file carries its chain of membership changes (`governance`,
//! [`crate::proof_gov`]), which the verifier replays from the genesis before it
//! judges any certificate or signer by the membership of its height.

use std::fmt;

use serde::{Deserialize, Serialize};
use yrd_consensus::codec::{self, CodecError};
use yrd_consensus::crypto::{to_hex, Hash32, PublicKey};
use yrd_consensus::types::{BlockHash, Height};
use yrd_consensus::CommitCertificate;

use crate::block::{BlockHeader, MAX_CERTIFICATE_BYTES, MAX_HEADER_BYTES};
use crate::genesis::Genesis;
use crate::governance::{GovState, Membership, RetireReason};
use crate::merkle::{self, INCLUSION_PROOF_HASHES_MAX};
pub use crate::proof_gov::{AppliedProposal, GovBlock, GovTx};
use crate::store::{entry_status, Ledger, ReadMemo, Status, StoreError};
use crate::subjects::{subject_key, EntryView, ProofTerminal, RecordPage, SubjectEntry, SubjectProof, MAX_SUBJECT_RECORD_BYTES};
use crate::tx::{RevocationReason, SignatureFault, SignedTransaction, TxBody, TxId, MAX_TX_BYTES};
use crate::uscc::Uscc;
use crate::validate::check_stateless;

/// The format version of every file this module writes. Version 2: headers
/// commit to the membership, and files carry the governance section. Version 3:
/// subject records are hashed entry by entry and travel as a
/// [`RecordPage`]-like views, so a file can redact entries. Version 4: a
/// subject's value commits to the RFC 9162 root over its entries' commitments,
/// and files carry a [`RecordPage`] (entries `from..to` of `count`, with a range
/// proof), so a report of a big subject is made of pages (docs/proofs.md).
pub const FORMAT_VERSION: u32 = 4;
/// Most entries in one page of a subject report a node serves
/// (`GET /v1/proofs/subjects/{uscc}?from=&limit=`): a full entry is about
/// 1.7 KB of JSON (transaction and its log inclusion path), so a page stays
/// under ~2 MB and is built in well under a second; more pages are asked
/// for with `from`.
pub const MAX_REPORT_PAGE_ENTRIES: u64 = 1024;
/// `"type"` of a proof bundle.
pub const BUNDLE_TYPE: &str = "yrd-proof-bundle";
/// `"type"` of a subject report.
pub const REPORT_TYPE: &str = "yrd-subject-report";
/// `"type"` of an audit trace.
pub const TRACE_TYPE: &str = "yrd-audit-trace";
/// `"type"` of a consistency proof.
pub const CONSISTENCY_TYPE: &str = "yrd-consistency-proof";
/// Largest proof file accepted (a report about a subject with many records).
pub const MAX_FILE_BYTES: usize = 64 * 1024 * 1024;
/// Most siblings a subject-map proof can have (one per key bit).
pub const SUBJECT_PROOF_SIBLINGS_MAX: usize = 256;

// ---------------------------------------------------------------------------
// File formats
// ---------------------------------------------------------------------------

/// A block header and the certificate that made it final, as canonical hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Anchor {
    /// Hex of `canonical(BlockHeader)`.
    pub header: String,
    /// Hex of `canonical(CommitCertificate)`.
    pub certificate: String,
}

/// A transaction with its RFC 9162 inclusion proof in some header's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncludedTx {
    /// Hex of `canonical(SignedTransaction)`; the log leaf is `H(0x00 ‖ bytes)`.
    pub tx: String,
    /// Position of the leaf in the log.
    pub log_index: u64,
    /// Audit path, leaf to root (RFC 9162 §2.1.3).
    pub inclusion: Vec<Hash32>,
}

/// What the subject-map path ends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum TerminalJson {
    /// The key is present with this value hash.
    Present { value: Hash32 },
    /// An empty subtree: the key is absent.
    Empty,
    /// Another key's leaf: the key is absent.
    Other { key: Hash32, value: Hash32 },
}

/// A subject-map proof: sibling hashes from the root down, then the terminal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectProofJson {
    pub siblings: Vec<Hash32>,
    pub terminal: TerminalJson,
}

impl From<&SubjectProof> for SubjectProofJson {
    fn from(p: &SubjectProof) -> Self {
        let terminal = match &p.terminal {
            ProofTerminal::Present { value } => TerminalJson::Present { value: *value },
            ProofTerminal::Empty => TerminalJson::Empty,
            ProofTerminal::Other { key, value } => TerminalJson::Other { key: *key, value: *value },
        };
        SubjectProofJson { siblings: p.siblings.clone(), terminal }
    }
}

impl SubjectProofJson {
    fn to_proof(&self) -> SubjectProof {
        let terminal = match &self.terminal {
            TerminalJson::Present { value } => ProofTerminal::Present { value: *value },
            TerminalJson::Empty => ProofTerminal::Empty,
            TerminalJson::Other { key, value } => ProofTerminal::Other { key: *key, value: *value },
        };
        SubjectProof { siblings: self.siblings.clone(), terminal }
    }
}

/// The subject record of the attestation's subject, proven in the anchor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectPart {
    /// Hex of `canonical(RecordPage)`: the page of the subject record holding
    /// the attestation's entry (only that one), with its range proof.
    pub record: String,
    pub proof: SubjectProofJson,
}

/// A lender's proof bundle for one attestation (`"type": "yrd-proof-bundle"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u32,
    pub anchor: Anchor,
    pub attestation: IncludedTx,
    pub subject: SubjectPart,
    /// Present exactly when the record says the attestation is revoked
    /// (`null` otherwise: the key is required).
    #[serde(deserialize_with = "crate::strict_json::required")]
    pub revocation: Option<IncludedTx>,
    /// The membership changes in force at the anchor (empty: the genesis').
    pub governance: Vec<GovBlock>,
}

/// One record of a report: in full, or redacted (its commitment only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ReportEntry {
    Full(FullEntry),
    Redacted(RedactedEntry),
}

/// An object with a `redacted` key is a [`RedactedEntry`], any other a
/// [`FullEntry`]; either is then read strictly, and an error names the path
/// inside the entry (serde's `untagged` would only say that no variant matched).
impl<'de> Deserialize<'de> for ReportEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        let redacted = v.as_object().is_some_and(|m| m.contains_key("redacted"));
        let parsed = if redacted {
            crate::strict_json::from_value("", v).map(ReportEntry::Redacted)
        } else {
            crate::strict_json::from_value("", v).map(ReportEntry::Full)
        };
        parsed.map_err(crate::strict_json::nested_error)
    }
}

/// A record shown in full: the attestation and, if revoked, the revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FullEntry {
    pub attestation: IncludedTx,
    #[serde(deserialize_with = "crate::strict_json::required")]
    pub revocation: Option<IncludedTx>,
}

/// A record the reader may not see: the commitment the record view has at
/// the same position (`H(signing_bytes("ledger/subject-entry", canonical(SubjectEntry)))`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactedEntry {
    pub redacted: Hash32,
}

/// Every record about one subject, provably complete as of the anchor
/// (`"type": "yrd-subject-report"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u32,
    /// The 18-character canonical USCC.
    pub subject: String,
    pub anchor: Anchor,
    /// Hex of `canonical(RecordPage)`: entries `from..to` of the record, or
    /// `null` when the subject has no record.
    #[serde(deserialize_with = "crate::strict_json::required")]
    pub record: Option<String>,
    /// Proof of the record, or of absence when `record` is null.
    pub proof: SubjectProofJson,
    /// One per entry of the page, in the record's order.
    pub entries: Vec<ReportEntry>,
    /// The membership changes in force at the anchor (empty: the genesis').
    pub governance: Vec<GovBlock>,
}

/// A transaction proven in the block that holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockTx {
    /// The block holding the transaction, with its certificate.
    pub block: Anchor,
    /// Inclusion in that block's log (`log_index` in the block's own range).
    pub included: IncludedTx,
}

/// An auditor's provenance trace of one attestation (`"type": "yrd-audit-trace"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trace {
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u32,
    /// The attestation in the block that committed it.
    pub origin: BlockTx,
    /// Later revocations, each in the block that committed it.
    pub revocations: Vec<BlockTx>,
    /// The current status: a proof bundle against the latest block. Its
    /// governance section covers every block of the trace.
    pub current: Bundle,
}

/// Two certified headers and an RFC 9162 consistency proof between their logs
/// (`"type": "yrd-consistency-proof"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consistency {
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u32,
    pub from: Anchor,
    pub to: Anchor,
    /// PROOF(from.log_size, D[to.log_size]) (RFC 9162 §2.1.4).
    pub proof: Vec<Hash32>,
    /// The membership changes in force at `to` (empty: the genesis').
    pub governance: Vec<GovBlock>,
}

/// Any of the files above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofFile {
    Bundle(Bundle),
    Report(Report),
    Trace(Trace),
    Consistency(Consistency),
    Queries(crate::proof_queries::QueryAudit),
}

// ---------------------------------------------------------------------------
// Verification results
// ---------------------------------------------------------------------------

/// The checks, in the order a bundle runs them (docs/proofs.md, "Verification").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// The file is JSON of a known `type` and `version` with exactly the fields of the format.
    Format,
    /// A hex field is not hex, or its bytes are not the canonical encoding of its type.
    Decode,
    /// The header is for another chain than the genesis.
    Chain,
    /// The commit certificate does not prove the header final under the
    /// validators in force at its height (the genesis' changed by the file's
    /// governance section).
    Certificate,
    /// The transaction is for another chain, malformed, or signed with a key that
    /// was not an issuer in force (allowed the kind) at the record's height.
    Transaction,
    /// The issuer's signature does not verify.
    IssuerSignature,
    /// The transaction is not at `log_index` in the header's log.
    LogInclusion,
    /// The subject record (or its absence) is not proven in the header's subject map.
    SubjectMap,
    /// The record does not list this attestation as the transaction says.
    Status,
    /// A revocation is missing, invalid, not included, or not what the record says.
    Revocation,
    /// A report leaves out a record or carries one the map does not list.
    Completeness,
    /// The consistency proof does not show the later log extends the earlier one.
    Consistency,
    /// A trace's parts do not describe the same attestation.
    Provenance,
    /// The governance section does not replay from the genesis to the anchor: a
    /// governance transaction is missing, invalid, not included where it says,
    /// or a header does not commit to the membership the replay gives.
    Governance,
    /// A query record is not signed by a node in force, names another subject,
    /// or carries a request that is not a lender's or whose signature does not verify.
    QueryRecord,
    /// The file is older than the verifier's maximum age: its anchor (the
    /// latest certified block it proves against) was made too long before the
    /// evaluation time. Checked only when the verifier sets a maximum age.
    Freshness,
}

impl Check {
    pub fn as_str(&self) -> &'static str {
        match self {
            Check::Format => "format",
            Check::Decode => "decode",
            Check::Chain => "chain",
            Check::Certificate => "certificate",
            Check::Transaction => "transaction",
            Check::IssuerSignature => "issuer-signature",
            Check::LogInclusion => "log-inclusion",
            Check::SubjectMap => "subject-map",
            Check::Status => "status",
            Check::Revocation => "revocation",
            Check::Completeness => "completeness",
            Check::Consistency => "consistency",
            Check::Provenance => "provenance",
            Check::Governance => "governance",
            Check::QueryRecord => "query-record",
            Check::Freshness => "freshness",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first check that failed, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{check} check failed: {message}")]
pub struct VerifyError {
    pub check: Check,
    pub message: String,
}

pub(crate) fn fail(check: Check, message: impl Into<String>) -> VerifyError {
    VerifyError { check, message: message.into() }
}

/// An agency as a loan officer reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    pub name: String,
    pub region: String,
    pub key: PublicKey,
    /// Set when this key was retired (frozen, rotated out or removed) at or
    /// before the file's anchor. What it signed before that height stays valid.
    pub retired: Option<Retirement>,
}

/// When and why a key stopped being valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retirement {
    pub reason: RetireReason,
    /// The first height at which the key was no longer valid.
    pub since: u64,
}

/// A final block: height, hash, time and who signed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockInfo {
    pub height: u64,
    pub hash: BlockHash,
    pub time_ms: u64,
    pub log_size: u64,
    /// The validators whose precommits are in the certificate.
    pub signers: Vec<Party>,
}

/// A verified revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationInfo {
    pub id: TxId,
    pub reason: RevocationReason,
    pub by: Party,
    pub evidence: Option<Hash32>,
    pub issued_at_ms: u64,
    pub log_index: u64,
}

/// A verified attestation with its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestationInfo {
    pub id: TxId,
    pub issuer: Party,
    pub sequence: u64,
    pub subject: Uscc,
    pub kind: String,
    pub grade: Option<char>,
    pub severity: Option<String>,
    pub evidence: Hash32,
    pub issued_at_ms: u64,
    pub valid_from_ms: u64,
    pub valid_until_ms: Option<u64>,
    pub fields: Vec<(String, String)>,
    /// Height of the block that committed the attestation (from the proven record).
    pub height: u64,
    pub log_index: u64,
    /// Status as of the anchor and the verifier's clock.
    pub status: Status,
    pub revocation: Option<RevocationInfo>,
}

/// What a verified proof bundle says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub chain_name: String,
    pub chain_id: Hash32,
    /// The block the proofs are against ("as of").
    pub anchor: BlockInfo,
    pub attestation: AttestationInfo,
    /// The membership changes in force at the anchor, replayed from the genesis.
    pub governance: Vec<AppliedProposal>,
}

/// What a verified subject report says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportVerdict {
    pub chain_name: String,
    pub chain_id: Hash32,
    pub subject: Uscc,
    pub anchor: BlockInfo,
    /// How many records the subject has as of the anchor (0: proven absent).
    pub count: u64,
    /// The records `from..to` of the `count` are in the file (pages together).
    pub from: u64,
    pub to: u64,
    /// Whether the file shows the complete record (`from = 0`, `to = count`);
    /// otherwise it proves that these are records `from..to` of exactly `count`.
    pub complete: bool,
    /// The root of the record's entries tree (with `count`, what the
    /// subject-map value commits to); `null` for an absent subject.
    pub entries_root: Option<Hash32>,
    /// The records `from..to` about the subject as of the anchor that the file
    /// shows; empty with `redacted` empty and `count` 0 = proven absent.
    pub attestations: Vec<AttestationInfo>,
    /// The records the file holds only as commitments (the reader may not see
    /// them): they exist, at these positions of the record, and nothing else
    /// about them is known.
    pub redacted: Vec<RedactedInfo>,
    /// The membership changes in force at the anchor, replayed from the genesis.
    pub governance: Vec<AppliedProposal>,
}

/// A record of a subject report shown only as its commitment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedactedInfo {
    /// Position in the subject's record (commit order, from 0).
    pub position: u64,
    pub commitment: Hash32,
}

/// What a verified audit trace says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceVerdict {
    /// The block that committed the attestation.
    pub origin: BlockInfo,
    /// For each revocation, the block that committed it.
    pub revocations: Vec<BlockInfo>,
    /// The current status, as of the bundle's anchor.
    pub current: Verdict,
}

/// What a verified consistency proof says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyVerdict {
    pub chain_name: String,
    pub chain_id: Hash32,
    pub from: BlockInfo,
    pub to: BlockInfo,
    pub from_log_root: Hash32,
    pub to_log_root: Hash32,
    /// The membership changes in force at `to`, replayed from the genesis.
    pub governance: Vec<AppliedProposal>,
}

/// The verdict of any file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum AnyVerdict {
    #[serde(rename = "yrd-proof-bundle")]
    Bundle(Verdict),
    #[serde(rename = "yrd-subject-report")]
    Report(ReportVerdict),
    #[serde(rename = "yrd-audit-trace")]
    Trace(TraceVerdict),
    #[serde(rename = "yrd-consistency-proof")]
    Consistency(ConsistencyVerdict),
    #[serde(rename = "yrd-query-audit")]
    Queries(crate::proof_queries::QueryAuditVerdict),
}

// ---------------------------------------------------------------------------
// Building from a ledger
// ---------------------------------------------------------------------------

/// Why a file could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("transaction {0} is not on the ledger")]
    NotFound(TxId),
    #[error("transaction {id} is a revocation (of {target}); proofs are made for attestations")]
    NotAttestation { id: TxId, target: TxId },
    #[error("no block has been committed yet")]
    NoBlocks,
    #[error("height {height} is not on the ledger (the chain is at height {tip})")]
    NoSuchHeight { height: Height, tip: Height },
    #[error("heights out of order: from {from} is after to {to}")]
    HeightsOutOfOrder { from: Height, to: Height },
    #[error("the record has {count} entries: a page from {from} with at most {limit} entries would be empty")]
    NoSuchEntries { from: u64, limit: u64, count: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Codec(#[from] CodecError),
}

fn corrupt(what: String) -> BuildError {
    BuildError::Store(StoreError::Corrupt(what))
}

/// The block at `height` with its certificate. The store holds both in their
/// canonical encoding (what `codec::encode` gives, pinned by the golden tests),
/// so the file carries the stored bytes rather than a decode and re-encode.
pub(crate) fn anchor_at(ledger: &Ledger, height: Height) -> Result<(BlockHeader, Anchor), BuildError> {
    let header_bytes = ledger.header_bytes(height)?.ok_or_else(|| corrupt(format!("no header at height {height}")))?;
    let header = BlockHeader::decode(&header_bytes).map_err(crate::store::StoreError::from)?;
    let cert = ledger.certificate_bytes(height)?.ok_or_else(|| corrupt(format!("no certificate at height {height}")))?;
    let anchor = Anchor { header: to_hex(&header_bytes), certificate: to_hex(&cert) };
    Ok((header, anchor))
}

pub(crate) fn latest_anchor(ledger: &Ledger) -> Result<(BlockHeader, Anchor), BuildError> {
    if ledger.height().0 == 0 {
        return Err(BuildError::NoBlocks);
    }
    anchor_at(ledger, ledger.height())
}

/// The transaction `id` with its inclusion proof in the log of size `size`.
fn included(ledger: &Ledger, id: &TxId, size: u64) -> Result<(crate::store::TxRecord, IncludedTx), BuildError> {
    let rec = ledger.tx_record(id, 0)?.ok_or(BuildError::NotFound(*id))?;
    let inclusion = ledger.inclusion_proof(rec.log_index, size)?;
    let inc = IncludedTx { tx: hex::encode(rec.tx.encode()?), log_index: rec.log_index, inclusion };
    Ok((rec, inc))
}

/// [`included`] from the stored bytes alone (no status, no re-encoding): the
/// report's entries, one lookup per record.
/// Each store value is read once per report ([`ReadMemo`]).
fn logged(memo: &ReadMemo<'_>, id: &TxId, size: u64) -> Result<IncludedTx, BuildError> {
    let t = memo.logged_tx(id)?.ok_or(BuildError::NotFound(*id))?;
    let inclusion = memo.inclusion_proof(t.log_index, size)?;
    Ok(IncludedTx { tx: to_hex(&t.bytes), log_index: t.log_index, inclusion })
}

/// A proof bundle for attestation `id` against the latest block, every entry
/// of the subject record in full.
pub fn bundle(ledger: &Ledger, id: &TxId) -> Result<Bundle, BuildError> {
    bundle_for(ledger, id, &|_| true)
}

/// A proof bundle for attestation `id`. Its subject record is the page holding
/// the attestation's own entry and nothing else, so `show` (what the reader may
/// see of the others) has nothing to hide; the caller checks the reader may see
/// this entry.
pub fn bundle_for(ledger: &Ledger, id: &TxId, show: &dyn Fn(&SubjectEntry) -> bool) -> Result<Bundle, BuildError> {
    let _ = show;
    let (header, anchor) = latest_anchor(ledger)?;
    let (rec, attestation) = included(ledger, id, header.log_size)?;
    let subject = match &rec.tx.tx.body {
        TxBody::Attest(a) => a.subject,
        TxBody::Revoke(r) => return Err(BuildError::NotAttestation { id: *id, target: r.target }),
        TxBody::Propose(_) | TxBody::Approve(_) | TxBody::Authorise(_) | TxBody::Withdraw(_) | TxBody::RecordQueries(_) => {
            return Err(BuildError::NotAttestation { id: *id, target: *id })
        }
    };
    let head = ledger.subject_head(&subject)?.ok_or_else(|| corrupt(format!("subject {subject} has no record")))?;
    let proof = ledger.subject_proof(&subject);
    let (pos, entry) = ledger
        .subject_entry(&subject, id, rec.height)?
        .ok_or_else(|| corrupt(format!("{id} is missing from its subject record")))?;
    let page = RecordPage {
        subject,
        count: head.count,
        from: pos,
        entries: vec![EntryView::Full(entry.clone())],
        proof: ledger.subject_range_proof(&subject, pos, pos + 1)?,
    };
    let revocation = match entry.revoked {
        Some((by, _)) => Some(included(ledger, &by, header.log_size)?.1),
        None => None,
    };
    Ok(Bundle {
        kind: BUNDLE_TYPE.into(),
        version: FORMAT_VERSION,
        anchor,
        attestation,
        subject: SubjectPart { record: hex::encode(codec::encode(&page)?), proof: (&proof).into() },
        revocation,
        governance: crate::proof_gov::section(ledger, header.height)?,
    })
}

/// A report of every record about `subject` against the latest block, all in
/// full, as one page; a proof of absence when there is none.
pub fn report(ledger: &Ledger, subject: &Uscc) -> Result<Report, BuildError> {
    report_for(ledger, subject, &|_| true)
}

/// A report of every record about `subject` as one page, showing the entries
/// `show` accepts in full and the others as their commitments only
/// (docs/proofs.md, "Redacted entries"): still provably complete. For a big
/// subject use [`report_page`].
pub fn report_for(ledger: &Ledger, subject: &Uscc, show: &dyn Fn(&SubjectEntry) -> bool) -> Result<Report, BuildError> {
    report_page(ledger, subject, 0, u64::MAX, show)
}

/// Entries `from .. from + limit` (cut at the record's end) of the record of
/// `subject` against the latest block, with their range proof; the entries
/// `show` refuses as commitments only. `from` at or past the end of a record
/// (or `limit` 0) is refused: a page holds at least one entry. A subject with
/// no record gives the proof of absence whatever the range.
pub fn report_page(ledger: &Ledger, subject: &Uscc, from: u64, limit: u64, show: &dyn Fn(&SubjectEntry) -> bool) -> Result<Report, BuildError> {
    let (header, anchor) = latest_anchor(ledger)?;
    let proof = ledger.subject_proof(subject);
    let memo = ReadMemo::new(ledger);
    let mut entries = Vec::new();
    let mut view = None;
    if let Some(head) = ledger.subject_head(subject)? {
        let to = from.saturating_add(limit).min(head.count);
        if from >= to {
            return Err(BuildError::NoSuchEntries { from, limit, count: head.count });
        }
        let shown = ledger.subject_entries(subject, from, to)?;
        let mut page = RecordPage { subject: *subject, count: head.count, from, entries: Vec::with_capacity(shown.len()), proof: Vec::new() };
        for e in shown {
            if !show(&e) {
                let c = e.commitment()?;
                entries.push(ReportEntry::Redacted(RedactedEntry { redacted: c }));
                page.entries.push(EntryView::Redacted(c));
                continue;
            }
            let attestation = logged(&memo, &e.id, header.log_size)?;
            let revocation = match e.revoked {
                Some((by, _)) => Some(logged(&memo, &by, header.log_size)?),
                None => None,
            };
            entries.push(ReportEntry::Full(FullEntry { attestation, revocation }));
            page.entries.push(EntryView::Full(e));
        }
        page.proof = ledger.subject_range_proof(subject, from, to)?;
        view = Some(to_hex(&codec::encode(&page)?));
    }
    Ok(Report {
        kind: REPORT_TYPE.into(),
        version: FORMAT_VERSION,
        subject: subject.as_str().to_string(),
        anchor,
        record: view,
        proof: (&proof).into(),
        entries,
        governance: crate::proof_gov::section(ledger, header.height)?,
    })
}

/// A transaction proven in its own block.
pub(crate) fn block_tx(ledger: &Ledger, id: &TxId) -> Result<BlockTx, BuildError> {
    let rec = ledger.tx_record(id, 0)?.ok_or(BuildError::NotFound(*id))?;
    let (header, block) = anchor_at(ledger, rec.height)?;
    let (_, included) = included(ledger, id, header.log_size)?;
    Ok(BlockTx { block, included })
}

/// An audit trace of attestation `id`: its own block, later revocations in
/// theirs, and a bundle for its current status.
pub fn trace(ledger: &Ledger, id: &TxId) -> Result<Trace, BuildError> {
    trace_for(ledger, id, &|_| true)
}

/// [`trace`] whose bundle redacts the subject-record entries `show` refuses.
pub fn trace_for(ledger: &Ledger, id: &TxId, show: &dyn Fn(&SubjectEntry) -> bool) -> Result<Trace, BuildError> {
    let current = bundle_for(ledger, id, show)?;
    let origin = block_tx(ledger, id)?;
    let mut revocations = Vec::new();
    let rec = ledger.tx_record(id, 0)?.ok_or(BuildError::NotFound(*id))?;
    if let Status::Revoked { by, .. } = rec.status {
        revocations.push(block_tx(ledger, &by)?);
    }
    Ok(Trace { kind: TRACE_TYPE.into(), version: FORMAT_VERSION, origin, revocations, current })
}

/// A consistency proof from the log at height `from` to the log at height `to`.
pub fn consistency(ledger: &Ledger, from: Height, to: Height) -> Result<Consistency, BuildError> {
    let tip = ledger.height();
    for h in [from, to] {
        if h.0 == 0 || h > tip {
            return Err(BuildError::NoSuchHeight { height: h, tip });
        }
    }
    if from > to {
        return Err(BuildError::HeightsOutOfOrder { from, to });
    }
    let (h1, a1) = anchor_at(ledger, from)?;
    let (h2, a2) = anchor_at(ledger, to)?;
    let proof = ledger.consistency_proof(h1.log_size, h2.log_size)?;
    let governance = crate::proof_gov::section(ledger, to)?;
    Ok(Consistency { kind: CONSISTENCY_TYPE.into(), version: FORMAT_VERSION, from: a1, to: a2, proof, governance })
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

/// Parses any proof file, dispatching on `"type"` (Check::Format on failure):
/// strictly (docs/proofs.md §3, "Strict JSON"): no duplicate key, no unknown or
/// missing field, hashes as 64 lowercase hex digits; the error names the JSON
/// path of the offending key.
pub fn parse_file(bytes: &[u8]) -> Result<ProofFile, VerifyError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(fail(Check::Format, format!("file is {} bytes, more than the {MAX_FILE_BYTES}-byte limit", bytes.len())));
    }
    crate::strict_json::check_no_duplicate_keys(bytes).map_err(|e| fail(Check::Format, e.to_string()))?;
    /// Only the `type` key, to choose the format; the format itself is strict.
    #[derive(Deserialize)]
    struct Head {
        #[serde(rename = "type")]
        kind: Option<String>,
    }
    let head: Head = serde_json::from_slice(bytes).map_err(|e| fail(Check::Format, format!("not a JSON object: {e}")))?;
    let kind = head.kind.unwrap_or_default();
    fn typed<T: serde::de::DeserializeOwned>(bytes: &[u8], kind: &str) -> Result<T, VerifyError> {
        crate::strict_json::from_slice(bytes).map_err(|e| fail(Check::Format, format!("not a valid {kind} file: {e}")))
    }
    match kind.as_str() {
        BUNDLE_TYPE => typed(bytes, &kind).map(ProofFile::Bundle),
        REPORT_TYPE => typed(bytes, &kind).map(ProofFile::Report),
        TRACE_TYPE => typed(bytes, &kind).map(ProofFile::Trace),
        CONSISTENCY_TYPE => typed(bytes, &kind).map(ProofFile::Consistency),
        crate::proof_queries::QUERY_AUDIT_TYPE => typed(bytes, &kind).map(ProofFile::Queries),
        other => Err(fail(
            Check::Format,
            format!(
                "unknown file type {other:?}: expected {BUNDLE_TYPE}, {REPORT_TYPE}, {TRACE_TYPE}, {CONSISTENCY_TYPE} or {}",
                crate::proof_queries::QUERY_AUDIT_TYPE
            ),
        )),
    }
}

/// How old a file's answer is: its anchor (the highest certified block it
/// proves against) against the evaluation time. Nothing after the anchor is
/// proven (docs/proofs.md, "What the checks establish"), so a lender reads the
/// age with every verdict and may refuse an answer that is too old.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Freshness {
    /// The anchor's height.
    pub anchor_height: u64,
    /// The anchor's block timestamp (milliseconds since the epoch).
    pub anchor_time_ms: u64,
    /// The evaluation time (`--at`, or the verifier's clock).
    pub at_ms: u64,
    /// `at_ms − anchor_time_ms`; negative when the anchor is after the
    /// evaluation time (a file judged at an earlier `--at`).
    pub age_ms: i64,
    /// The maximum age the verifier was given, if any.
    pub max_age_ms: Option<u64>,
}

/// The anchor a verdict is "as of": a bundle's or report's anchor, a trace's
/// current-status anchor, a consistency proof's `to`, a query audit's anchor.
pub fn verdict_anchor(v: &AnyVerdict) -> &BlockInfo {
    match v {
        AnyVerdict::Bundle(b) => &b.anchor,
        AnyVerdict::Report(r) => &r.anchor,
        AnyVerdict::Trace(t) => &t.current.anchor,
        AnyVerdict::Consistency(c) => &c.to,
        AnyVerdict::Queries(q) => &q.anchor,
    }
}

/// The age of the verdict's anchor at `at_ms`, refused with
/// [`Check::Freshness`] when `max_age_ms` is given and the anchor is older
/// (`age_ms > max_age_ms`; docs/proofs.md step 32).
pub fn check_freshness(v: &AnyVerdict, at_ms: u64, max_age_ms: Option<u64>) -> Result<Freshness, VerifyError> {
    let anchor = verdict_anchor(v);
    let age_ms = (i128::from(at_ms) - i128::from(anchor.time_ms)).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
    let f = Freshness { anchor_height: anchor.height, anchor_time_ms: anchor.time_ms, at_ms, age_ms, max_age_ms };
    if let Some(max) = max_age_ms {
        if age_ms > 0 && age_ms as u64 > max {
            return Err(fail(
                Check::Freshness,
                format!(
                    "the file is as of block {} made {} ago, more than the maximum age {}: fetch a new one",
                    anchor.height,
                    duration_text(age_ms as u64),
                    duration_text(max)
                ),
            ));
        }
    }
    Ok(f)
}

/// Verifies any file ([`verify_file`]) and then its freshness
/// ([`check_freshness`]): the library form of `yrd verify --max-age`.
pub fn verify_file_fresh(
    genesis: &Genesis,
    file: &ProofFile,
    now_ms: u64,
    max_age_ms: Option<u64>,
) -> Result<(AnyVerdict, Freshness), VerifyError> {
    let v = verify_file(genesis, file, now_ms)?;
    let f = check_freshness(&v, now_ms, max_age_ms)?;
    Ok((v, f))
}

/// A duration for people: `2d 3h 4m 5.006s`, `0s`.
pub fn duration_text(ms: u64) -> String {
    let (d, h, m) = (ms / 86_400_000, ms / 3_600_000 % 24, ms / 60_000 % 60);
    let (s, milli) = (ms / 1000 % 60, ms % 1000);
    let mut parts = Vec::new();
    if d > 0 {
        parts.push(format!("{d}d"));
    }
    if h > 0 {
        parts.push(format!("{h}h"));
    }
    if m > 0 {
        parts.push(format!("{m}m"));
    }
    if s > 0 || milli > 0 || parts.is_empty() {
        parts.push(if milli > 0 { format!("{s}.{milli:03}s") } else { format!("{s}s") });
    }
    parts.join(" ")
}

/// Verifies any file.
pub fn verify_file(genesis: &Genesis, file: &ProofFile, now_ms: u64) -> Result<AnyVerdict, VerifyError> {
    match file {
        ProofFile::Bundle(b) => verify_bundle(genesis, b, now_ms).map(AnyVerdict::Bundle),
        ProofFile::Report(r) => verify_report(genesis, r, now_ms).map(AnyVerdict::Report),
        ProofFile::Trace(t) => verify_trace(genesis, t, now_ms).map(AnyVerdict::Trace),
        ProofFile::Consistency(c) => verify_consistency(genesis, c).map(AnyVerdict::Consistency),
        ProofFile::Queries(q) => crate::proof_queries::verify_query_audit(genesis, q).map(AnyVerdict::Queries),
    }
}

// ---------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------

pub(crate) fn check_format(kind: &str, version: u32, expected: &str) -> Result<(), VerifyError> {
    if kind != expected {
        return Err(fail(Check::Format, format!("type is {kind:?}, expected {expected:?}")));
    }
    if version != FORMAT_VERSION {
        return Err(fail(
            Check::Format,
            format!("version {version} is not supported (this verifier reads version {FORMAT_VERSION}; version 1 files predate governance, version 2 files hash subject records whole, version 3 files hash every entry of a record in a row, with no pages — fetch the file again)"),
        ));
    }
    Ok(())
}

/// Hex of at most `max` bytes, in the one canonical form
/// ([`yrd_consensus::crypto::parse_hex`]: lower case, nothing else).
pub(crate) fn unhex(field: &str, s: &str, max: usize) -> Result<Vec<u8>, VerifyError> {
    if s.len() > 2 * max {
        return Err(fail(Check::Decode, format!("{field} is {} hex characters, more than {max} bytes", s.len())));
    }
    yrd_consensus::crypto::parse_hex(field, s, None).map_err(|e| fail(Check::Decode, e.to_string()))
}

/// Decodes canonical bytes: the value must re-encode to exactly the same bytes.
fn decode_canonical<T: Serialize + serde::de::DeserializeOwned>(
    field: &str,
    bytes: &[u8],
    max: usize,
    what: &'static str,
) -> Result<T, VerifyError> {
    let v: T = codec::decode(bytes, max, what).map_err(|e| fail(Check::Decode, format!("{field}: {e}")))?;
    let again = codec::encode(&v).map_err(|e| fail(Check::Decode, format!("{field}: {e}")))?;
    if again != bytes {
        return Err(fail(Check::Decode, format!("{field}: not the canonical encoding")));
    }
    Ok(v)
}

/// The chain facts a verifier needs: the chain id, and the membership of every
/// height up to the file's highest anchor as its governance section replays it
/// from the genesis (docs/proofs.md, steps 23–29).
pub(crate) struct Ctx<'g> {
    pub(crate) genesis: &'g Genesis,
    pub(crate) chain: Hash32,
    /// Governance replayed from the file; the genesis alone until [`Ctx::replay`].
    pub(crate) gov: GovState,
    /// The highest height the replay covers: the file's highest anchor.
    pub(crate) upto: u64,
}

impl<'g> Ctx<'g> {
    pub(crate) fn new(genesis: &'g Genesis) -> Result<Ctx<'g>, VerifyError> {
        let chain = genesis.chain_id().map_err(|e| fail(Check::Format, format!("genesis: {e}")))?;
        Ok(Ctx { genesis, chain, gov: GovState::new(genesis), upto: 0 })
    }

    /// The context of a file with one anchor: its header decoded (steps 2–3),
    /// then the governance section replayed up to its height (steps 23–29).
    pub(crate) fn for_anchor(genesis: &'g Genesis, field: &str, anchor: &Anchor, section_field: &str, section: &[GovBlock]) -> Result<Ctx<'g>, VerifyError> {
        let mut ctx = Ctx::new(genesis)?;
        let header = ctx.header(field, anchor)?;
        ctx.replay(section_field, section, header.height.0)?;
        Ok(ctx)
    }

    /// The membership in force at height `h`, as replayed.
    pub(crate) fn membership(&self, h: u64) -> &Membership {
        self.gov.membership_at(h)
    }

    /// Whether `key` was retired at or before the anchor, and when.
    fn retired(&self, key: &PublicKey) -> Option<Retirement> {
        self.membership(self.upto).retired_key(key).map(|r| Retirement { reason: r.reason, since: r.since })
    }

    /// The issuer holding `key` at height `h` (frozen or not).
    fn issuer_party(&self, h: u64, key: &PublicKey) -> Party {
        let (name, region) = match self.membership(h).issuer_any(key) {
            Some(i) => (i.name.clone(), i.region.to_string()),
            None => (String::new(), String::new()),
        };
        Party { name, region, key: *key, retired: self.retired(key) }
    }

    /// The name of the issuer that ever held `key`, for messages (keys are never
    /// given to anyone else, so the name is unique).
    fn key_name(&self, key: &PublicKey) -> String {
        self.gov.timeline().find_map(|(_, m)| m.issuer_any(key).map(|i| i.name.clone())).unwrap_or_else(|| key.to_hex())
    }

    /// Steps 2–3: the header decodes canonically and is for this chain.
    pub(crate) fn header(&self, field: &str, a: &Anchor) -> Result<BlockHeader, VerifyError> {
        let hb = unhex(&format!("{field}.header"), &a.header, MAX_HEADER_BYTES)?;
        let header: BlockHeader = decode_canonical(&format!("{field}.header"), &hb, MAX_HEADER_BYTES, "block header")?;
        if header.chain != self.chain {
            return Err(fail(
                Check::Chain,
                format!("{field}: header is for chain {}, the genesis is chain {}", header.chain, self.chain),
            ));
        }
        Ok(header)
    }

    /// Steps 4–5 and 24: the certificate proves `header` final under the
    /// validators of `membership` (the membership in force at its height), and
    /// the header commits to that membership.
    pub(crate) fn certify(&self, field: &str, a: &Anchor, header: &BlockHeader, membership: &Membership) -> Result<CommitCertificate, VerifyError> {
        let hash = header.hash().map_err(|e| fail(Check::Decode, format!("{field}.header: {e}")))?;
        let cb = unhex(&format!("{field}.certificate"), &a.certificate, MAX_CERTIFICATE_BYTES)?;
        let cert: CommitCertificate =
            decode_canonical(&format!("{field}.certificate"), &cb, MAX_CERTIFICATE_BYTES, "certificate")?;
        let h = header.height;
        let set = membership.validator_set().map_err(|e| {
            fail(Check::Governance, format!("{field}: the validators in force at height {h} do not form a validator set: {e}"))
        })?;
        cert.verify(&self.chain, &set, h, &hash).map_err(|e| {
            fail(
                Check::Certificate,
                format!("{field}: the certificate does not prove block {h} final under the {} validators in force at that height: {e}", set.len()),
            )
        })?;
        let replayed = membership.hash().map_err(|e| fail(Check::Governance, format!("{field}: membership: {e}")))?;
        if header.membership != replayed {
            return Err(fail(
                Check::Governance,
                format!(
                    "{field}: block {h} commits to membership {}, but the governance section gives {replayed} at that height (a change is left out or added)",
                    header.membership
                ),
            ));
        }
        Ok(cert)
    }

    /// Steps 1–5 and 24 for an anchor of the file: decoded, for this chain, at
    /// most the replayed height, certified by the validators in force at its
    /// height, committing to the membership in force.
    pub(crate) fn anchor(&self, field: &str, a: &Anchor) -> Result<(BlockHeader, BlockInfo), VerifyError> {
        let header = self.header(field, a)?;
        let h = header.height.0;
        if h > self.upto {
            return Err(fail(
                Check::Governance,
                format!("{field}: block {h} is after block {}, the highest the governance section is replayed to", self.upto),
            ));
        }
        let membership = self.gov.membership_at(h).clone();
        let cert = self.certify(field, a, &header, &membership)?;
        let hash = header.hash().map_err(|e| fail(Check::Decode, format!("{field}.header: {e}")))?;
        let signers = cert
            .signatures
            .iter()
            .map(|(i, _)| match membership.validators.get(i.0 as usize) {
                Some(v) => Party { name: v.name.clone(), region: v.region.to_string(), key: v.key, retired: self.retired(&v.key) },
                None => Party { name: String::new(), region: String::new(), key: PublicKey([0; 32]), retired: None },
            })
            .collect();
        let info = BlockInfo { height: h, hash, time_ms: header.timestamp_ms, log_size: header.log_size, signers };
        Ok((header, info))
    }

    /// Steps 6–8: canonical bytes; a credit record (attestation or revocation)
    /// for this chain, well formed; the signature under its key. Whether that key
    /// was an issuer in force, allowed the kind, is step 30, once the
    /// transaction's height is known. `tx_check` is the check named for
    /// everything but decoding (Transaction and IssuerSignature for
    /// attestations, Revocation for revocations).
    fn tx(&self, field: &str, hexed: &str, tx_check: Option<Check>) -> Result<(SignedTransaction, TxId, Vec<u8>), VerifyError> {
        let bytes = unhex(field, hexed, MAX_TX_BYTES)?;
        let tx = SignedTransaction::decode(&bytes).map_err(|e| fail(Check::Decode, format!("{field}: {e}")))?;
        let check = tx_check.unwrap_or(Check::Transaction);
        if tx.tx.chain != self.chain {
            return Err(fail(check, format!("{field}: transaction is for chain {}, this chain is {}", tx.tx.chain, self.chain)));
        }
        if tx.tx.body.is_governance() {
            return Err(fail(check, format!("{field} is a governance {}, not a credit record", tx.tx.body.type_name())));
        }
        tx.tx.check_format().map_err(|e| fail(check, format!("{field}: malformed attestation: {e}")))?;
        match tx.signature_fault() {
            None => {}
            Some(SignatureFault::Signer) => {
                return Err(fail(
                    tx_check.unwrap_or(Check::IssuerSignature),
                    format!("{field}: the signature of issuer {:?} does not verify", self.key_name(&tx.tx.issuer)),
                ))
            }
            Some(SignatureFault::Request { entry }) => {
                return Err(fail(
                    Check::QueryRecord,
                    format!(
                        "{field}: entry {entry}: the lender's signature over its request to node {:?} does not verify",
                        self.key_name(&tx.tx.issuer)
                    ),
                ))
            }
        }
        let id = TxId::of_canonical(&bytes);
        Ok((tx, id, bytes))
    }

    /// Step 30: at height `h` the signer was an issuer in force (its current key,
    /// not frozen) allowed the attestation's kind, as the replayed membership says.
    pub(crate) fn in_force(&self, field: &str, tx: &SignedTransaction, h: u64, check: Check) -> Result<(), VerifyError> {
        check_stateless(self.membership(h), &self.chain, tx).map_err(|e| fail(check, format!("{field}: at height {h}: {e}")))
    }

    /// Whether `membership` lets the revocation's signer revoke an attestation of
    /// the issuer named `target_issuer`: the signer is an issuer in force, and it
    /// is that issuer (by name: its key may have been rotated since it signed the
    /// attestation) or may revoke any record.
    fn may_revoke(&self, membership: &Membership, tx: &SignedTransaction, target_issuer: &str) -> Result<(), String> {
        check_stateless(membership, &self.chain, tx).map_err(|e| e.to_string())?;
        let revoker = membership.issuer(&tx.tx.issuer).ok_or_else(|| format!("key {} is not an issuer in force", tx.tx.issuer))?;
        if revoker.name != target_issuer && !revoker.may_revoke_any {
            return Err(format!("issuer {:?} may not revoke an attestation of issuer {target_issuer:?}", revoker.name));
        }
        Ok(())
    }

    /// Step 31 (the revocation's height is not in a bundle or report): at some
    /// height `h` with `after < h ≤ upto`, the membership in force let the signer
    /// revoke the attestation. Returns that height (the first such).
    pub(crate) fn revoker_height(&self, field: &str, tx: &SignedTransaction, target_issuer: &str, after: u64) -> Result<u64, VerifyError> {
        let first = after + 1;
        let mut starts: Vec<u64> = vec![first];
        starts.extend(self.gov.timeline().map(|(h, _)| h).filter(|h| *h > first && *h <= self.upto));
        let mut why = format!("block {after} is the anchor: there is no later height");
        for h in starts.into_iter().filter(|h| *h <= self.upto) {
            match self.may_revoke(self.membership(h), tx, target_issuer) {
                Ok(()) => return Ok(h),
                Err(e) => why = format!("at height {h}: {e}"),
            }
        }
        Err(fail(
            Check::Revocation,
            format!("{field}: at no height from {first} to {} could the signer revoke this attestation ({why})", self.upto),
        ))
    }

    /// The leaf `H(0x00 ‖ bytes)` is at `log_index` in the header's log.
    fn inclusion(&self, field: &str, inc: &IncludedTx, bytes: &[u8], header: &BlockHeader, check: Check) -> Result<(), VerifyError> {
        if inc.inclusion.len() > INCLUSION_PROOF_HASHES_MAX {
            return Err(fail(check, format!("{field}: inclusion proof has {} hashes, at most {INCLUSION_PROOF_HASHES_MAX}", inc.inclusion.len())));
        }
        merkle::verify_inclusion(&merkle::leaf_hash(bytes), inc.log_index, header.log_size, &inc.inclusion, &header.log_root)
            .map_err(|e| {
                fail(
                    check,
                    format!("{field}: not leaf {} of the log of size {} in block {}: {e}", inc.log_index, header.log_size, header.height),
                )
            })
    }

    /// Decodes a record page and checks it, through its range proof and the
    /// subject-map proof, against the header's subject map; returns the page
    /// and the entries-tree root it proves.
    fn record(&self, field: &str, hexed: &str, proof: &SubjectProofJson, subject: &Uscc, header: &BlockHeader) -> Result<(RecordPage, Hash32), VerifyError> {
        let bytes = unhex(field, hexed, MAX_SUBJECT_RECORD_BYTES)?;
        let page: RecordPage = decode_canonical(field, &bytes, MAX_SUBJECT_RECORD_BYTES, "subject record page")?;
        if &page.subject != subject {
            return Err(fail(Check::SubjectMap, format!("{field} is about {}, not {subject}", page.subject)));
        }
        if proof.siblings.len() > SUBJECT_PROOF_SIBLINGS_MAX {
            return Err(fail(Check::SubjectMap, format!("subject-map proof has {} siblings, at most 256", proof.siblings.len())));
        }
        let root = page.record_root().map_err(|e| {
            fail(
                Check::SubjectMap,
                format!(
                    "the record page of {subject} is not in the subject map of block {}: {field}: entries {}..{} of {} do not give a record root: {e}",
                    header.height,
                    page.from,
                    page.to(),
                    page.count
                ),
            )
        })?;
        let value = root.value_hash().map_err(|e| fail(Check::Decode, format!("{field}: {e}")))?;
        proof.to_proof().verify_present(&subject_key(subject), &value, &header.subjects_root).map_err(|e| {
            fail(
                Check::SubjectMap,
                format!(
                    "the record page of {subject} (entries {}..{} of {}) is not in the subject map of block {}: {e} (an entry, a redacted entry's commitment, the page's place, the count or the range proof was changed)",
                    page.from,
                    page.to(),
                    page.count,
                    header.height
                ),
            )
        })?;
        Ok((page, root.root))
    }

    /// An attestation (already in the log) checked against its record entry and
    /// the membership of its height; then its revocation, if the entry says it
    /// is revoked.
    #[allow(clippy::too_many_arguments)]
    fn attestation(
        &self,
        field: &str,
        inc: &IncludedTx,
        revocation: (&str, Option<&IncludedTx>),
        header: &BlockHeader,
        entry_of: &mut dyn FnMut(&Uscc, &TxId) -> Result<SubjectEntry, VerifyError>,
        expected_id: Option<&TxId>,
        now_ms: u64,
    ) -> Result<AttestationInfo, VerifyError> {
        let (tx, id, bytes) = self.tx(&format!("{field}.tx"), &inc.tx, None)?;
        let TxBody::Attest(a) = &tx.tx.body else {
            return Err(fail(Check::Transaction, format!("{field}.tx is a revocation, not an attestation")));
        };
        if let Some(expected) = expected_id {
            if &id != expected {
                return Err(fail(Check::Completeness, format!("{field} is {id}, the record lists {expected} here")));
            }
        }
        self.inclusion(field, inc, &bytes, header, Check::LogInclusion)?;
        let entry = entry_of(&a.subject, &id)?;
        let entry = &entry;
        check_entry(entry, &tx, header)?;
        let height = entry.height.0;
        self.in_force(&format!("{field}.tx"), &tx, height, Check::Transaction)?;
        let status = entry_status(entry, a.valid_from_ms, now_ms);
        let revocation = self.revocation(revocation.0, entry, revocation.1, &tx, header)?;
        Ok(AttestationInfo {
            id,
            issuer: self.issuer_party(height, &tx.tx.issuer),
            sequence: tx.tx.sequence,
            subject: a.subject,
            kind: a.kind.as_str().to_string(),
            grade: a.grade.map(|g| g.letter()),
            severity: a.severity.map(|s| s.as_str().to_string()),
            evidence: a.evidence,
            issued_at_ms: a.issued_at_ms,
            valid_from_ms: a.valid_from_ms,
            valid_until_ms: a.valid_until_ms,
            fields: a.fields.clone(),
            height,
            log_index: inc.log_index,
            status,
            revocation,
        })
    }

    /// The revocation the entry names: present exactly when revoked, valid,
    /// included, targeting this attestation, by an authorised issuer, same reason.
    fn revocation(
        &self,
        field: &str,
        entry: &SubjectEntry,
        given: Option<&IncludedTx>,
        target: &SignedTransaction,
        header: &BlockHeader,
    ) -> Result<Option<RevocationInfo>, VerifyError> {
        let rf = field.to_string();
        let (by, reason) = match (entry.revoked, given) {
            (None, None) => return Ok(None),
            (None, Some(_)) => {
                return Err(fail(Check::Revocation, format!("{rf} is given but the record says {} is not revoked", entry.id)))
            }
            (Some((by, _)), None) => {
                return Err(fail(Check::Revocation, format!("the record says {} is revoked by {by}, but {rf} is missing", entry.id)))
            }
            (Some(r), Some(_)) => r,
        };
        let inc = given.ok_or_else(|| fail(Check::Revocation, format!("{rf} is missing")))?;
        let (tx, id, bytes) = self.tx(&format!("{rf}.tx"), &inc.tx, Some(Check::Revocation))?;
        if id != by {
            return Err(fail(Check::Revocation, format!("{rf}.tx is {id}, the record says revoked by {by}")));
        }
        let TxBody::Revoke(r) = &tx.tx.body else {
            return Err(fail(Check::Revocation, format!("{rf}.tx is not a revocation")));
        };
        if r.target != entry.id {
            return Err(fail(Check::Revocation, format!("{rf}.tx revokes {}, not {}", r.target, entry.id)));
        }
        if r.reason != reason {
            return Err(fail(Check::Revocation, format!("{rf}.tx gives reason {}, the record says {reason}", r.reason)));
        }
        let target_issuer = self.issuer_party(entry.height.0, &target.tx.issuer).name;
        let at = self.revoker_height(&format!("{rf}.tx"), &tx, &target_issuer, entry.height.0)?;
        self.inclusion(&rf, inc, &bytes, header, Check::Revocation)?;
        Ok(Some(RevocationInfo {
            id,
            reason,
            by: self.issuer_party(at, &tx.tx.issuer),
            evidence: r.evidence,
            issued_at_ms: r.issued_at_ms,
            log_index: inc.log_index,
        }))
    }
}

/// The record entry says what the transaction says.
fn check_entry(entry: &SubjectEntry, tx: &SignedTransaction, header: &BlockHeader) -> Result<(), VerifyError> {
    let TxBody::Attest(a) = &tx.tx.body else {
        return Err(fail(Check::Status, "the transaction is not an attestation"));
    };
    if entry.issuer != tx.tx.issuer || entry.kind != a.kind || entry.valid_until_ms != a.valid_until_ms {
        return Err(fail(Check::Status, format!("the record entry for {} differs from the transaction (issuer, kind or validity)", entry.id)));
    }
    if entry.height.0 == 0 || entry.height > header.height {
        return Err(fail(
            Check::Status,
            format!("the record says {} was committed at height {}, outside 1..={}", entry.id, entry.height, header.height),
        ));
    }
    Ok(())
}

/// Verifies a proof bundle offline: the steps of docs/proofs.md in order.
pub fn verify_bundle(genesis: &Genesis, b: &Bundle, now_ms: u64) -> Result<Verdict, VerifyError> {
    check_format(&b.kind, b.version, BUNDLE_TYPE)?;
    let ctx = Ctx::for_anchor(genesis, "anchor", &b.anchor, "governance", &b.governance)?;
    bundle_with(&ctx, b, now_ms)
}

/// Steps 1–14 of a bundle whose governance section `ctx` has replayed.
fn bundle_with(ctx: &Ctx<'_>, b: &Bundle, now_ms: u64) -> Result<Verdict, VerifyError> {
    let (header, anchor) = ctx.anchor("anchor", &b.anchor)?;
    let mut entry_of = |subject: &Uscc, id: &TxId| {
        let (page, _) = ctx.record("subject.record", &b.subject.record, &b.subject.proof, subject, &header)?;
        page.entries
            .into_iter()
            .find_map(|e| match e {
                EntryView::Full(e) if &e.id == id => Some(e),
                _ => None,
            })
            .ok_or_else(|| fail(Check::Status, format!("the subject record of {subject} does not show attestation {id}")))
    };
    let attestation =
        ctx.attestation("attestation", &b.attestation, ("revocation", b.revocation.as_ref()), &header, &mut entry_of, None, now_ms)?;
    Ok(Verdict { chain_name: ctx.genesis.chain_name.clone(), chain_id: ctx.chain, anchor, attestation, governance: ctx.applied() })
}

/// Verifies a subject report offline: the record page (or absence) is in the
/// map, and the entries are exactly the page's, each valid and included. The
/// verdict says whether the page is the complete record or which range of it.
pub fn verify_report(genesis: &Genesis, r: &Report, now_ms: u64) -> Result<ReportVerdict, VerifyError> {
    check_format(&r.kind, r.version, REPORT_TYPE)?;
    let subject = Uscc::parse(&r.subject).map_err(|e| fail(Check::Decode, format!("subject {:?}: {e}", r.subject)))?;
    if subject.as_str() != r.subject {
        return Err(fail(Check::Decode, format!("subject {:?} is not in canonical form ({subject})", r.subject)));
    }
    let ctx = Ctx::for_anchor(genesis, "anchor", &r.anchor, "governance", &r.governance)?;
    let (header, anchor) = ctx.anchor("anchor", &r.anchor)?;
    let key = subject_key(&subject);
    let Some(record_hex) = &r.record else {
        if r.proof.siblings.len() > SUBJECT_PROOF_SIBLINGS_MAX {
            return Err(fail(Check::SubjectMap, "subject-map proof has more than 256 siblings"));
        }
        r.proof.to_proof().verify_absent(&key, &header.subjects_root).map_err(|e| {
            fail(Check::SubjectMap, format!("no proof that {subject} is absent from the subject map of block {}: {e}", header.height))
        })?;
        if !r.entries.is_empty() {
            return Err(fail(Check::Completeness, format!("the subject has no record, but the report carries {} entries", r.entries.len())));
        }
        return Ok(ReportVerdict {
            chain_name: genesis.chain_name.clone(),
            chain_id: ctx.chain,
            subject,
            anchor,
            count: 0,
            from: 0,
            to: 0,
            complete: true,
            entries_root: None,
            attestations: Vec::new(),
            redacted: Vec::new(),
            governance: ctx.applied(),
        });
    };
    let (page, root) = ctx.record("record", record_hex, &r.proof, &subject, &header)?;
    if r.entries.len() != page.entries.len() {
        return Err(fail(
            Check::Completeness,
            format!(
                "the record lists {} attestations, the report carries {} (the page holds records {}..{} of {})",
                page.entries.len(),
                r.entries.len(),
                page.from,
                page.to(),
                page.count
            ),
        ));
    }
    let mut attestations = Vec::with_capacity(page.entries.len());
    let mut redacted = Vec::new();
    for (i, (entry, given)) in page.entries.iter().zip(&r.entries).enumerate() {
        let field = format!("entries[{i}]");
        let position = page.from + i as u64;
        let (entry, given) = match (entry, given) {
            (EntryView::Full(e), ReportEntry::Full(g)) => (e, g),
            (EntryView::Redacted(c), ReportEntry::Redacted(g)) => {
                if c != &g.redacted {
                    return Err(fail(
                        Check::Completeness,
                        format!("{field} is redacted as {}, the record has commitment {c} at position {position}", g.redacted),
                    ));
                }
                redacted.push(RedactedInfo { position, commitment: *c });
                continue;
            }
            (EntryView::Redacted(_), ReportEntry::Full(_)) => {
                return Err(fail(Check::Completeness, format!("{field} is given in full, but the record has only a commitment here (position {position})")))
            }
            (EntryView::Full(e), ReportEntry::Redacted(_)) => {
                return Err(fail(Check::Completeness, format!("{field} is redacted, but the record shows attestation {} at position {position}", e.id)))
            }
        };
        let mut entry_of = |s: &Uscc, id: &TxId| {
            if s != &subject {
                return Err(fail(Check::Completeness, format!("{field} is about {s}, not {subject}")));
            }
            if id != &entry.id {
                return Err(fail(Check::Status, format!("the subject record of {s} does not show attestation {id} at position {position}")));
            }
            Ok(entry.clone())
        };
        attestations.push(ctx.attestation(
            &format!("{field}.attestation"),
            &given.attestation,
            (&format!("{field}.revocation"), given.revocation.as_ref()),
            &header,
            &mut entry_of,
            Some(&entry.id),
            now_ms,
        )?);
    }
    Ok(ReportVerdict {
        chain_name: genesis.chain_name.clone(),
        chain_id: ctx.chain,
        subject,
        anchor,
        count: page.count,
        from: page.from,
        to: page.to(),
        complete: page.is_complete(),
        entries_root: Some(root),
        attestations,
        redacted,
        governance: ctx.applied(),
    })
}

/// Where a report's page lies in its record, read from the file without
/// checking anything else (clients paging through a record use it to ask for
/// the next page and to notice that the record changed between pages):
/// `None` for a subject without a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSpan {
    pub from: u64,
    pub to: u64,
    pub count: u64,
    /// The entries-tree root the page proves (with `count`, the record's value).
    pub root: Hash32,
    pub anchor_height: u64,
}

pub fn page_span(r: &Report) -> Result<Option<PageSpan>, VerifyError> {
    let hb = unhex("anchor.header", &r.anchor.header, MAX_HEADER_BYTES)?;
    let header: BlockHeader = decode_canonical("anchor.header", &hb, MAX_HEADER_BYTES, "block header")?;
    let Some(hexed) = &r.record else { return Ok(None) };
    let bytes = unhex("record", hexed, MAX_SUBJECT_RECORD_BYTES)?;
    let page: RecordPage = decode_canonical("record", &bytes, MAX_SUBJECT_RECORD_BYTES, "subject record page")?;
    let root = page.record_root().map_err(|e| fail(Check::SubjectMap, format!("record: {e}")))?;
    Ok(Some(PageSpan { from: page.from, to: page.to(), count: page.count, root: root.root, anchor_height: header.height.0 }))
}

/// Verifies the pages of one subject's report together (docs/proofs.md step
/// 17a): each page alone (step 17), then [completeness] every page is about
/// the same subject and proves the same record — the same `count` and
/// entries-tree root, so the same subject-map value at every page's anchor —
/// and each page starts where the previous one ended (no gap, no overlap).
/// The verdict covers `from` of the first page to `to` of the last, as of the
/// latest anchor among the pages (the record is proven unchanged at each);
/// it is complete when that is `0..count`.
pub fn verify_report_pages(genesis: &Genesis, pages: &[Report], now_ms: u64) -> Result<ReportVerdict, VerifyError> {
    let mut merged: Option<ReportVerdict> = None;
    for (k, r) in pages.iter().enumerate() {
        let v = verify_report(genesis, r, now_ms).map_err(|e| VerifyError { check: e.check, message: format!("page {k}: {}", e.message) })?;
        let Some(m) = &mut merged else {
            merged = Some(v);
            continue;
        };
        if v.subject != m.subject {
            return Err(fail(Check::Completeness, format!("page {k} is about {}, page 0 about {}", v.subject, m.subject)));
        }
        if v.count == 0 || m.count == 0 {
            return Err(fail(Check::Completeness, format!("page {k}: a subject without a record is one page, not several")));
        }
        if v.count != m.count || v.entries_root != m.entries_root {
            return Err(fail(
                Check::Completeness,
                format!(
                    "page {k} proves a record of {} entries, page 0 one of {} (or another entries root): the record changed between them — fetch all the pages again",
                    v.count, m.count
                ),
            ));
        }
        if v.from != m.to {
            let why = if v.from > m.to { format!("entries {}..{} are in no page", m.to, v.from) } else { format!("it overlaps the previous pages, which end at {}", m.to) };
            return Err(fail(Check::Completeness, format!("page {k} starts at entry {}: {why}", v.from)));
        }
        m.to = v.to;
        m.attestations.extend(v.attestations);
        m.redacted.extend(v.redacted);
        if v.anchor.height > m.anchor.height {
            m.anchor = v.anchor;
            m.governance = v.governance;
        }
    }
    let mut m = merged.ok_or_else(|| fail(Check::Format, "no report page given"))?;
    m.complete = m.from == 0 && m.to == m.count;
    Ok(m)
}

/// A transaction in its own block: certificate, then inclusion at a log index
/// inside the block's own range.
pub(crate) fn verify_block_tx(ctx: &Ctx<'_>, field: &str, bt: &BlockTx, check: Check) -> Result<(BlockHeader, BlockInfo, SignedTransaction, TxId), VerifyError> {
    let (header, info) = ctx.anchor(&format!("{field}.block"), &bt.block)?;
    let tx_check = if check == Check::Revocation { Some(Check::Revocation) } else { None };
    let (tx, id, bytes) = ctx.tx(&format!("{field}.tx"), &bt.included.tx, tx_check)?;
    let first = header.first_log_index();
    if bt.included.log_index < first || bt.included.log_index >= header.log_size {
        return Err(fail(
            if check == Check::Revocation { check } else { Check::LogInclusion },
            format!("{field}: log index {} is not in block {} (its leaves are {first}..{})", bt.included.log_index, header.height, header.log_size),
        ));
    }
    let inc_check = if check == Check::Revocation { check } else { Check::LogInclusion };
    ctx.inclusion(field, &bt.included, &bytes, &header, inc_check)?;
    Ok((header, info, tx, id))
}

/// Verifies an audit trace: the attestation in its own block, each revocation in
/// its own block, and the current-status bundle, all about the same attestation.
/// The current bundle's governance section is replayed first: its anchor is the
/// trace's latest block, so it gives the membership of every block in the trace.
pub fn verify_trace(genesis: &Genesis, t: &Trace, now_ms: u64) -> Result<TraceVerdict, VerifyError> {
    check_format(&t.kind, t.version, TRACE_TYPE)?;
    check_format(&t.current.kind, t.current.version, BUNDLE_TYPE)?;
    let ctx = Ctx::for_anchor(genesis, "current.anchor", &t.current.anchor, "current.governance", &t.current.governance)?;
    let (oh, origin, otx, oid) = verify_block_tx(&ctx, "origin", &t.origin, Check::Transaction)?;
    if !matches!(otx.tx.body, TxBody::Attest(_)) {
        return Err(fail(Check::Transaction, "origin.tx is a revocation, not an attestation"));
    }
    ctx.in_force("origin.tx", &otx, oh.height.0, Check::Transaction)?;
    let origin_issuer = ctx.issuer_party(oh.height.0, &otx.tx.issuer).name;
    let mut revocations = Vec::with_capacity(t.revocations.len());
    let mut revocation_ids = Vec::with_capacity(t.revocations.len());
    for (i, r) in t.revocations.iter().enumerate() {
        let field = format!("revocations[{i}]");
        let (rh, info, rtx, rid) = verify_block_tx(&ctx, &field, r, Check::Revocation)?;
        let TxBody::Revoke(rv) = &rtx.tx.body else {
            return Err(fail(Check::Revocation, format!("{field}.tx is not a revocation")));
        };
        if rv.target != oid {
            return Err(fail(Check::Revocation, format!("{field}.tx revokes {}, not {oid}", rv.target)));
        }
        if rh.height <= oh.height {
            return Err(fail(Check::Revocation, format!("{field} is in block {}, not after block {}", rh.height, oh.height)));
        }
        ctx.may_revoke(ctx.membership(rh.height.0), &rtx, &origin_issuer)
            .map_err(|e| fail(Check::Revocation, format!("{field}.tx at height {}: {e}", rh.height)))?;
        revocations.push(info);
        revocation_ids.push(rid);
    }
    let current = bundle_with(&ctx, &t.current, now_ms)?;
    if current.attestation.id != oid || current.attestation.height != oh.height.0 || current.attestation.log_index != t.origin.included.log_index {
        return Err(fail(Check::Provenance, "the current-status bundle is about another attestation or place than the origin"));
    }
    let revoked_by: Vec<TxId> = current.attestation.revocation.iter().map(|r| r.id).collect();
    if revoked_by != revocation_ids {
        return Err(fail(
            Check::Revocation,
            format!("the trace lists {} revocation(s), the current record names {}", revocation_ids.len(), revoked_by.len()),
        ));
    }
    if revocations.iter().any(|r| r.height > current.anchor.height) {
        return Err(fail(Check::Provenance, "a revocation is after the current-status anchor"));
    }
    Ok(TraceVerdict { origin, revocations, current })
}

/// Verifies a consistency proof: both headers certified, and the log at `to`
/// extends the log at `from` (RFC 9162 §2.1.4.2).
pub fn verify_consistency(genesis: &Genesis, c: &Consistency) -> Result<ConsistencyVerdict, VerifyError> {
    check_format(&c.kind, c.version, CONSISTENCY_TYPE)?;
    let mut ctx = Ctx::new(genesis)?;
    let upto = ctx.header("from", &c.from)?.height.max(ctx.header("to", &c.to)?.height);
    ctx.replay("governance", &c.governance, upto.0)?;
    let (h1, from) = ctx.anchor("from", &c.from)?;
    let (h2, to) = ctx.anchor("to", &c.to)?;
    if h1.height > h2.height {
        return Err(fail(Check::Consistency, format!("from is block {}, after to (block {})", h1.height, h2.height)));
    }
    if h1.height == h2.height && h1 != h2 {
        return Err(fail(Check::Consistency, format!("two different certified headers at height {}", h1.height)));
    }
    merkle::verify_consistency(h1.log_size, h2.log_size, &h1.log_root, &h2.log_root, &c.proof).map_err(|e| {
        fail(
            Check::Consistency,
            format!("the log of block {} (size {}) does not provably extend the log of block {} (size {}): {e}", h2.height, h2.log_size, h1.height, h1.log_size),
        )
    })?;
    Ok(ConsistencyVerdict {
        chain_name: genesis.chain_name.clone(),
        chain_id: ctx.chain,
        from,
        to,
        from_log_root: h1.log_root,
        to_log_root: h2.log_root,
        governance: ctx.applied(),
    })
}
