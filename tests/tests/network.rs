//! Real validator processes on 127.0.0.1: finality, crash recovery, fault
//! tolerance, permissioning, bad input and durability.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use yrd_ledger::tx::{AttestationKind, SignedTransaction};
use yrd_ledger::uscc::Uscc;
use yrd_consensus::types::{Height, Round};
use yrd_tests::{yrd_bin, Cluster};

fn att(c: &Cluster, issuer: usize, seq: u64) -> SignedTransaction {
    c.chain.attestation(issuer, seq, Uscc::sample(seq), AttestationKind::ALL[(seq % 7) as usize])
}

fn submit_ok(c: &Cluster, node: usize, tx: &SignedTransaction) -> String {
    let (status, body) = c.submit(node, tx);
    assert_eq!(status, 202, "submit to {}: {body}", c.nodes[node].name);
    body["id"].as_str().expect("id").to_string()
}

/// (height, block_hash) of `id` on every listed node, all equal.
fn same_everywhere(c: &mut Cluster, nodes: &[usize], id: &str) -> (u64, String) {
    let mut seen = Vec::new();
    for &i in nodes {
        let v = c.wait_final(i, id, 60);
        seen.push((v["height"].as_u64().unwrap(), v["block_hash"].as_str().unwrap().to_string()));
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "{id} differs across nodes: {seen:?}");
    seen[0].clone()
}

#[test]
fn four_validators_finalise_the_same_records_in_the_same_blocks() {
    let mut c = Cluster::start(4);
    for i in 0..4 {
        c.wait_height(i, 1, 60);
    }
    let ids: Vec<String> = (0..12).map(|s| submit_ok(&c, (s % 4) as usize, &att(&c, (s % 4) as usize, s))).collect();
    for id in &ids {
        same_everywhere(&mut c, &[0, 1, 2, 3], id);
    }
    // Whole blocks agree too.
    let h = (0..4).filter_map(|i| c.height(i)).min().unwrap();
    for height in 1..=h {
        let hashes: Vec<Value> = (0..4).map(|i| c.get(i, &format!("/v1/blocks/{height}")).unwrap().1["hash"].clone()).collect();
        assert!(hashes.windows(2).all(|w| w[0] == w[1]), "block {height}: {hashes:?}");
    }
    // Clean shutdown on SIGTERM.
    for i in 0..4 {
        let status = c.stop(i).expect("was running");
        assert!(status.success(), "{} exited with {status} on SIGTERM", c.nodes[i].name);
    }
}

#[test]
fn a_killed_validator_restarts_catches_up_and_agrees() {
    let mut c = Cluster::start(4);
    c.wait_height(3, 1, 60);
    c.kill(3);
    let ids: Vec<String> = (0..8).map(|s| submit_ok(&c, (s % 3) as usize, &att(&c, 0, s))).collect();
    for id in &ids {
        same_everywhere(&mut c, &[0, 1, 2], id);
    }
    let target = c.height(0).unwrap();
    c.start_node(3);
    c.wait_height(3, target, 90);
    for id in &ids {
        same_everywhere(&mut c, &[0, 1, 2, 3], id);
    }
}

#[test]
fn one_validator_down_keeps_finalising_two_down_halts_safely_then_resumes() {
    let mut c = Cluster::start(4);
    for i in 0..4 {
        c.wait_height(i, 1, 60);
    }
    c.kill(3);
    let a = submit_ok(&c, 0, &att(&c, 0, 1));
    same_everywhere(&mut c, &[0, 1, 2], &a);

    c.kill(2);
    let b = submit_ok(&c, 0, &att(&c, 0, 2));
    // With 2 of 4 down there is no quorum: nothing may become final. Observe for a
    // fixed window (this is the property under test, not synchronisation).
    let frozen: Vec<u64> = (0..2).map(|i| c.height(i).unwrap()).collect();
    let until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until {
        for (i, h) in frozen.iter().enumerate() {
            assert_eq!(c.height(i).unwrap(), *h, "{} committed without a quorum", c.nodes[i].name);
        }
        let (_, v) = c.get(0, &format!("/v1/attestations/{b}")).unwrap();
        assert_eq!(v["status"], "pending", "{b} became final without a quorum: {v}");
        std::thread::sleep(Duration::from_millis(300));
    }
    c.start_node(2);
    same_everywhere(&mut c, &[0, 1, 2], &b);
    c.start_node(3);
    let target = c.height(0).unwrap();
    c.wait_height(3, target, 90);
    same_everywhere(&mut c, &[0, 1, 2, 3], &b);
}

#[test]
fn malformed_and_replayed_transactions_are_rejected_with_reasons() {
    let mut c = Cluster::start(4);
    c.wait_height(0, 1, 60);
    // Not hex.
    let (s, v) = c.post(0, "/v1/transactions", &json!({"tx": "zz"})).unwrap();
    assert_eq!(s, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("hex"), "{v}");
    // Bytes that are not a transaction.
    let (s, v) = c.post(0, "/v1/transactions", &json!({"tx": "00010203"})).unwrap();
    assert_eq!(s, 400, "{v}");
    // A forged signature.
    let mut forged = att(&c, 1, 77);
    forged.signature.0[0] ^= 1;
    let forged_id = forged.id().unwrap().to_hex();
    let (s, v) = c.submit(0, &forged);
    assert_eq!((s, v["code"].as_str()), (400, Some("bad_signature")), "{v}");
    // Missing field.
    let (s, v) = c.post(0, "/v1/transactions", &json!({"transaction": "00"})).unwrap();
    assert_eq!(s, 400, "{v}");

    // A valid one, final; then its replay is refused on every node.
    let good = att(&c, 1, 78);
    let id = submit_ok(&c, 1, &good);
    same_everywhere(&mut c, &[0, 1, 2, 3], &id);
    for i in 0..4 {
        let (s, v) = c.submit(i, &good);
        assert_eq!((s, v["code"].as_str()), (400, Some("duplicate")), "replay on {}: {v}", c.nodes[i].name);
    }
    // The forged transaction is in no block.
    let (s, _) = c.get(0, &format!("/v1/attestations/{forged_id}")).unwrap();
    assert_eq!(s, 404);
}

#[test]
fn a_node_whose_key_is_not_in_the_genesis_cannot_connect_and_receives_nothing() {
    let mut c = Cluster::start(4);
    c.wait_height(0, 1, 60);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use yrd_node::net::{self, NetConfig, NetEvent};
        let stranger = yrd_node::keys::generate();
        let chain_hex = c.chain.chain.to_hex();
        let mut cfg = NetConfig::new(stranger.to_bytes(), chain_hex[..16].to_string());
        // It trusts the validators (it would accept them), but they do not know it.
        cfg.allowed = c.chain.validator_keys.iter().map(|k| k.public().0).collect();
        cfg.bootstrap = (0..4)
            .map(|i| {
                let pid = net::peer_id_from_ed25519(&c.chain.validator_keys[i].public().0).unwrap();
                format!("/ip4/127.0.0.1/tcp/{}/p2p/{pid}", c.nodes[i].p2p).parse().unwrap()
            })
            .collect();
        cfg.auto_accept_gossip = true;
        let (handle, mut events) = net::start(cfg).await.unwrap();
        // Meanwhile the chain keeps finalising (blocks are gossiped on the consensus topic).
        let id = submit_ok(&c, 0, &att(&c, 2, 5));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::time::Instant::now() < deadline {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(Some(NetEvent::Gossip { .. })) => panic!("the stranger received gossip"),
                Ok(Some(NetEvent::Request { .. })) => panic!("the stranger received a request"),
                Ok(Some(_)) | Err(_) => {}
                Ok(None) => break,
            }
        }
        let peers = handle.peers().await.unwrap();
        assert!(peers.is_empty(), "the stranger holds connections to {peers:?}");
        handle.shutdown().await;
        same_everywhere(&mut c, &[0, 1, 2, 3], &id);
    });
}

#[test]
fn an_attestation_reported_final_survives_kill_9_of_every_node() {
    let mut c = Cluster::start(4);
    c.wait_height(0, 1, 60);
    let out = Command::new(yrd_bin())
        .args(["attest", "--node", &c.nodes[0].api, "--key"])
        .arg(c.issuer_key_file(3))
        .args(["--subject", Uscc::sample(4242).as_str(), "--kind", "tax-credit", "--grade", "A"])
        .args(["--evidence-digest", &"ab".repeat(32), "--wait", "--json"])
        .output()
        .expect("run yrd attest");
    assert!(out.status.success(), "yrd attest failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("attest --json output");
    let id = v["id"].as_str().unwrap().to_string();
    let height = v["height"].as_u64().expect("height once final");
    for i in 0..4 {
        c.kill(i);
    }
    for i in 0..4 {
        c.start_node(i);
    }
    for i in 0..4 {
        let v = c.wait_final(i, &id, 60);
        assert_eq!(v["height"].as_u64(), Some(height), "{} lost or moved {id}", c.nodes[i].name);
        assert_eq!(v["status"], "active");
    }
}

#[test]
fn a_malicious_validator_is_dropped_and_the_others_keep_finalising() {
    // Validator 3's key is used by a hostile in-test peer instead of a real node:
    // it is allowed to connect, then floods garbage on both gossip topics.
    let mut c = Cluster::prepare(4, &[]);
    for i in 0..3 {
        c.start_node(i);
    }
    c.wait_height(0, 1, 60);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use yrd_node::net::{self, NetConfig, Topic};
        let chain_hex = c.chain.chain.to_hex();
        let mut cfg = NetConfig::new(c.chain.validator_keys[3].to_bytes(), chain_hex[..16].to_string());
        cfg.allowed = c.chain.validator_keys.iter().map(|k| k.public().0).collect();
        cfg.bootstrap = (0..3)
            .map(|i| {
                let pid = net::peer_id_from_ed25519(&c.chain.validator_keys[i].public().0).unwrap();
                format!("/ip4/127.0.0.1/tcp/{}/p2p/{pid}", c.nodes[i].p2p).parse().unwrap()
            })
            .collect();
        cfg.auto_accept_gossip = true;
        let (handle, _events) = net::start(cfg).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while handle.topic_peers(Topic::Consensus).await.unwrap().len() < 3 {
            assert!(tokio::time::Instant::now() < deadline, "hostile peer never joined the mesh");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Garbage: undecodable consensus messages and a batch of a forged transaction.
        let mut forged = att(&c, 0, 999);
        forged.signature.0[3] ^= 0x40;
        let batch = yrd_consensus::codec::encode(&vec![forged.encode().unwrap()]).unwrap();
        for k in 0..6u8 {
            let _ = handle.publish(Topic::Consensus, vec![0xde, 0xad, k]).await;
            let _ = handle.publish(Topic::Transactions, [batch.clone(), vec![k]].concat()).await;
        }
        // It is dropped by every honest node ...
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !handle.peers().await.unwrap().is_empty() {
            assert!(tokio::time::Instant::now() < deadline, "the hostile peer is still connected");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        handle.shutdown().await;
    });
    // ... which counted its messages as invalid, and the chain goes on.
    let (_, metrics) = c.get(0, "/metrics").unwrap();
    let text = metrics.as_str().unwrap_or_default().to_string();
    let invalid: f64 = text
        .lines()
        .find(|l| l.starts_with("yrd_invalid_messages_total"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(invalid >= 3.0, "invalid messages not counted: {text}");
    let id = submit_ok(&c, 1, &att(&c, 1, 1000));
    same_everywhere(&mut c, &[0, 1, 2], &id);
}

/// Sets `consensus.empty_block_after_ms` (the idle heartbeat) in every node's
/// config; takes effect at the next start.
fn set_heartbeat(c: &Cluster, ms: u64) {
    for n in &c.nodes {
        let config = std::fs::read_to_string(&n.config).expect("config");
        let line = config.lines().find(|l| l.starts_with("empty_block_after_ms = ")).expect("the test config sets the heartbeat").to_string();
        std::fs::write(&n.config, config.replace(&line, &format!("empty_block_after_ms = {ms}"))).expect("config");
    }
}

/// The header fields of block `h` as node `i` serves them.
fn block_at(c: &Cluster, i: usize, h: u64) -> Value {
    match c.get(i, &format!("/v1/blocks/{h}")) {
        Some((200, v)) => v,
        other => panic!("block {h} on {}: {other:?}", c.nodes[i].name),
    }
}

/// Issue 12 item 5: an idle chain makes one empty block per heartbeat
/// (`consensus.empty_block_after_ms`) instead of one a second; an attestation
/// submitted while it idles is final at once, not at the next heartbeat; and with
/// the next height's proposer down it is still final long before the heartbeat
/// (the held round-0 proposal timeout runs again once a transaction waits, and
/// round 1's proposer takes it).
#[test]
fn an_idle_chain_beats_slowly_yet_finalises_at_once_even_with_its_proposer_down() {
    const BEAT_MS: u64 = 2000;
    const LONG_BEAT_MS: u64 = 60_000;
    let mut c = Cluster::prepare(4, &[]);
    set_heartbeat(&c, BEAT_MS);
    for i in 0..4 {
        c.start_node(i);
    }
    // Idle: empty blocks at least a heartbeat apart (the proposer's clock stamps them).
    for i in 0..4 {
        c.wait_height(i, 3, 60);
    }
    for h in 2..=3 {
        let (prev, cur) = (block_at(&c, 0, h - 1), block_at(&c, 0, h));
        assert_eq!(cur["tx_count"], 0, "idle block {h} is not empty: {cur}");
        let gap = cur["timestamp_ms"].as_u64().unwrap().saturating_sub(prev["timestamp_ms"].as_u64().unwrap());
        assert!(gap >= BEAT_MS - 50, "idle blocks {} and {h} only {gap} ms apart (heartbeat {BEAT_MS} ms)", h - 1);
    }
    // A heartbeat of a minute: nothing but a transaction can make a block within
    // the 20 s waits below.
    let mut idle_height = 0;
    for i in 0..4 {
        idle_height = idle_height.max(c.height(i).expect("a node answers"));
        assert_eq!(c.stop(i).and_then(|s| s.code()), Some(0), "{} did not stop cleanly", c.nodes[i].name);
    }
    set_heartbeat(&c, LONG_BEAT_MS);
    for i in 0..4 {
        c.start_node(i);
    }
    for i in 0..4 {
        c.wait_height(i, idle_height, 30);
    }
    let a = submit_ok(&c, 1, &att(&c, 0, 1));
    let ha = c.wait_final(1, &a, 20)["height"].as_u64().unwrap();
    assert!(ha > idle_height, "{a} final at {ha}, not above {idle_height}");
    for i in 0..4 {
        c.wait_height(i, ha, 20);
    }
    // Height ha + 1's round-0 proposer down, the chain idle: a transaction sent to
    // another validator is final without the heartbeat.
    let set = c.chain.genesis.validator_set().expect("validator set");
    let key = *set.key(set.proposer(Height(ha + 1), Round(0))).expect("proposer");
    let down = c.chain.genesis.validators.iter().position(|v| v.key == key).expect("proposer is a validator");
    c.kill(down);
    let via = (down + 1) % 4;
    let b = submit_ok(&c, via, &att(&c, 0, 2));
    let v = c.wait_final(via, &b, 20);
    let hb = v["height"].as_u64().unwrap();
    let block = block_at(&c, via, hb);
    assert_eq!(hb, ha + 1, "{b} final at {hb}, expected the next height {}", ha + 1);
    assert!(block["round"].as_u64().unwrap() >= 1, "block {hb} decided in round 0 with its proposer down: {block}");
    c.start_node(down);
    c.wait_height(down, hb, 60);
}
