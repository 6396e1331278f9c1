//! Whole-store verification: re-checks a node's sled data from genesis.
//!
//! [`verify_store`] reads the raw store (without trusting anything it holds) and
//! recomputes, block by block: canonical encoding, header hash chain, commit
//! certificates, the RFC 9162 log (size, root, every stored node), the subject
//! map root, and every index entry; then it checks that nothing is stored beyond
//! what the blocks justify. It stops at the first inconsistency and says where.

use std::collections::BTreeMap;
use std::path::Path;

use yrd_consensus::codec;
use yrd_consensus::crypto::Hash32;
use yrd_consensus::types::Height;

use crate::block::{Block, BlockHeader, MAX_CERTIFICATE_BYTES};
use crate::consent::{self, BlockConsent, ConsentSource, Grant, Refusal, Target};
use crate::genesis::Genesis;
use crate::governance::GovState;
use crate::merkle::MemoryLog;
use crate::subjects::{subject_key, SubjectEntry, SubjectMap, SubjectRecord};
use crate::tx::{TxBody, TxId};
use crate::uscc::Uscc;
use crate::validate::check_stateless;
use yrd_consensus::CommitCertificate;

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

fn bad(location: impl Into<String>, problem: impl Into<String>) -> Inconsistency {
    Inconsistency { location: location.into(), problem: problem.into() }
}

/// The consent state replayed from the blocks (what the `a` index must hold).
#[derive(Default)]
struct ConsentReplay {
    grants: BTreeMap<(Uscc, String), Vec<Grant>>,
    /// Every authorisation: (subject, lender, height).
    authorisations: std::collections::HashMap<TxId, (Uscc, String, u64)>,
    /// Every other transaction id seen.
    others: std::collections::HashSet<TxId>,
}

impl ConsentSource for ConsentReplay {
    type Error = Inconsistency;
    fn grants(&self, subject: &Uscc, lender: &str) -> Result<Vec<Grant>, Inconsistency> {
        Ok(self.grants.get(&(*subject, lender.to_string())).cloned().unwrap_or_default())
    }
    fn target(&self, id: &TxId) -> Result<Target, Inconsistency> {
        Ok(match self.authorisations.get(id) {
            Some((subject, lender, height)) => Target::Authorisation { subject: *subject, lender: lender.clone(), height: *height },
            None if self.others.contains(id) => Target::Other,
            None => Target::Missing,
        })
    }
}

fn hkey(prefix: u8, h: u64) -> Vec<u8> {
    let mut k = vec![prefix];
    k.extend_from_slice(&h.to_be_bytes());
    k
}

/// Opens the sled store in `dir` for reading. Refuses a directory that holds no
/// sled store (sled would create an empty one) and explains a held lock (sled
/// locks its directory while a node runs).
fn open_store(dir: &Path) -> Result<(sled::Db, sled::Tree), Inconsistency> {
    let at = dir.display().to_string();
    if !dir.join("conf").is_file() || !dir.join("db").is_file() {
        return Err(bad(at, "no sled store here (expected the files `conf` and `db`)"));
    }
    let db = sled::Config::new().path(dir).open().map_err(|e| {
        let locked = matches!(&e, sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock)
            || e.to_string().contains("acquire lock");
        if locked {
            bad(
                at.clone(),
                format!("cannot open the store: {e} — it is locked, probably by a running node; stop the node first (sled locks its directory)"),
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
        let known = matches!(k.first(), Some(b'b' | b'h' | b'c' | b'l' | b'x' | b'i' | b's' | b'g' | b'M' | b'a' | b'q'))
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

    let mut log = MemoryLog::new();
    let mut map = SubjectMap::new();
    let mut records: BTreeMap<Uscc, SubjectRecord> = BTreeMap::new();
    let mut subject_of: BTreeMap<TxId, Uscc> = BTreeMap::new();
    let mut parent = Hash32::ZERO;
    let mut parent_ts = 0u64;
    let mut tx_count = 0u64;
    let mut issuer_index: BTreeMap<[u8; 41], Vec<(u64, TxId)>> = BTreeMap::new();
    let mut seen_ids: std::collections::HashSet<TxId> = std::collections::HashSet::new();
    let mut x_parts = 0u64;
    // Governance, replayed from the blocks: the membership of every height.
    let mut gov = GovState::new(genesis);
    // Authorisations and query records, replayed.
    let mut consent_state = ConsentReplay::default();
    let mut query_index: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();

    for h in 1..=height {
        let at = |what: &str| format!("block {h} {what}");
        let bytes = get(tree, &hkey(b'b', h), &at("body"))?.ok_or_else(|| bad(at("body"), "missing"))?;
        let block = Block::decode(&bytes, codec::MAX_ENCODED_BYTES).map_err(|e| bad(at("body"), e.to_string()))?;
        let again = block.encode().map_err(|e| bad(at("body"), e.to_string()))?;
        if again != bytes.as_ref() {
            return Err(bad(at("body"), "stored bytes are not the canonical encoding"));
        }
        let hb = get(tree, &hkey(b'h', h), &at("header"))?.ok_or_else(|| bad(at("header"), "missing"))?;
        let header = BlockHeader::decode(&hb).map_err(|e| bad(at("header"), e.to_string()))?;
        if header != block.header {
            return Err(bad(at("header"), "stored header differs from the block's header"));
        }
        let hash = header.hash().map_err(|e| bad(at("header"), e.to_string()))?;
        if header.chain != chain {
            return Err(bad(at("header"), format!("chain {} is not {}", header.chain, chain)));
        }
        if header.height != Height(h) {
            return Err(bad(at("header"), format!("says height {}", header.height)));
        }
        if header.parent != parent {
            return Err(bad(at("header"), format!("parent {} but block {} hashes to {}", header.parent, h - 1, parent)));
        }
        if h > 1 && header.timestamp_ms <= parent_ts {
            return Err(bad(at("header"), "timestamp does not increase"));
        }
        let validators = gov.validators_at(h).map_err(|e| bad(at("validators"), e.to_string()))?;
        let mut block_gov = gov.begin_block(h);
        let membership = block_gov.membership().clone();
        let membership_hash = membership.hash().map_err(|e| bad(at("header"), e.to_string()))?;
        if header.membership != membership_hash {
            return Err(bad(
                at("header"),
                format!("membership {} but the governance transactions before it give {}", header.membership, membership_hash),
            ));
        }
        let proposer = validators.proposer(header.height, header.round);
        if header.proposer != proposer {
            return Err(bad(at("header"), format!("proposer {} is not the proposer {} of round {}", header.proposer, proposer, header.round)));
        }
        let cb = get(tree, &hkey(b'c', h), &at("certificate"))?.ok_or_else(|| bad(at("certificate"), "missing"))?;
        let cert: CommitCertificate = codec::decode(&cb, MAX_CERTIFICATE_BYTES, "certificate")
            .map_err(|e| bad(at("certificate"), e.to_string()))?;
        cert.verify(&chain, &validators, Height(h), &hash).map_err(|e| bad(at("certificate"), e.to_string()))?;

        // Transactions: log leaves, indexes, subject records.
        let header_len = codec::encode(&header).map_err(|e| bad(at("header"), e.to_string()))?.len();
        let mut offset = header_len + 8;
        let mut changed: BTreeMap<Uscc, ()> = BTreeMap::new();
        let mut tx_entries = Vec::with_capacity(block.txs.len());
        let mut block_consent = BlockConsent::new(&consent_state, h, header.timestamp_ms, membership.clone());
        let mut new_authorisations = Vec::new();
        let mut new_others = Vec::new();
        for (i, tx) in block.txs.iter().enumerate() {
            let loc = format!("block {h} transaction {i}");
            let tb = tx.encode().map_err(|e| bad(&loc, e.to_string()))?;
            check_stateless(&membership, &chain, tx).map_err(|e| bad(&loc, e.to_string()))?;
            tx.verify_signature().map_err(|e| bad(&loc, e.to_string()))?;
            let id = TxId(yrd_consensus::crypto::sha256(&[&tb]));
            block_gov.apply(tx, &id, i as u32).map_err(|e| bad(&loc, e.to_string()))?;
            block_consent.apply(tx, &id, i as u32).map_err(|r| match r {
                Refusal::Invalid(e) => bad(&loc, e.to_string()),
                Refusal::Store(e) => e,
            })?;
            match &tx.tx.body {
                TxBody::Authorise(a) => {
                    let lender = consent::lender_name(&membership, &tx.tx.issuer).unwrap_or_default();
                    new_authorisations.push((id, (a.subject, lender, h)));
                }
                _ => new_others.push(id),
            }
            log.append(&tb);
            if !seen_ids.insert(id) {
                return Err(bad(&loc, format!("transaction {id} is already in an earlier block (replay)")));
            }
            tx_entries.push((id, offset as u32, tb.len() as u32));
            offset += tb.len();
            // i index: collected per chunk, compared with the store after the last block.
            issuer_index
                .entry(crate::store::issuer_chunk_key(&tx.tx.issuer, tx.tx.sequence))
                .or_default()
                .push((tx.tx.sequence, id));
            match &tx.tx.body {
                TxBody::Attest(a) => {
                    let rec = records.entry(a.subject).or_insert_with(|| SubjectRecord { subject: a.subject, entries: vec![] });
                    rec.entries.push(SubjectEntry {
                        id,
                        height: Height(h),
                        issuer: tx.tx.issuer,
                        kind: a.kind,
                        valid_until_ms: a.valid_until_ms,
                        revoked: None,
                    });
                    changed.insert(a.subject, ());
                    subject_of.insert(id, a.subject);
                }
                TxBody::Revoke(r) => {
                    let target = subject_of.get(&r.target).and_then(|s| records.get_mut(s)).and_then(|rec| {
                        let subject = rec.subject;
                        rec.entries.iter_mut().find(|e| e.id == r.target).map(|e| (subject, e))
                    });
                    match target {
                        Some((_, e)) if e.revoked.is_some() => {
                            return Err(bad(&loc, format!("revokes {} which is already revoked", r.target)))
                        }
                        Some((_, e))
                            if gov.membership_at(e.height.0).issuer_any(&e.issuer).map(|i| &i.name)
                                != membership.issuer(&tx.tx.issuer).map(|i| &i.name)
                                && !membership.issuer(&tx.tx.issuer).is_some_and(|i| i.may_revoke_any) =>
                        {
                            return Err(bad(&loc, format!("revokes {} of another issuer without authority", r.target)))
                        }
                        Some((subject, e)) => {
                            e.revoked = Some((id, r.reason));
                            changed.insert(subject, ());
                        }
                        None => return Err(bad(&loc, format!("revokes {} which is not an earlier attestation", r.target))),
                    }
                }
                TxBody::Propose(_) | TxBody::Approve(_) => {} // replayed by block_gov above
                TxBody::Authorise(_) | TxBody::Withdraw(_) | TxBody::RecordQueries(_) => {} // by block_consent
            }
        }
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
        tx_count += block.txs.len() as u64;
        if log.size() != header.log_size {
            return Err(bad(at("header"), format!("log size {} but the chain holds {} transactions", header.log_size, log.size())));
        }
        if log.root() != header.log_root {
            return Err(bad(at("header"), format!("log root {} but the transactions give {}", header.log_root, log.root())));
        }
        let mut changes = Vec::with_capacity(changed.len());
        for s in changed.keys() {
            let rec = &records[s];
            changes.push((subject_key(s), rec.value_hash().map_err(|e| bad(at("subjects"), e.to_string()))?));
        }
        map.apply(&changes);
        if map.root() != header.subjects_root {
            return Err(bad(at("header"), format!("subjects root {} but the records give {}", header.subjects_root, map.root())));
        }
        gov.apply(&block_gov.finish());
        let delta = block_consent.finish();
        consent_state.grants.extend(delta.grants);
        for (subject, entries) in delta.queries {
            query_index.insert(consent::query_key(&subject, h), consent::encode_query_index(&entries));
        }
        consent_state.authorisations.extend(new_authorisations);
        consent_state.others.extend(new_others);
        parent = hash;
        parent_ts = header.timestamp_ms;
    }

    if stored_log_size != log.size() {
        return Err(bad("metadata", format!("log size {} but the blocks hold {}", stored_log_size, log.size())));
    }
    // Nothing beyond the last block.
    for prefix in [b'b', b'h', b'c'] {
        if get(tree, &hkey(prefix, height + 1), "store")?.is_some() {
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
    let mut stored_chunks = 0usize;
    for item in tree.scan_prefix([b'i']) {
        let (k, v) = item.map_err(|e| bad("issuer index", e.to_string()))?;
        stored_chunks += 1;
        let where_ = format!("issuer index chunk {}", hex::encode(&k));
        let mut expected = k
            .as_ref()
            .try_into()
            .ok()
            .and_then(|key: [u8; 41]| issuer_index.get(&key))
            .cloned()
            .ok_or_else(|| bad(&where_, "no transaction in the blocks belongs in this chunk"))?;
        expected.sort_unstable_by_key(|(seq, _)| *seq);
        if let Some(w) = expected.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(bad(&where_, format!("sequence number {} is used by {} and {}", w[0].0, w[0].1, w[1].1)));
        }
        if v.as_ref() != crate::store::encode_issuer_chunk(&expected).as_slice() {
            return Err(bad(&where_, "stored entries differ from the issuers' transactions in the blocks"));
        }
    }
    if stored_chunks != issuer_index.len() {
        return Err(bad("issuer index", format!("{stored_chunks} chunks stored, the blocks fill {}", issuer_index.len())));
    }
    // Subject records.
    let mut stored_subjects = 0u64;
    for item in tree.scan_prefix([b's']) {
        let (k, v) = item.map_err(|e| bad("subject index", e.to_string()))?;
        stored_subjects += 1;
        let name = String::from_utf8_lossy(&k[1..]).to_string();
        let rec = SubjectRecord::decode(&v).map_err(|e| bad(format!("subject {name}"), e.to_string()))?;
        match records.get(&rec.subject) {
            Some(expected) if expected == &rec && rec.subject.as_str().as_bytes() == &k[1..] => {}
            _ => return Err(bad(format!("subject {name}"), "stored record differs from what the blocks say")),
        }
    }
    if stored_subjects != records.len() as u64 {
        return Err(bad("subject index", format!("{stored_subjects} records for {} subjects", records.len())));
    }
    // Governance: every proposal record and membership change, as replayed.
    let mut stored_records = 0usize;
    for item in tree.scan_prefix([b'g']) {
        let (k, v) = item.map_err(|e| bad("governance", e.to_string()))?;
        stored_records += 1;
        let what = format!("proposal {}", hex::encode(k.get(1..).unwrap_or_default()));
        let expected = k
            .get(1..)
            .and_then(|id| <[u8; 32]>::try_from(id).ok())
            .and_then(|id| gov.proposal(&TxId(Hash32(id))))
            .ok_or_else(|| bad(&what, "no such proposal in the blocks"))?;
        if v.as_ref() != codec::encode(expected).map_err(|e| bad(&what, e.to_string()))?.as_slice() {
            return Err(bad(&what, "stored record differs from what the blocks say"));
        }
    }
    if stored_records != gov.proposals().count() {
        return Err(bad("governance", format!("{stored_records} proposal records for {} proposals", gov.proposals().count())));
    }
    let expected_memberships: Vec<(u64, Vec<u8>)> = gov
        .timeline()
        .filter(|(h, _)| *h > 1)
        .map(|(h, m)| codec::encode(&**m).map(|b| (h, b)))
        .collect::<Result<_, _>>()
        .map_err(|e| bad("governance", e.to_string()))?;
    let stored_memberships: Vec<(u64, Vec<u8>)> = tree
        .scan_prefix([b'M'])
        .map(|item| {
            let (k, v) = item.map_err(|e| bad("governance", e.to_string()))?;
            let h = k.get(1..).and_then(|b| <[u8; 8]>::try_from(b).ok()).map(u64::from_be_bytes);
            Ok((h.ok_or_else(|| bad("governance", "malformed membership key"))?, v.to_vec()))
        })
        .collect::<Result<_, Inconsistency>>()?;
    if stored_memberships != expected_memberships {
        return Err(bad("governance", "stored membership changes differ from what the blocks say"));
    }
    // Authorisations and query records, as replayed.
    let expected_grants: Vec<(Vec<u8>, Vec<u8>)> = consent_state
        .grants
        .iter()
        .map(|((s, l), g)| consent::encode_grants(g).map(|v| (consent::grant_key(s, l), v)))
        .collect::<Result<_, _>>()
        .map_err(|e| bad("authorisation index", e.to_string()))?;
    let mut expected_grants = expected_grants;
    expected_grants.sort();
    let stored_grants: Vec<(Vec<u8>, Vec<u8>)> = tree
        .scan_prefix([b'a'])
        .map(|item| item.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(|e| bad("authorisation index", e.to_string())))
        .collect::<Result<_, _>>()?;
    if stored_grants != expected_grants {
        let first = stored_grants.iter().zip(&expected_grants).find(|(a, b)| a != b).map(|(a, _)| hex::encode(&a.0));
        return Err(bad(
            "authorisation index",
            format!(
                "{} entries stored, the blocks give {}; first difference at {}",
                stored_grants.len(),
                expected_grants.len(),
                first.unwrap_or_else(|| "the end".into())
            ),
        ));
    }
    let stored_queries: BTreeMap<Vec<u8>, Vec<u8>> = tree
        .scan_prefix([b'q'])
        .map(|item| item.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(|e| bad("query index", e.to_string())))
        .collect::<Result<_, _>>()?;
    if stored_queries != query_index {
        return Err(bad(
            "query index",
            format!("{} entries stored, the blocks give {}, or their contents differ", stored_queries.len(), query_index.len()),
        ));
    }
    // Every stored log node.
    for (level, nodes) in log.levels().iter().enumerate() {
        for (chunk, hashes) in nodes.chunks(256).enumerate() {
            let mut k = vec![b'l', level as u8];
            k.extend_from_slice(&(chunk as u64).to_be_bytes());
            let stored = get(tree, &k, "log")?.ok_or_else(|| bad(format!("log level {level} chunk {chunk}"), "missing"))?;
            let expect: Vec<u8> = hashes.iter().flat_map(|h| h.0).collect();
            if stored.as_ref() != expect.as_slice() {
                return Err(bad(format!("log level {level} chunk {chunk}"), "stored node hashes differ from the transactions"));
            }
        }
    }
    let stored_chunks = tree.scan_prefix([b'l']).count();
    let expected_chunks: usize = log.levels().iter().map(|l| l.len().div_ceil(256)).sum();
    if stored_chunks != expected_chunks {
        return Err(bad("log", format!("{stored_chunks} node chunks stored, {expected_chunks} expected")));
    }
    Ok(StoreReport {
        height: Height(height),
        transactions: tx_count,
        subjects: records.len() as u64,
        log_root: log.root(),
        last_block_hash: parent,
    })
}
