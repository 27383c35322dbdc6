use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ZeroShotError {
    #[error(transparent)]
    Clip(#[from] clipguide_clip::ClipError),

    #[error(transparent)]
    Index(#[from] clipguide_index::IndexError),

    /// Stopped while embedding; what was embedded is kept in the store.
    #[error("stopped: {embedded} new image embeddings were kept in {}; run the same command again to go on", store.display())]
    Stopped { store: PathBuf, embedded: usize },

    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A line of a labels, texts, templates or class-names file that cannot be read.
    #[error("{}, line {line}: {detail}", path.display())]
    BadLine {
        path: PathBuf,
        line: usize,
        detail: String,
    },

    #[error("{0}")]
    BadInput(String),

    #[error("no WordNet database in {}: {} missing. Install Debian's wordnet-base package (apt-get install wordnet-base puts it in /usr/share/wordnet) or point at a folder holding WordNet's index.POS and data.POS files", dir.display(), missing.join(", "))]
    WordNetMissing { dir: PathBuf, missing: Vec<String> },

    #[error("WordNet has no entry for {label:?}: give its definition yourself in a labels file (label<TAB>definition)")]
    NotInWordNet { label: String },

    #[error("{}: {detail}", path.display())]
    BadWordNet { path: PathBuf, detail: String },

    #[error("{}: {detail}", path.display())]
    BadFolder { path: PathBuf, detail: String },

    #[error("{}: not a {kind} annotation file this build reads ({detail}): write a new one, or move it aside", path.display())]
    BadAnnotations {
        path: PathBuf,
        kind: &'static str,
        detail: String,
    },
}

pub type Result<T> = std::result::Result<T, ZeroShotError>;

/// Attaches the path to an I/O error.
pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ZeroShotError + '_ {
    move |source| ZeroShotError::Io {
        path: path.to_path_buf(),
        source,
    }
}
