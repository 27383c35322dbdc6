//! Shared helpers for the workspace-level tests: fixture paths and tolerance checks.
#![allow(dead_code)]

use candle_core::Tensor;
use std::collections::HashMap;
use std::path::PathBuf;

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A fixture that must exist; a missing one fails the test with the regeneration command.
pub fn fixture(rel: &str) -> PathBuf {
    let p = fixtures().join(rel);
    assert!(
        p.exists(),
        "missing fixture {}: regenerate with `python3 tools/make_fixtures.py` (needs torch + transformers)",
        p.display()
    );
    p
}

pub fn load_reference(rel: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixture(rel), &candle_core::Device::Cpu)
        .unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

pub fn max_abs(t: &Tensor) -> f32 {
    t.abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// Asserts max |got − want| ≤ rel · max(1e-6, max |want|).
pub fn assert_close(name: &str, got: &Tensor, want: &Tensor, rel: f32) {
    assert_eq!(
        got.dims(),
        want.dims(),
        "{name}: shape {:?} vs reference {:?}",
        got.dims(),
        want.dims()
    );
    let got = got.to_dtype(candle_core::DType::F32).unwrap();
    let want = want.to_dtype(candle_core::DType::F32).unwrap();
    let diff = max_abs(&(&got - &want).unwrap());
    let scale = max_abs(&want).max(1e-6);
    assert!(
        diff <= rel * scale,
        "{name}: max abs diff {diff:e} exceeds {rel:e} × scale {scale:e}"
    );
}

/// A JSON list of strings (a fixture's `prompts.json` / `images.json`).
pub fn json_list(path: &std::path::Path) -> Vec<String> {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The value of a 0-d or 1-element tensor as f32.
pub fn scalar(t: &Tensor) -> f32 {
    t.to_dtype(candle_core::DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()[0]
}

/// A checkpoint fixture against its reference implementation, end to end from files: the
/// prompts of `dir/prompts.json` through the tokenizer (ids and attention mask identical),
/// the PNGs of `dir/images.json` through the preprocessing (≤ 1e-5), text and image embeddings
/// and logits (≤ 1e-4 relative), the logit scale, and the gradient of
/// Σᵢ cos(image(px)ᵢ, text₀) with respect to the pixels (≤ 1e-3).
pub fn check_clip_against_reference(
    name: &str,
    clip: &clipguide_clip::Clip,
    dir: &std::path::Path,
    r: &HashMap<String, Tensor>,
) {
    use candle_core::{DType, Device, Var};
    const TOL: f32 = 1e-4;
    let prompts = json_list(&dir.join("prompts.json"));
    let batch = clip
        .tokenizer
        .encode_batch(&prompts, clipguide_clip::Padding::MaxLength, &Device::Cpu)
        .unwrap();
    let rows = |t: &Tensor| t.to_dtype(DType::U32).unwrap().to_vec2::<u32>().unwrap();
    assert_eq!(
        rows(&batch.ids),
        rows(&r["input_ids"]),
        "{name}: token ids differ from the reference tokenizer's"
    );
    if let Some(mask) = r.get("attention_mask") {
        assert_eq!(
            rows(&batch.attention_mask),
            rows(mask),
            "{name}: attention mask"
        );
    }
    let text_embeds = clip.embed_texts(&prompts).unwrap();
    assert_close(
        &format!("{name} text_embeds"),
        &text_embeds,
        &r["text_embeds"],
        TOL,
    );

    let imgs: Vec<_> = json_list(&dir.join("images.json"))
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
    // Pillow-exact resampling: only f32 rounding of the normalisation remains.
    assert_close(
        &format!("{name} pixel_values"),
        &px,
        &r["pixel_values"],
        1e-5,
    );
    let image_embeds = clip.embed_images(&imgs).unwrap();
    assert_close(
        &format!("{name} image_embeds"),
        &image_embeds,
        &r["image_embeds"],
        TOL,
    );

    let logits = clip.model.logits(&image_embeds, &text_embeds).unwrap();
    assert_close(
        &format!("{name} logits"),
        &logits,
        &r["logits_per_image"],
        TOL,
    );
    let scale = scalar(&r["logit_scale"]);
    let got = clip.model.logit_scale().unwrap();
    assert!(
        (got - scale).abs() <= 1e-5 * scale,
        "{name}: logit scale {got} vs {scale}"
    );

    let var = Var::from_tensor(&r["grad_pixel_values"]).unwrap();
    let emb = clip.model.image_features(var.as_tensor()).unwrap();
    let target = text_embeds.narrow(0, 0, 1).unwrap().detach();
    let loss = clipguide_clip::cosine_matrix(&emb, &target)
        .unwrap()
        .sum_all()
        .unwrap();
    assert!(
        (scalar(&loss) - scalar(&r["grad_loss"])).abs() < 1e-4,
        "{name}: loss {loss}"
    );
    let grads = loss.backward().unwrap();
    let g = grads
        .get(var.as_tensor())
        .expect("a gradient reaches the pixels");
    assert!(max_abs(g) > 0.0, "{name}: pixel gradient is all zeros");
    assert_close(&format!("{name} grad_pixels"), g, &r["grad_pixels"], 1e-3);
}
