//! Recipes: the starting settings of a run for a kind of model, as data.
//!
//! A recipe says everything a run needs besides its prompts: size, steps, parameterisation,
//! what the model chooses by judgement, learning rate and cutouts, and which contrasts follow
//! from the prompts. This crate holds the general one ([`Recipe::fourier`], for CLIPs trained on
//! photographs); a model's own world holds the recipes that suit it (the built-in model's are
//! in `clipguide-shapes`). [`crate::Overrides`] applies a user's changes on top.

use crate::augment::{CutoutStyle, Cutouts};
use crate::config::{GenerateConfig, Selection};
use crate::optim::LrSchedule;
use crate::param::Param;
use crate::schedule::{GuideSchedule, Keyframes, PromptSchedule};

/// Contrasts a recipe derives from the prompts' texts (see [`Selection::contrasts`]).
pub type ContrastRule = fn(&[&str]) -> Vec<String>;

/// The starting settings of a run for one kind of model.
#[derive(Clone, Debug)]
pub struct Recipe {
    /// The recipe's name, as users choose it.
    pub name: &'static str,
    /// One line for help texts: what the recipe is for.
    pub summary: &'static str,
    /// Image width and height.
    pub size: (usize, usize),
    /// Optimisation steps.
    pub steps: usize,
    /// Parameterisation and its settings.
    pub param: Param,
    /// Starts, keep-best and fixed contrasts.
    pub selection: Selection,
    /// Learning rate.
    pub lr: LrSchedule,
    /// Cutout settings (`out_size` is replaced by the model's input size at run time).
    pub cutouts: Cutouts,
    /// Contrasts that follow from the prompts, added to `selection.contrasts`.
    pub contrasts: Option<ContrastRule>,
}

impl Recipe {
    /// The general recipe, for CLIPs trained on photographs: a Fourier spectrum (decay 1.5) at
    /// 256², 300 steps of Adam at a constant 0.05, 32 random cutouts of at least a quarter of
    /// the image with flips, 8 px jitter and noise up to 0.1, one start, ending on the last
    /// image, spherical distance.
    pub fn fourier() -> Self {
        Self {
            name: "fourier",
            summary: "Fourier spectrum with random cutouts: for CLIPs trained on photographs (hub models)",
            size: (256, 256),
            steps: 300,
            param: Param::Fourier {
                decay: Param::DEFAULT_DECAY,
            },
            selection: Selection::default(),
            lr: LrSchedule::Constant { lr: 0.05 },
            cutouts: Cutouts {
                cutn: 32,
                cut_pow: 1.0,
                style: CutoutStyle {
                    jitter: 8,
                    noise_std: 0.1,
                    flip_prob: 0.5,
                    ..CutoutStyle::default()
                },
            },
            contrasts: None,
        }
    }

    /// The recipe's settings as `(name, value)` text, for help texts: the names are the
    /// settings' own (`size`, `steps`, `lr`, `param`, ...), `-` where the setting does not apply.
    pub fn defaults(&self) -> Vec<(&'static str, String)> {
        let prim = self.param.primitives();
        let prim_or =
            |f: &dyn Fn(&crate::param::PrimitivesSpec) -> String| prim.map_or("-".into(), f);
        let decay = match self.param {
            Param::Fourier { decay } => decay.to_string(),
            _ => "-".into(),
        };
        let (sel, cut) = (&self.selection, &self.cutouts.style);
        vec![
            ("size", format!("{}x{}", self.size.0, self.size.1)),
            ("steps", self.steps.to_string()),
            ("lr", self.lr.at(0).to_string()),
            ("param", self.param.name().to_string()),
            ("decay", decay),
            ("primitives", prim_or(&|p| p.count.to_string())),
            (
                "palette",
                prim_or(&|p| {
                    p.palette
                        .as_ref()
                        .map_or("any".into(), |c| format!("{} colours", c.len()))
                }),
            ),
            ("edge", prim_or(&|p| p.edge.to_string())),
            ("min_radius", prim_or(&|p| p.min_radius.to_string())),
            ("starts", sel.starts.to_string()),
            ("start_steps", sel.start_steps.to_string()),
            ("keep_best", sel.keep_best.to_string()),
            ("cutn", self.cutouts.cutn.to_string()),
            ("min_size", cut.min_size_frac.to_string()),
            ("flip", cut.flip_prob.to_string()),
            ("jitter", cut.jitter.to_string()),
        ]
    }

    /// The contrasts a run of this recipe weighs for `prompts`: its fixed ones and those its
    /// rule derives from the prompts.
    pub fn contrasts_for(&self, prompts: &PromptSchedule) -> Vec<String> {
        let mut all = self.selection.contrasts.clone();
        if let Some(rule) = self.contrasts {
            all.extend(rule(&prompts.texts()));
        }
        all
    }

    /// The run this recipe makes of `prompts`, with the recipe's contrasts for them.
    pub fn config(&self, prompts: PromptSchedule) -> GenerateConfig {
        self.config_with_schedule(self.schedule(prompts))
    }

    /// The run this recipe makes with a whole schedule (a schedule file): the schedule's own
    /// steps, learning rate and cutouts replace the recipe's; size, parameterisation and
    /// selection stay the recipe's.
    pub fn config_with_schedule(&self, schedule: GuideSchedule) -> GenerateConfig {
        let mut selection = self.selection.clone();
        selection.contrasts = self.contrasts_for(&schedule.prompts);
        GenerateConfig {
            width: self.size.0,
            height: self.size.1,
            param: self.param.clone(),
            init_std: None,
            init_image: None,
            init_weight: 0.0,
            image_prompts: Vec::new(),
            noise_prompt_weight: 0.0,
            selection,
            schedule,
        }
    }

    /// The recipe's schedule for `prompts`: its steps, learning rate and cutouts, every other
    /// field at the schedule format's default.
    pub fn schedule(&self, prompts: PromptSchedule) -> GuideSchedule {
        let mut s = GuideSchedule::new(self.steps, prompts);
        s.lr = self.lr.clone();
        s.cutn = Keyframes::constant(self.cutouts.cutn);
        s.cut_pow = Keyframes::constant(self.cutouts.cut_pow);
        s.cutouts = self.cutouts.style.clone();
        s
    }
}
