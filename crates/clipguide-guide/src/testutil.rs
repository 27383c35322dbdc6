//! Shared test helpers: seeded tensors, tolerant comparisons and a finite-difference
//! gradient checker that fails when candle silently drops a gradient.

use candle_core::{DType, Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::Result;

/// Uniform values in [-1, 1) from a fixed seed, so expected values never come from the code
/// under test.
pub fn seeded_tensor(dims: &[usize], seed: u64, dtype: DType) -> Result<Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n: usize = dims.iter().product();
    let v: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    Ok(Tensor::from_vec(v, dims, &Device::Cpu)?.to_dtype(dtype)?)
}

/// Asserts element-wise `|got - want| <= tol * (1 + |want|)`.
pub fn assert_close(got: &[f64], want: &[f64], tol: f64, context: &str) {
    assert_eq!(got.len(), want.len(), "{context}: length mismatch");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{context}: element {i}: got {g}, want {w}"
        );
    }
}

/// Compares candle's gradients of the scalar `f(inputs)` with central finite differences,
/// element by element. Inputs should be f64 so `eps` can be small. Fails if any input got no
/// gradient at all, or if all gradients are zero (a check that cannot fail is no check).
pub fn check_gradients<F>(inputs: &[Tensor], eps: f64, tol: f64, f: F) -> Result<()>
where
    F: Fn(&[Tensor]) -> Result<Tensor>,
{
    let vars: Vec<Var> = inputs
        .iter()
        .map(Var::from_tensor)
        .collect::<candle_core::Result<_>>()?;
    let tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let loss = f(&tensors)?;
    assert_eq!(loss.dims(), &[] as &[usize], "loss must be a scalar");
    let grads = loss.backward()?;
    let mut any_nonzero = false;
    for (k, var) in vars.iter().enumerate() {
        let grad = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("input {k} received no gradient"));
        let grad = grad.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
        let base = inputs[k]
            .to_dtype(DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        let mut numeric = vec![0.0; base.len()];
        for i in 0..base.len() {
            let eval = |delta: f64| -> Result<f64> {
                let mut v = base.clone();
                v[i] += delta;
                let t = Tensor::from_vec(v, inputs[k].dims(), &Device::Cpu)?
                    .to_dtype(inputs[k].dtype())?;
                let mut args: Vec<Tensor> = inputs.to_vec();
                args[k] = t;
                Ok(f(&args)?.to_dtype(DType::F64)?.to_scalar::<f64>()?)
            };
            numeric[i] = (eval(eps)? - eval(-eps)?) / (2.0 * eps);
        }
        any_nonzero |= grad.iter().any(|g| g.abs() > 1e-12);
        assert_close(&grad, &numeric, tol, &format!("gradient of input {k}"));
    }
    assert!(
        any_nonzero,
        "all gradients are zero; the check would not catch a missing path"
    );
    Ok(())
}
