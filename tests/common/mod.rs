//! Shared helpers for the workspace-level tests: fixture paths and tolerance checks.
#![allow(dead_code)]

use candle_core::Tensor;
use std::collections::HashMap;
use std::path::PathBuf;

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A fixture that must exist; a missing one fails the test with the regeneration command.
pub fn fixture(rel: &str) -> PathBuf {
    let p = fixtures().join(rel);
    assert!(
        p.exists(),
        "missing fixture {}: regenerate with `python3 tools/make_fixtures.py` (needs torch + transformers)",
        p.display()
    );
    p
}

pub fn load_reference(rel: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixture(rel), &candle_core::Device::Cpu)
        .unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

pub fn max_abs(t: &Tensor) -> f32 {
    t.abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// Asserts max |got − want| ≤ rel · max(1e-6, max |want|).
pub fn assert_close(name: &str, got: &Tensor, want: &Tensor, rel: f32) {
    assert_eq!(
        got.dims(),
        want.dims(),
        "{name}: shape {:?} vs reference {:?}",
        got.dims(),
        want.dims()
    );
    let got = got.to_dtype(candle_core::DType::F32).unwrap();
    let want = want.to_dtype(candle_core::DType::F32).unwrap();
    let diff = max_abs(&(&got - &want).unwrap());
    let scale = max_abs(&want).max(1e-6);
    assert!(
        diff <= rel * scale,
        "{name}: max abs diff {diff:e} exceeds {rel:e} × scale {scale:e}"
    );
}
