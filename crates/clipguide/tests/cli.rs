//! The `clipguide` binary end to end on the random-weight fixture checkpoint: outputs agree with
//! the transformers reference and `--json` is machine-readable. Bad input: `tests/bad_input.rs`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(rel: &str) -> PathBuf {
    let p = root().join("tests/fixtures").join(rel);
    assert!(
        p.exists(),
        "missing fixture {}: run python3 tools/make_fixtures.py",
        p.display()
    );
    p
}

fn clipguide(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clipguide"))
        .args(args)
        .env_remove("HF_ENDPOINT")
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .expect("running clipguide")
}

fn ok_json(args: &[&str]) -> serde_json::Value {
    let out = clipguide(args);
    assert!(
        out.status.success(),
        "clipguide {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", String::from_utf8_lossy(&out.stdout)))
}

fn err_text(args: &[&str]) -> String {
    let out = clipguide(args);
    assert!(!out.status.success(), "clipguide {args:?} should fail");
    let e = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!e.contains("panicked"), "panic instead of an error:\n{e}");
    e
}

fn write_png(path: &Path, w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 3]) {
    image::RgbImage::from_fn(w, h, |x, y| image::Rgb(f(x, y)))
        .save(path)
        .unwrap();
}

#[test]
fn tokenize_matches_clip_framing() {
    let v = ok_json(&["tokenize", "--json", "--max-length", "a photo of a cat"]);
    let ids: Vec<u64> = serde_json::from_value(v[0]["input_ids"].clone()).unwrap();
    assert_eq!(&ids[..7], &[49406, 320, 1125, 539, 320, 2368, 49407]);
    assert_eq!(ids.len(), 77);
    let mask: Vec<u64> = serde_json::from_value(v[0]["attention_mask"].clone()).unwrap();
    assert_eq!(mask.iter().sum::<u64>(), 7);
}

#[test]
fn embed_text_matches_transformers_reference() {
    let model = fixture("tiny-clip-quickgelu");
    let reference = candle_core::safetensors::load(
        model.join("reference.safetensors"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let want = reference["text_embeds"]
        .get(0)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let v = ok_json(&[
        "embed",
        "--json",
        "--model",
        model.to_str().unwrap(),
        "--text",
        "a photo of a cat",
    ]);
    let got: Vec<f32> = serde_json::from_value(v["text_embeds"][0]["embedding"].clone()).unwrap();
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0f32, |m, x| m.max(x.abs()));
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() <= 1e-4 * scale, "{g} vs {w}");
    }
}

#[test]
fn similarity_and_classify_are_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let red = dir.path().join("red.png");
    write_png(&red, 40, 30, |_, _| [220, 20, 20]);
    let model = fixture("tiny-clip-quickgelu");
    let m = model.to_str().unwrap();
    let s = ok_json(&[
        "similarity",
        "--json",
        "--model",
        m,
        "--image",
        red.to_str().unwrap(),
        "--text",
        "a photo of a cat",
        "--text",
        "a photo of a dog",
        "--text",
        "a photo of a car",
    ]);
    let probs: Vec<Vec<f32>> = serde_json::from_value(s["probs"].clone()).unwrap();
    let cos: Vec<Vec<f32>> = serde_json::from_value(s["cosine"].clone()).unwrap();
    let total: f32 = probs[0].iter().sum();
    assert!((total - 1.0).abs() < 1e-5, "probabilities sum to {total}");
    let c = ok_json(&[
        "classify",
        "--json",
        "--model",
        m,
        "--image",
        red.to_str().unwrap(),
        "--labels",
        "cat,dog,car",
    ]);
    // classify's ranking is the similarity table's, sorted.
    let best = cos[0]
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .unwrap()
        .0;
    assert_eq!(c[0]["label"], ["cat", "dog", "car"][best]);
    let p0 = c[0]["prob"].as_f64().unwrap() as f32;
    assert!((p0 - probs[0][best]).abs() < 1e-5);
}

/// `--precision bf16` and `--precision f16` give cosines within 10⁻³ of f32's where the CPU runs
/// their kernels (and say so when it cannot, giving f32's numbers); a misspelt `CLIPGUIDE_ISA`
/// is refused.
#[test]
fn half_precision_is_close_to_f32_and_a_bad_isa_request_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("stripes.png");
    write_png(&img, 64, 64, |x, _| {
        if (x / 8) % 2 == 0 {
            [230, 200, 30]
        } else {
            [20, 40, 200]
        }
    });
    let img = img.to_str().unwrap();
    let args = |p: &'static str| {
        vec![
            "similarity",
            "--json",
            "--precision",
            p,
            "--image",
            img,
            "--text",
            "a yellow square",
            "--text",
            "a blue circle",
            "--text",
            "a red star",
        ]
    };
    let cosines = |v: serde_json::Value| -> Vec<f32> {
        serde_json::from_value::<Vec<Vec<f32>>>(v["cosine"].clone()).unwrap()[0].clone()
    };
    let f32_cos = cosines(ok_json(&args("f32")));
    for name in ["bf16", "f16"] {
        let out = clipguide(&args(name));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let half_cos = cosines(serde_json::from_slice(&out.stdout).unwrap());
        let fell_back = String::from_utf8_lossy(&out.stderr)
            .contains(&format!("--precision {name} runs in f32"));
        for (a, b) in f32_cos.iter().zip(&half_cos) {
            if fell_back {
                assert_eq!(a, b, "{name}: f32 fallback must give f32's numbers");
            } else {
                // bf16 products move an embedding by about 1e-3 of its length, so a cosine with
                // a text moves by about that much (1.2e-3 with the built-in weights of
                // 2026-12-07; fp16 less); the documented promise (embeddings within a cosine of
                // 1e-3) bounds it by 0.045.
                assert!((a - b).abs() < 5e-3 && a != b, "f32 {a} vs {name} {b}");
            }
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_clipguide"))
        .args(["similarity", "--image", img, "--text", "x"])
        .env("CLIPGUIDE_ISA", "AVX2")
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(
        e.contains("CLIPGUIDE_ISA=\"AVX2\"") && e.contains("avx512, avx2 or baseline"),
        "{e}"
    );
}

/// The built-in model names the prompt words it never saw in training, once on stderr and in
/// `--json`; words of its world pass silently, and a real checkpoint gets no such note.
#[test]
fn builtin_model_names_the_words_it_never_saw() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("red.png");
    write_png(&img, 32, 32, |_, _| [220, 20, 20]);
    let img = img.to_str().unwrap();
    let note = "never saw";
    let sim = |texts: &[&str], model: Option<&str>| {
        let mut args = vec!["similarity", "--json", "--image", img];
        for t in texts {
            args.extend(["--text", t]);
        }
        if let Some(m) = model {
            args.extend(["--model", m]);
        }
        let out = clipguide(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (v, String::from_utf8_lossy(&out.stderr).to_string())
    };
    let (v, err) = sim(
        &[
            "a dragon breathing fire",
            "a red circle",
            "青い背景に赤いドラゴン",
        ],
        None,
    );
    assert_eq!(
        v["unknown_words"],
        serde_json::json!(["dragon", "breathing", "fire", "ドラゴン"])
    );
    assert_eq!(err.matches(note).count(), 1, "{err}");
    assert!(
        err.contains("dragon, breathing, fire") && err.contains("--model"),
        "{err}"
    );
    // The world's own words pass silently, the headline prompts in both languages included.
    let (v, err) = sim(
        &[
            "a red circle on a blue background",
            "sunflower oil painting",
            "北極の京都",
        ],
        None,
    );
    assert_eq!(v["unknown_words"], serde_json::json!([]));
    assert!(!err.contains(note), "{err}");
    let model = fixture("tiny-clip-quickgelu");
    let (v, err) = sim(&["sunflower oil painting"], Some(model.to_str().unwrap()));
    assert_eq!(v["unknown_words"], serde_json::json!([]));
    assert!(!err.contains(note), "{err}");

    let out_png = dir.path().join("g.png");
    let out = clipguide(&[
        "generate",
        "a dragon, oil painting",
        "--size",
        "64x64",
        "--starts",
        "2",
        "--json",
        "-o",
        out_png.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(err.matches(note).count(), 1, "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["unknown_words"], serde_json::json!(["dragon"]));
}

#[test]
fn search_caches_and_refreshes_embeddings() {
    let dir = tempfile::tempdir().unwrap();
    for (name, rgb) in [
        ("a.png", [250, 0, 0]),
        ("b.png", [0, 0, 250]),
        ("c.png", [0, 250, 0]),
    ] {
        write_png(&dir.path().join(name), 48, 48, |x, _| {
            if x < 24 {
                rgb
            } else {
                [255, 255, 255]
            }
        });
    }
    std::fs::write(dir.path().join("notes.txt"), "not an image").unwrap();
    let model = fixture("tiny-clip-quickgelu");
    let m = model.to_str().unwrap();
    let d = dir.path().to_str().unwrap();
    let first = ok_json(&[
        "search", "--json", "--model", m, "--dir", d, "--text", "red", "--top", "2",
    ]);
    assert_eq!(first["embedded"], 3);
    assert_eq!(first["cached"], 0);
    assert_eq!(first["results"].as_array().unwrap().len(), 2);
    let second = ok_json(&[
        "search", "--json", "--model", m, "--dir", d, "--text", "red", "--top", "3",
    ]);
    assert_eq!(second["embedded"], 0);
    assert_eq!(second["cached"], 3);
    // Same embeddings whether computed or cached: identical scores.
    assert_eq!(first["results"][0], second["results"][0]);
    // A changed file is re-embedded, the others come from the cache.
    std::thread::sleep(std::time::Duration::from_millis(20));
    write_png(&dir.path().join("b.png"), 64, 48, |_, y| {
        if y < 10 {
            [0, 0, 0]
        } else {
            [9, 9, 200]
        }
    });
    let third = ok_json(&[
        "search", "--json", "--model", m, "--dir", d, "--text", "red",
    ]);
    assert_eq!(third["embedded"], 1);
    assert_eq!(third["cached"], 2);
}

#[test]
fn zeroshot_keeps_image_embeddings_in_the_folders_store() {
    let dir = tempfile::tempdir().unwrap();
    for (class, rgb) in [("red_thing", [250, 0, 0]), ("blue_thing", [0, 0, 250])] {
        std::fs::create_dir(dir.path().join(class)).unwrap();
        for i in 0..3u8 {
            write_png(
                &dir.path().join(class).join(format!("{i}.png")),
                40,
                40,
                |x, _| {
                    if x < 10 * (i as u32 + 1) {
                        rgb
                    } else {
                        [255, 255, 255]
                    }
                },
            );
        }
    }
    let model = fixture("tiny-clip-quickgelu");
    let m = model.to_str().unwrap();
    let d = dir.path().to_str().unwrap();
    let args = ["zeroshot", "--model", m, "--dir", d];
    let first = clipguide(&args);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(
        stderr.contains("6 images embedded, 0 from the store"),
        "{stderr}"
    );
    assert!(dir.path().join(".clipguide-store/manifest.json").is_file());
    let second = clipguide(&args);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("0 images embedded, 6 from the store"),
        "{stderr}"
    );
    // The store is hidden from the class scan, and the same vectors give the same report.
    assert_eq!(first.stdout, second.stdout);
    let cached = ok_json(&["--json", "zeroshot", "--model", m, "--dir", d]);
    assert_eq!(cached["images"], 6);
    assert_eq!(cached["per_class"].as_array().unwrap().len(), 2);

    // --no-cache writes nothing; --store puts the store where it is told.
    let fresh = tempfile::tempdir().unwrap();
    let copy = fresh.path().join("set");
    for class in ["red_thing", "blue_thing"] {
        std::fs::create_dir_all(copy.join(class)).unwrap();
        for i in 0..3 {
            let name = format!("{i}.png");
            std::fs::copy(
                dir.path().join(class).join(&name),
                copy.join(class).join(&name),
            )
            .unwrap();
        }
    }
    let c = copy.to_str().unwrap();
    let direct = ok_json(&["--json", "zeroshot", "--model", m, "--dir", c, "--no-cache"]);
    assert_eq!(direct["images"], 6);
    assert!(!copy.join(".clipguide-store").exists());
    let elsewhere = fresh.path().join("elsewhere");
    let e = elsewhere.to_str().unwrap();
    ok_json(&["--json", "zeroshot", "--model", m, "--dir", c, "--store", e]);
    assert!(elsewhere.join("manifest.json").is_file());
    assert!(!copy.join(".clipguide-store").exists());
    let both = err_text(&[
        "zeroshot",
        "--model",
        m,
        "--dir",
        c,
        "--store",
        e,
        "--no-cache",
    ]);
    assert!(
        both.contains("--no-cache") && both.contains("--store"),
        "{both}"
    );
}

#[test]
fn shards_indexed_with_copies_of_one_checkpoint_merge_and_other_weights_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut list = String::new();
    for (i, rgb) in [[250, 0, 0], [0, 0, 250], [0, 250, 0], [250, 250, 0]]
        .into_iter()
        .enumerate()
    {
        let p = dir.path().join(format!("img{i}.png"));
        write_png(&p, 32, 32, |_, _| rgb);
        list.push_str(&format!("{}\n", p.display()));
    }
    let list_path = dir.path().join("files.txt");
    std::fs::write(&list_path, list).unwrap();
    // The same weights at two paths, written at different times (two machines' copies).
    let copy = |name: &str, from: &str| {
        let to = dir.path().join(name);
        std::fs::create_dir(&to).unwrap();
        for f in ["config.json", "model.safetensors"] {
            std::fs::copy(fixture(from).join(f), to.join(f)).unwrap();
        }
        to
    };
    let (a, b) = (
        copy("machine-a", "tiny-clip-quickgelu"),
        copy("machine-b", "tiny-clip-quickgelu"),
    );
    let other = copy("other-weights", "tiny-clip-gelu");
    let store = dir.path().join("store");
    let (l, st) = (list_path.to_str().unwrap(), store.to_str().unwrap());
    for (shard, model) in [("0/2", &a), ("1/2", &b)] {
        let r = ok_json(&[
            "--json",
            "index",
            "--model",
            model.to_str().unwrap(),
            "--files",
            l,
            "--shard",
            shard,
            "--out",
            st,
        ]);
        assert_eq!(r["embedded"], 2, "{r}");
    }
    let merged = ok_json(&["--json", "index", "--merge", st]);
    assert_eq!(merged["rows"], 4, "{merged}");
    // Search with the one copy finds what the other indexed.
    let hits = ok_json(&[
        "--json",
        "search",
        "--model",
        a.to_str().unwrap(),
        "--store",
        st,
        "--text",
        "red",
        "--top",
        "4",
    ]);
    assert_eq!(hits["results"].as_array().unwrap().len(), 4);
    let e = err_text(&[
        "search",
        "--model",
        other.to_str().unwrap(),
        "--store",
        st,
        "--text",
        "red",
    ]);
    assert!(e.contains("was built with the model"), "{e}");
}

#[test]
fn index_search_store_by_image_and_dedupe() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = dir.path().join("imgs");
    std::fs::create_dir(&imgs).unwrap();
    for (name, rgb) in [
        ("a.png", [250, 0, 0]),
        ("b.png", [0, 0, 250]),
        ("c.png", [0, 250, 0]),
    ] {
        write_png(&imgs.join(name), 48, 48, |x, _| {
            if x < 24 {
                rgb
            } else {
                [255, 255, 255]
            }
        });
    }
    std::fs::copy(imgs.join("b.png"), imgs.join("b-copy.png")).unwrap();
    std::fs::write(imgs.join("broken.png"), "not a png").unwrap();
    let model = fixture("tiny-clip-quickgelu");
    let (m, d) = (model.to_str().unwrap(), imgs.to_str().unwrap());
    let store = dir.path().join("store");
    let st = store.to_str().unwrap();
    let r = ok_json(&["index", "--json", "--model", m, d, "--out", st]);
    assert_eq!(
        (r["rows"].as_u64(), r["embedded"].as_u64()),
        (Some(4), Some(4))
    );
    assert_eq!(
        r["skipped"][0]["path"],
        imgs.join("broken.png").to_str().unwrap()
    );
    let q = imgs.join("c.png");
    let r = ok_json(&[
        "search",
        "--json",
        "--model",
        m,
        "--store",
        st,
        "--image",
        q.to_str().unwrap(),
    ]);
    assert_eq!(r["results"][0]["path"], "c.png");
    let r = ok_json(&[
        "dedupe",
        "--json",
        "--model",
        m,
        "--store",
        st,
        "--threshold",
        "0.9999",
    ]);
    let pairs = r["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 1, "{pairs:?}");
    assert_eq!(
        (pairs[0]["a"].as_str(), pairs[0]["b"].as_str()),
        (Some("b-copy.png"), Some("b.png"))
    );
    // The built-in model is not the store's: refused, naming both weights' keys.
    let out = clipguide(&["search", "--store", st, "--text", "red"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("\"builtin:xxh3-128:") && err.contains("\"xxh3-128:"),
        "{err}"
    );
}

#[test]
fn builtin_model_is_the_default_and_knows_its_vocabulary() {
    // Draw two scenes from the shapes vocabulary and check that the built-in model (no --model)
    // matches each caption to its own picture.
    use clipguide_shapes::judge::parse_prompt;
    use clipguide_shapes::render;
    let dir = tempfile::tempdir().unwrap();
    let captions = [
        "a red circle in the center on a blue background",
        "a yellow square in the top left corner on a black background",
    ];
    let mut paths = vec![];
    for (i, c) in captions.iter().enumerate() {
        let scene = parse_prompt(c)
            .expect("judge parses its own captions")
            .to_scene();
        let p = dir.path().join(format!("{i}.png"));
        render(&scene, 64).save(&p).unwrap();
        paths.push(p);
    }
    let out = clipguide(&[
        "similarity",
        "--json",
        "--image",
        paths[0].to_str().unwrap(),
        "--image",
        paths[1].to_str().unwrap(),
        "--text",
        captions[0],
        "--text",
        captions[1],
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cos: Vec<Vec<f32>> = serde_json::from_value(v["cosine"].clone()).unwrap();
    assert!(
        cos[0][0] > cos[0][1],
        "red-circle image prefers the wrong caption: {cos:?}"
    );
    assert!(
        cos[1][1] > cos[1][0],
        "yellow-square image prefers the wrong caption: {cos:?}"
    );
}

#[test]
fn encode_writes_diffusers_named_tensors() {
    // The quick-gelu fixture's text half as an sd1-style encoder (hidden size 16).
    let model = fixture("tiny-clip-quickgelu");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cond.safetensors");
    let long = "a red circle, ".repeat(30);
    let o = clipguide(&[
        "encode",
        "--preset",
        "sd1",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        &format!("a (red:1.3) circle BREAK {long}"),
        "--negative",
        "blurry",
        "--weighting",
        "a1111",
        "--chunking",
        "a1111",
        "--dtype",
        "f16",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t = candle_core::safetensors::load(&out, &candle_core::Device::Cpu).unwrap();
    let p = &t["prompt_embeds"];
    let n = &t["negative_prompt_embeds"];
    assert_eq!(p.dtype(), candle_core::DType::F16);
    // BREAK plus a >75-token tail: at least three 77-token chunks, negative aligned to the same length.
    assert_eq!(p.dims()[0], 1);
    assert!(
        p.dims()[1] >= 3 * 77 && p.dims()[1].is_multiple_of(77),
        "{:?}",
        p.dims()
    );
    assert_eq!(p.dims()[2], 16);
    assert_eq!(n.dims(), p.dims());
    assert!(
        t.contains_key("pooled_prompt_embeds") && t.contains_key("negative_pooled_prompt_embeds")
    );
    // A missing encoder folder is named in the error and no output is written.
    let bad = dir.path().join("bad.safetensors");
    let e = err_text(&[
        "encode",
        "--preset",
        "sd1",
        "--model",
        "/nonexistent/encoder",
        "--prompt",
        "a circle",
        "-o",
        bad.to_str().unwrap(),
    ]);
    assert!(e.contains("/nonexistent/encoder"), "{e}");
    assert!(!bad.exists());
}

/// The built-in model's default recipe searches its world: the prompt's colours, shape, size
/// and place come out (judged by colour layout), the PNG stores the drawing it found (which
/// re-draws the same pixels), and the same seed gives the same bytes.
#[test]
fn builtin_world_recipe_draws_the_whole_prompt_and_stores_it() {
    use clipguide_shapes::judge::{judge, parse_prompt};
    use clipguide_shapes::{draw_content, StoredWorldDrawing};
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("star.png");
    let prompt = "a large blue star in the center on a yellow background";
    let v = ok_json(&[
        "generate",
        prompt,
        "--size",
        "128",
        "-o",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(v["recipe"], "world", "{v}");
    let drew = v["drew"].as_str().unwrap();
    assert!(drew.contains("blue star") && drew.contains("yellow"), "{v}");
    let image = image::open(&out).unwrap().to_rgb8();
    let verdict = judge(&image, &parse_prompt(prompt).unwrap());
    assert!(verdict.pass, "{verdict:?}");
    let text = clipguide_guide::png_meta::read_png_text(&out, StoredWorldDrawing::PNG_KEYWORD)
        .unwrap()
        .expect("the PNG stores the drawing");
    let stored: StoredWorldDrawing = serde_json::from_str(&text).unwrap();
    assert_eq!(stored.prompts, vec![(prompt.to_string(), 1.0)]);
    assert_eq!(draw_content(&stored.content, 128), image);
    // Same seed and settings, same bytes.
    let run = |name: &str| {
        let path = dir.path().join(name);
        ok_json(&[
            "generate",
            "two small red squares",
            "--size",
            "64",
            "--starts",
            "2",
            "--seed",
            "7",
            "-o",
            path.to_str().unwrap(),
            "--json",
        ]);
        std::fs::read(path).unwrap()
    };
    assert_eq!(run("a.png"), run("b.png"));
}

/// The design card's prompt, offline: the built-in model draws a sunflower, found by a
/// colour-structure test that knows nothing of the renderer (yellow petals around a brown centre),
/// and paints it in oils: issue #28's check.
#[test]
fn sunflower_oil_painting_draws_a_sunflower() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sunflower.png");
    let v = ok_json(&[
        "generate",
        "sunflower oil painting",
        "-o",
        out.to_str().unwrap(),
        "--json",
    ]);
    let drew = v["drew"].as_str().unwrap();
    assert!(drew.contains("sunflower"), "{v}");
    assert!(drew.contains("oil painting"), "{v}");
    let image = image::open(&out).unwrap().to_rgb8();
    assert_eq!(image.dimensions(), (256, 256));
    let found = clipguide_shapes::find_sunflower(&image);
    assert!(found.is_some(), "no sunflower found in {drew}");
}

#[test]
fn builtin_generation_puts_the_colours_where_the_prompt_says() {
    // The example, end to end through the CLI with the built-in model's recipe
    // (shapes: palette primitives, nine starts): red in the centre cell, blue at the border.
    use clipguide_shapes::judge::{judge, parse_prompt};
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("red.png");
    let prompt = "a red circle in the center on a blue background";
    let v = ok_json(&[
        "generate",
        prompt,
        "--recipe",
        "shapes",
        "--size",
        "128x128",
        "--steps",
        "100",
        "-o",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(v["steps"], 100);
    assert_eq!(
        v["steps_taken"],
        9 * 40 + 60,
        "nine starts of 40 steps, then 60: {v}"
    );
    let image = image::open(&out).unwrap().to_rgb8();
    let verdict = judge(&image, &parse_prompt(prompt).unwrap());
    // One red disc on blue, in the centre cell more than in any other. The judge's stricter
    // placement bound (little of the object outside the cell) is not held here: this recipe puts
    // the disc a little low, and whether it crosses that bound turns on the last bits of the
    // sums, which differ between the AVX2 and AVX-512 kernel paths (BENCHMARKS.md, "Intel
    // AVX-512"); the world recipe's test holds the full judge.
    assert!(
        verdict.object_ok && verdict.background_ok && verdict.count_ok,
        "{verdict:?}"
    );
    assert_eq!(
        verdict.best_cell,
        clipguide_shapes::Placement::Center,
        "{verdict:?}"
    );
}

#[test]
fn open_clip_checkpoint_works_and_converts() {
    let oc = fixture("openclip/oc-quickgelu");
    let oc = oc.to_str().unwrap();
    let img = fixture("preprocess/landscape_300x200.png");
    let img = img.to_str().unwrap();
    // open_clip's tokenizer: pad id 0 after the end-of-text.
    let v = ok_json(&["tokenize", "--json", "--max-length", "--model", oc, "a cat"]);
    let ids: Vec<u64> = serde_json::from_value(v[0]["input_ids"].clone()).unwrap();
    assert_eq!(&ids[..4], &[49406, 320, 2368, 49407]);
    assert_eq!(ids[4], 0);
    let args = |m: &str| -> Vec<String> {
        ["similarity", "--json", "--model", m, "--image", img]
            .iter()
            .map(|s| s.to_string())
            .chain(
                [
                    "--text",
                    "a photo of a cat",
                    "--text",
                    "sunflower oil painting",
                ]
                .map(String::from),
            )
            .collect()
    };
    let a: Vec<String> = args(oc);
    let sim = ok_json(&a.iter().map(String::as_str).collect::<Vec<_>>());
    // The converted (transformers-layout) copy gives the same numbers for this image and these
    // texts (no crop offset to round, no HTML or ftfy in the texts).
    let tmp = tempfile::tempdir().unwrap();
    let to = tmp.path().join("hf");
    let out = clipguide(&["convert", "--from", oc, "--to", to.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("CLIPTokenizerFast"));
    let b: Vec<String> = args(to.to_str().unwrap());
    let conv = ok_json(&b.iter().map(String::as_str).collect::<Vec<_>>());
    for j in 0..2 {
        let (x, y) = (
            sim["cosine"][0][j].as_f64().unwrap(),
            conv["cosine"][0][j].as_f64().unwrap(),
        );
        assert!((x - y).abs() < 1e-5, "text {j}: {x} vs {y}");
    }
    // The activation override changes the numbers, and is refused without an OpenCLIP model.
    let mut c = a.clone();
    c.extend(["--act".to_string(), "gelu".to_string()]);
    let gelu = ok_json(&c.iter().map(String::as_str).collect::<Vec<_>>());
    let (x, y) = (
        sim["cosine"][0][0].as_f64().unwrap(),
        gelu["cosine"][0][0].as_f64().unwrap(),
    );
    assert!((x - y).abs() > 1e-4, "--act gelu changed nothing ({x})");
    let e = err_text(&["similarity", "--act", "gelu", "--image", img, "--text", "x"]);
    assert!(e.contains("--act applies to OpenCLIP"), "{e}");
    let e = err_text(&["convert", "--from", oc, "--to", to.to_str().unwrap()]);
    assert!(e.contains("already exists"), "{e}");
}

#[test]
fn japanese_checkpoint_classifies_and_tokenizes() {
    let jp = fixture("rinna/tiny-cloob");
    let jp = jp.to_str().unwrap();
    let img = fixture("preprocess/landscape_300x200.png");
    let v = ok_json(&[
        "classify",
        "--json",
        "--model",
        jp,
        "--image",
        img.to_str().unwrap(),
        "--labels",
        "犬,猫,象",
        "--template",
        "{}の写真",
    ]);
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let total: f64 = rows.iter().map(|r| r["prob"].as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-4, "probabilities sum to {total}");
    let mut labels: Vec<&str> = rows.iter().map(|r| r["label"].as_str().unwrap()).collect();
    labels.sort();
    assert_eq!(labels, ["犬", "猫", "象"]);
    // rinna's framing: [CLS] then the pieces, no end token, [PAD] after.
    let t = ok_json(&[
        "tokenize",
        "--json",
        "--max-length",
        "--model",
        jp,
        "犬の写真",
    ]);
    let ids: Vec<u64> = serde_json::from_value(t[0]["input_ids"].clone()).unwrap();
    let mask: Vec<u64> = serde_json::from_value(t[0]["attention_mask"].clone()).unwrap();
    assert_eq!(ids.len(), 77);
    assert_eq!(ids[0], 4, "[CLS] first");
    let n = mask.iter().sum::<u64>() as usize;
    assert!(
        n >= 2 && ids[n..].iter().all(|&i| i == 3),
        "[PAD] after the pieces: {ids:?}"
    );
    let e = err_text(&[
        "encode",
        "--preset",
        "sd1",
        "--model",
        jp,
        "--prompt",
        "犬",
        "--output",
        "/tmp/x.safetensors",
    ]);
    assert!(e.contains("BERT"), "{e}");
}

#[test]
fn a_successful_render_prints_no_error_lines() {
    // Without a desktop session the graphics stack's Wayland probe used to print
    // "error: XDG_RUNTIME_DIR is invalid or not set" twice on a run that succeeded.
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("in.png");
    write_png(&img, 16, 16, |x, y| [x as u8 * 10, y as u8 * 10, 90]);
    let out = Command::new(env!("CARGO_BIN_EXE_clipguide"))
        .args(["render", "--image", img.to_str().unwrap(), "-o"])
        .arg(tmp.path().join("out.png"))
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(tmp.path().join("out.png").exists());
    assert!(
        !stderr.lines().any(|l| l.starts_with("error")),
        "stderr of a successful run:\n{stderr}"
    );
}

/// `generate --help` gives each recipe's defaults, read from the recipes; the values expected
/// here are the recipes' documented settings (README, `clipguide_shapes::recipe`), written out.
#[test]
fn generate_help_shows_each_recipes_defaults() {
    let out = clipguide(&["generate", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout).replace('\n', " ");
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for expected in [
        "[recipe defaults: shapes: 200, discs: 200, fourier: 300]",
        "[recipe defaults: shapes: 0.3, discs: 0.3, fourier: 0.05]",
        "[recipe defaults: shapes: primitives, discs: primitives, fourier: fourier]",
        "[recipe defaults: shapes: 8, discs: 8, fourier: 32]",
        "[recipe defaults: shapes: 0.012, discs: 0.03, fourier: -]",
        "[recipe defaults: shapes: 9, discs: 9, fourier: 1]",
        "[recipe defaults: shapes: 256x256, discs: 256x256, fourier: 256x256]",
        "Without --model the built-in model runs with the `world` recipe",
    ] {
        assert!(help.contains(expected), "missing {expected:?} in:\n{help}");
    }
}

/// `detect` end to end with the built-in model: a red disc and a blue square drawn here, boxed by
/// their own labels in `--json` (input-image pixels), the boxed image and one heatmap per label
/// written.
#[test]
fn detect_boxes_drawn_objects_in_input_pixels_and_writes_its_images() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("two.png");
    // A red disc in [20, 20, 80, 80) and a blue square in [120, 100, 180, 160) on yellow, 200×180.
    write_png(&img, 200, 180, |x, y| {
        let (dx, dy) = (x as f32 + 0.5 - 50.0, y as f32 + 0.5 - 50.0);
        if dx * dx + dy * dy <= 900.0 {
            [230, 30, 30]
        } else if (120..180).contains(&x) && (100..160).contains(&y) {
            [30, 60, 230]
        } else {
            [240, 220, 40]
        }
    });
    let boxed = dir.path().join("boxed.png");
    let maps = dir.path().join("maps");
    let v = ok_json(&[
        "detect",
        "--json",
        "--image",
        img.to_str().unwrap(),
        "--labels",
        "red circle,blue square,green star",
        "-o",
        boxed.to_str().unwrap(),
        "--heatmap",
        maps.to_str().unwrap(),
    ]);
    let dets = v.as_array().expect("a JSON list of detections");
    let best = |label: &str| {
        dets.iter()
            .find(|d| d["label"] == label)
            .unwrap_or_else(|| panic!("no {label} in {v}"))
    };
    for (label, want) in [
        ("red circle", [20.0, 20.0, 80.0, 80.0]),
        ("blue square", [120.0, 100.0, 180.0, 160.0]),
    ] {
        let b: Vec<f64> = serde_json::from_value(best(label)["box"].clone()).unwrap();
        for (got, want) in b.iter().zip(want) {
            assert!((got - want).abs() <= 3.0, "{label}: {b:?} against {want:?}");
        }
    }
    assert_eq!(image::image_dimensions(&boxed).unwrap(), (200, 180));
    let mut written: Vec<String> = std::fs::read_dir(&maps)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(
        written,
        ["blue_square.png", "green_star.png", "red_circle.png"]
    );
}
