//! # yrd-consensus
//!
//! The BFT consensus core of the YRD credit chain, and the primitives every other
//! crate shares: canonical encoding ([`codec`]) and domain-separated ed25519
//! signatures over SHA-256 ([`crypto`]).
//!
//! **This crate is pure.** It does no I/O, reads no clock and draws no randomness:
//! the core consumes events and returns actions; time arrives as timeout events.
//! There is no tokio, libp2p or sled here, so the same code runs inside the node
//! and inside the deterministic simulator.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::panic))]

pub mod certificate;
pub mod codec;
pub mod core;
pub mod crypto;
pub mod evidence;
pub mod messages;
pub mod safety;
#[cfg(feature = "sim")]
pub mod sim;
pub mod types;

pub use crate::core::{Action, Config, ConfigError, Core, Event, Rejection, Step, Timeout, TimeoutConfig};
pub use certificate::{CertificateError, CommitCertificate};
pub use evidence::Equivocation;
pub use safety::SafetyState;
pub use crypto::{Hash32, PublicKey, SecretKey, Signature};
pub use messages::{Proposal, SignedProposal, SignedVote, Vote, VoteKind};
pub use types::{BlockHash, Height, Round, ValidatorIndex, ValidatorSet};
