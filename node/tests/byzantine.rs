//! One real validator and a Byzantine one beside it, in one process on loopback.
//! The Byzantine validator holds genuine keys (so its messages verify) and sends
//! what an honest one never would: a proposal stamped near 2^64 ms, a vote for
//! height u64::MAX, a certified block whose body was swapped under its header,
//! a run of proposals equivocating in one round. The real node must stay up,
//! keep its health figures sane, refuse the swapped body without halting, and
//! commit the genuine block when it comes.

mod common;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use yrd_consensus::codec;
use yrd_consensus::messages::{Proposal, Vote, VoteKind};
use yrd_consensus::types::{Height, Round, ValidatorIndex};
use yrd_ledger::block::Block;
use yrd_ledger::store::Ledger;
use yrd_ledger::testkit::{free_port, TestChain};
use yrd_ledger::tx::AttestationKind;
use yrd_ledger::uscc::Uscc;
use yrd_node::health::CLOCK_OFFSET_MAX_MS;
use yrd_node::net::{self, NetConfig, NetHandle, Topic};
use yrd_node::node::Node;
use yrd_node::shared::Shared;
use yrd_node::wire::ConsensusMsg;

/// Longest any awaited condition may take.
const WAIT: Duration = Duration::from_secs(60);

/// Polls `cond` every 50 ms until it holds; fails after [`WAIT`] with `what`, or at
/// once if the node's task ended (a panic in the driver ends it).
async fn until(what: &str, node: &tokio::task::JoinHandle<anyhow::Result<()>>, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(!node.is_finished(), "the node stopped (panicked?) while waiting for {what}");
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn publish(net: &NetHandle, msg: &ConsensusMsg) {
    let bytes = codec::encode(msg).unwrap();
    net.publish(Topic::Consensus, bytes).await.expect("published");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_byzantine_validator_cannot_crash_halt_or_mislead_an_honest_one() {
    let chain = TestChain::new(4, 2);
    let chain_id = chain.genesis.chain_id().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let genesis_path = dir.path().join("genesis.json");
    std::fs::write(&genesis_path, chain.genesis.to_json_pretty()).unwrap();
    let node_port = free_port();

    // The honest validator: index 0.
    let cfg = common::validator_config(&chain, 0, dir.path(), &genesis_path, node_port, vec![]);
    let node = Node::start(cfg).await.unwrap();
    let shared: Arc<Shared> = node.shared();
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(node.run_until(async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    }));

    // The Byzantine validator: index 1, on the same chain, dialling the node.
    let node_pid = net::peer_id_from_ed25519(&chain.validator_keys[0].public().0).unwrap();
    let mut nc = NetConfig::new(chain.validator_keys[1].to_bytes(), chain_id.to_hex()[..16].to_string());
    nc.chain_id = chain_id.to_hex();
    nc.chain_name = chain.genesis.chain_name.clone();
    nc.allowed = chain.validator_keys.iter().map(|k| k.public().0).collect();
    nc.bootstrap = vec![format!("/ip4/127.0.0.1/tcp/{node_port}/p2p/{node_pid}").parse().unwrap()];
    nc.max_gossip_bytes = yrd_node::wire::MAX_CONSENSUS_MSG_BYTES;
    let (byz, mut events) = net::start(nc).await.unwrap();
    // Drain its events (it judges nothing it receives).
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    let mesh_deadline = Instant::now() + WAIT;
    while byz.topic_peers(Topic::Consensus).await.unwrap().is_empty() {
        assert!(Instant::now() < mesh_deadline, "the Byzantine validator never joined the consensus topic");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The genuine block 1, built and certified as a quorum would.
    let ref_dir = tempfile::tempdir().unwrap();
    let reference = Ledger::open(ref_dir.path(), chain.genesis.clone()).unwrap();
    let set = reference.validators_at(Height(1)).unwrap();
    let txs = (1..=3).map(|s| chain.attestation(0, s, Uscc::sample(s), AttestationKind::RedList)).collect();
    let genuine: Block =
        reference.build_block(txs, set.proposer(Height(1), Round(0)), Round(0), yrd_node::shared::now_ms()).unwrap().block;
    let genuine_hash = genuine.hash().unwrap();
    let cert = chain.certify(&genuine.header);

    // 1. A vote for height u64::MAX, signed by validator 1.
    let vote = Vote {
        chain: chain_id,
        height: Height(u64::MAX),
        round: Round(0),
        kind: VoteKind::Prevote,
        value: None,
        validator: ValidatorIndex(1),
    }
    .sign(&chain.validator_keys[1])
    .unwrap();
    publish(&byz, &ConsensusMsg::Vote(vote)).await;

    // 2. A proposal by validator 1 in a round it leads, of a block stamped
    //    2^63 + 5 ms: `timestamp − now` overflowed i64 and panicked the driver.
    let round = (0..16).map(Round).find(|r| set.proposer(Height(1), *r) == ValidatorIndex(1)).unwrap();
    let mut wild = genuine.clone();
    wild.header.timestamp_ms = (1u64 << 63) + 5;
    wild.header.round = round;
    wild.header.proposer = ValidatorIndex(1);
    let proposal = Proposal {
        chain: chain_id,
        height: Height(1),
        round,
        value: wild.hash().unwrap(),
        pol_round: None,
        proposer: ValidatorIndex(1),
    }
    .sign(&chain.validator_keys[1])
    .unwrap();
    publish(&byz, &ConsensusMsg::Proposal { proposal, block: wild }).await;
    until("the wild timestamp to reach the clock monitor", &task, || {
        shared.health.lock().unwrap().clock.is_some_and(|c| c.offset_ms == Some(CLOCK_OFFSET_MAX_MS))
    })
    .await;

    // 3. Equivocation: many more proposals of the same round, each a different
    //    block (the node keeps the first body of a round only; what this test
    //    checks is that it goes on to commit the genuine block below).
    for i in 0..40u64 {
        let mut b = genuine.clone();
        b.header.round = round;
        b.header.proposer = ValidatorIndex(1);
        b.header.timestamp_ms += 1 + i;
        let p = Proposal { chain: chain_id, height: Height(1), round, value: b.hash().unwrap(), pol_round: None, proposer: ValidatorIndex(1) }
            .sign(&chain.validator_keys[1])
            .unwrap();
        publish(&byz, &ConsensusMsg::Proposal { proposal: p, block: b }).await;
    }

    // 4. Block 1 with its genuine certificate but a swapped body (a different,
    //    equally valid attestation in place of the second): refused, no halt.
    let mut swapped = genuine.clone();
    swapped.txs[1] = chain.attestation(1, 77, Uscc::sample(77), AttestationKind::RedList);
    assert_eq!(swapped.hash().unwrap(), genuine_hash, "the certificate covers the header only");
    publish(&byz, &ConsensusMsg::Certified { block: swapped, certificate: cert.clone() }).await;

    // 5. The genuine block: committed.
    publish(&byz, &ConsensusMsg::Certified { block: genuine.clone(), certificate: cert }).await;
    until("block 1 to be committed", &task, || {
        let halt = shared.health.lock().unwrap().halt.clone();
        assert!(halt.is_none(), "the node halted on a swapped body: {halt:?}");
        shared.height() >= Height(1)
    })
    .await;
    {
        let ledger = shared.ledger.read().unwrap();
        assert_eq!(ledger.header(Height(1)).unwrap().unwrap().hash().unwrap(), genuine_hash);
        let block = Block::decode(&ledger.block_bytes(Height(1)).unwrap().unwrap(), codec::MAX_ENCODED_BYTES).unwrap();
        assert_eq!(block.txs, genuine.txs, "the committed body is the certified one");
    }
    assert!(shared.health.lock().unwrap().halt.is_none(), "a swapped body is the sender's fault, not a halt");

    // The liveness figures, refreshed after the commit: the vote for height
    // u64::MAX (one validator's word) does not make this node "catching up".
    until("the liveness figures to be refreshed after the commit", &task, || {
        shared.health.lock().unwrap().liveness.best_known_height >= 1
    })
    .await;
    let best = shared.health.lock().unwrap().liveness.best_known_height;
    assert!(best < 1_000, "best known height {best}: one Byzantine vote moved it");

    assert!(!task.is_finished(), "the node is still running");
    stop_tx.send(true).unwrap();
    byz.shutdown().await;
    task.await.unwrap().unwrap();
}
