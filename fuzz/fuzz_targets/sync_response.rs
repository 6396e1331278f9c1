//! The `sync_response` target: `yrd_fuzz::targets::sync_response` (fuzz/src/targets/sync_response.rs).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| yrd_fuzz::targets::sync_response::run(data));
