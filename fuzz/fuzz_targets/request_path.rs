#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| debsync_fuzz::request_path(data));
