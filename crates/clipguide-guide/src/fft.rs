//! Orthonormal 2-D real FFTs over the last two axes, with the inverse as a differentiable
//! candle op (candle has no FFT), following numpy's `rfft2`/`irfft2` with `norm="ortho"`.
//!
//! "Ortho" scaling divides both directions by `sqrt(H*W)`, so the transform is unitary on
//! the real signal space: a spectrum of fixed per-bin magnitude gives an image whose pixel
//! magnitude does not depend on the image size, and the adjoint of the inverse is simply
//! the forward transform with the half-spectrum bins weighted (see [`irfft2`]).

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};
use realfft::num_complex::Complex;
use realfft::num_traits::Float;
use realfft::{FftNum, RealFftPlanner};
use rustfft::FftPlanner;

use crate::error::{GuideError, Result};

/// Number of complex bins along the last axis of a real FFT of length `w`.
pub fn half_len(w: usize) -> usize {
    w / 2 + 1
}

/// Sample frequencies of a full FFT of length `n` in cycles per sample (numpy `fftfreq`).
pub fn fftfreq(n: usize) -> Vec<f64> {
    let n_pos = n.div_ceil(2);
    (0..n)
        .map(|k| {
            if k < n_pos {
                k as f64 / n as f64
            } else {
                (k as f64 - n as f64) / n as f64
            }
        })
        .collect()
}

/// Sample frequencies of a real FFT of length `n` (numpy `rfftfreq`): `k / n`, `k = 0..=n/2`.
pub fn rfftfreq(n: usize) -> Vec<f64> {
    (0..half_len(n)).map(|k| k as f64 / n as f64).collect()
}

/// Weight of half-spectrum column `kx` in the Hermitian extension: bins that stand for a
/// conjugate pair count twice, the DC column (and the Nyquist column for even widths) once.
fn column_multiplicity(kx: usize, w: usize) -> f64 {
    if kx == 0 || (w.is_multiple_of(2) && kx == w / 2) {
        1.0
    } else {
        2.0
    }
}

/// Inverse orthonormal 2-D real FFT of `batch` half-spectra `[H, W/2+1]` into `[H, W]`.
fn irfft2_slices<T: FftNum + Float>(
    re: &[T],
    im: &[T],
    batch: usize,
    h: usize,
    w: usize,
) -> Vec<T> {
    let wf = half_len(w);
    let col_fft = FftPlanner::<T>::new().plan_fft_inverse(h);
    let row_fft = RealFftPlanner::<T>::new().plan_fft_inverse(w);
    let norm = T::from_f64(1.0 / ((h * w) as f64).sqrt()).expect("float conversion");
    let mut out = vec![T::zero(); batch * h * w];
    let mut spec = vec![Complex::new(T::zero(), T::zero()); h * wf];
    let mut column = vec![Complex::new(T::zero(), T::zero()); h];
    let mut row_in = row_fft.make_input_vec();
    let mut scratch = row_fft.make_scratch_vec();
    for b in 0..batch {
        let base = b * h * wf;
        for (i, s) in spec.iter_mut().enumerate() {
            *s = Complex::new(re[base + i], im[base + i]);
        }
        // Complex inverse FFT down every column (the full-length axis) ...
        for kx in 0..wf {
            for ky in 0..h {
                column[ky] = spec[ky * wf + kx];
            }
            col_fft.process(&mut column);
            for n in 0..h {
                spec[n * wf + kx] = column[n];
            }
        }
        // ... then a complex-to-real inverse along each row. Dropping the imaginary part of
        // the DC and Nyquist bins is what numpy's irfft does, and realfft requires it.
        for n in 0..h {
            row_in.copy_from_slice(&spec[n * wf..(n + 1) * wf]);
            row_in[0].im = T::zero();
            if w.is_multiple_of(2) {
                row_in[wf - 1].im = T::zero();
            }
            let dst = &mut out[(b * h + n) * w..(b * h + n + 1) * w];
            row_fft
                .process_with_scratch(&mut row_in, dst, &mut scratch)
                .expect(
                    "imaginary parts of DC/Nyquist bins were zeroed and lengths match the plan",
                );
            for v in dst.iter_mut() {
                *v = *v * norm;
            }
        }
    }
    out
}

/// Forward orthonormal 2-D real FFT of `batch` images `[H, W]` into half-spectra (re, im).
fn rfft2_slices<T: FftNum + Float>(x: &[T], batch: usize, h: usize, w: usize) -> (Vec<T>, Vec<T>) {
    let wf = half_len(w);
    let col_fft = FftPlanner::<T>::new().plan_fft_forward(h);
    let row_fft = RealFftPlanner::<T>::new().plan_fft_forward(w);
    let norm = T::from_f64(1.0 / ((h * w) as f64).sqrt()).expect("float conversion");
    let mut re = vec![T::zero(); batch * h * wf];
    let mut im = vec![T::zero(); batch * h * wf];
    let mut spec = vec![Complex::new(T::zero(), T::zero()); h * wf];
    let mut column = vec![Complex::new(T::zero(), T::zero()); h];
    let mut row_in = row_fft.make_input_vec();
    let mut scratch = row_fft.make_scratch_vec();
    for b in 0..batch {
        for n in 0..h {
            row_in.copy_from_slice(&x[(b * h + n) * w..(b * h + n + 1) * w]);
            row_fft
                .process_with_scratch(&mut row_in, &mut spec[n * wf..(n + 1) * wf], &mut scratch)
                .expect("buffer lengths match the plan");
        }
        for kx in 0..wf {
            for ky in 0..h {
                column[ky] = spec[ky * wf + kx];
            }
            col_fft.process(&mut column);
            for (ky, c) in column.iter().enumerate() {
                let i = b * h * wf + ky * wf + kx;
                re[i] = c.re * norm;
                im[i] = c.im * norm;
            }
        }
    }
    (re, im)
}

/// Splits `dims` into (batch, H, last) for ops over the last two axes.
fn batch_dims(dims: &[usize], what: &'static str) -> Result<(usize, usize, usize)> {
    if dims.len() < 2 {
        return Err(GuideError::Shape {
            what,
            got: dims.to_vec(),
            expected: "[..., H, W] with at least two axes",
        });
    }
    let n = dims.len();
    Ok((dims[..n - 2].iter().product(), dims[n - 2], dims[n - 1]))
}

/// The candle op behind [`irfft2`]: inputs are the real and imaginary half-spectra.
struct Irfft2 {
    width: usize,
}

fn contiguous_slice<'a, T: candle_core::WithDType>(
    data: &'a [T],
    layout: &Layout,
) -> candle_core::Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("irfft2 needs contiguous inputs; call .contiguous() first"),
    }
}

impl CustomOp2 for Irfft2 {
    fn name(&self) -> &'static str {
        "irfft2-ortho"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = l1.shape().dims();
        let (batch, h, _) = batch_dims(dims, "spectrum").map_err(candle_core::Error::wrap)?;
        let mut out_dims = dims.to_vec();
        *out_dims.last_mut().expect("checked rank") = self.width;
        let out = match (s1, s2) {
            (CpuStorage::F32(a), CpuStorage::F32(b)) => CpuStorage::F32(irfft2_slices(
                contiguous_slice(a, l1)?,
                contiguous_slice(b, l2)?,
                batch,
                h,
                self.width,
            )),
            (CpuStorage::F64(a), CpuStorage::F64(b)) => CpuStorage::F64(irfft2_slices(
                contiguous_slice(a, l1)?,
                contiguous_slice(b, l2)?,
                batch,
                h,
                self.width,
            )),
            _ => candle_core::bail!("irfft2 supports f32 or f64 spectra of one dtype"),
        };
        Ok((out, Shape::from(out_dims)))
    }

    /// The op is linear, so its gradient is its adjoint applied to the output gradient.
    /// Writing x = Σ c_kx Re(X e^{iθ}) / sqrt(HW) shows ∂x/∂Re X = c cos θ / sqrt(HW) and
    /// ∂x/∂Im X = -c sin θ / sqrt(HW); summed against g these are c·Re and c·Im of the
    /// orthonormal forward rfft2 of g (e^{-iθ} = cos θ - i sin θ).
    fn bwd(
        &self,
        arg1: &Tensor,
        _arg2: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (re, im) = rfft2(grad_res).map_err(candle_core::Error::wrap)?;
        let (_, _, wf) = batch_dims(arg1.dims(), "spectrum").map_err(candle_core::Error::wrap)?;
        let mult: Vec<f64> = (0..wf)
            .map(|k| column_multiplicity(k, self.width))
            .collect();
        let mult = Tensor::from_vec(mult, wf, arg1.device())?.to_dtype(arg1.dtype())?;
        Ok((
            Some(re.broadcast_mul(&mult)?),
            Some(im.broadcast_mul(&mult)?),
        ))
    }
}

/// Differentiable inverse orthonormal 2-D real FFT over the last two axes.
///
/// `re` and `im` are `[..., H, W/2+1]` half-spectra (numpy `rfft2` layout: rows use
/// `fftfreq(H)` order, columns `rfftfreq(W)`); the result is `[..., H, width]`. As in numpy's
/// `irfft2(norm="ortho")` the imaginary parts of the DC column (and of the Nyquist column
/// for even widths) are dropped after the column transform, so they receive gradient only
/// through the rows they still affect. Gradients flow to both `re` and `im`. f32 or f64.
pub fn irfft2(re: &Tensor, im: &Tensor, width: usize) -> Result<Tensor> {
    if width == 0 {
        return Err(GuideError::invalid(
            "irfft2 width",
            "width must be at least 1",
        ));
    }
    let (_, h, wf) = batch_dims(re.dims(), "spectrum (re)")?;
    if re.dims() != im.dims() {
        return Err(GuideError::Shape {
            what: "spectrum (im)",
            got: im.dims().to_vec(),
            expected: "the same shape as the real part",
        });
    }
    if wf != half_len(width) || h == 0 {
        return Err(GuideError::invalid(
            "irfft2 spectrum",
            format!(
                "last axis has {wf} bins but width {width} needs {} (= width/2 + 1), and H must be at least 1",
                half_len(width)
            ),
        ));
    }
    Ok(re
        .contiguous()?
        .apply_op2(&im.contiguous()?, Irfft2 { width })?)
}

/// Orthonormal 2-D real FFT over the last two axes of `x` (`[..., H, W]`), returning the
/// (re, im) half-spectra `[..., H, W/2+1]`. Not differentiable: it is used for initialising
/// spectra from images and inside the backward of [`irfft2`]. f32 or f64.
pub fn rfft2(x: &Tensor) -> Result<(Tensor, Tensor)> {
    let (batch, h, w) = batch_dims(x.dims(), "image")?;
    if h == 0 || w == 0 {
        return Err(GuideError::Shape {
            what: "image",
            got: x.dims().to_vec(),
            expected: "[..., H, W] with H, W >= 1",
        });
    }
    let mut spec_dims = x.dims().to_vec();
    *spec_dims.last_mut().expect("checked rank") = half_len(w);
    let device = x.device();
    let x = x.detach().flatten_all()?;
    let (re, im) = match x.dtype() {
        candle_core::DType::F64 => {
            let (re, im) = rfft2_slices(&x.to_vec1::<f64>()?, batch, h, w);
            (
                Tensor::from_vec(re, spec_dims.clone(), device)?,
                Tensor::from_vec(im, spec_dims, device)?,
            )
        }
        dtype => {
            let (re, im) = rfft2_slices(
                &x.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?,
                batch,
                h,
                w,
            );
            (
                Tensor::from_vec(re, spec_dims.clone(), device)?.to_dtype(dtype)?,
                Tensor::from_vec(im, spec_dims, device)?.to_dtype(dtype)?,
            )
        }
    };
    Ok((re, im))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{assert_close, check_gradients, seeded_tensor};
    use candle_core::{DType, Device};
    use std::f64::consts::PI;

    /// Direct O(N^2) sum of the orthonormal inverse for a half-spectrum, written from the
    /// textbook definition with the Hermitian extension spelt out. (Checked once against
    /// `numpy.fft.irfft2(X, s=(h, w), norm="ortho")` at these sizes: equal to 3e-15.)
    fn irfft2_direct(re: &[f64], im: &[f64], h: usize, w: usize) -> Vec<f64> {
        let wf = w / 2 + 1;
        let mut out = vec![0.0; h * w];
        for n in 0..h {
            for m in 0..w {
                let mut acc = 0.0;
                for ky in 0..h {
                    for kx in 0..wf {
                        let c = if kx == 0 || (w.is_multiple_of(2) && kx == w / 2) {
                            1.0
                        } else {
                            2.0
                        };
                        let theta = 2.0
                            * PI
                            * (ky as f64 * n as f64 / h as f64 + kx as f64 * m as f64 / w as f64);
                        acc +=
                            c * (re[ky * wf + kx] * theta.cos() - im[ky * wf + kx] * theta.sin());
                    }
                }
                out[n * w + m] = acc / ((h * w) as f64).sqrt();
            }
        }
        out
    }

    #[test]
    fn frequencies_follow_numpy() {
        assert_eq!(fftfreq(5), vec![0.0, 0.2, 0.4, -0.4, -0.2]);
        assert_eq!(fftfreq(4), vec![0.0, 0.25, -0.5, -0.25]);
        assert_eq!(rfftfreq(5), vec![0.0, 0.2, 0.4]);
        assert_eq!(rfftfreq(4), vec![0.0, 0.25, 0.5]);
    }

    #[test]
    fn inverse_matches_direct_dft_on_odd_even_and_non_square_sizes() -> Result<()> {
        for &(h, w) in &[(1, 1), (3, 5), (4, 6), (5, 4), (6, 7), (2, 8)] {
            let wf = half_len(w);
            let re = seeded_tensor(&[2, h, wf], 1, DType::F64)?;
            let im = seeded_tensor(&[2, h, wf], 2, DType::F64)?;
            let got = irfft2(&re, &im, w)?;
            assert_eq!(got.dims(), &[2, h, w]);
            for b in 0..2 {
                let r = re.get(b)?.flatten_all()?.to_vec1::<f64>()?;
                let i = im.get(b)?.flatten_all()?.to_vec1::<f64>()?;
                let want = irfft2_direct(&r, &i, h, w);
                let g = got.get(b)?.flatten_all()?.to_vec1::<f64>()?;
                assert_close(&g, &want, 1e-10, &format!("irfft2 {h}x{w} batch {b}"));
            }
        }
        Ok(())
    }

    #[test]
    fn forward_then_inverse_round_trips_and_is_unitary() -> Result<()> {
        for &(h, w) in &[(3, 5), (4, 4), (7, 6)] {
            let x = seeded_tensor(&[3, h, w], 7, DType::F64)?;
            let (re, im) = rfft2(&x)?;
            let back = irfft2(&re, &im, w)?;
            let x_v = x.flatten_all()?.to_vec1::<f64>()?;
            assert_close(
                &back.flatten_all()?.to_vec1::<f64>()?,
                &x_v,
                1e-12,
                "round trip",
            );
            // Parseval with the Hermitian multiplicities: ortho scaling preserves energy.
            let energy: f64 = x_v.iter().map(|v| v * v).sum();
            let wf = half_len(w);
            let (r, i) = (
                re.flatten_all()?.to_vec1::<f64>()?,
                im.flatten_all()?.to_vec1::<f64>()?,
            );
            let spec_energy: f64 = (0..r.len())
                .map(|k| column_multiplicity(k % wf, w) * (r[k] * r[k] + i[k] * i[k]))
                .sum();
            assert!(
                (energy - spec_energy).abs() < 1e-9 * energy,
                "{energy} vs {spec_energy}"
            );
        }
        Ok(())
    }

    #[test]
    fn inverse_gradients_match_finite_differences() -> Result<()> {
        for &(h, w) in &[(3, 5), (4, 6), (2, 1)] {
            let wf = half_len(w);
            let re = seeded_tensor(&[2, h, wf], 3, DType::F64)?;
            let im = seeded_tensor(&[2, h, wf], 4, DType::F64)?;
            // A non-uniform weighting makes every output pixel matter differently.
            let weights = seeded_tensor(&[2, h, w], 5, DType::F64)?;
            check_gradients(&[re, im], 1e-6, 1e-6, |xs| {
                Ok(irfft2(&xs[0], &xs[1], w)?.mul(&weights)?.sqr()?.sum_all()?)
            })?;
        }
        Ok(())
    }

    #[test]
    fn f32_matches_f64() -> Result<()> {
        let re = seeded_tensor(&[3, 6, 5], 9, DType::F64)?;
        let im = seeded_tensor(&[3, 6, 5], 10, DType::F64)?;
        let a = irfft2(&re, &im, 9)?.flatten_all()?.to_vec1::<f64>()?;
        let b = irfft2(&re.to_dtype(DType::F32)?, &im.to_dtype(DType::F32)?, 9)?
            .to_dtype(DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        assert_close(&b, &a, 1e-5, "f32 vs f64");
        Ok(())
    }

    #[test]
    fn bad_shapes_are_errors() {
        let dev = Device::Cpu;
        let re = Tensor::zeros((4, 3), DType::F32, &dev).unwrap();
        let im = Tensor::zeros((4, 3), DType::F32, &dev).unwrap();
        assert!(matches!(
            irfft2(&re, &im, 6),
            Err(GuideError::InvalidArgument { .. })
        ));
        assert!(irfft2(&re, &im, 5).is_ok());
        let im_bad = Tensor::zeros((4, 2), DType::F32, &dev).unwrap();
        assert!(matches!(
            irfft2(&re, &im_bad, 4),
            Err(GuideError::Shape { .. })
        ));
        let flat = Tensor::zeros(3, DType::F32, &dev).unwrap();
        assert!(matches!(rfft2(&flat), Err(GuideError::Shape { .. })));
    }
}
