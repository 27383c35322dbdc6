//! Errors of the model crate. Each variant says what went wrong and how to fix it,
//! because these messages reach users verbatim through the CLI.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    #[error("{path}: file not found. {hint}")]
    MissingFile { path: PathBuf, hint: String },

    #[error("{path}: could not read it ({source}). Check the file's permissions and that the disk is readable.")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: not a model config clipguide can run ({detail}). Use the config published with the weights: transformers' config.json (CLIPModel.save_pretrained), OpenCLIP's open_clip_config.json or rinna's config.json; a field named above that clipguide does not implement cannot be worked around by editing it.")]
    BadConfig { path: PathBuf, detail: String },

    #[error("unsupported hidden_act {act:?} in {tower} config: clipguide supports \"quick_gelu\", \"gelu\" (erf) and \"gelu_new\"/\"gelu_pytorch_tanh\" (tanh approximation). Fix config.json or convert the checkpoint.")]
    UnsupportedActivation { tower: &'static str, act: String },

    #[error("{path}: weight file is corrupt or in a format clipguide does not read ({detail}). Re-download it (delete the file from the cache first), or save it as safetensors or with a current torch.save.")]
    BadWeights { path: PathBuf, detail: String },

    #[error("checkpoint does not match its config: {detail}. The config and the weights probably come from different models; use the files published together.")]
    ShapeMismatch { detail: String },

    #[error("{path} already exists: give a new folder (nothing is overwritten).")]
    OutputExists { path: PathBuf },

    #[error("cannot convert: {detail}")]
    Unconvertible { detail: String },

    #[error(
        "{path}: could not write it ({source}). Check the disk space and the folder's permissions."
    )]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: tokenizer could not be loaded ({detail}). Use the checkpoint's own tokenizer file: tokenizer.json saved by transformers' CLIPTokenizerFast (remove it to use clipguide's built-in CLIP tokenizer), or the spiece.model of rinna/japanese-roberta-base for rinna's models.")]
    BadTokenizer { path: PathBuf, detail: String },

    #[error("tokenizing {text:?} failed: {detail}")]
    Tokenize { text: String, detail: String },

    #[error(
        "{path}: not a readable image ({detail}). Supported formats: PNG, JPEG, GIF, WebP, BMP."
    )]
    BadImage { path: PathBuf, detail: String },

    #[error("wrong input shape: {detail}")]
    BadInput { detail: String },

    #[error("could not get {repo} from the model hub ({detail}). {hint}")]
    Hub {
        repo: String,
        detail: String,
        hint: String,
    },

    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

pub type Result<T, E = ClipError> = std::result::Result<T, E>;
