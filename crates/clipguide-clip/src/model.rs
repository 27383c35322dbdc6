//! The two-tower CLIP model: projections, logit scale, features and similarity.
//! Weight names follow transformers' `CLIPModel`, so any HF-layout checkpoint loads as is.

use crate::config::ClipConfig;
use crate::error::{ClipError, Result};
use crate::nn::{linear_no_bias, Linear};
use crate::text::{TextOutput, TextTransformer};
use crate::vision::{VisionOutput, VisionTransformer};
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::VarBuilder;
use std::path::Path;

#[derive(Debug, Clone)]
pub struct ClipModel {
    pub text: TextTransformer,
    pub vision: VisionTransformer,
    text_projection: Linear,
    visual_projection: Linear,
    /// Stored as log; `logit_scale()` returns the exp'd value transformers multiplies by.
    logit_scale: Tensor,
    config: ClipConfig,
}

impl ClipModel {
    /// Builds the model from a weight tree (a checkpoint or a `VarMap` for training).
    pub fn new(cfg: &ClipConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(Self {
            text: TextTransformer::new(&cfg.text, vb.pp("text_model"))?,
            vision: VisionTransformer::new(&cfg.vision, vb.pp("vision_model"))?,
            text_projection: linear_no_bias(
                cfg.text.hidden_size,
                cfg.projection_dim,
                vb.pp("text_projection"),
            )?,
            visual_projection: linear_no_bias(
                cfg.vision.hidden_size,
                cfg.projection_dim,
                vb.pp("visual_projection"),
            )?,
            logit_scale: vb.get_with_hints(
                (),
                "logit_scale",
                candle_nn::Init::Const(cfg.logit_scale_init_value),
            )?,
            config: cfg.clone(),
        })
    }

    /// Loads `config.json` + `model.safetensors` from a checkpoint folder, computing in f32
    /// whatever the stored dtype (f32, f16 or bf16).
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let cfg = ClipConfig::from_file(&dir.join("config.json"))?;
        Self::load_weights(&cfg, &dir.join("model.safetensors"), device)
    }

    pub fn load_weights(cfg: &ClipConfig, weights: &Path, device: &Device) -> Result<Self> {
        if !weights.exists() {
            let hint = if weights.with_file_name("pytorch_model.bin").exists() {
                "Only safetensors weights are read: convert pytorch_model.bin with transformers (model.save_pretrained(dir, safe_serialization=True))."
            } else {
                "A CLIP checkpoint folder needs config.json, model.safetensors and tokenizer.json."
            };
            return Err(ClipError::MissingFile {
                path: weights.to_path_buf(),
                hint: hint.into(),
            });
        }
        let data = std::fs::read(weights).map_err(|e| ClipError::Io {
            path: weights.to_path_buf(),
            source: e,
        })?;
        let tensors = candle_core::safetensors::load_buffer(&data, device).map_err(|e| {
            ClipError::BadWeights {
                path: weights.to_path_buf(),
                detail: e.to_string(),
            }
        })?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        Self::new(cfg, vb).map_err(|e| ClipError::ShapeMismatch {
            detail: format!("{}: {e}", weights.display()),
        })
    }

    pub fn config(&self) -> &ClipConfig {
        &self.config
    }

    pub fn device(&self) -> &Device {
        self.logit_scale.device()
    }

    /// exp(logit_scale): the factor applied to cosine similarities.
    pub fn logit_scale(&self) -> Result<f32> {
        Ok(self.logit_scale.exp()?.to_scalar::<f32>()?)
    }

    /// The raw (log) logit scale tensor, for training.
    pub fn log_logit_scale(&self) -> &Tensor {
        &self.logit_scale
    }

    pub fn text_forward(&self, ids: &Tensor, keep_hidden: bool) -> Result<TextOutput> {
        Ok(self.text.forward_ids(ids, keep_hidden)?)
    }

    pub fn vision_forward(&self, pixels: &Tensor, keep_hidden: bool) -> Result<VisionOutput> {
        self.check_pixels(pixels)?;
        Ok(self.vision.forward_pixels(pixels, keep_hidden)?)
    }

    /// Projected, unnormalised text embeddings [B, P] (transformers' `get_text_features`).
    pub fn text_features(&self, ids: &Tensor) -> Result<Tensor> {
        let out = self.text.forward_ids(ids, false)?;
        Ok(self.text_projection.forward(&out.pooled)?)
    }

    /// Projects a pooled text state [B, D] to the joint space [B, P].
    pub fn project_text(&self, pooled: &Tensor) -> Result<Tensor> {
        Ok(self.text_projection.forward(pooled)?)
    }

    /// Projected, unnormalised image embeddings [B, P] (transformers' `get_image_features`),
    /// from normalised pixel values [B, 3, S, S]. Differentiable with respect to the pixels.
    pub fn image_features(&self, pixels: &Tensor) -> Result<Tensor> {
        self.check_pixels(pixels)?;
        // Only the pooled state: the last layer computes just the class token's row.
        let pooled = self.vision.pooled(pixels)?;
        Ok(self.visual_projection.forward(&pooled)?)
    }

    fn check_pixels(&self, pixels: &Tensor) -> Result<()> {
        let v = &self.config.vision;
        let s = v.image_size;
        match pixels.dims() {
            [_, c, h, w] if *c == v.num_channels && *h == s && *w == s => Ok(()),
            dims => Err(ClipError::BadInput {
                detail: format!(
                    "pixel_values must be [batch, {}, {s}, {s}] for this model, got {dims:?}: preprocess images with ImageProcessor (resize + center crop to {s})",
                    v.num_channels
                ),
            }),
        }
    }

    /// `logits_per_image` [Bi, Bt] = logit_scale · cos(image, text), as transformers' CLIPModel.
    pub fn logits(&self, image_embeds: &Tensor, text_embeds: &Tensor) -> Result<Tensor> {
        let cos = cosine_matrix(image_embeds, text_embeds)?;
        Ok(cos.broadcast_mul(&self.logit_scale.exp()?)?)
    }
}

/// Divides each row by its L2 norm.
pub fn l2_normalize(xs: &Tensor) -> candle_core::Result<Tensor> {
    xs.broadcast_div(&xs.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?)
}

/// Cosine similarity of every row of `a` [N, P] with every row of `b` [M, P] → [N, M].
pub fn cosine_matrix(a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    l2_normalize(a)?.matmul(&l2_normalize(b)?.t()?)
}
