//! Hashes, keys and domain-separated signatures.
//!
//! Every signature in the system is over `DOMAIN_PREFIX ‖ tag ‖ 0x00 ‖ payload`,
//! where `tag` names the message kind (see the `TAG_*` constants across the crates).
//! A signature made for one kind of message can therefore never verify as another.

use std::fmt;

use ed25519_dalek::Signer;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use crate::sigrule::PreparedKey;

/// Prefix of every signed message of this chain (the namespace).
pub const DOMAIN_PREFIX: &[u8] = b"YRD-CREDIT-CHAIN/v1/";

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    pub const ZERO: Hash32 = Hash32([0u8; 32]);

    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }

    /// Parses 64 hex characters typed by a person (either case, surrounding
    /// white space ignored). Files and JSON bodies go through [`parse_hex`]
    /// (the serde impls below), which accepts only the canonical form.
    pub fn from_hex(s: &str) -> Result<Self, CryptoError> {
        let bytes = hex::decode(s.trim()).map_err(|e| CryptoError::BadHex(e.to_string()))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|v: Vec<u8>| CryptoError::BadLength { what: "hash", expected: 32, got: v.len() })?;
        Ok(Hash32(arr))
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.to_hex()[..16])
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lower-case hex of `bytes`: what `hex::encode` gives, written straight into a
/// string of the final size (`hex::encode` goes through a `char` iterator, and
/// hex was ~7 % of a serving node's CPU when proof files were served at
/// 1,000/s, BENCHMARKS.md "Authorised queries").
pub fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(HEX_DIGITS[usize::from(b >> 4)]));
        out.push(char::from(HEX_DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Lower-case hex of `N` bytes into `out` (`2 * N` bytes), with no allocation:
/// how hashes, keys and signatures are written into JSON.
fn hex_into<'a>(bytes: &[u8], out: &'a mut [u8]) -> &'a str {
    for (b, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = HEX_DIGITS[usize::from(b >> 4)];
        pair[1] = HEX_DIGITS[usize::from(b & 0x0f)];
    }
    // Only ASCII digits were written.
    std::str::from_utf8(&out[..bytes.len() * 2]).unwrap_or_default()
}

/// SHA-256 of the concatenation of `parts`.
pub fn sha256(parts: &[&[u8]]) -> Hash32 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    Hash32(h.finalize().into())
}

/// The exact bytes that get signed for a message of kind `tag`.
pub fn signing_bytes(tag: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(DOMAIN_PREFIX.len() + tag.len() + 1 + payload.len());
    out.extend_from_slice(DOMAIN_PREFIX);
    out.extend_from_slice(tag);
    out.push(0);
    out.extend_from_slice(payload);
    out
}

/// Parses `s` as the canonical hex of a byte string: an even number of the
/// characters `0-9a-f` only (no upper case, no white space, no `0x`), and
/// exactly `2 * expected` of them when a length is given. The one parser every
/// file and JSON body goes through (docs/proofs.md §3: "hashes are 64
/// lowercase hex digits"), so two readers never disagree on what a hash is;
/// the message says what is wrong and where.
pub fn parse_hex(what: &str, s: &str, expected: Option<usize>) -> Result<Vec<u8>, CryptoError> {
    if let Some((at, c)) = s.char_indices().find(|(_, c)| !matches!(c, '0'..='9' | 'a'..='f')) {
        let why = if c.is_ascii_hexdigit() {
            "upper-case hex digit (hex must be lower case)"
        } else if c.is_whitespace() {
            "white space"
        } else {
            "not a hex digit"
        };
        return Err(CryptoError::BadHex(format!("{what}: character {c:?} at position {at}: {why}")));
    }
    if s.len() % 2 == 1 {
        return Err(CryptoError::BadHex(format!("{what}: odd number of hex digits ({})", s.len())));
    }
    if let Some(n) = expected {
        if s.len() != 2 * n {
            return Err(CryptoError::BadHex(format!("{what}: {} hex digits, expected {} ({n} bytes)", s.len(), 2 * n)));
        }
    }
    hex::decode(s).map_err(|e| CryptoError::BadHex(format!("{what}: {e}")))
}

/// [`parse_hex`] of exactly `N` bytes.
pub fn parse_hex_array<const N: usize>(what: &str, s: &str) -> Result<[u8; N], CryptoError> {
    let v = parse_hex(what, s, Some(N))?;
    v.try_into().map_err(|v: Vec<u8>| CryptoError::BadLength { what: "hex value", expected: N, got: v.len() })
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("not valid hex: {0}")]
    BadHex(String),
    #[error("{what} must be {expected} bytes, got {got}")]
    BadLength { what: &'static str, expected: usize, got: usize },
    #[error("not a valid ed25519 public key")]
    BadPublicKey,
    #[error("public key refused: {0}")]
    WeakKey(#[from] crate::sigrule::KeyError),
    #[error("signature does not verify")]
    BadSignature,
}

/// An ed25519 public key as it appears on the wire: 32 bytes, checked when used.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }

    pub fn from_hex(s: &str) -> Result<Self, CryptoError> {
        let bytes = hex::decode(s.trim()).map_err(|e| CryptoError::BadHex(e.to_string()))?;
        let arr: [u8; 32] = bytes.try_into().map_err(|v: Vec<u8>| CryptoError::BadLength {
            what: "public key",
            expected: 32,
            got: v.len(),
        })?;
        Ok(PublicKey(arr))
    }

    /// Checks the key rule (`sigrule`): a canonical encoding of a point of the
    /// prime-order subgroup, not of small order. Keys are checked when they enter
    /// the genesis; verification checks them again (once per key and process).
    pub fn check(&self) -> Result<(), CryptoError> {
        crate::sigrule::check_key(&self.0).map(|_| ()).map_err(CryptoError::WeakKey)
    }

    /// The key prepared for verification (checked, decompressed; cached per process).
    pub fn prepared(&self) -> Result<PreparedKey, CryptoError> {
        crate::sigrule::prepare(&self.0).map_err(CryptoError::WeakKey)
    }

    /// Verifies `sig` over `signing_bytes(tag, payload)` under the signature rule
    /// (`sigrule`; the same verdict on every path).
    pub fn verify(&self, tag: &[u8], payload: &[u8], sig: &Signature) -> Result<(), CryptoError> {
        verify_with(&self.prepared()?, tag, payload, sig)
    }
}

/// Verifies with an already-prepared key, under the signature rule (`sigrule`).
pub fn verify_with(key: &PreparedKey, tag: &[u8], payload: &[u8], sig: &Signature) -> Result<(), CryptoError> {
    if key.verify(&signing_bytes(tag, payload), &sig.0) {
        Ok(())
    } else {
        Err(CryptoError::BadSignature)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pk:{}", &self.to_hex()[..12])
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// An ed25519 signature: 64 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }

    pub fn from_hex(s: &str) -> Result<Self, CryptoError> {
        let bytes = hex::decode(s.trim()).map_err(|e| CryptoError::BadHex(e.to_string()))?;
        let arr: [u8; 64] = bytes.try_into().map_err(|v: Vec<u8>| CryptoError::BadLength {
            what: "signature",
            expected: 64,
            got: v.len(),
        })?;
        Ok(Signature(arr))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sig:{}", &self.to_hex()[..12])
    }
}

// serde has no impls for [u8; 64]; encode as a fixed 64-byte tuple (no length prefix).
impl Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        if s.is_human_readable() {
            return s.serialize_str(hex_into(&self.0, &mut [0u8; 128]));
        }
        let mut t = s.serialize_tuple(64)?;
        for b in &self.0 {
            t.serialize_element(b)?;
        }
        t.end()
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            return parse_hex_array::<64>("signature", &s).map(Signature).map_err(serde::de::Error::custom);
        }
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Signature;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 signature bytes")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Signature, A::Error> {
                let mut out = [0u8; 64];
                for (i, b) in out.iter_mut().enumerate() {
                    *b = seq
                        .next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                Ok(Signature(out))
            }
        }
        d.deserialize_tuple(64, V)
    }
}

/// A private signing key. Never serialised by serde; see the key-file helpers in
/// the CLI for storage.
#[derive(Clone)]
pub struct SecretKey(ed25519_dalek::SigningKey);

impl SecretKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        SecretKey(ed25519_dalek::SigningKey::from_bytes(bytes))
    }

    /// A deterministic key for tests and simulations: SHA-256 of the seed bytes.
    pub fn from_seed(seed: &[u8]) -> Self {
        Self::from_bytes(&sha256(&[b"yrd-test-key", seed]).0)
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Signs `signing_bytes(tag, payload)`.
    pub fn sign(&self, tag: &[u8], payload: &[u8]) -> Signature {
        Signature(self.0.sign(&signing_bytes(tag, payload)).to_bytes())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({:?})", self.public())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_hex_encode() {
        let bytes: Vec<u8> = (0..=255u8).collect();
        assert_eq!(to_hex(&bytes), hex::encode(&bytes));
        assert_eq!(to_hex(&[]), "");
        let h = sha256(&[b"x"]);
        assert_eq!(serde_json::to_string(&h).unwrap(), format!("\"{}\"", hex::encode(h.0)));
        let sig = SecretKey::from_seed(b"a").sign(b"t", b"p");
        assert_eq!(serde_json::to_string(&sig).unwrap(), format!("\"{}\"", hex::encode(sig.0)));
    }

    #[test]
    fn signature_is_domain_separated() {
        let k = SecretKey::from_seed(b"a");
        let sig = k.sign(b"vote", b"payload");
        assert!(k.public().verify(b"vote", b"payload", &sig).is_ok());
        assert_eq!(k.public().verify(b"proposal", b"payload", &sig), Err(CryptoError::BadSignature));
        assert_eq!(k.public().verify(b"vote", b"payloaD", &sig), Err(CryptoError::BadSignature));
    }

    #[test]
    fn signature_encodes_as_64_bytes_without_length() {
        let k = SecretKey::from_seed(b"a");
        let sig = k.sign(b"t", b"p");
        let bytes = crate::codec::encode(&sig).unwrap();
        assert_eq!(bytes.len(), 64);
        let back: Signature = crate::codec::decode(&bytes, 64, "signature").unwrap();
        assert_eq!(back, sig);
    }

    #[test]
    fn json_uses_hex_and_codec_uses_raw_bytes() {
        let k = SecretKey::from_seed(b"a");
        let pk = k.public();
        let sig = k.sign(b"t", b"p");
        let json = serde_json::to_string(&(pk, sig, Hash32::ZERO)).unwrap();
        assert_eq!(json, format!("[\"{}\",\"{}\",\"{}\"]", pk.to_hex(), sig.to_hex(), "00".repeat(32)));
        let back: (PublicKey, Signature, Hash32) = serde_json::from_str(&json).unwrap();
        assert_eq!(back, (pk, sig, Hash32::ZERO));
        assert_eq!(crate::codec::encode(&pk).unwrap(), pk.0.to_vec());
    }

    #[test]
    fn hex_round_trips_and_rejects_wrong_length() {
        let h = sha256(&[b"x"]);
        assert_eq!(Hash32::from_hex(&h.to_hex()).unwrap(), h);
        assert!(matches!(Hash32::from_hex("abcd"), Err(CryptoError::BadLength { got: 2, .. })));
        assert!(matches!(Hash32::from_hex("zz"), Err(CryptoError::BadHex(_))));
    }

    #[test]
    fn json_hashes_are_canonical_hex_only() {
        let h = sha256(&[b"x"]);
        let good = format!("\"{}\"", h.to_hex());
        assert_eq!(serde_json::from_str::<Hash32>(&good).unwrap(), h);
        let upper = format!("\"{}\"", h.to_hex().to_uppercase());
        let padded = format!("\" {}\"", h.to_hex());
        let short = format!("\"{}\"", &h.to_hex()[..62]);
        let long = format!("\"{}00\"", h.to_hex());
        for bad in [upper, padded, short, long] {
            let e = serde_json::from_str::<Hash32>(&bad).unwrap_err().to_string();
            assert!(e.contains("hash"), "{bad}: {e}");
        }
        assert!(parse_hex("x", "0A", None).unwrap_err().to_string().contains("upper-case"));
        assert!(parse_hex("x", "0a ", None).unwrap_err().to_string().contains("white space"));
        assert!(parse_hex("x", "0a0", None).unwrap_err().to_string().contains("odd"));
        assert_eq!(parse_hex("x", "0a", Some(1)).unwrap(), vec![10]);
        assert!(parse_hex("x", "0a", Some(2)).is_err());
    }
}

/// Serde for 32-byte values: a lowercase hex string in human-readable formats
/// (JSON, TOML), exactly 32 raw bytes with no length prefix in the canonical codec.
macro_rules! serde_bytes32 {
    ($t:ident, $what:literal) => {
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.serialize_str(hex_into(&self.0, &mut [0u8; 64]))
                } else {
                    self.0.serialize(s)
                }
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let s = String::deserialize(d)?;
                    parse_hex_array::<32>($what, &s).map($t).map_err(serde::de::Error::custom)
                } else {
                    <[u8; 32]>::deserialize(d).map($t)
                }
            }
        }
    };
}
serde_bytes32!(Hash32, "hash");
serde_bytes32!(PublicKey, "public key");
