//! A proof file (`proof::parse_file` then `proof::verify_file`, the library path
//! of `yrd verify`), against two other readings of the same file:
//! - the file printed again from what was parsed (serde_json), which must parse
//!   to the same value and get the same verdict;
//! - the path of `yrd audit trace|queries|consistency`, which reads the node's
//!   answer as a `serde_json::Value` and parses its printed form: for every file
//!   `yrd verify` accepts as well-formed, it must parse to the same value and get
//!   the same verdict.
use crate::{with_fixture, NOW_MS};
use yrd_ledger::proof::{check_freshness, parse_file, verify_file, ProofFile};

fn print(file: &ProofFile) -> Vec<u8> {
    let printed = match file {
        ProofFile::Bundle(b) => serde_json::to_vec(b),
        ProofFile::Report(r) => serde_json::to_vec(r),
        ProofFile::Trace(t) => serde_json::to_vec(t),
        ProofFile::Consistency(c) => serde_json::to_vec(c),
        ProofFile::Queries(q) => serde_json::to_vec(q),
    };
    printed.expect("a parsed proof file prints")
}

/// One execution: panics when a property fails.
pub fn run(data: &[u8]) {
    let Ok(file) = parse_file(data) else { return };
    with_fixture(|f| {
        let genesis = &f.chain.genesis;
        let verdict = verify_file(genesis, &file, NOW_MS);
        if let Ok(v) = &verdict {
            let _ = check_freshness(v, NOW_MS, Some(1));
        }
        let printed = print(&file);
        let again = parse_file(&printed).unwrap_or_else(|e| panic!("the printed file does not parse: {e}"));
        assert_eq!(again, file, "printing and parsing changed the file");
        assert_eq!(verify_file(genesis, &again, NOW_MS), verdict, "the printed file got another verdict");
        let value: serde_json::Value = serde_json::from_slice(data).expect("a parsed file is JSON");
        let audit = parse_file(value.to_string().as_bytes())
            .unwrap_or_else(|e| panic!("the audit path refuses a file `yrd verify` parses: {e}"));
        assert_eq!(audit, file, "the audit path read another file");
        assert_eq!(verify_file(genesis, &audit, NOW_MS), verdict, "the audit path got another verdict");
    });
}
