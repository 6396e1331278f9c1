//! Strict JSON reading for the files a verifier trusts nothing in: proof files
//! and the genesis (docs/proofs.md §3, "Strict JSON").
//!
//! Three rules on top of the types' own (`deny_unknown_fields`, no `default` on
//! a required field, hex through [`yrd_consensus::crypto::parse_hex`]):
//! - **no duplicate key** in any object, checked on the raw text before
//!   anything is built (a JSON map keeps the last value of a repeated key, so
//!   two readers could see two different files in the same bytes);
//! - **a `null` field is present**: an `Option` field of a file is required and
//!   may be `null`, never left out ([`required`]);
//! - errors name the **JSON path** of the offending key as it is in the file
//!   (`entries[3].attestation.log_index`), not the name of a Rust type.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// Why a JSON document was refused: where, and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", if path.is_empty() { "top level" } else { path.as_str() })]
pub struct StrictJsonError {
    /// The JSON path of the offending value (`""` for the top level).
    pub path: String,
    pub message: String,
}

/// Marks an error raised inside a hand-written `Deserialize` that parsed a
/// part of the document on its own ([`nested_error`]): the part's inner path
/// travels in the message and is joined to the outer path.
const NESTED: char = '\u{1}';

/// Turns the error of a nested [`from_value`] into the error of the outer
/// deserializer, keeping the inner path (joined by [`from_slice`]).
pub fn nested_error<E: de::Error>(e: StrictJsonError) -> E {
    E::custom(format!("{NESTED}{}{NESTED}{}", e.path, e.message))
}

/// Joins a path and a relative path (`a` + `b.c` = `a.b.c`, `a` + `[2]` = `a[2]`).
fn join(at: &str, inner: &str) -> String {
    match (at.is_empty(), inner.is_empty()) {
        (_, true) => at.to_string(),
        (true, false) => inner.to_string(),
        (false, false) if inner.starts_with('[') => format!("{at}{inner}"),
        (false, false) => format!("{at}.{inner}"),
    }
}

/// The error at `path` with `message`, unwrapping a [`nested_error`]. serde
/// reports an unknown field at the object holding it: the path is completed
/// with the field's name, so that it names the offending key.
fn located(path: String, message: String) -> StrictJsonError {
    if let Some(rest) = message.strip_prefix(NESTED) {
        if let Some((inner, msg)) = rest.split_once(NESTED) {
            let msg = msg.rsplit_once(" at line ").map_or(msg, |(m, _)| m);
            return located(join(&path, inner), msg.to_string());
        }
    }
    if let Some(name) = message.strip_prefix("unknown field `").and_then(|r| r.split_once('`')).map(|(n, _)| n) {
        // Read straight from the text, serde_path_to_error has the key already;
        // through a buffered value (tagged enums), only the object.
        if path != name && !path.ends_with(&format!(".{name}")) {
            return StrictJsonError { path: join(&path, name), message };
        }
    }
    StrictJsonError { path, message }
}

/// Parses `bytes` as a `T`: no duplicate key anywhere, then the type's own
/// rules, with the path of the first offending key in the error.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StrictJsonError> {
    check_no_duplicate_keys(bytes)?;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = path_text(e.path());
        located(path, e.into_inner().to_string())
    })?;
    de.end().map_err(|e| StrictJsonError { path: String::new(), message: format!("trailing characters after the JSON value: {e}") })?;
    Ok(value)
}

/// Parses `value` (a part of a document already checked for duplicates) as a
/// `T`, naming paths relative to `at`.
pub fn from_value<T: DeserializeOwned>(at: &str, value: serde_json::Value) -> Result<T, StrictJsonError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = path_text(e.path());
        located(join(at, &inner), e.into_inner().to_string())
    })
}

/// `serde_path_to_error` writes the root as `.`; we write it as `""`.
fn path_text(p: &serde_path_to_error::Path) -> String {
    let s = p.to_string();
    if s == "." {
        String::new()
    } else {
        s
    }
}

/// Refuses a document in which any object has a key twice, naming the path.
pub fn check_no_duplicate_keys(bytes: &[u8]) -> Result<(), StrictJsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Walk { path: String::new() }.deserialize(&mut de).map_err(|e| {
        let msg = e.to_string();
        // Our own errors carry the path before a tab; serde_json's are syntax errors.
        match msg.split_once('\t') {
            Some((path, rest)) => {
                let rest = rest.rsplit_once(" at line ").map_or(rest, |(m, _)| m);
                StrictJsonError { path: path.to_string(), message: rest.to_string() }
            }
            None => StrictJsonError { path: String::new(), message: format!("not JSON: {msg}") },
        }
    })
}

/// A walk over any JSON value that fails on the first repeated key.
struct Walk {
    path: String,
}

impl<'de> DeserializeSeed<'de> for Walk {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        while seq.next_element_seed(Walk { path: format!("{}[{i}]", self.path) })?.is_some() {
            i += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() { key.clone() } else { format!("{}.{key}", self.path) };
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("{path}\tkey {key:?} appears twice in the same object")));
            }
            map.next_value_seed(Walk { path })?;
        }
        Ok(())
    }
}

/// For an `Option` field that must be present (as `null` or a value): serde
/// reads a missing `Option` as `None` unless the field has its own
/// `deserialize_with`. Use as `#[serde(deserialize_with = "crate::strict_json::required")]`.
pub fn required<'de, D: de::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        a: u64,
        #[serde(deserialize_with = "required")]
        b: Option<u64>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        items: Vec<Inner>,
    }

    #[test]
    fn duplicate_keys_are_refused_with_their_path() {
        let e = from_slice::<Outer>(br#"{"items": [{"a": 1, "b": null}, {"a": 1, "a": 2, "b": 3}]}"#).unwrap_err();
        assert_eq!(e.path, "items[1].a", "{e}");
        assert!(e.message.contains("twice"), "{e}");
        let e = from_slice::<Outer>(br#"{"items": [], "items": []}"#).unwrap_err();
        assert_eq!(e.path, "items", "{e}");
    }

    #[test]
    fn missing_unknown_and_null_fields() {
        from_slice::<Outer>(br#"{"items": [{"a": 1, "b": null}]}"#).unwrap();
        let e = from_slice::<Outer>(br#"{"items": [{"a": 1}]}"#).unwrap_err();
        assert_eq!(e.path, "items[0]", "{e}");
        assert!(e.message.contains("missing field `b`"), "{e}");
        let e = from_slice::<Outer>(br#"{"items": [{"a": 1, "b": 2, "c": 3}]}"#).unwrap_err();
        assert_eq!(e.path, "items[0].c", "{e}");
        assert!(e.message.contains("unknown field `c`"), "{e}");
        let e = from_slice::<Outer>(br#"{"items": [{"a": "x", "b": 2}]}"#).unwrap_err();
        assert_eq!(e.path, "items[0].a", "{e}");
        let e = from_slice::<Outer>(br#"{"items": []} x"#).unwrap_err();
        assert!(e.message.contains("trailing") || e.message.contains("not JSON"), "{e}");
    }
}
