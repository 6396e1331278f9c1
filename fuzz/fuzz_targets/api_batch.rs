//! The `api_batch` target: `yrd_fuzz::targets::api_batch` (fuzz/src/targets/api_batch.rs).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| yrd_fuzz::targets::api_batch::run(data));
