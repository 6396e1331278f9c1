//! Newtypes shared by the core, the ledger and the node. No `usize` on the wire.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::crypto::{Hash32, PublicKey};

/// A block height. Genesis state is height 0; the first block is height 1.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Height(pub u64);

/// A consensus round within a height, starting at 0.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Round(pub u32);

/// A validator's position in the validator set (the genesis order).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ValidatorIndex(pub u32);

/// The hash of a block header: what consensus agrees on.
pub type BlockHash = Hash32;

impl Height {
    pub fn next(self) -> Height {
        Height(self.0.saturating_add(1))
    }
}

impl Round {
    pub fn next(self) -> Round {
        Round(self.0.saturating_add(1))
    }
}

macro_rules! display_inner {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { fmt::Display::fmt(&self.0, f) }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($t), "({})"), self.0)
            }
        }
    )*};
}
display_inner!(Height, Round, ValidatorIndex);

/// Upper bound on the validator-set size (DESIGN: any n from 1 to at least 16).
pub const MAX_VALIDATORS: usize = 128;

/// Why a validator set could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorSetError {
    #[error("a validator set needs at least one validator")]
    Empty,
    #[error("{0} validators is more than the maximum of {MAX_VALIDATORS}")]
    TooMany(usize),
    #[error("validator {index} has an unusable ed25519 public key: {reason}")]
    BadKey { index: usize, reason: String },
    #[error("validator key {key} appears twice (positions {first} and {second})")]
    Duplicate { key: String, first: usize, second: usize },
}

/// The validators in force at one height, equal weight, in a fixed order (index =
/// position). Keys are checked against the key rule and prepared for
/// verification once, here; cloning shares them (the core holds the sets of a few
/// heights at once, and a set changes only when governance changes it).
///
/// Two sets are equal when they hold the same keys in the same order.
#[derive(Clone)]
pub struct ValidatorSet {
    inner: Arc<SetInner>,
}

struct SetInner {
    keys: Vec<PublicKey>,
    parsed: Vec<crate::crypto::PreparedKey>,
}

impl ValidatorSet {
    pub fn new(keys: Vec<PublicKey>) -> Result<Self, ValidatorSetError> {
        if keys.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        if keys.len() > MAX_VALIDATORS {
            return Err(ValidatorSetError::TooMany(keys.len()));
        }
        let mut parsed = Vec::with_capacity(keys.len());
        for (i, k) in keys.iter().enumerate() {
            if let Some(first) = keys[..i].iter().position(|o| o == k) {
                return Err(ValidatorSetError::Duplicate { key: k.to_hex(), first, second: i });
            }
            parsed.push(k.prepared().map_err(|e| ValidatorSetError::BadKey { index: i, reason: e.to_string() })?);
        }
        Ok(ValidatorSet { inner: Arc::new(SetInner { keys, parsed }) })
    }

    /// n, the number of validators.
    pub fn len(&self) -> usize {
        self.inner.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.keys.is_empty()
    }

    /// f = ⌊(n − 1) / 3⌋, the number of Byzantine validators tolerated.
    pub fn max_faulty(&self) -> usize {
        (self.len() - 1) / 3
    }

    /// n − f: the number of distinct signatures a quorum (and a certificate) needs.
    pub fn quorum(&self) -> usize {
        self.len() - self.max_faulty()
    }

    /// f + 1: enough distinct validators that at least one is honest.
    pub fn honest_threshold(&self) -> usize {
        self.max_faulty() + 1
    }

    pub fn keys(&self) -> &[PublicKey] {
        &self.inner.keys
    }

    pub fn key(&self, index: ValidatorIndex) -> Option<&PublicKey> {
        self.inner.keys.get(index.0 as usize)
    }

    pub fn verifying_key(&self, index: ValidatorIndex) -> Option<&crate::crypto::PreparedKey> {
        self.inner.parsed.get(index.0 as usize)
    }

    pub fn index_of(&self, key: &PublicKey) -> Option<ValidatorIndex> {
        self.inner.keys.iter().position(|k| k == key).map(|i| ValidatorIndex(i as u32))
    }

    pub fn contains(&self, key: &PublicKey) -> bool {
        self.inner.keys.contains(key)
    }

    /// The proposer of `(height, round)`: a pure function, rotating each round and
    /// each height so that a faulty proposer cannot stall the chain.
    pub fn proposer(&self, height: Height, round: Round) -> ValidatorIndex {
        let n = self.len() as u64;
        ValidatorIndex(((height.0 % n + round.0 as u64 % n) % n) as u32)
    }
}

impl PartialEq for ValidatorSet {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner) || self.inner.keys == other.inner.keys
    }
}

impl Eq for ValidatorSet {}

impl fmt::Debug for ValidatorSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.inner.keys.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SecretKey;

    fn set(n: usize) -> ValidatorSet {
        ValidatorSet::new((0..n).map(|i| SecretKey::from_seed(&[i as u8]).public()).collect()).unwrap()
    }

    #[test]
    fn quorum_sizes() {
        for (n, f, q) in [(1, 0, 1), (2, 0, 2), (3, 0, 3), (4, 1, 3), (5, 1, 4), (7, 2, 5), (10, 3, 7), (16, 5, 11)] {
            let s = set(n);
            assert_eq!((s.max_faulty(), s.quorum()), (f, q), "n = {n}");
            // Two quorums intersect in at least f + 1 validators.
            assert!(2 * q > n + f, "n = {n}");
        }
    }

    #[test]
    fn proposer_rotates_over_everyone() {
        let s = set(4);
        let mut seen: Vec<_> = (0..4).map(|r| s.proposer(Height(7), Round(r))).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 4);
    }

    #[test]
    fn rejects_duplicates_and_empty() {
        let k = SecretKey::from_seed(b"x").public();
        assert!(matches!(ValidatorSet::new(vec![k, k]), Err(ValidatorSetError::Duplicate { first: 0, second: 1, .. })));
        assert!(matches!(ValidatorSet::new(vec![]), Err(ValidatorSetError::Empty)));
    }
}
