//! Seed corpora for the fuzz targets (fuzz/README.md), from real traffic of an
//! in-process chain: the transactions, blocks, consensus messages, sync
//! messages, gossip batches, API bodies, proof files and genesis that a node of
//! `TestChain::new(4, 2)` sends, receives and serves.
//!
//! Always: every seed is built and accepted by the decoder of its target (a
//! seed the decoder refuses teaches the fuzzer nothing). With
//! `YRD_WRITE_FUZZ_CORPUS=<dir>` (e.g. `fuzz/corpus`) the seeds are also written
//! there, one file per seed, `<dir>/<target>/<name>`:
//!
//! ```text
//! YRD_WRITE_FUZZ_CORPUS=$PWD/fuzz/corpus cargo test -p yrd-tests --test fuzz_seeds
//! ```

use yrd_consensus::codec;
use yrd_consensus::messages::{Proposal, Vote, VoteKind};
use yrd_consensus::types::{Height, Round, ValidatorIndex};
use yrd_ledger::block::{Block, BlockHeader};
use yrd_ledger::consent::Purpose;
use yrd_ledger::genesis::Genesis;
use yrd_ledger::proof;
use yrd_ledger::queries::{Nonce, SignedRequest};
use yrd_ledger::store::Ledger;
use yrd_ledger::testkit::TestChain;
use yrd_ledger::tx::{AttestationKind, RevocationReason, SignedTransaction};
use yrd_ledger::uscc::Uscc;
use yrd_node::api::batch;
use yrd_node::net::hello::Hello;
use yrd_node::wire::{self, ConsensusMsg, SyncRequest, SyncResponse, TxBatch};

/// Evaluation time of the fuzz targets (`yrd_fuzz::NOW_MS`).
const NOW_MS: u64 = 1_800_000_000_000 + 1_000;
/// Blocks of the fuzz targets' fixture (`yrd_fuzz::FIXTURE_BLOCKS`), built the
/// same way, so that the seed blocks after them are valid next blocks there.
const FIXTURE_BLOCKS: u64 = 3;

struct Seeds(Vec<(&'static str, String, Vec<u8>)>);

impl Seeds {
    fn add(&mut self, target: &'static str, name: impl Into<String>, bytes: Vec<u8>) {
        self.0.push((target, name.into(), bytes));
    }
}

fn build() -> Seeds {
    let mut seeds = Seeds(Vec::new());
    let chain = TestChain::new(4, 2);
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(dir.path(), chain.genesis.clone()).unwrap();
    let mut seq = [0u64; 2];
    let mut next = |issuer: usize| {
        seq[issuer] += 1;
        seq[issuer]
    };
    // The fixture's blocks (yrd_fuzz::build_fixture).
    let mut blocks: Vec<Block> = Vec::new();
    for h in 0..FIXTURE_BLOCKS {
        let txs = (0..3u64)
            .map(|i| {
                let issuer = (i % 2) as usize;
                chain.attestation(issuer, next(issuer), Uscc::sample(h * 3 + i), AttestationKind::RedList)
            })
            .collect();
        blocks.push(chain.commit_next(&mut ledger, txs).unwrap());
    }
    // A block of every kind of transaction, built as the next block (so that the
    // fixture validates it) and then committed.
    let first = blocks[0].txs[0].id().unwrap();
    let kinds = [AttestationKind::CreditRating, AttestationKind::TaxCredit, AttestationKind::CourtEnforcement];
    let mut txs: Vec<SignedTransaction> =
        kinds.iter().enumerate().map(|(i, k)| chain.attestation(0, next(0), Uscc::sample(20 + i as u64), *k)).collect();
    txs.push(chain.revocation(0, next(0), first, RevocationReason::Repair));
    let auth = chain.authorisation(0, 1, Uscc::sample(0), Purpose::LoanApplication, NOW_MS + 86_400_000);
    txs.push(auth.clone());
    let height = Height(FIXTURE_BLOCKS + 1);
    let set = ledger.validators_at(height).unwrap();
    let proposer = set.proposer(height, Round(0));
    let next_block = ledger.build_block(txs.clone(), proposer, Round(0), TestChain::block_time_ms(height.0)).unwrap().block;
    assert_eq!(next_block.txs.len(), txs.len(), "every transaction goes into the seed block");
    let next_hash = next_block.hash().unwrap();
    let signed_proposal = Proposal { chain: chain.chain, height, round: Round(0), value: next_hash, pol_round: None, proposer }
        .sign(&chain.validator_keys[proposer.0 as usize])
        .unwrap();
    let votes: Vec<_> = [(VoteKind::Prevote, Some(next_hash)), (VoteKind::Precommit, Some(next_hash)), (VoteKind::Prevote, None)]
        .into_iter()
        .enumerate()
        .map(|(i, (kind, value))| {
            Vote { chain: chain.chain, kind, height, round: Round(0), value, validator: ValidatorIndex(i as u32) }
                .sign(&chain.validator_keys[i])
                .unwrap()
        })
        .collect();
    let cert = chain.certify(&next_block.header);
    ledger.commit(&next_block, &cert).unwrap();
    blocks.push(next_block.clone());

    // Transactions, batches, blocks, headers.
    for (h, b) in blocks.iter().enumerate() {
        for (i, tx) in b.txs.iter().enumerate() {
            seeds.add("tx", format!("block{}-tx{i}", h + 1), tx.encode().unwrap());
        }
        seeds.add("block", format!("block{}", h + 1), b.encode().unwrap());
        seeds.add("header", format!("block{}", h + 1), codec::encode(&b.header).unwrap());
        let batch = TxBatch(b.txs.iter().map(|t| t.encode().unwrap()).collect());
        seeds.add("tx_batch", format!("block{}", h + 1), codec::encode(&batch).unwrap());
    }
    // Consensus messages.
    seeds.add("consensus_msg", "proposal", wire::encode_proposal(&signed_proposal, &next_block).unwrap());
    for (i, v) in votes.into_iter().enumerate() {
        seeds.add("consensus_msg", format!("vote{i}"), codec::encode(&ConsensusMsg::Vote(v)).unwrap());
    }
    let certified = ConsensusMsg::Certified { block: blocks[0].clone(), certificate: ledger.certificate(Height(1)).unwrap().unwrap() };
    seeds.add("consensus_msg", "certified", codec::encode(&certified).unwrap());
    // Sync, as a node serves it (stored block bytes with their certificates).
    seeds.add("sync_request", "from1", codec::encode(&SyncRequest::Blocks { from: Height(1), max: wire::MAX_SYNC_BLOCKS }).unwrap());
    seeds.add("sync_request", "from3-max1", codec::encode(&SyncRequest::Blocks { from: Height(3), max: 1 }).unwrap());
    let served: Vec<(Vec<u8>, _)> = (1..=ledger.height().0)
        .map(|h| (ledger.block_bytes(Height(h)).unwrap().unwrap(), ledger.certificate(Height(h)).unwrap().unwrap()))
        .collect();
    seeds.add("sync_response", "all", codec::encode(&SyncResponse::Blocks(served.clone())).unwrap());
    seeds.add("sync_response", "one", codec::encode(&SyncResponse::Blocks(served[..1].to_vec())).unwrap());
    seeds.add("sync_response", "none", codec::encode(&SyncResponse::Blocks(vec![])).unwrap());
    // The handshake.
    let hello = Hello {
        chain_id: chain.chain.to_hex(),
        chain_name: chain.genesis.chain_name.clone(),
        instance: "0123456789abcdef".into(),
        warning: None,
    };
    seeds.add("hello", "plain", hello.encode());
    let warned = Hello { warning: Some("another process with your key is connected to me".into()), ..hello };
    seeds.add("hello", "warning", warned.encode());
    // API bodies.
    let hexes: Vec<String> = next_block.txs.iter().map(|t| hex::encode(t.encode().unwrap())).collect();
    seeds.add("api_submit", "attestation", serde_json::to_vec(&serde_json::json!({ "tx": hexes[0] })).unwrap());
    seeds.add("api_submit", "authorisation", serde_json::to_vec(&serde_json::json!({ "tx": hex::encode(auth.encode().unwrap()) })).unwrap());
    seeds.add("api_batch", "block4", serde_json::to_vec(&serde_json::json!({ "txs": hexes })).unwrap());
    seeds.add("api_batch", "mixed", br#"{"note": {"x": [1, 2.5e3, null]}, "txs": ["00ff", "zz", "abc", "", "\u0030\u0031"]}"#.to_vec());
    // Signed API requests: [mode, nonce(16), rest] (fuzz_targets/api_auth.rs).
    let nonce = Nonce([7; 16]);
    let node = chain.validator_keys[0].public();
    let req = SignedRequest::sign(&chain.lender_keys[0], &chain.chain, &node, "GET", "/v1/status", b"", NOW_MS, nonce).unwrap();
    let mut raw = vec![0u8];
    raw.extend_from_slice(&nonce.0);
    for (i, (_, value)) in req.headers(&node).iter().enumerate() {
        if i > 0 {
            raw.push(0xff);
        }
        raw.extend_from_slice(value.as_bytes());
    }
    raw.push(0xff);
    raw.extend_from_slice(b"/v1/status");
    seeds.add("api_auth", "raw-signed", raw);
    for (i, (_, value)) in req.headers(&node).iter().enumerate() {
        let mut genuine = vec![1 | (i as u8) << 1];
        genuine.extend_from_slice(&[9; 16]);
        genuine.extend_from_slice(value.as_bytes());
        seeds.add("api_auth", format!("genuine-{i}"), genuine);
    }
    // Proof files, as the node serves them.
    let id = blocks[1].txs[0].id().unwrap();
    let files = [
        ("bundle", serde_json::to_vec_pretty(&proof::bundle(&ledger, &id).unwrap())),
        ("bundle-revoked", serde_json::to_vec_pretty(&proof::bundle(&ledger, &first).unwrap())),
        ("report", serde_json::to_vec_pretty(&proof::report(&ledger, &Uscc::sample(0)).unwrap())),
        ("trace", serde_json::to_vec_pretty(&proof::trace(&ledger, &first).unwrap())),
        ("consistency", serde_json::to_vec_pretty(&proof::consistency(&ledger, Height(1), ledger.height()).unwrap())),
    ];
    for (name, bytes) in files {
        seeds.add("proof_file", name, bytes.unwrap());
    }
    seeds.add("genesis_json", "testchain", chain.genesis.to_json_pretty().into_bytes());
    // Signature items: [count, (key, r, s, len, payload)...] (fuzz_targets/sig_rule.rs).
    seeds.add("sig_rule", "honest", vec![0, 0, 0, 0, 4, 1, 2, 3, 4]);
    seeds.add("sig_rule", "mixed-batch", vec![3, 0, 0, 0, 0, 1, 3, 0, 0, 2, 0x08, 0, 0, 3, 0x18, 1, 0]);
    seeds.add("sig_rule", "torsion-key", vec![1, 0x09, 0, 0, 1, 7, 2, 0x20, 0, 0]);
    // Batch admission: [count, (selector, argument)...] (fuzz_targets/tx_sig_batch.rs).
    seeds.add("tx_sig_batch", "honest-and-crafted", vec![3, 0, 1, 2, 0, 3, 5, 6, 8]);
    seeds.add("merkle", "small", vec![6, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    seeds.add("merkle", "larger", (0u8..80).collect());
    seeds
}

/// Every seed is accepted by the decoder of its target.
fn check(target: &str, name: &str, bytes: &[u8]) {
    let what = format!("{target}/{name}");
    match target {
        "tx" => assert_eq!(SignedTransaction::decode(bytes).unwrap().encode().unwrap(), bytes, "{what}"),
        "block" => assert_eq!(Block::decode(bytes, 64 * 1024).unwrap().encode().unwrap(), bytes, "{what}"),
        "header" => assert_eq!(codec::encode(&BlockHeader::decode(bytes).unwrap()).unwrap(), bytes, "{what}"),
        "consensus_msg" => assert_eq!(codec::encode(&wire::decode_consensus(bytes).unwrap()).unwrap(), bytes, "{what}"),
        "tx_batch" => assert_eq!(codec::encode(&wire::decode_tx_batch(bytes).unwrap()).unwrap(), bytes, "{what}"),
        "sync_request" => assert_eq!(codec::encode(&wire::decode_sync_request(bytes).unwrap()).unwrap(), bytes, "{what}"),
        "sync_response" => assert_eq!(codec::encode(&wire::decode_sync_response(bytes).unwrap()).unwrap(), bytes, "{what}"),
        "hello" => assert_eq!(Hello::decode(bytes).unwrap().encode(), bytes, "{what}"),
        "api_submit" => {
            let v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
            yrd_node::api::decode_tx_hex(v["tx"].as_str().unwrap()).unwrap_or_else(|e| panic!("{what}: {}", e.code()));
        }
        "api_batch" => assert!(!batch::parse(bytes).unwrap().is_empty(), "{what}"),
        "proof_file" => {
            let file = proof::parse_file(bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
            let genesis = TestChain::new(4, 2).genesis;
            proof::verify_file(&genesis, &file, NOW_MS).unwrap_or_else(|e| panic!("{what}: {e}"));
        }
        "genesis_json" => assert_eq!(Genesis::from_json(bytes).unwrap(), TestChain::new(4, 2).genesis, "{what}"),
        "api_auth" | "sig_rule" | "tx_sig_batch" | "merkle" => assert!(!bytes.is_empty(), "{what}"),
        other => panic!("no target {other}"),
    }
}

#[test]
fn seeds_are_accepted_by_their_decoders_and_written_on_request() {
    let seeds = build();
    let targets: std::collections::BTreeSet<&str> = seeds.0.iter().map(|(t, _, _)| *t).collect();
    assert_eq!(targets.len(), 16, "a seed for every fuzz target: {targets:?}");
    for (target, name, bytes) in &seeds.0 {
        check(target, name, bytes);
    }
    let total: usize = seeds.0.iter().map(|(_, _, b)| b.len()).sum();
    assert!(total < 512 * 1024, "the seed corpus stays small: {total} bytes");
    if let Ok(dir) = std::env::var("YRD_WRITE_FUZZ_CORPUS") {
        for (target, name, bytes) in &seeds.0 {
            let d = std::path::Path::new(&dir).join(target);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(format!("seed-{name}")), bytes).unwrap();
        }
        println!("wrote {} seeds ({total} bytes) to {dir}", seeds.0.len());
    }
    // Same chain, same seeds: the corpus is reproducible.
    let again = build();
    assert!(again.0 == seeds.0, "seed generation is deterministic");
}
