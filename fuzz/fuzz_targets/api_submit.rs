//! The body of `POST /v1/transactions` as the handler reads it: JSON into
//! `SubmitRequest` (what `ApiJson` does), the hex through `decode_tx_hex`, then
//! admission (`validate::check_untrusted_bytes`).
#![no_main]
use libfuzzer_sys::fuzz_target;
use yrd_fuzz::with_fixture;
use yrd_ledger::tx::MAX_TX_BYTES;
use yrd_ledger::validate::check_untrusted_bytes;
use yrd_node::api::{decode_tx_hex, SubmitRequest};

fuzz_target!(|data: &[u8]| {
    let Ok(req) = serde_json::from_slice::<SubmitRequest>(data) else { return };
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
});
