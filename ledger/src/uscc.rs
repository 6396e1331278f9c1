//! The Unified Social Credit Code (统一社会信用代码, USCC) of GB 32100-2015: the
//! identifier of every subject on the chain.
//!
//! # Structure (GB 32100-2015)
//!
//! | position | meaning                                              | checked here            |
//! |----------|------------------------------------------------------|-------------------------|
//! | 1        | registration management department (登记管理部门代码) | alphabet only           |
//! | 2        | entity type (机构类别代码)                            | alphabet only           |
//! | 3–8      | administrative division of the registering authority (GB/T 2260) | digits      |
//! | 9–17     | subject identifier (主体标识码, the GB 11714 organisation code) | alphabet     |
//! | 18       | check character (GB/T 17710 style, mod 31)           | recomputed              |
//!
//! The alphabet is the 31 symbols `0123456789ABCDEFGHJKLMNPQRTUWXY` (no I, O, S, V, Z);
//! the value of a symbol is its index in that string. With weights
//! `wᵢ = 3^(i-1) mod 31` for positions 1..17, the check character is
//! `alphabet[(31 − Σ value(cᵢ)·wᵢ mod 31) mod 31]`.
//!
//! **Positions 1 and 2 are deliberately not restricted** to a closed list. The 2015 text
//! listed 1 (机构编制), 5 (民政), 9 (工商) and Y (其他) for position 1; later amendments and
//! administrative practice added further departments (2 外交, 3 司法行政, 4 文化, 6 旅游,
//! 7 宗教, 8 工会, A 中央军委改革和编制办公室, N 农业, …), and published lists disagree. A
//! closed list would reject real codes, so we accept any alphabet symbol there. Positions
//! 3–8 are a GB/T 2260 division code, which is always six digits; a letter there is
//! rejected. The weighted checksum catches every single-character substitution and
//! every transposition of two different characters except between positions 1 and 18
//! (both have weight 1), see the tests.
//!
//! # Normalisation of user input
//!
//! [`Uscc::parse`] trims ASCII whitespace at both ends, drops spaces and hyphens
//! anywhere, and upper-cases ASCII letters. Nothing else is repaired: full-width
//! characters (`Ａ`, `１`, the ideographic space `U+3000`), other non-ASCII characters and
//! punctuation are rejected with their position. Positions in errors are 1-based and
//! count characters of the normalised code (spaces and hyphens are not counted).
//!
//! # Bytes
//!
//! A `Uscc` always holds the 18 canonical (upper-case ASCII) bytes. In the canonical
//! binary encoding (bincode, [`yrd_consensus::codec`]) it is exactly those 18 bytes,
//! with no length prefix; decoding runs the same checks as [`Uscc::parse`] (strictly:
//! no normalisation, lower case is rejected). In human-readable formats (JSON) it is
//! the 18-character string; deserialising JSON normalises like [`Uscc::parse`].

use std::fmt;
use std::str::FromStr;

/// Number of characters in a USCC.
pub const USCC_LEN: usize = 18;

/// The 31 symbols of the USCC alphabet, in value order.
pub const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// Weights of positions 1..17: `3^(i-1) mod 31`.
pub const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// 1-based positions of the administrative division code, which must be digits.
pub const DIVISION_POSITIONS: std::ops::RangeInclusive<usize> = 3..=8;

const NOT_IN_ALPHABET: u8 = u8::MAX;

/// `VALUES[b]` is the value of ASCII byte `b` (upper case only), or `NOT_IN_ALPHABET`.
const VALUES: [u8; 128] = {
    let mut table = [NOT_IN_ALPHABET; 128];
    let mut i = 0;
    while i < ALPHABET.len() {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

fn value_of(byte: u8) -> Option<u32> {
    match VALUES.get(byte as usize) {
        Some(&v) if v != NOT_IN_ALPHABET => Some(u32::from(v)),
        _ => None,
    }
}

/// Why a string (or 18 bytes from the wire) is not a USCC. Every variant names the
/// reason and, where there is one, the 1-based position in the normalised code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsccError {
    /// Wrong number of characters after normalisation.
    #[error("expected {expected} characters, got {got}")]
    Length { expected: usize, got: usize },
    /// A full-width form (U+FF01..U+FF5E, or the ideographic space U+3000).
    #[error(
        "character {got:?} at position {position} is full-width (U+{code:04X}); \
         full-width characters are not accepted, type the ASCII {ascii:?} instead",
        code = u32::from(*got)
    )]
    FullWidth {
        position: usize,
        got: char,
        ascii: char,
    },
    /// Any other non-ASCII character.
    #[error("character {got:?} at position {position} is not ASCII")]
    NonAscii { position: usize, got: char },
    /// One of the letters I, O, S, V, Z (in either case).
    #[error(
        "character {got:?} at position {position} is not allowed (I, O, S, V and Z are never used)"
    )]
    ForbiddenLetter { position: usize, got: char },
    /// An ASCII character that is neither a digit nor a letter (after normalisation).
    #[error(
        "character {got:?} at position {position} is not allowed \
         (only digits 0-9 and letters A-Z except I, O, S, V, Z)"
    )]
    NotAllowed { position: usize, got: char },
    /// A letter in the administrative division code (positions 3-8).
    #[error(
        "character {got:?} at position {position} is not a digit \
         (positions 3-8 are the administrative division code, digits only)"
    )]
    NotDigit { position: usize, got: char },
    /// The check character does not match the first 17.
    #[error("check character expected {expected:?}, got {got:?}")]
    CheckCharacter { expected: char, got: char },
    /// A byte from the wire that is not a canonical USCC character (non-ASCII,
    /// lower case, punctuation). Only produced when decoding bytes.
    #[error(
        "byte 0x{byte:02X} at position {position} is not a canonical USCC character \
         (0-9 and upper-case A-Z except I, O, S, V, Z)"
    )]
    NonCanonicalByte { position: usize, byte: u8 },
}

/// A valid Unified Social Credit Code, held as its 18 canonical ASCII bytes.
///
/// Every value of this type has passed the checks of [`Uscc::parse`]; there is no
/// unchecked constructor. Ordering is the byte (= string) order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uscc([u8; USCC_LEN]);

impl Uscc {
    /// Parses user input: trims ASCII whitespace, removes spaces and hyphens,
    /// upper-cases ASCII letters, then checks the alphabet, the length, the digits
    /// of the division code and the check character, in that order. Does not allocate.
    pub fn parse(input: &str) -> Result<Uscc, UsccError> {
        let mut bytes = [0u8; USCC_LEN];
        let count = normalise_into(input, &mut bytes)?;
        if count != USCC_LEN {
            return Err(UsccError::Length {
                expected: USCC_LEN,
                got: count,
            });
        }
        check_structure(&bytes)?;
        Ok(Uscc(bytes))
    }

    /// Accepts exactly 18 canonical bytes (what [`Uscc::as_bytes`] returns), with the
    /// same checks as [`Uscc::parse`] but no normalisation: lower case, spaces or
    /// any non-alphabet byte is an error. This is the decoder for untrusted bytes.
    pub fn from_canonical_bytes(bytes: [u8; USCC_LEN]) -> Result<Uscc, UsccError> {
        for (index, &byte) in bytes.iter().enumerate() {
            if value_of(byte).is_none() {
                let position = index + 1;
                return Err(if is_forbidden_letter(byte) {
                    UsccError::ForbiddenLetter {
                        position,
                        got: char::from(byte),
                    }
                } else {
                    UsccError::NonCanonicalByte { position, byte }
                });
            }
        }
        check_structure(&bytes)?;
        Ok(Uscc(bytes))
    }

    /// Builds the valid code whose first 17 characters are `first17` (normalised
    /// like [`Uscc::parse`]), appending the check character.
    pub fn complete(first17: &str) -> Result<Uscc, UsccError> {
        let mut bytes = [0u8; USCC_LEN];
        let count = normalise_into(first17, &mut bytes)?;
        if count != USCC_LEN - 1 {
            return Err(UsccError::Length {
                expected: USCC_LEN - 1,
                got: count,
            });
        }
        check_division(&bytes)?;
        bytes[USCC_LEN - 1] = check_byte(&bytes);
        Ok(Uscc(bytes))
    }

    /// The canonical 18-character string (upper-case ASCII).
    pub fn as_str(&self) -> &str {
        // Invariant: every byte is in ALPHABET, hence ASCII, hence UTF-8.
        match std::str::from_utf8(&self.0) {
            Ok(s) => s,
            Err(_) => unreachable!("a Uscc holds only ASCII alphabet bytes"),
        }
    }

    /// The 18 canonical bytes.
    pub fn as_bytes(&self) -> &[u8; USCC_LEN] {
        &self.0
    }

    /// The administrative division code (positions 3-8), e.g. `"310000"`.
    pub fn division_code(&self) -> &str {
        &self.as_str()[2..8]
    }

    /// A deterministic valid sample code for tests, tools and benchmarks.
    ///
    /// Distinct `index` values below `31^9` (about 2.6·10¹³) give distinct codes:
    /// positions 9-17 are `index` written in base 31 over the alphabet. Positions 1-8
    /// are picked from real registration departments, entity types and Yangtze River
    /// Delta division codes by a hash of `index`, so samples look like real codes.
    pub fn sample(index: u64) -> Uscc {
        const PREFIXES: [&[u8; 2]; 8] = [b"91", b"92", b"93", b"11", b"12", b"51", b"52", b"Y1"];
        const DIVISIONS: [&[u8; 6]; 12] = [
            b"310000", b"310101", b"310115", b"320000", b"320100", b"320500", b"330000", b"330100",
            b"330200", b"340000", b"340100", b"340200",
        ];
        let mix = splitmix64(index);
        let mut bytes = [0u8; USCC_LEN];
        bytes[0..2].copy_from_slice(PREFIXES[(mix % PREFIXES.len() as u64) as usize]);
        let division = DIVISIONS[((mix >> 8) % DIVISIONS.len() as u64) as usize];
        bytes[2..8].copy_from_slice(division);
        let mut rest = index;
        for slot in bytes[8..17].iter_mut().rev() {
            *slot = ALPHABET[(rest % 31) as usize];
            rest /= 31;
        }
        bytes[USCC_LEN - 1] = check_byte(&bytes);
        Uscc(bytes)
    }
}

/// The check character for `first17` (normalised like [`Uscc::parse`]; it must be
/// 17 alphabet characters with digits at positions 3-8).
pub fn check_character(first17: &str) -> Result<char, UsccError> {
    let code = Uscc::complete(first17)?;
    Ok(char::from(code.0[USCC_LEN - 1]))
}

/// Normalises `input` into `out`, returning the number of characters after
/// normalisation (which may exceed 18; only the first 18 are stored). Rejects the
/// first character that is not in the alphabet.
fn normalise_into(input: &str, out: &mut [u8; USCC_LEN]) -> Result<usize, UsccError> {
    let trimmed = input.trim_matches(|c: char| c.is_ascii_whitespace());
    let mut count = 0usize;
    for c in trimmed.chars() {
        if c == ' ' || c == '-' {
            continue;
        }
        count += 1;
        let position = count;
        if !c.is_ascii() {
            return Err(match full_width_to_ascii(c) {
                Some(ascii) => UsccError::FullWidth {
                    position,
                    got: c,
                    ascii,
                },
                None => UsccError::NonAscii { position, got: c },
            });
        }
        let byte = (c as u8).to_ascii_uppercase();
        if value_of(byte).is_none() {
            return Err(if is_forbidden_letter(byte) {
                UsccError::ForbiddenLetter { position, got: c }
            } else {
                UsccError::NotAllowed { position, got: c }
            });
        }
        if let Some(slot) = out.get_mut(count - 1) {
            *slot = byte;
        }
    }
    Ok(count)
}

/// Checks the division digits and the check character of 18 alphabet bytes.
fn check_structure(bytes: &[u8; USCC_LEN]) -> Result<(), UsccError> {
    check_division(bytes)?;
    let expected = check_byte(bytes);
    let got = bytes[USCC_LEN - 1];
    if got != expected {
        return Err(UsccError::CheckCharacter {
            expected: char::from(expected),
            got: char::from(got),
        });
    }
    Ok(())
}

fn check_division(bytes: &[u8; USCC_LEN]) -> Result<(), UsccError> {
    for position in DIVISION_POSITIONS {
        let byte = bytes[position - 1];
        if !byte.is_ascii_digit() {
            return Err(UsccError::NotDigit {
                position,
                got: char::from(byte),
            });
        }
    }
    Ok(())
}

/// The check byte for the first 17 bytes (all in the alphabet).
fn check_byte(bytes: &[u8; USCC_LEN]) -> u8 {
    let sum: u32 = bytes[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(&b, w)| value_of(b).unwrap_or(0) * w)
        .sum();
    ALPHABET[((31 - sum % 31) % 31) as usize]
}

fn is_forbidden_letter(byte: u8) -> bool {
    matches!(byte, b'I' | b'O' | b'S' | b'V' | b'Z')
}

/// The ASCII character a full-width form stands for, if `c` is one.
fn full_width_to_ascii(c: char) -> Option<char> {
    match u32::from(c) {
        0x3000 => Some(' '),
        code @ 0xFF01..=0xFF5E => char::from_u32(code - 0xFF01 + 0x21),
        _ => None,
    }
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl fmt::Display for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uscc({})", self.as_str())
    }
}

impl FromStr for Uscc {
    type Err = UsccError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uscc::parse(s)
    }
}

impl AsRef<str> for Uscc {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl serde::Serialize for Uscc {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(self.as_str())
        } else {
            use serde::ser::SerializeTuple;
            let mut tuple = serializer.serialize_tuple(USCC_LEN)?;
            for byte in &self.0 {
                tuple.serialize_element(byte)?;
            }
            tuple.end()
        }
    }
}

impl<'de> serde::Deserialize<'de> for Uscc {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(StrVisitor)
        } else {
            deserializer.deserialize_tuple(USCC_LEN, BytesVisitor)
        }
    }
}

struct StrVisitor;

impl serde::de::Visitor<'_> for StrVisitor {
    type Value = Uscc;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an 18-character Unified Social Credit Code")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Uscc, E> {
        Uscc::parse(v).map_err(|e| E::custom(format_args!("invalid USCC {v:?}: {e}")))
    }
}

struct BytesVisitor;

impl<'de> serde::de::Visitor<'de> for BytesVisitor {
    type Value = Uscc;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("18 canonical USCC bytes")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Uscc, A::Error> {
        let mut bytes = [0u8; USCC_LEN];
        for (index, slot) in bytes.iter_mut().enumerate() {
            *slot = seq
                .next_element()?
                .ok_or_else(|| serde::de::Error::invalid_length(index, &self))?;
        }
        Uscc::from_canonical_bytes(bytes)
            .map_err(|e| serde::de::Error::custom(format_args!("invalid USCC: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_powers_of_three_mod_31() {
        let mut w = 1u32;
        for weight in WEIGHTS {
            assert_eq!(weight, w);
            w = w * 3 % 31;
        }
    }

    #[test]
    fn alphabet_excludes_i_o_s_v_z_and_is_ordered() {
        assert_eq!(ALPHABET.len(), 31);
        for b in [b'I', b'O', b'S', b'V', b'Z'] {
            assert!(!ALPHABET.contains(&b));
            assert!(value_of(b).is_none());
        }
        for (i, &b) in ALPHABET.iter().enumerate() {
            assert_eq!(value_of(b), Some(i as u32));
        }
        assert!(ALPHABET.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn known_check_characters() {
        assert_eq!(check_character("91350100M000100Y4"), Ok('3'));
        assert_eq!(check_character("91110000600037341"), Ok('L'));
        assert_eq!(check_character("92371000MA3MXH0E3"), Ok('W'));
    }

    #[test]
    fn full_width_mapping() {
        assert_eq!(full_width_to_ascii('Ａ'), Some('A'));
        assert_eq!(full_width_to_ascii('９'), Some('9'));
        assert_eq!(full_width_to_ascii('－'), Some('-'));
        assert_eq!(full_width_to_ascii('\u{3000}'), Some(' '));
        assert_eq!(full_width_to_ascii('中'), None);
    }

    #[test]
    fn samples_are_valid_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..10_000u64 {
            let code = Uscc::sample(i);
            assert_eq!(Uscc::parse(code.as_str()), Ok(code));
            assert!(seen.insert(code));
        }
    }

    #[test]
    fn parse_does_not_store_beyond_18() {
        let long = "91350100M000100Y43000000000000";
        assert_eq!(
            Uscc::parse(long),
            Err(UsccError::Length {
                expected: 18,
                got: long.len()
            })
        );
    }
}
