//! `clipguide generate --recipe world` (the built-in model's default): flags → one search of
//! the built-in world's drawings ([`clipguide_guide::search`] over
//! [`clipguide_shapes::WorldSpace`]) → the found drawing at the asked size, stored in its PNG.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clipguide_clip::Clip;
use clipguide_guide::{parse_size, search, PromptSpec, SearchSettings};
use clipguide_shapes::{
    canonical_caption, draw_content, picture_canonical_caption, Language, StoredWorldDrawing,
    WorldContent, WorldSpace, WORLD_SEARCH,
};
use indicatif::{ProgressBar, ProgressStyle};

use crate::generate::GenerateArgs;

/// Flags of gradient recipes, which a search has no use for: refused, not ignored.
fn gradient_flags(a: &GenerateArgs) -> Vec<&'static str> {
    let given = [
        ("--steps", a.steps.is_some()),
        ("--lr", a.lr.is_some()),
        ("--param", a.param.is_some()),
        ("--primitives", a.primitives.is_some()),
        ("--palette", a.palette.is_some()),
        ("--shapes", a.shapes),
        ("--edge", a.edge.is_some()),
        ("--min-radius", a.min_radius.is_some()),
        ("--start-steps", a.start_steps.is_some()),
        ("--keep-best", a.keep_best),
        ("--keep-last", a.keep_last),
        ("--contrast", !a.contrasts.is_empty()),
        ("--no-contrasts", a.no_contrasts),
        ("--decay", a.decay.is_some()),
        ("--cutn", a.cutn.is_some()),
        ("--cut-pow", a.cut_pow.is_some()),
        ("--min-size", a.min_size.is_some()),
        ("--flip", a.flip.is_some()),
        ("--jitter", a.jitter.is_some()),
        ("--noise", a.noise.is_some()),
        ("--loss", a.loss.is_some()),
        ("--tv-weight", a.tv_weight.is_some()),
        ("--range-weight", a.range_weight.is_some()),
        ("--init", a.init.is_some()),
        ("--init-weight", a.init_weight.is_some()),
        ("--image-prompt", !a.image_prompts.is_empty()),
        ("--noise-prompt-weight", a.noise_prompt_weight.is_some()),
        ("--schedule", a.schedule.is_some()),
        ("--prompt-schedule", a.prompt_schedule.is_some()),
        ("--save-every", a.save_every.is_some()),
        ("--frames-dir", a.frames_dir.is_some()),
        ("--gif", a.gif.is_some()),
        ("--log", a.log.is_some()),
        ("--from-png", a.from_png.is_some()),
        ("--preview", a.preview),
        ("--preview-png", a.preview_png.is_some()),
    ];
    given.iter().filter(|g| g.1).map(|g| g.0).collect()
}

/// Whether `generate` runs the world search: `--recipe world`, or `auto` with the built-in
/// model, unless the run comes from a stored PNG or a schedule file (those are gradient runs,
/// and re-make as they were made).
pub fn is_world(args: &GenerateArgs, builtin_model: bool) -> bool {
    let gradient_start = args.from_png.is_some() || args.schedule.is_some();
    args.recipe == "world" || (args.recipe == "auto" && builtin_model && !gradient_start)
}

/// The prompts as (text, weight); a stop step has no meaning in a search.
fn prompts(args: &GenerateArgs) -> Result<Vec<(String, f32)>> {
    if args.prompts.is_empty() {
        bail!("no prompt: give the text to draw, e.g. clipguide generate \"a red star on a blue background\"");
    }
    args.prompts
        .iter()
        .map(|p| {
            let spec = PromptSpec::parse(p).with_context(|| format!("prompt `{p}`"))?;
            if spec.stop.is_some() {
                bail!(
                    "prompt `{p}`: a stop step needs a gradient recipe (the world recipe searches once); drop `:STOP` or add --recipe shapes"
                );
            }
            Ok((spec.text, spec.weight))
        })
        .collect()
}

/// Runs the world search and writes the image.
pub fn run(args: &GenerateArgs, model: &Clip, builtin_model: bool, json: bool) -> Result<()> {
    let refused = gradient_flags(args);
    if !refused.is_empty() {
        let how = if builtin_model && args.recipe == "auto" {
            "the built-in model's recipe, `world`,"
        } else {
            "the `world` recipe"
        };
        bail!(
            "{} {} for gradient recipes: {how} searches the built-in world's drawings and has no use for {}; drop {} or add --recipe shapes (or fourier)",
            refused.join(", "),
            if refused.len() == 1 { "is a setting" } else { "are settings" },
            if refused.len() == 1 { "it" } else { "them" },
            if refused.len() == 1 { "it" } else { "them" },
        );
    }
    let (width, height) = match (&args.size, args.width, args.height) {
        (Some(s), _, _) => parse_size(s)?,
        (None, w, h) => {
            let w = w.or(h).unwrap_or(256);
            (w, h.unwrap_or(w))
        }
    };
    if width != height {
        bail!("--size {width}x{height}: the world recipe draws square images; give one side, e.g. --size {}", width.max(height));
    }
    if !(16..=4096).contains(&width) {
        bail!("--size {width}: give a side between 16 and 4096 pixels");
    }
    let prompts = prompts(args)?;
    let settings = SearchSettings {
        starts: args.starts.unwrap_or(WORLD_SEARCH.starts),
        seed: args.seed.unwrap_or(0),
        ..WORLD_SEARCH
    };
    settings.validate()?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst));
    }
    // After every check of the command line, so an error stays the first line.
    let unknown_words = if builtin_model {
        crate::vocab_notice::unknown_words_notice(prompts.iter().map(|p| p.0.as_str()))
    } else {
        Vec::new()
    };
    let bar = if json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(settings.starts as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} start {pos}/{len} [{elapsed_precise}] {msg}")
            .expect("static template"),
    );
    let outcome = search(
        model,
        &prompts,
        &WorldSpace,
        &settings,
        &mut |p| {
            bar.set_position(p.start as u64);
            bar.set_message(format!("{} drawings scored, best {:.3}", p.scored, p.best));
        },
        &stop,
    )?;
    bar.finish_and_clear();
    let image = draw_content(&outcome.point, width as u32);
    let stored = StoredWorldDrawing {
        version: StoredWorldDrawing::VERSION,
        prompts: prompts.clone(),
        search: settings,
        content: outcome.point.clone(),
    };
    clipguide_guide::png_meta::save_png_with_text(
        &args.output,
        &image,
        StoredWorldDrawing::PNG_KEYWORD,
        &clipguide_guide::png_meta::ascii_json(&serde_json::to_string(&stored)?),
    )?;
    let drew = match &outcome.point {
        WorldContent::Shapes { scene, style } => clipguide_shapes::styled_caption(
            &canonical_caption(scene),
            *style,
            Language::English,
            0,
        ),
        WorldContent::Picture(spec) => picture_canonical_caption(spec, Language::English),
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "output": args.output,
                "recipe": "world",
                "width": width,
                "height": height,
                "score": outcome.score,
                "scored": outcome.scored,
                "stopped": outcome.stopped,
                "drew": drew,
                "content": outcome.point,
                "unknown_words": unknown_words,
            }))?
        );
    } else {
        if outcome.stopped {
            eprintln!("stopped: wrote the best drawing found so far");
        }
        println!(
            "wrote {} ({width}x{height}): {drew} (score {:.3}, {} drawings scored)",
            args.output.display(),
            outcome.score,
            outcome.scored
        );
    }
    Ok(())
}
