//! Model-independent text conditioning: prompt weighting syntax, 77-token chunking, weight
//! application on encoder outputs and textual-inversion files, matching A1111, ComfyUI and diffusers.
//!
//! Pipeline: [`weighting::parse_prompt`] → [`chunking::chunk_prompt`] → (text encoder, with
//! [`chunking::InversionSlot`]s filled from [`inversion`] vectors) → [`weights_math::apply_emphasis`].
//! [`encoder`] runs one CLIP text tower (from `clipguide-clip`) at the layer each ecosystem uses;
//! [`conditioning`] composes everything into the presets `sd1`, `sd2`, `sdxl`.

pub mod chunking;
pub mod conditioning;
pub mod encoder;
pub mod inversion;
mod pytext;
pub mod weighting;
pub mod weights_math;

pub use chunking::{
    align_chunks, chunk_prompt, empty_chunk, plain_word_tokenizer, ChunkConfig, ChunkError,
    ChunkMode, ChunkedPrompt, InversionSlot, InversionTriggers, PromptChunk, Trigger,
    WordTokenizer,
};
pub use conditioning::{
    Conditioner, Conditioning, ConditioningError, EncodeOptions, OutputDType, Preset, Weighting,
};
pub use encoder::{
    find_text_encoder_dir, EncodedChunks, LayerChoice, TextEncoder, TextEncoderConfig,
};
pub use inversion::{
    load_inversion, load_inversion_bytes, Embedding, InversionError, InversionFormat,
    LoadedInversion, SdxlEmbedding,
};
pub use weighting::{
    parse_a1111, parse_a1111_lenient, parse_comfy, parse_plain, parse_prompt, ParseError,
    ParseMode, PromptPiece, PromptSyntax, WeightedSpan,
};
pub use weights_math::{apply_emphasis, EmphasisError, EmphasisMode};
