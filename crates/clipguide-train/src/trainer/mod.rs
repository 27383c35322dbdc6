//! Contrastive pre-training of a small CLIP on the synthetic shapes (the CLIP paper's symmetric
//! InfoNCE with a learnable temperature, or CLOOB: see [`Objective`]), through the same
//! `ClipModel` code that loads checkpoints.
//! Checkpoints are ordinary HF-layout folders; the trainer state beside them makes `--resume`
//! continue bit-exactly.
//!
//! One file per job: `config` (settings, defaults and their checks), `data` (sources and the
//! seeded batches), `augment` (image augmentation), `pgd` (adversarial images), `loss`
//! (InfoNCE; CLOOB is [`crate::cloob`]), `heads` (auxiliary attribute probes), `init` (the
//! model's shape and seeded init), `checkpoint` (save, resume, fine-tuning start), `export`
//! (float16 copies) and `error`; this file holds the [`Trainer`], its step and its loop.

mod augment;
mod checkpoint;
mod config;
mod data;
mod error;
mod export;
mod heads;
mod init;
mod loss;
mod pgd;

pub use config::{AugmentConfig, Objective, TrainConfig};
pub use data::DataSource;
pub use error::{Result, TrainError};
pub use export::export_f16;
pub use init::small_clip_config;
pub use loss::contrastive_loss;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use clipguide_clip::{
    preprocess::normalize, ClipConfig, ClipModel, ClipTokenizer, CLIP_MEAN, CLIP_STD,
};
use clipguide_guide::optim::{clip_grad_norm, Adam, AdamConfig, DecayScope};
use heads::AuxHeads;
use init::{reinit_seeded, sorted_vars};
use serde::Serialize;
use std::ops::ControlFlow;
use std::path::Path;

/// Per-step statistics for progress display and logs.
#[derive(Debug, Clone, Serialize)]
pub struct StepStats {
    pub step: usize,
    pub loss: f32,
    pub accuracy: f32,
    pub logit_scale: f32,
    pub lr: f64,
    /// The auxiliary attribute loss (included in `loss`), when enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aux_loss: Option<f32>,
    /// In-batch accuracy of the auxiliary placement, shape and count heads, when enabled: what
    /// the image embedding already encodes, step by step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aux_accuracy: Option<[f32; 3]>,
}

pub struct Trainer {
    pub config: TrainConfig,
    pub model_config: ClipConfig,
    varmap: VarMap,
    model: ClipModel,
    opt: Adam,
    tokenizer: ClipTokenizer,
    data: DataSource,
    step: usize,
    device: Device,
    aux: Option<(VarMap, AuxHeads)>,
}

impl Trainer {
    pub fn new(config: TrainConfig, data: DataSource, device: &Device) -> Result<Self> {
        if config.batch < 2 {
            return Err(TrainError::Invalid(
                "batch must be at least 2: the contrastive loss needs negatives in the batch"
                    .into(),
            ));
        }
        if config.patch_size == 0 || !config.image_size.is_multiple_of(config.patch_size) {
            return Err(TrainError::Invalid(format!(
                "patch_size {} must divide image_size {}",
                config.patch_size, config.image_size
            )));
        }
        config.check_recipe()?;
        let model_config = small_clip_config(config.image_size, config.patch_size);
        let varmap = VarMap::new();
        let model = ClipModel::new(
            &model_config,
            VarBuilder::from_varmap(&varmap, DType::F32, device),
        )?;
        // candle's CPU init RNG cannot be seeded, so re-draw every parameter from our own seeded
        // stream: same seed, same initial weights.
        reinit_seeded(
            &varmap,
            config.seed,
            config.vision_pos_init_std,
            config.vision_patch_init_std,
            config.clip_init.then_some(&model_config),
        )?;
        // CLOOB's logits use its fixed inverse temperature; storing it as the logit scale makes
        // the saved checkpoint's similarity logits (classify, similarity) CLOOB's.
        if let Objective::Cloob { inv_tau, .. } = config.objective {
            if let Some(v) = varmap
                .data()
                .lock()
                .expect("varmap lock")
                .get("logit_scale")
            {
                v.set(&Tensor::new(inv_tau.ln() as f32, device)?)?;
            }
        }
        let aux = if config.aux_weight > 0.0 {
            let vm = VarMap::new();
            let heads = AuxHeads::new(
                model_config.projection_dim,
                VarBuilder::from_varmap(&vm, DType::F32, device).pp("aux_heads"),
            )?;
            reinit_seeded(&vm, config.seed ^ 0xA11C5, 0.02, 0.02, None)?;
            Some((vm, heads))
        } else {
            None
        };
        let mut named = sorted_vars(&varmap);
        if let Some((vm, _)) = &aux {
            named.extend(sorted_vars(vm));
        }
        // CLIP's Adam settings (β2 0.98, ε 1e-6), decay on weight matrices only.
        let mut opt = Adam::named(
            named,
            AdamConfig {
                lr: config.lr,
                beta1: 0.9,
                beta2: 0.98,
                eps: 1e-6,
                weight_decay: config.weight_decay,
                decay: DecayScope::Matrices,
            },
        )?;
        opt.set_lr_multiplier(
            |n| {
                n.starts_with("vision_model.embeddings.position_embedding")
                    || n.starts_with("vision_model.embeddings.patch_embedding")
            },
            config.embedding_lr_mult,
        );
        Ok(Self {
            config,
            model_config,
            varmap,
            model,
            opt,
            tokenizer: ClipTokenizer::builtin(),
            data,
            step: 0,
            device: device.clone(),
            aux,
        })
    }

    pub fn step_index(&self) -> usize {
        self.step
    }

    pub fn model(&self) -> &ClipModel {
        &self.model
    }

    fn lr_at(&self, step: usize) -> f64 {
        let c = &self.config;
        if step < c.warmup {
            return c.lr * (step + 1) as f64 / c.warmup as f64;
        }
        let p = (step - c.warmup) as f64 / (c.steps.saturating_sub(c.warmup)).max(1) as f64;
        let min = 0.05 * c.lr;
        min + 0.5 * (c.lr - min) * (1.0 + (std::f64::consts::PI * p.min(1.0)).cos())
    }

    /// One optimisation step.
    pub fn train_step(&mut self) -> Result<StepStats> {
        let step = self.step;
        let (mut px, ids, labels) = self.batch(step)?;
        if self.config.augment.pgd_steps > 0 {
            let t = self.model.text_features(&ids)?;
            px = self.adversarial(&px, &t)?;
        }
        let pixel_values = normalize(&px, &CLIP_MEAN, &CLIP_STD)?;
        let image_embeds = self.model.image_features(&pixel_values)?;
        let text_embeds = self.model.text_features(&ids)?;
        let (mut loss, accuracy) =
            self.objective_loss(&image_embeds, &text_embeds, self.model.log_logit_scale())?;
        let mut aux_loss = None;
        let mut aux_accuracy = None;
        if let (Some((_, heads)), false) = (&self.aux, labels.is_empty()) {
            // The labelled items are the batch's last ones (all hard negatives are single-group).
            let b = image_embeds.dim(0)?;
            let tail = image_embeds.narrow(0, b - labels.len(), labels.len())?;
            let (aux, acc) = heads.loss(&tail, &labels)?;
            aux_loss = Some(aux.to_scalar::<f32>()?);
            aux_accuracy = Some(acc);
            loss = (loss + (aux * self.config.aux_weight as f64)?)?;
        }
        let mut grads = loss.backward()?;
        clip_grad_norm(&mut grads, self.opt.vars(), self.config.grad_clip)?;
        let lr = self.lr_at(step);
        self.opt.set_lr(lr);
        // Parameters without a gradient keep their values (e.g. the logit scale under CLOOB).
        self.opt.step_partial(&grads)?;
        // CLIP clamps the learned temperature so logits stay ≤ 100×cosine.
        let ls = self.model.log_logit_scale();
        let max = 100f32.ln();
        let v = ls.to_scalar::<f32>()?;
        if v > max {
            for var in self.varmap.all_vars() {
                if var.as_tensor().id() == ls.id() {
                    var.set(&Tensor::new(max, &self.device)?)?;
                }
            }
        }
        self.step += 1;
        Ok(StepStats {
            step: self.step,
            loss: loss.to_scalar::<f32>()?,
            accuracy,
            logit_scale: self.model.logit_scale()?,
            lr,
            aux_loss,
            aux_accuracy,
        })
    }

    /// Trains to `config.steps`, calling `on_step` after every step and saving a checkpoint in
    /// `out` every `config.checkpoint_every` steps and at the end. When `on_step` breaks (e.g.
    /// on Ctrl-C), the checkpoint of that step is saved and the run stops.
    pub fn run<E: From<TrainError>>(
        &mut self,
        out: &Path,
        mut on_step: impl FnMut(&StepStats) -> std::result::Result<ControlFlow<()>, E>,
    ) -> std::result::Result<RunEnd, E> {
        let total = self.config.steps;
        while self.step < total {
            let s = self.train_step()?;
            let flow = on_step(&s)?;
            if s.step % self.config.checkpoint_every == 0 || s.step == total {
                self.save(out)?;
            }
            if flow.is_break() {
                self.save(out)?;
                return Ok(RunEnd::Stopped { step: s.step });
            }
        }
        Ok(RunEnd::Finished)
    }
}

/// How [`Trainer::run`] ended; either way the last step is saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// Every step of the configured run is done.
    Finished,
    /// The observer asked to stop after `step`.
    Stopped { step: usize },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `run` saves every `checkpoint_every` steps and where the observer stops it, and a
    /// resumed run goes on to the configured end.
    #[test]
    fn run_checkpoints_and_stops_when_asked() {
        let cfg = TrainConfig {
            steps: 3,
            batch: 4,
            image_size: 32,
            warmup: 1,
            checkpoint_every: 2,
            ..TrainConfig::default()
        };
        let out = tempfile::tempdir().unwrap();
        let saved_step = || -> usize {
            let meta = std::fs::read_to_string(out.path().join("trainer_state.json")).unwrap();
            serde_json::from_str::<serde_json::Value>(&meta).unwrap()["step"]
                .as_u64()
                .unwrap() as usize
        };
        let mut t = Trainer::new(cfg, DataSource::shapes(1, 32).unwrap(), &Device::Cpu).unwrap();
        let mut seen = vec![];
        let end = t
            .run(out.path(), |s| {
                seen.push(s.step);
                Ok::<_, TrainError>(if s.step == 1 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                })
            })
            .unwrap();
        assert_eq!(
            (end, seen, saved_step()),
            (RunEnd::Stopped { step: 1 }, vec![1], 1)
        );
        let mut t = Trainer::resume(
            out.path(),
            DataSource::shapes(1, 32).unwrap(),
            &Device::Cpu,
            None,
        )
        .unwrap();
        let mut seen = vec![];
        let end = t
            .run(out.path(), |s| {
                seen.push(s.step);
                Ok::<_, TrainError>(ControlFlow::Continue(()))
            })
            .unwrap();
        assert_eq!((end, seen, saved_step()), (RunEnd::Finished, vec![2, 3], 3));
    }

    /// One optimiser step changes every model weight. Guards against a weight silently taking
    /// a no-gradient fast path: the patch embedding, reshaped before its GEMM, once looked
    /// frozen to `ops::linear` and kept its random init through every training run.
    #[test]
    fn one_step_moves_every_model_weight() {
        let cfg = TrainConfig {
            steps: 2,
            batch: 8,
            image_size: 32,
            warmup: 1,
            lr: 1e-3,
            ..TrainConfig::default()
        };
        let mut t = Trainer::new(cfg, DataSource::shapes(1, 32).unwrap(), &Device::Cpu).unwrap();
        let snapshot = |t: &Trainer| -> Vec<(String, Vec<f32>)> {
            sorted_vars(&t.varmap)
                .into_iter()
                .map(|(n, v)| (n, v.as_tensor().flatten_all().unwrap().to_vec1().unwrap()))
                .collect()
        };
        let before = snapshot(&t);
        t.train_step().unwrap();
        let after = snapshot(&t);
        let still: Vec<&str> = before
            .iter()
            .zip(&after)
            .filter(|((_, a), (_, b))| a == b)
            .map(|((n, _), _)| n.as_str())
            .collect();
        assert!(before.len() > 40, "only {} weights", before.len());
        assert!(still.is_empty(), "weights without a gradient: {still:?}");
    }
}
