//! rinna's Japanese CLIP and CLOOB (rinna/japanese-clip-vit-b-16, rinna/japanese-cloob-vit-b-16):
//! a BERT text tower pooled at `[CLS]`, an HF ViT vision tower, linear projections, in a
//! `config.json` whose `text_config` is a `BertConfig` and `vision_config` a `ViTConfig`.
//!
//! The ViT is CLIP's pre-norm vision encoder with a patch bias and no pre-norm, so its tensors are
//! renamed onto the CLIP vision tree and run (and differentiate) through the same towers. The
//! BERT runs on candle-transformers' `BertModel`: it matches transformers' (absolute positions
//! from 0, extended attention mask with `f32::MIN`, exact GELU), and the text side needs no
//! gradient.

use crate::config::{Activation, ClipConfig, TextConfig, VisionConfig};
use crate::error::{ClipError, Result};
use crate::preprocess::{Convention, ImageProcessor, Interpolation, Resize, CLIP_MEAN, CLIP_STD};
use crate::tokenizer::ClipTokenizer;
use candle_core::{DType, Tensor};
use candle_transformers::models::bert;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::Path;

/// The repository whose `spiece.model` rinna's models use (their own repos have none).
pub const TOKENIZER_REPO: &str = "rinna/japanese-roberta-base";
/// Tokenizer files fetched from [`TOKENIZER_REPO`].
pub const TOKENIZER_FILES: [&str; 3] = [
    "spiece.model",
    "special_tokens_map.json",
    "tokenizer_config.json",
];
/// rinna's `tokenize` pads every row to this many ids.
pub const CONTEXT_LENGTH: usize = 77;

/// rinna's `model_type`: what turns cosines into logits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ModelType {
    /// A learned `logit_scale` tensor (stored as its log).
    Clip,
    /// CLOOB: a fixed inverse temperature; `scale_hopfield` is the training loss's Hopfield β.
    Cloob { inv_tau: f64, scale_hopfield: f64 },
}

/// A parsed rinna `config.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct RinnaConfig {
    /// The towers' shapes in the terms the rest of clipguide reads (the text entry describes the
    /// BERT: hidden size, layers, heads, vocabulary; 77 positions as rinna uses them).
    pub clip: ClipConfig,
    pub bert: bert::Config,
    pub model_type: ModelType,
    /// The ViT's q, k, v projections have biases (`vision_config.qkv_bias`, true by default).
    pub qkv_bias: bool,
}

/// Whether a `config.json` object is rinna's composition (a BERT text tower).
pub fn is_rinna_config(root: &Value) -> bool {
    root.get("text_config")
        .and_then(|t| t.get("model_type"))
        .and_then(|m| m.as_str())
        == Some("bert")
}

fn field<'a>(
    m: &'a Map<String, Value>,
    sec: &str,
    key: &str,
) -> std::result::Result<&'a Value, String> {
    m.get(key)
        .filter(|v| !v.is_null())
        .ok_or_else(|| format!("{sec}.{key} is missing"))
}

fn usize_of(m: &Map<String, Value>, sec: &str, key: &str) -> std::result::Result<usize, String> {
    let v = field(m, sec, key)?;
    v.as_u64()
        .map(|n| n as usize)
        .ok_or_else(|| format!("{sec}.{key} must be a non-negative integer, got {v}"))
}

fn usize_or(
    m: &Map<String, Value>,
    sec: &str,
    key: &str,
    d: usize,
) -> std::result::Result<usize, String> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(d),
        Some(_) => usize_of(m, sec, key),
    }
}

fn f64_or(
    m: &Map<String, Value>,
    sec: &str,
    key: &str,
    d: f64,
) -> std::result::Result<f64, String> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(d),
        Some(v) => v
            .as_f64()
            .ok_or_else(|| format!("{sec}.{key} must be a number, got {v}")),
    }
}

fn str_or<'a>(
    m: &'a Map<String, Value>,
    sec: &str,
    key: &str,
    d: &'a str,
) -> std::result::Result<&'a str, String> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(d),
        Some(v) => v
            .as_str()
            .ok_or_else(|| format!("{sec}.{key} must be a string, got {v}")),
    }
}

impl RinnaConfig {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| ClipError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        Self::from_json_str(&text).map_err(|detail| ClipError::BadConfig {
            path: path.to_path_buf(),
            detail,
        })
    }

    pub fn from_json_str(s: &str) -> std::result::Result<Self, String> {
        let root: Value = serde_json::from_str(s).map_err(|e| format!("invalid JSON: {e}"))?;
        let root = root
            .as_object()
            .ok_or("the top level is not a JSON object")?;
        let obj = |k: &str| -> std::result::Result<&Map<String, Value>, String> {
            root.get(k)
                .and_then(|v| v.as_object())
                .ok_or_else(|| format!("{k} is missing or not an object"))
        };
        let (t, v) = (obj("text_config")?, obj("vision_config")?);
        let tt = str_or(t, "text_config", "model_type", "")?;
        let vt = str_or(v, "vision_config", "model_type", "")?;
        if tt != "bert" || vt != "vit" {
            return Err(format!(
                "text_config.model_type {tt:?} and vision_config.model_type {vt:?}: rinna's models pair \"bert\" with \"vit\""
            ));
        }
        // BERT.
        let sec = "text_config";
        let act = |m: &Map<String, Value>, sec: &str| -> std::result::Result<Activation, String> {
            match str_or(m, sec, "hidden_act", "gelu")? {
                "gelu" => Ok(Activation::Gelu),
                other => Err(format!(
                    "{sec}.hidden_act = {other:?}: rinna's towers use exact \"gelu\", the only one supported here"
                )),
            }
        };
        act(t, sec)?;
        let pos_type = str_or(t, sec, "position_embedding_type", "absolute")?;
        if pos_type != "absolute" {
            return Err(format!(
                "text_config.position_embedding_type = {pos_type:?}: only \"absolute\" is supported"
            ));
        }
        let bert = bert::Config {
            vocab_size: usize_of(t, sec, "vocab_size")?,
            hidden_size: usize_of(t, sec, "hidden_size")?,
            num_hidden_layers: usize_of(t, sec, "num_hidden_layers")?,
            num_attention_heads: usize_of(t, sec, "num_attention_heads")?,
            intermediate_size: usize_of(t, sec, "intermediate_size")?,
            hidden_act: bert::HiddenAct::Gelu,
            hidden_dropout_prob: 0.0,
            max_position_embeddings: usize_or(t, sec, "max_position_embeddings", 512)?,
            type_vocab_size: usize_or(t, sec, "type_vocab_size", 2)?,
            initializer_range: 0.02,
            layer_norm_eps: f64_or(t, sec, "layer_norm_eps", 1e-12)?,
            pad_token_id: usize_or(t, sec, "pad_token_id", 0)?,
            position_embedding_type: bert::PositionEmbeddingType::Absolute,
            use_cache: false,
            classifier_dropout: None,
            model_type: None,
        };
        if bert.max_position_embeddings < CONTEXT_LENGTH {
            return Err(format!(
                "text_config.max_position_embeddings {} is below the {CONTEXT_LENGTH} positions rinna's tokenizer fills",
                bert.max_position_embeddings
            ));
        }
        // ViT.
        let sec = "vision_config";
        let vision = VisionConfig {
            hidden_size: usize_of(v, sec, "hidden_size")?,
            intermediate_size: usize_of(v, sec, "intermediate_size")?,
            num_hidden_layers: usize_of(v, sec, "num_hidden_layers")?,
            num_attention_heads: usize_of(v, sec, "num_attention_heads")?,
            num_channels: usize_or(v, sec, "num_channels", 3)?,
            image_size: usize_or(v, sec, "image_size", 224)?,
            patch_size: usize_or(v, sec, "patch_size", 16)?,
            hidden_act: act(v, sec)?,
            layer_norm_eps: f64_or(v, sec, "layer_norm_eps", 1e-12)?,
            pre_layer_norm: false,
            patch_bias: true,
        };
        let qkv_bias = match v.get("qkv_bias") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(format!(
                    "vision_config.qkv_bias must be true or false, got {other}"
                ))
            }
        };
        if vision.num_channels != 3 {
            return Err(format!(
                "vision_config.num_channels = {}: only RGB (3) is supported",
                vision.num_channels
            ));
        }
        let model_type = match str_or(root, "config", "model_type", "clip")? {
            "clip" => ModelType::Clip,
            "cloob" => {
                let inv_tau = f64_or(root, "config", "init_inv_tau", 30.0)?;
                let scale_hopfield = f64_or(root, "config", "scale_hopfield", 15.0)?;
                if !(inv_tau > 0.0 && inv_tau.is_finite()) {
                    return Err(format!(
                        "config.init_inv_tau = {inv_tau}: CLOOB's inverse temperature must be a positive number"
                    ));
                }
                ModelType::Cloob {
                    inv_tau,
                    scale_hopfield,
                }
            }
            other => {
                return Err(format!(
                    "model_type = {other:?}: rinna's models are \"clip\" or \"cloob\""
                ))
            }
        };
        let projection_dim = usize_of(root, "config", "projection_dim")?;
        let text = TextConfig {
            vocab_size: bert.vocab_size,
            hidden_size: bert.hidden_size,
            intermediate_size: bert.intermediate_size,
            num_hidden_layers: bert.num_hidden_layers,
            num_attention_heads: bert.num_attention_heads,
            max_position_embeddings: CONTEXT_LENGTH,
            hidden_act: Activation::Gelu,
            layer_norm_eps: bert.layer_norm_eps,
            bos_token_id: 0,
            eos_token_id: 0,
            pad_token_id: bert.pad_token_id as u32,
        };
        let clip = ClipConfig {
            text,
            vision,
            projection_dim,
            logit_scale_init_value: match model_type {
                ModelType::Clip => 2.6592,
                ModelType::Cloob { inv_tau, .. } => inv_tau.ln(),
            },
            text_projection_bias: false,
        };
        clip.validate()?;
        Ok(Self {
            clip,
            bert,
            model_type,
            qkv_bias,
        })
    }
}

/// rinna's tokenizer for a model folder: the folder's own `spiece.model`, else the one of
/// [`TOKENIZER_REPO`] in the Hugging Face cache (the hub path downloads it there).
pub fn tokenizer(dir: &Path) -> Result<ClipTokenizer> {
    if dir.join("spiece.model").exists() {
        return ClipTokenizer::from_sentencepiece_dir(dir);
    }
    match crate::hub::cached_repo_dir(TOKENIZER_REPO, TOKENIZER_FILES[0]) {
        Some(tok_dir) => ClipTokenizer::from_sentencepiece_dir(&tok_dir),
        None => Err(ClipError::MissingFile {
            path: dir.join("spiece.model"),
            hint: format!(
                "rinna's models use the sentencepiece tokenizer of {TOKENIZER_REPO}: copy its spiece.model, special_tokens_map.json and tokenizer_config.json into this folder, or load the model by hub id (which fetches them)"
            ),
        }),
    }
}

/// The preprocessing rinna's package applies: the shorter side to the input size with bilinear
/// resampling (torchvision on PIL), centre crop, OpenAI CLIP's mean/std.
pub fn processor(image_size: usize) -> ImageProcessor {
    ImageProcessor {
        resize: Resize::ShortestEdge {
            size: image_size,
            crop: image_size,
        },
        interpolation: Interpolation::Bilinear,
        mean: CLIP_MEAN,
        std: CLIP_STD,
        convention: Convention::OpenClip,
    }
}

/// Renames the ViT's tensors (`vision_model.*` of an HF `ViTModel`) onto the CLIP vision tree
/// that [`crate::vision::VisionTransformer`] reads; other tensors pass through unchanged.
/// A ViT without `qkv_bias` gets zero q/k/v biases; with it, a missing bias is an error.
pub fn vit_to_clip_names(
    cfg: &VisionConfig,
    qkv_bias: bool,
    mut tensors: HashMap<String, Tensor>,
    path: &Path,
) -> Result<HashMap<String, Tensor>> {
    let d = cfg.hidden_size;
    let mut take = |name: &str| -> Result<Tensor> {
        tensors
            .remove(&format!("vision_model.{name}"))
            .ok_or_else(|| ClipError::ShapeMismatch {
                detail: format!(
                    "{}: tensor vision_model.{name} is missing (the config describes a ViT that has it)",
                    path.display()
                ),
            })
    };
    let mut out = HashMap::new();
    let mut put = |k: String, t: Tensor| {
        out.insert(format!("vision_model.{k}"), t);
    };
    put(
        "embeddings.class_embedding".into(),
        take("embeddings.cls_token")?
            .to_dtype(DType::F32)?
            .flatten_all()?,
    );
    let pos = take("embeddings.position_embeddings")?;
    let n = pos.elem_count() / d.max(1);
    put(
        "embeddings.position_embedding.weight".into(),
        pos.to_dtype(DType::F32)?.reshape((n, d))?,
    );
    put(
        "embeddings.patch_embedding.weight".into(),
        take("embeddings.patch_embeddings.projection.weight")?,
    );
    put(
        "embeddings.patch_embedding.bias".into(),
        take("embeddings.patch_embeddings.projection.bias")?,
    );
    for p in ["weight", "bias"] {
        put(
            format!("post_layernorm.{p}"),
            take(&format!("layernorm.{p}"))?,
        );
    }
    for i in 0..cfg.num_hidden_layers {
        let (from, to) = (format!("encoder.layer.{i}"), format!("encoder.layers.{i}"));
        let pairs = [
            ("layernorm_before", "layer_norm1"),
            ("layernorm_after", "layer_norm2"),
            ("attention.output.dense", "self_attn.out_proj"),
            ("intermediate.dense", "mlp.fc1"),
            ("output.dense", "mlp.fc2"),
        ];
        for (a, b) in pairs {
            for p in ["weight", "bias"] {
                put(format!("{to}.{b}.{p}"), take(&format!("{from}.{a}.{p}"))?);
            }
        }
        for (a, b) in [("query", "q_proj"), ("key", "k_proj"), ("value", "v_proj")] {
            put(
                format!("{to}.self_attn.{b}.weight"),
                take(&format!("{from}.attention.attention.{a}.weight"))?,
            );
            let bias = if qkv_bias {
                take(&format!("{from}.attention.attention.{a}.bias"))?
            } else {
                Tensor::zeros(d, DType::F32, &candle_core::Device::Cpu)?
            };
            put(format!("{to}.self_attn.{b}.bias"), bias);
        }
    }
    // The pooler (when saved) and the text side pass through.
    out.extend(tensors);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = r#"{"model_type": "cloob", "projection_dim": 16, "init_inv_tau": 30.0, "scale_hopfield": 15.0,
        "text_config": {"model_type": "bert", "vocab_size": 100, "hidden_size": 24, "num_hidden_layers": 3,
            "num_attention_heads": 2, "intermediate_size": 40, "max_position_embeddings": 80},
        "vision_config": {"model_type": "vit", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
            "intermediate_size": 64, "image_size": 40, "patch_size": 10}}"#;

    #[test]
    fn cloob_config_reads_its_temperature() {
        let c = RinnaConfig::from_json_str(CFG).unwrap();
        assert_eq!(
            c.model_type,
            ModelType::Cloob {
                inv_tau: 30.0,
                scale_hopfield: 15.0
            }
        );
        assert!((c.clip.logit_scale_init_value.exp() - 30.0).abs() < 1e-9);
        assert!(!c.clip.vision.pre_layer_norm && c.clip.vision.patch_bias);
        assert_eq!(c.clip.vision.layer_norm_eps, 1e-12);
    }

    #[test]
    fn unsupported_settings_are_named() {
        let e = RinnaConfig::from_json_str(&CFG.replace(
            "\"max_position_embeddings\": 80",
            "\"max_position_embeddings\": 80, \"position_embedding_type\": \"relative_key\"",
        ))
        .unwrap_err();
        assert!(e.contains("position_embedding_type"), "{e}");
        let e = RinnaConfig::from_json_str(&CFG.replace(
            "\"patch_size\": 10",
            "\"patch_size\": 10, \"hidden_act\": \"relu\"",
        ))
        .unwrap_err();
        assert!(e.contains("vision_config.hidden_act"), "{e}");
        let e = RinnaConfig::from_json_str(&CFG.replace("\"cloob\"", "\"siglip\"")).unwrap_err();
        assert!(e.contains("model_type"), "{e}");
    }
}
