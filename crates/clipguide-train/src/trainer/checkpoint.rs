//! Checkpoints: an HF-layout folder (config.json, model.safetensors, tokenizer.json) plus the
//! trainer state beside it (optimiser moments, step and config; the auxiliary heads), written
//! atomically, and read back for a bit-exact `--resume` or as the start of a fine-tuning run.

use super::config::TrainConfig;
use super::error::{Result, TrainError};
use super::heads::AUX_HEADS_FILE;
use super::init::sorted_vars;
use super::{DataSource, Trainer};
use candle_core::{DType, Device};
use clipguide_clip::fsutil::Staged;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const TRAINER_STATE: &str = "trainer_state.safetensors";
const TRAINER_META: &str = "trainer_state.json";

#[derive(Serialize, Deserialize)]
struct TrainerMeta {
    step: usize,
    config: TrainConfig,
}

impl Trainer {
    /// Continues from `dir`'s checkpoint and trainer state (bit-exact: same weights, optimiser
    /// moments and data stream position).
    /// The settings a run in `dir` was saved with (its seed and image size, say), to rebuild
    /// the data it trained on before [`Self::resume`].
    pub fn saved_config(dir: &Path) -> Result<TrainConfig> {
        Ok(read_meta(dir)?.config)
    }

    pub fn resume(
        dir: &Path,
        data: DataSource,
        device: &Device,
        steps: Option<usize>,
    ) -> Result<Self> {
        let meta = read_meta(dir)?;
        let mut config = meta.config;
        if let Some(s) = steps {
            config.steps = s;
        }
        let mut t = Self::new(config, data, device)?;
        t.varmap.load(dir.join("model.safetensors")).map_err(|e| {
            TrainError::Invalid(format!("{}: {e}", dir.join("model.safetensors").display()))
        })?;
        // Without the optimiser state (e.g. a checkpoint copied without it) training continues
        // from the weights with fresh moments: close to, but not bit-exactly, the original run.
        if let Some((vm, _)) = &mut t.aux {
            let p = dir.join(AUX_HEADS_FILE);
            if p.exists() {
                vm.load(&p)
                    .map_err(|e| TrainError::Invalid(format!("{}: {e}", p.display())))?;
            }
        }
        let state_path = dir.join(TRAINER_STATE);
        if state_path.exists() {
            let state = candle_core::safetensors::load(&state_path, device)?;
            t.opt
                .load_state(&state)
                .map_err(|e| TrainError::Invalid(format!("{}: {e}", state_path.display())))?;
        }
        t.step = meta.step;
        Ok(t)
    }

    /// Starts from another checkpoint's weights (f32/f16/bf16, same shapes) with fresh optimiser
    /// moments and this run's schedule: fine-tuning.
    pub fn init_weights_from(&mut self, dir: &Path) -> Result<()> {
        let path = dir.join("model.safetensors");
        if !path.exists() {
            return Err(TrainError::Invalid(format!(
                "{}: not found; initial weights need a checkpoint folder with model.safetensors",
                path.display()
            )));
        }
        let tensors = candle_core::safetensors::load(&path, &self.device)?;
        for (name, var) in sorted_vars(&self.varmap) {
            let t = tensors.get(&name).ok_or_else(|| {
                TrainError::Invalid(format!(
                    "{}: tensor {name} is missing; initial weights need a checkpoint of the same model shape",
                    path.display()
                ))
            })?;
            if t.dims() != var.dims() {
                return Err(TrainError::Invalid(format!(
                    "{}: tensor {name} has shape {:?}, this model needs {:?}",
                    path.display(),
                    t.dims(),
                    var.dims()
                )));
            }
            var.set(&t.to_dtype(DType::F32)?)?;
        }
        Ok(())
    }

    /// Writes an HF-layout checkpoint (config.json, model.safetensors, tokenizer.json) plus the
    /// trainer state; every file is written to a temporary and synced first, then all are
    /// renamed into place, so the folder changes within a few renames.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::Io {
            path: dir.to_path_buf(),
            source: e,
        })?;
        let other = std::io::Error::other;
        let cfg = serde_json::to_string_pretty(&self.model_config.to_hf_json()).expect("json");
        let meta = serde_json::to_string_pretty(&TrainerMeta {
            step: self.step,
            config: self.config.clone(),
        })
        .expect("json");
        let mut staged = vec![
            stage(dir, "config.json", |p| std::fs::write(p, cfg))?,
            stage(dir, "model.safetensors", |p| {
                self.varmap.save(p).map_err(other)
            })?,
            stage(dir, "tokenizer.json", |p| {
                std::fs::write(p, clipguide_clip::tokenizer::BUILTIN_TOKENIZER_JSON)
            })?,
            stage(dir, TRAINER_STATE, |p| {
                candle_core::safetensors::save(&self.opt.state(), p).map_err(other)
            })?,
            stage(dir, TRAINER_META, |p| std::fs::write(p, meta))?,
        ];
        if let Some((vm, _)) = &self.aux {
            staged.push(stage(dir, AUX_HEADS_FILE, |p| vm.save(p).map_err(other))?);
        }
        for (path, file) in staged {
            file.commit()
                .map_err(|source| TrainError::Io { path, source })?;
        }
        Ok(())
    }
}

/// `dir/name` written by `write` under its temporary name, not yet renamed into place.
fn stage(
    dir: &Path,
    name: &str,
    write: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<(PathBuf, Staged)> {
    let path = dir.join(name);
    match Staged::file(&path, write) {
        Ok(file) => Ok((path, file)),
        Err(source) => Err(TrainError::Io { path, source }),
    }
}

fn read_meta(dir: &Path) -> Result<TrainerMeta> {
    let meta_path = dir.join(TRAINER_META);
    let text = std::fs::read_to_string(&meta_path).map_err(|e| TrainError::Io {
        path: meta_path.clone(),
        source: e,
    })?;
    serde_json::from_str(&text)
        .map_err(|e| TrainError::Invalid(format!("{}: {e}", meta_path.display())))
}
