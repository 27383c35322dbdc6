//! A decorrelated, frequency-scaled spectrum (lucid's parameterisation).

use candle_core::{DType, Device, Tensor, Var};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::error::{GuideError, Result};
use crate::fft::{fftfreq, half_len, irfft2, rfft2, rfftfreq};
use crate::noise::gaussian;

/// Lucid's colour correlation square root (rows: RGB output, columns: decorrelated input).
pub const COLOR_CORRELATION_SVD_SQRT: [[f64; 3]; 3] =
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]];

/// Lucid divides the inverse FFT by this constant before decorrelating; kept so learning
/// rates and noise levels carry over from lucid/Aphantasia settings.
pub const LUCID_FFT_DIVISOR: f64 = 4.0;

/// [`COLOR_CORRELATION_SVD_SQRT`] with every entry divided by the largest column norm.
pub fn color_correlation_normalized() -> [[f64; 3]; 3] {
    let m = COLOR_CORRELATION_SVD_SQRT;
    let max_norm = (0..3)
        .map(|c| (0..3).map(|r| m[r][c] * m[r][c]).sum::<f64>().sqrt())
        .fold(0.0, f64::max);
    m.map(|row| row.map(|v| v / max_norm))
}

pub(super) fn invert3(m: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let c =
        |r0: usize, c0: usize, r1: usize, c1: usize| m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0];
    let det = m[0][0] * c(1, 1, 2, 2) - m[0][1] * c(1, 0, 2, 2) + m[0][2] * c(1, 0, 2, 1);
    let adj = [
        [c(1, 1, 2, 2), -c(0, 1, 2, 2), c(0, 1, 1, 2)],
        [-c(1, 0, 2, 2), c(0, 0, 2, 2), -c(0, 0, 1, 2)],
        [c(1, 0, 2, 1), -c(0, 0, 2, 1), c(0, 0, 1, 1)],
    ];
    adj.map(|row| row.map(|v| v / det))
}

fn matrix3(m: [[f64; 3]; 3], dtype: DType, device: &Device) -> Result<Tensor> {
    Ok(Tensor::from_vec(m.concat(), (3, 3), device)?.to_dtype(dtype)?)
}

/// Applies a 3×3 colour matrix to `[3, H, W]`, giving `[1, 3, H, W]`.
fn mix_colors(m: &Tensor, x: &Tensor) -> Result<Tensor> {
    let (c, h, w) = x.dims3()?;
    Ok(m.matmul(&x.reshape((c, h * w))?)?.reshape((1, c, h, w))?)
}

/// Lucid's spectral parameterisation: per-channel rFFT coefficients scaled by
/// `1 / max(f, 1/max(W, H))^decay`, inverse orthonormal FFT, divided by
/// [`LUCID_FFT_DIVISOR`], colour-decorrelated, then sigmoid.
///
/// The orthonormal transform equals lucid's `irfft2d(spectrum * sqrt(W*H))`, so spectrum
/// magnitudes (and the 0.01 init std) mean the same at every image size.
pub struct FourierImage {
    re: Var,
    im: Var,
    scale: Tensor,
    color: Tensor,
    width: usize,
    height: usize,
}

impl FourierImage {
    /// Lucid's default frequency decay exponent.
    pub const DEFAULT_DECAY: f64 = 1.0;
    /// Lucid's default init standard deviation of the spectrum.
    pub const DEFAULT_STD: f64 = 0.01;

    /// `[H, W/2+1]` spectrum scale `1 / max(f, 1/max(W, H))^decay` with f in cycles/pixel.
    pub fn spectrum_scale(width: usize, height: usize, decay: f64) -> Result<Tensor> {
        check_size(width, height)?;
        let (fy, fx) = (fftfreq(height), rfftfreq(width));
        let floor = 1.0 / width.max(height) as f64;
        let s: Vec<f64> = fy
            .iter()
            .flat_map(|y| {
                fx.iter()
                    .map(move |x| 1.0 / (y * y + x * x).sqrt().max(floor).powf(decay))
            })
            .collect();
        Ok(Tensor::from_vec(
            s,
            (height, half_len(width)),
            &Device::Cpu,
        )?)
    }

    /// Builds from given real and imaginary spectra `[3, H, W/2+1]` (f32 or f64).
    pub fn from_spectrum(re: &Tensor, im: &Tensor, width: usize, decay: f64) -> Result<Self> {
        let (c, height, wf) = re.dims3()?;
        if c != 3 || wf != half_len(width) || re.dims() != im.dims() {
            return Err(GuideError::Shape {
                what: "spectrum",
                got: re.dims().to_vec(),
                expected: "[3, H, width/2 + 1] for both real and imaginary parts",
            });
        }
        let dtype = re.dtype();
        Ok(Self {
            re: Var::from_tensor(re)?,
            im: Var::from_tensor(&im.to_dtype(dtype)?)?,
            scale: Self::spectrum_scale(width, height, decay)?.to_dtype(dtype)?,
            color: matrix3(color_correlation_normalized(), dtype, re.device())?,
            width,
            height,
        })
    }

    /// Spectrum drawn from N(0, std²) (lucid uses std 0.01), f32.
    pub fn random(
        width: usize,
        height: usize,
        decay: f64,
        std: f64,
        rng: &mut ChaCha8Rng,
    ) -> Result<Self> {
        check_size(width, height)?;
        let dims = [3, height, half_len(width)];
        let re = gaussian(rng, &dims, std)?;
        let im = gaussian(rng, &dims, std)?;
        Self::from_spectrum(&re, &im, width, decay)
    }

    /// Starts from an image `[1, 3, H, W]` in [0, 1]: logit, undo the colour mixing and the
    /// divisor, forward FFT, undo the scale. `to_rgb` then reproduces the image to within
    /// [`INIT_CLAMP`] plus f32 rounding.
    pub fn from_rgb(rgb: &Tensor, decay: f64) -> Result<Self> {
        let (height, width) = rgb_dims(rgb)?;
        let logits = logit(rgb)?.squeeze(0)?;
        let unmix = matrix3(
            invert3(color_correlation_normalized()),
            DType::F64,
            rgb.device(),
        )?;
        let x = (mix_colors(&unmix, &logits)?.squeeze(0)? * LUCID_FFT_DIVISOR)?;
        let (re, im) = rfft2(&x)?;
        let scale = Self::spectrum_scale(width, height, decay)?;
        let re = re.broadcast_div(&scale)?.to_dtype(DType::F32)?;
        let im = im.broadcast_div(&scale)?.to_dtype(DType::F32)?;
        Self::from_spectrum(&re, &im, width, decay)
    }
}

impl Parameterization for FourierImage {
    fn params(&self) -> Vec<Var> {
        vec![self.re.clone(), self.im.clone()]
    }
    fn to_logits(&self) -> Result<Tensor> {
        let re = self.re.as_tensor().broadcast_mul(&self.scale)?;
        let im = self.im.as_tensor().broadcast_mul(&self.scale)?;
        let x = (irfft2(&re, &im, self.width)? / LUCID_FFT_DIVISOR)?;
        mix_colors(&self.color, &x)
    }
    fn width(&self) -> usize {
        self.width
    }
    fn height(&self) -> usize {
        self.height
    }
}
