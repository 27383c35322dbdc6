//! The CLOOB objective: value and gradients against PyTorch (tests/fixtures/cloob, from
//! tools/make_cloob_fixtures.py), its ordering of aligned and shuffled pairs, and training with
//! it: the loss falls, `--resume` stays bit-exact, the objective is saved, and trainer states
//! written before it existed still resume as InfoNCE.

use candle_core::{DType, Device, Tensor, Var};
use clipguide_train::cloob::cloob_loss;
use clipguide_train::trainer::{DataSource, Objective, TrainConfig, Trainer};
use std::collections::HashMap;

fn fixture() -> HashMap<String, Tensor> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/cloob/loss.safetensors"
    );
    candle_core::safetensors::load(path, &Device::Cpu).unwrap()
}

fn values(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// max |got − want| / max(1, max |want|).
fn rel_err(got: &Tensor, want: &Tensor) -> f64 {
    let (g, w) = (values(got), values(want));
    assert_eq!(g.len(), w.len());
    let scale = w.iter().fold(1f64, |m, v| m.max(v.abs()));
    g.iter()
        .zip(&w)
        .map(|(a, b)| (a - b).abs())
        .fold(0f64, f64::max)
        / scale
}

/// Loss and (∂/∂image, ∂/∂text) of `cloob_loss` at the given embeddings, in `dtype`.
fn loss_and_grads(
    image: &Tensor,
    text: &Tensor,
    dtype: DType,
    inv_tau: f64,
    beta: f64,
) -> (Tensor, Tensor, Tensor) {
    let i = Var::from_tensor(&image.to_dtype(dtype).unwrap()).unwrap();
    let t = Var::from_tensor(&text.to_dtype(dtype).unwrap()).unwrap();
    let loss = cloob_loss(i.as_tensor(), t.as_tensor(), inv_tau, beta).unwrap();
    let g = loss.backward().unwrap();
    let gi = g
        .get(i.as_tensor())
        .expect("gradient reaches the image")
        .clone();
    let gt = g
        .get(t.as_tensor())
        .expect("gradient reaches the text")
        .clone();
    (loss, gi, gt)
}

#[test]
fn value_and_gradients_match_pytorch() {
    let f = fixture();
    for case in ["rinna", "soft"] {
        let p = values(&f[&format!("{case}.params")]);
        let (inv_tau, beta) = (p[0], p[1]);
        let want = |k: &str| &f[&format!("{case}.{k}")];
        // f64 to the brief's 1e-5; f32 (what training uses) within its rounding.
        for (dtype, tol) in [(DType::F64, 1e-5), (DType::F32, 1e-4)] {
            let (loss, gi, gt) = loss_and_grads(&f["image"], &f["text"], dtype, inv_tau, beta);
            for (what, got, want) in [
                ("loss", &loss, want("loss")),
                ("grad_image", &gi, want("grad_image")),
                ("grad_text", &gt, want("grad_text")),
            ] {
                let e = rel_err(got, want);
                assert!(e <= tol, "{case} {dtype:?} {what}: relative error {e:e}");
            }
        }
        // ml-jku/cloob's own scale is this loss × 2/inv_tau (its methods.py, transcribed by
        // the fixture script).
        let loss = values(want("loss"))[0];
        let mljku = values(want("loss_mljku"))[0];
        assert!(
            (loss * 2.0 / inv_tau - mljku).abs() < 1e-9,
            "{loss} vs {mljku}"
        );
    }
}

#[test]
fn aligned_pairs_score_lower_than_shuffled_ones() {
    let dev = Device::Cpu;
    let image = Tensor::randn(0f32, 1.0, (16, 32), &dev).unwrap();
    let noise = Tensor::randn(0f32, 0.3, (16, 32), &dev).unwrap();
    let text = (&image + noise).unwrap();
    // Row i of `shuffled` is row i+1 of `text`: every positive pair is broken.
    let shuffled = Tensor::cat(
        &[
            text.narrow(0, 1, 15).unwrap(),
            text.narrow(0, 0, 1).unwrap(),
        ],
        0,
    )
    .unwrap();
    for (inv_tau, beta) in [(30.0, 15.0), (4.0, 2.0)] {
        let l = |t: &Tensor| {
            cloob_loss(&image, t, inv_tau, beta)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
        };
        let (aligned, broken) = (l(&text), l(&shuffled));
        assert!(
            aligned < broken,
            "inv_tau {inv_tau}, β {beta}: aligned {aligned} ≥ shuffled {broken}"
        );
    }
}

/// Identical rows (a batch with duplicates, or image = text exactly) keep every gradient
/// finite: the masked diagonal never meets an infinity.
#[test]
fn gradients_stay_finite_on_duplicates() {
    let dev = Device::Cpu;
    let row = Tensor::randn(0f32, 1.0, (1, 8), &dev).unwrap();
    let image = Tensor::cat(&[&row, &row, &row.neg().unwrap()], 0).unwrap();
    let (loss, gi, gt) = loss_and_grads(&image, &image, DType::F32, 30.0, 15.0);
    for (what, t) in [("loss", &loss), ("grad_image", &gi), ("grad_text", &gt)] {
        assert!(values(t).iter().all(|v| v.is_finite()), "{what}: {t}");
    }
}

fn tiny_cloob(steps: usize) -> TrainConfig {
    TrainConfig {
        steps,
        batch: 6,
        image_size: 32,
        warmup: 2,
        checkpoint_every: 1000,
        objective: Objective::CLOOB_DEFAULT,
        ..TrainConfig::default()
    }
}

/// Keeps only each image's canonical caption in a dataset folder, so every step sees the same
/// six pairs: with the paraphrases drawn afresh each step, this tiny model's curve at β = 15 is
/// as much the captions' noise as its learning.
fn keep_canonical_captions(dir: &std::path::Path) {
    let path = dir.join(clipguide_shapes::CAPTIONS_FILE);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
            let caps = v["captions"].as_array_mut().expect("captions");
            caps.truncate(1);
            v.to_string()
        })
        .collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn cloob_training_lowers_the_loss() {
    let dev = Device::Cpu;
    // Six fixed pairs seen every step, as in tests/training.rs.
    let data = tempfile::tempdir().unwrap();
    clipguide_shapes::write_dataset(data.path(), 6, 5, 32).unwrap();
    keep_canonical_captions(data.path());
    // At β = 15 this tiny model starts near the collapsed state (every retrieved pattern alike,
    // loss ln(N − 1) = ln 5 ≈ 1.609) and its curve is jumpy; larger rates (5e-4 and up) often
    // fall back onto that plateau and stay there. 3e-4 on the canonical pairs got off it for
    // each of dataset seeds 5–12 (2026-12-07).
    let steps = 12;
    let mut cfg = tiny_cloob(steps);
    cfg.lr = 3e-4;
    // The same six clean pairs every step: the loss curve is the model's alone.
    cfg.augment = clipguide_train::trainer::AugmentConfig {
        noise_std: 0.0,
        max_shift: 0,
        colour_jitter: 0.0,
        blur_prob: 0.0,
        ..Default::default()
    };
    let mut t = Trainer::new(cfg, DataSource::folder(data.path()).unwrap(), &dev).unwrap();
    let scale0 = t.model().logit_scale().unwrap();
    // The saved logit scale is CLOOB's inverse temperature, so the checkpoint's logits are CLOOB's.
    assert!((scale0 - 30.0).abs() < 1e-3, "logit scale {scale0}");
    let losses: Vec<f32> = (0..steps).map(|_| t.train_step().unwrap().loss).collect();
    eprintln!("cloob losses: {losses:?}");
    assert!(losses.iter().all(|l| l.is_finite()));
    let early = losses[..3].iter().sum::<f32>() / 3.0;
    let late = losses[steps - 3..].iter().sum::<f32>() / 3.0;
    // InfoLOOB is a log-odds (unbounded below), so ask for an absolute fall.
    assert!(late < early - 0.25, "loss did not fall: {early} → {late}");
    // The learned temperature takes no part in the CLOOB loss: it keeps its value.
    assert_eq!(t.model().logit_scale().unwrap(), scale0);
}

#[test]
fn cloob_resume_is_bit_exact_and_keeps_the_objective() {
    let dev = Device::Cpu;
    let straight = tempfile::tempdir().unwrap();
    let split = tempfile::tempdir().unwrap();
    let data = || DataSource::shapes(3, 32).unwrap();
    let mut t = Trainer::new(tiny_cloob(3), data(), &dev).unwrap();
    for _ in 0..3 {
        t.train_step().unwrap();
    }
    t.save(straight.path()).unwrap();

    let mut t = Trainer::new(tiny_cloob(3), data(), &dev).unwrap();
    t.train_step().unwrap();
    t.save(split.path()).unwrap();
    drop(t);
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(split.path().join("trainer_state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        meta["config"]["objective"],
        serde_json::json!({"kind": "cloob", "inv_tau": 30.0, "scale_hopfield": 15.0})
    );
    let mut t = Trainer::resume(split.path(), data(), &dev, None).unwrap();
    assert_eq!(t.config.objective, Objective::CLOOB_DEFAULT);
    assert_eq!(t.step_index(), 1);
    for _ in 0..2 {
        t.train_step().unwrap();
    }
    t.save(split.path()).unwrap();
    for f in ["model.safetensors", "trainer_state.safetensors"] {
        let a = std::fs::read(straight.path().join(f)).unwrap();
        let b = std::fs::read(split.path().join(f)).unwrap();
        assert!(a == b, "{f}: resumed run differs from an uninterrupted one");
    }
}

/// A trainer state from before `objective` existed (the key removed from a fresh one) resumes
/// as InfoNCE.
#[test]
fn states_without_an_objective_resume_as_infonce() {
    let dev = Device::Cpu;
    let dir = tempfile::tempdir().unwrap();
    let cfg = TrainConfig {
        objective: Objective::InfoNce,
        ..tiny_cloob(2)
    };
    let mut t = Trainer::new(cfg, DataSource::shapes(3, 32).unwrap(), &dev).unwrap();
    t.train_step().unwrap();
    t.save(dir.path()).unwrap();
    drop(t);
    let path = dir.path().join("trainer_state.json");
    let mut meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        meta["config"]["objective"],
        serde_json::json!({"kind": "infonce"})
    );
    meta["config"]
        .as_object_mut()
        .unwrap()
        .remove("objective")
        .unwrap();
    std::fs::write(&path, serde_json::to_string_pretty(&meta).unwrap()).unwrap();
    let mut t =
        Trainer::resume(dir.path(), DataSource::shapes(3, 32).unwrap(), &dev, None).unwrap();
    assert_eq!(t.config.objective, Objective::InfoNce);
    assert!(t.train_step().unwrap().loss.is_finite());
}

#[test]
fn bad_cloob_constants_are_refused_naming_the_setting() {
    for (objective, flag) in [
        (
            Objective::Cloob {
                inv_tau: 0.0,
                scale_hopfield: 15.0,
            },
            "inv_tau",
        ),
        (
            Objective::Cloob {
                inv_tau: 30.0,
                scale_hopfield: f64::NAN,
            },
            "scale_hopfield",
        ),
    ] {
        let cfg = TrainConfig {
            objective,
            ..tiny_cloob(1)
        };
        let e = Trainer::new(cfg, DataSource::shapes(3, 32).unwrap(), &Device::Cpu)
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains(flag), "{e}");
    }
}
