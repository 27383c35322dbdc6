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

    #[error("{path}: not a valid CLIP config.json ({detail}). Use the config.json saved by transformers' CLIPModel.save_pretrained (it needs text_config and vision_config).")]
    BadConfig { path: PathBuf, detail: String },

    #[error("unsupported hidden_act {act:?} in {tower} config: clipguide supports \"quick_gelu\", \"gelu\" (erf) and \"gelu_new\"/\"gelu_pytorch_tanh\" (tanh approximation). Fix config.json or convert the checkpoint.")]
    UnsupportedActivation { tower: &'static str, act: String },

    #[error("{path}: weight file is corrupt or not safetensors ({detail}). Re-download it (delete the file from the cache first) or re-export it with save_pretrained(safe_serialization=True).")]
    BadWeights { path: PathBuf, detail: String },

    #[error("checkpoint does not match its config: {detail}. The config.json and model.safetensors probably come from different models; use the pair saved together.")]
    ShapeMismatch { detail: String },

    #[error("{path}: tokenizer could not be loaded ({detail}). Use the tokenizer.json saved by transformers' CLIPTokenizerFast, or remove it to use clipguide's built-in CLIP tokenizer.")]
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
