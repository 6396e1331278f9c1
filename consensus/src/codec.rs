//! The one place that defines canonical bytes for the whole chain.
//!
//! Every signed, hashed or transmitted structure is encoded with [`CONFIG`]:
//! bincode 2, **big-endian, fixed-width integers**, a hard size limit, and on
//! decode **trailing bytes are rejected**. bincode's free functions and its
//! `standard()` configuration are unlimited and variable-width; never use them.
//!
//! Lengths of sequences and strings are encoded as fixed-width `u64` (bincode's
//! fixed-int encoding). `Option<T>` is a `u8` tag (0 = None, 1 = Some) followed by `T`.
//! Enums are a `u32` variant index followed by the fields. Structs are their fields
//! in declaration order, with no padding. `docs/proofs.md` spells this out for
//! independent verifiers.

use serde::{de::DeserializeOwned, Serialize};

/// Absolute ceiling on any encoded value (a block with its transactions is the
/// largest thing we ever encode). Callers pass tighter limits per message kind.
pub const MAX_ENCODED_BYTES: usize = 16 * 1024 * 1024;

/// The canonical configuration value. Big-endian, fixed-width, limited.
pub const CONFIG: bincode::config::Configuration<
    bincode::config::BigEndian,
    bincode::config::Fixint,
    bincode::config::Limit<MAX_ENCODED_BYTES>,
> = bincode::config::standard()
    .with_big_endian()
    .with_fixed_int_encoding()
    .with_limit::<MAX_ENCODED_BYTES>();

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("input is {len} bytes, more than the {max}-byte limit for {what}")]
    TooLarge { what: &'static str, len: usize, max: usize },
    #[error("malformed {what}: {reason}")]
    Malformed { what: &'static str, reason: String },
    #[error("{extra} trailing byte(s) after a complete {what}")]
    TrailingBytes { what: &'static str, extra: usize },
    #[error("cannot encode {what}: {reason}")]
    Encode { what: &'static str, reason: String },
}

/// Encodes `value` canonically. Fails only if the value exceeds
/// [`MAX_ENCODED_BYTES`] (our own bug, or a caller building an oversized value).
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(value, CONFIG).map_err(|e| CodecError::Encode {
        what: std::any::type_name::<T>(),
        reason: e.to_string(),
    })
}

/// Decodes exactly one `T` from `bytes`: the input must be at most `max` bytes
/// and must contain nothing after the value.
pub fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    max: usize,
    what: &'static str,
) -> Result<T, CodecError> {
    let max = max.min(MAX_ENCODED_BYTES);
    if bytes.len() > max {
        return Err(CodecError::TooLarge { what, len: bytes.len(), max });
    }
    let (value, used) = bincode::serde::decode_from_slice::<T, _>(bytes, CONFIG)
        .map_err(|e| CodecError::Malformed { what, reason: e.to_string() })?;
    if used != bytes.len() {
        return Err(CodecError::TrailingBytes { what, extra: bytes.len() - used });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Sample {
        a: u32,
        b: Vec<u8>,
        c: Option<u16>,
    }

    #[test]
    fn fixed_width_big_endian() {
        let bytes = encode(&Sample { a: 1, b: vec![7], c: Some(2) }).unwrap();
        assert_eq!(
            bytes,
            vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 7, 1, 0, 2],
            "u32 BE, u64 BE length, byte, option tag, u16 BE"
        );
    }

    #[test]
    fn rejects_trailing_bytes() {
        let mut bytes = encode(&Sample { a: 1, b: vec![], c: None }).unwrap();
        bytes.push(0);
        let err = decode::<Sample>(&bytes, 1024, "sample").unwrap_err();
        assert_eq!(err, CodecError::TrailingBytes { what: "sample", extra: 1 });
    }

    #[test]
    fn rejects_oversize_input_before_decoding() {
        let bytes = vec![0u8; 2048];
        let err = decode::<Sample>(&bytes, 1024, "sample").unwrap_err();
        assert!(matches!(err, CodecError::TooLarge { len: 2048, max: 1024, .. }));
    }

    #[test]
    fn huge_length_prefix_is_rejected_not_allocated() {
        // a = 0, then a claimed Vec length of 2^62 with no data behind it.
        let mut bytes = vec![0, 0, 0, 0];
        bytes.extend_from_slice(&(1u64 << 62).to_be_bytes());
        assert!(matches!(
            decode::<Sample>(&bytes, 1024, "sample"),
            Err(CodecError::Malformed { .. })
        ));
    }

    #[test]
    fn truncated_input_is_malformed() {
        let bytes = encode(&Sample { a: 9, b: vec![1, 2, 3], c: Some(1) }).unwrap();
        for cut in 0..bytes.len() {
            assert!(decode::<Sample>(&bytes[..cut], 1024, "sample").is_err(), "cut at {cut}");
        }
    }
}
