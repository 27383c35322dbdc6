//! The CLOOB objective (Fürst et al., "CLOOB: Modern Hopfield Networks with InfoLOOB Outperform
//! CLIP", NeurIPS 2022): Hopfield retrieval of both modalities followed by InfoLOOB, the
//! leave-one-out bound whose denominator excludes the positive pair.
//!
//! With X, Y the row-wise L2-normalised image and text embeddings [N, d], β = `scale_hopfield`
//! and 1/τ = `inv_tau` (constants, not learned):
//!
//! ```text
//! hop(S, R)  = normalize_rows(softmax_rows(β · S Rᵀ) · R)          state S, stored R
//! U_x = hop(X, X)   U_y = hop(Y, X)   (image memory: queried by images, by texts)
//! V_x = hop(X, Y)   V_y = hop(Y, Y)   (text memory:  queried by images, by texts)
//! LOOB(A, B) = mean_i [ −k_ii + log Σ_{j≠i} exp k_ij ],   k = inv_tau · A Bᵀ
//! loss = ( LOOB(U_x, U_y) + LOOB(V_y, V_x) ) / 2
//! ```
//!
//! Sources, and the scaling chosen:
//! - The pairing and retrieval are ml-jku/cloob `src/training/methods.py` (`cloob`,
//!   `hopfield_retrieval`, `infoLOOB_loss(p_xx, p_xy)` + `infoLOOB_loss(p_yy, p_yx)`, where
//!   `p_xy = hopfield(state=text, stored=image)`): each InfoLOOB compares two retrievals from the
//!   *same* memory, never an image-space pattern with a text-space one.
//! - The scale is that of crowsonkb/cloob-training `cloob_training/loss.py` and rinna's
//!   japanese-clip CLOOB `loss.py` (whose defaults, inv_tau 30 and
//!   scale_hopfield 15, are ours): the mean of the two InfoLOOB terms, unscaled, so its size is
//!   that of a log-odds and comparable to InfoNCE (and to the auxiliary losses beside it). The
//!   ml-jku original returns `tau · (LOOB_img + LOOB_txt)`, i.e. this value × 2/inv_tau
//!   (1/15 of it at inv_tau 30); with Adam the two differ only through gradient clipping and the
//!   weight of the other loss terms.

use candle_core::{Result, Tensor, D};
use clipguide_clip::l2_normalize;

/// rinna's japanese-clip CLOOB constants (after crowsonkb's LAION-400M CLOOB configs).
pub const DEFAULT_INV_TAU: f64 = 30.0;
/// See [`DEFAULT_INV_TAU`].
pub const DEFAULT_SCALE_HOPFIELD: f64 = 15.0;

/// Added to the masked (diagonal) logits of the leave-one-out log-sum-exp. Finite, so no
/// `0 · ∞` can appear anywhere in the backward pass; `exp` of it underflows to exactly 0 in
/// f32 and f64 alike, so the positive pair's weight and gradient there are exactly 0.
const MASKED: f64 = -1e9;

/// CLOOB loss of `image` and `text` embeddings [N, d] (row i of each is a positive pair), as
/// described in the module docs. Takes *unnormalised* embeddings: both are L2-normalised here
/// (as [`crate::trainer::contrastive_loss`] does). Differentiable w.r.t. both inputs; works in
/// the inputs' dtype (f32 or f64). Needs N ≥ 2 (with one pair there is no negative).
pub fn cloob_loss(
    image: &Tensor,
    text: &Tensor,
    inv_tau: f64,
    scale_hopfield: f64,
) -> Result<Tensor> {
    let (n, d) = image.dims2()?;
    if text.dims2()? != (n, d) {
        candle_core::bail!(
            "cloob_loss: image {:?} and text {:?} embeddings differ in shape",
            image.dims(),
            text.dims()
        );
    }
    if n < 2 {
        candle_core::bail!("cloob_loss: needs at least 2 pairs, got {n}");
    }
    let x = l2_normalize(image)?;
    let y = l2_normalize(text)?;
    let u_x = hopfield(&x, &x, scale_hopfield)?;
    let u_y = hopfield(&y, &x, scale_hopfield)?;
    let v_x = hopfield(&x, &y, scale_hopfield)?;
    let v_y = hopfield(&y, &y, scale_hopfield)?;
    let img = info_loob(&u_x, &u_y, inv_tau)?;
    let txt = info_loob(&v_y, &v_x, inv_tau)?;
    (img + txt)? * 0.5
}

/// Retrieval from the stored patterns `stored` [N, d] with the state patterns `state` [M, d] as
/// queries: `normalize_rows(softmax_rows(β · state storedᵀ) · stored)` [M, d]. This is the
/// `hflayers.Hopfield` layer ml-jku/cloob builds (static patterns, no projections or norms,
/// one head, `scaling = β`), followed by its row normalisation.
pub fn hopfield(state: &Tensor, stored: &Tensor, scale: f64) -> Result<Tensor> {
    let a = (state.matmul(&stored.t()?)? * scale)?;
    l2_normalize(&softmax_rows(&a)?.matmul(stored)?)
}

/// InfoLOOB of anchors `a` [N, d] against candidates `b` [N, d], positives on the diagonal:
/// `mean_i (−k_ii + logsumexp_{j≠i} k_ij)` with `k = inv_tau · a bᵀ`.
pub fn info_loob(a: &Tensor, b: &Tensor, inv_tau: f64) -> Result<Tensor> {
    let n = a.dim(0)?;
    let k = (a.matmul(&b.t()?)? * inv_tau)?;
    let eye = Tensor::eye(n, k.dtype(), k.device())?;
    let positives = (&k * &eye)?.sum(D::Minus1)?;
    let negatives = logsumexp_rows(&(&k + (eye * MASKED)?)?)?;
    (negatives - positives)?.mean_all()
}

/// Row-wise softmax with the (detached) row maximum subtracted first.
fn softmax_rows(a: &Tensor) -> Result<Tensor> {
    let m = a.max_keepdim(D::Minus1)?.detach();
    let e = a.broadcast_sub(&m)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

/// Row-wise log-sum-exp [N, M] → [N], stable: `m + log Σ exp(a − m)` with the row max `m`
/// detached (the result does not depend on it, so neither does its gradient).
fn logsumexp_rows(a: &Tensor) -> Result<Tensor> {
    let m = a.max_keepdim(D::Minus1)?.detach();
    let s = a.broadcast_sub(&m)?.exp()?.sum_keepdim(D::Minus1)?.log()?;
    (s + m)?.squeeze(D::Minus1)
}

/// In-batch image→text top-1 accuracy of raw cosine similarities (what InfoNCE's accuracy
/// measures too; a positive temperature does not change an argmax).
pub fn cosine_accuracy(image: &Tensor, text: &Tensor) -> Result<f32> {
    let s = l2_normalize(image)?.matmul(&l2_normalize(text)?.t()?)?;
    let pred = s.argmax(D::Minus1)?.to_vec1::<u32>()?;
    let hits = pred.iter().enumerate().filter(|(k, p)| **p as usize == *k);
    Ok(hits.count() as f32 / pred.len().max(1) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    /// The masked log-sum-exp equals a direct sum over the off-diagonal entries.
    #[test]
    fn leave_one_out_excludes_the_diagonal() {
        let k: Vec<f64> = vec![5.0, 1.0, 2.0, 0.5, 7.0, -1.0, 3.0, 0.0, 9.0];
        let t = Tensor::from_vec(k.clone(), (3, 3), &Device::Cpu).unwrap();
        let eye = Tensor::eye(3, DType::F64, &Device::Cpu).unwrap();
        let got: Vec<f64> = logsumexp_rows(&(&t + (eye * MASKED).unwrap()).unwrap())
            .unwrap()
            .to_vec1()
            .unwrap();
        for i in 0..3 {
            let want = (0..3)
                .filter(|&j| j != i)
                .map(|j| k[i * 3 + j].exp())
                .sum::<f64>()
                .ln();
            assert!(
                (got[i] - want).abs() < 1e-12,
                "row {i}: {} vs {want}",
                got[i]
            );
        }
    }
}
