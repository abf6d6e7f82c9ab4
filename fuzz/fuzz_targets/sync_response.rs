//! Fuzz target `sync_response`: see `wlnode::fuzz_targets`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wlnode::fuzz_targets::sync_response(data));
