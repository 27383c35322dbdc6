//! Plain pixels.

use candle_core::{DType, Tensor, Var};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::error::Result;
use crate::noise::gaussian;

/// Plain pixels: `rgb = sigmoid(logits)` with one variable per pixel and channel.
pub struct PixelImage {
    logits: Var,
    width: usize,
    height: usize,
}

impl PixelImage {
    /// Logits drawn from N(0, std²), i.e. mid-grey with noise.
    pub fn random(width: usize, height: usize, std: f64, rng: &mut ChaCha8Rng) -> Result<Self> {
        check_size(width, height)?;
        let logits = Var::from_tensor(&gaussian(rng, &[1, 3, height, width], std)?)?;
        Ok(Self {
            logits,
            width,
            height,
        })
    }

    /// Starts from an image `[1, 3, H, W]` in [0, 1]; `to_rgb` reproduces it to within
    /// [`INIT_CLAMP`].
    pub fn from_rgb(rgb: &Tensor) -> Result<Self> {
        let (height, width) = rgb_dims(rgb)?;
        let logits = Var::from_tensor(&logit(rgb)?.to_dtype(DType::F32)?)?;
        Ok(Self {
            logits,
            width,
            height,
        })
    }
}

impl Parameterization for PixelImage {
    fn params(&self) -> Vec<Var> {
        vec![self.logits.clone()]
    }
    fn to_logits(&self) -> Result<Tensor> {
        Ok(self.logits.as_tensor().clone())
    }
    fn width(&self) -> usize {
        self.width
    }
    fn height(&self) -> usize {
        self.height
    }
}
