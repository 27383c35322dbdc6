//! The training crate's error type.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Clip(#[from] clipguide_clip::ClipError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Dataset(#[from] clipguide_shapes::DatasetError),
    #[error(transparent)]
    Optim(#[from] clipguide_guide::GuideError),
}

pub type Result<T> = std::result::Result<T, TrainError>;
