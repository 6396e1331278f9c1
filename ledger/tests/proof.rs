//! Proof bundles, subject reports, traces and consistency proofs (ledger/src/proof.rs):
//! built from a real sled ledger, verified offline with only the genesis, and
//! tampered with systematically (every byte of every field).

use serde_json::Value;
use yrd_consensus::codec;
use yrd_consensus::crypto::{sha256, SecretKey};
use yrd_consensus::messages::{Vote, VoteKind};
use yrd_consensus::types::{Height, Round, ValidatorIndex};
use yrd_consensus::CommitCertificate;
use yrd_ledger::block::BlockHeader;
use yrd_ledger::proof::{self, AnyVerdict, Check, ProofFile, VerifyError};
use yrd_ledger::store::{Ledger, Status};
use yrd_ledger::testkit::{json_leaves, TestChain};
use yrd_ledger::tx::{Attestation, AttestationKind, RevocationReason, SignedTransaction, TxBody, TxId};
use yrd_ledger::subjects::{EntryView, RecordPage};
use yrd_ledger::uscc::Uscc;

const NOW: u64 = 1_900_000_000_000;

fn commit(ledger: &mut Ledger, chain: &TestChain, txs: Vec<SignedTransaction>) {
    chain.commit_next(ledger, txs).unwrap();
}

/// A ledger with: subject 1 — a (issuer 0), b (issuer 1, revoked by its issuer),
/// d (issuer 1, expires at NOW − 1); subject 2 — c (issuer 1, revoked by issuer 0,
/// who may revoke any record); subject 3 — e. Five blocks.
struct Fixture {
    _dir: tempfile::TempDir,
    chain: TestChain,
    ledger: Ledger,
    a: TxId,
    b: TxId,
    c: TxId,
    d: TxId,
    e: TxId,
    rev_b: TxId,
    rev_c: TxId,
}

fn expiring(chain: &TestChain, issuer: usize, seq: u64, subject: Uscc, until: u64) -> SignedTransaction {
    let a = Attestation {
        subject,
        kind: AttestationKind::CourtEnforcement,
        grade: None,
        severity: None,
        evidence: sha256(&[b"court", &seq.to_be_bytes()]),
        issued_at_ms: 1_700_000_000_000,
        valid_from_ms: 1_700_000_000_000,
        valid_until_ms: Some(until),
        fields: vec![("case".into(), "(2025) 沪01执123号".into())],
    };
    chain.sign(issuer, seq, TxBody::Attest(a))
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let chain = TestChain::new(4, 2);
    let mut ledger = Ledger::open(dir.path(), chain.genesis.clone()).unwrap();
    let (s1, s2, s3) = (Uscc::sample(1), Uscc::sample(2), Uscc::sample(3));
    let a = chain.attestation(0, 1, s1, AttestationKind::RedList);
    let b = chain.attestation(1, 1, s1, AttestationKind::TaxCredit);
    let c = chain.attestation(1, 2, s2, AttestationKind::AdministrativePenalty);
    commit(&mut ledger, &chain, vec![a.clone(), b.clone(), c.clone()]);
    let d = expiring(&chain, 1, 3, s1, NOW - 1);
    commit(&mut ledger, &chain, vec![d.clone()]);
    let rev_b = chain.revocation(1, 4, b.id().unwrap(), RevocationReason::Repair);
    let rev_c = chain.revocation(0, 2, c.id().unwrap(), RevocationReason::Dispute);
    commit(&mut ledger, &chain, vec![rev_b.clone()]);
    commit(&mut ledger, &chain, vec![rev_c.clone()]);
    let e = chain.attestation(0, 3, s3, AttestationKind::Commitment);
    commit(&mut ledger, &chain, vec![e.clone()]);
    Fixture {
        _dir: dir,
        a: a.id().unwrap(),
        b: b.id().unwrap(),
        c: c.id().unwrap(),
        d: d.id().unwrap(),
        e: e.id().unwrap(),
        rev_b: rev_b.id().unwrap(),
        rev_c: rev_c.id().unwrap(),
        chain,
        ledger,
    }
}

fn check_of(r: Result<AnyVerdict, VerifyError>) -> Check {
    match r {
        Ok(_) => panic!("tampered file verified"),
        Err(e) => e.check,
    }
}

/// Parses and verifies a JSON value as a proof file.
fn verify_json(f: &Fixture, v: &Value) -> Result<AnyVerdict, VerifyError> {
    let file = proof::parse_file(v.to_string().as_bytes())?;
    proof::verify_file(&f.chain.genesis, &file, NOW)
}

#[test]
fn bundle_of_an_active_attestation_verifies_and_reads_well() {
    let f = fixture();
    let b = proof::bundle(&f.ledger, &f.a).unwrap();
    let v = proof::verify_bundle(&f.chain.genesis, &b, NOW).unwrap();
    assert_eq!(v.attestation.id, f.a);
    assert_eq!(v.attestation.status, Status::Active);
    assert_eq!(v.attestation.issuer.name, "shanghai-credit");
    assert_eq!(v.attestation.issuer.region, "SH");
    assert_eq!(v.attestation.subject, Uscc::sample(1));
    assert_eq!(v.attestation.kind, "red-list");
    assert_eq!(v.attestation.height, 1);
    assert_eq!(v.attestation.log_index, 0);
    assert!(v.attestation.revocation.is_none());
    assert_eq!(v.anchor.height, 5);
    assert_eq!(v.anchor.time_ms, 1_800_000_000_005);
    let signers: Vec<&str> = v.anchor.signers.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(signers, ["shanghai", "jiangsu", "zhejiang"]);
    assert_eq!(v.chain_id, f.chain.chain);

    // JSON round trip: "type", "version", hex.
    let json = serde_json::to_value(&b).unwrap();
    assert_eq!(json["type"], "yrd-proof-bundle");
    assert_eq!(json["version"], 4);
    // No membership change: the governance section is empty, the verdict lists none.
    assert_eq!(json["governance"], serde_json::json!([]));
    assert!(v.governance.is_empty());
    assert!(v.attestation.issuer.retired.is_none());
    assert!(json["attestation"]["tx"].as_str().unwrap().chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    let AnyVerdict::Bundle(again) = verify_json(&f, &json).unwrap() else { panic!("not a bundle verdict") };
    assert_eq!(again, v);

    // Grade shows for rated kinds; an expired record shows expired.
    let v = proof::verify_bundle(&f.chain.genesis, &proof::bundle(&f.ledger, &f.d).unwrap(), NOW).unwrap();
    assert_eq!(v.attestation.status, Status::Expired);
    assert_eq!(proof::verify_bundle(&f.chain.genesis, &proof::bundle(&f.ledger, &f.d).unwrap(), NOW - 2).unwrap().attestation.status, Status::Active);
    let e = proof::verify_bundle(&f.chain.genesis, &proof::bundle(&f.ledger, &f.e).unwrap(), NOW).unwrap();
    assert_eq!((e.attestation.height, e.attestation.kind.as_str()), (5, "commitment"));
}

#[test]
fn revoked_attestation_shows_revoked_and_by_which_record() {
    let f = fixture();
    let v = proof::verify_bundle(&f.chain.genesis, &proof::bundle(&f.ledger, &f.b).unwrap(), NOW).unwrap();
    assert_eq!(v.attestation.status, Status::Revoked { by: f.rev_b, reason: RevocationReason::Repair });
    assert_eq!(v.attestation.grade, Some('A'));
    let r = v.attestation.revocation.unwrap();
    assert_eq!((r.id, r.reason, r.by.name.as_str(), r.log_index), (f.rev_b, RevocationReason::Repair, "jiangsu-credit", 4));

    // Revoked by another issuer that may revoke any record.
    let v = proof::verify_bundle(&f.chain.genesis, &proof::bundle(&f.ledger, &f.c).unwrap(), NOW).unwrap();
    assert_eq!(v.attestation.status, Status::Revoked { by: f.rev_c, reason: RevocationReason::Dispute });
    assert_eq!(v.attestation.issuer.name, "jiangsu-credit");
    assert_eq!(v.attestation.revocation.unwrap().by.name, "shanghai-credit");

    // Hiding the revocation fails; so does attaching one to an unrevoked record,
    // or swapping in another revocation.
    let mut hidden = proof::bundle(&f.ledger, &f.b).unwrap();
    hidden.revocation = None;
    assert_eq!(proof::verify_bundle(&f.chain.genesis, &hidden, NOW).unwrap_err().check, Check::Revocation);
    let mut extra = proof::bundle(&f.ledger, &f.a).unwrap();
    extra.revocation = proof::bundle(&f.ledger, &f.b).unwrap().revocation;
    assert_eq!(proof::verify_bundle(&f.chain.genesis, &extra, NOW).unwrap_err().check, Check::Revocation);
    let mut swapped = proof::bundle(&f.ledger, &f.b).unwrap();
    swapped.revocation = proof::bundle(&f.ledger, &f.c).unwrap().revocation;
    assert_eq!(proof::verify_bundle(&f.chain.genesis, &swapped, NOW).unwrap_err().check, Check::Revocation);
    // A bundle for a revocation id is refused at build time.
    assert!(matches!(proof::bundle(&f.ledger, &f.rev_b), Err(proof::BuildError::NotAttestation { .. })));
    assert!(matches!(proof::bundle(&f.ledger, &TxId(sha256(&[b"nope"]))), Err(proof::BuildError::NotFound(_))));
}

/// The checks a change at `path` (JSON path, e.g. `anchor.header`) may fail.
fn allowed(path: &str) -> &'static [Check] {
    use Check::*;
    let p = path;
    if p == "type" || p == "version" || p.ends_with("terminal.type") {
        return &[Format];
    }
    if p.ends_with("header") {
        return &[Decode, Chain, Certificate];
    }
    if p.ends_with("certificate") {
        return &[Decode, Certificate];
    }
    if p.contains("revocation") {
        return &[Decode, Revocation];
    }
    if p.ends_with("attestation.tx") {
        return &[Decode, Transaction, IssuerSignature];
    }
    if p.contains("log_index") || p.contains("inclusion") {
        return &[LogInclusion];
    }
    if p == "entries" || p == "entries.redacted" {
        return &[Completeness];
    }
    if p == "subject" {
        return &[Decode, SubjectMap];
    }
    if p.ends_with("record") {
        return &[Decode, SubjectMap];
    }
    if p.contains("proof") {
        return &[SubjectMap];
    }
    panic!("no rule for {path}")
}

/// `entries[2].attestation.inclusion[0]` → `entries.attestation.inclusion`.
fn without_indexes(path: &str) -> String {
    let mut out = String::new();
    let mut skip = false;
    for c in path.chars() {
        match c {
            '[' => skip = true,
            ']' => skip = false,
            _ if !skip => out.push(c),
            _ => {}
        }
    }
    out
}

/// Changes every byte of every field of `file` (each byte of each hex string
/// xor 0x01 and xor 0x80; numbers ±1; other strings one character; arrays one
/// element removed, one duplicated) and checks that verification fails with a
/// check allowed for that field. Returns the number of variants tried.
fn tamper_everything(f: &Fixture, file: &Value) -> usize {
    verify_json(f, file).expect("the untouched file verifies");
    let paths = json_leaves(file);
    let mut tried = 0;
    let mut expect = |path: &str, v: Value, what: &str| {
        tried += 1;
        let check = check_of(verify_json(f, &v));
        let ok = allowed(&without_indexes(path));
        assert!(ok.contains(&check), "{path} ({what}) failed as {check:?}, expected one of {ok:?}");
    };
    for (path, pointer) in &paths {
        if path.ends_with("[]") {
            let arr = file.pointer(pointer).unwrap().as_array().unwrap().clone();
            let base = path.trim_end_matches("[]").to_string();
            for i in 0..arr.len() {
                let mut v = file.clone();
                v.pointer_mut(pointer).unwrap().as_array_mut().unwrap().remove(i);
                expect(&base, v, &format!("element {i} removed"));
            }
            if let Some(first) = arr.first() {
                let mut v = file.clone();
                v.pointer_mut(pointer).unwrap().as_array_mut().unwrap().push(first.clone());
                expect(&base, v, "element duplicated");
            }
            continue;
        }
        match file.pointer(pointer).unwrap() {
            Value::String(s) => {
                let is_hex = s.len() % 2 == 0 && !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
                if is_hex && path != "subject" {
                    let bytes = hex::decode(s).unwrap();
                    for i in 0..bytes.len() {
                        for mask in [0x01u8, 0x80] {
                            let mut t = bytes.clone();
                            t[i] ^= mask;
                            let mut v = file.clone();
                            *v.pointer_mut(pointer).unwrap() = Value::String(hex::encode(&t));
                            expect(path, v, &format!("byte {i} ^ {mask:#04x}"));
                        }
                    }
                    // One byte more and one fewer. Hashes in proofs are fixed-size
                    // JSON fields (exactly 64 hex characters): a wrong length is a
                    // format error, found when the file is parsed.
                    for (t, what) in [(format!("{s}00"), "byte appended"), (s[..s.len() - 2].to_string(), "byte removed")] {
                        let mut v = file.clone();
                        *v.pointer_mut(pointer).unwrap() = Value::String(t);
                        if s.len() == 64 && !path.ends_with("header") && !path.ends_with("record") {
                            assert_eq!(check_of(verify_json(f, &v)), Check::Format, "{path} ({what})");
                        } else {
                            expect(path, v, what);
                        }
                    }
                } else {
                    for i in 0..s.len() {
                        let mut t = s.clone().into_bytes();
                        t[i] = if t[i] == b'0' { b'1' } else { b'0' };
                        let mut v = file.clone();
                        *v.pointer_mut(pointer).unwrap() = Value::String(String::from_utf8(t).unwrap());
                        expect(path, v, &format!("character {i} changed"));
                    }
                }
            }
            Value::Number(n) => {
                let n = n.as_u64().unwrap();
                for m in [n.wrapping_add(1), n.wrapping_sub(1), n ^ (1 << 40)] {
                    let mut v = file.clone();
                    *v.pointer_mut(pointer).unwrap() = Value::from(m);
                    expect(path, v, &format!("{n} -> {m}"));
                }
            }
            Value::Null => {}
            other => panic!("unexpected leaf {other} at {path}"),
        }
    }
    tried
}

#[test]
fn changing_any_byte_of_any_bundle_field_fails_naming_the_check() {
    let f = fixture();
    // b is revoked, so every field (revocation included) is present.
    let file = serde_json::to_value(proof::bundle(&f.ledger, &f.b).unwrap()).unwrap();
    let tried = tamper_everything(&f, &file);
    assert!(tried > 2000, "only {tried} variants");
    // Dropping or adding a field is a format error.
    let mut v = file.clone();
    v.as_object_mut().unwrap().remove("subject");
    assert_eq!(check_of(verify_json(&f, &v)), Check::Format);
    let mut v = file.clone();
    v.as_object_mut().unwrap().insert("note".into(), Value::from("trust me"));
    assert_eq!(check_of(verify_json(&f, &v)), Check::Format);
}

#[test]
fn changing_decoded_fields_fails_naming_the_check() {
    let f = fixture();
    let good = proof::bundle(&f.ledger, &f.a).unwrap();
    let header: BlockHeader = codec::decode(&hex::decode(&good.anchor.header).unwrap(), 1024, "h").unwrap();
    type Edit = Box<dyn Fn(&mut BlockHeader)>;
    let edits: Vec<(&str, Edit, Check)> = vec![
        ("chain", Box::new(|h| h.chain.0[0] ^= 1), Check::Chain),
        ("height", Box::new(|h| h.height = Height(h.height.0 + 1)), Check::Certificate),
        ("parent", Box::new(|h| h.parent.0[31] ^= 1), Check::Certificate),
        ("proposer", Box::new(|h| h.proposer = ValidatorIndex(h.proposer.0 + 1)), Check::Certificate),
        ("round", Box::new(|h| h.round = Round(h.round.0 + 1)), Check::Certificate),
        ("timestamp", Box::new(|h| h.timestamp_ms += 1), Check::Certificate),
        ("tx_count", Box::new(|h| h.tx_count += 1), Check::Certificate),
        ("log_size", Box::new(|h| h.log_size += 1), Check::Certificate),
        ("log_root", Box::new(|h| h.log_root.0[5] ^= 1), Check::Certificate),
        ("subjects_root", Box::new(|h| h.subjects_root.0[5] ^= 1), Check::Certificate),
    ];
    for (name, edit, check) in edits {
        let mut h = header.clone();
        edit(&mut h);
        let mut b = good.clone();
        b.anchor.header = hex::encode(codec::encode(&h).unwrap());
        assert_eq!(proof::verify_bundle(&f.chain.genesis, &b, NOW).unwrap_err().check, check, "header.{name}");
    }
    // A record without the attestation, re-encoded: its hash is not in the map.
    let mut rec = f.ledger.subject_record(&Uscc::sample(1)).unwrap().unwrap();
    rec.entries.retain(|e| e.id != f.a);
    let mut b = good.clone();
    b.subject.record = hex::encode(codec::encode(&RecordPage::full(&rec)).unwrap());
    assert_eq!(proof::verify_bundle(&f.chain.genesis, &b, NOW).unwrap_err().check, Check::SubjectMap);
    // The record of another subject with its own valid proof: not this subject's.
    let other = proof::bundle(&f.ledger, &f.e).unwrap();
    let mut b = good.clone();
    b.subject = other.subject.clone();
    assert_eq!(proof::verify_bundle(&f.chain.genesis, &b, NOW).unwrap_err().check, Check::SubjectMap);
    // Another attestation of the same subject with its valid inclusion proof, but
    // the record's entry for it edited to pretend it is unrevoked: map fails.
    let mut rec = f.ledger.subject_record(&Uscc::sample(1)).unwrap().unwrap();
    for e in &mut rec.entries {
        e.revoked = None;
    }
    let mut b = proof::bundle(&f.ledger, &f.b).unwrap();
    b.subject.record = hex::encode(codec::encode(&RecordPage::full(&rec)).unwrap());
    b.revocation = None;
    assert_eq!(proof::verify_bundle(&f.chain.genesis, &b, NOW).unwrap_err().check, Check::SubjectMap);
    // The transaction of another attestation in the same log and record: the
    // inclusion proof is for another index.
    let mut b = good.clone();
    b.attestation.tx = proof::bundle(&f.ledger, &f.d).unwrap().attestation.tx;
    assert_eq!(proof::verify_bundle(&f.chain.genesis, &b, NOW).unwrap_err().check, Check::LogInclusion);
    // ...with its own index and proof it is still refused: the bundle's record
    // page holds a's entry alone, so it says nothing of d's status.
    b.attestation = proof::bundle(&f.ledger, &f.d).unwrap().attestation;
    assert_eq!(proof::verify_bundle(&f.chain.genesis, &b, NOW).unwrap_err().check, Check::Status);
    // With d's own page it verifies as d, not a.
    b.subject = proof::bundle(&f.ledger, &f.d).unwrap().subject;
    assert_eq!(proof::verify_bundle(&f.chain.genesis, &b, NOW).unwrap().attestation.id, f.d);
}

fn sign_cert(chain: &TestChain, keys: &[(u32, &SecretKey)], height: Height, round: Round, hash: yrd_consensus::crypto::Hash32) -> CommitCertificate {
    let signatures = keys
        .iter()
        .map(|(i, k)| {
            let vote = Vote { chain: chain.chain, kind: VoteKind::Precommit, height, round, value: Some(hash), validator: ValidatorIndex(*i) };
            (ValidatorIndex(*i), vote.sign(k).unwrap().signature)
        })
        .collect();
    CommitCertificate { height, round, block_hash: hash, signatures }
}

#[test]
fn forged_certificates_fail() {
    let f = fixture();
    let good = proof::bundle(&f.ledger, &f.a).unwrap();
    let header: BlockHeader = codec::decode(&hex::decode(&good.anchor.header).unwrap(), 1024, "h").unwrap();
    let hash = header.hash().unwrap();
    let vk = &f.chain.validator_keys;
    let strangers: Vec<SecretKey> = (0..4).map(|i| SecretKey::from_seed(format!("stranger-{i}").as_bytes())).collect();
    let with_cert = |c: &CommitCertificate| {
        let mut b = good.clone();
        b.anchor.certificate = hex::encode(codec::encode(c).unwrap());
        proof::verify_bundle(&f.chain.genesis, &b, NOW)
    };
    // Sanity: an honest quorum signed the same way verifies.
    let honest = sign_cert(&f.chain, &[(1, &vk[1]), (2, &vk[2]), (3, &vk[3])], header.height, header.round, hash);
    assert!(with_cert(&honest).is_ok());
    let cases: Vec<(&str, CommitCertificate)> = vec![
        ("unknown keys", sign_cert(&f.chain, &[(0, &strangers[0]), (1, &strangers[1]), (2, &strangers[2])], header.height, header.round, hash)),
        ("one unknown key", sign_cert(&f.chain, &[(0, &vk[0]), (1, &vk[1]), (2, &strangers[2])], header.height, header.round, hash)),
        ("too few signers", sign_cert(&f.chain, &[(0, &vk[0]), (1, &vk[1])], header.height, header.round, hash)),
        ("duplicate signer", sign_cert(&f.chain, &[(0, &vk[0]), (0, &vk[0]), (1, &vk[1])], header.height, header.round, hash)),
        ("signer out of range", sign_cert(&f.chain, &[(0, &vk[0]), (1, &vk[1]), (7, &vk[2])], header.height, header.round, hash)),
        ("signatures over another block", {
            let mut c = sign_cert(&f.chain, &[(0, &vk[0]), (1, &vk[1]), (2, &vk[2])], header.height, header.round, sha256(&[b"other"]));
            c.block_hash = hash;
            c
        }),
        ("another block's certificate", f.ledger.certificate(Height(4)).unwrap().unwrap()),
        ("signed for another round", {
            let mut c = sign_cert(&f.chain, &[(0, &vk[0]), (1, &vk[1]), (2, &vk[2])], header.height, Round(1), hash);
            c.round = header.round;
            c
        }),
        ("empty", CommitCertificate { height: header.height, round: header.round, block_hash: hash, signatures: vec![] }),
    ];
    for (name, cert) in cases {
        let err = with_cert(&cert).expect_err(name);
        assert_eq!(err.check, Check::Certificate, "{name}: {err}");
    }
    // A whole forged chain: other validators certify a header that claims our
    // chain id and a log holding a forged attestation.
    let mut forged = header.clone();
    forged.log_root = sha256(&[b"forged"]);
    let cert = sign_cert(&f.chain, &[(0, &strangers[0]), (1, &strangers[1]), (2, &strangers[2])], forged.height, forged.round, forged.hash().unwrap());
    let mut b = good.clone();
    b.anchor.header = hex::encode(codec::encode(&forged).unwrap());
    b.anchor.certificate = hex::encode(codec::encode(&cert).unwrap());
    assert_eq!(proof::verify_bundle(&f.chain.genesis, &b, NOW).unwrap_err().check, Check::Certificate);
    // Verifying against another genesis fails at the chain check.
    assert_eq!(proof::verify_bundle(&TestChain::new(5, 2).genesis, &good, NOW).unwrap_err().check, Check::Chain);
}

#[test]
fn report_lists_every_record_and_is_complete() {
    let f = fixture();
    let r = proof::report(&f.ledger, &Uscc::sample(1)).unwrap();
    let v = proof::verify_report(&f.chain.genesis, &r, NOW).unwrap();
    let got: Vec<(TxId, &str)> = v.attestations.iter().map(|a| (a.id, a.status.name())).collect();
    assert_eq!(got, vec![(f.a, "active"), (f.b, "revoked"), (f.d, "expired")]);
    assert_eq!(v.attestations[1].revocation.as_ref().unwrap().id, f.rev_b);
    assert_eq!(v.subject, Uscc::sample(1));

    // Leaving out any one record fails, naming completeness.
    for i in 0..r.entries.len() {
        let mut t = r.clone();
        t.entries.remove(i);
        let err = proof::verify_report(&f.chain.genesis, &t, NOW).unwrap_err();
        assert_eq!(err.check, Check::Completeness, "entry {i} left out: {err}");
    }
    // Reordering, duplicating, or replacing one with another subject's record fails.
    let mut t = r.clone();
    t.entries.swap(0, 2);
    assert_eq!(proof::verify_report(&f.chain.genesis, &t, NOW).unwrap_err().check, Check::Completeness);
    let mut t = r.clone();
    t.entries.push(t.entries[0].clone());
    assert_eq!(proof::verify_report(&f.chain.genesis, &t, NOW).unwrap_err().check, Check::Completeness);
    let mut t = r.clone();
    t.entries[0] = proof::report(&f.ledger, &Uscc::sample(3)).unwrap().entries[0].clone();
    assert_eq!(proof::verify_report(&f.chain.genesis, &t, NOW).unwrap_err().check, Check::Completeness);
    // Leaving a record out of the record itself: the map proof fails.
    let mut rec = f.ledger.subject_record(&Uscc::sample(1)).unwrap().unwrap();
    rec.entries.remove(1);
    let mut t = r.clone();
    t.record = Some(hex::encode(codec::encode(&RecordPage::full(&rec)).unwrap()));
    t.entries.remove(1);
    assert_eq!(proof::verify_report(&f.chain.genesis, &t, NOW).unwrap_err().check, Check::SubjectMap);
    // Claiming the subject has no record at all: the absence proof fails.
    let mut t = r.clone();
    t.record = None;
    t.entries.clear();
    assert_eq!(proof::verify_report(&f.chain.genesis, &t, NOW).unwrap_err().check, Check::SubjectMap);
    let mut t = r.clone();
    t.record = None;
    t.entries.clear();
    t.proof = proof::report(&f.ledger, &Uscc::sample(99)).unwrap().proof;
    assert_eq!(proof::verify_report(&f.chain.genesis, &t, NOW).unwrap_err().check, Check::SubjectMap);

    // Every byte of every field.
    let file = serde_json::to_value(&r).unwrap();
    assert!(tamper_everything(&f, &file) > 3000);
}

/// The record view of a report, decoded.
fn view_of(r: &proof::Report) -> RecordPage {
    codec::decode(&hex::decode(r.record.as_ref().unwrap()).unwrap(), 1 << 22, "view").unwrap()
}

fn set_view(r: &mut proof::Report, view: &RecordPage) {
    r.record = Some(hex::encode(codec::encode(view).unwrap()));
}

#[test]
fn a_redacted_report_verifies_stays_complete_and_shows_nothing_of_what_it_hides() {
    let f = fixture();
    let s1 = Uscc::sample(1);
    let full = proof::report(&f.ledger, &s1).unwrap();
    let full_text = serde_json::to_string(&full).unwrap();
    let record = f.ledger.subject_record(&s1).unwrap().unwrap();
    let ids = [f.a, f.b, f.d];
    assert_eq!(record.entries.iter().map(|e| e.id).collect::<Vec<_>>(), ids);
    // What would betray each record: its id, its transaction's bytes, its
    // revocation's id and bytes, its entry's canonical bytes.
    let secrets: Vec<Vec<String>> = ids
        .iter()
        .zip(&record.entries)
        .zip(&full.entries)
        .map(|((id, e), given)| {
            let proof::ReportEntry::Full(g) = given else { panic!("the full report redacts") };
            let mut v = vec![id.to_hex(), g.attestation.tx.clone(), hex::encode(codec::encode(e).unwrap())];
            if let Some(r) = &g.revocation {
                v.push(r.tx.clone());
                v.push(e.revoked.unwrap().0.to_hex());
            }
            assert!(v.iter().all(|s| full_text.contains(s.as_str()) || s.len() > 200));
            v
        })
        .collect();
    // Every choice of what to hide verifies, shows exactly the rest, and carries
    // nothing of the hidden ones.
    for mask in 0..8u32 {
        let hidden = |id: &TxId| ids.iter().position(|x| x == id).is_some_and(|i| mask & (1 << i) != 0);
        let r = proof::report_for(&f.ledger, &s1, &|e| !hidden(&e.id)).unwrap();
        let v = proof::verify_report(&f.chain.genesis, &r, NOW).unwrap_or_else(|e| panic!("mask {mask:03b}: {e}"));
        let shown: Vec<TxId> = v.attestations.iter().map(|a| a.id).collect();
        assert_eq!(shown, ids.iter().copied().filter(|id| !hidden(id)).collect::<Vec<_>>(), "mask {mask:03b}");
        let positions: Vec<u64> = v.redacted.iter().map(|x| x.position).collect();
        assert_eq!(positions, (0..3u64).filter(|i| mask & (1 << i) != 0).collect::<Vec<_>>(), "mask {mask:03b}");
        for x in &v.redacted {
            assert_eq!(x.commitment, record.entries[x.position as usize].commitment().unwrap());
        }
        let text = serde_json::to_string(&r).unwrap();
        for (i, secret) in secrets.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0) {
            for s in secret {
                assert!(!text.contains(s.as_str()), "mask {mask:03b}: the file shows {s} of hidden record {i}");
            }
        }
        // b and d are issuer 1's: with both hidden its key appears nowhere.
        let issuer_1 = f.chain.issuer_keys[1].public().to_hex();
        assert_eq!(text.contains(&issuer_1), mask & 0b110 != 0b110, "mask {mask:03b}: issuer key");
    }
    // b (revoked, with its revocation) and d hidden: a report as an anonymous
    // reader gets it. Every byte of every field still matters.
    let r = proof::report_for(&f.ledger, &s1, &|e| e.id == f.a).unwrap();
    let g = &f.chain.genesis;
    let err = |t: &proof::Report| proof::verify_report(g, t, NOW).unwrap_err();
    // Two commitments swapped, in the record and the entries alike: the record
    // no longer hashes to the map's value.
    let mut t = r.clone();
    let mut view = view_of(&t);
    view.entries.swap(1, 2);
    set_view(&mut t, &view);
    t.entries.swap(1, 2);
    assert_eq!(err(&t).check, Check::SubjectMap, "{}", err(&t));
    // ...or in the entries only: they disagree with the record.
    let mut t = r.clone();
    t.entries.swap(1, 2);
    assert_eq!(err(&t).check, Check::Completeness, "{}", err(&t));
    // A redacted entry removed from both, or from the entries only.
    let mut t = r.clone();
    let mut view = view_of(&t);
    view.entries.remove(2);
    set_view(&mut t, &view);
    t.entries.remove(2);
    assert_eq!(err(&t).check, Check::SubjectMap, "{}", err(&t));
    let mut t = r.clone();
    t.entries.remove(2);
    assert_eq!(err(&t).check, Check::Completeness, "{}", err(&t));
    // A commitment changed in both, or in the entries only.
    let mut t = r.clone();
    let mut view = view_of(&t);
    let EntryView::Redacted(c) = &mut view.entries[1] else { panic!("entry 1 is shown") };
    c.0[0] ^= 1;
    let changed = *c;
    set_view(&mut t, &view);
    t.entries[1] = proof::ReportEntry::Redacted(proof::RedactedEntry { redacted: changed });
    assert_eq!(err(&t).check, Check::SubjectMap, "{}", err(&t));
    let mut t = r.clone();
    t.entries[1] = proof::ReportEntry::Redacted(proof::RedactedEntry { redacted: changed });
    assert_eq!(err(&t).check, Check::Completeness, "{}", err(&t));
    // "Un-redacted" with forged content: a validly signed attestation by the
    // same issuer that the chain never committed, claimed as entry 1 (active,
    // not revoked). The record no longer hashes to the map's value.
    let forged = f.chain.attestation(1, 77, s1, AttestationKind::TaxCredit);
    let forged_entry = yrd_ledger::subjects::SubjectEntry {
        id: forged.id().unwrap(),
        height: Height(1),
        issuer: forged.tx.issuer,
        kind: AttestationKind::TaxCredit,
        valid_until_ms: None,
        revoked: None,
    };
    let mut t = r.clone();
    let mut view = view_of(&t);
    view.entries[1] = EntryView::Full(forged_entry);
    set_view(&mut t, &view);
    let proof::ReportEntry::Full(shown) = &full.entries[0] else { panic!() };
    t.entries[1] = proof::ReportEntry::Full(proof::FullEntry {
        attestation: proof::IncludedTx { tx: hex::encode(forged.encode().unwrap()), ..shown.attestation.clone() },
        revocation: None,
    });
    assert_eq!(err(&t).check, Check::SubjectMap, "{}", err(&t));
    // ...and the true entry 1 in full under the record's commitment: the file
    // must show it where the record does.
    let mut t = r.clone();
    t.entries[1] = full.entries[1].clone();
    assert_eq!(err(&t).check, Check::Completeness, "{}", err(&t));
    // The honest one passes; so does its JSON, byte for byte tampered or not.
    proof::verify_report(g, &r, NOW).unwrap();
    let file = serde_json::to_value(&r).unwrap();
    assert_eq!(file["entries"][1], serde_json::json!({ "redacted": record.entries[1].commitment().unwrap() }));
    assert!(tamper_everything(&f, &file) > 1000);
    // A bundle of the public record carries the page of its own entry alone:
    // nothing of the other records, hidden or not.
    let b = proof::bundle_for(&f.ledger, &f.a, &|e| e.id == f.a).unwrap();
    let page: RecordPage = codec::decode(&hex::decode(&b.subject.record).unwrap(), 1 << 22, "page").unwrap();
    assert_eq!((page.count, page.from, page.entries.len()), (3, 0, 1));
    assert_eq!(proof::verify_bundle(g, &b, NOW).unwrap().attestation.id, f.a);
    // A bundle whose own attestation is redacted in the record does not verify.
    let mut t = b.clone();
    t.subject.record = hex::encode(codec::encode(&RecordPage::of(&record, &|_| false).unwrap()).unwrap());
    assert_eq!(proof::verify_bundle(g, &t, NOW).unwrap_err().check, Check::Status);
}

#[test]
fn uscc_with_no_records_gets_a_valid_proof_of_absence() {
    let f = fixture();
    for i in [0u64, 4, 99, 12345] {
        let s = Uscc::sample(i);
        let r = proof::report(&f.ledger, &s).unwrap();
        assert!(r.record.is_none() && r.entries.is_empty());
        let v = proof::verify_report(&f.chain.genesis, &r, NOW).unwrap();
        assert!(v.attestations.is_empty());
        assert_eq!(v.subject, s);
        // The absence proof of one subject does not prove another's absence.
        let mut t = r.clone();
        t.subject = Uscc::sample(1).as_str().to_string();
        assert_eq!(proof::verify_report(&f.chain.genesis, &t, NOW).unwrap_err().check, Check::SubjectMap);
        // Smuggling entries into an absence report fails.
        let mut t = r.clone();
        t.entries = proof::report(&f.ledger, &Uscc::sample(3)).unwrap().entries;
        assert_eq!(proof::verify_report(&f.chain.genesis, &t, NOW).unwrap_err().check, Check::Completeness);
    }
    let file = serde_json::to_value(proof::report(&f.ledger, &Uscc::sample(99)).unwrap()).unwrap();
    tamper_everything(&f, &file);
    // Non-canonical subject spellings are refused (the hash is over the canonical bytes).
    let mut r = proof::report(&f.ledger, &Uscc::sample(99)).unwrap();
    r.subject = r.subject.to_lowercase();
    assert_eq!(proof::verify_report(&f.chain.genesis, &r, NOW).unwrap_err().check, Check::Decode);
}

#[test]
fn trace_and_consistency_verify_and_tampering_fails() {
    let f = fixture();
    let t = proof::trace(&f.ledger, &f.b).unwrap();
    let v = proof::verify_trace(&f.chain.genesis, &t, NOW).unwrap();
    assert_eq!(v.origin.height, 1);
    assert_eq!(v.revocations.iter().map(|r| r.height).collect::<Vec<_>>(), vec![3]);
    assert_eq!(v.current.attestation.status, Status::Revoked { by: f.rev_b, reason: RevocationReason::Repair });
    assert_eq!(v.origin.signers.len(), 3);
    // Hiding the revocation from the trace fails.
    let mut h = t.clone();
    h.revocations.clear();
    assert_eq!(proof::verify_trace(&f.chain.genesis, &h, NOW).unwrap_err().check, Check::Revocation);
    // An origin from another block fails.
    let mut o = t.clone();
    o.origin = proof::trace(&f.ledger, &f.d).unwrap().origin;
    assert!(proof::verify_trace(&f.chain.genesis, &o, NOW).is_err());
    let unrevoked = proof::trace(&f.ledger, &f.a).unwrap();
    assert!(proof::verify_trace(&f.chain.genesis, &unrevoked, NOW).unwrap().revocations.is_empty());
    // The trace as JSON, every byte: must fail (whatever check names it).
    let file = serde_json::to_value(&t).unwrap();
    let paths = json_leaves(&file);
    let mut tried = 0;
    for (path, pointer) in &paths {
        if let Some(Value::String(s)) = file.pointer(pointer) {
            if path == "type" || path.ends_with(".type") || path.ends_with("current.type") {
                continue;
            }
            let bytes = hex::decode(s).unwrap();
            for i in (0..bytes.len()).step_by(3) {
                let mut b = bytes.clone();
                b[i] ^= 0x01;
                let mut v = file.clone();
                *v.pointer_mut(pointer).unwrap() = Value::String(hex::encode(&b));
                assert!(verify_json(&f, &v).is_err(), "{path} byte {i}");
                tried += 1;
            }
        }
    }
    assert!(tried > 500);

    for (from, to) in [(1u64, 5u64), (2, 4), (3, 3), (1, 2)] {
        let c = proof::consistency(&f.ledger, Height(from), Height(to)).unwrap();
        let v = proof::verify_consistency(&f.chain.genesis, &c).unwrap();
        assert_eq!((v.from.height, v.to.height), (from, to));
        let file = serde_json::to_value(&c).unwrap();
        let paths = json_leaves(&file);
        for (path, pointer) in &paths {
            if let Some(Value::String(s)) = file.pointer(pointer) {
                if path == "type" {
                    continue;
                }
                let bytes = hex::decode(s).unwrap();
                for i in 0..bytes.len() {
                    let mut b = bytes.clone();
                    b[i] ^= 0x40;
                    let mut v = file.clone();
                    *v.pointer_mut(pointer).unwrap() = Value::String(hex::encode(&b));
                    let check = check_of(verify_json(&f, &v));
                    let ok: &[Check] = if path.starts_with("proof") {
                        &[Check::Consistency]
                    } else {
                        &[Check::Decode, Check::Chain, Check::Certificate]
                    };
                    assert!(ok.contains(&check), "{path} byte {i}: {check:?}");
                }
            }
        }
    }
    // Swapped headers (to before from), or a proof between other sizes, fail.
    let c = proof::consistency(&f.ledger, Height(2), Height(4)).unwrap();
    let mut s = c.clone();
    std::mem::swap(&mut s.from, &mut s.to);
    assert_eq!(proof::verify_consistency(&f.chain.genesis, &s).unwrap_err().check, Check::Consistency);
    let mut o = c.clone();
    o.proof = proof::consistency(&f.ledger, Height(1), Height(4)).unwrap().proof;
    assert_eq!(proof::verify_consistency(&f.chain.genesis, &o).unwrap_err().check, Check::Consistency);
    assert!(proof::consistency(&f.ledger, Height(4), Height(2)).is_err());
    assert!(proof::consistency(&f.ledger, Height(0), Height(2)).is_err());
    assert!(proof::consistency(&f.ledger, Height(1), Height(6)).is_err());
}

#[test]
fn parse_file_dispatches_and_rejects_unknown_formats() {
    let f = fixture();
    let b = serde_json::to_vec(&proof::bundle(&f.ledger, &f.a).unwrap()).unwrap();
    assert!(matches!(proof::parse_file(&b).unwrap(), ProofFile::Bundle(_)));
    let r = serde_json::to_vec(&proof::report(&f.ledger, &Uscc::sample(1)).unwrap()).unwrap();
    assert!(matches!(proof::parse_file(&r).unwrap(), ProofFile::Report(_)));
    assert_eq!(proof::parse_file(b"not json").unwrap_err().check, Check::Format);
    assert_eq!(proof::parse_file(br#"{"type":"yrd-something","version":1}"#).unwrap_err().check, Check::Format);
    // Version 1 (before the governance section), version 2 (subject records
    // hashed whole), version 3 (no pages: every commitment hashed in a row) and
    // unknown versions are refused.
    for version in [1, 2, 3, 5] {
        let mut v: Value = serde_json::from_slice(&b).unwrap();
        v["version"] = Value::from(version);
        assert_eq!(check_of(verify_json(&f, &v)), Check::Format, "version {version}");
    }
    // The governance section is required (an empty one when nothing changed).
    let mut v: Value = serde_json::from_slice(&b).unwrap();
    v.as_object_mut().unwrap().remove("governance");
    assert_eq!(check_of(verify_json(&f, &v)), Check::Format);
    // An empty ledger has nothing to anchor a proof to.
    let dir = tempfile::tempdir().unwrap();
    let empty = Ledger::open(dir.path(), f.chain.genesis.clone()).unwrap();
    assert!(matches!(proof::report(&empty, &Uscc::sample(1)), Err(proof::BuildError::NoBlocks)));
}

/// With `YRD_DUMP_PROOFS=DIR`, writes a genesis, bundles and reports to DIR for
/// checking independent verifiers against (docs/proofs.md).
#[test]
fn dump_files_for_independent_verifiers() {
    let Ok(dir) = std::env::var("YRD_DUMP_PROOFS") else { return };
    let f = fixture();
    let dir = std::path::Path::new(&dir);
    std::fs::create_dir_all(dir).unwrap();
    let put = |name: &str, v: Value| std::fs::write(dir.join(name), serde_json::to_string_pretty(&v).unwrap()).unwrap();
    std::fs::write(dir.join("genesis.json"), f.chain.genesis.to_json_pretty()).unwrap();
    put("bundle-active.json", serde_json::to_value(proof::bundle(&f.ledger, &f.a).unwrap()).unwrap());
    put("bundle-revoked.json", serde_json::to_value(proof::bundle(&f.ledger, &f.c).unwrap()).unwrap());
    put("bundle-expiring.json", serde_json::to_value(proof::bundle(&f.ledger, &f.d).unwrap()).unwrap());
    put("report.json", serde_json::to_value(proof::report(&f.ledger, &Uscc::sample(1)).unwrap()).unwrap());
    put("report-absent.json", serde_json::to_value(proof::report(&f.ledger, &Uscc::sample(77)).unwrap()).unwrap());
    // Records b (revoked) and d as their commitments only (docs/proofs.md "Redacted entries").
    let redacted = proof::report_for(&f.ledger, &Uscc::sample(1), &|e| e.id == f.a).unwrap();
    put("report-redacted.json", serde_json::to_value(redacted).unwrap());
    // The record as two pages (records 0..1 and 1..3 of 3), each with its range proof.
    for (name, from, limit) in [("report-page-0.json", 0, 1), ("report-page-1.json", 1, 2)] {
        let page = proof::report_page(&f.ledger, &Uscc::sample(1), from, limit, &|_| true).unwrap();
        put(name, serde_json::to_value(page).unwrap());
    }
}
