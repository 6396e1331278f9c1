//! The sled store and the ledger state machine.
//!
//! One sled tree holds everything, under one-byte key prefixes, so that a block,
//! its certificate, its log nodes and every index it touches are written by one
//! atomic `apply_batch` and flushed (fsync) before [`Ledger::commit`] returns.
//! After a crash the store holds whole blocks or none.
//!
//! | prefix | key                         | value                                      |
//! |--------|-----------------------------|--------------------------------------------|
//! | `m`    | name                        | metadata: height, log size, chain id, genesis, store format |
//! | `b`    | height (u64 BE)             | the block, canonical bytes                 |
//! | `h`    | height (u64 BE)             | the block header, canonical bytes          |
//! | `c`    | height (u64 BE)             | the commit certificate                     |
//! | `l`    | level (u8) ‖ chunk (u64 BE) | up to 256 log node hashes of that level    |
//! | `x`    | height (u64 BE) ‖ part (u32 BE) | the block's transaction index, part p holding transactions 1024·p …: entries `tx id (32) ‖ offset u32 ‖ len u32` in the block bytes |
//! | `i`    | issuer key (32) ‖ seq / 64 (u64 BE) | the issuer's transactions with sequence numbers in that chunk of 64: entries `seq u64 BE ‖ tx id (32)`, sorted by seq — the issuer index and replay guard |
//! | `s`    | USCC (18)                   | the subject record's head: entry count and entries-tree root (subject index and map value; `store/subject_store.rs`) |
//! | `e`    | USCC (18) ‖ chunk (u64 BE)  | 64 entries of the subject record |
//! | `n`    | USCC (18) ‖ level (u8) ‖ chunk (u64 BE) | 256 complete nodes of the subject's entries tree at that level |
//! | `g`    | proposal id (32)            | a governance proposal record: approvals and outcome |
//! | `M`    | height (u64 BE)             | the membership in force from that height on (one per change) |
//! | `a`    | USCC (18) ‖ lender name     | the lender's authorisations for the subject, with their state (docs/access.md) |
//! | `q`    | USCC (18) ‖ height (u64 BE) | the query records about the subject in that block: entries `tx position u32 BE ‖ entry u16 BE` |
//!
//! Index keys per attestation: per subject the block touches, its `s`, the
//! `e` chunk(s) its new entries fall in and the `n` chunks of new nodes; the
//! transaction index costs one `x` key per 1,024 transactions and the issuer index
//! one `i` key per issuer and 64 sequence numbers the block uses. Every sled key
//! costs several microseconds of CPU (DESIGN.md; measured 6–12 µs here), so no
//! index has a key per transaction. Lookups by transaction id go through an
//! in-memory map from the first 8 bytes of the id to (height, position) — about
//! 20 bytes per transaction, rebuilt from `x` at open — and are confirmed against
//! the full id stored in `x`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use yrd_consensus::codec::{self, CodecError};
use yrd_consensus::crypto::{Hash32, PublicKey};
use yrd_consensus::types::{BlockHash, Height, Round, ValidatorIndex, ValidatorSet, ValidatorSetError};
use yrd_consensus::{CertificateError, CommitCertificate};

use crate::block::{Block, BlockHeader, MAX_CERTIFICATE_BYTES, MAX_HEADER_BYTES};
use crate::consent::{self, BlockConsent, ConsentDelta, Refusal as ConsentRefusal};

mod consent_index;
pub use consent_index::QueryRecordAt;
mod subject_store;
mod read_memo;
pub use read_memo::ReadMemo;
pub(crate) use subject_store::{check_subject_chunks, record_kvs};
pub use subject_store::SubjectHead;
use subject_store::{SubjectChanges, SubjectDelta};
use crate::genesis::Genesis;
use crate::governance::{BlockGov, GovDelta, GovState, Membership, ProposalRecord};
use crate::merkle::{self, MerkleError, NodeSource};
use crate::subjects::{subject_key, SubjectEntry, SubjectMap, SubjectProof};
use crate::tx::{RevocationReason, SignedTransaction, TxBody, TxId, MAX_TX_BYTES};
use crate::uscc::Uscc;
use crate::validate::{check_stateless, TxError};

/// Log node hashes per `l` key.
pub(crate) const LOG_CHUNK: u64 = 256;
/// Sequence numbers per issuer-index chunk (one `i` key).
pub(crate) const SEQ_CHUNK: u64 = 64;
/// Bytes of one issuer-index entry: sequence number (u64 BE) ‖ transaction id.
const ISSUER_ENTRY: usize = 40;
pub(crate) const META_HEIGHT: &[u8] = b"mheight";
pub(crate) const META_LOG_SIZE: &[u8] = b"mlogsize";
const META_CHAIN: &[u8] = b"mchain";
const META_GENESIS: &[u8] = b"mgenesis";
/// The layout of the keys and values below; stores of another format are refused.
pub(crate) const META_FORMAT: &[u8] = b"mformat";
/// Format 2: the issuer index in chunks of [`SEQ_CHUNK`]; format 3: the
/// transaction index per block (`x`) instead of a key per transaction; format 4:
/// governance (`g`, `M`) and the membership hash in block headers; format 5:
/// lenders in the membership, authorisations (`a`) and query records (`q`)
/// (docs/access.md); format 6: a subject record's map value commits to each
/// entry's hash (so proof files can redact entries), which changes every
/// header's `subjects_root`; format 7: a record is stored in chunks (`s`
/// head, `e` entries, `n` entries-tree nodes) and its value commits to the
/// RFC 9162 root over the entries' commitments, so that a page of a record is
/// proven alone and an append costs O(log n) (docs/proofs.md); format 8: the
/// same layout, but a lender's request signature covers the serving node's key
/// and consensus checks every query-record entry's signature (docs/access.md),
/// so query records of a format-7 chain would not verify.
pub const STORE_FORMAT: u64 = 8;
/// Transactions per part of a block's transaction index (one `x` key).
pub(crate) const TX_INDEX_PART: usize = 1024;
/// Bytes of one transaction-index entry: id ‖ offset u32 ‖ len u32.
pub(crate) const TX_INDEX_ENTRY: usize = 40;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage failure: {0}")]
    Sled(#[from] sled::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("this data directory belongs to chain {stored}, the genesis given is chain {given}")]
    WrongChain { stored: Hash32, given: Hash32 },
    #[error("invalid genesis: {0}")]
    Genesis(String),
    #[error("this data directory holds store format {found}, this yrd reads format {expected}; move the directory away and start the node with an empty one (it fetches the chain from its peers)")]
    Format { found: u64, expected: u64 },
    #[error("log: {0}")]
    Log(String),
    #[error("{0}")]
    NotFound(String),
    #[error("an earlier write to the store failed ({0}); nothing more is written through this handle — restart to reopen the store at its last complete block")]
    Failed(String),
}

/// Why a block was rejected.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("block is for chain {got}, expected {expected}")]
    WrongChain { expected: Hash32, got: Hash32 },
    #[error("block height {got}, expected {expected}")]
    WrongHeight { expected: Height, got: Height },
    #[error("block parent {got}, expected {expected}")]
    WrongParent { expected: BlockHash, got: BlockHash },
    #[error("block timestamp {got} ms is not after the parent's {parent} ms (block 1's: the genesis time)")]
    TimestampNotIncreasing { parent: u64, got: u64 },
    #[error("block has {got} transactions, more than the {max} allowed")]
    TooManyTxs { got: usize, max: u32 },
    #[error("block is {got} bytes, more than the {max} allowed")]
    TooLarge { got: usize, max: u32 },
    #[error("transaction {index} in the block is invalid: {error}")]
    InvalidTx { index: usize, error: TxError },
    #[error("transaction {index} appears twice in the block")]
    DuplicateInBlock { index: usize },
    #[error("header field {field} is {got}, the transactions give {expected}")]
    RootMismatch { field: &'static str, expected: String, got: String },
    #[error("proposer {got} is not the proposer {expected} of round {round}")]
    WrongProposer { round: Round, expected: ValidatorIndex, got: ValidatorIndex },
    #[error("certificate: {0}")]
    Certificate(#[from] CertificateError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// Where a transaction lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxLocation {
    pub height: Height,
    pub index: u32,
    offset: u32,
    len: u32,
}

/// A committed transaction as stored in its block ([`Ledger::logged_tx`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedTx {
    /// Its encoding as committed: SHA-256 of it is the id, its log leaf hash
    /// commits to it.
    pub bytes: Vec<u8>,
    pub height: Height,
    pub log_index: u64,
}

impl LoggedTx {
    pub fn decode(&self) -> Result<SignedTransaction, StoreError> {
        Ok(SignedTransaction::decode(&self.bytes)?)
    }
}

/// The status of an attestation at some time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Status {
    Active,
    /// `valid_from` has not come yet: the record is committed and not revoked,
    /// but does not apply before that time (`"not-yet-valid"`; not `"pending"`,
    /// which the API already uses for a submitted, not yet committed transaction).
    NotYetValid,
    /// `valid_until` has passed.
    Expired,
    Revoked { by: TxId, reason: RevocationReason },
    /// The transaction is itself a revocation.
    Revocation { target: TxId },
    /// A governance proposal or approval (its outcome is in the proposal record).
    Governance,
    /// An authorisation or a withdrawal (its state is in the authorisation index).
    Consent,
    /// A batch of query records.
    Queries,
}

impl Status {
    pub fn name(&self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::NotYetValid => "not-yet-valid",
            Status::Expired => "expired",
            Status::Revoked { .. } => "revoked",
            Status::Revocation { .. } => "revocation",
            Status::Governance => "governance",
            Status::Consent => "consent",
            Status::Queries => "queries",
        }
    }
}

/// A committed transaction with where it is and what became of it.
#[derive(Debug, Clone)]
pub struct TxRecord {
    pub id: TxId,
    pub tx: SignedTransaction,
    pub height: Height,
    pub index: u32,
    /// Position in the RFC 9162 log.
    pub log_index: u64,
    pub block_hash: BlockHash,
    pub block_time_ms: u64,
    pub status: Status,
}

/// The result of executing a block's transactions against the current state:
/// everything `commit` writes. Cached by block hash between validation and commit.
#[derive(Clone)]
struct Execution {
    header: BlockHeader,
    block_bytes: Vec<u8>,
    locations: Vec<(TxId, TxLocation)>,
    log_nodes: Vec<(u8, u64, Hash32)>,
    subjects: BTreeMap<Uscc, SubjectDelta>,
    /// (subject key, record value hash) for every changed subject.
    subject_changes: Vec<([u8; 32], Hash32)>,
    issuer_keys: Vec<(PublicKey, u64, TxId)>,
    /// Proposal records and the next height's membership, if they change.
    gov: GovDelta,
    /// Authorisation lists rewritten and query records by subject.
    consent: ConsentDelta,
}

/// Outcome of building a block from candidates: the block, and the candidates
/// that were left out with the reason.
pub struct Built {
    pub block: Block,
    pub rejected: Vec<(TxId, TxError)>,
}

/// The ledger: genesis, sled store, in-memory subject map.
pub struct Ledger {
    db: sled::Db,
    tree: sled::Tree,
    genesis: Genesis,
    chain: Hash32,
    /// The membership at every height, and every governance proposal.
    gov: GovState,
    height: Height,
    log_size: u64,
    last_header: Option<BlockHeader>,
    last_hash: BlockHash,
    subjects: SubjectMap,
    /// The highest sequence number each issuer has used (from the `i` index at
    /// open, then kept up to date): a higher one needs no index lookup.
    max_sequence: HashMap<PublicKey, u64>,
    /// Transaction ids to positions (see [`TxIndex`]).
    tx_index: TxIndex,
    pending: Mutex<HashMap<BlockHash, Execution>>,
    /// What the repair at open did, if there was one.
    repaired: Option<crate::repair::RepairReport>,
    /// Set when a block write failed: no further writes through this handle.
    failed: Option<String>,
    /// Test builds only: tear the next block's batch (see [`crate::fault`]).
    #[cfg(feature = "failpoints")]
    tear: Option<crate::fault::Tear>,
}

fn height_key(prefix: u8, h: Height) -> [u8; 9] {
    crate::replay::height_key(prefix, h.0)
}

/// The `x` key of part `part` of block `h`'s transaction index.
pub(crate) fn tx_index_key(h: Height, part: u32) -> [u8; 13] {
    let mut k = [0u8; 13];
    k[0] = b'x';
    k[1..9].copy_from_slice(&h.0.to_be_bytes());
    k[9..].copy_from_slice(&part.to_be_bytes());
    k
}

/// The `x` values of a block whose transactions have these (id, offset, len).
pub(crate) fn encode_tx_index(entries: &[(TxId, u32, u32)]) -> Vec<Vec<u8>> {
    entries
        .chunks(TX_INDEX_PART)
        .map(|part| {
            let mut v = Vec::with_capacity(part.len() * TX_INDEX_ENTRY);
            for (id, offset, len) in part {
                v.extend_from_slice(&id.0 .0);
                v.extend_from_slice(&offset.to_be_bytes());
                v.extend_from_slice(&len.to_be_bytes());
            }
            v
        })
        .collect()
}

/// One entry of a transaction-index part (exactly [`TX_INDEX_ENTRY`] bytes):
/// (id, offset, len) — the inverse of [`encode_tx_index`].
fn decode_tx_index_entry(e: &[u8]) -> (TxId, u32, u32) {
    let mut id = [0u8; 32];
    id.copy_from_slice(&e[..32]);
    let u32_at = |i: usize| u32::from_be_bytes([e[i], e[i + 1], e[i + 2], e[i + 3]]);
    (TxId(Hash32(id)), u32_at(32), u32_at(36))
}

/// Where transactions are, by id: the first 8 bytes of an id map to its block
/// and position; ids sharing those 8 bytes with an earlier one (rare, or ground
/// on purpose) are kept whole in `overflow`. Every answer is confirmed against
/// the full id in the store.
#[derive(Default)]
struct TxIndex {
    by_prefix: HashMap<u64, (u64, u32)>,
    overflow: HashMap<TxId, (u64, u32)>,
}

impl TxIndex {
    fn prefix(id: &TxId) -> u64 {
        let mut p = [0u8; 8];
        p.copy_from_slice(&id.0 .0[..8]);
        u64::from_be_bytes(p)
    }

    fn insert(&mut self, id: &TxId, height: Height, index: u32) {
        match self.by_prefix.entry(Self::prefix(id)) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert((height.0, index));
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.overflow.insert(*id, (height.0, index));
            }
        }
    }

    /// The candidate position of `id` (to be confirmed).
    fn candidate(&self, id: &TxId) -> Option<(Height, u32)> {
        self.overflow.get(id).or_else(|| self.by_prefix.get(&Self::prefix(id))).map(|(h, i)| (Height(*h), *i))
    }
}

/// The `i` key of the chunk holding `seq`.
pub(crate) fn issuer_chunk_key(issuer: &PublicKey, seq: u64) -> [u8; 41] {
    let mut k = [0u8; 41];
    k[0] = b'i';
    k[1..33].copy_from_slice(&issuer.0);
    k[33..].copy_from_slice(&(seq / SEQ_CHUNK).to_be_bytes());
    k
}

/// The entries of an issuer-index chunk, checked: whole entries, sequence
/// numbers strictly increasing and all in the chunk `chunk`.
pub(crate) fn issuer_chunk_entries(v: &[u8], chunk: u64) -> Result<Vec<(u64, TxId)>, StoreError> {
    if v.is_empty() || !v.len().is_multiple_of(ISSUER_ENTRY) || v.len() > ISSUER_ENTRY * SEQ_CHUNK as usize {
        return Err(StoreError::Corrupt(format!("issuer index chunk is {} bytes", v.len())));
    }
    let mut out: Vec<(u64, TxId)> = Vec::with_capacity(v.len() / ISSUER_ENTRY);
    for e in v.chunks_exact(ISSUER_ENTRY) {
        let seq = u64_of(&e[..8], "sequence")?;
        let mut id = [0u8; 32];
        id.copy_from_slice(&e[8..]);
        if seq / SEQ_CHUNK != chunk || out.last().is_some_and(|(last, _)| *last >= seq) {
            return Err(StoreError::Corrupt(format!("issuer index chunk {chunk} holds sequence {seq} out of place")));
        }
        out.push((seq, TxId(Hash32(id))));
    }
    Ok(out)
}

/// Encodes issuer-index entries (sorted by sequence number).
pub(crate) fn encode_issuer_chunk(entries: &[(u64, TxId)]) -> Vec<u8> {
    let mut v = Vec::with_capacity(entries.len() * ISSUER_ENTRY);
    for (seq, id) in entries {
        v.extend_from_slice(&seq.to_be_bytes());
        v.extend_from_slice(&id.0 .0);
    }
    v
}

/// The transaction that used `seq` in an issuer-index chunk, without decoding it whole.
fn issuer_chunk_find(v: &[u8], seq: u64) -> Result<Option<TxId>, StoreError> {
    let entries = issuer_chunk_entries(v, seq / SEQ_CHUNK)?;
    Ok(entries.binary_search_by_key(&seq, |(s, _)| *s).ok().map(|i| entries[i].1))
}

pub(crate) fn subject_db_key(s: &Uscc) -> Vec<u8> {
    let mut k = Vec::with_capacity(19);
    k.push(b's');
    k.extend_from_slice(s.as_str().as_bytes());
    k
}

pub(crate) fn log_key(level: u8, chunk: u64) -> [u8; 10] {
    let mut k = [0u8; 10];
    k[0] = b'l';
    k[1] = level;
    k[2..].copy_from_slice(&chunk.to_be_bytes());
    k
}

pub(crate) fn u64_of(bytes: &[u8], what: &str) -> Result<u64, StoreError> {
    let arr: [u8; 8] = bytes.try_into().map_err(|_| StoreError::Corrupt(format!("{what} is not 8 bytes")))?;
    Ok(u64::from_be_bytes(arr))
}

/// Log nodes as seen from the store plus not-yet-written nodes of a block.
struct LogView<'a> {
    ledger: &'a Ledger,
    extra: BTreeMap<(u8, u64), Hash32>,
    size: u64,
}

impl NodeSource for LogView<'_> {
    type Error = StoreError;
    fn node(&self, level: u8, index: u64) -> Result<Hash32, StoreError> {
        if let Some(h) = self.extra.get(&(level, index)) {
            return Ok(*h);
        }
        self.ledger.stored_log_node(level, index)
    }
    fn tree_size(&self) -> Result<u64, StoreError> {
        Ok(self.size)
    }
}

impl NodeSource for Ledger {
    type Error = StoreError;
    fn node(&self, level: u8, index: u64) -> Result<Hash32, StoreError> {
        self.stored_log_node(level, index)
    }
    fn tree_size(&self) -> Result<u64, StoreError> {
        Ok(self.log_size)
    }
}

/// Log node `(level, index)` in its stored chunk.
fn log_node_in_chunk(chunk: &[u8], level: u8, index: u64) -> Result<Hash32, StoreError> {
    let off = (index % LOG_CHUNK) as usize * 32;
    let bytes = chunk
        .get(off..off + 32)
        .ok_or_else(|| StoreError::Corrupt(format!("log node ({level}, {index}) missing from its chunk")))?;
    let mut h = [0u8; 32];
    h.copy_from_slice(bytes);
    Ok(Hash32(h))
}

/// The bytes of the transaction at `loc` in its block's stored bytes.
fn tx_in_block(block: &[u8], loc: &TxLocation) -> Result<Vec<u8>, StoreError> {
    let start = loc.offset as usize;
    let bytes = block
        .get(start..start + loc.len as usize)
        .ok_or_else(|| StoreError::Corrupt(format!("transaction index points outside block {}", loc.height)))?;
    Ok(bytes.to_vec())
}

fn log_err<E: std::fmt::Display>(e: MerkleError<E>) -> StoreError {
    StoreError::Log(e.to_string())
}

/// New nodes of the log: (level, index, hash).
type LogNodes = Vec<(u8, u64, Hash32)>;

/// How `execute` treats an invalid transaction.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Leave it out (building a proposal), and stop before the block's bytes
    /// would pass this many (header allowance included).
    Skip { max_bytes: usize },
    /// Reject the block (validating one).
    Fail,
}

impl Ledger {
    /// Opens (or creates) the store in `dir` for `genesis`. Refuses a directory
    /// that belongs to another chain or holds another store format. Rebuilds the
    /// in-memory state (subject map, id map, highest sequence numbers) and checks
    /// that the recorded tip is a complete block with everything derived from it
    /// ([`crate::repair::check_tip`]); if it is not — a write torn by a crash or a
    /// full disk — the store is repaired to its last complete block first
    /// ([`crate::repair::repair`]; [`Ledger::repair_report`] says what was done).
    pub fn open(dir: &Path, genesis: Genesis) -> Result<Ledger, StoreError> {
        genesis.validate().map_err(|e| StoreError::Genesis(e.to_string()))?;
        let chain = genesis.chain_id()?;
        let db = crate::sled_open::open(&sled::Config::new().path(dir).cache_capacity(64 * 1024 * 1024), dir)?;
        let tree = db.open_tree("ledger")?;
        match tree.get(META_CHAIN)? {
            Some(stored) => {
                let stored = Hash32(
                    stored.as_ref().try_into().map_err(|_| StoreError::Corrupt("chain id is not 32 bytes".into()))?,
                );
                if stored != chain {
                    return Err(StoreError::WrongChain { stored, given: chain });
                }
                let format = match tree.get(META_FORMAT)? {
                    Some(v) => u64_of(&v, "store format")?,
                    None => 1,
                };
                if format != STORE_FORMAT {
                    return Err(StoreError::Format { found: format, expected: STORE_FORMAT });
                }
            }
            None => {
                let mut batch = sled::Batch::default();
                batch.insert(META_CHAIN, &chain.0[..]);
                batch.insert(META_GENESIS, genesis.to_json_pretty().as_bytes());
                batch.insert(META_FORMAT, &STORE_FORMAT.to_be_bytes()[..]);
                batch.insert(META_HEIGHT, &0u64.to_be_bytes()[..]);
                batch.insert(META_LOG_SIZE, &0u64.to_be_bytes()[..]);
                tree.apply_batch(batch)?;
                db.flush()?;
            }
        }
        let load = || Ledger::load(db.clone(), tree.clone(), genesis.clone(), chain);
        match load() {
            Ok(ledger) => Ok(ledger),
            Err(e) if crate::repair::repairable(&e) => {
                let report = crate::repair::repair(&db, &tree, &genesis, e.to_string())?;
                let mut ledger = load().map_err(|again| {
                    StoreError::Corrupt(format!("still inconsistent after repairing it to block {}: {again}", report.height))
                })?;
                ledger.repaired = Some(report);
                Ok(ledger)
            }
            Err(e) => Err(e),
        }
    }

    /// The in-memory state of an opened store, after checking its tip.
    fn load(
        db: sled::Db,
        tree: sled::Tree,
        genesis: Genesis,
        chain: Hash32,
    ) -> Result<Ledger, StoreError> {
        let height = Height(u64_of(&tree.get(META_HEIGHT)?.ok_or_else(|| StoreError::Corrupt("no height".into()))?, "height")?);
        let log_size = u64_of(&tree.get(META_LOG_SIZE)?.ok_or_else(|| StoreError::Corrupt("no log size".into()))?, "log size")?;
        let mut ledger = Ledger {
            db,
            tree,
            gov: GovState::new(&genesis),
            genesis,
            chain,
            height,
            log_size,
            last_header: None,
            last_hash: Hash32::ZERO,
            subjects: SubjectMap::new(),
            max_sequence: HashMap::new(),
            tx_index: TxIndex::default(),
            pending: Mutex::new(HashMap::new()),
            repaired: None,
            failed: None,
            #[cfg(feature = "failpoints")]
            tear: None,
        };
        if height.0 > 0 {
            let header = ledger.header(height)?.ok_or_else(|| StoreError::Corrupt(format!("no header at height {height}")))?;
            ledger.last_hash = header.hash()?;
            ledger.last_header = Some(header);
        }
        let mut entries = Vec::new();
        for item in ledger.tree.scan_prefix([b's']) {
            let (k, v) = item?;
            let name = std::str::from_utf8(&k[1..]).map_err(|_| StoreError::Corrupt(format!("subject key {} is not text", hex::encode(&k))))?;
            let subject = Uscc::parse(name).map_err(|e| StoreError::Corrupt(format!("subject key {name:?}: {e}")))?;
            let head: SubjectHead = codec::decode(&v, 64, "subject head")?;
            entries.push((subject_key(&subject), head.record_root(subject).value_hash()?));
        }
        ledger.subjects = SubjectMap::from_entries(&entries);
        let mut indexed = 0u64;
        for item in ledger.tree.scan_prefix([b'x']) {
            let (k, v) = item?;
            if k.len() != 13 || !v.len().is_multiple_of(TX_INDEX_ENTRY) || v.len() > TX_INDEX_PART * TX_INDEX_ENTRY {
                return Err(StoreError::Corrupt(format!("transaction index entry {} is malformed", hex::encode(&k))));
            }
            let height = Height(u64_of(&k[1..9], "height")?);
            let part = u32::from_be_bytes([k[9], k[10], k[11], k[12]]);
            for (i, e) in v.chunks_exact(TX_INDEX_ENTRY).enumerate() {
                let (id, _, _) = decode_tx_index_entry(e);
                ledger.tx_index.insert(&id, height, part * TX_INDEX_PART as u32 + i as u32);
                indexed += 1;
            }
        }
        // Governance: every membership change and proposal.
        let mut memberships = Vec::new();
        for item in ledger.tree.scan_prefix([b'M']) {
            let (k, v) = item?;
            let h = u64_of(k.get(1..).unwrap_or_default(), "membership height")?;
            memberships.push((h, codec::decode::<Membership>(&v, codec::MAX_ENCODED_BYTES, "membership")?));
        }
        let mut records = Vec::new();
        for item in ledger.tree.scan_prefix([b'g']) {
            let (_, v) = item?;
            records.push(codec::decode::<ProposalRecord>(&v, codec::MAX_ENCODED_BYTES, "proposal record")?);
        }
        ledger.gov = GovState::restore(&ledger.genesis, memberships, records);
        // The highest sequence number of every key that ever signed: issuers and
        // agencies of every membership, and the keys they retired.
        let mut signers: std::collections::BTreeSet<PublicKey> = std::collections::BTreeSet::new();
        for (_, m) in ledger.gov.timeline() {
            signers.extend(m.issuers.iter().map(|i| i.key));
            signers.extend(m.agencies.iter().map(|a| a.key));
            signers.extend(m.lenders.iter().map(|l| l.key));
            signers.extend(m.validators.iter().map(|v| v.key));
            signers.extend(m.observers.iter().map(|o| o.key));
            signers.extend(m.retired.iter().map(|r| r.key));
        }
        for issuer in signers {
            if let Some(seq) = ledger.stored_last_sequence(&issuer)? {
                ledger.max_sequence.insert(issuer, seq);
            }
        }
        if let Some(h) = &ledger.last_header {
            if h.subjects_root != ledger.subjects.root() {
                return Err(StoreError::Corrupt(format!(
                    "subject records give root {}, header {} has {}",
                    ledger.subjects.root(),
                    h.height,
                    h.subjects_root
                )));
            }
        }
        crate::repair::check_tip(&ledger, indexed).map_err(StoreError::Corrupt)?;
        Ok(ledger)
    }

    /// What the repair at open did, if the store needed one (see [`Ledger::open`]).
    pub fn repair_report(&self) -> Option<&crate::repair::RepairReport> {
        self.repaired.as_ref()
    }

    /// The ledger tree (for the checks and repair at open).
    pub(crate) fn tree(&self) -> &sled::Tree {
        &self.tree
    }

    /// Whether `id` is in the in-memory id map (first 8 bytes; not confirmed
    /// against the store).
    pub(crate) fn id_known(&self, id: &TxId) -> bool {
        self.tx_index.candidate(id).is_some()
    }

    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }
    pub fn chain_id(&self) -> Hash32 {
        self.chain
    }
    /// The governance state: memberships by height and proposals.
    pub fn gov(&self) -> &GovState {
        &self.gov
    }
    /// The membership in force at `height`.
    pub fn membership_at(&self, height: Height) -> Arc<Membership> {
        self.gov.membership_at(height.0).clone()
    }
    /// The membership in force for the next block.
    pub fn next_membership(&self) -> Arc<Membership> {
        self.membership_at(self.height.next())
    }
    /// The validators of `height`, for heights up to two above the last committed
    /// block (changes are known that far ahead; docs/governance.md).
    pub fn validators_at(&self, height: Height) -> Result<ValidatorSet, ValidatorSetError> {
        self.gov.validators_at(height.0)
    }
    /// Height of the last committed block (0 before the first).
    pub fn height(&self) -> Height {
        self.height
    }
    pub fn log_size(&self) -> u64 {
        self.log_size
    }
    pub fn last_hash(&self) -> BlockHash {
        self.last_hash
    }
    pub fn last_header(&self) -> Option<&BlockHeader> {
        self.last_header.as_ref()
    }
    pub fn subjects_root(&self) -> Hash32 {
        self.subjects.root()
    }
    /// The sled database, for other components' trees (e.g. consensus safety state).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    fn stored_log_node(&self, level: u8, index: u64) -> Result<Hash32, StoreError> {
        log_node_in_chunk(&self.log_chunk(level, index)?, level, index)
    }

    /// The stored chunk that holds log node `(level, index)`.
    fn log_chunk(&self, level: u8, index: u64) -> Result<sled::IVec, StoreError> {
        self.tree
            .get(log_key(level, index / LOG_CHUNK))?
            .ok_or_else(|| StoreError::Corrupt(format!("log node ({level}, {index}) missing")))
    }

    /// The header's canonical bytes, as stored (what proof files carry in hex).
    pub fn header_bytes(&self, height: Height) -> Result<Option<sled::IVec>, StoreError> {
        Ok(self.tree.get(height_key(b'h', height))?)
    }

    /// The commit certificate's canonical bytes, as stored.
    pub fn certificate_bytes(&self, height: Height) -> Result<Option<sled::IVec>, StoreError> {
        Ok(self.tree.get(height_key(b'c', height))?)
    }

    pub fn header(&self, height: Height) -> Result<Option<BlockHeader>, StoreError> {
        match self.tree.get(height_key(b'h', height))? {
            Some(v) => Ok(Some(BlockHeader::decode(&v)?)),
            None => Ok(None),
        }
    }

    pub fn block(&self, height: Height) -> Result<Option<Block>, StoreError> {
        match self.tree.get(height_key(b'b', height))? {
            Some(v) => Ok(Some(Block::decode(&v, codec::MAX_ENCODED_BYTES)?)),
            None => Ok(None),
        }
    }

    /// The block's canonical bytes, as stored (for sync responses).
    pub fn block_bytes(&self, height: Height) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tree.get(height_key(b'b', height))?.map(|v| v.to_vec()))
    }

    pub fn certificate(&self, height: Height) -> Result<Option<CommitCertificate>, StoreError> {
        match self.tree.get(height_key(b'c', height))? {
            Some(v) => Ok(Some(codec::decode(&v, MAX_CERTIFICATE_BYTES, "certificate")?)),
            None => Ok(None),
        }
    }

    pub fn tx_location(&self, id: &TxId) -> Result<Option<TxLocation>, StoreError> {
        let Some((height, index)) = self.tx_index.candidate(id) else { return Ok(None) };
        let part = index / TX_INDEX_PART as u32;
        let Some(v) = self.tree.get(tx_index_key(height, part))? else {
            return Err(StoreError::Corrupt(format!("transaction index of block {height} part {part} missing")));
        };
        let at = (index as usize % TX_INDEX_PART) * TX_INDEX_ENTRY;
        let Some(e) = v.get(at..at + TX_INDEX_ENTRY) else {
            return Err(StoreError::Corrupt(format!("transaction index of block {height} has no position {index}")));
        };
        let (stored, offset, len) = decode_tx_index_entry(e);
        if stored != *id {
            return Ok(None); // another id with the same first 8 bytes
        }
        Ok(Some(TxLocation { height, index, offset, len }))
    }

    /// Whether the issuer's sequence number was used, and by which transaction.
    pub fn sequence_used(&self, issuer: &PublicKey, seq: u64) -> Result<Option<TxId>, StoreError> {
        if self.max_sequence.get(issuer).is_none_or(|max| seq > *max) {
            return Ok(None);
        }
        match self.tree.get(issuer_chunk_key(issuer, seq))? {
            Some(v) => issuer_chunk_find(&v, seq),
            None => Ok(None),
        }
    }

    /// The highest sequence number the issuer has used, if any.
    pub fn last_sequence(&self, issuer: &PublicKey) -> Result<Option<u64>, StoreError> {
        Ok(self.max_sequence.get(issuer).copied())
    }

    /// [`Ledger::last_sequence`] read from the store.
    fn stored_last_sequence(&self, issuer: &PublicKey) -> Result<Option<u64>, StoreError> {
        let mut prefix = vec![b'i'];
        prefix.extend_from_slice(&issuer.0);
        match self.tree.scan_prefix(&prefix).next_back() {
            Some(item) => {
                let (k, v) = item?;
                let entries = issuer_chunk_entries(&v, u64_of(&k[33..], "issuer index chunk")?)?;
                Ok(entries.last().map(|(seq, _)| *seq))
            }
            None => Ok(None),
        }
    }

    /// A committed transaction as the log holds it: its stored bytes (the
    /// encoding its id and log leaf hash are computed from), its block and its
    /// log index — without decoding it, reading its subject's record or hashing
    /// its block's header (what proof builders and access checks need; see
    /// [`Ledger::tx_record`] for the status too).
    pub fn logged_tx(&self, id: &TxId) -> Result<Option<LoggedTx>, StoreError> {
        let Some(loc) = self.tx_location(id)? else { return Ok(None) };
        let bytes = self.tx_bytes_at(&loc)?;
        Ok(Some(LoggedTx { bytes, height: loc.height, log_index: self.first_log_index(loc.height)? + loc.index as u64 }))
    }

    /// The log index of the first transaction of the indexed block at `height`.
    fn first_log_index(&self, height: Height) -> Result<u64, StoreError> {
        let header = self.header(height)?.ok_or_else(|| StoreError::Corrupt(format!("indexed block {height} has no header")))?;
        Ok(header.first_log_index())
    }

    /// The stored bytes of the transaction at `loc`, cut from its block.
    fn tx_bytes_at(&self, loc: &TxLocation) -> Result<Vec<u8>, StoreError> {
        tx_in_block(&self.indexed_block(loc.height)?, loc)
    }

    /// The stored bytes of the block at `height`, which an index points to.
    fn indexed_block(&self, height: Height) -> Result<sled::IVec, StoreError> {
        self.tree.get(height_key(b'b', height))?.ok_or_else(|| StoreError::Corrupt(format!("indexed block {height} missing")))
    }

    fn tx_at(&self, loc: &TxLocation) -> Result<SignedTransaction, StoreError> {
        Ok(SignedTransaction::decode(&self.tx_bytes_at(loc)?)?)
    }

    /// A proof of the subject's record (or absence) against the current subjects root.
    pub fn subject_proof(&self, subject: &Uscc) -> SubjectProof {
        self.subjects.prove(&subject_key(subject))
    }

    /// A committed transaction with its location and status as of `now_ms`.
    pub fn tx_record(&self, id: &TxId, now_ms: u64) -> Result<Option<TxRecord>, StoreError> {
        let Some(loc) = self.tx_location(id)? else { return Ok(None) };
        let tx = self.tx_at(&loc)?;
        let header = self
            .header(loc.height)?
            .ok_or_else(|| StoreError::Corrupt(format!("indexed block {} has no header", loc.height)))?;
        let status = match &tx.tx.body {
            TxBody::Revoke(r) => Status::Revocation { target: r.target },
            TxBody::Propose(_) | TxBody::Approve(_) => Status::Governance,
            TxBody::Authorise(_) | TxBody::Withdraw(_) => Status::Consent,
            TxBody::RecordQueries(_) => Status::Queries,
            TxBody::Attest(a) => {
                let (_, entry) = self
                    .subject_entry(&a.subject, id, loc.height)?
                    .ok_or_else(|| StoreError::Corrupt(format!("{id} missing from its subject record")))?;
                entry_status(&entry, a.valid_from_ms, now_ms)
            }
        };
        Ok(Some(TxRecord {
            id: *id,
            tx,
            height: loc.height,
            index: loc.index,
            log_index: header.first_log_index() + loc.index as u64,
            block_hash: header.hash()?,
            block_time_ms: header.timestamp_ms,
            status,
        }))
    }

    /// Every attestation about `subject`, in commit order, with status as of `now_ms`.
    pub fn by_subject(&self, subject: &Uscc, now_ms: u64) -> Result<Vec<TxRecord>, StoreError> {
        let Some(rec) = self.subject_record(subject)? else { return Ok(Vec::new()) };
        let mut out = Vec::with_capacity(rec.entries.len());
        // The record read once (not once per entry, as `tx_record` would), each
        // block's header hashed once.
        let mut headers: HashMap<Height, (BlockHeader, BlockHash)> = HashMap::new();
        for e in &rec.entries {
            let loc = self
                .tx_location(&e.id)?
                .ok_or_else(|| StoreError::Corrupt(format!("subject {subject} names {}, which is not stored", e.id)))?;
            let tx = self.tx_at(&loc)?;
            let valid_from_ms = match &tx.tx.body {
                TxBody::Attest(a) => a.valid_from_ms,
                _ => return Err(StoreError::Corrupt(format!("subject {subject} names {}, which is not an attestation", e.id))),
            };
            if let std::collections::hash_map::Entry::Vacant(slot) = headers.entry(loc.height) {
                let header = self
                    .header(loc.height)?
                    .ok_or_else(|| StoreError::Corrupt(format!("indexed block {} has no header", loc.height)))?;
                let hash = header.hash()?;
                slot.insert((header, hash));
            }
            let (header, hash) = &headers[&loc.height];
            out.push(TxRecord {
                id: e.id,
                tx,
                height: loc.height,
                index: loc.index,
                log_index: header.first_log_index() + loc.index as u64,
                block_hash: *hash,
                block_time_ms: header.timestamp_ms,
                status: entry_status(e, valid_from_ms, now_ms),
            });
        }
        Ok(out)
    }

    /// Transactions signed by `issuer`, by sequence number, starting after `after`.
    pub fn by_issuer(
        &self,
        issuer: &PublicKey,
        after: Option<u64>,
        limit: usize,
        now_ms: u64,
    ) -> Result<Vec<TxRecord>, StoreError> {
        let mut out = Vec::new();
        let first = match after {
            None => 0,
            Some(u64::MAX) => return Ok(out),
            Some(a) => a + 1,
        };
        let start = issuer_chunk_key(issuer, first);
        let end = issuer_chunk_key(issuer, u64::MAX);
        'chunks: for item in self.tree.range(start..=end) {
            let (k, v) = item?;
            for (seq, id) in issuer_chunk_entries(&v, u64_of(&k[33..], "issuer index chunk")?)? {
                if seq < first {
                    continue;
                }
                if out.len() >= limit {
                    break 'chunks;
                }
                if let Some(r) = self.tx_record(&id, now_ms)? {
                    out.push(r);
                }
            }
        }
        Ok(out)
    }

    /// RFC 9162 root of the log at `size`.
    pub fn log_root(&self, size: u64) -> Result<Hash32, StoreError> {
        merkle::root(self, size).map_err(log_err)
    }

    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash32>, StoreError> {
        merkle::inclusion_proof(self, index, size).map_err(log_err)
    }

    pub fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Vec<Hash32>, StoreError> {
        merkle::consistency_proof(self, size1, size2).map_err(log_err)
    }

    /// Stateful rules 6–7 for one transaction, given what earlier transactions of
    /// the same block already claimed.
    ///
    /// A replay is a transaction whose id is in the transaction index (an
    /// in-memory lookup that reads the store only for a candidate); whether a
    /// revocation's target is already revoked is read from its subject's entry.
    fn check_stateful(
        &self,
        tx: &SignedTransaction,
        id: &TxId,
        overlay: &Overlay,
        gov: &BlockGov<'_>,
        consent: &BlockConsent<'_, Ledger>,
    ) -> Result<Result<(), TxError>, StoreError> {
        match self.check_stateful_inner(tx, id, overlay, gov, consent) {
            Ok(()) => Ok(Ok(())),
            Err(Refusal::Invalid(e)) => Ok(Err(e)),
            Err(Refusal::Store(e)) => Err(e),
        }
    }

    fn check_stateful_inner(
        &self,
        tx: &SignedTransaction,
        id: &TxId,
        overlay: &Overlay,
        gov: &BlockGov<'_>,
        consent: &BlockConsent<'_, Ledger>,
    ) -> Result<(), Refusal> {
        if overlay.ids.contains_key(id) {
            return Err(Refusal::Invalid(TxError::Duplicate(*id)));
        }
        if self.tx_location(id)?.is_some() {
            return Err(Refusal::Invalid(TxError::Duplicate(*id)));
        }
        let t = &tx.tx;
        let membership = self.gov.membership_at(overlay.height.0);
        let signer_name = || {
            membership
                .issuer_any(&t.issuer)
                .map(|i| i.name.clone())
                .or_else(|| membership.agency(&t.issuer).map(|a| a.name.clone()))
                .unwrap_or_default()
        };
        if let Some(by) = overlay.seqs.get(&(t.issuer, t.sequence)) {
            return Err(Refusal::Invalid(TxError::SequenceUsed { issuer: signer_name(), sequence: t.sequence, by: *by }));
        }
        if let Some(by) = self.sequence_used(&t.issuer, t.sequence)? {
            return Err(Refusal::Invalid(TxError::SequenceUsed { issuer: signer_name(), sequence: t.sequence, by }));
        }
        if let TxBody::Revoke(r) = &t.body {
            let loc = self.tx_location(&r.target)?.ok_or(Refusal::Invalid(TxError::TargetUnknown(r.target)))?;
            let target = self.tx_at(&loc)?;
            let TxBody::Attest(a) = &target.tx.body else {
                return Err(Refusal::Invalid(TxError::TargetNotAttestation(r.target)));
            };
            let revoker = membership.issuer(&t.issuer).ok_or(Refusal::Invalid(TxError::UnknownIssuer(t.issuer)))?;
            // The target's issuer is known by name: the issuer it was when it signed
            // (its key may have been rotated since).
            let target_issuer = self
                .gov
                .membership_at(loc.height.0)
                .issuer_any(&target.tx.issuer)
                .map(|i| i.name.clone())
                .unwrap_or_default();
            if target_issuer != revoker.name && !revoker.may_revoke_any {
                return Err(Refusal::Invalid(TxError::NotAuthorised { issuer: revoker.name.clone(), target: r.target, target_issuer }));
            }
            if let Some(by) = overlay.revoked.get(&r.target) {
                return Err(Refusal::Invalid(TxError::AlreadyRevoked { target: r.target, by: *by }));
            }
            let entry = self.subject_entry(&a.subject, &r.target, loc.height)?;
            if let Some(by) = entry.and_then(|(_, e)| e.revoked.map(|(by, _)| by)) {
                return Err(Refusal::Invalid(TxError::AlreadyRevoked { target: r.target, by }));
            }
        }
        gov.check(tx, id).map_err(|e| Refusal::Invalid(e.into()))?;
        consent.check(tx).map_err(|r| match r {
            ConsentRefusal::Invalid(e) => Refusal::Invalid(TxError::Consent(e)),
            ConsentRefusal::Store(e) => Refusal::Store(e),
        })?;
        Ok(())
    }

    /// Checks a transaction against the committed state (mempool admission), as
    /// if it went into the next block: rules that depend on a block's time
    /// (authorisations' validity, query records) use the last committed block's
    /// timestamp, never the node's clock, so every node gives the same verdict.
    /// `Ok(verdict)`, or `Err` if the store could not be read (a storage
    /// failure, never a verdict on the transaction). The signature is NOT
    /// checked here; callers verify it first (see `validate::check_untrusted_bytes`).
    pub fn check_tx(&self, tx: &SignedTransaction, id: &TxId) -> Result<Result<(), TxError>, StoreError> {
        let next = self.height.next();
        let gov = self.gov.begin_block(next.0);
        if let Err(e) = check_stateless(gov.membership(), &self.chain, tx) {
            return Ok(Err(e));
        }
        let last = self.last_header.as_ref().map_or(self.genesis.genesis_time_ms, |h| h.timestamp_ms);
        let consent = BlockConsent::new(self, next.0, last, gov.membership().clone());
        self.check_stateful(tx, id, &Overlay::new(next), &gov, &consent)
    }

    /// Builds the next block from candidate transactions (already signature-checked),
    /// leaving out any that are invalid against the state, within the chain's
    /// `max_block_txs` and `max_block_bytes`.
    pub fn build_block(
        &self,
        candidates: Vec<SignedTransaction>,
        proposer: ValidatorIndex,
        round: Round,
        timestamp_ms: u64,
    ) -> Result<Built, StoreError> {
        self.build_block_within(candidates, proposer, round, timestamp_ms, usize::MAX)
    }

    /// [`Ledger::build_block`], also within `max_bytes` of block bytes (a node
    /// passes what one consensus message can carry). The block is the longest
    /// prefix of the valid candidates that fits: a candidate that does not fit
    /// and every one after it stay out, neither in the block nor rejected (they
    /// wait for the next block).
    pub fn build_block_within(
        &self,
        candidates: Vec<SignedTransaction>,
        proposer: ValidatorIndex,
        round: Round,
        timestamp_ms: u64,
        max_bytes: usize,
    ) -> Result<Built, StoreError> {
        let parent_ts = self.last_header.as_ref().map_or(self.genesis.genesis_time_ms, |h| h.timestamp_ms);
        let timestamp_ms = timestamp_ms.max(parent_ts.saturating_add(1));
        let params = &self.next_membership().params;
        let max = params.max_block_txs as usize;
        let max_bytes = max_bytes.min(params.max_block_bytes as usize);
        let mut candidates = candidates;
        candidates.truncate(max);
        let mode = Mode::Skip { max_bytes };
        let (exec, rejected, kept) = match self.execute(&candidates, proposer, round, timestamp_ms, mode, &|_| true) {
            Ok(v) => v,
            Err(BlockError::Store(e)) => return Err(e),
            Err(e) => return Err(StoreError::Corrupt(format!("building a block failed: {e}"))),
        };
        let mut slots: Vec<Option<SignedTransaction>> = candidates.into_iter().map(Some).collect();
        let txs = kept.into_iter().filter_map(|i| slots.get_mut(i).and_then(Option::take)).collect();
        let block = Block { header: exec.header.clone(), txs };
        let hash = exec.header.hash()?;
        self.cache_execution(hash, exec);
        Ok(Built { block, rejected })
    }

    /// Validates a proposed block: header fields, every transaction (signatures
    /// are checked unless `sig_verified` says the id was verified before), and
    /// the roots. The execution is cached for `commit`.
    pub fn validate_block(&self, block: &Block, sig_verified: &dyn Fn(&TxId) -> bool) -> Result<BlockHash, BlockError> {
        let h = &block.header;
        if h.chain != self.chain {
            return Err(BlockError::WrongChain { expected: self.chain, got: h.chain });
        }
        if h.height != self.height.next() {
            return Err(BlockError::WrongHeight { expected: self.height.next(), got: h.height });
        }
        if h.parent != self.last_hash {
            return Err(BlockError::WrongParent { expected: self.last_hash, got: h.parent });
        }
        // Block 1's parent time is the genesis time: no block is older than its chain.
        let parent_ts = self.last_header.as_ref().map_or(self.genesis.genesis_time_ms, |p| p.timestamp_ms);
        if h.timestamp_ms <= parent_ts {
            return Err(BlockError::TimestampNotIncreasing { parent: parent_ts, got: h.timestamp_ms });
        }
        let set = self.validators_at(h.height).map_err(|e| StoreError::Corrupt(format!("validator set: {e}")))?;
        let expected_proposer = set.proposer(h.height, h.round);
        if h.proposer != expected_proposer {
            return Err(BlockError::WrongProposer { round: h.round, expected: expected_proposer, got: h.proposer });
        }
        let params = self.next_membership().params.clone();
        if block.txs.len() > params.max_block_txs as usize {
            return Err(BlockError::TooManyTxs { got: block.txs.len(), max: params.max_block_txs });
        }
        let hash = h.hash()?;
        if self.cached_matches(&hash, block)? {
            return Ok(hash);
        }
        let (exec, _, _) = self.execute(&block.txs, h.proposer, h.round, h.timestamp_ms, Mode::Fail, sig_verified)?;
        let e = &exec.header;
        let checks: [(&'static str, String, String); 5] = [
            ("tx_count", e.tx_count.to_string(), h.tx_count.to_string()),
            ("log_size", e.log_size.to_string(), h.log_size.to_string()),
            ("log_root", e.log_root.to_hex(), h.log_root.to_hex()),
            ("subjects_root", e.subjects_root.to_hex(), h.subjects_root.to_hex()),
            ("membership", e.membership.to_hex(), h.membership.to_hex()),
        ];
        for (field, expected, got) in checks {
            if expected != got {
                return Err(BlockError::RootMismatch { field, expected, got });
            }
        }
        if exec.block_bytes.len() > params.max_block_bytes as usize {
            return Err(BlockError::TooLarge { got: exec.block_bytes.len(), max: params.max_block_bytes });
        }
        self.cache_execution(hash, exec);
        Ok(hash)
    }

    /// Whether `block`'s body is the one its header commits to: the header is for
    /// the next height, and its transaction count, log size and log root are those
    /// of this body appended to our log. A certificate signs the header only, so a
    /// body that came with one (sync, a relayed proposal or certified block) may
    /// have been swapped on the way; this tells such a body (the sender's fault)
    /// from a block that is itself invalid (a verdict on the quorum or proposer
    /// that signed it). `false` for a header of another height.
    pub fn body_matches_header(&self, block: &Block) -> Result<bool, StoreError> {
        let h = &block.header;
        let n = block.txs.len() as u64;
        if h.height != self.height.next()
            || h.parent != self.last_hash
            || u64::from(h.tx_count) != n
            || self.log_size.checked_add(n) != Some(h.log_size)
        {
            return Ok(false);
        }
        let mut leaves = Vec::with_capacity(block.txs.len());
        for tx in &block.txs {
            leaves.push(merkle::leaf_hash(&tx.encode()?));
        }
        let (_, root) = self.log_after(&leaves)?;
        Ok(root == h.log_root)
    }

    /// The log's new nodes and root after appending `leaves` to it (nothing is
    /// written): what a block's header commits to.
    fn log_after(&self, leaves: &[Hash32]) -> Result<(LogNodes, Hash32), StoreError> {
        let log_nodes = merkle::append_nodes(self, self.log_size, leaves).map_err(log_err)?;
        let size = self.log_size + leaves.len() as u64;
        let view = LogView { ledger: self, extra: log_nodes.iter().map(|(l, i, h)| ((*l, *i), *h)).collect(), size };
        let root = merkle::root(&view, size).map_err(log_err)?;
        Ok((log_nodes, root))
    }

    /// Whether an execution of exactly this block (header and body) is cached.
    fn cached_matches(&self, hash: &BlockHash, block: &Block) -> Result<bool, CodecError> {
        let Ok(p) = self.pending.lock() else { return Ok(false) };
        match p.get(hash) {
            Some(exec) => Ok(exec.block_bytes == block.encode()?),
            None => Ok(false),
        }
    }

    /// Whether an execution of the block with this header hash is cached.
    ///
    /// For commit, the header hash alone decides it: an execution is cached only
    /// under the hash of the header it computed, whose log root (with the parent
    /// and height it extends) commits to the canonical bytes of every transaction
    /// of its body, so any body under that header is that body unless SHA-256
    /// collides. The body handed to `commit` is therefore not re-encoded to
    /// compare it (1–2 ms per full block, on the critical path of every height),
    /// and what is written is the executed body.
    fn cached_header(&self, hash: &BlockHash) -> bool {
        self.pending.lock().is_ok_and(|p| p.contains_key(hash))
    }

    /// The length of the block bytes of a cached execution (a block built or
    /// validated here), without encoding the block again.
    pub fn cached_block_len(&self, hash: &BlockHash) -> Option<usize> {
        self.pending.lock().ok()?.get(hash).map(|e| e.block_bytes.len())
    }

    fn cache_execution(&self, hash: BlockHash, exec: Execution) {
        if let Ok(mut p) = self.pending.lock() {
            if p.len() > 16 {
                p.clear();
            }
            p.insert(hash, exec);
        }
    }

    /// Runs the transactions against the state and computes the header.
    #[allow(clippy::type_complexity)]
    fn execute(
        &self,
        txs: &[SignedTransaction],
        proposer: ValidatorIndex,
        round: Round,
        timestamp_ms: u64,
        mode: Mode,
        sig_verified: &dyn Fn(&TxId) -> bool,
    ) -> Result<(Execution, Vec<(TxId, TxError)>, Vec<usize>), BlockError> {
        let height = self.height.next();
        let mut overlay = Overlay::new(height);
        let mut gov = self.gov.begin_block(height.0);
        let membership = gov.membership().clone();
        let mut consent = BlockConsent::new(self, height.0, timestamp_ms, membership.clone());
        let mut rejected = Vec::new();
        // (position in `txs`, transaction, id, canonical bytes)
        let mut accepted: Vec<(usize, &SignedTransaction, TxId, Vec<u8>)> = Vec::with_capacity(txs.len());
        // Block bytes so far, counting the header at its largest (building only).
        let mut block_len = MAX_HEADER_BYTES + 8;
        for (index, tx) in txs.iter().enumerate() {
            let bytes = tx.encode()?;
            if let Mode::Skip { max_bytes } = mode {
                if block_len + bytes.len() > max_bytes {
                    break;
                }
            }
            let id = TxId::of_canonical(&bytes);
            // Signature last (the costliest check), on its own: the signature rule never
            // batches, so this verdict is the one every other path gives. A storage
            // failure is not a verdict on the transaction: it fails the block.
            // The size limit of admission (`validate::check_untrusted_bytes`) holds in a
            // block too: a block's body is decoded under the block's limit only, and a
            // transaction over MAX_TX_BYTES committed here could not be read back
            // (`tx_at` decodes under the transaction limit), nor proven offline.
            let checked = if bytes.len() > MAX_TX_BYTES { Err(TxError::TooLarge { len: bytes.len() }) } else { Ok(()) }
                .and_then(|_| check_stateless(&membership, &self.chain, tx))
                .and_then(|_| if overlay.ids.contains_key(&id) { Err(TxError::Duplicate(id)) } else { Ok(()) });
            let verdict = match checked {
                Err(e) => Err(e),
                Ok(()) => self.check_stateful(tx, &id, &overlay, &gov, &consent)?,
            }
            .and_then(|_| {
                if sig_verified(&id) {
                    return Ok(());
                }
                tx.signature_fault().map_or(Ok(()), |f| Err(f.error()))
            });
            if let Err(error) = verdict {
                match mode {
                    Mode::Fail => return Err(BlockError::InvalidTx { index, error }),
                    Mode::Skip { .. } => {
                        rejected.push((id, error));
                        continue;
                    }
                }
            }
            // Governance effects (proposal records, approvals) apply in order.
            gov.apply(tx, &id, accepted.len() as u32).map_err(|e| BlockError::InvalidTx { index, error: e.into() })?;
            consent.apply(tx, &id, accepted.len() as u32).map_err(|r| match r {
                ConsentRefusal::Invalid(e) => BlockError::InvalidTx { index, error: e.into() },
                ConsentRefusal::Store(e) => BlockError::Store(e),
            })?;
            overlay.ids.insert(id, ());
            overlay.seqs.insert((tx.tx.issuer, tx.tx.sequence), id);
            if let TxBody::Revoke(r) = &tx.tx.body {
                overlay.revoked.insert(r.target, id);
            }
            block_len += bytes.len();
            accepted.push((index, tx, id, bytes));
        }
        // Log: append leaf hashes of the canonical transaction bytes.
        let leaves: Vec<Hash32> = accepted.iter().map(|(_, _, _, b)| merkle::leaf_hash(b)).collect();
        let (log_nodes, log_root) = self.log_after(&leaves)?;
        let new_size = self.log_size + leaves.len() as u64;

        // Subjects and issuer index.
        let mut changed: BTreeMap<Uscc, SubjectChanges> = BTreeMap::new();
        let mut issuer_keys = Vec::with_capacity(accepted.len());
        for (_, tx, id, _) in &accepted {
            issuer_keys.push((tx.tx.issuer, tx.tx.sequence, *id));
            match &tx.tx.body {
                TxBody::Attest(a) => {
                    changed.entry(a.subject).or_default().appended.push(SubjectEntry {
                        id: *id,
                        height,
                        issuer: tx.tx.issuer,
                        kind: a.kind,
                        valid_until_ms: a.valid_until_ms,
                        revoked: None,
                    });
                }
                TxBody::Propose(_) | TxBody::Approve(_) => {}
                TxBody::Authorise(_) | TxBody::Withdraw(_) | TxBody::RecordQueries(_) => {}
                TxBody::Revoke(r) => {
                    let loc = self.tx_location(&r.target)?.ok_or_else(|| StoreError::NotFound(r.target.to_hex()))?;
                    let target = self.tx_at(&loc)?;
                    if let TxBody::Attest(a) = &target.tx.body {
                        changed.entry(a.subject).or_default().revoked.push((r.target, loc.height, *id, r.reason));
                    }
                }
            }
        }
        let mut changes = Vec::with_capacity(changed.len());
        let mut subjects: BTreeMap<Uscc, SubjectDelta> = BTreeMap::new();
        for (subject, c) in &changed {
            let delta = self.subject_delta(subject, c)?;
            changes.push((subject_key(subject), delta.head.record_root(*subject).value_hash()?));
            subjects.insert(*subject, delta);
        }
        let subjects_root = self.subjects.root_with(&changes);

        let header = BlockHeader {
            chain: self.chain,
            height,
            parent: self.last_hash,
            proposer,
            round,
            timestamp_ms,
            tx_count: accepted.len() as u32,
            log_size: new_size,
            log_root,
            subjects_root,
            membership: membership.hash()?,
        };
        let gov = gov.finish();
        let consent = consent.finish();
        // Block bytes = header ‖ u64 count ‖ transactions: identical to
        // codec::encode(&Block), built by hand to learn each transaction's offset.
        let header_bytes = codec::encode(&header)?;
        let total: usize = header_bytes.len() + 8 + accepted.iter().map(|(_, _, _, b)| b.len()).sum::<usize>();
        let mut block_bytes = Vec::with_capacity(total);
        block_bytes.extend_from_slice(&header_bytes);
        block_bytes.extend_from_slice(&(accepted.len() as u64).to_be_bytes());
        let mut locations = Vec::with_capacity(accepted.len());
        let mut kept = Vec::with_capacity(accepted.len());
        for (index, (pos, _, id, bytes)) in accepted.into_iter().enumerate() {
            locations.push((
                id,
                TxLocation { height, index: index as u32, offset: block_bytes.len() as u32, len: bytes.len() as u32 },
            ));
            block_bytes.extend_from_slice(&bytes);
            kept.push(pos);
        }
        let subject_changes = changes;
        Ok((
            Execution { header, block_bytes, locations, log_nodes, subjects, subject_changes, issuer_keys, gov, consent },
            rejected,
            kept,
        ))
    }

    /// Commits a final block with its certificate: verifies both, writes the
    /// block, certificate, log nodes and indexes in one atomic batch, and flushes
    /// to disk before returning. If an execution of this header is cached (from
    /// `build_block` or `validate_block`), its body is what is written — the only
    /// body that header can have (see `cached_header`); otherwise the block is
    /// validated first.
    ///
    /// Returns the ids of the committed transactions, in block order.
    pub fn commit(&mut self, block: &Block, certificate: &CommitCertificate) -> Result<Vec<TxId>, BlockError> {
        let hash = block.header.hash()?;
        let set = self
            .validators_at(block.header.height)
            .map_err(|e| StoreError::Corrupt(format!("validator set of height {}: {e}", block.header.height)))?;
        certificate.verify(&self.chain, &set, block.header.height, &hash)?;
        if !self.cached_header(&hash) {
            self.validate_block(block, &|_| false)?;
        }
        let cached = self.pending.lock().ok().and_then(|mut p| p.remove(&hash));
        let exec = match cached {
            Some(e) if e.header.height == self.height.next() => e,
            _ => {
                self.validate_block(block, &|_| false)?;
                self.pending
                    .lock()
                    .ok()
                    .and_then(|mut p| p.remove(&hash))
                    .ok_or_else(|| StoreError::Corrupt("validated execution missing".into()))?
            }
        };
        let ids = exec.locations.iter().map(|(id, _)| *id).collect();
        // Stored (and served) in canonical form: the lowest-indexed quorum of
        // signers, so that every node serves the same file (crate::canonical_cert).
        self.write(exec, &crate::canonical_cert::canonical(certificate, set.quorum()))?;
        if let Ok(mut p) = self.pending.lock() {
            p.clear();
        }
        Ok(ids)
    }

    /// Takes a precommit that arrived after its block was committed: when it
    /// lowers the signer set of the stored certificate (crate::canonical_cert),
    /// the certificate is rewritten. Returns whether it was. Precommits for
    /// heights above the tip or more than `CANONICAL_CERT_WINDOW_BLOCKS` below
    /// it, for another block or round, or that do not verify change nothing. The
    /// rewrite is not flushed on its own (the next block's flush carries it):
    /// losing it leaves the previous certificate, which is just as valid.
    pub fn offer_precommit(&mut self, vote: &yrd_consensus::messages::SignedVote) -> Result<bool, StoreError> {
        let h = vote.vote.height;
        if let Some(e) = &self.failed {
            return Err(StoreError::Failed(e.clone()));
        }
        if h.0 == 0 || h > self.height || h.0 + crate::canonical_cert::CANONICAL_CERT_WINDOW_BLOCKS < self.height.0 {
            return Ok(false);
        }
        let Some(cert) = self.certificate(h)? else { return Ok(false) };
        let Ok(set) = self.validators_at(h) else { return Ok(false) };
        let Some(better) = crate::canonical_cert::improved(&cert, vote, &self.chain, &set) else { return Ok(false) };
        if better == cert {
            return Ok(false);
        }
        self.tree.insert(height_key(b'c', h), codec::encode(&better)?)?;
        Ok(true)
    }

    fn write(&mut self, exec: Execution, certificate: &CommitCertificate) -> Result<(), StoreError> {
        if let Some(e) = &self.failed {
            return Err(StoreError::Failed(e.clone()));
        }
        let height = exec.header.height;
        let mut batch = BlockBatch::default();
        batch.insert(&height_key(b'b', height)[..], exec.block_bytes);
        batch.insert(&height_key(b'h', height)[..], codec::encode(&exec.header)?);
        batch.insert(&height_key(b'c', height)[..], codec::encode(certificate)?);
        // Log nodes, grouped into chunks of 256 per level.
        let mut chunks: BTreeMap<(u8, u64), Vec<u8>> = BTreeMap::new();
        for (level, index, hash) in &exec.log_nodes {
            let chunk_id = (*level, index / LOG_CHUNK);
            let chunk = match chunks.entry(chunk_id) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(self.tree.get(log_key(chunk_id.0, chunk_id.1))?.map(|v| v.to_vec()).unwrap_or_default())
                }
            };
            let off = (index % LOG_CHUNK) as usize * 32;
            if chunk.len() != off {
                return Err(StoreError::Corrupt(format!(
                    "log chunk ({level}, {}) holds {} bytes, appending node {index} needs {off}",
                    chunk_id.1,
                    chunk.len()
                )));
            }
            chunk.extend_from_slice(&hash.0);
        }
        for ((level, chunk), bytes) in chunks {
            batch.insert(&log_key(level, chunk)[..], bytes);
        }
        let entries: Vec<(TxId, u32, u32)> = exec.locations.iter().map(|(id, l)| (*id, l.offset, l.len)).collect();
        for (part, value) in encode_tx_index(&entries).into_iter().enumerate() {
            batch.insert(&tx_index_key(height, part as u32)[..], value);
        }
        // Issuer index: merge this block's entries into their chunks.
        let mut chunks: BTreeMap<[u8; 41], Vec<(u64, TxId)>> = BTreeMap::new();
        for (issuer, seq, id) in &exec.issuer_keys {
            chunks.entry(issuer_chunk_key(issuer, *seq)).or_default().push((*seq, *id));
        }
        for (key, mut fresh) in chunks {
            let chunk = u64_of(&key[33..], "issuer index chunk")?;
            let mut entries = match self.tree.get(key)? {
                Some(v) => issuer_chunk_entries(&v, chunk)?,
                None => Vec::new(),
            };
            entries.append(&mut fresh);
            entries.sort_unstable_by_key(|(seq, _)| *seq);
            if entries.windows(2).any(|w| w[0].0 == w[1].0) {
                return Err(StoreError::Corrupt(format!("issuer index chunk {chunk} would hold a sequence number twice")));
            }
            batch.insert(&key[..], encode_issuer_chunk(&entries));
        }
        for (subject, delta) in &exec.subjects {
            self.write_subject(&mut batch, subject, delta)?;
        }
        for rec in &exec.gov.records {
            let mut key = vec![b'g'];
            key.extend_from_slice(&rec.id.0 .0);
            batch.insert(key, codec::encode(rec)?);
        }
        if let Some((h, m)) = &exec.gov.membership {
            batch.insert(&height_key(b'M', Height(*h))[..], codec::encode(m)?);
        }
        for ((subject, lender), grants) in &exec.consent.grants {
            batch.insert(consent::grant_key(subject, lender), consent::encode_grants(grants)?);
        }
        for (subject, entries) in &exec.consent.queries {
            batch.insert(consent::query_key(subject, height.0), consent::encode_query_index(entries));
        }
        batch.insert(META_HEIGHT, &height.0.to_be_bytes()[..]);
        batch.insert(META_LOG_SIZE, &exec.header.log_size.to_be_bytes()[..]);
        // From here on a failure leaves this handle's view of the store unknown
        // (sled may hold the batch in memory, or part of it on disk): refuse any
        // further write through it. The next open checks the tip and repairs.
        if let Err(e) = self.apply(batch) {
            self.failed = Some(e.to_string());
            return Err(e);
        }
        self.gov.apply(&exec.gov);
        self.subjects.apply(&exec.subject_changes);
        for (id, loc) in &exec.locations {
            self.tx_index.insert(id, height, loc.index);
        }
        for (issuer, seq, _) in &exec.issuer_keys {
            let max = self.max_sequence.entry(*issuer).or_insert(*seq);
            *max = (*max).max(*seq);
        }
        self.height = height;
        self.log_size = exec.header.log_size;
        self.last_hash = exec.header.hash()?;
        self.last_header = Some(exec.header);
        Ok(())
    }
}

impl Ledger {
    /// Why a block write through this handle failed, if one did. From then on
    /// nothing is written through it, and what sled shows may include part of
    /// the failed block: readers that answer clients check this first.
    pub fn write_failed(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    #[cfg(feature = "failpoints")]
    pub(crate) fn set_tear(&mut self, tear: crate::fault::Tear) {
        self.tear = Some(tear);
    }

    /// Writes one block's batch atomically and flushes it.
    fn apply(&mut self, batch: BlockBatch) -> Result<(), StoreError> {
        #[cfg(feature = "failpoints")]
        if let Some(tear) = self.tear.take() {
            return crate::fault::write_torn(&self.tree, &self.db, batch.0, tear);
        }
        let mut b = sled::Batch::default();
        for (k, v) in batch.0 {
            b.insert(k, v);
        }
        self.tree.apply_batch(b)?;
        self.db.flush()?;
        Ok(())
    }
}

/// The keys and values of one block's write, in the order they were added (a
/// list rather than a `sled::Batch` so that test builds can tear it, see
/// [`crate::fault`]).
#[derive(Default)]
pub(crate) struct BlockBatch(Vec<(Vec<u8>, Vec<u8>)>);

impl BlockBatch {
    fn insert(&mut self, key: impl AsRef<[u8]>, value: impl Into<Vec<u8>>) {
        self.0.push((key.as_ref().to_vec(), value.into()));
    }
}

/// Why a stateful check did not pass: the transaction breaks a rule, or the
/// store could not be read to tell.
enum Refusal {
    Invalid(TxError),
    Store(StoreError),
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Refusal {
        Refusal::Store(e)
    }
}

/// Claims made by earlier transactions of the block being executed.
struct Overlay {
    /// The height of the block being executed (or of the next block, for admission).
    height: Height,
    ids: HashMap<TxId, ()>,
    seqs: HashMap<(PublicKey, u64), TxId>,
    revoked: HashMap<TxId, TxId>,
}

impl Overlay {
    fn new(height: Height) -> Overlay {
        Overlay { height, ids: HashMap::new(), seqs: HashMap::new(), revoked: HashMap::new() }
    }
}

/// The status at `now_ms` of a subject entry whose attestation says it is
/// valid from `valid_from_ms` (docs/proofs.md step 13): revoked if revoked;
/// else not yet valid if `now_ms < valid_from_ms`; else expired if
/// `valid_until_ms ≤ now_ms`; else active. (`valid_until_ms > valid_from_ms`
/// is a rule of every attestation, so the last three never overlap.)
pub fn entry_status(e: &SubjectEntry, valid_from_ms: u64, now_ms: u64) -> Status {
    if let Some((by, reason)) = e.revoked {
        return Status::Revoked { by, reason };
    }
    if now_ms < valid_from_ms {
        return Status::NotYetValid;
    }
    match e.valid_until_ms {
        Some(until) if until <= now_ms => Status::Expired,
        _ => Status::Active,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(prefix: u64, rest: u8) -> TxId {
        let mut b = [rest; 32];
        b[..8].copy_from_slice(&prefix.to_be_bytes());
        TxId(Hash32(b))
    }

    #[test]
    fn tx_index_keeps_ids_that_share_a_prefix_apart() {
        let mut ix = TxIndex::default();
        let (a, b, c, d) = (id(7, 1), id(7, 2), id(7, 3), id(8, 1));
        ix.insert(&a, Height(1), 0);
        ix.insert(&b, Height(2), 5);
        ix.insert(&d, Height(2), 6);
        assert_eq!(ix.candidate(&a), Some((Height(1), 0)));
        assert_eq!(ix.candidate(&b), Some((Height(2), 5)));
        assert_eq!(ix.candidate(&d), Some((Height(2), 6)));
        // An unknown id with a known prefix gets the first one's position, which
        // the store then refuses on the full id.
        assert_eq!(ix.candidate(&c), Some((Height(1), 0)));
        assert_eq!(ix.candidate(&id(9, 1)), None);
    }
}
