//! Re-deriving a store from its blocks.
//!
//! Everything in the store except the blocks and their certificates is derived
//! from them: the RFC 9162 log nodes, the subject records (and the subject map
//! over them), the per-block transaction index, the issuer index and the
//! governance state (proposal records, membership changes), the consent state
//! (authorisations per subject and lender, `a`; query records per subject and
//! block, `q`: docs/access.md). [`Replay`]
//! recomputes all of it, block by block, from nothing but the block bodies.
//! Two callers use this one implementation: the auditor (`audit::verify_tree`,
//! which compares the result with what is stored and trusts nothing) and the
//! repair at open (`repair`, which writes the result back after a torn write).
//! [`read_certified_block`] is the one reading of a stored block both share:
//! body, header and certificate present, canonical, chained and certified.

use std::collections::{BTreeMap, HashMap, HashSet};

use yrd_consensus::codec;
use yrd_consensus::crypto::Hash32;
use yrd_consensus::types::{Height, ValidatorSet};
use yrd_consensus::CommitCertificate;

use crate::audit::{bad, Inconsistency};
use crate::block::{Block, BlockHeader, MAX_CERTIFICATE_BYTES};
use crate::consent::{self, BlockConsent, ConsentSource, Grant, Refusal, Target};
use crate::genesis::Genesis;
use crate::governance::{GovState, Membership};
use crate::merkle::MemoryLog;
use crate::store::issuer_chunk_key;
use crate::subjects::{subject_key, SubjectEntry, SubjectMap, SubjectRecord};
use crate::tx::{SignedTransaction, TxBody, TxId, MAX_TX_BYTES};
use crate::uscc::Uscc;

/// The stored key of height `h` under a one-byte prefix (`b`, `h`, `c`).
pub(crate) fn height_key(prefix: u8, h: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = prefix;
    k[1..].copy_from_slice(&h.to_be_bytes());
    k
}

/// A stored block that passed [`read_certified_block`].
pub(crate) struct CertifiedBlock {
    pub block: Block,
    pub hash: Hash32,
    /// Length of the canonical header at the start of the block bytes (the
    /// transaction offsets of the `x` index count from the block's start).
    pub header_len: usize,
}

/// What the block before the one being read left behind.
#[derive(Clone, Copy)]
pub(crate) struct Parent {
    pub hash: Hash32,
    pub timestamp_ms: u64,
}

impl Parent {
    /// Block 1's parent: no hash, and the genesis time (block 1 must be later).
    pub fn genesis(genesis: &Genesis) -> Parent {
        Parent { hash: Hash32::default(), timestamp_ms: genesis.genesis_time_ms }
    }
}

/// Reads block `h` from `tree` and checks it: body, header and certificate
/// present and decodable, the body's bytes canonical, the stored header equal to
/// the body's, chain, height, parent hash, increasing timestamp, proposer of its
/// round, and a commit certificate of the validators over its hash.
pub(crate) fn read_certified_block(
    tree: &sled::Tree,
    h: u64,
    chain: &Hash32,
    validators: &ValidatorSet,
    parent: Parent,
) -> Result<CertifiedBlock, Inconsistency> {
    let at = |what: &str| format!("block {h} {what}");
    let get = |prefix: u8, what: &str| -> Result<sled::IVec, Inconsistency> {
        tree.get(height_key(prefix, h))
            .map_err(|e| bad(at(what), format!("read failed: {e}")))?
            .ok_or_else(|| bad(at(what), "missing"))
    };
    let bytes = get(b'b', "body")?;
    let block = Block::decode(&bytes, codec::MAX_ENCODED_BYTES).map_err(|e| bad(at("body"), e.to_string()))?;
    let again = block.encode().map_err(|e| bad(at("body"), e.to_string()))?;
    if again != bytes.as_ref() {
        return Err(bad(at("body"), "stored bytes are not the canonical encoding"));
    }
    let hb = get(b'h', "header")?;
    let header = BlockHeader::decode(&hb).map_err(|e| bad(at("header"), e.to_string()))?;
    if header != block.header {
        return Err(bad(at("header"), "stored header differs from the block's header"));
    }
    let hash = header.hash().map_err(|e| bad(at("header"), e.to_string()))?;
    if header.chain != *chain {
        return Err(bad(at("header"), format!("chain {} is not {}", header.chain, chain)));
    }
    if header.height != Height(h) {
        return Err(bad(at("header"), format!("says height {}", header.height)));
    }
    if header.parent != parent.hash {
        return Err(bad(at("header"), format!("parent {} but block {} hashes to {}", header.parent, h - 1, parent.hash)));
    }
    if header.timestamp_ms <= parent.timestamp_ms {
        let parent_is = if h == 1 { "the genesis time" } else { "its parent's" };
        return Err(bad(at("header"), format!("timestamp {} ms is not after {parent_is} ({} ms)", header.timestamp_ms, parent.timestamp_ms)));
    }
    let proposer = validators.proposer(header.height, header.round);
    if header.proposer != proposer {
        return Err(bad(
            at("header"),
            format!("proposer {} is not the proposer {} of round {}", header.proposer, proposer, header.round),
        ));
    }
    let cb = get(b'c', "certificate")?;
    let cert: CommitCertificate =
        codec::decode(&cb, MAX_CERTIFICATE_BYTES, "certificate").map_err(|e| bad(at("certificate"), e.to_string()))?;
    cert.verify(chain, validators, Height(h), &hash).map_err(|e| bad(at("certificate"), e.to_string()))?;
    let header_len = codec::encode(&header).map_err(|e| bad(at("header"), e.to_string()))?.len();
    Ok(CertifiedBlock { block, hash, header_len })
}

/// The derived state of the first blocks of a chain, rebuilt from their bodies.
pub(crate) struct Replay {
    /// Governance replayed from the blocks: the membership of every height
    /// (hence the validators who certify each block) and every proposal.
    pub gov: GovState,
    /// Every transaction so far, as log leaves (with every complete node).
    pub log: MemoryLog,
    /// The subject map over `records`.
    pub map: SubjectMap,
    /// Every subject's record.
    pub records: BTreeMap<Uscc, SubjectRecord>,
    /// The issuer index: entries per `i` key, in commit order (not yet sorted).
    pub issuer_index: BTreeMap<[u8; 41], Vec<(u64, TxId)>>,
    /// The subject of each attestation (revocations find their target here).
    subject_of: HashMap<TxId, Uscc>,
    seen_ids: HashSet<TxId>,
    /// Authorisations, withdrawals and query records, replayed.
    pub consent: ConsentReplay,
}

/// The consent state replayed from the blocks: what the `a` and `q` keys must
/// hold, and what withdrawals and query records are checked against (the same
/// rules, `consent::BlockConsent`, as a block's execution).
#[derive(Default)]
pub(crate) struct ConsentReplay {
    /// The grants of every (subject, lender) pair.
    pub grants: BTreeMap<(Uscc, String), Vec<Grant>>,
    /// Every authorisation: (subject, lender, height).
    authorisations: HashMap<TxId, (Uscc, String, u64)>,
    /// The query records of every (subject, height): the stored `q` values.
    pub queries: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Block timestamps by height (index 0 is height 1): query records name the
    /// height they were served at, and the rules read its time.
    times_ms: Vec<u64>,
}

impl ConsentReplay {
    /// What a withdrawal naming `id` finds (`seen`: `id` is an earlier transaction).
    fn target(&self, id: &TxId, seen: bool) -> Target {
        match self.authorisations.get(id) {
            Some((subject, lender, height)) => {
                Target::Authorisation { subject: *subject, lender: lender.clone(), height: *height }
            }
            None if seen => Target::Other,
            None => Target::Missing,
        }
    }
}

impl Replay {
    pub fn new(genesis: &Genesis) -> Replay {
        Replay {
            gov: GovState::new(genesis),
            log: MemoryLog::default(),
            map: SubjectMap::default(),
            records: BTreeMap::new(),
            issuer_index: BTreeMap::new(),
            subject_of: HashMap::new(),
            seen_ids: HashSet::new(),
            consent: ConsentReplay::default(),
        }
    }

    /// The validators who certify block `h` (the membership replayed so far).
    pub fn validators_at(&self, h: u64) -> Result<ValidatorSet, Inconsistency> {
        self.gov.validators_at(h).map_err(|e| bad(format!("block {h} validators"), e.to_string()))
    }

    /// Applies block `h`'s transactions in order and checks the header's
    /// membership hash, log size, log root and subjects root against the result;
    /// governance transactions are checked and applied in order, and the block's
    /// governance outcome taken in at the end. `check_tx` runs first on each
    /// transaction with the membership of height `h` (the auditor checks the
    /// stateless rules and the signature there; the repair, reading blocks a
    /// quorum certified, checks nothing more).
    ///
    /// On an error the replay is left half-applied: do not apply further blocks.
    ///
    /// Returns the block's transaction-index entries: (id, offset, length) of each
    /// transaction inside the block bytes.
    pub fn apply(
        &mut self,
        h: u64,
        certified: &CertifiedBlock,
        check_tx: &mut dyn FnMut(&Membership, &SignedTransaction) -> Result<(), String>,
    ) -> Result<Vec<(TxId, u32, u32)>, Inconsistency> {
        let block = &certified.block;
        let at = |what: &str| format!("block {h} {what}");
        let mut block_gov = self.gov.begin_block(h);
        let membership = block_gov.membership().clone();
        let membership_hash = membership.hash().map_err(|e| bad(at("header"), e.to_string()))?;
        if block.header.membership != membership_hash {
            return Err(bad(
                at("header"),
                format!(
                    "membership {} but the governance transactions before it give {}",
                    block.header.membership, membership_hash
                ),
            ));
        }
        let mut offset = certified.header_len + 8;
        let mut changed: BTreeMap<Uscc, ()> = BTreeMap::new();
        let mut tx_entries = Vec::with_capacity(block.txs.len());
        let mut consent_delta = {
            let seen = &self.seen_ids;
            let source = SeenSource { state: &self.consent, seen };
            let mut block_consent = BlockConsent::new(&source, h, block.header.timestamp_ms, membership.clone());
            for (i, tx) in block.txs.iter().enumerate() {
                let id = tx.id().map_err(|e| bad(format!("block {h} transaction {i}"), e.to_string()))?;
                block_consent.apply(tx, &id, i as u32).map_err(|r| match r {
                    Refusal::Invalid(e) => bad(format!("block {h} transaction {i}"), e.to_string()),
                    Refusal::Store(e) => e,
                })?;
            }
            block_consent.finish()
        };
        for (i, tx) in block.txs.iter().enumerate() {
            let loc = format!("block {h} transaction {i}");
            let tb = tx.encode().map_err(|e| bad(&loc, e.to_string()))?;
            if tb.len() > MAX_TX_BYTES {
                return Err(bad(&loc, format!("{} bytes, over the {MAX_TX_BYTES}-byte transaction limit", tb.len())));
            }
            check_tx(&membership, tx).map_err(|e| bad(&loc, e))?;
            let id = TxId::of_canonical(&tb);
            block_gov.apply(tx, &id, i as u32).map_err(|e| bad(&loc, e.to_string()))?;
            self.log.append(&tb);
            if !self.seen_ids.insert(id) {
                return Err(bad(&loc, format!("transaction {id} is already in an earlier block (replay)")));
            }
            if let TxBody::Authorise(a) = &tx.tx.body {
                let lender = consent::lender_name(&membership, &tx.tx.issuer)
                    .ok_or_else(|| bad(&loc, "authorisation signed by no lender's key"))?;
                self.consent.authorisations.insert(id, (a.subject, lender, h));
            }
            tx_entries.push((id, offset as u32, tb.len() as u32));
            offset += tb.len();
            self.issuer_index.entry(issuer_chunk_key(&tx.tx.issuer, tx.tx.sequence)).or_default().push((tx.tx.sequence, id));
            match &tx.tx.body {
                TxBody::Attest(a) => {
                    let rec =
                        self.records.entry(a.subject).or_insert_with(|| SubjectRecord { subject: a.subject, entries: vec![] });
                    rec.entries.push(SubjectEntry {
                        id,
                        height: Height(h),
                        issuer: tx.tx.issuer,
                        kind: a.kind,
                        valid_until_ms: a.valid_until_ms,
                        revoked: None,
                    });
                    changed.insert(a.subject, ());
                    self.subject_of.insert(id, a.subject);
                }
                TxBody::Revoke(r) => {
                    let records = &mut self.records;
                    let target = self.subject_of.get(&r.target).and_then(|s| records.get_mut(s)).and_then(|rec| {
                        let subject = rec.subject;
                        rec.entries.iter_mut().find(|e| e.id == r.target).map(|e| (subject, e))
                    });
                    match target {
                        Some((_, e)) if e.revoked.is_some() => {
                            return Err(bad(&loc, format!("revokes {} which is already revoked", r.target)))
                        }
                        // Execution looks a target up in the committed store only.
                        Some((_, e)) if e.height.0 >= h => {
                            return Err(bad(&loc, format!("revokes {} of the same block (its target must be committed first)", r.target)))
                        }
                        // The target's issuer by name, as it was when it signed
                        // (its key may have been rotated since).
                        Some((_, e))
                            if self.gov.membership_at(e.height.0).issuer_any(&e.issuer).map(|i| &i.name)
                                != membership.issuer(&tx.tx.issuer).map(|i| &i.name)
                                && !membership.issuer(&tx.tx.issuer).is_some_and(|i| i.may_revoke_any) =>
                        {
                            return Err(bad(&loc, format!("revokes {} of another issuer without authority", r.target)))
                        }
                        Some((subject, e)) => {
                            e.revoked = Some((id, r.reason));
                            changed.insert(subject, ());
                        }
                        None => {
                            return Err(bad(&loc, format!("revokes {} which is not an earlier attestation", r.target)))
                        }
                    }
                }
                TxBody::Propose(_) | TxBody::Approve(_) => {} // applied by block_gov above
                TxBody::Authorise(_) | TxBody::Withdraw(_) | TxBody::RecordQueries(_) => {} // by block_consent above
            }
        }
        // The block limits of validation (`Ledger::validate_block`), in force at h.
        let params = &membership.params;
        if block.txs.len() > params.max_block_txs as usize {
            return Err(bad(at("body"), format!("{} transactions, over the limit of {}", block.txs.len(), params.max_block_txs)));
        }
        if offset > params.max_block_bytes as usize {
            return Err(bad(at("body"), format!("{offset} bytes, over the limit of {}", params.max_block_bytes)));
        }
        let delta = block_gov.finish();
        let header = &block.header;
        if self.log.size() != header.log_size {
            return Err(bad(
                at("header"),
                format!("log size {} but the chain holds {} transactions", header.log_size, self.log.size()),
            ));
        }
        if self.log.root() != header.log_root {
            return Err(bad(at("header"), format!("log root {} but the transactions give {}", header.log_root, self.log.root())));
        }
        let mut changes = Vec::with_capacity(changed.len());
        for s in changed.keys() {
            let rec = &self.records[s];
            changes.push((subject_key(s), rec.value_hash().map_err(|e| bad(at("subjects"), e.to_string()))?));
        }
        self.map.apply(&changes);
        if self.map.root() != header.subjects_root {
            return Err(bad(
                at("header"),
                format!("subjects root {} but the records give {}", header.subjects_root, self.map.root()),
            ));
        }
        self.gov.apply(&delta);
        self.consent.grants.append(&mut consent_delta.grants);
        for (subject, entries) in &consent_delta.queries {
            self.consent.queries.insert(consent::query_key(subject, h), consent::encode_query_index(entries));
        }
        self.consent.times_ms.push(header.timestamp_ms);
        Ok(tx_entries)
    }

    /// The stored form of every authorisation list: `a ‖ subject ‖ lender → grants`.
    pub fn consent_grants(&self) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, Inconsistency> {
        let mut out = BTreeMap::new();
        for ((subject, lender), grants) in &self.consent.grants {
            let value = consent::encode_grants(grants).map_err(|e| bad("authorisation index", e.to_string()))?;
            out.insert(consent::grant_key(subject, lender), value);
        }
        Ok(out)
    }

    /// The stored form of every query-record index entry: `q ‖ subject ‖ height → positions`.
    pub fn consent_queries(&self) -> &BTreeMap<Vec<u8>, Vec<u8>> {
        &self.consent.queries
    }


    /// The stored form of every issuer-index chunk: entries sorted by sequence
    /// number. A sequence number used twice is an inconsistency.
    pub fn issuer_chunks(&self) -> Result<BTreeMap<[u8; 41], Vec<u8>>, Inconsistency> {
        let mut out = BTreeMap::new();
        for (key, entries) in &self.issuer_index {
            let mut sorted = entries.clone();
            sorted.sort_unstable_by_key(|(seq, _)| *seq);
            if let Some(w) = sorted.windows(2).find(|w| w[0].0 == w[1].0) {
                return Err(bad(
                    format!("issuer index chunk {}", hex::encode(key)),
                    format!("sequence number {} is used by {} and {}", w[0].0, w[0].1, w[1].1),
                ));
            }
            out.insert(*key, crate::store::encode_issuer_chunk(&sorted));
        }
        Ok(out)
    }

    /// The stored form of every proposal record: `g ‖ proposal id → record`.
    pub fn gov_records(&self) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, Inconsistency> {
        let mut out = BTreeMap::new();
        for rec in self.gov.proposals() {
            let mut key = vec![b'g'];
            key.extend_from_slice(&rec.id.0 .0);
            let value = codec::encode(rec).map_err(|e| bad("governance", e.to_string()))?;
            out.insert(key, value);
        }
        Ok(out)
    }

    /// The stored form of every membership change after the genesis:
    /// `M ‖ effective height → membership`.
    pub fn gov_memberships(&self) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, Inconsistency> {
        let mut out = BTreeMap::new();
        for (h, m) in self.gov.timeline().filter(|(h, _)| *h > 1) {
            let value = codec::encode(&**m).map_err(|e| bad("governance", e.to_string()))?;
            out.insert(height_key(b'M', h).to_vec(), value);
        }
        Ok(out)
    }

    /// The stored form of every log chunk: `(level, chunk) → node hashes`.
    pub fn log_chunks(&self) -> impl Iterator<Item = ((u8, u64), Vec<u8>)> + '_ {
        self.log.levels().iter().enumerate().flat_map(|(level, nodes)| {
            nodes
                .chunks(crate::store::LOG_CHUNK as usize)
                .enumerate()
                .map(move |(chunk, hashes)| ((level as u8, chunk as u64), hashes.iter().flat_map(|h| h.0).collect()))
        })
    }
}

/// The replayed consent state with the ids of every transaction before the
/// block (a withdrawal of a transaction that is not an authorisation is told
/// apart from one of a transaction that does not exist).
struct SeenSource<'a> {
    state: &'a ConsentReplay,
    seen: &'a HashSet<TxId>,
}

impl ConsentSource for SeenSource<'_> {
    type Error = Inconsistency;
    fn grants(&self, subject: &Uscc, lender: &str) -> Result<Vec<Grant>, Inconsistency> {
        Ok(self.state.grants.get(&(*subject, lender.to_string())).cloned().unwrap_or_default())
    }
    fn target(&self, id: &TxId) -> Result<Target, Inconsistency> {
        Ok(self.state.target(id, self.seen.contains(id)))
    }
    fn block_time_ms(&self, height: u64) -> Result<Option<u64>, Inconsistency> {
        Ok(height.checked_sub(1).and_then(|i| self.state.times_ms.get(i as usize)).copied())
    }
}
