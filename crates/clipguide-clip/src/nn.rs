//! Transformer building blocks shared by the text and vision towers.
//! Every op here has a backward, so gradients reach the input pixels; the hot ones are the fused
//! kernels of [`crate::ops`].

use crate::config::Activation;
use crate::ops;
use candle_core::{DType, Module, Result, Tensor};
use candle_nn::VarBuilder;

/// A linear layer (`weight` [out, in], optional bias) computed by [`ops::linear`]: one GEMM over
/// all leading dims, and no weight gradient when the weight is frozen.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self { weight, bias }
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
}

impl Module for Linear {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        ops::linear(xs, &self.weight, self.bias.as_ref())
    }
}

/// `in_dim → out_dim` with bias, from `vb` (`weight`, `bias`), candle-nn's init.
pub fn linear(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Linear> {
    let l = candle_nn::linear(in_dim, out_dim, vb)?;
    Ok(Linear::new(l.weight().clone(), l.bias().cloned()))
}

/// `in_dim → out_dim` without bias.
pub fn linear_no_bias(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Linear> {
    let l = candle_nn::linear_no_bias(in_dim, out_dim, vb)?;
    Ok(Linear::new(l.weight().clone(), None))
}

/// Layer norm over the last dimension with gradients to input, weight and bias.
///
/// `candle_nn::LayerNorm` dispatches to a fused op recorded without backward, which silently
/// drops the gradient to the input; [`ops::layer_norm`] is fused and has one.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

impl LayerNorm {
    pub fn new(size: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get_with_hints(size, "weight", candle_nn::Init::Const(1.0))?;
        let bias = vb.get_with_hints(size, "bias", candle_nn::Init::Const(0.0))?;
        Ok(Self {
            weight,
            bias,
            eps: eps as f32,
        })
    }
}

impl Module for LayerNorm {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        ops::layer_norm(xs, &self.weight, &self.bias, self.eps)
    }
}

pub fn activation(act: Activation, xs: &Tensor) -> Result<Tensor> {
    match act {
        Activation::QuickGelu => ops::quick_gelu(xs),
        Activation::Gelu => ops::gelu_erf(xs),
        Activation::GeluTanh => xs.gelu(),
    }
}

/// q, k and v projections: separate layers while training (each weight a `Var` with its own
/// gradient), one packed [3·D, D] layer when frozen — one GEMM instead of three, and its output is
/// already the packed layout [`ops::attention`] reads.
#[derive(Debug, Clone)]
enum QkvProjection {
    Separate { q: Linear, k: Linear, v: Linear },
    Packed(Linear),
}

#[derive(Debug, Clone)]
pub struct Attention {
    qkv: QkvProjection,
    out_proj: Linear,
    num_heads: usize,
    scale: f64,
}

impl Attention {
    pub fn new(hidden: usize, num_heads: usize, vb: VarBuilder) -> Result<Self> {
        let head_dim = hidden / num_heads;
        let q = linear(hidden, hidden, vb.pp("q_proj"))?;
        let k = linear(hidden, hidden, vb.pp("k_proj"))?;
        let v = linear(hidden, hidden, vb.pp("v_proj"))?;
        let frozen = [&q, &k, &v]
            .iter()
            .all(|l| !l.weight.track_op() && l.bias.as_ref().is_none_or(|b| !b.track_op()));
        let qkv = if frozen && ops::fused_enabled() {
            let w = Tensor::cat(&[&q.weight, &k.weight, &v.weight], 0)?;
            let b = match (&q.bias, &k.bias, &v.bias) {
                (Some(a), Some(b), Some(c)) => Some(Tensor::cat(&[a, b, c], 0)?),
                _ => None,
            };
            QkvProjection::Packed(Linear::new(w, b))
        } else {
            QkvProjection::Separate { q, k, v }
        };
        Ok(Self {
            qkv,
            out_proj: linear(hidden, hidden, vb.pp("out_proj"))?,
            num_heads,
            scale: (head_dim as f64).powf(-0.5),
        })
    }

    /// `mask`: additive, broadcastable to [B, heads, L, L] (the causal mask of the text tower).
    pub fn forward(&self, xs: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let packed = match &self.qkv {
            QkvProjection::Packed(l) => l.forward(xs)?,
            QkvProjection::Separate { q, k, v } => {
                Tensor::cat(&[q.forward(xs)?, k.forward(xs)?, v.forward(xs)?], 2)?
            }
        };
        let out = ops::attention(&packed, self.num_heads, self.scale, mask)?;
        self.out_proj.forward(&out)
    }

    /// `out_proj(v_proj(xs))`: the value path alone, as if every token attended only to itself.
    /// MaskCLIP's dense features: the query/key attention is what pools the image into the
    /// class token, so skipping it keeps each patch's own content.
    pub fn value_path(&self, xs: &Tensor) -> Result<Tensor> {
        let v = match &self.qkv {
            QkvProjection::Packed(l) => {
                let hidden = self.out_proj.weight.dim(0)?;
                l.forward(xs)?
                    .narrow(candle_core::D::Minus1, 2 * hidden, hidden)?
            }
            QkvProjection::Separate { v, .. } => v.forward(xs)?,
        };
        self.out_proj.forward(&v)
    }
}

#[derive(Debug, Clone)]
pub struct Mlp {
    fc1: Linear,
    fc2: Linear,
    act: Activation,
}

impl Mlp {
    pub fn new(hidden: usize, inter: usize, act: Activation, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            fc1: linear(hidden, inter, vb.pp("fc1"))?,
            fc2: linear(inter, hidden, vb.pp("fc2"))?,
            act,
        })
    }
}

impl Module for Mlp {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.fc2
            .forward(&activation(self.act, &self.fc1.forward(xs)?)?)
    }
}

#[derive(Debug, Clone)]
pub struct EncoderLayer {
    self_attn: Attention,
    layer_norm1: LayerNorm,
    mlp: Mlp,
    layer_norm2: LayerNorm,
    /// Frozen quick_gelu layers run as one fused node ([`ops::frozen_layer`]).
    fused: Option<ops::FrozenLayerWeights>,
}

impl EncoderLayer {
    pub fn new(
        hidden: usize,
        inter: usize,
        heads: usize,
        act: Activation,
        eps: f64,
        vb: VarBuilder,
    ) -> Result<Self> {
        let mut layer = Self {
            self_attn: Attention::new(hidden, heads, vb.pp("self_attn"))?,
            layer_norm1: LayerNorm::new(hidden, eps, vb.pp("layer_norm1"))?,
            mlp: Mlp::new(hidden, inter, act, vb.pp("mlp"))?,
            layer_norm2: LayerNorm::new(hidden, eps, vb.pp("layer_norm2"))?,
            fused: None,
        };
        layer.fused = layer.frozen_weights();
        Ok(layer)
    }

    /// Row 0 (the class token) of [`Self::forward`] without a mask, [B, D]: on the fused path only
    /// that row's attention output and MLP are computed.
    pub fn forward_cls(&self, xs: &Tensor, precision: ops::Precision) -> Result<Tensor> {
        if let Some(w) = &self.fused {
            if let Some(y) = ops::frozen_layer_cls(xs, w, precision)? {
                return Ok(y);
            }
        }
        self.forward(xs, None, precision)?
            .narrow(1, 0, 1)?
            .squeeze(1)
    }

    /// Whether this layer runs as one fused node (frozen weights, quick_gelu or exact GELU, on
    /// the CPU).
    pub fn is_fused(&self) -> bool {
        self.fused.is_some()
    }

    /// The weights for the fused path, when it applies: every weight frozen, quick_gelu or exact
    /// GELU.
    fn frozen_weights(&self) -> Option<ops::FrozenLayerWeights> {
        let QkvProjection::Packed(qkv) = &self.self_attn.qkv else {
            return None;
        };
        let lin = |l: &Linear| (l.weight.clone(), l.bias.clone());
        let ln = |n: &LayerNorm| (n.weight.clone(), n.bias.clone());
        let (fc1, fc2, out) = (&self.mlp.fc1, &self.mlp.fc2, &self.self_attn.out_proj);
        let all = [
            &qkv.weight,
            &out.weight,
            &fc1.weight,
            &fc2.weight,
            &self.layer_norm1.weight,
            &self.layer_norm1.bias,
            &self.layer_norm2.weight,
            &self.layer_norm2.bias,
        ];
        let frozen = all.iter().all(|t| !t.track_op())
            && [qkv, out, fc1, fc2]
                .iter()
                .all(|l| l.bias.as_ref().is_none_or(|b| !b.track_op()));
        // CLIPGUIDE_NO_FUSED_LAYER=1 keeps the per-op kernels but not the whole-layer node
        // (a benchmark ablation step).
        let layer_off = std::env::var_os("CLIPGUIDE_NO_FUSED_LAYER").is_some_and(|v| v != "0");
        let act = match self.mlp.act {
            Activation::QuickGelu => ops::FusedActivation::QuickGelu,
            Activation::Gelu => ops::FusedActivation::GeluErf,
            Activation::GeluTanh => return None,
        };
        if !frozen || !ops::fused_enabled() || layer_off {
            return None;
        }
        Some(ops::FrozenLayerWeights {
            act,
            ln1: ln(&self.layer_norm1),
            ln2: ln(&self.layer_norm2),
            eps: self.layer_norm1.eps,
            qkv: lin(qkv),
            out: lin(out),
            fc1: lin(fc1),
            fc2: lin(fc2),
            heads: self.self_attn.num_heads,
            scale: self.self_attn.scale as f32,
            half: Default::default(),
        })
    }

    /// The attention's value path of the pre-normed input ([`Attention::value_path`]), with no
    /// residual and no MLP: MaskCLIP's dense output of a last layer.
    pub fn value_path(&self, xs: &Tensor) -> Result<Tensor> {
        self.self_attn.value_path(&self.layer_norm1.forward(xs)?)
    }

    /// The layer on `xs` [B, L, D]; `precision` applies on the fused path to inputs that need no
    /// gradient (the op-by-op path is always f32).
    pub fn forward(
        &self,
        xs: &Tensor,
        mask: Option<&Tensor>,
        precision: ops::Precision,
    ) -> Result<Tensor> {
        if let Some(w) = &self.fused {
            if let Some(y) = ops::frozen_layer(xs, w, mask, precision)? {
                return Ok(y);
            }
        }
        let h = (xs
            + self
                .self_attn
                .forward(&self.layer_norm1.forward(xs)?, mask)?)?;
        &h + self.mlp.forward(&self.layer_norm2.forward(&h)?)?
    }
}

/// The stack of pre-norm transformer layers (`encoder.layers.N` in the checkpoint).
#[derive(Debug, Clone)]
pub struct Encoder {
    pub layers: Vec<EncoderLayer>,
}

impl Encoder {
    pub fn new(
        hidden: usize,
        inter: usize,
        heads: usize,
        n_layers: usize,
        act: Activation,
        eps: f64,
        vb: VarBuilder,
    ) -> Result<Self> {
        let vb = vb.pp("layers");
        let layers = (0..n_layers)
            .map(|i| EncoderLayer::new(hidden, inter, heads, act, eps, vb.pp(i)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { layers })
    }

    /// Runs the layers; with `keep_all`, also returns the input and every layer's output
    /// (transformers' `hidden_states`: n_layers + 1 entries).
    pub fn forward(
        &self,
        xs: &Tensor,
        mask: Option<&Tensor>,
        keep_all: bool,
        stop_after: Option<usize>,
        precision: ops::Precision,
    ) -> Result<(Tensor, Vec<Tensor>)> {
        let mut all = Vec::new();
        let mut h = xs.clone();
        let n = stop_after
            .unwrap_or(self.layers.len())
            .min(self.layers.len());
        for layer in &self.layers[..n] {
            if keep_all {
                all.push(h.clone());
            }
            h = layer.forward(&h, mask, precision)?;
        }
        if keep_all {
            all.push(h.clone());
        }
        Ok((h, all))
    }
}

/// Additive causal mask [1, 1, L, L]: 0 on and below the diagonal, -inf above.
pub fn causal_mask(len: usize, device: &candle_core::Device) -> Result<Tensor> {
    let mask: Vec<f32> = (0..len)
        .flat_map(|i| (0..len).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Tensor::from_vec(mask, (1, 1, len, len), device)?.to_dtype(DType::F32)
}

/// The variables of `vm` as plain tensors (frozen weights): for tests that build the same layer
/// trainable (op by op) and frozen (fused).
#[cfg(test)]
pub(crate) fn frozen_copy(vm: &candle_nn::VarMap) -> std::collections::HashMap<String, Tensor> {
    vm.data()
        .lock()
        .expect("VarMap lock")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::VarMap;

    /// The packed (frozen) projection's value rows against the separate `v_proj` of the same
    /// weights as `Var`s.
    #[test]
    fn value_path_of_packed_and_separate_projections_agree() {
        let (d, heads) = (12, 3);
        let vm = VarMap::new();
        let trainable = Attention::new(
            d,
            heads,
            VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu),
        )
        .unwrap();
        let tensors = frozen_copy(&vm);
        let frozen = Attention::new(
            d,
            heads,
            VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu),
        )
        .unwrap();
        assert!(matches!(frozen.qkv, QkvProjection::Packed(_)));
        assert!(matches!(trainable.qkv, QkvProjection::Separate { .. }));
        let xs = Tensor::randn(0f32, 1.0, (2, 5, d), &Device::Cpu).unwrap();
        let max_diff = |a: &Tensor, b: &Tensor| -> f32 {
            let d = (a - b).and_then(|d| d.abs()).and_then(|d| d.max_all());
            d.and_then(|d| d.to_scalar::<f32>()).unwrap()
        };
        let b = trainable.value_path(&xs).unwrap();
        let diff = max_diff(&frozen.value_path(&xs).unwrap(), &b);
        assert!(diff < 1e-5, "max difference {diff}");
        // And it is not the full attention output (the query/key path is skipped).
        let gap = max_diff(&trainable.forward(&xs, None).unwrap(), &b);
        assert!(gap > 1e-3, "value path equals full attention ({gap})");
    }
}
