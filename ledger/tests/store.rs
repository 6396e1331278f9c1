//! The sled store: commit, read back, indexes, validation rules, proofs.

use yrd_consensus::types::{Height, Round, ValidatorIndex};
use yrd_ledger::merkle;
use yrd_ledger::store::{BlockError, Ledger, Status};
use yrd_ledger::testkit::TestChain;
use yrd_ledger::tx::{AttestationKind, RevocationReason, SignedTransaction};
use yrd_ledger::uscc::Uscc;
use yrd_ledger::validate::TxError;

fn commit(ledger: &mut Ledger, chain: &TestChain, txs: Vec<SignedTransaction>) -> yrd_ledger::block::Block {
    chain.commit_next(ledger, txs).unwrap()
}

/// A fresh store of a chain with four validators and two issuers.
fn fresh() -> (tempfile::TempDir, TestChain, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let chain = TestChain::new(4, 2);
    let ledger = Ledger::open(dir.path(), chain.genesis.clone()).unwrap();
    (dir, chain, ledger)
}

#[test]
fn commit_and_read_back_by_height_id_subject_issuer() {
    let (dir, chain, mut ledger) = fresh();
    let s1 = Uscc::sample(1);
    let s2 = Uscc::sample(2);
    let a = chain.attestation(0, 1, s1, AttestationKind::RedList);
    let b = chain.attestation(1, 1, s1, AttestationKind::TaxCredit);
    let c = chain.attestation(1, 2, s2, AttestationKind::AdministrativePenalty);
    let block1 = commit(&mut ledger, &chain, vec![a.clone(), b.clone()]);
    let block2 = commit(&mut ledger, &chain, vec![c.clone()]);
    assert_eq!(ledger.height(), Height(2));
    assert_eq!(ledger.block(Height(1)).unwrap().unwrap(), block1);
    assert_eq!(ledger.block(Height(2)).unwrap().unwrap(), block2);
    assert_eq!(block2.header.parent, block1.header.hash().unwrap());
    assert_eq!(ledger.block_bytes(Height(2)).unwrap().unwrap(), block2.encode().unwrap(), "stored bytes are canonical");

    // An id that shares its first bytes with a committed one is not found.
    let mut near = c.id().unwrap();
    near.0 .0[31] ^= 1;
    assert_eq!(ledger.tx_location(&near).unwrap(), None);
    assert!(ledger.tx_record(&near, 0).unwrap().is_none());
    let rec = ledger.tx_record(&c.id().unwrap(), TestChain::block_time_ms(2)).unwrap().unwrap();
    assert_eq!((rec.height, rec.index, rec.log_index), (Height(2), 0, 2));
    assert_eq!(rec.tx, c);
    assert_eq!(rec.status, Status::Active);
    assert_eq!(rec.block_hash, block2.header.hash().unwrap());

    let about_s1: Vec<_> = ledger.by_subject(&s1, 0).unwrap().into_iter().map(|r| r.tx).collect();
    assert_eq!(about_s1, vec![a.clone(), b.clone()]);
    assert!(ledger.by_subject(&Uscc::sample(3), 0).unwrap().is_empty());

    let by_issuer1: Vec<_> =
        ledger.by_issuer(&chain.issuer_keys[1].public(), None, 10, 0).unwrap().into_iter().map(|r| r.tx).collect();
    assert_eq!(by_issuer1, vec![b.clone(), c.clone()]);
    let after1: Vec<_> =
        ledger.by_issuer(&chain.issuer_keys[1].public(), Some(1), 10, 0).unwrap().into_iter().map(|r| r.tx).collect();
    assert_eq!(after1, vec![c.clone()]);
    assert_eq!(ledger.last_sequence(&chain.issuer_keys[1].public()).unwrap(), Some(2));

    // The log: root in the header, proofs verify against it.
    let size = block2.header.log_size;
    assert_eq!(size, 3);
    let leaves: Vec<Vec<u8>> = [a, b, c].iter().map(|t| t.encode().unwrap()).collect();
    assert_eq!(block2.header.log_root, merkle::reference_root(&leaves));
    for (i, leaf) in leaves.iter().enumerate() {
        let proof = ledger.inclusion_proof(i as u64, size).unwrap();
        merkle::verify_inclusion(&merkle::leaf_hash(leaf), i as u64, size, &proof, &block2.header.log_root).unwrap();
    }
    let proof = ledger.consistency_proof(2, 3).unwrap();
    merkle::verify_consistency(2, 3, &block1.header.log_root, &block2.header.log_root, &proof).unwrap();

    // Reopen: same state.
    let root = ledger.subjects_root();
    drop(ledger);
    let ledger = Ledger::open(dir.path(), chain.genesis.clone()).unwrap();
    assert_eq!(ledger.height(), Height(2));
    assert_eq!(ledger.subjects_root(), root);
    assert_eq!(ledger.last_hash(), block2.header.hash().unwrap());
}

#[test]
fn replays_and_reused_sequences_are_rejected() {
    let (dir, chain, mut ledger) = fresh();
    let a = chain.attestation(0, 7, Uscc::sample(1), AttestationKind::RedList);
    commit(&mut ledger, &chain, vec![a.clone()]);
    assert_eq!(ledger.check_tx(&a, &a.id().unwrap()).unwrap(), Err(TxError::Duplicate(a.id().unwrap())));
    let same_seq = chain.attestation(0, 7, Uscc::sample(2), AttestationKind::RedList);
    assert!(matches!(
        ledger.check_tx(&same_seq, &same_seq.id().unwrap()).unwrap(),
        Err(TxError::SequenceUsed { sequence: 7, .. })
    ));
    // Building a block leaves both out, with reasons.
    let built = ledger.build_block(vec![a.clone(), same_seq.clone()], ValidatorIndex(2), Round(0), 1).unwrap();
    assert_eq!(built.block.txs.len(), 0);
    assert_eq!(built.rejected.len(), 2);
    // Two transactions with one sequence number in one block: the second is out.
    let x = chain.attestation(1, 1, Uscc::sample(3), AttestationKind::RedList);
    let y = chain.attestation(1, 1, Uscc::sample(4), AttestationKind::RedList);
    let built = ledger.build_block(vec![x.clone(), y], ValidatorIndex(2), Round(0), 1).unwrap();
    assert_eq!(built.block.txs, vec![x.clone()]);
    // A proposal that replays a committed attestation (about a subject with a
    // record) or repeats one of its own is refused, naming the transaction.
    for (txs, index) in [(vec![x.clone(), a.clone()], 1), (vec![x.clone(), x.clone()], 1)] {
        let mut forged = built.block.clone();
        forged.txs = txs;
        match ledger.validate_block(&forged, &|_| false) {
            Err(BlockError::InvalidTx { index: i, error: TxError::Duplicate(_) }) => assert_eq!(i, index),
            other => panic!("replay not refused: {other:?}"),
        }
    }
    // Also after a reopen, and for a revocation.
    let r = chain.revocation(0, 8, a.id().unwrap(), RevocationReason::Repair);
    commit(&mut ledger, &chain, vec![r.clone()]);
    drop(ledger);
    let ledger = Ledger::open(dir.path(), chain.genesis.clone()).unwrap();
    assert_eq!(ledger.check_tx(&a, &a.id().unwrap()).unwrap(), Err(TxError::Duplicate(a.id().unwrap())));
    assert_eq!(ledger.check_tx(&r, &r.id().unwrap()).unwrap(), Err(TxError::Duplicate(r.id().unwrap())));
}

#[test]
fn revocation_changes_status_and_keeps_history() {
    let dir = tempfile::tempdir().unwrap();
    let chain = TestChain::new(4, 3);
    let mut ledger = Ledger::open(dir.path(), chain.genesis.clone()).unwrap();
    let s = Uscc::sample(9);
    let a = chain.attestation(1, 1, s, AttestationKind::SeriousDishonesty);
    commit(&mut ledger, &chain, vec![a.clone()]);
    let root_before = ledger.subjects_root();
    let aid = a.id().unwrap();

    // Issuer 2 is neither the issuer nor allowed to revoke any record.
    let bad = chain.revocation(2, 1, aid, RevocationReason::Repair);
    assert!(matches!(ledger.check_tx(&bad, &bad.id().unwrap()).unwrap(), Err(TxError::NotAuthorised { .. })));
    let unknown = chain.revocation(1, 2, yrd_ledger::tx::TxId(yrd_consensus::crypto::sha256(&[b"x"])), RevocationReason::Error);
    assert!(matches!(ledger.check_tx(&unknown, &unknown.id().unwrap()).unwrap(), Err(TxError::TargetUnknown(_))));

    let r = chain.revocation(1, 2, aid, RevocationReason::Repair);
    commit(&mut ledger, &chain, vec![r.clone()]);
    let rid = r.id().unwrap();
    assert_ne!(ledger.subjects_root(), root_before, "status change moves the subject root");
    let rec = ledger.tx_record(&aid, 0).unwrap().unwrap();
    assert_eq!(rec.status, Status::Revoked { by: rid, reason: RevocationReason::Repair });
    assert_eq!(ledger.tx_record(&rid, 0).unwrap().unwrap().status, Status::Revocation { target: aid });

    // Revoking twice, or revoking a revocation, is refused.
    let again = chain.revocation(0, 1, aid, RevocationReason::Dispute);
    assert!(matches!(ledger.check_tx(&again, &again.id().unwrap()).unwrap(), Err(TxError::AlreadyRevoked { .. })));
    let meta = chain.revocation(1, 3, rid, RevocationReason::Error);
    assert!(matches!(ledger.check_tx(&meta, &meta.id().unwrap()).unwrap(), Err(TxError::TargetNotAttestation(_))));
    // Issuer 0 may revoke any record (it is a repair office in the test genesis).
    let b = chain.attestation(2, 5, s, AttestationKind::CourtEnforcement);
    commit(&mut ledger, &chain, vec![b.clone()]);
    let by_office = chain.revocation(0, 1, b.id().unwrap(), RevocationReason::Dispute);
    ledger.check_tx(&by_office, &by_office.id().unwrap()).unwrap().unwrap();
    // History: both attestations are still there.
    assert_eq!(ledger.by_subject(&s, 0).unwrap().len(), 2);
}

#[test]
fn block_times_increase_from_the_genesis_time() {
    let (_dir, chain, mut ledger) = fresh();
    let genesis_ms = chain.genesis.genesis_time_ms;
    assert!(genesis_ms > 1_000);
    let a = chain.attestation(0, 1, Uscc::sample(1), AttestationKind::RedList);
    // The builder never stamps block 1 before the genesis: a proposer whose
    // clock is behind gets the earliest valid time.
    let built = ledger.build_block(vec![a.clone()], ValidatorIndex(1), Round(0), 5).unwrap();
    assert_eq!(built.block.header.timestamp_ms, genesis_ms + 1);
    for ts in [0, 5, genesis_ms - 1, genesis_ms] {
        let mut early = built.block.clone();
        early.header.timestamp_ms = ts;
        match ledger.validate_block(&early, &|_| false) {
            Err(e @ BlockError::TimestampNotIncreasing { parent, got }) => {
                assert_eq!((parent, got), (genesis_ms, ts));
                assert!(e.to_string().contains("genesis time"), "{e}");
            }
            other => panic!("block 1 at {ts} ms (genesis {genesis_ms}): {other:?}"),
        }
    }
    let block1 = commit(&mut ledger, &chain, vec![a]);
    // Block 2: after block 1, whatever the proposer's clock says.
    let b = chain.attestation(0, 2, Uscc::sample(2), AttestationKind::RedList);
    let proposer = ledger.validators_at(Height(2)).unwrap().proposer(Height(2), Round(0));
    let built = ledger.build_block(vec![b], proposer, Round(0), 5).unwrap();
    assert_eq!(built.block.header.timestamp_ms, block1.header.timestamp_ms + 1);
    let mut same = built.block.clone();
    same.header.timestamp_ms = block1.header.timestamp_ms;
    assert!(matches!(ledger.validate_block(&same, &|_| false), Err(BlockError::TimestampNotIncreasing { .. })));
    assert!(ledger.validate_block(&built.block, &|_| false).is_ok());
}

#[test]
fn tampered_blocks_and_bad_certificates_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let chain = TestChain::new(4, 1);
    let mut ledger = Ledger::open(dir.path(), chain.genesis.clone()).unwrap();
    let a = chain.attestation(0, 1, Uscc::sample(1), AttestationKind::RedList);
    let built = ledger.build_block(vec![a], ValidatorIndex(1), Round(0), 5).unwrap();
    let good = built.block.clone();

    let mut wrong_root = good.clone();
    wrong_root.header.log_root.0[0] ^= 1;
    assert!(matches!(ledger.validate_block(&wrong_root, &|_| false), Err(BlockError::RootMismatch { field: "log_root", .. })));
    let mut wrong_subjects = good.clone();
    wrong_subjects.header.subjects_root.0[31] ^= 0x80;
    assert!(matches!(
        ledger.validate_block(&wrong_subjects, &|_| false),
        Err(BlockError::RootMismatch { field: "subjects_root", .. })
    ));
    let mut bad_sig = good.clone();
    bad_sig.txs[0].signature.0[5] ^= 1;
    assert!(matches!(
        ledger.validate_block(&bad_sig, &|_| false),
        Err(BlockError::InvalidTx { index: 0, error: TxError::BadSignature })
    ));
    let mut wrong_height = good.clone();
    wrong_height.header.height = Height(2);
    assert!(matches!(ledger.validate_block(&wrong_height, &|_| false), Err(BlockError::WrongHeight { .. })));

    // A certificate over another block, or with too few signers, is refused.
    let mut other = good.header.clone();
    other.timestamp_ms += 1;
    let cert_other = chain.certify(&other);
    assert!(matches!(ledger.commit(&good, &cert_other), Err(BlockError::Certificate(_))));
    let mut short = chain.certify(&good.header);
    short.signatures.pop();
    assert!(matches!(ledger.commit(&good, &short), Err(BlockError::Certificate(_))));
    assert_eq!(ledger.height(), Height(0));
    ledger.commit(&good, &chain.certify(&good.header)).unwrap();
    assert_eq!(ledger.height(), Height(1));
}

#[test]
fn a_store_refuses_another_chains_genesis() {
    let dir = tempfile::tempdir().unwrap();
    let chain = TestChain::new(4, 1);
    drop(Ledger::open(dir.path(), chain.genesis.clone()).unwrap());
    let other = TestChain::new(5, 1);
    let err = Ledger::open(dir.path(), other.genesis.clone()).err().expect("must refuse");
    assert!(err.to_string().contains("belongs to chain"), "{err}");
}

/// The issuer index is stored in chunks of 64 sequence numbers: sequences
/// scattered over chunks, out of order and across blocks are all found, pages
/// of `by_issuer` cross chunk borders, and reuse is caught in any chunk, also
/// after a reopen.
#[test]
fn issuer_index_across_chunks_blocks_and_reopen() {
    let (dir, chain, mut ledger) = fresh();
    // Out of order within a block; 63/64 and 127/128 straddle chunk borders.
    let first: Vec<u64> = vec![64, 3, 63, 1_000_000, 0];
    let second: Vec<u64> = vec![128, 127, 65, u64::MAX];
    let txs_for = |seqs: &[u64]| -> Vec<SignedTransaction> {
        seqs.iter().map(|&s| chain.attestation(0, s, Uscc::sample(s % 1000), AttestationKind::RedList)).collect()
    };
    let (t1, t2) = (txs_for(&first), txs_for(&second));
    commit(&mut ledger, &chain, t1.clone());
    commit(&mut ledger, &chain, t2.clone());
    let other = chain.attestation(1, 64, Uscc::sample(5), AttestationKind::RedList);
    commit(&mut ledger, &chain, vec![other.clone()]);

    let issuer = chain.issuer_keys[0].public();
    let mut all: Vec<(u64, SignedTransaction)> =
        first.iter().chain(&second).copied().zip(t1.iter().chain(&t2).cloned()).collect();
    all.sort_by_key(|(s, _)| *s);
    for reopen in [false, true] {
        if reopen {
            drop(ledger);
            ledger = Ledger::open(dir.path(), chain.genesis.clone()).unwrap();
        }
        assert_eq!(ledger.last_sequence(&issuer).unwrap(), Some(u64::MAX), "reopen {reopen}");
        assert_eq!(ledger.last_sequence(&chain.issuer_keys[1].public()).unwrap(), Some(64));
        for (seq, tx) in &all {
            assert_eq!(ledger.sequence_used(&issuer, *seq).unwrap(), Some(tx.id().unwrap()), "seq {seq}");
            let again = chain.attestation(0, *seq, Uscc::sample(999), AttestationKind::Commitment);
            assert!(
                matches!(ledger.check_tx(&again, &again.id().unwrap()).unwrap(), Err(TxError::SequenceUsed { sequence, .. }) if sequence == *seq),
                "seq {seq} reuse not caught (reopen {reopen})"
            );
        }
        for unused in [1, 2, 62, 66, 126, 129, 999_999, 1_000_001, u64::MAX - 1] {
            assert_eq!(ledger.sequence_used(&issuer, unused).unwrap(), None, "seq {unused}");
        }
        // Every page size walks the same list, in sequence order.
        for limit in 1..=all.len() {
            let mut got = Vec::new();
            let mut after = None;
            loop {
                let page = ledger.by_issuer(&issuer, after, limit, 0).unwrap();
                if page.is_empty() {
                    break;
                }
                assert!(page.len() <= limit);
                after = Some(page.last().unwrap().tx.tx.sequence);
                got.extend(page.into_iter().map(|r| r.tx));
                if after == Some(u64::MAX) {
                    assert!(ledger.by_issuer(&issuer, after, limit, 0).unwrap().is_empty());
                    break;
                }
            }
            let want: Vec<SignedTransaction> = all.iter().map(|(_, t)| t.clone()).collect();
            assert_eq!(got, want, "limit {limit}");
        }
        let from_65: Vec<u64> =
            ledger.by_issuer(&issuer, Some(64), 3, 0).unwrap().iter().map(|r| r.tx.tx.sequence).collect();
        assert_eq!(from_65, vec![65, 127, 128]);
    }
    let report = yrd_ledger::audit::verify_tree(ledger.db().open_tree("ledger").as_ref().unwrap(), &chain.genesis).unwrap();
    assert_eq!(report.transactions, 10);
}

/// A store written in another layout is refused with what to do, not misread.
#[test]
fn a_store_of_another_format_is_refused_with_the_remedy() {
    let dir = tempfile::tempdir().unwrap();
    let chain = TestChain::new(4, 2);
    {
        let mut ledger = Ledger::open(dir.path(), chain.genesis.clone()).unwrap();
        commit(&mut ledger, &chain, vec![chain.attestation(0, 1, Uscc::sample(1), AttestationKind::RedList)]);
    }
    let set_format = |value: Option<u64>| {
        let db = sled::open(dir.path()).unwrap();
        let t = db.open_tree("ledger").unwrap();
        match value {
            Some(v) => t.insert(b"mformat", &v.to_be_bytes()[..]).unwrap(),
            None => t.remove(b"mformat").unwrap(),
        };
        db.flush().unwrap();
    };
    let current = yrd_ledger::store::STORE_FORMAT;
    let newer = format!("format {}", current + 1);
    // Format 5 (before subject records were hashed entry by entry: every
    // header's subjects_root differs) is refused like the others.
    let cases = [(Some(1u64), "format 1"), (None, "format 1"), (Some(2), "format 2"), (Some(5), "format 5"), (Some(current + 1), newer.as_str())];
    for (value, found) in cases {
        set_format(value);
        let err = Ledger::open(dir.path(), chain.genesis.clone()).err().expect("opened a store of another format");
        let text = err.to_string();
        assert!(text.contains(found) && text.contains("empty one"), "{text}");
    }
    set_format(Some(yrd_ledger::store::STORE_FORMAT));
    assert_eq!(Ledger::open(dir.path(), chain.genesis.clone()).unwrap().height(), Height(1));
}

/// `commit` writes the body it executed for the header: a different body handed
/// over under the same header (which no honest path produces) does not get in.
#[test]
fn commit_writes_the_executed_body_of_the_header() {
    let (_dir, chain, mut ledger) = fresh();
    let x = chain.attestation(0, 1, Uscc::sample(1), AttestationKind::RedList);
    let y = chain.attestation(0, 2, Uscc::sample(2), AttestationKind::RedList);
    let h = ledger.height().next();
    let built = ledger.build_block(vec![x.clone()], ledger.validators_at(h).unwrap().proposer(h, Round(0)), Round(0), 5).unwrap();
    let mut other = built.block.clone();
    other.txs = vec![y.clone()];
    // Validation compares the body itself.
    assert!(matches!(ledger.validate_block(&other, &|_| false), Err(BlockError::RootMismatch { .. })));
    let cert = chain.certify(&built.block.header);
    let ids = ledger.commit(&other, &cert).unwrap();
    assert_eq!(ids, vec![x.id().unwrap()]);
    assert_eq!(ledger.block(Height(1)).unwrap().unwrap(), built.block);
    assert!(ledger.tx_record(&y.id().unwrap(), 0).unwrap().is_none());
}

/// The transaction index of a block spans parts of 1,024 entries: positions on
/// either side of a part border are found, before and after a reopen.
#[test]
fn transaction_index_across_parts_and_reopen() {
    let (dir, chain, mut ledger) = fresh();
    commit(&mut ledger, &chain, vec![chain.attestation(1, 1, Uscc::sample(1), AttestationKind::RedList)]);
    let txs: Vec<SignedTransaction> =
        (0..1030).map(|i| chain.attestation(0, i, Uscc::sample(i % 300), AttestationKind::Commitment)).collect();
    commit(&mut ledger, &chain, txs.clone());
    for reopen in [false, true] {
        if reopen {
            drop(ledger);
            ledger = Ledger::open(dir.path(), chain.genesis.clone()).unwrap();
        }
        for i in [0usize, 1, 1022, 1023, 1024, 1025, 1029] {
            let rec = ledger.tx_record(&txs[i].id().unwrap(), 0).unwrap().unwrap_or_else(|| panic!("tx {i} (reopen {reopen})"));
            assert_eq!((rec.height, rec.index, &rec.tx), (Height(2), i as u32, &txs[i]));
            assert_eq!(rec.log_index, 1 + i as u64);
        }
    }
    let report = yrd_ledger::audit::verify_tree(&ledger.db().open_tree("ledger").unwrap(), &chain.genesis).unwrap();
    assert_eq!(report.transactions, 1031);
}

/// One subject's record grows across the entry-chunk (64) and node-chunk (256)
/// boundaries in blocks of uneven size, new subjects join beside it, and an
/// early entry is revoked late: after every block the store holds exactly the
/// keys a record built from scratch has (the audit), and after a reopen too.
/// Incremental writes skip reading chunks that start past the old count: a
/// chunk read skipped wrongly, or one read and patched at the wrong offset,
/// shows up here as a key that differs from the scratch build.
#[test]
fn subject_records_across_chunk_boundaries_match_a_build_from_scratch() {
    let (dir, chain, mut ledger) = fresh();
    let s = Uscc::sample(77);
    let mut seq = [0u64; 2];
    let mut next = |issuer: usize| {
        seq[issuer] += 1;
        seq[issuer]
    };
    let mut first = None;
    let mut total = 0u64;
    // Sizes chosen to land exactly on, just before and just past 64, 128, 256, 512.
    for (b, n) in [1usize, 62, 1, 1, 63, 1, 64, 63, 1, 255, 1, 10].into_iter().enumerate() {
        let mut txs = Vec::new();
        for i in 0..n {
            let issuer = i % 2;
            txs.push(chain.attestation(issuer, next(issuer), s, AttestationKind::AdministrativePenalty));
        }
        // A new subject in every block beside the long record.
        txs.push(chain.attestation(0, next(0), Uscc::sample(1000 + b as u64), AttestationKind::RedList));
        first.get_or_insert_with(|| txs[0].clone());
        total += n as u64;
        commit(&mut ledger, &chain, txs);
        yrd_ledger::audit::verify_open(&ledger).unwrap_or_else(|e| panic!("after block {} ({n} entries, {total} in all): {e}", b + 1));
        assert_eq!(ledger.subject_head(&s).unwrap().unwrap().count, total);
    }
    // Revoke the very first entry (chunk 0, node chunk 0 on every level).
    let first = first.unwrap();
    let r = chain.revocation(0, next(0), first.id().unwrap(), RevocationReason::Error);
    commit(&mut ledger, &chain, vec![r.clone()]);
    yrd_ledger::audit::verify_open(&ledger).unwrap_or_else(|e| panic!("after the revocation: {e}"));
    let all = ledger.by_subject(&s, 0).unwrap();
    assert_eq!(all.len() as u64, total);
    assert!(matches!(all[0].status, Status::Revoked { .. }));
    drop(ledger);
    let ledger = Ledger::open(dir.path(), chain.genesis.clone()).unwrap();
    yrd_ledger::audit::verify_open(&ledger).unwrap_or_else(|e| panic!("after reopening: {e}"));
    assert_eq!(ledger.subject_head(&s).unwrap().unwrap().count, total);
}

/// An attestation of issuer 0 with `n` public fields of 256 bytes each.
fn with_fields(chain: &TestChain, sequence: u64, n: usize) -> SignedTransaction {
    let mut tx = chain.attestation(0, sequence, Uscc::sample(sequence), AttestationKind::RedList);
    let yrd_ledger::tx::TxBody::Attest(mut a) = tx.tx.body.clone() else { unreachable!() };
    a.fields = (0..n).map(|i| (format!("f{i}"), "x".repeat(yrd_ledger::tx::MAX_FIELD_VALUE_BYTES))).collect();
    tx = chain.sign(0, sequence, yrd_ledger::tx::TxBody::Attest(a));
    tx
}

#[test]
fn a_transaction_over_the_size_limit_is_refused_in_a_block_as_at_admission() {
    // Admission refuses a transaction over MAX_TX_BYTES; block validation (a
    // proposal, sync, the audit) must too: a body is decoded under the block's
    // limit only, and a committed transaction over the limit could not be read
    // back (`tx_at` decodes under the transaction limit).
    let (_dir, chain, ledger) = fresh();
    let big = with_fields(&chain, 7, 20);
    let len = big.encode().unwrap().len();
    assert!(len > yrd_ledger::tx::MAX_TX_BYTES, "{len}");
    assert!(matches!(
        yrd_ledger::validate::check_untrusted_bytes(&chain.membership(), &chain.genesis.chain_id().unwrap(), &big.encode().unwrap()),
        Err(TxError::TooLarge { .. })
    ));
    let small = chain.attestation(1, 8, Uscc::sample(8), AttestationKind::RedList);
    let built = ledger.build_block(vec![small.clone(), big.clone()], ValidatorIndex(1), Round(0), 5).unwrap();
    assert_eq!(built.block.txs, vec![small.clone()], "the builder leaves it out");
    assert!(matches!(built.rejected.as_slice(), [(id, TxError::TooLarge { len: l })] if *id == big.id().unwrap() && *l == len));
    // A block carrying it, with its header as it would be: refused at the
    // transaction, for its size, before anything else about it is judged.
    let mut bad = built.block.clone();
    bad.txs.push(big);
    bad.header.tx_count += 1;
    assert!(
        matches!(ledger.validate_block(&bad, &|_| false), Err(BlockError::InvalidTx { index: 1, error: TxError::TooLarge { .. } })),
        "{:?}",
        ledger.validate_block(&bad, &|_| false)
    );
}

#[test]
fn a_block_is_built_within_the_byte_budget_and_the_rest_waits() {
    let (_dir, chain, mut ledger) = fresh();
    let dir2 = tempfile::tempdir().unwrap();
    let mut other = Ledger::open(dir2.path(), chain.genesis.clone()).unwrap();
    let candidates: Vec<SignedTransaction> = (1..=50).map(|s| with_fields(&chain, s, yrd_ledger::tx::MAX_FIELDS)).collect();
    let each = candidates[0].encode().unwrap().len();
    let total: usize = candidates.iter().map(|t| t.encode().unwrap().len()).sum();
    let budget = 32 * 1024;
    assert!(total > 3 * budget, "{total}");
    let mut pending = candidates.clone();
    let mut heights = 0;
    while !pending.is_empty() {
        let h = ledger.height().next();
        let proposer = ledger.validators_at(h).unwrap().proposer(h, Round(0));
        let built = ledger.build_block_within(pending.clone(), proposer, Round(0), 1_000 + h.0, budget).unwrap();
        let bytes = built.block.encode().unwrap().len();
        assert!(bytes <= budget, "block {h}: {bytes} bytes over the {budget}-byte budget");
        assert!(built.rejected.is_empty(), "nothing is rejected for size: {:?}", built.rejected);
        let n = built.block.txs.len();
        assert!(n >= 1 && bytes + each > budget - 1024 - 8 || n == pending.len(), "block {h}: {n} transactions, {bytes} bytes: not full");
        assert_eq!(built.block.txs[..], pending[..n], "the block is a prefix of the candidates");
        // Another node validates and commits the same block.
        other.validate_block(&built.block, &|_| false).unwrap();
        let cert = chain.certify(&built.block.header);
        other.commit(&built.block, &cert).unwrap();
        ledger.commit(&built.block, &cert).unwrap();
        pending.drain(..n);
        heights += 1;
        assert!(heights <= 50, "no progress");
    }
    assert!(heights >= 4, "{heights} blocks for {total} bytes in blocks of at most {budget}");
    // Without a budget of its own, the chain's max_block_bytes bounds a block.
    let params = yrd_ledger::genesis::ChainParams { max_block_bytes: 64 * 1024, ..Default::default() };
    let chain = TestChain::with_params(4, 2, params);
    let dir3 = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir3.path(), chain.genesis.clone()).unwrap();
    let candidates: Vec<SignedTransaction> = (1..=60).map(|s| with_fields(&chain, s, yrd_ledger::tx::MAX_FIELDS)).collect();
    let built = ledger.build_block(candidates, ValidatorIndex(1), Round(0), 5).unwrap();
    let bytes = built.block.encode().unwrap().len();
    assert!(bytes <= 64 * 1024 && built.block.txs.len() < 60, "{bytes} bytes, {} transactions", built.block.txs.len());
    ledger.validate_block(&built.block, &|_| false).unwrap();
}

#[test]
fn a_body_is_matched_against_the_header_that_commits_to_it() {
    // A certificate signs the header only: a body that came with one may have been
    // swapped on the way, which is the sender's fault, not the quorum's.
    let (_dir, chain, mut ledger) = fresh();
    commit(&mut ledger, &chain, vec![chain.attestation(0, 1, Uscc::sample(1), AttestationKind::RedList)]);
    let txs: Vec<SignedTransaction> =
        (2..6).map(|s| chain.attestation((s % 2) as usize, s, Uscc::sample(s), AttestationKind::RedList)).collect();
    let h = ledger.height().next();
    let proposer = ledger.validators_at(h).unwrap().proposer(h, Round(0));
    let good = ledger.build_block(txs.clone(), proposer, Round(0), 1_000_000).unwrap().block;
    assert!(ledger.body_matches_header(&good).unwrap());
    let swapped = {
        let mut b = good.clone();
        b.txs[2] = chain.attestation(0, 99, Uscc::sample(99), AttestationKind::RedList);
        b
    };
    let reordered = {
        let mut b = good.clone();
        b.txs.swap(0, 3);
        b
    };
    let shorter = {
        let mut b = good.clone();
        b.txs.pop();
        b
    };
    let empty = {
        let mut b = good.clone();
        b.txs.clear();
        b
    };
    for (what, b) in [("swapped", &swapped), ("reordered", &reordered), ("shorter", &shorter), ("empty", &empty)] {
        assert_eq!(b.header, good.header);
        assert!(!ledger.body_matches_header(b).unwrap(), "{what}");
        assert!(ledger.validate_block(b, &|_| false).is_err(), "{what}");
    }
    // The genuine body still validates and commits after the others were judged.
    ledger.validate_block(&good, &|_| false).unwrap();
    ledger.commit(&good, &chain.certify(&good.header)).unwrap();
    // A header of a height that is not the next one is not matched.
    assert!(!ledger.body_matches_header(&good).unwrap());
}
