//! Contrastive pre-training of a small CLIP on the synthetic shapes (the CLIP paper's symmetric
//! InfoNCE with a learnable temperature, or CLOOB: see [`Objective`]), through the same
//! `ClipModel` code that loads checkpoints.
//! Checkpoints are ordinary HF-layout folders; the trainer state beside them makes `--resume`
//! continue bit-exactly.

use crate::adamw::{AdamW, AdamWConfig};
use clipguide_shapes::{HardNegatives, SceneConfig, ShapesDataset};
use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{VarBuilder, VarMap};
use clipguide_clip::{
    l2_normalize, preprocess::normalize, Activation, ClipConfig, ClipModel, ClipTokenizer, Padding,
    TextConfig, VisionConfig, CLIP_MEAN, CLIP_STD,
};
use image::RgbImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

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
}

pub type Result<T> = std::result::Result<T, TrainError>;

/// Image-side augmentation and adversarial training, for perceptually aligned gradients.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AugmentConfig {
    /// Max std of additive Gaussian pixel noise (drawn uniformly in [0, max] per image).
    pub noise_std: f32,
    /// Max shift in pixels (wrap-free: edges repeat).
    pub max_shift: i32,
    /// Brightness/contrast jitter amplitude (kept small so colour names stay true).
    pub colour_jitter: f32,
    /// Probability of a 3×3 box blur.
    pub blur_prob: f64,
    /// PGD steps against the contrastive loss (0 = off).
    pub pgd_steps: usize,
    /// PGD L∞ radius in [0,1] pixel units.
    pub pgd_eps: f32,
    /// Fraction of each batch, from its start, that PGD perturbs; the tail (where the
    /// labelled hard negatives, and after them the `--singles` scenes, sit) stays clean.
    ///
    /// Why: PGD images are the ones whose outline the model is least sure of, and training the
    /// shape head only on them cost ~7 points of zero-shot shape (BENCHMARKS.md); clean
    /// labelled scenes beside adversarial ones keep both. 1 = the whole batch, as before.
    #[serde(default = "one")]
    pub pgd_fraction: f32,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self {
            noise_std: 0.08,
            max_shift: 3,
            colour_jitter: 0.08,
            blur_prob: 0.3,
            pgd_steps: 0,
            pgd_eps: 4.0 / 255.0,
            pgd_fraction: 1.0,
        }
    }
}

/// The contrastive objective.
///
/// Saved in the trainer state as `{"kind": "infonce"}` or
/// `{"kind": "cloob", "inv_tau": 30.0, "scale_hopfield": 15.0}`; states written before it
/// existed have no `objective` and read back as `InfoNce`, so they resume unchanged.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Objective {
    /// CLIP's symmetric InfoNCE with the model's learned logit scale.
    #[default]
    InfoNce,
    /// CLOOB (Hopfield retrieval + InfoLOOB, [`crate::cloob::cloob_loss`]) with a constant
    /// inverse temperature and Hopfield scale. The model's logit scale is not used by the loss
    /// (it gets no gradient and keeps its value, which is still saved).
    Cloob { inv_tau: f64, scale_hopfield: f64 },
}

impl Objective {
    /// CLOOB with rinna's japanese-clip constants (inv_tau 30, scale_hopfield 15).
    pub const CLOOB_DEFAULT: Self = Self::Cloob {
        inv_tau: crate::cloob::DEFAULT_INV_TAU,
        scale_hopfield: crate::cloob::DEFAULT_SCALE_HOPFIELD,
    };

    /// The `--loss` name: "infonce" or "cloob".
    pub fn name(&self) -> &'static str {
        match self {
            Self::InfoNce => "infonce",
            Self::Cloob { .. } => "cloob",
        }
    }
}

impl std::fmt::Display for Objective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InfoNce => write!(f, "infonce"),
            Self::Cloob {
                inv_tau,
                scale_hopfield,
            } => write!(
                f,
                "cloob (--inv-tau {inv_tau}, --scale-hopfield {scale_hopfield})"
            ),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainConfig {
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    pub warmup: usize,
    pub weight_decay: f64,
    pub grad_clip: f64,
    pub seed: u64,
    pub image_size: usize,
    /// ViT patch side; 8 at 64² gives 64 tokens, enough to see where small shapes are.
    #[serde(default = "sixteen")]
    pub patch_size: usize,
    pub checkpoint_every: usize,
    pub augment: AugmentConfig,
    /// Groups of scenes differing in one attribute per batch (synthetic shapes only).
    #[serde(default)]
    pub hard_negatives: HardNegatives,
    /// Weight of the auxiliary attribute losses (0 = off); see [`AuxHeads`].
    #[serde(default)]
    pub aux_weight: f32,
    /// Learning-rate multiplier of the vision tower's position and patch embeddings.
    ///
    /// Why: Adam moves each weight by about `lr` per step whatever its gradient, and the position
    /// embeddings start at std 0.02 against patch features ~25× larger, so at the base rate they
    /// need thousands of steps before placement can matter. A multiplier lets them catch up.
    #[serde(default = "one")]
    pub embedding_lr_mult: f64,
    /// Init std of the vision position embeddings (CLIP's is 0.02).
    ///
    /// Why: after the pre-norm a 0.02 position code is ~1/500 of a token, so the class token,
    /// which starts as a near-uniform average over tokens, carries almost no trace of *where* the
    /// object tokens are; a larger code makes placement visible in that average from step 0.
    #[serde(default = "default_pos_std")]
    pub vision_pos_init_std: f32,
    /// Init std of the vision patch projection (CLIP's is 0.02).
    ///
    /// Why: beside a std-1.0 position code a 0.02 projection makes a patch's content ~1/7 of
    /// its token after the pre-norm, and outlines drown in it (a supervised PyTorch diagnostic
    /// learnt shape to 17.5 %, chance, in 500 steps; 48 % with this at 0.15). BENCHMARKS.md.
    #[serde(default = "default_pos_std")]
    pub vision_patch_init_std: f32,
    /// Initialise the other weights as CLIP does (transformers' `CLIPPreTrainedModel`): std
    /// scaled by width and depth (e.g. the attention output at D^-0.5 = 0.088 at width 128),
    /// instead of 0.02 everywhere. The two vision embedding stds above still apply.
    ///
    /// Why: at 0.02 the blocks start at ~5 % of the residual stream and the class token barely
    /// depends on the image; a supervised PyTorch diagnostic learnt shape to 36.8 % in 500 steps
    /// that way and 44.1 % with CLIP's init (BENCHMARKS.md). Off by default so the shipped
    /// model's recipe still reproduces.
    #[serde(default)]
    pub clip_init: bool,
    /// The contrastive loss (`--loss`); InfoNCE for states written before it existed.
    #[serde(default)]
    pub objective: Objective,
}

impl TrainConfig {
    /// Refuses recipe knobs outside their meaning, naming the CLI flag, before anything is
    /// drawn or written. Why here and not in the CLI: library callers build this struct too.
    fn check_recipe(&self) -> Result<()> {
        let (h, a) = (&self.hard_negatives, &self.augment);
        let bad = |m: String| Err(TrainError::Invalid(m));
        /// `flag value` must lie in [0, 1]; `what` says what the value is.
        fn unit<T: Into<f64> + Copy + std::fmt::Display>(
            flag: &str,
            value: T,
            what: &str,
        ) -> Result<()> {
            if (0.0..=1.0).contains(&value.into()) {
                return Ok(());
            }
            Err(TrainError::Invalid(format!(
                "{flag} {value} is out of range: give {what} between 0 and 1"
            )))
        }
        unit("--hard-negatives", h.fraction, "a fraction of the batch")?;
        if !(h.colour_weight >= 0.0 && h.colour_weight.is_finite()) {
            return bad(format!(
                "--colour-negatives {} is out of range: give a sampling weight of 0 or more",
                h.colour_weight
            ));
        }
        if h.group_size == 0 {
            return bad("--group-size 0 is out of range: give 1 or more scenes per group".into());
        }
        unit("--singles", h.singles, "a fraction of the hard negatives")?;
        unit("--pgd-fraction", a.pgd_fraction, "a fraction of the batch")?;
        unit("--blur", a.blur_prob, "a probability")?;
        if !(a.noise_std >= 0.0 && a.noise_std.is_finite()) {
            return bad(format!(
                "--noise {} is out of range: give a noise std of 0 or more",
                a.noise_std
            ));
        }
        if !(0.0..0.5).contains(&a.colour_jitter) {
            return bad(format!(
                "--jitter {} is out of range: give an amplitude in [0, 0.5)",
                a.colour_jitter
            ));
        }
        if a.max_shift < 0 {
            return bad(format!(
                "--shift {} is out of range: give 0 or more pixels",
                a.max_shift
            ));
        }
        if let Objective::Cloob {
            inv_tau,
            scale_hopfield,
        } = self.objective
        {
            for (flag, v) in [("--inv-tau", inv_tau), ("--scale-hopfield", scale_hopfield)] {
                if !(v > 0.0 && v.is_finite()) {
                    return bad(format!(
                        "{flag} {v} is out of range: give a positive number"
                    ));
                }
            }
        }
        Ok(())
    }
}

fn default_pos_std() -> f32 {
    0.02
}

/// Serde default of 1 for `f32` and `f64` fields.
fn one<T: From<u8>>() -> T {
    T::from(1)
}

/// The patch size of checkpoints written before it was configurable.
fn sixteen() -> usize {
    16
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            steps: 3000,
            batch: 64,
            lr: 1e-3,
            warmup: 200,
            weight_decay: 0.05,
            grad_clip: 1.0,
            seed: 0,
            image_size: 64,
            patch_size: 8,
            checkpoint_every: 250,
            augment: AugmentConfig::default(),
            // The shipped model's recipe (BENCHMARKS.md): hard negatives and auxiliary heads give
            // the loss a reason to learn placement, the large position code lets the class token
            // see it. Without the position code neither moved placement off chance.
            hard_negatives: HardNegatives::recipe(),
            aux_weight: 1.0,
            embedding_lr_mult: 1.0,
            vision_pos_init_std: 1.0,
            vision_patch_init_std: 0.02,
            clip_init: false,
            objective: Objective::InfoNce,
        }
    }
}

/// The shipped model's shape: small enough to train on 2 cores in a session.
pub fn small_clip_config(image_size: usize, patch_size: usize) -> ClipConfig {
    ClipConfig {
        text: TextConfig {
            hidden_size: 128,
            intermediate_size: 512,
            num_hidden_layers: 4,
            num_attention_heads: 4,
            hidden_act: Activation::QuickGelu,
            ..TextConfig::default()
        },
        vision: VisionConfig {
            hidden_size: 128,
            intermediate_size: 512,
            num_hidden_layers: 4,
            num_attention_heads: 4,
            image_size,
            patch_size,
            hidden_act: Activation::QuickGelu,
            ..VisionConfig::default()
        },
        projection_dim: 128,
        logit_scale_init_value: 2.6592,
        text_projection_bias: false,
    }
}

/// Where the data comes from.
pub enum DataSource {
    /// Procedural shapes, streamed (item i of `seed` is rendered on demand).
    Shapes(ShapesDataset),
    /// A folder of image + caption pairs (`captions.jsonl` with {"file","captions"} or
    /// `name.png` + `name.txt`).
    Folder(Vec<(PathBuf, Vec<String>)>),
}

impl DataSource {
    pub fn shapes(seed: u64, size: u32) -> Result<Self> {
        Ok(Self::Shapes(ShapesDataset::with_config(
            seed,
            size,
            SceneConfig::default(),
        )?))
    }

    /// Reads a folder of pairs: captions.jsonl, or image files with a same-named .txt.
    pub fn folder(dir: &Path) -> Result<Self> {
        let jsonl = dir.join(clipguide_shapes::CAPTIONS_FILE);
        let mut pairs = vec![];
        if jsonl.exists() {
            for rec in clipguide_shapes::read_captions(&jsonl)? {
                pairs.push((dir.join(&rec.file), rec.captions));
            }
        } else {
            let rd = std::fs::read_dir(dir).map_err(|e| TrainError::Io {
                path: dir.to_path_buf(),
                source: e,
            })?;
            let mut files: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
            files.sort();
            for f in files {
                let ext = f
                    .extension()
                    .and_then(|e| e.to_str())
                    .unwrap_or("")
                    .to_ascii_lowercase();
                if !["png", "jpg", "jpeg", "webp", "bmp"].contains(&ext.as_str()) {
                    continue;
                }
                if let Ok(t) = std::fs::read_to_string(f.with_extension("txt")) {
                    let caps: Vec<String> = t
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(String::from)
                        .collect();
                    if !caps.is_empty() {
                        pairs.push((f, caps));
                    }
                }
            }
        }
        if pairs.is_empty() {
            return Err(TrainError::Invalid(format!(
                "{}: no image/caption pairs found. Provide captions.jsonl (lines of {{\"file\": ..., \"captions\": [...]}}) or image files with a .txt caption file of the same name.",
                dir.display()
            )));
        }
        Ok(Self::Folder(pairs))
    }

    fn item(&self, index: usize, size: usize) -> Result<(RgbImage, Vec<String>)> {
        match self {
            Self::Shapes(ds) => {
                let (img, caps, _) = ds.get(index);
                Ok((img, caps))
            }
            Self::Folder(pairs) => {
                let (path, caps) = &pairs[index % pairs.len()];
                let img = clipguide_clip::load_image(path)?;
                let p = clipguide_clip::ImageProcessor::for_size(size);
                Ok((p.resize_and_crop(&img), caps.clone()))
            }
        }
    }
}

/// Per-step statistics for progress display and logs.
#[derive(Debug, Clone, Serialize)]
pub struct StepStats {
    pub step: usize,
    pub loss: f32,
    pub accuracy: f32,
    pub logit_scale: f32,
    pub lr: f64,
    /// The auxiliary attribute loss (included in `loss`), when enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aux_loss: Option<f32>,
    /// In-batch accuracy of the auxiliary placement, shape and count heads, when enabled: what
    /// the image embedding already encodes, step by step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aux_accuracy: Option<[f32; 3]>,
}

pub struct Trainer {
    pub config: TrainConfig,
    pub model_config: ClipConfig,
    varmap: VarMap,
    model: ClipModel,
    opt: AdamW,
    tokenizer: ClipTokenizer,
    data: DataSource,
    step: usize,
    device: Device,
    aux: Option<(VarMap, AuxHeads)>,
}

/// Linear probes from the normalised image embedding to the placement (9), shape (6) and count (3)
/// of single-object scenes, trained beside the contrastive loss on the hard-negative items.
///
/// Why: the contrastive loss alone only slowly discovers attributes the batch rarely needs, and
/// a model fine-tuned with hard negatives alone stayed near chance on placement for 800 steps.
/// Supervising the embedding with the scene labels the generator already knows makes those
/// attributes linearly readable, after which the contrastive loss only has to align the text.
/// The heads are training scaffolding: saved beside the checkpoint, never part of it.
struct AuxHeads {
    placement: candle_nn::Linear,
    shape: candle_nn::Linear,
    count: candle_nn::Linear,
}

const AUX_HEADS_FILE: &str = "aux_heads.safetensors";
const AUX_TEMPERATURE: f64 = 16.0;

impl AuxHeads {
    fn new(dim: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            placement: candle_nn::linear(dim, 9, vb.pp("placement"))?,
            shape: candle_nn::linear(dim, 6, vb.pp("shape"))?,
            count: candle_nn::linear(dim, 3, vb.pp("count"))?,
        })
    }

    /// Mean cross-entropy of the three heads on `embeds` (normalised) against `labels`, and each
    /// head's accuracy.
    fn loss(&self, embeds: &Tensor, labels: &[[u32; 3]]) -> Result<(Tensor, [f32; 3])> {
        use candle_core::Module;
        // On the unit sphere logits from a freshly initialised head are tiny and Adam would need
        // thousands of steps to scale them up; a fixed temperature (like CLIP's logit scale) lets
        // the probes become confident within a few dozen steps.
        let e = (l2_normalize(embeds)? * AUX_TEMPERATURE)?;
        let dev = embeds.device();
        let mut total: Option<Tensor> = None;
        let mut accuracy = [0f32; 3];
        for (k, head) in [&self.placement, &self.shape, &self.count]
            .into_iter()
            .enumerate()
        {
            let want: Vec<u32> = labels.iter().map(|l| l[k]).collect();
            let logits = head.forward(&e)?;
            let got = logits.argmax(D::Minus1)?.to_vec1::<u32>()?;
            let hits = got.iter().zip(&want).filter(|(g, w)| g == w).count();
            accuracy[k] = hits as f32 / want.len().max(1) as f32;
            let y = Tensor::from_vec(want, labels.len(), dev)?;
            let ce = candle_nn::loss::cross_entropy(&logits, &y)?;
            total = Some(match total {
                Some(t) => (t + ce)?,
                None => ce,
            });
        }
        Ok(((total.expect("three heads") / 3.0)?, accuracy))
    }
}

/// Labels of a single-group scene for [`AuxHeads`]: placement index, shape index, count − 1.
fn aux_labels(scene: &clipguide_shapes::SceneSpec) -> Option<[u32; 3]> {
    let [g] = scene.groups.as_slice() else {
        return None;
    };
    let shape = clipguide_shapes::Shape::ALL
        .iter()
        .position(|s| *s == g.shape)?;
    Some([
        g.placement.index() as u32,
        shape as u32,
        (g.count.clamp(1, 3) - 1) as u32,
    ])
}

/// A generator that depends only on (seed, step, stream): resuming at any step replays it.
fn rng_for(seed: u64, step: usize, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ step as u64);
    r.set_stream(stream);
    r
}

/// Augments one rendered image in place: shift, colour jitter, blur, noise. Returns [3,S,S] in [0,1].
fn augment(img: &RgbImage, a: &AugmentConfig, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let (w, h) = (img.width() as i32, img.height() as i32);
    let (dx, dy) = if a.max_shift > 0 {
        (
            rng.random_range(-a.max_shift..=a.max_shift),
            rng.random_range(-a.max_shift..=a.max_shift),
        )
    } else {
        (0, 0)
    };
    let gain = 1.0 + rng.random_range(-a.colour_jitter..=a.colour_jitter.max(0.0));
    let bias = rng.random_range(-a.colour_jitter..=a.colour_jitter.max(0.0)) * 0.5;
    let blur = rng.random_bool(a.blur_prob.clamp(0.0, 1.0));
    let noise = rng.random_range(0.0..=a.noise_std.max(0.0));
    let n = (w * h) as usize;
    let mut out = vec![0f32; 3 * n];
    let px = |x: i32, y: i32, c: usize| -> f32 {
        let x = (x - dx).clamp(0, w - 1) as u32;
        let y = (y - dy).clamp(0, h - 1) as u32;
        img.get_pixel(x, y)[c] as f32 / 255.0
    };
    for c in 0..3 {
        for y in 0..h {
            for x in 0..w {
                let v = if blur {
                    let mut s = 0.0;
                    for oy in -1..=1 {
                        for ox in -1..=1 {
                            s += px(x + ox, y + oy, c);
                        }
                    }
                    s / 9.0
                } else {
                    px(x, y, c)
                };
                out[c * n + (y * w + x) as usize] = v * gain + bias;
            }
        }
    }
    if noise > 0.0 {
        for v in out.iter_mut() {
            // Box–Muller on the seeded stream, so runs are reproducible.
            let u1: f32 = rng.random_range(f32::EPSILON..1.0);
            let u2: f32 = rng.random();
            *v += noise * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos();
        }
    }
    out.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
    out
}

/// The model's parameters sorted by checkpoint name (a VarMap iterates in hash order).
fn sorted_vars(varmap: &VarMap) -> Vec<(String, Var)> {
    let data = varmap.data().lock().expect("varmap lock");
    let mut v: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Deterministic init: normal(0, 0.02) for matrices and embeddings, ones for norm weights
/// (names ending in layer_norm*/…norm*.weight), zeros for biases, CLIP's init for the temperature.
fn reinit_seeded(
    varmap: &VarMap,
    seed: u64,
    vision_pos_std: f32,
    vision_patch_std: f32,
    clip_init: Option<&ClipConfig>,
) -> Result<()> {
    let data = varmap.data().lock().expect("varmap lock");
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for name in names {
        let var = &data[name];
        let shape = var.shape().clone();
        let n = shape.elem_count();
        let is_norm = name.contains("norm") || name.contains("layrnorm");
        let vals: Vec<f32> = if name == "logit_scale" {
            vec![2.6592]
        } else if name.ends_with(".bias") {
            vec![0.0; n]
        } else if is_norm && name.ends_with(".weight") {
            vec![1.0; n]
        } else {
            let std = match name.as_str() {
                "vision_model.embeddings.position_embedding.weight" => vision_pos_std,
                "vision_model.embeddings.patch_embedding.weight" => vision_patch_std,
                _ => clip_init.map_or(0.02, |cfg| clip_init_std(cfg, name)),
            };
            (0..n)
                .map(|_| {
                    let u1: f32 = rng.random_range(f32::EPSILON..1.0);
                    let u2: f32 = rng.random();
                    std * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
                })
                .collect()
        };
        var.set(&Tensor::from_vec(vals, shape, var.device())?)?;
    }
    Ok(())
}

/// The init std transformers' `CLIPPreTrainedModel._init_weights` gives the matrix `name`
/// (factor 1); 0.02 for the embedding tables and anything it does not scale.
fn clip_init_std(cfg: &ClipConfig, name: &str) -> f32 {
    let (d, layers) = if name.starts_with("vision_model.") || name == "visual_projection.weight" {
        (cfg.vision.hidden_size, cfg.vision.num_hidden_layers)
    } else {
        (cfg.text.hidden_size, cfg.text.num_hidden_layers)
    };
    let (d, layers) = (d as f32, layers as f32);
    let in_proj = d.powf(-0.5) * (2.0 * layers).powf(-0.5);
    if name.ends_with("_proj.weight") && name.contains(".self_attn.") {
        if name.ends_with("out_proj.weight") {
            d.powf(-0.5)
        } else {
            in_proj
        }
    } else if name.ends_with("mlp.fc1.weight") {
        (2.0 * d).powf(-0.5)
    } else if name.ends_with("mlp.fc2.weight") {
        in_proj
    } else if name == "vision_model.embeddings.class_embedding"
        || name == "visual_projection.weight"
        || name == "text_projection.weight"
    {
        d.powf(-0.5)
    } else {
        0.02
    }
}

/// Symmetric InfoNCE: mean of image→text and text→image cross-entropy over in-batch pairs.
/// Returns (loss, in-batch image→text accuracy).
pub fn contrastive_loss(
    image_embeds: &Tensor,
    text_embeds: &Tensor,
    log_scale: &Tensor,
) -> Result<(Tensor, f32)> {
    let b = image_embeds.dim(0)?;
    let i = l2_normalize(image_embeds)?;
    let t = l2_normalize(text_embeds)?;
    let logits = i.matmul(&t.t()?)?.broadcast_mul(&log_scale.exp()?)?;
    let labels = Tensor::arange(0u32, b as u32, image_embeds.device())?;
    let l1 = candle_nn::loss::cross_entropy(&logits, &labels)?;
    let l2 = candle_nn::loss::cross_entropy(&logits.t()?, &labels)?;
    let loss = ((l1 + l2)? * 0.5)?;
    let pred = logits.argmax(D::Minus1)?.to_vec1::<u32>()?;
    let acc = pred
        .iter()
        .enumerate()
        .filter(|(k, p)| **p as usize == *k)
        .count() as f32
        / b as f32;
    Ok((loss, acc))
}

const TRAINER_STATE: &str = "trainer_state.safetensors";
const TRAINER_META: &str = "trainer_state.json";

#[derive(Serialize, Deserialize)]
struct TrainerMeta {
    step: usize,
    config: TrainConfig,
}

impl Trainer {
    pub fn new(config: TrainConfig, data: DataSource, device: &Device) -> Result<Self> {
        if config.batch < 2 {
            return Err(TrainError::Invalid(
                "--batch must be at least 2: the contrastive loss needs negatives in the batch"
                    .into(),
            ));
        }
        if config.patch_size == 0 || !config.image_size.is_multiple_of(config.patch_size) {
            return Err(TrainError::Invalid(format!(
                "--patch-size {} must divide --image-size {}",
                config.patch_size, config.image_size
            )));
        }
        config.check_recipe()?;
        let model_config = small_clip_config(config.image_size, config.patch_size);
        let varmap = VarMap::new();
        let model = ClipModel::new(
            &model_config,
            VarBuilder::from_varmap(&varmap, DType::F32, device),
        )?;
        // candle's CPU init RNG cannot be seeded, so re-draw every parameter from our own seeded
        // stream: same seed, same initial weights.
        reinit_seeded(
            &varmap,
            config.seed,
            config.vision_pos_init_std,
            config.vision_patch_init_std,
            config.clip_init.then_some(&model_config),
        )?;
        // CLOOB's logits use its fixed inverse temperature; storing it as the logit scale makes
        // the saved checkpoint's similarity logits (classify, similarity) CLOOB's.
        if let Objective::Cloob { inv_tau, .. } = config.objective {
            if let Some(v) = varmap
                .data()
                .lock()
                .expect("varmap lock")
                .get("logit_scale")
            {
                v.set(&Tensor::new(inv_tau.ln() as f32, device)?)?;
            }
        }
        let aux = if config.aux_weight > 0.0 {
            let vm = VarMap::new();
            let heads = AuxHeads::new(
                model_config.projection_dim,
                VarBuilder::from_varmap(&vm, DType::F32, device).pp("aux_heads"),
            )?;
            reinit_seeded(&vm, config.seed ^ 0xA11C5, 0.02, 0.02, None)?;
            Some((vm, heads))
        } else {
            None
        };
        let mut named = sorted_vars(&varmap);
        if let Some((vm, _)) = &aux {
            named.extend(sorted_vars(vm));
        }
        let mut opt = AdamW::new(
            named,
            AdamWConfig {
                lr: config.lr,
                weight_decay: config.weight_decay,
                ..AdamWConfig::default()
            },
        )?;
        opt.set_lr_multiplier(
            |n| {
                n.starts_with("vision_model.embeddings.position_embedding")
                    || n.starts_with("vision_model.embeddings.patch_embedding")
            },
            config.embedding_lr_mult,
        );
        Ok(Self {
            config,
            model_config,
            varmap,
            model,
            opt,
            tokenizer: ClipTokenizer::builtin(),
            data,
            step: 0,
            device: device.clone(),
            aux,
        })
    }

    /// Continues from `dir`'s checkpoint and trainer state (bit-exact: same weights, optimiser
    /// moments and data stream position).
    pub fn resume(
        dir: &Path,
        data: DataSource,
        device: &Device,
        steps: Option<usize>,
    ) -> Result<Self> {
        let meta_path = dir.join(TRAINER_META);
        let meta: TrainerMeta =
            serde_json::from_str(&std::fs::read_to_string(&meta_path).map_err(|e| {
                TrainError::Io {
                    path: meta_path.clone(),
                    source: e,
                }
            })?)
            .map_err(|e| TrainError::Invalid(format!("{}: {e}", meta_path.display())))?;
        let mut config = meta.config;
        if let Some(s) = steps {
            config.steps = s;
        }
        let mut t = Self::new(config, data, device)?;
        t.varmap.load(dir.join("model.safetensors")).map_err(|e| {
            TrainError::Invalid(format!("{}: {e}", dir.join("model.safetensors").display()))
        })?;
        // Without the optimiser state (e.g. a checkpoint copied without it) training continues
        // from the weights with fresh moments: close to, but not bit-exactly, the original run.
        if let Some((vm, _)) = &mut t.aux {
            let p = dir.join(AUX_HEADS_FILE);
            if p.exists() {
                vm.load(&p)
                    .map_err(|e| TrainError::Invalid(format!("{}: {e}", p.display())))?;
            }
        }
        let state_path = dir.join(TRAINER_STATE);
        if state_path.exists() {
            let state = candle_core::safetensors::load(&state_path, device)?;
            t.opt.load_state(&state)?;
        }
        t.step = meta.step;
        Ok(t)
    }

    /// Starts from another checkpoint's weights (f32/f16/bf16, same shapes) with fresh optimiser
    /// moments and this run's schedule: fine-tuning.
    pub fn init_weights_from(&mut self, dir: &Path) -> Result<()> {
        let path = dir.join("model.safetensors");
        if !path.exists() {
            return Err(TrainError::Invalid(format!(
                "{}: not found; --init needs a checkpoint folder with model.safetensors",
                path.display()
            )));
        }
        let tensors = candle_core::safetensors::load(&path, &self.device)?;
        for (name, var) in sorted_vars(&self.varmap) {
            let t = tensors.get(&name).ok_or_else(|| {
                TrainError::Invalid(format!(
                    "{}: tensor {name} is missing; --init needs a checkpoint of the same model shape",
                    path.display()
                ))
            })?;
            if t.dims() != var.dims() {
                return Err(TrainError::Invalid(format!(
                    "{}: tensor {name} has shape {:?}, this model needs {:?}",
                    path.display(),
                    t.dims(),
                    var.dims()
                )));
            }
            var.set(&t.to_dtype(DType::F32)?)?;
        }
        Ok(())
    }

    pub fn step_index(&self) -> usize {
        self.step
    }

    pub fn model(&self) -> &ClipModel {
        &self.model
    }

    fn lr_at(&self, step: usize) -> f64 {
        let c = &self.config;
        if step < c.warmup {
            return c.lr * (step + 1) as f64 / c.warmup as f64;
        }
        let p = (step - c.warmup) as f64 / (c.steps.saturating_sub(c.warmup)).max(1) as f64;
        let min = 0.05 * c.lr;
        min + 0.5 * (c.lr - min) * (1.0 + (std::f64::consts::PI * p.min(1.0)).cos())
    }

    /// Pixels [B,3,S,S] in [0,1], token ids, and the aux labels of the batch's last items
    /// (the hard negatives).
    fn batch(&self, step: usize) -> Result<(Tensor, Tensor, Vec<[u32; 3]>)> {
        let c = &self.config;
        let mut rng = rng_for(c.seed, step, 1);
        let s = c.image_size;
        let mut pixels = Vec::with_capacity(c.batch * 3 * s * s);
        let mut caps = Vec::with_capacity(c.batch);
        // Hard negatives come from their own stream, so the ordinary items stay those of a run
        // without them.
        let hard = match &self.data {
            DataSource::Shapes(_) => {
                let mut hrng = rng_for(c.seed, step, 2);
                let scenes = c
                    .hard_negatives
                    .scenes(c.hard_negatives.count(c.batch), &mut hrng);
                scenes
                    .into_iter()
                    .map(|scene| {
                        let captions = clipguide_shapes::captions(&scene, &mut hrng);
                        (
                            clipguide_shapes::render(&scene, s as u32),
                            captions,
                            aux_labels(&scene),
                        )
                    })
                    .collect::<Vec<_>>()
            }
            DataSource::Folder(_) => vec![],
        };
        let labels: Vec<[u32; 3]> = hard.iter().filter_map(|h| h.2).collect();
        let plain = c.batch - hard.len();
        for k in 0..plain {
            let (img, captions) = self.data.item(step * c.batch + k, s)?;
            pixels.extend(augment(&img, &c.augment, &mut rng));
            caps.push(captions[rng.random_range(0..captions.len())].clone());
        }
        for (img, captions, _) in hard {
            pixels.extend(augment(&img, &c.augment, &mut rng));
            caps.push(captions[rng.random_range(0..captions.len())].clone());
        }
        let px = Tensor::from_vec(pixels, (c.batch, 3, s, s), &self.device)?;
        let ids = self
            .tokenizer
            .encode_batch(&caps, Padding::Longest, &self.device)?
            .ids;
        Ok((px, ids, labels))
    }

    /// A few PGD steps that push the images to raise the contrastive loss (kept in [0,1] and an
    /// L∞ ball): training on them gives the image tower gradients that look like the data.
    fn adversarial(&self, px: &Tensor, text_embeds: &Tensor) -> Result<Tensor> {
        let a = &self.config.augment;
        let eps = a.pgd_eps as f64;
        let alpha = 2.5 * eps / a.pgd_steps as f64;
        let t = text_embeds.detach();
        let mut x = px.clone();
        // 1 for the items PGD moves, 0 for the clean tail (`None`: all move, as before).
        let b = px.dim(0)?;
        let moved = ((b as f32 * a.pgd_fraction.clamp(0.0, 1.0)).round() as usize).min(b);
        let mask = (moved < b)
            .then(|| {
                let m: Vec<f32> = (0..b).map(|i| if i < moved { 1.0 } else { 0.0 }).collect();
                Tensor::from_vec(m, (b, 1, 1, 1), px.device())
            })
            .transpose()?;
        for _ in 0..a.pgd_steps {
            let v = Var::from_tensor(&x)?;
            let e = self
                .model
                .image_features(&normalize(v.as_tensor(), &CLIP_MEAN, &CLIP_STD)?)?;
            let (loss, _) = self.objective_loss(&e, &t, &self.model.log_logit_scale().detach())?;
            let g = loss.backward()?;
            let g = g
                .get(v.as_tensor())
                .ok_or_else(|| TrainError::Invalid("PGD: no gradient reached the pixels".into()))?;
            let step = (g.sign()? * alpha)?;
            let step = match &mask {
                Some(m) => step.broadcast_mul(m)?,
                None => step,
            };
            let stepped = (&x + step)?;
            let lo = (px - eps)?.clamp(0f32, 1f32)?;
            let hi = (px + eps)?.clamp(0f32, 1f32)?;
            x = stepped.maximum(&lo)?.minimum(&hi)?.detach();
        }
        Ok(x)
    }

    /// The configured contrastive loss of a batch and its in-batch image→text accuracy.
    fn objective_loss(
        &self,
        image_embeds: &Tensor,
        text_embeds: &Tensor,
        log_scale: &Tensor,
    ) -> Result<(Tensor, f32)> {
        match self.config.objective {
            Objective::InfoNce => contrastive_loss(image_embeds, text_embeds, log_scale),
            Objective::Cloob {
                inv_tau,
                scale_hopfield,
            } => Ok((
                crate::cloob::cloob_loss(image_embeds, text_embeds, inv_tau, scale_hopfield)?,
                crate::cloob::cosine_accuracy(image_embeds, text_embeds)?,
            )),
        }
    }

    /// One optimisation step.
    pub fn train_step(&mut self) -> Result<StepStats> {
        let step = self.step;
        let (mut px, ids, labels) = self.batch(step)?;
        if self.config.augment.pgd_steps > 0 {
            let t = self.model.text_features(&ids)?;
            px = self.adversarial(&px, &t)?;
        }
        let pixel_values = normalize(&px, &CLIP_MEAN, &CLIP_STD)?;
        let image_embeds = self.model.image_features(&pixel_values)?;
        let text_embeds = self.model.text_features(&ids)?;
        let (mut loss, accuracy) =
            self.objective_loss(&image_embeds, &text_embeds, self.model.log_logit_scale())?;
        let mut aux_loss = None;
        let mut aux_accuracy = None;
        if let (Some((_, heads)), false) = (&self.aux, labels.is_empty()) {
            // The labelled items are the batch's last ones (all hard negatives are single-group).
            let b = image_embeds.dim(0)?;
            let tail = image_embeds.narrow(0, b - labels.len(), labels.len())?;
            let (aux, acc) = heads.loss(&tail, &labels)?;
            aux_loss = Some(aux.to_scalar::<f32>()?);
            aux_accuracy = Some(acc);
            loss = (loss + (aux * self.config.aux_weight as f64)?)?;
        }
        let mut grads = loss.backward()?;
        crate::adamw::clip_grad_norm(&mut grads, self.opt.vars(), self.config.grad_clip)?;
        let lr = self.lr_at(step);
        self.opt.set_lr(lr);
        self.opt.step(&grads)?;
        // CLIP clamps the learned temperature so logits stay ≤ 100×cosine.
        let ls = self.model.log_logit_scale();
        let max = 100f32.ln();
        let v = ls.to_scalar::<f32>()?;
        if v > max {
            for var in self.varmap.all_vars() {
                if var.as_tensor().id() == ls.id() {
                    var.set(&Tensor::new(max, &self.device)?)?;
                }
            }
        }
        self.step += 1;
        Ok(StepStats {
            step: self.step,
            loss: loss.to_scalar::<f32>()?,
            accuracy,
            logit_scale: self.model.logit_scale()?,
            lr,
            aux_loss,
            aux_accuracy,
        })
    }

    /// Writes an HF-layout checkpoint (config.json, model.safetensors, tokenizer.json) plus the
    /// trainer state; files are written to temporaries and renamed.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::Io {
            path: dir.to_path_buf(),
            source: e,
        })?;
        let io = |path: &Path| {
            let p = path.to_path_buf();
            move |e: std::io::Error| TrainError::Io { path: p, source: e }
        };
        let tmp = |name: &str| dir.join(format!(".{name}.tmp"));
        let cfg = serde_json::to_string_pretty(&self.model_config.to_hf_json()).expect("json");
        std::fs::write(tmp("config.json"), cfg).map_err(io(&tmp("config.json")))?;
        self.varmap.save(tmp("model.safetensors"))?;
        std::fs::write(
            tmp("tokenizer.json"),
            clipguide_clip::tokenizer::BUILTIN_TOKENIZER_JSON,
        )
        .map_err(io(&tmp("tokenizer.json")))?;
        candle_core::safetensors::save(&self.opt.state(), tmp(TRAINER_STATE))?;
        if let Some((vm, _)) = &self.aux {
            vm.save(tmp(AUX_HEADS_FILE))?;
        }
        let meta = serde_json::to_string_pretty(&TrainerMeta {
            step: self.step,
            config: self.config.clone(),
        })
        .expect("json");
        std::fs::write(tmp(TRAINER_META), meta).map_err(io(&tmp(TRAINER_META)))?;
        for name in [
            "config.json",
            "model.safetensors",
            "tokenizer.json",
            TRAINER_STATE,
            TRAINER_META,
            AUX_HEADS_FILE,
        ] {
            if name == AUX_HEADS_FILE && self.aux.is_none() {
                continue;
            }
            std::fs::rename(tmp(name), dir.join(name)).map_err(io(&dir.join(name)))?;
        }
        Ok(())
    }
}

/// Writes `src`'s weights to `dst` as float16 (for shipping), with its config and tokenizer.
pub fn export_f16(src: &Path, dst: &Path) -> Result<()> {
    std::fs::create_dir_all(dst).map_err(|e| TrainError::Io {
        path: dst.to_path_buf(),
        source: e,
    })?;
    let t = candle_core::safetensors::load(src.join("model.safetensors"), &Device::Cpu)?;
    let t: std::collections::HashMap<String, Tensor> = t
        .into_iter()
        .map(|(k, v)| v.to_dtype(DType::F16).map(|v| (k, v)))
        .collect::<candle_core::Result<_>>()?;
    candle_core::safetensors::save(&t, dst.join("model.safetensors"))?;
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(src.join(f), dst.join(f)).map_err(|e| TrainError::Io {
            path: src.join(f),
            source: e,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod aux_tests {
    use super::*;

    /// Each head's accuracy counts its own hits: labels agreeing with a head's argmax on
    /// exactly 3 of 8 items (placement), 8 of 8 (shape) and 0 of 8 (count) give 3/8, 1, 0.
    #[test]
    fn aux_accuracy_is_counted_per_head() {
        use candle_core::Module;
        let vm = VarMap::new();
        let heads =
            AuxHeads::new(16, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)).unwrap();
        let embeds = Tensor::randn(0f32, 1.0, (8, 16), &Device::Cpu).unwrap();
        let e = (l2_normalize(&embeds).unwrap() * AUX_TEMPERATURE).unwrap();
        let argmax = |h: &candle_nn::Linear| -> Vec<u32> {
            h.forward(&e)
                .unwrap()
                .argmax(D::Minus1)
                .unwrap()
                .to_vec1()
                .unwrap()
        };
        let (p, sh, c) = (
            argmax(&heads.placement),
            argmax(&heads.shape),
            argmax(&heads.count),
        );
        let labels: Vec<[u32; 3]> = (0..8)
            .map(|i| {
                let place = if i < 3 { p[i] } else { (p[i] + 1) % 9 };
                [place, sh[i], (c[i] + 1) % 3]
            })
            .collect();
        let (loss, acc) = heads.loss(&embeds, &labels).unwrap();
        assert!(loss.to_scalar::<f32>().unwrap().is_finite());
        assert_eq!(acc, [3.0 / 8.0, 1.0, 0.0]);
    }

    /// PGD moves every image of the perturbed head of the batch, within the L∞ ball, and leaves
    /// the clean tail (`pgd_fraction`) bit for bit as drawn.
    #[test]
    fn pgd_perturbs_only_the_head_of_the_batch() {
        let mut cfg = TrainConfig {
            batch: 8,
            image_size: 32,
            ..TrainConfig::default()
        };
        cfg.augment.pgd_steps = 2;
        cfg.augment.pgd_fraction = 0.5;
        let t = Trainer::new(cfg, DataSource::shapes(1, 32).unwrap(), &Device::Cpu).unwrap();
        let (px, ids, _) = t.batch(0).unwrap();
        let text = t.model.text_features(&ids).unwrap();
        let adv = t.adversarial(&px, &text).unwrap();
        let eps = t.config.augment.pgd_eps;
        for i in 0..8 {
            let d = (adv.get(i).unwrap() - px.get(i).unwrap())
                .unwrap()
                .abs()
                .unwrap();
            let max = d
                .flatten_all()
                .unwrap()
                .max(0)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            if i < 4 {
                assert!(max > eps * 0.5 && max <= eps + 1e-6, "item {i} moved {max}");
            } else {
                assert_eq!(max, 0.0, "clean item {i} moved {max}");
            }
        }
    }

    /// The heads are optimised with the model (a head left out of the optimiser would keep its
    /// initial weights) and their loss is reported.
    #[test]
    fn aux_heads_are_trained_and_reported() {
        let cfg = TrainConfig {
            steps: 6,
            batch: 8,
            image_size: 32,
            warmup: 1,
            lr: 3e-3,
            hard_negatives: HardNegatives {
                fraction: 1.0,
                ..HardNegatives::recipe()
            },
            aux_weight: 1.0,
            ..TrainConfig::default()
        };
        let mut t = Trainer::new(cfg, DataSource::shapes(1, 32).unwrap(), &Device::Cpu).unwrap();
        let weights = |t: &Trainer| -> Vec<f32> {
            let (vm, _) = t.aux.as_ref().expect("aux heads exist when aux_weight > 0");
            let (name, var) = &sorted_vars(vm)[1];
            assert_eq!(name, "aux_heads.count.weight");
            var.as_tensor().flatten_all().unwrap().to_vec1().unwrap()
        };
        let before = weights(&t);
        for _ in 0..6 {
            let s = t.train_step().unwrap();
            let a = s.aux_loss.expect("aux loss is reported");
            assert!(a.is_finite() && a > 0.0, "aux loss {a}");
            let acc = s.aux_accuracy.expect("aux accuracy is reported");
            assert!(acc.iter().all(|a| (0.0..=1.0).contains(a)), "{acc:?}");
        }
        let after = weights(&t);
        let moved = before
            .iter()
            .zip(&after)
            .map(|(a, b)| (a - b).abs())
            .sum::<f32>()
            / before.len() as f32;
        assert!(moved > 1e-3, "aux head weights did not move: {moved}");
    }

    /// The vision position and patch embeddings start at the configured spreads, the rest at
    /// CLIP's 0.02.
    #[test]
    fn embedding_init_stds_follow_the_config() {
        let cfg = TrainConfig {
            batch: 4,
            image_size: 32,
            vision_pos_init_std: 1.0,
            vision_patch_init_std: 0.15,
            ..TrainConfig::default()
        };
        let t = Trainer::new(cfg, DataSource::shapes(1, 32).unwrap(), &Device::Cpu).unwrap();
        let std_of = |name: &str| -> f32 {
            let vars = sorted_vars(&t.varmap);
            let (_, v) = vars.iter().find(|(n, _)| n == name).expect(name);
            let x: Vec<f32> = v.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            let mean = x.iter().sum::<f32>() / x.len() as f32;
            (x.iter().map(|a| (a - mean).powi(2)).sum::<f32>() / x.len() as f32).sqrt()
        };
        for (name, want) in [
            ("vision_model.embeddings.position_embedding.weight", 1.0),
            ("vision_model.embeddings.patch_embedding.weight", 0.15),
            ("vision_model.encoder.layers.0.mlp.fc1.weight", 0.02),
        ] {
            let got = std_of(name);
            assert!(
                (got / want - 1.0).abs() < 0.15,
                "{name}: std {got}, want {want}"
            );
        }
    }

    /// `clip_init` gives transformers' CLIP stds (written out here for width 128, 4 layers),
    /// keeps the two configured vision embedding stds, and leaves norms at 1 and biases at 0.
    #[test]
    fn clip_init_follows_transformers_stds() {
        let cfg = TrainConfig {
            batch: 4,
            image_size: 32,
            vision_pos_init_std: 1.0,
            vision_patch_init_std: 0.15,
            clip_init: true,
            ..TrainConfig::default()
        };
        let t = Trainer::new(cfg, DataSource::shapes(1, 32).unwrap(), &Device::Cpu).unwrap();
        let vars = sorted_vars(&t.varmap);
        let values = |name: &str| -> Vec<f32> {
            let (_, v) = vars.iter().find(|(n, _)| n == name).expect(name);
            v.as_tensor().flatten_all().unwrap().to_vec1().unwrap()
        };
        let std_of = |name: &str| -> f32 {
            let x = values(name);
            (x.iter().map(|a| a * a).sum::<f32>() / x.len() as f32).sqrt()
        };
        // D = 128, L = 4: in_proj = 128^-0.5 · 8^-0.5 = 0.03125, out_proj = 128^-0.5 = 0.0884,
        // fc1 = 256^-0.5 = 0.0625.
        for (name, want) in [
            (
                "vision_model.encoder.layers.0.self_attn.q_proj.weight",
                0.03125,
            ),
            (
                "text_model.encoder.layers.3.self_attn.v_proj.weight",
                0.03125,
            ),
            (
                "vision_model.encoder.layers.1.self_attn.out_proj.weight",
                0.0884,
            ),
            ("vision_model.encoder.layers.2.mlp.fc1.weight", 0.0625),
            ("text_model.encoder.layers.0.mlp.fc2.weight", 0.03125),
            ("visual_projection.weight", 0.0884),
            ("text_projection.weight", 0.0884),
            ("vision_model.embeddings.class_embedding", 0.0884),
            ("text_model.embeddings.token_embedding.weight", 0.02),
            ("text_model.embeddings.position_embedding.weight", 0.02),
            ("vision_model.embeddings.position_embedding.weight", 1.0),
            ("vision_model.embeddings.patch_embedding.weight", 0.15),
        ] {
            let got = std_of(name);
            // The class embedding has only 128 draws.
            assert!(
                (got / want - 1.0).abs() < 0.2,
                "{name}: std {got}, want {want}"
            );
        }
        assert!(values("vision_model.encoder.layers.0.layer_norm1.weight")
            .iter()
            .all(|v| *v == 1.0));
        assert!(values("vision_model.encoder.layers.0.mlp.fc1.bias")
            .iter()
            .all(|v| *v == 0.0));
    }

    /// One optimiser step changes every model weight. Guards against a weight silently taking
    /// a no-gradient fast path: the patch embedding, reshaped before its GEMM, once looked
    /// frozen to `ops::linear` and kept its random init through every training run.
    #[test]
    fn one_step_moves_every_model_weight() {
        let cfg = TrainConfig {
            steps: 2,
            batch: 8,
            image_size: 32,
            warmup: 1,
            lr: 1e-3,
            ..TrainConfig::default()
        };
        let mut t = Trainer::new(cfg, DataSource::shapes(1, 32).unwrap(), &Device::Cpu).unwrap();
        let snapshot = |t: &Trainer| -> Vec<(String, Vec<f32>)> {
            sorted_vars(&t.varmap)
                .into_iter()
                .map(|(n, v)| (n, v.as_tensor().flatten_all().unwrap().to_vec1().unwrap()))
                .collect()
        };
        let before = snapshot(&t);
        t.train_step().unwrap();
        let after = snapshot(&t);
        let still: Vec<&str> = before
            .iter()
            .zip(&after)
            .filter(|((_, a), (_, b))| a == b)
            .map(|((n, _), _)| n.as_str())
            .collect();
        assert!(before.len() > 40, "only {} weights", before.len());
        assert!(still.is_empty(), "weights without a gradient: {still:?}");
    }
}
