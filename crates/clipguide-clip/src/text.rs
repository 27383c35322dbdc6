//! CLIP's text tower: token + position embeddings, a causal pre-norm transformer, final layer norm,
//! and the pooled state at the end-of-text token. Mirrors `text_model.*` in the checkpoint.

use crate::config::TextConfig;
use crate::nn::{causal_mask, Encoder, LayerNorm};
use crate::ops::Precision;
use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{embedding, Embedding, VarBuilder};

/// What one pass of the text tower yields.
#[derive(Debug, Clone)]
pub struct TextOutput {
    /// Embeddings output followed by every layer's output, before the final layer norm
    /// (transformers' `hidden_states`; empty unless asked for).
    pub hidden_states: Vec<Tensor>,
    /// Final-layer-normed last hidden state [B, L, D].
    pub last_hidden_state: Tensor,
    /// `last_hidden_state` at each row's end-of-text position [B, D].
    pub pooled: Tensor,
    /// The end-of-text position used for each row.
    pub eos_positions: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct TextTransformer {
    token_embedding: Embedding,
    position_embedding: Embedding,
    encoder: Encoder,
    final_layer_norm: LayerNorm,
    config: TextConfig,
}

impl TextTransformer {
    pub fn new(cfg: &TextConfig, vb: VarBuilder) -> Result<Self> {
        let emb = vb.pp("embeddings");
        Ok(Self {
            token_embedding: embedding(cfg.vocab_size, cfg.hidden_size, emb.pp("token_embedding"))?,
            position_embedding: embedding(
                cfg.max_position_embeddings,
                cfg.hidden_size,
                emb.pp("position_embedding"),
            )?,
            encoder: Encoder::new(
                cfg.hidden_size,
                cfg.intermediate_size,
                cfg.num_attention_heads,
                cfg.num_hidden_layers,
                cfg.hidden_act,
                cfg.layer_norm_eps,
                vb.pp("encoder"),
            )?,
            final_layer_norm: LayerNorm::new(
                cfg.hidden_size,
                cfg.layer_norm_eps,
                vb.pp("final_layer_norm"),
            )?,
            config: cfg.clone(),
        })
    }

    pub fn config(&self) -> &TextConfig {
        &self.config
    }

    pub fn token_embedding(&self) -> &Embedding {
        &self.token_embedding
    }

    /// Where transformers pools: with the legacy `eos_token_id == 2` of old OpenAI configs it takes
    /// the argmax of the ids (the highest id is `<|endoftext|>`); otherwise the first occurrence of
    /// `eos_token_id`, so added tokens with larger ids do not confuse it. Rows without an EOS pool
    /// at their last position.
    pub fn eos_positions(&self, ids: &Tensor) -> Result<Vec<usize>> {
        let rows = ids.to_dtype(DType::U32)?.to_vec2::<u32>()?;
        let eos = self.config.eos_token_id;
        Ok(rows
            .iter()
            .map(|row| {
                if eos == 2 {
                    let max = row.iter().copied().max().unwrap_or(0);
                    row.iter().position(|&t| t == max).unwrap_or(0)
                } else {
                    row.iter()
                        .position(|&t| t == eos)
                        .unwrap_or(row.len().saturating_sub(1))
                }
            })
            .collect())
    }

    /// Token + position embeddings [B, L, D] (the first entry of `hidden_states`).
    pub fn embed(&self, ids: &Tensor) -> Result<Tensor> {
        self.add_positions(&self.token_embedding.forward(ids)?)
    }

    fn add_positions(&self, token_embeds: &Tensor) -> Result<Tensor> {
        let (_, len, _) = token_embeds.dims3()?;
        let pos = Tensor::arange(0u32, len as u32, token_embeds.device())?;
        token_embeds.broadcast_add(&self.position_embedding.forward(&pos)?)
    }

    /// Runs the tower on token ids [B, L] (u32 or i64). `keep_hidden` fills `hidden_states`.
    pub fn forward_ids(&self, ids: &Tensor, keep_hidden: bool) -> Result<TextOutput> {
        let ids = ids.to_dtype(DType::U32)?;
        let token_embeds = self.token_embedding.forward(&ids)?;
        self.forward_token_embeds(&token_embeds, &ids, keep_hidden)
    }

    /// Runs the tower on token embeddings [B, L, D] given directly (textual inversion replaces
    /// rows of them); `ids` [B, L] still decide where the EOS pooling happens.
    pub fn forward_token_embeds(
        &self,
        token_embeds: &Tensor,
        ids: &Tensor,
        keep_hidden: bool,
    ) -> Result<TextOutput> {
        let (_, len, _) = token_embeds.dims3()?;
        if len > self.config.max_position_embeddings {
            candle_core::bail!(
                "{len} tokens but the text tower has only {} positions: truncate or chunk the prompt",
                self.config.max_position_embeddings
            );
        }
        let xs = self.add_positions(token_embeds)?;
        let mask = causal_mask(len, token_embeds.device())?;
        let (h, hidden_states) =
            self.encoder
                .forward(&xs, Some(&mask), keep_hidden, None, Precision::F32)?;
        let last_hidden_state = self.final_layer_norm.forward(&h)?;
        let eos_positions = self.eos_positions(ids)?;
        let pooled = gather_rows(&last_hidden_state, &eos_positions)?;
        Ok(TextOutput {
            hidden_states,
            last_hidden_state,
            pooled,
            eos_positions,
        })
    }

    pub fn final_layer_norm(&self, xs: &Tensor) -> Result<Tensor> {
        self.final_layer_norm.forward(xs)
    }
}

/// Picks row b's vector at position `pos[b]` from [B, L, D] → [B, D] (differentiable).
pub fn gather_rows(xs: &Tensor, pos: &[usize]) -> Result<Tensor> {
    let (b, l, d) = xs.dims3()?;
    let idx: Vec<u32> = pos
        .iter()
        .enumerate()
        .map(|(i, &p)| (i * l + p) as u32)
        .collect();
    let idx = Tensor::new(idx.as_slice(), xs.device())?;
    xs.reshape((b * l, d))?.index_select(&idx, 0)
}
