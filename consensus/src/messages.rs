//! Signed consensus messages: proposals and votes.
//!
//! Each is signed over `signing_bytes(TAG, canonical(body))`; the body carries the
//! chain id (the genesis hash), so a signature can never be replayed on another
//! chain, another kind of message, or another height or round.

use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError};
use crate::crypto::{verify_with, Hash32, SecretKey, Signature};
use crate::types::{BlockHash, Height, Round, ValidatorIndex, ValidatorSet};

/// Domain tag of proposal signatures.
pub const TAG_PROPOSAL: &[u8] = b"consensus/proposal";
/// Domain tag of vote signatures (prevotes and precommits; the kind is in the body).
pub const TAG_VOTE: &[u8] = b"consensus/vote";

/// Largest encoded consensus message we accept (votes and proposals are small;
/// block bodies travel separately).
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// A proposer's claim: "at (height, round) I propose the block with this hash".
/// `pol_round` is the round of the proof-of-lock it re-proposes, if any.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Proposal {
    pub chain: Hash32,
    pub height: Height,
    pub round: Round,
    pub value: BlockHash,
    pub pol_round: Option<Round>,
    pub proposer: ValidatorIndex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum VoteKind {
    Prevote,
    Precommit,
}

/// A prevote or precommit. `value: None` is a vote for nil.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Vote {
    pub chain: Hash32,
    pub kind: VoteKind,
    pub height: Height,
    pub round: Round,
    pub value: Option<BlockHash>,
    pub validator: ValidatorIndex,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SignedProposal {
    pub proposal: Proposal,
    pub signature: Signature,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SignedVote {
    pub vote: Vote,
    pub signature: Signature,
}

/// Why a signed message was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("message is for chain {got}, this chain is {expected}")]
    WrongChain { expected: Hash32, got: Hash32 },
    #[error("validator index {index} is not in the validator set of {n}")]
    UnknownValidator { index: ValidatorIndex, n: usize },
    #[error("proposal at height {height} round {round} is from validator {got}, the proposer is {expected}")]
    WrongProposer { height: Height, round: Round, expected: ValidatorIndex, got: ValidatorIndex },
    #[error("proof-of-lock round {pol_round} is not below the proposal round {round}")]
    BadPolRound { round: Round, pol_round: Round },
    #[error("bad signature from validator {0}")]
    BadSignature(ValidatorIndex),
    #[error(transparent)]
    Codec(#[from] CodecError),
}

impl Proposal {
    pub fn signing_payload(&self) -> Result<Vec<u8>, CodecError> {
        codec::encode(self)
    }

    pub fn sign(self, key: &SecretKey) -> Result<SignedProposal, CodecError> {
        let signature = key.sign(TAG_PROPOSAL, &self.signing_payload()?);
        Ok(SignedProposal { proposal: self, signature })
    }
}

impl Vote {
    pub fn signing_payload(&self) -> Result<Vec<u8>, CodecError> {
        codec::encode(self)
    }

    pub fn sign(self, key: &SecretKey) -> Result<SignedVote, CodecError> {
        let signature = key.sign(TAG_VOTE, &self.signing_payload()?);
        Ok(SignedVote { vote: self, signature })
    }
}

impl SignedProposal {
    /// Checks chain, proposer (a pure function of height and round), pol_round
    /// and signature. Cheap checks come before the signature.
    pub fn verify(&self, chain: &Hash32, set: &ValidatorSet) -> Result<(), MessageError> {
        let p = &self.proposal;
        if &p.chain != chain {
            return Err(MessageError::WrongChain { expected: *chain, got: p.chain });
        }
        let vk = set
            .verifying_key(p.proposer)
            .ok_or(MessageError::UnknownValidator { index: p.proposer, n: set.len() })?;
        let expected = set.proposer(p.height, p.round);
        if p.proposer != expected {
            return Err(MessageError::WrongProposer { height: p.height, round: p.round, expected, got: p.proposer });
        }
        if let Some(pol) = p.pol_round {
            if pol >= p.round {
                return Err(MessageError::BadPolRound { round: p.round, pol_round: pol });
            }
        }
        verify_with(vk, TAG_PROPOSAL, &p.signing_payload()?, &self.signature)
            .map_err(|_| MessageError::BadSignature(p.proposer))
    }
}

impl SignedVote {
    /// Checks chain, validator index and signature.
    pub fn verify(&self, chain: &Hash32, set: &ValidatorSet) -> Result<(), MessageError> {
        let v = &self.vote;
        if &v.chain != chain {
            return Err(MessageError::WrongChain { expected: *chain, got: v.chain });
        }
        let vk = set
            .verifying_key(v.validator)
            .ok_or(MessageError::UnknownValidator { index: v.validator, n: set.len() })?;
        verify_with(vk, TAG_VOTE, &v.signing_payload()?, &self.signature)
            .map_err(|_| MessageError::BadSignature(v.validator))
    }
}
