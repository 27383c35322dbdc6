//! Benchmark of the CLIP towers (random weights, OpenAI ViT-B/32 shapes), the counterpart of
//! tools/bench_torch.py; prints one JSON line of median seconds. Run both with tools/bench.sh.
//!
//! Cases: `image_fwd_bwd_b8_224` (vision tower + projection, batch 8, backward to the pixels),
//! `image_embed_b32_224` (forward only, batch 32: embedding images for an index), in f32 and, where
//! the CPU has AVX512-BF16 / AVX512-FP16, with bf16 / fp16 products (`Precision::Bf16`,
//! `Precision::F16`; `bf16_min_cosine` / `f16_min_cosine` are their agreement with the f32
//! embeddings), and
//! `text_1000_labels` (1,000 "a photo of a {label}" prompts, batches of 100, padded to the
//! longest prompt — the causal mask makes that equal to padding to 77), plus the same text work
//! padded to 77 for comparison.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use clipguide_clip::{ClipConfig, ClipModel, ClipTokenizer, Padding, Precision};
use std::time::Instant;

fn median(mut f: impl FnMut(), runs: usize) -> f64 {
    f();
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

/// ViT-B/32-shaped model with random frozen weights (plain tensors, not Vars, so backward
/// only goes to the pixels).
fn random_model(dev: &Device) -> ClipModel {
    let cfg = ClipConfig::default();
    let vm = VarMap::new();
    ClipModel::new(&cfg, VarBuilder::from_varmap(&vm, DType::F32, dev)).unwrap();
    let tensors = vm
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
        .collect();
    ClipModel::new(&cfg, VarBuilder::from_tensors(tensors, DType::F32, dev)).unwrap()
}

fn main() {
    // SAFETY: first thing in main, before any thread starts.
    unsafe { clipguide_clip::tune_process() };
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let dev = Device::Cpu;
    let model = random_model(&dev);
    let px32 = Tensor::randn(0f32, 1f32, (32, 3, 224, 224), &dev).unwrap();
    // `CASES=embed`: one embedding precision alone (`PRECISION=f32|bf16|f16`), for profilers.
    if std::env::var("CASES").is_ok_and(|c| c == "embed") {
        let p = match std::env::var("PRECISION").as_deref() {
            Ok("bf16") => Precision::Bf16,
            Ok("f16") => Precision::F16,
            _ => Precision::F32,
        };
        let s = median(|| drop(model.image_features_with(&px32, p).unwrap()), runs);
        println!(
            "{{\"image_embed_b32_224\": {s:.3}, \"isa\": \"{}\"}}",
            clipguide_clip::ops::isa()
        );
        return;
    }
    let px = Tensor::randn(0f32, 1f32, (8, 3, 224, 224), &dev).unwrap();
    let image = median(
        || {
            let v = Var::from_tensor(&px).unwrap();
            let loss = model
                .image_features(v.as_tensor())
                .unwrap()
                .sum_all()
                .unwrap();
            let g = loss.backward().unwrap();
            assert!(g.get(v.as_tensor()).is_some(), "no pixel gradient");
        },
        runs,
    );

    let embed = |p: Precision| model.image_features_with(&px32, p).unwrap();
    let embed_f32 = median(|| drop(embed(Precision::F32)), runs);
    let mut embed_json = format!("\"image_embed_b32_224\": {embed_f32:.3}");
    for (name, p) in [("bf16", Precision::Bf16), ("f16", Precision::F16)] {
        if !model.embeds_at(p) {
            continue;
        }
        let secs = median(|| drop(embed(p)), runs);
        let cos = clipguide_clip::cosine_matrix(&embed(Precision::F32), &embed(p))
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let min_cos = (0..32).map(|i| cos[i][i]).fold(f32::INFINITY, f32::min);
        embed_json += &format!(
            ", \"image_embed_b32_224_{name}\": {secs:.3}, \"{name}_min_cosine\": {min_cos:.6}"
        );
    }

    if std::env::var("CASES").is_ok_and(|c| c == "image") {
        println!(
            "{{\"image_fwd_bwd_b8_224\": {image:.3}, {embed_json}, \"peak_rss_mib\": {:.0}, \"isa\": \"{}\"}}",
            peak_rss_mib(),
            clipguide_clip::ops::isa()
        );
        return;
    }
    let labels = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tools/bench_labels.txt"
    ))
    .unwrap();
    let prompts: Vec<String> = labels
        .split_whitespace()
        .map(|l| format!("a photo of a {l}"))
        .collect();
    let tok = ClipTokenizer::builtin();
    let text = |pad: Padding| {
        for chunk in prompts.chunks(100) {
            let b = tok.encode_batch(chunk, pad, &dev).unwrap();
            let e = model.text_features(&b.ids).unwrap();
            assert_eq!(e.dims(), &[chunk.len(), 512]);
        }
    };
    let text_runs = runs.min(3);
    let text_longest = median(|| text(Padding::Longest), text_runs);
    let text_77 = median(|| text(Padding::MaxLength), 1);
    let rss = peak_rss_mib();
    println!(
        "{{\"image_fwd_bwd_b8_224\": {image:.3}, {embed_json}, \"text_1000_labels\": {text_longest:.3}, \"text_1000_labels_pad77\": {text_77:.3}, \"peak_rss_mib\": {rss:.0}, \"isa\": \"{}\"}}",
        clipguide_clip::ops::isa()
    );
}

/// Peak resident set size of this process (VmHWM), MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .unwrap_or(0.0)
        / 1024.0
}
