//! Adversarial training: PGD steps that push a batch's images to raise the contrastive loss,
//! within an L∞ ball, for perceptually aligned gradients.

use super::error::{Result, TrainError};
use super::Trainer;
use candle_core::{Tensor, Var};
use clipguide_clip::{preprocess::normalize, CLIP_MEAN, CLIP_STD};

impl Trainer {
    /// A few PGD steps that push the images to raise the contrastive loss (kept in [0,1] and an
    /// L∞ ball): training on them gives the image tower gradients that look like the data.
    pub(super) fn adversarial(&self, px: &Tensor, text_embeds: &Tensor) -> Result<Tensor> {
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
}

#[cfg(test)]
mod tests {
    use crate::trainer::{DataSource, TrainConfig, Trainer};
    use candle_core::Device;

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
}
