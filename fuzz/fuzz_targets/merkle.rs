//! The `merkle` target: `yrd_fuzz::targets::merkle` (fuzz/src/targets/merkle.rs).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| yrd_fuzz::targets::merkle::run(data));
