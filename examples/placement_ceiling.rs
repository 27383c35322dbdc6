//! How well can *any* circle-drawing recipe do on the judge suite with a given model? For each
//! prompt of `judge_suite()`, renders the ideal scene (the dataset renderer, plain background)
//! at each of the 9 placements and both sizes, once with a circle and once with the prompt's
//! own shape, and counts the prompts whose best-scored image (by cosine with the prompt) has
//! the prompt's placement. A generator that lets the model choose cannot beat this by choice
//! alone. Each is counted twice: scored by similarity alone, and by the score the generator
//! uses with the discs recipe's placement contrasts (`clipguide_guide::contrast_score` against
//! the prompt at its eight other placements).
//!
//! `cargo run --release --example placement_ceiling -- [--model DIR]…` (built-in model without
//! it; `builtin` names it). With several `--model`s their cosines are averaged (an ensemble).

use std::path::PathBuf;

use candle_core::Device;
use clipguide_clip::Clip;
use clipguide_guide::contrast_score;
use clipguide_shapes::judge::{judge_suite, parse_prompt};
use clipguide_shapes::{placement_variants, render, Placement, Shape, Size};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // SAFETY: first thing in main, before any thread starts.
    unsafe { clipguide_clip::tune_process() };
    let mut models: Vec<PathBuf> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--model" => models.push(args.next().ok_or("--model needs a directory")?.into()),
            other => {
                return Err(format!(
                    "unknown argument {other}; usage: placement_ceiling [--model DIR]"
                )
                .into())
            }
        }
    }
    if models.is_empty() {
        models.push("builtin".into());
    }
    let clips = models
        .iter()
        .map(|m| match m.to_str() {
            Some("builtin") => Clip::builtin(&Device::Cpu),
            _ => Clip::load(m, &Device::Cpu),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let suite = judge_suite();
    // Right placements per (scoring, outline, size rule): large, small, best of both.
    let mut right = [[[0usize; 3]; 2]; 2];
    for (i, prompt) in suite.iter().enumerate() {
        let target = parse_prompt(prompt).ok_or(format!("judge cannot parse {prompt:?}"))?;
        let want = target
            .placement
            .ok_or(format!("{prompt:?} names no placement"))?;
        let (_, variants) = placement_variants(prompt)
            .ok_or(format!("{prompt:?}: no placement phrase to contrast"))?;
        let mut texts = vec![prompt.to_string()];
        texts.extend(variants);
        let mut line = format!("{:>2}", i + 1);
        for (o, shape) in [Shape::Circle, target.shape.unwrap_or(Shape::Circle)]
            .into_iter()
            .enumerate()
        {
            // Images 0..9: large at each placement; 9..18: small.
            let images: Vec<_> = [Size::Large, Size::Small]
                .into_iter()
                .flat_map(|size| {
                    Placement::ALL.iter().map(move |&placement| {
                        let mut scene = target.to_scene();
                        let g = &mut scene.groups[0];
                        (g.shape, g.size, g.placement) = (shape, size, placement);
                        render(&scene, 128)
                    })
                })
                .collect();
            // cos[image][text], averaged over the models.
            let mut cos = vec![vec![0.0f32; texts.len()]; images.len()];
            for clip in &clips {
                let text = clip.embed_texts(&texts)?;
                let sim = clip.similarity(&clip.embed_images(&images)?, &text)?;
                for (c, row) in cos.iter_mut().zip(&sim.cosine) {
                    for (c, v) in c.iter_mut().zip(row) {
                        *c += v / clips.len() as f32;
                    }
                }
            }
            for (scoring, right) in right.iter_mut().enumerate() {
                let score: Vec<f32> = cos
                    .iter()
                    .map(|row| match scoring {
                        0 => row[0],
                        _ => contrast_score(row[0], &row[1..]),
                    })
                    .collect();
                let argmax = |range: std::ops::Range<usize>| {
                    range.fold(None::<usize>, |b, j| match b {
                        Some(b) if score[b] >= score[j] => Some(b),
                        _ => Some(j),
                    })
                };
                let picks = [argmax(0..9), argmax(9..18), argmax(0..18)];
                for (k, pick) in picks.iter().enumerate() {
                    let placement = Placement::ALL[pick.expect("nine images") % 9];
                    right[o][k] += (placement == want) as usize;
                    if k == 2 {
                        line += &format!(
                            "  {placement:?}{}",
                            if placement == want { "" } else { " (wrong)" }
                        );
                    }
                }
            }
        }
        println!("{line}  {prompt}");
    }
    println!("(per prompt: circle by similarity, circle with contrasts, prompt's shape by similarity, with contrasts)");
    for (scoring, by) in ["similarity", "with placement contrasts"]
        .iter()
        .enumerate()
    {
        for (o, name) in ["circle", "prompt's shape"].iter().enumerate() {
            let r = right[scoring][o];
            println!(
                "{by}, {name}: right placement for {} (large), {} (small), {} (best of both) of {} prompts",
                r[0],
                r[1],
                r[2],
                suite.len()
            );
        }
    }
    Ok(())
}
