//! Who may read what: the one rule every read path applies (docs/access.md).
//!
//! A transaction is in one of four classes ([`Class`]):
//! - **public**: governance proposals and approvals, attestations of a kind that
//!   is not restricted, and revocations of them — anyone reads them;
//! - **restricted record**: an attestation of a restricted kind (the chain
//!   parameter `restricted_kinds`, as in force now), or a revocation of one — read
//!   in full only by the issuers concerned (the one that attested it and the one
//!   that revoked it) and by a lender whose authorisation covers its subject for
//!   this request;
//! - **consent**: an authorisation or a withdrawal — read by its lender, by the
//!   signer of a withdrawal, and by the agencies;
//! - **queries**: query records — read by the agencies (a lender reads its own
//!   entries through the query audit, which filters them).
//!
//! Everyone else sees a restricted transaction as a redacted commitment only
//! (its RFC 9162 log leaf hash, its height and log index), never its id, kind,
//! issuer, fields, evidence or bytes.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use yrd_consensus::types::Height;

use crate::consent::{coverage, Coverage};
use crate::governance::Membership;
use crate::store::{Ledger, StoreError};
use crate::subjects::SubjectEntry;
use crate::tx::{SignedTransaction, TxBody, TxId};
use crate::uscc::Uscc;

/// Who is asking, as the API established it from the request's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    /// No signature: public records only.
    Anonymous,
    /// A lender in force (its current key): restricted records about the
    /// subjects its authorisations cover, and its own consent transactions.
    Lender { name: String },
    /// An issuer in force (its current key): its own records in full.
    Issuer { name: String },
    /// An agency (its admin key): consent and query records.
    Agency { name: String },
}

/// What the rule needs to know about one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    Public,
    /// A record (attestation, or revocation of one) of a restricted kind about
    /// `subject`; `issuers` are the names of the issuer that attested it and, for
    /// a revocation, of the revoker.
    Restricted { subject: Uscc, issuers: Vec<String> },
    /// An authorisation or withdrawal of lender `lender`; `signer` is the name of
    /// a withdrawal's signer when it is an issuer.
    Consent { lender: String, signer: Option<String> },
    Queries,
}

/// The rule: whether `viewer` reads a transaction of class `class` in full;
/// `covers(subject)` says whether an authorisation of the (lender) viewer covers
/// `subject` at the committed tip.
pub fn may_read<E>(viewer: &Viewer, class: &Class, covers: impl FnOnce(&Uscc) -> Result<bool, E>) -> Result<bool, E> {
    Ok(match (class, viewer) {
        (Class::Public, _) => true,
        (Class::Restricted { issuers, .. }, Viewer::Issuer { name }) => issuers.contains(name),
        (Class::Restricted { subject, .. }, Viewer::Lender { .. }) => covers(subject)?,
        (Class::Restricted { .. }, _) => false,
        (Class::Consent { .. }, Viewer::Agency { .. }) => true,
        (Class::Consent { lender, .. }, Viewer::Lender { name }) => lender == name,
        (Class::Consent { signer, .. }, Viewer::Issuer { name }) => signer.as_ref() == Some(name),
        (Class::Consent { .. }, Viewer::Anonymous) => false,
        (Class::Queries, Viewer::Agency { .. }) => true,
        (Class::Queries, _) => false,
    })
}

/// What the readers of one request opened: per subject, the authorisation that
/// let restricted records about it through, and the committed height read at
/// (the highest, if the request used several readers). What a query record and a
/// receipt name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Opened {
    pub height: u64,
    pub authorisations: BTreeMap<Uscc, TxId>,
}

/// [`Opened`], shared between the readers of a request and whoever records it.
pub type OpenedSink = Arc<Mutex<Opened>>;

/// One reader of the ledger for one request: the viewer, the committed tip it
/// reads at (height and block time: authorisations are judged by block time,
/// never a node's clock), and the coverage looked up per subject (once). Every read route asks [`Reader::visible`]
/// about every transaction it would show; [`Reader::opened`] lists the
/// authorisations that opened restricted records (what a query record names).
pub struct Reader<'a> {
    ledger: &'a Ledger,
    viewer: Viewer,
    height: u64,
    block_time_ms: u64,
    coverage: RefCell<BTreeMap<Uscc, Coverage>>,
    opened: OpenedSink,
}

impl<'a> Reader<'a> {
    /// A reader at `ledger`'s committed tip.
    pub fn new(ledger: &'a Ledger, viewer: Viewer) -> Reader<'a> {
        Reader::with_sink(ledger, viewer, OpenedSink::default())
    }

    /// A reader at `ledger`'s committed tip that notes what it opens in `sink`.
    pub fn with_sink(ledger: &'a Ledger, viewer: Viewer, sink: OpenedSink) -> Reader<'a> {
        let (height, block_time_ms) = ledger.last_header().map_or((0, 0), |h| (h.height.0, h.timestamp_ms));
        Reader { ledger, viewer, height, block_time_ms, coverage: RefCell::new(BTreeMap::new()), opened: sink }
    }

    /// The committed height this reader reads at (what a receipt names).
    pub fn height(&self) -> u64 {
        self.height
    }

    pub fn viewer(&self) -> &Viewer {
        &self.viewer
    }

    pub fn ledger(&self) -> &'a Ledger {
        self.ledger
    }

    /// What the viewer's authorisations give for `subject` now ([`Coverage::None`]
    /// for anyone but a lender).
    pub fn coverage(&self, subject: &Uscc) -> Result<Coverage, StoreError> {
        let Viewer::Lender { name } = &self.viewer else { return Ok(Coverage::None) };
        if let Some(c) = self.coverage.borrow().get(subject) {
            return Ok(c.clone());
        }
        let c = coverage(&self.ledger.grants(subject, name)?, self.height, self.block_time_ms);
        self.coverage.borrow_mut().insert(*subject, c.clone());
        Ok(c)
    }

    /// THE decision of every read route: whether the viewer sees transaction
    /// `tx`, committed at `height`, in full. A restricted record opened by an
    /// authorisation is remembered ([`Reader::opened`]).
    pub fn visible(&self, tx: &SignedTransaction, height: Height) -> Result<bool, StoreError> {
        self.judge(&self.ledger.tx_class(tx, height)?)
    }

    /// [`Reader::visible`] of record `entry` of `subject`'s record: of its
    /// attestation and, when revoked, of its revocation, judged from the entry
    /// alone (its kind, issuer and height) without reading either transaction
    /// (one store read and decode fewer per record of a report).
    ///
    /// The attestation's class is [`Ledger::entry_class`]. The revocation needs
    /// no look of its own: it has the class of the attestation it revokes (same
    /// subject, same kind), with the attestation's issuer among the issuers
    /// named, so whoever reads the attestation reads it (a covering lender, the
    /// attesting issuer) — the test
    /// `entry_visible_is_visible_of_attestation_and_revocation` compares both for
    /// every kind of viewer.
    pub fn entry_visible(&self, subject: &Uscc, entry: &SubjectEntry) -> Result<bool, StoreError> {
        self.judge(&self.ledger.entry_class(subject, entry))
    }

    /// [`may_read`] for this reader's viewer, noting what an authorisation opens.
    fn judge(&self, class: &Class) -> Result<bool, StoreError> {
        may_read(&self.viewer, class, |subject| match self.coverage(subject)? {
            Coverage::Covered(g) => {
                let mut opened = self.opened.lock().unwrap_or_else(|e| e.into_inner());
                opened.height = opened.height.max(self.height);
                opened.authorisations.insert(*subject, g.id);
                Ok(true)
            }
            _ => Ok(false),
        })
    }

    /// The authorisations that opened restricted records so far: (subject, authorisation).
    pub fn opened(&self) -> Vec<(Uscc, TxId)> {
        let opened = self.opened.lock().unwrap_or_else(|e| e.into_inner());
        opened.authorisations.iter().map(|(s, a)| (*s, *a)).collect()
    }
}

/// The name of the issuer that held `key` at the time `m` was in force.
fn issuer_name(m: &Membership, key: &yrd_consensus::crypto::PublicKey) -> String {
    m.issuer_any(key).map(|i| i.name.clone()).or_else(|| m.retired_key(key).map(|r| r.name.clone())).unwrap_or_default()
}

impl Ledger {
    /// The class of the attestation of record `entry` of `subject`'s record:
    /// [`Ledger::tx_class`] of that attestation, from the entry (which holds the
    /// attestation's kind, issuer key and commit height).
    pub fn entry_class(&self, subject: &Uscc, entry: &SubjectEntry) -> Class {
        if self.next_membership().params.is_restricted(entry.kind) {
            Class::Restricted { subject: *subject, issuers: vec![issuer_name(&self.membership_at(entry.height), &entry.issuer)] }
        } else {
            Class::Public
        }
    }

    /// The class of transaction `tx`, committed at `height`, under the
    /// restricted kinds in force now (a kind restricted later hides old records
    /// too). Revocations and withdrawals look up their target.
    pub fn tx_class(&self, tx: &SignedTransaction, height: Height) -> Result<Class, StoreError> {
        let now = self.next_membership();
        let at = self.membership_at(height);
        Ok(match &tx.tx.body {
            TxBody::Propose(_) | TxBody::Approve(_) => Class::Public,
            TxBody::Attest(a) => {
                if now.params.is_restricted(a.kind) {
                    Class::Restricted { subject: a.subject, issuers: vec![issuer_name(&at, &tx.tx.issuer)] }
                } else {
                    Class::Public
                }
            }
            TxBody::Revoke(r) => match self.committed_tx(&r.target)? {
                Some((target, th)) => match &target.tx.body {
                    TxBody::Attest(a) if now.params.is_restricted(a.kind) => {
                        let original = issuer_name(&self.membership_at(th), &target.tx.issuer);
                        Class::Restricted { subject: a.subject, issuers: vec![original, issuer_name(&at, &tx.tx.issuer)] }
                    }
                    _ => Class::Public,
                },
                None => Class::Public,
            },
            TxBody::Authorise(_) => Class::Consent {
                lender: crate::consent::lender_name(&at, &tx.tx.issuer).unwrap_or_default(),
                signer: None,
            },
            TxBody::Withdraw(w) => {
                let lender = match self.committed_tx(&w.authorisation)? {
                    Some((target, th)) => {
                        crate::consent::lender_name(&self.membership_at(th), &target.tx.issuer).unwrap_or_default()
                    }
                    None => String::new(),
                };
                // The withdrawing issuer, by name (issuers read what they withdrew).
                // Not an agency's name: agencies read every consent transaction, and
                // an issuer may bear an agency's name (separate namespaces).
                let signer = at.issuer_any(&tx.tx.issuer).map(|i| i.name.clone());
                Class::Consent { lender, signer }
            }
            TxBody::RecordQueries(_) => Class::Queries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s() -> Uscc {
        Uscc::sample(1)
    }

    fn read(v: &Viewer, c: &Class, covered: Option<Uscc>) -> bool {
        may_read::<()>(v, c, |subject| Ok(covered.as_ref() == Some(subject))).unwrap_or(false)
    }

    #[test]
    fn the_rule_table() {
        let restricted = Class::Restricted { subject: s(), issuers: vec!["a".into(), "b".into()] };
        let consent = Class::Consent { lender: "bank".into(), signer: Some("c".into()) };
        let bank = Viewer::Lender { name: "bank".into() };
        let other = Viewer::Lender { name: "other".into() };
        let issuer = |n: &str| Viewer::Issuer { name: n.into() };
        let agency = Viewer::Agency { name: "x".into() };
        // (viewer, class, subject covered for the viewer, expected)
        let cases: Vec<(Viewer, &Class, Option<Uscc>, bool)> = vec![
            (Viewer::Anonymous, &Class::Public, None, true),
            (Viewer::Anonymous, &restricted, Some(s()), false),
            (Viewer::Anonymous, &consent, None, false),
            (Viewer::Anonymous, &Class::Queries, None, false),
            (bank.clone(), &restricted, Some(s()), true),
            (bank.clone(), &restricted, None, false),
            (bank.clone(), &restricted, Some(Uscc::sample(2)), false),
            (other.clone(), &restricted, Some(s()), true),
            (bank.clone(), &consent, None, true),
            (other.clone(), &consent, Some(s()), false),
            (issuer("a"), &restricted, None, true),
            (issuer("b"), &restricted, None, true),
            (issuer("z"), &restricted, Some(s()), false),
            (issuer("c"), &consent, None, true),
            (issuer("a"), &consent, None, false),
            (agency.clone(), &consent, None, true),
            (agency.clone(), &restricted, Some(s()), false),
            (agency.clone(), &Class::Queries, None, true),
            (bank.clone(), &Class::Queries, Some(s()), false),
            (bank.clone(), &Class::Public, None, true),
        ];
        for (v, c, covered, expected) in cases {
            assert_eq!(read(&v, c, covered), expected, "{v:?} {c:?} covered {covered:?}");
        }
    }
}
