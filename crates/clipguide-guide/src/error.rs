//! The crate's error type: one enum so callers can match on what went wrong.
//! Messages name the offending value and what would have been accepted.

use thiserror::Error;

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, GuideError>;

/// Everything that can go wrong while building or running guidance pieces.
#[derive(Debug, Error)]
pub enum GuideError {
    /// A tensor operation failed inside candle.
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),

    /// A size, count or other argument is outside what the function supports.
    #[error("invalid {what}: {problem}")]
    InvalidArgument {
        /// The argument or field at fault, e.g. `"cutout size"`.
        what: &'static str,
        /// What is wrong and how to fix it.
        problem: String,
    },

    /// A tensor had a shape the function cannot work with.
    #[error("{what} has shape {got:?}, expected {expected}")]
    Shape {
        /// Which tensor.
        what: &'static str,
        /// The shape it had.
        got: Vec<usize>,
        /// The expected form, e.g. `"[1, 3, H, W]"`.
        expected: &'static str,
    },

    /// Text in a prompt or schedule shorthand could not be parsed.
    #[error("in `{input}` at column {column}: {field} `{found}` is invalid; expected {expected}")]
    Parse {
        /// The whole string being parsed.
        input: String,
        /// 1-based character column where the bad field starts.
        column: usize,
        /// Name of the field, e.g. `"weight"`.
        field: &'static str,
        /// The text found there.
        found: String,
        /// The accepted form.
        expected: &'static str,
    },

    /// A schedule file is not valid TOML or does not match the schedule format.
    #[error("schedule file {path}: {source}")]
    Toml {
        /// File name, or `<string>` when parsed from memory.
        path: String,
        /// The TOML error, which names the line, column and field.
        #[source]
        source: toml::de::Error,
    },

    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The CLIP model failed (tokenising, embedding, or a pixel batch it rejects).
    #[error("CLIP model: {0}")]
    Clip(#[from] clipguide_clip::ClipError),

    /// An observer of a run (a live preview, say) failed.
    #[error("{observer}: {problem}")]
    Observer {
        /// Which observer.
        observer: &'static str,
        /// What went wrong.
        problem: String,
    },
    /// An image file (init image, image prompt, PNG with parameters) could not be used.
    #[error("image {path}: {problem}")]
    Image {
        /// The file.
        path: String,
        /// What is wrong and how to fix it.
        problem: String,
    },

    /// An optimiser step found parameters that received no gradient, which means some op on
    /// the path from parameters to loss is not differentiable in candle.
    #[error("no gradient reached {missing} of {total} parameters; an op between the parameters and the loss has no backward in candle")]
    MissingGradient {
        /// How many parameters had no gradient.
        missing: usize,
        /// How many parameters the optimiser holds.
        total: usize,
    },
}

impl GuideError {
    /// An argument or setting `what` that cannot be used, and why.
    pub fn invalid(what: &'static str, problem: impl Into<String>) -> Self {
        GuideError::InvalidArgument {
            what,
            problem: problem.into(),
        }
    }
}
