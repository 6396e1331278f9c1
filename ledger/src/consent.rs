//! Enterprises' authorisations (数据授权): a lender may read restricted records
//! about an enterprise only while an authorisation on chain covers it
//! (docs/access.md).
//!
//! **Authorisation** ([`Authorisation`], `TxBody::Authorise`), signed by a lender
//! in force: the enterprise (USCC), the purpose, the end of its validity and the
//! SHA-256 of the enterprise's signed consent document (the document itself stays
//! off chain). It takes effect at the height of the block that commits it and
//! covers `(lender, subject)` until `valid_until_ms` — at most
//! [`MAX_AUTHORISATION_VALIDITY_MS`] after that block's timestamp — or until it
//! is withdrawn.
//!
//! **Withdrawal** ([`Withdrawal`], `TxBody::Withdraw`): the enterprise withdrew its
//! consent. Signed by the lender that holds the authorisation, or by any agency
//! (its admin key or an issuer key in force): an enterprise can go to its local
//! credit agency. The authorisation stops covering anything from the withdrawal's
//! height on; the record of both stays on chain.
//!
//! **Index.** The store keeps, per `(subject, lender name)`, the list of that
//! lender's authorisations for the subject with their state ([`Grant`]): one sled
//! key per pair, rewritten when an authorisation or withdrawal touches it
//! (`a` ‖ USCC ‖ lender name). Lenders are named, not keyed, so an authorisation
//! outlives a rotation of the lender's key; a lender's name is never given to
//! another lender (governance refuses it).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use yrd_consensus::codec::{self, CodecError};
use yrd_consensus::crypto::{Hash32, PublicKey};

use crate::governance::{Membership, Role};
use crate::tx::{SignedTransaction, TxBody, TxFormatError, TxId};
use crate::uscc::Uscc;

/// Longest validity of an authorisation: one year after the block that commits
/// it (366 days, so that a year with 29 February fits). A longer consent must be
/// renewed: the enterprise signs a new document and the lender records it.
pub const MAX_AUTHORISATION_VALIDITY_MS: u64 = 366 * 24 * 3600 * 1000;
/// Most authorisations one lender holds for one subject (the list is one sled
/// value, rewritten whenever it changes): monthly renewals for 80 years.
pub const MAX_GRANTS_PER_PAIR: usize = 1024;

macro_rules! consent_enum {
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$vm:meta])* $variant:ident => $text:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum $name { $($(#[$vm])* $variant),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                let t = s.trim().to_ascii_lowercase().replace('_', "-");
                $name::ALL.iter().copied().find(|k| k.as_str() == t).ok_or_else(|| {
                    let all: Vec<&str> = $name::ALL.iter().map(|k| k.as_str()).collect();
                    format!("unknown {} '{}': expected one of {}", stringify!($name), s, all.join(", "))
                })
            }
        }
    };
}

consent_enum! {
    /// What the enterprise consented to its records being read for.
    pub enum Purpose {
        /// 贷款申请 — a loan application.
        LoanApplication => "loan-application",
        /// 贷后管理 — monitoring of a loan granted.
        PostLoanMonitoring => "post-loan-monitoring",
        /// 担保 — a guarantee the enterprise gives or receives.
        Guarantee => "guarantee",
    }
}

consent_enum! {
    /// Why an authorisation ends before its validity.
    pub enum WithdrawReason {
        /// The enterprise withdrew its consent.
        ConsentWithdrawn => "consent-withdrawn",
        /// The purpose is over (application refused, loan repaid).
        PurposeEnded => "purpose-ended",
        /// The authorisation was recorded in error.
        Error => "error",
    }
}

/// A lender's record of an enterprise's consent, signed by the lender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorisation {
    pub subject: Uscc,
    pub purpose: Purpose,
    /// SHA-256 of the enterprise's signed consent document (kept off chain).
    pub consent: Hash32,
    /// When the lender signed, milliseconds since the Unix epoch.
    pub issued_at_ms: u64,
    /// The authorisation covers reads before this time (and after its block).
    pub valid_until_ms: u64,
}

impl Authorisation {
    pub fn check_format(&self) -> Result<(), TxFormatError> {
        if self.valid_until_ms <= self.issued_at_ms {
            return Err(TxFormatError::Authorisation(format!(
                "valid_until ({}) is not after issued_at ({})",
                self.valid_until_ms, self.issued_at_ms
            )));
        }
        Ok(())
    }
}

/// The end of an authorisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdrawal {
    /// The authorisation transaction.
    pub authorisation: TxId,
    pub reason: WithdrawReason,
    /// SHA-256 of the enterprise's withdrawal notice, if any (kept off chain).
    pub evidence: Option<Hash32>,
    pub issued_at_ms: u64,
}

/// A withdrawal as recorded in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdrawn {
    pub by: TxId,
    pub height: u64,
    pub reason: WithdrawReason,
}

/// An authorisation as indexed under `(subject, lender)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The authorisation transaction.
    pub id: TxId,
    /// The height that committed it: it covers reads from this height on.
    pub height: u64,
    pub purpose: Purpose,
    pub valid_until_ms: u64,
    pub withdrawn: Option<Withdrawn>,
}

/// Whether a grant covers a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum GrantState {
    Active,
    /// `valid_until_ms` has passed.
    Expired { at_ms: u64 },
    Withdrawn { by: TxId, height: u64 },
}

impl GrantState {
    pub fn name(&self) -> &'static str {
        match self {
            GrantState::Active => "active",
            GrantState::Expired { .. } => "expired",
            GrantState::Withdrawn { .. } => "withdrawn",
        }
    }
}

impl Grant {
    /// The state at the block of `height` whose timestamp is `block_time_ms`
    /// (expiry is judged by block time, never a node's clock; a withdrawal takes
    /// effect at its block). `None` when the grant was committed after `height`.
    pub fn state_at(&self, height: u64, block_time_ms: u64) -> Option<GrantState> {
        if self.height > height {
            return None;
        }
        if let Some(w) = self.withdrawn.filter(|w| w.height <= height) {
            return Some(GrantState::Withdrawn { by: w.by, height: w.height });
        }
        if self.valid_until_ms <= block_time_ms {
            return Some(GrantState::Expired { at_ms: self.valid_until_ms });
        }
        Some(GrantState::Active)
    }

    /// Whether the grant covers a read served at block `height` (time `block_time_ms`).
    pub fn covers_at(&self, height: u64, block_time_ms: u64) -> bool {
        self.state_at(height, block_time_ms) == Some(GrantState::Active)
    }
}

/// What the authorisations of `(subject, lender)` give at a block: the one in
/// force (the latest-ending active one), or why none is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coverage {
    Covered(Grant),
    /// The lender never recorded an authorisation for the subject (by that block).
    None,
    /// Every authorisation has ended; the one that ended last, and how.
    Ended(Grant, GrantState),
}

/// The coverage of a list of grants at block `height`, whose timestamp is
/// `block_time_ms` (a node serving a read passes its committed tip: every node
/// at that height gives the same answer).
pub fn coverage(grants: &[Grant], height: u64, block_time_ms: u64) -> Coverage {
    let active = grants.iter().filter(|g| g.covers_at(height, block_time_ms)).max_by_key(|g| g.valid_until_ms);
    if let Some(g) = active {
        return Coverage::Covered(g.clone());
    }
    // Ended: the most recent end (a withdrawal's block or an expiry time are not
    // comparable; the latest committed grant stands for the lender's history).
    let ended = grants
        .iter()
        .filter_map(|g| g.state_at(height, block_time_ms).map(|state| (g, state)))
        .max_by_key(|(g, _)| g.height);
    match ended {
        Some((g, state)) => Coverage::Ended(g.clone(), state),
        None => Coverage::None,
    }
}

/// The sled key of the grants of `(subject, lender)`: `a` ‖ USCC ‖ lender name.
pub fn grant_key(subject: &Uscc, lender: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + 18 + lender.len());
    k.push(b'a');
    k.extend_from_slice(subject.as_str().as_bytes());
    k.extend_from_slice(lender.as_bytes());
    k
}

/// Largest encoded grant list.
pub const MAX_GRANTS_BYTES: usize = MAX_GRANTS_PER_PAIR * 160 + 64;

pub fn encode_grants(grants: &[Grant]) -> Result<Vec<u8>, CodecError> {
    codec::encode(&grants.to_vec())
}

pub fn decode_grants(bytes: &[u8]) -> Result<Vec<Grant>, CodecError> {
    codec::decode(bytes, MAX_GRANTS_BYTES, "authorisation index")
}

/// Why an authorisation, a withdrawal or a query record is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsentError {
    #[error("key {0} is not the key of any lender in force")]
    NotALender(PublicKey),
    #[error("valid_until {until} must be after this block's time {block_ms} and at most {max} (one year after it)")]
    BadValidity { until: u64, block_ms: u64, max: u64 },
    #[error("lender {lender:?} already holds {MAX_GRANTS_PER_PAIR} authorisations for {subject}")]
    TooManyAuthorisations { subject: Uscc, lender: String },
    #[error("authorisation {0} is not on the ledger (withdraw an authorisation committed in an earlier block)")]
    AuthorisationUnknown(TxId),
    #[error("transaction {0} is not an authorisation")]
    NotAnAuthorisation(TxId),
    #[error("key {signer} may not withdraw authorisation {id}: only its lender {lender:?} or an agency may")]
    WithdrawNotAllowed { signer: PublicKey, id: TxId, lender: String },
    #[error("authorisation {id} is already withdrawn (by {by})")]
    AlreadyWithdrawn { id: TxId, by: TxId },
    #[error("authorisation {id} already expired at {at_ms}; there is nothing to withdraw")]
    AlreadyExpired { id: TxId, at_ms: u64 },
    #[error("key {0} is not the key of a validator or observer in force (only nodes record the queries they served)")]
    NotANode(PublicKey),
    #[error("query record {index}: {reason}")]
    BadQueryRecord { index: usize, reason: String },
}

impl ConsentError {
    pub fn code(&self) -> &'static str {
        match self {
            ConsentError::NotALender(_) => "not_a_lender",
            ConsentError::BadValidity { .. } => "bad_validity",
            ConsentError::TooManyAuthorisations { .. } => "too_many_authorisations",
            ConsentError::AuthorisationUnknown(_) => "authorisation_unknown",
            ConsentError::NotAnAuthorisation(_) => "not_an_authorisation",
            ConsentError::WithdrawNotAllowed { .. } => "withdraw_not_allowed",
            ConsentError::AlreadyWithdrawn { .. } => "already_withdrawn",
            ConsentError::AlreadyExpired { .. } => "authorisation_expired",
            ConsentError::NotANode(_) => "not_a_node",
            ConsentError::BadQueryRecord { .. } => "bad_query_record",
        }
    }
}

/// The signer rule that needs only the membership (run before the signature):
/// authorisations by a lender in force, withdrawals by a lender, an agency or an
/// issuer in force, query records by a validator or observer in force.
pub fn check_signer(membership: &Membership, tx: &SignedTransaction) -> Result<(), ConsentError> {
    let key = &tx.tx.issuer;
    match &tx.tx.body {
        TxBody::Authorise(_) => membership.lender(key).map(|_| ()).ok_or(ConsentError::NotALender(*key)),
        TxBody::Withdraw(w) => {
            if membership.lender(key).is_some() || membership.agency(key).is_some() || membership.issuer(key).is_some() {
                Ok(())
            } else {
                Err(ConsentError::WithdrawNotAllowed { signer: *key, id: w.authorisation, lender: String::new() })
            }
        }
        TxBody::RecordQueries(_) => membership.node_by_key(key).map(|_| ()).ok_or(ConsentError::NotANode(*key)),
        _ => Ok(()),
    }
}

/// The name of the lender that held `key` according to `m`: in force, or retired.
pub fn lender_name(m: &Membership, key: &PublicKey) -> Option<String> {
    m.lender(key)
        .map(|l| l.name.clone())
        .or_else(|| m.retired_key(key).filter(|r| r.role == Role::Lender).map(|r| r.name.clone()))
}

/// Blocks after a lender key's retirement within which a request it signed may
/// still have been served: the API authenticates a request against the
/// membership after its committed height and serves it from a tip read a moment
/// later, when blocks may have been committed meanwhile.
pub const RETIRED_KEY_GRACE_BLOCKS: u64 = 16;

/// The lender whose key signed a request served at committed height `served`,
/// judged against the membership `m` of the recording block: a lender's key in
/// force, or one retired (rotated, removed) at `since` with `served < since +`
/// [`RETIRED_KEY_GRACE_BLOCKS`] — a key retired well before could not have been
/// served (the API refuses retired keys), so a record of such a request is a
/// forgery with a leaked key. The one rule of block validation, the audit's
/// replay and the offline query audit (and the console's verifier).
pub fn request_lender(m: &Membership, key: &PublicKey, served: u64) -> Result<String, String> {
    if let Some(l) = m.lender(key) {
        return Ok(l.name.clone());
    }
    match m.retired_key(key).filter(|r| r.role == Role::Lender) {
        Some(r) if served < r.since.saturating_add(RETIRED_KEY_GRACE_BLOCKS) => Ok(r.name.clone()),
        Some(r) => Err(format!(
            "key {key} of lender {:?} was retired at height {} ({}), more than {RETIRED_KEY_GRACE_BLOCKS} blocks before the height {served} the request was served at",
            r.name, r.since, r.reason
        )),
        None => Err(format!("key {key} is not a lender's key")),
    }
}

/// What the ledger knows about a transaction a withdrawal names.
pub enum Target {
    Missing,
    /// Committed, but not an authorisation.
    Other,
    /// An authorisation by `lender` about `subject`, committed at `height`.
    Authorisation { subject: Uscc, lender: String, height: u64 },
}

/// Where consent rules read committed state: the store, or the audit's replay.
pub trait ConsentSource {
    type Error;
    /// The grants of `(subject, lender)` as committed.
    fn grants(&self, subject: &Uscc, lender: &str) -> Result<Vec<Grant>, Self::Error>;
    /// The committed transaction `id`, as a withdrawal sees it.
    fn target(&self, id: &TxId) -> Result<Target, Self::Error>;
    /// The timestamp of committed block `height` (`None` if not committed).
    fn block_time_ms(&self, height: u64) -> Result<Option<u64>, Self::Error>;
}

/// Index changes of one block: grant lists rewritten, and per subject the
/// query records the block holds (transaction position, entry position).
#[derive(Debug, Clone, Default)]
pub struct ConsentDelta {
    pub grants: BTreeMap<(Uscc, String), Vec<Grant>>,
    pub queries: BTreeMap<Uscc, Vec<(u32, u16)>>,
}

/// Consent rules while one block executes (or while a transaction is admitted):
/// checks authorisations, withdrawals and query records against the committed
/// state plus what earlier transactions of the block did, and collects the
/// index changes.
pub struct BlockConsent<'a, S: ConsentSource> {
    source: &'a S,
    height: u64,
    timestamp_ms: u64,
    membership: Arc<Membership>,
    delta: ConsentDelta,
    /// Authorisations of this block: they cannot be withdrawn in it (a
    /// withdrawal names a transaction of an earlier block).
    fresh: BTreeMap<TxId, ()>,
}

/// A rule broken, or the store failed.
pub enum Refusal<E> {
    Invalid(ConsentError),
    Store(E),
}

impl<E> From<ConsentError> for Refusal<E> {
    fn from(e: ConsentError) -> Self {
        Refusal::Invalid(e)
    }
}

impl<'a, S: ConsentSource> BlockConsent<'a, S> {
    /// Starts block `height` with timestamp `timestamp_ms` (the admission of a
    /// transaction uses the node's clock) under `membership`.
    pub fn new(source: &'a S, height: u64, timestamp_ms: u64, membership: Arc<Membership>) -> Self {
        BlockConsent { source, height, timestamp_ms, membership, delta: ConsentDelta::default(), fresh: BTreeMap::new() }
    }

    fn grants(&self, subject: &Uscc, lender: &str) -> Result<Vec<Grant>, S::Error> {
        match self.delta.grants.get(&(*subject, lender.to_string())) {
            Some(g) => Ok(g.clone()),
            None => self.source.grants(subject, lender),
        }
    }

    /// Checks a transaction (signature aside; the signer rule was checked by
    /// [`check_signer`]). Not a consent transaction: `Ok`.
    pub fn check(&self, tx: &SignedTransaction) -> Result<(), Refusal<S::Error>> {
        self.plan(tx).map(|_| ())
    }

    /// Applies a transaction that passed [`BlockConsent::check`]; `index` is its
    /// position in the block.
    pub fn apply(&mut self, tx: &SignedTransaction, id: &TxId, index: u32) -> Result<(), Refusal<S::Error>> {
        match self.plan(tx)? {
            Plan::Nothing => {}
            Plan::Authorise { subject, lender, mut grants, purpose, valid_until_ms } => {
                grants.push(Grant { id: *id, height: self.height, purpose, valid_until_ms, withdrawn: None });
                self.delta.grants.insert((subject, lender), grants);
                self.fresh.insert(*id, ());
            }
            Plan::Withdraw { subject, lender, mut grants, position, reason } => {
                if let Some(g) = grants.get_mut(position) {
                    g.withdrawn = Some(Withdrawn { by: *id, height: self.height, reason });
                }
                self.delta.grants.insert((subject, lender), grants);
            }
            Plan::Queries(subjects) => {
                for (entry, subject) in subjects.into_iter().enumerate() {
                    let list = self.delta.queries.entry(subject).or_default();
                    list.push((index, entry as u16));
                }
            }
        }
        Ok(())
    }

    pub fn finish(self) -> ConsentDelta {
        self.delta
    }

    fn plan(&self, tx: &SignedTransaction) -> Result<Plan, Refusal<S::Error>> {
        let t = &tx.tx;
        match &t.body {
            TxBody::Authorise(a) => {
                let lender = self.membership.lender(&t.issuer).ok_or(ConsentError::NotALender(t.issuer))?.name.clone();
                let max = self.timestamp_ms.saturating_add(MAX_AUTHORISATION_VALIDITY_MS);
                if a.valid_until_ms <= self.timestamp_ms || a.valid_until_ms > max {
                    return Err(ConsentError::BadValidity { until: a.valid_until_ms, block_ms: self.timestamp_ms, max }.into());
                }
                let grants = self.grants(&a.subject, &lender).map_err(Refusal::Store)?;
                if grants.len() >= MAX_GRANTS_PER_PAIR {
                    return Err(ConsentError::TooManyAuthorisations { subject: a.subject, lender }.into());
                }
                Ok(Plan::Authorise { subject: a.subject, lender, grants, purpose: a.purpose, valid_until_ms: a.valid_until_ms })
            }
            TxBody::Withdraw(w) => {
                if self.fresh.contains_key(&w.authorisation) {
                    return Err(ConsentError::AuthorisationUnknown(w.authorisation).into());
                }
                let (subject, lender) = match self.source.target(&w.authorisation).map_err(Refusal::Store)? {
                    Target::Missing => return Err(ConsentError::AuthorisationUnknown(w.authorisation).into()),
                    Target::Other => return Err(ConsentError::NotAnAuthorisation(w.authorisation).into()),
                    Target::Authorisation { height, .. } if height >= self.height => {
                        return Err(ConsentError::AuthorisationUnknown(w.authorisation).into())
                    }
                    Target::Authorisation { subject, lender, .. } => (subject, lender),
                };
                let m = &self.membership;
                let by_lender = m.lender(&t.issuer).is_some_and(|l| l.name == lender);
                let by_agency = m.agency(&t.issuer).is_some() || m.issuer(&t.issuer).is_some();
                if !by_lender && !by_agency {
                    return Err(ConsentError::WithdrawNotAllowed { signer: t.issuer, id: w.authorisation, lender }.into());
                }
                let grants = self.grants(&subject, &lender).map_err(Refusal::Store)?;
                let position = grants
                    .iter()
                    .position(|g| g.id == w.authorisation)
                    .ok_or(ConsentError::AuthorisationUnknown(w.authorisation))?;
                let g = &grants[position];
                if let Some(done) = g.withdrawn {
                    return Err(ConsentError::AlreadyWithdrawn { id: w.authorisation, by: done.by }.into());
                }
                if g.valid_until_ms <= self.timestamp_ms {
                    return Err(ConsentError::AlreadyExpired { id: w.authorisation, at_ms: g.valid_until_ms }.into());
                }
                Ok(Plan::Withdraw { subject, lender, grants, position, reason: w.reason })
            }
            TxBody::RecordQueries(q) => {
                if self.membership.node_by_key(&t.issuer).is_none() {
                    return Err(ConsentError::NotANode(t.issuer).into());
                }
                let mut subjects = Vec::with_capacity(q.entries.len());
                let mut requests = std::collections::HashSet::with_capacity(q.entries.len());
                for (index, e) in q.entries.iter().enumerate() {
                    let bad = |reason: String| Refusal::Invalid(ConsentError::BadQueryRecord { index, reason });
                    // One entry per request and subject: a request is answered once
                    // (the API refuses a replayed nonce) with one entry per subject
                    // it opened, so a copy would only inflate the lender's read trail.
                    if !requests.insert((e.request.key, e.request.nonce, e.subject)) {
                        return Err(bad(format!(
                            "request nonce {} of key {} is recorded twice for {}",
                            hex::encode(e.request.nonce.0),
                            e.request.key,
                            e.subject
                        )));
                    }
                    // Served at a committed height before this block, recorded
                    // within the bound (docs/access.md "Query receipts").
                    if e.height >= self.height {
                        return Err(bad(format!("served at height {}, not before this block {}", e.height, self.height)));
                    }
                    let latest = e.height.saturating_add(crate::queries::MAX_RECORD_LAG_BLOCKS);
                    if self.height > latest {
                        return Err(bad(format!(
                            "served at height {} and recorded at {}: a query is recorded by height {latest} (MAX_RECORD_LAG_BLOCKS) or never",
                            e.height, self.height
                        )));
                    }
                    let ahead = self.timestamp_ms.saturating_add(crate::queries::MAX_SERVED_AHEAD_MS);
                    if e.served_at_ms > ahead {
                        return Err(bad(format!("served at {} ms, after this block's time {} ms", e.served_at_ms, self.timestamp_ms)));
                    }
                    let lender = request_lender(&self.membership, &e.request.key, e.height).map_err(bad)?;
                    let served_time = self
                        .source
                        .block_time_ms(e.height)
                        .map_err(Refusal::Store)?
                        .ok_or_else(|| bad(format!("height {} is not committed", e.height)))?;
                    let grants = self.grants(&e.subject, &lender).map_err(Refusal::Store)?;
                    let Some(g) = grants.iter().find(|g| g.id == e.authorisation) else {
                        return Err(bad(format!(
                            "authorisation {} is not an authorisation of lender {lender:?} for {}",
                            e.authorisation, e.subject
                        )));
                    };
                    if !g.covers_at(e.height, served_time) {
                        let state = g.state_at(e.height, served_time).map_or("not yet committed", |s| s.name());
                        return Err(bad(format!(
                            "authorisation {} did not cover a read at height {} (time {served_time} ms): {state}",
                            e.authorisation, e.height
                        )));
                    }
                    subjects.push(e.subject);
                }
                Ok(Plan::Queries(subjects))
            }
            _ => Ok(Plan::Nothing),
        }
    }
}

enum Plan {
    Nothing,
    Authorise { subject: Uscc, lender: String, grants: Vec<Grant>, purpose: Purpose, valid_until_ms: u64 },
    Withdraw { subject: Uscc, lender: String, grants: Vec<Grant>, position: usize, reason: WithdrawReason },
    Queries(Vec<Uscc>),
}

/// The `q` key of the query records about `subject` in block `height`.
pub fn query_key(subject: &Uscc, height: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + 18 + 8);
    k.push(b'q');
    k.extend_from_slice(subject.as_str().as_bytes());
    k.extend_from_slice(&height.to_be_bytes());
    k
}

/// Bytes of one `q` entry: transaction position (u32 BE) ‖ entry position (u16 BE).
pub const QUERY_INDEX_ENTRY: usize = 6;

pub fn encode_query_index(entries: &[(u32, u16)]) -> Vec<u8> {
    let mut v = Vec::with_capacity(entries.len() * QUERY_INDEX_ENTRY);
    for (tx, entry) in entries {
        v.extend_from_slice(&tx.to_be_bytes());
        v.extend_from_slice(&entry.to_be_bytes());
    }
    v
}

pub fn decode_query_index(v: &[u8]) -> Option<Vec<(u32, u16)>> {
    if v.is_empty() || !v.len().is_multiple_of(QUERY_INDEX_ENTRY) {
        return None;
    }
    Some(
        v.chunks_exact(QUERY_INDEX_ENTRY)
            .map(|e| (u32::from_be_bytes([e[0], e[1], e[2], e[3]]), u16::from_be_bytes([e[4], e[5]])))
            .collect(),
    )
}
