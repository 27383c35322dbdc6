//! Building blocks of CLIP-guided image generation: image parameterisations, differentiable
//! crops and augmentations, guidance losses, optimisers and schedules, all on candle tensors.
//!
//! Every op on the path from the parameters to the loss is differentiable in candle; the
//! few ops candle lacks (inverse real FFT, the spherical distance) are custom ops with a
//! hand-written backward, checked against finite differences in the tests. Only
//! [`generator`] knows the CLIP model; it composes the other pieces with it, one step being:
//!
//! ```text
//! let rgb = param.to_rgb()?;
//! let specs = cutouts.sample(&mut rng, param.height(), param.width());
//! let batch = clip_normalize(&cutouts.apply(&rgb, &specs, &mut rng)?)?;
//! let emb = model.image_features(&batch)?;
//! let loss = (spherical_loss(&emb, &target)? * weight)?;
//! let grads = loss.backward()?;
//! opt.step(&grads)?;
//! ```

pub mod augment;
pub mod config;
pub mod error;
pub mod fft;
pub mod generator;
pub mod image_io;
pub mod loss;
pub mod noise;
pub mod optim;
pub mod overrides;
pub mod param;
pub mod png_meta;
pub mod recipe;
pub mod resample;
pub mod run;
pub mod schedule;
pub mod search;
pub mod stored;

#[cfg(test)]
pub(crate) mod testutil;

pub use augment::{clip_normalize, CutoutSpec, CutoutStyle, Cutouts};
pub use config::{parse_size, GenerateConfig, ImagePrompt, Selection};
pub use error::{GuideError, Result};
pub use generator::{
    contrast_score, weighted_similarity, Generator, PromptSimilarity, RunOutcome, StepReport,
    CONTRAST_SCALE,
};
pub use image_io::{image_to_tensor, tensor_to_image};
pub use loss::{
    cosine_distance, cosine_loss, range_penalty, spherical_distance, spherical_loss,
    total_variation, Distance, RangeLoss, TvKind, TvLoss,
};
pub use optim::{Adam, AdamConfig, DecayScope, LrSchedule};
pub use overrides::{plan_run, ContrastChoice, Overrides, PaletteChoice, Start};
pub use param::{
    FourierImage, Param, Parameterization, PixelImage, PrimitiveShape, PrimitivesImage,
    PrimitivesSpec, PyramidImage,
};
pub use recipe::{ContrastRule, Recipe};
pub use resample::{
    crop_resize, crop_resize_dense, crop_resize_matrix, resize_matrix, Crop, ResizeKind, Span,
};
pub use run::{generate, save_step_png, Observer, RunOutputs, RunSummary};
pub use schedule::{GuideSchedule, Keyframes, PromptSchedule, PromptSpec};
pub use search::{search, DrawnSpace, SearchOutcome, SearchProgress, SearchSettings};
pub use stored::StoredRun;
