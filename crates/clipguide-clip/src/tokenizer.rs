//! The CLIP BPE tokenizer (via the `tokenizers` crate) with CLIP's framing rules:
//! `<|startoftext|>` … `<|endoftext|>`, at most 77 ids with EOS kept on truncation, checkpoint pad id.

use crate::error::{ClipError, Result};
use crate::text_clean::open_clip_clean;
use candle_core::{Device, Tensor};
use std::path::Path;
use std::sync::LazyLock;
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

#[derive(Clone)]
pub struct ClipTokenizer {
    inner: tokenizers::Tokenizer,
    bos: u32,
    eos: u32,
    pad: u32,
    max_len: usize,
    cleaning: TextCleaning,
}

impl std::fmt::Debug for ClipTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClipTokenizer")
            .field("bos", &self.bos)
            .field("eos", &self.eos)
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
}

/// Token ids of a batch, padded to one length.
#[derive(Debug, Clone)]
pub struct TokenBatch {
    /// [B, L] u32.
    pub ids: Tensor,
    /// [B, L] u32, 1 for real tokens (BOS…EOS), 0 for padding.
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
        let mut pad_token: Option<String> = None;
        if let Some(dir) = path.parent() {
            for name in ["special_tokens_map.json", "tokenizer_config.json"] {
                if pad_token.is_some() {
                    break;
                }
                if let Ok(text) = std::fs::read_to_string(dir.join(name)) {
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                        pad_token = match v.get("pad_token") {
                            Some(serde_json::Value::String(s)) => Some(s.clone()),
                            Some(serde_json::Value::Object(o)) => {
                                o.get("content").and_then(|c| c.as_str()).map(String::from)
                            }
                            _ => None,
                        };
                    }
                }
            }
        }
        let pad_from_json = inner.get_padding().map(|p| p.pad_id);
        let pad = pad_from_json.or_else(|| pad_token.and_then(|t| inner.token_to_id(&t)));
        Ok(Self::from_tokenizer(inner, pad))
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
            bos,
            eos,
            pad: pad.unwrap_or(eos),
            max_len: CONTEXT_LENGTH,
            cleaning: TextCleaning::None,
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

    pub fn bos_id(&self) -> u32 {
        self.bos
    }
    pub fn eos_id(&self) -> u32 {
        self.eos
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
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// BPE ids of `text` without BOS/EOS (for chunking long prompts), after the configured
    /// [`TextCleaning`].
    pub fn encode_words(&self, text: &str) -> Result<Vec<u32>> {
        if self.cleaning == TextCleaning::OpenClip {
            return self.encode_words_open_clip(text);
        }
        let enc = self
            .inner
            .encode(text, false)
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
                "<start_of_text>" => ids.push(self.bos),
                "<end_of_text>" => ids.push(self.eos),
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

    /// `[BOS, words…, EOS]`, truncated to 77 ids with EOS kept last.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let mut words = self.encode_words(text)?;
        words.truncate(self.max_len - 2);
        let mut ids = Vec::with_capacity(words.len() + 2);
        ids.push(self.bos);
        ids.extend(words);
        ids.push(self.eos);
        Ok(ids)
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
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
            Padding::Longest => rows.iter().map(Vec::len).max().unwrap_or(2),
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
