//! Fuzz target `node_toml`: see `wlnode_devtools::fuzz`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wlnode_devtools::fuzz::node_toml(data));
