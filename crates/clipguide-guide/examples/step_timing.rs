//! Times one guidance step's image side (Fourier render, cutouts, normalise, backward) at
//! realistic sizes, to see what the pieces cost next to the CLIP forward pass.
//!
//! `cargo run --release -p clipguide-guide --example step_timing -- [size] [cutn]`

use std::time::Instant;

use clipguide_guide::{clip_normalize, CutoutStyle, Cutouts, FourierImage, Parameterization};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // SAFETY: first thing in main, before any thread starts.
    unsafe { clipguide_clip::tune_process() };
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let size = args.next().transpose()?.unwrap_or(512);
    let cutn = args.next().transpose()?.unwrap_or(32);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let param = FourierImage::random(size, size, 1.0, 0.01, &mut rng)?;
    let cutouts = Cutouts {
        cutn,
        style: CutoutStyle {
            noise_std: 0.05,
            jitter: 8,
            ..CutoutStyle::default()
        },
        ..Cutouts::default()
    };
    for round in 0..3 {
        let t0 = Instant::now();
        let rgb = param.to_rgb()?;
        let t1 = Instant::now();
        let specs = cutouts.sample(&mut rng, size, size);
        let batch = clip_normalize(&cutouts.apply(&rgb, &specs, &mut rng)?)?;
        let t2 = Instant::now();
        let grads = batch.sqr()?.mean_all()?.backward()?;
        let t3 = Instant::now();
        assert!(param
            .params()
            .iter()
            .all(|v| grads.get(v.as_tensor()).is_some()));
        println!(
            "round {round}: {size}x{size}, {cutn} cutouts -> {:?}: render {:?}, cutouts {:?}, backward {:?}",
            batch.dims(),
            t1 - t0,
            t2 - t1,
            t3 - t2
        );
    }
    Ok(())
}
