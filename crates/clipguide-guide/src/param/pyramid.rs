//! A sum of upsampled levels.

use candle_core::{DType, Tensor, Var};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::error::{GuideError, Result};
use crate::noise::gaussian;
use crate::resample::{resize_matrix, ResizeKind};

/// Sum of images at sizes `ceil(W/2^k) × ceil(H/2^k)`, `k = 0..levels`, each bilinearly
/// upsampled to full size (as `A_h · X · A_wᵀ`), then sigmoid. Coarse levels move large
/// areas at once, which speeds up the early, global part of the optimisation.
pub struct PyramidImage {
    levels: Vec<Var>,
    upsample: Vec<Option<(Tensor, Tensor)>>,
    width: usize,
    height: usize,
}

impl PyramidImage {
    /// Size `(height, width)` of level `k`.
    pub fn level_size(width: usize, height: usize, k: usize) -> (usize, usize) {
        let d = 1usize << k.min(usize::BITS as usize - 1);
        (height.div_ceil(d).max(1), width.div_ceil(d).max(1))
    }

    /// Builds from per-level tensors `[1, 3, h_k, w_k]` (f32 or f64, sizes per
    /// [`Self::level_size`]).
    pub fn from_levels(levels: &[Tensor], width: usize, height: usize) -> Result<Self> {
        check_size(width, height)?;
        if levels.is_empty() {
            return Err(GuideError::invalid(
                "pyramid levels",
                "need at least one level",
            ));
        }
        let mut vars = Vec::with_capacity(levels.len());
        let mut upsample = Vec::with_capacity(levels.len());
        for (k, level) in levels.iter().enumerate() {
            let (h, w) = Self::level_size(width, height, k);
            if level.dims() != [1, 3, h, w] {
                return Err(GuideError::Shape {
                    what: "pyramid level",
                    got: level.dims().to_vec(),
                    expected: "[1, 3, ceil(H/2^k), ceil(W/2^k)]",
                });
            }
            let (dtype, dev) = (level.dtype(), level.device());
            upsample.push(if (h, w) == (height, width) {
                None
            } else {
                Some((
                    resize_matrix(h, height, ResizeKind::Bilinear, dtype, dev)?,
                    resize_matrix(w, width, ResizeKind::Bilinear, dtype, dev)?.t()?,
                ))
            });
            vars.push(Var::from_tensor(level)?);
        }
        Ok(Self {
            levels: vars,
            upsample,
            width,
            height,
        })
    }

    /// Every level drawn from N(0, std²), f32.
    pub fn random(
        width: usize,
        height: usize,
        levels: usize,
        std: f64,
        rng: &mut ChaCha8Rng,
    ) -> Result<Self> {
        check_size(width, height)?;
        let tensors = (0..levels)
            .map(|k| {
                let (h, w) = Self::level_size(width, height, k);
                gaussian(rng, &[1, 3, h, w], std)
            })
            .collect::<Result<Vec<_>>>()?;
        Self::from_levels(&tensors, width, height)
    }

    /// Starts from an image `[1, 3, H, W]` in [0, 1]: its logits in the finest level,
    /// zeros elsewhere.
    pub fn from_rgb(rgb: &Tensor, levels: usize) -> Result<Self> {
        let (height, width) = rgb_dims(rgb)?;
        let mut tensors = vec![logit(rgb)?.to_dtype(DType::F32)?];
        for k in 1..levels {
            let (h, w) = Self::level_size(width, height, k);
            tensors.push(Tensor::zeros((1, 3, h, w), DType::F32, rgb.device())?);
        }
        Self::from_levels(&tensors, width, height)
    }
}

impl Parameterization for PyramidImage {
    fn params(&self) -> Vec<Var> {
        self.levels.clone()
    }
    fn to_logits(&self) -> Result<Tensor> {
        let mut sum: Option<Tensor> = None;
        for (level, up) in self.levels.iter().zip(&self.upsample) {
            let full = match up {
                None => level.as_tensor().clone(),
                Some((a_h, a_w_t)) => a_h
                    .broadcast_matmul(level.as_tensor())?
                    .broadcast_matmul(a_w_t)?,
            };
            sum = Some(match sum {
                None => full,
                Some(s) => (s + full)?,
            });
        }
        sum.ok_or_else(|| GuideError::invalid("pyramid levels", "need at least one level"))
    }
    fn width(&self) -> usize {
        self.width
    }
    fn height(&self) -> usize {
        self.height
    }
}
