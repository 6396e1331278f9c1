//! Parsing the batch body `{"txs": ["<hex>", ...]}` with its limits applied while
//! parsing: the parser stops at the entry after the [`MAX_BATCH`]th and at the first
//! entry longer than a transaction can be, instead of building a list of
//! everything first (16 MB of `"",` is 5.6 million empty strings, about 130 MB
//! of `String`s). Each entry is hex-decoded as it is read, so the result holds
//! only the decoded bytes (at most half the body).

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use yrd_ledger::tx::MAX_TX_BYTES;

use crate::shared::MAX_BATCH;

/// Longest entry: the hex of the largest transaction.
pub const MAX_ENTRY_HEX_CHARS: usize = 2 * MAX_TX_BYTES;

/// One entry of a batch: the decoded bytes, or why its hex is invalid (answered in
/// the entry's slot; the other entries are still admitted).
pub type Entry = Result<Vec<u8>, hex::FromHexError>;

/// Why a batch body was refused as a whole.
#[derive(Debug, thiserror::Error)]
pub enum BatchParseError {
    /// More than [`MAX_BATCH`] entries; parsing stopped at the first one too many,
    /// at `column` of `line` of the body.
    #[error("batch has more than {MAX_BATCH} transactions (reading stopped at entry {})", MAX_BATCH + 1)]
    TooMany { line: usize, column: usize },
    /// An entry longer than any transaction's hex; parsing stopped there.
    #[error(
        "transaction {index} of the batch is {hex_chars} hex characters, more than the {MAX_TX_BYTES}-byte limit \
         (reading stopped there)"
    )]
    EntryTooLarge { index: usize, hex_chars: usize },
    /// Not JSON, or not `{"txs": [strings]}`.
    #[error("invalid JSON body: {0}")]
    Json(#[from] serde_json::Error),
    /// Not UTF-8 (JSON is, RFC 8259 §8.1): serde_json skips the strings of
    /// ignored keys without checking them, so this is checked first (the
    /// `api_batch` fuzz target found such a body accepted).
    #[error("invalid JSON body: not UTF-8 (byte {valid_up_to} starts an invalid sequence)")]
    NotUtf8 { valid_up_to: usize },
}

/// A limit hit while parsing, kept aside: serde errors only carry text.
#[derive(Debug, Clone, Copy)]
enum Hit {
    TooMany,
    EntryTooLarge { index: usize, hex_chars: usize },
}

type HitCell = Cell<Option<Hit>>;

/// The UTF-8 check every JSON body of the API passes first (this one and the
/// single submission's, `api::parse_json_body`), so both refuse the same bytes
/// with the same words.
pub fn require_utf8(body: &[u8]) -> Result<(), BatchParseError> {
    std::str::from_utf8(body).map(|_| ()).map_err(|e| BatchParseError::NotUtf8 { valid_up_to: e.valid_up_to() })
}

/// Parses a batch body. Unknown top-level keys are ignored (without being kept);
/// a repeated `txs` key is an error.
pub fn parse(body: &[u8]) -> Result<Vec<Entry>, BatchParseError> {
    require_utf8(body)?;
    let hit = HitCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = RequestSeed(&hit).deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    match (parsed, hit.get()) {
        (Ok(v), _) => Ok(v),
        (Err(e), Some(Hit::TooMany)) => Err(BatchParseError::TooMany { line: e.line(), column: e.column() }),
        (Err(_), Some(Hit::EntryTooLarge { index, hex_chars })) => {
            Err(BatchParseError::EntryTooLarge { index, hex_chars })
        }
        (Err(e), None) => Err(BatchParseError::Json(e)),
    }
}

struct RequestSeed<'a>(&'a HitCell);

impl<'de> DeserializeSeed<'de> for RequestSeed<'_> {
    type Value = Vec<Entry>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Entry>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RequestSeed<'_> {
    type Value = Vec<Entry>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object {\"txs\": [\"<hex>\", ...]}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<Entry>, A::Error> {
        let mut txs = None;
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Txs if txs.is_some() => return Err(de::Error::duplicate_field("txs")),
                Key::Txs => txs = Some(map.next_value_seed(TxsSeed(self.0))?),
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        txs.ok_or_else(|| de::Error::missing_field("txs"))
    }
}

/// A top-level key, compared without being copied.
enum Key {
    Txs,
    Other,
}

impl<'de> de::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(if v == "txs" { Key::Txs } else { Key::Other })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

struct TxsSeed<'a>(&'a HitCell);

impl<'de> DeserializeSeed<'de> for TxsSeed<'_> {
    type Value = Vec<Entry>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Entry>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for TxsSeed<'_> {
    type Value = Vec<Entry>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a list of at most {MAX_BATCH} hex strings")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Entry>, A::Error> {
        // No capacity from the size hint: it comes from the client.
        let mut out = Vec::new();
        while let Some(entry) = seq.next_element_seed(EntrySeed { index: out.len(), hit: self.0 })? {
            out.push(entry);
        }
        Ok(out)
    }
}

struct EntrySeed<'a> {
    index: usize,
    hit: &'a HitCell,
}

impl<'de> DeserializeSeed<'de> for EntrySeed<'_> {
    type Value = Entry;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Entry, D::Error> {
        // The entry after the last allowed one ends parsing before it is read.
        if self.index >= MAX_BATCH {
            self.hit.set(Some(Hit::TooMany));
            return Err(de::Error::custom(format!("more than {MAX_BATCH} transactions")));
        }
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for EntrySeed<'_> {
    type Value = Entry;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a hex string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Entry, E> {
        if v.len() > MAX_ENTRY_HEX_CHARS {
            self.hit.set(Some(Hit::EntryTooLarge { index: self.index, hex_chars: v.len() }));
            return Err(E::custom("transaction too large"));
        }
        Ok(hex::decode(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(entries: &[String]) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({ "txs": entries })).unwrap()
    }

    /// Found by the `api_batch` fuzz target (fuzz/README.md): invalid UTF-8 in
    /// the string of an ignored key was accepted (serde_json skips it unread).
    #[test]
    fn a_body_that_is_not_utf8_is_refused() {
        let crash = b"{\"note\": {\"\xc7x\": [0, 2.5e3, null]}, \"txs\": [\"00ff\", \"zzc\", \"\", \"\\u0030\\u0031\"]}";
        assert!(matches!(parse(crash), Err(BatchParseError::NotUtf8 { valid_up_to: 11 })));
        assert!(parse(b"{\"txs\": [\"00\"], \"x\": \"\xff\"}").is_err());
        assert_eq!(parse(b"{\"txs\": [\"00\"], \"x\": \"\xe4\xb8\xad\"}").unwrap().len(), 1, "UTF-8 is fine");
    }

    /// Found by the fuzz smoke run (tests/tests/fuzz_smoke.rs): a number beyond
    /// f64's range in an ignored key. RFC 8259 §6 lets a reader take it; the
    /// batch body and the single submission (`SubmitRequest`) both skip unknown
    /// values unread and so agree on it — only `serde_json::Value` refuses it.
    #[test]
    fn a_huge_number_in_an_ignored_key_is_judged_as_the_single_submission_judges_it() {
        let body = br#"{"note": {"x": [1, 2.5e00313, -1e999, null]}, "txs": ["00ff"]}"#;
        assert_eq!(parse(body).unwrap().len(), 1);
        let single = br#"{"note": {"x": [1, 2.5e00313, -1e999, null]}, "tx": "00ff"}"#;
        assert_eq!(serde_json::from_slice::<crate::api::SubmitRequest>(single).unwrap().tx, "00ff");
        assert!(serde_json::from_slice::<serde_json::Value>(body).is_err(), "serde_json's Value caps numbers at f64");
    }

    #[test]
    fn entries_are_decoded_in_order_and_bad_hex_stays_in_its_slot() {
        let v = parse(br#"{"note": {"x": [1, 2]}, "txs": ["00ff", "zz", "abc", ""]}"#).unwrap();
        assert_eq!(v.len(), 4);
        assert_eq!(v[0].as_ref().unwrap(), &vec![0x00, 0xff]);
        assert!(matches!(v[1], Err(hex::FromHexError::InvalidHexCharacter { .. })));
        assert!(matches!(v[2], Err(hex::FromHexError::OddLength)));
        assert_eq!(v[3].as_ref().unwrap(), &Vec::<u8>::new());
        // Escapes are JSON's business: "\u0030\u0031" is "01".
        assert_eq!(parse(br#"{"txs": ["\u0030\u0031"]}"#).unwrap()[0].as_ref().unwrap(), &vec![1]);
    }

    #[test]
    fn exactly_the_maximum_is_accepted() {
        let v = parse(&body(&vec!["00".to_string(); MAX_BATCH])).unwrap();
        assert_eq!(v.len(), MAX_BATCH);
    }

    #[test]
    fn parsing_stops_at_the_entry_after_the_maximum() {
        let e = parse(&body(&vec!["00".to_string(); MAX_BATCH + 1])).unwrap_err();
        assert!(matches!(e, BatchParseError::TooMany { .. }), "{e:?}");
        assert!(e.to_string().contains("more than 2000 transactions"), "{e}");

        // 16 MB of empty strings: the parser gives up where entry 2001 begins,
        // `{"txs":[` (8 bytes) plus 2000 times `"",` (3 bytes), not 16 MB later.
        let mut huge = b"{\"txs\":[".to_vec();
        for _ in 0..(16 << 20) / 3 {
            huge.extend_from_slice(b"\"\",");
        }
        huge.extend_from_slice(b"\"\"]}");
        match parse(&huge).unwrap_err() {
            BatchParseError::TooMany { line, column } => {
                assert_eq!(line, 1);
                assert!((8 + 3 * MAX_BATCH..8 + 3 * MAX_BATCH + 4).contains(&column), "stopped at column {column}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parsing_stops_at_the_first_entry_over_the_transaction_size() {
        let mut entries = vec!["00".to_string(); 3];
        entries.push("0".repeat(MAX_ENTRY_HEX_CHARS + 2));
        entries.extend(vec!["zz".to_string(); MAX_BATCH + 10]);
        match parse(&body(&entries)).unwrap_err() {
            BatchParseError::EntryTooLarge { index, hex_chars } => {
                assert_eq!((index, hex_chars), (3, MAX_ENTRY_HEX_CHARS + 2));
            }
            other => panic!("{other:?}"),
        }
        // The largest transaction's hex is fine.
        assert!(parse(&body(&["0".repeat(MAX_ENTRY_HEX_CHARS)])).is_ok());
    }

    #[test]
    fn malformed_bodies_are_json_errors_with_the_reason() {
        for (input, needle) in [
            (&br#"{"txs": "00"}"#[..], "expected a list of at most 2000 hex strings"),
            (br#"{"txs": [1]}"#, "expected a hex string"),
            (br#"{"transactions": []}"#, "missing field `txs`"),
            (br#"{"txs": [], "txs": []}"#, "duplicate field `txs`"),
            (br#"["00"]"#, "expected an object"),
            (br#"{"txs": []} x"#, "trailing characters"),
            (br#"{"txs": ["00""#, "EOF"),
        ] {
            match parse(input) {
                Err(BatchParseError::Json(e)) => assert!(e.to_string().contains(needle), "{e} lacks {needle:?}"),
                other => panic!("{}: {other:?}", String::from_utf8_lossy(input)),
            }
        }
    }
}
