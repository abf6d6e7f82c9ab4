//! Fuzz target `import_ofac_xml`: see `wlnode::fuzz_targets`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wlnode::fuzz_targets::import_ofac_xml(data));
