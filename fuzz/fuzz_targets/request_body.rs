#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rollama::fuzzing::request_body(data));
