//! The canonical commit certificate of a block (docs/proofs.md §3, "The
//! certificate a node serves"): so that the same question asked of two nodes
//! gives the same file, byte for byte.
//!
//! A node decides a block as soon as it holds a quorum of precommits, and
//! which precommits arrived first differs from node to node: left alone, four
//! nodes store four different (all valid) certificates for one block. The rule:
//! the canonical certificate of block `h` decided at round `r` holds the
//! precommits for it at `r` of the `q` (quorum) validators with the **lowest
//! indexes** among those whose precommit the node has, in index order. A node
//! stores that at commit, then keeps taking the precommits for the blocks it
//! committed that arrive late (the last [`CANONICAL_CERT_WINDOW_BLOCKS`]
//! blocks) and rewrites the certificate when one lowers the set. Once every
//! node has received the precommits of the same lowest `q` validators, they all
//! serve the same bytes; in a healthy network that is milliseconds after the
//! commit. (If a validator's precommit reaches some nodes and never others,
//! or two nodes decided the block at different rounds, their certificates
//! stay different; both are valid, and a verifier accepts either.)

use yrd_consensus::messages::{SignedVote, VoteKind};
use yrd_consensus::types::ValidatorSet;
use yrd_consensus::CommitCertificate;

/// How far below the tip a late precommit is still taken: gossip delivers the
/// precommits of a block within a round or two of its commit, and a bound keeps
/// old, replayed votes from costing a signature check each.
pub const CANONICAL_CERT_WINDOW_BLOCKS: u64 = 64;

/// The canonical form of `cert`: its signatures by increasing validator index,
/// each index once, the first `quorum` of them.
pub fn canonical(cert: &CommitCertificate, quorum: usize) -> CommitCertificate {
    let mut signatures = cert.signatures.clone();
    signatures.sort_by_key(|(i, _)| *i);
    signatures.dedup_by_key(|(i, _)| *i);
    signatures.truncate(quorum);
    CommitCertificate { height: cert.height, round: cert.round, block_hash: cert.block_hash, signatures }
}

/// The certificate `cert` becomes with the late precommit `vote`, if that
/// lowers its signer set: the vote is a precommit for the same block at the
/// same height and round, by a validator of `set` not in `cert` whose index is
/// below the highest one, and its signature verifies. `None` otherwise.
pub fn improved(cert: &CommitCertificate, vote: &SignedVote, chain: &yrd_consensus::crypto::Hash32, set: &ValidatorSet) -> Option<CommitCertificate> {
    let v = &vote.vote;
    if v.kind != VoteKind::Precommit || v.height != cert.height || v.round != cert.round || v.value != Some(cert.block_hash) {
        return None;
    }
    if cert.signatures.iter().any(|(i, _)| *i == v.validator) {
        return None;
    }
    let highest = cert.signatures.iter().map(|(i, _)| *i).max()?;
    if cert.signatures.len() >= set.quorum() && v.validator > highest {
        return None;
    }
    vote.verify(chain, set).ok()?;
    let mut with = cert.clone();
    with.signatures.push((v.validator, vote.signature));
    Some(canonical(&with, set.quorum()))
}
