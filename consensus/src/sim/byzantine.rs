//! What the adversary sends: Byzantine validators wrapping an honest core
//! ([`Behaviour`]), and stale keys (removed or rotated out) signing for heights
//! at which they are no longer members.

use super::plan::KeyId;
use super::{Behaviour, Msg, Sim, ADVERSARY};
use crate::certificate::CommitCertificate;
use crate::crypto::{sha256, Hash32};
use crate::messages::{Proposal, SignedProposal, SignedVote, Vote, VoteKind};
use crate::types::{BlockHash, Height, Round, ValidatorIndex};

/// Chance (per mille) that each active stale key answers an honest signature
/// with one of its own for the same height.
const STALE_REACT_PER_MILLE: u64 = 250;

impl Sim {
    pub(super) fn sign_vote_with(&self, key: KeyId, vote: Vote) -> SignedVote {
        vote.sign(&self.plan.keys[key]).expect("small vote encodes")
    }

    pub(super) fn sign_vote(&self, i: usize, vote: Vote) -> SignedVote {
        self.sign_vote_with(self.nodes[i].key, vote)
    }

    pub(super) fn sign_proposal(&self, i: usize, p: Proposal) -> SignedProposal {
        p.sign(&self.plan.keys[self.nodes[i].key]).expect("small proposal encodes")
    }

    pub(super) fn byzantine_proposal(&mut self, i: usize, b: Behaviour, p: SignedProposal) {
        match b {
            Behaviour::Silent => {}
            Behaviour::Split => {
                let (h, r) = (p.proposal.height, p.proposal.round);
                let other = self.new_block(h, true, b"split");
                self.splits.insert((h, r), (p.proposal.value, other));
                let q = self.sign_proposal(i, Proposal { value: other, pol_round: None, ..p.proposal.clone() });
                for to in 0..self.nodes.len() {
                    let msg = if self.side_b.contains(&to) { q.clone() } else { p.clone() };
                    self.send(i, to, Msg::Proposal(msg));
                }
            }
            Behaviour::Chaos => {
                let h = p.proposal.height;
                match self.rng.below(6) {
                    0 | 1 => self.broadcast(i, Msg::Proposal(p)),
                    2 => {
                        // Equivocate: a different valid block to each recipient.
                        for to in 0..self.nodes.len() {
                            let v = self.new_block(h, true, b"chaos-eq");
                            let q = self.sign_proposal(i, Proposal { value: v, ..p.proposal.clone() });
                            self.send(i, to, Msg::Proposal(q));
                        }
                    }
                    3 => {
                        // A claimed proof of lock that does not exist.
                        if p.proposal.round.0 > 0 {
                            let pol = Round(self.rng.below(u64::from(p.proposal.round.0)) as u32);
                            let q = self.sign_proposal(i, Proposal { pol_round: Some(pol), ..p.proposal.clone() });
                            self.broadcast(i, Msg::Proposal(q));
                        }
                    }
                    4 => {
                        let mut q = p;
                        q.signature.0[7] ^= 0x10;
                        self.broadcast(i, Msg::Proposal(q));
                    }
                    _ => {
                        let v = Hash32(self.rng.next_u64().to_be_bytes().repeat(4).try_into().unwrap_or([0; 32]));
                        let q = self.sign_proposal(i, Proposal { value: v, ..p.proposal.clone() });
                        self.broadcast(i, Msg::Proposal(q));
                    }
                }
            }
            Behaviour::Aim => self.aim_proposal(i, p),
        }
    }

    pub(super) fn byzantine_vote(&mut self, i: usize, b: Behaviour, sv: SignedVote) {
        if !self.is_own(i, sv.vote.height, sv.vote.validator) {
            // Re-broadcast of someone else's vote (proof of lock): pass it on.
            if b != Behaviour::Silent {
                self.broadcast(i, Msg::Vote(sv));
            }
            return;
        }
        match b {
            Behaviour::Silent => {}
            Behaviour::Split => {
                let v = &sv.vote;
                match self.splits.get(&(v.height, v.round)).copied() {
                    Some((a, bb)) => {
                        let va = self.sign_vote(i, Vote { value: Some(a), ..v.clone() });
                        let vb = self.sign_vote(i, Vote { value: Some(bb), ..v.clone() });
                        for to in 0..self.nodes.len() {
                            let msg = if self.side_b.contains(&to) { vb.clone() } else { va.clone() };
                            self.send(i, to, Msg::Vote(msg));
                        }
                    }
                    None => self.broadcast(i, Msg::Vote(sv)),
                }
            }
            Behaviour::Chaos => self.chaos_vote(i, sv),
            Behaviour::Aim => self.aim_vote(i, sv),
        }
    }

    fn chaos_vote(&mut self, i: usize, sv: SignedVote) {
        let v = sv.vote.clone();
        match self.rng.below(10) {
            0..=2 => self.broadcast(i, Msg::Vote(sv)),
            3 => {
                // Equivocate: per recipient, the real vote, nil, or another block.
                let known: Vec<BlockHash> =
                    self.blocks.iter().filter(|(_, b)| b.height == v.height).map(|(h, _)| *h).collect();
                for to in 0..self.nodes.len() {
                    let value = match self.rng.below(3) {
                        0 => v.value,
                        1 => None,
                        _ => self.rng.pick(&known).copied(),
                    };
                    let m = self.sign_vote(i, Vote { value, ..v.clone() });
                    self.send(i, to, Msg::Vote(m));
                }
            }
            4 => {
                let mut m = sv;
                m.signature.0[3] ^= 1;
                self.broadcast(i, Msg::Vote(m));
            }
            5 => {
                // Impersonation: claims another validator, signed with our key.
                let n = self.plan.set_at(v.height).len();
                let victim = ValidatorIndex(self.rng.below(n as u64) as u32);
                let m = self.sign_vote(i, Vote { validator: victim, ..v });
                self.broadcast(i, Msg::Vote(m));
            }
            6 => {
                let unknown = sha256(&[b"unknown", &self.rng.next_u64().to_be_bytes()]);
                let m = self.sign_vote(i, Vote { value: Some(unknown), ..v });
                self.broadcast(i, Msg::Vote(m));
            }
            7 => {
                // Far-future round or height, or another chain.
                let m = match self.rng.below(3) {
                    0 => Vote { round: Round(v.round.0.saturating_add(self.rng.range(2, 5000) as u32)), ..v },
                    1 => Vote { height: Height(v.height.0 + self.rng.range(1, 1000)), ..v },
                    _ => Vote { chain: Hash32::ZERO, ..v },
                };
                let m = self.sign_vote(i, m);
                self.broadcast(i, Msg::Vote(m));
            }
            8 => {
                // A bogus certificate for the vote's height.
                let quorum = self.plan.set_at(v.height).quorum() as u32;
                let bogus = CommitCertificate {
                    height: v.height,
                    round: v.round,
                    block_hash: sha256(&[b"bogus", &self.rng.next_u64().to_be_bytes()]),
                    signatures: (0..quorum).map(|k| (ValidatorIndex(k), sv.signature)).collect(),
                };
                self.broadcast(i, Msg::Cert(bogus));
                self.broadcast(i, Msg::Vote(sv));
            }
            _ => {} // silence for this one
        }
    }

    // ------------------------------------------------------------ stale keys

    /// An honest node signed at `(height, round)` for `value`: every stale key at
    /// that height may answer with its own signature for the same slot — as the
    /// index it held before it went stale, as a random index of the set in force,
    /// or as a certificate forged with the set it was last a member of. None of
    /// it may ever count.
    pub(super) fn stale_keys_react(&mut self, height: Height, round: Round, value: Option<BlockHash>) {
        let active: Vec<usize> = (0..self.plan.stale_keys.len())
            .filter(|s| {
                let s = &self.plan.stale_keys[*s];
                s.from <= height && s.until.is_none_or(|u| height < u)
            })
            .collect();
        for s in active {
            if !self.rng.chance(STALE_REACT_PER_MILLE) {
                continue;
            }
            let (key, old_index) = (self.plan.stale_keys[s].key, self.plan.stale_keys[s].old_index);
            let kind = if self.rng.chance(500) { VoteKind::Prevote } else { VoteKind::Precommit };
            let validator = match self.rng.below(4) {
                0 | 1 => old_index,
                2 => ValidatorIndex(self.rng.below(self.plan.set_at(height).len() as u64) as u32),
                _ => {
                    self.forge_stale_certificate(s, height, round);
                    continue;
                }
            };
            let vote = Vote { chain: self.chain, kind, height, round, value, validator };
            let signed = self.sign_vote_with(key, vote);
            self.report.stale_messages += 1;
            self.broadcast(ADVERSARY, Msg::Vote(signed));
        }
    }

    /// Precommits for a fresh block at `(height, round)` by every key of the set
    /// stale key `s` was last a member of that the adversary holds at `height`
    /// (stale keys and Byzantine validators' keys). Sent only if they make a
    /// quorum of that set: a certificate that verifies against the old set.
    fn forge_stale_certificate(&mut self, s: usize, height: Height, round: Round) {
        let old = self.plan.epoch(self.plan.stale_keys[s].old_epoch).set.clone();
        let signers: Vec<(ValidatorIndex, KeyId)> = old
            .keys()
            .iter()
            .enumerate()
            .filter_map(|(j, pk)| self.plan.key_of.get(pk).map(|k| (ValidatorIndex(j as u32), *k)))
            .filter(|(_, k)| self.plan.adversary_holds(*k, height))
            .collect();
        if signers.len() < old.quorum() {
            return;
        }
        let block = self.new_block(height, true, b"stale-cert");
        let signatures = signers
            .into_iter()
            .map(|(j, k)| {
                let vote = Vote {
                    chain: self.chain,
                    kind: VoteKind::Precommit,
                    height,
                    round,
                    value: Some(block),
                    validator: j,
                };
                (j, self.sign_vote_with(k, vote).signature)
            })
            .collect();
        let cert = CommitCertificate { height, round, block_hash: block, signatures };
        self.report.stale_certificates += 1;
        self.broadcast(ADVERSARY, Msg::Cert(cert));
    }
}
