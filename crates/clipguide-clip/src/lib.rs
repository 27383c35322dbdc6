//! CLIP in Rust on candle: text and vision towers that load Hugging Face checkpoints, the exact
//! CLIP tokenizer and preprocessing, and similarity / zero-shot classification on top.
//!
//! Every op from pixels to embeddings is differentiable, so guidance can take gradients.

pub mod alloc;
#[cfg(feature = "builtin-model")]
pub mod builtin;
pub mod checkpoint;
pub mod config;
pub mod convert;
pub mod error;
pub mod fsutil;
pub mod half_gemm;
pub mod hub;
pub mod model;
pub mod nn;
pub mod openclip;
pub mod ops;
pub mod pipeline;
pub mod preprocess;
pub mod rinna;
pub mod sentencepiece;
mod sgemm;
pub mod text;
pub mod text_clean;
pub mod tokenizer;
pub mod torch_zip;
pub mod vision;
pub mod weights;

pub use alloc::{tune_allocator, tune_process};
pub use config::{Activation, ClipConfig, TextConfig, VisionConfig};
pub use error::{ClipError, Result};
pub use model::{cosine_matrix, l2_normalize, ClipModel, Family, TextTower};
pub use openclip::{OpenClipConfig, OpenClipOptions};
pub use ops::Precision;
pub use pipeline::{Clip, Similarity};
pub use preprocess::{
    load_image, Convention, ImageProcessor, Interpolation, Resize, CLIP_MEAN, CLIP_STD,
};
pub use text::TextOutput;
pub use tokenizer::{ClipTokenizer, Framing, Padding, TextCleaning, TokenBatch};
pub use vision::VisionOutput;
