#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| clipguide_fuzz::scenes_jsonl(data));
