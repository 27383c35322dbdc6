//! `config.json` of a Hugging Face CLIP checkpoint, parsed with transformers' defaults.
//! Old OpenAI uploads carry both `text_config` and `text_config_dict`; the `_dict` wins, as in transformers.

use crate::error::{ClipError, Result};
use serde_json::{Map, Value};
use std::path::Path;

/// The MLP non-linearity named by `hidden_act`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `x * sigmoid(1.702 x)`: OpenAI's CLIP.
    QuickGelu,
    /// Exact erf GELU: OpenCLIP exports.
    Gelu,
    /// Tanh-approximated GELU (`gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
}

impl Activation {
    pub fn parse(tower: &'static str, s: &str) -> Result<Self> {
        match s {
            "quick_gelu" => Ok(Self::QuickGelu),
            "gelu" => Ok(Self::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Ok(Self::GeluTanh),
            other => Err(ClipError::UnsupportedActivation {
                tower,
                act: other.to_string(),
            }),
        }
    }

    pub fn hf_name(&self) -> &'static str {
        match self {
            Self::QuickGelu => "quick_gelu",
            Self::Gelu => "gelu",
            Self::GeluTanh => "gelu_new",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub max_position_embeddings: usize,
    pub hidden_act: Activation,
    pub layer_norm_eps: f64,
    pub bos_token_id: u32,
    pub eos_token_id: u32,
    pub pad_token_id: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VisionConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_channels: usize,
    pub image_size: usize,
    pub patch_size: usize,
    pub hidden_act: Activation,
    pub layer_norm_eps: f64,
    /// A layer norm before the encoder (CLIP's `pre_layrnorm`; HF ViT has none).
    pub pre_layer_norm: bool,
    /// The patch embedding has a bias (HF ViT; CLIP's has none).
    pub patch_bias: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClipConfig {
    pub text: TextConfig,
    pub vision: VisionConfig,
    pub projection_dim: usize,
    pub logit_scale_init_value: f64,
    /// The text projection has a bias (OpenCLIP's `text_cfg.proj_bias`; never in transformers).
    pub text_projection_bias: bool,
}

impl Default for TextConfig {
    /// transformers' `CLIPTextConfig()` defaults.
    fn default() -> Self {
        Self {
            vocab_size: 49408,
            hidden_size: 512,
            intermediate_size: 2048,
            num_hidden_layers: 12,
            num_attention_heads: 8,
            max_position_embeddings: 77,
            hidden_act: Activation::QuickGelu,
            layer_norm_eps: 1e-5,
            bos_token_id: 49406,
            eos_token_id: 49407,
            pad_token_id: 1,
        }
    }
}

impl Default for VisionConfig {
    /// transformers' `CLIPVisionConfig()` defaults.
    fn default() -> Self {
        Self {
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            num_channels: 3,
            image_size: 224,
            patch_size: 32,
            hidden_act: Activation::QuickGelu,
            layer_norm_eps: 1e-5,
            pre_layer_norm: true,
            patch_bias: false,
        }
    }
}

impl Default for ClipConfig {
    fn default() -> Self {
        Self {
            text: TextConfig::default(),
            vision: VisionConfig::default(),
            projection_dim: 512,
            logit_scale_init_value: 2.6592,
            text_projection_bias: false,
        }
    }
}

fn get_usize(
    m: &Map<String, Value>,
    key: &str,
    into: &mut usize,
) -> std::result::Result<(), String> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(v) => {
            *into = v
                .as_u64()
                .ok_or_else(|| format!("{key} must be a non-negative integer, got {v}"))?
                as usize;
            Ok(())
        }
    }
}

fn get_u32(m: &Map<String, Value>, key: &str, into: &mut u32) -> std::result::Result<(), String> {
    let mut v = *into as usize;
    get_usize(m, key, &mut v)?;
    *into = v as u32;
    Ok(())
}

fn get_f64(m: &Map<String, Value>, key: &str, into: &mut f64) -> std::result::Result<(), String> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(v) => {
            *into = v
                .as_f64()
                .ok_or_else(|| format!("{key} must be a number, got {v}"))?;
            Ok(())
        }
    }
}

fn get_act(
    tower: &'static str,
    m: &Map<String, Value>,
    into: &mut Activation,
) -> Result<std::result::Result<(), String>> {
    match m.get("hidden_act") {
        None | Some(Value::Null) => Ok(Ok(())),
        Some(Value::String(s)) => {
            *into = Activation::parse(tower, s)?;
            Ok(Ok(()))
        }
        Some(v) => Ok(Err(format!("hidden_act must be a string, got {v}"))),
    }
}

/// The sub-config transformers uses: a non-null `*_config_dict` (old OpenAI uploads) replaces
/// `*_config` entirely, on top of the defaults; nulls inside it mean "default".
fn sections<'a>(root: &'a Map<String, Value>, name: &str) -> Vec<&'a Map<String, Value>> {
    if let Some(d) = root
        .get(&format!("{name}_dict"))
        .and_then(|v| v.as_object())
    {
        return vec![d];
    }
    root.get(name)
        .and_then(|v| v.as_object())
        .into_iter()
        .collect()
}

impl ClipConfig {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ClipError::MissingFile {
                    path: path.to_path_buf(),
                    hint: "A CLIP checkpoint folder needs config.json, model.safetensors and tokenizer.json.".into(),
                }
            } else {
                ClipError::Io {
                    path: path.to_path_buf(),
                    source: e,
                }
            }
        })?;
        Self::from_json_str(&text).map_err(|e| match e {
            ClipError::BadConfig { detail, .. } => ClipError::BadConfig {
                path: path.to_path_buf(),
                detail,
            },
            other => other,
        })
    }

    pub fn from_json_str(s: &str) -> Result<Self> {
        let bad = |detail: String| ClipError::BadConfig {
            path: "config.json".into(),
            detail,
        };
        let root: Value = serde_json::from_str(s).map_err(|e| bad(format!("invalid JSON: {e}")))?;
        let root = root
            .as_object()
            .ok_or_else(|| bad("the top level is not a JSON object".into()))?;
        let mut cfg = ClipConfig::default();
        let text_secs = sections(root, "text_config");
        let vision_secs = sections(root, "vision_config");
        if text_secs.is_empty() || vision_secs.is_empty() {
            return Err(bad(
                "missing text_config or vision_config (is this a CLIPModel checkpoint? model_type should be \"clip\")".into(),
            ));
        }
        for m in text_secs {
            let t = &mut cfg.text;
            (|| -> std::result::Result<(), String> {
                get_usize(m, "vocab_size", &mut t.vocab_size)?;
                get_usize(m, "hidden_size", &mut t.hidden_size)?;
                get_usize(m, "intermediate_size", &mut t.intermediate_size)?;
                get_usize(m, "num_hidden_layers", &mut t.num_hidden_layers)?;
                get_usize(m, "num_attention_heads", &mut t.num_attention_heads)?;
                get_usize(m, "max_position_embeddings", &mut t.max_position_embeddings)?;
                get_f64(m, "layer_norm_eps", &mut t.layer_norm_eps)?;
                get_u32(m, "bos_token_id", &mut t.bos_token_id)?;
                get_u32(m, "eos_token_id", &mut t.eos_token_id)?;
                get_u32(m, "pad_token_id", &mut t.pad_token_id)?;
                Ok(())
            })()
            .map_err(|d| bad(format!("text_config: {d}")))?;
            get_act("text", m, &mut t.hidden_act)?.map_err(|d| bad(format!("text_config: {d}")))?;
        }
        for m in vision_secs {
            let v = &mut cfg.vision;
            (|| -> std::result::Result<(), String> {
                get_usize(m, "hidden_size", &mut v.hidden_size)?;
                get_usize(m, "intermediate_size", &mut v.intermediate_size)?;
                get_usize(m, "num_hidden_layers", &mut v.num_hidden_layers)?;
                get_usize(m, "num_attention_heads", &mut v.num_attention_heads)?;
                get_usize(m, "num_channels", &mut v.num_channels)?;
                get_usize(m, "image_size", &mut v.image_size)?;
                get_usize(m, "patch_size", &mut v.patch_size)?;
                get_f64(m, "layer_norm_eps", &mut v.layer_norm_eps)?;
                Ok(())
            })()
            .map_err(|d| bad(format!("vision_config: {d}")))?;
            get_act("vision", m, &mut v.hidden_act)?
                .map_err(|d| bad(format!("vision_config: {d}")))?;
        }
        get_usize(root, "projection_dim", &mut cfg.projection_dim).map_err(bad)?;
        get_f64(
            root,
            "logit_scale_init_value",
            &mut cfg.logit_scale_init_value,
        )
        .map_err(bad)?;
        cfg.validate().map_err(bad)?;
        Ok(cfg)
    }

    pub(crate) fn validate(&self) -> std::result::Result<(), String> {
        let t = &self.text;
        let v = &self.vision;
        if t.num_attention_heads == 0 || !t.hidden_size.is_multiple_of(t.num_attention_heads) {
            return Err(format!(
                "text hidden_size {} is not divisible by num_attention_heads {}",
                t.hidden_size, t.num_attention_heads
            ));
        }
        if v.num_attention_heads == 0 || !v.hidden_size.is_multiple_of(v.num_attention_heads) {
            return Err(format!(
                "vision hidden_size {} is not divisible by num_attention_heads {}",
                v.hidden_size, v.num_attention_heads
            ));
        }
        if v.patch_size == 0 || !v.image_size.is_multiple_of(v.patch_size) {
            return Err(format!(
                "vision image_size {} is not a multiple of patch_size {}",
                v.image_size, v.patch_size
            ));
        }
        Ok(())
    }

    /// The config as transformers writes it, so checkpoints we save load there too.
    pub fn to_hf_json(&self) -> Value {
        let t = &self.text;
        let v = &self.vision;
        serde_json::json!({
            "architectures": ["CLIPModel"],
            "model_type": "clip",
            "projection_dim": self.projection_dim,
            "logit_scale_init_value": self.logit_scale_init_value,
            "torch_dtype": "float32",
            "text_config": {
                "model_type": "clip_text_model",
                "vocab_size": t.vocab_size,
                "hidden_size": t.hidden_size,
                "intermediate_size": t.intermediate_size,
                "num_hidden_layers": t.num_hidden_layers,
                "num_attention_heads": t.num_attention_heads,
                "max_position_embeddings": t.max_position_embeddings,
                "hidden_act": t.hidden_act.hf_name(),
                "layer_norm_eps": t.layer_norm_eps,
                "bos_token_id": t.bos_token_id,
                "eos_token_id": t.eos_token_id,
                "pad_token_id": t.pad_token_id,
                "projection_dim": self.projection_dim,
            },
            "vision_config": {
                "model_type": "clip_vision_model",
                "hidden_size": v.hidden_size,
                "intermediate_size": v.intermediate_size,
                "num_hidden_layers": v.num_hidden_layers,
                "num_attention_heads": v.num_attention_heads,
                "num_channels": v.num_channels,
                "image_size": v.image_size,
                "patch_size": v.patch_size,
                "hidden_act": v.hidden_act.hf_name(),
                "layer_norm_eps": v.layer_norm_eps,
                "projection_dim": self.projection_dim,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_config_dict_replaces_text_config() {
        // As transformers: the _dict wins whole, over defaults (eos 49407), not merged.
        let cfg = ClipConfig::from_json_str(
            r#"{"text_config": {"hidden_size": 64, "eos_token_id": 2},
                "text_config_dict": {"hidden_size": 512, "pad_token_id": null},
                "vision_config": {"patch_size": 16}}"#,
        )
        .unwrap();
        assert_eq!(cfg.text.hidden_size, 512);
        assert_eq!(cfg.text.eos_token_id, 49407);
        assert_eq!(cfg.text.pad_token_id, 1);
        assert_eq!(cfg.vision.patch_size, 16);
        assert_eq!(cfg.vision.hidden_size, 768);
    }

    #[test]
    fn unknown_activation_is_named() {
        let err = ClipConfig::from_json_str(
            r#"{"text_config": {"hidden_act": "swish"}, "vision_config": {}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("swish") && err.contains("quick_gelu"), "{err}");
    }

    #[test]
    fn indivisible_heads_rejected() {
        let err = ClipConfig::from_json_str(
            r#"{"text_config": {"hidden_size": 10, "num_attention_heads": 3}, "vision_config": {}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("divisible"), "{err}");
    }

    #[test]
    fn round_trips_through_hf_json() {
        let mut cfg = ClipConfig::default();
        cfg.text.hidden_act = Activation::Gelu;
        cfg.vision.image_size = 64;
        cfg.vision.patch_size = 8;
        let back = ClipConfig::from_json_str(&cfg.to_hf_json().to_string()).unwrap();
        assert_eq!(cfg, back);
    }
}
