//! The aiming adversary ([`SimConfig::aim`]): attacks chosen to break the
//! classic mistakes of the Tendermint family, instead of dice.
//!
//! * **Targeted delivery** (before the heal): for every `(height, round, kind)`
//!   of honest votes the scheduler picks a mode — the ordinary faulty network,
//!   *one victim* (only one honest process, and the Byzantine ones, receive the
//!   slot's votes: it alone sees the polka or the commit quorum) or *nobody*
//!   honest (the adversary alone sees them: a polka no one locks on).
//! * **Byzantine proposers that re-propose old values** (`Behaviour::Aim`): a
//!   value that had a polka at an earlier round — preferably one other than what
//!   an honest node has decided or is locked on — with that round as proof of
//!   lock and the prevotes that prove it; or a forged proof of lock (a round at
//!   which the value has no polka); or a fresh block.
//! * **Byzantine votes** for the value the adversary pushes in the round, or nil.
//! * **Proposals out of turn**: signed by a Byzantine validator for rounds it
//!   does not propose.
//! * **Certificates fed through sync** to one honest victim, for a fresh block:
//!   one signer repeated to a quorum, too few signers, or unknown signer indices.
//! * **Amnesia**: Byzantine validators restart with an empty safety state (the
//!   lock forgotten) a few times before the heal.
//!
//! All draws come from a generator of its own, so runs without `aim` are
//! unchanged.

use std::collections::BTreeMap;

use super::plan::KeyId;
use super::{Msg, Rng, Sim};
use crate::certificate::CommitCertificate;
use crate::messages::{Proposal, SignedProposal, SignedVote, Vote, VoteKind};
use crate::types::{BlockHash, Height, Round, ValidatorIndex};

/// Per mille of honest prevote slots delivered only to one honest victim (it
/// alone locks) and to no honest process (a polka only the adversary knows, for
/// a later re-proposal).
const PREVOTE_ONE_VICTIM_PER_MILLE: u64 = 300;
const PREVOTE_NOBODY_PER_MILLE: u64 = 300;
/// Per mille of honest precommit slots delivered only to one honest victim (it
/// alone decides: the start of every lock attack) and to nobody honest.
const PRECOMMIT_ONE_VICTIM_PER_MILLE: u64 = 500;
const PRECOMMIT_NOBODY_PER_MILLE: u64 = 100;
/// Per mille of Byzantine prevotes that come with a proposal out of turn.
const OUT_OF_TURN_PER_MILLE: u64 = 150;
/// Per mille of Byzantine votes that come with a forged certificate.
const FORGED_CERT_PER_MILLE: u64 = 100;
/// Amnesia restarts per Byzantine validator before the heal (at most).
pub(super) const MAX_AMNESIA_RESTARTS: u64 = 3;

/// Who receives the honest votes of one `(height, round, kind)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Delivery {
    /// The ordinary faulty network.
    Network,
    /// Only this honest process (and the Byzantine ones).
    OneVictim(usize),
    /// No honest process.
    Nobody,
}

/// Prevotes of one (height, round): per value (`None` = nil), one per validator.
type PrevotesByValue = BTreeMap<Option<BlockHash>, BTreeMap<ValidatorIndex, SignedVote>>;

/// What the adversary knows and has decided.
pub(super) struct Aim {
    pub rng: Rng,
    delivery: BTreeMap<(Height, Round, VoteKind), Delivery>,
    /// Every prevote seen on the wire, per (height, round) and value, one per validator.
    prevotes: BTreeMap<(Height, Round), PrevotesByValue>,
    /// The value the adversary pushes at (height, round): its Byzantine proposal.
    pushed: BTreeMap<(Height, Round), BlockHash>,
    /// Heights at which one honest process decided alone before the heal: that
    /// process (the victim, cut off from the other honest ones until the heal) and
    /// the block. The adversary then tries to make the others decide another one.
    pub attack: BTreeMap<Height, (usize, BlockHash)>,
    /// Rounds of a lock attack with an honest proposer, for which the Byzantine
    /// members have sent their nil prevotes and precommits.
    attack_nil: std::collections::BTreeSet<(Height, Round)>,
}

impl Aim {
    pub fn new(seed: u64) -> Aim {
        Aim {
            rng: Rng::new(seed ^ 0x41_49_4d_5f_41_44_56_31),
            delivery: BTreeMap::new(),
            prevotes: BTreeMap::new(),
            pushed: BTreeMap::new(),
            attack: BTreeMap::new(),
            attack_nil: std::collections::BTreeSet::new(),
        }
    }

    pub fn observe_vote(&mut self, sv: &SignedVote) {
        if sv.vote.kind != VoteKind::Prevote {
            return;
        }
        let v = &sv.vote;
        self.prevotes
            .entry((v.height, v.round))
            .or_default()
            .entry(v.value)
            .or_default()
            .entry(v.validator)
            .or_insert_with(|| sv.clone());
    }
}

impl Sim {
    /// Targeted delivery (before the heal only): true if `msg` from honest
    /// process `from` must not reach honest process `to`. While a lock attack is
    /// on (`Aim::attack`) the victim that decided is cut off from the other honest
    /// processes and honest proposals at the attacked height are held back; else
    /// each honest vote slot goes to everyone, one victim or nobody honest.
    pub(super) fn aim_blocks(&mut self, from: usize, to: usize, msg: &Msg) -> bool {
        if self.healed || self.nodes[to].byz.is_some() || self.nodes.get(from).is_none_or(|n| n.byz.is_some()) {
            return false;
        }
        let Some(aim) = self.aim.as_ref() else { return false };
        if aim.attack.values().any(|(victim, _)| *victim == from) {
            return true;
        }
        let sv = match msg {
            Msg::Proposal(p) => return aim.attack.contains_key(&p.proposal.height),
            Msg::Vote(sv) => sv,
            Msg::Cert(_) | Msg::SyncRequest(_) => return false,
        };
        if aim.attack.contains_key(&sv.vote.height) {
            return false;
        }
        let slot = (sv.vote.height, sv.vote.round, sv.vote.kind);
        let mode = match aim.delivery.get(&slot) {
            Some(m) => *m,
            None => {
                let honest = self.honest();
                let Some(aim) = self.aim.as_mut() else { return false };
                let (victim, nobody) = match sv.vote.kind {
                    VoteKind::Prevote => (PREVOTE_ONE_VICTIM_PER_MILLE, PREVOTE_NOBODY_PER_MILLE),
                    VoteKind::Precommit => (PRECOMMIT_ONE_VICTIM_PER_MILLE, PRECOMMIT_NOBODY_PER_MILLE),
                };
                let d = aim.rng.below(1000);
                let mode = if d < victim {
                    Delivery::OneVictim(*aim.rng.pick(&honest).unwrap_or(&0))
                } else if d < victim + nobody {
                    Delivery::Nobody
                } else {
                    Delivery::Network
                };
                aim.delivery.insert(slot, mode);
                mode
            }
        };
        match mode {
            Delivery::Network => false,
            Delivery::OneVictim(v) => {
                self.report.coverage.targeted_deliveries += 1;
                v != to
            }
            Delivery::Nobody => true,
        }
    }

    /// An honest process committed `value` at `height`; if it is the first
    /// decision there and the others have not seen it, start a lock attack.
    pub(super) fn aim_first_decision(&mut self, node: usize, height: Height, round: Round, value: BlockHash) {
        if self.healed {
            return;
        }
        if let Some(aim) = self.aim.as_mut() {
            aim.attack.insert(height, (node, value));
            self.report.coverage.lock_attacks += 1;
            // The proposals of the next rounds wait in the honest logs before
            // those nodes get there.
            self.aim_attack_round(height, round.next());
        }
    }

    /// The keys the adversary can sign with as members of the set at `height`:
    /// Byzantine members, with their index there.
    fn byzantine_members(&self, height: Height) -> Vec<(ValidatorIndex, KeyId)> {
        self.plan
            .set_at(height)
            .keys()
            .iter()
            .enumerate()
            .filter_map(|(j, pk)| self.plan.key_of.get(pk).map(|k| (ValidatorIndex(j as u32), *k)))
            .filter(|(_, k)| self.plan.byzantine[self.plan.key_process[*k]].is_some())
            .collect()
    }

    /// Prevotes for `value` at `(height, round)`: every one seen on the wire, plus
    /// one signed now by every Byzantine member that has none there.
    fn pol_prevotes(&mut self, height: Height, round: Round, value: BlockHash) -> Vec<SignedVote> {
        let mut by_index: BTreeMap<ValidatorIndex, SignedVote> = self
            .aim
            .as_ref()
            .and_then(|a| a.prevotes.get(&(height, round)))
            .and_then(|m| m.get(&Some(value)))
            .cloned()
            .unwrap_or_default();
        for (j, k) in self.byzantine_members(height) {
            if let std::collections::btree_map::Entry::Vacant(e) = by_index.entry(j) {
                let vote = Vote { chain: self.chain, kind: VoteKind::Prevote, height, round, value: Some(value), validator: j };
                e.insert(self.sign_vote_with(k, vote));
            }
        }
        by_index.into_values().collect()
    }

    /// Old values the adversary can re-propose at `(height, round)` with a real
    /// proof of lock: (pol round, value) with a quorum of prevotes once the
    /// Byzantine members add theirs.
    fn old_polkas(&self, height: Height, round: Round) -> Vec<(Round, BlockHash)> {
        let Some(aim) = self.aim.as_ref() else { return Vec::new() };
        let set = self.plan.set_at(height);
        let byz = self.byzantine_members(height);
        let mut out = Vec::new();
        for ((h, r), by_value) in aim.prevotes.range((height, Round(0))..(height, round)) {
            debug_assert_eq!(*h, height);
            for (value, voters) in by_value {
                let Some(value) = value else { continue };
                let extra = byz.iter().filter(|(j, _)| !voters.contains_key(j)).count();
                if voters.len() + extra >= set.quorum() {
                    out.push((*r, *value));
                }
            }
        }
        out
    }

    /// What the adversary proposes at `(h, r)`: during a lock attack never the
    /// decided block — an old value with its real proof of lock if there is one,
    /// else a forged proof of lock or a fresh block; otherwise one of those or the
    /// honest core's `honest` proposal.
    fn choose_push(&mut self, h: Height, r: Round, honest: Option<(BlockHash, Option<Round>)>) -> (BlockHash, Option<Round>) {
        let attacked = self.aim.as_ref().and_then(|a| a.attack.get(&h)).map(|(_, v)| *v);
        let decided = attacked.or_else(|| self.decided.get(&h).copied());
        let polkas = self.old_polkas(h, r);
        // Prefer an old value that conflicts with what an honest node decided.
        let conflicting: Vec<(Round, BlockHash)> = polkas.iter().copied().filter(|(_, v)| Some(*v) != decided).collect();
        let old: Vec<BlockHash> = self
            .aim
            .as_ref()
            .map(|a| a.prevotes.range((h, Round(0))..(h, r)).flat_map(|(_, m)| m.keys().flatten().copied()).collect())
            .unwrap_or_default();
        let Some(aim) = self.aim.as_mut() else { return honest.unwrap_or_default() };
        let (mut mode, pick, use_old) = (aim.rng.below(10), aim.rng.next_u64(), aim.rng.chance(500));
        if attacked.is_some() || honest.is_none() {
            // Never the decided value (nor the honest core's).
            mode = if conflicting.is_empty() { 5 + mode % 4 } else { mode % 5 };
        }
        match mode {
            0..=4 if !polkas.is_empty() && (attacked.is_none() || !conflicting.is_empty()) => {
                let pool = if conflicting.is_empty() { &polkas } else { &conflicting };
                let (vr, v) = pool[(pick % pool.len() as u64) as usize];
                (v, Some(vr))
            }
            0..=6 if r.0 > 0 => {
                // A forged proof of lock: an earlier round at which this value may
                // have no quorum (an old value or a fresh one).
                let vr = Round((pick % u64::from(r.0)) as u32);
                let v = match old.get((pick % old.len().max(1) as u64) as usize) {
                    Some(v) if use_old && Some(*v) != decided => *v,
                    _ => self.new_block(h, true, b"aim-forged-pol"),
                };
                (v, Some(vr))
            }
            0..=8 => (self.new_block(h, true, b"aim-fresh"), None),
            _ => match honest {
                Some(p) => p,
                None => (self.new_block(h, true, b"aim-fresh"), None),
            },
        }
    }

    /// Sends `msg` from `from` to every other process past loss and partitions,
    /// with the network's delay: the adversary repeats what matters to it until
    /// it arrives.
    fn send_reliably(&mut self, from: usize, msg: Msg) {
        for to in 0..self.nodes.len() {
            if to != from {
                self.report.messages_sent += 1;
                let at = self.now + self.rng.range(self.net.delay_min_ms, self.net.delay_max_ms);
                self.push(at, super::SimEvent::Deliver { to, from, msg: msg.clone() });
            }
        }
    }

    /// Sends the adversary's proposal of `(h, r)` signed by `key` (the proposer's)
    /// from process `from`, and the prevotes of its proof of lock; during a lock
    /// attack past loss and partitions.
    fn send_push(&mut self, from: usize, key: KeyId, proposal: Proposal) {
        let reliable = self.aim.as_ref().is_some_and(|a| a.attack.contains_key(&proposal.height));
        let (h, r, value, pol) = (proposal.height, proposal.round, proposal.value, proposal.pol_round);
        if let Some(aim) = self.aim.as_mut() {
            aim.pushed.insert((h, r), value);
        }
        if pol.is_some() {
            self.report.coverage.pol_proposals += 1;
        }
        let signed = proposal.sign(&self.plan.keys[key]).expect("small proposal encodes");
        let mut msgs = vec![Msg::Proposal(signed)];
        if let Some(vr) = pol {
            msgs.extend(self.pol_prevotes(h, vr, value).into_iter().map(Msg::Vote));
        }
        for msg in msgs {
            if reliable {
                self.send_reliably(from, msg);
            } else {
                self.broadcast(from, msg);
            }
        }
    }

    /// `Behaviour::Aim` as the proposer of `(h, r)` (`p` is what its honest core proposed).
    pub(super) fn aim_proposal(&mut self, i: usize, p: SignedProposal) {
        let (h, r) = (p.proposal.height, p.proposal.round);
        if self.aim.as_ref().is_some_and(|a| a.pushed.contains_key(&(h, r))) {
            return; // already proposed by the attack driver
        }
        let (value, pol_round) = self.choose_push(h, r, Some((p.proposal.value, p.proposal.pol_round)));
        let key = self.nodes[i].key;
        self.send_push(i, key, Proposal { value, pol_round, ..p.proposal });
    }

    /// The lock attack at `h`, driven by the honest nodes still there (the
    /// Byzantine cores may have decided and moved on): an honest node signed a
    /// vote at `(h, r)`; for each of the rounds r ..= r + n that a Byzantine
    /// member proposes, it proposes another block now (the proposal waits in the
    /// honest logs until they get there), and every Byzantine member prevotes and
    /// precommits it. It goes on after the heal, until the height is decided.
    pub(super) fn aim_attack_round(&mut self, h: Height, r: Round) {
        if !self.aim.as_ref().is_some_and(|a| a.attack.contains_key(&h)) {
            return;
        }
        let byz = self.byzantine_members(h);
        if byz.is_empty() {
            return;
        }
        let n = self.plan.set_at(h).len() as u32;
        for rr in (r.0..=r.0.saturating_add(n)).map(Round) {
            if self.aim.as_ref().is_some_and(|a| a.pushed.contains_key(&(h, rr))) {
                continue;
            }
            let proposer = self.plan.set_at(h).proposer(h, rr);
            let Some(&(_, key)) = byz.iter().find(|(j, _)| *j == proposer) else {
                // An honest proposer's round (its proposal is held back): the
                // Byzantine members prevote and precommit nil, so the honest nodes
                // see a nil polka (a core that unlocks on one is then exposed).
                if self.aim.as_mut().is_some_and(|a| a.attack_nil.insert((h, rr))) {
                    for (j, k) in &byz {
                        for kind in [VoteKind::Prevote, VoteKind::Precommit] {
                            let vote = Vote { chain: self.chain, kind, height: h, round: rr, value: None, validator: *j };
                            let signed = self.sign_vote_with(*k, vote);
                            self.send_reliably(self.plan.key_process[*k], Msg::Vote(signed));
                        }
                    }
                }
                continue;
            };
            let from = self.plan.key_process[key];
            let (value, pol_round) = self.choose_push(h, rr, None);
            let proposal = Proposal { chain: self.chain, height: h, round: rr, value, pol_round, proposer };
            self.report.coverage.attack_proposals += 1;
            self.send_push(from, key, proposal);
            for (j, k) in &byz {
                for kind in [VoteKind::Prevote, VoteKind::Precommit] {
                    let vote = Vote { chain: self.chain, kind, height: h, round: rr, value: Some(value), validator: *j };
                    let signed = self.sign_vote_with(*k, vote);
                    if let Some(aim) = self.aim.as_mut() {
                        aim.observe_vote(&signed);
                    }
                    self.send_reliably(self.plan.key_process[*k], Msg::Vote(signed));
                }
            }
        }
    }

    /// `Behaviour::Aim` voting: for the value pushed in the round, nil, or what
    /// its honest core voted; sometimes with a proposal out of turn or a forged
    /// certificate.
    pub(super) fn aim_vote(&mut self, i: usize, sv: SignedVote) {
        let v = sv.vote.clone();
        let Some(aim) = self.aim.as_mut() else { return };
        let pushed = aim.pushed.get(&(v.height, v.round)).copied();
        let choice = aim.rng.below(10);
        let out_of_turn = v.kind == VoteKind::Prevote && aim.rng.chance(OUT_OF_TURN_PER_MILLE);
        let forge = aim.rng.chance(FORGED_CERT_PER_MILLE);
        let attacked = aim.attack.contains_key(&v.height);
        let value = match (choice, pushed) {
            // While attacking and after the heal: for the pushed value, else nil
            // (no help to honest proposals: liveness must come from the honest alone).
            (_, Some(p)) if attacked || self.healed => Some(p),
            (_, None) if attacked || self.healed => None,
            (0..=5, Some(p)) => Some(p),
            (0..=2, None) | (6..=7, Some(_)) => None,
            _ => v.value,
        };
        let m = self.sign_vote(i, Vote { value, ..v.clone() });
        if let Some(aim) = self.aim.as_mut() {
            aim.observe_vote(&m);
        }
        self.broadcast(i, Msg::Vote(m));
        if out_of_turn && self.plan.set_at(v.height).proposer(v.height, v.round) != v.validator {
            let block = self.new_block(v.height, true, b"aim-out-of-turn");
            let p = Proposal { chain: self.chain, height: v.height, round: v.round, value: block, pol_round: None, proposer: v.validator };
            let q = self.sign_proposal(i, p);
            self.report.coverage.out_of_turn_proposals += 1;
            self.broadcast(i, Msg::Proposal(q));
        }
        if forge {
            self.forge_certificate(i, v.height, v.round, v.validator);
        }
    }

    /// A certificate for a fresh block at `(height, round)` that no quorum signed,
    /// sent to one honest victim as a sync answer: one signer repeated to a
    /// quorum, the Byzantine members only, or Byzantine signers padded with
    /// unknown indices.
    fn forge_certificate(&mut self, i: usize, height: Height, round: Round, me: ValidatorIndex) {
        let honest = self.honest();
        let quorum = self.plan.set_at(height).quorum();
        let n = self.plan.set_at(height).len() as u32;
        let Some(aim) = self.aim.as_mut() else { return };
        let kind = aim.rng.below(3);
        let Some(&victim) = aim.rng.pick(&honest) else { return };
        let block = self.new_block(height, true, b"aim-forged-cert");
        let chain = self.chain;
        let precommit = |j: ValidatorIndex| Vote { chain, kind: VoteKind::Precommit, height, round, value: Some(block), validator: j };
        let mut signatures: Vec<(ValidatorIndex, crate::crypto::Signature)> = self
            .byzantine_members(height)
            .into_iter()
            .map(|(j, k)| (j, self.sign_vote_with(k, precommit(j)).signature))
            .collect();
        match kind {
            0 => {
                // One signer counted q times.
                let own = self.sign_vote(i, precommit(me)).signature;
                signatures = vec![(me, own); quorum];
            }
            1 => {} // the Byzantine members only: fewer than a quorum
            _ => {
                // Padded with indices outside the set.
                let mut extra = n;
                while signatures.len() < quorum {
                    let sig = signatures.first().map(|s| s.1).unwrap_or(crate::crypto::Signature([0; 64]));
                    signatures.push((ValidatorIndex(extra), sig));
                    extra += 1;
                }
            }
        }
        let cert = CommitCertificate { height, round, block_hash: block, signatures };
        self.report.coverage.forged_certificates += 1;
        self.send(i, victim, Msg::Cert(cert));
    }
}
