//! The `genesis_json` target: `yrd_fuzz::targets::genesis_json` (fuzz/src/targets/genesis_json.rs).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| yrd_fuzz::targets::genesis_json::run(data));
