//! The two-tower CLIP model: projections, logit scale, features and similarity.
//! Weight names follow transformers' `CLIPModel`, so any HF-layout checkpoint loads as is;
//! OpenCLIP checkpoints are renamed onto the same tree (`openclip`).

use crate::checkpoint::{self, Layout};
use crate::config::ClipConfig;
use crate::error::{ClipError, Result};
use crate::nn::{linear, linear_no_bias, Linear};
use crate::openclip::{self, OpenClipConfig, OpenClipOptions};
use crate::ops::Precision;
use crate::rinna::{self, RinnaConfig};
use crate::text::{TextOutput, TextTransformer};
use crate::vision::{VisionOutput, VisionTransformer};
use crate::weights::read_weights;
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::VarBuilder;
use candle_transformers::models::bert;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// Which family a loaded checkpoint belongs to, with what its own config adds.
#[derive(Debug, Clone, PartialEq)]
pub enum Family {
    /// transformers' `CLIPModel` (OpenAI's uploads, clipguide's own checkpoints).
    Transformers,
    OpenClip(OpenClipConfig),
    /// rinna's Japanese CLIP / CLOOB.
    Rinna(RinnaConfig),
}

/// The text tower, by family.
#[derive(Clone)]
pub enum TextTower {
    /// CLIP's causal transformer, pooled at end-of-text (OpenAI, OpenCLIP).
    Clip(TextTransformer),
    /// BERT, pooled at `[CLS]` (rinna); ids equal to `pad_id` are masked out of attention.
    Bert {
        model: Arc<bert::BertModel>,
        pad_id: u32,
    },
}

impl std::fmt::Debug for TextTower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Clip(t) => f.debug_tuple("Clip").field(t).finish(),
            Self::Bert { pad_id, .. } => f.debug_struct("Bert").field("pad_id", pad_id).finish(),
        }
    }
}

impl TextTower {
    /// Runs the tower on ids [B, L]. BERT keeps no per-layer states (`hidden_states` empty) and
    /// pools at position 0.
    pub fn forward_ids(&self, ids: &Tensor, keep_hidden: bool) -> candle_core::Result<TextOutput> {
        match self {
            Self::Clip(t) => t.forward_ids(ids, keep_hidden),
            Self::Bert { model, pad_id } => {
                let ids = ids.to_dtype(DType::U32)?;
                let mask = ids.ne(*pad_id)?.to_dtype(DType::U32)?;
                let token_types = ids.zeros_like()?;
                let last_hidden_state = model.forward(&ids, &token_types, Some(&mask))?;
                let pooled = last_hidden_state.narrow(1, 0, 1)?.squeeze(1)?;
                Ok(TextOutput {
                    hidden_states: Vec::new(),
                    last_hidden_state,
                    pooled,
                    eos_positions: vec![0; ids.dim(0)?],
                })
            }
        }
    }

    /// CLIP's tower, for code that works on its layers (conditioning, training); `None` for BERT.
    pub fn as_clip(&self) -> Option<&TextTransformer> {
        match self {
            Self::Clip(t) => Some(t),
            Self::Bert { .. } => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClipModel {
    pub text: TextTower,
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
            text: TextTower::Clip(TextTransformer::new(&cfg.text, vb.pp("text_model"))?),
            vision: VisionTransformer::new(&cfg.vision, vb.pp("vision_model"))?,
            text_projection: if cfg.text_projection_bias {
                linear(
                    cfg.text.hidden_size,
                    cfg.projection_dim,
                    vb.pp("text_projection"),
                )?
            } else {
                linear_no_bias(
                    cfg.text.hidden_size,
                    cfg.projection_dim,
                    vb.pp("text_projection"),
                )?
            },
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

    /// Loads a checkpoint folder in either layout (see [`crate::checkpoint::detect`]), computing
    /// in f32 whatever the stored dtype (f32, f16 or bf16).
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        Ok(Self::load_with(dir, device, &OpenClipOptions::default())?.0)
    }

    /// As [`Self::load`], with what the caller knows about an OpenCLIP checkpoint; also returns
    /// which family the checkpoint is (with its parsed config) and the layout note.
    pub fn load_with(
        dir: &Path,
        device: &Device,
        opts: &OpenClipOptions,
    ) -> Result<(Self, Family, Option<String>)> {
        let detected = checkpoint::detect(dir)?;
        if let (Some(a), Layout::Transformers { config, .. } | Layout::Rinna { config, .. }) =
            (opts.activation, &detected.layout)
        {
            return Err(ClipError::BadInput {
                detail: format!(
                    "an activation override ({}) applies to OpenCLIP checkpoints; {} sets the activation of this one",
                    a.hf_name(),
                    config.display()
                ),
            });
        }
        match detected.layout {
            Layout::Transformers { config, weights } => {
                let cfg = ClipConfig::from_file(&config)?;
                let model = Self::load_weights(&cfg, &weights, device)?;
                Ok((model, Family::Transformers, detected.note))
            }
            Layout::Rinna { config, weights } => {
                let rc = RinnaConfig::from_file(&config)?;
                let mut model = Self::load_rinna(&rc, &weights, device)?;
                // The attention mask leaves out the tokenizer's [PAD], whatever the BERT config's
                // pad_token_id says.
                if let Ok(tok) = rinna::tokenizer(dir) {
                    model.set_text_pad_id(tok.pad_id());
                }
                Ok((model, Family::Rinna(rc), detected.note))
            }
            Layout::OpenClip { config, weights } => {
                let mut opts = opts.clone();
                if opts.repo_id.is_none() {
                    opts.repo_id = crate::hub::repo_id_of_cache_dir(dir);
                }
                let oc = OpenClipConfig::from_file(&config, &opts)?;
                let tensors = read_weights(&weights, device)?;
                let tensors = openclip::to_transformers_tensors(&oc, tensors, &weights)?;
                let model = Self::from_tensors(&oc.clip, tensors, &weights, device)?;
                Ok((model, Family::OpenClip(oc), detected.note))
            }
        }
    }

    /// Reads a transformers-layout weight file (safetensors or a torch archive).
    pub fn load_weights(cfg: &ClipConfig, weights: &Path, device: &Device) -> Result<Self> {
        let tensors = read_weights(weights, device)?;
        Self::from_tensors(cfg, tensors, weights, device)
    }

    /// rinna's CLIP / CLOOB: BERT text tower, ViT renamed onto the CLIP vision tree.
    pub fn load_rinna(rc: &RinnaConfig, weights: &Path, device: &Device) -> Result<Self> {
        let tensors = read_weights(weights, device)?;
        let tensors = rinna::vit_to_clip_names(&rc.clip.vision, rc.qkv_bias, tensors, weights)?;
        let tensors: HashMap<String, Tensor> = tensors
            .into_iter()
            .map(|(k, t)| Ok((k, t.to_dtype(DType::F32)?)))
            .collect::<candle_core::Result<_>>()?;
        let shape_err = |e: candle_core::Error| ClipError::ShapeMismatch {
            detail: format!("{}: {e}", weights.display()),
        };
        let cfg = &rc.clip;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        let text = TextTower::Bert {
            model: Arc::new(
                bert::BertModel::load(vb.pp("text_model"), &rc.bert).map_err(shape_err)?,
            ),
            pad_id: rc.bert.pad_token_id as u32,
        };
        let vision =
            VisionTransformer::new(&cfg.vision, vb.pp("vision_model")).map_err(shape_err)?;
        let proj = |from: usize, name: &str| {
            linear_no_bias(from, cfg.projection_dim, vb.pp(name)).map_err(shape_err)
        };
        let logit_scale = match rc.model_type {
            rinna::ModelType::Clip => vb.get((), "logit_scale").map_err(shape_err)?,
            // CLOOB stores no temperature: it is the config's fixed inverse temperature.
            rinna::ModelType::Cloob { inv_tau, .. } => Tensor::new(inv_tau.ln() as f32, device)?,
        };
        Ok(Self {
            text,
            vision,
            text_projection: proj(cfg.text.hidden_size, "text_projection")?,
            visual_projection: proj(cfg.vision.hidden_size, "visual_projection")?,
            logit_scale,
            config: cfg.clone(),
        })
    }

    /// The id whose positions BERT's attention mask leaves out (the tokenizer's `[PAD]`); no
    /// effect on CLIP's causal tower.
    pub fn set_text_pad_id(&mut self, id: u32) {
        if let TextTower::Bert { pad_id, .. } = &mut self.text {
            *pad_id = id;
        }
    }

    /// Builds the model from tensors named as in transformers; `source` names them in errors.
    pub fn from_tensors(
        cfg: &ClipConfig,
        tensors: HashMap<String, Tensor>,
        source: &Path,
        device: &Device,
    ) -> Result<Self> {
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        Self::new(cfg, vb).map_err(|e| ClipError::ShapeMismatch {
            detail: format!("{}: {e}", source.display()),
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
        self.image_features_with(pixels, Precision::F32)
    }

    /// [`Self::image_features`] with the encoder layers' products at `precision` when `pixels`
    /// needs no gradient: [`Precision::F16`] or [`Precision::Bf16`] for embedding many images
    /// where a cosine within 10⁻³ of the f32 one will do (measured: within 10⁻⁴ on ViT-B/32
    /// shapes, see BENCHMARKS.md).
    /// Where [`Self::embeds_at`] is false, the pass runs in f32.
    pub fn image_features_with(&self, pixels: &Tensor, precision: Precision) -> Result<Tensor> {
        self.check_pixels(pixels)?;
        // Only the pooled state: the last layer computes just the class token's row.
        let pooled = self.vision.pooled(pixels, precision)?;
        Ok(self.visual_projection.forward(&pooled)?)
    }

    /// Whether `precision` really runs for this model here: f32 always; a half precision where
    /// the CPU has its instructions (AVX512-BF16 or AVX512-FP16; `CLIPGUIDE_ISA` not below
    /// avx512) and every vision layer runs fused (frozen weights, quick_gelu or exact GELU, fused
    /// kernels not switched off).
    pub fn embeds_at(&self, precision: Precision) -> bool {
        precision.half_format().is_none()
            || (precision.half_format_here().is_some() && self.vision.all_layers_fused())
    }

    /// Projected, unnormalised dense patch embeddings [B, patches, P] in row-major patch order
    /// (a `image_size / patch_size` square grid), from MaskCLIP's value path
    /// ([`VisionTransformer::dense_patch_states`]): each patch's embedding lives in the same
    /// space as text embeddings, so its cosine with a prompt maps where the prompt is.
    pub fn dense_patch_embeddings(&self, pixels: &Tensor) -> Result<Tensor> {
        self.check_pixels(pixels)?;
        let states = self.vision.dense_patch_states(pixels)?;
        Ok(self.visual_projection.forward(&states)?)
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
