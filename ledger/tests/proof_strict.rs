//! Strict parsing of proof files and the genesis (docs/proofs.md §3, "Strict
//! JSON"): unknown, missing and duplicate keys and non-canonical hex are each
//! refused, and the error names the JSON path of the offending key as it is in
//! the file. One test per rule; each first shows the untouched file passes.

use serde_json::Value;
use yrd_ledger::genesis::Genesis;
use yrd_ledger::proof::{self, Check, VerifyError};
use yrd_ledger::store::Ledger;
use yrd_ledger::testkit::TestChain;
use yrd_ledger::tx::{AttestationKind, RevocationReason};
use yrd_ledger::uscc::Uscc;

const NOW: u64 = 1_900_000_000_000;

/// A ledger with subject 1: `a` active, `b` revoked. Returns the files: a
/// bundle of `a` (revocation null), a bundle of `b`, a report of subject 1.
struct Files {
    _dir: tempfile::TempDir,
    chain: TestChain,
    bundle_active: String,
    bundle_revoked: String,
    report: String,
}

fn files() -> Files {
    let dir = tempfile::tempdir().unwrap();
    let chain = TestChain::new(4, 2);
    let mut ledger = Ledger::open(dir.path(), chain.genesis.clone()).unwrap();
    let s = Uscc::sample(1);
    let a = chain.attestation(0, 1, s, AttestationKind::RedList);
    let b = chain.attestation(1, 1, s, AttestationKind::AdministrativePenalty);
    chain.commit_next(&mut ledger, vec![a.clone(), b.clone()]).unwrap();
    let rb = chain.revocation(1, 2, b.id().unwrap(), RevocationReason::Repair);
    chain.commit_next(&mut ledger, vec![rb]).unwrap();
    let text = |v: Value| serde_json::to_string(&v).unwrap();
    let bundle_active = text(serde_json::to_value(proof::bundle(&ledger, &a.id().unwrap()).unwrap()).unwrap());
    let bundle_revoked = text(serde_json::to_value(proof::bundle(&ledger, &b.id().unwrap()).unwrap()).unwrap());
    let report = text(serde_json::to_value(proof::report(&ledger, &s).unwrap()).unwrap());
    Files { _dir: dir, chain, bundle_active, bundle_revoked, report }
}

fn verify(f: &Files, text: &str) -> Result<(), VerifyError> {
    let file = proof::parse_file(text.as_bytes())?;
    proof::verify_file(&f.chain.genesis, &file, NOW).map(|_| ())
}

/// The file fails with `check`, and the message names `path`.
fn refused(f: &Files, text: &str, check: Check, path: &str) {
    match verify(f, text) {
        Ok(()) => panic!("accepted a file that should fail at {path}: {text:.300}"),
        Err(e) => {
            assert_eq!(e.check, check, "{path}: {e}");
            assert!(e.message.contains(path), "the message does not name {path}: {e}");
        }
    }
}

/// A file, the path of a key in it, and the change that breaks it there.
type Case<'a> = (&'a String, &'a str, fn(&mut Value));
/// A file, the path of the object, the missing key, and the change.
type Missing<'a> = (&'a String, &'a str, &'a str, fn(&mut Value));
/// The path of a byte string, how to set it, the bad value, and a word of the reason.
type BadHex<'a> = (&'a str, fn(&mut Value, String), String, &'a str);

fn edit(text: &str, f: impl FnOnce(&mut Value)) -> String {
    let mut v: Value = serde_json::from_str(text).unwrap();
    f(&mut v);
    serde_json::to_string(&v).unwrap()
}

#[test]
fn untouched_files_verify() {
    let f = files();
    for t in [&f.bundle_active, &f.bundle_revoked, &f.report] {
        verify(&f, t).unwrap();
    }
}

#[test]
fn unknown_keys_are_refused_naming_their_path() {
    let f = files();
    let cases: [Case; 6] = [
        (&f.bundle_active, "comment", |v| {
            v["comment"] = Value::from("x");
        }),
        (&f.bundle_active, "anchor.signers", |v| {
            v["anchor"]["signers"] = Value::from(4);
        }),
        (&f.bundle_active, "attestation.status", |v| {
            v["attestation"]["status"] = Value::from("active");
        }),
        (&f.bundle_active, "subject.proof.terminal.note", |v| {
            v["subject"]["proof"]["terminal"]["note"] = Value::from(1);
        }),
        (&f.report, "entries[1].revocation.height", |v| {
            v["entries"][1]["revocation"]["height"] = Value::from(2);
        }),
        (&f.report, "entries[0].kind", |v| {
            v["entries"][0]["kind"] = Value::from("red-list");
        }),
    ];
    for (text, path, change) in cases {
        refused(&f, &edit(text, change), Check::Format, path);
    }
}

#[test]
fn missing_keys_are_refused_naming_their_path() {
    let f = files();
    // A `null` field must be written as null: leaving it out is not the same file.
    let cases: [Missing; 6] = [
        (&f.bundle_active, "", "revocation", |v| {
            v.as_object_mut().unwrap().remove("revocation");
        }),
        (&f.bundle_revoked, "revocation", "log_index", |v| {
            v["revocation"].as_object_mut().unwrap().remove("log_index");
        }),
        (&f.report, "entries[0]", "revocation", |v| {
            v["entries"][0].as_object_mut().unwrap().remove("revocation");
        }),
        (&f.report, "", "record", |v| {
            v.as_object_mut().unwrap().remove("record");
        }),
        (&f.report, "anchor", "certificate", |v| {
            v["anchor"].as_object_mut().unwrap().remove("certificate");
        }),
        (&f.bundle_active, "", "governance", |v| {
            v.as_object_mut().unwrap().remove("governance");
        }),
    ];
    for (text, path, key, change) in cases {
        let changed = edit(text, change);
        let e = verify(&f, &changed).expect_err(key);
        assert_eq!(e.check, Check::Format, "{e}");
        assert!(e.message.contains(&format!("missing field `{key}`")), "{e}");
        assert!(path.is_empty() || e.message.contains(&format!("{path}:")), "the message does not name {path}: {e}");
    }
}

#[test]
fn duplicate_keys_are_refused_naming_their_path() {
    let f = files();
    // The same key twice with the same value, and with another value (a JSON
    // map would keep the last, so two readers could see two files).
    let a = &f.bundle_active;
    let dup_null = a.replacen(r#""revocation":null"#, r#""revocation":null,"revocation":null"#, 1);
    assert_ne!(&dup_null, a);
    refused(&f, &dup_null, Check::Format, "revocation");
    let dup_type = a.replacen(r#""type":"yrd-proof-bundle""#, r#""type":"yrd-proof-bundle","type":"yrd-subject-report""#, 1);
    assert_ne!(&dup_type, a);
    refused(&f, &dup_type, Check::Format, "type");
    // Nested: the log index of entry 1 of the report, given twice.
    let v: Value = serde_json::from_str(&f.report).unwrap();
    let idx = v["entries"][1]["attestation"]["log_index"].as_u64().unwrap();
    let needle = format!(r#""log_index":{idx},"#);
    let pos = f.report.find(r#""entries":"#).unwrap();
    // Entry 0's attestation, entry 1's attestation, entry 1's revocation: the
    // first log index equal to entry 1's after "entries" is its attestation's.
    let at = pos + f.report[pos..].match_indices(&needle).next().unwrap().0;
    let dup_nested = format!("{}{needle}{}", &f.report[..at], &f.report[at..]);
    refused(&f, &dup_nested, Check::Format, "entries[1].attestation.log_index");
}

#[test]
fn non_canonical_hex_is_refused() {
    let f = files();
    let b = &f.bundle_revoked;
    let v: Value = serde_json::from_str(b).unwrap();
    let hash = v["attestation"]["inclusion"][0].as_str().unwrap().to_string();
    assert!(hash.bytes().any(|c| c.is_ascii_alphabetic()), "need a hash with a letter to upper-case");
    // Hashes (fixed 32 bytes) are JSON fields: a non-canonical one is a format error.
    let hashes = [
        (hash.to_uppercase(), "upper-case"),
        (format!(" {hash}"), "white space"),
        (format!("{hash} "), "white space"),
        (hash[..62].to_string(), "32"),
        (format!("{hash}00"), "32"),
        (format!("0x{}", &hash[2..]), "not a hex digit"),
    ];
    for (bad, why) in hashes {
        let t = edit(b, |v| v["attestation"]["inclusion"][0] = Value::from(bad.clone()));
        let e = verify(&f, &t).expect_err(&bad);
        assert_eq!(e.check, Check::Format, "{bad:?}: {e}");
        assert!(e.message.contains("attestation.inclusion[0]") && e.message.contains(why), "{bad:?}: {e}");
    }
    // Canonical byte strings (header, certificate, tx, record) are decoded in
    // the steps that use them: a non-canonical one is a decode error.
    let header = v["anchor"]["header"].as_str().unwrap().to_string();
    let tx = v["revocation"]["tx"].as_str().unwrap().to_string();
    let strings: [BadHex; 4] = [
        ("anchor.header", |v, s| v["anchor"]["header"] = Value::from(s), header.to_uppercase(), "upper-case"),
        ("anchor.header", |v, s| v["anchor"]["header"] = Value::from(s), format!("{header} "), "white space"),
        ("revocation.tx", |v, s| v["revocation"]["tx"] = Value::from(s), tx.to_uppercase(), "upper-case"),
        ("revocation.tx", |v, s| v["revocation"]["tx"] = Value::from(s), format!("{tx}0"), "odd"),
    ];
    for (path, set, bad, why) in strings {
        let t = edit(b, |v| set(v, bad.clone()));
        let e = verify(&f, &t).expect_err(path);
        assert_eq!(e.check, Check::Decode, "{path}: {e}");
        assert!(e.message.contains(path) && e.message.contains(why), "{path}: {e}");
    }
    // A redacted commitment is a hash field too.
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(dir.path(), f.chain.genesis.clone()).unwrap();
    let s = Uscc::sample(2);
    let a = f.chain.attestation(0, 1, s, AttestationKind::RedList);
    let c = f.chain.attestation(1, 1, s, AttestationKind::TaxCredit);
    f.chain.commit_next(&mut ledger, vec![a.clone(), c]).unwrap();
    let redacted = serde_json::to_string(&proof::report_for(&ledger, &s, &|e| e.id == a.id().unwrap()).unwrap()).unwrap();
    verify(&f, &redacted).unwrap();
    let t = edit(&redacted, |v| {
        let c = v["entries"][1]["redacted"].as_str().unwrap().to_uppercase();
        v["entries"][1]["redacted"] = Value::from(c);
    });
    refused(&f, &t, Check::Format, "entries[1].redacted");
}

/// Error paths name the key in the file: a bundle's revocation is `revocation`
/// (top level), a report's is `entries[i].revocation`.
#[test]
fn verification_errors_name_the_real_key() {
    let f = files();
    let t = edit(&f.bundle_revoked, |v| v["revocation"] = Value::Null);
    let e = verify(&f, &t).unwrap_err();
    assert_eq!(e.check, Check::Revocation);
    assert!(e.message.contains("revocation is missing") && !e.message.contains("attestation.revocation"), "{e}");
    let t = edit(&f.report, |v| v["entries"][1]["revocation"] = Value::Null);
    let e = verify(&f, &t).unwrap_err();
    assert_eq!(e.check, Check::Revocation);
    assert!(e.message.contains("entries[1].revocation is missing"), "{e}");
}

#[test]
fn genesis_is_read_strictly() {
    let f = files();
    let good = f.chain.genesis.to_json_pretty();
    let g = Genesis::from_json(good.as_bytes()).unwrap();
    assert_eq!(g, f.chain.genesis);
    let compact = serde_json::to_string(&serde_json::from_str::<Value>(&good).unwrap()).unwrap();
    let refuse = |text: &str, path: &str, why: &str| {
        let e = Genesis::from_json(text.as_bytes()).expect_err(path).to_string();
        assert!(e.contains(path) && e.contains(why), "{path}: {e}");
    };
    refuse(&edit(&compact, |v| v["validators"][1]["weight"] = Value::from(1)), "validators[1].weight", "unknown field");
    refuse(&edit(&compact, |v| v["params"]["block_time_ms"] = Value::from(1)), "params.block_time_ms", "unknown field");
    refuse(&edit(&compact, |v| v["extra"] = Value::from(1)), "extra", "unknown field");
    refuse(&edit(&compact, |v| {
        v.as_object_mut().unwrap().remove("validators");
    }), "top level", "missing field `validators`");
    refuse(&edit(&compact, |v| {
        v["issuers"][0].as_object_mut().unwrap().remove("kinds");
    }), "issuers[0]", "missing field `kinds`");
    let key = f.chain.genesis.validators[2].key.to_hex();
    refuse(&compact.replacen(&key, &key.to_uppercase(), 1), "validators[2].key", "upper-case");
    let lower = f.chain.genesis.validators[1].region.as_str().to_lowercase();
    refuse(&edit(&compact, |v| v["validators"][1]["region"] = Value::from(lower.clone())), "validators[1].region", "must be written");
    let dup = compact.replacen(r#""chain_name":"#, r#""chain_name":"other","chain_name":"#, 1);
    refuse(&dup, "chain_name", "twice");
    // The fields the spec lets default may be left out (docs/proofs.md §1).
    let trimmed = edit(&compact, |v| {
        let o = v.as_object_mut().unwrap();
        o.remove("observers");
        o.remove("lenders");
        v["params"].as_object_mut().unwrap().remove("governance");
    });
    Genesis::from_json(trimmed.as_bytes()).unwrap();
}
