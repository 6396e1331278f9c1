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
//! (its log leaf hash, or its subject-record entry commitment), never its id,
//! kind, issuer, fields, evidence or bytes.

use yrd_consensus::types::Height;

use crate::governance::Membership;
use crate::store::{Ledger, StoreError};
use crate::tx::{SignedTransaction, TxBody};
use crate::uscc::Uscc;

/// Who is asking, as the API established it from the request's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    /// No signature: public records only.
    Anonymous,
    /// A lender in force. `covered` is the subject whose authorisation covers
    /// this request, if the route concerns one subject and an authorisation in
    /// force covers it.
    Lender { name: String, covered: Option<Uscc> },
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
    /// a withdrawal's signer when it is an agency or issuer.
    Consent { lender: String, signer: Option<String> },
    Queries,
}

/// The rule: whether `viewer` reads a transaction of class `class` in full.
pub fn may_read(viewer: &Viewer, class: &Class) -> bool {
    match (class, viewer) {
        (Class::Public, _) => true,
        (Class::Restricted { issuers, .. }, Viewer::Issuer { name }) => issuers.contains(name),
        (Class::Restricted { subject, .. }, Viewer::Lender { covered, .. }) => covered.as_ref() == Some(subject),
        (Class::Restricted { .. }, _) => false,
        (Class::Consent { .. }, Viewer::Agency { .. }) => true,
        (Class::Consent { lender, .. }, Viewer::Lender { name, .. }) => lender == name,
        (Class::Consent { signer, .. }, Viewer::Issuer { name }) => signer.as_ref() == Some(name),
        (Class::Consent { .. }, Viewer::Anonymous) => false,
        (Class::Queries, Viewer::Agency { .. }) => true,
        (Class::Queries, _) => false,
    }
}

/// The name of the issuer that held `key` at the time `m` was in force.
fn issuer_name(m: &Membership, key: &yrd_consensus::crypto::PublicKey) -> String {
    m.issuer_any(key).map(|i| i.name.clone()).or_else(|| m.retired_key(key).map(|r| r.name.clone())).unwrap_or_default()
}

impl Ledger {
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
                let signer = at
                    .issuer_any(&tx.tx.issuer)
                    .map(|i| i.name.clone())
                    .or_else(|| at.agency(&tx.tx.issuer).map(|a| a.name.clone()));
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

    #[test]
    fn the_rule_table() {
        let restricted = Class::Restricted { subject: s(), issuers: vec!["a".into(), "b".into()] };
        let consent = Class::Consent { lender: "bank".into(), signer: Some("c".into()) };
        let lender = |covered: Option<Uscc>| Viewer::Lender { name: "bank".into(), covered };
        let other = Viewer::Lender { name: "other".into(), covered: Some(s()) };
        let cases: Vec<(&Viewer, &Class, bool)> = vec![
            (&Viewer::Anonymous, &Class::Public, true),
            (&Viewer::Anonymous, &restricted, false),
            (&Viewer::Anonymous, &consent, false),
            (&Viewer::Anonymous, &Class::Queries, false),
        ];
        for (v, c, expected) in cases {
            assert_eq!(may_read(v, c), expected, "{v:?} {c:?}");
        }
        assert!(may_read(&lender(Some(s())), &restricted));
        assert!(!may_read(&lender(None), &restricted));
        assert!(!may_read(&lender(Some(Uscc::sample(2))), &restricted));
        assert!(may_read(&other, &restricted), "coverage, not the name, opens a restricted record");
        assert!(may_read(&lender(None), &consent));
        assert!(!may_read(&other, &consent));
        assert!(may_read(&Viewer::Issuer { name: "a".into() }, &restricted));
        assert!(may_read(&Viewer::Issuer { name: "b".into() }, &restricted));
        assert!(!may_read(&Viewer::Issuer { name: "z".into() }, &restricted));
        assert!(may_read(&Viewer::Issuer { name: "c".into() }, &consent));
        assert!(!may_read(&Viewer::Issuer { name: "a".into() }, &consent));
        assert!(may_read(&Viewer::Agency { name: "x".into() }, &consent));
        assert!(!may_read(&Viewer::Agency { name: "x".into() }, &restricted));
        assert!(may_read(&Viewer::Agency { name: "x".into() }, &Class::Queries));
        assert!(!may_read(&lender(Some(s())), &Class::Queries));
    }
}
