//! The `header` target: `yrd_fuzz::targets::header` (fuzz/src/targets/header.rs).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| yrd_fuzz::targets::header::run(data));
