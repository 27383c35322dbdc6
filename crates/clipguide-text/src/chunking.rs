//! Long prompts: token ids and per-token weights laid out in 77-token CLIP chunks.
//! Mirrors A1111's `tokenize_line` (modules/sd_hijack_clip.py) or diffusers' truncation to 77.
//!
//! A1111 rules reproduced in [`ChunkMode::A1111`]:
//! - each chunk is `[BOS] + 75 prompt tokens + [EOS]`, short chunks padded after the EOS with
//!   the pad id (A1111 pads with EOS, then `process_tokens` rewrites everything after the first
//!   EOS to `id_pad` when that differs, as for OpenCLIP / SD2 / SDXL's CLIP-G);
//! - `BREAK` closes the current chunk even when it is empty, so `BREAK a` gives two chunks
//!   and `a BREAK` one; an empty prompt still gives one chunk;
//! - when the 76th token arrives and it is not a comma, and the last comma in the chunk is at
//!   most `comma_padding_backtrack` tokens back, everything after that comma moves to the next
//!   chunk (a comma arriving at a full chunk starts the next chunk and is not remembered);
//! - a textual-inversion trigger is matched on token ids (longest trigger first) and occupies
//!   `vectors` placeholder positions; if they do not fit in the chunk, a new chunk starts.
//!
//! One deliberate difference: when comma backtracking relocates tokens, A1111 leaves their
//! textual-inversion fixes behind in the old chunk (a bug); here the slots move with them.

use std::collections::HashMap;

use candle_core::{Device, Tensor};

use crate::weighting::PromptPiece;

/// Prompt tokens per chunk, between BOS and EOS.
pub const CHUNK_TOKENS: usize = 75;
/// Full chunk length fed to the CLIP text encoder.
pub const CHUNK_LEN: usize = CHUNK_TOKENS + 2;

/// CLIP BPE ids shared by OpenAI CLIP-L and OpenCLIP-G.
pub const CLIP_BOS: u32 = 49406;
pub const CLIP_EOS: u32 = 49407;
/// `,</w>` in the CLIP vocabulary (A1111's `comma_token`).
pub const CLIP_COMMA: u32 = 267;

/// A1111's default `comma_padding_backtrack`.
pub const A1111_COMMA_BACKTRACK: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    #[error("tokenizer failed on {text:?}: {message}")]
    Tokenizer { text: String, message: String },
    #[error("the tokenizer has {setting} enabled, which would cut or pad each prompt span: disable it (tokenizer.with_truncation(None) / with_padding(None)) or use `plain_word_tokenizer`")]
    TokenizerSettings { setting: &'static str },
    #[error(
        "textual inversion trigger {name:?} tokenizes to no ids: use a non-empty trigger word"
    )]
    EmptyTrigger { name: String },
    #[error("textual inversion {name:?} has {vectors} vectors but a chunk holds {max}: use an embedding with 1..={max} vectors")]
    BadVectorCount {
        name: String,
        vectors: usize,
        max: usize,
    },
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Turns text into token ids without BOS/EOS, the way A1111 calls the tokenizer
/// (`add_special_tokens=False`, no truncation).
pub trait WordTokenizer {
    fn encode_words(&self, text: &str) -> Result<Vec<u32>, ChunkError>;
}

impl WordTokenizer for tokenizers::Tokenizer {
    fn encode_words(&self, text: &str) -> Result<Vec<u32>, ChunkError> {
        // A CLIP tokenizer.json often ships with truncation/padding to 77; both would silently
        // corrupt per-span ids, so refuse rather than guess.
        if self.get_truncation().is_some() {
            return Err(ChunkError::TokenizerSettings {
                setting: "truncation",
            });
        }
        if self.get_padding().is_some() {
            return Err(ChunkError::TokenizerSettings { setting: "padding" });
        }
        self.encode(text, false)
            .map(|enc| enc.get_ids().to_vec())
            .map_err(|e| ChunkError::Tokenizer {
                text: text.to_string(),
                message: e.to_string(),
            })
    }
}

/// Returns `tokenizer` with truncation and padding switched off, ready for [`WordTokenizer`].
pub fn plain_word_tokenizer(
    mut tokenizer: tokenizers::Tokenizer,
) -> Result<tokenizers::Tokenizer, ChunkError> {
    tokenizer
        .with_truncation(None)
        .map_err(|e| ChunkError::Tokenizer {
            text: String::new(),
            message: e.to_string(),
        })?;
    tokenizer.with_padding(None);
    Ok(tokenizer)
}

/// How a prompt longer than one chunk is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkMode {
    /// A1111: as many 75-token chunks as needed; `comma_padding_backtrack == 0` turns the
    /// comma rule off (A1111's own convention).
    A1111 { comma_padding_backtrack: usize },
    /// diffusers / plain CLIP: one chunk, tokens past 75 dropped, EOS kept; `BREAK` is ignored.
    Truncate,
}

/// Special ids and rules for one text encoder's tokenizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkConfig {
    pub bos: u32,
    pub eos: u32,
    pub pad: u32,
    /// The id of a comma at the end of a word, for comma backtracking; `None` disables it.
    pub comma: Option<u32>,
    /// Id written where textual-inversion vectors go (A1111 uses 0); the encoder replaces
    /// those input embeddings using [`InversionSlot`]s.
    pub placeholder: u32,
    pub mode: ChunkMode,
}

impl ChunkConfig {
    /// OpenAI CLIP-L (SD1.x, SDXL's first encoder): pads with EOS.
    pub fn clip_l(mode: ChunkMode) -> Self {
        ChunkConfig {
            bos: CLIP_BOS,
            eos: CLIP_EOS,
            pad: CLIP_EOS,
            comma: Some(CLIP_COMMA),
            placeholder: 0,
            mode,
        }
    }

    /// OpenCLIP (SD2.x, SDXL's CLIP-G): same vocabulary, pads with id 0 after the EOS.
    pub fn open_clip(mode: ChunkMode) -> Self {
        ChunkConfig {
            pad: 0,
            ..Self::clip_l(mode)
        }
    }

    pub fn a1111_default() -> ChunkMode {
        ChunkMode::A1111 {
            comma_padding_backtrack: A1111_COMMA_BACKTRACK,
        }
    }
}

/// A textual-inversion trigger: its token ids and how many vectors replace them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub name: String,
    pub ids: Vec<u32>,
    pub vectors: usize,
}

/// Trigger words for multi-vector textual inversion, matched on token ids like A1111's
/// `EmbeddingDatabase.find_embedding_at_position`.
#[derive(Debug, Clone, Default)]
pub struct InversionTriggers {
    triggers: Vec<Trigger>,
    /// First id -> trigger indices, longest first (ties keep insertion order, as Python's
    /// stable `sorted(..., reverse=True)` does).
    by_first: HashMap<u32, Vec<usize>>,
}

impl InversionTriggers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `name`, tokenized with `tokenizer`, as a trigger for `vectors` vectors.
    /// Returns the trigger's index, which [`InversionSlot::trigger`] refers to.
    pub fn add(
        &mut self,
        tokenizer: &impl WordTokenizer,
        name: &str,
        vectors: usize,
    ) -> Result<usize, ChunkError> {
        let ids = tokenizer.encode_words(name)?;
        self.add_ids(name, ids, vectors)
    }

    /// Registers a trigger from already-tokenized ids.
    pub fn add_ids(
        &mut self,
        name: &str,
        ids: Vec<u32>,
        vectors: usize,
    ) -> Result<usize, ChunkError> {
        let Some(&first) = ids.first() else {
            return Err(ChunkError::EmptyTrigger {
                name: name.to_string(),
            });
        };
        // More than 75 vectors would overflow a chunk (A1111 then builds an invalid chunk).
        if vectors == 0 || vectors > CHUNK_TOKENS {
            return Err(ChunkError::BadVectorCount {
                name: name.to_string(),
                vectors,
                max: CHUNK_TOKENS,
            });
        }
        let index = self.triggers.len();
        self.triggers.push(Trigger {
            name: name.to_string(),
            ids,
            vectors,
        });
        let list = self.by_first.entry(first).or_default();
        list.push(index);
        let triggers = &self.triggers;
        list.sort_by(|&a, &b| triggers[b].ids.len().cmp(&triggers[a].ids.len()));
        Ok(index)
    }

    pub fn get(&self, index: usize) -> Option<&Trigger> {
        self.triggers.get(index)
    }

    pub fn len(&self) -> usize {
        self.triggers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.triggers.is_empty()
    }

    /// The trigger starting at `tokens[offset]`, if any, and how many ids it spans.
    pub fn find_at(&self, tokens: &[u32], offset: usize) -> Option<(usize, usize)> {
        let candidates = self.by_first.get(tokens.get(offset)?)?;
        candidates.iter().find_map(|&t| {
            let ids = &self.triggers[t].ids;
            tokens
                .get(offset..offset + ids.len())
                .filter(|window| *window == ids.as_slice())
                .map(|_| (t, ids.len()))
        })
    }
}

/// One input position that takes a textual-inversion vector instead of a token embedding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InversionSlot {
    /// Index into the chunk's 77 ids (BOS is position 0).
    pub position: usize,
    /// Index of the trigger in [`InversionTriggers`].
    pub trigger: usize,
    /// Which row of the embedding's `[n, dim]` vectors goes here.
    pub vector: usize,
}

/// 77 ids, their weights (1.0 on BOS/EOS/pad) and the textual-inversion positions.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptChunk {
    pub ids: Vec<u32>,
    pub weights: Vec<f32>,
    pub inversion_slots: Vec<InversionSlot>,
}

/// A prompt laid out for the text encoder.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkedPrompt {
    pub chunks: Vec<PromptChunk>,
    /// A1111's reported token count: 75 per closed chunk plus the tokens of the last one
    /// (A1111 mode); the number of prompt tokens kept (truncate mode).
    pub token_count: usize,
    /// Prompt tokens dropped by [`ChunkMode::Truncate`]; always 0 for A1111 mode.
    pub truncated_tokens: usize,
}

impl ChunkedPrompt {
    /// Ids as a `[chunks, 77]` u32 tensor.
    pub fn ids_tensor(&self, device: &Device) -> Result<Tensor, ChunkError> {
        let flat: Vec<u32> = self
            .chunks
            .iter()
            .flat_map(|c| c.ids.iter().copied())
            .collect();
        Ok(Tensor::from_vec(
            flat,
            (self.chunks.len(), CHUNK_LEN),
            device,
        )?)
    }

    /// Weights as a `[chunks, 77]` f32 tensor (A1111 turns its multipliers into float32 too).
    pub fn weights_tensor(&self, device: &Device) -> Result<Tensor, ChunkError> {
        let flat: Vec<f32> = self
            .chunks
            .iter()
            .flat_map(|c| c.weights.iter().copied())
            .collect();
        Ok(Tensor::from_vec(
            flat,
            (self.chunks.len(), CHUNK_LEN),
            device,
        )?)
    }

    /// True when any weight differs from 1.0 (ComfyUI skips the empty-prompt pass otherwise).
    pub fn has_weights(&self) -> bool {
        self.chunks
            .iter()
            .any(|c| c.weights.iter().any(|&w| w != 1.0))
    }
}

/// The chunk of an empty prompt: `[BOS, EOS, pad × 75]`, all weights 1.0 (A1111's `empty_chunk`).
pub fn empty_chunk(cfg: &ChunkConfig) -> PromptChunk {
    finish_chunk(cfg, Vec::new(), Vec::new(), Vec::new())
}

/// Pads the shorter prompt with empty chunks so both have the same number of chunks,
/// as A1111 does before batching cond and uncond (`pad_cond_uncond`).
pub fn align_chunks(pos: &mut ChunkedPrompt, neg: &mut ChunkedPrompt, cfg: &ChunkConfig) {
    let target = pos.chunks.len().max(neg.chunks.len());
    for prompt in [pos, neg] {
        while prompt.chunks.len() < target {
            prompt.chunks.push(empty_chunk(cfg));
        }
    }
}

/// Tokenizes each span and lays the prompt out in chunks (see the module docs).
pub fn chunk_prompt(
    pieces: &[PromptPiece],
    tokenizer: &impl WordTokenizer,
    triggers: &InversionTriggers,
    cfg: &ChunkConfig,
) -> Result<ChunkedPrompt, ChunkError> {
    let mut tokenized = Vec::with_capacity(pieces.len());
    for piece in pieces {
        tokenized.push(match piece {
            PromptPiece::Span(span) => Some((tokenizer.encode_words(&span.text)?, span.weight)),
            PromptPiece::Break => None,
        });
    }
    Ok(match cfg.mode {
        ChunkMode::A1111 {
            comma_padding_backtrack,
        } => chunk_a1111(&tokenized, triggers, cfg, comma_padding_backtrack),
        ChunkMode::Truncate => chunk_truncate(&tokenized, triggers, cfg),
    })
}

/// Body of a chunk being filled: up to 75 prompt tokens and their slots (positions in the body).
#[derive(Default)]
struct Body {
    tokens: Vec<u32>,
    weights: Vec<f64>,
    slots: Vec<InversionSlot>,
}

impl Body {
    fn push_trigger(&mut self, cfg: &ChunkConfig, trigger: usize, vectors: usize, weight: f64) {
        for vector in 0..vectors {
            self.slots.push(InversionSlot {
                position: self.tokens.len(),
                trigger,
                vector,
            });
            self.tokens.push(cfg.placeholder);
            self.weights.push(weight);
        }
    }
}

/// `[BOS] + body + [EOS]`, padded to 77 exactly as A1111 does it (see module docs).
fn finish_chunk(
    cfg: &ChunkConfig,
    tokens: Vec<u32>,
    weights: Vec<f64>,
    mut slots: Vec<InversionSlot>,
) -> PromptChunk {
    let body_len = tokens.len();
    let mut ids = Vec::with_capacity(CHUNK_LEN);
    ids.push(cfg.bos);
    ids.extend(tokens);
    ids.extend(std::iter::repeat_n(
        cfg.eos,
        CHUNK_TOKENS.saturating_sub(body_len) + 1,
    ));
    if cfg.pad != cfg.eos {
        // A1111's process_tokens: everything after the first EOS becomes pad.
        if let Some(first_eos) = ids.iter().position(|&t| t == cfg.eos) {
            for id in &mut ids[first_eos + 1..] {
                *id = cfg.pad;
            }
        }
    }
    let mut w = Vec::with_capacity(CHUNK_LEN);
    w.push(1.0f32);
    w.extend(weights.iter().map(|&x| x as f32));
    w.resize(ids.len(), 1.0);
    for slot in &mut slots {
        slot.position += 1;
    }
    PromptChunk {
        ids,
        weights: w,
        inversion_slots: slots,
    }
}

/// The state of A1111's `tokenize_line`: finished chunks, the one being filled, the count.
struct A1111Chunker<'a> {
    cfg: &'a ChunkConfig,
    chunks: Vec<PromptChunk>,
    chunk: Body,
    token_count: usize,
    /// Index in `chunk.tokens` of the last comma, as A1111's `last_comma` (-1 = `None`).
    last_comma: Option<usize>,
}

impl A1111Chunker<'_> {
    /// A1111's `next_chunk`: a closed chunk counts 75 tokens, the last one its real length.
    fn next_chunk(&mut self, is_last: bool) {
        self.token_count += if is_last {
            self.chunk.tokens.len()
        } else {
            CHUNK_TOKENS
        };
        let body = std::mem::take(&mut self.chunk);
        self.chunks.push(finish_chunk(
            self.cfg,
            body.tokens,
            body.weights,
            body.slots,
        ));
        self.last_comma = None;
    }
}

fn chunk_a1111(
    tokenized: &[Option<(Vec<u32>, f64)>],
    triggers: &InversionTriggers,
    cfg: &ChunkConfig,
    backtrack: usize,
) -> ChunkedPrompt {
    let mut st = A1111Chunker {
        cfg,
        chunks: Vec::new(),
        chunk: Body::default(),
        token_count: 0,
        last_comma: None,
    };
    for entry in tokenized {
        let Some((tokens, weight)) = entry else {
            st.next_chunk(false);
            continue;
        };
        let weight = *weight;
        let mut position = 0;
        while position < tokens.len() {
            let token = tokens[position];
            if Some(token) == cfg.comma {
                st.last_comma = Some(st.chunk.tokens.len());
            } else if backtrack != 0 && st.chunk.tokens.len() == CHUNK_TOKENS {
                if let Some(comma) = st
                    .last_comma
                    .filter(|&c| st.chunk.tokens.len() - c <= backtrack)
                {
                    let cut = comma + 1;
                    let reloc = Body {
                        tokens: st.chunk.tokens.split_off(cut),
                        weights: st.chunk.weights.split_off(cut),
                        slots: relocate_slots(&mut st.chunk.slots, cut),
                    };
                    st.next_chunk(false);
                    st.chunk = reloc;
                }
            }
            if st.chunk.tokens.len() == CHUNK_TOKENS {
                st.next_chunk(false);
            }
            match triggers.find_at(tokens, position) {
                None => {
                    st.chunk.tokens.push(token);
                    st.chunk.weights.push(weight);
                    position += 1;
                }
                Some((t, span)) => {
                    let vectors = triggers.triggers[t].vectors;
                    if st.chunk.tokens.len() + vectors > CHUNK_TOKENS {
                        st.next_chunk(false);
                    }
                    st.chunk.push_trigger(cfg, t, vectors, weight);
                    position += span;
                }
            }
        }
    }
    if !st.chunk.tokens.is_empty() || st.chunks.is_empty() {
        st.next_chunk(true);
    }
    ChunkedPrompt {
        chunks: st.chunks,
        token_count: st.token_count,
        truncated_tokens: 0,
    }
}

/// Moves the slots at or after body position `cut` out, re-based to the new chunk.
fn relocate_slots(slots: &mut Vec<InversionSlot>, cut: usize) -> Vec<InversionSlot> {
    let (moved, kept): (Vec<_>, Vec<_>) = slots.drain(..).partition(|s| s.position >= cut);
    *slots = kept;
    moved
        .into_iter()
        .map(|s| InversionSlot {
            position: s.position - cut,
            ..s
        })
        .collect()
}

fn chunk_truncate(
    tokenized: &[Option<(Vec<u32>, f64)>],
    triggers: &InversionTriggers,
    cfg: &ChunkConfig,
) -> ChunkedPrompt {
    let mut body = Body::default();
    for (tokens, weight) in tokenized.iter().flatten() {
        let mut position = 0;
        while position < tokens.len() {
            match triggers.find_at(tokens, position) {
                None => {
                    body.tokens.push(tokens[position]);
                    body.weights.push(*weight);
                    position += 1;
                }
                Some((t, span)) => {
                    body.push_trigger(cfg, t, triggers.triggers[t].vectors, *weight);
                    position += span;
                }
            }
        }
    }
    let total = body.tokens.len();
    body.tokens.truncate(CHUNK_TOKENS);
    body.weights.truncate(CHUNK_TOKENS);
    body.slots.retain(|s| s.position < CHUNK_TOKENS);
    let kept = body.tokens.len();
    ChunkedPrompt {
        chunks: vec![finish_chunk(cfg, body.tokens, body.weights, body.slots)],
        token_count: kept,
        truncated_tokens: total - kept,
    }
}
