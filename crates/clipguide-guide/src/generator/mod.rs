//! The generation loop: a parameterised image optimised with Adam so that CLIP's embeddings of
//! its cutouts approach (or, for negative weights, leave) the prompts' embeddings.
//!
//! [`Generator`] composes the building blocks of this crate with a loaded [`Clip`]; the
//! whole-image scores and the model's choices (best start, keep-best, palette and outlines)
//! are in `scoring`, the reports in `report`.

mod report;
mod scoring;

pub use report::{weighted_similarity, PromptSimilarity, RunOutcome, StepReport};
pub use scoring::{contrast_score, CONTRAST_SCALE};

use std::collections::HashMap;
use std::ops::ControlFlow;

use candle_core::{DType, Tensor, Var};
use clipguide_clip::Clip;
use image::RgbImage;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::augment::{CutoutSpec, Cutouts};
use crate::config::GenerateConfig;
use crate::error::{GuideError, Result};
use crate::image_io::{load_rgb_tensor, tensor_to_image};
use crate::loss::total_variation;
use crate::noise::gaussian;
use crate::optim::{Adam, AdamConfig};
use crate::param::Parameterization;
use scoring::normalize_rows;

/// What a target is, for reports and logs.
#[derive(Clone, Debug)]
enum TargetKind {
    Text,
    Image { weight: f32, stop: Option<usize> },
    Noise { weight: f32 },
}

struct Target {
    label: String,
    kind: TargetKind,
    /// `[1, P]`.
    embedding: Tensor,
}

/// The parts of one forward pass.
struct Forward {
    loss: Tensor,
    /// `[B, P]` cutout embeddings, detached.
    embeddings: Tensor,
    /// `[B, 3, S, S]` cutouts in [0, 1] before normalisation, detached.
    cutouts: Tensor,
}

/// A CLIP-guided image under optimisation.
pub struct Generator<'a> {
    clip: &'a Clip,
    config: GenerateConfig,
    param: Box<dyn Parameterization>,
    vars: Vec<Var>,
    opt: Adam,
    rng: ChaCha8Rng,
    targets: Vec<Target>,
    text_index: HashMap<String, usize>,
    init: Option<Tensor>,
    image_size: usize,
    step: usize,
    last_cutouts: Option<Tensor>,
    /// With `keep_best`: the best whole-image score so far and the parameters that gave it.
    best: Option<(f32, Vec<Tensor>)>,
    /// `[K, P]` normalised embeddings of `config.selection.contrasts` (`None` without contrasts).
    contrasts: Option<Tensor>,
    /// `[T, P]` normalised embeddings of `targets`, in order (`None` without targets); built
    /// once, since every step's similarities and whole-image scores use it.
    target_matrix: Option<Tensor>,
}

/// Separates the noise-prompt stream from the main one, so adding a noise prompt does not
/// change the cutouts of a run.
const NOISE_PROMPT_STREAM: u64 = 0x6e6f_6973_6550;

impl<'a> Generator<'a> {
    /// Validates `config`, embeds every text and image prompt once, and initialises the image
    /// from the seed (or the init image). With `config.selection.starts > 1` this is start 0 only;
    /// [`Self::new_best_start`] runs them all.
    pub fn new(clip: &'a Clip, config: GenerateConfig) -> Result<Self> {
        Self::new_start(clip, config, 0)
    }

    /// Runs every start of `config` for `config.selection.start_steps` steps and returns the one whose
    /// whole image is most similar to the prompts (weighted, ties to the earlier start), ready
    /// to continue to `config.schedule.steps`. `on_step(start, report)` sees every step;
    /// `ControlFlow::Break` stops the search and returns the best start so far (the current
    /// one included). With one start this is [`Self::new`].
    ///
    /// Why: a small CLIP tells where an object belongs far better than its gradient can move it
    /// there (a disc moves only through its edge, a spectrum trades one noisy patch for another),
    /// so trying several inits and letting the model *choose* uses its zero-shot judgement.
    /// Start `i` is seeded with `seed + i`; primitives starts also place their discs on
    /// different lattice points ([`crate::PrimitivesImage::from_spec`]), so nine one-disc starts
    /// try all nine cells.
    pub fn new_best_start<F>(clip: &'a Clip, config: GenerateConfig, mut on_step: F) -> Result<Self>
    where
        F: FnMut(usize, &StepReport) -> ControlFlow<()>,
    {
        config.validate()?;
        if config.selection.starts <= 1 {
            return Self::new(clip, config);
        }
        let mut best: Option<(f32, Self)> = None;
        for start in 0..config.selection.starts {
            let mut gen = Self::new_start(clip, config.clone(), start)?;
            let mut stop = false;
            while gen.step < config.selection.start_steps && !stop {
                let report = gen.step()?;
                stop = on_step(start, &report).is_break();
            }
            let score = gen.settle()?;
            if best.as_ref().is_none_or(|(b, _)| score > *b) {
                best = Some((score, gen));
            }
            if stop {
                break;
            }
        }
        let (_, mut gen) = best.expect("at least one start ran");
        // The winner ran with its own seed; it reports (and stores in PNGs) the config asked for.
        gen.config = config;
        Ok(gen)
    }

    /// Start `start` of `config.selection.starts` as [`Self::new_best_start`] makes it: seed
    /// `seed + start`, primitives on lattice point `start`. Its [`Self::config`] carries that seed.
    pub fn new_start(clip: &'a Clip, mut config: GenerateConfig, start: usize) -> Result<Self> {
        config.validate()?;
        config.schedule.seed = config.schedule.seed.wrapping_add(start as u64);
        let mut rng = ChaCha8Rng::seed_from_u64(config.schedule.seed);
        let init = match &config.init_image {
            Some(path) => Some(load_rgb_tensor(path, config.width, config.height)?),
            None => None,
        };
        let std = config.init_std.unwrap_or_else(|| config.default_init_std());
        let param = config.param.build(
            (config.width, config.height),
            std,
            (start, config.selection.starts),
            init.as_ref(),
            &mut rng,
        )?;
        Self::assemble(clip, config, param, init, rng)
    }

    /// Like [`Self::new`] but optimising a given parameterisation (its size must match the
    /// config); the init image, if any, still serves as the init-weight target.
    pub fn with_parameterization(
        clip: &'a Clip,
        config: GenerateConfig,
        param: Box<dyn Parameterization>,
    ) -> Result<Self> {
        config.validate()?;
        if (param.width(), param.height()) != (config.width, config.height) {
            return Err(GuideError::invalid(
                "parameterisation",
                format!(
                    "is {}x{} but the config asks for {}x{}",
                    param.width(),
                    param.height(),
                    config.width,
                    config.height
                ),
            ));
        }
        let init = match &config.init_image {
            Some(path) => Some(load_rgb_tensor(path, config.width, config.height)?),
            None => None,
        };
        let rng = ChaCha8Rng::seed_from_u64(config.schedule.seed);
        Self::assemble(clip, config, param, init, rng)
    }

    fn assemble(
        clip: &'a Clip,
        config: GenerateConfig,
        param: Box<dyn Parameterization>,
        init: Option<Tensor>,
        rng: ChaCha8Rng,
    ) -> Result<Self> {
        let device = clip.device().clone();
        let image_size = clip.model.config().vision.image_size;
        let mut texts: Vec<String> = config
            .schedule
            .prompts
            .texts()
            .iter()
            .map(|t| t.to_string())
            .collect();
        let n_prompts = texts.len();
        texts.extend(config.selection.contrasts.iter().cloned());
        let mut targets = Vec::new();
        let mut text_index = HashMap::new();
        // One batch for all texts: each is embedded once per run, whatever the schedule does.
        let text_embeds = clip.embed_texts(&texts)?.to_dtype(DType::F32)?;
        let contrasts = match config.selection.contrasts.len() {
            0 => None,
            k => Some(normalize_rows(&text_embeds.narrow(0, n_prompts, k)?)?),
        };
        for (i, text) in texts[..n_prompts].iter().enumerate() {
            text_index.insert(text.clone(), targets.len());
            targets.push(Target {
                label: text.clone(),
                kind: TargetKind::Text,
                embedding: text_embeds.narrow(0, i, 1)?,
            });
        }
        for prompt in &config.image_prompts {
            let img = clip
                .load_image(&prompt.path)
                .map_err(|e| GuideError::Image {
                    path: prompt.path.display().to_string(),
                    problem: format!("cannot be used as an image prompt: {e}"),
                })?;
            targets.push(Target {
                label: format!("image:{}", prompt.path.display()),
                kind: TargetKind::Image {
                    weight: prompt.weight,
                    stop: prompt.stop,
                },
                embedding: clip.embed_images(&[img])?.to_dtype(DType::F32)?,
            });
        }
        if config.noise_prompt_weight != 0.0 {
            let mut noise_rng =
                ChaCha8Rng::seed_from_u64(config.schedule.seed ^ NOISE_PROMPT_STREAM);
            let dim = clip.model.config().projection_dim;
            targets.push(Target {
                label: "noise".into(),
                kind: TargetKind::Noise {
                    weight: config.noise_prompt_weight,
                },
                embedding: gaussian(&mut noise_rng, &[1, dim], 1.0)?.to_device(&device)?,
            });
        }
        let target_matrix = if targets.is_empty() {
            None
        } else {
            let all: Vec<Tensor> = targets.iter().map(|t| t.embedding.clone()).collect();
            Some(normalize_rows(&Tensor::cat(&all, 0)?)?)
        };
        let vars = param.params();
        let opt = Adam::new(
            vars.clone(),
            AdamConfig::adamw(config.schedule.lr.at(0), config.schedule.weight_decay),
        )?;
        let init = match init {
            Some(t) => Some(t.to_device(&device)?),
            None => None,
        };
        Ok(Self {
            clip,
            config,
            param,
            vars,
            opt,
            rng,
            targets,
            text_index,
            init,
            image_size,
            step: 0,
            last_cutouts: None,
            best: None,
            contrasts,
            target_matrix,
        })
    }

    /// The config this generator runs.
    pub fn config(&self) -> &GenerateConfig {
        &self.config
    }

    /// Steps taken so far.
    pub fn steps_done(&self) -> usize {
        self.step
    }

    /// Whether every configured step has been taken.
    pub fn is_done(&self) -> bool {
        self.step >= self.config.schedule.steps
    }

    /// The trainable variables (e.g. to inspect gradients).
    pub fn params(&self) -> &[Var] {
        &self.vars
    }

    /// The cutout settings at `step`, rendered at the model's input size.
    pub fn cutouts_at(&self, step: usize) -> Cutouts {
        let mut c = self.config.schedule.cutouts_at(step);
        c.style.out_size = self.image_size;
        c
    }

    /// `(weight, target index)` of every active target at `step`.
    fn weights_at(&self, step: usize) -> Vec<f32> {
        let mut weights = vec![0.0f32; self.targets.len()];
        for (text, w) in self.config.schedule.prompts.at(step) {
            if let Some(&i) = self.text_index.get(&text) {
                weights[i] = w;
            }
        }
        for (i, t) in self.targets.iter().enumerate() {
            match t.kind {
                TargetKind::Text => {}
                TargetKind::Image { weight, stop } => {
                    if stop.is_none_or(|s| step < s) {
                        weights[i] = weight;
                    }
                }
                TargetKind::Noise { weight } => weights[i] = weight,
            }
        }
        weights
    }

    /// The loss at `step` for the given cutouts; `rng` draws their noise.
    fn forward(&self, step: usize, specs: &[CutoutSpec], rng: &mut ChaCha8Rng) -> Result<Forward> {
        let schedule = &self.config.schedule;
        let cut = self.cutouts_at(step);
        let range = schedule.range_weight.at(step);
        // Logits only when the range penalty needs them: a parameterisation that renders RGB
        // directly (primitives) would otherwise go RGB → logit → sigmoid every step.
        let (rgb, logits) = if range != 0.0 {
            let logits = self.param.to_logits()?;
            (candle_nn::ops::sigmoid(&logits)?, Some(logits))
        } else {
            (self.param.to_rgb()?, None)
        };
        let cutouts = cut.apply(&rgb, specs, rng)?;
        let embeddings = self
            .clip
            .model
            .image_features(&self.clip.processor.normalize(&cutouts)?)?;
        let guidance = schedule.guidance_weight.at(step) as f64;
        let mut loss = Tensor::zeros((), DType::F32, rgb.device())?;
        for (target, weight) in self.targets.iter().zip(self.weights_at(step)) {
            if weight != 0.0 {
                let d = schedule.distance.loss(&embeddings, &target.embedding)?;
                loss = (loss + (d * (weight as f64 * guidance))?)?;
            }
        }
        let tv = schedule.tv_weight.at(step);
        if tv != 0.0 {
            loss = (loss + (total_variation(&rgb, schedule.tv_kind)? * tv as f64)?)?;
        }
        if let Some(logits) = &logits {
            let [lo, hi] = schedule.range_bounds;
            loss = (loss + (crate::loss::range_penalty(logits, lo, hi)? * range as f64)?)?;
        }
        if let (Some(init), true) = (&self.init, self.config.init_weight != 0.0) {
            let mse = (&rgb - init)?.sqr()?.mean_all()?;
            loss = (loss + (mse * self.config.init_weight as f64)?)?;
        }
        Ok(Forward {
            loss,
            embeddings: embeddings.detach(),
            cutouts: cutouts.detach(),
        })
    }

    /// The loss of the current image at the current step for fixed cutouts (no random noise
    /// unless a spec asks for it; that noise is drawn from a fixed seed). Differentiable with
    /// respect to [`Self::params`]: this is the function a step differentiates.
    pub fn loss_with_cutouts(&self, specs: &[CutoutSpec]) -> Result<Tensor> {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        Ok(self.forward(self.step, specs, &mut rng)?.loss)
    }

    /// One optimisation step: sample cutouts, embed, compute the loss, update the image.
    pub fn step(&mut self) -> Result<StepReport> {
        let step = self.step;
        let lr = self.config.schedule.lr.at(step);
        let cut = self.cutouts_at(step);
        let mut rng = self.rng.clone();
        let specs = cut.sample(&mut rng, self.param.height(), self.param.width());
        let fwd = self.forward(step, &specs, &mut rng)?;
        self.rng = rng;
        let loss = fwd.loss.to_dtype(DType::F32)?.to_scalar::<f32>()?;
        if !loss.is_finite() {
            return Err(GuideError::invalid(
                "loss",
                format!("became {loss} at step {step}; lower the learning rate"),
            ));
        }
        let grads = fwd.loss.backward()?;
        self.opt.set_lr(lr);
        // Fails (MissingGradient) if any op between the parameters and the loss dropped the
        // gradient; CLIP's weights are plain tensors, so only the parameters are tracked.
        self.opt.step(&grads)?;
        let similarity = self.similarities(&fwd.embeddings)?;
        let weights = self.weights_at(step);
        let per_prompt_similarity = self
            .targets
            .iter()
            .zip(similarity)
            .zip(weights)
            .map(|((t, similarity), weight)| PromptSimilarity {
                prompt: t.label.clone(),
                weight,
                similarity,
            })
            .collect();
        self.last_cutouts = Some(fwd.cutouts);
        self.step += 1;
        if self.config.selection.keep_best {
            let score = self.image_score()?;
            self.note_best(score)?;
        }
        Ok(StepReport {
            step,
            loss,
            per_prompt_similarity,
            lr,
            cutn: specs.len(),
        })
    }

    /// Runs the remaining steps, calling `on_step` after each; `ControlFlow::Break` stops
    /// early (e.g. on Ctrl-C) with the image as it is.
    pub fn run<F>(&mut self, mut on_step: F) -> Result<RunOutcome>
    where
        F: FnMut(&Self, &StepReport) -> ControlFlow<()>,
    {
        let mut reports = Vec::new();
        while !self.is_done() {
            let report = self.step()?;
            let flow = on_step(self, &report);
            reports.push(report);
            if flow.is_break() {
                break;
            }
        }
        // The last word goes to the model's score of the image as it ends (or the best seen),
        // stopped early or not, so a stopped run equals one configured with fewer steps.
        self.settle()?;
        Ok(RunOutcome {
            stopped_early: !self.is_done(),
            reports,
        })
    }

    /// The current image as `[1, 3, H, W]` in (0, 1).
    pub fn rgb(&self) -> Result<Tensor> {
        Ok(self.param.to_rgb()?.detach())
    }

    /// The current image, 8 bits per channel.
    pub fn image(&self) -> Result<RgbImage> {
        tensor_to_image(&self.param.to_rgb()?.squeeze(0)?)
    }

    /// The cutouts CLIP saw in the last step (before normalisation), for a preview; empty
    /// before the first step.
    pub fn cutout_images(&self) -> Result<Vec<RgbImage>> {
        let Some(batch) = &self.last_cutouts else {
            return Ok(Vec::new());
        };
        (0..batch.dim(0)?)
            .map(|i| tensor_to_image(&batch.get(i)?))
            .collect()
    }
}
