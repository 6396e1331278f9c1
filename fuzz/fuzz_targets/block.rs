//! The `block` target: `yrd_fuzz::targets::block` (fuzz/src/targets/block.rs).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| yrd_fuzz::targets::block::run(data));
