//! OpenCLIP checkpoints (LAION, DFN, MetaCLIP, …) as they are published: `open_clip_config.json`
//! beside `open_clip_model.safetensors` or `open_clip_pytorch_model.bin`.
//!
//! An OpenCLIP ViT is the same network as transformers' `CLIPModel` with other tensor names, so
//! nothing here computes: the config becomes a [`ClipConfig`] and the state dict is renamed onto
//! the transformers tree (q, k, v split out of `in_proj`, the projections transposed, LayerScale
//! folded into the linear layer it scales). Fields the towers do not implement are refused by
//! name rather than ignored.

use crate::config::{Activation, ClipConfig, TextConfig, VisionConfig};
use crate::error::{ClipError, Result};
use crate::preprocess::{Convention, ImageProcessor, Interpolation, Resize};
use crate::tokenizer::{ClipTokenizer, TextCleaning, CONTEXT_LENGTH};
use candle_core::{DType, Tensor};
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = "open_clip_config.json";
/// Weight files, in the order open_clip's hub loader prefers them.
pub const WEIGHT_FILES: [&str; 2] = ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"];

/// Hub repositories of plain-ViT weights that open_clip's own registry (`pretrained.py`, the
/// `quick_gelu=True` entries) marks as trained with QuickGELU, for configs that do not say.
/// Compared case-insensitively.
pub const QUICK_GELU_REPOS: &[&str] = &[
    "apple/DFN2B-CLIP-ViT-B-16",
    "apple/DFN2B-CLIP-ViT-L-14",
    "apple/DFN5B-CLIP-ViT-H-14",
    "apple/DFN5B-CLIP-ViT-H-14-378",
    "timm/vit_base_patch16_clip_224.metaclip_2pt5b",
    "timm/vit_base_patch16_clip_224.metaclip_400m",
    "timm/vit_base_patch16_clip_224.openai",
    "timm/vit_base_patch32_clip_224.laion400m_e31",
    "timm/vit_base_patch32_clip_224.laion400m_e32",
    "timm/vit_base_patch32_clip_224.metaclip_2pt5b",
    "timm/vit_base_patch32_clip_224.metaclip_400m",
    "timm/vit_base_patch32_clip_224.openai",
    "timm/vit_gigantic_patch14_clip_224.metaclip_2pt5b",
    "timm/vit_huge_patch14_clip_224.metaclip_2pt5b",
    "timm/vit_large_patch14_clip_224.metaclip_2pt5b",
    "timm/vit_large_patch14_clip_224.metaclip_400m",
    "timm/vit_large_patch14_clip_224.openai",
    "timm/vit_large_patch14_clip_336.openai",
];

/// Whether `repo` is in [`QUICK_GELU_REPOS`].
pub fn known_quick_gelu(repo: &str) -> bool {
    QUICK_GELU_REPOS
        .iter()
        .any(|r| r.eq_ignore_ascii_case(repo))
}

/// Where the activation of an OpenCLIP checkpoint came from, so the caller can say so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActivationChoice {
    /// `quick_gelu` (or `act_kwargs`) in the config.
    Config(Activation),
    /// The config is silent and the repository is in [`QUICK_GELU_REPOS`].
    KnownRepo { repo: String },
    /// The config is silent: open_clip's default, exact GELU.
    Default,
    /// Set by the caller (`--act`).
    Override(Activation),
}

impl ActivationChoice {
    pub fn activation(&self) -> Activation {
        match self {
            Self::Config(a) | Self::Override(a) => *a,
            Self::KnownRepo { .. } => Activation::QuickGelu,
            Self::Default => Activation::Gelu,
        }
    }

    /// One line for the user.
    pub fn describe(&self) -> String {
        match self {
            Self::Config(a) => format!("activation {} (from the config)", a.hf_name()),
            Self::KnownRepo { repo } => format!(
                "activation quick_gelu: the config does not say, and {repo} was trained with QuickGELU (the activation can be overridden: gelu)"
            ),
            Self::Default => "activation gelu: the config does not set quick_gelu, so open_clip's default applies (the activation can be overridden: quick_gelu)".into(),
            Self::Override(a) => format!("activation {} (set by the caller)", a.hf_name()),
        }
    }
}

/// A parsed `open_clip_config.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenClipConfig {
    /// The towers in transformers' terms.
    pub clip: ClipConfig,
    pub activation: ActivationChoice,
    /// `ls_init_value` set: the blocks carry `ls_1.gamma` / `ls_2.gamma`.
    pub vision_layer_scale: bool,
    pub text_layer_scale: bool,
    /// `model_cfg.custom_text`: the text tower's tensors live under `text.`.
    pub custom_text: bool,
    pub processor: ImageProcessor,
}

/// What the caller knows beyond the files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenClipOptions {
    /// Replaces whatever the config says.
    pub activation: Option<Activation>,
    /// The hub repository the files came from, for [`QUICK_GELU_REPOS`].
    pub repo_id: Option<String>,
}

fn bad(path: &Path, detail: String) -> ClipError {
    ClipError::BadConfig {
        path: path.to_path_buf(),
        detail,
    }
}

/// One section of the config: values read by name, and anything not read refused by name.
struct Section<'a> {
    name: &'static str,
    map: &'a Map<String, Value>,
    seen: BTreeSet<&'static str>,
}

impl<'a> Section<'a> {
    fn new(name: &'static str, map: &'a Map<String, Value>) -> Self {
        Self {
            name,
            map,
            seen: BTreeSet::new(),
        }
    }

    /// The value, `None` when absent or null.
    fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.seen.insert(key);
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn usize(&mut self, key: &'static str, default: usize) -> std::result::Result<usize, String> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_u64().map(|n| n as usize).ok_or_else(|| {
                format!(
                    "{}.{key} must be a non-negative integer, got {v}",
                    self.name
                )
            }),
        }
    }

    /// An int, or a list of two equal ints (open_clip accepts both for sizes).
    fn square(&mut self, key: &'static str, default: usize) -> std::result::Result<usize, String> {
        let name = self.name;
        match self.get(key) {
            Some(Value::Array(a)) => match a.as_slice() {
                [h, w] if h == w && h.as_u64().is_some() => Ok(h.as_u64().unwrap() as usize),
                _ => Err(format!(
                    "{name}.{key} = {a:?}: only square sizes are supported"
                )),
            },
            _ => {
                self.seen.remove(key);
                self.usize(key, default)
            }
        }
    }

    fn f64(&mut self, key: &'static str, default: f64) -> std::result::Result<f64, String> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .ok_or_else(|| format!("{}.{key} must be a number, got {v}", self.name)),
        }
    }

    fn bool(&mut self, key: &'static str) -> std::result::Result<Option<bool>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| format!("{}.{key} must be true or false, got {v}", self.name)),
        }
    }

    fn str(&mut self, key: &'static str) -> std::result::Result<Option<&'a str>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| format!("{}.{key} must be a string, got {v}", self.name)),
        }
    }

    /// Refuses a field that changes the network when set to anything but its default.
    fn refuse_if(
        &mut self,
        key: &'static str,
        is_default: impl Fn(&Value) -> bool,
        what: &str,
    ) -> std::result::Result<(), String> {
        match self.get(key) {
            Some(v) if !is_default(v) => Err(format!(
                "{}.{key} = {v}: {what} is not supported by clipguide's towers",
                self.name
            )),
            _ => Ok(()),
        }
    }

    /// Fields read only to be ignored: they do not change inference.
    fn ignore(&mut self, keys: &[&'static str]) {
        self.seen.extend(keys.iter().copied());
    }

    fn finish(self) -> std::result::Result<(), String> {
        let unknown: Vec<&String> = self
            .map
            .keys()
            .filter(|k| !self.seen.contains(k.as_str()))
            .collect();
        match unknown.first() {
            None => Ok(()),
            Some(k) => Err(format!(
                "{}.{k} is a field clipguide does not know, so it cannot tell whether the towers implement it (remove it from the config if it does not change inference)",
                self.name
            )),
        }
    }
}

fn is_false(v: &Value) -> bool {
    v == &Value::Bool(false)
}

fn norm_eps(s: &mut Section) -> std::result::Result<f64, String> {
    let name = s.name;
    match s.get("norm_kwargs") {
        None => Ok(1e-5),
        Some(Value::Object(m)) => {
            let mut eps = 1e-5;
            for (k, v) in m {
                match (k.as_str(), v.as_f64()) {
                    ("eps", Some(e)) => eps = e,
                    _ => {
                        return Err(format!(
                            "{name}.norm_kwargs.{k} = {v}: only \"eps\" is supported"
                        ))
                    }
                }
            }
            Ok(eps)
        }
        Some(v) => Err(format!("{name}.norm_kwargs must be an object, got {v}")),
    }
}

/// `act_kwargs`: only GELU's tanh approximation changes anything the towers implement.
fn act_kwargs(s: &mut Section) -> std::result::Result<Option<Activation>, String> {
    let name = s.name;
    match s.get("act_kwargs") {
        None => Ok(None),
        Some(Value::Object(m)) if m.is_empty() => Ok(None),
        Some(Value::Object(m)) => match (m.len(), m.get("approximate").and_then(|v| v.as_str())) {
            (1, Some("tanh")) => Ok(Some(Activation::GeluTanh)),
            (1, Some("none")) => Ok(Some(Activation::Gelu)),
            _ => Err(format!(
                "{name}.act_kwargs = {}: only {{\"approximate\": \"tanh\"|\"none\"}} is supported",
                Value::Object(m.clone())
            )),
        },
        Some(v) => Err(format!("{name}.act_kwargs must be an object, got {v}")),
    }
}

/// Fields of open_clip's custom attention block (`block_type: "custom"`).
const CUSTOM_BLOCK_FIELDS: [&str; 6] = [
    "qk_norm",
    "scaled_cosine_attn",
    "scale_heads",
    "scale_attn_inner",
    "scale_attn",
    "scale_fc",
];

fn refuse_custom_block(s: &mut Section) -> std::result::Result<(), String> {
    s.refuse_if(
        "block_type",
        |v| v.as_str() == Some("default"),
        "a custom attention block",
    )?;
    for key in CUSTOM_BLOCK_FIELDS {
        s.refuse_if(key, is_false, "a custom attention block")?;
    }
    Ok(())
}

struct Tower {
    width: usize,
    layers: usize,
    heads: usize,
    intermediate: usize,
    eps: f64,
    layer_scale: bool,
    act: Option<Activation>,
}

fn parse_vision(m: &Map<String, Value>) -> std::result::Result<(Tower, usize, usize), String> {
    let mut s = Section::new("vision_cfg", m);
    s.refuse_if(
        "timm_model_name",
        |_| false,
        "a timm vision tower (timm_model_name)",
    )?;
    if let Some(Value::Array(_)) = s.get("layers") {
        return Err(
            "vision_cfg.layers is a list: that is a ModifiedResNet (RN50 etc.), which clipguide's towers do not implement".into(),
        );
    }
    let width = s.usize("width", 768)?;
    let layers = s.usize("layers", 12)?;
    let head_width = s.usize("head_width", 64)?;
    let mlp_ratio = s.f64("mlp_ratio", 4.0)?;
    let patch = s.square("patch_size", 16)?;
    let image = s.square("image_size", 224)?;
    let layer_scale = s.get("ls_init_value").is_some();
    s.refuse_if("attentional_pool", is_false, "attentional pooling")?;
    s.refuse_if("no_ln_pre", is_false, "a vision tower without ln_pre")?;
    s.refuse_if(
        "pos_embed_type",
        |v| v.as_str() == Some("learnable"),
        "a fixed position embedding",
    )?;
    s.refuse_if(
        "pool_type",
        |v| v.as_str() == Some("tok"),
        "vision pooling other than the class token (\"tok\")",
    )?;
    s.refuse_if("global_average_pool", is_false, "global average pooling")?;
    s.refuse_if("input_patchnorm", is_false, "patch normalisation")?;
    refuse_custom_block(&mut s)?;
    // With class-token pooling, the final LayerNorm before or after pooling is the same map.
    s.ignore(&[
        "final_ln_after_pool",
        "patch_dropout",
        "output_tokens",
        "attn_pooler_queries",
        "attn_pooler_heads",
        "timm_model_pretrained",
        "timm_pool",
        "timm_proj",
        "timm_proj_bias",
        "timm_drop",
        "timm_drop_path",
    ]);
    let eps = norm_eps(&mut s)?;
    let act = act_kwargs(&mut s)?;
    s.finish()?;
    // open_clip: heads = width // head_width, and the attention needs width % heads == 0.
    let heads = width.checked_div(head_width).unwrap_or(0);
    if heads == 0 || !width.is_multiple_of(heads) {
        return Err(format!(
            "vision_cfg.width {width} and head_width {head_width} give {heads} heads, which do not divide the width"
        ));
    }
    let tower = Tower {
        width,
        layers,
        heads,
        // Python's int(width * mlp_ratio).
        intermediate: (width as f64 * mlp_ratio) as usize,
        eps,
        layer_scale,
        act,
    };
    Ok((tower, image, patch))
}

struct TextTower {
    tower: Tower,
    context_length: usize,
    vocab_size: usize,
    pad_id: u32,
    eos_id: u32,
    proj_bias: bool,
}

fn parse_text(m: &Map<String, Value>) -> std::result::Result<TextTower, String> {
    let mut s = Section::new("text_cfg", m);
    s.refuse_if(
        "hf_model_name",
        |_| false,
        "a Hugging Face text tower (hf_model_name)",
    )?;
    s.refuse_if(
        "hf_tokenizer_name",
        |_| false,
        "a Hugging Face tokenizer (hf_tokenizer_name)",
    )?;
    s.refuse_if(
        "tokenizer_mode",
        |_| false,
        "a tokenizer other than CLIP's BPE",
    )?;
    s.refuse_if(
        "tokenizer_kwargs",
        |v| {
            v.as_object()
                .is_some_and(|o| o.iter().all(|(k, v)| k == "clean" && v == "lower"))
        },
        "a tokenizer setting other than clean = \"lower\"",
    )?;
    let width = s.usize("width", 512)?;
    let heads = s.usize("heads", 8)?;
    let layers = s.usize("layers", 12)?;
    let mlp_ratio = s.f64("mlp_ratio", 4.0)?;
    let context_length = s.usize("context_length", 77)?;
    let vocab_size = s.usize("vocab_size", 49408)?;
    let pad_id = s.usize("pad_id", 0)? as u32;
    let layer_scale = s.get("ls_init_value").is_some();
    s.refuse_if("embed_cls", is_false, "a text class token (CoCa)")?;
    s.refuse_if(
        "no_causal_mask",
        is_false,
        "a bidirectional text tower (no_causal_mask)",
    )?;
    s.refuse_if(
        "proj_type",
        |v| v.as_str() == Some("linear"),
        "a text tower without a linear projection",
    )?;
    let pool = s.str("pool_type")?.unwrap_or("argmax");
    // Both pool at the end-of-text token. argmax: the tokenizer puts end-of-text, the largest id
    // of the vocabulary, in every row, so the argmax is its first occurrence.
    let eos_id = match pool {
        "argmax" => vocab_size.saturating_sub(1) as u32,
        "eos" => match s.usize("eos_id", 2)? {
            // 2 is transformers' legacy marker for argmax pooling, which would then apply.
            2 => {
                return Err(
                    "text_cfg.pool_type \"eos\" with eos_id 2: not supported (2 means argmax pooling to the towers)".into(),
                )
            }
            id => id as u32,
        },
        other => {
            return Err(format!(
                "text_cfg.pool_type = {other:?}: only \"argmax\" and \"eos\" (end-of-text pooling) are supported"
            ))
        }
    };
    s.ignore(&[
        "eos_id",
        "final_ln_after_pool",
        "output_tokens",
        "use_pad_mask",
        "correct_cls_mask",
        "hf_model_pretrained",
        "hf_proj_type",
        "hf_pooler_type",
    ]);
    let proj_bias = s.bool("proj_bias")?.unwrap_or(false);
    refuse_custom_block(&mut s)?;
    let eps = norm_eps(&mut s)?;
    let act = act_kwargs(&mut s)?;
    s.finish()?;
    if heads == 0 || !width.is_multiple_of(heads) {
        return Err(format!(
            "text_cfg.width {width} is not divisible by heads {heads}"
        ));
    }
    Ok(TextTower {
        tower: Tower {
            width,
            layers,
            heads,
            intermediate: (width as f64 * mlp_ratio) as usize,
            eps,
            layer_scale,
            act,
        },
        context_length,
        vocab_size,
        pad_id,
        eos_id,
        proj_bias,
    })
}

fn parse_preprocess(
    v: Option<&Value>,
    image_size: usize,
) -> std::result::Result<ImageProcessor, String> {
    let mut p = ImageProcessor {
        convention: Convention::OpenClip,
        ..ImageProcessor::for_size(image_size)
    };
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(p);
    };
    let m = v
        .as_object()
        .ok_or_else(|| format!("preprocess_cfg must be an object, got {v}"))?;
    let mut s = Section::new("preprocess_cfg", m);
    // A number or three numbers, as open_clip accepts.
    let triple =
        |s: &mut Section, key: &'static str| -> std::result::Result<Option<[f32; 3]>, String> {
            let num = |x: &Value| x.as_f64().map(|f| f as f32);
            match s.get(key) {
                None => Ok(None),
                Some(v @ Value::Number(_)) => Ok(num(v).map(|f| [f; 3])),
                Some(Value::Array(a)) if a.len() == 3 && a.iter().all(|x| num(x).is_some()) => {
                    Ok(Some([0, 1, 2].map(|i| num(&a[i]).unwrap_or(f32::NAN))))
                }
                Some(v) => Err(format!(
                    "preprocess_cfg.{key} must be a number or three numbers, got {v}"
                )),
            }
        };
    if let Some(m) = triple(&mut s, "mean")? {
        p.mean = m;
    }
    if let Some(sd) = triple(&mut s, "std")? {
        if sd.iter().any(|x| *x <= 0.0) {
            return Err(format!("preprocess_cfg.std = {sd:?} must be positive"));
        }
        p.std = sd;
    }
    p.interpolation = match s.str("interpolation")? {
        // open_clip's "random" is a training augmentation; inference uses bicubic.
        None | Some("bicubic") | Some("random") => Interpolation::Bicubic,
        Some("bilinear") => Interpolation::Bilinear,
        Some(other) => {
            return Err(format!(
                "preprocess_cfg.interpolation = {other:?}: use \"bicubic\" or \"bilinear\""
            ))
        }
    };
    let fill = s.usize("fill_color", 0)?;
    let fill = u8::try_from(fill)
        .map_err(|_| format!("preprocess_cfg.fill_color = {fill} must be 0..=255"))?;
    p.resize = match s.str("resize_mode")? {
        None | Some("shortest") => Resize::ShortestEdge {
            size: image_size,
            crop: image_size,
        },
        Some("squash") => Resize::Squash { size: image_size },
        Some("longest") => Resize::LongestEdge {
            size: image_size,
            fill,
        },
        Some(other) => {
            return Err(format!(
            "preprocess_cfg.resize_mode = {other:?}: use \"shortest\", \"squash\" or \"longest\""
        ))
        }
    };
    s.refuse_if(
        "mode",
        |v| v.as_str() == Some("RGB"),
        "an input mode other than RGB",
    )?;
    // open_clip takes the size from the vision tower and drops keys it does not know; so do we.
    Ok(p)
}

impl OpenClipConfig {
    pub fn from_file(path: &Path, opts: &OpenClipOptions) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ClipError::MissingFile {
                    path: path.to_path_buf(),
                    hint: "An OpenCLIP checkpoint folder needs open_clip_config.json beside open_clip_model.safetensors or open_clip_pytorch_model.bin.".into(),
                }
            } else {
                ClipError::Io {
                    path: path.to_path_buf(),
                    source: e,
                }
            }
        })?;
        Self::from_json_str(&text, opts).map_err(|d| bad(path, d))
    }

    /// Parses the config; the error names the field at fault.
    pub fn from_json_str(s: &str, opts: &OpenClipOptions) -> std::result::Result<Self, String> {
        let root: Value = serde_json::from_str(s).map_err(|e| format!("invalid JSON: {e}"))?;
        let root = root
            .as_object()
            .ok_or("the top level is not a JSON object")?;
        // The hub file nests the model under model_cfg; open_clip's bundled configs do not.
        let model = match root.get("model_cfg") {
            Some(Value::Object(m)) => m,
            Some(v) => return Err(format!("model_cfg must be an object, got {v}")),
            None => root,
        };
        let mut m = Section::new("model_cfg", model);
        let embed_dim = m.usize("embed_dim", 512)?;
        let quick_gelu = m.bool("quick_gelu")?;
        let custom_text = m.bool("custom_text")?.unwrap_or(false);
        m.refuse_if("multimodal_cfg", |_| false, "a multimodal decoder (CoCa)")?;
        m.refuse_if(
            "init_logit_bias",
            |_| false,
            "a logit bias (SigLIP's sigmoid loss)",
        )?;
        // Training-time settings.
        m.ignore(&[
            "init_logit_scale",
            "cast_dtype",
            "output_dict",
            "nonscalar_logit_scale",
        ]);
        let vision_cfg = match m.get("vision_cfg") {
            Some(Value::Object(v)) => v,
            _ => return Err("model_cfg.vision_cfg is missing or not an object".into()),
        };
        let text_cfg = match m.get("text_cfg") {
            Some(Value::Object(v)) => v,
            _ => return Err("model_cfg.text_cfg is missing or not an object".into()),
        };
        m.finish()?;
        let (vision, image_size, patch_size) = parse_vision(vision_cfg)?;
        let text = parse_text(text_cfg)?;

        if quick_gelu == Some(true) && (vision.act.is_some() || text.tower.act.is_some()) {
            return Err(
                "model_cfg.quick_gelu is true and act_kwargs is set: open_clip cannot build that (QuickGELU takes no arguments)".into(),
            );
        }
        // Each tower's own act_kwargs decide its GELU variant, as in open_clip.
        let from_config = match quick_gelu {
            Some(true) => Some((Activation::QuickGelu, Activation::QuickGelu)),
            Some(false) => Some((
                vision.act.unwrap_or(Activation::Gelu),
                text.tower.act.unwrap_or(Activation::Gelu),
            )),
            None if vision.act.is_some() || text.tower.act.is_some() => Some((
                vision.act.unwrap_or(Activation::Gelu),
                text.tower.act.unwrap_or(Activation::Gelu),
            )),
            None => None,
        };
        let activation = match (opts.activation, from_config, &opts.repo_id) {
            (Some(a), _, _) => ActivationChoice::Override(a),
            (None, Some((v, _)), _) => ActivationChoice::Config(v),
            (None, None, Some(repo)) if known_quick_gelu(repo) => {
                ActivationChoice::KnownRepo { repo: repo.clone() }
            }
            (None, None, _) => ActivationChoice::Default,
        };
        let (vision_act, text_act) = match (&activation, from_config) {
            (ActivationChoice::Config(_), Some(pair)) => pair,
            (choice, _) => (choice.activation(), choice.activation()),
        };
        let processor = match root.get("model_cfg") {
            Some(_) => parse_preprocess(root.get("preprocess_cfg"), image_size)?,
            None => parse_preprocess(None, image_size)?,
        };
        let clip = ClipConfig {
            text: TextConfig {
                vocab_size: text.vocab_size,
                hidden_size: text.tower.width,
                intermediate_size: text.tower.intermediate,
                num_hidden_layers: text.tower.layers,
                num_attention_heads: text.tower.heads,
                max_position_embeddings: text.context_length,
                hidden_act: text_act,
                layer_norm_eps: text.tower.eps,
                bos_token_id: text.vocab_size.saturating_sub(2) as u32,
                eos_token_id: text.eos_id,
                pad_token_id: text.pad_id,
            },
            vision: VisionConfig {
                hidden_size: vision.width,
                intermediate_size: vision.intermediate,
                num_hidden_layers: vision.layers,
                num_attention_heads: vision.heads,
                num_channels: 3,
                image_size,
                patch_size,
                hidden_act: vision_act,
                layer_norm_eps: vision.eps,
                pre_layer_norm: true,
                patch_bias: false,
            },
            projection_dim: embed_dim,
            // open_clip's init, ln(1 / 0.07); the checkpoint's logit_scale replaces it.
            logit_scale_init_value: (1.0f64 / 0.07).ln(),
            text_projection_bias: text.proj_bias,
        };
        clip.validate()?;
        Ok(Self {
            clip,
            activation,
            vision_layer_scale: vision.layer_scale,
            text_layer_scale: text.tower.layer_scale,
            custom_text,
            processor,
        })
    }
}

impl OpenClipConfig {
    /// open_clip's SimpleTokenizer: CLIP's BPE (the built-in vocabulary is the same file), its
    /// text cleaning, the config's pad id. `dir` names the config in the error.
    pub fn tokenizer(&self, dir: &Path) -> Result<ClipTokenizer> {
        let t = &self.clip.text;
        let tok = ClipTokenizer::builtin();
        if t.vocab_size != tok.vocab_size() || t.max_position_embeddings != CONTEXT_LENGTH {
            return Err(bad(
                &dir.join(CONFIG_FILE),
                format!(
                    "text_cfg has vocab_size {} and context_length {}, but open_clip's CLIP tokenizer has {} ids and {CONTEXT_LENGTH} positions: this checkpoint needs another tokenizer, which clipguide does not have",
                    t.vocab_size,
                    t.max_position_embeddings,
                    tok.vocab_size()
                ),
            ));
        }
        Ok(tok
            .with_cleaning(TextCleaning::OpenClip)
            .with_pad_id(t.pad_token_id))
    }
}

/// The weight file of an OpenCLIP folder: one of [`WEIGHT_FILES`], as open_clip's hub loader
/// picks it, else the folder's only `.safetensors` / `.bin` / `.pth` / `.pt` file (a training
/// run's `epoch_N.pt` beside its config).
pub fn weight_file(dir: &Path) -> Option<PathBuf> {
    if let Some(p) = WEIGHT_FILES
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.exists())
    {
        return Some(p);
    }
    let mut found = std::fs::read_dir(dir).ok()?.filter_map(|e| {
        let p = e.ok()?.path();
        let ext = p.extension()?.to_str()?;
        ["safetensors", "bin", "pth", "pt"]
            .contains(&ext)
            .then_some(p)
    });
    match (found.next(), found.next()) {
        (Some(p), None) => Some(p),
        _ => None,
    }
}

/// Takes tensors out of an OpenCLIP state dict by name, checking shapes, and says which file
/// lacks what.
struct StateDict<'a> {
    tensors: HashMap<String, Tensor>,
    path: &'a Path,
}

impl StateDict<'_> {
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = self
            .tensors
            .remove(name)
            .ok_or_else(|| ClipError::ShapeMismatch {
                detail: format!(
                    "{}: tensor {name} is missing (the open_clip_config.json describes a model that has it)",
                    self.path.display()
                ),
            })?;
        if t.dims() != shape {
            return Err(ClipError::ShapeMismatch {
                detail: format!(
                    "{}: tensor {name} has shape {:?}, the config implies {shape:?}",
                    self.path.display(),
                    t.dims()
                ),
            });
        }
        Ok(t.to_dtype(DType::F32)?)
    }
}

/// Renames an OpenCLIP state dict onto transformers' `CLIPModel` tree, in f32: `in_proj` split
/// into q, k, v; `visual.proj` and `text_projection` transposed (they are applied as `x @ P`);
/// LayerScale `γ` folded into the layer it scales (`x + γ·(W h + b)` = `x + (diag(γ) W) h + γ b`).
/// Tensors the config does not account for are an error, as in open_clip's strict loading.
pub fn to_transformers_tensors(
    cfg: &OpenClipConfig,
    tensors: HashMap<String, Tensor>,
    path: &Path,
) -> Result<HashMap<String, Tensor>> {
    let mut sd = StateDict { tensors, path };
    let mut out = HashMap::new();
    let c = &cfg.clip;
    let (v, t, p) = (&c.vision, &c.text, c.projection_dim);

    let grid = v.image_size / v.patch_size;
    let vd = v.hidden_size;
    out.insert(
        "vision_model.embeddings.patch_embedding.weight".into(),
        sd.take("visual.conv1.weight", &[vd, 3, v.patch_size, v.patch_size])?,
    );
    out.insert(
        "vision_model.embeddings.class_embedding".into(),
        sd.take("visual.class_embedding", &[vd])?,
    );
    out.insert(
        "vision_model.embeddings.position_embedding.weight".into(),
        sd.take("visual.positional_embedding", &[grid * grid + 1, vd])?,
    );
    layer_norm(
        &mut sd,
        &mut out,
        "visual.ln_pre",
        "vision_model.pre_layrnorm",
        vd,
    )?;
    for i in 0..v.num_hidden_layers {
        block(
            &mut sd,
            &mut out,
            &format!("visual.transformer.resblocks.{i}"),
            &format!("vision_model.encoder.layers.{i}"),
            vd,
            v.intermediate_size,
            cfg.vision_layer_scale,
        )?;
    }
    layer_norm(
        &mut sd,
        &mut out,
        "visual.ln_post",
        "vision_model.post_layernorm",
        vd,
    )?;
    out.insert(
        "visual_projection.weight".into(),
        sd.take("visual.proj", &[vd, p])?.t()?.contiguous()?,
    );

    let tp = if cfg.custom_text { "text." } else { "" };
    let td = t.hidden_size;
    out.insert(
        "text_model.embeddings.token_embedding.weight".into(),
        sd.take(&format!("{tp}token_embedding.weight"), &[t.vocab_size, td])?,
    );
    out.insert(
        "text_model.embeddings.position_embedding.weight".into(),
        sd.take(
            &format!("{tp}positional_embedding"),
            &[t.max_position_embeddings, td],
        )?,
    );
    for i in 0..t.num_hidden_layers {
        block(
            &mut sd,
            &mut out,
            &format!("{tp}transformer.resblocks.{i}"),
            &format!("text_model.encoder.layers.{i}"),
            td,
            t.intermediate_size,
            cfg.text_layer_scale,
        )?;
    }
    layer_norm(
        &mut sd,
        &mut out,
        &format!("{tp}ln_final"),
        "text_model.final_layer_norm",
        td,
    )?;
    if c.text_projection_bias {
        out.insert(
            "text_projection.weight".into(),
            sd.take(&format!("{tp}text_projection.weight"), &[p, td])?,
        );
        out.insert(
            "text_projection.bias".into(),
            sd.take(&format!("{tp}text_projection.bias"), &[p])?,
        );
    } else {
        out.insert(
            "text_projection.weight".into(),
            sd.take(&format!("{tp}text_projection"), &[td, p])?
                .t()?
                .contiguous()?,
        );
    }
    out.insert("logit_scale".into(), sd.take("logit_scale", &[])?);

    // Buffers open_clip rebuilds rather than loads.
    for buf in ["attn_mask", "text.attn_mask", "visual.attn_mask"] {
        sd.tensors.remove(buf);
    }
    let mut left: Vec<&String> = sd.tensors.keys().collect();
    left.sort();
    if let Some(first) = left.first() {
        let hint = if first.contains("logit_bias") {
            " (a SigLIP logit bias: sigmoid-loss models are not supported)"
        } else if first.contains("ls_") {
            " (LayerScale weights, but the config has no ls_init_value)"
        } else {
            ""
        };
        return Err(ClipError::ShapeMismatch {
            detail: format!(
                "{}: {} tensor(s) the config does not describe, first {first}{hint}",
                path.display(),
                left.len()
            ),
        });
    }
    Ok(out)
}

fn layer_norm(
    sd: &mut StateDict,
    out: &mut HashMap<String, Tensor>,
    from: &str,
    to: &str,
    d: usize,
) -> Result<()> {
    for p in ["weight", "bias"] {
        out.insert(format!("{to}.{p}"), sd.take(&format!("{from}.{p}"), &[d])?);
    }
    Ok(())
}

fn block(
    sd: &mut StateDict,
    out: &mut HashMap<String, Tensor>,
    from: &str,
    to: &str,
    d: usize,
    inter: usize,
    layer_scale: bool,
) -> Result<()> {
    layer_norm(
        sd,
        out,
        &format!("{from}.ln_1"),
        &format!("{to}.layer_norm1"),
        d,
    )?;
    layer_norm(
        sd,
        out,
        &format!("{from}.ln_2"),
        &format!("{to}.layer_norm2"),
        d,
    )?;
    let w = sd.take(&format!("{from}.attn.in_proj_weight"), &[3 * d, d])?;
    let b = sd.take(&format!("{from}.attn.in_proj_bias"), &[3 * d])?;
    for (i, name) in ["q_proj", "k_proj", "v_proj"].iter().enumerate() {
        out.insert(
            format!("{to}.self_attn.{name}.weight"),
            w.narrow(0, i * d, d)?.contiguous()?,
        );
        out.insert(
            format!("{to}.self_attn.{name}.bias"),
            b.narrow(0, i * d, d)?.contiguous()?,
        );
    }
    let gamma = |sd: &mut StateDict, n: u8| -> Result<Option<Tensor>> {
        if layer_scale {
            Ok(Some(sd.take(&format!("{from}.ls_{n}.gamma"), &[d])?))
        } else {
            Ok(None)
        }
    };
    let g1 = gamma(sd, 1)?;
    let g2 = gamma(sd, 2)?;
    let mut scaled = |from_name: String,
                      to_name: String,
                      rows: usize,
                      cols: usize,
                      g: &Option<Tensor>|
     -> Result<()> {
        let w = sd.take(&format!("{from_name}.weight"), &[rows, cols])?;
        let b = sd.take(&format!("{from_name}.bias"), &[rows])?;
        let (w, b) = match g {
            Some(g) => (w.broadcast_mul(&g.unsqueeze(1)?)?, (b * g)?),
            None => (w, b),
        };
        out.insert(format!("{to_name}.weight"), w);
        out.insert(format!("{to_name}.bias"), b);
        Ok(())
    };
    scaled(
        format!("{from}.attn.out_proj"),
        format!("{to}.self_attn.out_proj"),
        d,
        d,
        &g1,
    )?;
    scaled(
        format!("{from}.mlp.c_fc"),
        format!("{to}.mlp.fc1"),
        inter,
        d,
        &None,
    )?;
    scaled(
        format!("{from}.mlp.c_proj"),
        format!("{to}.mlp.fc2"),
        d,
        inter,
        &g2,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> std::result::Result<OpenClipConfig, String> {
        OpenClipConfig::from_json_str(s, &OpenClipOptions::default())
    }

    const BASE: &str = r#"{"model_cfg": {"embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 4, "layers": 2}},
        "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}"#;

    #[test]
    fn defaults_follow_open_clip() {
        let c = parse(BASE).unwrap();
        assert_eq!(c.clip.vision.num_attention_heads, 1); // width 64 / head_width 64
        assert_eq!(c.clip.vision.intermediate_size, 256);
        assert_eq!(c.clip.text.intermediate_size, 128);
        assert_eq!(c.clip.text.pad_token_id, 0);
        assert_eq!(c.clip.text.eos_token_id, 49407);
        assert_eq!(c.activation, ActivationChoice::Default);
        assert_eq!(c.clip.text.hidden_act, Activation::Gelu);
        assert_eq!(c.processor.mean, [0.5; 3]);
        assert_eq!(c.processor.convention, Convention::OpenClip);
    }

    #[test]
    fn known_repo_and_override_choose_the_activation() {
        let opts = OpenClipOptions {
            activation: None,
            repo_id: Some("apple/DFN5B-CLIP-ViT-H-14-378".into()),
        };
        let c = OpenClipConfig::from_json_str(BASE, &opts).unwrap();
        assert_eq!(c.clip.vision.hidden_act, Activation::QuickGelu);
        assert!(c
            .activation
            .describe()
            .contains("apple/DFN5B-CLIP-ViT-H-14-378"));
        let opts = OpenClipOptions {
            activation: Some(Activation::Gelu),
            ..opts
        };
        let c = OpenClipConfig::from_json_str(BASE, &opts).unwrap();
        assert_eq!(c.clip.text.hidden_act, Activation::Gelu);
        let explicit = BASE.replace(
            "\"embed_dim\": 16,",
            "\"embed_dim\": 16, \"quick_gelu\": false,",
        );
        let opts = OpenClipOptions {
            activation: None,
            repo_id: Some("apple/DFN5B-CLIP-ViT-H-14-378".into()),
        };
        let c = OpenClipConfig::from_json_str(&explicit, &opts).unwrap();
        assert_eq!(c.activation, ActivationChoice::Config(Activation::Gelu));
    }

    #[test]
    fn unsupported_fields_are_refused_by_name() {
        let cases = [
            (
                r#""timm_model_name": "vit_base""#,
                "vision",
                "vision_cfg.timm_model_name",
            ),
            (
                r#""attentional_pool": true"#,
                "vision",
                "vision_cfg.attentional_pool",
            ),
            (r#""pool_type": "avg""#, "vision", "vision_cfg.pool_type"),
            (r#""no_ln_pre": true"#, "vision", "vision_cfg.no_ln_pre"),
            (r#""qk_norm": true"#, "vision", "vision_cfg.qk_norm"),
            (
                r#""shiny_new_thing": 3"#,
                "vision",
                "vision_cfg.shiny_new_thing",
            ),
            (
                r#""hf_model_name": "xlm-roberta-base""#,
                "text",
                "text_cfg.hf_model_name",
            ),
            (r#""embed_cls": true"#, "text", "text_cfg.embed_cls"),
            (
                r#""no_causal_mask": true"#,
                "text",
                "text_cfg.no_causal_mask",
            ),
            (r#""pool_type": "last""#, "text", "text_cfg.pool_type"),
            (
                r#""norm_kwargs": {"elementwise_affine": false}"#,
                "text",
                "text_cfg.norm_kwargs",
            ),
        ];
        for (field, tower, want) in cases {
            let cfg = match tower {
                "vision" => {
                    BASE.replace("\"patch_size\": 8", &format!("\"patch_size\": 8, {field}"))
                }
                _ => BASE.replace("\"layers\": 2}}", &format!("\"layers\": 2, {field}}}}}")),
            };
            let e = parse(&cfg).unwrap_err();
            assert!(e.contains(want), "{field}: {e}");
        }
        let e = parse(&BASE.replace(
            "\"embed_dim\": 16,",
            "\"embed_dim\": 16, \"init_logit_bias\": -10,",
        ))
        .unwrap_err();
        assert!(e.contains("init_logit_bias") && e.contains("SigLIP"), "{e}");
        let e = parse(&BASE.replace(
            "\"layers\": 2, \"width\": 64",
            "\"layers\": [3, 4, 6, 3], \"width\": 64",
        ))
        .unwrap_err();
        assert!(e.contains("ModifiedResNet"), "{e}");
        let e = parse(&BASE.replace(
            "\"std\": [0.5, 0.5, 0.5]",
            "\"std\": [0.5, 0.5, 0.5], \"resize_mode\": \"fit\"",
        ))
        .unwrap_err();
        assert!(e.contains("preprocess_cfg.resize_mode"), "{e}");
    }

    #[test]
    fn sizes_may_be_pairs_and_modes_are_read() {
        let cfg = BASE
            .replace("\"image_size\": 32", "\"image_size\": [32, 32]")
            .replace(
                "\"std\": [0.5, 0.5, 0.5]",
                "\"std\": [0.5, 0.5, 0.5], \"resize_mode\": \"longest\", \"interpolation\": \"bilinear\", \"fill_color\": 7",
            );
        let c = parse(&cfg).unwrap();
        assert_eq!(c.clip.vision.image_size, 32);
        assert_eq!(
            c.processor.resize,
            Resize::LongestEdge { size: 32, fill: 7 }
        );
        assert_eq!(c.processor.interpolation, Interpolation::Bilinear);
        let e = parse(&BASE.replace("\"image_size\": 32", "\"image_size\": [32, 48]")).unwrap_err();
        assert!(e.contains("square"), "{e}");
    }
}
