//! The contrastive losses: CLIP's symmetric InfoNCE here, CLOOB in [`crate::cloob`], chosen by
//! the run's [`Objective`].

use super::config::Objective;
use super::error::Result;
use super::Trainer;
use candle_core::{Tensor, D};
use clipguide_clip::l2_normalize;

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

impl Trainer {
    /// The configured contrastive loss of a batch and its in-batch image→text accuracy.
    pub(super) fn objective_loss(
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
}
