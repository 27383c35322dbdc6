//! Seconds per guidance step at 256×256 with 16 cutouts through a ViT-B/32-shaped CLIP with
//! random weights: render, cutouts, image tower, spherical loss, backward, Adam. The PyTorch
//! counterpart doing the same work is tools/bench_guide_torch.py.
//!
//! `cargo run --release -p clipguide-guide --example bench_step -- [steps]`

use std::time::Instant;

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use clipguide_clip::{Clip, ClipConfig, ClipModel, ClipTokenizer, ImageProcessor};
use clipguide_guide::{GenerateConfig, Generator, PromptSchedule};

/// ViT-B/32-shaped model with random weights as plain tensors (not Vars), so backward only
/// reaches the image parameters.
fn random_clip(dev: &Device) -> Result<Clip, Box<dyn std::error::Error>> {
    let cfg = ClipConfig::default();
    let vm = VarMap::new();
    ClipModel::new(&cfg, VarBuilder::from_varmap(&vm, DType::F32, dev))?;
    let tensors = vm
        .data()
        .lock()
        .map_err(|_| "poisoned VarMap lock")?
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
        .collect();
    let model = ClipModel::new(&cfg, VarBuilder::from_tensors(tensors, DType::F32, dev))?;
    let size = cfg.vision.image_size;
    Ok(Clip {
        model,
        tokenizer: ClipTokenizer::builtin(),
        processor: ImageProcessor::for_size(size),
        embed_precision: clipguide_clip::Precision::F32,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // SAFETY: first thing in main, before any thread starts.
    unsafe { clipguide_clip::tune_process() };
    let steps: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5);
    let clip = random_clip(&Device::Cpu)?;
    let mut cfg = GenerateConfig::new(256, 256, steps + 1, PromptSchedule::single("a photo")?);
    cfg.schedule.cutn = clipguide_guide::Keyframes::constant(16);
    let mut gen = Generator::new(&clip, cfg)?;
    gen.step()?; // warm-up: allocations and thread pool start.
    let mut times = Vec::new();
    for _ in 0..steps {
        let t = Instant::now();
        gen.step()?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let peak_rss_mib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0;
    println!(
        "{{\"case\": \"guide_step_256_cutn16_vitb32\", \"median_s\": {:.3}, \"min_s\": {:.3}, \"steps\": {steps}, \"threads\": \"{}\", \"peak_rss_mib\": {peak_rss_mib:.0}, \"isa\": \"{}\"}}",
        times[times.len() / 2],
        times[0],
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into()),
        clipguide_clip::ops::isa()
    );
    Ok(())
}
