//! The body of `POST /v1/transactions` as the handler reads it: JSON into
//! `SubmitRequest` through `api::parse_json_body` (what `ApiJson` does), the hex
//! through `decode_tx_hex`, then admission (`validate::check_untrusted_bytes`).
use crate::with_fixture;
use yrd_ledger::tx::MAX_TX_BYTES;
use yrd_ledger::validate::check_untrusted_bytes;
use yrd_node::api::{decode_tx_hex, parse_json_body, SubmitRequest};

/// One execution: panics when a property fails.
pub fn run(data: &[u8]) {
    let req = match parse_json_body::<SubmitRequest>(data) {
        Ok(req) => req,
        Err(e) => {
            assert_eq!((e.status().as_u16(), e.code()), (400, "bad_json"), "a body refused otherwise than as bad JSON");
            return;
        }
    };
    assert!(std::str::from_utf8(data).is_ok(), "a body that is not UTF-8 was accepted");
    match decode_tx_hex(&req.tx) {
        Ok(bytes) => {
            assert!(bytes.len() <= MAX_TX_BYTES, "{} bytes of transaction accepted", bytes.len());
            assert_eq!(Ok(&bytes), hex::decode(&req.tx).as_ref(), "decode_tx_hex is not hex::decode");
            with_fixture(|f| {
                let _ = check_untrusted_bytes(&f.membership, &f.chain.chain, &bytes);
            });
        }
        Err(e) => {
            assert!(matches!(e.code(), "too_large" | "bad_hex"), "unexpected error code {}", e.code());
            assert_eq!(e.status().as_u16(), 400);
        }
    }
}
