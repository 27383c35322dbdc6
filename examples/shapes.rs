//! A prompt from the shapes vocabulary rendered by CLIP guidance with the built-in model and
//! checked by the colour-layout judge.
//!
//! `cargo run --release --example shapes -- ["a red circle in the center on a blue background"] [out.png]`

use candle_core::Device;
use clipguide_clip::Clip;
use clipguide_guide::png_meta::{ascii_json, save_png_with_text, PARAMS_KEY};
use clipguide_guide::{GenerateConfig, Generator, PromptSchedule};
use clipguide_shapes::judge::{judge, parse_prompt};
use clipguide_shapes::palette::Palette;
use clipguide_shapes::placement_contrasts;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    clipguide_clip::tune_allocator();
    let mut args = std::env::args().skip(1);
    let prompt = args
        .next()
        .unwrap_or_else(|| "a red circle in the center on a blue background".into());
    let out = args.next().unwrap_or_else(|| "shapes.png".into());
    let clip = Clip::builtin(&Device::Cpu)?;
    // The recipe `clipguide generate` uses for the built-in model: one primitive whose colour
    // and outline the model chooses (its palette, its six shapes), nine starts, the best
    // continued, and a prompt that names a placement scored against itself at the other eight.
    let mut cfg = GenerateConfig::palette_shapes(
        128,
        128,
        200,
        PromptSchedule::single(&prompt)?,
        Palette::srgb(),
    );
    cfg.contrasts = placement_contrasts(&[&prompt]);
    let mut gen = Generator::new_best_start(&clip, cfg.clone(), |start, r| {
        if r.step + 1 == cfg.start_steps {
            eprintln!("start {start}: sim {:.3}", r.weighted_similarity());
        }
        std::ops::ControlFlow::Continue(())
    })?;
    gen.run(|_, r| {
        if r.step % 50 == 0 {
            eprintln!(
                "step {:>3}  loss {:.4}  sim {:.3}",
                r.step,
                r.loss,
                r.weighted_similarity()
            );
        }
        std::ops::ControlFlow::Continue(())
    })?;
    let image = gen.image()?;
    save_png_with_text(
        out.as_ref(),
        &image,
        PARAMS_KEY,
        &ascii_json(&serde_json::to_string(&cfg)?),
    )?;
    match parse_prompt(&prompt) {
        Some(target) => {
            let v = judge(&image, &target);
            println!(
                "{out}: judge {} (object in region {:.2}, border {:.2})",
                if v.pass { "PASS" } else { "fail" },
                v.object_in_region,
                v.background_border
            );
        }
        None => println!("{out}: prompt is outside the judge's vocabulary, not judged"),
    }
    Ok(())
}
