//! Image-side augmentation of a rendered image (shift, colour jitter, blur, noise), drawn from
//! the step's seeded stream so runs are reproducible.

use super::config::AugmentConfig;
use image::RgbImage;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Augments one rendered image in place: shift, colour jitter, blur, noise. Returns [3,S,S] in [0,1].
pub(super) fn augment(img: &RgbImage, a: &AugmentConfig, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let (w, h) = (img.width() as i32, img.height() as i32);
    let (dx, dy) = if a.max_shift > 0 {
        (
            rng.random_range(-a.max_shift..=a.max_shift),
            rng.random_range(-a.max_shift..=a.max_shift),
        )
    } else {
        (0, 0)
    };
    let gain = 1.0 + rng.random_range(-a.colour_jitter..=a.colour_jitter.max(0.0));
    let bias = rng.random_range(-a.colour_jitter..=a.colour_jitter.max(0.0)) * 0.5;
    let blur = rng.random_bool(a.blur_prob.clamp(0.0, 1.0));
    let noise = rng.random_range(0.0..=a.noise_std.max(0.0));
    let n = (w * h) as usize;
    let mut out = vec![0f32; 3 * n];
    let px = |x: i32, y: i32, c: usize| -> f32 {
        let x = (x - dx).clamp(0, w - 1) as u32;
        let y = (y - dy).clamp(0, h - 1) as u32;
        img.get_pixel(x, y)[c] as f32 / 255.0
    };
    for c in 0..3 {
        for y in 0..h {
            for x in 0..w {
                let v = if blur {
                    let mut s = 0.0;
                    for oy in -1..=1 {
                        for ox in -1..=1 {
                            s += px(x + ox, y + oy, c);
                        }
                    }
                    s / 9.0
                } else {
                    px(x, y, c)
                };
                out[c * n + (y * w + x) as usize] = v * gain + bias;
            }
        }
    }
    if noise > 0.0 {
        for v in out.iter_mut() {
            // Box–Muller on the seeded stream, so runs are reproducible.
            let u1: f32 = rng.random_range(f32::EPSILON..1.0);
            let u2: f32 = rng.random();
            *v += noise * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos();
        }
    }
    out.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
    out
}
