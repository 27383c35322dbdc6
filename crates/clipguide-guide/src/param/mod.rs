//! Image parameterisations: the trainable variables and the differentiable map from them to
//! an RGB image `[1, 3, H, W]` in `[0, 1]` (pixels, a decorrelated Fourier spectrum, or a
//! Laplacian-style pyramid, or soft primitives), each ending in a sigmoid so the image is always
//! in range. One file per parameterisation; [`Param`] is the stored choice of one with its settings.

mod choice;
mod fourier;
mod pixels;
mod primitives;
mod pyramid;

pub use choice::Param;
pub use fourier::{
    color_correlation_normalized, FourierImage, COLOR_CORRELATION_SVD_SQRT, LUCID_FFT_DIVISOR,
};
pub use pixels::PixelImage;
pub use primitives::{PrimitiveShape, PrimitivesImage, PrimitivesSpec};
pub use pyramid::PyramidImage;

use candle_core::{DType, Device, Tensor, Var};

use crate::error::{GuideError, Result};

/// Something the optimiser trains that renders to an image.
pub trait Parameterization {
    /// The trainable variables, for the optimiser.
    fn params(&self) -> Vec<Var>;
    /// The image before the final sigmoid, `[1, 3, H, W]`. Regularisers that act on range
    /// (see [`crate::loss::range_penalty`]) belong here, since the RGB is always in (0, 1).
    fn to_logits(&self) -> Result<Tensor>;
    /// The image, `[1, 3, H, W]` with values in (0, 1); differentiable w.r.t. [`Self::params`].
    fn to_rgb(&self) -> Result<Tensor> {
        Ok(candle_nn::ops::sigmoid(&self.to_logits()?)?)
    }
    /// Image width in pixels.
    fn width(&self) -> usize;
    /// Image height in pixels.
    fn height(&self) -> usize;
    /// Discrete choices besides the gradient-trained values: one entry per slot, the number of
    /// options it has (a palette colour per disc). Empty for continuous parameterisations.
    fn choice_slots(&self) -> Vec<usize> {
        Vec::new()
    }
    /// Sets slot `slot` to option `option` (see [`Self::choice_slots`]).
    fn set_choice(&self, slot: usize, option: usize) -> Result<()> {
        Err(GuideError::invalid(
            "choice",
            format!("slot {slot} option {option}: this parameterisation has no discrete choices"),
        ))
    }
}

/// Pixels closer than this to 0 or 1 are clamped before taking the logit, so black and white
/// initial images give finite logits; it bounds the reconstruction error of `from_rgb`.
pub const INIT_CLAMP: f64 = 1e-4;

fn check_size(width: usize, height: usize) -> Result<()> {
    if width == 0 || height == 0 {
        return Err(GuideError::invalid(
            "image size",
            format!("{width}x{height}: width and height must both be at least 1"),
        ));
    }
    Ok(())
}

/// Validates an RGB image `[1, 3, H, W]` and returns (H, W).
fn rgb_dims(rgb: &Tensor) -> Result<(usize, usize)> {
    match rgb.dims() {
        &[1, 3, h, w] if h > 0 && w > 0 => Ok((h, w)),
        d => Err(GuideError::Shape {
            what: "initial image",
            got: d.to_vec(),
            expected: "[1, 3, H, W] with values in [0, 1]",
        }),
    }
}

/// `[P, 3]` in [0, 1] from sRGB bytes; an empty palette is an error.
fn palette_tensor(palette: &[[u8; 3]]) -> Result<Tensor> {
    if palette.is_empty() {
        return Err(GuideError::invalid(
            "palette",
            "is empty: give at least one colour, or none to allow any colour",
        ));
    }
    let v: Vec<f32> = palette
        .iter()
        .flatten()
        .map(|&c| c as f32 / 255.0)
        .collect();
    Ok(Tensor::from_vec(v, (palette.len(), 3), &Device::Cpu)?)
}

/// Inverse sigmoid of an RGB image after clamping into [INIT_CLAMP, 1 - INIT_CLAMP].
fn logit(rgb: &Tensor) -> Result<Tensor> {
    let p = rgb
        .to_dtype(DType::F64)?
        .clamp(INIT_CLAMP, 1.0 - INIT_CLAMP)?;
    Ok((&p / (1.0 - &p)?)?.log()?)
}

#[cfg(test)]
mod tests;
