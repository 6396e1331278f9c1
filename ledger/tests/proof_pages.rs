//! Paged subject reports (docs/proofs.md, "Subject record pages"): a page
//! proves "these are records i..j of exactly N as of block h"; pages that prove
//! the same record and follow each other from 0 to N prove it complete. Every
//! way of cutting, shifting, splicing or reordering pages is refused, and the
//! store's incremental entries tree equals one built from scratch.

use yrd_consensus::codec;
use yrd_consensus::types::Height;
use yrd_ledger::proof::{self, Check, Report, ReportEntry};
use yrd_ledger::store::Ledger;
use yrd_ledger::subjects::{EntryView, RecordPage};
use yrd_ledger::testkit::TestChain;
use yrd_ledger::tx::{RevocationReason, TxId};
use yrd_ledger::uscc::Uscc;

const NOW: u64 = 1_900_000_000_000;
/// Records of the big subject, committed 37 to a block (pages and blocks do
/// not line up), so that the entries tree has several levels of node chunks.
const RECORDS: u64 = 700;

struct Fixture {
    chain: TestChain,
    ledger: Ledger,
    ids: Vec<TxId>,
    subject: Uscc,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let chain = TestChain::new(4, 2);
    let mut ledger = Ledger::open(dir.path(), chain.genesis.clone()).unwrap();
    let subject = Uscc::sample(1);
    let ids = chain.fill_subject(&mut ledger, 1, subject, RECORDS, 37, 1).unwrap();
    // Another subject, and revocations of records spread over the tree (issuer 0 may revoke any).
    chain.fill_subject(&mut ledger, 1, Uscc::sample(2), 5, 5, RECORDS + 1).unwrap();
    let revoked: Vec<_> = [0usize, 255, 256, 511, 699]
        .iter()
        .enumerate()
        .map(|(k, &i)| chain.revocation(0, 1 + k as u64, ids[i], RevocationReason::Repair))
        .collect();
    chain.commit_next(&mut ledger, revoked).unwrap();
    Fixture { chain, ledger, ids, subject, _dir: dir }
}

fn pages(f: &Fixture, limit: u64) -> Vec<Report> {
    let mut out = Vec::new();
    let mut from = 0;
    while from < RECORDS {
        out.push(proof::report_page(&f.ledger, &f.subject, from, limit, &|_| true).unwrap());
        from += limit;
    }
    out
}

fn page_of(r: &Report) -> RecordPage {
    codec::decode(&hex::decode(r.record.as_ref().unwrap()).unwrap(), 1 << 22, "page").unwrap()
}

fn set_page(r: &mut Report, page: &RecordPage) {
    r.record = Some(hex::encode(codec::encode(page).unwrap()));
}

#[test]
fn every_page_proves_its_range_and_the_pages_together_the_whole_record() {
    let f = fixture();
    let g = &f.chain.genesis;
    // The whole record as one page: complete, every record, revoked where revoked.
    let whole = proof::report_page(&f.ledger, &f.subject, 0, u64::MAX, &|_| true).unwrap();
    let v = proof::verify_report(g, &whole, NOW).unwrap();
    assert!(v.complete && v.from == 0 && v.to == RECORDS && v.count == RECORDS);
    assert_eq!(v.attestations.iter().map(|a| a.id).collect::<Vec<_>>(), f.ids);
    assert_eq!(v.attestations.iter().filter(|a| a.status.name() == "revoked").count(), 5);
    for limit in [1u64, 7, 64, 100, 256, 699, 700] {
        let ps = pages(&f, limit);
        for (k, p) in ps.iter().enumerate() {
            let v = proof::verify_report(g, p, NOW).unwrap_or_else(|e| panic!("limit {limit} page {k}: {e}"));
            let from = k as u64 * limit;
            let to = (from + limit).min(RECORDS);
            assert_eq!((v.from, v.to, v.count), (from, to, RECORDS), "limit {limit} page {k}");
            assert_eq!(v.complete, ps.len() == 1);
            assert_eq!(v.entries_root, proof::verify_report(g, &whole, NOW).unwrap().entries_root);
            let ids: Vec<TxId> = v.attestations.iter().map(|a| a.id).collect();
            assert_eq!(ids, f.ids[from as usize..to as usize], "limit {limit} page {k}");
            if limit < 10 && k > 3 {
                break;
            }
        }
        if limit < 10 {
            continue;
        }
        let all = proof::verify_report_pages(g, &ps, NOW).unwrap_or_else(|e| panic!("limit {limit}: {e}"));
        assert!(all.complete, "limit {limit}");
        assert_eq!(all.attestations.iter().map(|a| a.id).collect::<Vec<_>>(), f.ids);
        // The first pages only: a proven range, not the complete record.
        if ps.len() > 1 {
            let some = proof::verify_report_pages(g, &ps[..ps.len() - 1], NOW).unwrap();
            assert!(!some.complete && some.from == 0 && some.to < RECORDS, "limit {limit}");
        }
    }
    // A page past the end is refused when built.
    assert!(proof::report_page(&f.ledger, &f.subject, RECORDS, 10, &|_| true).is_err());
}

#[test]
fn tampered_pages_are_refused() {
    let f = fixture();
    let g = &f.chain.genesis;
    let ps = pages(&f, 100);
    let p = &ps[2];
    let err = |r: &Report| proof::verify_report(g, r, NOW).unwrap_err();
    let edit = |change: &dyn Fn(&mut RecordPage, &mut Report)| {
        let mut r = p.clone();
        let mut page = page_of(&r);
        change(&mut page, &mut r);
        set_page(&mut r, &page);
        r
    };
    // Wrong place: the same records claimed one or many positions earlier or later.
    for from in [199u64, 201, 0, 600] {
        let t = edit(&|pg, _| pg.from = from);
        assert_eq!(err(&t).check, Check::SubjectMap, "from {from}: {}", err(&t));
    }
    // Wrong length: the last record of the page dropped (from the page and the entries).
    let t = edit(&|pg, r| {
        pg.entries.pop();
        r.entries.pop();
    });
    assert_eq!(err(&t).check, Check::SubjectMap, "{}", err(&t));
    // ...or the first one, the page starting one later.
    let t = edit(&|pg, r| {
        pg.entries.remove(0);
        r.entries.remove(0);
        pg.from += 1;
    });
    assert_eq!(err(&t).check, Check::SubjectMap, "{}", err(&t));
    // The count changed (fewer or more records than the chain holds).
    for count in [699u64, 701, 300, 0] {
        let t = edit(&|pg, _| pg.count = count);
        assert_eq!(err(&t).check, Check::SubjectMap, "count {count}: {}", err(&t));
    }
    // A range-proof hash changed, dropped or added.
    let t = edit(&|pg, _| pg.proof[0].0[0] ^= 1);
    assert_eq!(err(&t).check, Check::SubjectMap);
    let t = edit(&|pg, _| {
        pg.proof.pop();
    });
    assert_eq!(err(&t).check, Check::SubjectMap);
    let t = edit(&|pg, _| pg.proof.push(pg.proof[0]));
    assert_eq!(err(&t).check, Check::SubjectMap);
    // An entry swapped between two pages (in both pages' records and entries):
    // neither page hashes to the record's value any more.
    let (mut a, mut b) = (ps[0].clone(), ps[1].clone());
    let (mut pa, mut pb) = (page_of(&a), page_of(&b));
    std::mem::swap(&mut pa.entries[5], &mut pb.entries[7]);
    std::mem::swap(&mut a.entries[5], &mut b.entries[7]);
    set_page(&mut a, &pa);
    set_page(&mut b, &pb);
    assert_eq!(err(&a).check, Check::SubjectMap);
    assert_eq!(err(&b).check, Check::SubjectMap);
    assert_eq!(proof::verify_report_pages(g, &[a, b], NOW).unwrap_err().check, Check::SubjectMap);
    // Two entries swapped within a page: the same.
    let t = edit(&|pg, r| {
        pg.entries.swap(3, 4);
        r.entries.swap(3, 4);
    });
    assert_eq!(err(&t).check, Check::SubjectMap);
    // A page whose entries list is cut disagrees with its record.
    let mut t = p.clone();
    t.entries.pop();
    assert_eq!(err(&t).check, Check::Completeness);

    let all = |ps: &[Report]| proof::verify_report_pages(g, ps, NOW);
    all(&ps).unwrap();
    // A gap between pages: page 3 left out.
    let mut t = ps.clone();
    t.remove(3);
    let e = all(&t).unwrap_err();
    assert_eq!(e.check, Check::Completeness, "{e}");
    assert!(e.message.contains("300..400 are in no page"), "{e}");
    // Overlap: a page twice, or pages out of order.
    let mut t = ps.clone();
    t.insert(3, ps[2].clone());
    assert_eq!(all(&t).unwrap_err().check, Check::Completeness);
    let mut t = ps.clone();
    t.swap(1, 2);
    assert_eq!(all(&t).unwrap_err().check, Check::Completeness);
    // A page of another subject.
    let mut t = ps.clone();
    t.push(proof::report(&f.ledger, &Uscc::sample(2)).unwrap());
    assert_eq!(all(&t).unwrap_err().check, Check::Completeness);
    // A page with the other pages' records at other sizes (pages of 50 from page 4 on):
    // the same record, so they still tile it.
    let mut t = ps[..4].to_vec();
    let mut from = 400;
    while from < RECORDS {
        t.push(proof::report_page(&f.ledger, &f.subject, from, 50, &|_| true).unwrap());
        from += 50;
    }
    assert!(all(&t).unwrap().complete);
    // An empty list is refused.
    assert_eq!(all(&[]).unwrap_err().check, Check::Format);
}

#[test]
fn a_page_from_another_height_does_not_join_the_pages_of_a_changed_record() {
    let mut f = fixture();
    let g = f.chain.genesis.clone();
    let before = pages(&f, 100);
    // Every page is valid at its own height, and an unrelated block does not change the record.
    f.chain.fill_subject(&mut f.ledger, 1, Uscc::sample(3), 3, 3, 10_000).unwrap();
    let unrelated = pages(&f, 100);
    let mut mixed = before[..3].to_vec();
    mixed.extend_from_slice(&unrelated[3..]);
    let v = proof::verify_report_pages(&g, &mixed, NOW).unwrap();
    assert!(v.complete);
    assert_eq!(v.anchor.height, f.ledger.height().0, "as of the latest page's anchor");
    // One more record about the subject: the later pages prove a record of 701.
    f.chain.fill_subject(&mut f.ledger, 1, f.subject, 1, 1, 20_000).unwrap();
    let after = pages(&f, 100);
    let mut spliced = before[..3].to_vec();
    spliced.extend_from_slice(&after[3..7]);
    let e = proof::verify_report_pages(&g, &spliced, NOW).unwrap_err();
    assert_eq!(e.check, Check::Completeness, "{e}");
    assert!(e.message.contains("the record changed"), "{e}");
    // A revocation changes the record as much: its pages do not join the earlier ones.
    let rev = f.chain.revocation(0, 100, f.ids[10], RevocationReason::Error);
    f.chain.commit_next(&mut f.ledger, vec![rev]).unwrap();
    let revoked = pages(&f, 100);
    let mut spliced = after[..1].to_vec();
    spliced.extend_from_slice(&revoked[1..]);
    assert_eq!(proof::verify_report_pages(&g, &spliced, NOW).unwrap_err().check, Check::Completeness);
    // A page of the record before the revocation, its anchor swapped for the
    // newer block's: the map proof is for the older block.
    let mut t = after[0].clone();
    t.anchor = revoked[0].anchor.clone();
    assert_eq!(proof::verify_report(&g, &t, NOW).unwrap_err().check, Check::SubjectMap);
}

#[test]
fn redacted_pages_verify_and_carry_only_commitments_of_hidden_records() {
    let f = fixture();
    let g = &f.chain.genesis;
    let hidden = |id: &TxId| f.ids.iter().position(|x| x == id).is_some_and(|i| i % 3 == 1);
    let mut ps = Vec::new();
    let mut from = 0;
    while from < RECORDS {
        ps.push(proof::report_page(&f.ledger, &f.subject, from, 128, &|e| !hidden(&e.id)).unwrap());
        from += 128;
    }
    let v = proof::verify_report_pages(g, &ps, NOW).unwrap();
    assert!(v.complete);
    assert_eq!(v.redacted.len(), (0..RECORDS).filter(|i| i % 3 == 1).count());
    assert!(v.redacted.iter().all(|r| r.position % 3 == 1));
    assert!(v.attestations.iter().all(|a| !hidden(&a.id)));
    for p in &ps {
        let text = serde_json::to_string(p).unwrap();
        for (i, id) in f.ids.iter().enumerate().filter(|(i, _)| i % 3 == 1) {
            assert!(!text.contains(&id.to_hex()), "record {i}'s id is in a page");
        }
        let page = page_of(p);
        for (e, given) in page.entries.iter().zip(&p.entries) {
            assert_eq!(matches!(e, EntryView::Redacted(_)), matches!(given, ReportEntry::Redacted(_)));
        }
    }
}

#[test]
fn the_stored_entries_tree_is_the_one_built_from_scratch_and_reopens() {
    let f = fixture();
    let dir = f._dir.path().to_path_buf();
    let genesis = f.chain.genesis.clone();
    let root = f.ledger.subjects_root();
    let record = f.ledger.subject_record(&f.subject).unwrap().unwrap();
    assert_eq!(record.entries.len() as u64, RECORDS);
    let head = f.ledger.subject_head(&f.subject).unwrap().unwrap();
    assert_eq!(head.record_root(f.subject), record.record_root().unwrap());
    // Lookups by id find every record at its position, revoked ones with their revocation.
    for (i, id) in f.ids.iter().enumerate().step_by(37) {
        let loc = f.ledger.tx_location(id).unwrap().unwrap();
        let (pos, e) = f.ledger.subject_entry(&f.subject, id, loc.height).unwrap().unwrap();
        assert_eq!((pos, e.id), (i as u64, *id));
    }
    assert!(f.ledger.subject_entry(&f.subject, &f.ids[0], Height(1)).unwrap().unwrap().1.revoked.is_some());
    drop(f.ledger);
    // The audit recomputes every head, entry chunk and node chunk from the blocks.
    let report = yrd_ledger::audit::verify_store(&dir, &genesis).unwrap();
    assert_eq!(report.subjects, 2);
    let ledger = Ledger::open(&dir, genesis).unwrap();
    assert_eq!(ledger.subjects_root(), root);
}

/// scripts/check-report-hashes.py, written from docs/proofs.md alone, agrees
/// with the reference verifier on pages of a big record (skipped, saying so,
/// where there is no python3).
#[test]
fn the_independent_script_checks_the_same_pages() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (from, limit, show) in [(0u64, 100u64, true), (333, 100, true), (600, 100, true), (0, 700, true), (100, 300, false)] {
        let r = proof::report_page(&f.ledger, &f.subject, from, limit, &|e| show || e.height.0 % 2 == 0).unwrap();
        proof::verify_report(&f.chain.genesis, &r, NOW).unwrap();
        let p = dir.path().join(format!("page-{from}-{limit}.json"));
        std::fs::write(&p, serde_json::to_vec(&r).unwrap()).unwrap();
        files.push(p);
    }
    // A page claiming another place: both verifiers refuse it.
    let mut t = proof::report_page(&f.ledger, &f.subject, 333, 100, &|_| true).unwrap();
    let mut page = page_of(&t);
    page.from = 334;
    set_page(&mut t, &page);
    assert_eq!(proof::verify_report(&f.chain.genesis, &t, NOW).unwrap_err().check, Check::SubjectMap);
    let bad = dir.path().join("shifted.json");
    std::fs::write(&bad, serde_json::to_vec(&t).unwrap()).unwrap();
    files.push(bad);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/check-report-hashes.py");
    let out = match std::process::Command::new("python3").arg(&script).args(&files).output() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("SKIPPED: no python3 ({e})");
            return;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), files.len(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    for (line, want) in lines.iter().zip(["records 0..100 of 700", "records 333..433 of 700", "records 600..700 of 700", "records 0..700 of 700", "records 100..400 of 700"]) {
        assert!(line.contains("OK") && line.contains(want), "{line}");
    }
    assert!(lines[5].contains("FAILED"), "{}", lines[5]);
}
