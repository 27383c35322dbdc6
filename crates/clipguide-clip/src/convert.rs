//! Writing an OpenCLIP checkpoint in the transformers layout, so Python users can load it with
//! `CLIPModel.from_pretrained` (and clipguide reads it faster, with no renaming).
//!
//! The folder is built beside the destination and renamed into place, so a failed or
//! interrupted conversion leaves nothing half-written.

use crate::checkpoint::{self, Layout};
use crate::error::{ClipError, Result};
use crate::openclip::{self, OpenClipConfig, OpenClipOptions};
use crate::preprocess::{Interpolation, Resize};
use crate::tokenizer::BUILTIN_TOKENIZER_JSON;
use crate::weights::read_weights;
use candle_core::Device;
use serde_json::json;
use std::path::Path;

/// What a conversion did, and what the user should know about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversion {
    pub config: OpenClipConfig,
    /// Differences between the two layouts' pipelines that the files cannot express.
    pub notes: Vec<String>,
}

fn io(path: &Path, e: std::io::Error) -> ClipError {
    ClipError::Write {
        path: path.to_path_buf(),
        source: e,
    }
}

fn write_json(path: &Path, v: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(v).expect("JSON values serialise");
    std::fs::write(path, text + "\n").map_err(|e| io(path, e))
}

/// Converts the OpenCLIP checkpoint in `from` to a new transformers-layout folder `to`
/// (config.json, model.safetensors in f32, tokenizer files, preprocessor_config.json).
pub fn open_clip_to_transformers(
    from: &Path,
    to: &Path,
    opts: &OpenClipOptions,
) -> Result<Conversion> {
    let (config_path, weights) = match checkpoint::detect(from)?.layout {
        Layout::OpenClip { config, weights } => (config, weights),
        Layout::Transformers { .. } | Layout::Rinna { .. } => {
            return Err(ClipError::Unconvertible {
                detail: format!(
                    "{} is already in the transformers layout (config.json + weights): only OpenCLIP checkpoints are converted",
                    from.display()
                ),
            })
        }
    };
    if to.exists() {
        return Err(ClipError::OutputExists {
            path: to.to_path_buf(),
        });
    }
    let mut opts = opts.clone();
    if opts.repo_id.is_none() {
        opts.repo_id = crate::hub::repo_id_of_cache_dir(from);
    }
    let cfg = OpenClipConfig::from_file(&config_path, &opts)?;
    if cfg.clip.text_projection_bias {
        return Err(ClipError::Unconvertible {
            detail: format!(
                "{}: text_cfg.proj_bias is set, and transformers' CLIPModel has no text projection bias, so it could not load the result; use the checkpoint from clipguide as it is",
                config_path.display()
            ),
        });
    }
    let pad = match cfg.clip.text.pad_token_id {
        0 => "!",
        49407 => "<|endoftext|>",
        id => {
            return Err(ClipError::Unconvertible {
                detail: format!(
                    "text_cfg.pad_id {id} has no token name the conversion knows (0 and 49407 do)"
                ),
            })
        }
    };
    let tensors = read_weights(&weights, &Device::Cpu)?;
    let tensors = openclip::to_transformers_tensors(&cfg, tensors, &weights)?;

    let mut notes = vec![
        "transformers' CLIPTokenizerFast does not run open_clip's text cleaning (ftfy fixes, HTML entities): texts with those tokenize differently in Python".to_string(),
        "CLIPImageProcessor floors an odd centre-crop offset where torchvision rounds half to even, and composites transparent images onto white where open_clip drops alpha: such images differ by a pixel row or in their transparent parts".to_string(),
    ];
    let p = &cfg.processor;
    let side = p.output_side();
    let (size, do_crop) = match p.resize {
        Resize::ShortestEdge { size, .. } => (json!({ "shortest_edge": size }), true),
        Resize::Squash { size } => (json!({ "height": size, "width": size }), false),
        Resize::LongestEdge { size, .. } => {
            notes.push("open_clip's resize_mode \"longest\" (pad to square) has no CLIPImageProcessor equivalent: preprocessor_config.json says shortest side + centre crop".into());
            (json!({ "shortest_edge": size }), true)
        }
    };
    let preprocessor = json!({
        "image_processor_type": "CLIPImageProcessor",
        "do_resize": true,
        "size": size,
        "resample": match p.interpolation { Interpolation::Bicubic => 3, Interpolation::Bilinear => 2 },
        "do_center_crop": do_crop,
        "crop_size": { "height": side, "width": side },
        "do_rescale": true,
        "rescale_factor": 1.0 / 255.0,
        "do_normalize": true,
        "image_mean": p.mean,
        "image_std": p.std,
        "do_convert_rgb": true,
    });

    let staged = crate::fsutil::Staged::dir(to).map_err(|e| io(to, e))?;
    let dir = staged.path();
    write_json(&dir.join("config.json"), &cfg.clip.to_hf_json())?;
    let model_path = dir.join("model.safetensors");
    candle_core::safetensors::save(&tensors, &model_path).map_err(|e| ClipError::Write {
        path: model_path.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    std::fs::write(dir.join("tokenizer.json"), BUILTIN_TOKENIZER_JSON)
        .map_err(|e| io(&dir.join("tokenizer.json"), e))?;
    let special = json!({
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "pad_token": pad,
    });
    write_json(&dir.join("special_tokens_map.json"), &special)?;
    let mut tok_cfg = special.clone();
    tok_cfg["tokenizer_class"] = json!("CLIPTokenizer");
    tok_cfg["model_max_length"] = json!(cfg.clip.text.max_position_embeddings);
    write_json(&dir.join("tokenizer_config.json"), &tok_cfg)?;
    write_json(&dir.join("preprocessor_config.json"), &preprocessor)?;
    staged.commit().map_err(|e| io(to, e))?;
    Ok(Conversion { config: cfg, notes })
}
