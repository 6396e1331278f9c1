//! `GovState::advance_to` against block-by-block execution: an offline verifier
//! replays governance from only the blocks that hold governance transactions,
//! jumping the heights in between; the node executes every block. Over random
//! schedules of proposals and approvals (fixed proptest seed, printed with the
//! failing case), both reach the same state at every governance block and at the
//! end, accept and refuse the same transactions, and both equal the state
//! `GovState::restore` rebuilds from the stored memberships and records.

use std::collections::HashMap;

use proptest::prelude::*;
use yrd_consensus::crypto::{PublicKey, SecretKey};
use yrd_ledger::genesis::{AgencyInfo, ChainParams, Genesis, IssuerInfo, Region, ValidatorInfo};
use yrd_ledger::governance::{Change, GovApproval, GovProposal, GovState, Outcome};
use yrd_ledger::testkit::TestChain;
use yrd_ledger::tx::{AttestationKind, SignedTransaction, TxBody, TxId};

/// One action of the schedule: `kind` picks what, `a` and `b` pick whom.
#[derive(Debug, Clone, Copy)]
struct Action {
    kind: u8,
    a: u8,
    b: u8,
}

/// Builds transactions from the block-by-block state, the way agencies would:
/// proposals about the members in force, approvals of proposals on the ledger.
struct Agencies {
    chain: TestChain,
    secrets: HashMap<PublicKey, SecretKey>,
    fresh: u64,
    sequence: u64,
}

impl Agencies {
    fn new(chain: TestChain) -> Agencies {
        let secrets = chain.agency_keys.iter().map(|k| (k.public(), k.clone())).collect();
        Agencies { chain, secrets, fresh: 0, sequence: 0 }
    }

    fn fresh_key(&mut self) -> PublicKey {
        self.fresh += 1;
        let k = SecretKey::from_seed(format!("replay-{}", self.fresh).as_bytes());
        let public = k.public();
        self.secrets.insert(public, k);
        public
    }

    fn region() -> Region {
        Region::parse("ZJ").unwrap()
    }

    /// The transaction `act` stands for at height `h` in state `s` (None when the
    /// state offers nothing to act on).
    fn tx(&mut self, s: &GovState, h: u64, act: Action) -> Option<SignedTransaction> {
        let m = s.membership_at(h).clone();
        let mut agency = &m.agencies[act.a as usize % m.agencies.len()];
        let pick = |n: usize| act.b as usize % n.max(1);
        let body = match act.kind % 12 {
            6..=11 => {
                // Approve: mostly the newest open proposal, by an agency that has
                // not approved it yet; sometimes any proposal, by anyone.
                let mut all: Vec<(u64, TxId)> = s.proposals().map(|r| (r.height, r.id)).collect();
                all.sort();
                let open: Vec<(u64, TxId)> =
                    all.iter().copied().filter(|(_, id)| s.proposal(id).is_some_and(|r| r.outcome == Outcome::Open)).collect();
                let id = match (open.last(), act.b % 4) {
                    (Some((_, id)), 2 | 3) => *id,
                    (Some(_), 1) => open[act.a as usize % open.len()].1,
                    _ => all.get(pick(all.len()))?.1,
                };
                let approved: Vec<&str> = s.proposal(&id)?.approvals.iter().map(|x| x.agency.as_str()).collect();
                let fresh: Vec<&AgencyInfo> = m.agencies.iter().filter(|x| !approved.contains(&x.name.as_str())).collect();
                if !act.b.is_multiple_of(4) && !fresh.is_empty() {
                    agency = fresh[act.a as usize % fresh.len()];
                }
                TxBody::Approve(GovApproval { proposal: id })
            }
            kind => {
                let validator = m.validators[pick(m.validators.len())].name.clone();
                let issuer = m.issuers[pick(m.issuers.len())].name.clone();
                let change = match kind {
                    0 => Change::AddValidator(ValidatorInfo { name: format!("v{}", act.b % 4), region: Self::region(), key: self.fresh_key() }),
                    1 => Change::RemoveValidator { name: validator },
                    2 => Change::RotateValidatorKey { name: validator, key: self.fresh_key() },
                    3 => Change::FreezeIssuer { name: issuer },
                    4 => Change::RotateIssuerKey { name: issuer, key: self.fresh_key() },
                    5 => match act.b % 3 {
                        0 => Change::AddIssuer(IssuerInfo {
                            name: format!("i{}", act.a % 3),
                            region: Self::region(),
                            key: self.fresh_key(),
                            kinds: vec![AttestationKind::RedList],
                            may_revoke_any: false,
                        }),
                        1 => Change::RemoveIssuer { name: issuer },
                        _ => {
                            let mut p = m.params.clone();
                            p.governance.activation_delay_blocks = 2 + act.a as u64 % 3;
                            Change::SetParams(p)
                        }
                    },
                    _ => match act.b % 3 {
                        0 => Change::AddAgency(AgencyInfo { name: format!("a{}", act.a % 3), region: Self::region(), key: self.fresh_key() }),
                        1 => Change::RemoveAgency { name: m.agencies[pick(m.agencies.len())].name.clone() },
                        _ => Change::RotateAgencyKey { name: m.agencies[pick(m.agencies.len())].name.clone(), key: self.fresh_key() },
                    },
                };
                // Sometimes a second change (two freezes: still an emergency).
                let mut changes = vec![change];
                if act.a.is_multiple_of(5) {
                    changes.push(Change::FreezeIssuer { name: m.issuers[(act.a as usize / 5) % m.issuers.len()].name.clone() });
                }
                let ttl = m.params.governance.max_proposal_ttl_blocks;
                TxBody::Propose(GovProposal { changes, deadline: h + 1 + act.a as u64 % (ttl + 1), summary: String::new() })
            }
        };
        let signer = self.secrets.get(&agency.key)?.clone();
        self.sequence += 1;
        Some(self.chain.sign_with(&signer, self.sequence, body))
    }
}

/// Executes one block's transactions against `s` (the ledger's order: each
/// checked, then applied at its position among the accepted). Returns the ids
/// accepted.
fn execute(s: &mut GovState, h: u64, txs: &[SignedTransaction]) -> Vec<TxId> {
    let mut block = s.begin_block(h);
    let mut accepted = Vec::new();
    for tx in txs {
        let id = tx.id().unwrap();
        if block.apply(tx, &id, accepted.len() as u32).is_ok() {
            accepted.push(id);
        }
    }
    let delta = block.finish();
    s.apply(&delta);
    accepted
}

fn restored(s: &GovState, genesis: &Genesis) -> GovState {
    let memberships = s.timeline().filter(|(h, _)| *h > 1).map(|(h, m)| (h, (**m).clone())).collect();
    GovState::restore(genesis, memberships, s.proposals().cloned().collect())
}

/// Runs both executions; returns (transactions accepted, proposals applied,
/// proposals failed, effective heights at which more than one proposal settled).
fn run(delay: u64, ttl: u64, schedule: &[Vec<Action>]) -> Result<(usize, usize, usize, usize), TestCaseError> {
    let mut params = ChainParams::default();
    params.governance.activation_delay_blocks = delay;
    params.governance.max_proposal_ttl_blocks = ttl;
    let mut agencies = Agencies::new(TestChain::with_params(4, 3, params));
    let genesis = agencies.chain.genesis.clone();
    let mut by_block = GovState::new(&genesis);
    let mut jumping = GovState::new(&genesis);
    let mut accepted_total = 0;
    for (i, actions) in schedule.iter().enumerate() {
        let h = i as u64 + 1;
        let txs: Vec<SignedTransaction> = actions.iter().filter_map(|a| agencies.tx(&by_block, h, *a)).collect();
        if txs.is_empty() {
            execute(&mut by_block, h, &[]);
            continue;
        }
        jumping.advance_to(h);
        prop_assert_eq!(&jumping, &by_block, "before block {}", h);
        prop_assert_eq!(&restored(&by_block, &genesis), &by_block, "restore before block {}", h);
        let a = execute(&mut by_block, h, &txs);
        let b = execute(&mut jumping, h, &txs);
        prop_assert_eq!(&a, &b, "accepted in block {}", h);
        accepted_total += a.len();
    }
    let end = schedule.len() as u64 + 1;
    jumping.advance_to(end);
    prop_assert_eq!(&jumping, &by_block, "after the last block");
    prop_assert_eq!(&restored(&by_block, &genesis), &by_block, "restore after the last block");
    for h in 1..=end {
        prop_assert_eq!(jumping.membership_at(h), by_block.membership_at(h), "membership at {}", h);
    }
    // Advancing again, or to a lower height, changes nothing.
    let before = jumping.clone();
    jumping.advance_to(end);
    jumping.advance_to(1);
    prop_assert_eq!(&jumping, &before);
    let applied = by_block.proposals().filter(|r| matches!(r.outcome, Outcome::Applied { .. })).count();
    let failed = by_block.proposals().filter(|r| matches!(r.outcome, Outcome::Failed { .. })).count();
    let mut settled_at: HashMap<u64, usize> = HashMap::new();
    for r in by_block.proposals() {
        if let Outcome::Applied { effective, .. } | Outcome::Failed { effective, .. } = r.outcome {
            *settled_at.entry(effective).or_default() += 1;
        }
    }
    let collisions = settled_at.values().filter(|n| **n > 1).count();
    Ok((accepted_total, applied, failed, collisions))
}

fn action() -> impl Strategy<Value = Action> {
    (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(kind, a, b)| Action { kind, a, b })
}

/// Heights: most empty, some with one to seven governance actions.
fn schedule() -> impl Strategy<Value = Vec<Vec<Action>>> {
    proptest::collection::vec(
        prop_oneof![3 => Just(Vec::new()), 2 => proptest::collection::vec(action(), 1..8)],
        10..60,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, rng_seed: proptest::test_runner::RngSeed::Fixed(0x60_5eed), ..ProptestConfig::default() })]

    #[test]
    fn advancing_over_blocks_without_governance_equals_executing_them(delay in 2u64..5, ttl in 2u64..12, s in schedule()) {
        run(delay, ttl, &s)?;
    }
}

/// The property above is only as good as its schedules: they must make many
/// changes take effect (applied, failed, same-height collisions, freezes).
#[test]
fn random_schedules_apply_many_changes() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngSeed, TestRunner};
    let mut runner = TestRunner::new(Config { rng_seed: RngSeed::Fixed(0x60_5eed), ..Config::default() });
    let (mut accepted, mut applied, mut failed, mut collisions) = (0, 0, 0, 0);
    for _ in 0..100 {
        let s = schedule().new_tree(&mut runner).unwrap().current();
        let (a, p, f, c) = run(3, 8, &s).unwrap();
        accepted += a;
        applied += p;
        failed += f;
        collisions += c;
    }
    eprintln!(
        "100 schedules: {accepted} governance transactions accepted, {applied} proposals applied, {failed} failed, \
         {collisions} heights where several took effect"
    );
    assert!(applied >= 100, "only {applied} proposals applied in 100 schedules");
    assert!(failed >= 5, "only {failed} proposals failed in 100 schedules");
    assert!(collisions >= 10, "only {collisions} heights where several proposals took effect");
}

/// Two proposals approved in one block and taking effect at one height apply in
/// approval order (position in the block), whatever their ids; a state rebuilt
/// from the store (`restore`) schedules them the same way. (Before the fix the
/// live state used transaction-id order.)
#[test]
fn proposals_approved_in_one_block_apply_in_approval_order_whatever_their_ids() {
    let chain = TestChain::new(4, 1);
    let mut reversed = 0;
    for round in 0..8u64 {
        let mut s = GovState::new(&chain.genesis);
        let name = |k: &str| ValidatorInfo { name: "nantong".into(), region: Region::parse("JS").unwrap(), key: SecretKey::from_seed(format!("{k}-{round}").as_bytes()).public() };
        // Both add a validator named nantong: whichever applies first wins, the other fails.
        let p1 = chain.propose(0, 100 + round, vec![Change::AddValidator(name("first"))], 100);
        let p2 = chain.propose(1, 200 + round, vec![Change::AddValidator(name("second"))], 100);
        let (id1, id2) = (p1.id().unwrap(), p2.id().unwrap());
        execute(&mut s, 1, &[p1, p2]);
        if id1 < id2 {
            reversed += 1; // id order puts p1 first, approval order p2
        }
        // Block 2: p2 completes first (position 2), then p1 (position 3).
        let approvals = [chain.approve(2, 1, id1), chain.approve(2, 2, id2), chain.approve(3, 1, id2), chain.approve(3, 2, id1)];
        assert_eq!(execute(&mut s, 2, &approvals).len(), 4);
        assert_eq!(restored(&s, &chain.genesis), s, "round {round}: restore schedules like the live state");
        for h in 3..=8 {
            execute(&mut s, h, &[]);
        }
        assert!(matches!(s.proposal(&id2).unwrap().outcome, Outcome::Applied { index: 2, .. }), "round {round} ({})", if id1 < id2 { "ids in approval order" } else { "ids reversed" });
        assert!(matches!(s.proposal(&id1).unwrap().outcome, Outcome::Failed { index: 3, .. }), "round {round}");
        assert_eq!(s.membership_at(9).validator_by_key(&name("second").key).map(|v| v.name.as_str()), Some("nantong"));
    }
    assert!((1..8).contains(&reversed), "both id orders must occur: {reversed} of 8 reversed");
}
