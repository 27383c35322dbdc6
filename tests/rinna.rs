//! rinna's Japanese CLIP and CLOOB layout against transformers' BertModel + ViTModel composed as
//! rinna's package does, on random-weight fixtures made by tools/make_rinna_fixtures.py:
//! embeddings end to end from text and image files, logits (logit scale or CLOOB's inv_tau),
//! pixel gradients, and Japanese generation through the public API.

mod common;
use candle_core::Device;
use clipguide_clip::checkpoint::{self, Layout};
use clipguide_clip::{Clip, ClipModel, Padding};
use clipguide_guide::png_meta::{ascii_json, encode_png_with_text, png_text, PARAMS_KEY};
use clipguide_guide::{GenerateConfig, Generator, PromptSchedule};
use common::*;

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
    let full = clip.model.text_forward(&batch.ids, false).unwrap();
    assert_close(
        &format!("{name} text last_hidden_state"),
        &full.last_hidden_state,
        &r["text_last_hidden_state"],
        1e-4,
    );
    // embed_texts pads to the longest prompt; the attention mask keeps padding out, so the
    // embeddings equal the reference's (padded to 77).
    check_clip_against_reference(name, &clip, &dir, &r);
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
    let mut cfg = GenerateConfig::new(
        32,
        32,
        12,
        PromptSchedule::single("ひまわりの油絵").unwrap(),
    );
    cfg.schedule.seed = 5;
    cfg.schedule.cutn = clipguide_guide::Keyframes::constant(6);
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
