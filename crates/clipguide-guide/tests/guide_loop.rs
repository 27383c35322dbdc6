//! The generator loop's shape through the public API, with a fixed random linear map
//! standing in for CLIP's image tower: gradients must reach the image parameters through
//! render → cutouts → normalise → embed → spherical loss, the loss must fall, and a seed
//! must fix the result bit for bit.

use candle_core::{DType, Tensor};
use clipguide_guide::noise::gaussian;
use clipguide_guide::{
    clip_normalize, spherical_loss, Adam, AdamConfig, CutoutStyle, Cutouts, FourierImage,
    LrSchedule, Parameterization, PromptSchedule, PyramidImage, TvKind, TvLoss,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const SIZE: usize = 24;
const OUT: usize = 12;
const DIM: usize = 8;

/// A fixed "image tower": flatten and project, seeded independently of the run.
fn tower() -> Tensor {
    gaussian(
        &mut ChaCha8Rng::seed_from_u64(100),
        &[3 * OUT * OUT, DIM],
        1.0,
    )
    .unwrap()
}

fn target_embedding() -> Tensor {
    gaussian(&mut ChaCha8Rng::seed_from_u64(101), &[1, DIM], 1.0).unwrap()
}

fn embed(batch: &Tensor, projection: &Tensor) -> Tensor {
    batch.flatten_from(1).unwrap().matmul(projection).unwrap()
}

fn eval_loss(
    param: &dyn Parameterization,
    cutouts: &Cutouts,
    projection: &Tensor,
    target: &Tensor,
) -> f32 {
    let mut rng = ChaCha8Rng::seed_from_u64(999);
    let specs = cutouts.sample(&mut rng, SIZE, SIZE);
    let batch = clip_normalize(
        &cutouts
            .apply(&param.to_rgb().unwrap(), &specs, &mut rng)
            .unwrap(),
    )
    .unwrap();
    spherical_loss(&embed(&batch, projection), target)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// Runs `steps` steps and returns (loss before, loss after, final image bytes).
fn run(
    param: &dyn Parameterization,
    seed: u64,
    steps: usize,
    projection: &Tensor,
    target: &Tensor,
) -> (f32, f32, Vec<u8>) {
    let cutouts = Cutouts {
        cutn: 4,
        style: CutoutStyle {
            out_size: OUT,
            noise_std: 0.02,
            jitter: 2,
            ..CutoutStyle::default()
        },
        ..Cutouts::default()
    };
    let schedule = PromptSchedule::parse("0:target").unwrap();
    let lr = LrSchedule::WarmupCosine {
        lr: 0.05,
        warmup: 3,
        total: steps,
        min_lr: 0.01,
    };
    let tv = TvLoss {
        weight: 0.01,
        kind: TvKind::Squared,
    };
    let mut opt = Adam::new(param.params(), AdamConfig::adam(0.05)).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let before = eval_loss(param, &cutouts, projection, target);
    for step in 0..steps {
        let rgb = param.to_rgb().unwrap();
        let specs = cutouts.sample(&mut rng, param.height(), param.width());
        let batch = clip_normalize(&cutouts.apply(&rgb, &specs, &mut rng).unwrap()).unwrap();
        let emb = embed(&batch, projection);
        let mut loss = tv.loss(&rgb).unwrap();
        for (_text, weight) in schedule.at(step) {
            loss =
                (loss + (spherical_loss(&emb, target).unwrap() * weight as f64).unwrap()).unwrap();
        }
        opt.set_lr(lr.at(step));
        opt.step(&loss.backward().unwrap()).unwrap();
    }
    let after = eval_loss(param, &cutouts, projection, target);
    let bytes = param
        .to_rgb()
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    (before, after, bytes)
}

#[test]
fn fourier_loop_lowers_the_loss_and_is_reproducible() {
    let projection = tower();
    let target = target_embedding();
    let make = |seed| {
        FourierImage::random(SIZE, SIZE, 1.0, 0.01, &mut ChaCha8Rng::seed_from_u64(seed)).unwrap()
    };
    let (before, after, bytes) = run(&make(1), 7, 40, &projection, &target);
    assert!(after < 0.7 * before, "loss {before} -> {after}");
    let (_, _, again) = run(&make(1), 7, 40, &projection, &target);
    assert_eq!(bytes, again, "same seeds must give the same image bytes");
    let (_, _, other) = run(&make(1), 8, 40, &projection, &target);
    assert_ne!(
        bytes, other,
        "a different cutout seed must change the result"
    );
}

#[test]
fn pyramid_loop_lowers_the_loss() {
    let projection = tower();
    let target = target_embedding();
    let param =
        PyramidImage::random(SIZE, SIZE, 3, 0.1, &mut ChaCha8Rng::seed_from_u64(2)).unwrap();
    let (before, after, _) = run(&param, 3, 40, &projection, &target);
    assert!(after < 0.7 * before, "loss {before} -> {after}");
}
