//! OpenCLIP checkpoints against open_clip itself, on random-weight fixtures made by
//! tools/make_openclip_fixtures.py: embeddings end to end from text and image files (tokenizer and
//! preprocessing included), logits, pixel gradients; the published configs; layout detection,
//! conversion to the transformers layout, and the errors for bad files.

mod common;
use candle_core::{DType, Device, Tensor, Var};
use clipguide_clip::checkpoint::{self, Layout};
use clipguide_clip::{
    convert, cosine_matrix, weights, Activation, Clip, ClipModel, Convention, ImageProcessor,
    Interpolation, OpenClipConfig, OpenClipOptions, Resize, CLIP_MEAN, CLIP_STD,
};
use common::*;
use std::path::Path;

const TOL: f32 = 1e-4;
const GRAD_TOL: f32 = 1e-3;

/// Loss Σᵢ cos(image_features(px)[i], target) and its gradient with respect to the pixels.
fn pixel_grad(model: &ClipModel, px: &Tensor, target: &Tensor) -> (f32, Tensor) {
    let var = Var::from_tensor(px).unwrap();
    let emb = model.image_features(var.as_tensor()).unwrap();
    let loss = cosine_matrix(&emb, &target.detach())
        .unwrap()
        .sum_all()
        .unwrap();
    let grads = loss.backward().unwrap();
    let g = grads
        .get(var.as_tensor())
        .expect("a gradient reaches the pixels")
        .clone();
    (loss.to_scalar::<f32>().unwrap(), g)
}

/// Everything from the files: prompts through the tokenizer, PNGs through the preprocessing.
fn check_end_to_end(name: &str) {
    let dir = fixture(&format!("openclip/{name}"));
    let r = load_reference(&format!("openclip/{name}/reference.safetensors"));
    let (clip, notes) = Clip::load_with(&dir, &Device::Cpu, &OpenClipOptions::default()).unwrap();
    assert!(
        notes.iter().any(|n| n.contains("OpenCLIP checkpoint")),
        "{name}: {notes:?}"
    );
    check_clip_against_reference(name, &clip, &dir, &r);
}

#[test]
fn quick_gelu_safetensors_checkpoint_matches_open_clip() {
    check_end_to_end("oc-quickgelu");
}

#[test]
fn gelu_layer_scale_torch_bin_checkpoint_matches_open_clip() {
    let dir = fixture("openclip/oc-gelu-ls");
    assert!(dir.join("open_clip_pytorch_model.bin").exists());
    let cfg = OpenClipConfig::from_file(
        &dir.join("open_clip_config.json"),
        &OpenClipOptions::default(),
    )
    .unwrap();
    assert!(cfg.vision_layer_scale && cfg.text_layer_scale);
    assert_eq!(cfg.clip.vision.hidden_act, Activation::Gelu);
    assert_eq!(cfg.processor.resize, Resize::Squash { size: 36 });
    assert_eq!(cfg.processor.interpolation, Interpolation::Bilinear);
    check_end_to_end("oc-gelu-ls");
}

#[test]
fn projection_bias_model_matches_open_clip_from_ids() {
    let dir = fixture("openclip/oc-projbias");
    let r = load_reference("openclip/oc-projbias/reference.safetensors");
    let model = ClipModel::load(&dir, &Device::Cpu).unwrap();
    assert!(model.config().text_projection_bias);
    let ids = r["input_ids"].to_dtype(DType::U32).unwrap();
    let text_embeds = model.text_features(&ids).unwrap();
    assert_close("projbias text_embeds", &text_embeds, &r["text_embeds"], TOL);
    let image_embeds = model.image_features(&r["pixel_values"]).unwrap();
    assert_close(
        "projbias image_embeds",
        &image_embeds,
        &r["image_embeds"],
        TOL,
    );
    let logits = model.logits(&image_embeds, &text_embeds).unwrap();
    assert_close("projbias logits", &logits, &r["logits_per_image"], TOL);
    let (_, g) = pixel_grad(
        &model,
        &r["grad_pixel_values"],
        &text_embeds.narrow(0, 0, 1).unwrap(),
    );
    assert_close("projbias grad_pixels", &g, &r["grad_pixels"], GRAD_TOL);
    // Its 1,000-id vocabulary is not CLIP's BPE: a Clip (with tokenizer) is refused.
    let e = Clip::load(&dir, &Device::Cpu).unwrap_err().to_string();
    assert!(
        e.contains("vocab_size 1000") && e.contains("tokenizer"),
        "{e}"
    );
}

#[test]
fn preprocessing_modes_match_open_clip_transforms() {
    let r = load_reference("openclip/preprocess.safetensors");
    let mut n = 0;
    for (key, want) in &r {
        let mut parts = key.splitn(3, '_');
        let (mode, interp, stem) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let p = ImageProcessor {
            resize: match mode {
                "shortest" => Resize::ShortestEdge { size: 32, crop: 32 },
                "squash" => Resize::Squash { size: 32 },
                "longest" => Resize::LongestEdge { size: 32, fill: 0 },
                other => panic!("unknown mode {other} in {key}"),
            },
            interpolation: match interp {
                "bicubic" => Interpolation::Bicubic,
                "bilinear" => Interpolation::Bilinear,
                other => panic!("unknown interpolation {other} in {key}"),
            },
            mean: CLIP_MEAN,
            std: CLIP_STD,
            convention: Convention::OpenClip,
        };
        let img = p
            .load_image(&fixture(&format!("preprocess/{stem}.png")))
            .unwrap();
        let got = p.preprocess(&img, &Device::Cpu).unwrap();
        assert_close(&format!("preprocess {key}"), &got, want, 1e-5);
        n += 1;
    }
    assert_eq!(n, 24, "3 modes × 2 filters × 4 images");
}

#[test]
fn tensor_path_follows_the_resize_mode() {
    // The differentiable path must resample, crop and pad like the u8 path (to u8 rounding).
    for resize in [
        Resize::ShortestEdge { size: 32, crop: 32 },
        Resize::Squash { size: 32 },
        Resize::LongestEdge { size: 32, fill: 0 },
    ] {
        for interpolation in [Interpolation::Bicubic, Interpolation::Bilinear] {
            let p = ImageProcessor {
                resize,
                interpolation,
                mean: [0.5; 3],
                std: [0.5; 3],
                convention: Convention::OpenClip,
            };
            let img = p
                .load_image(&fixture("preprocess/landscape_300x200.png"))
                .unwrap();
            let want = p.preprocess(&img, &Device::Cpu).unwrap();
            let (w, h) = (img.width() as usize, img.height() as usize);
            let data: Vec<f32> = (0..3)
                .flat_map(|c| img.pixels().map(move |px| px[c] as f32 / 255.0))
                .collect();
            let x = Tensor::from_vec(data, (1, 3, h, w), &Device::Cpu).unwrap();
            let got = p.preprocess_tensor(&x).unwrap().squeeze(0).unwrap();
            assert_close(&format!("{resize:?} {interpolation:?}"), &got, &want, 0.02);
        }
    }
}

#[test]
fn published_configs_parse_to_their_shapes() {
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("openclip/configs/expected.json")).unwrap(),
    )
    .unwrap();
    let expected = expected.as_object().unwrap();
    assert_eq!(expected.len(), 3);
    for (name, e) in expected {
        let path = fixture(&format!("openclip/configs/{name}/open_clip_config.json"));
        let c = OpenClipConfig::from_file(&path, &OpenClipOptions::default()).unwrap();
        let n = |v: &serde_json::Value| v.as_u64().unwrap() as usize;
        assert_eq!(c.clip.projection_dim, n(&e["embed_dim"]), "{name}");
        let (v, ev) = (&c.clip.vision, &e["vision"]);
        assert_eq!(
            (
                v.hidden_size,
                v.num_hidden_layers,
                v.num_attention_heads,
                v.intermediate_size
            ),
            (
                n(&ev["width"]),
                n(&ev["layers"]),
                n(&ev["heads"]),
                n(&ev["intermediate_size"])
            ),
            "{name} vision"
        );
        assert_eq!(
            (v.patch_size, v.image_size),
            (n(&ev["patch_size"]), n(&ev["image_size"]))
        );
        let (t, et) = (&c.clip.text, &e["text"]);
        assert_eq!(
            (
                t.hidden_size,
                t.num_hidden_layers,
                t.num_attention_heads,
                t.intermediate_size
            ),
            (
                n(&et["width"]),
                n(&et["layers"]),
                n(&et["heads"]),
                n(&et["intermediate_size"])
            ),
            "{name} text"
        );
        assert_eq!(
            (t.max_position_embeddings, t.vocab_size),
            (n(&et["context_length"]), n(&et["vocab_size"]))
        );
        let ep = &e["preprocess"];
        let triple = |v: &serde_json::Value| -> [f32; 3] {
            [0, 1, 2].map(|i| v[i].as_f64().unwrap() as f32)
        };
        assert_eq!(c.processor.mean, triple(&ep["mean"]), "{name}");
        assert_eq!(c.processor.std, triple(&ep["std"]), "{name}");
        let mode = match c.processor.resize {
            Resize::ShortestEdge { .. } => "shortest",
            Resize::Squash { .. } => "squash",
            Resize::LongestEdge { .. } => "longest",
        };
        assert_eq!(mode, ep["resize_mode"].as_str().unwrap(), "{name}");
        // None of the three files sets quick_gelu: open_clip's default (GELU) unless the repo is known.
        assert_eq!(c.clip.text.hidden_act, Activation::Gelu, "{name}");
        let repo = name.replacen('-', "/", 1);
        let known = OpenClipConfig::from_file(
            &path,
            &OpenClipOptions {
                activation: None,
                repo_id: Some(repo.clone()),
            },
        )
        .unwrap();
        let want = if repo.starts_with("apple/DFN") {
            Activation::QuickGelu
        } else {
            Activation::Gelu
        };
        assert_eq!(known.clip.vision.hidden_act, want, "{repo}");
    }
}

fn copy_dir(from: &Path, to: &Path, skip: &[&str]) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if !skip.contains(&name.to_str().unwrap()) {
            std::fs::copy(e.path(), to.join(name)).unwrap();
        }
    }
}

#[test]
fn layout_is_detected_and_the_choice_said() {
    let oc = fixture("openclip/oc-quickgelu");
    match checkpoint::detect(&oc).unwrap().layout {
        Layout::OpenClip { weights, .. } => {
            assert!(weights.ends_with("open_clip_model.safetensors"))
        }
        other => panic!("{other:?}"),
    }
    // Both layouts in one folder (as LAION's repos are): transformers' is used, and said.
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&oc, tmp.path(), &[]);
    copy_dir(
        &fixture("tiny-clip-quickgelu"),
        tmp.path(),
        &["reference.safetensors"],
    );
    let d = checkpoint::detect(tmp.path()).unwrap();
    assert!(matches!(d.layout, Layout::Transformers { .. }), "{d:?}");
    assert!(d.note.unwrap().contains("using config.json"));
    // A config.json that is not a CLIP's (timm repos have one) does not hide the OpenCLIP files.
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&oc, tmp.path(), &[]);
    std::fs::write(
        tmp.path().join("config.json"),
        r#"{"architecture": "vit_base_patch16"}"#,
    )
    .unwrap();
    assert!(matches!(
        checkpoint::detect(tmp.path()).unwrap().layout,
        Layout::OpenClip { .. }
    ));
    let empty = tempfile::tempdir().unwrap();
    let e = checkpoint::detect(empty.path()).unwrap_err().to_string();
    assert!(
        e.contains("open_clip_config.json") && e.contains("config.json"),
        "{e}"
    );
}

#[test]
fn training_checkpoint_wrapper_is_unwrapped_and_missing_tensors_named() {
    let path = fixture("openclip/wrapped_checkpoint.pt");
    let t = weights::read_weights(&path, &Device::Cpu).unwrap();
    assert!(t.contains_key("logit_scale") && t.contains_key("visual.conv1.weight"));
    assert!(t.keys().all(|k| !k.starts_with("module.")), "prefix kept");
    // With the config of the model it came from, the first text tensor is reported missing.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture("openclip/oc-gelu-ls/open_clip_config.json"),
        tmp.path().join("open_clip_config.json"),
    )
    .unwrap();
    std::fs::copy(&path, tmp.path().join("open_clip_pytorch_model.bin")).unwrap();
    let e = ClipModel::load(tmp.path(), &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("open_clip_pytorch_model.bin")
            && e.contains("token_embedding.weight is missing"),
        "{e}"
    );
}

#[test]
fn bad_files_get_errors_naming_file_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    copy_dir(&fixture("openclip/oc-gelu-ls"), dir, &[]);
    // Not a zip pickle.
    std::fs::write(dir.join("open_clip_pytorch_model.bin"), b"<html>404</html>").unwrap();
    let e = ClipModel::load(dir, &Device::Cpu).unwrap_err().to_string();
    assert!(
        e.contains("open_clip_pytorch_model.bin") && e.contains("torch.save"),
        "{e}"
    );
    // An unsupported tower.
    let cfg = std::fs::read_to_string(dir.join("open_clip_config.json")).unwrap();
    let cfg = cfg.replace(
        "\"patch_size\": 6,",
        "\"patch_size\": 6, \"timm_model_name\": \"vit_base_patch16_224\",",
    );
    std::fs::write(dir.join("open_clip_config.json"), cfg).unwrap();
    let e = ClipModel::load(dir, &Device::Cpu).unwrap_err().to_string();
    assert!(
        e.contains("open_clip_config.json") && e.contains("vision_cfg.timm_model_name"),
        "{e}"
    );
    // A tensor of the wrong shape.
    let tmp2 = tempfile::tempdir().unwrap();
    copy_dir(&fixture("openclip/oc-projbias"), tmp2.path(), &[]);
    let wpath = tmp2.path().join("open_clip_model.safetensors");
    let mut t = candle_core::safetensors::load(&wpath, &Device::Cpu).unwrap();
    t.insert(
        "visual.proj".into(),
        Tensor::zeros((3, 3), DType::F32, &Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&t, &wpath).unwrap();
    let e = ClipModel::load(tmp2.path(), &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(e.contains("visual.proj has shape [3, 3]"), "{e}");
}

#[test]
fn conversion_to_transformers_layout_gives_the_same_model() {
    let src = fixture("openclip/oc-gelu-ls");
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join("converted");
    let conv = convert::open_clip_to_transformers(&src, &dst, &OpenClipOptions::default()).unwrap();
    assert!(!conv.notes.is_empty());
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "preprocessor_config.json",
    ] {
        assert!(dst.join(f).exists(), "{f} not written");
    }
    // LayerScale is folded, so the plain transformers model computes the same embeddings.
    let r = load_reference("openclip/oc-gelu-ls/reference.safetensors");
    let converted = ClipModel::load(&dst, &Device::Cpu).unwrap();
    let ids = r["input_ids"].to_dtype(DType::U32).unwrap();
    assert_close(
        "converted text_embeds",
        &converted.text_features(&ids).unwrap(),
        &r["text_embeds"],
        TOL,
    );
    assert_close(
        "converted image_embeds",
        &converted.image_features(&r["pixel_values"]).unwrap(),
        &r["image_embeds"],
        TOL,
    );
    // The converted preprocessor config keeps squash + bilinear + mean/std 0.5.
    let pp: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dst.join("preprocessor_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(pp["size"]["height"], 36);
    assert_eq!(pp["resample"], 2);
    assert_eq!(pp["do_center_crop"], false);
    // Nothing is overwritten, and what transformers cannot hold is refused.
    let e = convert::open_clip_to_transformers(&src, &dst, &OpenClipOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("already exists"), "{e}");
    let e = convert::open_clip_to_transformers(
        &fixture("openclip/oc-projbias"),
        &tmp.path().join("pb"),
        &OpenClipOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("proj_bias"), "{e}");
    assert!(!tmp.path().join("pb").exists());
}

#[test]
fn activation_override_changes_the_towers() {
    let dir = fixture("openclip/oc-quickgelu");
    let opts = OpenClipOptions {
        activation: Some(Activation::Gelu),
        repo_id: None,
    };
    let (clip, notes) = Clip::load_with(&dir, &Device::Cpu, &opts).unwrap();
    assert_eq!(clip.model.config().text.hidden_act, Activation::Gelu);
    assert!(
        notes.iter().any(|n| n.contains("set by the caller")),
        "{notes:?}"
    );
    let r = load_reference("openclip/oc-quickgelu/reference.safetensors");
    let ids = r["input_ids"].to_dtype(DType::U32).unwrap();
    let got = clip.model.text_features(&ids).unwrap();
    let diff = max_abs(&(&got - &r["text_embeds"]).unwrap());
    assert!(
        diff > 1e-3,
        "the wrong activation should change the embeddings ({diff})"
    );
}

#[test]
fn guidance_normalises_with_the_checkpoints_statistics() {
    use clipguide_guide::{GenerateConfig, Generator, PromptSchedule};
    // oc-gelu-ls uses mean = std = 0.5, not OpenAI's statistics.
    let (clip, _) = Clip::load_with(
        &fixture("openclip/oc-gelu-ls"),
        &Device::Cpu,
        &OpenClipOptions::default(),
    )
    .unwrap();
    assert_eq!(clip.processor.mean, [0.5; 3]);
    let prompts = PromptSchedule::single("sunflower oil painting").unwrap();
    let cfg = GenerateConfig::new(36, 36, 3, prompts);
    let g = Generator::new(&clip, cfg.clone()).unwrap();
    let rgb = g.rgb().unwrap();
    let rgb = if rgb.rank() == 3 {
        rgb.unsqueeze(0).unwrap()
    } else {
        rgb
    };
    let px = ((rgb - 0.5).unwrap() / 0.5).unwrap();
    let want = cosine_matrix(
        &clip.model.image_features(&px).unwrap(),
        &clip.embed_texts(&["sunflower oil painting"]).unwrap(),
    )
    .unwrap()
    .flatten_all()
    .unwrap()
    .to_vec1::<f32>()
    .unwrap()[0];
    let got = g.image_score().unwrap();
    assert!((got - want).abs() < 1e-4, "score {got} vs {want}");
    // The same model normalised with OpenAI's statistics scores the image differently.
    let mut openai = clip.clone();
    openai.processor.mean = CLIP_MEAN;
    openai.processor.std = CLIP_STD;
    let other = Generator::new(&openai, cfg).unwrap().image_score().unwrap();
    assert!((other - got).abs() > 1e-3, "{other} vs {got}");
}

#[test]
fn conditioning_encoder_loads_an_open_clip_text_tower() {
    use clipguide_text::encoder::TextEncoder;
    let dir = fixture("openclip/oc-quickgelu");
    let r = load_reference("openclip/oc-quickgelu/reference.safetensors");
    let enc = TextEncoder::load(&dir, &Device::Cpu).unwrap();
    assert_eq!(enc.tokenizer().pad_id(), 0);
    let ids = r["input_ids"].to_dtype(DType::U32).unwrap();
    let pooled = enc.tower().forward_ids(&ids, false).unwrap().pooled;
    let projected = enc.project(&pooled).unwrap();
    assert_close("encoder text_embeds", &projected, &r["text_embeds"], TOL);
}
