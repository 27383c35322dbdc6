//! Shipping a checkpoint: its weights as float16, with its config and tokenizer.

use super::error::{Result, TrainError};
use candle_core::{DType, Device, Tensor};
use std::path::Path;

/// Writes `src`'s weights to `dst` as float16 (for shipping), with its config and tokenizer.
pub fn export_f16(src: &Path, dst: &Path) -> Result<()> {
    std::fs::create_dir_all(dst).map_err(|e| TrainError::Io {
        path: dst.to_path_buf(),
        source: e,
    })?;
    let t = candle_core::safetensors::load(src.join("model.safetensors"), &Device::Cpu)?;
    let t: std::collections::HashMap<String, Tensor> = t
        .into_iter()
        .map(|(k, v)| v.to_dtype(DType::F16).map(|v| (k, v)))
        .collect::<candle_core::Result<_>>()?;
    candle_core::safetensors::save(&t, dst.join("model.safetensors"))?;
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(src.join(f), dst.join(f)).map_err(|e| TrainError::Io {
            path: src.join(f),
            source: e,
        })?;
    }
    Ok(())
}
