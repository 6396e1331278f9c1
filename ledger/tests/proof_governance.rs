//! Proof files on a chain whose membership changed (docs/proofs.md, "Governance"):
//! bundles, reports, traces and consistency proofs carry the chain of changes and
//! verify with the original genesis alone; a record signed before its issuer's key
//! was frozen stays valid and says so; leaving out, altering, reordering or
//! re-certifying any part of the chain of changes fails with a clear reason, and so
//! does a file signed by a removed or rotated-out validator key.

use serde_json::Value;
use yrd_consensus::codec;
use yrd_consensus::crypto::SecretKey;
use yrd_consensus::messages::{Vote, VoteKind};
use yrd_consensus::types::{Height, ValidatorIndex};
use yrd_consensus::CommitCertificate;
use yrd_ledger::block::BlockHeader;
use yrd_ledger::governance::RetireReason;
use yrd_ledger::proof::{self, AnyVerdict, Bundle, Check, GovBlock, Retirement, VerifyError};
use yrd_ledger::store::Status;
use yrd_ledger::testkit::ChangedChain;
use yrd_ledger::tx::RevocationReason;
use yrd_ledger::uscc::Uscc;

const NOW: u64 = 1_900_000_000_000;

fn changed() -> (tempfile::TempDir, ChangedChain) {
    let dir = tempfile::tempdir().unwrap();
    let c = ChangedChain::build(dir.path()).unwrap();
    (dir, c)
}

fn header_of(a: &proof::Anchor) -> BlockHeader {
    codec::decode(&hex::decode(&a.header).unwrap(), 1024, "header").unwrap()
}

fn heights(section: &[GovBlock]) -> Vec<u64> {
    section.iter().map(|b| header_of(&b.block).height.0).collect()
}

/// A precommit certificate for `header` signed by `(index, key)` pairs.
fn sign_cert(c: &ChangedChain, keys: &[(u32, &SecretKey)], header: &BlockHeader) -> CommitCertificate {
    let hash = header.hash().unwrap();
    let signatures = keys
        .iter()
        .map(|(i, k)| {
            let vote = Vote {
                chain: c.chain.chain,
                kind: VoteKind::Precommit,
                height: header.height,
                round: header.round,
                value: Some(hash),
                validator: ValidatorIndex(*i),
            };
            (ValidatorIndex(*i), vote.sign(k).unwrap().signature)
        })
        .collect();
    CommitCertificate { height: header.height, round: header.round, block_hash: hash, signatures }
}

fn verify_bundle(c: &ChangedChain, b: &Bundle) -> Result<proof::Verdict, VerifyError> {
    proof::verify_bundle(&c.chain.genesis, b, NOW)
}

/// Fails, with one of `checks`; prints the reason (the test log shows what a
/// lender would read).
fn fails(what: &str, r: Result<impl std::fmt::Debug, VerifyError>, checks: &[Check]) -> VerifyError {
    match r {
        Ok(v) => panic!("{what}: verified, but must fail: {v:?}"),
        Err(e) => {
            eprintln!("{what}: {e}");
            assert!(checks.contains(&e.check), "{what}: failed as {:?} ({e}), expected one of {checks:?}", e.check);
            e
        }
    }
}

#[test]
fn a_bundle_report_trace_and_consistency_after_five_changes_verify_with_the_genesis_alone() {
    let (_d, c) = changed();
    let g = &c.chain.genesis;
    // The bundle of a record signed after every change (by a rotated-in issuer key).
    let b = proof::bundle(&c.ledger, &c.after_changes).unwrap();
    assert_eq!(heights(&b.governance), [2, 3, 4, 5, 6, 7, 10, 11], "the blocks holding the five proposals and their approvals");
    let txs: usize = b.governance.iter().map(|gb| gb.txs.len()).sum();
    assert_eq!(txs, 15, "five proposals and ten approvals");
    let v = verify_bundle(&c, &b).unwrap();
    assert_eq!(v.attestation.id, c.after_changes);
    assert_eq!(v.attestation.status, Status::Active);
    assert_eq!(v.attestation.height, 16);
    assert_eq!(v.attestation.issuer.name, "jiangsu-credit");
    assert_eq!(v.attestation.issuer.key, c.new_issuer_key.public());
    assert!(v.attestation.issuer.retired.is_none());
    // The anchor is signed by the set the replay reached: anhui's new key, no zhejiang.
    assert_eq!(v.anchor.height, 17);
    let signers: Vec<(&str, _)> = v.anchor.signers.iter().map(|s| (s.name.as_str(), s.key)).collect();
    assert_eq!(signers, [("shanghai", c.chain.validator_keys[0].public()), ("jiangsu", c.chain.validator_keys[1].public()), ("anhui", c.new_validator_keys[1].public())]);
    // The verdict lists the changes in force, in the order they took effect.
    let applied: Vec<(u64, u64, &str)> = v.governance.iter().map(|p| (p.approved_at, p.effective, p.changes[0].as_str())).collect();
    assert_eq!(applied.len(), 5);
    assert_eq!(v.governance.iter().map(|p| p.proposal).collect::<Vec<_>>(), [0, 2, 1, 3, 4].map(|i| c.proposals[i]));
    assert_eq!(applied.iter().map(|a| (a.0, a.1)).collect::<Vec<_>>(), [(3, 7), (7, 8), (5, 9), (11, 15), (11, 15)]);
    assert!(applied[0].2.starts_with("add validator suzhou"), "{}", applied[0].2);
    assert!(applied[1].2.starts_with("freeze issuer jiangsu-credit"), "{}", applied[1].2);
    assert!(applied[3].2.starts_with("remove validator zhejiang"), "{}", applied[3].2);
    // Another honest quorum of the new set (suzhou included) verifies just as well.
    let header = header_of(&b.anchor);
    let vk = &c.chain.validator_keys;
    let cert = sign_cert(&c, &[(1, &vk[1]), (2, &c.new_validator_keys[1]), (3, &c.new_validator_keys[0])], &header);
    let mut other = b.clone();
    other.anchor.certificate = hex::encode(codec::encode(&cert).unwrap());
    let names: Vec<String> = verify_bundle(&c, &other).unwrap().anchor.signers.into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["jiangsu", "anhui", "suzhou"]);

    // The same through JSON and the generic entry points.
    let json = serde_json::to_vec(&b).unwrap();
    let AnyVerdict::Bundle(again) = proof::verify_file(g, &proof::parse_file(&json).unwrap(), NOW).unwrap() else { panic!() };
    assert_eq!(again, v);

    // The subject report: three records, all verified against the membership of their height.
    let r = proof::report(&c.ledger, &Uscc::sample(1)).unwrap();
    assert_eq!(r.governance, b.governance);
    let rv = proof::verify_report(g, &r, NOW).unwrap();
    let got: Vec<_> = rv.attestations.iter().map(|a| (a.id, a.height, a.status.name())).collect();
    assert_eq!(got, [(c.before_freeze, 1, "active"), (c.revoked, 1, "revoked"), (c.after_changes, 16, "active")]);
    let rev = rv.attestations[1].revocation.as_ref().unwrap();
    assert_eq!((rev.id, rev.reason, rev.by.name.as_str(), rev.by.key), (c.revocation, RevocationReason::Repair, "jiangsu-credit", c.new_issuer_key.public()));
    assert_eq!(rv.governance, v.governance);

    // The audit trace of the revoked record: its origin certified by the genesis
    // validators, its revocation by the changed set.
    let t = proof::trace(&c.ledger, &c.revoked).unwrap();
    let tv = proof::verify_trace(g, &t, NOW).unwrap();
    assert_eq!(tv.origin.height, 1);
    assert_eq!(tv.origin.signers.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["shanghai", "jiangsu", "zhejiang"]);
    // zhejiang was removed later: the trace says so next to its signature.
    assert_eq!(tv.origin.signers[2].retired, Some(Retirement { reason: RetireReason::Removed, since: 15 }));
    assert_eq!(tv.revocations.iter().map(|r| r.height).collect::<Vec<_>>(), [16]);
    assert_eq!(tv.current.attestation.status, Status::Revoked { by: c.revocation, reason: RevocationReason::Repair });

    // Consistency proofs across the changes, each with the section up to its `to`.
    for (from, to, blocks) in [(1u64, 17u64, 8usize), (3, 9, 6), (9, 16, 8), (1, 2, 0), (11, 11, 6)] {
        let cp = proof::consistency(&c.ledger, Height(from), Height(to)).unwrap();
        assert_eq!(cp.governance.len(), blocks, "{from}..{to}");
        let cv = proof::verify_consistency(g, &cp).unwrap();
        assert_eq!((cv.from.height, cv.to.height), (from, to));
        let in_force = cv.governance.iter().filter(|p| p.effective <= to).count();
        assert_eq!(cv.governance.len(), in_force);
    }
    // A consistency proof up to block 9 lists the three changes in force by then.
    let cv = proof::verify_consistency(g, &proof::consistency(&c.ledger, Height(3), Height(9)).unwrap()).unwrap();
    assert_eq!(cv.governance.iter().map(|p| p.effective).collect::<Vec<_>>(), [7, 8, 9]);

    // Sizes, for the record (docs/proofs.md; the report of this work).
    let size = |b: &Bundle| serde_json::to_vec(b).unwrap().len();
    let plain = {
        let dir = tempfile::tempdir().unwrap();
        let chain = yrd_ledger::testkit::TestChain::new(4, 3);
        let mut ledger = yrd_ledger::store::Ledger::open(dir.path(), chain.genesis.clone()).unwrap();
        let a = chain.attestation(2, 1, Uscc::sample(2), yrd_ledger::tx::AttestationKind::Commitment);
        for i in 0..17 {
            chain.commit_next(&mut ledger, if i == 16 { vec![a.clone()] } else { vec![] }).unwrap();
        }
        proof::bundle(&ledger, &a.id().unwrap()).unwrap()
    };
    assert!(plain.governance.is_empty());
    let three = proof::consistency(&c.ledger, Height(3), Height(9)).unwrap().governance;
    assert_eq!(three.iter().map(|gb| gb.txs.len()).sum::<usize>(), 9);
    let section_len = |s: &[GovBlock]| serde_json::to_vec(s).unwrap().len();
    eprintln!(
        "bundle sizes (compact JSON): no change {} bytes; after five changes {} bytes, of which the governance section \
         (8 blocks, 15 transactions) {} bytes; the section of the first three changes (6 blocks, 9 transactions) {} bytes",
        size(&plain),
        size(&b),
        section_len(&b.governance),
        section_len(&three)
    );
    // Verification time, for the record (test profile: our crates at opt-level 1,
    // dependencies — the curve arithmetic — at 2); never asserted.
    let time = |b: &Bundle, genesis: &yrd_ledger::genesis::Genesis| {
        let started = std::time::Instant::now();
        for _ in 0..20 {
            proof::verify_bundle(genesis, b, NOW).unwrap();
        }
        started.elapsed() / 20
    };
    let plain_genesis = yrd_ledger::testkit::TestChain::new(4, 3).genesis;
    eprintln!("verify_bundle: no change {:?}; after five changes {:?}", time(&plain, &plain_genesis), time(&b, g));
}

#[test]
fn a_record_signed_before_its_issuer_key_was_frozen_stays_valid_and_says_the_key_was_frozen_later() {
    let (_d, c) = changed();
    let b = proof::bundle(&c.ledger, &c.before_freeze).unwrap();
    let v = verify_bundle(&c, &b).unwrap();
    assert_eq!(v.attestation.status, Status::Active);
    assert_eq!(v.attestation.height, 1);
    assert_eq!(v.attestation.issuer.name, "jiangsu-credit");
    assert_eq!(v.attestation.issuer.key, c.chain.issuer_keys[1].public());
    // Frozen at 8 (rotated at 15 too: the first retirement is what counts).
    assert_eq!(v.attestation.issuer.retired, Some(Retirement { reason: RetireReason::Frozen, since: 8 }));
    // The JSON verdict carries it for programs.
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["attestation"]["issuer"]["retired"], serde_json::json!({"reason": "frozen", "since": 8}));
    // The revoked record: revoked by the issuer's *new* key (same issuer, by name).
    let v = verify_bundle(&c, &proof::bundle(&c.ledger, &c.revoked).unwrap()).unwrap();
    assert_eq!(v.attestation.status, Status::Revoked { by: c.revocation, reason: RevocationReason::Repair });
    let by = v.attestation.revocation.unwrap().by;
    assert_eq!((by.name.as_str(), by.key, by.retired), ("jiangsu-credit", c.new_issuer_key.public(), None));
    // An issuer never touched by governance: nothing retired.
    let v = verify_bundle(&c, &proof::bundle(&c.ledger, &c.other).unwrap()).unwrap();
    assert_eq!(v.attestation.issuer.retired, None);
}

#[test]
fn leaving_out_altering_or_reordering_any_part_of_the_chain_of_changes_fails() {
    let (_d, c) = changed();
    let good = proof::bundle(&c.ledger, &c.after_changes).unwrap();
    verify_bundle(&c, &good).unwrap();
    let with = |edit: &dyn Fn(&mut Vec<GovBlock>)| {
        let mut b = good.clone();
        edit(&mut b.governance);
        verify_bundle(&c, &b)
    };
    let replay = [Check::Governance, Check::Certificate];

    // Dropping any block of the chain of changes.
    for i in 0..good.governance.len() {
        let e = fails(&format!("block {} dropped", heights(&good.governance)[i]), with(&|s| {
            s.remove(i);
        }), &replay);
        assert!(e.message.contains("block"), "{e}");
    }
    // Dropping the approving approval of the validator that joined: the replay
    // never adds suzhou, and block 7's header commits to a membership with it.
    let e = fails("suzhou's approving approval dropped", with(&|s| {
        s[1].txs.pop();
    }), &[Check::Governance]);
    assert!(e.message.contains("block 7 commits to membership"), "{e}");
    // Dropping any single approval or proposal.
    for (i, gb) in good.governance.iter().enumerate() {
        for j in 0..gb.txs.len() {
            fails(&format!("governance[{i}].txs[{j}] dropped"), with(&|s| {
                s[i].txs.remove(j);
                if s[i].txs.is_empty() {
                    s.remove(i);
                }
            }), &replay);
        }
    }
    // The whole section left out: the anchor's certificate is checked against the genesis validators.
    fails("section emptied", with(&|s| s.clear()), &replay);
    // Reordered, duplicated, or a block's transactions reordered.
    fails("blocks swapped", with(&|s| s.swap(2, 3)), &[Check::Governance]);
    fails("block duplicated", with(&|s| {
        let b = s[0].clone();
        s.insert(1, b);
    }), &[Check::Governance]);
    fails("transactions swapped", with(&|s| s[7].txs.swap(0, 1)), &[Check::Governance]);
    // A wrong position (its inclusion proof is for the true one).
    for delta in [1i64, -1] {
        let e = fails(&format!("position {delta:+}"), with(&|s| {
            let t = &mut s[6].txs[1];
            t.position = (t.position as i64 + delta) as u32;
        }), &[Check::Governance]);
        assert!(e.message.contains("position"), "{e}");
    }
    // A position beyond the block's transactions.
    fails("position past the block", with(&|s| s[0].txs[0].position = 5), &[Check::Governance]);
    // A transaction moved to another block (with its own valid proof elsewhere).
    fails("approval moved to another block", with(&|s| {
        let t = s[1].txs.remove(1);
        s[3].txs.push(t);
    }), &[Check::Governance]);
    // An altered transaction: any byte (decoding, the agency's signature or the inclusion fail).
    let tx = good.governance[0].txs[0].tx.clone();
    let bytes = hex::decode(&tx).unwrap();
    for i in (0..bytes.len()).step_by(5) {
        let mut t = bytes.clone();
        t[i] ^= 0x01;
        fails(&format!("proposal byte {i}"), with(&|s| s[0].txs[0].tx = hex::encode(&t)), &[Check::Decode, Check::Governance]);
    }
    // A credit record passed off as a governance transaction (with its valid proof).
    let att_block = {
        let b16 = proof::trace(&c.ledger, &c.after_changes).unwrap().origin;
        let header = header_of(&b16.block);
        let position = (b16.included.log_index - header.first_log_index()) as u32;
        GovBlock { block: b16.block, txs: vec![proof::GovTx { tx: b16.included.tx, position, inclusion: b16.included.inclusion }] }
    };
    let e = fails("an attestation in the section", with(&|s| s.push(att_block.clone())), &[Check::Governance]);
    assert!(e.message.contains("not a governance"), "{e}");

    // The same section shape checks in the other files.
    let r = proof::report(&c.ledger, &Uscc::sample(1)).unwrap();
    let mut t = r.clone();
    t.governance.remove(5);
    fails("report: block 7 dropped", proof::verify_report(&c.chain.genesis, &t, NOW), &replay);
    let tr = proof::trace(&c.ledger, &c.revoked).unwrap();
    let mut t = tr.clone();
    t.current.governance.remove(1);
    fails("trace: block 3 dropped", proof::verify_trace(&c.chain.genesis, &t, NOW), &replay);
    let cp = proof::consistency(&c.ledger, Height(2), Height(16)).unwrap();
    let mut t = cp.clone();
    t.governance.remove(7);
    fails("consistency: block 11 dropped", proof::verify_consistency(&c.chain.genesis, &t), &replay);
    // A consistency proof's section cannot stop short of its `to`.
    let mut t = proof::consistency(&c.ledger, Height(2), Height(16)).unwrap();
    t.governance = proof::consistency(&c.ledger, Height(2), Height(9)).unwrap().governance;
    fails("consistency: section of an earlier file", proof::verify_consistency(&c.chain.genesis, &t), &replay);
}

#[test]
fn a_file_signed_by_a_removed_or_rotated_out_validator_key_fails() {
    let (_d, c) = changed();
    let good = proof::bundle(&c.ledger, &c.after_changes).unwrap();
    let vk = &c.chain.validator_keys;
    let (anhui_old, zhejiang) = (&vk[3], &vk[2]);
    let header = header_of(&good.anchor);
    let with_cert = |gb_index: Option<usize>, cert: &CommitCertificate| {
        let mut b = good.clone();
        let hexed = hex::encode(codec::encode(cert).unwrap());
        match gb_index {
            None => b.anchor.certificate = hexed,
            Some(i) => b.governance[i].block.certificate = hexed,
        }
        verify_bundle(&c, &b)
    };
    // The anchor (block 17; validators shanghai, jiangsu, anhui-new, suzhou).
    let cases: Vec<(&str, CommitCertificate)> = vec![
        ("anhui's rotated-out key in anhui's place", sign_cert(&c, &[(0, &vk[0]), (1, &vk[1]), (2, anhui_old)], &header)),
        ("removed zhejiang in its old place", sign_cert(&c, &[(0, &vk[0]), (1, &vk[1]), (2, zhejiang)], &header)),
        ("the genesis quorum as it signed block 1", sign_cert(&c, &[(0, &vk[0]), (1, &vk[1]), (2, zhejiang), (3, anhui_old)], &header)),
        ("too few of the new set", sign_cert(&c, &[(0, &vk[0]), (3, &c.new_validator_keys[0])], &header)),
    ];
    for (what, cert) in &cases {
        let e = fails(what, with_cert(None, cert), &[Check::Certificate]);
        assert!(e.message.contains("validators in force"), "{e}");
    }
    // A governance block after anhui's rotation (block 10; five validators, quorum 4),
    // re-certified with anhui's old key: its certificate fails there.
    let h10 = header_of(&good.governance[6].block);
    assert_eq!(h10.height, Height(10));
    let stale = sign_cert(&c, &[(0, &vk[0]), (1, &vk[1]), (2, &vk[2]), (3, anhui_old)], &h10);
    let e = fails("block 10 with anhui's old key", with_cert(Some(6), &stale), &[Check::Certificate]);
    assert!(e.message.contains("governance[6]"), "{e}");
    let fresh = sign_cert(&c, &[(0, &vk[0]), (1, &vk[1]), (3, &c.new_validator_keys[1]), (4, &c.new_validator_keys[0])], &h10);
    verify_bundle(&c, &{
        let mut b = good.clone();
        b.governance[6].block.certificate = hex::encode(codec::encode(&fresh).unwrap());
        b
    })
    .expect("another quorum of the set in force at 10 verifies");
    // Before the rotation (block 7), anhui's old key is the right one; suzhou (added at 7) counts.
    let h7 = header_of(&good.governance[5].block);
    let before = sign_cert(&c, &[(0, &vk[0]), (2, &vk[2]), (3, anhui_old), (4, &c.new_validator_keys[0])], &h7);
    verify_bundle(&c, &{
        let mut b = good.clone();
        b.governance[5].block.certificate = hex::encode(codec::encode(&before).unwrap());
        b
    })
    .expect("at block 7 anhui's old key and suzhou are in force");
    // Block 6 (before suzhou joined): a certificate naming index 4 is out of range.
    let h6 = header_of(&good.governance[4].block);
    let early = sign_cert(&c, &[(0, &vk[0]), (1, &vk[1]), (4, &c.new_validator_keys[0])], &h6);
    fails("suzhou signing before it joined", with_cert(Some(4), &early), &[Check::Certificate]);
}

#[test]
fn the_governance_section_json_is_exactly_the_documented_shape() {
    let (_d, c) = changed();
    let v: Value = serde_json::to_value(proof::bundle(&c.ledger, &c.after_changes).unwrap()).unwrap();
    let keys = |v: &Value| {
        let mut k = v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        k.sort();
        k
    };
    assert_eq!(keys(&v), ["anchor", "attestation", "governance", "revocation", "subject", "type", "version"]);
    let first = &v["governance"][0];
    assert_eq!(keys(first), ["block", "txs"]);
    assert_eq!(keys(&first["block"]), ["certificate", "header"]);
    assert_eq!(keys(&first["txs"][0]), ["inclusion", "position", "tx"]);
    assert!(first["txs"][0]["position"].is_u64());
    // Unknown or missing fields in the section are format errors.
    let file = |v: &Value| proof::parse_file(v.to_string().as_bytes()).and_then(|f| proof::verify_file(&c.chain.genesis, &f, NOW));
    let mut t = v.clone();
    t["governance"][0]["txs"][0]["log_index"] = Value::from(3);
    assert_eq!(file(&t).unwrap_err().check, Check::Format);
    let mut t = v.clone();
    t["governance"][0].as_object_mut().unwrap().remove("txs");
    assert_eq!(file(&t).unwrap_err().check, Check::Format);
    file(&v).unwrap();
}

/// With `YRD_DUMP_PROOFS=DIR`, writes the genesis and every kind of file of the
/// changed chain to DIR (`gov-*.json`), for independent verifiers.
#[test]
fn dump_governed_files_for_independent_verifiers() {
    let Ok(dir) = std::env::var("YRD_DUMP_PROOFS") else { return };
    let (_d, c) = changed();
    let dir = std::path::Path::new(&dir);
    std::fs::create_dir_all(dir).unwrap();
    let put = |name: &str, v: Value| std::fs::write(dir.join(name), serde_json::to_string_pretty(&v).unwrap()).unwrap();
    std::fs::write(dir.join("gov-genesis.json"), c.chain.genesis.to_json_pretty()).unwrap();
    put("gov-bundle-after-changes.json", serde_json::to_value(proof::bundle(&c.ledger, &c.after_changes).unwrap()).unwrap());
    put("gov-bundle-before-freeze.json", serde_json::to_value(proof::bundle(&c.ledger, &c.before_freeze).unwrap()).unwrap());
    put("gov-bundle-revoked.json", serde_json::to_value(proof::bundle(&c.ledger, &c.revoked).unwrap()).unwrap());
    put("gov-report.json", serde_json::to_value(proof::report(&c.ledger, &Uscc::sample(1)).unwrap()).unwrap());
    put("gov-trace.json", serde_json::to_value(proof::trace(&c.ledger, &c.revoked).unwrap()).unwrap());
    put("gov-consistency.json", serde_json::to_value(proof::consistency(&c.ledger, Height(3), Height(16)).unwrap()).unwrap());
    let mut skipped = proof::bundle(&c.ledger, &c.after_changes).unwrap();
    skipped.governance.remove(1);
    put("gov-bundle-skips-a-change.json", serde_json::to_value(skipped).unwrap());
}

/// Every field of the governance section, byte by byte (every third byte of each
/// hex string, xor 0x01; each number ±1): the file never verifies, and the check
/// named is one the section's fields can fail.
#[test]
fn changing_any_byte_of_the_governance_section_fails() {
    let (_d, c) = changed();
    let file = serde_json::to_value(proof::bundle(&c.ledger, &c.after_changes).unwrap()).unwrap();
    let verify = |v: &Value| proof::parse_file(v.to_string().as_bytes()).and_then(|f| proof::verify_file(&c.chain.genesis, &f, NOW));
    verify(&file).unwrap();
    let allowed = [Check::Format, Check::Decode, Check::Chain, Check::Certificate, Check::Governance];
    let mut tried = 0;
    let blocks = file["governance"].as_array().unwrap().len();
    for i in 0..blocks {
        let mut pointers = vec![format!("/governance/{i}/block/header"), format!("/governance/{i}/block/certificate")];
        for j in 0..file["governance"][i]["txs"].as_array().unwrap().len() {
            pointers.push(format!("/governance/{i}/txs/{j}/tx"));
            pointers.push(format!("/governance/{i}/txs/{j}/position"));
            for k in 0..file["governance"][i]["txs"][j]["inclusion"].as_array().unwrap().len() {
                pointers.push(format!("/governance/{i}/txs/{j}/inclusion/{k}"));
            }
        }
        for pointer in pointers {
            let variants: Vec<Value> = match file.pointer(&pointer).unwrap() {
                Value::String(s) => {
                    let bytes = hex::decode(s).unwrap();
                    (0..bytes.len())
                        .step_by(3)
                        .map(|b| {
                            let mut t = bytes.clone();
                            t[b] ^= 0x01;
                            Value::String(hex::encode(t))
                        })
                        .collect()
                }
                Value::Number(n) => {
                    let n = n.as_u64().unwrap();
                    [n + 1, n.wrapping_sub(1)].into_iter().map(Value::from).collect()
                }
                other => panic!("unexpected {other} at {pointer}"),
            };
            for v in variants {
                let mut t = file.clone();
                *t.pointer_mut(&pointer).unwrap() = v;
                match verify(&t) {
                    Ok(_) => panic!("{pointer}: a changed file verified"),
                    Err(e) => assert!(allowed.contains(&e.check), "{pointer}: {e}"),
                }
                tried += 1;
            }
        }
    }
    eprintln!("{tried} variants of the governance section, all refused");
    assert!(tried > 2000, "only {tried} variants");
}
