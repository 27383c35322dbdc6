#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| clipguide_fuzz::open_clip_config(data));
