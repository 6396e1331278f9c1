//! Four validators in one process on loopback: they finalise submitted
//! attestations and agree on every block.

mod common;

use std::sync::Arc;
use std::time::Duration;

use yrd_consensus::types::Height;
use yrd_ledger::testkit::TestChain;
use yrd_ledger::tx::AttestationKind;
use yrd_ledger::uscc::Uscc;
use yrd_node::node::Node;
use yrd_node::shared::Shared;

use yrd_ledger::testkit::free_port;

async fn wait_height(shared: &Arc<Shared>, h: Height, secs: u64) {
    let mut rx = shared.committed.subscribe();
    tokio::time::timeout(Duration::from_secs(secs), async {
        loop {
            if *rx.borrow_and_update() >= h {
                return;
            }
            rx.changed().await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{} did not reach height {h} in {secs} s (at {})", shared.name, shared.height()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_finalise_attestations() {
    let chain = TestChain::new(4, 4);
    let dir = tempfile::tempdir().unwrap();
    let genesis_path = dir.path().join("genesis.json");
    std::fs::write(&genesis_path, chain.genesis.to_json_pretty()).unwrap();
    let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let mut handles = Vec::new();
    let mut shareds = Vec::new();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    for i in 0..4 {
        let peers = (0..4)
            .filter(|j| *j != i)
            .map(|j| {
                let pid = yrd_node::net::peer_id_from_ed25519(&chain.validator_keys[j].public().0).unwrap();
                format!("/ip4/127.0.0.1/tcp/{}/p2p/{pid}", ports[j])
            })
            .collect();
        let cfg = common::validator_config(&chain, i, dir.path(), &genesis_path, ports[i], peers);
        let node = Node::start(cfg).await.unwrap();
        shareds.push(node.shared());
        let mut rx = stop_rx.clone();
        handles.push(tokio::spawn(node.run_until(async move {
            let _ = rx.wait_for(|s| *s).await;
        })));
    }
    // Empty blocks come first; then attestations submitted to different nodes.
    wait_height(&shareds[0], Height(1), 30).await;
    let mut ids = Vec::new();
    for i in 0..40u64 {
        let tx = chain.attestation((i % 4) as usize, i, Uscc::sample(i), AttestationKind::ALL[(i % 7) as usize]);
        let bytes = tx.encode().unwrap();
        let r = shareds[(i % 4) as usize].submit(&[&bytes]).await;
        ids.push(r[0].as_ref().map(|(id, _)| *id).unwrap());
    }
    // Wait until every node has every attestation.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for s in &shareds {
        loop {
            let done = {
                let l = s.ledger.read().unwrap();
                ids.iter().all(|id| l.tx_location(id).unwrap().is_some())
            };
            if done {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{} did not commit all attestations", s.name);
            let mut rx = s.committed.subscribe();
            let _ = tokio::time::timeout(Duration::from_secs(2), rx.changed()).await;
        }
    }
    // Same blocks everywhere.
    let h = shareds.iter().map(|s| s.height()).min().unwrap();
    for height in 1..=h.0 {
        let hashes: Vec<_> = shareds
            .iter()
            .map(|s| s.ledger.read().unwrap().header(Height(height)).unwrap().unwrap().hash().unwrap())
            .collect();
        assert!(hashes.windows(2).all(|w| w[0] == w[1]), "height {height}: {hashes:?}");
    }
    stop_tx.send(true).unwrap();
    for h in handles {
        h.await.unwrap().unwrap();
    }
}
