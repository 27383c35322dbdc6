//! CLIP beyond "one image, one label": prompt ensembles and knowledge-augmented class prompts
//! (K-LITE), zero-shot evaluation of an image folder, open-vocabulary detection and COCO
//! annotation. Works with any [`clipguide_clip::Clip`]; knows no model's world.
//!
//! - [`prompts`]: templates (one, a file, or the CLIP paper's 80), class prompts with
//!   definitions, candidate sentences, and class embeddings averaged over templates.
//! - [`wordnet`]: first-sense glosses from an installed WordNet database (Debian's
//!   `wordnet-base` files, read directly).
//! - [`folder`]: zero-shot accuracy on an ImageFolder layout (one sub-folder per class).
//! - [`detect`]: boxes from segments of the image ([`segment`]) labelled by dense
//!   patch-to-text similarity (MaskCLIP's value path) and re-scored crops, non-maximum
//!   suppression; similarity heatmaps.
//! - [`segment`]: graph-based segmentation (Felzenszwalb–Huttenlocher), the class-agnostic
//!   candidate boxes.
//! - [`coco`]: COCO detection JSON for a folder, written atomically and resumable.
//!
//! Nothing here prints, parses flags or exits: errors are [`ZeroShotError`].

pub mod coco;
pub mod detect;
mod error;
pub mod folder;
pub mod prompts;
pub mod segment;
pub mod wordnet;

pub use error::{Result, ZeroShotError};
