//! Overrides: a user's changes to a recipe, a schedule file or a stored run, applied by field
//! name with the rules that tie fields together, giving the run's [`GenerateConfig`].
//!
//! The layers, as ripgrep layers its configuration: raw values (a CLI's flags, a GUI's
//! fields) become an [`Overrides`]; [`plan_run`] applies it to a [`Start`] under a [`Recipe`];
//! the result is one library run ([`crate::run::generate`]).

use crate::config::{GenerateConfig, ImagePrompt};
use crate::error::{GuideError, Result};
use crate::loss::Distance;
use crate::optim::LrSchedule;
use crate::param::Param;
use crate::recipe::Recipe;
use crate::schedule::{GuideSchedule, Keyframes, PromptSchedule};

/// Where a run's settings start, before the overrides.
#[derive(Clone, Debug)]
pub enum Start {
    /// The recipe's settings for the prompts of the overrides.
    Recipe,
    /// A whole schedule (a schedule file); the overrides' prompts, if any, replace its own.
    Schedule(GuideSchedule),
    /// A stored run, to re-make (see [`crate::stored`]); the overrides' prompts, if any,
    /// replace its own, and the recipe's contrasts follow the new prompts.
    Stored(GenerateConfig),
}

/// Which contrasts a run weighs.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum ContrastChoice {
    /// The start's: the recipe's rule for new prompts, a stored run's own otherwise.
    #[default]
    Start,
    /// None, not even the recipe's.
    None,
    /// These texts instead.
    These(Vec<String>),
}

/// The primitives' colours.
#[derive(Clone, Debug, PartialEq)]
pub enum PaletteChoice {
    /// Any colour.
    Any,
    /// These sRGB colours.
    Colours(Vec<[u8; 3]>),
}

impl PaletteChoice {
    /// Parses `any`, `builtin` (the colours given as `builtin`) or a comma list of `#rrggbb`.
    pub fn parse(s: &str, builtin: &[[u8; 3]]) -> Result<Self> {
        match s.trim() {
            "builtin" => return Ok(Self::Colours(builtin.to_vec())),
            "any" => return Ok(Self::Any),
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
                colour(c).ok_or_else(|| {
                    GuideError::invalid(
                        "palette",
                        format!("{c:?} is not a colour; give `builtin`, `any` or a comma list such as #dc1e1e,#1eaa32"),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()
            .map(Self::Colours)
    }
}

/// A user's changes, each `None` (or empty, or `false`) when not given. Field names are the
/// settings' own; errors name them.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// Prompts typed by the user (replace a schedule file's or stored run's); their keyframes
    /// must lie within the run.
    pub prompts: Option<PromptSchedule>,
    /// Image width and height.
    pub size: Option<(usize, usize)>,
    /// Optimisation steps.
    pub steps: Option<usize>,
    /// A constant learning rate.
    pub lr: Option<f64>,
    /// Seed.
    pub seed: Option<u64>,
    /// Parameterisation by name (`pixels`, `fourier`, `pyramid`, `primitives`): a different
    /// kind starts from its defaults, the same kind keeps the start's settings.
    pub param: Option<String>,
    /// Fourier decay.
    pub decay: Option<f64>,
    /// Primitives count.
    pub primitives: Option<usize>,
    /// Primitives' colours.
    pub palette: Option<PaletteChoice>,
    /// Let the model choose each primitive's outline (`Some(false)`: discs only).
    pub outlines: Option<bool>,
    /// Primitives' soft-edge width.
    pub edge: Option<f64>,
    /// Primitives' smallest radius.
    pub min_radius: Option<f64>,
    /// Independent starts.
    pub starts: Option<usize>,
    /// Steps per start; without it a run shorter than its starts' phase gives them half.
    pub start_steps: Option<usize>,
    /// End on the best image seen (`Some(true)`) or the last one (`Some(false)`).
    pub keep_best: Option<bool>,
    /// Contrasts.
    pub contrasts: ContrastChoice,
    /// Cutouts per step (replaces a ramp).
    pub cutn: Option<usize>,
    /// Cutout size bias (replaces a ramp).
    pub cut_pow: Option<f32>,
    /// Smallest cutout side, a fraction of the shorter side.
    pub min_size: Option<f32>,
    /// Flip probability.
    pub flip: Option<f32>,
    /// Cutout jitter in pixels.
    pub jitter: Option<usize>,
    /// Max std of per-cutout noise.
    pub noise: Option<f32>,
    /// Embedding distance.
    pub distance: Option<Distance>,
    /// Total-variation weight (constant).
    pub tv_weight: Option<f32>,
    /// Range-penalty weight (constant).
    pub range_weight: Option<f32>,
    /// Init image.
    pub init_image: Option<std::path::PathBuf>,
    /// Init weight.
    pub init_weight: Option<f32>,
    /// Image prompts (replace the start's).
    pub image_prompts: Vec<ImagePrompt>,
    /// Noise-prompt weight.
    pub noise_prompt_weight: Option<f32>,
}

fn only_for(setting: &'static str, kind: &str, param: &Param) -> GuideError {
    GuideError::invalid(
        setting,
        format!(
            "applies to the {kind} parameterisation only, and this run's is {}: choose the {kind} parameterisation, or drop the {setting}",
            param.name()
        ),
    )
}

/// The run that `overrides` make of `start` under `recipe`, checked.
pub fn plan_run(recipe: &Recipe, start: Start, o: &Overrides) -> Result<GenerateConfig> {
    let typed_prompts = o.prompts.is_some();
    let schedule_file = matches!(start, Start::Schedule(_));
    let (mut cfg, fresh_prompts) = match start {
        Start::Recipe => {
            let prompts = o.prompts.clone().ok_or_else(no_prompts)?;
            (recipe.config(prompts), false)
        }
        Start::Schedule(mut schedule) => {
            if let Some(p) = &o.prompts {
                schedule.prompts = p.clone();
            }
            (recipe.config_with_schedule(schedule), false)
        }
        Start::Stored(mut stored) => {
            let replaced = o.prompts.is_some();
            if let Some(p) = &o.prompts {
                stored.schedule.prompts = p.clone();
            }
            (stored, replaced)
        }
    };

    if let Some(size) = o.size {
        (cfg.width, cfg.height) = size;
    }
    apply_schedule(&mut cfg.schedule, o)?;
    apply_param(&mut cfg.param, o)?;

    let sel = &mut cfg.selection;
    if let Some(v) = o.keep_best {
        sel.keep_best = v;
    }
    match &o.contrasts {
        ContrastChoice::None => sel.contrasts.clear(),
        ContrastChoice::These(c) => sel.contrasts = c.clone(),
        ContrastChoice::Start if fresh_prompts => {
            sel.contrasts = recipe.contrasts_for(&cfg.schedule.prompts)
        }
        ContrastChoice::Start => {}
    }
    if let Some(v) = o.starts {
        sel.starts = v;
    }
    match o.start_steps {
        Some(v) => sel.start_steps = v,
        // Fewer steps than the recipe's start phase: the starts get half the run.
        None if sel.starts > 1 && sel.start_steps >= cfg.schedule.steps => {
            sel.start_steps = (cfg.schedule.steps / 2).max(1)
        }
        None => {}
    }

    if let Some(p) = &o.init_image {
        if !p.exists() {
            return Err(GuideError::Image {
                path: p.display().to_string(),
                problem: "init image not found: check its path".into(),
            });
        }
        cfg.init_image = Some(p.clone());
    }
    if let Some(v) = o.init_weight {
        cfg.init_weight = v;
    }
    if !o.image_prompts.is_empty() {
        for p in &o.image_prompts {
            if !p.path.exists() {
                return Err(GuideError::Image {
                    path: p.path.display().to_string(),
                    problem: "image prompt not found: an image prompt is PATH[:weight[:stop]]"
                        .into(),
                });
            }
        }
        cfg.image_prompts = o.image_prompts.clone();
    }
    if let Some(v) = o.noise_prompt_weight {
        cfg.noise_prompt_weight = v;
    }
    // Prompts the user typed must fit the run. A stored run that stopped early keeps the
    // keyframes it was given beyond its last step, and re-makes as it was.
    if typed_prompts || schedule_file {
        cfg.schedule.prompts.check_within(cfg.schedule.steps)?;
    }
    cfg.validate()?;
    Ok(cfg)
}

fn no_prompts() -> GuideError {
    GuideError::invalid(
        "prompts",
        "none given: give at least one prompt (e.g. \"a red circle:1\"), a prompt schedule, a schedule file or a stored run",
    )
}

fn apply_schedule(s: &mut GuideSchedule, o: &Overrides) -> Result<()> {
    if let Some(v) = o.steps {
        s.steps = v;
    }
    if let Some(v) = o.lr {
        if !(v.is_finite() && v > 0.0) {
            return Err(GuideError::invalid(
                "learning rate",
                format!("{v}: must be a positive number such as 0.05"),
            ));
        }
        s.lr = LrSchedule::Constant { lr: v };
    }
    if let Some(v) = o.seed {
        s.seed = v;
    }
    if let Some(v) = o.cutn {
        s.cutn = Keyframes::constant(v);
    }
    if let Some(v) = o.cut_pow {
        s.cut_pow = Keyframes::constant(v);
    }
    let c = &mut s.cutouts;
    if let Some(v) = o.min_size {
        c.min_size_frac = v;
    }
    if let Some(v) = o.flip {
        c.flip_prob = v;
    }
    if let Some(v) = o.jitter {
        c.jitter = v;
    }
    if let Some(v) = o.noise {
        c.noise_std = v;
    }
    if let Some(v) = o.distance {
        s.distance = v;
    }
    if let Some(v) = o.tv_weight {
        s.tv_weight = Keyframes::constant(v);
    }
    if let Some(v) = o.range_weight {
        s.range_weight = Keyframes::constant(v);
    }
    Ok(())
}

fn apply_param(param: &mut Param, o: &Overrides) -> Result<()> {
    if let Some(name) = &o.param {
        let wanted = Param::with_defaults(name)?;
        // Another kind starts from its own defaults: the recipe's palette and outlines go
        // with its primitives, and a recipe's decay with its spectrum.
        if wanted.name() != param.name() {
            *param = wanted;
        }
    }
    if let Some(v) = o.decay {
        match param {
            Param::Fourier { decay } => *decay = v,
            p => return Err(only_for("decay", "fourier", p)),
        }
    }
    let primitive_settings = [
        ("primitives count", o.primitives.is_some()),
        ("palette", o.palette.is_some()),
        ("outline choice", o.outlines.is_some()),
        ("primitive edge", o.edge.is_some()),
        ("primitive min radius", o.min_radius.is_some()),
    ];
    let Param::Primitives(spec) = param else {
        if let Some((setting, _)) = primitive_settings.iter().find(|(_, given)| *given) {
            return Err(only_for(setting, "primitives", param));
        }
        return Ok(());
    };
    if let Some(v) = o.primitives {
        spec.count = v;
    }
    match &o.palette {
        Some(PaletteChoice::Any) => spec.palette = None,
        Some(PaletteChoice::Colours(c)) => spec.palette = Some(c.clone()),
        None => {}
    }
    if let Some(v) = o.outlines {
        spec.outlines = v;
    }
    if let Some(v) = o.edge {
        spec.edge = v;
    }
    if let Some(v) = o.min_radius {
        spec.min_radius = v;
    }
    Ok(())
}
