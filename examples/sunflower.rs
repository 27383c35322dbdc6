//! The seed's prompt, "sunflower oil painting", through a hub CLIP model (downloaded once).
//!
//! `cargo run --release --example sunflower -- [openai/clip-vit-base-patch32] [steps] [out.png]`

use candle_core::Device;
use clipguide_clip::{hub, Clip};
use clipguide_guide::png_meta::{ascii_json, save_png_with_text, PARAMS_KEY};
use clipguide_guide::{GenerateConfig, Generator, PromptSchedule};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // SAFETY: first thing in main, before any thread starts.
    unsafe { clipguide_clip::tune_process() };
    let mut args = std::env::args().skip(1);
    let model = args
        .next()
        .unwrap_or_else(|| "openai/clip-vit-base-patch32".into());
    let steps: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(300);
    let out = args.next().unwrap_or_else(|| "sunflower.png".into());
    let clip = Clip::load(&hub::resolve(&model, true)?, &Device::Cpu)?;
    let cfg = GenerateConfig::new(
        256,
        256,
        steps,
        PromptSchedule::single("sunflower oil painting")?,
    );
    let mut gen = Generator::new(&clip, cfg.clone())?;
    let start = std::time::Instant::now();
    gen.run(|_, r| {
        if r.step % 25 == 0 {
            eprintln!(
                "step {:>3}  loss {:.4}  sim {:.3}  {:.1}s",
                r.step,
                r.loss,
                r.weighted_similarity(),
                start.elapsed().as_secs_f64()
            );
        }
        std::ops::ControlFlow::Continue(())
    })?;
    save_png_with_text(
        out.as_ref(),
        &gen.image()?,
        PARAMS_KEY,
        &ascii_json(&serde_json::to_string(&cfg)?),
    )?;
    let sim = gen.image_similarity()?;
    println!(
        "{out}: similarity {:.4} to {:?}",
        sim[0].similarity, sim[0].prompt
    );
    Ok(())
}
