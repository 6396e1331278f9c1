//! Whole-ledger verification (`yrd audit verify-ledger`, ledger/src/audit.rs):
//! passes on an untouched store; finds a changed byte in a copy of the sled data,
//! whether changed through sled (a value rewritten) or in the raw files.

use std::path::Path;

use yrd_ledger::audit::{verify_store, verify_store_self, verify_tree, Inconsistency, StoreReport};
use yrd_ledger::store::Ledger;
use yrd_ledger::testkit::TestChain;
use yrd_ledger::tx::{AttestationKind, RevocationReason, SignedTransaction};
use yrd_ledger::uscc::Uscc;

fn commit(ledger: &mut Ledger, chain: &TestChain, txs: Vec<SignedTransaction>) {
    chain.commit_next(ledger, txs).unwrap();
}

/// A closed store of 12 blocks (about 40 transactions, revocations included).
fn build_store(dir: &Path, chain: &TestChain) {
    let mut ledger = Ledger::open(dir, chain.genesis.clone()).unwrap();
    let mut seq = [0u64; 2];
    let mut ids = Vec::new();
    for block in 0..12u64 {
        let mut txs = Vec::new();
        for j in 0..3u64 {
            let issuer = ((block + j) % 2) as usize;
            seq[issuer] += 1;
            let tx = chain.attestation(issuer, seq[issuer], Uscc::sample(block * 3 % 7 + j), AttestationKind::ALL[(block + j) as usize % 7]);
            ids.push((issuer, tx.id().unwrap()));
            txs.push(tx);
        }
        if block % 4 == 3 {
            let (issuer, target) = ids[block as usize];
            seq[issuer] += 1;
            txs.push(chain.revocation(issuer, seq[issuer], target, RevocationReason::Error));
        }
        commit(&mut ledger, chain, txs);
    }
}

/// Rewrites one value in a copy of the store through sled.
fn with_tree(dir: &Path, f: impl FnOnce(&sled::Tree)) {
    // No background flusher: the directory lock is released as soon as `db` drops
    // (`sled_open::open` waits for this process's own lock from an earlier handle).
    let db = yrd_ledger::sled_open::open(&sled::Config::new().path(dir).flush_every_ms(None), dir).unwrap();
    let tree = db.open_tree("ledger").unwrap();
    f(&tree);
    db.flush().unwrap();
}

fn flip_value(tree: &sled::Tree, key: &[u8], byte: usize) {
    let mut v = tree.get(key).unwrap().unwrap_or_else(|| panic!("no key {}", hex::encode(key))).to_vec();
    let i = byte % v.len();
    v[i] ^= 0x01;
    tree.insert(key, v).unwrap();
}

fn hkey(prefix: u8, h: u64) -> Vec<u8> {
    let mut k = vec![prefix];
    k.extend_from_slice(&h.to_be_bytes());
    k
}

fn first_key(tree: &sled::Tree, prefix: u8, nth: usize) -> Vec<u8> {
    tree.scan_prefix([prefix]).keys().nth(nth).unwrap().unwrap().to_vec()
}

#[test]
fn untouched_store_passes_with_or_without_a_genesis_file() {
    let dir = tempfile::tempdir().unwrap();
    let chain = TestChain::new(4, 2);
    build_store(dir.path(), &chain);
    let report = verify_store(dir.path(), &chain.genesis).unwrap();
    assert_eq!(report.height.0, 12);
    assert_eq!(report.transactions, 39);
    let (g, again) = verify_store_self(dir.path()).unwrap();
    assert_eq!(g, chain.genesis);
    assert_eq!(again, report);
    // Another chain's genesis is refused.
    let err = verify_store(dir.path(), &TestChain::new(5, 2).genesis).unwrap_err();
    assert_eq!(err.location, "metadata");
    // A directory without a store is refused, not created.
    let empty = tempfile::tempdir().unwrap();
    let err = verify_store(&empty.path().join("nothing"), &chain.genesis).unwrap_err();
    assert!(err.problem.contains("no sled store"), "{err}");
    assert!(!empty.path().join("nothing").exists());
}

#[test]
fn a_running_node_holds_the_lock_and_the_error_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let chain = TestChain::new(4, 2);
    build_store(dir.path(), &chain);
    // The lock is per process (flock); a second process is what a running node is.
    let me = std::env::current_exe().unwrap();
    let _ledger = Ledger::open(dir.path(), chain.genesis.clone()).unwrap();
    let out = std::process::Command::new(me)
        .args(["--exact", "holder_process_probe", "--nocapture"])
        .env("YRD_PROBE_DIR", dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("stop the node first"), "{text}");
    // The holder is named (from /proc/locks), and the child did not wait for it.
    assert!(text.contains(&format!("locked by process {}", std::process::id())), "{text}");
}

/// Run by the test above in a child process.
#[test]
fn holder_process_probe() {
    let Ok(dir) = std::env::var("YRD_PROBE_DIR") else { return };
    let err = verify_store(Path::new(&dir), &TestChain::new(4, 2).genesis).unwrap_err();
    println!("{err}");
}

#[test]
fn a_value_changed_through_sled_is_found_and_located() {
    let dir = tempfile::tempdir().unwrap();
    let chain = TestChain::new(4, 2);
    build_store(dir.path(), &chain);
    let good = verify_store(dir.path(), &chain.genesis).unwrap();
    type Edit = Box<dyn Fn(&sled::Tree)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        ("block body, a transaction byte", Box::new(|t| flip_value(t, &hkey(b'b', 5), 300)), "block 5"),
        ("block body, the header", Box::new(|t| flip_value(t, &hkey(b'b', 7), 20)), "block 7"),
        ("stored header", Box::new(|t| flip_value(t, &hkey(b'h', 3), 50)), "block 3 header"),
        ("certificate signature", Box::new(|t| flip_value(t, &hkey(b'c', 9), 100)), "block 9 certificate"),
        ("transaction index, an id", Box::new(|t| { let k = first_key(t, b'x', 4); flip_value(t, &k, 19) }), "transaction index"),
        ("transaction index, an offset", Box::new(|t| { let k = first_key(t, b'x', 2); flip_value(t, &k, 35) }), "transaction index"),
        ("issuer index, a sequence number", Box::new(|t| { let k = first_key(t, b'i', 0); flip_value(t, &k, 7) }), "issuer index"),
        ("issuer index, a transaction id", Box::new(|t| { let k = first_key(t, b'i', 0); flip_value(t, &k, 50) }), "issuer index"),
        ("deleted issuer index chunk", Box::new(|t| { let k = first_key(t, b'i', 0); t.remove(k).unwrap(); }), "issuer index"),
        ("subject record", Box::new(|t| { let k = first_key(t, b's', 1); flip_value(t, &k, 40) }), "subject"),
        ("subject entry chunk", Box::new(|t| { let k = first_key(t, b'e', 0); flip_value(t, &k, 60) }), "subject entries"),
        ("subject entries-tree node", Box::new(|t| { let k = first_key(t, b'n', 0); flip_value(t, &k, 5) }), "subject entries tree"),
        ("deleted subject entry chunk", Box::new(|t| { let k = first_key(t, b'e', 0); t.remove(k).unwrap(); }), "subject entries"),
        ("log node chunk", Box::new(|t| { let k = first_key(t, b'l', 0); flip_value(t, &k, 33) }), "log level 0"),
        ("upper log level", Box::new(|t| { let k = first_key(t, b'l', 2); flip_value(t, &k, 1) }), "log level"),
        ("metadata height", Box::new(|t| flip_value(t, b"mheight", 7)), "block"),
        ("metadata log size", Box::new(|t| flip_value(t, b"mlogsize", 7)), "metadata"),
        ("metadata genesis", Box::new(|t| flip_value(t, b"mgenesis", 30)), "metadata"),
        ("extra key", Box::new(|t| { t.insert(b"zjunk", b"1".to_vec()).unwrap(); }), "store"),
        ("deleted transaction index part", Box::new(|t| { let k = first_key(t, b'x', 0); t.remove(k).unwrap(); }), "transaction index"),
        ("extra transaction index part", Box::new(|t| { t.insert(&b"x\0\0\0\0\0\0\x03\xe7\0\0\0\0"[..], vec![0u8; 40]).unwrap(); }), "transaction index"),
        ("deleted last block", Box::new(|t| { t.remove(hkey(b'b', 12)).unwrap(); }), "block 12"),
    ];
    for (name, edit, location) in cases {
        let copy = tempfile::tempdir().unwrap();
        yrd_ledger::testkit::copy_dir(dir.path(), copy.path()).unwrap();
        with_tree(copy.path(), edit);
        let err = verify_store(copy.path(), &chain.genesis).expect_err(name);
        assert!(err.location.contains(location), "{name}: found at {:?} ({}), expected {location:?}", err.location, err.problem);
    }
    // The original is untouched and still passes.
    assert_eq!(verify_store(dir.path(), &chain.genesis).unwrap(), good);
}

/// Rewrites block `h`'s stored header (in the body and the `h` key) with the
/// timestamp `ts`; its certificate is left as it was.
fn set_block_time(tree: &sled::Tree, h: u64, ts: u64) {
    let bytes = tree.get(hkey(b'b', h)).unwrap().unwrap();
    let mut block = yrd_ledger::block::Block::decode(&bytes, usize::MAX).unwrap();
    block.header.timestamp_ms = ts;
    tree.insert(hkey(b'b', h), block.encode().unwrap()).unwrap();
    tree.insert(hkey(b'h', h), yrd_consensus::codec::encode(&block.header).unwrap()).unwrap();
}

/// The audit judges block times as block validation does: each block later
/// than its parent, block 1 later than the genesis time. (The timestamp is
/// checked before the certificate, so a header rewritten here is found there.)
#[test]
fn the_audit_refuses_a_block_not_later_than_its_parent_and_block_one_not_later_than_the_genesis() {
    let dir = tempfile::tempdir().unwrap();
    let chain = TestChain::new(4, 2);
    build_store(dir.path(), &chain);
    let genesis_ms = chain.genesis.genesis_time_ms;
    let b1 = Ledger::open(dir.path(), chain.genesis.clone()).unwrap().header(yrd_consensus::types::Height(1)).unwrap().unwrap();
    assert!(b1.timestamp_ms > genesis_ms);
    let cases: Vec<(u64, u64, &str)> = vec![
        (1, genesis_ms, "is not after the genesis time"),
        (1, genesis_ms - 1, "is not after the genesis time"),
        (2, b1.timestamp_ms, "is not after its parent's"),
    ];
    for (h, ts, says) in cases {
        let copy = tempfile::tempdir().unwrap();
        yrd_ledger::testkit::copy_dir(dir.path(), copy.path()).unwrap();
        with_tree(copy.path(), |t| set_block_time(t, h, ts));
        let err = verify_store(copy.path(), &chain.genesis).expect_err(says);
        assert_eq!(err.location, format!("block {h} header"), "{err}");
        assert!(err.problem.contains(says), "block {h} at {ts}: {err}");
    }
    // One millisecond later than the parent passes this check and is then
    // refused by the certificate, which signed the original header.
    let copy = tempfile::tempdir().unwrap();
    yrd_ledger::testkit::copy_dir(dir.path(), copy.path()).unwrap();
    with_tree(copy.path(), |t| set_block_time(t, 1, genesis_ms + 1));
    let err = verify_store(copy.path(), &chain.genesis).unwrap_err();
    assert_eq!(err.location, "block 1 certificate", "{err}");
}

/// Every stored value matters: flipping a byte (first, last and a few between)
/// of any value of any key is found. Runs on one open copy, flipping back after
/// each check.
#[test]
fn every_stored_value_byte_matters() {
    let dir = tempfile::tempdir().unwrap();
    let chain = TestChain::new(4, 2);
    build_store(dir.path(), &chain);
    let copy = tempfile::tempdir().unwrap();
    yrd_ledger::testkit::copy_dir(dir.path(), copy.path()).unwrap();
    let db = sled::open(copy.path()).unwrap();
    let tree = db.open_tree("ledger").unwrap();
    let good = verify_tree(&tree, &chain.genesis).unwrap();
    let keys: Vec<(Vec<u8>, usize)> = tree.iter().map(|kv| kv.unwrap()).map(|(k, v)| (k.to_vec(), v.len())).collect();
    let mut tried = 0;
    for (k, len) in &keys {
        let positions: Vec<usize> = if k.as_slice() == b"mgenesis" {
            // JSON: flip characters inside the first key's hex, not whitespace.
            let v = tree.get(k).unwrap().unwrap();
            let at = String::from_utf8_lossy(&v).find("\"key\": \"").unwrap() + 9;
            vec![at, at + 10, at + 63]
        } else {
            let mut p = vec![0, len - 1, len / 2, len / 3, 2 * len / 3];
            p.sort();
            p.dedup();
            p
        };
        for &pos in &positions {
            flip_value(&tree, k, pos);
            let r = verify_tree(&tree, &chain.genesis);
            assert!(r.is_err(), "flip of byte {pos} of key {} passed", hex::encode(k));
            flip_value(&tree, k, pos);
            tried += 1;
        }
    }
    assert_eq!(verify_tree(&tree, &chain.genesis).unwrap(), good);
    assert!(tried > 300, "{tried}");
}

/// Raw file-level flips: sled checksums its log records (CRC32) and our checks
/// recompute everything, so a flipped byte in the files either makes the store
/// fail to open or read, is found by a check, or changes nothing that the store
/// says (it hit unused space: padding, a dead record, an old segment). It must
/// never make the store pass with different contents. Returns (found, harmless).
fn raw_flips(dir: &Path, chain: &TestChain, good: &StoreReport, len: usize, stride: usize) -> (usize, usize, usize) {
    let (mut found, mut harmless, mut tried, mut last_found) = (0, 0, 0, 0);
    let mut pos = 7;
    while pos < len {
        let copy = tempfile::tempdir().unwrap();
        yrd_ledger::testkit::copy_dir(dir, copy.path()).unwrap();
        let f = copy.path().join("db");
        let mut bytes = std::fs::read(&f).unwrap();
        bytes[pos] ^= 0x10;
        std::fs::write(&f, bytes).unwrap();
        tried += 1;
        // sled may panic on some corruptions; that is a refusal, not a pass.
        let r = std::panic::catch_unwind(|| verify_store(copy.path(), &chain.genesis));
        match r {
            Err(_) | Ok(Err(Inconsistency { .. })) => {
                found += 1;
                last_found = pos;
            }
            Ok(Ok(report)) => {
                assert_eq!(&report, good, "raw flip at byte {pos} of {len} passed with different contents");
                harmless += 1;
            }
        }
        pos += stride;
    }
    eprintln!("last flip found at byte {last_found}");
    (found, harmless, tried)
}

#[test]
fn raw_byte_flips_in_the_sled_files_never_pass_silently() {
    let dir = tempfile::tempdir().unwrap();
    let chain = TestChain::new(4, 2);
    build_store(dir.path(), &chain);
    let good = verify_store(dir.path(), &chain.genesis).unwrap();
    // sled preallocates its segments: past the last non-zero byte the file is
    // unused. Flip bytes spread over the part that holds data.
    let bytes = std::fs::read(dir.path().join("db")).unwrap();
    let used = bytes.iter().rposition(|b| *b != 0).unwrap() + 1;
    let stride = (used / 200).max(1);
    let (found, harmless, tried) = raw_flips(dir.path(), &chain, &good, used, stride);
    eprintln!(
        "raw flips in the first {used} (used) bytes of a {}-byte db file, every {stride} bytes: {tried} tried, {found} found, {harmless} harmless",
        bytes.len()
    );
    assert!(found * 10 >= tried * 9, "only {found} of {tried} flips found");
    assert_eq!(found + harmless, tried);
}
