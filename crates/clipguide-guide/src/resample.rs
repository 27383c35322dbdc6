//! Crop-and-resize as dense interpolation matrices, so resampling a `[B, C, H, W]` tensor is
//! two matmuls (`A_h · X · A_wᵀ`): exact, differentiable in candle, and fast at CLIP sizes.
//!
//! Windows may reach outside the input; samples there repeat the edge pixel (this is what
//! lets cutouts be translated past the border). Rows of every matrix sum to one.

use candle_core::{DType, Device, Tensor};
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

/// Crops `crop` out of `x` (`[..., H, W]`) and resamples it to `[..., out_h, out_w]` as
/// `A_h · X · A_wᵀ`. The input is first narrowed to the pixels the window touches, so the
/// cost scales with the window rather than the image. Differentiable with respect to `x`.
pub fn crop_resize(
    x: &Tensor,
    crop: Crop,
    out_h: usize,
    out_w: usize,
    kind: ResizeKind,
) -> Result<Tensor> {
    let rank = x.rank();
    if rank < 2 {
        return Err(GuideError::Shape {
            what: "image",
            got: x.dims().to_vec(),
            expected: "[..., H, W]",
        });
    }
    let (h, w) = (x.dims()[rank - 2], x.dims()[rank - 1]);
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
    let window = x.narrow(rank - 2, r0, rn)?.narrow(rank - 1, c0, cn)?;
    Ok(a_h.broadcast_matmul(&window)?.broadcast_matmul(&a_w.t()?)?)
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
    fn empty_lengths_are_errors() {
        assert!(crop_resize_weights(0, Span { start: 0, len: 1 }, 1, ResizeKind::Area).is_err());
        assert!(crop_resize_weights(4, Span { start: 0, len: 0 }, 1, ResizeKind::Area).is_err());
        assert!(
            crop_resize_weights(4, Span { start: 0, len: 4 }, 0, ResizeKind::Bilinear).is_err()
        );
    }
}
