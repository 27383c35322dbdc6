//! What a run reports: per-step similarities and losses, and how it ended.

use serde::{Deserialize, Serialize};

/// The similarity of the current image to one target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PromptSimilarity {
    /// The prompt text, `image:PATH` or `noise`.
    pub prompt: String,
    /// The target's weight at this step (0 when it is not active).
    pub weight: f32,
    /// Mean cosine between this step's cutout embeddings and the target.
    pub similarity: f32,
}

/// What one optimisation step did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// 0-based index of the step that was taken.
    pub step: usize,
    /// Total loss (prompts + penalties) before the update.
    pub loss: f32,
    /// One entry per target, text prompts first in order of appearance.
    pub per_prompt_similarity: Vec<PromptSimilarity>,
    /// Learning rate used for the update.
    pub lr: f64,
    /// Cutouts used in this step.
    pub cutn: usize,
}

impl StepReport {
    /// The weighted mean similarity over active targets (negative weights count against),
    /// a single "how well does it match" number for progress displays.
    pub fn weighted_similarity(&self) -> f32 {
        weighted_similarity(&self.per_prompt_similarity)
    }
}

/// Weighted mean similarity over active targets (negative weights count against).
pub fn weighted_similarity(similarities: &[PromptSimilarity]) -> f32 {
    weighted_mean(similarities.iter().map(|p| (p.weight, p.similarity)))
}

/// `Σ w·x / Σ |w|` over `(w, x)` pairs; 0 when every weight is 0.
pub(super) fn weighted_mean(pairs: impl Iterator<Item = (f32, f32)> + Clone) -> f32 {
    let total: f32 = pairs.clone().map(|(w, _)| w.abs()).sum();
    if total == 0.0 {
        return 0.0;
    }
    pairs.map(|(w, x)| w * x).sum::<f32>() / total
}

/// How a [`Generator::run`] ended.
#[derive(Clone, Debug, PartialEq)]
pub struct RunOutcome {
    /// Steps taken in this call.
    pub reports: Vec<StepReport>,
    /// The callback asked to stop before the last step.
    pub stopped_early: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_similarity_counts_negative_weights_against() {
        let p = |weight, similarity| PromptSimilarity {
            prompt: String::new(),
            weight,
            similarity,
        };
        assert_eq!(weighted_similarity(&[]), 0.0);
        let w = weighted_similarity(&[p(1.0, 0.8), p(-1.0, 0.4)]);
        assert!((w - 0.2).abs() < 1e-6, "{w}");
    }
}
