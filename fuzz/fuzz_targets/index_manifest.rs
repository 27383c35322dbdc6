#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| clipguide_fuzz::index_manifest(data));
