//! Fuzz target `sync_request`: see `wlnode::fuzz_targets`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wlnode::fuzz_targets::sync_request(data));
