//! The `consensus_msg` target: `yrd_fuzz::targets::consensus_msg` (fuzz/src/targets/consensus_msg.rs).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| yrd_fuzz::targets::consensus_msg::run(data));
