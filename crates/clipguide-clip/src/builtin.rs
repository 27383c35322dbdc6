//! clipguide's own small CLIP, trained on the synthetic shapes by `clipguide train` and embedded in
//! the binary (behind the `builtin-model` feature), so every command works offline from any
//! working directory. Re-train and re-export with the recipe in BENCHMARKS.md.

use crate::config::ClipConfig;
use crate::error::{ClipError, Result};
use crate::model::ClipModel;
use crate::pipeline::Clip;
use crate::preprocess::ImageProcessor;
use crate::tokenizer::ClipTokenizer;
use candle_core::{DType, Device};
use candle_nn::VarBuilder;

pub const CONFIG_JSON: &str = include_str!("../assets/default-model/config.json");
pub const MODEL_SAFETENSORS: &[u8] = include_bytes!("../assets/default-model/model.safetensors");

/// Name shown in outputs and caches for the embedded model.
pub const NAME: &str = "clipguide/shapes-clip (built-in)";

impl ClipModel {
    /// Builds a model from in-memory config.json text and safetensors bytes.
    pub fn from_bytes(config_json: &str, weights: &[u8], device: &Device) -> Result<Self> {
        let cfg = ClipConfig::from_json_str(config_json)?;
        let tensors = candle_core::safetensors::load_buffer(weights, device).map_err(|e| {
            ClipError::BadWeights {
                path: "<embedded>".into(),
                detail: e.to_string(),
            }
        })?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        Self::new(&cfg, vb).map_err(|e| ClipError::ShapeMismatch {
            detail: e.to_string(),
        })
    }
}

impl Clip {
    /// The embedded default model with the built-in tokenizer.
    pub fn builtin(device: &Device) -> Result<Self> {
        let model = ClipModel::from_bytes(CONFIG_JSON, MODEL_SAFETENSORS, device)?;
        let processor = ImageProcessor::for_size(model.config().vision.image_size);
        Ok(Self {
            model,
            tokenizer: ClipTokenizer::builtin(),
            processor,
            embed_precision: crate::Precision::F32,
        })
    }
}
