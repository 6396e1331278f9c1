//! Commit certificates: n − f precommit signatures over one block hash.
//!
//! [`CommitCertificate::verify`] is standalone: it needs only the validator set in
//! force at the certificate's height and the chain id, so lenders' offline
//! verifiers call it directly. The signer indices mean keys only in that set: a
//! certificate is never checked against the set of another height (a key removed
//! or rotated out before the height does not count, docs/consensus.md §7).

use serde::{Deserialize, Serialize};

use crate::crypto::{verify_with, Hash32, Signature};
use crate::messages::{Vote, VoteKind, TAG_VOTE};
use crate::types::{BlockHash, Height, Round, ValidatorIndex, ValidatorSet, MAX_VALIDATORS};

/// Proof that a block is final: precommits for `block_hash` at `(height, round)`
/// from at least a quorum of distinct validators, sorted by validator index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitCertificate {
    pub height: Height,
    pub round: Round,
    pub block_hash: BlockHash,
    pub signatures: Vec<(ValidatorIndex, Signature)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("certificate is for block {got}, expected block {expected}")]
    WrongBlock { expected: BlockHash, got: BlockHash },
    #[error("certificate is for height {got}, expected height {expected}")]
    WrongHeight { expected: Height, got: Height },
    #[error("certificate has {got} signatures, a quorum needs {needed} of {n} validators")]
    TooFewSigners { got: usize, needed: usize, n: usize },
    #[error("certificate has {0} signatures, more than the {MAX_VALIDATORS} maximum")]
    TooManySignatures(usize),
    #[error("signer {index} is not in the validator set of {n}")]
    UnknownSigner { index: ValidatorIndex, n: usize },
    #[error("signers are not strictly increasing at position {position} (duplicate or unsorted signer {index})")]
    UnsortedOrDuplicate { position: usize, index: ValidatorIndex },
    #[error("signature of validator {0} does not verify over this block's precommit")]
    BadSignature(ValidatorIndex),
}

impl CommitCertificate {
    /// The precommit each signer must have signed.
    pub fn precommit(&self, chain: &Hash32, validator: ValidatorIndex) -> Vote {
        Vote {
            chain: *chain,
            kind: VoteKind::Precommit,
            height: self.height,
            round: self.round,
            value: Some(self.block_hash),
            validator,
        }
    }

    /// Verifies the certificate for `expected_block` at `expected_height` against
    /// `set`, which must be the validator set in force at `expected_height`:
    /// structure first (sizes, order, membership, quorum), then every signature.
    pub fn verify(
        &self,
        chain: &Hash32,
        set: &ValidatorSet,
        expected_height: Height,
        expected_block: &BlockHash,
    ) -> Result<(), CertificateError> {
        if self.height != expected_height {
            return Err(CertificateError::WrongHeight { expected: expected_height, got: self.height });
        }
        if &self.block_hash != expected_block {
            return Err(CertificateError::WrongBlock { expected: *expected_block, got: self.block_hash });
        }
        if self.signatures.len() > MAX_VALIDATORS {
            return Err(CertificateError::TooManySignatures(self.signatures.len()));
        }
        for (position, (index, _)) in self.signatures.iter().enumerate() {
            if index.0 as usize >= set.len() {
                return Err(CertificateError::UnknownSigner { index: *index, n: set.len() });
            }
            if position > 0 && self.signatures[position - 1].0 >= *index {
                return Err(CertificateError::UnsortedOrDuplicate { position, index: *index });
            }
        }
        if self.signatures.len() < set.quorum() {
            return Err(CertificateError::TooFewSigners {
                got: self.signatures.len(),
                needed: set.quorum(),
                n: set.len(),
            });
        }
        for (index, sig) in &self.signatures {
            let vk = set
                .verifying_key(*index)
                .ok_or(CertificateError::UnknownSigner { index: *index, n: set.len() })?;
            let payload = self
                .precommit(chain, *index)
                .signing_payload()
                .map_err(|_| CertificateError::BadSignature(*index))?;
            verify_with(vk, TAG_VOTE, &payload, sig).map_err(|_| CertificateError::BadSignature(*index))?;
        }
        Ok(())
    }
}
