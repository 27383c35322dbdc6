//! Seeded Gaussian noise for initialisation and augmentation, drawn from an explicit
//! ChaCha8 stream so that a run is reproducible bit for bit.

use candle_core::{Device, Tensor};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::error::Result;

/// `n` samples of N(0, std²) by the Box–Muller transform. Written here rather than taken
/// from rand_distr so the exact sequence for a seed is owned and stable in this crate.
pub fn gaussian_vec(rng: &mut ChaCha8Rng, n: usize, std: f64) -> Vec<f32> {
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        // 1 - u lies in (0, 1], so the logarithm is finite.
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt() * std;
        let theta = std::f64::consts::TAU * u2;
        out.push((r * theta.cos()) as f32);
        out.push((r * theta.sin()) as f32);
    }
    out.truncate(n);
    out
}

/// An f32 CPU tensor of shape `dims` filled with N(0, std²) samples.
pub fn gaussian(rng: &mut ChaCha8Rng, dims: &[usize], std: f64) -> Result<Tensor> {
    let n = dims.iter().product();
    Ok(Tensor::from_vec(
        gaussian_vec(rng, n, std),
        dims,
        &Device::Cpu,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn moments_are_right_and_seed_reproducible() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let v = gaussian_vec(&mut rng, 20001, 2.0);
        assert_eq!(v.len(), 20001);
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / v.len() as f64;
        assert!(mean.abs() < 0.05, "mean {mean}");
        assert!((var.sqrt() - 2.0).abs() < 0.05, "std {}", var.sqrt());
        let again = gaussian_vec(&mut ChaCha8Rng::seed_from_u64(5), 20001, 2.0);
        assert_eq!(v, again);
        let other = gaussian_vec(&mut ChaCha8Rng::seed_from_u64(6), 20001, 2.0);
        assert_ne!(v, other);
    }
}
