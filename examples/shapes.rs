//! A prompt from the shapes vocabulary rendered by CLIP guidance with the built-in model and
//! its recipe, through the library call `clipguide generate` makes, and checked by the
//! colour-layout judge.
//!
//! `cargo run --release --example shapes -- ["a red circle in the center on a blue background"] [out.png]`

use std::sync::atomic::AtomicBool;

use candle_core::Device;
use clipguide_clip::Clip;
use clipguide_guide::{plan_run, Overrides, PromptSchedule, RunOutputs, Start};
use clipguide_shapes::judge::{judge, parse_prompt};
use clipguide_shapes::recipe;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // SAFETY: first thing in main, before any thread starts.
    unsafe { clipguide_clip::tune_process() };
    let mut args = std::env::args().skip(1);
    let prompt = args
        .next()
        .unwrap_or_else(|| "a red circle in the center on a blue background".into());
    let out = args.next().unwrap_or_else(|| "shapes.png".into());
    let clip = Clip::builtin(&Device::Cpu)?;
    // The built-in model's recipe (one primitive whose colour and outline the model chooses,
    // nine starts, placement contrasts) at 128², as `clipguide generate --size 128x128` runs it.
    let overrides = Overrides {
        prompts: Some(PromptSchedule::single(&prompt)?),
        size: Some((128, 128)),
        ..Overrides::default()
    };
    let cfg = plan_run(&recipe::for_model(true), Start::Recipe, &overrides)?;
    let mut outputs = RunOutputs::new(out.clone().into(), None, None, None, cfg.schedule.steps)?;
    let summary =
        clipguide_guide::generate(&clip, &cfg, &mut [&mut outputs], &AtomicBool::new(false))?;
    eprintln!(
        "{} steps taken in {:.1} s",
        summary.steps_taken, summary.seconds
    );
    let image = image::open(&out)?.to_rgb8();
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
