//! Every path that judges a transaction's signature gives the verdict of the
//! single check (`check_untrusted_bytes`), whatever shares its batch and in
//! whatever order: API single and batch admission, gossip admission (the same
//! batch function), block building from admitted transactions, block validation
//! with and without pre-verified ids, commit of a certified block, and the
//! commit certificate's own signatures. Transactions are a random mix of honest
//! ones and ones signed with crafted signatures (mixed-order R, small-order R,
//! non-canonical s and R). Fixed seeds, printed by proptest on failure.

use proptest::prelude::*;
use yrd_consensus::adversary::{sign_crafted, Craft};
use yrd_consensus::crypto::Hash32;
use yrd_consensus::messages::{Vote, VoteKind};
use yrd_consensus::types::{Round, ValidatorIndex};
use yrd_consensus::CommitCertificate;
use yrd_ledger::store::{BlockError, Ledger};
use yrd_ledger::testkit::TestChain;
use yrd_ledger::tx::{AttestationKind, SignedTransaction, TxId, TAG_TRANSACTION};
use yrd_ledger::uscc::Uscc;
use yrd_ledger::validate::{check_untrusted_batch, check_untrusted_bytes, TxError};

fn tx(chain: &TestChain, i: u64, craft: Option<Craft>) -> SignedTransaction {
    let issuer = (i % 2) as usize;
    let mut t = chain.attestation(issuer, i, Uscc::sample(i), AttestationKind::ALL[(i % 7) as usize]);
    if let Some(c) = craft {
        let payload = t.tx.signing_payload().unwrap();
        t.signature = sign_crafted(&chain.issuer_keys[issuer], TAG_TRANSACTION, &payload, c, &i.to_be_bytes());
    }
    t
}

fn craft_strategy() -> impl Strategy<Value = Option<Craft>> {
    let all = Craft::all();
    prop_oneof![3 => Just(None), 2 => (0..all.len()).prop_map(move |i| Some(all[i]))]
}

fn verdict<T>(r: &Result<T, TxError>) -> Result<(), String> {
    r.as_ref().map(|_| ()).map_err(|e| e.code().to_string())
}

fn fresh(chain: &TestChain) -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path(), chain.genesis.clone()).unwrap();
    (dir, ledger)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, rng_seed: proptest::test_runner::RngSeed::Fixed(0x9_2026), ..ProptestConfig::default() })]

    #[test]
    fn every_path_gives_the_single_verdict(
        crafts in proptest::collection::vec(craft_strategy(), 1..24),
        order in any::<proptest::sample::Index>(),
        chunk in 1usize..8,
    ) {
        let chain = TestChain::new(4, 2);
        let txs: Vec<SignedTransaction> = crafts.iter().enumerate().map(|(i, c)| tx(&chain, i as u64 + 1, *c)).collect();
        let bytes: Vec<Vec<u8>> = txs.iter().map(|t| t.encode().unwrap()).collect();
        // The reference: each transaction checked alone.
        let single: Vec<Result<(), String>> =
            bytes.iter().map(|b| verdict(&check_untrusted_bytes(&chain.membership(), &chain.chain, b))).collect();
        for (i, c) in crafts.iter().enumerate() {
            prop_assert_eq!(single[i].is_ok(), c.is_none(), "item {} craft {:?}", i, c);
        }

        // Batch admission: the whole mix, a rotated order, and chunks of it.
        let refs: Vec<&[u8]> = bytes.iter().map(|b| b.as_slice()).collect();
        let whole = check_untrusted_batch(&chain.membership(), &chain.chain, &refs);
        for (i, r) in whole.iter().enumerate() {
            prop_assert_eq!(&verdict(r), &single[i], "whole batch, item {}", i);
        }
        let k = order.index(refs.len());
        let rotated: Vec<&[u8]> = refs[k..].iter().chain(refs[..k].iter()).copied().collect();
        for (j, r) in check_untrusted_batch(&chain.membership(), &chain.chain, &rotated).iter().enumerate() {
            prop_assert_eq!(&verdict(r), &single[(j + k) % refs.len()], "rotated by {}, position {}", k, j);
        }
        for (c, part) in refs.chunks(chunk).enumerate() {
            for (j, r) in check_untrusted_batch(&chain.membership(), &chain.chain, part).iter().enumerate() {
                prop_assert_eq!(&verdict(r), &single[c * chunk + j], "chunk {} of {}, item {}", c, chunk, j);
            }
        }

        // A proposer that built a block from everything (as a Byzantine one could):
        // every other validator's validation, with or without ids it verified at
        // admission, refuses it exactly when one of its transactions fails alone;
        // commit of the same block with a valid certificate refuses it the same way,
        // as an invalid transaction, never as a storage failure.
        let (_d1, byzantine) = fresh(&chain);
        let h = byzantine.height().next();
        let proposer = byzantine.validators_at(h).unwrap().proposer(h, Round(0));
        let built = byzantine.build_block(txs.clone(), proposer, Round(0), 1_800_000_000_000).unwrap();
        prop_assert_eq!(built.block.txs.len(), txs.len());
        let all_valid = single.iter().all(|v| v.is_ok());
        let (_d2, mut honest) = fresh(&chain);
        let admitted: std::collections::HashSet<TxId> =
            whole.iter().filter_map(|r| r.as_ref().ok().map(|(_, id)| *id)).collect();
        for (what, pre) in [("nothing pre-verified", false), ("admitted ids pre-verified", true)] {
            let r = honest.validate_block(&built.block, &|id: &TxId| pre && admitted.contains(id));
            prop_assert_eq!(r.is_ok(), all_valid, "validate_block ({})", what);
            if let Err(e) = r {
                prop_assert!(matches!(e, BlockError::InvalidTx { error: TxError::BadSignature, .. }), "{}: {}", what, e);
            }
        }
        let cert = chain.certify(&built.block.header);
        let committed = honest.commit(&built.block, &cert);
        prop_assert_eq!(committed.is_ok(), all_valid, "commit of the certified block");
        if let Err(e) = committed {
            prop_assert!(matches!(e, BlockError::InvalidTx { error: TxError::BadSignature, .. }), "commit: {}", e);
        }

        // An honest proposer builds from what admission let in; every validator
        // accepts that block.
        let ok_txs: Vec<SignedTransaction> =
            whole.iter().filter_map(|r| r.as_ref().ok().map(|(t, _)| t.clone())).collect();
        let (_d3, proposer_ledger) = fresh(&chain);
        let good = proposer_ledger.build_block(ok_txs.clone(), proposer, Round(0), 1_800_000_000_000).unwrap();
        prop_assert_eq!(good.block.txs.len(), ok_txs.len());
        let (_d4, other) = fresh(&chain);
        prop_assert!(other.validate_block(&good.block, &|_: &TxId| false).is_ok());
    }

    /// A commit certificate verifies exactly when each of its signatures verifies
    /// alone (and a quorum signed).
    #[test]
    fn a_certificate_is_valid_exactly_when_each_signature_is(
        crafts in proptest::collection::vec(craft_strategy(), 3..=4),
    ) {
        let chain = TestChain::new(4, 1);
        let block = Hash32([7; 32]);
        let set = chain.genesis.validator_set().unwrap();
        let mut signatures = Vec::new();
        let mut each_ok = true;
        for (i, c) in crafts.iter().enumerate() {
            let v = ValidatorIndex(i as u32);
            let vote = Vote { chain: chain.chain, kind: VoteKind::Precommit, height: yrd_consensus::types::Height(1), round: Round(0), value: Some(block), validator: v };
            let mut signed = vote.clone().sign(&chain.validator_keys[i]).unwrap();
            if let Some(c) = c {
                signed.signature = sign_crafted(&chain.validator_keys[i], yrd_consensus::messages::TAG_VOTE, &vote.signing_payload().unwrap(), *c, &[i as u8]);
            }
            let alone = signed.verify(&chain.chain, &set).is_ok();
            prop_assert_eq!(alone, c.is_none());
            each_ok &= alone;
            signatures.push((v, signed.signature));
        }
        let cert = CommitCertificate { height: yrd_consensus::types::Height(1), round: Round(0), block_hash: block, signatures };
        prop_assert_eq!(cert.verify(&chain.chain, &set, yrd_consensus::types::Height(1), &block).is_ok(), each_ok);
    }
}

/// The genesis refuses every key that fails the key rule (small-order,
/// non-canonical, mixed-order), for validators, issuers and observers, naming the
/// role, the name and the reason.
#[test]
fn the_genesis_refuses_weak_keys() {
    use yrd_ledger::genesis::{GenesisError, ObserverInfo};
    let chain = TestChain::new(4, 2);
    assert!(chain.genesis.validate().is_ok());
    for (what, key) in yrd_consensus::adversary::weak_keys(&chain.issuer_keys[0]) {
        for role in ["validator", "issuer", "observer"] {
            let mut g = chain.genesis.clone();
            match role {
                "validator" => g.validators[1].key = key,
                "issuer" => g.issuers[1].key = key,
                _ => g.observers.push(ObserverInfo { name: "lender-observer".into(), key }),
            }
            match g.validate() {
                Err(GenesisError::WeakKey { what: role_seen, .. }) => assert_eq!(role_seen, role, "{what} key as {role}"),
                other => panic!("{what} key as {role}: {other:?}"),
            }
        }
    }
}
