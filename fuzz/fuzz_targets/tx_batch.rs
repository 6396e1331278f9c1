//! The `tx_batch` target: `yrd_fuzz::targets::tx_batch` (fuzz/src/targets/tx_batch.rs).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| yrd_fuzz::targets::tx_batch::run(data));
