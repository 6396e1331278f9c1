//! Whole-store verification: re-checks a node's sled data from genesis.
//!
//! [`verify_store`] reads the raw store (without trusting anything it holds) and
//! recomputes, block by block: canonical encoding, header hash chain, commit
//! certificates, the RFC 9162 log (size, root, every stored node), the subject
//! map root, every index entry and the governance state (the membership of each
//! height, every proposal record); then it checks that nothing is stored beyond
//! what the blocks justify. It stops at the first inconsistency and says where.

use std::path::Path;

use yrd_consensus::crypto::Hash32;
use yrd_consensus::types::Height;

use crate::genesis::Genesis;
use crate::governance::Membership;
use crate::replay::{height_key, read_certified_block, Parent, Replay};
use crate::validate::check_stateless;

/// What was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreReport {
    pub height: Height,
    pub transactions: u64,
    pub subjects: u64,
    pub log_root: Hash32,
    pub last_block_hash: Hash32,
}

/// The first inconsistency found, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {problem}")]
pub struct Inconsistency {
    pub location: String,
    pub problem: String,
}

pub(crate) fn bad(location: impl Into<String>, problem: impl Into<String>) -> Inconsistency {
    Inconsistency { location: location.into(), problem: problem.into() }
}


/// Opens the sled store in `dir` for reading. Refuses a directory that holds no
/// sled store (sled would create an empty one) and explains a held lock (sled
/// locks its directory while a node runs).
fn open_store(dir: &Path) -> Result<(sled::Db, sled::Tree), Inconsistency> {
    let at = dir.display().to_string();
    if !dir.join("conf").is_file() || !dir.join("db").is_file() {
        return Err(bad(at, "no sled store here (expected the files `conf` and `db`)"));
    }
    let db = crate::sled_open::open(&sled::Config::new().path(dir), dir).map_err(|e| {
        if crate::sled_open::is_lock_error(&e) {
            bad(
                at.clone(),
                format!("cannot open the store: {e}; stop the node first (sled locks its directory while a store is open)"),
            )
        } else {
            bad(at.clone(), format!("cannot open the store: {e}"))
        }
    })?;
    let tree = db.open_tree("ledger").map_err(|e| bad("store", e.to_string()))?;
    Ok((db, tree))
}

/// Verifies the store in `dir` against `genesis`.
pub fn verify_store(dir: &Path, genesis: &Genesis) -> Result<StoreReport, Inconsistency> {
    let (_db, tree) = open_store(dir)?;
    verify_tree(&tree, genesis)
}

/// Verifies the store of an open ledger as that ledger's own sled instance
/// reads it — what the node serves from — against the ledger's genesis.
pub fn verify_open(ledger: &crate::store::Ledger) -> Result<StoreReport, Inconsistency> {
    verify_tree(ledger.tree(), ledger.genesis())
}

/// Verifies the store in `dir` against the genesis stored in its own metadata.
/// This proves only that the store is internally consistent: whoever wrote the
/// store also wrote that genesis. Returns the genesis used.
pub fn verify_store_self(dir: &Path) -> Result<(Genesis, StoreReport), Inconsistency> {
    let (_db, tree) = open_store(dir)?;
    let raw = get(&tree, b"mgenesis", "metadata")?.ok_or_else(|| bad("metadata", "no stored genesis"))?;
    let genesis = Genesis::from_json(&raw).map_err(|e| bad("metadata", format!("stored genesis is invalid: {e}")))?;
    let report = verify_tree(&tree, &genesis)?;
    Ok((genesis, report))
}

fn get(tree: &sled::Tree, key: &[u8], location: &str) -> Result<Option<sled::IVec>, Inconsistency> {
    tree.get(key).map_err(|e| bad(location, format!("read failed: {e}")))
}

/// The keys under `prefix` are exactly `expected`; else the first difference.
fn compare_prefix(
    tree: &sled::Tree,
    prefix: u8,
    what: &str,
    expected: &std::collections::BTreeMap<Vec<u8>, Vec<u8>>,
) -> Result<(), Inconsistency> {
    let mut stored = 0usize;
    for item in tree.scan_prefix([prefix]) {
        let (k, v) = item.map_err(|e| bad(what, e.to_string()))?;
        stored += 1;
        let at = format!("{what} key {}", hex::encode(&k));
        let want = expected.get(k.as_ref()).ok_or_else(|| bad(&at, "the blocks give no such entry"))?;
        if v.as_ref() != want.as_slice() {
            return Err(bad(&at, "stored value differs from what the blocks say"));
        }
    }
    if stored != expected.len() {
        return Err(bad(what, format!("{stored} entries stored, the blocks give {}", expected.len())));
    }
    Ok(())
}

fn meta_u64(tree: &sled::Tree, key: &[u8], name: &str) -> Result<u64, Inconsistency> {
    let v = get(tree, key, name)?.ok_or_else(|| bad("metadata", format!("{name} missing")))?;
    let arr: [u8; 8] = v.as_ref().try_into().map_err(|_| bad("metadata", format!("{name} is not 8 bytes")))?;
    Ok(u64::from_be_bytes(arr))
}

/// Verifies an open `ledger` tree against `genesis` (what [`verify_store`] runs).
pub fn verify_tree(tree: &sled::Tree, genesis: &Genesis) -> Result<StoreReport, Inconsistency> {
    let chain = genesis.chain_id().map_err(|e| bad("genesis", e.to_string()))?;
    let stored_chain = get(tree, b"mchain", "metadata")?.ok_or_else(|| bad("metadata", "chain id missing"))?;
    if stored_chain.as_ref() != chain.0 {
        return Err(bad("metadata", format!("chain id {} is not the genesis' {}", hex::encode(&stored_chain), chain)));
    }
    let stored_genesis = get(tree, b"mgenesis", "metadata")?.ok_or_else(|| bad("metadata", "genesis missing"))?;
    let same = Genesis::from_json(&stored_genesis).ok().and_then(|g| g.chain_id().ok()) == Some(chain);
    if !same {
        return Err(bad("metadata", "the stored genesis is not the genesis of this chain"));
    }
    for item in tree.iter().keys() {
        let k = item.map_err(|e| bad("store", format!("read failed: {e}")))?;
        let known = matches!(k.first(), Some(b'b' | b'h' | b'c' | b'l' | b'x' | b'i' | b's' | b'e' | b'n' | b'g' | b'M' | b'a' | b'q'))
            || [&b"mheight"[..], b"mlogsize", b"mchain", b"mgenesis", b"mformat"].contains(&k.as_ref());
        if !known {
            return Err(bad("store", format!("unknown key {}", hex::encode(&k))));
        }
    }
    let format = meta_u64(tree, b"mformat", "store format")?;
    if format != crate::store::STORE_FORMAT {
        return Err(bad("metadata", format!("store format {format}, this yrd checks format {}", crate::store::STORE_FORMAT)));
    }
    let height = meta_u64(tree, b"mheight", "height")?;
    let stored_log_size = meta_u64(tree, b"mlogsize", "log size")?;

    // Governance is replayed with the blocks: the membership of every height.
    let mut replay = Replay::new(genesis);
    let mut parent = Parent::genesis(genesis);
    let mut tx_count = 0u64;
    let mut x_parts = 0u64;
    let mut check_tx = |membership: &Membership, tx: &crate::tx::SignedTransaction| -> Result<(), String> {
        check_stateless(membership, &chain, tx).map_err(|e| e.to_string())?;
        tx.verify_signature().map_err(|e| e.to_string())
    };

    for h in 1..=height {
        let validators = replay.validators_at(h)?;
        let certified = read_certified_block(tree, h, &chain, &validators, parent)?;
        // Transactions: log leaves, indexes, subject records, governance; the
        // header's membership and roots.
        let tx_entries = replay.apply(h, &certified, &mut check_tx)?;
        // x index: the block's transaction index, part by part.
        for (part, expected) in crate::store::encode_tx_index(&tx_entries).iter().enumerate() {
            let key = crate::store::tx_index_key(Height(h), part as u32);
            let what = format!("block {h} transaction index part {part}");
            let stored = get(tree, &key, &what)?.ok_or_else(|| bad(&what, "missing"))?;
            if stored.as_ref() != expected.as_slice() {
                return Err(bad(&what, "entries differ from the block's transactions"));
            }
            x_parts += 1;
        }
        tx_count += certified.block.txs.len() as u64;
        parent = Parent { hash: certified.hash, timestamp_ms: certified.block.header.timestamp_ms };
    }
    let log = &replay.log;
    let records = &replay.records;

    if stored_log_size != log.size() {
        return Err(bad("metadata", format!("log size {} but the blocks hold {}", stored_log_size, log.size())));
    }
    // Nothing beyond the last block.
    for prefix in [b'b', b'h', b'c'] {
        if get(tree, &height_key(prefix, height + 1), "store")?.is_some() {
            return Err(bad(format!("block {}", height + 1), format!("'{}' entry stored beyond the committed height {height}", prefix as char)));
        }
        let count = tree.scan_prefix([prefix]).count() as u64;
        if count != height {
            return Err(bad("store", format!("{count} '{}' entries for {height} blocks", prefix as char)));
        }
    }
    let x_count = tree.scan_prefix([b'x']).count() as u64;
    if x_count != x_parts {
        return Err(bad("transaction index", format!("{x_count} parts stored, the blocks need {x_parts}")));
    }
    let issuer_chunks = replay.issuer_chunks()?;
    let mut stored_chunks = 0usize;
    for item in tree.scan_prefix([b'i']) {
        let (k, v) = item.map_err(|e| bad("issuer index", e.to_string()))?;
        stored_chunks += 1;
        let where_ = format!("issuer index chunk {}", hex::encode(&k));
        let expected = k
            .as_ref()
            .try_into()
            .ok()
            .and_then(|key: [u8; 41]| issuer_chunks.get(&key))
            .ok_or_else(|| bad(&where_, "no transaction in the blocks belongs in this chunk"))?;
        if v.as_ref() != expected.as_slice() {
            return Err(bad(&where_, "stored entries differ from the issuers' transactions in the blocks"));
        }
    }
    if stored_chunks != issuer_chunks.len() {
        return Err(bad("issuer index", format!("{stored_chunks} chunks stored, the blocks fill {}", issuer_chunks.len())));
    }
    // Subject records: heads, entry chunks and entries-tree node chunks, as
    // the replayed records give them from scratch.
    let mut expected: [std::collections::BTreeMap<Vec<u8>, Vec<u8>>; 3] = Default::default();
    for rec in records.values() {
        for (k, v) in crate::store::record_kvs(rec).map_err(|e| bad(format!("subject {}", rec.subject), e.to_string()))? {
            let slot = match k.first() {
                Some(b's') => 0,
                Some(b'e') => 1,
                _ => 2,
            };
            expected[slot].insert(k, v);
        }
    }
    compare_prefix(tree, b's', "subject index", &expected[0])?;
    compare_prefix(tree, b'e', "subject entries", &expected[1])?;
    compare_prefix(tree, b'n', "subject entries tree", &expected[2])?;
    // Governance: every proposal record and membership change, as replayed.
    let expected = replay.gov_records()?;
    let mut stored_records = 0usize;
    for item in tree.scan_prefix([b'g']) {
        let (k, v) = item.map_err(|e| bad("governance", e.to_string()))?;
        stored_records += 1;
        let what = format!("proposal {}", hex::encode(k.get(1..).unwrap_or_default()));
        let want = expected.get(k.as_ref()).ok_or_else(|| bad(&what, "no such proposal in the blocks"))?;
        if v.as_ref() != want.as_slice() {
            return Err(bad(&what, "stored record differs from what the blocks say"));
        }
    }
    if stored_records != expected.len() {
        return Err(bad("governance", format!("{stored_records} proposal records for {} proposals", expected.len())));
    }
    let expected_memberships: Vec<(Vec<u8>, Vec<u8>)> = replay.gov_memberships()?.into_iter().collect();
    let stored_memberships: Vec<(Vec<u8>, Vec<u8>)> = tree
        .scan_prefix([b'M'])
        .map(|item| item.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(|e| bad("governance", e.to_string())))
        .collect::<Result<_, Inconsistency>>()?;
    if stored_memberships != expected_memberships {
        return Err(bad("governance", "stored membership changes differ from what the blocks say"));
    }
    // Authorisations (`a`) and query records (`q`), as replayed.
    compare_prefix(tree, b'a', "authorisation index", &replay.consent_grants()?)?;
    compare_prefix(tree, b'q', "query index", replay.consent_queries())?;
    // Every stored log node.
    let mut expected_chunks = 0usize;
    for ((level, chunk), expect) in replay.log_chunks() {
        expected_chunks += 1;
        let k = crate::store::log_key(level, chunk);
        let stored = get(tree, &k, "log")?.ok_or_else(|| bad(format!("log level {level} chunk {chunk}"), "missing"))?;
        if stored.as_ref() != expect.as_slice() {
            return Err(bad(format!("log level {level} chunk {chunk}"), "stored node hashes differ from the transactions"));
        }
    }
    let stored_chunks = tree.scan_prefix([b'l']).count();
    if stored_chunks != expected_chunks {
        return Err(bad("log", format!("{stored_chunks} node chunks stored, {expected_chunks} expected")));
    }
    Ok(StoreReport {
        height: Height(height),
        transactions: tx_count,
        subjects: records.len() as u64,
        log_root: log.root(),
        last_block_hash: parent.hash,
    })
}
