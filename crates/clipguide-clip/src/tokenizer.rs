//! CLIP's tokenizers (via the `tokenizers` crate) with their framing rules: the CLIP BPE tokenizer
//! frames as `<|startoftext|>` … `<|endoftext|>`, at most 77 ids with EOS kept on truncation,
//! checkpoint pad id; rinna's Japanese CLIP/CLOOB uses a sentencepiece unigram model
//! (`spiece.model`) on lower-cased text, framed as `[CLS]` pieces… (at most 77 ids, no end token).

use crate::error::{ClipError, Result};
use crate::sentencepiece::{SentencePiece, SpNormalizer};
use crate::text_clean::open_clip_clean;
use candle_core::{Device, Tensor};
use std::path::Path;
use std::sync::{Arc, LazyLock};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{
    Model, OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer, SplitDelimiterBehavior,
};

/// The tokenizer.json clipguide ships (OpenAI's CLIP BPE, 49,408 ids), used when a checkpoint
/// folder has none.
pub const BUILTIN_TOKENIZER_JSON: &[u8] = include_bytes!("../assets/tokenizer.json");

pub const BOS_ID: u32 = 49406;
pub const EOS_ID: u32 = 49407;
pub const CONTEXT_LENGTH: usize = 77;

/// The sentencepiece model file of a rinna-style tokenizer folder.
pub const SPIECE_MODEL: &str = "spiece.model";

/// Where the special tokens go around the text's ids, and so where a text tower pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// OpenAI CLIP: `[bos, words…, eos]`, truncated to the context length with `eos` kept last;
    /// the text embedding is the state at `eos` (the row's last real token).
    Clip { bos: u32, eos: u32 },
    /// BERT-style, as rinna's Japanese CLIP/CLOOB: `[cls, pieces…]`, truncated to the context
    /// length (76 pieces for 77), with no end token; the text embedding is the state at position
    /// 0 (`cls`).
    Cls { cls: u32 },
}

impl Framing {
    /// The id every row starts with (`bos` or `cls`).
    pub fn first_id(&self) -> u32 {
        match *self {
            Self::Clip { bos, .. } => bos,
            Self::Cls { cls } => cls,
        }
    }

    /// The id every row ends with, if the framing has one (`eos`).
    pub fn last_id(&self) -> Option<u32> {
        match *self {
            Self::Clip { eos, .. } => Some(eos),
            Self::Cls { .. } => None,
        }
    }

    /// How many ids the framing adds to the text's ids.
    pub fn overhead(&self) -> usize {
        match self {
            Self::Clip { .. } => 2,
            Self::Cls { .. } => 1,
        }
    }
}

#[derive(Clone)]
pub struct ClipTokenizer {
    inner: tokenizers::Tokenizer,
    framing: Framing,
    pad: u32,
    max_len: usize,
    cleaning: TextCleaning,
    /// sentencepiece's own normalizer, applied before `inner` (which then has none), for
    /// tokenizers loaded from `spiece.model`.
    sp_normalizer: Option<Arc<SpNormalizer>>,
}

impl std::fmt::Debug for ClipTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClipTokenizer")
            .field("framing", &self.framing)
            .field("pad", &self.pad)
            .field("max_len", &self.max_len)
            .field("cleaning", &self.cleaning)
            .finish()
    }
}

/// How a batch is padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// Pad every row to the context length (77), as CLIP's own `tokenize` does.
    MaxLength,
    /// Pad to the longest row: the causal mask makes the EOS state independent of what follows it,
    /// so embeddings are unchanged and the forward pass is shorter.
    Longest,
}

/// How text is cleaned before BPE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TextCleaning {
    /// The Hugging Face fast tokenizer's behaviour (what transformers' `CLIPTokenizerFast` does):
    /// only the tokenizer.json normalizer (NFC, `\s+` → " ", lower-case); `<|startoftext|>` and
    /// `<|endoftext|>` in the text are the special tokens.
    #[default]
    None,
    /// OpenCLIP's `SimpleTokenizer` (default `clean='lower'`): `ftfy.fix_text` (the subset
    /// documented in [`crate::text_clean`]), `html.unescape` twice, Python whitespace collapsing
    /// and Python's `str.lower` (with final sigma), then open_clip's own pre-tokenisation: its
    /// regex (case-insensitive) with `<start_of_text>` / `<end_of_text>` as the special tokens
    /// (ids BOS / EOS). The tokenizer.json normalizer and added tokens are bypassed, since
    /// open_clip applies no NFC after `html.unescape` and treats `<|endoftext|>` as plain text.
    OpenClip,
    /// Python's `str.lower()` of the whole text, then the tokenizer (rinna's
    /// `japanese_clip.tokenize`); the default of [`ClipTokenizer::from_sentencepiece_dir`].
    /// Rust's `to_lowercase` uses the same full Unicode case mapping, final sigma included.
    Lowercase,
}

/// Token ids of a batch, padded to one length.
#[derive(Debug, Clone)]
pub struct TokenBatch {
    /// [B, L] u32.
    pub ids: Tensor,
    /// [B, L] u32, 1 for real tokens (BOS…EOS, or CLS and the pieces), 0 for padding.
    pub attention_mask: Tensor,
    /// Each row's ids without padding.
    pub rows: Vec<Vec<u32>>,
}

impl ClipTokenizer {
    /// clipguide's built-in CLIP tokenizer with OpenAI's pad id (`<|endoftext|>`).
    pub fn builtin() -> Self {
        let inner = tokenizers::Tokenizer::from_bytes(BUILTIN_TOKENIZER_JSON)
            .expect("the built-in tokenizer.json is valid (checked by tests)");
        Self::from_tokenizer(inner, None)
    }

    /// Loads `tokenizer.json`; the pad id comes from its padding section, else from
    /// `special_tokens_map.json` / `tokenizer_config.json` beside it, else `<|endoftext|>`.
    pub fn from_file(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(ClipError::MissingFile {
                path: path.to_path_buf(),
                hint: "Pass a checkpoint folder that contains tokenizer.json, or omit it to use the built-in CLIP tokenizer.".into(),
            });
        }
        let inner =
            tokenizers::Tokenizer::from_file(path).map_err(|e| ClipError::BadTokenizer {
                path: path.to_path_buf(),
                detail: e.to_string(),
            })?;
        let pad_token = path
            .parent()
            .and_then(|dir| special_token(dir, "pad_token"));
        let pad_from_json = inner.get_padding().map(|p| p.pad_id);
        let pad = pad_from_json.or_else(|| pad_token.and_then(|t| inner.token_to_id(&t)));
        Ok(Self::from_tokenizer(inner, pad))
    }

    /// rinna's Japanese CLIP/CLOOB tokenizer from a folder with the sentencepiece model of
    /// rinna/japanese-roberta-base (`spiece.model`) and, optionally, `special_tokens_map.json` /
    /// `tokenizer_config.json` naming `cls_token` and `pad_token` (default `[CLS]` and `[PAD]`,
    /// both pieces of the model). Encodes as `japanese_clip.tokenize`: lower-cased text
    /// ([`TextCleaning::Lowercase`]), sentencepiece ids, [`Framing::Cls`], padded with the pad id.
    pub fn from_sentencepiece_dir(dir: &Path) -> Result<Self> {
        let path = dir.join(SPIECE_MODEL);
        if !path.exists() {
            return Err(ClipError::MissingFile {
                path,
                hint: "rinna's Japanese CLIP/CLOOB tokenizes with the sentencepiece model of rinna/japanese-roberta-base: put its spiece.model (with special_tokens_map.json and tokenizer_config.json) in this folder.".into(),
            });
        }
        let bytes = std::fs::read(&path).map_err(|source| ClipError::Io {
            path: path.clone(),
            source,
        })?;
        let (normalizer, inner) = SentencePiece::from_bytes(&bytes, &path)?.into_parts();
        let id_of = |key: &str, default: &str| -> Result<u32> {
            let token = special_token(dir, key).unwrap_or_else(|| default.to_string());
            inner
                .token_to_id(&token)
                .ok_or_else(|| ClipError::BadTokenizer {
                    path: path.clone(),
                    detail: format!(
                        "{key} {token:?} (from special_tokens_map.json / tokenizer_config.json, else the default) is not a piece of the model"
                    ),
                })
        };
        let cls = id_of("cls_token", "[CLS]")?;
        let pad = id_of("pad_token", "[PAD]")?;
        Ok(Self {
            inner,
            framing: Framing::Cls { cls },
            pad,
            max_len: CONTEXT_LENGTH,
            cleaning: TextCleaning::Lowercase,
            sp_normalizer: Some(Arc::new(normalizer)),
        })
    }

    /// The tokenizer of a checkpoint folder, or the built-in one if the folder has none.
    pub fn for_checkpoint(dir: &Path) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        if path.exists() {
            Self::from_file(&path)
        } else {
            Ok(Self::builtin())
        }
    }

    fn from_tokenizer(mut inner: tokenizers::Tokenizer, pad: Option<u32>) -> Self {
        // Framing, truncation and padding are done here, identically for every tokenizer.json.
        let _ = inner.with_truncation(None);
        inner.with_padding(None);
        let bos = inner.token_to_id("<|startoftext|>").unwrap_or(BOS_ID);
        let eos = inner.token_to_id("<|endoftext|>").unwrap_or(EOS_ID);
        Self {
            inner,
            framing: Framing::Clip { bos, eos },
            pad: pad.unwrap_or(eos),
            max_len: CONTEXT_LENGTH,
            cleaning: TextCleaning::None,
            sp_normalizer: None,
        }
    }

    /// Selects how text is cleaned before BPE (default [`TextCleaning::None`]); applies to
    /// [`Self::encode_words`], [`Self::encode`] and [`Self::encode_batch`].
    pub fn with_cleaning(mut self, cleaning: TextCleaning) -> Self {
        self.cleaning = cleaning;
        self
    }

    pub fn cleaning(&self) -> TextCleaning {
        self.cleaning
    }

    pub fn with_pad_id(mut self, pad: u32) -> Self {
        self.pad = pad;
        self
    }

    /// How rows are framed, and so where the text tower pools.
    pub fn framing(&self) -> &Framing {
        &self.framing
    }

    /// The id every row starts with: `<|startoftext|>` for [`Framing::Clip`], `[CLS]` for
    /// [`Framing::Cls`].
    pub fn bos_id(&self) -> u32 {
        self.framing.first_id()
    }
    /// `<|endoftext|>`, the id [`Framing::Clip`] rows end with. [`Framing::Cls`] rows have no end
    /// token: there this is the pad id, the id that follows the text in a padded row (use
    /// [`Self::framing`] to tell where to pool).
    pub fn eos_id(&self) -> u32 {
        self.framing.last_id().unwrap_or(self.pad)
    }
    /// `[CLS]` for [`Framing::Cls`], else `None`.
    pub fn cls_id(&self) -> Option<u32> {
        match self.framing {
            Framing::Cls { cls } => Some(cls),
            Framing::Clip { .. } => None,
        }
    }
    pub fn pad_id(&self) -> u32 {
        self.pad
    }
    pub fn max_len(&self) -> usize {
        self.max_len
    }
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
    /// The `tokenizers` pipeline. For [`Self::from_sentencepiece_dir`] it has no normalizer: it
    /// expects text normalized by sentencepiece's normalizer (see [`crate::sentencepiece`]).
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The text's ids without framing (BPE ids without BOS/EOS, or sentencepiece ids without
    /// CLS; for chunking long prompts), after the configured [`TextCleaning`].
    pub fn encode_words(&self, text: &str) -> Result<Vec<u32>> {
        let lowered;
        let input = match self.cleaning {
            TextCleaning::OpenClip => return self.encode_words_open_clip(text),
            TextCleaning::Lowercase => {
                lowered = text.to_lowercase();
                lowered.as_str()
            }
            TextCleaning::None => text,
        };
        let normalized;
        let input = match &self.sp_normalizer {
            Some(n) => {
                normalized = n.normalize(input);
                normalized.as_str()
            }
            None => input,
        };
        let enc = self
            .inner
            .encode(input, false)
            .map_err(|e| ClipError::Tokenize {
                text: text.to_string(),
                detail: e.to_string(),
            })?;
        Ok(enc.get_ids().to_vec())
    }

    /// open_clip's `SimpleTokenizer.encode` on its cleaned text: open_clip's regex split, then
    /// byte-level mapping and the checkpoint's BPE model per piece.
    fn encode_words_open_clip(&self, text: &str) -> Result<Vec<u32>> {
        static OPEN_CLIP_SPLIT: LazyLock<Split> = LazyLock::new(|| {
            Split::new(
                SplitPattern::Regex(
                    r"(?i)<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"
                        .into(),
                ),
                SplitDelimiterBehavior::Removed,
                true,
            )
            .expect("valid open_clip regex")
        });
        let err = |detail: String| ClipError::Tokenize {
            text: text.to_string(),
            detail,
        };
        // Python's str.lower (Rust's to_lowercase also applies the final-sigma rule).
        let cleaned = open_clip_clean(text).to_lowercase();
        let mut pieces = PreTokenizedString::from(cleaned.as_str());
        OPEN_CLIP_SPLIT
            .pre_tokenize(&mut pieces)
            .map_err(|e| err(e.to_string()))?;
        // Byte-level mapping only: each open_clip piece is one BPE word.
        let byte_level = ByteLevel::new(false, false, false);
        let model = self.inner.get_model();
        let mut ids = Vec::new();
        for (piece, _, _) in pieces.get_splits(OffsetReferential::Original, OffsetType::None) {
            match piece {
                "<start_of_text>" => ids.push(self.bos_id()),
                "<end_of_text>" => ids.push(self.eos_id()),
                _ => {
                    let mut word = PreTokenizedString::from(piece);
                    byte_level
                        .pre_tokenize(&mut word)
                        .map_err(|e| err(e.to_string()))?;
                    for (mapped, _, _) in
                        word.get_splits(OffsetReferential::Original, OffsetType::None)
                    {
                        let tokens = model.tokenize(mapped).map_err(|e| err(e.to_string()))?;
                        ids.extend(tokens.iter().map(|t| t.id));
                    }
                }
            }
        }
        Ok(ids)
    }

    /// The framed ids of `text`, without padding: `[BOS, words…, EOS]` truncated to 77 ids with
    /// EOS kept last ([`Framing::Clip`]), or `[CLS, pieces…]` truncated to 77 ids
    /// ([`Framing::Cls`]).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let mut words = self.encode_words(text)?;
        words.truncate(self.max_len - self.framing.overhead());
        let mut ids = Vec::with_capacity(words.len() + self.framing.overhead());
        ids.push(self.framing.first_id());
        ids.extend(words);
        ids.extend(self.framing.last_id());
        Ok(ids)
    }

    /// Text of `ids`, without special tokens: the tokenizer.json's special tokens for
    /// [`Framing::Clip`]; a leading CLS and trailing pad ids for [`Framing::Cls`] (sentencepiece
    /// models have no special added tokens).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let mut ids = ids;
        if let Framing::Cls { cls } = self.framing {
            if ids.first() == Some(&cls) {
                ids = &ids[1..];
            }
            while ids.last() == Some(&self.pad) {
                ids = &ids[..ids.len() - 1];
            }
        }
        self.inner
            .decode(ids, true)
            .map_err(|e| ClipError::Tokenize {
                text: format!("{ids:?}"),
                detail: e.to_string(),
            })
    }

    pub fn encode_batch<S: AsRef<str>>(
        &self,
        texts: &[S],
        padding: Padding,
        device: &Device,
    ) -> Result<TokenBatch> {
        let rows = texts
            .iter()
            .map(|t| self.encode(t.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        let len = match padding {
            Padding::MaxLength => self.max_len,
            Padding::Longest => rows
                .iter()
                .map(Vec::len)
                .max()
                .unwrap_or(self.framing.overhead()),
        };
        let mut ids = Vec::with_capacity(rows.len() * len);
        let mut mask = Vec::with_capacity(rows.len() * len);
        for row in &rows {
            ids.extend(row.iter().copied());
            ids.extend(std::iter::repeat_n(self.pad, len - row.len()));
            mask.extend(std::iter::repeat_n(1u32, row.len()));
            mask.extend(std::iter::repeat_n(0u32, len - row.len()));
        }
        let b = rows.len();
        Ok(TokenBatch {
            ids: Tensor::from_vec(ids, (b, len), device)?,
            attention_mask: Tensor::from_vec(mask, (b, len), device)?,
            rows,
        })
    }
}

/// `key` (e.g. `pad_token`) from `special_tokens_map.json`, else `tokenizer_config.json`, in
/// `dir`: a string or an `{"content": ...}` object.
fn special_token(dir: &Path, key: &str) -> Option<String> {
    ["special_tokens_map.json", "tokenizer_config.json"]
        .iter()
        .find_map(|name| {
            let text = std::fs::read_to_string(dir.join(name)).ok()?;
            let v = serde_json::from_str::<serde_json::Value>(&text).ok()?;
            match v.get(key)? {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Object(o) => {
                    o.get("content").and_then(|c| c.as_str()).map(String::from)
                }
                _ => None,
            }
        })
}
