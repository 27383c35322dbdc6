//! CLIP's vision tower: patch + class + position embeddings, pre-norm, transformer, and the
//! post-normed class token. Mirrors `vision_model.*` in the checkpoint.

use crate::config::VisionConfig;
use crate::nn::{Encoder, LayerNorm};
use crate::ops::Precision;
use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

#[derive(Debug, Clone)]
pub struct VisionOutput {
    /// Pre-normed embeddings then every layer's output (empty unless asked for).
    pub hidden_states: Vec<Tensor>,
    /// Encoder output [B, 1 + patches, D] (not post-normed, as in transformers).
    pub last_hidden_state: Tensor,
    /// `post_layernorm` of the class token [B, D].
    pub pooled: Tensor,
}

#[derive(Debug, Clone)]
pub struct VisionTransformer {
    class_embedding: Tensor,
    /// Conv weight [D, C, p, p] applied as a matmul over non-overlapping patches: exact for a
    /// stride-p convolution and cheaper to differentiate than candle's conv2d.
    patch_weight: Tensor,
    patch_bias: Option<Tensor>,
    /// The patch weight packed for each half precision, made on first use and shared by clones.
    patch_half: std::sync::Arc<crate::ops::PerHalfFormat<crate::half_gemm::PackedWeight>>,
    position_embedding: Tensor,
    pre_layrnorm: Option<LayerNorm>,
    encoder: Encoder,
    post_layernorm: LayerNorm,
    config: VisionConfig,
}

impl VisionTransformer {
    pub fn new(cfg: &VisionConfig, vb: VarBuilder) -> Result<Self> {
        let emb = vb.pp("embeddings");
        let d = cfg.hidden_size;
        let p = cfg.patch_size;
        let n_pos = (cfg.image_size / p).pow(2) + 1;
        let init = candle_nn::Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        };
        Ok(Self {
            class_embedding: emb.get_with_hints(d, "class_embedding", init)?,
            patch_weight: emb.get_with_hints(
                (d, cfg.num_channels, p, p),
                "patch_embedding.weight",
                init,
            )?,
            patch_bias: if cfg.patch_bias {
                Some(emb.get_with_hints(d, "patch_embedding.bias", candle_nn::Init::Const(0.0))?)
            } else {
                None
            },
            patch_half: Default::default(),
            position_embedding: emb.get_with_hints(
                (n_pos, d),
                "position_embedding.weight",
                init,
            )?,
            // The checkpoint key really is misspelt "pre_layrnorm".
            pre_layrnorm: if cfg.pre_layer_norm {
                Some(LayerNorm::new(
                    d,
                    cfg.layer_norm_eps,
                    vb.pp("pre_layrnorm"),
                )?)
            } else {
                None
            },
            encoder: Encoder::new(
                d,
                cfg.intermediate_size,
                cfg.num_attention_heads,
                cfg.num_hidden_layers,
                cfg.hidden_act,
                cfg.layer_norm_eps,
                vb.pp("encoder"),
            )?,
            post_layernorm: LayerNorm::new(d, cfg.layer_norm_eps, vb.pp("post_layernorm"))?,
            config: cfg.clone(),
        })
    }

    pub fn config(&self) -> &VisionConfig {
        &self.config
    }

    /// [B, C, H, W] → [B, patches, C·p·p] with channels outermost, matching the conv weight layout.
    fn patchify(&self, px: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = px.dims4()?;
        let p = self.config.patch_size;
        let (gh, gw) = (h / p, w / p);
        px.reshape((b * c * gh, p, gw, p))?
            .transpose(1, 2)?
            .reshape((b, c, gh, gw, p * p))?
            .permute((0, 2, 3, 1, 4))?
            .reshape((b, gh * gw, c * p * p))
    }

    /// Whether every encoder layer runs as one fused node (see `EncoderLayer::is_fused`).
    pub fn all_layers_fused(&self) -> bool {
        self.encoder.layers.iter().all(|l| l.is_fused())
    }

    pub fn embed(&self, px: &Tensor) -> Result<Tensor> {
        self.embed_with(px, Precision::F32)
    }

    /// [`Self::embed`] whose patch GEMM runs in half precision under the conditions of the
    /// encoder layers' half-precision path: asked for, on a CPU with the kernel, frozen (fused)
    /// weights, no gradient to `px`. Otherwise exactly [`Self::embed`].
    fn embed_with(&self, px: &Tensor, precision: Precision) -> Result<Tensor> {
        let (b, c, h, w) = px.dims4()?;
        let s = self.config.image_size;
        if c != self.config.num_channels || h != s || w != s {
            candle_core::bail!(
                "pixel_values must be [batch, {}, {s}, {s}] for this model, got [{b}, {c}, {h}, {w}]: resize/crop to {s}×{s} first (ImageProcessor does)",
                self.config.num_channels
            );
        }
        let d = self.config.hidden_size;
        let w_flat = self.patch_weight.reshape((d, ()))?;
        // A patch embedding is a linear map of the flattened patch: one GEMM, no weight gradient
        // when frozen.
        let half = precision
            .half_format_here()
            .filter(|_| !px.track_op() && self.all_layers_fused());
        let patches = match half {
            Some(format) => {
                self.patch_embed_half(&self.patchify(px)?.contiguous()?, &w_flat, format)?
            }
            None => crate::ops::linear(&self.patchify(px)?, &w_flat, self.patch_bias.as_ref())?,
        };
        let cls = self
            .class_embedding
            .reshape((1, 1, d))?
            .broadcast_as((b, 1, d))?;
        Tensor::cat(&[&cls, &patches], 1)?.broadcast_add(&self.position_embedding.unsqueeze(0)?)
    }

    /// patches [B, P, C·p·p] · w_flatᵀ (+ bias) through the half-precision kernel of `format`.
    fn patch_embed_half(
        &self,
        patches: &Tensor,
        w_flat: &Tensor,
        format: crate::half_gemm::HalfFormat,
    ) -> Result<Tensor> {
        use crate::half_gemm::{matmul, Epilogue, PackedWeight};
        let (b, p, k) = patches.dims3()?;
        let d = w_flat.dim(0)?;
        let packed = self.patch_half.get_or_try_init(format, || {
            Ok(PackedWeight::pack(
                &w_flat.flatten_all()?.to_vec1::<f32>()?,
                d,
                k,
                format,
            ))
        })?;
        let bias = self
            .patch_bias
            .as_ref()
            .map(|b| b.to_vec1::<f32>())
            .transpose()?;
        // Read in place: `patches` is a contiguous CPU f32 tensor (the caller made it so).
        let y = crate::ops::with_f32(patches, |x| {
            matmul(
                x,
                b * p,
                packed,
                Epilogue {
                    bias: bias.as_deref(),
                    ..Default::default()
                },
            )
        })?;
        Tensor::from_vec(y, (b, p, d), patches.device())
    }

    /// Patch, class and position embeddings, pre-normed where the tower has a pre-norm.
    fn embed_normed(&self, px: &Tensor) -> Result<Tensor> {
        self.embed_normed_with(px, Precision::F32)
    }

    fn embed_normed_with(&self, px: &Tensor, precision: Precision) -> Result<Tensor> {
        let xs = self.embed_with(px, precision)?;
        match &self.pre_layrnorm {
            Some(ln) => ln.forward(&xs),
            None => Ok(xs),
        }
    }

    /// The pooled output alone (post-layernorm of the last layer's class token), [B, D]; the last
    /// layer computes only that token's row (see `EncoderLayer::forward_cls`). `precision`
    /// applies to the encoder layers when `px` needs no gradient.
    pub fn pooled(&self, px: &Tensor, precision: Precision) -> Result<Tensor> {
        let xs = self.embed_normed_with(px, precision)?;
        let cls = match self.encoder.layers.split_last() {
            Some((last, _)) => {
                let n = self.encoder.layers.len() - 1;
                let (h, _) = self.encoder.forward(&xs, None, false, Some(n), precision)?;
                last.forward_cls(&h, precision)?
            }
            None => xs.narrow(1, 0, 1)?.squeeze(1)?,
        };
        self.post_layernorm.forward(&cls)
    }

    /// Post-normed dense patch states [B, patches, D] by MaskCLIP's value path: every layer but
    /// the last as usual, then the last layer's [`EncoderLayer::value_path`] in place of its
    /// attention, residual and MLP (row-major patch order, the class token dropped).
    ///
    /// [`EncoderLayer::value_path`]: crate::nn::EncoderLayer::value_path
    pub fn dense_patch_states(&self, px: &Tensor) -> Result<Tensor> {
        let xs = self.embed_normed(px)?;
        let Some((last, _)) = self.encoder.layers.split_last() else {
            candle_core::bail!("dense patch states need at least one encoder layer");
        };
        let n = self.encoder.layers.len() - 1;
        let (h, _) = self
            .encoder
            .forward(&xs, None, false, Some(n), Precision::F32)?;
        let v = last.value_path(&h)?;
        let patches = v.dim(1)? - 1;
        self.post_layernorm.forward(&v.narrow(1, 1, patches)?)
    }

    pub fn forward_pixels(&self, px: &Tensor, keep_hidden: bool) -> Result<VisionOutput> {
        let xs = self.embed_normed(px)?;
        let (last_hidden_state, hidden_states) =
            self.encoder
                .forward(&xs, None, keep_hidden, None, Precision::F32)?;
        let cls = last_hidden_state.narrow(1, 0, 1)?.squeeze(1)?;
        let pooled = self.post_layernorm.forward(&cls)?;
        Ok(VisionOutput {
            hidden_states,
            last_hidden_state,
            pooled,
        })
    }
}
