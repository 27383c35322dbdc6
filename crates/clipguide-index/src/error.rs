//! Errors of the store. Each message names the problem and the fix: they reach users verbatim.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("{path}: could not read it ({source}). Check that it exists and its permissions.")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("the store {store} was built with the model {store_model:?}, not {model:?}: index into another store (--out/--store), or delete this one to rebuild it with {model:?}")]
    ModelMismatch {
        store: PathBuf,
        store_model: String,
        model: String,
    },

    #[error("the store {store} holds {store_dim}-dimensional embeddings, the model gives {dim}: it was built with another model; index into another store or delete this one")]
    DimMismatch {
        store: PathBuf,
        store_dim: usize,
        dim: usize,
    },

    #[error("the query has {got} dimensions but the store {store} holds {want}-dimensional embeddings: embed the query with the store's model ({model:?})")]
    QueryDimension {
        store: PathBuf,
        got: usize,
        want: usize,
        model: String,
    },

    #[error("{path}: no store here (no manifest.json). Build one with `clipguide index DIR` or `clipguide index --merge STORE`.")]
    NoStore { path: PathBuf },

    #[error("{path}: not a store manifest clipguide can read ({detail}). Delete the store folder and index again.")]
    BadManifest { path: PathBuf, detail: String },

    #[error("{path}: part file is corrupt ({detail}). Re-run `clipguide index` on the same source: corrupt parts are dropped and their images embedded again.")]
    BadPart { path: PathBuf, detail: String },

    #[error(
        "shards disagree: {detail}. Build every shard with the same --model and --f32 setting."
    )]
    ShardMismatch { detail: String },

    #[error("{path} is listed by two parts of the store ({a} and {b}): a file may be in one shard only; give each shard a disjoint file list (--shard I/N splits one list)")]
    DuplicatePath { path: String, a: String, b: String },

    #[error("bad shard {spec:?}: {detail}. Write it as I/N with 0 <= I < N, e.g. 2/4.")]
    BadShard { spec: String, detail: String },

    #[error("{path}: no images (png, jpg, jpeg, webp, bmp, gif) to index here")]
    NoImages { path: PathBuf },

    #[error("the store is empty: every image was unreadable or none was given")]
    EmptyStore,

    #[error("the ANN index failed ({detail}). Delete index.usearch in the store and run `clipguide index` again to rebuild it.")]
    Ann { detail: String },

    #[error("{0}")]
    Model(#[from] clipguide_clip::ClipError),

    #[error("model computation failed: {0}")]
    Tensor(#[from] candle_core::Error),
}

pub type Result<T> = std::result::Result<T, IndexError>;

pub(crate) fn read_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> IndexError + '_ {
    move |source| IndexError::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// A failed write, reported as the model crate reports its own (one message for the project).
pub(crate) fn write_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> IndexError + '_ {
    move |source| {
        IndexError::Model(clipguide_clip::ClipError::Write {
            path: path.to_path_buf(),
            source,
        })
    }
}
