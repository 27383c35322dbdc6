//! Bad input, as a table: every case runs the `clipguide` binary and checks its exit code, the
//! first line of its message (after any `note:` lines) (and, where the detail is in a "caused by" line, the rest), and
//! that the output it was asked for was neither written nor clobbered.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(rel: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(rel);
    assert!(
        p.exists(),
        "missing fixture {}: see tests/fixtures/README.md",
        p.display()
    );
    p
}

/// One bad invocation and what it must answer.
struct Case {
    argv: Vec<String>,
    /// 1 for a refused run, 2 for a command line clap cannot read.
    exit: i32,
    /// Fragments of the message's first line.
    first_line: &'static [&'static str],
    /// Fragments anywhere in stderr (the "caused by" lines).
    anywhere: &'static [&'static str],
    /// The output the command was asked to write: afterwards absent, or with the bytes it had.
    output: Option<PathBuf>,
}

fn case(argv: &[&str], exit: i32, first_line: &'static [&'static str]) -> Case {
    Case {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        exit,
        first_line,
        anywhere: &[],
        output: None,
    }
}

impl Case {
    fn anywhere(mut self, fragments: &'static [&'static str]) -> Self {
        self.anywhere = fragments;
        self
    }
    fn output(mut self, path: &Path) -> Self {
        self.output = Some(path.to_path_buf());
        self
    }
}

/// Runs every case and reports all that fail, not just the first.
fn check(cases: Vec<Case>) {
    let mut failures = Vec::new();
    for c in &cases {
        let before = c.output.as_ref().and_then(|p| std::fs::read(p).ok());
        let out = Command::new(env!("CARGO_BIN_EXE_clipguide"))
            .args(&c.argv)
            .env_remove("HF_ENDPOINT")
            .env("HF_HUB_OFFLINE", "1")
            .output()
            .expect("running clipguide");
        let stderr = String::from_utf8_lossy(&out.stderr);
        // The message's first line: notes printed before the run started (such as the built-in
        // model's unknown-word note) are not part of it.
        let first = stderr
            .lines()
            .find(|l| !l.starts_with("note: "))
            .unwrap_or("");
        let mut problems = Vec::new();
        if out.status.code() != Some(c.exit) {
            problems.push(format!("exit {:?}, expected {}", out.status.code(), c.exit));
        }
        if stderr.contains("panicked") {
            problems.push("panicked".into());
        }
        for f in c.first_line {
            if !first.contains(f) {
                problems.push(format!("first line lacks {f:?}"));
            }
        }
        for f in c.anywhere {
            if !stderr.contains(f) {
                problems.push(format!("message lacks {f:?}"));
            }
        }
        if let Some(p) = &c.output {
            let after = std::fs::read(p).ok();
            if after != before {
                problems.push(format!("{} was written or clobbered", p.display()));
            }
            let dir = p.parent().expect("output in a folder");
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    if e.file_name().to_string_lossy().contains(".tmp") {
                        problems.push(format!("temporary file {:?} left", e.file_name()));
                    }
                }
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "clipguide {}\n  {}\n  stderr: {}",
                c.argv.join(" "),
                problems.join("; "),
                stderr.trim_end().replace('\n', "\n          ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn bad_input_table() {
    let model = fixture("tiny-clip-quickgelu");
    let m = model.to_str().unwrap();
    let oc = fixture("openclip/oc-quickgelu");
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name);
    let s = |p: &Path| p.to_str().unwrap().to_string();

    // Broken checkpoints, each in its own folder.
    let ckpt = |name: &str, files: &[(&str, Vec<u8>)]| {
        let folder = d(name);
        std::fs::create_dir_all(&folder).unwrap();
        for (file, bytes) in files {
            std::fs::write(folder.join(file), bytes).unwrap();
        }
        s(&folder)
    };
    let config = std::fs::read(model.join("config.json")).unwrap();
    let weights = std::fs::read(model.join("model.safetensors")).unwrap();
    let config_text = String::from_utf8(config.clone()).unwrap();
    let truncated = ckpt(
        "truncated",
        &[
            ("config.json", config.clone()),
            ("model.safetensors", weights[..weights.len() / 2].to_vec()),
        ],
    );
    let other_weights = ckpt(
        "other",
        &[
            ("config.json", config.clone()),
            (
                "model.safetensors",
                std::fs::read(fixture("tiny-clip-gelu/model.safetensors")).unwrap(),
            ),
        ],
    );
    let bad_act = ckpt(
        "bad-act",
        &[
            (
                "config.json",
                config_text.replace("quick_gelu", "swishy").into_bytes(),
            ),
            ("model.safetensors", weights.clone()),
        ],
    );
    let not_json = ckpt(
        "not-json",
        &[
            ("config.json", b"{\"model_type\": \"clip\",".to_vec()),
            ("model.safetensors", weights.clone()),
        ],
    );
    let empty = ckpt("empty", &[]);
    let oc_config = std::fs::read_to_string(oc.join("open_clip_config.json")).unwrap();
    let oc_weights = std::fs::read(oc.join("open_clip_model.safetensors")).unwrap();
    let timm = ckpt(
        "timm",
        &[
            (
                "open_clip_config.json",
                oc_config
                    .replacen(
                        "\"vision_cfg\": {",
                        "\"vision_cfg\": {\"timm_model_name\": \"vit_base\", ",
                        1,
                    )
                    .into_bytes(),
            ),
            ("open_clip_model.safetensors", oc_weights.clone()),
        ],
    );
    let oc_truncated = ckpt(
        "oc-truncated",
        &[
            ("open_clip_config.json", oc_config.clone().into_bytes()),
            (
                "open_clip_pytorch_model.bin",
                b"PK\x03\x04 not really a zip".to_vec(),
            ),
        ],
    );

    // Bad images.
    std::fs::write(d("text.png"), "this is not an image").unwrap();
    let good_png = {
        let p = d("good.png");
        image::RgbImage::new(8, 8).save(&p).unwrap();
        p
    };
    let png = std::fs::read(&good_png).unwrap();
    std::fs::write(d("cut.png"), &png[..png.len() / 2]).unwrap();
    std::fs::write(
        d("huge.png"),
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/image/huge-header.png"),
        )
        .expect("fuzz/seeds/image/huge-header.png (tools/make_fuzz_seeds.py)"),
    )
    .unwrap();
    std::fs::write(d("bad.toml"), "steps = 10\nprompts = \"0:a\"\ncutnn = 3\n").unwrap();

    // Zero-shot, detection and annotation inputs.
    std::fs::write(d("labels.tsv"), "disc\ta circle\n\nbox a square\n").unwrap();
    std::fs::create_dir_all(d("no-classes")).unwrap();
    std::fs::create_dir_all(d("empty-class/cat")).unwrap();
    std::fs::create_dir_all(d("no-images")).unwrap();
    let (labels, good) = (s(&d("labels.tsv")), s(&good_png));

    // An output that exists already must keep its bytes when the run is refused.
    let existing = d("existing.png");
    std::fs::write(&existing, b"precious").unwrap();
    let never = d("never.png");
    let (e, n) = (s(&existing), s(&never));
    let under_file = s(&existing.join("out.png"));
    let run = d("run");

    let gen = |extra: &[&str], out: &str| -> Vec<String> {
        let mut v = vec![
            "generate".to_string(),
            "--model".into(),
            m.into(),
            "--steps".into(),
            "4".into(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v.extend(["-o".to_string(), out.to_string()]);
        v
    };
    let gen_case = |extra: &[&str], out: &Path, first: &'static [&'static str]| Case {
        argv: gen(extra, out.to_str().unwrap()),
        exit: 1,
        first_line: first,
        anywhere: &[],
        output: Some(out.to_path_buf()),
    };

    check(vec![
        // Checkpoints.
        case(
            &["embed", "--model", m, "--image", "/nonexistent/cat.png"],
            1,
            &["/nonexistent/cat.png", "not found"],
        ),
        case(
            &["embed", "--model", "/nonexistent/model/dir", "--text", "x"],
            1,
            &["owner/name"],
        ),
        case(
            &["embed", "--model", &truncated, "--text", "x"],
            1,
            &["model.safetensors", "corrupt"],
        ),
        case(
            &["embed", "--model", &other_weights, "--text", "x"],
            1,
            &["does not match", "text_model"],
        ),
        case(
            &["embed", "--model", &bad_act, "--text", "x"],
            1,
            &["swishy"],
        ),
        case(
            &["embed", "--model", &not_json, "--text", "x"],
            1,
            &["config.json"],
        ),
        case(
            &["embed", "--model", &empty, "--text", "x"],
            1,
            &["config.json"],
        ),
        case(
            &["embed", "--model", &timm, "--text", "x"],
            1,
            &["timm_model_name"],
        ),
        case(
            &["embed", "--model", &oc_truncated, "--text", "x"],
            1,
            &["open_clip_pytorch_model.bin"],
        ),
        case(
            &[
                "classify", "--model", m, "--image", "x.png", "--labels", "cat",
            ],
            1,
            &["at least two"],
        ),
        // Images.
        case(
            &["embed", "--model", m, "--image", &s(&d("text.png"))],
            1,
            &["text.png"],
        ),
        case(
            &["embed", "--model", m, "--image", &s(&d("cut.png"))],
            1,
            &["cut.png"],
        ),
        case(
            &["embed", "--model", m, "--image", &s(&d("huge.png"))],
            1,
            &["huge.png"],
        ),
        case(
            &["render", "--image", "/nonexistent/a.png", "-o", &n],
            1,
            &["/nonexistent/a.png"],
        )
        .output(&never),
        // Prompts: one reading, or refused naming the field and column.
        gen_case(&["a red circle:abc"], &existing, &["a red circle:abc"]).anywhere(&[
            "weight `abc`",
            "column 14",
            "\\:",
        ]),
        gen_case(&["a red circle:nan"], &never, &["a red circle:nan"])
            .anywhere(&["weight `nan`", "finite"]),
        gen_case(&["note: be bold"], &never, &["note: be bold"]).anywhere(&["weight `be bold`"]),
        gen_case(&["a:1:2:3"], &never, &["a:1:2:3"]).anywhere(&["field after stop"]),
        gen_case(&["a:1:2.5"], &never, &["a:1:2.5"]).anywhere(&["stop `2.5`"]),
        gen_case(&[":2"], &never, &[":2"]).anywhere(&["text"]),
        gen_case(
            &["--prompt-schedule", "x:y|zz"],
            &never,
            &["--prompt-schedule"],
        )
        .anywhere(&["step `x`", "column 1"]),
        gen_case(
            &["--prompt-schedule", "150:a|0:b"],
            &never,
            &["--prompt-schedule"],
        )
        .anywhere(&["step `0`", "time order"]),
        gen_case(
            &["--prompt-schedule", "0:a|900:b"],
            &never,
            &["step 900", "4 steps"],
        ),
        gen_case(&["a:1:900"], &never, &["stops at step 900"]),
        gen_case(
            &["--image-prompt", "/nonexistent/p.png:0.5", "x"],
            &never,
            &["/nonexistent/p.png"],
        ),
        // Generation settings.
        gen_case(
            &["x", "--min-size", "1.5"],
            &never,
            &["min_size_frac", "[0, 1]"],
        ),
        gen_case(&["x", "--flip", "2"], &never, &["flip_prob"]),
        gen_case(
            &["x", "--recipe", "fourier", "--palette", "builtin"],
            &never,
            &["palette", "primitives parameterisation"],
        ),
        case(
            &["generate", "x", "--recipe", "vqgan"],
            2,
            &["invalid value 'vqgan'", "--recipe"],
        )
        .anywhere(&["auto, world, shapes, discs, fourier"]),
        // The built-in model's search recipe takes no gradient settings, and draws squares.
        case(
            &["generate", "x", "--steps", "5", "--lr", "0.1", "-o", &n],
            1,
            &["--steps, --lr", "`world`", "--recipe shapes"],
        )
        .output(&never),
        case(
            &["generate", "x", "--size", "64x32", "-o", &n],
            1,
            &["64x32", "square"],
        )
        .output(&never),
        case(
            &["generate", "x:1:5", "-o", &n],
            1,
            &["stop step", "--recipe shapes"],
        )
        .output(&never),
        gen_case(&["x", "--size", "0x10"], &existing, &["WIDTHxHEIGHT"]),
        case(
            &["generate", "--model", m, "x", "--steps", "0", "-o", &n],
            1,
            &["steps"],
        )
        .output(&never),
        gen_case(
            &["x", "--param", "primitives", "--init", &s(&good_png)],
            &never,
            &["primitives", "fourier, pixels or pyramid"],
        ),
        gen_case(
            &["--schedule", "/nonexistent/s.toml"],
            &never,
            &["/nonexistent/s.toml"],
        ),
        gen_case(&["--schedule", &s(&d("bad.toml"))], &never, &["bad.toml"]).anywhere(&["cutnn"]),
        gen_case(
            &["--from-png", &s(&good_png)],
            &never,
            &["good.png", "clipguide generate"],
        ),
        gen_case(
            &["--from-png", "/nonexistent/x.png"],
            &never,
            &["/nonexistent/x.png"],
        ),
        case(
            &[
                "generate",
                "x",
                "--recipe",
                "shapes",
                "--size",
                "8x8",
                "--steps",
                "2",
                "-o",
                &under_file,
            ],
            1,
            &["out.png"],
        )
        .output(&existing),
        case(
            &["generate", "x", "--steps", "many"],
            2,
            &["invalid value 'many'"],
        ),
        // encode: the UI's syntax, strict unless --lenient-syntax.
        case(
            &[
                "encode",
                "--preset",
                "sd1",
                "--model",
                m,
                "--weighting",
                "a1111",
                "--prompt",
                "a (b",
                "-o",
                &e,
            ],
            1,
            &["prompt", "unclosed '('", "column 3"],
        )
        .anywhere(&["--lenient-syntax"])
        .output(&existing),
        case(
            &[
                "encode",
                "--preset",
                "sd1",
                "--model",
                m,
                "--weighting",
                "comfy",
                "--prompt",
                "(a:nan)",
                "-o",
                &n,
            ],
            1,
            &["prompt", "not a number", "nan"],
        )
        .output(&never),
        case(
            &[
                "encode",
                "--preset",
                "sd1",
                "--model",
                m,
                "--weighting",
                "a1111",
                "--prompt",
                "x",
                "--negative",
                "y]",
                "-o",
                &n,
            ],
            1,
            &["negative prompt", "unmatched ']'"],
        )
        .output(&never),
        case(
            &[
                "encode",
                "--preset",
                "sdxl",
                "--model-l",
                m,
                "--prompt",
                "x",
                "-o",
                &n,
            ],
            1,
            &["--model-g"],
        )
        .output(&never),
        // Other commands.
        case(
            &[
                "search",
                "--model",
                m,
                "--dir",
                "/nonexistent/pics",
                "--text",
                "x",
            ],
            1,
            &["/nonexistent/pics"],
        ),
        case(
            &["convert", "--from", &s(&oc), "--to", &s(dir.path())],
            1,
            &["converting"],
        )
        .anywhere(&["already exists", "nothing is overwritten"]),
        // Training knobs are refused before anything is written.
        case(
            &["train", "--out", &s(&run), "--hard-negatives", "1.5"],
            1,
            &["hard_negatives.fraction", "between 0 and 1"],
        ),
        case(
            &["train", "--out", &s(&run), "--colour-negatives=-1"],
            1,
            &["hard_negatives.colour_weight", "0 or more"],
        ),
        case(
            &["train", "--out", &s(&run), "--size-negatives=-0.5"],
            1,
            &["hard_negatives.size_weight", "0 or more"],
        ),
        case(
            &["train", "--out", &s(&run), "--hard-japanese", "1.2"],
            1,
            &["hard_negatives.japanese", "between 0 and 1"],
        ),
        case(
            &["train", "--out", &s(&run), "--blur", "2"],
            1,
            &["augment.blur_prob", "between 0 and 1"],
        ),
        case(
            &["train", "--out", &s(&run), "--jitter", "0.7"],
            1,
            &["augment.colour_jitter", "[0, 0.5)"],
        ),
        case(
            &["train", "--out", &s(&run), "--pgd-fraction", "2"],
            1,
            &["augment.pgd_fraction", "between 0 and 1"],
        ),
        case(
            &["train", "--out", &s(&run), "--singles", "1.5"],
            1,
            &["hard_negatives.singles", "between 0 and 1"],
        ),
        // Zero-shot, detection, annotation.
        case(
            &[
                "classify",
                "--model",
                m,
                "--image",
                &good,
                "--labels-file",
                &labels,
            ],
            1,
            &["labels.tsv, line 3", "label<TAB>definition"],
        ),
        case(
            &[
                "classify",
                "--model",
                m,
                "--image",
                &good,
                "--labels",
                "disc,box",
                "--knowledge",
                "wordnet",
                "--wordnet-dir",
                &s(&d("no-wordnet")),
            ],
            1,
            &["no WordNet database", "index.noun", "wordnet-base"],
        ),
        case(
            &[
                "classify",
                "--model",
                m,
                "--image",
                &good,
                "--labels",
                "a,b",
                "--templates",
                &labels,
            ],
            1,
            &["labels.tsv, line 1", "no {} where the label goes"],
        ),
        case(
            &["zeroshot", "--model", m, "--dir", &s(&d("no-classes"))],
            1,
            &["no class sub-folders"],
        ),
        case(
            &["zeroshot", "--model", m, "--dir", &s(&d("empty-class"))],
            1,
            &["no images"],
        ),
        Case {
            argv: [
                "detect",
                "--model",
                m,
                "--image",
                &good,
                "--labels",
                "x",
                "--labels-file",
                &labels,
                "-o",
                &e,
            ]
            .iter()
            .map(|a| a.to_string())
            .collect(),
            exit: 1,
            first_line: &["line 3"],
            anywhere: &[],
            output: Some(existing.clone()),
        },
        Case {
            argv: [
                "annotate",
                "--model",
                m,
                "--dir",
                &s(&d("no-images")),
                "--labels",
                "x",
                "--out",
                &n,
            ]
            .iter()
            .map(|a| a.to_string())
            .collect(),
            exit: 1,
            first_line: &["annotating"],
            anywhere: &["no images"],
            output: Some(never.clone()),
        },
    ]);
    assert!(
        !run.exists(),
        "a refused training run created {}",
        run.display()
    );
}
