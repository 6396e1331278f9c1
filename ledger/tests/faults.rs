//! Injected storage faults at random points (feature `failpoints`; run by its own
//! line in scripts/test.sh: `cargo test -p yrd-ledger --features failpoints --test faults`).
//!
//! Each iteration opens the store, arms one fault — one of sled's I/O failpoints
//! failing its k-th operation, or a torn block write that persists a random part
//! of the block's batch — and commits blocks until a commit fails. Then it
//! checks that the failure was returned (the block was not acknowledged), drops
//! the store, reopens it (repairing a torn write), and checks that it is
//! consistent (`audit::verify_store`) at the last acknowledged block or later and
//! that acknowledged attestations are still there. Faults that never fire within
//! a few blocks are disarmed and not counted.
//!
//! `YRD_FAULT_SEED` and `YRD_FAULT_ROUNDS` override the seed and the number of
//! iterations; the seed is printed first and with every failure. Every
//! [`ROUNDS_PER_STORE`] iterations start on a fresh store (the audit after each
//! fault re-verifies the whole chain).

use yrd_consensus::types::Round;
use yrd_ledger::audit::{verify_open, verify_store};
use yrd_ledger::block::Block;
use yrd_ledger::fault::{sled_fail, Tear};
use yrd_ledger::store::{BlockError, Ledger};
use yrd_ledger::testkit::TestChain;
use yrd_ledger::tx::{AttestationKind, RevocationReason, SignedTransaction, TxBody, TxId};
use yrd_ledger::uscc::Uscc;

/// sled 0.34.7's I/O failpoints (`grep io_fail!` in its source): writing the log
/// (every flush passes here) ...
const LOG_FAILPOINTS: [&str; 2] = ["buffer write", "buffer write post"];
/// ... and writing a value too large for the log (a blob file; a big block).
const BLOB_FAILPOINTS: [&str; 4] =
    ["blob blob write", "write_blob write crc", "write_blob write kind_byte", "write_blob write buf"];
/// Iterations on one store before starting a fresh one.
const ROUNDS_PER_STORE: u32 = 20;
/// Blocks committed per iteration before an armed fault that has not fired is
/// disarmed.
const BLOCKS_PER_ROUND: u64 = 6;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The next block's transactions: mostly small blocks, sometimes one large
/// enough to be a sled blob, sometimes a revocation of an earlier attestation.
fn next_txs(
    chain: &TestChain,
    rng: &mut Rng,
    next_seq: &mut u64,
    active: &mut Vec<(usize, TxId)>,
    big: bool,
) -> Vec<SignedTransaction> {
    let count = if big || rng.below(16) == 0 { 200 + rng.below(100) } else { 1 + rng.below(12) };
    let mut txs = Vec::new();
    if !active.is_empty() && rng.below(3) == 0 {
        let (issuer, target) = active.swap_remove(rng.below(active.len() as u64) as usize);
        txs.push(chain.revocation(issuer, *next_seq, target, RevocationReason::Repair));
        *next_seq += 1;
    }
    for _ in 0..count {
        let n = *next_seq;
        *next_seq += 1;
        let issuer = (n % 4) as usize;
        // A few subjects get many records; most get one.
        let subject = Uscc::sample(if n.is_multiple_of(3) { n % 29 } else { n });
        txs.push(chain.attestation(issuer, n, subject, AttestationKind::ALL[(n % 7) as usize]));
    }
    txs
}

/// Records a committed block: its attestations may be revoked later.
fn track(block: &Block, active: &mut Vec<(usize, TxId)>, acked: &mut Vec<(u64, Vec<TxId>)>) {
    for t in &block.txs {
        if let TxBody::Attest(_) = t.tx.body {
            active.push(((t.tx.sequence % 4) as usize, t.id().expect("id")));
        }
    }
    acked.push((block.header.height.0, block.txs.iter().map(|t| t.id().expect("id")).collect()));
}

/// Builds, certifies and commits the next block.
fn commit(chain: &TestChain, ledger: &mut Ledger, txs: Vec<SignedTransaction>) -> Result<Block, BlockError> {
    let h = ledger.height().next();
    let proposer = ledger.validators_at(h).expect("validator set").proposer(h, Round(0));
    let built = ledger.build_block(txs, proposer, Round(0), 1_800_000_000_000 + h.0).map_err(BlockError::Store)?;
    assert!(built.rejected.is_empty(), "rejected: {:?}", built.rejected);
    let cert = chain.certify(&built.block.header);
    ledger.commit(&built.block, &cert)?;
    Ok(built.block)
}

/// Opens the store (after a failed write sled's background threads may hold the
/// directory's lock for a moment after the handle is dropped; `Ledger::open`
/// waits for a lock held by this process, `yrd_ledger::sled_open`).
fn open(dir: &std::path::Path, chain: &TestChain) -> Result<Ledger, yrd_ledger::store::StoreError> {
    Ledger::open(dir, chain.genesis.clone())
}

/// sled's failpoints are process-wide: the tests of this file take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn injected_storage_faults_lose_nothing_acknowledged() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let seed: u64 = std::env::var("YRD_FAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0xfa17_5eed);
    let rounds: u32 = std::env::var("YRD_FAULT_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(80);
    println!("storage faults: seed {seed} (replay with YRD_FAULT_SEED={seed}), {rounds} iterations");
    let chain = TestChain::new(4, 4);
    let mut dir = tempfile::tempdir().expect("tempdir");
    let mut next_seq = 1u64;
    // Attestations that may still be revoked: (issuer, id).
    let mut active: Vec<(usize, TxId)> = Vec::new();
    // Every acknowledged block: (height, its transaction ids).
    let mut acked: Vec<(u64, Vec<TxId>)> = Vec::new();
    let (mut fired, mut torn_fired, mut repairs) = (0u32, 0u32, 0u32);
    // The transactions of the last block whose commit failed: a node commits
    // the same certified block again (it fetches it from its peers), never
    // another at that height.
    let mut retry: Option<Vec<SignedTransaction>> = None;
    for round in 0..rounds {
        if round > 0 && round % ROUNDS_PER_STORE == 0 {
            // A fresh store: the audit after every fault re-verifies the whole chain.
            dir = tempfile::tempdir().expect("tempdir");
            acked.clear();
            active.clear();
            retry = None;
        }
        // Each round draws from its own stream: the faults armed in a round do not
        // depend on how many blocks earlier rounds took to fire theirs (which varies
        // with sled's background flusher, so a run does not replay exactly).
        let mut rng = Rng((seed ^ u64::from(round).wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1);
        let ctx = format!("round {round} (seed {seed})");
        let mut ledger =
            open(dir.path(), &chain).unwrap_or_else(|e| panic!("{ctx}: reopen failed: {e}"));
        if let Some(r) = ledger.repair_report() {
            repairs += 1;
            println!("{ctx}: {r}");
        }
        let last_acked = acked.last().map_or(0, |(h, _)| *h);
        assert!(ledger.height().0 >= last_acked, "{ctx}: block {last_acked} was acknowledged, the store holds {}", ledger.height());
        // A block that failed but made it whole counts as committed from here on
        // (it is final: a quorum certified it); anything above it must not exist.
        assert!(ledger.height().0 <= last_acked + 1, "{ctx}: the store holds {} after {last_acked} acknowledged", ledger.height());
        if ledger.height().0 > last_acked {
            let b = ledger.block(ledger.height()).expect("read").expect("tip");
            acked.push((b.header.height.0, b.txs.iter().map(|t| t.id().expect("id")).collect()));
            retry = None;
        }
        // Acknowledged attestations are there: the last block whole, 16 others at random.
        let mut sample: Vec<TxId> = acked.last().map(|(_, ids)| ids.clone()).unwrap_or_default();
        for _ in 0..16 {
            if let Some((_, ids)) = acked.get(rng.below(acked.len().max(1) as u64) as usize) {
                if !ids.is_empty() {
                    sample.push(ids[rng.below(ids.len() as u64) as usize]);
                }
            }
        }
        for id in &sample {
            assert!(ledger.tx_record(id, 0).expect("lookup").is_some(), "{ctx}: acknowledged attestation {id} is gone");
        }
        // Resume numbering after what the store holds (a failed block's
        // sequence numbers are free again unless the block made it whole).
        active.retain(|(_, id)| ledger.tx_record(id, TestChain::block_time_ms(1)).ok().flatten().is_some_and(|r| r.status.name() == "active"));
        // The failed block, committed again before anything else.
        if let Some(txs) = retry.take() {
            let block = commit(&chain, &mut ledger, txs).unwrap_or_else(|e| panic!("{ctx}: committing the failed block again: {e}"));
            track(&block, &mut active, &mut acked);
        }

        // Arm a fault.
        let kind = rng.below(20);
        // 0..8 torn write, 8..15 log write, 15..20 blob write (with big blocks).
        let what = if kind < 8 {
            let tear = Tear { keep: rng.below(48) as usize, seed: rng.next(), only: None };
            ledger.tear_next_commit(tear);
            format!("torn write keeping {} keys", tear.keep)
        } else if kind < 15 {
            let name = LOG_FAILPOINTS[rng.below(LOG_FAILPOINTS.len() as u64) as usize];
            let k = rng.below(12);
            sled_fail::set(name, 1 << k);
            format!("sled failpoint {name:?} at its hit {}", k + 1)
        } else {
            let name = BLOB_FAILPOINTS[rng.below(BLOB_FAILPOINTS.len() as u64) as usize];
            let k = rng.below(3);
            sled_fail::set(name, 1 << k);
            format!("sled failpoint {name:?} at its hit {}", k + 1)
        };
        let big = kind >= 15;
        let mut failed = None;
        for _ in 0..BLOCKS_PER_ROUND {
            let txs = next_txs(&chain, &mut rng, &mut next_seq, &mut active, big);
            match commit(&chain, &mut ledger, txs.clone()) {
                Ok(block) => track(&block, &mut active, &mut acked),
                Err(e) => {
                    // Not acknowledged; committed again at the next open
                    // unless it made it whole after all.
                    failed = Some(e);
                    retry = Some(txs);
                    break;
                }
            }
        }
        match &failed {
            Some(e) => {
                assert!(matches!(e, BlockError::Store(_)), "{ctx}: {what} surfaced as a non-storage error: {e}");
                fired += 1;
                if kind < 8 {
                    torn_fired += 1;
                }
                // The handle refuses further writes after a failure.
                let txs = next_txs(&chain, &mut rng, &mut next_seq, &mut active, false);
                assert!(commit(&chain, &mut ledger, txs).is_err(), "{ctx}: a write succeeded after {what} failed");
            }
            None => println!("{ctx}: {what} did not fire within {BLOCKS_PER_ROUND} blocks"),
        }
        drop(ledger);
        sled_fail::reset();
        if failed.is_some() {
            // Consistent as the node sees it once reopened (a repair may be due).
            let ledger = open(dir.path(), &chain)
                .unwrap_or_else(|e| panic!("{ctx}: reopen after {what} failed: {e}"));
            if let Some(r) = ledger.repair_report() {
                repairs += 1;
                println!("{ctx}: after {what}: {r}");
            }
            assert!(ledger.height().0 >= last_acked, "{ctx}: after {what} the store holds {}", ledger.height());
            drop(ledger);
            // The auditor re-derives everything from the blocks.
            verify_store(dir.path(), &chain.genesis)
                .unwrap_or_else(|e| panic!("{ctx}: inconsistent after {what}: {e}"));
        }
    }
    let height = acked.last().map_or(0, |(h, _)| *h);
    let txs: usize = acked.iter().map(|(_, ids)| ids.len()).sum();
    let stores = rounds.div_ceil(ROUNDS_PER_STORE);
    println!(
        "storage faults: {fired} injected faults fired ({torn_fired} torn writes, {} sled I/O failpoints) and \
         survived; {repairs} repairs at open; 0 acknowledged attestations lost; store reopened every time \
         ({stores} stores; the last at height {height} with {txs} attestations acknowledged)",
        fired - torn_fired
    );
    assert!(fired >= rounds / 2, "only {fired} of {rounds} faults fired: the test is not exercising the failure paths");
}

/// Torn writes of the blocks that change governance: a proposal, its approvals
/// (the one that approves it), the block that settles it the height before it
/// takes effect (writes the new membership), and the first block certified by
/// the new validator set. Each block is torn at several points (`Tear::keep`
/// from nothing to everything but one key, a fixed seed per case); each time the
/// store must reopen at the block before, pass the auditor, and then take the
/// rest of the chain with the same governance outcome as an untorn store.
#[test]
fn torn_governance_blocks_reopen_at_the_last_complete_block() {
    use yrd_consensus::crypto::SecretKey;
    use yrd_ledger::genesis::ValidatorInfo;
    use yrd_ledger::governance::Change;
    const SEED: u64 = 0x60f_7ea4;
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let chain = TestChain::new(4, 4);
    let suzhou = SecretKey::from_seed(b"faults/suzhou");
    let extra = [suzhou.clone()];
    let delay = chain.genesis.params.governance.activation_delay_blocks;
    let info = ValidatorInfo {
        name: "suzhou".into(),
        region: yrd_ledger::genesis::Region::parse("JS").expect("region"),
        key: suzhou.public(),
    };
    let p = chain.propose(0, 1, vec![Change::AddValidator(info)], 100);
    let pid = p.id().expect("id");
    // Block contents, in order: proposal at 2, approvals at 3 and 4 (approved at
    // 4, in force at 4 + delay), empty blocks up to two past it.
    let mut plan: Vec<Vec<SignedTransaction>> = vec![
        vec![chain.attestation(0, 1, Uscc::sample(1), AttestationKind::RedList)],
        vec![p],
        vec![chain.approve(1, 1, pid)],
        vec![chain.approve(2, 1, pid), chain.attestation(1, 1, Uscc::sample(2), AttestationKind::TaxCredit)],
    ];
    let effective = 4 + delay;
    while (plan.len() as u64) < effective + 2 {
        plan.push(vec![]);
    }
    let run = |dir: &std::path::Path, upto: usize| -> Ledger {
        let mut ledger = open(dir, &chain).expect("open");
        for txs in &plan[ledger.height().0 as usize..upto] {
            chain.commit_next_with(&mut ledger, txs.clone(), &extra).unwrap_or_else(|e| panic!("seed {SEED:#x}: {e}"));
        }
        ledger
    };
    let whole = tempfile::tempdir().expect("tempdir");
    let reference = run(whole.path(), plan.len());
    let want_membership = reference.gov().membership_at(effective).hash().expect("hash");
    assert!(reference.validators_at(yrd_consensus::types::Height(effective)).expect("set").len() == 5, "suzhou joined");
    drop(reference);

    let (mut cases, mut whole_anyway) = (0, 0);
    for torn in [2u64, 4, effective - 1, effective] {
        for (n, keep) in [0usize, 1, 3, 7, 1000].into_iter().enumerate() {
            let ctx = format!("block {torn} torn keeping {keep} keys (seed {SEED:#x})");
            let dir = tempfile::tempdir().expect("tempdir");
            let mut ledger = run(dir.path(), torn as usize - 1);
            ledger.tear_next_commit(Tear { keep, seed: SEED + n as u64, only: None });
            let txs = plan[torn as usize - 1].clone();
            let result = chain.commit_next_with(&mut ledger, txs, &extra);
            if keep < 1000 {
                assert!(result.is_err(), "{ctx}: the torn write was acknowledged");
            }
            drop(ledger);
            let ledger = open(dir.path(), &chain).unwrap_or_else(|e| panic!("{ctx}: reopen failed: {e}"));
            let h = ledger.height().0;
            // A block torn after its last key that matters is whole (final: a quorum
            // certified it); the auditor below checks that nothing is missing.
            assert!(h == torn - 1 || h == torn, "{ctx}: reopened at {h}");
            if h == torn {
                whole_anyway += 1;
            }
            if let Some(r) = ledger.repair_report() {
                println!("{ctx}: {r}");
            }
            drop(ledger);
            verify_store(dir.path(), &chain.genesis).unwrap_or_else(|e| panic!("{ctx}: inconsistent after reopening: {e}"));
            let ledger = run(dir.path(), plan.len());
            assert_eq!(ledger.gov().membership_at(effective).hash().expect("hash"), want_membership, "{ctx}");
            drop(ledger);
            verify_store(dir.path(), &chain.genesis).unwrap_or_else(|e| panic!("{ctx}: inconsistent at the end: {e}"));
            cases += 1;
        }
    }
    println!(
        "torn governance blocks: {cases} torn writes survived ({whole_anyway} kept every key that matters); the store \
         reopened at the last complete block every time, passed the auditor, and ended with the same membership"
    );
}

/// Every key of a block's write, written alone: each block of a short chain
/// that touches every kind of stored state — the first block of a fresh store
/// (attestations, an authorisation, a governance proposal), then a revocation
/// and an approval, a query record, a withdrawal — is torn so that exactly
/// one of its batch's keys is written, for every key in turn. Each time the
/// store must reopen at the block before (repairing if need be), pass the
/// auditor, and take the block again. This is the case the random test above
/// found on CI: a first block torn keeping a subject record, on a fresh store
/// where no tip header existed to check the records against.
#[test]
fn every_key_of_a_block_written_alone_is_found_at_open() {
    use yrd_ledger::consent::{Purpose, WithdrawReason};
    use yrd_ledger::governance::Change;
    use yrd_ledger::queries::{Nonce, QueryEntry, QueryRecords, SignedRequest};
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let chain = TestChain::new(4, 4);
    let s = Uscc::sample;
    let day = 24 * 3600 * 1000;
    let a1 = chain.attestation(0, 1, s(1), AttestationKind::RedList);
    let auth = chain.authorisation(0, 1, s(1), Purpose::LoanApplication, TestChain::block_time_ms(1) + 30 * day);
    let auth_id = auth.id().expect("id");
    let proposal = chain.propose(0, 1, vec![Change::RemoveIssuer { name: chain.genesis.issuers[3].name.clone() }], 100);
    let pid = proposal.id().expect("id");
    let served = TestChain::block_time_ms(3);
    let path = format!("/v1/subjects/{}/attestations", s(1));
    // Sent to validator 0, which records it below.
    let node = chain.validator_keys[0].public();
    let request = SignedRequest::sign(&chain.lender_keys[0], &chain.chain, &node, "GET", &path, b"", served - 10, Nonce([7; 16]))
        .expect("sign");
    let entry = QueryEntry { request, subject: s(1), authorisation: auth_id, response: yrd_consensus::crypto::sha256(&[b"r"]), served_at_ms: served, height: 2 };
    let plan: Vec<Vec<SignedTransaction>> = vec![
        vec![a1.clone(), chain.attestation(1, 1, s(2), AttestationKind::TaxCredit), auth, proposal],
        vec![
            chain.revocation(0, 2, a1.id().expect("id"), RevocationReason::Repair),
            chain.attestation(2, 1, s(1), AttestationKind::AdministrativePenalty),
            chain.approve(1, 1, pid),
        ],
        vec![chain.sign_with(&chain.validator_keys[0], 1, TxBody::RecordQueries(QueryRecords { entries: vec![entry] }))],
        vec![chain.withdrawal(&chain.lender_keys[0], 2, auth_id, WithdrawReason::PurposeEnded)],
    ];
    let base = tempfile::tempdir().expect("tempdir");
    let mut cases = 0;
    for (i, txs) in plan.iter().enumerate() {
        let height = i as u64 + 1;
        // How many keys the block's write has: a tear past the end writes none.
        let total = {
            let dir = tempfile::tempdir().expect("tempdir");
            yrd_ledger::testkit::copy_dir(base.path(), dir.path()).expect("copy");
            let mut ledger = open(dir.path(), &chain).expect("open");
            ledger.tear_next_commit(Tear::only(usize::MAX));
            let err = chain.commit_next(&mut ledger, txs.clone()).expect_err("a torn write was acknowledged");
            let total: usize = err
                .split(" of ")
                .nth(1)
                .and_then(|t| t.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("block {height}: no key count in {err:?}"));
            total
        };
        assert!(total > 5, "block {height}: only {total} keys in its write");
        for key in 0..total {
            let ctx = format!("block {height}, only key {key} of {total} written");
            let dir = tempfile::tempdir().expect("tempdir");
            yrd_ledger::testkit::copy_dir(base.path(), dir.path()).expect("copy");
            let mut ledger = open(dir.path(), &chain).expect("open");
            ledger.tear_next_commit(Tear::only(key));
            assert!(chain.commit_next(&mut ledger, txs.clone()).is_err(), "{ctx}: the torn write was acknowledged");
            drop(ledger);
            let mut ledger = open(dir.path(), &chain).unwrap_or_else(|e| panic!("{ctx}: reopen failed: {e}"));
            assert_eq!(ledger.height().0, height - 1, "{ctx}: reopened at the wrong height");
            verify_open(&ledger).unwrap_or_else(|e| panic!("{ctx}: the node's open accepted an inconsistent store: {e}"));
            chain.commit_next(&mut ledger, txs.clone()).unwrap_or_else(|e| panic!("{ctx}: committing the block again: {e}"));
            drop(ledger);
            verify_store(dir.path(), &chain.genesis).unwrap_or_else(|e| panic!("{ctx}: inconsistent after the retry: {e}"));
            cases += 1;
        }
        let mut ledger = open(base.path(), &chain).expect("open");
        chain.commit_next(&mut ledger, txs.clone()).unwrap_or_else(|e| panic!("block {height}: {e}"));
    }
    println!("single-key tears: {cases} torn writes, each found at open and repaired; the block committed again every time");
}
