//! Crop-and-resize as dense interpolation matrices, so resampling a `[B, C, H, W]` tensor is
//! two matmuls (`A_h · X · A_wᵀ`): exact, differentiable in candle, and fast at CLIP sizes.
//!
//! Windows may reach outside the input; samples there repeat the edge pixel (this is what
//! lets cutouts be translated past the border). Rows of every matrix sum to one.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Shape, Tensor, WithDType};
use serde::{Deserialize, Serialize};

use crate::error::{GuideError, Result};

/// How a window is resampled to the output length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResizeKind {
    /// Linear interpolation with half-pixel centres (torch `align_corners=False`,
    /// no antialiasing). Use when enlarging or keeping the size.
    Bilinear,
    /// Exact box filter: each output sample is the average of the input over its cell, with
    /// fractional coverage at the cell edges (torch's `area` mode rounds cells to whole
    /// pixels instead). Use when shrinking, where bilinear would alias.
    Area,
}

/// A window `[start, start + len)` along one axis; `start` may be negative and the window
/// may run past the end, in which case edge pixels are repeated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// First sample of the window in input coordinates.
    pub start: i64,
    /// Window length in input samples.
    pub len: usize,
}

/// A 2-D window of an image; see [`Span`] for what happens outside the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crop {
    /// First row.
    pub top: i64,
    /// First column.
    pub left: i64,
    /// Rows in the window.
    pub height: usize,
    /// Columns in the window.
    pub width: usize,
}

impl Crop {
    /// The vertical span.
    pub fn rows(&self) -> Span {
        Span {
            start: self.top,
            len: self.height,
        }
    }

    /// The horizontal span.
    pub fn cols(&self) -> Span {
        Span {
            start: self.left,
            len: self.width,
        }
    }
}

fn check_lengths(in_len: usize, span: Span, out_len: usize) -> Result<()> {
    if in_len == 0 || span.len == 0 || out_len == 0 {
        return Err(GuideError::invalid(
            "resize lengths",
            format!(
                "input {in_len}, window {}, output {out_len}: all must be at least 1",
                span.len
            ),
        ));
    }
    Ok(())
}

/// Row-major `[out_len, in_len]` weights that resample `span` of an axis of length `in_len`
/// to `out_len` samples.
pub fn crop_resize_weights(
    in_len: usize,
    span: Span,
    out_len: usize,
    kind: ResizeKind,
) -> Result<Vec<f64>> {
    check_lengths(in_len, span, out_len)?;
    let mut w = vec![0.0; out_len * in_len];
    let to_input = |c: i64| (span.start + c).clamp(0, in_len as i64 - 1) as usize;
    let ratio = span.len as f64 / out_len as f64;
    for i in 0..out_len {
        let row = &mut w[i * in_len..(i + 1) * in_len];
        match kind {
            ResizeKind::Bilinear => {
                let src = ((i as f64 + 0.5) * ratio - 0.5).max(0.0);
                let i0 = (src.floor() as i64).min(span.len as i64 - 1);
                let i1 = (i0 + 1).min(span.len as i64 - 1);
                let frac = src - i0 as f64;
                row[to_input(i0)] += 1.0 - frac;
                row[to_input(i1)] += frac;
            }
            ResizeKind::Area => {
                let (a, b) = (i as f64 * ratio, (i + 1) as f64 * ratio);
                let first = a.floor() as i64;
                let last = (b.ceil() as i64).min(span.len as i64);
                for c in first..last {
                    let overlap = b.min(c as f64 + 1.0) - a.max(c as f64);
                    if overlap > 0.0 {
                        row[to_input(c)] += overlap / ratio;
                    }
                }
            }
        }
    }
    Ok(w)
}

/// `[out_len, in_len]` matrix resampling `span` of an axis of length `in_len`.
pub fn crop_resize_matrix(
    in_len: usize,
    span: Span,
    out_len: usize,
    kind: ResizeKind,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    let w = crop_resize_weights(in_len, span, out_len, kind)?;
    Ok(Tensor::from_vec(w, (out_len, in_len), device)?.to_dtype(dtype)?)
}

/// `[out_len, in_len]` matrix resampling a whole axis (the window is the full input).
pub fn resize_matrix(
    in_len: usize,
    out_len: usize,
    kind: ResizeKind,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    crop_resize_matrix(
        in_len,
        Span {
            start: 0,
            len: in_len,
        },
        out_len,
        kind,
        dtype,
        device,
    )
}

/// The input indices a window touches after edge clamping: `(first, count)`.
fn touched(in_len: usize, span: Span) -> (usize, usize) {
    let last = in_len as i64 - 1;
    let lo = span.start.clamp(0, last);
    let hi = (span.start + span.len as i64 - 1).clamp(0, last);
    (lo as usize, (hi - lo + 1) as usize)
}

/// The last two dims of an `[..., H, W]` tensor.
fn image_hw(x: &Tensor) -> Result<(usize, usize)> {
    match x.dims() {
        [.., h, w] => Ok((*h, *w)),
        dims => Err(GuideError::Shape {
            what: "image",
            got: dims.to_vec(),
            expected: "[..., H, W]",
        }),
    }
}

/// [`crop_resize`] written as the two dense matmuls `A_h · X · A_wᵀ` on the pixels the
/// window touches. Same result; kept as the reference formulation and for callers who want
/// candle's own ops only. Slower: candle's matmul backward also computes the (unused)
/// gradient of the constant matrices, and the matrices are mostly zeros.
pub fn crop_resize_dense(
    x: &Tensor,
    crop: Crop,
    out_h: usize,
    out_w: usize,
    kind: ResizeKind,
) -> Result<Tensor> {
    let (h, w) = image_hw(x)?;
    check_lengths(h, crop.rows(), out_h)?;
    check_lengths(w, crop.cols(), out_w)?;
    let (r0, rn) = touched(h, crop.rows());
    let (c0, cn) = touched(w, crop.cols());
    let local = |span: Span, first: usize| Span {
        start: span.start - first as i64,
        len: span.len,
    };
    let a_h = crop_resize_matrix(
        rn,
        local(crop.rows(), r0),
        out_h,
        kind,
        x.dtype(),
        x.device(),
    )?;
    let a_w = crop_resize_matrix(
        cn,
        local(crop.cols(), c0),
        out_w,
        kind,
        x.dtype(),
        x.device(),
    )?;
    let rank = x.rank();
    let window = x.narrow(rank - 2, r0, rn)?.narrow(rank - 1, c0, cn)?;
    Ok(a_h.broadcast_matmul(&window)?.broadcast_matmul(&a_w.t()?)?)
}

/// One axis of a resampling as bands: per output sample the first input index and the
/// contiguous run of weights from there (edge clamping keeps the run contiguous).
#[derive(Debug)]
struct Banded {
    in_len: usize,
    bands: Vec<(usize, Vec<f64>)>,
}

impl Banded {
    fn new(in_len: usize, span: Span, out_len: usize, kind: ResizeKind) -> Result<Self> {
        let dense = crop_resize_weights(in_len, span, out_len, kind)?;
        let bands = dense
            .chunks(in_len)
            .map(|row| {
                let first = row.iter().position(|&v| v != 0.0).unwrap_or(0);
                let last = row.iter().rposition(|&v| v != 0.0).unwrap_or(0);
                (first, row[first..=last.max(first)].to_vec())
            })
            .collect();
        Ok(Self { in_len, bands })
    }

    fn out_len(&self) -> usize {
        self.bands.len()
    }
}

/// `out = A_h · X · A_wᵀ` per plane with banded A's, so the cost is proportional to the
/// output size times the filter width instead of the dense matrix sizes.
fn banded_forward<T: WithDType>(x: &[T], planes: usize, rows: &Banded, cols: &Banded) -> Vec<T> {
    let (h, w) = (rows.in_len, cols.in_len);
    let (oh, ow) = (rows.out_len(), cols.out_len());
    let mut out = Vec::with_capacity(planes * oh * ow);
    let mut tmp = vec![0.0f64; w];
    for p in 0..planes {
        let plane = &x[p * h * w..(p + 1) * h * w];
        for (first_row, row_weights) in &rows.bands {
            tmp.iter_mut().for_each(|v| *v = 0.0);
            for (k, &a) in row_weights.iter().enumerate() {
                let src = &plane[(first_row + k) * w..(first_row + k + 1) * w];
                for (t, s) in tmp.iter_mut().zip(src) {
                    *t += a * s.to_f64();
                }
            }
            for (first_col, col_weights) in &cols.bands {
                let acc: f64 = col_weights
                    .iter()
                    .zip(&tmp[*first_col..])
                    .map(|(b, t)| b * t)
                    .sum();
                out.push(T::from_f64(acc));
            }
        }
    }
    out
}

/// The adjoint of [`banded_forward`]: `A_hᵀ · G · A_w` per plane, in f64.
fn banded_adjoint(g: &[f64], planes: usize, rows: &Banded, cols: &Banded) -> Vec<f64> {
    let (h, w) = (rows.in_len, cols.in_len);
    let (oh, ow) = (rows.out_len(), cols.out_len());
    let mut out = vec![0.0f64; planes * h * w];
    let mut tmp = vec![0.0f64; w];
    for p in 0..planes {
        let plane = &mut out[p * h * w..(p + 1) * h * w];
        for (i, (first_row, row_weights)) in rows.bands.iter().enumerate() {
            tmp.iter_mut().for_each(|v| *v = 0.0);
            for (j, (first_col, col_weights)) in cols.bands.iter().enumerate() {
                let gij = g[(p * oh + i) * ow + j];
                for (t, b) in tmp[*first_col..].iter_mut().zip(col_weights) {
                    *t += b * gij;
                }
            }
            for (k, &a) in row_weights.iter().enumerate() {
                let dst = &mut plane[(first_row + k) * w..(first_row + k + 1) * w];
                for (d, t) in dst.iter_mut().zip(&tmp) {
                    *d += a * t;
                }
            }
        }
    }
    out
}

/// The candle op behind [`crop_resize`].
struct BandedResize {
    rows: Arc<Banded>,
    cols: Arc<Banded>,
}

impl CustomOp1 for BandedResize {
    fn name(&self) -> &'static str {
        "banded-crop-resize"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("crop_resize needs a contiguous input");
        };
        let dims = layout.shape().dims();
        let planes = layout.shape().elem_count() / (self.rows.in_len * self.cols.in_len);
        let mut out_dims = dims.to_vec();
        let n = out_dims.len();
        out_dims[n - 2] = self.rows.out_len();
        out_dims[n - 1] = self.cols.out_len();
        let out = match storage {
            CpuStorage::F32(v) => CpuStorage::F32(banded_forward(
                &v[start..end],
                planes,
                &self.rows,
                &self.cols,
            )),
            CpuStorage::F64(v) => CpuStorage::F64(banded_forward(
                &v[start..end],
                planes,
                &self.rows,
                &self.cols,
            )),
            _ => candle_core::bail!("crop_resize supports f32 and f64"),
        };
        Ok((out, Shape::from(out_dims)))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let g = grad_res
            .to_dtype(DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        let planes = arg.elem_count() / (self.rows.in_len * self.cols.in_len);
        let grad = banded_adjoint(&g, planes, &self.rows, &self.cols);
        Ok(Some(
            Tensor::from_vec(grad, arg.shape(), arg.device())?.to_dtype(arg.dtype())?,
        ))
    }
}

/// Crops `crop` out of `x` (`[..., H, W]`) and resamples it to `[..., out_h, out_w]`:
/// mathematically `A_h · X · A_wᵀ` with the matrices of [`crop_resize_matrix`], computed
/// as a custom op that skips their zeros (a 512² → 224² cutout touches ~3 input pixels
/// per output sample along each axis). Differentiable with respect to `x`; f32 or f64.
pub fn crop_resize(
    x: &Tensor,
    crop: Crop,
    out_h: usize,
    out_w: usize,
    kind: ResizeKind,
) -> Result<Tensor> {
    let (h, w) = image_hw(x)?;
    let rows = Arc::new(Banded::new(h, crop.rows(), out_h, kind)?);
    let cols = Arc::new(Banded::new(w, crop.cols(), out_w, kind)?);
    Ok(x.contiguous()?.apply_op1(BandedResize { rows, cols })?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{assert_close, check_gradients, seeded_tensor};

    /// A row-major single-channel image.
    struct Img {
        data: Vec<f64>,
        h: usize,
        w: usize,
    }

    impl Img {
        /// Pixel with edge repetition.
        fn at(&self, y: i64, x: i64) -> f64 {
            let y = y.clamp(0, self.h as i64 - 1) as usize;
            self.data[y * self.w + x.clamp(0, self.w as i64 - 1) as usize]
        }
    }

    /// Bilinear sample for output pixel `at` of an `out`-sized resampling, pointwise in 2-D.
    fn bilinear_direct(img: &Img, crop: Crop, out: (usize, usize), at: (usize, usize)) -> f64 {
        let coord = |o: usize, len: usize, n: usize| -> (i64, i64, f64) {
            let s = ((o as f64 + 0.5) * len as f64 / n as f64 - 0.5).max(0.0);
            let lo = (s.floor() as i64).min(len as i64 - 1);
            (lo, (lo + 1).min(len as i64 - 1), s - lo as f64)
        };
        let (y0, y1, fy) = coord(at.0, crop.height, out.0);
        let (x0, x1, fx) = coord(at.1, crop.width, out.1);
        let p = |y: i64, x: i64| img.at(crop.top + y, crop.left + x);
        (1.0 - fy) * ((1.0 - fx) * p(y0, x0) + fx * p(y0, x1))
            + fy * ((1.0 - fx) * p(y1, x0) + fx * p(y1, x1))
    }

    /// Box average by the midpoint rule on a grid fine enough (window-length samples per
    /// output cell) that pixel edges fall on sub-cell edges, which makes it exact.
    fn area_direct(img: &Img, crop: Crop, out: (usize, usize), at: (usize, usize)) -> f64 {
        let (ky, kx) = (crop.height, crop.width);
        let mut acc = 0.0;
        for sy in 0..ky {
            let y =
                (at.0 as f64 + (sy as f64 + 0.5) / ky as f64) * crop.height as f64 / out.0 as f64;
            for sx in 0..kx {
                let x = (at.1 as f64 + (sx as f64 + 0.5) / kx as f64) * crop.width as f64
                    / out.1 as f64;
                acc += img.at(crop.top + y.floor() as i64, crop.left + x.floor() as i64);
            }
        }
        acc / (ky * kx) as f64
    }

    #[test]
    fn matrix_rows_sum_to_one() -> Result<()> {
        for kind in [ResizeKind::Bilinear, ResizeKind::Area] {
            for &(n, s, l, o) in &[(10, 2, 7, 3), (10, -3, 5, 9), (5, 3, 6, 4), (7, 0, 7, 7)] {
                let w = crop_resize_weights(n, Span { start: s, len: l }, o, kind)?;
                for r in 0..o {
                    let sum: f64 = w[r * n..(r + 1) * n].iter().sum();
                    assert!((sum - 1.0).abs() < 1e-12, "{kind:?} row {r} sums to {sum}");
                }
            }
        }
        Ok(())
    }

    #[test]
    fn same_size_window_is_the_identity_crop() -> Result<()> {
        for kind in [ResizeKind::Bilinear, ResizeKind::Area] {
            let w = crop_resize_weights(6, Span { start: 1, len: 4 }, 4, kind)?;
            for r in 0..4 {
                for c in 0..6 {
                    let want = if c == r + 1 { 1.0 } else { 0.0 };
                    assert!(
                        (w[r * 6 + c] - want).abs() < 1e-12,
                        "{kind:?} [{r},{c}] = {}",
                        w[r * 6 + c]
                    );
                }
            }
        }
        Ok(())
    }

    #[test]
    fn crop_resize_matches_direct_resampling() -> Result<()> {
        let (h, w) = (9, 11);
        let x = seeded_tensor(&[2, 3, h, w], 11, DType::F64)?;
        let crops = [
            (
                Crop {
                    top: 1,
                    left: 2,
                    height: 7,
                    width: 7,
                },
                3,
                3,
            ),
            (
                Crop {
                    top: 0,
                    left: 0,
                    height: 9,
                    width: 11,
                },
                5,
                4,
            ),
            (
                Crop {
                    top: 2,
                    left: 3,
                    height: 4,
                    width: 4,
                },
                7,
                6,
            ),
            (
                Crop {
                    top: -2,
                    left: 8,
                    height: 6,
                    width: 5,
                },
                4,
                7,
            ),
        ];
        for kind in [ResizeKind::Bilinear, ResizeKind::Area] {
            for &(crop, oh, ow) in &crops {
                let got = crop_resize(&x, crop, oh, ow, kind)?;
                assert_eq!(got.dims(), &[2, 3, oh, ow]);
                for b in 0..2 {
                    for c in 0..3 {
                        let img = Img {
                            data: x.get(b)?.get(c)?.flatten_all()?.to_vec1::<f64>()?,
                            h,
                            w,
                        };
                        let mut want = Vec::new();
                        for i in 0..oh {
                            for j in 0..ow {
                                want.push(match kind {
                                    ResizeKind::Bilinear => {
                                        bilinear_direct(&img, crop, (oh, ow), (i, j))
                                    }
                                    ResizeKind::Area => area_direct(&img, crop, (oh, ow), (i, j)),
                                });
                            }
                        }
                        let g = got.get(b)?.get(c)?.flatten_all()?.to_vec1::<f64>()?;
                        assert_close(&g, &want, 1e-12, &format!("{kind:?} {crop:?}"));
                    }
                }
            }
        }
        Ok(())
    }

    #[test]
    fn crop_resize_gradients_match_finite_differences() -> Result<()> {
        let x = seeded_tensor(&[1, 2, 6, 7], 12, DType::F64)?;
        let weights = seeded_tensor(&[1, 2, 4, 3], 13, DType::F64)?;
        for kind in [ResizeKind::Bilinear, ResizeKind::Area] {
            let crop = Crop {
                top: -1,
                left: 1,
                height: 6,
                width: 5,
            };
            check_gradients(std::slice::from_ref(&x), 1e-6, 1e-7, |xs| {
                Ok(crop_resize(&xs[0], crop, 4, 3, kind)?
                    .mul(&weights)?
                    .sqr()?
                    .sum_all()?)
            })?;
        }
        Ok(())
    }

    #[test]
    fn banded_and_dense_formulations_agree() -> Result<()> {
        let x = seeded_tensor(&[1, 3, 13, 10], 14, DType::F32)?;
        for kind in [ResizeKind::Bilinear, ResizeKind::Area] {
            for crop in [
                Crop {
                    top: 2,
                    left: -3,
                    height: 11,
                    width: 9,
                },
                Crop {
                    top: 0,
                    left: 0,
                    height: 3,
                    width: 3,
                },
            ] {
                let a = crop_resize(&x, crop, 5, 7, kind)?
                    .flatten_all()?
                    .to_vec1::<f32>()?;
                let b = crop_resize_dense(&x, crop, 5, 7, kind)?
                    .flatten_all()?
                    .to_vec1::<f32>()?;
                let (a, b): (Vec<f64>, Vec<f64>) = (
                    a.iter().map(|&v| v as f64).collect(),
                    b.iter().map(|&v| v as f64).collect(),
                );
                assert_close(&a, &b, 1e-6, &format!("{kind:?} {crop:?}"));
            }
        }
        let weights = seeded_tensor(&[1, 2, 4, 3], 15, DType::F64)?;
        let x = seeded_tensor(&[1, 2, 6, 7], 16, DType::F64)?;
        let crop = Crop {
            top: 1,
            left: -2,
            height: 5,
            width: 6,
        };
        check_gradients(std::slice::from_ref(&x), 1e-6, 1e-7, |xs| {
            Ok(crop_resize_dense(&xs[0], crop, 4, 3, ResizeKind::Area)?
                .mul(&weights)?
                .sqr()?
                .sum_all()?)
        })
    }

    #[test]
    fn empty_lengths_are_errors() {
        assert!(crop_resize_weights(0, Span { start: 0, len: 1 }, 1, ResizeKind::Area).is_err());
        assert!(crop_resize_weights(4, Span { start: 0, len: 0 }, 1, ResizeKind::Area).is_err());
        assert!(
            crop_resize_weights(4, Span { start: 0, len: 4 }, 0, ResizeKind::Bilinear).is_err()
        );
    }
}
