//! rinna's Japanese CLIP and CLOOB layout against transformers' BertModel + ViTModel composed as
//! rinna's package does, on random-weight fixtures made by tools/make_rinna_fixtures.py:
//! embeddings end to end from text and image files, logits (logit scale or CLOOB's inv_tau),
//! pixel gradients, and Japanese generation through the public API.

mod common;
use candle_core::{DType, Device, Tensor, Var};
use clipguide_clip::checkpoint::{self, Layout};
use clipguide_clip::{cosine_matrix, Clip, ClipModel, Padding};
use clipguide_guide::png_meta::{ascii_json, encode_png_with_text, png_text, PARAMS_KEY};
use clipguide_guide::{GenerateConfig, Generator, PromptSchedule};
use common::*;
use std::path::Path;

const TOL: f32 = 1e-4;
const GRAD_TOL: f32 = 1e-3;

fn json_list(path: &Path) -> Vec<String> {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn scalar(t: &Tensor) -> f32 {
    t.to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()[0]
}

fn check_end_to_end(name: &str) {
    let dir = fixture(&format!("rinna/{name}"));
    assert!(matches!(
        checkpoint::detect(&dir).unwrap().layout,
        Layout::Rinna { .. }
    ));
    let r = load_reference(&format!("rinna/{name}/reference.safetensors"));
    let clip = Clip::load(&dir, &Device::Cpu).unwrap();

    let prompts = json_list(&dir.join("prompts.json"));
    let batch = clip
        .tokenizer
        .encode_batch(&prompts, Padding::MaxLength, &Device::Cpu)
        .unwrap();
    assert_eq!(
        batch.ids.to_vec2::<u32>().unwrap(),
        r["input_ids"]
            .to_dtype(DType::U32)
            .unwrap()
            .to_vec2::<u32>()
            .unwrap(),
        "{name}: token ids differ from rinna's tokenize"
    );
    assert_eq!(
        batch.attention_mask.to_vec2::<u32>().unwrap(),
        r["attention_mask"]
            .to_dtype(DType::U32)
            .unwrap()
            .to_vec2::<u32>()
            .unwrap(),
        "{name}: attention mask"
    );
    let full = clip.model.text_forward(&batch.ids, false).unwrap();
    assert_close(
        &format!("{name} text last_hidden_state"),
        &full.last_hidden_state,
        &r["text_last_hidden_state"],
        TOL,
    );
    // Padding to the longest prompt (what embed_texts does) gives the same embeddings: the
    // attention mask keeps padding out.
    let text_embeds = clip.embed_texts(&prompts).unwrap();
    assert_close(
        &format!("{name} text_embeds"),
        &text_embeds,
        &r["text_embeds"],
        TOL,
    );

    let images = json_list(&dir.join("images.json"));
    let imgs: Vec<_> = images
        .iter()
        .map(|f| {
            clip.load_image(&fixture(&format!("preprocess/{f}")))
                .unwrap()
        })
        .collect();
    let px = clip
        .processor
        .preprocess_batch(&imgs, &Device::Cpu)
        .unwrap();
    assert_close(
        &format!("{name} pixel_values"),
        &px,
        &r["pixel_values"],
        1e-5,
    );
    let vision = clip.model.vision_forward(&px, false).unwrap();
    let image_embeds = clip.embed_images(&imgs).unwrap();
    assert_close(
        &format!("{name} image_embeds"),
        &image_embeds,
        &r["image_embeds"],
        TOL,
    );
    assert_eq!(vision.pooled.dim(0).unwrap(), 4);

    let scale = scalar(&r["logit_scale"]);
    assert!(
        (clip.model.logit_scale().unwrap() - scale).abs() <= 1e-5 * scale,
        "{name}: logit scale {} vs {scale}",
        clip.model.logit_scale().unwrap()
    );
    let logits = clip.model.logits(&image_embeds, &text_embeds).unwrap();
    assert_close(
        &format!("{name} logits"),
        &logits,
        &r["logits_per_image"],
        TOL,
    );

    let var = Var::from_tensor(&r["grad_pixel_values"]).unwrap();
    let emb = clip.model.image_features(var.as_tensor()).unwrap();
    let loss = cosine_matrix(&emb, &text_embeds.narrow(0, 0, 1).unwrap().detach())
        .unwrap()
        .sum_all()
        .unwrap();
    assert!((scalar(&loss) - scalar(&r["grad_loss"])).abs() < 1e-4);
    let grads = loss.backward().unwrap();
    let g = grads
        .get(var.as_tensor())
        .expect("a gradient reaches the pixels");
    assert!(max_abs(g) > 0.0);
    assert_close(
        &format!("{name} grad_pixels"),
        g,
        &r["grad_pixels"],
        GRAD_TOL,
    );
}

#[test]
fn japanese_clip_matches_transformers_composition() {
    check_end_to_end("tiny-clip");
}

#[test]
fn japanese_cloob_matches_and_uses_inv_tau() {
    check_end_to_end("tiny-cloob");
    let m = ClipModel::load(&fixture("rinna/tiny-cloob"), &Device::Cpu).unwrap();
    assert!((m.logit_scale().unwrap() - 30.0).abs() < 1e-4);
}

#[test]
fn a_folder_without_the_tokenizer_says_where_it_comes_from() {
    let tmp = tempfile::tempdir().unwrap();
    for f in ["config.json", "pytorch_model.bin"] {
        std::fs::copy(fixture("rinna/tiny-clip").join(f), tmp.path().join(f)).unwrap();
    }
    // No cached copy of rinna/japanese-roberta-base either.
    let home = tempfile::tempdir().unwrap();
    std::env::set_var("HF_HOME", home.path());
    let e = Clip::load(tmp.path(), &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("spiece.model") && e.contains("rinna/japanese-roberta-base"),
        "{e}"
    );
    // The model alone loads (it needs no tokenizer).
    assert!(ClipModel::load(tmp.path(), &Device::Cpu).is_ok());
}

#[test]
fn japanese_prompt_generation_raises_similarity_and_remakes_from_the_png() {
    let clip = Clip::load(&fixture("rinna/tiny-clip"), &Device::Cpu).unwrap();
    let mut cfg = GenerateConfig::new(32, 32, 12, PromptSchedule::parse("ひまわりの油絵").unwrap());
    cfg.schedule.seed = 5;
    cfg.schedule.cutouts.cutn = 6;
    cfg.schedule.cutouts.noise_std = 0.0;
    cfg.schedule.lr = clipguide_guide::LrSchedule::Constant { lr: 0.2 };
    let mut gen = Generator::new(&clip, cfg.clone()).unwrap();
    let before = gen.image_similarity().unwrap()[0].similarity;
    gen.run(|_, _| std::ops::ControlFlow::Continue(())).unwrap();
    let after = gen.image_similarity().unwrap()[0].similarity;
    assert!(after > before + 0.01, "similarity {before} -> {after}");

    let json = ascii_json(&serde_json::to_string(&cfg).unwrap());
    let png = encode_png_with_text(&gen.image().unwrap(), PARAMS_KEY, &json).unwrap();
    let stored = png_text(&png, PARAMS_KEY)
        .unwrap()
        .expect("parameters chunk");
    let back: GenerateConfig = serde_json::from_str(&stored).unwrap();
    assert_eq!(back.schedule.prompts, cfg.schedule.prompts);
    let mut again = Generator::new(&clip, back).unwrap();
    again
        .run(|_, _| std::ops::ControlFlow::Continue(()))
        .unwrap();
    assert_eq!(
        again.image().unwrap(),
        image::load_from_memory(&png).unwrap().to_rgb8(),
        "re-made image differs from the stored one"
    );
}
