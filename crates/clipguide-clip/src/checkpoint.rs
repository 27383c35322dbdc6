//! Which files of a checkpoint folder describe the model: the transformers layout
//! (`config.json` + `model.safetensors` or `pytorch_model.bin`) or OpenCLIP's
//! (`open_clip_config.json` + `open_clip_model.safetensors` or `open_clip_pytorch_model.bin`).

use crate::error::{ClipError, Result};
use crate::openclip::{self, OpenClipConfig, OpenClipOptions};
use crate::tokenizer::ClipTokenizer;
use std::path::{Path, PathBuf};

/// transformers' weight files, safetensors first as transformers prefers it.
pub const TRANSFORMERS_WEIGHT_FILES: [&str; 2] = ["model.safetensors", "pytorch_model.bin"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    Transformers {
        config: PathBuf,
        weights: PathBuf,
    },
    /// rinna's Japanese CLIP / CLOOB: a transformers-style `config.json` whose text tower is BERT.
    Rinna {
        config: PathBuf,
        weights: PathBuf,
    },
    OpenClip {
        config: PathBuf,
        weights: PathBuf,
    },
}

/// The layout found, and a line for the user when the choice needs saying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    pub layout: Layout,
    pub note: Option<String>,
}

fn first_existing(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    names.iter().map(|n| dir.join(n)).find(|p| p.exists())
}

/// Whether `config.json` is a CLIP config rather than, say, a timm model card's.
pub(crate) fn is_clip_config(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        // A broken config.json is reported by its parser, with the detail.
        return true;
    };
    ["text_config", "text_config_dict", "vision_config"]
        .iter()
        .any(|k| v.get(k).is_some())
}

fn is_rinna(config: &Path) -> bool {
    std::fs::read_to_string(config)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|v| crate::rinna::is_rinna_config(&v))
}

/// Looks at the folder's files. Both complete layouts: transformers' is used, and the note says so.
pub fn detect(dir: &Path) -> Result<Detected> {
    let hf_config = dir.join("config.json");
    let hf = (hf_config.exists() && is_clip_config(&hf_config))
        .then(|| first_existing(dir, &TRANSFORMERS_WEIGHT_FILES))
        .flatten();
    let oc_config = dir.join(openclip::CONFIG_FILE);
    let oc = oc_config
        .exists()
        .then(|| openclip::weight_file(dir))
        .flatten();
    match (hf, oc) {
        (Some(weights), _) if is_rinna(&hf_config) => Ok(Detected {
            layout: Layout::Rinna {
                config: hf_config,
                weights,
            },
            note: None,
        }),
        (Some(weights), oc) => Ok(Detected {
            // The hub path fetches only the chosen layout's weights, plus the OpenCLIP config.
            note: (oc.is_some() || oc_config.exists()).then(|| {
                format!(
                    "{} has both a transformers and an OpenCLIP checkpoint: using config.json + {} (transformers layout)",
                    dir.display(),
                    weights.file_name().unwrap_or_default().to_string_lossy()
                )
            }),
            layout: Layout::Transformers {
                config: hf_config,
                weights,
            },
        }),
        (None, Some(weights)) => Ok(Detected {
            layout: Layout::OpenClip {
                config: oc_config,
                weights,
            },
            note: None,
        }),
        (None, None) => {
            let (path, hint) = if hf_config.exists() && is_clip_config(&hf_config) {
                (
                    dir.join("model.safetensors"),
                    "config.json is here but no weights: add model.safetensors (or pytorch_model.bin).",
                )
            } else if oc_config.exists() {
                (
                    dir.join(openclip::WEIGHT_FILES[0]),
                    "open_clip_config.json is here but no weights: add open_clip_model.safetensors or open_clip_pytorch_model.bin.",
                )
            } else {
                (
                    hf_config,
                    "A CLIP checkpoint folder needs config.json + model.safetensors (transformers layout) or open_clip_config.json + open_clip_model.safetensors / open_clip_pytorch_model.bin (OpenCLIP layout).",
                )
            };
            Err(ClipError::MissingFile {
                path,
                hint: hint.into(),
            })
        }
    }
}

/// The tokenizer of a checkpoint folder in either layout (open_clip's for OpenCLIP; the folder's
/// tokenizer.json, else the built-in one, for transformers).
pub fn tokenizer(dir: &Path) -> Result<ClipTokenizer> {
    match detect(dir)?.layout {
        Layout::Transformers { .. } => ClipTokenizer::for_checkpoint(dir),
        Layout::Rinna { .. } => crate::rinna::tokenizer(dir),
        Layout::OpenClip { config, .. } => {
            OpenClipConfig::from_file(&config, &OpenClipOptions::default())?.tokenizer(dir)
        }
    }
}
