//! Overload without collapse (docs/api.md, "Overload"): offered more than it
//! finalises, a node refuses at once — 503 `overloaded` with `Retry-After` and
//! the error shape `{"error", "code"}` — instead of queueing up to the mempool's
//! count limit. A real server on 127.0.0.1:0 over an in-process `Shared` whose
//! driver is not running: nothing is finalised unless the test says so, so the
//! oldest pending transaction only ages and the gate must close.

mod common;

use std::time::Duration;

use serde_json::{json, Value};
use yrd_ledger::testkit::TestChain;
use yrd_ledger::tx::{AttestationKind, SignedTransaction};
use yrd_ledger::uscc::Uscc;
use yrd_node::mempool::Mempool;

/// The mempool's count limit: far above what the delay gate lets in.
const MEMPOOL_MAX_TXS: usize = 50_000;

/// `(status, Retry-After, body)`.
fn post(agent: &ureq::Agent, url: &str, body: &Value) -> (u16, Option<u64>, Value) {
    let mut resp = agent.post(url).header("content-type", "application/json").send(body.to_string().as_bytes()).unwrap();
    let status = resp.status().as_u16();
    let retry = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().parse::<u64>().expect("Retry-After in seconds"));
    let text = resp.body_mut().with_config().limit(64 << 20).read_to_string().unwrap();
    (status, retry, serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {text}")))
}

fn hexes(txs: &[SignedTransaction]) -> Vec<String> {
    txs.iter().map(|t| hex::encode(t.encode().unwrap())).collect()
}

fn assert_overloaded(status: u16, retry: Option<u64>, v: &Value) {
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["code"], "overloaded", "{v}");
    assert_eq!(v.as_object().unwrap().len(), 2, "error body has exactly error and code: {v}");
    let reason = v["error"].as_str().unwrap();
    assert!(reason.contains("overloaded") && reason.contains("mempool.max_wait_ms") && reason.contains("retry after"), "{reason}");
    let r = retry.expect("a Retry-After header");
    assert!((1..=yrd_node::admission::MAX_RETRY_AFTER_S).contains(&r), "Retry-After {r}");
}

#[test]
fn a_node_that_finalises_nothing_refuses_at_once_instead_of_queueing_to_the_count_limit() {
    let chain = TestChain::new(4, 2);
    let s = common::serve(
        &chain,
        common::Options {
            mempool: Mempool::with_max_wait(MEMPOOL_MAX_TXS, Some(Duration::from_millis(1000))),
            ..Default::default()
        },
    );
    let agent = common::agent();
    let batch_url = format!("{}/v1/transactions/batch", s.base);
    let txs: Vec<SignedTransaction> = (0..4000u64)
        .map(|i| chain.attestation((i % 2) as usize, 1 + i / 2, Uscc::sample(i), AttestationKind::RedList))
        .collect();
    let target = s.shared.mempool.lock().unwrap().admission_target().expect("the gate is on");
    // Three batches of 1,000 are admitted at once: the first joins an empty
    // queue (always admitted), and past that a queue whose oldest transaction is
    // young is admitted however long it is (the gate never starves a chain that
    // keeps up).
    for b in 0..3 {
        let chunk = &txs[b * 1000..(b + 1) * 1000];
        let (status, _, v) = post(&agent, &batch_url, &json!({"txs": hexes(chunk)}));
        assert_eq!(status, 200, "{v}");
        assert!(v["results"].as_array().unwrap().iter().all(|e| e["status"] == "pending"), "batch {b}: {v}");
    }
    assert_eq!(s.shared.mempool.lock().unwrap().len(), 3000);
    // Nothing is finalised, so the oldest only ages; once it has waited past the
    // target (awaited, bounded) every further batch is refused as a whole,
    // however many are offered: the queue stays where it was, far below the
    // 50,000 the count limit would let in.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while s.shared.mempool.lock().unwrap().oldest_wait() <= target {
        assert!(std::time::Instant::now() < deadline, "the oldest pending transaction never aged past {target:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let fourth = json!({"txs": hexes(&txs[3000..4000])});
    for _ in 0..20 {
        let (status, retry, v) = post(&agent, &batch_url, &fourth);
        assert_overloaded(status, retry, &v);
        assert_eq!(retry, Some(yrd_node::admission::MAX_RETRY_AFTER_S), "nothing finalised: no expected end");
    }
    // The single-transaction endpoint too; and the refused are not gossiped.
    let (status, retry, v) =
        post(&agent, &format!("{}/v1/transactions", s.base), &json!({"tx": hexes(&txs[3000..3001])[0]}));
    assert_overloaded(status, retry, &v);
    assert_eq!(s.shared.mempool.lock().unwrap().len(), 3000);
    let mut gossiped = 0;
    while let Ok(b) = s.gossip.lock().unwrap().try_recv() {
        gossiped += b.len();
    }
    assert_eq!(gossiped, 3000, "only the admitted are gossiped");
    assert_eq!(s.shared.metrics.txs_refused_overload.get(), 20 * 1000 + 1);
    let metrics = agent.get(format!("{}/metrics", s.base)).call().unwrap().body_mut().read_to_string().unwrap();
    assert!(metrics.contains("transactions_refused_overload_total 20001"), "{metrics}");

    // Blocks are finalised: with 2,500 gone the 500 left still have an old head,
    // and a batch that would make the queue longer than the always-admitted
    // length is still refused; once all are final the queue is empty and the
    // fourth batch is admitted.
    let done: Vec<_> = txs[..2500].iter().map(|t| t.id().unwrap()).collect();
    s.shared.forget_committed(&done);
    // The new head came with the third batch: let it age past the target too.
    let target = s.shared.mempool.lock().unwrap().admission_target().expect("the gate is on");
    while s.shared.mempool.lock().unwrap().oldest_wait() <= target {
        assert!(std::time::Instant::now() < deadline, "the new head never aged past {target:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, retry, v) = post(&agent, &batch_url, &fourth);
    assert_overloaded(status, retry, &v);
    let done: Vec<_> = txs[2500..3000].iter().map(|t| t.id().unwrap()).collect();
    s.shared.forget_committed(&done);
    let (status, retry, v) = post(&agent, &batch_url, &fourth);
    assert_eq!((status, retry), (200, None), "{v}");
    assert!(v["results"].as_array().unwrap().iter().all(|e| e["status"] == "pending"), "{v}");
    assert_eq!(s.shared.mempool.lock().unwrap().len(), 1000);
}
