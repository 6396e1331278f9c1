//! # yrd-consensus
//!
//! The BFT consensus core of the YRD credit chain, and the primitives every other
//! crate shares: canonical encoding ([`codec`]) and domain-separated ed25519
//! signatures over SHA-256 ([`crypto`]).
//!
//! **This crate is pure.** It does no I/O, reads no clock and draws no randomness:
//! the core consumes events and returns actions; time arrives as timeout events.
//! There is no tokio, libp2p or sled here, so the same code runs inside the node
//! and inside the deterministic simulator (module `sim`, cargo feature `sim`).
//!
//! ## Driving the core
//!
//! ```text
//! let sets = HeightSets { current: set_at(next_height), next: set_at(next_height + 1) }; // from the ledger
//! let mut core = Core::new(config, key /* None = observer */, persisted_safety_or_default, next_height, sets)?;
//! execute(core.handle(Event::Start));
//! loop { execute(core.handle(next_event)); }   // network, timers, block builder, storage
//! ```
//!
//! Events ([`Event`]): `Start`, `Proposal { proposal, valid }` (the node checked the
//! body against ledger state), `Vote`, `Timeout`, `ProposalValue` (answer to
//! `RequestProposal`), `CommitCertified` (a certificate from sync, current or next
//! height), `Committed { height, sets }` (the decided block is durably stored:
//! start the next height, with the validator sets of the two heights after it).
//!
//! The validator set is a function of the height, defined by the ledger; every
//! message and certificate is checked against the set of its own height
//! (docs/consensus.md §7, "Reconfiguration").
//!
//! Actions ([`Action`]), executed **in order**: `PersistSafety` (make durable before
//! the next action — it always precedes the broadcast of the signature it covers),
//! `BroadcastProposal`, `BroadcastVote`, `ScheduleTimeout`, `RequestProposal`,
//! `Commit` (persist block + certificate, then feed `Committed`), `Evidence`,
//! `PeerBehind` / `SyncNeeded` (catch-up hints), `Rejected` (input dropped).
//!
//! The full contract, the protocol rules and the safety and liveness arguments are
//! in `docs/consensus.md`; [`core`] documents each rule against the lines of the
//! Tendermint paper (arXiv 1807.04938, Algorithm 1).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::panic))]

pub mod certificate;
pub mod codec;
pub mod core;
pub mod crypto;
pub mod sigrule;
#[cfg(feature = "adversary")]
pub mod adversary;
pub mod evidence;
pub mod messages;
pub mod safety;
#[cfg(feature = "sim")]
pub mod sim;
pub mod types;

pub use crate::core::{Action, Config, ConfigError, Core, Event, HeightSets, Rejection, Step, Timeout, TimeoutConfig};
pub use certificate::{CertificateError, CommitCertificate};
pub use evidence::Equivocation;
pub use safety::SafetyState;
pub use crypto::{Hash32, PublicKey, SecretKey, Signature};
pub use messages::{Proposal, SignedProposal, SignedVote, Vote, VoteKind};
pub use types::{BlockHash, Height, Round, ValidatorIndex, ValidatorSet};
