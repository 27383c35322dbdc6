//! Guidance losses between embeddings (spherical distance, 1 − cos) and image regularisers
//! (total variation, range penalty), each a differentiable scalar or matrix of candle.
//!
//! candle has no `asin`, so the spherical distance is a custom op with a backward that
//! stays finite where the textbook derivative is 0/0 (equal vectors) or infinite (opposite).

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor, D};
use serde::{Deserialize, Serialize};

use crate::error::{GuideError, Result};

/// Maps the squared chord `s = ‖x̂ − ŷ‖²` of unit vectors to the spherical distance
/// `2·asin(√s / 2)²`, i.e. half the squared great-circle angle.
struct SphericalFromChord;

const MAX_CHORD_SQ: f64 = 4.0;
/// Floor on `1 − u²` in the derivative, so opposite vectors give a large finite gradient.
const ASIN_SLOPE_FLOOR: f64 = 1e-6;

fn spherical_value(s: f64) -> f64 {
    let u = s.clamp(0.0, MAX_CHORD_SQ).sqrt() / 2.0;
    2.0 * u.asin().powi(2)
}

/// d/ds of [`spherical_value`]: `asin(u) / (√s · √(1 − u²))` with u = √s/2, which tends to
/// 1/2 as s → 0 (where the formula is 0/0).
fn spherical_slope(s: f64) -> f64 {
    let s = s.clamp(0.0, MAX_CHORD_SQ);
    if s < 1e-12 {
        return 0.5;
    }
    let u = s.sqrt() / 2.0;
    u.asin() / (s.sqrt() * (1.0 - u * u).max(ASIN_SLOPE_FLOOR).sqrt())
}

impl CustomOp1 for SphericalFromChord {
    fn name(&self) -> &'static str {
        "spherical-from-chord"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("spherical distance needs a contiguous input");
        };
        let out = match storage {
            CpuStorage::F32(v) => CpuStorage::F32(
                v[start..end]
                    .iter()
                    .map(|&s| spherical_value(s as f64) as f32)
                    .collect(),
            ),
            CpuStorage::F64(v) => {
                CpuStorage::F64(v[start..end].iter().map(|&s| spherical_value(s)).collect())
            }
            _ => candle_core::bail!("spherical distance supports f32 and f64"),
        };
        Ok((out, layout.shape().clone()))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let s = arg
            .to_dtype(candle_core::DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        let slope: Vec<f64> = s.into_iter().map(spherical_slope).collect();
        let slope = Tensor::from_vec(slope, arg.shape(), arg.device())?.to_dtype(arg.dtype())?;
        Ok(Some(grad_res.mul(&slope)?))
    }
}

fn check_embeddings(x: &Tensor, y: &Tensor) -> Result<()> {
    let ok = x.rank() == 2 && y.rank() == 2 && x.dims()[1] == y.dims()[1];
    if !ok {
        return Err(GuideError::Shape {
            what: "embeddings",
            got: [x.dims(), y.dims()].concat(),
            expected: "x [B, D] and y [N, D] with the same D (shown concatenated)",
        });
    }
    Ok(())
}

/// Rows scaled to unit L2 norm. The epsilon keeps zero rows (and their gradient) finite; it
/// is far below any real embedding's squared norm, because asin near 1 would turn a larger
/// one into a visible error for opposite vectors.
fn l2_normalize(x: &Tensor) -> Result<Tensor> {
    let norm = (x.sqr()?.sum_keepdim(D::Minus1)? + 1e-30)?.sqrt()?;
    Ok(x.broadcast_div(&norm)?)
}

/// Pairwise spherical distance `2·asin(‖x̂ − ŷ‖ / 2)²` between rows of `x` `[B, D]` and `y`
/// `[N, D]` after L2 normalisation, `[B, N]`; 0 for equal directions, π²/2 for opposite.
pub fn spherical_distance(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    check_embeddings(x, y)?;
    let diff = l2_normalize(x)?
        .unsqueeze(1)?
        .broadcast_sub(&l2_normalize(y)?.unsqueeze(0)?)?;
    let chord_sq = diff.sqr()?.sum(D::Minus1)?.contiguous()?;
    Ok(chord_sq.apply_op1(SphericalFromChord)?)
}

/// Mean of [`spherical_distance`] over all pairs: the VQGAN+CLIP prompt loss.
pub fn spherical_loss(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    Ok(spherical_distance(x, y)?.mean_all()?)
}

/// Pairwise `1 − cos(x, y)` between rows of `x` `[B, D]` and `y` `[N, D]`, `[B, N]`.
pub fn cosine_distance(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    check_embeddings(x, y)?;
    let cos = l2_normalize(x)?.matmul(&l2_normalize(y)?.t()?)?;
    Ok((1.0 - cos)?)
}

/// Mean of [`cosine_distance`] over all pairs.
pub fn cosine_loss(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    Ok(cosine_distance(x, y)?.mean_all()?)
}

/// Which embedding distance guides the image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Distance {
    /// [`spherical_distance`]; the default, as in VQGAN+CLIP.
    #[default]
    Spherical,
    /// [`cosine_distance`].
    Cosine,
}

impl Distance {
    /// Pairwise distance matrix `[B, N]`.
    pub fn distance(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        match self {
            Distance::Spherical => spherical_distance(x, y),
            Distance::Cosine => cosine_distance(x, y),
        }
    }

    /// Mean distance over all pairs, a scalar.
    pub fn loss(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        Ok(self.distance(x, y)?.mean_all()?)
    }
}

/// How neighbouring pixel differences are penalised.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TvKind {
    /// Mean absolute difference (anisotropic TV; keeps edges).
    Abs,
    /// Mean squared difference (smooths more).
    #[default]
    Squared,
}

/// Total variation of images `[..., H, W]`: the mean over horizontal neighbour differences
/// plus the mean over vertical ones (an axis of length 1 contributes nothing).
pub fn total_variation(x: &Tensor, kind: TvKind) -> Result<Tensor> {
    let rank = x.rank();
    if rank < 2 {
        return Err(GuideError::Shape {
            what: "image",
            got: x.dims().to_vec(),
            expected: "[..., H, W]",
        });
    }
    let mut total = Tensor::zeros((), x.dtype(), x.device())?;
    for axis in [rank - 2, rank - 1] {
        let n = x.dims()[axis];
        if n < 2 {
            continue;
        }
        let diff = (x.narrow(axis, 1, n - 1)? - x.narrow(axis, 0, n - 1)?)?;
        let penalty = match kind {
            TvKind::Abs => diff.abs()?,
            TvKind::Squared => diff.sqr()?,
        };
        total = (total + penalty.mean_all()?)?;
    }
    Ok(total)
}

/// Mean over elements of the squared amount by which `x` leaves `[lo, hi]`.
///
/// Our parameterisations end in a sigmoid, so their RGB never leaves [0, 1] and a penalty
/// on it would be zero: apply this to [`crate::param::Parameterization::to_logits`] with
/// bounds such as ±4 to keep pixels out of the sigmoid's flat, gradient-starved tails.
pub fn range_penalty(x: &Tensor, lo: f64, hi: f64) -> Result<Tensor> {
    if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) {
        return Err(GuideError::invalid(
            "range penalty bounds",
            format!("lo {lo} must be below hi {hi}"),
        ));
    }
    let above = (x - hi)?.relu()?.sqr()?;
    let below = (x.neg()? + lo)?.relu()?.sqr()?;
    Ok((above + below)?.mean_all()?)
}

/// Weighted total variation, configured from a schedule file.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TvLoss {
    /// Multiplier of the penalty.
    pub weight: f32,
    /// Absolute or squared differences.
    #[serde(default)]
    pub kind: TvKind,
}

impl TvLoss {
    /// `weight · total_variation(rgb)`.
    pub fn loss(&self, rgb: &Tensor) -> Result<Tensor> {
        Ok((total_variation(rgb, self.kind)? * self.weight as f64)?)
    }
}

/// Weighted range penalty on the logits (see [`range_penalty`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeLoss {
    /// Multiplier of the penalty.
    pub weight: f32,
    /// Lower bound.
    pub lo: f64,
    /// Upper bound.
    pub hi: f64,
}

impl RangeLoss {
    /// `weight · range_penalty(logits, lo, hi)`.
    pub fn loss(&self, logits: &Tensor) -> Result<Tensor> {
        Ok((range_penalty(logits, self.lo, self.hi)? * self.weight as f64)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{assert_close, check_gradients, seeded_tensor};
    use candle_core::{DType, Device};
    use std::f64::consts::PI;

    fn t(v: &[f64], rows: usize) -> Tensor {
        Tensor::from_vec(v.to_vec(), (rows, v.len() / rows), &Device::Cpu).unwrap()
    }

    #[test]
    fn spherical_distance_known_angles() -> Result<()> {
        let x = t(&[1.0, 0.0, 0.0, 2.0, 0.0, 0.0], 2);
        let y = t(&[3.0, 0.0, 0.0, 0.0, 1.0, 0.0, -1.0, 0.0, 0.0], 3);
        let d = spherical_distance(&x, &y)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        let want = [0.0, PI * PI / 8.0, PI * PI / 2.0];
        assert_close(&d, &[want, want].concat(), 1e-12, "spherical");
        let c = cosine_distance(&x, &y)?.flatten_all()?.to_vec1::<f64>()?;
        assert_close(&c, &[[0.0, 1.0, 2.0]; 2].concat(), 1e-12, "cosine");
        Ok(())
    }

    #[test]
    fn embedding_loss_gradients_match_finite_differences() -> Result<()> {
        let x = seeded_tensor(&[3, 5], 20, DType::F64)?;
        let y = seeded_tensor(&[2, 5], 21, DType::F64)?;
        check_gradients(&[x.clone(), y.clone()], 1e-6, 1e-6, |v| {
            spherical_loss(&v[0], &v[1])
        })?;
        check_gradients(&[x.clone(), y.clone()], 1e-6, 1e-6, |v| {
            cosine_loss(&v[0], &v[1])
        })?;
        // Distance::loss must agree with the free functions it dispatches to.
        let a = Distance::Spherical.loss(&x, &y)?.to_scalar::<f64>()?;
        assert_eq!(a, spherical_loss(&x, &y)?.to_scalar::<f64>()?);
        Ok(())
    }

    #[test]
    fn spherical_gradient_is_finite_at_equal_and_opposite_vectors() -> Result<()> {
        for sign in [1.0, -1.0] {
            let y = t(&[0.6, 0.8, 0.0], 1);
            let x = candle_core::Var::from_tensor(&(&y * sign)?)?;
            let grads = spherical_loss(x.as_tensor(), &y)?.backward()?;
            let g = grads
                .get(x.as_tensor())
                .expect("gradient reaches x")
                .flatten_all()?
                .to_vec1::<f64>()?;
            assert!(g.iter().all(|v| v.is_finite()), "sign {sign}: {g:?}");
        }
        assert_eq!(spherical_slope(0.0), 0.5);
        assert!((spherical_slope(1e-8) - 0.5).abs() < 1e-6);
        Ok(())
    }

    #[test]
    fn total_variation_values_and_gradients() -> Result<()> {
        // Rows [0, 1, 3] and [1, 1, 1]: horizontal diffs 1, 2, 0, 0; vertical 1, 0, -2.
        let x = Tensor::from_vec(
            vec![0.0, 1.0, 3.0, 1.0, 1.0, 1.0],
            (1, 1, 2, 3),
            &Device::Cpu,
        )?;
        assert_close(
            &[total_variation(&x, TvKind::Abs)?.to_scalar::<f64>()?],
            &[0.75 + 1.0],
            1e-12,
            "abs",
        );
        assert_close(
            &[total_variation(&x, TvKind::Squared)?.to_scalar::<f64>()?],
            &[1.25 + 5.0 / 3.0],
            1e-12,
            "sq",
        );
        let img = seeded_tensor(&[1, 2, 4, 5], 22, DType::F64)?;
        for kind in [TvKind::Abs, TvKind::Squared] {
            check_gradients(std::slice::from_ref(&img), 1e-6, 1e-6, |v| {
                TvLoss { weight: 0.5, kind }.loss(&v[0])
            })?;
        }
        Ok(())
    }

    #[test]
    fn range_penalty_values_and_gradients() -> Result<()> {
        let x = Tensor::from_vec(vec![-2.0, 0.5, 3.0, 1.0], 4, &Device::Cpu)?;
        let p = range_penalty(&x, 0.0, 1.0)?.to_scalar::<f64>()?;
        assert!((p - (4.0 + 4.0) / 4.0).abs() < 1e-12, "{p}");
        let v = (seeded_tensor(&[2, 3, 3], 23, DType::F64)? * 3.0)?;
        check_gradients(&[v], 1e-6, 1e-6, |v| {
            RangeLoss {
                weight: 2.0,
                lo: -1.0,
                hi: 1.0,
            }
            .loss(&v[0])
        })?;
        assert!(range_penalty(&x, 1.0, 1.0).is_err());
        Ok(())
    }

    #[test]
    fn mismatched_embeddings_are_errors() {
        let x = Tensor::zeros((2, 4), DType::F32, &Device::Cpu).unwrap();
        let y = Tensor::zeros((2, 5), DType::F32, &Device::Cpu).unwrap();
        assert!(matches!(
            spherical_distance(&x, &y),
            Err(GuideError::Shape { .. })
        ));
        assert!(matches!(
            cosine_distance(&x, &y),
            Err(GuideError::Shape { .. })
        ));
    }
}
