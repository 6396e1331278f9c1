//! `yrd verify` on redacted subject reports (docs/proofs.md "Redacted entries"):
//! the real binary and the genesis file only. An honest report with restricted
//! records redacted passes and says how many are hidden; a commitment swapped,
//! an entry removed, a redacted entry "un-redacted" with forged content and a
//! commitment changed each fail with exit status 1, the check and the reason.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use yrd_consensus::codec;
use yrd_consensus::types::Height;
use yrd_ledger::proof::{self, FullEntry, IncludedTx, Report, ReportEntry};
use yrd_ledger::store::Ledger;
use yrd_ledger::subjects::{EntryView, RecordPage, SubjectEntry};
use yrd_ledger::testkit::TestChain;
use yrd_ledger::tx::{AttestationKind, RevocationReason};
use yrd_ledger::uscc::Uscc;

fn verify(file: &Path, genesis: &Path, json: bool) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_yrd"));
    c.args(["verify", file.to_str().unwrap(), "--genesis", genesis.to_str().unwrap(), "--at", "1900000000000"]);
    if json {
        c.arg("--json");
    }
    c.output().expect("run yrd verify")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn view_of(r: &Report) -> RecordPage {
    codec::decode(&hex::decode(r.record.as_ref().unwrap()).unwrap(), 1 << 22, "view").unwrap()
}

fn with_view(r: &Report, edit: impl FnOnce(&mut RecordPage)) -> Report {
    let mut v = view_of(r);
    edit(&mut v);
    let mut t = r.clone();
    t.record = Some(hex::encode(codec::encode(&v).unwrap()));
    t
}

#[test]
fn yrd_verify_accepts_an_honest_redacted_report_and_names_each_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let chain = TestChain::new(4, 2); // default restricted kinds: credit-rating, tax-credit, commitment
    let mut ledger = Ledger::open(&dir.path().join("store"), chain.genesis.clone()).unwrap();
    let s = Uscc::sample(7);
    let public = chain.attestation(0, 1, s, AttestationKind::RedList);
    let tax = chain.attestation(1, 1, s, AttestationKind::TaxCredit);
    let rating = chain.attestation(0, 2, s, AttestationKind::CreditRating);
    let penalty = chain.attestation(1, 2, s, AttestationKind::AdministrativePenalty);
    chain.commit_next(&mut ledger, vec![public.clone(), tax.clone(), rating.clone(), penalty.clone()]).unwrap();
    let promise = chain.attestation(1, 3, s, AttestationKind::Commitment);
    chain.commit_next(&mut ledger, vec![promise.clone()]).unwrap();
    let rev = chain.revocation(1, 4, promise.id().unwrap(), RevocationReason::Error);
    chain.commit_next(&mut ledger, vec![rev.clone()]).unwrap();
    let genesis = dir.path().join("genesis.json");
    std::fs::write(&genesis, chain.genesis.to_json_pretty()).unwrap();

    // What an anonymous reader gets: the public records in full, the others as commitments.
    let params = chain.genesis.params.clone();
    let report = proof::report_for(&ledger, &s, &|e: &SubjectEntry| !params.is_restricted(e.kind)).unwrap();
    let write = |name: &str, r: &Report| {
        let p = dir.path().join(name);
        std::fs::write(&p, serde_json::to_vec_pretty(r).unwrap()).unwrap();
        p
    };
    let honest = write("report.json", &report);
    let o = verify(&honest, &genesis, false);
    let out = text(&o);
    eprintln!("--- yrd verify report.json (redacted) ---\n{out}");
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("VERIFIED: subject report"), "{out}");
    assert!(out.contains("records      5: 2 shown (2 active), 3 redacted"), "{out}");
    assert!(out.contains("[2] REDACTED  commitment") && out.contains("[5] REDACTED  commitment"), "{out}");
    assert!(out.contains("red-list") && out.contains("administrative-penalty"), "{out}");
    for hidden in ["tax-credit", "credit-rating", "kind         commitment", "REVOKED", &tax.id().unwrap().to_hex(), &rev.id().unwrap().to_hex()] {
        assert!(!out.contains(hidden), "the verdict shows {hidden:?}: {out}");
    }
    let o = verify(&honest, &genesis, true);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verified"], true);
    assert_eq!(v["verdict"]["attestations"].as_array().unwrap().len(), 2);
    let positions: Vec<u64> = v["verdict"]["redacted"].as_array().unwrap().iter().map(|r| r["position"].as_u64().unwrap()).collect();
    assert_eq!(positions, [1, 2, 4]);

    // Each tampering: exit 1, the check, and a reason that says what is wrong.
    let forged = chain.attestation(1, 99, s, AttestationKind::TaxCredit);
    let forged_entry = SubjectEntry {
        id: forged.id().unwrap(),
        height: Height(1),
        issuer: forged.tx.issuer,
        kind: AttestationKind::TaxCredit,
        valid_until_ms: None,
        revoked: None,
    };
    let ReportEntry::Full(shown) = &report.entries[0] else { panic!("entry 0 is public") };
    let forged_full = ReportEntry::Full(FullEntry {
        attestation: IncludedTx { tx: hex::encode(forged.encode().unwrap()), ..shown.attestation.clone() },
        revocation: None,
    });
    let mut cases: Vec<(&str, Report, &str, &str)> = Vec::new();
    let mut t = with_view(&report, |v| v.entries.swap(1, 2));
    t.entries.swap(1, 2);
    cases.push(("commitments swapped", t, "subject-map", "is not in the subject map"));
    let mut t = report.clone();
    t.entries.swap(1, 2);
    cases.push(("commitments swapped in the entries only", t, "completeness", "the record has commitment"));
    let mut t = with_view(&report, |v| {
        v.entries.remove(4);
    });
    t.entries.remove(4);
    cases.push(("redacted entry removed", t, "subject-map", "is not in the subject map"));
    let mut t = report.clone();
    t.entries.remove(4);
    cases.push(("redacted entry removed from the entries only", t, "completeness", "the record lists 5 attestations, the report carries 4"));
    let mut t = with_view(&report, |v| v.entries[1] = EntryView::Full(forged_entry.clone()));
    t.entries[1] = forged_full.clone();
    cases.push(("redacted entry un-redacted with forged content", t, "subject-map", "is not in the subject map"));
    let mut t = report.clone();
    t.entries[1] = forged_full;
    cases.push(("forged content under the record's commitment", t, "completeness", "is given in full, but the record has only a commitment here"));
    let mut changed = None;
    let mut t = with_view(&report, |v| {
        if let EntryView::Redacted(c) = &mut v.entries[2] {
            c.0[31] ^= 1;
            changed = Some(*c);
        }
    });
    let changed = changed.expect("entry 2 is redacted");
    t.entries[2] = ReportEntry::Redacted(proof::RedactedEntry { redacted: changed });
    cases.push(("commitment changed", t, "subject-map", "is not in the subject map"));
    let mut t = report.clone();
    t.entries[2] = ReportEntry::Redacted(proof::RedactedEntry { redacted: changed });
    cases.push(("commitment changed in the entries only", t, "completeness", "entries[2] is redacted as"));
    for (i, (what, file, check, reason)) in cases.iter().enumerate() {
        let path = write(&format!("tampered-{i}.json"), file);
        let o = verify(&path, &genesis, false);
        let out = text(&o);
        eprintln!("--- {what} ---\n{out}");
        assert_eq!(o.status.code(), Some(1), "{what}: {out}");
        assert!(out.contains(&format!("NOT VERIFIED: the {check} check failed")), "{what}: {out}");
        assert!(out.contains(reason), "{what}: {out}");
        let o = verify(&path, &genesis, true);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!((v["verified"].clone(), v["check"].clone()), (Value::Bool(false), Value::from(*check)), "{what}");
    }
}
