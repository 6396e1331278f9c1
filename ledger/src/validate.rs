//! Validation rules for transactions against the membership in force and the
//! ledger state.
//!
//! Each rule has its own error variant, so callers (API, mempool, block
//! validation) can report exactly which rule a transaction broke. The rules
//! (DESIGN.md, Ledger):
//! 1. size within [`MAX_TX_BYTES`] and canonical encoding;
//! 2. well-formed (grade, severity, validity window, public fields);
//! 3. for this chain;
//! 4. signer in force: an issuer (not retired, allowed this kind) for attestations
//!    and revocations, an agency's governance key for proposals and approvals, a
//!    lender for authorisations, the lender, an agency or an issuer for
//!    withdrawals, a validator or observer for query records (docs/access.md);
//! 5. signature valid;
//! 6. not already committed (transaction id) and sequence number not used before
//!    by this issuer;
//! 7. a revocation's target exists in an earlier block, is an attestation, is
//!    not already revoked, and the revoker is its issuer or an issuer with
//!    `may_revoke_any`.

use yrd_consensus::codec::CodecError;
use yrd_consensus::crypto::{Hash32, PublicKey};

use crate::consent::{self, ConsentError};
use crate::governance::{GovError, Membership, RetireReason};
use crate::tx::{AttestationKind, SignedTransaction, TxBody, TxFormatError, TxId, MAX_TX_BYTES};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("transaction is {len} bytes, more than the {MAX_TX_BYTES}-byte limit")]
    TooLarge { len: usize },
    #[error("transaction cannot be decoded: {0}")]
    Decode(#[from] CodecError),
    #[error("malformed transaction: {0}")]
    Format(#[from] TxFormatError),
    #[error("transaction is for chain {got}, this chain is {expected}")]
    WrongChain { expected: Hash32, got: Hash32 },
    #[error("issuer key {0} is not the key of any issuer in force")]
    UnknownIssuer(PublicKey),
    #[error("issuer {issuer:?} is not allowed to issue {kind} attestations")]
    KindNotAllowed { issuer: String, kind: AttestationKind },
    #[error("issuer signature does not verify")]
    BadSignature,
    #[error("query record entry {entry}: the lender's signature over its request does not verify for this record's node and chain")]
    BadRequestSignature { entry: usize },
    #[error("transaction {0} is already on the ledger (replay)")]
    Duplicate(TxId),
    #[error("issuer {issuer:?} already used sequence number {sequence} (in transaction {by}); sequence numbers are single-use")]
    SequenceUsed { issuer: String, sequence: u64, by: TxId },
    #[error("revocation target {0} is not on the ledger")]
    TargetUnknown(TxId),
    #[error("revocation target {0} is a revocation, not an attestation")]
    TargetNotAttestation(TxId),
    #[error("issuer {issuer:?} may not revoke {target}: it was issued by {target_issuer:?}")]
    NotAuthorised { issuer: String, target: TxId, target_issuer: String },
    #[error("attestation {target} is already revoked by {by}")]
    AlreadyRevoked { target: TxId, by: TxId },
    #[error("key {key} of {name:?} is no longer valid: {reason} at height {since}")]
    RetiredKey { key: PublicKey, name: String, reason: RetireReason, since: u64 },
    #[error("governance: {0}")]
    Governance(#[from] GovError),
    #[error("{0}")]
    Consent(#[from] ConsentError),
}

impl TxError {
    /// A short machine-readable name of the rule that failed.
    pub fn code(&self) -> &'static str {
        match self {
            TxError::TooLarge { .. } => "too_large",
            TxError::Decode(_) => "decode",
            TxError::Format(_) => "format",
            TxError::WrongChain { .. } => "wrong_chain",
            TxError::UnknownIssuer(_) => "unknown_issuer",
            TxError::KindNotAllowed { .. } => "kind_not_allowed",
            TxError::BadSignature => "bad_signature",
            TxError::BadRequestSignature { .. } => "bad_request_signature",
            TxError::Duplicate(_) => "duplicate",
            TxError::SequenceUsed { .. } => "sequence_used",
            TxError::TargetUnknown(_) => "target_unknown",
            TxError::TargetNotAttestation(_) => "target_not_attestation",
            TxError::NotAuthorised { .. } => "not_authorised",
            TxError::AlreadyRevoked { .. } => "already_revoked",
            TxError::RetiredKey { .. } => "key_retired",
            TxError::Governance(e) => e.code(),
            TxError::Consent(e) => e.code(),
        }
    }
}

/// Rules 2–4: everything that needs only the membership in force (the genesis,
/// as changed by governance). Cheap; run before the signature.
pub fn check_stateless(membership: &Membership, chain: &Hash32, tx: &SignedTransaction) -> Result<(), TxError> {
    let t = &tx.tx;
    if &t.chain != chain {
        return Err(TxError::WrongChain { expected: *chain, got: t.chain });
    }
    if t.body.is_governance() {
        membership.agency(&t.issuer).ok_or(GovError::NotAnAgency(t.issuer))?;
        return Ok(());
    }
    if matches!(t.body, TxBody::Authorise(_) | TxBody::Withdraw(_) | TxBody::RecordQueries(_)) {
        consent::check_signer(membership, tx).map_err(|e| match membership.retired_key(&t.issuer) {
            Some(r) => TxError::RetiredKey { key: t.issuer, name: r.name.clone(), reason: r.reason, since: r.since },
            None => e.into(),
        })?;
        t.check_format()?;
        return Ok(());
    }
    let issuer = membership.issuer(&t.issuer).ok_or_else(|| match membership.retired_key(&t.issuer) {
        Some(r) => TxError::RetiredKey { key: t.issuer, name: r.name.clone(), reason: r.reason, since: r.since },
        None => TxError::UnknownIssuer(t.issuer),
    })?;
    t.check_format()?;
    if let TxBody::Attest(a) = &t.body {
        if !issuer.kinds.contains(&a.kind) {
            return Err(TxError::KindNotAllowed { issuer: issuer.name.clone(), kind: a.kind });
        }
    }
    Ok(())
}

/// Rules 1–5 on raw bytes from outside (API, gossip): decode with limits, check
/// statelessly, verify the signature. Returns the transaction and its id.
pub fn check_untrusted_bytes(
    membership: &Membership,
    chain: &Hash32,
    bytes: &[u8],
) -> Result<(SignedTransaction, TxId), TxError> {
    if bytes.len() > MAX_TX_BYTES {
        return Err(TxError::TooLarge { len: bytes.len() });
    }
    let tx = SignedTransaction::decode(bytes)?;
    check_stateless(membership, chain, &tx)?;
    if let Some(fault) = tx.signature_fault() {
        return Err(fault.error());
    }
    // `decode` refused anything but the canonical encoding, so these bytes are
    // the ones the id is defined over (no second encoding).
    let id = TxId::of_canonical(bytes);
    Ok((tx, id))
}

/// [`check_untrusted_bytes`] for many transactions: one result per input, in
/// order, each exactly what checking it alone gives. Signatures are never
/// verified as a batch (see `yrd_consensus::sigrule`): a batch's verdict on a
/// signature could depend on the other signatures in it.
pub fn check_untrusted_batch(
    membership: &Membership,
    chain: &Hash32,
    items: &[&[u8]],
) -> Vec<Result<(SignedTransaction, TxId), TxError>> {
    items.iter().map(|bytes| check_untrusted_bytes(membership, chain, bytes)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::TestChain;
    use crate::tx::AttestationKind;
    use crate::uscc::Uscc;

    #[test]
    fn batch_check_isolates_the_forged_transaction() {
        let chain = TestChain::new(4, 2);
        let mut txs: Vec<SignedTransaction> =
            (0..8).map(|i| chain.attestation((i % 2) as usize, i, Uscc::sample(i), AttestationKind::RedList)).collect();
        txs[5].signature.0[10] ^= 1;
        let mut bytes: Vec<Vec<u8>> = txs.iter().map(|t| t.encode().unwrap()).collect();
        bytes.push(vec![1, 2, 3]);
        let refs: Vec<&[u8]> = bytes.iter().map(|b| b.as_slice()).collect();
        let results = check_untrusted_batch(&chain.membership(), &chain.chain, &refs);
        for (i, r) in results.iter().enumerate() {
            match i {
                5 => assert_eq!(r.as_ref().err(), Some(&TxError::BadSignature)),
                8 => assert!(matches!(r, Err(TxError::Decode(_)))),
                _ => assert_eq!(r.as_ref().map(|(t, _)| t), Ok(&txs[i]), "item {i}"),
            }
        }
        // Same verdicts as one-by-one checking.
        for (i, b) in refs.iter().enumerate() {
            assert_eq!(check_untrusted_bytes(&chain.membership(), &chain.chain, b).is_ok(), results[i].is_ok(), "item {i}");
        }
    }
}
