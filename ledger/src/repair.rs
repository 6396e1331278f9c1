//! Reopening at the last complete block.
//!
//! A block is written by one sled batch and flushed before anyone hears of it,
//! and after `kill -9` sled recovers whole batches. A *failed* write is another
//! matter: when the disk fills (ENOSPC) or fails (EIO) in the middle of a flush,
//! sled 0.34 can recover part of the batch that was being written — the metadata
//! of the next block without its body, a log size ahead of the height, an issuer
//! index without the block's entries, subject records of a block that is not
//! there (seen on a full tmpfs: `ledger/tests/full_disk.rs`). Nothing of such a
//! block was ever acknowledged (the flush failed, so `commit` returned an error),
//! but refusing to start on it leaves the operator only a wipe and a resync.
//!
//! So every open runs [`check_tip`]: cheap checks that the recorded height is a
//! complete, certified block and that everything derived agrees with it and
//! nothing lies beyond it. If that fails (or the stored state cannot even be
//! read into memory), [`repair`] finds the last complete block — the highest
//! height up to which every block is present, canonical, chained and certified
//! and reproduces its header's roots — discards everything above it, and
//! rewrites whatever derived state (log nodes, transaction and issuer indexes,
//! subject records, governance records and membership changes, authorisations
//! and query records, metadata) differs from what the blocks give
//! ([`crate::replay::Replay`], the auditor's own re-derivation). Only what
//! differs is written, so a repair on a nearly full disk writes a few keys.
//!
//! Repair is for the node's own torn writes, not a verdict on a store: it never
//! runs on a store of another chain or another format (those are refused), it
//! trusts the block bodies a quorum certified without re-checking transaction
//! signatures, and it is never run by `yrd audit verify-ledger`, which reads a
//! store without changing it and reports the first inconsistency (a tampered
//! store is INCONSISTENT there; a node would cut it back to the last block
//! before the damage and fetch the rest from its peers).

use std::collections::BTreeMap;

use yrd_consensus::types::Height;

use crate::genesis::Genesis;
use crate::merkle;
use crate::replay::{height_key, read_certified_block, Parent, Replay};
use crate::store::{
    encode_tx_index, issuer_chunk_entries, log_key, tx_index_key, u64_of, Ledger, StoreError, LOG_CHUNK,
    META_HEIGHT, META_LOG_SIZE, TX_INDEX_ENTRY, TX_INDEX_PART,
};

/// Writes per batch while repairing: bounds the memory of one batch; a crash
/// between batches leaves a store the next open repairs again (blocks up to the
/// last complete one are never touched).
const REPAIR_BATCH_OPS: usize = 4096;

/// What a repair at open did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairReport {
    /// The height the metadata recorded before the repair, if readable.
    pub recorded_height: Option<Height>,
    /// The last complete block: the height of the store now.
    pub height: Height,
    /// The first inconsistency found at open (why the repair ran).
    pub reason: String,
    /// Why no block above `height` was kept (the first problem above it), if
    /// anything was stored there.
    pub stopped_at: Option<String>,
    /// What was discarded or rewritten, one line per kind of key.
    pub changes: Vec<String>,
}

impl std::fmt::Display for RepairReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let recorded = self.recorded_height.map_or("unreadable".to_string(), |h| h.to_string());
        write!(f, "store repaired to block {} (recorded height {recorded}; found: {})", self.height, self.reason)?;
        if let Some(s) = &self.stopped_at {
            write!(f, "; above it: {s}")?;
        }
        if self.changes.is_empty() {
            write!(f, "; nothing needed rewriting")
        } else {
            write!(f, "; {}", self.changes.join("; "))
        }
    }
}

/// Whether an error while loading a store is one [`repair`] may fix: the stored
/// data disagrees with itself or cannot be decoded. I/O errors (the disk is
/// still failing), another chain, another format and a bad genesis are not.
pub(crate) fn repairable(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Corrupt(_) | StoreError::Codec(_) | StoreError::Log(_) | StoreError::Sled(sled::Error::Corruption { .. })
    )
}

/// The checks at every open, on a loaded ledger (`indexed`: transaction-index
/// entries counted while loading). Returns the first problem. Cost: the tip
/// block's certificate and transaction ids, one scan of the issuer index (one
/// key per issuer and 64 sequence numbers) and a few dozen lookups.
pub(crate) fn check_tip(ledger: &Ledger, indexed: u64) -> Result<(), String> {
    let tree = ledger.tree();
    let height = ledger.height().0;
    let log_size = ledger.log_size();
    let err = |e: sled::Error| format!("read failed: {e}");
    // The tip: present, canonical, chained to its parent, certified.
    if height > 0 {
        let parent = if height > 1 {
            let header = ledger
                .header(Height(height - 1))
                .map_err(|e| format!("block {} header: {e}", height - 1))?
                .ok_or_else(|| format!("block {} header missing", height - 1))?;
            Parent { hash: header.hash().map_err(|e| e.to_string())?, timestamp_ms: header.timestamp_ms }
        } else {
            Parent::genesis(ledger.genesis())
        };
        let validators = ledger.validators_at(Height(height)).map_err(|e| format!("validators of block {height}: {e}"))?;
        let tip = read_certified_block(tree, height, &ledger.chain_id(), &validators, parent).map_err(|e| e.to_string())?;
        check_tip_governance(ledger, &tip.block)?;
        check_tip_consent(ledger, &tip.block)?;
        check_tip_subjects(ledger, &tip.block)?;
        if tip.block.header.log_size != log_size {
            return Err(format!("metadata log size {log_size}, block {height} says {}", tip.block.header.log_size));
        }
        // Its transaction index, part by part.
        let mut offset = tip.header_len + 8;
        let mut entries = Vec::with_capacity(tip.block.txs.len());
        for tx in &tip.block.txs {
            let bytes = tx.encode().map_err(|e| e.to_string())?;
            entries.push((crate::tx::TxId::of_canonical(&bytes), offset as u32, bytes.len() as u32));
            offset += bytes.len();
        }
        let expected = encode_tx_index(&entries);
        let mut prefix = vec![b'x'];
        prefix.extend_from_slice(&height.to_be_bytes());
        let stored = tree.scan_prefix(&prefix).count();
        if stored != expected.len() {
            return Err(format!("block {height} has {stored} transaction-index parts, its transactions need {}", expected.len()));
        }
        for (part, value) in expected.iter().enumerate() {
            match tree.get(tx_index_key(Height(height), part as u32)).map_err(err)? {
                Some(v) if v.as_ref() == value.as_slice() => {}
                _ => return Err(format!("block {height} transaction-index part {part} differs from its transactions")),
            }
        }
    } else {
        if log_size != 0 {
            return Err(format!("no block committed but the metadata log size is {log_size}"));
        }
        // Before the first block a store holds its metadata and nothing else:
        // anything more is part of a first block whose write failed (none of the
        // checks against the tip below can see it, there being no tip).
        if let Some(item) = tree.iter().find(|item| item.as_ref().map_or(true, |(k, _)| k.first() != Some(&b'm'))) {
            let (k, _) = item.map_err(err)?;
            let prefix = k.first().map_or("empty key".to_string(), |c| format!("'{}'", c.escape_ascii()));
            return Err(format!("{prefix} entry stored before the first block"));
        }
    }
    // Nothing beyond the tip.
    for prefix in [b'b', b'h', b'c', b'x'] {
        if let Some(item) = tree.scan_prefix([prefix]).next_back() {
            let (k, _) = item.map_err(err)?;
            let h = u64_of(k.get(1..9).unwrap_or_default(), "height").map_err(|e| e.to_string())?;
            if h > height {
                return Err(format!("'{}' entry for block {h} stored above the recorded height {height}", prefix as char));
            }
        }
    }
    if indexed != log_size {
        return Err(format!("the transaction index holds {indexed} entries for a log of {log_size}"));
    }
    // Log nodes: level l holds exactly log_size >> l complete nodes.
    if let Some(item) = tree.scan_prefix([b'l']).next_back() {
        let (k, _) = item.map_err(err)?;
        let top = k.get(1).copied().unwrap_or(u8::MAX);
        if top >= 64 || log_size >> top == 0 {
            return Err(format!("log nodes stored at level {top}, a log of {log_size} has none there"));
        }
    }
    for level in 0..64u8 {
        let nodes = log_size >> level;
        if nodes == 0 {
            break;
        }
        let last = match tree.scan_prefix([b'l', level]).next_back() {
            Some(item) => item.map_err(err)?,
            None => return Err(format!("no log nodes stored at level {level}")),
        };
        let chunk = u64_of(last.0.get(2..10).unwrap_or_default(), "log chunk").map_err(|e| e.to_string())?;
        let want_chunk = (nodes - 1) / LOG_CHUNK;
        let want_len = ((nodes - 1) % LOG_CHUNK + 1) as usize * 32;
        if chunk != want_chunk || last.1.len() != want_len {
            return Err(format!(
                "log level {level} ends with chunk {chunk} of {} bytes, a log of {log_size} ends with chunk {want_chunk} of {want_len}",
                last.1.len()
            ));
        }
    }
    if let Some(header) = ledger.last_header() {
        let root = merkle::root(ledger, log_size).map_err(|e| e.to_string())?;
        if root != header.log_root {
            return Err(format!("stored log nodes give root {root}, block {height} has {}", header.log_root));
        }
    }
    // Issuer index: one entry per committed transaction, each one committed.
    let mut issuer_entries = 0u64;
    for item in tree.scan_prefix([b'i']) {
        let (k, v) = item.map_err(err)?;
        let chunk = u64_of(k.get(33..).unwrap_or_default(), "issuer index chunk").map_err(|e| e.to_string())?;
        for (seq, id) in issuer_chunk_entries(&v, chunk).map_err(|e| e.to_string())? {
            if !ledger.id_known(&id) {
                return Err(format!("issuer index entry (sequence {seq}) names {id}, which is not committed"));
            }
            issuer_entries += 1;
        }
    }
    if issuer_entries != log_size {
        return Err(format!("the issuer index holds {issuer_entries} entries for a log of {log_size}"));
    }
    // Subject records: every chunk as its head's count gives it.
    crate::store::check_subject_chunks(tree)?;
    Ok(())
}

/// The governance state loaded from the store against the tip block `tip`
/// (height `h`): the tip's membership hash is the loaded membership's; nothing
/// is recorded above what the tip's write gives (a proposal, approval or
/// outcome of a later block; a membership change after `h + 1`); the tip's
/// write is all there (every proposal and approval of the tip block recorded,
/// no approved proposal due at `h + 1` left unsettled); every change of
/// membership has the applied proposal that made it and the other way round.
/// Cost: one pass over the proposal records (a few per governance change) and
/// the tip block's transactions.
fn check_tip_governance(ledger: &Ledger, tip: &crate::block::Block) -> Result<(), String> {
    use crate::governance::Outcome;
    let h = tip.header.height.0;
    let gov = ledger.gov();
    let hash = gov.membership_at(h).hash().map_err(|e| e.to_string())?;
    if hash != tip.header.membership {
        return Err(format!("stored membership changes give membership {hash} at block {h}, its header has {}", tip.header.membership));
    }
    let mut applied_at = std::collections::BTreeSet::new();
    for r in gov.proposals() {
        let above = r.height > h
            || r.approvals.iter().any(|a| a.height > h)
            || match &r.outcome {
                Outcome::Open => false,
                Outcome::Approved { height, .. } => *height > h,
                Outcome::Applied { height, effective, .. } | Outcome::Failed { height, effective, .. } => {
                    *height > h || *effective > h + 1
                }
            };
        if above {
            return Err(format!("governance record of proposal {} holds a block above the recorded height {h}", r.id));
        }
        match &r.outcome {
            Outcome::Approved { effective, .. } if *effective <= h + 1 => {
                return Err(format!("proposal {} due at height {effective} is not settled by block {h}", r.id));
            }
            Outcome::Applied { effective, .. } => {
                applied_at.insert(*effective);
            }
            _ => {}
        }
    }
    let changes: std::collections::BTreeSet<u64> = gov.timeline().map(|(e, _)| e).filter(|e| *e > 1).collect();
    if changes != applied_at {
        return Err(format!(
            "membership changes are stored from heights {changes:?}, applied proposals take effect at {applied_at:?}"
        ));
    }
    for tx in &tip.txs {
        let id = tx.id().map_err(|e| e.to_string())?;
        let recorded = match &tx.tx.body {
            crate::tx::TxBody::Propose(_) => gov.proposal(&id).is_some(),
            crate::tx::TxBody::Approve(a) => {
                gov.proposal(&a.proposal).is_some_and(|r| r.approvals.iter().any(|e| e.tx == id))
            }
            _ => true,
        };
        if !recorded {
            return Err(format!("governance transaction {id} of block {h} is not recorded"));
        }
    }
    Ok(())
}

/// The subject records against the tip block: each attestation of the tip is
/// an entry of its subject's record and each revocation's target is revoked by
/// it, and those entries sit in the stored entries tree under the head's root
/// (`Ledger::check_subject_at_tip`): a torn write of the `s`, `e` and `n` keys
/// is found at open. (The heads themselves are checked against the tip's
/// `subjects_root` when the map is rebuilt.)
fn check_tip_subjects(ledger: &Ledger, tip: &crate::block::Block) -> Result<(), String> {
    use crate::tx::TxBody;
    let h = tip.header.height;
    let mut touched: BTreeMap<crate::uscc::Uscc, Vec<u64>> = BTreeMap::new();
    for tx in &tip.txs {
        let id = tx.id().map_err(|e| e.to_string())?;
        match &tx.tx.body {
            TxBody::Attest(a) => {
                let (pos, _) = ledger
                    .subject_entry(&a.subject, &id, h)
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("attestation {id} of block {h} is not in the record of {}", a.subject))?;
                touched.entry(a.subject).or_default().push(pos);
            }
            TxBody::Revoke(r) => {
                let Some((target, th)) = ledger.committed_tx(&r.target).map_err(|e| e.to_string())? else {
                    return Err(format!("revocation {id} of block {h} targets {}, which is not stored", r.target));
                };
                let TxBody::Attest(a) = &target.tx.body else { continue };
                let (pos, e) = ledger
                    .subject_entry(&a.subject, &r.target, th)
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("{} is not in the record of {}", r.target, a.subject))?;
                if e.revoked.map(|(by, _)| by) != Some(id) {
                    return Err(format!("the record of {} does not show {} revoked by {id} of block {h}", a.subject, r.target));
                }
                touched.entry(a.subject).or_default().push(pos);
            }
            _ => {}
        }
    }
    for (subject, positions) in touched {
        ledger.check_subject_at_tip(&subject, &positions)?;
    }
    Ok(())
}

/// The consent indexes against the tip block (height `h`): every authorisation,
/// withdrawal and query record of the tip is recorded (its grant in `a`, its
/// withdrawal on that grant, its `q` entry), and nothing is recorded above `h`
/// (a grant or withdrawal of a later block, a `q` key of a later height). Cost:
/// one pass over the `a` and `q` keys (one per subject and lender, one per
/// subject and block with queries) and the tip's transactions.
fn check_tip_consent(ledger: &Ledger, tip: &crate::block::Block) -> Result<(), String> {
    use crate::tx::TxBody;
    let h = tip.header.height.0;
    let tree = ledger.tree();
    let err = |e: sled::Error| format!("read failed: {e}");
    for item in tree.scan_prefix([b'a']) {
        let (k, v) = item.map_err(err)?;
        let grants = crate::consent::decode_grants(&v).map_err(|e| format!("authorisation index: {e}"))?;
        let above = grants.iter().any(|g| g.height > h || g.withdrawn.is_some_and(|w| w.height > h));
        if above {
            return Err(format!("authorisation index {} holds a block above the recorded height {h}", hex::encode(&k)));
        }
    }
    for item in tree.scan_prefix([b'q']) {
        let (k, _) = item.map_err(err)?;
        let at = k.get(19..27).and_then(|b| u64_of(b, "height").ok()).unwrap_or(u64::MAX);
        if at > h {
            return Err(format!("query index {} names block {at}, above the recorded height {h}", hex::encode(&k)));
        }
    }
    let membership = ledger.membership_at(Height(h));
    for (i, tx) in tip.txs.iter().enumerate() {
        let id = tx.id().map_err(|e| e.to_string())?;
        let recorded = match &tx.tx.body {
            TxBody::Authorise(a) => {
                let lender = crate::consent::lender_name(&membership, &tx.tx.issuer).unwrap_or_default();
                ledger.grants(&a.subject, &lender).map_err(|e| e.to_string())?.iter().any(|g| g.id == id)
            }
            TxBody::Withdraw(w) => match ledger.committed_tx(&w.authorisation).map_err(|e| e.to_string())? {
                Some((auth, th)) => match &auth.tx.body {
                    TxBody::Authorise(a) => {
                        let lender =
                            crate::consent::lender_name(&ledger.membership_at(th), &auth.tx.issuer).unwrap_or_default();
                        ledger
                            .grants(&a.subject, &lender)
                            .map_err(|e| e.to_string())?
                            .iter()
                            .any(|g| g.withdrawn.is_some_and(|x| x.by == id))
                    }
                    _ => false,
                },
                None => false,
            },
            TxBody::RecordQueries(q) => q.entries.iter().enumerate().all(|(e, entry)| {
                tree.get(crate::consent::query_key(&entry.subject, h))
                    .ok()
                    .flatten()
                    .and_then(|v| crate::consent::decode_query_index(&v))
                    .is_some_and(|list| list.contains(&(i as u32, e as u16)))
            }),
            _ => true,
        };
        if !recorded {
            return Err(format!("consent transaction {id} of block {h} is not recorded in the consent indexes"));
        }
    }
    Ok(())
}

/// Repairs the store to its last complete block (see the module docs). `reason`
/// is the inconsistency that made the open fail.
pub(crate) fn repair(db: &sled::Db, tree: &sled::Tree, genesis: &Genesis, reason: String) -> Result<RepairReport, StoreError> {
    let chain = genesis.chain_id()?;
    let recorded = tree.get(META_HEIGHT)?.and_then(|v| u64_of(&v, "height").ok());
    // Highest height anything is stored at.
    let mut top = recorded.unwrap_or(0);
    for prefix in [b'b', b'h', b'c', b'x'] {
        if let Some(item) = tree.scan_prefix([prefix]).next_back() {
            let (k, _) = item?;
            if let Some(h) = k.get(1..9).and_then(|b| u64_of(b, "height").ok()) {
                top = top.max(h);
            }
        }
    }

    // Replay blocks from the first while they are complete. A block whose
    // transactions do not reproduce its header leaves the replay half-applied:
    // replay again up to the block before it.
    let mut writes = Writes::default();
    let mut first_problem = None;
    let (replay, height) = loop {
        let (replay, good, problem, tainted) = replay_blocks(tree, genesis, &chain, top, &mut writes)?;
        first_problem = first_problem.or(problem);
        if !tainted {
            break (replay, good);
        }
        top = good;
        writes = Writes::default();
    };
    let stopped_at = first_problem;

    let mut changes = Vec::new();
    // Blocks above the last complete one.
    let mut discarded = Vec::new();
    for prefix in [b'b', b'h', b'c'] {
        for item in tree.range(height_key(prefix, height + 1)..=height_key(prefix, u64::MAX)) {
            let (k, _) = item?;
            writes.delete(k.to_vec());
            discarded.push(u64_of(&k[1..9], "height")?);
        }
    }
    discarded.sort_unstable();
    discarded.dedup();
    if let (Some(first), Some(last)) = (discarded.first(), discarded.last()) {
        changes.push(if first == last {
            format!("discarded block {first}")
        } else {
            format!("discarded {} blocks ({first}–{last})", discarded.len())
        });
    }
    // Transaction-index parts of blocks above it.
    for item in tree.range(tx_index_key(Height(height + 1), 0)..=tx_index_key(Height(u64::MAX), u32::MAX)) {
        let (k, _) = item?;
        writes.x_fixed += 1;
        writes.delete(k.to_vec());
    }
    if writes.x_fixed > 0 {
        changes.push(format!("{} transaction-index parts rewritten or removed", writes.x_fixed));
    }
    // Derived state: write what differs, delete what the blocks do not give.
    let mut expected: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for ((level, chunk), bytes) in replay.log_chunks() {
        expected.insert(log_key(level, chunk).to_vec(), bytes);
    }
    let n = sync_prefix(tree, b'l', &expected, &mut writes)?;
    if n > 0 {
        changes.push(format!("{n} log-node chunks rewritten or removed"));
    }
    let expected: BTreeMap<Vec<u8>, Vec<u8>> = replay
        .issuer_chunks()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?
        .into_iter()
        .map(|(k, v)| (k.to_vec(), v))
        .collect();
    let n = sync_prefix(tree, b'i', &expected, &mut writes)?;
    if n > 0 {
        changes.push(format!("{n} issuer-index chunks rewritten or removed"));
    }
    let mut expected: [BTreeMap<Vec<u8>, Vec<u8>>; 3] = Default::default();
    for rec in replay.records.values() {
        for (k, v) in crate::store::record_kvs(rec)? {
            let slot = match k.first() {
                Some(b's') => 0,
                Some(b'e') => 1,
                _ => 2,
            };
            expected[slot].insert(k, v);
        }
    }
    let mut n = 0;
    for (slot, prefix) in [b's', b'e', b'n'].into_iter().enumerate() {
        n += sync_prefix(tree, prefix, &expected[slot], &mut writes)?;
    }
    if n > 0 {
        changes.push(format!("{n} subject record keys (heads, entry chunks, tree nodes) rewritten or removed"));
    }
    let n = sync_prefix(tree, b'g', &replay.gov_records().map_err(|e| StoreError::Corrupt(e.to_string()))?, &mut writes)?;
    if n > 0 {
        changes.push(format!("{n} governance proposal records rewritten or removed"));
    }
    let n = sync_prefix(tree, b'M', &replay.gov_memberships().map_err(|e| StoreError::Corrupt(e.to_string()))?, &mut writes)?;
    if n > 0 {
        changes.push(format!("{n} membership changes rewritten or removed"));
    }
    let n = sync_prefix(tree, b'a', &replay.consent_grants().map_err(|e| StoreError::Corrupt(e.to_string()))?, &mut writes)?;
    if n > 0 {
        changes.push(format!("{n} authorisation lists rewritten or removed"));
    }
    let n = sync_prefix(tree, b'q', replay.consent_queries(), &mut writes)?;
    if n > 0 {
        changes.push(format!("{n} query-record index entries rewritten or removed"));
    }
    // Metadata last.
    let log_size = replay.log.size();
    let stored_log_size = tree.get(META_LOG_SIZE)?.and_then(|v| u64_of(&v, "log size").ok());
    if recorded != Some(height) {
        changes.push(format!("recorded height {} → {height}", recorded.map_or("unreadable".into(), |h| h.to_string())));
    }
    if stored_log_size != Some(log_size) {
        changes.push(format!(
            "recorded log size {} → {log_size}",
            stored_log_size.map_or("unreadable".into(), |s| s.to_string())
        ));
    }
    writes.put(META_HEIGHT.to_vec(), height.to_be_bytes().to_vec());
    writes.put(META_LOG_SIZE.to_vec(), log_size.to_be_bytes().to_vec());
    writes.apply(tree)?;
    db.flush()?;
    Ok(RepairReport { recorded_height: recorded.map(Height), height: Height(height), reason, stopped_at, changes })
}

/// Replays blocks 1..=top while they are complete. Returns the replay, the last
/// complete height, the problem that stopped it (if it stopped below `top`,
/// or at `top + 1` when something is stored there), and whether the replay is
/// tainted (a block failed half-way through `Replay::apply`). Transaction-index
/// parts of replayed blocks that differ from their transactions go to `writes`.
fn replay_blocks(
    tree: &sled::Tree,
    genesis: &Genesis,
    chain: &yrd_consensus::crypto::Hash32,
    top: u64,
    writes: &mut Writes,
) -> Result<(Replay, u64, Option<String>, bool), StoreError> {
    let mut replay = Replay::new(genesis);
    let mut parent = Parent::genesis(genesis);
    for h in 1..=top {
        let validators = match replay.validators_at(h) {
            Ok(v) => v,
            Err(e) => return Ok((replay, h - 1, Some(e.to_string()), false)),
        };
        let certified = match read_certified_block(tree, h, chain, &validators, parent) {
            Ok(c) => c,
            Err(e) => return Ok((replay, h - 1, Some(e.to_string()), false)),
        };
        let entries = match replay.apply(h, &certified, &mut |_, _| Ok(())) {
            Ok(e) => e,
            Err(e) => return Ok((replay, h - 1, Some(e.to_string()), true)),
        };
        // This block's transaction index: exactly these parts.
        let parts = encode_tx_index(&entries);
        let mut prefix = vec![b'x'];
        prefix.extend_from_slice(&h.to_be_bytes());
        for item in tree.scan_prefix(&prefix) {
            let (k, v) = item?;
            let part = k.get(9..13).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])).unwrap_or(u32::MAX);
            let keep = k.len() == 13 && parts.get(part as usize).is_some_and(|p| p.as_slice() == v.as_ref());
            if !keep {
                writes.x_fixed += 1;
                writes.delete(k.to_vec());
            }
        }
        for (part, value) in parts.into_iter().enumerate() {
            debug_assert!(value.len() <= TX_INDEX_PART * TX_INDEX_ENTRY);
            let key = tx_index_key(Height(h), part as u32);
            if tree.get(key)?.is_none_or(|v| v.as_ref() != value.as_slice()) {
                writes.x_fixed += 1;
                writes.put(key.to_vec(), value);
            }
        }
        parent = Parent { hash: certified.hash, timestamp_ms: certified.block.header.timestamp_ms };
    }
    Ok((replay, top, None, false))
}

/// Makes the keys under `prefix` exactly `expected`; returns how many keys were
/// written or deleted.
fn sync_prefix(
    tree: &sled::Tree,
    prefix: u8,
    expected: &BTreeMap<Vec<u8>, Vec<u8>>,
    writes: &mut Writes,
) -> Result<usize, StoreError> {
    let mut changed = 0;
    for item in tree.scan_prefix([prefix]) {
        let (k, _) = item?;
        // Keys the blocks give are compared below.
        if !expected.contains_key(k.as_ref()) {
            changed += 1;
            writes.delete(k.to_vec());
        }
    }
    for (k, want) in expected {
        if tree.get(k)?.is_none_or(|v| v.as_ref() != want.as_slice()) {
            changed += 1;
            writes.put(k.clone(), want.clone());
        }
    }
    Ok(changed)
}

/// The repair's writes, applied in batches of [`REPAIR_BATCH_OPS`].
#[derive(Default)]
struct Writes {
    ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Transaction-index parts rewritten or removed.
    x_fixed: usize,
}

impl Writes {
    fn put(&mut self, k: Vec<u8>, v: Vec<u8>) {
        self.ops.push((k, Some(v)));
    }
    fn delete(&mut self, k: Vec<u8>) {
        self.ops.push((k, None));
    }
    fn apply(self, tree: &sled::Tree) -> Result<(), StoreError> {
        for chunk in self.ops.chunks(REPAIR_BATCH_OPS) {
            let mut batch = sled::Batch::default();
            for (k, v) in chunk {
                match v {
                    Some(v) => batch.insert(k.as_slice(), v.as_slice()),
                    None => batch.remove(k.as_slice()),
                }
            }
            tree.apply_batch(batch)?;
        }
        Ok(())
    }
}
