//! The `api_auth` target: `yrd_fuzz::targets::api_auth` (fuzz/src/targets/api_auth.rs).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| yrd_fuzz::targets::api_auth::run(data));
