//! One CLIP text tower as a diffusion text encoder: loads SD-layout text-only checkpoints, picks the
//! hidden layer each ecosystem feeds the UNet, and fills textual-inversion vectors into the input.
//!
//! # Layer conventions
//! transformers' `hidden_states` has `n_layers + 1` entries: the embeddings, then every layer's
//! output, all *before* the final layer norm; `last_hidden_state` is the last one *after* it.
//! [`LayerChoice::Skip`]` { k, .. }` is `hidden_states[-(k + 1)]`, i.e. the last `k` layers skipped:
//!
//! | what you read                    | diffusers `clip_skip` | A1111 "Clip skip" | ComfyUI `CLIPSetLastLayer` | here |
//! |----------------------------------|-----------------------|-------------------|----------------------------|------|
//! | `last_hidden_state` (with LN)    | `None` (or 0)         | 1                 | -1                         | `Last` = `Skip { k: 0, final_norm: true }` |
//! | `hidden_states[-2]`, then LN     | 1                     | 2                 | -2                         | `Skip { k: 1, final_norm: true }` |
//! | `hidden_states[-3]`, then LN     | 2                     | 3                 | -3                         | `Skip { k: 2, final_norm: true }` |
//!
//! SD1/SD2 pipelines (diffusers, A1111, ComfyUI) apply the final layer norm after skipping; SDXL
//! reads `hidden_states[-2]` of both towers *without* it, and diffusers' SDXL `clip_skip = k` means
//! `hidden_states[-(k + 2)]`, still without it (see [`crate::conditioning`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{embedding, linear_no_bias, Embedding as EmbeddingLayer, Linear, VarBuilder};
use clipguide_clip::checkpoint::Layout;
use clipguide_clip::nn::{causal_mask, Encoder};
use clipguide_clip::openclip::{self, OpenClipConfig, OpenClipOptions};
use clipguide_clip::text::{gather_rows, TextTransformer};
use clipguide_clip::{Activation, ClipConfig, ClipTokenizer, TextConfig};

use crate::chunking::{ChunkConfig, ChunkMode, ChunkedPrompt, CLIP_COMMA};
use crate::conditioning::ConditioningError;

/// Which hidden state of the tower becomes the conditioning (see the module docs for the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerChoice {
    /// `last_hidden_state`: the last layer's output with the final layer norm.
    Last,
    /// `hidden_states[-(k + 1)]`: the output with the last `k` layers skipped, optionally passed
    /// through the final layer norm. `k = 0` with `final_norm` equals [`LayerChoice::Last`].
    Skip { k: usize, final_norm: bool },
}

impl LayerChoice {
    /// diffusers' `StableDiffusionPipeline` `clip_skip`: `None` reads `last_hidden_state`, `Some(k)`
    /// reads `hidden_states[-(k + 1)]` and applies the final layer norm.
    pub fn from_diffusers_clip_skip(clip_skip: Option<usize>) -> Self {
        match clip_skip {
            None => LayerChoice::Last,
            Some(k) => LayerChoice::Skip {
                k,
                final_norm: true,
            },
        }
    }

    /// A1111's "Clip skip" setting (`CLIP_stop_at_last_layers`, 1 = last layer): `n > 1` reads
    /// `hidden_states[-n]` and applies the final layer norm; 0 and 1 both mean the last layer.
    pub fn from_a1111_clip_skip(n: usize) -> Self {
        if n <= 1 {
            LayerChoice::Last
        } else {
            LayerChoice::Skip {
                k: n - 1,
                final_norm: true,
            }
        }
    }

    /// ComfyUI's `CLIPSetLastLayer` value (-1 = last layer, -2 = penultimate, ...), with the final
    /// layer norm as ComfyUI's SD1/SD2 models apply it (`layer_norm_hidden_state`). Returns `None`
    /// for 0 or positive values, which ComfyUI does not accept.
    pub fn from_comfy_layer(layer: i64) -> Option<Self> {
        match layer {
            -1 => Some(LayerChoice::Last),
            l if l < -1 => Some(LayerChoice::Skip {
                k: (-l - 1) as usize,
                final_norm: true,
            }),
            _ => None,
        }
    }

    /// The same layer with `extra` more layers skipped (a user clip skip on top of a preset).
    pub fn skip_more(self, extra: usize) -> Self {
        match self {
            LayerChoice::Last if extra == 0 => LayerChoice::Last,
            LayerChoice::Last => LayerChoice::Skip {
                k: extra,
                final_norm: true,
            },
            LayerChoice::Skip { k, final_norm } => LayerChoice::Skip {
                k: k + extra,
                final_norm,
            },
        }
    }

    /// `(layers to run, apply the final layer norm)` for a tower of `n_layers`.
    fn resolve(self, n_layers: usize) -> Result<(usize, bool), ConditioningError> {
        match self {
            LayerChoice::Last => Ok((n_layers, true)),
            LayerChoice::Skip { k, final_norm } if k <= n_layers => Ok((n_layers - k, final_norm)),
            LayerChoice::Skip { k, .. } => Err(ConditioningError::LayerOutOfRange { k, n_layers }),
        }
    }
}

/// A text-only checkpoint's configuration: transformers' `CLIPTextConfig` (a diffusers
/// `text_encoder*/config.json`) or a full `CLIPModel` config, whose text half is used.
#[derive(Debug, Clone, PartialEq)]
pub struct TextEncoderConfig {
    pub text: TextConfig,
    /// Output size of `text_projection` when the checkpoint has one.
    pub projection_dim: usize,
}

impl TextEncoderConfig {
    pub fn from_file(path: &Path) -> Result<Self, ConditioningError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConditioningError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json_str(&text).map_err(|e| match e {
            ConditioningError::BadConfig { detail, .. } => ConditioningError::BadConfig {
                path: path.to_path_buf(),
                detail,
            },
            other => other,
        })
    }

    pub fn from_json_str(s: &str) -> Result<Self, ConditioningError> {
        let bad = |detail: String| ConditioningError::BadConfig {
            path: PathBuf::from("config.json"),
            detail,
        };
        let root: serde_json::Value =
            serde_json::from_str(s).map_err(|e| bad(format!("invalid JSON: {e}")))?;
        let obj = root
            .as_object()
            .ok_or_else(|| bad("the top level is not a JSON object".into()))?;
        if obj.contains_key("text_config") || obj.contains_key("text_config_dict") {
            let cfg = ClipConfig::from_json_str(s).map_err(|e| bad(e.to_string()))?;
            return Ok(Self {
                text: cfg.text,
                projection_dim: cfg.projection_dim,
            });
        }
        // transformers' CLIPTextConfig defaults, then the keys present.
        let mut text = TextConfig::default();
        let mut projection_dim = 512usize;
        let uint = |key: &str, into: &mut usize| -> Result<(), ConditioningError> {
            match obj.get(key) {
                None | Some(serde_json::Value::Null) => Ok(()),
                Some(v) => {
                    *into = v.as_u64().ok_or_else(|| {
                        bad(format!("{key} must be a non-negative integer, got {v}"))
                    })? as usize;
                    Ok(())
                }
            }
        };
        uint("vocab_size", &mut text.vocab_size)?;
        uint("hidden_size", &mut text.hidden_size)?;
        uint("intermediate_size", &mut text.intermediate_size)?;
        uint("num_hidden_layers", &mut text.num_hidden_layers)?;
        uint("num_attention_heads", &mut text.num_attention_heads)?;
        uint("max_position_embeddings", &mut text.max_position_embeddings)?;
        uint("projection_dim", &mut projection_dim)?;
        for (key, into) in [
            ("bos_token_id", &mut text.bos_token_id),
            ("eos_token_id", &mut text.eos_token_id),
            ("pad_token_id", &mut text.pad_token_id),
        ] {
            let mut v = *into as usize;
            uint(key, &mut v)?;
            *into = v as u32;
        }
        if let Some(v) = obj.get("layer_norm_eps").filter(|v| !v.is_null()) {
            text.layer_norm_eps = v
                .as_f64()
                .ok_or_else(|| bad(format!("layer_norm_eps must be a number, got {v}")))?;
        }
        if let Some(v) = obj.get("hidden_act").filter(|v| !v.is_null()) {
            let act = v
                .as_str()
                .ok_or_else(|| bad(format!("hidden_act must be a string, got {v}")))?;
            text.hidden_act = Activation::parse("text", act).map_err(|e| bad(e.to_string()))?;
        }
        if text.num_attention_heads == 0 || text.hidden_size % text.num_attention_heads != 0 {
            return Err(bad(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                text.hidden_size, text.num_attention_heads
            )));
        }
        Ok(Self {
            text,
            projection_dim,
        })
    }
}

/// Hidden states of a batch of chunks and, when asked for, their pooled states.
#[derive(Debug, Clone)]
pub struct EncodedChunks {
    /// `[chunks, 77, D]` at the chosen layer.
    pub hidden: Tensor,
    /// `[chunks, D]`: final-layer-normed last layer at each chunk's EOS (transformers' `pooler_output`).
    pub pooled: Option<Tensor>,
}

/// One CLIP text tower, its tokenizer and the pad id its pipeline uses.
#[derive(Debug, Clone)]
pub struct TextEncoder {
    tower: TextTransformer,
    /// The tower's layers and position table, shared (same tensors) with `tower`, so a pass can
    /// stop at the layer it needs; `TextTransformer` itself always runs every layer.
    layers: Encoder,
    position_embedding: EmbeddingLayer,
    projection: Option<Linear>,
    tokenizer: ClipTokenizer,
    pad_id: u32,
}

impl TextEncoder {
    /// Builds the tower from a weight tree rooted where `text_model.*` (and, for
    /// `CLIPTextModelWithProjection` / `CLIPModel`, `text_projection.weight`) live.
    /// The projection is loaded when the tree has it.
    pub fn new(
        cfg: &TextEncoderConfig,
        vb: VarBuilder,
        tokenizer: ClipTokenizer,
    ) -> Result<Self, ConditioningError> {
        let t = &cfg.text;
        let tm = vb.pp("text_model");
        let tower = TextTransformer::new(t, tm.clone())?;
        let layers = Encoder::new(
            t.hidden_size,
            t.intermediate_size,
            t.num_attention_heads,
            t.num_hidden_layers,
            t.hidden_act,
            t.layer_norm_eps,
            tm.pp("encoder"),
        )?;
        let position_embedding = embedding(
            t.max_position_embeddings,
            t.hidden_size,
            tm.pp("embeddings").pp("position_embedding"),
        )?;
        let projection = if vb.contains_tensor("text_projection.weight") {
            Some(linear_no_bias(
                t.hidden_size,
                cfg.projection_dim,
                vb.pp("text_projection"),
            )?)
        } else {
            None
        };
        let pad_id = tokenizer.pad_id();
        Ok(Self {
            tower,
            layers,
            position_embedding,
            projection,
            tokenizer,
            pad_id,
        })
    }

    /// Loads a text encoder folder: `config.json` (CLIPTextConfig or CLIPModel) and
    /// `model.safetensors` (or `model.fp16.safetensors`), computed in f32; the tokenizer is the
    /// folder's `tokenizer.json`, else clipguide's built-in CLIP tokenizer.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, ConditioningError> {
        // A folder of a whole checkpoint says its layout (a text-encoder subfolder of a
        // diffusers pipeline has config.json only, and is read below).
        match clipguide_clip::checkpoint::detect(dir).map(|d| d.layout) {
            Ok(Layout::OpenClip { .. }) => return Self::load_open_clip(dir, device),
            Ok(Layout::Rinna { .. }) => {
                return Err(ConditioningError::BadConfig {
                    path: dir.join("config.json"),
                    detail: "rinna's Japanese CLIP has a BERT text tower; diffusion UNets are conditioned on OpenAI or OpenCLIP text encoders, so encode does not take it".into(),
                })
            }
            _ => {}
        }
        let cfg = TextEncoderConfig::from_file(&dir.join("config.json"))?;
        let weights = ["model.safetensors", "model.fp16.safetensors"]
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.exists())
            .ok_or_else(|| ConditioningError::MissingWeights {
                dir: dir.to_path_buf(),
            })?;
        let data = std::fs::read(&weights).map_err(|source| ConditioningError::Io {
            path: weights.clone(),
            source,
        })?;
        let tensors = candle_core::safetensors::load_buffer(&data, device).map_err(|e| {
            ConditioningError::BadWeights {
                path: weights.clone(),
                detail: e.to_string(),
            }
        })?;
        // Converting once up front makes every `vb.get` hand out the same f32 tensor, so the
        // tower and the early-stopping layer list share memory instead of converting twice.
        let tensors = tensors
            .into_iter()
            .map(|(k, v)| Ok((k, v.to_dtype(DType::F32)?)))
            .collect::<candle_core::Result<HashMap<_, _>>>()?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        let tokenizer = ClipTokenizer::for_checkpoint(dir)?;
        Self::new(&cfg, vb, tokenizer).map_err(|e| match e {
            ConditioningError::Candle(c) => ConditioningError::BadWeights {
                path: weights,
                detail: format!("{c} (does config.json belong to these weights?)"),
            },
            other => other,
        })
    }

    /// The text tower of an OpenCLIP checkpoint (`open_clip_config.json` + weights), renamed onto
    /// transformers' tree by the model crate, with open_clip's tokenizer.
    fn load_open_clip(dir: &Path, device: &Device) -> Result<Self, ConditioningError> {
        let opts = OpenClipOptions {
            activation: None,
            repo_id: clipguide_clip::hub::repo_id_of_cache_dir(dir),
        };
        let oc = OpenClipConfig::from_file(&dir.join(openclip::CONFIG_FILE), &opts)?;
        let weights =
            openclip::weight_file(dir).ok_or_else(|| ConditioningError::MissingWeights {
                dir: dir.to_path_buf(),
            })?;
        if oc.clip.text_projection_bias {
            return Err(ConditioningError::BadConfig {
                path: dir.join(openclip::CONFIG_FILE),
                detail: "text_cfg.proj_bias: a text projection with a bias is not supported for conditioning".into(),
            });
        }
        let tensors = clipguide_clip::weights::read_weights(&weights, device)?;
        let tensors = openclip::to_transformers_tensors(&oc, tensors, &weights)?;
        let cfg = TextEncoderConfig {
            text: oc.clip.text.clone(),
            projection_dim: oc.clip.projection_dim,
        };
        let tokenizer = oc.tokenizer(dir)?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        Self::new(&cfg, vb, tokenizer)
    }

    /// Uses `pad` after the EOS of every chunk (49407 for OpenAI CLIP-L, 0 = "!" for OpenCLIP).
    pub fn with_pad_id(mut self, pad: u32) -> Self {
        self.pad_id = pad;
        self
    }

    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    pub fn hidden_size(&self) -> usize {
        self.tower.config().hidden_size
    }

    pub fn num_layers(&self) -> usize {
        self.layers.layers.len()
    }

    /// The model crate's tower, for its full-forward API.
    pub fn tower(&self) -> &TextTransformer {
        &self.tower
    }

    pub fn tokenizer(&self) -> &ClipTokenizer {
        &self.tokenizer
    }

    pub fn has_projection(&self) -> bool {
        self.projection.is_some()
    }

    pub fn device(&self) -> &Device {
        self.position_embedding.embeddings().device()
    }

    /// The chunking rules for this tower's tokenizer and pad id.
    pub fn chunk_config(&self, mode: ChunkMode) -> ChunkConfig {
        ChunkConfig {
            bos: self.tokenizer.bos_id(),
            eos: self.tokenizer.eos_id(),
            pad: self.pad_id,
            comma: Some(CLIP_COMMA),
            placeholder: 0,
            mode,
        }
    }

    /// `text_projection(pooled)`: SDXL's `text_embeds` / CLIP's text features `[B, P]`.
    pub fn project(&self, pooled: &Tensor) -> Result<Tensor, ConditioningError> {
        let proj = self
            .projection
            .as_ref()
            .ok_or(ConditioningError::NoProjection)?;
        Ok(proj.forward(pooled)?)
    }

    /// Encodes ids `[B, L]` at `layer`; `pooled` also runs the remaining layers for the EOS state.
    pub fn encode_ids(
        &self,
        ids: &Tensor,
        layer: LayerChoice,
        pooled: bool,
    ) -> Result<EncodedChunks, ConditioningError> {
        let ids = ids.to_dtype(DType::U32)?;
        let embeds = self.tower.token_embedding().forward(&ids)?;
        self.encode_embeds(&embeds, &ids, layer, pooled)
    }

    /// Encodes chunks, replacing the token embeddings at each [`crate::InversionSlot`] with row
    /// `slot.vector` of `inversions[slot.trigger]` (`[n, D]` each).
    pub fn encode_chunks(
        &self,
        prompt: &ChunkedPrompt,
        inversions: &[Tensor],
        layer: LayerChoice,
        pooled: bool,
    ) -> Result<EncodedChunks, ConditioningError> {
        let ids = prompt.ids_tensor(self.device())?;
        let embeds = self.tower.token_embedding().forward(&ids)?;
        let embeds = self.fill_inversions(&embeds, prompt, inversions)?;
        self.encode_embeds(&embeds, &ids, layer, pooled)
    }

    /// Differentiable row replacement: one `index_select` over `[token rows; inversion rows]`.
    fn fill_inversions(
        &self,
        embeds: &Tensor,
        prompt: &ChunkedPrompt,
        inversions: &[Tensor],
    ) -> Result<Tensor, ConditioningError> {
        if prompt.chunks.iter().all(|c| c.inversion_slots.is_empty()) {
            return Ok(embeds.clone());
        }
        let (chunks, len, dim) = embeds.dims3()?;
        let mut offsets = Vec::with_capacity(inversions.len());
        let mut offset = chunks * len;
        for v in inversions {
            offsets.push(offset);
            offset += v.dims2()?.0;
        }
        let mut index: Vec<u32> = (0..(chunks * len) as u32).collect();
        for (c, chunk) in prompt.chunks.iter().enumerate() {
            for slot in &chunk.inversion_slots {
                let rows = inversions
                    .get(slot.trigger)
                    .ok_or(ConditioningError::MissingInversion {
                        trigger: slot.trigger,
                    })?
                    .dims2()?
                    .0;
                if slot.vector >= rows {
                    return Err(ConditioningError::MissingInversion {
                        trigger: slot.trigger,
                    });
                }
                // Slot positions index the chunk's ids, BOS included.
                let at = index.get_mut(c * len + slot.position).ok_or(
                    ConditioningError::MissingInversion {
                        trigger: slot.trigger,
                    },
                )?;
                *at = (offsets[slot.trigger] + slot.vector) as u32;
            }
        }
        let mut table = vec![embeds.reshape((chunks * len, dim))?];
        for v in inversions {
            table.push(v.to_dtype(embeds.dtype())?.to_device(embeds.device())?);
        }
        let table = Tensor::cat(&table, 0)?;
        let index = Tensor::from_vec(index, chunks * len, embeds.device())?;
        Ok(table.index_select(&index, 0)?.reshape((chunks, len, dim))?)
    }

    /// The tower on token embeddings `[B, L, D]`: runs only the layers `layer` needs unless the
    /// pooled state (which needs the last layer) is asked for too.
    pub fn encode_embeds(
        &self,
        token_embeds: &Tensor,
        ids: &Tensor,
        layer: LayerChoice,
        pooled: bool,
    ) -> Result<EncodedChunks, ConditioningError> {
        let n = self.num_layers();
        let (stop, final_norm) = layer.resolve(n)?;
        let (last, at_layer) =
            self.run_layers(token_embeds, if pooled { n } else { stop }, stop)?;
        let pooled = if pooled {
            Some(self.pooled_at_eos(&last, ids)?)
        } else {
            None
        };
        Ok(EncodedChunks {
            hidden: self.maybe_norm(at_layer, final_norm)?,
            pooled,
        })
    }

    /// [`TextEncoder::encode_chunks`] with the pooled state always computed.
    pub(crate) fn encode_chunks_pooled(
        &self,
        prompt: &ChunkedPrompt,
        inversions: &[Tensor],
        layer: LayerChoice,
    ) -> Result<(Tensor, Tensor), ConditioningError> {
        let ids = prompt.ids_tensor(self.device())?;
        let embeds = self.tower.token_embedding().forward(&ids)?;
        let embeds = self.fill_inversions(&embeds, prompt, inversions)?;
        let n = self.num_layers();
        let (stop, final_norm) = layer.resolve(n)?;
        let (last, at_layer) = self.run_layers(&embeds, n, stop)?;
        Ok((
            self.maybe_norm(at_layer, final_norm)?,
            self.pooled_at_eos(&last, &ids)?,
        ))
    }

    fn maybe_norm(&self, xs: Tensor, final_norm: bool) -> Result<Tensor, ConditioningError> {
        Ok(if final_norm {
            self.tower.final_layer_norm(&xs)?
        } else {
            xs
        })
    }

    /// transformers' `pooler_output`: the final-layer-normed last layer at each row's EOS.
    fn pooled_at_eos(&self, last: &Tensor, ids: &Tensor) -> Result<Tensor, ConditioningError> {
        let eos = self.tower.eos_positions(ids)?;
        Ok(gather_rows(&self.tower.final_layer_norm(last)?, &eos)?)
    }

    /// Adds positions and runs the first `run` layers; returns the last output and the one after
    /// `keep` layers (`keep <= run`; 0 = the embeddings), both before the final layer norm.
    fn run_layers(
        &self,
        token_embeds: &Tensor,
        run: usize,
        keep: usize,
    ) -> Result<(Tensor, Tensor), ConditioningError> {
        let (_, len, _) = token_embeds.dims3()?;
        let max_len = self.tower.config().max_position_embeddings;
        if len > max_len {
            return Err(ConditioningError::TooLong { len, max: max_len });
        }
        let positions = Tensor::arange(0u32, len as u32, token_embeds.device())?;
        let mut h = token_embeds.broadcast_add(&self.position_embedding.forward(&positions)?)?;
        let mask = causal_mask(len, token_embeds.device())?;
        let mut kept = h.clone();
        for (i, block) in self.layers.layers[..run].iter().enumerate() {
            h = block.forward(&h, Some(&mask), clipguide_clip::Precision::F32)?;
            if i + 1 == keep {
                kept = h.clone();
            }
        }
        Ok((h, kept))
    }

    /// Pooled (and, with `project`, projected) states of ids `[B, L]`, computed on the shortest
    /// prefix that still holds every row's EOS: the causal mask makes the EOS state independent of
    /// what follows it, so this equals the 77-position result at a fraction of the cost.
    pub fn pooled_shortest(
        &self,
        ids: &Tensor,
        project: bool,
    ) -> Result<Tensor, ConditioningError> {
        let ids = ids.to_dtype(DType::U32)?;
        let eos = self.tower.eos_positions(&ids)?;
        // Pooling reads the EOS position, so everything after the latest EOS can go.
        let keep = eos.iter().copied().max().map_or(1, |p| p + 1);
        let ids = ids.narrow(1, 0, keep.min(ids.dims2()?.1))?;
        let embeds = self.tower.token_embedding().forward(&ids)?;
        let (last, _) = self.run_layers(&embeds, self.num_layers(), self.num_layers())?;
        let pooled = self.pooled_at_eos(&last, &ids)?;
        if project {
            self.project(&pooled)
        } else {
            Ok(pooled)
        }
    }
}

/// The text encoder folder inside `dir`: `dir` itself when it holds `config.json`, else the
/// diffusers pipeline subfolder `dir/<subfolder>` (`text_encoder` or `text_encoder_2`).
pub fn find_text_encoder_dir(dir: &Path, subfolder: &str) -> Result<PathBuf, ConditioningError> {
    let own = dir.join("config.json").exists() || dir.join(openclip::CONFIG_FILE).exists();
    if own && !dir.join("model_index.json").exists() {
        return Ok(dir.to_path_buf());
    }
    let sub = dir.join(subfolder);
    if sub.join("config.json").exists() {
        return Ok(sub);
    }
    Err(ConditioningError::NotATextEncoder {
        dir: dir.to_path_buf(),
        subfolder: subfolder.to_string(),
    })
}
