//! The short, seeded fuzz run that every test run does: each target gets its seeds
//! (`fuzz/seeds/<target>/`), the corpus the long runs grew (`fuzz/corpus/<target>/`), the inputs
//! that once crashed it (`fuzz/regressions/<target>/`) and a fixed batch of mutations from a
//! ChaCha stream, so a failure names an input that reproduces. The long runs are `cargo fuzz`
//! (see fuzz/README.md).

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The largest single allocation since the last reset: no input may ask for more than 1 GiB.
struct LargestAllocation;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for LargestAllocation {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: LargestAllocation = LargestAllocation;

const ALLOCATION_LIMIT: usize = 1 << 30;
/// Mutated inputs per target on each test run (the whole run stays well under a minute).
const MUTATIONS: usize = 10_000;
const SEED: u64 = 20261206;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Every file in `dir`, sorted by name so the run is the same on every machine.
fn files_in(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(String, Vec<u8>)> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .map(|e| {
            let bytes = std::fs::read(e.path()).expect("readable corpus file");
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    files.sort();
    files
}

/// Bytes that mean something to the parsers under test.
const TOKENS: &[&[u8]] = &[
    b":",
    b"|",
    b"\\",
    b"(",
    b")",
    b"[",
    b"]",
    b"{",
    b"}",
    b"\"",
    b",",
    b"=",
    b"\n",
    b"0",
    b"1.5",
    b"-1",
    b"nan",
    b"inf",
    b"1e999",
    b"BREAK",
    b"\x00",
    b"\xff",
    b"PK\x03\x04",
    b"tEXt",
    b"IEND",
    b"steps = 10\n",
    b"\"text\"",
    b"[[prompts]]\n",
    b"\xe3\x81\xb2",
    b"\t",
    b"{}",
    b"#",
    b"\r\n",
    b" | ",
    b"1e39",
    b"../",
    b"18446744073709551615",
];

fn mutate(rng: &mut ChaCha8Rng, corpus: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut data = if corpus.is_empty() {
        Vec::new()
    } else {
        corpus[rng.random_range(0..corpus.len())].1.clone()
    };
    for _ in 0..rng.random_range(1..=4) {
        let len = data.len();
        match rng.random_range(0..7) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                data[i] ^= 1 << rng.random_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.random_range(0..len);
                data[i] = rng.random();
            }
            2 => {
                let i = rng.random_range(0..=len);
                let token = TOKENS[rng.random_range(0..TOKENS.len())];
                data.splice(i..i, token.iter().copied());
            }
            3 if len > 0 => {
                let a = rng.random_range(0..len);
                let b = rng.random_range(a..=len.min(a + 64));
                data.drain(a..b);
            }
            4 if len > 0 => {
                let a = rng.random_range(0..len);
                let b = rng.random_range(a..=len.min(a + 64));
                let piece = data[a..b].to_vec();
                let at = rng.random_range(0..=data.len());
                data.splice(at..at, piece);
            }
            5 if !corpus.is_empty() => {
                let other = &corpus[rng.random_range(0..corpus.len())].1;
                let cut = rng.random_range(0..=len);
                let from = rng.random_range(0..=other.len());
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
            6 if len > 0 => data.truncate(rng.random_range(0..len)),
            _ => {}
        }
    }
    data.truncate(1 << 16);
    data
}

fn hex_head(data: &[u8]) -> String {
    data.iter().take(96).map(|b| format!("{b:02x}")).collect()
}

#[test]
fn every_target_survives_its_corpus_regressions_and_seeded_mutations() {
    let mut failures = Vec::new();
    for (index, &(name, target)) in clipguide_fuzz::TARGETS.iter().enumerate() {
        let seeds_dir = fuzz_dir().join("seeds").join(name);
        let seeds = files_in(&seeds_dir);
        if seeds.is_empty() {
            failures.push(format!(
                "{name}: no seed inputs in {} (restore them from git, or run tools/make_fuzz_seeds.py)",
                seeds_dir.display()
            ));
            continue;
        }
        let mut corpus = seeds;
        corpus.extend(files_in(&fuzz_dir().join("corpus").join(name)));
        let regressions = files_in(&fuzz_dir().join("regressions").join(name));
        let mut rng = ChaCha8Rng::seed_from_u64(SEED + index as u64);
        let named = corpus
            .iter()
            .chain(&regressions)
            .map(|(n, d)| (n.clone(), d.clone()));
        let mutated = (0..MUTATIONS).map(|i| (format!("mutation {i}"), mutate(&mut rng, &corpus)));
        for (label, data) in named.chain(mutated) {
            LARGEST.store(0, Ordering::Relaxed);
            let outcome = std::panic::catch_unwind(|| target(&data));
            let largest = LARGEST.load(Ordering::Relaxed);
            if let Err(panic) = outcome {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!(
                    "{name}, {label}: panicked: {msg}; input {}",
                    hex_head(&data)
                ));
            } else if largest > ALLOCATION_LIMIT {
                failures.push(format!(
                    "{name}, {label}: one allocation of {largest} bytes; input {}",
                    hex_head(&data)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The hand-made seeds reach past the first check of each loader: a corpus of inputs that are all refused
/// at the first byte would fuzz nothing.
#[test]
fn the_seed_corpus_is_accepted_where_it_should_be() {
    use candle_core::Device;
    let corpus = |name: &str| files_in(&fuzz_dir().join("seeds").join(name));
    let scratch = tempfile::tempdir().unwrap();
    for (target, ext) in [("safetensors", "safetensors"), ("torch_pickle", "bin")] {
        for (file, data) in corpus(target) {
            let path = scratch.path().join(format!("{file}.{ext}"));
            std::fs::write(&path, &data).unwrap();
            let loaded = clipguide_clip::weights::read_weights(&path, &Device::Cpu);
            assert!(loaded.is_ok_and(|t| !t.is_empty()), "{target}/{file}");
        }
    }
    for (file, data) in corpus("sentencepiece") {
        let sp = clipguide_clip::sentencepiece::SentencePiece::from_bytes(&data, Path::new(&file))
            .unwrap_or_else(|e| panic!("sentencepiece/{file}: {e}"));
        assert!(!sp.encode("ひまわり").unwrap().is_empty());
    }
    let generated = corpus("png_params")
        .into_iter()
        .find(|(f, _)| f == "generated.png")
        .expect("fuzz/seeds/png_params/generated.png");
    let text =
        clipguide_guide::png_meta::png_text(&generated.1, clipguide_guide::png_meta::PARAMS_KEY)
            .unwrap()
            .expect("a parameters chunk");
    let config = clipguide_guide::StoredRun::from_json(&text)
        .unwrap()
        .into_config();
    config.validate().unwrap();
    let example = corpus("schedule_toml");
    assert!(example
        .iter()
        .all(|(f, d)| clipguide_guide::GuideSchedule::from_toml_str(
            std::str::from_utf8(d).unwrap()
        )
        .is_ok_and(|_| !f.is_empty())));
    for (file, data) in corpus("clip_config")
        .iter()
        .filter(|(f, _)| f.starts_with("openai"))
    {
        let text = std::str::from_utf8(data).unwrap();
        assert!(
            clipguide_clip::ClipConfig::from_json_str(text).is_ok(),
            "clip_config/{file}"
        );
    }
}

/// The text formats' seeds parse, so their mutations start past the first check.
#[test]
fn the_text_format_seeds_are_accepted() {
    use clipguide_zeroshot::prompts::{parse_labels_file, read_lines_file, Templates};
    let corpus = |name: &str| files_in(&fuzz_dir().join("seeds").join(name));
    let text = |d: &[u8]| String::from_utf8(d.to_vec()).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let mut kinds = Vec::new();
    for (file, data) in corpus("labels_file") {
        let path = scratch.path().join(&file);
        std::fs::write(&path, &data).unwrap();
        let labels = parse_labels_file(&text(&data), &path).is_ok();
        let templates = Templates::from_file(&path).is_ok();
        let lines = read_lines_file(&path).is_ok();
        assert!(labels || lines, "labels_file/{file}");
        kinds.push((labels, templates));
    }
    // Both kinds are there, and templates.
    assert!(kinds.iter().any(|k| k.0) && kinds.iter().any(|k| k.1));
    for (file, data) in corpus("wordnet") {
        let dir = scratch.path().join(format!("wordnet-{file}"));
        std::fs::create_dir(&dir).unwrap();
        let names = ["index.noun", "data.noun", "index.adj", "data.adj"];
        for (name, part) in names.iter().zip(data.split(|&b| b == 0)) {
            std::fs::write(dir.join(name), part).unwrap();
        }
        let wn = clipguide_zeroshot::wordnet::WordNet::open(&dir).unwrap();
        let gloss = wn.gloss("disc").unwrap();
        assert!(gloss.is_some_and(|g| !g.is_empty()), "wordnet/{file}");
    }
    for (file, data) in corpus("coco_resume") {
        let f = clipguide_zeroshot::coco::CocoFile::from_json_str(&text(&data), Path::new(&file))
            .unwrap_or_else(|e| panic!("coco_resume/{file}: {e}"));
        assert!(!f.images.is_empty() && !f.annotations.is_empty(), "{file}");
    }
    for (file, data) in corpus("scenes_jsonl") {
        let d = clipguide_train::eval::parse_drawings(&text(&data), Path::new(&file))
            .unwrap_or_else(|e| panic!("scenes_jsonl/{file}: {e}"));
        assert!(d.len() >= 3, "{file}");
    }
    for (file, data) in corpus("index_manifest") {
        let t = text(&data);
        if file.ends_with(".json") {
            clipguide_index::Manifest::from_json_str(&t, Path::new(&file))
                .unwrap_or_else(|e| panic!("index_manifest/{file}: {e}"));
        } else {
            t.parse::<clipguide_index::Shard>().unwrap();
        }
    }
}
