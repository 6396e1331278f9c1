//! `yrd verify` for lenders (issue 14), the real binary with only the genesis:
//! the anchor's age is always printed (and in --json), `--max-age` refuses a
//! stale file (exit 1, the freshness check) and accepts a fresh one, a record
//! whose valid-from time has not come reads NOT YET VALID, and a file with a
//! duplicate key is refused naming the key's path.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use yrd_consensus::crypto::sha256;
use yrd_ledger::proof;
use yrd_ledger::store::Ledger;
use yrd_ledger::testkit::TestChain;
use yrd_ledger::tx::{Attestation, AttestationKind, TxBody};
use yrd_ledger::uscc::Uscc;

fn verify(file: &Path, genesis: &Path, extra: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_yrd"));
    c.args(["--utc", "verify", file.to_str().unwrap(), "--genesis", genesis.to_str().unwrap()]);
    c.args(extra);
    c.output().expect("run yrd verify")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn yrd_verify_prints_the_age_refuses_stale_files_and_shows_not_yet_valid() {
    let dir = tempfile::tempdir().unwrap();
    let chain = TestChain::new(4, 2);
    let mut ledger = Ledger::open(&dir.path().join("store"), chain.genesis.clone()).unwrap();
    let anchor_ms = TestChain::block_time_ms(1);
    let from = anchor_ms + 86_400_000; // valid from one day after the block
    let a = Attestation {
        subject: Uscc::sample(9),
        kind: AttestationKind::CourtEnforcement,
        grade: None,
        severity: None,
        evidence: sha256(&[b"court"]),
        issued_at_ms: anchor_ms - 1000,
        valid_from_ms: from,
        valid_until_ms: None,
        fields: vec![],
    };
    let tx = chain.sign(1, 1, TxBody::Attest(a));
    chain.commit_next(&mut ledger, vec![tx.clone()]).unwrap();
    let genesis = dir.path().join("genesis.json");
    std::fs::write(&genesis, chain.genesis.to_json_pretty()).unwrap();
    let file = dir.path().join("bundle.json");
    let bundle = serde_json::to_string(&proof::bundle(&ledger, &tx.id().unwrap()).unwrap()).unwrap();
    std::fs::write(&file, &bundle).unwrap();
    let hour = (anchor_ms + 3_600_000).to_string();

    // One hour old, no maximum: verified, the age printed, the record not yet valid.
    let o = verify(&file, &genesis, &["--at", &hour]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("age          1h old") && out.contains("as of block 1"), "{out}");
    assert!(out.contains("no maximum age set"), "{out}");
    assert!(out.contains("NOT YET VALID (valid from"), "{out}");

    // Fresh enough for a two-hour maximum.
    let o = verify(&file, &genesis, &["--at", &hour, "--max-age", "2h"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("(maximum age 2h)"), "{}", text(&o));

    // Too old for a ten-minute maximum: exit 1, the freshness check, the age still printed.
    let o = verify(&file, &genesis, &["--at", &hour, "--max-age", "10m"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("NOT VERIFIED: the freshness check failed") && out.contains("1h old"), "{out}");

    // --json: the age in every answer, verified or not.
    let o = verify(&file, &genesis, &["--at", &hour, "--max-age", "2h", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verified"], true);
    assert_eq!(v["freshness"]["age_ms"], 3_600_000);
    assert_eq!(v["freshness"]["anchor_height"], 1);
    assert_eq!(v["freshness"]["max_age_ms"], 7_200_000);
    assert_eq!(v["verdict"]["attestation"]["status"]["state"], "not-yet-valid");
    let o = verify(&file, &genesis, &["--at", &hour, "--max-age", "10m", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((v["verified"].clone(), v["check"].clone()), (Value::from(false), Value::from("freshness")));
    assert_eq!(v["freshness"]["age_ms"], 3_600_000);

    // After the valid-from time: active.
    let o = verify(&file, &genesis, &["--at", &(from + 1).to_string()]);
    assert!(text(&o).contains("status       ACTIVE"), "{}", text(&o));

    // A bad duration is unreadable input (exit 2), not a verdict.
    let o = verify(&file, &genesis, &["--max-age", "10 minutes"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));

    // A duplicate key: refused, naming it.
    let dup = bundle.replacen(r#""revocation":null"#, r#""revocation":null,"revocation":null"#, 1);
    std::fs::write(&file, dup).unwrap();
    let o = verify(&file, &genesis, &["--at", &hour]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("format check failed") && text(&o).contains("revocation: key \"revocation\" appears twice"), "{}", text(&o));
}
