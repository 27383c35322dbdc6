//! SentencePiece unigram models (`spiece.model`) as a `tokenizers::Tokenizer` that encodes like
//! `SentencePieceProcessor.encode` (no BOS/EOS), with no Python or C++ at run time.
//!
//! `spiece.model` is a protobuf `ModelProto`; only the fields needed here are decoded, with
//! `prost`'s derive on hand-written message structs (field numbers from sentencepiece's
//! `sentencepiece_model.proto`; unknown fields are skipped, so newer files still load).
//!
//! [`SentencePiece`] (what `ClipTokenizer::from_sentencepiece_dir` uses) is exact: it runs
//! sentencepiece's own normalizer ([`SpNormalizer`], longest-rule matching on the charsmap) and
//! then the `tokenizers` pipeline below without its normalizer. [`tokenizer_from_spiece`] is the
//! whole pipeline in one `tokenizers::Tokenizer`, whose `Precompiled` normalizer differs from
//! sentencepiece on some grapheme clusters (half-width katakana with dakuten, e.g. `ｶﾞ`).
//!
//! The pipeline, in sentencepiece's order:
//! - normalizer: `Precompiled(precompiled_charsmap)` (when the model has one; `identity` has
//!   none), then, with `remove_extra_whitespaces`, spaces stripped at both ends and runs of
//!   spaces collapsed to one (only U+0020 counts, as in sentencepiece: other whitespace such as
//!   `\n` is left to the charsmap), then, with `escape_whitespaces`, `" "` → `"▁"`, then, with
//!   `add_dummy_prefix`, `"▁"` prepended to non-empty text. The dummy prefix is a `Prepend`
//!   normalizer rather than a `Metaspace` pre-tokenizer because `Metaspace` skips the prefix when
//!   the text already starts with `▁`, which sentencepiece does not.
//! - pre-tokenizer: user-defined pieces (type USER_DEFINED, e.g. `[CLS]`) isolated by a `Split`
//!   on the normalized text, since sentencepiece always emits them whole.
//! - model: `Unigram` over every piece, with unknown runs fused into one `unk_id` (or spelled
//!   as byte pieces with `byte_fallback`). Pieces sentencepiece never matches in text
//!   (UNKNOWN, CONTROL such as `<s>`, UNUSED and BYTE) get a score that can never win, and the
//!   unknown-piece penalty is based on the lowest NORMAL score, as in sentencepiece.
//! - decoder: `▁` → space, byte pieces → bytes, fused, one leading space stripped when the model
//!   adds a dummy prefix.

use crate::error::{ClipError, Result};
use std::path::Path;
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::unigram::Unigram;
use tokenizers::normalizers::precompiled::Precompiled;
use tokenizers::normalizers::prepend::Prepend;
use tokenizers::normalizers::replace::Replace;
use tokenizers::normalizers::utils::Sequence as NormalizerSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{DecoderWrapper, NormalizerWrapper, SplitDelimiterBehavior};

/// sentencepiece's whitespace symbol (U+2581).
pub const SPACE_SYMBOL: &str = "\u{2581}";

/// Score given to pieces that sentencepiece never matches in text: low enough that a path
/// through one always loses to the per-character alternatives.
const NEVER_MATCHED_SCORE: f64 = -1e30;

/// `ModelProto.SentencePiece.Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceType {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

impl PieceType {
    fn from_proto(value: Option<i32>) -> Option<Self> {
        Some(match value.unwrap_or(1) {
            1 => Self::Normal,
            2 => Self::Unknown,
            3 => Self::Control,
            4 => Self::UserDefined,
            5 => Self::Unused,
            6 => Self::Byte,
            _ => return None,
        })
    }
}

/// The parts of `sentencepiece_model.proto` this module reads (proto2: absent fields take the
/// defaults written in that file, applied in [`SpModel::parse`]).
mod proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ModelProto {
        #[prost(message, repeated, tag = "1")]
        pub pieces: Vec<SentencePiece>,
        #[prost(message, optional, tag = "2")]
        pub trainer_spec: Option<TrainerSpec>,
        #[prost(message, optional, tag = "3")]
        pub normalizer_spec: Option<NormalizerSpec>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SentencePiece {
        #[prost(string, optional, tag = "1")]
        pub piece: Option<String>,
        #[prost(float, optional, tag = "2")]
        pub score: Option<f32>,
        /// Type enum: NORMAL=1 (default), UNKNOWN=2, CONTROL=3, USER_DEFINED=4, UNUSED=5, BYTE=6.
        #[prost(int32, optional, tag = "3")]
        pub r#type: Option<i32>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TrainerSpec {
        /// ModelType enum: UNIGRAM=1 (default), BPE=2, WORD=3, CHAR=4.
        #[prost(int32, optional, tag = "3")]
        pub model_type: Option<i32>,
        #[prost(bool, optional, tag = "24")]
        pub treat_whitespace_as_suffix: Option<bool>,
        #[prost(bool, optional, tag = "35")]
        pub byte_fallback: Option<bool>,
        #[prost(int32, optional, tag = "40")]
        pub unk_id: Option<i32>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NormalizerSpec {
        #[prost(string, optional, tag = "1")]
        pub name: Option<String>,
        #[prost(bytes = "vec", optional, tag = "2")]
        pub precompiled_charsmap: Option<Vec<u8>>,
        #[prost(bool, optional, tag = "3")]
        pub add_dummy_prefix: Option<bool>,
        #[prost(bool, optional, tag = "4")]
        pub remove_extra_whitespaces: Option<bool>,
        #[prost(bool, optional, tag = "5")]
        pub escape_whitespaces: Option<bool>,
    }
}

/// One piece of the vocabulary; its id is its index.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    pub piece: String,
    pub score: f32,
    pub kind: PieceType,
}

/// The decoded `spiece.model` with proto2 defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct SpModel {
    pub pieces: Vec<Piece>,
    /// `trainer_spec.model_type`: 1 unigram, 2 BPE, 3 word, 4 char.
    pub model_type: i32,
    pub unk_id: u32,
    pub byte_fallback: bool,
    pub treat_whitespace_as_suffix: bool,
    /// `normalizer_spec.name`, e.g. `nmt_nfkc` or `identity`.
    pub normalizer_name: String,
    pub precompiled_charsmap: Vec<u8>,
    pub add_dummy_prefix: bool,
    pub remove_extra_whitespaces: bool,
    pub escape_whitespaces: bool,
}

impl SpModel {
    /// Decodes a serialized `ModelProto`; `path` only names the file in errors.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self> {
        use prost::Message;
        let bad = |detail: String| ClipError::BadTokenizer {
            path: path.to_path_buf(),
            detail,
        };
        let m = proto::ModelProto::decode(bytes)
            .map_err(|e| bad(format!("not a sentencepiece ModelProto: {e}")))?;
        if m.pieces.is_empty() {
            return Err(bad(
                "not a sentencepiece model: it has no pieces (is it really spiece.model?)".into(),
            ));
        }
        let pieces = m
            .pieces
            .iter()
            .enumerate()
            .map(|(id, p)| {
                let kind = PieceType::from_proto(p.r#type)
                    .ok_or_else(|| bad(format!("piece {id} has unknown type {:?}", p.r#type)))?;
                Ok(Piece {
                    piece: p.piece.clone().unwrap_or_default(),
                    score: p.score.unwrap_or(0.0),
                    kind,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let trainer = m.trainer_spec.unwrap_or_default();
        let norm = m.normalizer_spec.unwrap_or_default();
        let unk_id = trainer.unk_id.unwrap_or(0);
        if unk_id < 0 || unk_id as usize >= pieces.len() {
            return Err(bad(format!(
                "unk_id {unk_id} is not a piece id (the model has {} pieces)",
                pieces.len()
            )));
        }
        Ok(Self {
            pieces,
            model_type: trainer.model_type.unwrap_or(1),
            unk_id: unk_id as u32,
            byte_fallback: trainer.byte_fallback.unwrap_or(false),
            treat_whitespace_as_suffix: trainer.treat_whitespace_as_suffix.unwrap_or(false),
            normalizer_name: norm.name.unwrap_or_default(),
            precompiled_charsmap: norm.precompiled_charsmap.unwrap_or_default(),
            add_dummy_prefix: norm.add_dummy_prefix.unwrap_or(true),
            remove_extra_whitespaces: norm.remove_extra_whitespaces.unwrap_or(true),
            escape_whitespaces: norm.escape_whitespaces.unwrap_or(true),
        })
    }

    /// The `tokenizers::Tokenizer` described in the module docs, normalizer included.
    pub fn to_tokenizer(&self, path: &Path) -> Result<tokenizers::Tokenizer> {
        self.build(path, true)
    }

    /// sentencepiece's exact normalizer for this model.
    pub fn normalizer(&self, path: &Path) -> Result<SpNormalizer> {
        SpNormalizer::new(self, path)
    }

    fn build(&self, path: &Path, with_normalizer: bool) -> Result<tokenizers::Tokenizer> {
        let bad = |detail: String| ClipError::BadTokenizer {
            path: path.to_path_buf(),
            detail,
        };
        if self.model_type != 1 {
            let name = match self.model_type {
                2 => "BPE",
                3 => "word",
                4 => "char",
                _ => "unknown",
            };
            return Err(bad(format!(
                "sentencepiece model_type {} ({name}) is not supported: only unigram models (model_type 1) are",
                self.model_type
            )));
        }
        if self.treat_whitespace_as_suffix {
            return Err(bad(
                "treat_whitespace_as_suffix models are not supported (the dummy whitespace would be a suffix)"
                    .into(),
            ));
        }

        // Model. sentencepiece's lattice holds NORMAL and USER_DEFINED pieces only, and its
        // unknown penalty is relative to the lowest NORMAL score.
        let vocab: Vec<(String, f64)> = self
            .pieces
            .iter()
            .map(|p| {
                let score = match p.kind {
                    PieceType::Normal | PieceType::UserDefined => f64::from(p.score),
                    _ => NEVER_MATCHED_SCORE,
                };
                (p.piece.clone(), score)
            })
            .collect();
        let min_normal = self
            .pieces
            .iter()
            .filter(|p| p.kind == PieceType::Normal)
            .map(|p| f64::from(p.score))
            .fold(f64::INFINITY, f64::min);
        let mut unigram = Unigram::from(vocab, Some(self.unk_id as usize), self.byte_fallback)
            .map_err(|e| bad(format!("building the unigram model: {e}")))?;
        if min_normal.is_finite() {
            // An unknown character scores `min_score - 10` (sentencepiece's `kUnkPenalty`, the
            // same constant in `tokenizers`), but `Unigram::from` takes the minimum over every
            // piece, which the never-matched ones would make -1e30.
            unigram.min_score = min_normal;
        }
        let mut tok = tokenizers::Tokenizer::new(unigram);

        // Normalizer.
        let space = if self.escape_whitespaces {
            SPACE_SYMBOL
        } else {
            " "
        };
        let replace = |pattern: &str, content: &str, regex: bool| -> Result<NormalizerWrapper> {
            let r = if regex {
                Replace::new(
                    tokenizers::normalizers::replace::ReplacePattern::Regex(pattern.into()),
                    content,
                )
            } else {
                Replace::new(pattern, content)
            };
            r.map(NormalizerWrapper::Replace)
                .map_err(|e| bad(format!("building the normalizer: {e}")))
        };
        let mut normalizers: Vec<NormalizerWrapper> = Vec::new();
        if !self.precompiled_charsmap.is_empty() {
            let pc = Precompiled::from(&self.precompiled_charsmap).map_err(|e| {
                bad(format!(
                    "precompiled_charsmap of normalizer {:?} is corrupt: {e}",
                    self.normalizer_name
                ))
            })?;
            normalizers.push(NormalizerWrapper::Precompiled(pc));
        }
        if self.remove_extra_whitespaces {
            normalizers.push(replace(r"\A +| +\z", "", true)?);
            normalizers.push(replace(r" {2,}", " ", true)?);
        }
        if self.escape_whitespaces {
            normalizers.push(replace(" ", SPACE_SYMBOL, false)?);
        }
        if self.add_dummy_prefix {
            normalizers.push(NormalizerWrapper::Prepend(Prepend::new(space.to_string())));
        }
        if with_normalizer {
            tok.with_normalizer(Some(NormalizerSequence::new(normalizers)));
        }

        // Pre-tokenizer: user-defined pieces, longest first.
        let mut user: Vec<&str> = self
            .pieces
            .iter()
            .filter(|p| p.kind == PieceType::UserDefined && !p.piece.is_empty())
            .map(|p| p.piece.as_str())
            .collect();
        if !user.is_empty() {
            user.sort_by_key(|p| std::cmp::Reverse(p.len()));
            let pattern = user
                .iter()
                .map(|p| regex::escape(p))
                .collect::<Vec<_>>()
                .join("|");
            let split = Split::new(
                SplitPattern::Regex(pattern),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(|e| bad(format!("building the user-defined piece splitter: {e}")))?;
            tok.with_pre_tokenizer(Some(split));
        }

        // Decoder.
        let mut decoders = vec![DecoderWrapper::Replace(
            Replace::new(SPACE_SYMBOL, " ").map_err(|e| bad(e.to_string()))?,
        )];
        if self.byte_fallback {
            decoders.push(DecoderWrapper::ByteFallback(ByteFallback::new()));
        }
        decoders.push(DecoderWrapper::Fuse(Fuse::new()));
        if self.add_dummy_prefix {
            decoders.push(DecoderWrapper::Strip(Strip::new(' ', 1, 0)));
        }
        tok.with_decoder(Some(DecoderSequence::new(decoders)));
        Ok(tok)
    }
}

/// A tokenizer for a sentencepiece unigram `spiece.model` (its bytes; `path` names it in
/// errors) that encodes like `SentencePieceProcessor(model_file=path).encode(text)`, up to the
/// `Precompiled` normalizer's differences (see [`SentencePiece`], which has none).
pub fn tokenizer_from_spiece(bytes: &[u8], path: &Path) -> Result<tokenizers::Tokenizer> {
    SpModel::parse(bytes, path)?.to_tokenizer(path)
}

/// A sentencepiece unigram model that encodes exactly like `SentencePieceProcessor.encode`:
/// sentencepiece's own normalizer ([`SpNormalizer`]), then a `tokenizers::Tokenizer` with the
/// pre-tokenizer, model and decoder of [`tokenizer_from_spiece`] and no normalizer.
///
/// `tokenizers`' `Precompiled` normalizer differs from sentencepiece's on multi-character rules:
/// it looks whole grapheme clusters up and takes the shortest rule matching their start (dropping
/// the rest of the cluster), where sentencepiece takes the longest rule at each position, so e.g.
/// `ｳ\u{301}` loses its accent and `か\u{3099}` / `ﾊﾟ` are not composed to `が` / `パ`.
#[derive(Clone)]
pub struct SentencePiece {
    normalizer: SpNormalizer,
    tokenizer: tokenizers::Tokenizer,
}

impl SentencePiece {
    /// Loads a serialized `spiece.model`; `path` names it in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let model = SpModel::parse(bytes, path)?;
        Ok(Self {
            normalizer: model.normalizer(path)?,
            tokenizer: model.build(path, false)?,
        })
    }

    pub fn normalizer(&self) -> &SpNormalizer {
        &self.normalizer
    }

    /// The pipeline after normalization: give it [`SpNormalizer::normalize`]d text.
    pub fn tokenizer(&self) -> &tokenizers::Tokenizer {
        &self.tokenizer
    }

    pub fn into_parts(self) -> (SpNormalizer, tokenizers::Tokenizer) {
        (self.normalizer, self.tokenizer)
    }

    /// `SentencePieceProcessor.encode(text)`: piece ids, no BOS/EOS.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let normalized = self.normalizer.normalize(text);
        let enc = self
            .tokenizer
            .encode(normalized.as_str(), false)
            .map_err(|e| ClipError::Tokenize {
                text: text.to_string(),
                detail: e.to_string(),
            })?;
        Ok(enc.get_ids().to_vec())
    }
}

/// sentencepiece's `Normalizer::Normalize`: at each position a user-defined piece is kept as
/// is, else the longest rule of `precompiled_charsmap` (a darts-clone double array over UTF-8
/// bytes) is applied, else the character is kept; with `remove_extra_whitespaces` leading,
/// trailing and repeated spaces are dropped; spaces become `▁` with `escape_whitespaces`; and
/// `add_dummy_prefix` puts `▁` first.
#[derive(Debug, Clone)]
pub struct SpNormalizer {
    /// Double-array units; empty for the `identity` normalizer.
    trie: Vec<u32>,
    /// NUL-terminated replacement strings, indexed by the trie's values.
    normalized: Vec<u8>,
    /// User-defined pieces, longest first.
    user_defined: Vec<String>,
    add_dummy_prefix: bool,
    remove_extra_whitespaces: bool,
    escape_whitespaces: bool,
}

impl SpNormalizer {
    fn new(model: &SpModel, path: &Path) -> Result<Self> {
        let bad = |detail: &str| ClipError::BadTokenizer {
            path: path.to_path_buf(),
            detail: format!(
                "precompiled_charsmap of normalizer {:?} is corrupt: {detail}",
                model.normalizer_name
            ),
        };
        let blob = &model.precompiled_charsmap;
        let (trie, normalized) = if blob.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            let size = blob
                .get(..4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
                .ok_or_else(|| bad("shorter than its header"))?;
            let units = blob
                .get(4..4 + size)
                .filter(|u| u.len() % 4 == 0 && !u.is_empty())
                .ok_or_else(|| bad("trie size past the end"))?;
            let trie = units
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            let normalized = blob[4 + size..].to_vec();
            std::str::from_utf8(&normalized).map_err(|_| bad("replacements are not UTF-8"))?;
            (trie, normalized)
        };
        let mut user_defined: Vec<String> = model
            .pieces
            .iter()
            .filter(|p| p.kind == PieceType::UserDefined && !p.piece.is_empty())
            .map(|p| p.piece.clone())
            .collect();
        user_defined.sort_by_key(|p| std::cmp::Reverse(p.len()));
        Ok(Self {
            trie,
            normalized,
            user_defined,
            add_dummy_prefix: model.add_dummy_prefix,
            remove_extra_whitespaces: model.remove_extra_whitespaces,
            escape_whitespaces: model.escape_whitespaces,
        })
    }

    /// The longest rule matching the start of `key`: (bytes matched, replacement offset).
    fn longest_rule(&self, key: &[u8]) -> Option<(usize, usize)> {
        // darts-clone unit layout: offset in bits 10.. (scaled by bit 9), has_leaf bit 8,
        // label in bits 0..8 (bit 31 set for non-label units), value in bits 0..31 of leaves.
        let offset = |u: u32| ((u >> 10) << ((u & (1 << 9)) >> 6)) as usize;
        let mut best = None;
        let mut pos = offset(*self.trie.first()?);
        for (i, &c) in key.iter().enumerate() {
            pos ^= c as usize;
            let unit = *self.trie.get(pos)?;
            if unit & ((1 << 31) | 0xFF) != c as u32 {
                break;
            }
            pos ^= offset(unit);
            if (unit >> 8) & 1 == 1 {
                let value = *self.trie.get(pos)? & ((1 << 31) - 1);
                best = Some((i + 1, value as usize));
            }
        }
        best
    }

    /// sentencepiece's `NormalizePrefix`: the normalized form of the start of `input` and how
    /// many bytes of `input` it covers.
    fn normalize_prefix<'a>(&'a self, input: &'a str) -> (&'a str, usize) {
        if let Some(u) = self
            .user_defined
            .iter()
            .find(|u| input.starts_with(u.as_str()))
        {
            return (u, u.len());
        }
        if let Some((len, value)) = self.longest_rule(input.as_bytes()) {
            if input.is_char_boundary(len) {
                let rest = self.normalized.get(value..).unwrap_or_default();
                let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
                if let Ok(s) = std::str::from_utf8(&rest[..end]) {
                    return (s, len);
                }
            }
        }
        let len = input.chars().next().map_or(0, char::len_utf8);
        (&input[..len], len)
    }

    /// The normalized text the unigram model segments.
    pub fn normalize(&self, text: &str) -> String {
        let mut input = text;
        if self.remove_extra_whitespaces {
            while !input.is_empty() {
                let (norm, len) = self.normalize_prefix(input);
                if norm != " " {
                    break;
                }
                input = &input[len..];
            }
        }
        let mut out = String::with_capacity(input.len() * 3 / 2 + 3);
        if input.is_empty() {
            return out;
        }
        let space = if self.escape_whitespaces {
            SPACE_SYMBOL
        } else {
            " "
        };
        if self.add_dummy_prefix {
            out.push_str(space);
        }
        let mut prev_space = self.remove_extra_whitespaces;
        while !input.is_empty() {
            let (mut norm, len) = self.normalize_prefix(input);
            if prev_space {
                norm = norm.trim_start_matches(' ');
            }
            if !norm.is_empty() {
                if self.escape_whitespaces {
                    out.push_str(&norm.replace(' ', SPACE_SYMBOL));
                } else {
                    out.push_str(norm);
                }
                prev_space = norm.ends_with(' ');
            }
            input = &input[len..];
            if !self.remove_extra_whitespaces {
                prev_space = false;
            }
        }
        if self.remove_extra_whitespaces {
            while out.ends_with(space) {
                out.truncate(out.len() - space.len());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// An identity-normalized unigram model: (piece, score, type) in id order, unk_id 0.
    fn model(pieces: &[(&str, f32, i32)], byte_fallback: bool, model_type: i32) -> Vec<u8> {
        proto::ModelProto {
            pieces: pieces
                .iter()
                .map(|&(p, s, t)| proto::SentencePiece {
                    piece: Some(p.into()),
                    score: Some(s),
                    r#type: Some(t),
                })
                .collect(),
            trainer_spec: Some(proto::TrainerSpec {
                model_type: Some(model_type),
                byte_fallback: Some(byte_fallback),
                unk_id: Some(0),
                ..Default::default()
            }),
            normalizer_spec: Some(proto::NormalizerSpec {
                name: Some("identity".into()),
                ..Default::default()
            }),
        }
        .encode_to_vec()
    }

    const PIECES: &[(&str, f32, i32)] = &[
        ("<unk>", 0.0, 2),
        ("<s>", 0.0, 3),
        ("[CLS]", 0.0, 4),
        ("▁", -1.0, 1),
        ("a", -2.0, 1),
        ("b", -2.0, 1),
        ("ab", -1.0, 1),
        ("▁ab", -0.5, 1),
        ("s", -3.0, 1),
        ("<", -3.0, 1),
        (">", -3.0, 1),
    ];

    fn encode(bytes: &[u8], text: &str) -> Vec<u32> {
        SentencePiece::from_bytes(bytes, Path::new("spiece.model"))
            .unwrap()
            .encode(text)
            .unwrap()
    }

    #[test]
    fn whitespace_dummy_prefix_and_unknowns() {
        let m = model(PIECES, false, 1);
        assert_eq!(encode(&m, "ab"), vec![7]);
        assert_eq!(encode(&m, "  ab   b  "), vec![7, 3, 5]);
        assert_eq!(encode(&m, ""), Vec::<u32>::new());
        assert_eq!(encode(&m, "   "), Vec::<u32>::new());
        // A run of unknown characters is one unk id.
        assert_eq!(encode(&m, "xyz b"), vec![3, 0, 3, 5]);
        let n = SpModel::parse(&m, Path::new("m"))
            .unwrap()
            .normalizer(Path::new("m"))
            .unwrap();
        assert_eq!(n.normalize("  a  b "), "▁a▁b");
    }

    #[test]
    fn control_pieces_are_text_and_user_defined_pieces_are_whole() {
        let m = model(PIECES, false, 1);
        // `<s>` (CONTROL) is never matched in text; `[CLS]` (USER_DEFINED) always is.
        assert_eq!(encode(&m, "<s>"), vec![3, 9, 8, 10]);
        assert_eq!(encode(&m, "ab[CLS]ab"), vec![7, 2, 6]);
        // The standalone tokenizer agrees here (identity normalizer).
        let tok = tokenizer_from_spiece(&m, Path::new("spiece.model")).unwrap();
        let ids = tok
            .encode("<s> ab[CLS]ab", false)
            .unwrap()
            .get_ids()
            .to_vec();
        assert_eq!(ids, vec![3, 9, 8, 10, 7, 2, 6]);
        assert_eq!(tok.decode(&[7, 3, 5], false).unwrap(), "ab b");
    }

    #[test]
    fn byte_fallback_spells_unknowns_as_bytes() {
        let mut pieces = PIECES.to_vec();
        let names: Vec<String> = (0..=255u8).map(|b| format!("<0x{b:02X}>")).collect();
        let base = pieces.len() as u32;
        pieces.extend(names.iter().map(|n| (n.as_str(), 0.0, 6)));
        let m = model(&pieces, true, 1);
        assert_eq!(encode(&m, "é"), vec![3, base + 0xC3, base + 0xA9]);
        // Byte pieces are not matched as text either.
        assert_eq!(encode(&m, "<0x41>")[..2], [3, 9]);
    }

    #[test]
    fn rejects_other_model_types_and_garbage() {
        let err = tokenizer_from_spiece(&model(PIECES, false, 2), Path::new("x/spiece.model"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("x/spiece.model") && err.contains("BPE"),
            "{err}"
        );
        assert!(SentencePiece::from_bytes(b"\xff\xff\xff", Path::new("m")).is_err());
        assert!(SentencePiece::from_bytes(b"", Path::new("m")).is_err());
    }
}
