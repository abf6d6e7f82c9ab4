//! Fuzz target `import_uk_xml`: see `wlnode_devtools::fuzz`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wlnode_devtools::fuzz::import_uk_xml(data));
