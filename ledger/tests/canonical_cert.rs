//! The canonical certificate (ledger/src/canonical_cert.rs): two stores that
//! committed the same block under different signer sets end up storing — and
//! serving in their proof files — the same certificate, byte for byte, once
//! each has seen the same precommits.

use yrd_consensus::codec;
use yrd_consensus::messages::{SignedVote, Vote, VoteKind};
use yrd_consensus::types::{Round, ValidatorIndex};
use yrd_consensus::CommitCertificate;
use yrd_ledger::block::Block;
use yrd_ledger::proof;
use yrd_ledger::store::Ledger;
use yrd_ledger::testkit::TestChain;
use yrd_ledger::tx::AttestationKind;
use yrd_ledger::uscc::Uscc;

fn precommit(chain: &TestChain, block: &Block, round: u32, i: u32) -> SignedVote {
    let vote = Vote {
        chain: chain.chain,
        kind: VoteKind::Precommit,
        height: block.header.height,
        round: Round(round),
        value: Some(block.header.hash().unwrap()),
        validator: ValidatorIndex(i),
    };
    vote.sign(&chain.validator_keys[i as usize]).unwrap()
}

fn cert_of(chain: &TestChain, block: &Block, signers: &[u32]) -> CommitCertificate {
    CommitCertificate {
        height: block.header.height,
        round: block.header.round,
        block_hash: block.header.hash().unwrap(),
        signatures: signers.iter().map(|i| (ValidatorIndex(*i), precommit(chain, block, block.header.round.0, *i).signature)).collect(),
    }
}

fn signers(ledger: &Ledger, h: u64) -> Vec<u32> {
    ledger.certificate(yrd_consensus::types::Height(h)).unwrap().unwrap().signatures.iter().map(|(i, _)| i.0).collect()
}

#[test]
fn stores_converge_on_the_lowest_quorum_of_signers() {
    let chain = TestChain::new(4, 2);
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = Ledger::open(d1.path(), chain.genesis.clone()).unwrap();
    let mut b = Ledger::open(d2.path(), chain.genesis.clone()).unwrap();
    let tx = chain.attestation(0, 1, Uscc::sample(3), AttestationKind::RedList);
    let set = a.validators_at(a.height().next()).unwrap();
    let proposer = set.proposer(a.height().next(), Round(0));
    let block = a.build_block(vec![tx.clone()], proposer, Round(0), TestChain::block_time_ms(1)).unwrap().block;
    // Node a decided with {1, 2, 3}, node b with all four: b stores the lowest three.
    a.commit(&block, &cert_of(&chain, &block, &[1, 2, 3])).unwrap();
    b.build_block(vec![tx.clone()], proposer, Round(0), TestChain::block_time_ms(1)).unwrap();
    b.commit(&block, &cert_of(&chain, &block, &[0, 1, 2, 3])).unwrap();
    assert_eq!(signers(&a, 1), [1, 2, 3]);
    assert_eq!(signers(&b, 1), [0, 1, 2]);
    let file = |l: &Ledger| serde_json::to_string(&proof::bundle(l, &tx.id().unwrap()).unwrap()).unwrap();
    assert_ne!(file(&a), file(&b), "different signer sets make different files");

    // Precommits that change nothing: already in, above the highest with a full
    // quorum, another round, another block, a bad signature.
    assert!(!a.offer_precommit(&precommit(&chain, &block, 0, 2)).unwrap());
    assert!(!b.offer_precommit(&precommit(&chain, &block, 0, 3)).unwrap());
    assert!(!a.offer_precommit(&precommit(&chain, &block, 1, 0)).unwrap());
    let mut other = precommit(&chain, &block, 0, 0);
    other.vote.value = Some(yrd_consensus::crypto::sha256(&[b"another block"]));
    assert!(!a.offer_precommit(&other).unwrap());
    let mut forged = precommit(&chain, &block, 0, 0);
    forged.signature.0[0] ^= 1;
    assert!(!a.offer_precommit(&forged).unwrap());
    assert_eq!(signers(&a, 1), [1, 2, 3]);

    // Validator 0's late precommit lowers a's set: both serve the same bytes.
    assert!(a.offer_precommit(&precommit(&chain, &block, 0, 0)).unwrap());
    assert_eq!(signers(&a, 1), [0, 1, 2]);
    assert!(!a.offer_precommit(&precommit(&chain, &block, 0, 0)).unwrap(), "offered twice");
    assert_eq!(codec::encode(&a.certificate(yrd_consensus::types::Height(1)).unwrap()).unwrap(),
               codec::encode(&b.certificate(yrd_consensus::types::Height(1)).unwrap()).unwrap());
    assert_eq!(file(&a), file(&b));
    // The rewritten certificate still proves the block final.
    proof::verify_bundle(&chain.genesis, &proof::bundle(&a, &tx.id().unwrap()).unwrap(), 0).unwrap();
    // And survives a reopen.
    drop(a);
    let a = Ledger::open(d1.path(), chain.genesis.clone()).unwrap();
    assert_eq!(signers(&a, 1), [0, 1, 2]);
    // A height not committed yet changes nothing.
    let mut later = precommit(&chain, &block, 0, 0);
    later.vote.height = yrd_consensus::types::Height(2);
    let mut a = a;
    assert!(!a.offer_precommit(&later).unwrap());
}
