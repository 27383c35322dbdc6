//! One function per parser or loader that takes untrusted bytes. Each must return (an `Err` is
//! fine) without panicking, hanging or allocating without bound, and checks what must hold of
//! what it accepted. `fuzz/` runs them under libFuzzer; `tests/seeded.rs` replays the committed
//! seeds, corpus and regressions and a seeded batch of mutations on every test run.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use candle_core::Device;
use clipguide_clip::{ClipConfig, OpenClipConfig, OpenClipOptions};
use clipguide_guide::png_meta::{png_text, PARAMS_KEY};
use clipguide_guide::{parse_size, ImagePrompt, StoredRun};
use clipguide_guide::{GuideSchedule, PromptSchedule, PromptSpec};
use clipguide_text::{parse_prompt, ParseMode, PromptSyntax};

/// A fuzz target: its name (its folder in fuzz/seeds, corpus and regressions) and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, in the order the seeded test runs them.
pub const TARGETS: &[Target] = &[
    ("prompt", prompt),
    ("attention", attention),
    ("clip_config", clip_config),
    ("open_clip_config", open_clip_config),
    ("safetensors", safetensors),
    ("torch_pickle", torch_pickle),
    ("png_params", png_params),
    ("schedule_toml", schedule_toml),
    ("sentencepiece", sentencepiece),
    ("image", image),
];

/// `generate`'s prompt, schedule, image-prompt and size parsers.
pub fn prompt(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    if let Ok(p) = PromptSpec::parse(&s) {
        assert!(p.weight.is_finite() && !p.text.is_empty(), "{s:?} → {p:?}");
    }
    if let Ok(schedule) = PromptSchedule::parse(&s) {
        let steps: Vec<usize> = schedule.keyframes().iter().map(|k| k.0).collect();
        assert!(steps.windows(2).all(|w| w[0] < w[1]), "{s:?}: {steps:?}");
        let last = steps.last().copied().unwrap_or(0);
        for step in [0, last / 2, last, last + 1] {
            assert!(schedule.at(step).iter().all(|(_, w)| w.is_finite()));
        }
    }
    let _ = ImagePrompt::parse(&s);
    if let Ok((w, h)) = parse_size(&s) {
        assert!((1..=8192).contains(&w) && (1..=8192).contains(&h), "{s:?}");
    }
}

/// A1111 and ComfyUI attention syntax: strict mode either refuses or agrees with the UI.
pub fn attention(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    for syntax in [
        PromptSyntax::A1111,
        PromptSyntax::Comfy,
        PromptSyntax::Plain,
    ] {
        let lenient = parse_prompt(&s, syntax, ParseMode::Lenient).expect("lenient never fails");
        if let Ok(strict) = parse_prompt(&s, syntax, ParseMode::Strict) {
            assert_eq!(strict, lenient, "{syntax:?} {s:?}");
        }
    }
}

/// transformers' `config.json` (and rinna's, which shares the name).
pub fn clip_config(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    if let Ok(c) = ClipConfig::from_json_str(&s) {
        // What was accepted must survive the write-back that `convert` does.
        let back = c.to_hf_json().to_string();
        ClipConfig::from_json_str(&back).expect("a parsed config re-parses");
    }
    let _ = clipguide_clip::rinna::RinnaConfig::from_json_str(&s);
}

/// `open_clip_config.json`.
pub fn open_clip_config(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let _ = OpenClipConfig::from_json_str(&s, &OpenClipOptions::default());
}

/// Weight files told by content: safetensors through the checkpoint reader and the
/// textual-inversion reader.
pub fn safetensors(data: &[u8]) {
    let _ = read_weights_from(data, "w.safetensors");
    let _ = clipguide_text::load_inversion_bytes(data, "fuzz", &Device::Cpu);
}

/// `torch.save` zip archives (`pytorch_model.bin`, `.pt` training checkpoints).
pub fn torch_pickle(data: &[u8]) {
    let _ = read_weights_from(data, "w.bin");
}

/// `--from-png`: the parameters chunk of a PNG and the stored run it holds.
pub fn png_params(data: &[u8]) {
    let Ok(Some(text)) = png_text(data, PARAMS_KEY) else {
        // The stored JSON on its own, as if it had come from a chunk.
        stored_config(&String::from_utf8_lossy(data));
        return;
    };
    stored_config(&text);
}

fn stored_config(text: &str) {
    if let Ok(stored) = StoredRun::from_json(text) {
        let _ = stored.into_config().validate();
    }
}

/// A guidance schedule file.
pub fn schedule_toml(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    if let Ok(schedule) = GuideSchedule::from_toml_str(&s) {
        for step in [0, schedule.steps / 2, schedule.steps] {
            let _ = schedule.cutouts_at(step);
            let _ = schedule.prompts.at(step);
        }
    }
}

/// rinna's `spiece.model`, then encoding a fixed Japanese and English text with it.
pub fn sentencepiece(data: &[u8]) {
    let path = Path::new("spiece.model");
    if let Ok(sp) = clipguide_clip::sentencepiece::SentencePiece::from_bytes(data, path) {
        let _ = sp.encode("ひまわりの油絵, a sunflower");
    }
}

/// An image file, through the decoder and its size limits.
pub fn image(data: &[u8]) {
    let Ok(path) = scratch_file("image", data) else {
        return;
    };
    let _ = clipguide_clip::preprocess::load_image(&path);
}

fn read_weights_from(data: &[u8], name: &str) -> Option<()> {
    let path = scratch_file(name, data).ok()?;
    clipguide_clip::weights::read_weights(&path, &Device::Cpu).ok()?;
    Some(())
}

thread_local! {
    static SCRATCH: RefCell<Option<tempfile::TempDir>> = const { RefCell::new(None) };
}

/// Writes `data` to `name` in this thread's scratch folder, for loaders that read files.
fn scratch_file(name: &str, data: &[u8]) -> std::io::Result<PathBuf> {
    SCRATCH.with(|cell| {
        let mut dir = cell.borrow_mut();
        if dir.is_none() {
            *dir = Some(tempfile::tempdir()?);
        }
        let path = dir.as_ref().expect("set above").path().join(name);
        std::fs::write(&path, data)?;
        Ok(path)
    })
}
