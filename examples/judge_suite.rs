//! The generation benchmark: every prompt of `clipguide_shapes::judge::judge_suite()` at
//! 128×128 with the recipe `clipguide generate` uses for the built-in model
//! (`GenerateConfig::palette_shapes`; `--recipe discs` for `palette_discs`, `--recipe fourier`
//! for the hub-model defaults), judged by colour layout; prints the pass rate and the seconds
//! per run (one JSON line at the end, for BENCHMARKS.md).
//!
//! `cargo run --release --example judge_suite -- --model DIR [--steps N] [--seed S] [--out DIR]`
//!
//! Tuning flags override single settings of the defaults, to sweep them: `--size PX`, `--cutn N`,
//! `--lr X`, `--min-size F`, `--cut-pow X`, `--flip P`, `--jitter PX`, `--noise X`,
//! `--param pixels|fourier|pyramid|primitives`, `--decay X`, `--tv X`, `--primitives K`,
//! `--starts N`, `--start-steps N`, `--palette builtin|any`, `--keep-best true|false`,
//! `--contrasts placement|none` (placement, the recipe's, unless `--recipe fourier`),
//! `--shapes true|false` (let the model choose each primitive's outline), `--edge F` and
//! `--min-radius F` (the primitives' soft-edge width and smallest radius, fractions of the side).
//! `--only 2,7` runs just those prompts (numbered from 1, as printed).

use std::path::PathBuf;
use std::time::Instant;

use candle_core::Device;
use clipguide_clip::Clip;
use clipguide_guide::{GenerateConfig, Generator, PromptSchedule};
use clipguide_shapes::judge::{judge, judge_suite, parse_prompt};
use clipguide_shapes::palette::Palette;
use clipguide_shapes::placement_contrasts;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    clipguide_clip::tune_allocator();
    let mut model: Option<PathBuf> = None;
    let (mut steps, mut seed, mut out) = (200usize, 0u64, None::<PathBuf>);
    let mut size = 128usize;
    // The CLI's recipe for the built-in model (`GenerateConfig::palette_shapes`) unless
    // `--recipe discs` or `--recipe fourier` asks for another.
    let mut recipe = "shapes".to_string();
    let (mut limit, mut cutn) = (usize::MAX, None::<usize>);
    // --only 2,7: just these prompts (1-based, as printed).
    let mut only: Option<Vec<usize>> = None;
    // (flag, value) pairs applied to every run's config after the defaults.
    let mut tweaks: Vec<(String, String)> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--model" => model = Some(value()?.into()),
            "--recipe" => {
                recipe = value()?;
                if !["shapes", "discs", "fourier"].contains(&recipe.as_str()) {
                    return Err(format!("--recipe {recipe}: give shapes, discs or fourier").into());
                }
            }
            "--steps" => steps = value()?.parse()?,
            "--seed" => seed = value()?.parse()?,
            "--out" => out = Some(value()?.into()),
            "--limit" => limit = value()?.parse()?,
            "--only" => {
                only = Some(
                    value()?
                        .split(',')
                        .map(|n| n.trim().parse::<usize>())
                        .collect::<Result<Vec<_>, _>>()?,
                )
            }
            "--size" => size = value()?.parse()?,
            "--cutn" => cutn = Some(value()?.parse()?),
            "--lr" | "--min-size" | "--cut-pow" | "--flip" | "--jitter" | "--noise" | "--param"
            | "--decay" | "--tv" | "--primitives" | "--starts" | "--start-steps" | "--palette"
            | "--keep-best" | "--contrasts" | "--shapes" | "--edge" | "--min-radius" => {
                tweaks.push((a.clone(), value()?))
            }
            other => return Err(format!("unknown argument {other}; usage: judge_suite --model DIR [--steps N] [--seed S] [--out DIR] [tuning flags, see the file's docs]").into()),
        }
    }
    // Without --model: the built-in shapes CLIP.
    let clip = match &model {
        Some(m) => Clip::load(m, &Device::Cpu)?,
        None => Clip::builtin(&Device::Cpu)?,
    };
    if let Some(dir) = &out {
        std::fs::create_dir_all(dir)?;
    }
    let suite = judge_suite();
    // With --limit only the first prompts run; rates are over the runs actually made.
    let (mut runs, mut passed, mut seconds) = (0usize, 0usize, 0.0f64);
    for (i, prompt) in suite.iter().enumerate().take(limit) {
        if only.as_ref().is_some_and(|o| !o.contains(&(i + 1))) {
            continue;
        }
        let target = parse_prompt(prompt).ok_or(format!("judge cannot parse {prompt:?}"))?;
        let prompts = PromptSchedule::single(prompt)?;
        let fourier = recipe == "fourier";
        let mut cfg = match recipe.as_str() {
            "fourier" => GenerateConfig::new(size, size, steps, prompts),
            "discs" => GenerateConfig::palette_discs(size, size, steps, prompts, Palette::srgb()),
            _ => GenerateConfig::palette_shapes(size, size, steps, prompts, Palette::srgb()),
        };
        if !fourier {
            // As `clipguide generate` does for the built-in model.
            cfg.contrasts = placement_contrasts(&[prompt]);
        }
        cfg.schedule.seed = seed;
        if let Some(n) = cutn {
            cfg.schedule.cutn = Some(clipguide_guide::Keyframes::constant(n));
        }
        for (flag, v) in &tweaks {
            let c = &mut cfg.schedule.cutouts;
            match flag.as_str() {
                "--lr" => {
                    cfg.schedule.lr = clipguide_guide::LrSchedule::Constant { lr: v.parse()? }
                }
                "--min-size" => c.min_size_frac = v.parse()?,
                "--cut-pow" => c.cut_pow = v.parse()?,
                "--flip" => c.flip_prob = v.parse()?,
                "--jitter" => c.jitter = v.parse()?,
                "--noise" => c.noise_std = v.parse()?,
                "--param" => cfg.param = v.parse()?,
                "--decay" => cfg.decay = v.parse()?,
                "--primitives" => cfg.primitives = v.parse()?,
                "--starts" => cfg.starts = v.parse()?,
                // The colours the built-in model was trained on.
                "--palette" if v == "builtin" => cfg.palette = Some(Palette::srgb()),
                "--palette" if v == "any" => cfg.palette = None,
                "--start-steps" => cfg.start_steps = v.parse()?,
                "--keep-best" => cfg.keep_best = v.parse()?,
                "--shapes" => cfg.primitive_shapes = v.parse()?,
                "--edge" => cfg.primitive_edge = v.parse()?,
                "--min-radius" => cfg.primitive_min_radius = v.parse()?,
                "--contrasts" if v == "placement" => cfg.contrasts = placement_contrasts(&[prompt]),
                "--contrasts" if v == "none" => cfg.contrasts.clear(),
                "--contrasts" => {
                    return Err(format!("--contrasts {v}: give `placement` or `none`").into())
                }
                "--tv" => cfg.schedule.tv_weight = clipguide_guide::Keyframes::constant(v.parse()?),
                "--palette" => return Err(format!("--palette {v}: give `builtin` or `any`").into()),
                _ => unreachable!("flags are filtered above"),
            }
        }
        runs += 1;
        let start = Instant::now();
        let mut gen =
            Generator::new_best_start(&clip, cfg, |_, _| std::ops::ControlFlow::Continue(()))?;
        gen.run(|_, _| std::ops::ControlFlow::Continue(()))?;
        let took = start.elapsed().as_secs_f64();
        seconds += took;
        let image = gen.image()?;
        let score = clipguide_guide::weighted_similarity(&gen.image_similarity()?);
        let verdict = judge(&image, &target);
        passed += verdict.pass as usize;
        println!(
            "{:>2} {} {:5.1}s  similarity {score:.3}  object {:.2} elsewhere {:.2} border {:.2}  {prompt}",
            i + 1,
            if verdict.pass { "PASS" } else { "fail" },
            took,
            verdict.object_in_region,
            verdict.object_elsewhere,
            verdict.background_border,
        );
        if let Some(dir) = &out {
            image.save(dir.join(format!("{:02}.png", i + 1)))?;
        }
    }
    println!(
        "{{\"suite\": {}, \"runs\": {runs}, \"passed\": {passed}, \"pass_rate\": {:.3}, \"seconds_per_run\": {:.2}, \"steps\": {steps}, \"size\": {size}}}",
        suite.len(),
        passed as f64 / runs.max(1) as f64,
        seconds / runs.max(1) as f64
    );
    Ok(())
}
