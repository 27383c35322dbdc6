//! One function per parser or loader that takes untrusted bytes. Each must return (an `Err` is
//! fine) without panicking, hanging or allocating without bound, and checks what must hold of
//! what it accepted. `fuzz/` runs them under libFuzzer; `tests/seeded.rs` replays the committed
//! seeds, corpus and regressions and a seeded batch of mutations on every test run.

use std::cell::RefCell;
use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use candle_core::Device;
use clipguide_clip::{ClipConfig, OpenClipConfig, OpenClipOptions};
use clipguide_guide::png_meta::{png_text, PARAMS_KEY};
use clipguide_guide::{parse_size, ImagePrompt, StoredRun};
use clipguide_guide::{GuideSchedule, PromptSchedule, PromptSpec};
use clipguide_index::{Manifest, Shard};
use clipguide_shapes::{attribute_prompts_in, canonical_caption_in, Language, PromptStyle};
use clipguide_text::{parse_prompt, ParseMode, PromptSyntax};
use clipguide_train::eval::parse_drawings;
use clipguide_zeroshot::coco::CocoFile;
use clipguide_zeroshot::folder::with_definitions;
use clipguide_zeroshot::prompts::{parse_labels_file, parse_lines_file, Templates};
use clipguide_zeroshot::wordnet::WordNet;

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
    ("labels_file", labels_file),
    ("wordnet", wordnet),
    ("coco_resume", coco_resume),
    ("scenes_jsonl", scenes_jsonl),
    ("index_manifest", index_manifest),
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
        // A keyframe may sit at usize::MAX: the step past it saturates.
        for step in [0, last / 2, last, last.saturating_add(1)] {
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

/// K-LITE labels files (`--labels-file`), template files (`--templates`) and the
/// one-entry-per-line files of class names and candidate sentences.
pub fn labels_file(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let path = Path::new("labels.tsv");
    if let Ok(classes) = parse_labels_file(&text, path) {
        assert!(!classes.is_empty());
        let mut labels = HashSet::new();
        for c in &classes {
            let definition = c.definition.as_deref().expect("every label is defined");
            for side in [c.label.as_str(), definition] {
                assert!(!side.is_empty() && side == side.trim(), "{c:?}");
                assert!(!side.contains(['\t', '\n']), "{c:?}");
            }
            // A line whose label starts with '#' is a comment, not a class.
            assert!(!c.label.starts_with('#'), "{c:?}");
            assert!(labels.insert(c.label.as_str()), "{:?} twice", c.label);
        }
        // Written back one line per class, the file reads the same.
        let back: String = classes
            .iter()
            .map(|c| format!("{}\t{}\n", c.label, c.definition.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(parse_labels_file(&back, path).expect("re-reads"), classes);
        let names: Vec<String> = classes.iter().map(|c| c.label.clone()).collect();
        assert_eq!(with_definitions(&names, &classes).unwrap(), classes);
    }
    if let Ok(t) = Templates::single(&text) {
        assert!(text.contains("{}") && t.len() == 1);
    }
    let path = Path::new("lines.txt");
    let templates = Templates::parse(&text, path);
    if let Ok(t) = &templates {
        assert!(!t.is_empty());
        for line in t.as_slice() {
            assert!(line.contains("{}") && !line.contains('\n'), "{line:?}");
            assert!(line.trim_end() == line && !line.trim_start().starts_with('#'));
        }
        let filled = t.fill("\u{1}");
        assert_eq!(filled.len(), t.len());
        assert!(filled.iter().all(|f| f.contains('\u{1}')));
        assert_eq!(&Templates::from_list(t.as_slice().to_vec()).unwrap(), t);
    }
    let lines = parse_lines_file(&text, path);
    if let Ok(lines) = &lines {
        assert!(!lines.is_empty());
        for l in lines {
            assert!(!l.is_empty() && l == l.trim() && !l.contains('\n') && !l.starts_with('#'));
        }
    }
    // A templates file is a lines file whose every line has a placeholder.
    let all_placeholders = lines.is_ok_and(|l| l.iter().all(|l| l.contains("{}")));
    assert_eq!(templates.is_ok(), all_placeholders);
}

/// A WordNet database (`--knowledge wordnet --wordnet-dir`). The input is `index.noun`,
/// `data.noun`, `index.adj` and `data.adj` separated by NUL bytes (WordNet's text holds none);
/// the files after the last part are left out of the folder.
pub fn wordnet(data: &[u8]) {
    const FILES: [&str; 4] = ["index.noun", "data.noun", "index.adj", "data.adj"];
    let parts: Vec<&[u8]> = data.splitn(FILES.len(), |&b| b == 0).collect();
    let Ok(dir) = scratch_folder("wordnet", &FILES, &parts) else {
        return;
    };
    let Ok(wn) = WordNet::open(&dir) else {
        return;
    };
    // The adjectives are searched only when both of their files are there.
    let searched = if parts.len() == FILES.len() { 2 } else { 1 };
    let known: Vec<Vec<String>> = (0..searched).map(|p| index_keys(parts[2 * p])).collect();
    let mut lemmas: Vec<String> = known
        .iter()
        .flat_map(|k| k.iter().take(8).cloned())
        .collect();
    lemmas.extend(["circle", "Plus sign", "azure", "hexagon"].map(String::from));
    for lemma in &lemmas {
        match wn.gloss(lemma) {
            Ok(Some(g)) => {
                assert!(
                    !g.is_empty() && g == g.trim() && !g.contains('\n'),
                    "{lemma:?}: {g:?}"
                );
                // The quoted examples are cut off.
                assert!(!g.contains("; \""), "{lemma:?}: {g:?}");
            }
            Ok(None) => {
                // The reader takes the first line of an index whose first word is the lemma as
                // WordNet writes it; it cannot miss one.
                let key = lemma.trim().to_lowercase().replace([' ', '-'], "_");
                let listed = key == *lemma && known.iter().flatten().any(|k| *k == key);
                assert!(!listed, "{lemma:?} is in an index but was not found");
            }
            Err(_) => {}
        }
    }
}

/// The first words of an index file's lines that the WordNet reader compares with a lemma:
/// its lines as `BufRead::lines` splits them, license lines (a leading space) left out, and
/// those that are not UTF-8 too (the reader stops with an error at such a line).
fn index_keys(file: &[u8]) -> Vec<String> {
    let mut keys = Vec::new();
    let mut rest = file;
    while !rest.is_empty() {
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (
                rest[..i].strip_suffix(b"\r").unwrap_or(&rest[..i]),
                &rest[i + 1..],
            ),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        if let Ok(line) = std::str::from_utf8(line) {
            let key = line.split(' ').next().unwrap_or_default();
            if !line.starts_with(' ') && !key.is_empty() {
                keys.push(key.to_string());
            }
        }
    }
    keys
}

/// The COCO annotation file `annotate` writes and resumes from.
pub fn coco_resume(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let path = Path::new("annotations.json");
    let Ok(file) = CocoFile::from_json_str(&text, path) else {
        return;
    };
    // What a resumed run indexes with.
    let labels = file.clipguide.labels.len() as u64;
    for a in &file.annotations {
        assert!((1..=labels).contains(&a.category_id), "{a:?}");
        assert!(file.images.iter().any(|i| i.id == a.image_id), "{a:?}");
    }
    // A resumed run writes the file back, and the next run reads it again.
    let back = CocoFile::from_json_str(&file.to_json(), path).expect("a written file re-reads");
    assert_eq!(back, file);
}

/// `scenes.jsonl` of a drawings folder (`clipguide eval --drawings`), and the probes the
/// evaluation builds from each scene.
pub fn scenes_jsonl(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(drawings) = parse_drawings(&text, Path::new("scenes.jsonl")) else {
        return;
    };
    let listed = text.lines().filter(|l| !l.trim().is_empty()).count();
    assert_eq!(drawings.len(), listed);
    for (_, scene) in &drawings {
        for language in [Language::English, Language::Japanese] {
            let caption = canonical_caption_in(scene, language);
            assert!(!caption.is_empty(), "{scene:?}");
            for task in attribute_prompts_in(scene, PromptStyle::FullCaption, language) {
                // The right answer is the scene's own caption: what the accuracy counts.
                assert_eq!(
                    task.candidates.get(task.correct),
                    Some(&caption),
                    "{scene:?}"
                );
            }
            for task in attribute_prompts_in(scene, PromptStyle::Isolated, language) {
                assert!(task.correct < task.candidates.len(), "{scene:?}");
            }
        }
    }
}

/// A store's `manifest.json` (and a shard's), and `--shard I/N`.
pub fn index_manifest(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(shard) = text.parse::<Shard>() {
        assert!(shard.index < shard.count, "{shard:?}");
        assert!(shard.take(&[0u8; 10]).len() <= 10);
    }
    let path = Path::new("manifest.json");
    let Ok(m) = Manifest::from_json_str(&text, path) else {
        return;
    };
    assert!(m.dim > 0);
    let total = m
        .parts
        .iter()
        .try_fold(0usize, |n, p| n.checked_add(p.rows));
    assert_eq!(total, Some(m.rows()));
    // The writer removes the files a manifest names: each must be a name inside the store.
    for file in m
        .parts
        .iter()
        .map(|p| &p.file)
        .chain(m.index.iter().map(|i| &i.file))
    {
        let mut parts = Path::new(file).components();
        assert!(
            matches!(parts.next(), Some(Component::Normal(_))),
            "{file:?}"
        );
        assert!(
            parts.next().is_none() && !file.contains(['/', '\\']),
            "{file:?}"
        );
    }
    assert_eq!(
        Manifest::from_json_str(&m.to_json(), path).expect("re-reads"),
        m
    );
}

fn read_weights_from(data: &[u8], name: &str) -> Option<()> {
    let path = scratch_file(name, data).ok()?;
    clipguide_clip::weights::read_weights(&path, &Device::Cpu).ok()?;
    Some(())
}

/// Writes `data` to `name` in this thread's scratch folder, for loaders that read files.
fn scratch_file(name: &str, data: &[u8]) -> std::io::Result<PathBuf> {
    let path = scratch_path(name)?;
    std::fs::write(&path, data)?;
    Ok(path)
}

/// The folder `name` in this thread's scratch folder holding `files[i]` with `contents[i]`;
/// the files without contents are removed, so nothing is left from an earlier input.
fn scratch_folder(name: &str, files: &[&str], contents: &[&[u8]]) -> std::io::Result<PathBuf> {
    let dir = scratch_path(name)?;
    std::fs::create_dir_all(&dir)?;
    for (i, file) in files.iter().enumerate() {
        let path = dir.join(file);
        match contents.get(i) {
            Some(data) => std::fs::write(&path, data)?,
            None => {
                if let Err(e) = std::fs::remove_file(&path) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        return Err(e);
                    }
                }
            }
        }
    }
    Ok(dir)
}

thread_local! {
    static SCRATCH: RefCell<Option<tempfile::TempDir>> = const { RefCell::new(None) };
}

/// `name` in this thread's scratch folder, made on first use.
fn scratch_path(name: &str) -> std::io::Result<PathBuf> {
    SCRATCH.with(|cell| {
        let mut dir = cell.borrow_mut();
        if dir.is_none() {
            *dir = Some(tempfile::tempdir()?);
        }
        Ok(dir.as_ref().expect("set above").path().join(name))
    })
}
