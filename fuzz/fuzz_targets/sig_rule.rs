//! The `sig_rule` target: `yrd_fuzz::targets::sig_rule` (fuzz/src/targets/sig_rule.rs).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| yrd_fuzz::targets::sig_rule::run(data));
