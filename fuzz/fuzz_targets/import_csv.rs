//! Fuzz target `import_csv`: see `wlnode_devtools::fuzz`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wlnode_devtools::fuzz::import_csv(data));
