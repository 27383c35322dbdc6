//! Training-side data for clipguide's own small CLIP: the synthetic captioned-shapes dataset
//! and the colour-layout judge that scores generated images against a prompt.
//!
//! - [`palette`]: the fixed colour vocabulary and nearest-colour lookup.
//! - [`shapes`]: scene sampling, antialiased rendering, captions, zero-shot probes, dataset I/O.
//! - [`judge`]: prompt parsing and the pass/fail colour-layout check, plus the benchmark prompts.
//!
//! Architecture invariant: `palette`, `shapes` and `judge` know nothing about the CLIP model or
//! tensors; they only produce `image::RgbImage`s and strings, and never print.

pub mod judge;
pub mod palette;
pub mod shapes;

// The model side: training and evaluation of clipguide's own CLIP on the data above.
pub mod adamw;
pub mod cloob;
pub mod eval;
pub mod trainer;
