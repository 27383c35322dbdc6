//! What a run trains: its settings ([`TrainConfig`], whose `Default` is the shipped model's
//! recipe), the image augmentation ([`AugmentConfig`]) and the contrastive objective
//! ([`Objective`]), with the checks that refuse values outside their meaning.

use super::error::{Result, TrainError};
use clipguide_shapes::{HardNegatives, WorldMix};
use serde::{Deserialize, Serialize};

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
    /// PGD L∞ radius in `[0, 1]` pixel units.
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
                "cloob (inv_tau {inv_tau}, scale_hopfield {scale_hopfield})"
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
    /// Weight of the auxiliary attribute losses (0 = off); see `heads::AuxHeads`.
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
    /// The synthetic world's variations (drawings, …); the first world for states written
    /// before it existed.
    #[serde(default)]
    pub world: WorldMix,
    /// Probability that a caption gets one or two made-up words inserted
    /// ([`clipguide_shapes::with_made_up_words`]); 0 for states written before it existed.
    ///
    /// Why: a word the model never saw otherwise moves its text embedding like a real attribute
    /// word; trained beside nonsense, the text tower learns to pass over what it does not know.
    #[serde(default)]
    pub made_up_words: f64,
}

impl TrainConfig {
    /// Refuses recipe knobs outside their meaning, naming the CLI flag, before anything is
    /// drawn or written. Why here and not in the CLI: library callers build this struct too.
    pub(super) fn check_recipe(&self) -> Result<()> {
        let (h, a) = (&self.hard_negatives, &self.augment);
        let bad = |m: String| Err(TrainError::Invalid(m));
        /// `setting value` must lie in [0, 1]; `what` says what the value is.
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
        unit(
            "hard_negatives.fraction",
            h.fraction,
            "a fraction of the batch",
        )?;
        if !(h.colour_weight >= 0.0 && h.colour_weight.is_finite()) {
            return bad(format!(
                "hard_negatives.colour_weight {} is out of range: give a sampling weight of 0 or more",
                h.colour_weight
            ));
        }
        if !(h.size_weight >= 0.0 && h.size_weight.is_finite()) {
            return bad(format!(
                "hard_negatives.size_weight {} is out of range: give a sampling weight of 0 or more",
                h.size_weight
            ));
        }
        unit("hard_negatives.japanese", h.japanese, "a probability")?;
        if h.group_size == 0 {
            return bad(
                "hard_negatives.group_size 0 is out of range: give 1 or more scenes per group"
                    .into(),
            );
        }
        unit(
            "hard_negatives.singles",
            h.singles,
            "a fraction of the hard negatives",
        )?;
        unit(
            "augment.pgd_fraction",
            a.pgd_fraction,
            "a fraction of the batch",
        )?;
        unit("augment.blur_prob", a.blur_prob, "a probability")?;
        if !(a.noise_std >= 0.0 && a.noise_std.is_finite()) {
            return bad(format!(
                "augment.noise_std {} is out of range: give a noise std of 0 or more",
                a.noise_std
            ));
        }
        if !(0.0..0.5).contains(&a.colour_jitter) {
            return bad(format!(
                "augment.colour_jitter {} is out of range: give an amplitude in [0, 0.5)",
                a.colour_jitter
            ));
        }
        if a.max_shift < 0 {
            return bad(format!(
                "augment.max_shift {} is out of range: give 0 or more pixels",
                a.max_shift
            ));
        }
        self.world.check()?;
        unit("made_up_words", self.made_up_words, "a probability")?;
        if let Objective::Cloob {
            inv_tau,
            scale_hopfield,
        } = self.objective
        {
            for (flag, v) in [("inv_tau", inv_tau), ("scale_hopfield", scale_hopfield)] {
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
            world: WorldMix::CANONICAL,
            made_up_words: 0.0,
        }
    }
}
