//! Applies per-token prompt weights to encoder hidden states, the way each UI does.
//! Every op is differentiable in candle, so gradients reach the hidden states and the empty encoding.

use candle_core::{DType, Tensor, D};

/// How weights act on the hidden states `z` (`[chunks, 77, D]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmphasisMode {
    /// A1111 "Original" (modules/sd_emphasis.py): `z·w`, then rescaled so the mean equals the
    /// unweighted mean. A1111 encodes one chunk at a time, so the mean is per chunk.
    #[default]
    A1111,
    /// A1111 "No norm": `z·w`.
    A1111NoNorm,
    /// ComfyUI (`ClipTokenWeightEncoder.encode_token_weights`): `(z − e)·w + e` with `e` the
    /// encoding of the empty prompt, applied only where `w != 1`.
    Comfy,
    /// A1111 "Ignore": weights are parsed but not applied.
    Ignore,
}

#[derive(Debug, thiserror::Error)]
pub enum EmphasisError {
    #[error("hidden states must be [chunks, 77, dim], got {0:?}")]
    HiddenRank(Vec<usize>),
    #[error(
        "weights have shape {weights:?} but the hidden states {hidden:?} need [{chunks}, {tokens}]"
    )]
    WeightShape {
        weights: Vec<usize>,
        hidden: Vec<usize>,
        chunks: usize,
        tokens: usize,
    },
    #[error("ComfyUI weighting needs the empty-prompt encoding: pass `empty` ([77, dim], [1, 77, dim] or [chunks, 77, dim])")]
    MissingEmpty,
    #[error("empty-prompt encoding has shape {empty:?}, which does not broadcast to the hidden states {hidden:?}: encode the empty prompt with the same encoder and chunk length")]
    EmptyShape {
        empty: Vec<usize>,
        hidden: Vec<usize>,
    },
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Weights `z` (`[chunks, tokens, dim]`) by `weights` (`[chunks, tokens]`). `empty` is only read
/// by [`EmphasisMode::Comfy`]. The result has `z`'s dtype; weights are cast to it.
pub fn apply_emphasis(
    z: &Tensor,
    weights: &Tensor,
    mode: EmphasisMode,
    empty: Option<&Tensor>,
) -> Result<Tensor, EmphasisError> {
    let (chunks, tokens, dim) = match z.dims() {
        &[c, t, d] => (c, t, d),
        other => return Err(EmphasisError::HiddenRank(other.to_vec())),
    };
    if weights.dims() != [chunks, tokens] {
        return Err(EmphasisError::WeightShape {
            weights: weights.dims().to_vec(),
            hidden: z.dims().to_vec(),
            chunks,
            tokens,
        });
    }
    let w = weights.to_dtype(z.dtype())?.unsqueeze(D::Minus1)?;
    Ok(match mode {
        EmphasisMode::Ignore => z.clone(),
        EmphasisMode::A1111NoNorm => z.broadcast_mul(&w)?,
        EmphasisMode::A1111 => {
            let original_mean = chunk_mean(z, chunks, tokens * dim)?;
            let weighted = z.broadcast_mul(&w)?;
            let new_mean = chunk_mean(&weighted, chunks, tokens * dim)?;
            // Same order as A1111: the scalar ratio first, then one multiply.
            weighted.broadcast_mul(&original_mean.div(&new_mean)?)?
        }
        EmphasisMode::Comfy => {
            let empty = empty.ok_or(EmphasisError::MissingEmpty)?;
            let empty = match empty.dims() {
                &[t, d] if t == tokens && d == dim => empty.unsqueeze(0)?,
                &[c, t, d] if (c == 1 || c == chunks) && t == tokens && d == dim => empty.clone(),
                other => {
                    return Err(EmphasisError::EmptyShape {
                        empty: other.to_vec(),
                        hidden: z.dims().to_vec(),
                    })
                }
            }
            .to_dtype(z.dtype())?
            .broadcast_as(z.shape())?;
            let mixed = z.sub(&empty)?.broadcast_mul(&w)?.add(&empty)?;
            // ComfyUI leaves weight-1 tokens untouched, which is not bit-identical to the formula.
            let changed = weights
                .to_dtype(DType::F32)?
                .ne(1f64)?
                .unsqueeze(D::Minus1)?
                .broadcast_as(z.shape())?;
            changed.where_cond(&mixed, z)?
        }
    })
}

/// Mean over each chunk's `[tokens, dim]`, shaped `[chunks, 1, 1]` for broadcasting.
fn chunk_mean(t: &Tensor, chunks: usize, per_chunk: usize) -> candle_core::Result<Tensor> {
    t.reshape((chunks, per_chunk))?
        .mean_keepdim(1)?
        .reshape((chunks, 1, 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn t3(v: &[f32], shape: (usize, usize, usize)) -> Tensor {
        Tensor::from_vec(v.to_vec(), shape, &Device::Cpu).unwrap()
    }

    fn t2(v: &[f32], shape: (usize, usize)) -> Tensor {
        Tensor::from_vec(v.to_vec(), shape, &Device::Cpu).unwrap()
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    fn assert_close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "got {got:?}, want {want:?}");
        }
    }

    // One chunk, 2 tokens, dim 2: z = [[1, 2], [3, 4]], w = [1, 2].
    #[test]
    fn a1111_no_norm_multiplies() {
        let z = t3(&[1., 2., 3., 4.], (1, 2, 2));
        let w = t2(&[1., 2.], (1, 2));
        let out = apply_emphasis(&z, &w, EmphasisMode::A1111NoNorm, None).unwrap();
        assert_close(&values(&out), &[1., 2., 6., 8.]);
    }

    #[test]
    fn a1111_restores_the_mean() {
        // z·w = [1, 2, 6, 8], mean 4.25; original mean 2.5; scale 2.5 / 4.25 = 10/17.
        let z = t3(&[1., 2., 3., 4.], (1, 2, 2));
        let w = t2(&[1., 2.], (1, 2));
        let out = apply_emphasis(&z, &w, EmphasisMode::A1111, None).unwrap();
        let s = 10.0 / 17.0;
        assert_close(&values(&out), &[s, 2. * s, 6. * s, 8. * s]);
    }

    #[test]
    fn a1111_mean_is_per_chunk() {
        // Chunk 0 as above; chunk 1 all weights 1 must come back unchanged.
        let z = t3(&[1., 2., 3., 4., 5., 6., 7., 8.], (2, 2, 2));
        let w = t2(&[1., 2., 1., 1.], (2, 2));
        let out = apply_emphasis(&z, &w, EmphasisMode::A1111, None).unwrap();
        let s = 10.0 / 17.0;
        assert_close(&values(&out), &[s, 2. * s, 6. * s, 8. * s, 5., 6., 7., 8.]);
    }

    #[test]
    fn comfy_interpolates_from_empty() {
        // e = [[0, 0], [1, 1]]; token 1 weight 2: (z - e)·2 + e = [(3-1)·2+1, (4-1)·2+1] = [5, 7].
        let z = t3(&[1., 2., 3., 4.], (1, 2, 2));
        let w = t2(&[1., 2.], (1, 2));
        let e = t2(&[0., 0., 1., 1.], (2, 2));
        let out = apply_emphasis(&z, &w, EmphasisMode::Comfy, Some(&e)).unwrap();
        assert_close(&values(&out), &[1., 2., 5., 7.]);
        // Weight 0.5: (3-1)·0.5+1 = 2, (4-1)·0.5+1 = 2.5.
        let w = t2(&[1., 0.5], (1, 2));
        let out = apply_emphasis(&z, &w, EmphasisMode::Comfy, Some(&e)).unwrap();
        assert_close(&values(&out), &[1., 2., 2., 2.5]);
    }

    #[test]
    fn ignore_returns_input() {
        let z = t3(&[1., 2., 3., 4.], (1, 2, 2));
        let w = t2(&[3., 2.], (1, 2));
        let out = apply_emphasis(&z, &w, EmphasisMode::Ignore, None).unwrap();
        assert_close(&values(&out), &[1., 2., 3., 4.]);
    }

    #[test]
    fn shape_errors_are_reported() {
        let z = t3(&[1., 2., 3., 4.], (1, 2, 2));
        let w = t2(&[1., 2.], (2, 1));
        assert!(matches!(
            apply_emphasis(&z, &w, EmphasisMode::A1111, None),
            Err(EmphasisError::WeightShape { .. })
        ));
        let w = t2(&[1., 2.], (1, 2));
        assert!(matches!(
            apply_emphasis(&z, &w, EmphasisMode::Comfy, None),
            Err(EmphasisError::MissingEmpty)
        ));
        let e = t2(&[0.; 6], (3, 2));
        let err = apply_emphasis(&z, &w, EmphasisMode::Comfy, Some(&e)).unwrap_err();
        assert!(err.to_string().contains("[3, 2]"), "{err}");
        let flat = Tensor::zeros((2, 2), DType::F32, &Device::Cpu).unwrap();
        assert!(matches!(
            apply_emphasis(&flat, &w, EmphasisMode::A1111, None),
            Err(EmphasisError::HiddenRank(_))
        ));
    }

    /// Sum of the output times fixed coefficients, so every element's gradient is distinct.
    fn loss(out: &Tensor) -> Tensor {
        let n = out.elem_count();
        let c: Vec<f32> = (0..n).map(|i| 0.3 + i as f32 * 0.17).collect();
        let c = Tensor::from_vec(c, out.shape(), out.device()).unwrap();
        out.mul(&c).unwrap().sum_all().unwrap()
    }

    fn finite_difference_check(mode: EmphasisMode) {
        let base = [0.5f32, -1.0, 2.0, 1.5, 0.25, 3.0, -0.5, 1.0];
        let w = t2(&[1.0, 1.3, 0.7, 1.0], (2, 2));
        let e = t2(&[0.1, 0.2, -0.3, 0.4], (2, 2));
        let z = Var::from_tensor(&t3(&base, (2, 2, 2))).unwrap();
        let out = apply_emphasis(z.as_tensor(), &w, mode, Some(&e)).unwrap();
        let grads = loss(&out).backward().unwrap();
        let grad = values(grads.get(z.as_tensor()).expect("gradient reaches z"));
        let eps = 1e-2f32;
        for i in 0..base.len() {
            let eval = |delta: f32| {
                let mut v = base;
                v[i] += delta;
                let out = apply_emphasis(&t3(&v, (2, 2, 2)), &w, mode, Some(&e)).unwrap();
                loss(&out).to_scalar::<f32>().unwrap()
            };
            let numeric = (eval(eps) - eval(-eps)) / (2.0 * eps);
            assert!(
                (numeric - grad[i]).abs() < 2e-2 * (1.0 + numeric.abs()),
                "{mode:?} element {i}: analytic {} numeric {numeric}",
                grad[i]
            );
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        for mode in [
            EmphasisMode::A1111,
            EmphasisMode::A1111NoNorm,
            EmphasisMode::Comfy,
        ] {
            finite_difference_check(mode);
        }
    }

    #[test]
    fn comfy_gradient_reaches_empty_encoding() {
        let z = t3(&[1., 2., 3., 4.], (1, 2, 2));
        let w = t2(&[1., 2.], (1, 2));
        let e = Var::from_tensor(&t2(&[0., 0., 1., 1.], (2, 2))).unwrap();
        let out = apply_emphasis(&z, &w, EmphasisMode::Comfy, Some(e.as_tensor())).unwrap();
        let grads = out.sum_all().unwrap().backward().unwrap();
        // d/de of (z - e)·w + e is 1 - w on weighted tokens, 0 where ComfyUI skips the token.
        let g = values(grads.get(e.as_tensor()).expect("gradient reaches e"));
        assert_close(&g, &[0., 0., -1., -1.]);
    }
}
