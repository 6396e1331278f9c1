//! The `tx` target: `yrd_fuzz::targets::tx` (fuzz/src/targets/tx.rs).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| yrd_fuzz::targets::tx::run(data));
