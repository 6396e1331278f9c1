//! The `hello` target: `yrd_fuzz::targets::hello` (fuzz/src/targets/hello.rs).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| yrd_fuzz::targets::hello::run(data));
