//! `clipguide generate`: flags → [`Overrides`] on the model's recipe → one library run
//! ([`clipguide_guide::generate`]) with a progress bar, Ctrl-C and the preview as observers.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::progress::{report, Progress};
use crate::render::FilterArg;
use anyhow::{Context, Result};
use clipguide_clip::Clip;
use clipguide_guide::{
    parse_size, plan_run, ContrastChoice, Distance, Generator, GuideSchedule, ImagePrompt,
    Observer, Overrides, PaletteChoice, PromptSchedule, PromptSpec, RunOutputs, Start, StoredRun,
};
use clipguide_preview::PreviewPng;
use clipguide_shapes::palette::Palette;
use clipguide_shapes::recipe;

/// Embedding distance, as spelled on the command line.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum LossArg {
    /// 2·asin(‖x̂−ŷ‖/2)², as VQGAN+CLIP.
    Spherical,
    /// 1 − cos.
    Cosine,
}

/// Arguments of `clipguide generate`.
#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// Prompts, each `text[:weight[:stop]]`; a negative weight pushes away, `stop` is the step
    /// from which the prompt no longer counts. Every `:` starts a field: write `\:` for a colon
    /// inside the text.
    pub prompts: Vec<String>,
    /// Output PNG (the generation parameters are stored in it).
    #[arg(short, long, default_value = "out.png")]
    pub output: PathBuf,
    /// Image size `WxH`.
    #[arg(long, conflicts_with_all = ["width", "height"])]
    pub size: Option<String>,
    /// Image width (height defaults to the same).
    #[arg(long)]
    pub width: Option<usize>,
    /// Image height (width defaults to the same).
    #[arg(long)]
    pub height: Option<usize>,
    /// Settings to start from (flags override single values): `auto` is the model's own recipe
    /// (the built-in model's is `world`, a search of its world's drawings; any other CLIP's
    /// `fourier`). `world` takes only the prompts, size, seed and --starts.
    #[arg(long, default_value = "auto")]
    pub recipe: String,
    /// Optimisation steps.
    #[arg(long)]
    pub steps: Option<usize>,
    /// Constant learning rate (a schedule file can give a warm-up/cosine).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Seed of init, cutouts and noise (default 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Image parameterisation: pixels, fourier, pyramid or primitives (soft discs on a flat
    /// background); another kind than the recipe's starts from its own defaults.
    #[arg(long)]
    pub param: Option<String>,
    /// Discs of the primitives parameterisation.
    #[arg(long)]
    pub primitives: Option<usize>,
    /// Colours the primitives may take: `builtin` (the built-in model's colour words, see
    /// README) or a comma list of `#rrggbb`; `any` lifts the restriction.
    #[arg(long)]
    pub palette: Option<String>,
    /// Let the model choose each primitive's outline (circle, square, triangle, star, cross,
    /// ring) by scoring every one, as the shapes recipe does; primitives only.
    #[arg(long)]
    pub shapes: bool,
    /// Soft-edge width of the primitives, a fraction of the shorter side (sharp with the shapes
    /// recipe, so thin outlines reach their colour).
    #[arg(long)]
    pub edge: Option<f64>,
    /// Smallest radius of a primitive, a fraction of the shorter side.
    #[arg(long)]
    pub min_radius: Option<f64>,
    /// Independent starts; the one the model scores best after --start-steps is continued
    /// (with the `world` recipe: starting drawings, each improved, default 16).
    #[arg(long)]
    pub starts: Option<usize>,
    /// Steps each start runs before the best is chosen (at most half the steps unless given).
    #[arg(long)]
    pub start_steps: Option<usize>,
    /// End on the image the model scored best during the run (and each start), not the last
    /// one (one extra forward of the model per step).
    #[arg(long, conflicts_with = "keep_last")]
    pub keep_best: bool,
    /// End on the last image.
    #[arg(long)]
    pub keep_last: bool,
    /// A text the image should not be taken for (repeatable): best starts, keep-best and the
    /// palette choice then also weigh how surely the model would classify the image as the
    /// prompt rather than as these. The shapes and discs recipes contrast a prompt that names a
    /// placement ("in the top left corner") with its eight other placements unless this is given.
    #[arg(long = "contrast", conflicts_with = "no_contrasts")]
    pub contrasts: Vec<String>,
    /// No contrasts, not even the recipe's placement ones.
    #[arg(long)]
    pub no_contrasts: bool,
    /// Fourier frequency decay exponent.
    #[arg(long)]
    pub decay: Option<f64>,
    /// Cutouts per step.
    #[arg(long)]
    pub cutn: Option<usize>,
    /// Cutout size bias; above 1 favours small cutouts.
    #[arg(long)]
    pub cut_pow: Option<f32>,
    /// Smallest cutout side as a fraction of the image's shorter side (1.0 makes every view the
    /// whole image, which keeps "in the top left corner" meaning the image's).
    #[arg(long)]
    pub min_size: Option<f32>,
    /// Probability of a left-right flip per cutout (flips swap "left" and "right").
    #[arg(long)]
    pub flip: Option<f32>,
    /// Cutouts may start up to this many pixels outside the image.
    #[arg(long)]
    pub jitter: Option<usize>,
    /// Max std of the per-cutout Gaussian noise.
    #[arg(long)]
    pub noise: Option<f32>,
    /// Embedding distance (default spherical).
    #[arg(long, value_enum)]
    pub loss: Option<LossArg>,
    /// Total-variation weight (default 0).
    #[arg(long)]
    pub tv_weight: Option<f32>,
    /// Weight of the penalty on logits outside [-4, 4] (default 0).
    #[arg(long)]
    pub range_weight: Option<f32>,
    /// Start from this image.
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Pull towards the init image with this weight (default 0).
    #[arg(long)]
    pub init_weight: Option<f32>,
    /// Image prompt `PATH[:weight[:stop]]` (repeatable).
    #[arg(long = "image-prompt")]
    pub image_prompts: Vec<String>,
    /// Weight of a random target embedding drawn from the seed.
    #[arg(long)]
    pub noise_prompt_weight: Option<f32>,
    /// Guidance schedule TOML (see crates/clipguide-guide/schedules/example.toml); flags
    /// given on the command line override its values.
    #[arg(long, conflicts_with = "from_png")]
    pub schedule: Option<PathBuf>,
    /// Prompt keyframes `step:text[:weight[:stop]]` joined by `|`, steps in time order, e.g.
    /// "0:a red circle|150:a blue square" (added to the prompts).
    #[arg(long)]
    pub prompt_schedule: Option<String>,
    /// Write a frame every N steps into --frames-dir.
    #[arg(long)]
    pub save_every: Option<usize>,
    /// Folder for --save-every frames (default: OUTPUT_frames next to the output).
    #[arg(long)]
    pub frames_dir: Option<PathBuf>,
    /// Write the progression as an animated GIF.
    #[arg(long)]
    pub gif: Option<PathBuf>,
    /// Write loss and per-prompt similarity per step as JSON.
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Re-make an image from the parameters stored in a PNG written by this command (other
    /// flags override them).
    #[arg(long)]
    pub from_png: Option<PathBuf>,
    /// Show the run live in a window: Space pauses/resumes, S saves the current image as
    /// OUTPUT-stepN.png, Esc stops and writes the result. Without a display the run goes on.
    #[arg(long)]
    pub preview: bool,
    /// Send a frame to the preview every N steps.
    #[arg(long, default_value_t = 5)]
    pub preview_every: usize,
    /// Resampling of the preview's image and cutouts.
    #[arg(long, value_enum, default_value_t = FilterArg::Linear)]
    pub preview_filter: FilterArg,
    /// At the end, render the preview layout (image, cutouts, status, plot) to this PNG
    /// without a window (for servers).
    #[arg(long)]
    pub preview_png: Option<PathBuf>,
}

/// The flags as overrides of the recipe's settings (parsed here, applied by the library).
fn overrides(args: &GenerateArgs) -> Result<Overrides> {
    let mut entries = Vec::new();
    for t in &args.prompts {
        entries.push((
            0,
            PromptSpec::parse(t).with_context(|| format!("prompt {t:?}"))?,
        ));
    }
    if let Some(s) = &args.prompt_schedule {
        let sched = PromptSchedule::parse(s).context("--prompt-schedule")?;
        for (step, prompts) in sched.keyframes() {
            entries.extend(prompts.iter().map(|p| (*step, p.clone())));
        }
    }
    let prompts = match entries.is_empty() {
        true => None,
        false => Some(PromptSchedule::from_entries(entries).context("prompts")?),
    };
    let size = match (&args.size, args.width, args.height) {
        (Some(s), _, _) => Some(parse_size(s)?),
        (None, Some(w), h) => Some((w, h.unwrap_or(w))),
        (None, None, Some(h)) => Some((h, h)),
        (None, None, None) => None,
    };
    let contrasts = if args.no_contrasts {
        ContrastChoice::None
    } else if !args.contrasts.is_empty() {
        ContrastChoice::These(args.contrasts.clone())
    } else {
        ContrastChoice::Start
    };
    let image_prompts = args
        .image_prompts
        .iter()
        .map(|s| ImagePrompt::parse(s).with_context(|| format!("--image-prompt {s:?}")))
        .collect::<Result<_>>()?;
    let palette = match &args.palette {
        Some(p) => Some(PaletteChoice::parse(p, &Palette::srgb()).context("--palette")?),
        None => None,
    };
    Ok(Overrides {
        prompts,
        size,
        steps: args.steps,
        lr: args.lr,
        seed: args.seed,
        param: args.param.clone(),
        decay: args.decay,
        primitives: args.primitives,
        palette,
        outlines: args.shapes.then_some(true),
        edge: args.edge,
        min_radius: args.min_radius,
        starts: args.starts,
        start_steps: args.start_steps,
        keep_best: (args.keep_best || args.keep_last).then_some(args.keep_best),
        contrasts,
        cutn: args.cutn,
        cut_pow: args.cut_pow,
        min_size: args.min_size,
        flip: args.flip,
        jitter: args.jitter,
        noise: args.noise,
        distance: args.loss.map(|l| match l {
            LossArg::Spherical => Distance::Spherical,
            LossArg::Cosine => Distance::Cosine,
        }),
        tv_weight: args.tv_weight,
        range_weight: args.range_weight,
        init_image: args.init.clone(),
        init_weight: args.init_weight,
        image_prompts,
        noise_prompt_weight: args.noise_prompt_weight,
    })
}

/// The run the arguments ask for: a stored run, a schedule file or the recipe, with the flags
/// on top.
pub fn build_config(
    args: &GenerateArgs,
    builtin_model: bool,
) -> Result<clipguide_guide::GenerateConfig> {
    // `auto`: the model's own recipe.
    let recipe = match args.recipe.as_str() {
        "auto" => recipe::for_model(builtin_model),
        name => recipe::by_name(name).context("--recipe")?,
    };
    let start = match (&args.from_png, &args.schedule) {
        (Some(png), _) => Start::Stored(StoredRun::from_png(png)?.into_config()),
        (None, Some(path)) => Start::Schedule(GuideSchedule::from_file(path)?),
        (None, None) => Start::Recipe,
    };
    Ok(plan_run(&recipe, start, &overrides(args)?)?)
}

/// Opens the live window, or says on one line why there is none: the run goes on without.
fn live_preview(
    args: &GenerateArgs,
    stop: &Arc<AtomicBool>,
) -> Option<clipguide_preview::LivePreview> {
    let output = args.output.clone();
    let save = Box::new(move |g: &Generator, done: usize| {
        let path = clipguide_guide::save_step_png(g, done, &output)?;
        eprintln!("saved {}", path.display());
        Ok(())
    });
    let filter = args.preview_filter.into();
    match clipguide_preview::LivePreview::open(args.preview_every, filter, stop.clone(), save) {
        Ok(p) => Some(p),
        Err(e) => {
            let reason = e.to_string().replace('\n', " ");
            eprintln!("preview unavailable: {reason}; continuing without it");
            None
        }
    }
}

/// Runs `clipguide generate` with a loaded model.
pub fn run(args: GenerateArgs, model: &Clip, builtin_model: bool, json: bool) -> Result<()> {
    if crate::generate_world::is_world(&args, builtin_model) {
        return crate::generate_world::run(&args, model, builtin_model, json);
    }
    if args.save_every == Some(0) {
        anyhow::bail!("--save-every 0: give the number of steps between frames, at least 1");
    }
    if args.preview_every == 0 {
        anyhow::bail!(
            "--preview-every 0: give the number of steps between preview frames, at least 1"
        );
    }
    let cfg = build_config(&args, builtin_model)?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // A second handler in the same process (e.g. tests) is refused; the first still works.
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst));
    }
    let frames = args.save_every.map(|every| {
        let dir = args.frames_dir.clone();
        (
            dir.unwrap_or_else(|| RunOutputs::default_frames_dir(&args.output)),
            every,
        )
    });
    let mut outputs = RunOutputs::new(
        args.output.clone(),
        frames,
        args.gif.clone(),
        args.log.clone(),
        cfg.schedule.steps,
    )?;
    let sel = &cfg.selection;
    let mut progress = Progress::new(json, sel.starts, sel.start_steps, cfg.schedule.steps);
    let mut preview_png = args
        .preview_png
        .clone()
        .map(|p| PreviewPng::new(p, args.preview_filter.into()));
    let mut live = args.preview.then(|| live_preview(&args, &stop)).flatten();
    let mut observers: Vec<&mut dyn Observer> = vec![&mut progress, &mut outputs];
    if let Some(p) = &mut preview_png {
        observers.push(p);
    }
    if let Some(p) = &mut live {
        observers.push(p);
    }
    // After every check of the command line, so an error stays the first line.
    let unknown_words = if builtin_model {
        crate::vocab_notice::unknown_words_notice(cfg.schedule.prompts.texts())
    } else {
        Vec::new()
    };
    let summary = clipguide_guide::generate(model, &cfg, &mut observers, &stop)?;
    report(&args, &summary, cfg.schedule.steps, &unknown_words, json)?;
    // Last, because it may keep the window up until the user closes it.
    if let Some(p) = live {
        if p.is_open() && std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            eprintln!("preview: showing the final image; close the window to exit");
        }
        p.finish();
    }
    Ok(())
}

/// `generate --help` with each recipe's defaults beside the flags they set, taken from the
/// recipes themselves ([`clipguide_guide::Recipe::defaults`]), so the help cannot drift from what runs.
pub fn help_with_recipe_defaults(mut cmd: clap::Command) -> clap::Command {
    let recipes = recipe::all();
    let tables: Vec<_> = recipes.iter().map(|r| (r.name, r.defaults())).collect();
    for (i, (setting, _)) in tables[0].1.iter().enumerate() {
        let values: Vec<String> = tables
            .iter()
            .map(|(name, t)| format!("{name}: {}", t[i].1))
            .collect();
        let line = format!("[recipe defaults: {}]", values.join(", "));
        cmd = cmd.mut_arg(*setting, |a| {
            let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            a.help(format!("{help} {line}"))
        });
    }
    let mut listing = vec![format!(
        "{}: {}",
        recipe::BUILTIN_DEFAULT_RECIPE,
        recipe::WORLD_RECIPE_SUMMARY
    )];
    listing.extend(recipes.iter().map(|r| format!("{}: {}", r.name, r.summary)));
    let mut names = vec!["auto", recipe::BUILTIN_DEFAULT_RECIPE];
    names.extend(recipes.iter().map(|r| r.name));
    cmd.mut_arg("recipe", |a| {
        let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
        a.help(format!("{help}. {}", listing.join("; ")))
            .value_parser(clap::builder::PossibleValuesParser::new(names))
    })
    .after_help(format!(
        "Without --model the built-in model runs with the `{}` recipe; with --model, `fourier`.",
        recipe::BUILTIN_DEFAULT_RECIPE
    ))
}
