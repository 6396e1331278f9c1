//! The `api_submit` target: `yrd_fuzz::targets::api_submit` (fuzz/src/targets/api_submit.rs).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| yrd_fuzz::targets::api_submit::run(data));
