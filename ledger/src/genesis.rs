//! Agencies and the genesis: who validates, who may issue what, who may observe.
//!
//! The genesis file is JSON (humans write and read it). The chain id is
//! `SHA-256("YRD-CREDIT-CHAIN/v1/genesis" ‖ canonical(Genesis))`; every transaction,
//! vote and proposal carries it.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use yrd_consensus::codec::{self, CodecError};
use yrd_consensus::crypto::{sha256, Hash32, PublicKey, DOMAIN_PREFIX};
use yrd_consensus::types::{ValidatorIndex, ValidatorSet, ValidatorSetError};

use crate::tx::AttestationKind;

/// Largest genesis file accepted.
pub const MAX_GENESIS_BYTES: usize = 1024 * 1024;
/// Most issuers a genesis may list.
pub const MAX_ISSUERS: usize = 1024;
/// Most observers a genesis may list.
pub const MAX_OBSERVERS: usize = 1024;
/// Most agencies (governance members).
pub const MAX_AGENCIES: usize = 64;
/// Most lenders (financial institutions reading restricted records under
/// authorisations; docs/access.md). Each is a name and a key in the membership,
/// which every block header commits to: a few thousand banks and their branches
/// stay far below the membership sizes the chain already handles.
pub const MAX_LENDERS: usize = 4096;

/// A region code: 2 to 8 upper-case ASCII letters. The chain starts with
/// `SH` (Shanghai), `JS` (Jiangsu), `ZJ` (Zhejiang) and `AH` (Anhui); more may join.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Region(String);

impl Region {
    pub fn parse(s: &str) -> Result<Region, GenesisError> {
        let t = s.trim().to_ascii_uppercase();
        if (2..=8).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Region(t))
        } else {
            Err(GenesisError::BadRegion(s.to_string()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The region's name in English and Chinese, for the four founding regions.
    pub fn description(&self) -> &'static str {
        match self.0.as_str() {
            "SH" => "Shanghai 上海",
            "JS" => "Jiangsu 江苏",
            "ZJ" => "Zhejiang 浙江",
            "AH" => "Anhui 安徽",
            _ => "",
        }
    }
}

/// The form in files (the genesis, governance changes): exactly the canonical
/// code, as the chain id hashes it. People's input goes through [`Region::parse`],
/// which trims and upper-cases; a file written `"sh"` would be read as `SH` by
/// one reader and refused by another, so it is refused here.
impl TryFrom<String> for Region {
    type Error = GenesisError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        let r = Region::parse(&s)?;
        if r.0 != s {
            return Err(GenesisError::RegionNotCanonical { given: s, canonical: r.0 });
        }
        Ok(r)
    }
}

impl From<Region> for String {
    fn from(r: Region) -> String {
        r.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An agency that votes in consensus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorInfo {
    pub name: String,
    pub region: Region,
    /// The validator (consensus) key; also the node's network identity.
    pub key: PublicKey,
}

/// An agency that signs attestations, with the kinds it may issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerInfo {
    pub name: String,
    pub region: Region,
    /// The issuer key (distinct from any validator key).
    pub key: PublicKey,
    /// Kinds this issuer may attest. Sorted, unique.
    pub kinds: Vec<AttestationKind>,
    /// May revoke other issuers' attestations (e.g. a provincial credit-repair office).
    #[serde(default)]
    pub may_revoke_any: bool,
}

/// A non-voting node allowed to connect: a full replica (an auditor's or a
/// regulator's node; never a lender's — it holds every record, docs/access.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObserverInfo {
    pub name: String,
    pub key: PublicKey,
}

/// An agency of the consortium: it votes on governance proposals with its admin
/// key (distinct from its validator and issuer keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgencyInfo {
    pub name: String,
    pub region: Region,
    /// The governance (admin) key.
    pub key: PublicKey,
}

/// A financial institution that reads restricted records about an enterprise
/// when the enterprise has authorised it (docs/access.md). It signs its
/// authorisations and its API requests with `key`; an agency of the consortium
/// sponsors it (vouches for it and answers for its use of the data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LenderInfo {
    pub name: String,
    /// The name of the agency that sponsors the lender.
    pub sponsor: String,
    pub key: PublicKey,
}

/// Governance parameters (docs/governance.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GovParams {
    /// A proposal is approved when more than `approval_num / approval_den` of the
    /// agencies in force approve it (default: more than two thirds).
    pub approval_num: u32,
    pub approval_den: u32,
    /// An approved change takes effect this many blocks after the block that
    /// approved it (at least 2: consensus needs the next height's validators
    /// known one height ahead). Freezing an issuer key takes effect at the next block.
    pub activation_delay_blocks: u64,
    /// A proposal's deadline is at most this many blocks after it is proposed.
    pub max_proposal_ttl_blocks: u64,
}

impl Default for GovParams {
    fn default() -> Self {
        GovParams { approval_num: 2, approval_den: 3, activation_delay_blocks: 4, max_proposal_ttl_blocks: 1_000_000 }
    }
}

/// The kinds restricted by default: ratings and commitments, which the law does
/// not publish. Red lists, serious dishonesty lists, administrative penalties and
/// court enforcement records are published by law and stay public.
pub const DEFAULT_RESTRICTED_KINDS: [AttestationKind; 3] =
    [AttestationKind::CreditRating, AttestationKind::TaxCredit, AttestationKind::Commitment];

fn default_restricted_kinds() -> Vec<AttestationKind> {
    DEFAULT_RESTRICTED_KINDS.to_vec()
}

/// Chain parameters: fixed at genesis, changed by governance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainParams {
    /// Most transactions in one block.
    pub max_block_txs: u32,
    /// Largest encoded block.
    pub max_block_bytes: u32,
    #[serde(default)]
    pub governance: GovParams,
    /// Kinds whose records are shown only to their issuer and to lenders holding
    /// an authorisation for the subject (docs/access.md); every other kind is
    /// public. Sorted, unique.
    #[serde(default = "default_restricted_kinds")]
    pub restricted_kinds: Vec<AttestationKind>,
}

impl Default for ChainParams {
    fn default() -> Self {
        ChainParams {
            max_block_txs: 4096,
            max_block_bytes: 8 * 1024 * 1024,
            governance: GovParams::default(),
            restricted_kinds: default_restricted_kinds(),
        }
    }
}

impl ChainParams {
    /// Checks every parameter's range; the reason names the parameter.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_block_txs == 0 || self.max_block_txs > 100_000 {
            return Err(format!("max_block_txs = {} must be 1..=100000", self.max_block_txs));
        }
        if self.max_block_bytes < 64 * 1024 || self.max_block_bytes as usize > codec::MAX_ENCODED_BYTES {
            return Err(format!("max_block_bytes = {} must be 65536..={}", self.max_block_bytes, codec::MAX_ENCODED_BYTES));
        }
        let g = &self.governance;
        if g.approval_den == 0 || g.approval_num >= g.approval_den {
            return Err(format!(
                "governance approval threshold {}/{} must be a fraction below 1 (approval needs more than it)",
                g.approval_num, g.approval_den
            ));
        }
        if g.approval_den > 1000 {
            return Err(format!("governance approval_den = {} must be at most 1000", g.approval_den));
        }
        if !(2..=10_000).contains(&g.activation_delay_blocks) {
            return Err(format!("governance activation_delay_blocks = {} must be 2..=10000", g.activation_delay_blocks));
        }
        if !(1..=100_000_000).contains(&g.max_proposal_ttl_blocks) {
            return Err(format!("governance max_proposal_ttl_blocks = {} must be 1..=100000000", g.max_proposal_ttl_blocks));
        }
        if self.restricted_kinds.windows(2).any(|w| w[0] >= w[1]) {
            return Err("restricted_kinds must be sorted and unique".into());
        }
        Ok(())
    }

    /// Whether records of `kind` are restricted (docs/access.md).
    pub fn is_restricted(&self, kind: AttestationKind) -> bool {
        self.restricted_kinds.contains(&kind)
    }
}

/// The genesis: the founding agreement of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// A human name, e.g. "yrd-credit-chain-testnet".
    pub chain_name: String,
    /// Milliseconds since the Unix epoch.
    pub genesis_time_ms: u64,
    pub params: ChainParams,
    pub validators: Vec<ValidatorInfo>,
    pub issuers: Vec<IssuerInfo>,
    #[serde(default)]
    pub observers: Vec<ObserverInfo>,
    /// The agencies that govern the chain (docs/governance.md). With none, the
    /// membership can never change.
    #[serde(default)]
    pub agencies: Vec<AgencyInfo>,
    /// Lenders: financial institutions that read restricted records under the
    /// enterprises' authorisations (docs/access.md), each sponsored by an agency.
    #[serde(default)]
    pub lenders: Vec<LenderInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    #[error("region code {0:?} must be 2 to 8 letters A-Z (e.g. SH, JS, ZJ, AH)")]
    BadRegion(String),
    #[error("region {given:?} must be written {canonical:?} (in a file, exactly the upper-case code)")]
    RegionNotCanonical { given: String, canonical: String },
    #[error("genesis file is {0} bytes, more than the {MAX_GENESIS_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("genesis file refused at {0}")]
    Json(String),
    #[error("invalid validator set: {0}")]
    Validators(#[from] ValidatorSetError),
    #[error("{what} name {name:?} must be 1 to 64 characters with no control characters")]
    BadName { what: &'static str, name: String },
    #[error("name {0:?} is used twice")]
    DuplicateName(String),
    #[error("key {0} is used twice (validator, issuer, observer, agency and lender keys must all differ)")]
    DuplicateKey(String),
    #[error("{what} {name:?} has a key that cannot be used: {reason}")]
    WeakKey { what: &'static str, name: String, reason: String },
    #[error("issuer {name:?} may issue no kind of attestation")]
    NoKinds { name: String },
    #[error("issuer {name:?} lists a kind twice or out of order")]
    KindsNotSorted { name: String },
    #[error("lender {name:?} is sponsored by {sponsor:?}, which is not an agency of the genesis")]
    UnknownSponsor { name: String, sponsor: String },
    #[error("too many {what}: {count} (at most {max})")]
    TooMany { what: &'static str, count: usize, max: usize },
    #[error("chain parameter {0}")]
    BadParams(String),
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// A name: 1 to 64 characters, no control characters, no surrounding spaces.
pub fn check_name(what: &'static str, name: &str) -> Result<(), GenesisError> {
    let n = name.chars().count();
    if n == 0 || n > 64 || name.chars().any(char::is_control) || name.trim() != name {
        return Err(GenesisError::BadName { what, name: name.to_string() });
    }
    Ok(())
}

impl Genesis {
    /// Parses and validates a genesis JSON document, strictly
    /// (docs/proofs.md §3, "Strict JSON"): no duplicate or unknown key, every
    /// field present but those the spec lets default, keys as 64 lowercase hex
    /// digits; the error names the JSON path (`validators[2].key`).
    pub fn from_json(bytes: &[u8]) -> Result<Genesis, GenesisError> {
        if bytes.len() > MAX_GENESIS_BYTES {
            return Err(GenesisError::TooLarge(bytes.len()));
        }
        let g: Genesis = crate::strict_json::from_slice(bytes).map_err(|e| GenesisError::Json(e.to_string()))?;
        g.validate()?;
        Ok(g)
    }

    pub fn to_json_pretty(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks names, keys, uniqueness and limits.
    pub fn validate(&self) -> Result<(), GenesisError> {
        check_name("chain", &self.chain_name)?;
        // As many as governance may reach (`MAX_MEMBER_VALIDATORS`, docs/proofs.md:
        // 1–16), not the consensus layer's larger bound: a genesis the console's
        // verifier and every later membership check accept alike.
        if self.validators.len() > crate::governance::MAX_MEMBER_VALIDATORS {
            return Err(GenesisError::TooMany {
                what: "validators",
                count: self.validators.len(),
                max: crate::governance::MAX_MEMBER_VALIDATORS,
            });
        }
        if self.issuers.len() > MAX_ISSUERS {
            return Err(GenesisError::TooMany { what: "issuers", count: self.issuers.len(), max: MAX_ISSUERS });
        }
        if self.observers.len() > MAX_OBSERVERS {
            return Err(GenesisError::TooMany { what: "observers", count: self.observers.len(), max: MAX_OBSERVERS });
        }
        if self.agencies.len() > MAX_AGENCIES {
            return Err(GenesisError::TooMany { what: "agencies", count: self.agencies.len(), max: MAX_AGENCIES });
        }
        if self.lenders.len() > MAX_LENDERS {
            return Err(GenesisError::TooMany { what: "lenders", count: self.lenders.len(), max: MAX_LENDERS });
        }
        self.params.validate().map_err(GenesisError::BadParams)?;
        let mut names = BTreeSet::new();
        let mut keys = BTreeSet::new();
        let all = self
            .validators
            .iter()
            .map(|v| ("validator", &v.name, &v.key))
            .chain(self.issuers.iter().map(|i| ("issuer", &i.name, &i.key)))
            .chain(self.observers.iter().map(|o| ("observer", &o.name, &o.key)));
        let mut agency_names = BTreeSet::new();
        let mut lender_names = BTreeSet::new();
        let agencies = self.agencies.iter().map(|a| ("agency", &a.name, &a.key));
        let lenders = self.lenders.iter().map(|l| ("lender", &l.name, &l.key));
        for (what, name, key) in all.chain(agencies).chain(lenders) {
            check_name(what, name)?;
            // The key rule (sigrule): no weak, mixed-order or non-canonical keys.
            key.check().map_err(|e| GenesisError::WeakKey { what, name: name.clone(), reason: e.to_string() })?;
            // Agencies and lenders have their own namespaces (an agency "shanghai"
            // runs the validator "shanghai"); nodes and issuers share one.
            let fresh = match what {
                "agency" => agency_names.insert(name.as_str()),
                "lender" => lender_names.insert(name.as_str()),
                _ => names.insert(name.as_str()),
            };
            if !fresh {
                return Err(GenesisError::DuplicateName(name.clone()));
            }
            if !keys.insert(*key) {
                return Err(GenesisError::DuplicateKey(key.to_hex()));
            }
        }
        self.validator_set()?;
        for l in &self.lenders {
            if !agency_names.contains(l.sponsor.as_str()) {
                return Err(GenesisError::UnknownSponsor { name: l.name.clone(), sponsor: l.sponsor.clone() });
            }
        }
        for i in &self.issuers {
            if i.kinds.is_empty() {
                return Err(GenesisError::NoKinds { name: i.name.clone() });
            }
            if i.kinds.windows(2).any(|w| w[0] >= w[1]) {
                return Err(GenesisError::KindsNotSorted { name: i.name.clone() });
            }
        }
        Ok(())
    }

    /// The chain id: a hash of the canonical genesis bytes.
    pub fn chain_id(&self) -> Result<Hash32, CodecError> {
        let bytes = codec::encode(self)?;
        Ok(sha256(&[DOMAIN_PREFIX, b"genesis", &[0], &bytes]))
    }

    pub fn validator_set(&self) -> Result<ValidatorSet, ValidatorSetError> {
        ValidatorSet::new(self.validators.iter().map(|v| v.key).collect())
    }

    pub fn issuer(&self, key: &PublicKey) -> Option<&IssuerInfo> {
        self.issuers.iter().find(|i| &i.key == key)
    }

    pub fn issuer_by_name(&self, name: &str) -> Option<&IssuerInfo> {
        self.issuers.iter().find(|i| i.name == name)
    }

    pub fn validator(&self, index: ValidatorIndex) -> Option<&ValidatorInfo> {
        self.validators.get(index.0 as usize)
    }

    /// Keys allowed to connect to the network: validators and observers.
    pub fn network_keys(&self) -> Vec<PublicKey> {
        self.validators.iter().map(|v| v.key).chain(self.observers.iter().map(|o| o.key)).collect()
    }
}
