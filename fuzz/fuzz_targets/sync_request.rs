//! The `sync_request` target: `yrd_fuzz::targets::sync_request` (fuzz/src/targets/sync_request.rs).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| yrd_fuzz::targets::sync_request::run(data));
