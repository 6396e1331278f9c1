//! The `tx_sig_batch` target: `yrd_fuzz::targets::tx_sig_batch` (fuzz/src/targets/tx_sig_batch.rs).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| yrd_fuzz::targets::tx_sig_batch::run(data));
