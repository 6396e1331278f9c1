//! `yrd verify` on files from a chain whose membership changed five times
//! (`yrd_ledger::testkit::ChangedChain`): the real binary, the original genesis
//! file only. It verifies a bundle of a record committed before its issuer's key was
//! frozen and says so; it prints the changes in force; `--json` carries the same;
//! a file that leaves out a change fails with exit status 1 and the reason.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use yrd_ledger::proof;
use yrd_ledger::testkit::ChangedChain;

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

#[test]
fn yrd_verify_replays_the_changes_and_says_a_key_was_frozen_after_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let c = ChangedChain::build(&dir.path().join("store")).unwrap();
    let genesis = dir.path().join("genesis.json");
    std::fs::write(&genesis, c.chain.genesis.to_json_pretty()).unwrap();
    let bundle = proof::bundle(&c.ledger, &c.before_freeze).unwrap();
    let file = dir.path().join("bundle.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&bundle).unwrap()).unwrap();

    let o = verify(&file, &genesis, false);
    let out = text(&o);
    eprintln!("--- yrd verify bundle.json ---\n{out}");
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("VERIFIED: proof bundle"), "{out}");
    assert!(out.contains("status       ACTIVE"), "{out}");
    assert!(out.contains("issuer key   frozen at block 8, after this record (committed in block 1)"), "{out}");
    assert!(out.contains("membership   the genesis and 5 change(s)"), "{out}");
    assert!(out.contains("from block 7 (approved in block 3, proposed by shanghai): add validator suzhou"), "{out}");
    assert!(out.contains("remove validator zhejiang"), "{out}");
    // The anchor's signers are the set the changes lead to (anhui signs with its new key).
    assert!(out.contains("signed by  3 validators: shanghai (SH, Shanghai 上海), jiangsu (JS, Jiangsu 江苏), anhui (AH, Anhui 安徽)"), "{out}");

    let o = verify(&file, &genesis, true);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verified"], true);
    assert_eq!(v["verdict"]["attestation"]["issuer"]["retired"], serde_json::json!({"reason": "frozen", "since": 8}));
    assert_eq!(v["verdict"]["governance"].as_array().unwrap().len(), 5);
    assert_eq!(v["verdict"]["governance"][0]["effective"], 7);

    // A file that skips the freeze: exit 1, the governance check named.
    let mut skipped = bundle.clone();
    skipped.governance.remove(5); // block 7: the freeze's approvals
    let bad = dir.path().join("skipped.json");
    std::fs::write(&bad, serde_json::to_vec(&skipped).unwrap()).unwrap();
    let o = verify(&bad, &genesis, false);
    let out = text(&o);
    eprintln!("--- yrd verify skipped.json ---\n{out}");
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("NOT VERIFIED: the governance check failed"), "{out}");
    assert!(out.contains("a change is left out or added"), "{out}");
    let o = verify(&bad, &genesis, true);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((v["verified"].clone(), v["check"].clone()), (Value::Bool(false), Value::from("governance")));
}
