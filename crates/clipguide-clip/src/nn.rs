//! Transformer building blocks shared by the text and vision towers.
//! Every op here has a backward in candle, so gradients reach the input pixels.

use crate::config::Activation;
use candle_core::{DType, Module, Result, Tensor, D};
use candle_nn::{linear, Linear, VarBuilder};

/// Layer norm built from differentiable primitives.
///
/// `candle_nn::LayerNorm` dispatches to a fused op recorded without backward, which silently
/// drops the gradient to the input; `layer_norm_slow` is the same maths from basic ops.
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
        candle_nn::ops::layer_norm_slow(xs, &self.weight, &self.bias, self.eps)
    }
}

pub fn activation(act: Activation, xs: &Tensor) -> Result<Tensor> {
    match act {
        // candle_nn::ops::sigmoid is a custom op that does define a backward.
        Activation::QuickGelu => xs.mul(&candle_nn::ops::sigmoid(&(xs * 1.702)?)?),
        Activation::Gelu => xs.gelu_erf(),
        Activation::GeluTanh => xs.gelu(),
    }
}

#[derive(Debug, Clone)]
pub struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    num_heads: usize,
    head_dim: usize,
    scale: f64,
}

impl Attention {
    pub fn new(hidden: usize, num_heads: usize, vb: VarBuilder) -> Result<Self> {
        let head_dim = hidden / num_heads;
        Ok(Self {
            q_proj: linear(hidden, hidden, vb.pp("q_proj"))?,
            k_proj: linear(hidden, hidden, vb.pp("k_proj"))?,
            v_proj: linear(hidden, hidden, vb.pp("v_proj"))?,
            out_proj: linear(hidden, hidden, vb.pp("out_proj"))?,
            num_heads,
            head_dim,
            scale: (head_dim as f64).powf(-0.5),
        })
    }

    fn split_heads(&self, xs: &Tensor, b: usize, l: usize) -> Result<Tensor> {
        xs.reshape((b, l, self.num_heads, self.head_dim))?
            .transpose(1, 2)?
            .contiguous()
    }

    /// `mask`: additive, broadcastable to [B, heads, L, L] (the causal mask of the text tower).
    pub fn forward(&self, xs: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let (b, l, d) = xs.dims3()?;
        let q = self.split_heads(&(self.q_proj.forward(xs)? * self.scale)?, b, l)?;
        let k = self.split_heads(&self.k_proj.forward(xs)?, b, l)?;
        let v = self.split_heads(&self.v_proj.forward(xs)?, b, l)?;
        let mut scores = q.matmul(&k.t()?)?;
        if let Some(mask) = mask {
            scores = scores.broadcast_add(mask)?;
        }
        // softmax_last_dim is fused without backward; the composite softmax differentiates.
        let probs = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let out = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, l, d))?;
        self.out_proj.forward(&out)
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
        Ok(Self {
            self_attn: Attention::new(hidden, heads, vb.pp("self_attn"))?,
            layer_norm1: LayerNorm::new(hidden, eps, vb.pp("layer_norm1"))?,
            mlp: Mlp::new(hidden, inter, act, vb.pp("mlp"))?,
            layer_norm2: LayerNorm::new(hidden, eps, vb.pp("layer_norm2"))?,
        })
    }

    pub fn forward(&self, xs: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
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
            h = layer.forward(&h, mask)?;
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
