//! The same prompt under several guidance schedules (each a schedule TOML, as users write
//! them), tiled left to right into a contact sheet PNG with a JSON sidecar naming each tile.
//!
//! `cargo run --release --example schedule_sweep -- MODEL [PROMPT] [STEPS] [SIZE] [sweep.png]`
//! MODEL is a checkpoint folder or hub id.

use candle_core::Device;
use clipguide_clip::{hub, Clip};
use clipguide_guide::{Generator, GuideSchedule, Param, Recipe};
use image::RgbImage;

/// (label, parameterisation, schedule TOML without `steps`/`prompts`).
const SWEEP: &[(&str, &str, &str)] = &[
    ("constant lr 0.05", "fourier", "cutn = 32\n[cutouts]\njitter = 8\nnoise_std = 0.1\n"),
    (
        "warm-up + cosine lr",
        "fourier",
        "lr = { kind = \"warmup_cosine\", lr = 0.1, warmup = 20, total = STEPS, min_lr = 0.01 }\ncutn = 32\n[cutouts]\njitter = 8\nnoise_std = 0.1\n",
    ),
    ("cut_pow 0.5 -> 3 (small cutouts late)", "fourier", "cut_pow = [[0, 0.5], [STEPS, 3.0]]\ncutn = 32\n[cutouts]\njitter = 8\nnoise_std = 0.1\n"),
    ("tv weight ramp 0 -> 0.5", "fourier", "tv_weight = [[0, 0.0], [STEPS, 0.5]]\ncutn = 32\n[cutouts]\njitter = 8\nnoise_std = 0.1\n"),
    ("pyramid, range penalty", "pyramid", "range_weight = 0.1\ncutn = 32\n[cutouts]\njitter = 8\nnoise_std = 0.1\n"),
    ("pixels, cutn 32 -> 8", "pixels", "cutn = [[0, 32], [STEPS, 8]]\n[cutouts]\njitter = 8\nnoise_std = 0.1\n"),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // SAFETY: first thing in main, before any thread starts.
    unsafe { clipguide_clip::tune_process() };
    let mut args = std::env::args().skip(1);
    let model = args
        .next()
        .ok_or("usage: schedule_sweep MODEL [PROMPT] [STEPS] [SIZE] [OUT.png]")?;
    let prompt = args
        .next()
        .unwrap_or_else(|| "a red circle in the center on a blue background".into());
    let steps: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(150);
    let size: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(128);
    let out = std::path::PathBuf::from(args.next().unwrap_or_else(|| "sweep.png".into()));
    let clip = Clip::load(&hub::resolve(&model, true)?, &Device::Cpu)?;

    let gap = 4u32;
    let mut sheet = RgbImage::from_pixel(
        SWEEP.len() as u32 * (size as u32 + gap) - gap,
        size as u32,
        image::Rgb([255, 255, 255]),
    );
    let mut tiles = Vec::new();
    for (i, (label, param, toml_body)) in SWEEP.iter().enumerate() {
        let toml_text = format!(
            "steps = {steps}\nprompts = {}\n{}",
            serde_json::to_string(&prompt)?, // a JSON string is a valid TOML basic string
            toml_body.replace("STEPS", &steps.to_string())
        );
        let schedule = GuideSchedule::from_toml_str(&toml_text)?;
        let mut cfg = Recipe::fourier().config_with_schedule(schedule);
        (cfg.width, cfg.height) = (size, size);
        cfg.param = param.parse::<Param>()?;
        let start = std::time::Instant::now();
        let mut gen = Generator::new(&clip, cfg)?;
        gen.run(|_, _| std::ops::ControlFlow::Continue(()))?;
        let sim = gen.image_similarity()?[0].similarity;
        let x = i as u32 * (size as u32 + gap);
        image::imageops::replace(&mut sheet, &gen.image()?, x as i64, 0);
        eprintln!(
            "{label}: similarity {sim:.4} ({:.1}s)",
            start.elapsed().as_secs_f64()
        );
        tiles.push(serde_json::json!({
            "index": i, "label": label, "x": x, "width": size, "similarity": sim,
            "schedule_toml": toml_text,
        }));
    }
    sheet.save(&out)?;
    let sidecar = out.with_extension("json");
    let meta =
        serde_json::json!({ "prompt": prompt, "model": model, "steps": steps, "tiles": tiles });
    std::fs::write(&sidecar, serde_json::to_string_pretty(&meta)?)?;
    println!(
        "{} ({} tiles, left to right; labels in {})",
        out.display(),
        SWEEP.len(),
        sidecar.display()
    );
    Ok(())
}
