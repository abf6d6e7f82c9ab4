//! Fuzz target `node_toml`: see `wlnode::fuzz_targets`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wlnode::fuzz_targets::node_toml(data));
