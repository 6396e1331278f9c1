//! The body of `POST /v1/transactions/batch` (`api::batch::parse`, which applies
//! its limits while parsing), against a plain reading of the same body with
//! `serde_json::Value`: whatever one accepts within the limits, the other
//! accepts, with the same entries.
use yrd_ledger::tx::MAX_TX_BYTES;
use yrd_node::api::batch::{parse, BatchParseError, MAX_ENTRY_HEX_CHARS};
use yrd_node::shared::MAX_BATCH;

/// The plain reading: `Some(entries)` if `body` is one JSON object with a `txs`
/// key (exactly once) holding a list of strings, within the limits.
fn reference(body: &[u8]) -> Option<Vec<String>> {
    // Keys may repeat below the top level (unknown keys are skipped unread), not
    // `txs`: count it on a second, order-keeping reading of the top-level keys.
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let list = value.as_object()?.get("txs")?.as_array()?;
    if list.len() > MAX_BATCH {
        return None;
    }
    let strings: Option<Vec<String>> = list.iter().map(|v| v.as_str().map(str::to_string)).collect();
    let strings = strings?;
    if strings.iter().any(|s| s.len() > MAX_ENTRY_HEX_CHARS) {
        return None;
    }
    Some(strings)
}

/// How many top-level `txs` keys the body has (0 if it is not an object).
fn txs_keys(body: &[u8]) -> usize {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
    struct Count;
    impl<'de> Visitor<'de> for Count {
        type Value = usize;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
            let mut n = 0;
            while let Some(k) = map.next_key::<String>()? {
                n += usize::from(k == "txs");
                map.next_value::<IgnoredAny>()?;
            }
            Ok(n)
        }
    }
    serde_json::Deserializer::from_slice(body).deserialize_map(Count).unwrap_or(0)
}

/// One execution: panics when a property fails.
pub fn run(data: &[u8]) {
    let parsed = parse(data);
    if let Ok(entries) = &parsed {
        assert!(entries.len() <= MAX_BATCH, "{} entries accepted", entries.len());
        for e in entries.iter().flatten() {
            assert!(e.len() <= MAX_TX_BYTES, "an entry of {} bytes accepted", e.len());
        }
    }
    if let Err(BatchParseError::EntryTooLarge { hex_chars, .. }) = &parsed {
        assert!(*hex_chars > MAX_ENTRY_HEX_CHARS);
    }
    // serde_json's `Value` refuses a number beyond f64's range (`1e999`), a
    // limit RFC 8259 §6 leaves to each reader; the batch parser, like the
    // single-submission body, skips the values of unknown keys unread and so
    // takes such a number there. The plain reading cannot judge those bodies.
    if let Err(e) = serde_json::from_slice::<serde_json::Value>(data) {
        if e.to_string().starts_with("number out of range") {
            return;
        }
    }
    let plain = reference(data).filter(|_| txs_keys(data) == 1);
    match (&parsed, &plain) {
        (Ok(entries), Some(strings)) => {
            assert_eq!(entries.len(), strings.len(), "entry count differs from the plain reading");
            for (e, s) in entries.iter().zip(strings) {
                assert_eq!(e.as_ref().ok(), hex::decode(s).ok().as_ref(), "entry {s:?} decoded differently");
            }
        }
        (Err(e), Some(_)) => panic!("the plain reading accepts the body, the batch parser refuses it: {e}"),
        (Ok(entries), None) => panic!("the batch parser accepts {} entries the plain reading refuses", entries.len()),
        (Err(_), None) => {}
    }
}
