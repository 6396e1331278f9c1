//! Equivocation evidence: two conflicting messages signed by one validator.
//!
//! The core emits an [`Equivocation`] the first time it sees a validator sign two
//! different proposals for one `(height, round)`, or two different votes of one
//! kind for one `(height, round)`. [`Equivocation::verify`] re-checks it
//! standalone against the validator set of its height, so the ledger can record
//! it without trusting the reporter. Both messages are of one height, so one set
//! judges them; the index they carry means a key only in that set
//! ([`Equivocation::signer`]).

use serde::{Deserialize, Serialize};

use crate::crypto::{Hash32, PublicKey};
use crate::messages::{MessageError, SignedProposal, SignedVote};
use crate::types::{Height, Round, ValidatorIndex, ValidatorSet};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Equivocation {
    /// Two different proposals by the proposer of one `(height, round)`.
    Proposal { first: SignedProposal, second: SignedProposal },
    /// Two different votes of one kind by one validator at one `(height, round)`.
    Vote { first: SignedVote, second: SignedVote },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    #[error("the two messages are not for the same slot and signer")]
    DifferentSlot,
    #[error("the two messages are identical")]
    NotConflicting,
    #[error("invalid message in evidence: {0}")]
    Invalid(#[from] MessageError),
}

impl Equivocation {
    /// The validator that signed both messages.
    pub fn validator(&self) -> ValidatorIndex {
        match self {
            Equivocation::Proposal { first, .. } => first.proposal.proposer,
            Equivocation::Vote { first, .. } => first.vote.validator,
        }
    }

    pub fn height(&self) -> Height {
        match self {
            Equivocation::Proposal { first, .. } => first.proposal.height,
            Equivocation::Vote { first, .. } => first.vote.height,
        }
    }

    pub fn round(&self) -> Round {
        match self {
            Equivocation::Proposal { first, .. } => first.proposal.round,
            Equivocation::Vote { first, .. } => first.vote.round,
        }
    }

    /// The key of the validator that signed both messages, given the set in force
    /// at [`Equivocation::height`] (an index names different validators at
    /// different heights).
    pub fn signer(&self, set_at_height: &ValidatorSet) -> Option<PublicKey> {
        set_at_height.key(self.validator()).copied()
    }

    /// Checks that both messages verify, share signer and slot, and differ.
    /// `set` must be the validator set in force at [`Equivocation::height`].
    pub fn verify(&self, chain: &Hash32, set: &ValidatorSet) -> Result<(), EvidenceError> {
        match self {
            Equivocation::Proposal { first, second } => {
                let (a, b) = (&first.proposal, &second.proposal);
                if (a.height, a.round, a.proposer) != (b.height, b.round, b.proposer) {
                    return Err(EvidenceError::DifferentSlot);
                }
                if a == b {
                    return Err(EvidenceError::NotConflicting);
                }
                first.verify(chain, set)?;
                second.verify(chain, set)?;
            }
            Equivocation::Vote { first, second } => {
                let (a, b) = (&first.vote, &second.vote);
                if (a.height, a.round, a.kind, a.validator) != (b.height, b.round, b.kind, b.validator) {
                    return Err(EvidenceError::DifferentSlot);
                }
                if a == b {
                    return Err(EvidenceError::NotConflicting);
                }
                first.verify(chain, set)?;
                second.verify(chain, set)?;
            }
        }
        Ok(())
    }
}
