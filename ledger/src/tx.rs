//! Credit attestations, revocations and signed transactions.
//!
//! A [`SignedTransaction`] is the only thing users put on the chain. Its signing
//! bytes are `signing_bytes(TAG_TRANSACTION, canonical(Transaction))`; its id is
//! `SHA-256(canonical(SignedTransaction))`. Both are recomputed on decode, never
//! taken from the wire.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use yrd_consensus::codec::{self, CodecError};
use yrd_consensus::crypto::{sha256, Hash32, PublicKey, SecretKey, Signature};

use crate::uscc::Uscc;

/// Domain tag of transaction signatures.
pub const TAG_TRANSACTION: &[u8] = b"ledger/transaction";

/// Largest encoded transaction accepted anywhere (API, gossip, blocks).
pub const MAX_TX_BYTES: usize = 4096;
/// Most public fields an attestation may carry.
pub const MAX_FIELDS: usize = 8;
/// Longest public field name, in bytes.
pub const MAX_FIELD_NAME_BYTES: usize = 32;
/// Longest public field value, in bytes.
pub const MAX_FIELD_VALUE_BYTES: usize = 256;

/// The id of a transaction: SHA-256 of its canonical bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TxId(pub Hash32);

impl TxId {
    /// The id of the transaction whose canonical encoding is `bytes`: their
    /// SHA-256 (the one definition; [`SignedTransaction::id`] encodes first).
    pub fn of_canonical(bytes: &[u8]) -> TxId {
        TxId(sha256(&[bytes]))
    }

    pub fn to_hex(&self) -> String {
        self.0.to_hex()
    }
    pub fn from_hex(s: &str) -> Result<Self, yrd_consensus::crypto::CryptoError> {
        Hash32::from_hex(s).map(TxId)
    }
}

impl fmt::Display for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_hex())
    }
}

impl fmt::Debug for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tx:{:?}", self.0)
    }
}

macro_rules! kebab_enum {
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$vm:meta])* $variant:ident => $text:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum $name { $($(#[$vm])* $variant),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                let t = s.trim().to_ascii_lowercase().replace('_', "-");
                $name::ALL.iter().copied().find(|k| k.as_str() == t).ok_or_else(|| {
                    let all: Vec<&str> = $name::ALL.iter().map(|k| k.as_str()).collect();
                    format!("unknown {} '{}': expected one of {}", stringify!($name), s, all.join(", "))
                })
            }
        }
    };
}

kebab_enum! {
    /// What an attestation says about its subject (DESIGN.md, Domain).
    pub enum AttestationKind {
        /// 守信红名单 — a red list (commendation) entry.
        RedList => "red-list",
        /// 严重失信主体名单 — the serious-dishonesty list.
        SeriousDishonesty => "serious-dishonesty",
        /// 行政处罚 — an administrative penalty.
        AdministrativePenalty => "administrative-penalty",
        /// 公共信用评价 — a public credit rating, with a grade A/B/C/D.
        CreditRating => "credit-rating",
        /// 纳税信用等级 — a tax credit rating, grade A/B/M/C/D.
        TaxCredit => "tax-credit",
        /// 失信被执行人 — a court enforcement (dishonest judgment debtor) record.
        CourtEnforcement => "court-enforcement",
        /// 信用承诺 — a credit commitment made by the enterprise.
        Commitment => "commitment",
    }
}

kebab_enum! {
    /// Why an attestation is revoked. The original is never deleted; its status changes.
    pub enum RevocationReason {
        /// 信用修复 — the subject completed credit repair.
        Repair => "repair",
        /// 异议处理 — a dispute about the record was upheld.
        Dispute => "dispute",
        /// The issuer published the record in error.
        Error => "error",
    }
}

kebab_enum! {
    /// How severe a negative record is, where the kind has a severity.
    pub enum Severity {
        Minor => "minor",
        General => "general",
        Serious => "serious",
    }
}

kebab_enum! {
    /// Rating grades. Tax credit uses A, B, M, C, D; public credit rating A, B, C, D.
    pub enum Grade {
        A => "a",
        B => "b",
        M => "m",
        C => "c",
        D => "d",
    }
}

impl Grade {
    pub fn letter(&self) -> char {
        self.as_str().chars().next().map(|c| c.to_ascii_uppercase()).unwrap_or('?')
    }
}

impl AttestationKind {
    /// The grades this kind accepts; empty if the kind has no grade.
    pub fn grades(&self) -> &'static [Grade] {
        match self {
            AttestationKind::TaxCredit => &[Grade::A, Grade::B, Grade::M, Grade::C, Grade::D],
            AttestationKind::CreditRating => &[Grade::A, Grade::B, Grade::C, Grade::D],
            _ => &[],
        }
    }

    /// Whether the kind carries a severity.
    pub fn has_severity(&self) -> bool {
        matches!(
            self,
            AttestationKind::AdministrativePenalty | AttestationKind::SeriousDishonesty | AttestationKind::CourtEnforcement
        )
    }
}

/// An issuer's signed statement about one subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    pub subject: Uscc,
    pub kind: AttestationKind,
    /// Required for credit-rating and tax-credit, absent otherwise.
    pub grade: Option<Grade>,
    /// Optional for the negative kinds, absent otherwise.
    pub severity: Option<Severity>,
    /// SHA-256 of the off-chain evidence document. Personal data never goes on chain.
    pub evidence: Hash32,
    /// Milliseconds since the Unix epoch, UTC.
    pub issued_at_ms: u64,
    pub valid_from_ms: u64,
    /// `None`: valid until revoked.
    pub valid_until_ms: Option<u64>,
    /// Short public fields (e.g. decision number), sorted by name, names unique.
    pub fields: Vec<(String, String)>,
}

/// Revokes an earlier attestation (credit repair, upheld dispute, issuer error).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub target: TxId,
    pub reason: RevocationReason,
    /// SHA-256 of the off-chain decision document (repair approval, dispute ruling), if any.
    pub evidence: Option<Hash32>,
    pub issued_at_ms: u64,
}

/// What a transaction does. New kinds are appended as new variants; existing
/// variant indexes (and so every existing transaction's bytes) never change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxBody {
    Attest(Attestation),
    Revoke(Revocation),
    /// A governance proposal, signed by an agency's admin key (docs/governance.md).
    Propose(crate::governance::GovProposal),
    /// An agency's approval of a proposal, signed by its admin key.
    Approve(crate::governance::GovApproval),
    /// A lender's record of an enterprise's consent (授权), signed by the lender
    /// (docs/access.md).
    Authorise(crate::consent::Authorisation),
    /// The end of an authorisation (consent withdrawn), signed by its lender or
    /// by an agency (admin or issuer key).
    Withdraw(crate::consent::Withdrawal),
    /// Authorised queries a node served, signed by the node's key (validator or
    /// observer): the query receipts (docs/access.md).
    RecordQueries(crate::queries::QueryRecords),
}

impl TxBody {
    /// The kind of transaction, as the API and CLI name it.
    pub fn type_name(&self) -> &'static str {
        match self {
            TxBody::Attest(_) => "attestation",
            TxBody::Revoke(_) => "revocation",
            TxBody::Propose(_) => "proposal",
            TxBody::Approve(_) => "approval",
            TxBody::Authorise(_) => "authorisation",
            TxBody::Withdraw(_) => "withdrawal",
            TxBody::RecordQueries(_) => "query-records",
        }
    }

    /// Signed by an agency's governance key rather than an issuer key.
    pub fn is_governance(&self) -> bool {
        matches!(self, TxBody::Propose(_) | TxBody::Approve(_))
    }

    /// An authorisation or a withdrawal (docs/access.md).
    pub fn is_consent(&self) -> bool {
        matches!(self, TxBody::Authorise(_) | TxBody::Withdraw(_))
    }
}

/// The signed content of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// The chain id (genesis hash): a transaction is valid on one chain only.
    pub chain: Hash32,
    /// The signer's key: an issuer in force (attestations, revocations) or an
    /// agency's governance key (proposals, approvals).
    pub issuer: PublicKey,
    /// Per-signer replay protection: each sequence number is usable once.
    pub sequence: u64,
    pub body: TxBody,
}

/// A transaction with the issuer's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTransaction {
    pub tx: Transaction,
    pub signature: Signature,
}

/// Structural problems found without any ledger state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxFormatError {
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("{kind} attestations need a grade (one of {allowed})")]
    MissingGrade { kind: AttestationKind, allowed: String },
    #[error("grade {grade} is not valid for {kind} attestations{}", if .allowed.is_empty() { " (this kind has no grade)".to_string() } else { format!(" (allowed: {})", .allowed) })]
    BadGrade { kind: AttestationKind, grade: char, allowed: String },
    #[error("{kind} attestations carry no severity")]
    UnexpectedSeverity { kind: AttestationKind },
    #[error("valid_until ({until}) is not after valid_from ({from})")]
    EmptyValidity { from: u64, until: u64 },
    #[error("{count} public fields, at most {MAX_FIELDS} allowed")]
    TooManyFields { count: usize },
    #[error("public field name {name:?} must be 1 to {MAX_FIELD_NAME_BYTES} bytes of a-z, 0-9, '-' or '_'")]
    BadFieldName { name: String },
    #[error("public field {name:?} value is {len} bytes, at most {MAX_FIELD_VALUE_BYTES} allowed")]
    FieldTooLong { name: String, len: usize },
    #[error("public field names must be sorted and unique ({name:?} is out of order or repeated)")]
    FieldsNotSorted { name: String },
    #[error("public field {name:?} contains control characters")]
    FieldControlChars { name: String },
    #[error("authorisation: {0}")]
    Authorisation(String),
    #[error("query records: {0}")]
    QueryRecords(String),
}

impl Attestation {
    /// Checks everything that depends on the attestation alone.
    pub fn check_format(&self) -> Result<(), TxFormatError> {
        let allowed_grades = self.kind.grades();
        let allowed = allowed_grades.iter().map(|g| g.letter().to_string()).collect::<Vec<_>>().join(", ");
        match self.grade {
            None if !allowed_grades.is_empty() => {
                return Err(TxFormatError::MissingGrade { kind: self.kind, allowed })
            }
            Some(g) if !allowed_grades.contains(&g) => {
                return Err(TxFormatError::BadGrade { kind: self.kind, grade: g.letter(), allowed })
            }
            _ => {}
        }
        if self.severity.is_some() && !self.kind.has_severity() {
            return Err(TxFormatError::UnexpectedSeverity { kind: self.kind });
        }
        if let Some(until) = self.valid_until_ms {
            if until <= self.valid_from_ms {
                return Err(TxFormatError::EmptyValidity { from: self.valid_from_ms, until });
            }
        }
        if self.fields.len() > MAX_FIELDS {
            return Err(TxFormatError::TooManyFields { count: self.fields.len() });
        }
        for (i, (name, value)) in self.fields.iter().enumerate() {
            let name_ok = !name.is_empty()
                && name.len() <= MAX_FIELD_NAME_BYTES
                && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
            if !name_ok {
                return Err(TxFormatError::BadFieldName { name: name.clone() });
            }
            if value.len() > MAX_FIELD_VALUE_BYTES {
                return Err(TxFormatError::FieldTooLong { name: name.clone(), len: value.len() });
            }
            if value.chars().any(char::is_control) {
                return Err(TxFormatError::FieldControlChars { name: name.clone() });
            }
            if i > 0 && self.fields[i - 1].0 >= *name {
                return Err(TxFormatError::FieldsNotSorted { name: name.clone() });
            }
        }
        Ok(())
    }
}

impl Transaction {
    /// The bytes the issuer signs (before domain separation).
    pub fn signing_payload(&self) -> Result<Vec<u8>, CodecError> {
        codec::encode(self)
    }

    pub fn sign(self, key: &SecretKey) -> Result<SignedTransaction, CodecError> {
        let signature = key.sign(TAG_TRANSACTION, &self.signing_payload()?);
        Ok(SignedTransaction { tx: self, signature })
    }

    /// Checks the body's format (governance proposals are checked against the
    /// membership, by the governance rules).
    pub fn check_format(&self) -> Result<(), TxFormatError> {
        match &self.body {
            TxBody::Attest(a) => a.check_format(),
            TxBody::Authorise(a) => a.check_format(),
            TxBody::Withdraw(_) | TxBody::Revoke(_) | TxBody::Propose(_) | TxBody::Approve(_) => Ok(()),
            TxBody::RecordQueries(q) => q.check_format(),
        }
    }

    /// The subject this transaction is about, for attestations.
    pub fn subject(&self) -> Option<&Uscc> {
        match &self.body {
            TxBody::Attest(a) => Some(&a.subject),
            _ => None,
        }
    }
}

impl SignedTransaction {
    pub fn encode(&self) -> Result<Vec<u8>, CodecError> {
        codec::encode(self)
    }

    /// Decodes an untrusted transaction: size limit, no trailing bytes, and
    /// re-encodes to make sure the bytes were canonical.
    pub fn decode(bytes: &[u8]) -> Result<SignedTransaction, CodecError> {
        let tx: SignedTransaction = codec::decode(bytes, MAX_TX_BYTES, "transaction")?;
        let again = tx.encode()?;
        if again != bytes {
            return Err(CodecError::Malformed { what: "transaction", reason: "non-canonical encoding".into() });
        }
        Ok(tx)
    }

    /// The transaction id: SHA-256 of the canonical bytes.
    pub fn id(&self) -> Result<TxId, CodecError> {
        Ok(TxId::of_canonical(&self.encode()?))
    }

    /// Verifies the issuer's signature under the signature rule
    /// (`yrd_consensus::sigrule`): the one check every path uses (admission,
    /// block validation, sync, the audit, offline proofs). A query record's
    /// signatures are the node's and, in every entry, the lender's over its
    /// request to that node (`queries::SignedRequest::verify` with the record's
    /// signer as the node): all of them must verify, so no path can accept a
    /// record another refuses for a forged request. [`Self::signature_fault`]
    /// says which one failed.
    pub fn verify_signature(&self) -> Result<(), yrd_consensus::crypto::CryptoError> {
        match self.signature_fault() {
            None => Ok(()),
            Some(_) => Err(yrd_consensus::crypto::CryptoError::BadSignature),
        }
    }

    /// The first signature of this transaction that does not verify, if any:
    /// the signer's, else (query records) the first entry whose lender's
    /// request signature does not.
    pub fn signature_fault(&self) -> Option<SignatureFault> {
        let Ok(payload) = self.tx.signing_payload() else { return Some(SignatureFault::Signer) };
        if self.tx.issuer.verify(TAG_TRANSACTION, &payload, &self.signature).is_err() {
            return Some(SignatureFault::Signer);
        }
        if let TxBody::RecordQueries(q) = &self.tx.body {
            for (entry, e) in q.entries.iter().enumerate() {
                if e.request.verify(&self.tx.chain, &self.tx.issuer).is_err() {
                    return Some(SignatureFault::Request { entry });
                }
            }
        }
        None
    }
}

/// Which signature of a transaction does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureFault {
    /// The signer's (issuer, agency, lender or node) over the transaction.
    Signer,
    /// A query record's entry: the lender's over its request to the record's node.
    Request { entry: usize },
}

impl SignatureFault {
    /// The transaction error for this fault.
    pub fn error(self) -> crate::validate::TxError {
        match self {
            SignatureFault::Signer => crate::validate::TxError::BadSignature,
            SignatureFault::Request { entry } => crate::validate::TxError::BadRequestSignature { entry },
        }
    }
}

