//! # yrd-ledger
//!
//! The ledger of the YRD credit chain: credit attestations and revocations
//! ([`tx`]), agencies and the genesis ([`genesis`]), blocks ([`block`]), the
//! RFC 9162 transaction log ([`merkle`]), the subject map ([`subjects`]), the USCC
//! type ([`uscc`]), validation rules ([`validate`]) and the sled store ([`store`]);
//! enterprises' authorisations ([`consent`]), signed API requests and query
//! records ([`queries`]) and who may read what ([`access`]).
//!
//! Canonical bytes come from `yrd_consensus::codec` (one configuration for the
//! whole chain).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::panic))]

pub mod access;
pub mod audit;
pub mod block;
pub mod canonical_cert;
pub mod consent;
#[cfg(feature = "failpoints")]
pub mod fault;
pub mod genesis;
pub mod governance;
pub mod merkle;
pub mod merkle_range;
pub mod proof;
pub mod proof_gov;
pub mod proof_queries;
pub mod queries;
pub mod repair;
mod replay;
pub mod sled_open;
pub mod subjects;
pub mod testkit;
pub mod tx;
pub mod store;
pub mod strict_json;
pub mod uscc;
pub mod validate;
