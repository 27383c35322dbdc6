//! The embedding store behind `clipguide index` / `search` / `dedupe`: Parquet part files (one
//! row per image: path, size, mtime, content hash, model key, unit embedding as a fixed-size
//! list of f16 or f32) named by a versioned JSON manifest with checksums; incremental,
//! resumable indexing of a folder or of one shard of a file list; merging shards; exact search
//! and near-duplicate pairs, with an HNSW index (usearch) above a size threshold where it
//! measures faster on the store's own rows.

pub mod ann;
pub mod error;
pub mod indexer;
pub mod manifest;
pub mod merge;
pub mod migrate;
pub mod part;
pub mod scan;
pub mod store;

pub use ann::AnnPolicy;
pub use error::{IndexError, Result};
pub use indexer::{index, IndexOptions, IndexReport, Notice, Progress, Source};
pub use manifest::{Manifest, Shard, VectorType};
pub use merge::{merge, MergeReport};
pub use scan::{bytes_key, dir_key, weights_key};
pub use store::{DuplicatePair, Hit, Store};

use clipguide_clip::{l2_normalize, Clip};
use std::path::Path;

/// A text query as a unit vector of `clip`'s embedding space.
pub fn text_query(clip: &Clip, text: &str) -> Result<Vec<f32>> {
    let e = l2_normalize(&clip.embed_texts(&[text])?)?;
    Ok(e.squeeze(0)?.to_vec1::<f32>()?)
}

/// An image query (image-to-image search) as a unit vector of `clip`'s embedding space, the
/// file decoded as the indexer decodes it ([`Clip::load_image_reduced`]), so a stored image
/// finds itself.
pub fn image_query(clip: &Clip, path: &Path) -> Result<Vec<f32>> {
    let img = clip.load_image_reduced(path)?;
    let e = l2_normalize(&clip.embed_images(&[img])?)?;
    Ok(e.squeeze(0)?.to_vec1::<f32>()?)
}
