//! Prompt → the four tensors diffusion pipelines take (`prompt_embeds`, `negative_prompt_embeds`,
//! `pooled_prompt_embeds`, `negative_pooled_prompt_embeds`), per preset, as diffusers/A1111/ComfyUI.
//!
//! # Presets
//! - [`Preset::Sd1`]: OpenAI CLIP ViT-L/14, `last_hidden_state` (with final LN), `[1, 77, 768]`,
//!   padded with EOS (49407). Pooled: `pooler_output` `[1, 768]` (SD1 pipelines ignore it).
//! - [`Preset::Sd2`]: OpenCLIP ViT-H, the penultimate layer + final LN, `[1, 77, 1024]`, padded
//!   with 0 ("!"). diffusers' SD2 `text_encoder` stores only 23 of the 24 layers, so there the
//!   penultimate layer *is* `last_hidden_state`; a 24-layer checkpoint skips its last layer.
//! - [`Preset::Sdxl`]: CLIP-L `hidden_states[-2]` ⊕ OpenCLIP bigG `hidden_states[-2]`, neither
//!   layer-normed → `[1, 77, 2048]`; CLIP-L pads with 49407, bigG with 0 ("!", diffusers'
//!   `tokenizer_2`). Pooled: bigG's projected `text_embeds` `[1, 1280]`.
//!
//! `clip_skip` follows diffusers: extra layers skipped on top of the preset's layer (SD1: `k` reads
//! `hidden_states[-(k+1)]` + LN; SDXL: `hidden_states[-(k+2)]`, no LN).
//!
//! # Long prompts, weights, negatives
//! [`ChunkMode::A1111`] encodes each 77-token chunk separately and concatenates along tokens
//! (`[1, 77·chunks, D]`); pooled comes from the first chunk; prompt and negative get the same
//! number of chunks (empty chunks appended). Emphasis is applied per encoder and chunk, before
//! SDXL's concatenation, as A1111 and ComfyUI do. A missing negative is the empty prompt, or
//! zeros with [`EncodeOptions::zero_missing_negative`] (SDXL's `force_zeros_for_empty_prompt`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::chunking::{
    align_chunks, chunk_prompt, empty_chunk, ChunkConfig, ChunkError, ChunkMode, ChunkedPrompt,
    InversionTriggers,
};
use crate::encoder::{LayerChoice, TextEncoder};
use crate::inversion::{InversionError, LoadedInversion};
use crate::weighting::{parse_prompt, ParseError, ParseMode, PromptSyntax};
use crate::weights_math::{apply_emphasis, EmphasisError, EmphasisMode};

#[derive(Debug, thiserror::Error)]
pub enum ConditioningError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a CLIP text encoder config ({detail}); expected transformers' CLIPTextConfig (a diffusers text_encoder/config.json) or a CLIPModel config")]
    BadConfig { path: PathBuf, detail: String },
    #[error("{dir}: no model.safetensors or model.fp16.safetensors; convert the weights with save_pretrained(dir, safe_serialization=True)")]
    MissingWeights { dir: PathBuf },
    #[error("{path}: weights do not load ({detail})")]
    BadWeights { path: PathBuf, detail: String },
    #[error("{dir} is neither a text encoder folder (config.json + model.safetensors) nor a diffusers pipeline with a {subfolder}/ folder")]
    NotATextEncoder { dir: PathBuf, subfolder: String },
    #[error(
        "clip skip of {k} layers needs more than the tower's {n_layers} layers: skip fewer layers"
    )]
    LayerOutOfRange { k: usize, n_layers: usize },
    #[error("{len} tokens but the text tower has {max} positions: chunk the prompt (ChunkMode::A1111) or truncate it")]
    TooLong { len: usize, max: usize },
    #[error("this text encoder has no text_projection: SDXL's pooled embedding needs the second encoder as a CLIPTextModelWithProjection (text_encoder_2)")]
    NoProjection,
    #[error("textual-inversion slot refers to trigger {trigger}, which has no vectors: pass the same embeddings used for chunking")]
    MissingInversion { trigger: usize },
    #[error("preset {preset} needs {needed} text encoder(s), got {got}")]
    EncoderCount {
        preset: &'static str,
        needed: usize,
        got: usize,
    },
    #[error("the two SDXL encoders chunked the prompt differently ({l} vs {g} chunks): use tokenizers with the same vocabulary")]
    ChunkCountMismatch { l: usize, g: usize },
    #[error("unknown {what} {value:?}: expected one of {expected}")]
    UnknownName {
        what: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("cannot write {path}: {detail}")]
    Write { path: PathBuf, detail: String },
    #[error("{which}: {source}")]
    Parse {
        /// `"prompt"` or `"negative prompt"`.
        which: &'static str,
        source: ParseError,
    },
    #[error(transparent)]
    Chunk(#[from] ChunkError),
    #[error(transparent)]
    Emphasis(#[from] EmphasisError),
    #[error(transparent)]
    Inversion(#[from] InversionError),
    #[error(transparent)]
    Clip(#[from] clipguide_clip::ClipError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Which model family's conditioning to produce (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    Sd1,
    Sd2,
    Sdxl,
}

impl Preset {
    pub fn name(self) -> &'static str {
        match self {
            Preset::Sd1 => "sd1",
            Preset::Sd2 => "sd2",
            Preset::Sdxl => "sdxl",
        }
    }

    /// Text encoders the preset reads, with their diffusers pipeline subfolders.
    pub fn subfolders(self) -> &'static [&'static str] {
        match self {
            Preset::Sd1 | Preset::Sd2 => &["text_encoder"],
            Preset::Sdxl => &["text_encoder", "text_encoder_2"],
        }
    }

    /// Pad id after the EOS for encoder `index` of this preset.
    pub fn pad_id(self, index: usize) -> u32 {
        match (self, index) {
            (Preset::Sd1, _) | (Preset::Sdxl, 0) => crate::chunking::CLIP_EOS,
            _ => 0,
        }
    }

    /// The layer encoder `index` feeds the UNet without any user clip skip.
    pub fn base_layer(self, index: usize, n_layers: usize) -> LayerChoice {
        match (self, index) {
            (Preset::Sd1, _) => LayerChoice::Last,
            (Preset::Sd2, _) if n_layers >= 24 => LayerChoice::Skip {
                k: 1,
                final_norm: true,
            },
            (Preset::Sd2, _) => LayerChoice::Last,
            (Preset::Sdxl, _) => LayerChoice::Skip {
                k: 1,
                final_norm: false,
            },
        }
    }
}

impl std::str::FromStr for Preset {
    type Err = ConditioningError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sd1" => Ok(Preset::Sd1),
            "sd2" => Ok(Preset::Sd2),
            "sdxl" => Ok(Preset::Sdxl),
            _ => Err(ConditioningError::UnknownName {
                what: "preset",
                value: s.into(),
                expected: "sd1, sd2, sdxl",
            }),
        }
    }
}

/// Prompt syntax and how its weights act, by front end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Weighting {
    /// No syntax: the prompt is plain text (diffusers).
    #[default]
    None,
    /// A1111 syntax, weights multiplied in, then the chunk mean restored.
    A1111,
    /// A1111 syntax, weights multiplied in.
    A1111NoNorm,
    /// ComfyUI syntax, `e + (z − e)·w` against the empty-prompt encoding `e`.
    Comfy,
}

impl Weighting {
    pub fn syntax(self) -> PromptSyntax {
        match self {
            Weighting::None => PromptSyntax::Plain,
            Weighting::A1111 | Weighting::A1111NoNorm => PromptSyntax::A1111,
            Weighting::Comfy => PromptSyntax::Comfy,
        }
    }

    pub fn emphasis(self) -> EmphasisMode {
        match self {
            Weighting::None => EmphasisMode::Ignore,
            Weighting::A1111 => EmphasisMode::A1111,
            Weighting::A1111NoNorm => EmphasisMode::A1111NoNorm,
            Weighting::Comfy => EmphasisMode::Comfy,
        }
    }
}

impl std::str::FromStr for Weighting {
    type Err = ConditioningError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Weighting::None),
            "a1111" => Ok(Weighting::A1111),
            "a1111-no-norm" => Ok(Weighting::A1111NoNorm),
            "comfy" => Ok(Weighting::Comfy),
            _ => Err(ConditioningError::UnknownName {
                what: "weighting",
                value: s.into(),
                expected: "none, a1111, a1111-no-norm, comfy",
            }),
        }
    }
}

/// How the prompt is turned into tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodeOptions {
    pub weighting: Weighting,
    pub chunking: ChunkMode,
    /// diffusers convention: layers skipped on top of the preset's layer (`Some(1)` = A1111
    /// "Clip skip 2" = ComfyUI -2 for SD1).
    pub clip_skip: Option<usize>,
    /// diffusers' `encode_prompt` encodes the negative prompt without `clip_skip`; A1111 and
    /// ComfyUI apply it to both. `false` applies it to both.
    pub negative_ignores_clip_skip: bool,
    /// No negative prompt given → zeros instead of the encoded empty prompt (diffusers SDXL's
    /// `force_zeros_for_empty_prompt`, true for SDXL base). An explicit `""` is still encoded.
    pub zero_missing_negative: bool,
    /// Parse errors instead of the front end's silent repairs (see [`ParseMode::Strict`]).
    pub strict_syntax: bool,
}

impl EncodeOptions {
    /// diffusers' `encode_prompt` for `preset`: plain text, truncated to 77 tokens.
    pub fn diffusers(preset: Preset) -> Self {
        Self {
            weighting: Weighting::None,
            chunking: ChunkMode::Truncate,
            clip_skip: None,
            negative_ignores_clip_skip: true,
            zero_missing_negative: preset == Preset::Sdxl,
            strict_syntax: false,
        }
    }

    /// A1111 webui defaults: A1111 syntax and emphasis, 75-token chunks with comma backtracking.
    pub fn a1111() -> Self {
        Self {
            weighting: Weighting::A1111,
            chunking: ChunkConfig::a1111_default(),
            clip_skip: None,
            negative_ignores_clip_skip: false,
            zero_missing_negative: false,
            strict_syntax: false,
        }
    }
}

/// The four conditioning tensors, named as diffusers' pipelines take them.
#[derive(Debug, Clone)]
pub struct Conditioning {
    /// `[1, 77·chunks, D]`.
    pub prompt_embeds: Tensor,
    pub negative_prompt_embeds: Tensor,
    /// `[1, P]`: bigG `text_embeds` for SDXL, `pooler_output` for SD1/SD2.
    pub pooled_prompt_embeds: Tensor,
    pub negative_pooled_prompt_embeds: Tensor,
}

/// Storage dtype of a written conditioning file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputDType {
    #[default]
    F32,
    F16,
}

impl std::str::FromStr for OutputDType {
    type Err = ConditioningError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "f32" => Ok(OutputDType::F32),
            "f16" => Ok(OutputDType::F16),
            _ => Err(ConditioningError::UnknownName {
                what: "dtype",
                value: s.into(),
                expected: "f32, f16",
            }),
        }
    }
}

impl Conditioning {
    /// The tensors by name, in `dtype`.
    pub fn named(
        &self,
        dtype: OutputDType,
    ) -> Result<Vec<(&'static str, Tensor)>, ConditioningError> {
        let dt = match dtype {
            OutputDType::F32 => DType::F32,
            OutputDType::F16 => DType::F16,
        };
        Ok(vec![
            ("prompt_embeds", self.prompt_embeds.to_dtype(dt)?),
            (
                "negative_prompt_embeds",
                self.negative_prompt_embeds.to_dtype(dt)?,
            ),
            (
                "pooled_prompt_embeds",
                self.pooled_prompt_embeds.to_dtype(dt)?,
            ),
            (
                "negative_pooled_prompt_embeds",
                self.negative_pooled_prompt_embeds.to_dtype(dt)?,
            ),
        ])
    }

    /// Writes the four tensors as safetensors, atomically: a temporary file in the same folder,
    /// then a rename, so a reader never sees a half-written file.
    pub fn save(&self, path: &Path, dtype: OutputDType) -> Result<(), ConditioningError> {
        let tensors: HashMap<String, Tensor> = self
            .named(dtype)?
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        clipguide_clip::fsutil::write_atomic_with(path, |tmp| {
            candle_core::safetensors::save(&tensors, tmp).map_err(std::io::Error::other)
        })
        .map_err(|e| ConditioningError::Write {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })
    }
}

/// A preset's text encoders, ready to encode prompts.
#[derive(Debug, Clone)]
pub struct Conditioner {
    preset: Preset,
    encoders: Vec<TextEncoder>,
}

/// One encoder's share of a prompt: hidden states `[1, 77·chunks, D]` and chunk 0's pooled state.
struct EncoderOutput {
    pos: Tensor,
    neg: Option<Tensor>,
    pos_pooled: Tensor,
    neg_pooled: Option<Tensor>,
}

impl Conditioner {
    /// Wraps encoders for `preset` (one for SD1/SD2; CLIP-L then bigG for SDXL) and sets each
    /// one's pad id to the preset's.
    pub fn new(preset: Preset, encoders: Vec<TextEncoder>) -> Result<Self, ConditioningError> {
        let needed = preset.subfolders().len();
        if encoders.len() != needed {
            return Err(ConditioningError::EncoderCount {
                preset: preset.name(),
                needed,
                got: encoders.len(),
            });
        }
        if preset == Preset::Sdxl && !encoders[1].has_projection() {
            return Err(ConditioningError::NoProjection);
        }
        let encoders = encoders
            .into_iter()
            .enumerate()
            .map(|(i, e)| e.with_pad_id(preset.pad_id(i)))
            .collect();
        Ok(Self { preset, encoders })
    }

    /// Loads the preset's encoders from folders (a text encoder folder, or a diffusers pipeline
    /// folder holding `text_encoder/` / `text_encoder_2/`), one per encoder.
    pub fn load(
        preset: Preset,
        dirs: &[PathBuf],
        device: &Device,
    ) -> Result<Self, ConditioningError> {
        let subfolders = preset.subfolders();
        if dirs.len() != subfolders.len() {
            return Err(ConditioningError::EncoderCount {
                preset: preset.name(),
                needed: subfolders.len(),
                got: dirs.len(),
            });
        }
        let encoders = dirs
            .iter()
            .zip(subfolders)
            .map(|(dir, sub)| {
                TextEncoder::load(&crate::encoder::find_text_encoder_dir(dir, sub)?, device)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(preset, encoders)
    }

    pub fn preset(&self) -> Preset {
        self.preset
    }

    pub fn encoders(&self) -> &[TextEncoder] {
        &self.encoders
    }

    /// Encodes `prompt` and `negative` (`None` = no negative given) with textual-inversion
    /// embeddings whose trigger words are their names.
    pub fn encode(
        &self,
        prompt: &str,
        negative: Option<&str>,
        opts: &EncodeOptions,
        inversions: &[LoadedInversion],
    ) -> Result<Conditioning, ConditioningError> {
        let mode = if opts.strict_syntax {
            ParseMode::Strict
        } else {
            ParseMode::Lenient
        };
        let syntax = opts.weighting.syntax();
        let parse = |which: &'static str, text: &str| {
            parse_prompt(text, syntax, mode)
                .map_err(|source| ConditioningError::Parse { which, source })
        };
        let pos_pieces = parse("prompt", prompt)?;
        let zero_negative = negative.is_none() && opts.zero_missing_negative;
        let neg_pieces = if zero_negative {
            None
        } else {
            Some(parse("negative prompt", negative.unwrap_or(""))?)
        };

        let mut outputs = Vec::with_capacity(self.encoders.len());
        let mut chunk_counts = Vec::new();
        for (index, encoder) in self.encoders.iter().enumerate() {
            let cfg = encoder.chunk_config(opts.chunking);
            // ClipTokenizer already turned truncation and padding off, which WordTokenizer checks.
            let words = encoder.tokenizer().inner();
            let mut triggers = InversionTriggers::new();
            let mut vectors = Vec::with_capacity(inversions.len());
            for inv in inversions {
                let emb = inv.for_encoder_dim(encoder.hidden_size())?;
                triggers.add(words, &emb.name, emb.len())?;
                vectors.push(emb.vectors);
            }
            let mut pos = chunk_prompt(&pos_pieces, words, &triggers, &cfg)?;
            let mut neg = match &neg_pieces {
                Some(p) => Some(chunk_prompt(p, words, &triggers, &cfg)?),
                None => None,
            };
            if let Some(neg) = neg.as_mut() {
                align_chunks(&mut pos, neg, &cfg);
            }
            chunk_counts.push(pos.chunks.len());
            let base = self.preset.base_layer(index, encoder.num_layers());
            let pos_layer = base.skip_more(opts.clip_skip.unwrap_or(0));
            let neg_layer = if opts.negative_ignores_clip_skip {
                base
            } else {
                pos_layer
            };
            outputs.push(self.encode_one(
                encoder,
                &cfg,
                &pos,
                neg.as_ref(),
                &vectors,
                (pos_layer, neg_layer),
                opts.weighting.emphasis(),
            )?);
        }
        if let [l, g] = chunk_counts[..] {
            if l != g {
                return Err(ConditioningError::ChunkCountMismatch { l, g });
            }
        }

        let cat =
            |ts: Vec<Tensor>| -> Result<Tensor, ConditioningError> { Ok(Tensor::cat(&ts, 2)?) };
        let prompt_embeds = cat(outputs.iter().map(|o| o.pos.clone()).collect())?;
        // Pooled comes from the last encoder (bigG for SDXL), as in diffusers.
        let last = outputs.last().ok_or(ConditioningError::EncoderCount {
            preset: self.preset.name(),
            needed: 1,
            got: 0,
        })?;
        let project = |p: &Tensor| -> Result<Tensor, ConditioningError> {
            match self.preset {
                Preset::Sdxl => self.encoders[self.encoders.len() - 1].project(p),
                _ => Ok(p.clone()),
            }
        };
        let pooled_prompt_embeds = project(&last.pos_pooled)?;
        let (negative_prompt_embeds, negative_pooled_prompt_embeds) = if zero_negative {
            (
                prompt_embeds.zeros_like()?,
                pooled_prompt_embeds.zeros_like()?,
            )
        } else {
            let negs = outputs
                .iter()
                .filter_map(|o| o.neg.clone())
                .collect::<Vec<_>>();
            let neg_pooled = last.neg_pooled.as_ref().map(project).transpose()?;
            (
                cat(negs)?,
                neg_pooled.map_or_else(|| pooled_prompt_embeds.zeros_like(), Ok)?,
            )
        };
        Ok(Conditioning {
            prompt_embeds,
            negative_prompt_embeds,
            pooled_prompt_embeds,
            negative_pooled_prompt_embeds,
        })
    }

    /// Runs one encoder on the prompt's and negative's chunks (one batch per layer choice) and
    /// applies the emphasis to each.
    #[allow(clippy::too_many_arguments)]
    fn encode_one(
        &self,
        encoder: &TextEncoder,
        cfg: &ChunkConfig,
        pos: &ChunkedPrompt,
        neg: Option<&ChunkedPrompt>,
        vectors: &[Tensor],
        (pos_layer, neg_layer): (LayerChoice, LayerChoice),
        emphasis: EmphasisMode,
    ) -> Result<EncoderOutput, ConditioningError> {
        let device = encoder.device();
        let n_pos = pos.chunks.len();
        let needs_empty = emphasis == EmphasisMode::Comfy;
        // Batch every chunk that shares a layer into one pass.
        let mut batch = pos.clone();
        let same_layer = pos_layer == neg_layer;
        if let (Some(neg), true) = (neg, same_layer) {
            batch.chunks.extend(neg.chunks.iter().cloned());
        }
        if needs_empty {
            batch.chunks.push(empty_chunk(cfg));
        }
        let (hidden, pooled_all) = encoder.encode_chunks_pooled(&batch, vectors, pos_layer)?;
        let empty_pos = needs_empty
            .then(|| hidden.narrow(0, batch.chunks.len() - 1, 1))
            .transpose()?;
        let weigh = |z: &Tensor, prompt: &ChunkedPrompt, empty: Option<&Tensor>| {
            let w = prompt.weights_tensor(device)?;
            let z = apply_emphasis(z, &w, emphasis, empty)?;
            let (c, l, d) = z.dims3()?;
            Ok::<_, ConditioningError>(z.reshape((1, c * l, d))?)
        };
        let pos_z = weigh(&hidden.narrow(0, 0, n_pos)?, pos, empty_pos.as_ref())?;
        let pos_pooled = pooled_all.narrow(0, 0, 1)?;
        let (neg_z, neg_pooled) = match neg {
            None => (None, None),
            Some(neg) if same_layer => (
                Some(weigh(
                    &hidden.narrow(0, n_pos, neg.chunks.len())?,
                    neg,
                    empty_pos.as_ref(),
                )?),
                Some(pooled_all.narrow(0, n_pos, 1)?),
            ),
            Some(neg) => {
                let mut nb = neg.clone();
                if needs_empty {
                    nb.chunks.push(empty_chunk(cfg));
                }
                let (hidden, pooled) = encoder.encode_chunks_pooled(&nb, vectors, neg_layer)?;
                let empty = needs_empty
                    .then(|| hidden.narrow(0, nb.chunks.len() - 1, 1))
                    .transpose()?;
                (
                    Some(weigh(
                        &hidden.narrow(0, 0, neg.chunks.len())?,
                        neg,
                        empty.as_ref(),
                    )?),
                    Some(pooled.narrow(0, 0, 1)?),
                )
            }
        };
        Ok(EncoderOutput {
            pos: pos_z,
            neg: neg_z,
            pos_pooled,
            neg_pooled,
        })
    }
}
