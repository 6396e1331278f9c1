//! The `proof_file` target: `yrd_fuzz::targets::proof_file` (fuzz/src/targets/proof_file.rs).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| yrd_fuzz::targets::proof_file::run(data));
