//! Double-sign protection: what a validator must remember across restarts, and the
//! pure predicates that decide whether it may sign.
//!
//! The core never releases a signature before the node has persisted the
//! [`SafetyState`] that covers it: every `Action::BroadcastProposal` /
//! `Action::BroadcastVote` of a *new* signature is preceded, in the same action
//! list, by an `Action::PersistSafety` recording it (docs/consensus.md, "Persist
//! before sign"). After a restart from the last persisted state, [`check_sign`]
//! refuses any message that would conflict with one already signed, and the lock
//! ([`SafetyState::locked`]) keeps the prevote rules L23/L29 of the Tendermint paper
//! (arXiv 1807.04938, Algorithm 1) in force.

use serde::{Deserialize, Serialize};

use crate::messages::SignedVote;
use crate::types::{BlockHash, Height, Round};

/// The kinds of message a validator signs, in the order it signs them within a
/// round. The order matters: [`check_sign`] compares `(height, round, step)`
/// lexicographically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SignStep {
    Proposal,
    Prevote,
    Precommit,
}

/// One signed message, reduced to what identifies it: its slot
/// `(height, round, step)` and its content (`value`, plus `pol_round` for
/// proposals). Two messages with the same slot and different content conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SignedSlot {
    pub height: Height,
    pub round: Round,
    pub step: SignStep,
    /// The value voted or proposed; `None` is a vote for nil (never a proposal).
    pub value: Option<BlockHash>,
    /// Only for proposals: the proof-of-lock round carried by the proposal.
    pub pol_round: Option<Round>,
}

impl SignedSlot {
    fn position(&self) -> (Height, Round, SignStep) {
        (self.height, self.round, self.step)
    }
}

/// A value together with the round at which a quorum prevoted it (a lock, or a
/// "valid value" in the paper's terms), scoped to one height.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LockedValue {
    pub height: Height,
    pub round: Round,
    pub value: BlockHash,
}

/// What a validator persists before releasing a signature. `Default` is the state
/// of a validator that has never signed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SafetyState {
    /// The highest slot this validator has signed in, and what it signed there.
    pub last_signed: Option<SignedSlot>,
    /// The lock (paper: `lockedValue_p`, `lockedRound_p`), set when precommitting
    /// a value (L38-L39). Needed for safety after a restart.
    pub locked: Option<LockedValue>,
    /// The paper's `validValue_p`, `validRound_p` (L42-L43). Only liveness
    /// depends on it; persisted so a restarted proposer can re-propose it.
    pub valid: Option<LockedValue>,
    /// The proof of `valid`: the 2f + 1 prevotes for it at its round. A proposer
    /// re-broadcasts them with its re-proposal (docs/consensus.md D2); without them
    /// a locked validator that restarted could stall the chain forever.
    pub valid_proof: Vec<SignedVote>,
}

/// Verdict of [`check_sign`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignCheck {
    /// The slot is above everything signed so far: persist, then sign.
    Fresh,
    /// Exactly this message was signed before (ed25519 signatures are
    /// deterministic, so re-signing reproduces the same bytes): sign, no persist.
    SameMessage,
    /// Same slot, different content: signing would be equivocation. Refuse.
    Conflicts { signed: SignedSlot },
    /// Below the last signed slot: refuse (we may have signed something
    /// conflicting there before a restart and forgotten it).
    Regresses { signed: SignedSlot },
}

/// The signing rule (docs/consensus.md, "Double-sign protection"): a validator
/// signs in strictly increasing `(height, round, step)` order; the only exception
/// is re-signing the identical message at the last slot.
pub fn check_sign(state: &SafetyState, next: &SignedSlot) -> SignCheck {
    let Some(last) = state.last_signed else {
        return SignCheck::Fresh;
    };
    match next.position().cmp(&last.position()) {
        std::cmp::Ordering::Greater => SignCheck::Fresh,
        std::cmp::Ordering::Equal if next == &last => SignCheck::SameMessage,
        std::cmp::Ordering::Equal => SignCheck::Conflicts { signed: last },
        std::cmp::Ordering::Less => SignCheck::Regresses { signed: last },
    }
}

/// Paper L23: a proposal without proof-of-lock (`validRound = −1`) may be
/// prevoted only if we are not locked, or locked on the same value.
pub fn may_prevote_fresh(locked: Option<(Round, BlockHash)>, value: &BlockHash) -> bool {
    match locked {
        None => true,
        Some((_, locked_value)) => &locked_value == value,
    }
}

/// Paper L29: a proposal carrying a proof-of-lock from round `pol_round` (2f + 1
/// prevotes for `value` at `pol_round`, which the caller has checked) may be
/// prevoted if our lock is not newer than that proof, or is on the same value.
pub fn may_prevote_with_pol(locked: Option<(Round, BlockHash)>, value: &BlockHash, pol_round: Round) -> bool {
    match locked {
        None => true,
        Some((locked_round, locked_value)) => locked_round <= pol_round || &locked_value == value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::sha256;

    fn slot(h: u64, r: u32, step: SignStep, v: Option<&[u8]>) -> SignedSlot {
        SignedSlot { height: Height(h), round: Round(r), step, value: v.map(|b| sha256(&[b])), pol_round: None }
    }

    fn state(last: SignedSlot) -> SafetyState {
        SafetyState { last_signed: Some(last), ..SafetyState::default() }
    }

    #[test]
    fn never_signed_is_fresh() {
        assert_eq!(check_sign(&SafetyState::default(), &slot(1, 0, SignStep::Prevote, None)), SignCheck::Fresh);
    }

    #[test]
    fn signing_order_is_height_round_step() {
        let s = state(slot(5, 2, SignStep::Prevote, Some(b"a")));
        assert_eq!(check_sign(&s, &slot(5, 2, SignStep::Precommit, None)), SignCheck::Fresh);
        assert_eq!(check_sign(&s, &slot(5, 3, SignStep::Proposal, Some(b"b"))), SignCheck::Fresh);
        assert_eq!(check_sign(&s, &slot(6, 0, SignStep::Proposal, Some(b"b"))), SignCheck::Fresh);
        assert!(matches!(check_sign(&s, &slot(5, 2, SignStep::Proposal, Some(b"a"))), SignCheck::Regresses { .. }));
        assert!(matches!(check_sign(&s, &slot(5, 1, SignStep::Precommit, Some(b"a"))), SignCheck::Regresses { .. }));
        assert!(matches!(check_sign(&s, &slot(4, 9, SignStep::Precommit, Some(b"a"))), SignCheck::Regresses { .. }));
    }

    #[test]
    fn same_slot_same_message_only() {
        let s = state(slot(5, 2, SignStep::Prevote, Some(b"a")));
        assert_eq!(check_sign(&s, &slot(5, 2, SignStep::Prevote, Some(b"a"))), SignCheck::SameMessage);
        assert!(matches!(check_sign(&s, &slot(5, 2, SignStep::Prevote, Some(b"b"))), SignCheck::Conflicts { .. }));
        assert!(matches!(check_sign(&s, &slot(5, 2, SignStep::Prevote, None)), SignCheck::Conflicts { .. }));
        let mut p = slot(5, 2, SignStep::Proposal, Some(b"a"));
        let s = state(p);
        p.pol_round = Some(Round(1));
        assert!(matches!(check_sign(&s, &p), SignCheck::Conflicts { .. }), "pol_round is content");
    }

    #[test]
    fn lock_rules_l23_l29() {
        let a = sha256(&[b"a"]);
        let b = sha256(&[b"b"]);
        assert!(may_prevote_fresh(None, &a));
        assert!(may_prevote_fresh(Some((Round(3), a)), &a));
        assert!(!may_prevote_fresh(Some((Round(3), a)), &b));
        assert!(may_prevote_with_pol(Some((Round(3), a)), &b, Round(3)));
        assert!(may_prevote_with_pol(Some((Round(3), a)), &b, Round(4)));
        assert!(!may_prevote_with_pol(Some((Round(3), a)), &b, Round(2)));
        assert!(may_prevote_with_pol(Some((Round(3), a)), &a, Round(0)));
    }
}
