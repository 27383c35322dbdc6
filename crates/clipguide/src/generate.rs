//! `clipguide generate`: turns arguments (and an optional schedule file or PNG) into a
//! `GenerateConfig`, runs the generator with progress, frames, GIF, log, preview and Ctrl-C handling.

use std::io::Cursor;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clipguide_clip::Clip;
use clipguide_guide::png_meta::{ascii_json, read_png_text, save_png_with_text, PARAMS_KEY};
use clipguide_guide::{
    parse_size, Distance, GenerateConfig, Generator, GuideSchedule, ImagePrompt, LrSchedule,
    ParamKind, PromptSchedule, PromptSpec, StepReport,
};
use clipguide_preview::{spawn_preview, Control, Filter, PreviewFrame, PreviewWindow, Renderer};
use clipguide_shapes::placement_contrasts;
use image::RgbImage;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

/// Default image side when neither `--size` nor the schedule or PNG gives one.
const DEFAULT_SIZE: usize = 256;
/// Default number of steps.
const DEFAULT_STEPS: usize = 300;
/// Default number of steps of the discs recipe (9 starts × 40 steps come first).
const DISCS_STEPS: usize = 200;
/// GIF frames to aim for when `--save-every` does not set the spacing.
const GIF_FRAMES: usize = 60;
/// Size of the layout `--preview-png` renders.
const PREVIEW_PNG_SIZE: (u32, u32) = (768, 576);
/// How long a paused run sleeps between looks at the preview's controls.
const PAUSE_POLL: Duration = Duration::from_millis(50);

/// Preview resampling, as spelled on the command line.
#[derive(Clone, Copy, Debug, Default, clap::ValueEnum)]
pub enum FilterArg {
    /// Nearest pixel: shows the real pixels.
    Nearest,
    /// Bilinear.
    #[default]
    Linear,
}

impl From<FilterArg> for Filter {
    fn from(f: FilterArg) -> Filter {
        match f {
            FilterArg::Nearest => Filter::Nearest,
            FilterArg::Linear => Filter::Linear,
        }
    }
}

/// Renders `frame` in the preview layout headlessly (same shaders as the window) and writes
/// it as a PNG atomically, so a reader never sees half a file.
pub fn write_preview_png(frame: &PreviewFrame, size: (u32, u32), path: &Path) -> Result<()> {
    let renderer = Renderer::new_headless().context("starting the headless preview renderer")?;
    let rgba = renderer
        .render_to_image(frame, size.0, size.1)
        .with_context(|| format!("rendering the preview at {}x{}", size.0, size.1))?;
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgba8(rgba)
        .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)?;
    clipguide_guide::png_meta::write_atomic(path, &bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Embedding distance, as spelled on the command line.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum LossArg {
    /// 2·asin(‖x̂−ŷ‖/2)², as VQGAN+CLIP.
    Spherical,
    /// 1 − cos.
    Cosine,
}

/// Starting point of a run's settings, before the schedule file and the flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RecipeArg {
    /// The built-in model's (`shapes`) when `--model` is absent, `fourier` otherwise.
    Auto,
    /// `discs` with each primitive's outline chosen by the model, a sharp edge and a smallest
    /// radius (`GenerateConfig::palette_shapes`): for a model that tells outlines apart, as
    /// the built-in one does.
    Shapes,
    /// One palette disc, nine starts, whole-image views (`GenerateConfig::palette_discs`
    /// with the built-in model's colours): for a small CLIP that knows colour and place only.
    Discs,
    /// Fourier spectrum with random cutouts (`GenerateConfig::new`): for hub CLIPs.
    Fourier,
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
    /// Image size `WxH` (default 256x256).
    #[arg(long, conflicts_with_all = ["width", "height"])]
    pub size: Option<String>,
    /// Image width (height defaults to the same).
    #[arg(long)]
    pub width: Option<usize>,
    /// Image height (width defaults to the same).
    #[arg(long)]
    pub height: Option<usize>,
    /// Settings to start from (flags override single values): `shapes` for the built-in model,
    /// `fourier` for hub CLIPs; `auto` picks by whether `--model` is given.
    #[arg(long, value_enum, default_value_t = RecipeArg::Auto)]
    pub recipe: RecipeArg,
    /// Optimisation steps (default 200 with the discs recipe, 300 with fourier).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Constant learning rate (default 0.05; a schedule file can give a warm-up/cosine).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Seed of init, cutouts and noise (default 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Image parameterisation: pixels, fourier, pyramid or primitives (soft discs on a flat
    /// background; default fourier).
    #[arg(long)]
    pub param: Option<ParamKind>,
    /// Discs of the primitives parameterisation (default 4; 1 with the discs recipe).
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
    /// Soft-edge width of the primitives, a fraction of the shorter side (default 0.03; 0.012
    /// with the shapes recipe, so thin outlines reach their colour).
    #[arg(long)]
    pub edge: Option<f64>,
    /// Smallest radius of a primitive, a fraction of the shorter side (default 0.03; 0.08 with
    /// the shapes recipe).
    #[arg(long)]
    pub min_radius: Option<f64>,
    /// Independent starts; the one the model scores best after --start-steps is continued
    /// (default 1; 9 with the discs recipe).
    #[arg(long)]
    pub starts: Option<usize>,
    /// Steps each start runs before the best is chosen (default 40, at most half the steps
    /// unless given).
    #[arg(long)]
    pub start_steps: Option<usize>,
    /// End on the image the model scored best during the run (and each start), not the last
    /// one (the default with the discs recipe; one extra forward of the model per step).
    #[arg(long, conflicts_with = "keep_last")]
    pub keep_best: bool,
    /// End on the last image (the default with the fourier recipe).
    #[arg(long)]
    pub keep_last: bool,
    /// A text the image should not be taken for (repeatable): best starts, keep-best and the
    /// palette choice then also weigh how surely the model would classify the image as the
    /// prompt rather than as these. The discs recipe contrasts a prompt that names a placement
    /// ("in the top left corner") with its eight other placements unless this is given.
    #[arg(long = "contrast", conflicts_with = "no_contrasts")]
    pub contrasts: Vec<String>,
    /// No contrasts, not even the discs recipe's placement ones.
    #[arg(long)]
    pub no_contrasts: bool,
    /// Fourier frequency decay exponent (default 1.5).
    #[arg(long)]
    pub decay: Option<f64>,
    /// Cutouts per step (default 32).
    #[arg(long)]
    pub cutn: Option<usize>,
    /// Cutout size bias; above 1 favours small cutouts (default 1).
    #[arg(long)]
    pub cut_pow: Option<f32>,
    /// Smallest cutout side as a fraction of the image's shorter side (default 0.25; 1.0 makes
    /// every view the whole image, which keeps "in the top left corner" meaning the image's).
    #[arg(long)]
    pub min_size: Option<f32>,
    /// Probability of a left-right flip per cutout (default 0.5; flips swap "left" and "right").
    #[arg(long)]
    pub flip: Option<f32>,
    /// Cutouts may start up to this many pixels outside the image (default 8).
    #[arg(long)]
    pub jitter: Option<usize>,
    /// Max std of the per-cutout Gaussian noise (default 0.1).
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
    #[arg(long)]
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

fn parse_prompts(texts: &[String]) -> Result<Vec<(usize, PromptSpec)>> {
    texts
        .iter()
        .map(|t| {
            PromptSpec::parse(t)
                .map(|p| (0, p))
                .with_context(|| format!("prompt {t:?}"))
        })
        .collect()
}

/// The stored config of a PNG written by `generate`.
pub fn config_from_png(path: &Path) -> Result<GenerateConfig> {
    let text = read_png_text(path, PARAMS_KEY)?.with_context(|| {
        format!(
            "{} has no `{PARAMS_KEY}` text chunk: only PNGs written by `clipguide generate` can be re-made",
            path.display()
        )
    })?;
    let v: Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: the stored parameters are not JSON", path.display()))?;
    let config = v.get("config").cloned().unwrap_or(v);
    serde_json::from_value(config).with_context(|| {
        format!(
            "{}: the stored parameters do not match this version's format",
            path.display()
        )
    })
}

/// The built-in model's colour words' sRGB values (the README lists them).
fn builtin_palette() -> Vec<[u8; 3]> {
    clipguide_shapes::palette::Palette::srgb()
}

/// Parses `--palette`: `builtin`, `any`, or `#rrggbb,#rrggbb,...`.
pub fn parse_palette(s: &str) -> Result<Option<Vec<[u8; 3]>>> {
    match s.trim() {
        "builtin" => return Ok(Some(builtin_palette())),
        "any" => return Ok(None),
        _ => {}
    }
    let colour = |c: &str| -> Option<[u8; 3]> {
        let hex = c.trim().strip_prefix('#')?;
        if hex.len() != 6 || !hex.is_ascii() {
            return None;
        }
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
        Some([byte(0)?, byte(2)?, byte(4)?])
    };
    s.split(',')
        .map(|c| {
            colour(c).with_context(|| {
                format!("--palette: {c:?} is not a colour; give `builtin`, `any` or a comma list such as #dc1e1e,#1eaa32")
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// Builds the run's config: PNG or schedule file or recipe defaults, then the flags on top.
/// `builtin_model` says whether the run uses the built-in model (`--recipe auto`).
pub fn build_config(args: &GenerateArgs, builtin_model: bool) -> Result<GenerateConfig> {
    // `discs` here means either palette recipe (shapes or discs): they share the defaults below.
    let (discs, shapes) = match args.recipe {
        RecipeArg::Auto => (builtin_model, builtin_model),
        RecipeArg::Shapes => (true, true),
        RecipeArg::Discs => (true, false),
        RecipeArg::Fourier => (false, false),
    };
    let mut prompt_entries = parse_prompts(&args.prompts)?;
    if let Some(s) = &args.prompt_schedule {
        let sched = PromptSchedule::parse(s).context("--prompt-schedule")?;
        for (step, prompts) in sched.keyframes() {
            prompt_entries.extend(prompts.iter().map(|p| (*step, p.clone())));
        }
    }
    let typed_prompts = !prompt_entries.is_empty();
    let given_prompts = if prompt_entries.is_empty() {
        None
    } else {
        Some(PromptSchedule::from_entries(prompt_entries).context("prompts")?)
    };

    let mut cfg = if let Some(png) = &args.from_png {
        config_from_png(png)?
    } else {
        let schedule = match &args.schedule {
            Some(path) => {
                let mut s = GuideSchedule::from_file(path)?;
                if let Some(p) = &given_prompts {
                    s.prompts = p.clone();
                }
                Some(s)
            }
            None => None,
        };
        let prompts = match (&schedule, &given_prompts) {
            (Some(s), _) => s.prompts.clone(),
            (None, Some(p)) => p.clone(),
            (None, None) => bail!(
                "no prompts: give at least one PROMPT (e.g. \"a red circle:1\"), --prompt-schedule, --schedule FILE or --from-png IMAGE"
            ),
        };
        let mut c = if discs {
            let recipe = if shapes {
                GenerateConfig::palette_shapes
            } else {
                GenerateConfig::palette_discs
            };
            recipe(
                DEFAULT_SIZE,
                DEFAULT_SIZE,
                DISCS_STEPS,
                prompts,
                builtin_palette(),
            )
        } else {
            GenerateConfig::new(DEFAULT_SIZE, DEFAULT_SIZE, DEFAULT_STEPS, prompts)
        };
        if let Some(s) = schedule {
            c.schedule = s;
        }
        c
    };
    // With --from-png, new prompts replace the stored ones (and the contrasts made from them).
    let replaced_prompts = args.from_png.is_some() && given_prompts.is_some();
    if args.from_png.is_some() {
        if let Some(p) = given_prompts {
            cfg.schedule.prompts = p;
        }
    }

    if let Some(size) = &args.size {
        (cfg.width, cfg.height) = parse_size(size)?;
    }
    match (args.width, args.height) {
        (Some(w), Some(h)) => (cfg.width, cfg.height) = (w, h),
        (Some(w), None) => (cfg.width, cfg.height) = (w, w),
        (None, Some(h)) => (cfg.width, cfg.height) = (h, h),
        (None, None) => {}
    }
    let s = &mut cfg.schedule;
    if let Some(v) = args.steps {
        s.steps = v;
    }
    if let Some(v) = args.lr {
        if !(v.is_finite() && v > 0.0) {
            bail!("--lr {v}: the learning rate must be a positive number such as 0.05");
        }
        s.lr = LrSchedule::Constant { lr: v };
    }
    if let Some(v) = args.seed {
        s.seed = v;
    }
    if let Some(v) = args.cutn {
        s.cutouts.cutn = v;
        s.cutn = None;
    }
    if let Some(v) = args.cut_pow {
        s.cutouts.cut_pow = v;
        s.cut_pow = None;
    }
    if let Some(v) = args.min_size {
        s.cutouts.min_size_frac = v;
    }
    if let Some(v) = args.flip {
        s.cutouts.flip_prob = v;
    }
    if let Some(v) = args.jitter {
        s.cutouts.jitter = v;
    }
    if let Some(v) = args.noise {
        s.cutouts.noise_std = v;
    }
    if let Some(v) = args.loss {
        s.distance = match v {
            LossArg::Spherical => Distance::Spherical,
            LossArg::Cosine => Distance::Cosine,
        };
    }
    if let Some(v) = args.tv_weight {
        s.tv_weight = clipguide_guide::Keyframes::constant(v);
    }
    if let Some(v) = args.range_weight {
        s.range_weight = clipguide_guide::Keyframes::constant(v);
    }
    if let Some(v) = args.param {
        cfg.param = v;
    }
    if let Some(v) = args.primitives {
        cfg.primitives = v;
    }
    if let Some(v) = args.decay {
        cfg.decay = v;
    }
    if let Some(p) = &args.palette {
        cfg.palette = parse_palette(p)?;
    }
    if cfg.palette.is_some() && cfg.param != ParamKind::Primitives {
        if args.palette.is_some() {
            bail!("--palette applies to the primitives parameterisation only: add --param primitives, or drop --palette");
        }
        // The recipe's palette goes with its discs; another parameterisation drops it.
        cfg.palette = None;
    }
    if args.shapes {
        if cfg.param != ParamKind::Primitives {
            bail!("--shapes applies to the primitives parameterisation only: add --param primitives, or drop --shapes");
        }
        cfg.primitive_shapes = true;
    }
    if cfg.param != ParamKind::Primitives {
        // So does the shapes recipe's outline choice (its edge and floor only shape primitives).
        cfg.primitive_shapes = false;
    }
    if let Some(v) = args.edge {
        cfg.primitive_edge = v;
    }
    if let Some(v) = args.min_radius {
        cfg.primitive_min_radius = v;
    }
    if args.keep_best || args.keep_last {
        cfg.keep_best = args.keep_best;
    }
    if args.no_contrasts {
        cfg.contrasts.clear();
    } else if !args.contrasts.is_empty() {
        cfg.contrasts = args.contrasts.clone();
    } else if discs && (args.from_png.is_none() || replaced_prompts) {
        cfg.contrasts = placement_contrasts(&cfg.schedule.prompts.texts());
    }
    if let Some(v) = args.starts {
        cfg.starts = v;
    }
    match args.start_steps {
        Some(v) => cfg.start_steps = v,
        // Fewer steps than the recipe's start phase: the starts get half the run.
        None if cfg.starts > 1 && cfg.start_steps >= cfg.schedule.steps => {
            cfg.start_steps = (cfg.schedule.steps / 2).max(1)
        }
        None => {}
    }
    if let Some(p) = &args.init {
        if !p.exists() {
            bail!(
                "init image {} not found: check the path given to --init",
                p.display()
            );
        }
        cfg.init_image = Some(p.clone());
    }
    if let Some(v) = args.init_weight {
        cfg.init_weight = v;
    }
    if !args.image_prompts.is_empty() {
        cfg.image_prompts = args
            .image_prompts
            .iter()
            .map(|s| ImagePrompt::parse(s).with_context(|| format!("--image-prompt {s:?}")))
            .collect::<Result<_>>()?;
        for p in &cfg.image_prompts {
            if !p.path.exists() {
                bail!(
                    "image prompt {} not found: --image-prompt takes PATH[:weight[:stop]]",
                    p.path.display()
                );
            }
        }
    }
    if let Some(v) = args.noise_prompt_weight {
        cfg.noise_prompt_weight = v;
    }
    if args.preview_every == 0 {
        bail!("--preview-every 0: give the number of steps between preview frames, at least 1");
    }
    if args.save_every == Some(0) {
        bail!("--save-every 0: give the number of steps between frames, at least 1");
    }
    // Prompts the user typed must fit the run. A stored run that stopped early keeps the
    // keyframes it was given beyond its last step, and re-makes as it was.
    if typed_prompts || args.schedule.is_some() {
        cfg.schedule.prompts.check_within(cfg.schedule.steps)?;
    }
    cfg.validate()?;
    Ok(cfg)
}

fn params_text(cfg: &GenerateConfig) -> Result<String> {
    let v = json!({
        "generator": "clipguide",
        "version": env!("CARGO_PKG_VERSION"),
        "config": cfg,
    });
    Ok(ascii_json(&serde_json::to_string(&v)?))
}

fn frames_dir(args: &GenerateArgs) -> PathBuf {
    args.frames_dir.clone().unwrap_or_else(|| {
        let stem = args
            .output
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        args.output.with_file_name(format!("{stem}_frames"))
    })
}

fn write_gif(path: &Path, frames: &[RgbImage]) -> Result<()> {
    use image::codecs::gif::{GifEncoder, Repeat};
    let mut bytes = Vec::new();
    {
        let mut enc = GifEncoder::new_with_speed(&mut bytes, 10);
        enc.set_repeat(Repeat::Infinite)?;
        for f in frames {
            let rgba = image::DynamicImage::ImageRgb8(f.clone()).to_rgba8();
            let delay = image::Delay::from_numer_denom_ms(80, 1);
            enc.encode_frame(image::Frame::from_parts(rgba, 0, 0, delay))?;
        }
    }
    clipguide_guide::png_meta::write_atomic(path, &bytes)?;
    Ok(())
}

/// Continue unless Ctrl-C set `stop`.
fn go_on(stop: &AtomicBool) -> ControlFlow<()> {
    if stop.load(Ordering::SeqCst) {
        ControlFlow::Break(())
    } else {
        ControlFlow::Continue(())
    }
}

/// Runs `clipguide generate` with a loaded model.
pub fn run(args: GenerateArgs, model: &Clip, builtin_model: bool, json: bool) -> Result<()> {
    let mut cfg = build_config(&args, builtin_model)?;
    let steps = cfg.schedule.steps;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // A second handler in the same process (e.g. tests) is refused; the first still works.
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst));
    }
    let frames = args.save_every.map(|_| frames_dir(&args));
    if let Some(dir) = &frames {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let gif_every = args.save_every.unwrap_or((steps / GIF_FRAMES).max(1));

    let bar = |len: usize| {
        let pb = if json {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(len as u64)
        };
        pb.set_style(
            ProgressStyle::with_template(
                "{bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}, {per_sec}] {msg}",
            )
            .expect("valid template"),
        );
        pb
    };
    // Timing covers the start phase too: it/s counts every step taken, in all starts.
    let started = Instant::now();
    let mut start_phase_steps = 0usize;
    let mut gen = if cfg.starts > 1 {
        // The start phase has its own bar; Ctrl-C here keeps the best start so far.
        let starts_pb = bar(cfg.starts * cfg.start_steps);
        let gen = Generator::new_best_start(model, cfg.clone(), |start, report| {
            start_phase_steps += 1;
            starts_pb.set_position(start_phase_steps as u64);
            starts_pb.set_message(format!(
                "start {}/{} sim {:.3}",
                start + 1,
                cfg.starts,
                report.weighted_similarity()
            ));
            go_on(&stop)
        })?;
        starts_pb.finish_and_clear();
        gen
    } else {
        Generator::new(model, cfg.clone())?
    };
    let pb = bar(steps);
    let mut gif_frames = Vec::new();
    if args.gif.is_some() {
        gif_frames.push(gen.image()?);
    }
    let mut preview = if args.preview {
        LivePreview::open(args.preview_every, args.preview_filter.into())
    } else {
        None
    };
    let mut history: Vec<f32> = Vec::new();
    let mut side_error: Option<anyhow::Error> = None;
    let outcome = gen.run(|g, report: &StepReport| {
        history.push(report.weighted_similarity());
        pb.set_position((report.step + 1) as u64);
        pb.set_message(format!(
            "loss {:.4} sim {:.3}",
            report.loss,
            report.weighted_similarity()
        ));
        let done = report.step + 1;
        let mut save = || -> Result<()> {
            if let (Some(dir), Some(every)) = (&frames, args.save_every) {
                if done.is_multiple_of(every) {
                    let path = dir.join(format!("frame_{done:05}.png"));
                    g.image()?
                        .save(&path)
                        .with_context(|| format!("writing {}", path.display()))?;
                }
            }
            if args.gif.is_some() && done.is_multiple_of(gif_every) {
                gif_frames.push(g.image()?);
            }
            Ok(())
        };
        if let Err(e) = save() {
            side_error = Some(e);
            return ControlFlow::Break(());
        }
        if let Some(p) = &mut preview {
            let save_frame = || save_step_png(g, done, &args.output, &cfg);
            match p.after_step(g, done, &history, &stop, save_frame) {
                Ok(ControlFlow::Continue(())) => {}
                Ok(ControlFlow::Break(())) => return ControlFlow::Break(()),
                Err(e) => {
                    side_error = Some(e);
                    return ControlFlow::Break(());
                }
            }
        }
        go_on(&stop)
    })?;
    pb.finish_and_clear();
    // Time spent paused in the preview is not optimisation time.
    let paused_for = preview.as_ref().map_or(Duration::ZERO, |p| p.paused_for);
    let seconds = started.elapsed().saturating_sub(paused_for).as_secs_f64();
    if let Some(e) = side_error {
        return Err(e);
    }
    let done = gen.steps_done();
    let final_frame = if preview.is_some() || args.preview_png.is_some() {
        Some(PreviewFrame {
            image: gen.image()?,
            cutouts: gen.cutout_images()?,
            step: done,
            similarity: history.last().copied().unwrap_or(0.0),
            history,
            filter: args.preview_filter.into(),
        })
    } else {
        None
    };
    // The stored parameters re-make exactly this image: every schedule is a function of the
    // step index, so a run stopped early equals a run configured with fewer steps.
    cfg.schedule.steps = done;
    let image = gen.image()?;
    save_png_with_text(&args.output, &image, PARAMS_KEY, &params_text(&cfg)?)?;
    if let Some(gif) = &args.gif {
        if !done.is_multiple_of(gif_every) {
            gif_frames.push(image.clone());
        }
        write_gif(gif, &gif_frames)?;
    }
    let final_similarity = gen.image_similarity()?;
    if let Some(log) = &args.log {
        let v = json!({
            "config": cfg,
            "stopped_early": outcome.stopped_early,
            "seconds": seconds,
            "final_image_similarity": final_similarity,
            "steps": outcome.reports,
        });
        clipguide_guide::png_meta::write_atomic(log, serde_json::to_string_pretty(&v)?.as_bytes())?;
    }
    // Steps taken: the starts' (the winner's included) plus the ones after them.
    let taken = start_phase_steps + outcome.reports.len();
    let per_step = seconds / taken.max(1) as f64;
    if json {
        println!(
            "{}",
            serde_json::to_string(&json!({
                "output": args.output,
                "steps": done,
                "steps_taken": taken,
                "stopped_early": outcome.stopped_early,
                "seconds": seconds,
                "seconds_per_step": per_step,
                "final_image_similarity": final_similarity,
            }))?
        );
    } else {
        if outcome.stopped_early {
            eprintln!("stopped after {done} of {steps} steps; writing the current image");
        }
        let starts = if start_phase_steps > 0 {
            format!(" after {} starts", cfg.starts)
        } else {
            String::new()
        };
        eprintln!(
            "{} ({}x{}, {done} steps{starts}, {taken} taken, {:.2} it/s)",
            args.output.display(),
            cfg.width,
            cfg.height,
            1.0 / per_step
        );
        for p in &final_similarity {
            eprintln!(
                "  similarity {:.4}  weight {:>5}  {}",
                p.similarity, p.weight, p.prompt
            );
        }
    }
    if let (Some(path), Some(frame)) = (&args.preview_png, &final_frame) {
        write_preview_png(frame, PREVIEW_PNG_SIZE, path)?;
    }
    // Last, because it may keep the window up until the user closes it.
    if let (Some(p), Some(frame)) = (preview, final_frame) {
        p.finish(frame);
    }
    Ok(())
}

/// `OUTPUT-stepN.png` beside the output: the image as it is at step `done`, with the
/// parameters that re-make it (a run is a function of the step index, as for Ctrl-C).
fn save_step_png(g: &Generator, done: usize, output: &Path, cfg: &GenerateConfig) -> Result<()> {
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let path = output.with_file_name(format!("{stem}-step{done}.png"));
    let mut cfg = cfg.clone();
    cfg.schedule.steps = done;
    save_png_with_text(&path, &g.image()?, PARAMS_KEY, &params_text(&cfg)?)
        .with_context(|| format!("saving the preview frame to {}", path.display()))?;
    eprintln!("saved {}", path.display());
    Ok(())
}

/// The optimiser's side of the live window: frames out through a one-slot channel it only
/// `try_send`s to (so it never waits on drawing), controls in through a channel it polls.
struct LivePreview {
    window: PreviewWindow,
    frames: SyncSender<PreviewFrame>,
    controls: Receiver<Control>,
    every: usize,
    filter: Filter,
    paused: bool,
    paused_for: Duration,
}

impl LivePreview {
    /// The window, or `None` after saying on one line why there is none: the run goes on.
    fn open(every: usize, filter: Filter) -> Option<LivePreview> {
        let (frames, frames_rx) = sync_channel::<PreviewFrame>(1);
        let (controls_tx, controls) = channel::<Control>();
        match spawn_preview(frames_rx, controls_tx) {
            Ok(window) => Some(LivePreview {
                window,
                frames,
                controls,
                every,
                filter,
                paused: false,
                paused_for: Duration::ZERO,
            }),
            Err(e) => {
                let reason = e.to_string().replace('\n', " ");
                eprintln!("preview unavailable: {reason}; continuing without it");
                None
            }
        }
    }

    /// After step `done`: sends a frame when one is due, acts on the window's keys and, while
    /// paused, waits here (still honouring Esc and Ctrl-C). `Break` ends the run.
    fn after_step(
        &mut self,
        g: &Generator,
        done: usize,
        history: &[f32],
        ctrl_c: &AtomicBool,
        mut save_frame: impl FnMut() -> Result<()>,
    ) -> Result<ControlFlow<()>> {
        if done.is_multiple_of(self.every) && self.window.is_open() {
            self.send(g, done, history)?;
        }
        let mut pause_started: Option<Instant> = None;
        loop {
            while let Ok(control) = self.controls.try_recv() {
                match control {
                    Control::TogglePause => self.paused = !self.paused,
                    Control::SaveFrame => save_frame()?,
                    Control::Stop => {
                        self.end_pause(pause_started);
                        return Ok(ControlFlow::Break(()));
                    }
                }
            }
            // A closed window can no longer unpause the run, so it resumes.
            if !self.paused || !self.window.is_open() || ctrl_c.load(Ordering::SeqCst) {
                self.end_pause(pause_started);
                return Ok(ControlFlow::Continue(()));
            }
            pause_started.get_or_insert_with(Instant::now);
            std::thread::sleep(PAUSE_POLL);
        }
    }

    fn end_pause(&mut self, started: Option<Instant>) {
        if let Some(t) = started {
            self.paused_for += t.elapsed();
        }
    }

    fn send(&self, g: &Generator, done: usize, history: &[f32]) -> Result<()> {
        let frame = PreviewFrame {
            image: g.image()?,
            cutouts: g.cutout_images()?,
            step: done,
            similarity: history.last().copied().unwrap_or(0.0),
            history: history.to_vec(),
            filter: self.filter,
        };
        // Full: the window has not drawn the last frame yet, so this one is dropped rather
        // than waited for. Disconnected: the window was closed; the run goes on.
        let _ = self.frames.try_send(frame);
        Ok(())
    }

    /// Shows the final frame and, when someone is at the terminal, keeps the window up until
    /// they close it; scripts and pipes get their exit at once.
    fn finish(self, frame: PreviewFrame) {
        use std::io::IsTerminal;
        // The slot may still hold an older frame; give the window a moment to take it.
        let deadline = Instant::now() + Duration::from_millis(500);
        let mut frame = Some(frame);
        while let Some(f) = frame.take() {
            match self.frames.try_send(f) {
                Err(std::sync::mpsc::TrySendError::Full(f)) if Instant::now() < deadline => {
                    frame = Some(f);
                    std::thread::sleep(Duration::from_millis(10));
                }
                _ => {}
            }
        }
        drop(self.frames);
        if self.window.is_open() && std::io::stdin().is_terminal() {
            eprintln!("preview: showing the final image; close the window to exit");
            self.window.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: GenerateArgs,
    }

    fn args(argv: &[&str]) -> GenerateArgs {
        let mut full = vec!["generate"];
        full.extend_from_slice(argv);
        Wrap::try_parse_from(full).expect("arguments parse").args
    }

    #[test]
    fn recipe_follows_the_model_and_flags_override_it() {
        let a = args(&["a red circle"]);
        let builtin = build_config(&a, true).unwrap();
        assert_eq!(builtin.param, ParamKind::Primitives);
        assert_eq!(builtin.starts, 9);
        assert_eq!(builtin.palette, Some(builtin_palette()));
        assert_eq!(builtin.schedule.steps, DISCS_STEPS);
        assert!(builtin.keep_best);
        let hub = build_config(&a, false).unwrap();
        assert_eq!(
            (hub.param, hub.starts, hub.palette, hub.keep_best),
            (ParamKind::Fourier, 1, None, false)
        );
        let kept = build_config(&args(&["x", "--keep-best"]), false).unwrap();
        assert!(kept.keep_best, "--keep-best turns it on");
        let last = build_config(&args(&["x", "--keep-last"]), true).unwrap();
        assert!(!last.keep_best, "--keep-last turns it off");
        assert_eq!(hub.schedule.steps, DEFAULT_STEPS);

        assert!(
            builtin.primitive_shapes,
            "the built-in model's recipe is shapes"
        );
        assert!(!hub.primitive_shapes);
        let forced = build_config(&args(&["x", "--recipe", "discs"]), false).unwrap();
        assert_eq!(forced.param, ParamKind::Primitives);
        assert!(!forced.primitive_shapes, "discs draws discs only");
        let shaped = build_config(&args(&["x", "--recipe", "shapes"]), false).unwrap();
        assert!(shaped.primitive_shapes && shaped.palette.is_some());
        let fourier = build_config(&args(&["x", "--recipe", "fourier"]), true).unwrap();
        assert_eq!(fourier.param, ParamKind::Fourier);
        // Another parameterisation drops the recipe's palette instead of failing.
        let px = build_config(&args(&["x", "--param", "pixels"]), true).unwrap();
        px.validate().unwrap();
        assert!(!px.primitive_shapes, "and its outline choice");
        assert_eq!((px.param, px.palette), (ParamKind::Pixels, None));

        let placed = build_config(
            &args(&["a red circle at the top on a blue background"]),
            true,
        )
        .unwrap();
        assert_eq!(placed.contrasts.len(), 8, "{:?}", placed.contrasts);
        assert!(placed
            .contrasts
            .contains(&"a red circle in the center on a blue background".to_string()));
        assert!(
            builtin.contrasts.is_empty(),
            "no placement, nothing to contrast"
        );
        let hub_placed = build_config(&args(&["a red circle at the top"]), false).unwrap();
        assert!(
            hub_placed.contrasts.is_empty(),
            "contrasts belong to the discs recipe"
        );
        let none =
            build_config(&args(&["a red circle at the top", "--no-contrasts"]), true).unwrap();
        assert!(none.contrasts.is_empty());
        let own = build_config(
            &args(&[
                "a red circle at the top",
                "--contrast",
                "a blue circle",
                "--contrast",
                "a star",
            ]),
            false,
        )
        .unwrap();
        assert_eq!(own.contrasts, ["a blue circle", "a star"]);

        let short = build_config(&args(&["x", "--steps", "30"]), true).unwrap();
        assert_eq!(short.start_steps, 15, "a short run gives its starts half");
        let own = build_config(&args(&["x", "--starts", "4", "--start-steps", "7"]), true).unwrap();
        assert_eq!((own.starts, own.start_steps), (4, 7));
        let e = build_config(&args(&["x", "--steps", "30", "--start-steps", "30"]), true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("start_steps"), "{e}");
    }

    #[test]
    fn palette_flag_parses_and_names_bad_colours() {
        assert_eq!(parse_palette("builtin").unwrap(), Some(builtin_palette()));
        assert_eq!(parse_palette("any").unwrap(), None);
        assert_eq!(
            parse_palette("#ff0000, #00Ff10").unwrap(),
            Some(vec![[255, 0, 0], [0, 255, 16]])
        );
        for bad in ["red", "#ff00", "#gg0000", "#ff0000,", "#ff0000ff"] {
            let e = parse_palette(bad).unwrap_err().to_string();
            assert!(
                e.contains("--palette") && e.contains("#dc1e1e"),
                "{bad}: {e}"
            );
        }
        let a = args(&["x", "--recipe", "fourier", "--palette", "builtin"]);
        let e = build_config(&a, false).unwrap_err().to_string();
        assert!(e.contains("--param primitives"), "{e}");
        let a = args(&["x", "--param", "primitives", "--palette", "#000000,#ffffff"]);
        let c = build_config(&a, false).unwrap();
        assert_eq!(c.palette, Some(vec![[0, 0, 0], [255, 255, 255]]));
    }

    #[test]
    fn outline_flags_set_the_primitives_and_name_their_parameterisation() {
        let a = args(&[
            "x",
            "--param",
            "primitives",
            "--shapes",
            "--edge",
            "0.02",
            "--min-radius",
            "0.05",
        ]);
        let c = build_config(&a, false).unwrap();
        assert!(c.primitive_shapes);
        assert_eq!((c.primitive_edge, c.primitive_min_radius), (0.02, 0.05));
        c.validate().unwrap();
        let e = build_config(&args(&["x", "--recipe", "fourier", "--shapes"]), false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--shapes") && e.contains("--param primitives"),
            "{e}"
        );
        // Out-of-range values are refused by `GenerateConfig::validate`, which names the field.
        let e = build_config(&args(&["x", "--edge", "0"]), true)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("primitive edge") && e.contains("(0, 0.5]"),
            "{e}"
        );
    }
}
