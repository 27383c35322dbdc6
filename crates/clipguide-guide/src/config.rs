//! [`GenerateConfig`]: everything that determines a run, as plain data (serde), so a run can
//! be stored in a PNG ([`crate::stored`]) and re-made.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{GuideError, Result};
use crate::param::Param;
use crate::recipe::Recipe;
use crate::schedule::{GuideSchedule, PromptSchedule};

/// An image whose CLIP embedding is a target, like a text prompt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagePrompt {
    /// The image file.
    pub path: PathBuf,
    /// Loss weight; negative pushes away.
    #[serde(default = "crate::schedule::one")]
    pub weight: f32,
    /// The prompt contributes nothing from this step on.
    #[serde(default)]
    pub stop: Option<usize>,
}

impl ImagePrompt {
    /// Parses `PATH[:weight[:stop]]` as text prompts are read: every unescaped colon starts
    /// a field, so a colon inside the path is written `\:`.
    pub fn parse(s: &str) -> Result<Self> {
        let spec = crate::schedule::PromptSpec::parse(s)?;
        Ok(Self {
            path: PathBuf::from(spec.text),
            weight: spec.weight,
            stop: spec.stop,
        })
    }
}

/// Parses an image size `WxH` (also `W×H`, or a single number for a square).
pub fn parse_size(s: &str) -> Result<(usize, usize)> {
    let bad = || {
        GuideError::invalid(
            "image size",
            format!("`{s}`: expected WIDTHxHEIGHT with both from 1 to 8192, e.g. 256x256"),
        )
    };
    let t = s.trim().to_ascii_lowercase().replace('×', "x");
    let (w, h) = match t.split_once('x') {
        Some((w, h)) => (w.trim(), h.trim()),
        None => (t.as_str(), t.as_str()),
    };
    let w: usize = w.parse().map_err(|_| bad())?;
    let h: usize = h.parse().map_err(|_| bad())?;
    if !(1..=8192).contains(&w) || !(1..=8192).contains(&h) {
        return Err(bad());
    }
    Ok((w, h))
}

/// What the model chooses by its own judgement rather than by gradient: the best of several
/// starts, the best image seen, and the alternatives the image must not be taken for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    /// Independent starts (1: none). With more, [`crate::Generator::new_best_start`] runs each
    /// start for `start_steps` steps from its own init, keeps the one whose whole image the
    /// model scores best, and continues it to the schedule's steps.
    #[serde(default = "one")]
    pub starts: usize,
    /// Steps each start runs before the best is chosen (counted in the winner's steps).
    #[serde(default = "default_start_steps")]
    pub start_steps: usize,
    /// Score the whole image after every step and end (each start too) on the best image seen
    /// rather than the last; costs one unaugmented forward of the model per step. Scores use
    /// the weights of the step they were taken at, so with prompts that change over the run
    /// the comparison mixes weightings.
    #[serde(default)]
    pub keep_best: bool,
    /// Texts the image should *not* be taken for: alternatives a zero-shot classifier would
    /// weigh against the prompts (the prompt with another placement, say). With any, every
    /// whole-image score (best start, keep-best, palette choice) adds to the similarity the
    /// log-probability that the model classifies the image as the prompts rather than as one of
    /// these ([`crate::Generator::image_score`], [`crate::contrast_score`]); the gradient is
    /// unchanged.
    #[serde(default)]
    pub contrasts: Vec<String>,
}

fn one() -> usize {
    1
}
fn default_start_steps() -> usize {
    Selection::DEFAULT_START_STEPS
}

impl Default for Selection {
    /// One start, ending on the last image, no contrasts.
    fn default() -> Self {
        Self {
            starts: 1,
            start_steps: Self::DEFAULT_START_STEPS,
            keep_best: false,
            contrasts: Vec::new(),
        }
    }
}

impl Selection {
    /// Steps per start when none is given.
    pub const DEFAULT_START_STEPS: usize = 30;
    /// Most starts a run may ask for.
    pub const MAX_STARTS: usize = 64;

    /// Checks every field against the run's `steps`, naming the one at fault.
    pub fn validate(&self, steps: usize) -> Result<()> {
        if !(1..=Self::MAX_STARTS).contains(&self.starts) {
            return Err(GuideError::invalid(
                "starts",
                format!(
                    "{}: give between 1 and {} (1 runs a single start)",
                    self.starts,
                    Self::MAX_STARTS
                ),
            ));
        }
        if self.starts > 1 && !(1..steps).contains(&self.start_steps) {
            return Err(GuideError::invalid(
                "start_steps",
                format!(
                    "{}: with {} starts each needs at least 1 step and fewer than the run's {} steps",
                    self.start_steps, self.starts, steps
                ),
            ));
        }
        if let Some(i) = self.contrasts.iter().position(|c| c.trim().is_empty()) {
            return Err(GuideError::invalid(
                "contrasts",
                format!("contrast {} is empty: give the text the image should not be taken for, or drop it", i + 1),
            ));
        }
        Ok(())
    }
}

/// Everything that determines a run. Same config, same model, same bytes out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateConfig {
    /// Image width in pixels.
    pub width: usize,
    /// Image height in pixels.
    pub height: usize,
    /// The parameterisation of the image, with its settings.
    pub param: Param,
    /// Standard deviation of the random init; `None` picks the parameterisation's own
    /// ([`Param::default_init_std`]).
    #[serde(default)]
    pub init_std: Option<f64>,
    /// Start from this image (resized to width × height) instead of noise.
    #[serde(default)]
    pub init_image: Option<PathBuf>,
    /// Weight of the mean squared difference to the init image (0: only start from it).
    #[serde(default)]
    pub init_weight: f32,
    /// Images whose embeddings are targets.
    #[serde(default)]
    pub image_prompts: Vec<ImagePrompt>,
    /// Weight of a random target embedding drawn from the seed (0: none).
    #[serde(default)]
    pub noise_prompt_weight: f32,
    /// What the model chooses by judgement: starts, keep-best, contrasts.
    #[serde(default)]
    pub selection: Selection,
    /// Steps, seed, prompts over time, cutouts, losses and learning rate.
    pub schedule: GuideSchedule,
}

impl GenerateConfig {
    /// A run of `steps` steps at `width × height` towards `prompts` with the general recipe's
    /// settings ([`Recipe::fourier`]).
    pub fn new(width: usize, height: usize, steps: usize, prompts: PromptSchedule) -> Self {
        let mut c = Recipe::fourier().config(prompts);
        (c.width, c.height) = (width, height);
        c.schedule.steps = steps;
        c
    }

    /// The init std used when `init_std` is `None` ([`Param::default_init_std`]).
    pub fn default_init_std(&self) -> f64 {
        self.param.default_init_std()
    }

    /// Checks every field, naming the one at fault.
    pub fn validate(&self) -> Result<()> {
        if self.width == 0 || self.height == 0 || self.width > 8192 || self.height > 8192 {
            return Err(GuideError::invalid(
                "image size",
                format!(
                    "{}x{}: width and height must be between 1 and 8192",
                    self.width, self.height
                ),
            ));
        }
        self.param.validate()?;
        if let Some(std) = self.init_std {
            if !(std.is_finite() && std >= 0.0) {
                return Err(GuideError::invalid(
                    "init_std",
                    format!("{std} must be a non-negative number"),
                ));
            }
        }
        self.selection.validate(self.schedule.steps)?;
        for (what, w) in [
            ("init_weight", self.init_weight),
            ("noise_prompt_weight", self.noise_prompt_weight),
        ] {
            if !w.is_finite() {
                return Err(GuideError::invalid(what, format!("{w} must be finite")));
            }
        }
        self.schedule.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_image_prompts_parse() {
        assert_eq!(parse_size("256x192").unwrap(), (256, 192));
        assert_eq!(parse_size(" 64 X 32 ").unwrap(), (64, 32));
        assert_eq!(parse_size("128").unwrap(), (128, 128));
        for bad in ["", "0x10", "10x", "axb", "9000x10", "-5x5"] {
            let err = parse_size(bad).unwrap_err().to_string();
            assert!(err.contains("WIDTHxHEIGHT"), "{bad}: {err}");
        }
        let p = ImagePrompt::parse("C\\:/pics/a.png:0.5:10").unwrap();
        assert_eq!(p.path, PathBuf::from("C:/pics/a.png"));
        assert_eq!((p.weight, p.stop), (0.5, Some(10)));
        assert_eq!(ImagePrompt::parse("b.png").unwrap().weight, 1.0);
    }

    #[test]
    fn config_validation_names_the_field() {
        use crate::param::{Param, PrimitivesSpec};
        let prompts = PromptSchedule::single("a").unwrap();
        let mut c = GenerateConfig::new(0, 10, 5, prompts.clone());
        assert!(c.validate().unwrap_err().to_string().contains("image size"));
        c = GenerateConfig::new(10, 10, 5, prompts);
        c.param = Param::Fourier { decay: f64::NAN };
        assert!(c.validate().unwrap_err().to_string().contains("decay"));
        c.param = Param::Pyramid { levels: 0 };
        assert!(c.validate().unwrap_err().to_string().contains("levels"));
        c.param = Param::Fourier { decay: 1.0 };
        c.schedule.steps = 0;
        assert!(c.validate().unwrap_err().to_string().contains("steps"));
        c.schedule.steps = 5;
        let mut spec = PrimitivesSpec::new(0);
        c.param = Param::Primitives(spec.clone());
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("primitives count"));
        spec.count = 1;
        spec.palette = Some(Vec::new());
        c.param = Param::Primitives(spec.clone());
        assert!(c.validate().unwrap_err().to_string().contains("empty"));
        spec.palette = Some(vec![[255, 0, 0]]);
        spec.outlines = true;
        c.param = Param::Primitives(spec.clone());
        c.validate().unwrap();
        c.selection.starts = 0;
        assert!(c.validate().unwrap_err().to_string().contains("starts"));
        c.selection.starts = 3;
        c.selection.start_steps = 5;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("start_steps") && e.contains("fewer than"), "{e}");
        c.selection.start_steps = 2;
        c.validate().unwrap();
        // Each refusal names the field and the range it takes.
        let refused = |spec: &PrimitivesSpec, field: &str, range: &str| {
            let mut c = c.clone();
            c.param = Param::Primitives(spec.clone());
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(field) && e.contains(range), "{e}");
        };
        spec.edge = 0.0;
        refused(&spec, "primitive edge", "(0, 0.5]");
        spec.edge = 0.01;
        spec.min_radius = 0.44;
        refused(&spec, "primitive min radius", "[0, 0.4]");
    }

    #[test]
    fn config_round_trips_through_json() {
        let mut c = GenerateConfig::new(
            48,
            32,
            7,
            PromptSchedule::parse("0:a red circle|3:a blue square:-0.5:6").unwrap(),
        );
        c.param = crate::param::Param::Pyramid { levels: 3 };
        c.image_prompts.push(ImagePrompt {
            path: "x.png".into(),
            weight: 0.5,
            stop: Some(3),
        });
        let json = serde_json::to_string(&c).unwrap();
        let back: GenerateConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
    }
}
