//! Consortium governance: agencies change the membership of the chain — agencies,
//! validators, issuers, observers, chain parameters — by a quorum, on chain.
//!
//! **Transactions.** An agency's governance (admin) key signs a [`GovProposal`]
//! (one or more [`Change`]s and a deadline height) or a [`GovApproval`] of an
//! earlier proposal. Proposing counts as the proposer's approval. A proposal is
//! **approved** by the transaction that brings the number of distinct approving
//! agencies (counted among the agencies in force at that height) to more than
//! `approval_num / approval_den` of the agencies in force (default: more than two
//! thirds), provided it is not past its deadline. Later approvals are refused
//! (`proposal_closed`), so are a second approval by the same agency
//! (`already_approved`), approvals after the deadline (`proposal_expired`) and
//! anything signed by a key that is not an agency's admin key (`not_an_agency`).
//!
//! **Effect.** An approved proposal takes effect at a height fixed by the chain:
//! `a + activation_delay_blocks` (D ≥ 2) after the block `a` that approved it, or
//! `a + 1` if it only freezes issuer keys (an emergency: a leaked key). All the
//! proposals taking effect at one height are applied in the order they were
//! approved, each one whole or not at all (a change that no longer applies — a
//! name taken, a key in use — fails the proposal, recorded with the reason). The
//! membership in force at height `h` is therefore a function of the blocks below
//! `h`, the same on every node; block `h`'s header commits to its hash.
//!
//! **Why D ≥ 2 matters to consensus.** Freezing changes only issuer keys and never
//! makes another change fail, so the validator set of height `h + 1` depends only
//! on proposals approved at or before `h + 1 − D ≤ h − 1`: while working on height
//! `h`, every node already knows the sets of `h` and `h + 1` (docs/consensus.md).
//!
//! Keys: every key any role ever had stays reserved; a removed, rotated or frozen
//! key is *retired* (with the height and reason) and can never be used again by
//! anyone. Records signed before a key was retired stay valid: proofs show the key
//! was in force at their height.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use yrd_consensus::codec::{self, CodecError};
use yrd_consensus::crypto::{sha256, signing_bytes, Hash32, PublicKey};
use yrd_consensus::types::{ValidatorSet, ValidatorSetError};

use crate::genesis::{
    check_name, AgencyInfo, ChainParams, Genesis, IssuerInfo, LenderInfo, ObserverInfo, ValidatorInfo, MAX_AGENCIES, MAX_ISSUERS,
    MAX_LENDERS, MAX_OBSERVERS,
};
use crate::tx::{AttestationKind, SignedTransaction, TxBody, TxId};

/// Domain tag of the membership hash in block headers.
pub const TAG_MEMBERSHIP: &[u8] = b"ledger/membership";
/// Most changes in one proposal.
pub const MAX_CHANGES: usize = 16;
/// Longest proposal summary, in bytes.
pub const MAX_SUMMARY_BYTES: usize = 256;
/// Most validators a membership may have (what the chain is tested with; the
/// consensus core's hard cap is higher).
pub const MAX_MEMBER_VALIDATORS: usize = 16;
/// Most retired keys kept (each change retires at most two; far above any real
/// consortium's lifetime of changes, and it bounds a membership's size).
pub const MAX_RETIRED_KEYS: usize = 4096;

/// Which role a key had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Agency,
    Validator,
    Issuer,
    Observer,
    Lender,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Agency => "agency",
            Role::Validator => "validator",
            Role::Issuer => "issuer",
            Role::Observer => "observer",
            Role::Lender => "lender",
        })
    }
}

/// Why a key stopped being valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RetireReason {
    Removed,
    Rotated,
    Frozen,
}

impl fmt::Display for RetireReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RetireReason::Removed => "removed",
            RetireReason::Rotated => "rotated",
            RetireReason::Frozen => "frozen",
        })
    }
}

/// A key that is no longer valid, and since which height.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiredKey {
    pub key: PublicKey,
    pub role: Role,
    pub name: String,
    /// The first height at which the key is no longer valid.
    pub since: u64,
    pub reason: RetireReason,
}

/// One change to the membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    AddAgency(AgencyInfo),
    RemoveAgency { name: String },
    RotateAgencyKey { name: String, key: PublicKey },
    AddValidator(ValidatorInfo),
    RemoveValidator { name: String },
    RotateValidatorKey { name: String, key: PublicKey },
    AddIssuer(IssuerInfo),
    RemoveIssuer { name: String },
    RotateIssuerKey { name: String, key: PublicKey },
    /// Replaces the kinds an issuer may attest and its right to revoke any record.
    SetIssuerRights { name: String, kinds: Vec<AttestationKind>, may_revoke_any: bool },
    /// Freezes the issuer's current key at once (a leaked key): new transactions
    /// signed with it are refused; a later `RotateIssuerKey` gives it a new key.
    FreezeIssuer { name: String },
    AddObserver(ObserverInfo),
    RemoveObserver { name: String },
    SetParams(ChainParams),
    /// Adds a lender (docs/access.md), sponsored by an agency in force. A lender's
    /// name is never given to another lender, even after it is removed: the
    /// authorisations on chain name it.
    AddLender(LenderInfo),
    /// Removes a lender: its key is retired and its authorisations stop covering
    /// anything (its requests are refused).
    RemoveLender { name: String },
    RotateLenderKey { name: String, key: PublicKey },
}

impl Change {
    /// A short description, for logs and the CLI.
    pub fn describe(&self) -> String {
        match self {
            Change::AddAgency(a) => format!("add agency {} ({})", a.name, a.region),
            Change::RemoveAgency { name } => format!("remove agency {name}"),
            Change::RotateAgencyKey { name, key } => format!("rotate agency {name}'s admin key to {}", short(key)),
            Change::AddValidator(v) => format!("add validator {} ({}, key {})", v.name, v.region, short(&v.key)),
            Change::RemoveValidator { name } => format!("remove validator {name}"),
            Change::RotateValidatorKey { name, key } => format!("rotate validator {name}'s key to {}", short(key)),
            Change::AddIssuer(i) => format!("add issuer {} ({}, key {})", i.name, i.region, short(&i.key)),
            Change::RemoveIssuer { name } => format!("remove issuer {name}"),
            Change::RotateIssuerKey { name, key } => format!("rotate issuer {name}'s key to {}", short(key)),
            Change::SetIssuerRights { name, kinds, may_revoke_any } => format!(
                "set issuer {name}'s kinds to {}{}",
                kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(","),
                if *may_revoke_any { " (may revoke any)" } else { "" }
            ),
            Change::FreezeIssuer { name } => format!("freeze issuer {name}'s key"),
            Change::AddObserver(o) => format!("add observer {} (key {})", o.name, short(&o.key)),
            Change::RemoveObserver { name } => format!("remove observer {name}"),
            Change::SetParams(p) => format!(
                "set parameters: max_block_txs {}, max_block_bytes {}, approval > {}/{}, delay {} blocks, proposal ttl {} blocks, restricted kinds {}",
                p.max_block_txs,
                p.max_block_bytes,
                p.governance.approval_num,
                p.governance.approval_den,
                p.governance.activation_delay_blocks,
                p.governance.max_proposal_ttl_blocks,
                if p.restricted_kinds.is_empty() {
                    "none".to_string()
                } else {
                    p.restricted_kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(",")
                }
            ),
            Change::AddLender(l) => format!("add lender {} (sponsored by {}, key {})", l.name, l.sponsor, short(&l.key)),
            Change::RemoveLender { name } => format!("remove lender {name}"),
            Change::RotateLenderKey { name, key } => format!("rotate lender {name}'s key to {}", short(key)),
        }
    }

    fn is_freeze(&self) -> bool {
        matches!(self, Change::FreezeIssuer { .. })
    }
}

fn short(k: &PublicKey) -> String {
    k.to_hex()[..12].to_string()
}

/// A governance proposal, signed by an agency's admin key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GovProposal {
    pub changes: Vec<Change>,
    /// The last height at which an approval counts; past it the proposal expires.
    pub deadline: u64,
    /// What the proposal is for, in a few words (at most [`MAX_SUMMARY_BYTES`]).
    pub summary: String,
}

/// An agency's approval of an earlier proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GovApproval {
    pub proposal: TxId,
}

/// The membership in force at some height: who may do what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub params: ChainParams,
    pub agencies: Vec<AgencyInfo>,
    pub validators: Vec<ValidatorInfo>,
    pub issuers: Vec<IssuerInfo>,
    /// Names of issuers whose current key is frozen (sorted).
    pub frozen: Vec<String>,
    pub observers: Vec<ObserverInfo>,
    /// Every key no longer valid, in the order retired.
    pub retired: Vec<RetiredKey>,
    /// Lenders in force (docs/access.md).
    pub lenders: Vec<LenderInfo>,
}

/// Why a change cannot be applied to a membership.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    #[error("there is no {what} named {name:?}")]
    UnknownName { what: Role, name: String },
    #[error("a {what} named {name:?} already exists")]
    NameTaken { what: Role, name: String },
    #[error("key {key} is already in use by {role} {name:?}")]
    KeyInUse { key: String, role: Role, name: String },
    #[error("key {key} was retired at height {since} ({reason} {role} {name:?}) and can never be used again")]
    KeyRetired { key: String, role: Role, name: String, since: u64, reason: RetireReason },
    #[error("key cannot be used: {0}")]
    WeakKey(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the change would leave no {0}")]
    WouldLeaveNone(Role),
    #[error("too many {what}: at most {max}")]
    TooMany { what: Role, max: usize },
    #[error("invalid parameters: {0}")]
    Params(String),
}

impl Membership {
    pub fn from_genesis(g: &Genesis) -> Membership {
        Membership {
            params: g.params.clone(),
            agencies: g.agencies.clone(),
            validators: g.validators.clone(),
            issuers: g.issuers.clone(),
            frozen: Vec::new(),
            observers: g.observers.clone(),
            retired: Vec::new(),
            lenders: g.lenders.clone(),
        }
    }

    /// `SHA-256(signing_bytes("ledger/membership", canonical(self)))`: what block
    /// headers commit to.
    pub fn hash(&self) -> Result<Hash32, CodecError> {
        let bytes = codec::encode(self)?;
        Ok(sha256(&[&signing_bytes(TAG_MEMBERSHIP, &bytes)]))
    }

    pub fn validator_set(&self) -> Result<ValidatorSet, ValidatorSetError> {
        ValidatorSet::new(self.validators.iter().map(|v| v.key).collect())
    }

    /// The issuer whose current, unfrozen key is `key`.
    pub fn issuer(&self, key: &PublicKey) -> Option<&IssuerInfo> {
        self.issuers.iter().find(|i| &i.key == key && !self.is_frozen(&i.name))
    }

    /// The issuer whose current key is `key`, frozen or not.
    pub fn issuer_any(&self, key: &PublicKey) -> Option<&IssuerInfo> {
        self.issuers.iter().find(|i| &i.key == key)
    }

    pub fn issuer_by_name(&self, name: &str) -> Option<&IssuerInfo> {
        self.issuers.iter().find(|i| i.name == name)
    }

    pub fn is_frozen(&self, issuer_name: &str) -> bool {
        self.frozen.binary_search_by(|n| n.as_str().cmp(issuer_name)).is_ok()
    }

    /// The agency whose admin key is `key`.
    pub fn agency(&self, key: &PublicKey) -> Option<&AgencyInfo> {
        self.agencies.iter().find(|a| &a.key == key)
    }

    pub fn validator_by_key(&self, key: &PublicKey) -> Option<&ValidatorInfo> {
        self.validators.iter().find(|v| &v.key == key)
    }

    /// The lender whose current key is `key`.
    pub fn lender(&self, key: &PublicKey) -> Option<&LenderInfo> {
        self.lenders.iter().find(|l| &l.key == key)
    }

    pub fn lender_by_name(&self, name: &str) -> Option<&LenderInfo> {
        self.lenders.iter().find(|l| l.name == name)
    }

    /// The validator or observer whose key is `key`: a node that may record the
    /// queries it served (docs/access.md).
    pub fn node_by_key(&self, key: &PublicKey) -> Option<&str> {
        self.validators
            .iter()
            .find(|v| &v.key == key)
            .map(|v| v.name.as_str())
            .or_else(|| self.observers.iter().find(|o| &o.key == key).map(|o| o.name.as_str()))
    }

    /// Keys allowed to connect to the network: validators and observers.
    pub fn network_keys(&self) -> Vec<PublicKey> {
        self.network_members().map(|(k, _)| k).collect()
    }

    /// [`Self::network_keys`] with their validator or observer names.
    pub fn network_members(&self) -> impl Iterator<Item = (PublicKey, String)> + '_ {
        self.validators.iter().map(|v| (v.key, v.name.clone())).chain(self.observers.iter().map(|o| (o.key, o.name.clone())))
    }

    /// The retirement record of `key`, if it was retired.
    /// Whether a member of `role` named `name` was removed (its retired key says so).
    fn removed_name(&self, role: Role, name: &str) -> bool {
        self.retired.iter().any(|r| r.role == role && r.name == name && r.reason == RetireReason::Removed)
    }

    pub fn retired_key(&self, key: &PublicKey) -> Option<&RetiredKey> {
        self.retired.iter().find(|r| &r.key == key)
    }

    /// Who holds `key` now (role and name), if anyone.
    fn holder(&self, key: &PublicKey) -> Option<(Role, &str)> {
        self.agencies
            .iter()
            .find(|a| &a.key == key)
            .map(|a| (Role::Agency, a.name.as_str()))
            .or_else(|| self.validators.iter().find(|v| &v.key == key).map(|v| (Role::Validator, v.name.as_str())))
            .or_else(|| self.issuers.iter().find(|i| &i.key == key).map(|i| (Role::Issuer, i.name.as_str())))
            .or_else(|| self.observers.iter().find(|o| &o.key == key).map(|o| (Role::Observer, o.name.as_str())))
            .or_else(|| self.lenders.iter().find(|l| &l.key == key).map(|l| (Role::Lender, l.name.as_str())))
    }

    /// A key may be given to a role: it passes the key rule, nobody holds it,
    /// and it was never retired.
    fn check_new_key(&self, key: &PublicKey) -> Result<(), ChangeError> {
        key.check().map_err(|e| ChangeError::WeakKey(e.to_string()))?;
        if let Some((role, name)) = self.holder(key) {
            return Err(ChangeError::KeyInUse { key: key.to_hex(), role, name: name.to_string() });
        }
        if let Some(r) = self.retired_key(key) {
            return Err(ChangeError::KeyRetired {
                key: key.to_hex(),
                role: r.role,
                name: r.name.clone(),
                since: r.since,
                reason: r.reason,
            });
        }
        Ok(())
    }

    fn retire(&mut self, key: PublicKey, role: Role, name: &str, since: u64, reason: RetireReason) {
        if self.retired_key(&key).is_none() {
            self.retired.push(RetiredKey { key, role, name: name.to_string(), since, reason });
        }
    }

    /// Names of nodes and issuers share one namespace (as in the genesis);
    /// agencies have their own.
    fn node_name_taken(&self, name: &str) -> Option<Role> {
        if self.validators.iter().any(|v| v.name == name) {
            Some(Role::Validator)
        } else if self.issuers.iter().any(|i| i.name == name) {
            Some(Role::Issuer)
        } else if self.observers.iter().any(|o| o.name == name) {
            Some(Role::Observer)
        } else {
            None
        }
    }

    /// Applies one change, effective at height `at`. On error the membership may
    /// be partly changed: apply to a copy (see [`Membership::apply_all`]).
    pub fn apply(&mut self, change: &Change, at: u64) -> Result<(), ChangeError> {
        let unknown = |what: Role, name: &str| ChangeError::UnknownName { what, name: name.to_string() };
        match change {
            Change::AddAgency(a) => {
                check_name("agency", &a.name).map_err(|e| ChangeError::Invalid(e.to_string()))?;
                if self.agencies.iter().any(|x| x.name == a.name) {
                    return Err(ChangeError::NameTaken { what: Role::Agency, name: a.name.clone() });
                }
                // Approvals count by agency name: a removed agency's name is never
                // reused (its approvals of open proposals would count again).
                if self.removed_name(Role::Agency, &a.name) {
                    return Err(ChangeError::Invalid(format!(
                        "agency name {:?} belonged to a removed agency; approvals on chain name it, so it is never reused",
                        a.name
                    )));
                }
                if self.agencies.len() >= MAX_AGENCIES {
                    return Err(ChangeError::TooMany { what: Role::Agency, max: MAX_AGENCIES });
                }
                self.check_new_key(&a.key)?;
                self.agencies.push(a.clone());
            }
            Change::RemoveAgency { name } => {
                let i = self.agencies.iter().position(|x| &x.name == name).ok_or_else(|| unknown(Role::Agency, name))?;
                if self.agencies.len() == 1 {
                    return Err(ChangeError::WouldLeaveNone(Role::Agency));
                }
                if let Some(l) = self.lenders.iter().find(|l| &l.sponsor == name) {
                    return Err(ChangeError::Invalid(format!(
                        "agency {name:?} sponsors lender {:?}; remove its lenders first",
                        l.name
                    )));
                }
                let gone = self.agencies.remove(i);
                self.retire(gone.key, Role::Agency, &gone.name, at, RetireReason::Removed);
            }
            Change::RotateAgencyKey { name, key } => {
                self.check_new_key(key)?;
                let i = self.agencies.iter().position(|x| &x.name == name).ok_or_else(|| unknown(Role::Agency, name))?;
                let old = std::mem::replace(&mut self.agencies[i].key, *key);
                self.retire(old, Role::Agency, name, at, RetireReason::Rotated);
            }
            Change::AddValidator(v) => {
                check_name("validator", &v.name).map_err(|e| ChangeError::Invalid(e.to_string()))?;
                if let Some(what) = self.node_name_taken(&v.name) {
                    return Err(ChangeError::NameTaken { what, name: v.name.clone() });
                }
                if self.validators.len() >= MAX_MEMBER_VALIDATORS {
                    return Err(ChangeError::TooMany { what: Role::Validator, max: MAX_MEMBER_VALIDATORS });
                }
                self.check_new_key(&v.key)?;
                self.validators.push(v.clone());
            }
            Change::RemoveValidator { name } => {
                let i =
                    self.validators.iter().position(|x| &x.name == name).ok_or_else(|| unknown(Role::Validator, name))?;
                if self.validators.len() == 1 {
                    return Err(ChangeError::WouldLeaveNone(Role::Validator));
                }
                let gone = self.validators.remove(i);
                self.retire(gone.key, Role::Validator, &gone.name, at, RetireReason::Removed);
            }
            Change::RotateValidatorKey { name, key } => {
                self.check_new_key(key)?;
                let i =
                    self.validators.iter().position(|x| &x.name == name).ok_or_else(|| unknown(Role::Validator, name))?;
                let old = std::mem::replace(&mut self.validators[i].key, *key);
                self.retire(old, Role::Validator, name, at, RetireReason::Rotated);
            }
            Change::AddIssuer(i) => {
                check_name("issuer", &i.name).map_err(|e| ChangeError::Invalid(e.to_string()))?;
                check_kinds(&i.kinds)?;
                if let Some(what) = self.node_name_taken(&i.name) {
                    return Err(ChangeError::NameTaken { what, name: i.name.clone() });
                }
                // Revocation authority and read access follow the issuer's name: a
                // removed issuer's name is never reused (a newcomer would revoke
                // and read what the removed issuer signed).
                if self.removed_name(Role::Issuer, &i.name) {
                    return Err(ChangeError::Invalid(format!(
                        "issuer name {:?} belonged to a removed issuer; its records on chain name it, so it is never reused",
                        i.name
                    )));
                }
                if self.issuers.len() >= MAX_ISSUERS {
                    return Err(ChangeError::TooMany { what: Role::Issuer, max: MAX_ISSUERS });
                }
                self.check_new_key(&i.key)?;
                self.issuers.push(i.clone());
            }
            Change::RemoveIssuer { name } => {
                let i = self.issuers.iter().position(|x| &x.name == name).ok_or_else(|| unknown(Role::Issuer, name))?;
                let gone = self.issuers.remove(i);
                self.frozen.retain(|n| n != name);
                self.retire(gone.key, Role::Issuer, &gone.name, at, RetireReason::Removed);
            }
            Change::RotateIssuerKey { name, key } => {
                self.check_new_key(key)?;
                let i = self.issuers.iter().position(|x| &x.name == name).ok_or_else(|| unknown(Role::Issuer, name))?;
                let old = std::mem::replace(&mut self.issuers[i].key, *key);
                self.frozen.retain(|n| n != name);
                self.retire(old, Role::Issuer, name, at, RetireReason::Rotated);
            }
            Change::SetIssuerRights { name, kinds, may_revoke_any } => {
                check_kinds(kinds)?;
                let i = self.issuers.iter_mut().find(|x| &x.name == name).ok_or_else(|| unknown(Role::Issuer, name))?;
                i.kinds = kinds.clone();
                i.may_revoke_any = *may_revoke_any;
            }
            Change::FreezeIssuer { name } => {
                let key = self.issuer_by_name(name).ok_or_else(|| unknown(Role::Issuer, name))?.key;
                if self.is_frozen(name) {
                    return Err(ChangeError::Invalid(format!("issuer {name:?}'s key is already frozen")));
                }
                self.frozen.push(name.clone());
                self.frozen.sort();
                self.retire(key, Role::Issuer, name, at, RetireReason::Frozen);
            }
            Change::AddObserver(o) => {
                check_name("observer", &o.name).map_err(|e| ChangeError::Invalid(e.to_string()))?;
                if let Some(what) = self.node_name_taken(&o.name) {
                    return Err(ChangeError::NameTaken { what, name: o.name.clone() });
                }
                if self.observers.len() >= MAX_OBSERVERS {
                    return Err(ChangeError::TooMany { what: Role::Observer, max: MAX_OBSERVERS });
                }
                self.check_new_key(&o.key)?;
                self.observers.push(o.clone());
            }
            Change::RemoveObserver { name } => {
                let i =
                    self.observers.iter().position(|x| &x.name == name).ok_or_else(|| unknown(Role::Observer, name))?;
                let gone = self.observers.remove(i);
                self.retire(gone.key, Role::Observer, &gone.name, at, RetireReason::Removed);
            }
            Change::SetParams(p) => {
                p.validate().map_err(ChangeError::Params)?;
                self.params = p.clone();
            }
            Change::AddLender(l) => {
                check_name("lender", &l.name).map_err(|e| ChangeError::Invalid(e.to_string()))?;
                if self.lenders.iter().any(|x| x.name == l.name) {
                    return Err(ChangeError::NameTaken { what: Role::Lender, name: l.name.clone() });
                }
                // Authorisations name their lender: a name is never reused.
                if self.removed_name(Role::Lender, &l.name) {
                    return Err(ChangeError::Invalid(format!(
                        "lender name {:?} belonged to a removed lender; authorisations on chain name it, so it is never reused",
                        l.name
                    )));
                }
                if !self.agencies.iter().any(|a| a.name == l.sponsor) {
                    return Err(unknown(Role::Agency, &l.sponsor));
                }
                if self.lenders.len() >= MAX_LENDERS {
                    return Err(ChangeError::TooMany { what: Role::Lender, max: MAX_LENDERS });
                }
                self.check_new_key(&l.key)?;
                self.lenders.push(l.clone());
            }
            Change::RemoveLender { name } => {
                let i = self.lenders.iter().position(|x| &x.name == name).ok_or_else(|| unknown(Role::Lender, name))?;
                let gone = self.lenders.remove(i);
                self.retire(gone.key, Role::Lender, &gone.name, at, RetireReason::Removed);
            }
            Change::RotateLenderKey { name, key } => {
                self.check_new_key(key)?;
                let i = self.lenders.iter().position(|x| &x.name == name).ok_or_else(|| unknown(Role::Lender, name))?;
                let old = std::mem::replace(&mut self.lenders[i].key, *key);
                self.retire(old, Role::Lender, name, at, RetireReason::Rotated);
            }
        }
        if self.retired.len() > MAX_RETIRED_KEYS {
            return Err(ChangeError::TooMany { what: Role::Validator, max: MAX_RETIRED_KEYS });
        }
        Ok(())
    }

    /// Applies every change of a proposal, all or nothing: the new membership, or
    /// the index of the first change that does not apply and why.
    pub fn apply_all(&self, changes: &[Change], at: u64) -> Result<Membership, (usize, ChangeError)> {
        let mut next = self.clone();
        for (i, c) in changes.iter().enumerate() {
            next.apply(c, at).map_err(|e| (i, e))?;
        }
        Ok(next)
    }
}

fn check_kinds(kinds: &[AttestationKind]) -> Result<(), ChangeError> {
    if kinds.is_empty() {
        return Err(ChangeError::Invalid("an issuer must be allowed at least one kind".into()));
    }
    if kinds.windows(2).any(|w| w[0] >= w[1]) {
        return Err(ChangeError::Invalid("kinds must be sorted and unique".into()));
    }
    Ok(())
}

/// Where a proposal stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Collecting approvals (expired once the height passes its deadline).
    Open,
    /// Approved by transaction `index` of block `height`; takes effect at `effective`.
    Approved { height: u64, index: u32, effective: u64 },
    /// In force since `effective`.
    Applied { height: u64, index: u32, effective: u64 },
    /// Approved, but change number `change` no longer applied at `effective`.
    Failed { height: u64, index: u32, effective: u64, change: u32, reason: String },
}

/// One agency's approval, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalEntry {
    pub agency: String,
    /// The approval transaction (the proposal itself for the proposer's approval).
    pub tx: TxId,
    pub height: u64,
}

/// A proposal and what became of it (stored under its transaction id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalRecord {
    pub id: TxId,
    pub height: u64,
    pub proposer: String,
    pub proposal: GovProposal,
    pub approvals: Vec<ApprovalEntry>,
    pub outcome: Outcome,
}

impl ProposalRecord {
    /// The outcome as seen at `height` (an open proposal past its deadline has expired).
    pub fn state_at(&self, height: u64) -> &'static str {
        match self.outcome {
            Outcome::Open if height > self.proposal.deadline => "expired",
            Outcome::Open => "open",
            Outcome::Approved { .. } => "approved",
            Outcome::Applied { .. } => "applied",
            Outcome::Failed { .. } => "failed",
        }
    }

    /// The effective height, once approved.
    pub fn effective(&self) -> Option<u64> {
        match self.outcome {
            Outcome::Approved { effective, .. }
            | Outcome::Applied { effective, .. }
            | Outcome::Failed { effective, .. } => Some(effective),
            Outcome::Open => None,
        }
    }
}

/// Why a governance transaction is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GovError {
    #[error("key {0} is not the governance key of any agency in force")]
    NotAnAgency(PublicKey),
    #[error("a proposal needs 1 to {MAX_CHANGES} changes, this one has {0}")]
    ChangeCount(usize),
    #[error("the summary is {0} bytes, at most {MAX_SUMMARY_BYTES} allowed (and no control characters)")]
    BadSummary(usize),
    #[error("deadline {deadline} must be between this height {height} and {max} (the proposal lifetime is a chain parameter)")]
    BadDeadline { deadline: u64, height: u64, max: u64 },
    #[error("change {index} does not apply: {reason}")]
    BadChange { index: usize, reason: String },
    #[error("proposal {0} is not on the ledger (approve a proposal committed in an earlier block)")]
    UnknownProposal(TxId),
    #[error("proposal {id} is already {state}; no more approvals are taken")]
    ProposalClosed { id: TxId, state: &'static str },
    #[error("proposal {id} expired at height {deadline} (this is height {height})")]
    ProposalExpired { id: TxId, deadline: u64, height: u64 },
    #[error("agency {agency:?} already approved proposal {id}")]
    AlreadyApproved { id: TxId, agency: String },
}

impl GovError {
    pub fn code(&self) -> &'static str {
        match self {
            GovError::NotAnAgency(_) => "not_an_agency",
            GovError::ChangeCount(_) | GovError::BadSummary(_) | GovError::BadDeadline { .. } => "bad_proposal",
            GovError::BadChange { .. } => "bad_change",
            GovError::UnknownProposal(_) => "unknown_proposal",
            GovError::ProposalClosed { .. } => "proposal_closed",
            GovError::ProposalExpired { .. } => "proposal_expired",
            GovError::AlreadyApproved { .. } => "already_approved",
        }
    }
}

/// Whether approval `e` counts under membership `m`: its agency is in force and
/// the key that signed it is still the agency's (no rotation of that agency's
/// key took effect after the approval's height). A rotation answers a leaked
/// key: what the old key approved stops counting, and the agency may approve
/// again with its new key.
pub fn approval_counts(m: &Membership, e: &ApprovalEntry) -> bool {
    m.agencies.iter().any(|a| a.name == e.agency)
        && !m
            .retired
            .iter()
            .any(|r| r.role == Role::Agency && r.reason == RetireReason::Rotated && r.name == e.agency && r.since > e.height)
}

/// Whether `approving` of `total` agencies is more than `num/den` of them.
pub fn threshold_met(approving: usize, total: usize, num: u32, den: u32) -> bool {
    (approving as u128) * (den as u128) > (num as u128) * (total as u128)
}

/// The governance state: the membership at every height (a timeline of changes)
/// and every proposal. Two states are equal when they hold the same timeline,
/// proposal records and schedule (the advance-to-height equivalence test
/// compares states built two ways).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GovState {
    /// Effective height → membership from that height on. Height 1 is the genesis.
    timeline: BTreeMap<u64, Arc<Membership>>,
    proposals: HashMap<TxId, ProposalRecord>,
    /// Effective height → approved proposals taking effect then, in approval order.
    scheduled: BTreeMap<u64, Vec<TxId>>,
}

/// What a block does to the governance state (written with the block).
#[derive(Debug, Clone, Default)]
pub struct GovDelta {
    /// Proposal records created or changed.
    pub records: Vec<ProposalRecord>,
    /// The membership from height `.0` on, when the block changes it.
    pub membership: Option<(u64, Membership)>,
}

impl GovDelta {
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.membership.is_none()
    }
}

impl GovState {
    pub fn new(genesis: &Genesis) -> GovState {
        let mut timeline = BTreeMap::new();
        timeline.insert(1, Arc::new(Membership::from_genesis(genesis)));
        GovState { timeline, proposals: HashMap::new(), scheduled: BTreeMap::new() }
    }

    /// Rebuilds the state from stored memberships and proposal records.
    pub fn restore(genesis: &Genesis, memberships: Vec<(u64, Membership)>, records: Vec<ProposalRecord>) -> GovState {
        let mut s = GovState::new(genesis);
        for (h, m) in memberships {
            s.timeline.insert(h, Arc::new(m));
        }
        // Approved, not yet in force: scheduled in approval order.
        let mut approved: Vec<(u64, u64, u32, TxId)> = Vec::new();
        for r in records {
            if let Outcome::Approved { height, index, effective } = r.outcome {
                approved.push((effective, height, index, r.id));
            }
            s.proposals.insert(r.id, r);
        }
        approved.sort();
        for (effective, _, _, id) in approved {
            s.scheduled.entry(effective).or_default().push(id);
        }
        s
    }

    /// The membership in force at `height` (≥ 1).
    pub fn membership_at(&self, height: u64) -> &Arc<Membership> {
        self.timeline
            .range(..=height.max(1))
            .next_back()
            .map(|(_, m)| m)
            .unwrap_or_else(|| unreachable!("the timeline always holds height 1"))
    }

    /// Every change of membership: (effective height, membership), in order,
    /// starting with the genesis at height 1.
    pub fn timeline(&self) -> impl Iterator<Item = (u64, &Arc<Membership>)> {
        self.timeline.iter().map(|(h, m)| (*h, m))
    }

    pub fn proposal(&self, id: &TxId) -> Option<&ProposalRecord> {
        self.proposals.get(id)
    }

    pub fn proposals(&self) -> impl Iterator<Item = &ProposalRecord> {
        self.proposals.values()
    }

    /// The validator set at `height`, for heights up to two above the last
    /// committed block: approved changes to validators are known `D ≥ 2` blocks
    /// ahead (module docs). Freezes due by then are not applied here; they never
    /// change validators.
    pub fn validators_at(&self, height: u64) -> Result<ValidatorSet, ValidatorSetError> {
        let (from, base) = self
            .timeline
            .range(..=height.max(1))
            .next_back()
            .map(|(h, m)| (*h, m.clone()))
            .unwrap_or_else(|| unreachable!("the timeline always holds height 1"));
        let mut m = (*base).clone();
        use std::ops::Bound::{Excluded, Included};
        for (eff, ids) in self.scheduled.range((Excluded(from), Included(height))) {
            for id in ids {
                if let Some(r) = self.proposals.get(id) {
                    if let Ok(next) = m.apply_all(&r.proposal.changes, *eff) {
                        m = next;
                    }
                }
            }
        }
        m.validator_set()
    }

    /// Keys allowed to connect to the network from `height` on: the validators
    /// and observers of the membership in force at `height` and of every
    /// membership already decided to follow it — including approved changes not
    /// yet in force, so that a validator being added can connect and catch up
    /// before its first vote.
    pub fn network_keys_from(&self, height: u64) -> Vec<PublicKey> {
        self.network_members_from(height).into_keys().collect()
    }

    /// The keys of [`Self::network_keys_from`] with their names (validator or
    /// observer names; the latest membership naming a key wins), for the logs.
    pub fn network_members_from(&self, height: u64) -> BTreeMap<PublicKey, String> {
        use std::ops::Bound::{Excluded, Unbounded};
        let mut keys: BTreeMap<PublicKey, String> = self.membership_at(height).network_members().collect();
        for (_, m) in self.timeline.range((Excluded(height.max(1)), Unbounded)) {
            keys.extend(m.network_members());
        }
        let mut projected = self.timeline.values().next_back().map(|m| (**m).clone());
        for (eff, ids) in &self.scheduled {
            for id in ids {
                let (Some(m), Some(r)) = (projected.as_ref(), self.proposals.get(id)) else { continue };
                if let Ok(next) = m.apply_all(&r.proposal.changes, *eff) {
                    keys.extend(next.network_members());
                    projected = Some(next);
                }
            }
        }
        keys
    }

    /// Starts the governance part of executing block `height` (whose membership
    /// is `membership_at(height)`).
    pub fn begin_block(&self, height: u64) -> BlockGov<'_> {
        BlockGov { state: self, height, membership: self.membership_at(height).clone(), changed: BTreeMap::new(), completed: Vec::new() }
    }

    /// Takes in what a committed block did (its [`GovDelta`]). Proposals it
    /// approved are scheduled in approval order (block height, then position in
    /// the block), the order [`GovState::restore`] rebuilds and the order in
    /// which proposals taking effect at one height are applied.
    pub fn apply(&mut self, delta: &GovDelta) {
        let mut approved: Vec<(u64, u32, u64, TxId)> = delta
            .records
            .iter()
            .filter_map(|r| match r.outcome {
                Outcome::Approved { height, index, effective } => Some((height, index, effective, r.id)),
                _ => None,
            })
            .collect();
        approved.sort();
        for (_, _, effective, id) in approved {
            let list = self.scheduled.entry(effective).or_default();
            if !list.contains(&id) {
                list.push(id);
            }
        }
        for r in &delta.records {
            if let Outcome::Applied { effective, .. } | Outcome::Failed { effective, .. } = r.outcome {
                if let Some(list) = self.scheduled.get_mut(&effective) {
                    list.retain(|id| id != &r.id);
                    if list.is_empty() {
                        self.scheduled.remove(&effective);
                    }
                }
            }
            self.proposals.insert(r.id, r.clone());
        }
        if let Some((h, m)) = &delta.membership {
            self.timeline.insert(*h, Arc::new(m.clone()));
        }
    }

    /// Brings the state to where executing every block below `height` leaves it,
    /// when none of the blocks after the last one taken in holds a governance
    /// transaction: every approved proposal taking effect at or below `height` is
    /// applied at its effective height, exactly as [`BlockGov::finish`] of the
    /// block before would apply it (same order, same all-or-nothing rule, same
    /// records). Costs one step per effective height due, not one per block: an
    /// offline verifier replays a chain's governance from only the blocks that
    /// hold governance transactions. Calling it again, or with a lower height,
    /// changes nothing.
    pub fn advance_to(&mut self, height: u64) {
        let due: Vec<u64> = self.scheduled.range(..=height).map(|(h, _)| *h).collect();
        for effective in due {
            let records: Vec<ProposalRecord> = self
                .scheduled
                .get(&effective)
                .map(|ids| ids.iter().filter_map(|id| self.proposals.get(id).cloned()).collect())
                .unwrap_or_default();
            // The block before `effective` executes with the membership of its height.
            let base = self.membership_at(effective.saturating_sub(1)).clone();
            let (membership, records) = settle(&base, records);
            self.apply(&GovDelta { records, membership: membership.map(|m| (effective, m)) });
        }
    }

    /// Every proposal in force at or below `height`: applied, with its effective
    /// height at most `height`, in the order applied (effective height, then
    /// approval order).
    pub fn applied_up_to(&self, height: u64) -> Vec<&ProposalRecord> {
        let mut out: Vec<&ProposalRecord> = self
            .proposals
            .values()
            .filter(|r| matches!(r.outcome, Outcome::Applied { effective, .. } if effective <= height))
            .collect();
        out.sort_by_key(|r| match r.outcome {
            Outcome::Applied { height, index, effective } => (effective, height, index),
            _ => (0, 0, 0),
        });
        out
    }
}

/// Applies the approved proposals due at one height to `base`, in the order
/// given (approval order), each whole or not at all: the new membership (None
/// if none applied) and the proposals' records with their outcome (`Applied`, or
/// `Failed` naming the first change that no longer applies). Records that are
/// not `Approved` are left out.
fn settle(base: &Membership, due: Vec<ProposalRecord>) -> (Option<Membership>, Vec<ProposalRecord>) {
    let mut membership: Option<Membership> = None;
    let mut settled = Vec::with_capacity(due.len());
    for mut rec in due {
        let Outcome::Approved { height, index, effective } = rec.outcome else { continue };
        match membership.as_ref().unwrap_or(base).apply_all(&rec.proposal.changes, effective) {
            Ok(m) => {
                membership = Some(m);
                rec.outcome = Outcome::Applied { height, index, effective };
            }
            Err((change, e)) => {
                rec.outcome = Outcome::Failed { height, index, effective, change: change as u32, reason: e.to_string() };
            }
        }
        settled.push(rec);
    }
    (membership, settled)
}

/// Governance while one block executes: checks and applies its governance
/// transactions in order, then computes the membership of the next height.
pub struct BlockGov<'a> {
    state: &'a GovState,
    height: u64,
    membership: Arc<Membership>,
    changed: BTreeMap<TxId, ProposalRecord>,
    /// Proposals approved in this block, in order.
    completed: Vec<TxId>,
}

impl BlockGov<'_> {
    pub fn membership(&self) -> &Arc<Membership> {
        &self.membership
    }

    fn record(&self, id: &TxId) -> Option<&ProposalRecord> {
        self.changed.get(id).or_else(|| self.state.proposals.get(id))
    }

    /// Checks a governance transaction (signature aside) against the state as this
    /// block has changed it so far. Not a governance transaction: `Ok`.
    pub fn check(&self, tx: &SignedTransaction, id: &TxId) -> Result<(), GovError> {
        let t = &tx.tx;
        match &t.body {
            TxBody::Propose(p) => {
                self.membership.agency(&t.issuer).ok_or(GovError::NotAnAgency(t.issuer))?;
                if p.changes.is_empty() || p.changes.len() > MAX_CHANGES {
                    return Err(GovError::ChangeCount(p.changes.len()));
                }
                if p.summary.len() > MAX_SUMMARY_BYTES || p.summary.chars().any(char::is_control) {
                    return Err(GovError::BadSummary(p.summary.len()));
                }
                let max = self.height.saturating_add(self.membership.params.governance.max_proposal_ttl_blocks);
                if p.deadline < self.height || p.deadline > max {
                    return Err(GovError::BadDeadline { deadline: p.deadline, height: self.height, max });
                }
                // Each change must apply to the membership as it stands now (it is
                // checked again when it takes effect).
                self.membership
                    .apply_all(&p.changes, self.height)
                    .map_err(|(index, e)| GovError::BadChange { index, reason: e.to_string() })?;
                if self.record(id).is_some() {
                    return Err(GovError::ProposalClosed { id: *id, state: "on the ledger" });
                }
                Ok(())
            }
            TxBody::Approve(a) => {
                let agency = self.membership.agency(&t.issuer).ok_or(GovError::NotAnAgency(t.issuer))?;
                let r = self.record(&a.proposal).ok_or(GovError::UnknownProposal(a.proposal))?;
                if r.height >= self.height {
                    return Err(GovError::UnknownProposal(a.proposal));
                }
                if r.outcome != Outcome::Open {
                    return Err(GovError::ProposalClosed { id: a.proposal, state: r.state_at(self.height) });
                }
                if self.height > r.proposal.deadline {
                    return Err(GovError::ProposalExpired { id: a.proposal, deadline: r.proposal.deadline, height: self.height });
                }
                if r.approvals.iter().any(|x| x.agency == agency.name && approval_counts(&self.membership, x)) {
                    return Err(GovError::AlreadyApproved { id: a.proposal, agency: agency.name.clone() });
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Applies a governance transaction that passed [`BlockGov::check`] (and its
    /// signature check); `index` is its position in the block. Not a governance
    /// transaction: nothing.
    pub fn apply(&mut self, tx: &SignedTransaction, id: &TxId, index: u32) -> Result<(), GovError> {
        self.check(tx, id)?;
        let t = &tx.tx;
        let target = match &t.body {
            TxBody::Propose(p) => {
                let agency = self.membership.agency(&t.issuer).ok_or(GovError::NotAnAgency(t.issuer))?.name.clone();
                let rec = ProposalRecord {
                    id: *id,
                    height: self.height,
                    proposer: agency.clone(),
                    proposal: p.clone(),
                    approvals: vec![ApprovalEntry { agency: agency.clone(), tx: *id, height: self.height }],
                    outcome: Outcome::Open,
                };
                self.changed.insert(*id, rec);
                *id
            }
            TxBody::Approve(a) => {
                let agency = self.membership.agency(&t.issuer).ok_or(GovError::NotAnAgency(t.issuer))?.name.clone();
                let mut rec = self.record(&a.proposal).cloned().ok_or(GovError::UnknownProposal(a.proposal))?;
                rec.approvals.push(ApprovalEntry { agency: agency.clone(), tx: *id, height: self.height });
                self.changed.insert(a.proposal, rec);
                a.proposal
            }
            _ => return Ok(()),
        };
        // Approved once more than the threshold of the agencies in force approve
        // (distinct agencies, each by an approval that still counts).
        let m = &self.membership;
        if let Some(rec) = self.changed.get_mut(&target) {
            let approving: BTreeSet<&str> =
                rec.approvals.iter().filter(|a| approval_counts(m, a)).map(|a| a.agency.as_str()).collect();
            let in_force = m.agencies.len();
            let approving = approving.len();
            let g = &m.params.governance;
            if threshold_met(approving, in_force, g.approval_num, g.approval_den) {
                let delay = if rec.proposal.changes.iter().all(Change::is_freeze) { 1 } else { g.activation_delay_blocks };
                rec.outcome = Outcome::Approved { height: self.height, index, effective: self.height + delay };
                self.completed.push(target);
            }
        }
        Ok(())
    }

    /// Ends the block: applies every proposal taking effect at `height + 1` (those
    /// approved earlier, then those approved in this block), in approval order.
    pub fn finish(mut self) -> GovDelta {
        let next = self.height + 1;
        let mut due: Vec<TxId> = self.state.scheduled.get(&next).cloned().unwrap_or_default();
        for id in &self.completed {
            if self.record(id).and_then(ProposalRecord::effective) == Some(next) && !due.contains(id) {
                due.push(*id);
            }
        }
        let records: Vec<ProposalRecord> = due.iter().filter_map(|id| self.record(id).cloned()).collect();
        let (membership, settled) = settle(&self.membership, records);
        for rec in settled {
            self.changed.insert(rec.id, rec);
        }
        GovDelta { records: self.changed.into_values().collect(), membership: membership.map(|m| (next, m)) }
    }
}
