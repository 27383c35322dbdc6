//! Random square cutouts of the image (VQGAN+CLIP's MakeCutouts), resampled to the CLIP
//! input size with flips, translation past the edges and noise, plus CLIP's normalisation.
//!
//! Randomness comes only from the caller's ChaCha8 stream, so the same seed gives the same
//! tensors bit for bit. Everything applied to the image is differentiable.

use candle_core::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{GuideError, Result};
use crate::noise::gaussian_vec;
use crate::resample::{crop_resize, Crop, ResizeKind};

/// `(x - mean) / std` per channel with OpenAI CLIP's statistics, for images `[B, 3, H, W]` in
/// [0, 1]; differentiable. A loaded checkpoint's own statistics are its processor's
/// (`Clip::processor.normalize`), which the generator uses.
pub fn clip_normalize(x: &Tensor) -> Result<Tensor> {
    if x.rank() != 4 || x.dims()[1] != 3 {
        return Err(GuideError::Shape {
            what: "image batch",
            got: x.dims().to_vec(),
            expected: "[B, 3, H, W]",
        });
    }
    Ok(clipguide_clip::preprocess::normalize(
        x,
        &clipguide_clip::CLIP_MEAN,
        &clipguide_clip::CLIP_STD,
    )?)
}

/// One sampled cutout: a square window of the image and what to do to it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CutoutSpec {
    /// Left column; may be negative (up to the jitter), edge pixels fill the outside.
    pub x: i64,
    /// Top row; may be negative likewise.
    pub y: i64,
    /// Side length of the window in image pixels.
    pub size: usize,
    /// Mirror left-right.
    pub flip: bool,
    /// Standard deviation of the Gaussian noise added to this cutout (0 for none).
    pub noise_std: f32,
}

/// How each cutout is cut and augmented: everything about a step's cutouts except how many
/// there are and their size bias, which a schedule may ramp over the run
/// ([`crate::GuideSchedule::cutn`], [`crate::GuideSchedule::cut_pow`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CutoutStyle {
    /// Smallest side as a fraction of the image's shorter side.
    pub min_size_frac: f32,
    /// Side of the rendered cutouts (the CLIP input size).
    pub out_size: usize,
    /// Probability of a left-right flip.
    pub flip_prob: f32,
    /// Windows may start up to this many pixels outside the image (edge pixels repeat).
    pub jitter: usize,
    /// Each cutout gets noise with std drawn uniformly from `[0, noise_std]`, as
    /// VQGAN+CLIP's `noise_fac` does.
    pub noise_std: f32,
}

impl Default for CutoutStyle {
    fn default() -> Self {
        Self {
            min_size_frac: 0.25,
            out_size: 224,
            flip_prob: 0.5,
            jitter: 0,
            noise_std: 0.0,
        }
    }
}

impl CutoutStyle {
    /// Checks the settings, naming the field at fault.
    pub fn validate(&self) -> Result<()> {
        if self.out_size == 0 {
            return Err(GuideError::invalid("out_size", "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.min_size_frac) {
            return Err(GuideError::invalid(
                "min_size_frac",
                format!("{} must be within [0, 1]", self.min_size_frac),
            ));
        }
        if !(0.0..=1.0).contains(&self.flip_prob) {
            return Err(GuideError::invalid(
                "flip_prob",
                format!("{} must be within [0, 1]", self.flip_prob),
            ));
        }
        if !(self.noise_std.is_finite() && self.noise_std >= 0.0) {
            return Err(GuideError::invalid(
                "noise_std",
                format!("{} must be a non-negative number", self.noise_std),
            ));
        }
        Ok(())
    }
}

/// One step's cutouts: how many, their size bias, and how each is cut and augmented.
#[derive(Clone, Debug, PartialEq)]
pub struct Cutouts {
    /// Cutouts per step.
    pub cutn: usize,
    /// Size bias: `size = min + (max - min) · u^cut_pow`; above 1 favours small cutouts.
    pub cut_pow: f32,
    /// Window size, flips, jitter, noise and render size.
    pub style: CutoutStyle,
}

impl Default for Cutouts {
    fn default() -> Self {
        Self {
            cutn: 32,
            cut_pow: 1.0,
            style: CutoutStyle::default(),
        }
    }
}

impl Cutouts {
    /// `cutn` cutouts of side `out_size` with the other settings at their defaults.
    pub fn new(cutn: usize, out_size: usize) -> Self {
        Self {
            cutn,
            style: CutoutStyle {
                out_size,
                ..CutoutStyle::default()
            },
            ..Self::default()
        }
    }

    /// Checks the settings, naming the field at fault.
    pub fn validate(&self) -> Result<()> {
        if self.cutn == 0 {
            return Err(GuideError::invalid("cutn", "must be at least 1"));
        }
        if !(self.cut_pow.is_finite() && self.cut_pow > 0.0) {
            return Err(GuideError::invalid(
                "cut_pow",
                format!("{} must be a positive number", self.cut_pow),
            ));
        }
        self.style.validate()
    }

    /// Draws `cutn` cutouts for an `h × w` image. Sides lie in
    /// `[max(1, round(min_size_frac · min(h, w))), min(h, w)]`; positions are uniform over
    /// the windows that stay within `jitter` pixels of the image. An empty image gives no
    /// cutouts (and [`Self::apply`] then reports the problem).
    pub fn sample(&self, rng: &mut ChaCha8Rng, h: usize, w: usize) -> Vec<CutoutSpec> {
        if h == 0 || w == 0 {
            return Vec::new();
        }
        let max_size = h.min(w).max(1);
        let min_size = ((self.style.min_size_frac as f64 * max_size as f64).round() as usize)
            .clamp(1, max_size);
        let jitter = self.style.jitter as i64;
        (0..self.cutn)
            .map(|_| {
                let u: f64 = rng.random();
                let span = (max_size - min_size) as f64;
                let size = (min_size + (span * u.powf(self.cut_pow as f64)) as usize).min(max_size);
                let x = rng.random_range(-jitter..=w as i64 - size as i64 + jitter);
                let y = rng.random_range(-jitter..=h as i64 - size as i64 + jitter);
                let flip = rng.random::<f32>() < self.style.flip_prob;
                let noise_std = self.style.noise_std * rng.random::<f32>();
                CutoutSpec {
                    x,
                    y,
                    size,
                    flip,
                    noise_std,
                }
            })
            .collect()
    }

    /// Renders `specs` from `image` (`[1, 3, H, W]`) into `[specs.len(), 3, out, out]`:
    /// area resampling when shrinking, bilinear when enlarging, then flip, then noise drawn
    /// from `rng`. Differentiable with respect to `image`.
    pub fn apply(
        &self,
        image: &Tensor,
        specs: &[CutoutSpec],
        rng: &mut ChaCha8Rng,
    ) -> Result<Tensor> {
        if image.rank() != 4 || image.dims()[0] != 1 {
            return Err(GuideError::Shape {
                what: "image",
                got: image.dims().to_vec(),
                expected: "[1, C, H, W]",
            });
        }
        if specs.is_empty() {
            return Err(GuideError::invalid(
                "cutout specs",
                "no cutouts to render; sample at least one",
            ));
        }
        let out = self.style.out_size;
        // Noise is the costliest part here (Box–Muller, 150k samples per cutout): one seed per
        // noisy cutout is drawn in order, then the cutouts' noise is generated in parallel, so
        // the bytes depend on the seed alone, not on the thread count.
        let seeds: Vec<Option<u64>> = specs
            .iter()
            .map(|s| (s.noise_std > 0.0).then(|| rng.random::<u64>()))
            .collect();
        let channels = image.dims()[1];
        let noise: Vec<Option<Vec<f32>>> = seeds
            .par_iter()
            .zip(specs)
            .map(|(seed, spec)| {
                seed.map(|seed| {
                    let mut rng = ChaCha8Rng::seed_from_u64(seed);
                    gaussian_vec(&mut rng, channels * out * out, spec.noise_std as f64)
                })
            })
            .collect();
        let mut cuts = Vec::with_capacity(specs.len());
        for (spec, noise) in specs.iter().zip(noise) {
            let kind = if spec.size > out {
                ResizeKind::Area
            } else {
                ResizeKind::Bilinear
            };
            let crop = Crop {
                top: spec.y,
                left: spec.x,
                height: spec.size,
                width: spec.size,
            };
            let mut cut = crop_resize(image, crop, out, out, kind)?;
            if spec.flip {
                cut = cut.flip(&[3])?;
            }
            if let Some(noise) = noise {
                let noise =
                    Tensor::from_vec(noise, cut.dims(), cut.device())?.to_dtype(cut.dtype())?;
                cut = (cut + noise)?;
            }
            cuts.push(cut);
        }
        Ok(Tensor::cat(&cuts, 0)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{assert_close, check_gradients, seeded_tensor};
    use candle_core::DType;
    use rand::SeedableRng;

    /// Raw bytes of a tensor, for bit-exact reproducibility checks.
    fn tensor_bytes(t: &Tensor) -> Vec<u8> {
        t.to_dtype(DType::F32)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect()
    }

    fn rng(seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed)
    }

    #[test]
    fn samples_stay_in_bounds_and_respect_cut_pow() {
        let mut c = Cutouts {
            cutn: 400,
            style: CutoutStyle {
                min_size_frac: 0.25,
                jitter: 3,
                ..CutoutStyle::default()
            },
            ..Cutouts::default()
        };
        let (h, w) = (40, 64);
        let specs = c.sample(&mut rng(1), h, w);
        assert_eq!(specs.len(), 400);
        for s in &specs {
            assert!((10..=40).contains(&s.size), "size {}", s.size);
            assert!(s.x >= -3 && s.x + s.size as i64 <= w as i64 + 3, "{s:?}");
            assert!(s.y >= -3 && s.y + s.size as i64 <= h as i64 + 3, "{s:?}");
        }
        let flips = specs.iter().filter(|s| s.flip).count();
        assert!(
            (150..250).contains(&flips),
            "{flips} flips of 400 at p = 0.5"
        );
        let mean = |s: &[CutoutSpec]| s.iter().map(|c| c.size as f64).sum::<f64>() / s.len() as f64;
        // E[u^p] = 1/(p+1): mean size 10 + 30/2 = 25 at p = 1 and 10 + 30/5 = 16 at p = 4.
        assert!((mean(&specs) - 25.0).abs() < 2.0, "mean {}", mean(&specs));
        c.cut_pow = 4.0;
        let biased = c.sample(&mut rng(1), h, w);
        assert!((mean(&biased) - 16.0).abs() < 2.0, "mean {}", mean(&biased));
    }

    #[test]
    fn same_seed_gives_identical_bytes() -> Result<()> {
        let c = Cutouts {
            cutn: 4,
            style: CutoutStyle {
                out_size: 8,
                noise_std: 0.1,
                jitter: 2,
                ..CutoutStyle::default()
            },
            ..Cutouts::default()
        };
        let image = seeded_tensor(&[1, 3, 20, 16], 3, DType::F32)?;
        let run = |seed| -> Result<Vec<u8>> {
            let mut r = rng(seed);
            let specs = c.sample(&mut r, 20, 16);
            Ok(tensor_bytes(&c.apply(&image, &specs, &mut r)?))
        };
        let a = run(7)?;
        assert_eq!(a, run(7)?);
        assert_ne!(a, run(8)?);
        Ok(())
    }

    #[test]
    fn full_size_cutout_is_the_image_and_flip_mirrors_it() -> Result<()> {
        let c = Cutouts {
            cutn: 1,
            style: CutoutStyle {
                out_size: 6,
                ..CutoutStyle::default()
            },
            ..Cutouts::default()
        };
        let image = seeded_tensor(&[1, 3, 6, 6], 4, DType::F64)?;
        let spec = CutoutSpec {
            x: 0,
            y: 0,
            size: 6,
            flip: false,
            noise_std: 0.0,
        };
        let flipped = CutoutSpec { flip: true, ..spec };
        let out = c.apply(&image, &[spec, flipped], &mut rng(0))?;
        assert_eq!(out.dims(), &[2, 3, 6, 6]);
        let img = image.flatten_all()?.to_vec1::<f64>()?;
        assert_close(
            &out.get(0)?.flatten_all()?.to_vec1::<f64>()?,
            &img,
            0.0,
            "identity cutout",
        );
        let m = out.get(1)?.flatten_all()?.to_vec1::<f64>()?;
        for (i, v) in m.iter().enumerate() {
            let (row, col) = (i / 6, i % 6);
            assert_eq!(*v, img[row * 6 + (5 - col)], "mirrored pixel {i}");
        }
        Ok(())
    }

    #[test]
    fn noise_has_the_requested_spread() -> Result<()> {
        let c = Cutouts {
            cutn: 1,
            style: CutoutStyle {
                out_size: 64,
                ..CutoutStyle::default()
            },
            ..Cutouts::default()
        };
        let image = Tensor::zeros((1, 3, 64, 64), DType::F32, &candle_core::Device::Cpu)?;
        let spec = CutoutSpec {
            x: 0,
            y: 0,
            size: 64,
            flip: false,
            noise_std: 0.5,
        };
        let v = c
            .apply(&image, &[spec], &mut rng(2))?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let std = (v.iter().map(|x| (x * x) as f64).sum::<f64>() / v.len() as f64).sqrt();
        assert!((std - 0.5).abs() < 0.02, "noise std {std}");
        Ok(())
    }

    #[test]
    fn cutout_gradients_match_finite_differences() -> Result<()> {
        let c = Cutouts {
            cutn: 3,
            style: CutoutStyle {
                out_size: 4,
                jitter: 1,
                noise_std: 0.2,
                ..CutoutStyle::default()
            },
            ..Cutouts::default()
        };
        let image = seeded_tensor(&[1, 3, 7, 6], 5, DType::F64)?;
        let specs = c.sample(&mut rng(9), 7, 6);
        assert!(
            specs.iter().any(|s| s.size > 4) && specs.iter().any(|s| s.size <= 4),
            "{specs:?}"
        );
        let weights = seeded_tensor(&[3, 3, 4, 4], 6, DType::F64)?;
        check_gradients(std::slice::from_ref(&image), 1e-6, 1e-7, |xs| {
            let cuts = c.apply(&xs[0], &specs, &mut rng(10))?;
            Ok(clip_normalize(&cuts)?.mul(&weights)?.sqr()?.sum_all()?)
        })
    }

    #[test]
    fn normalize_uses_clip_constants() -> Result<()> {
        let x = Tensor::from_vec(
            vec![1.0f32, 0.0, 0.5],
            (1, 3, 1, 1),
            &candle_core::Device::Cpu,
        )?;
        let y = clip_normalize(&x)?.flatten_all()?.to_vec1::<f32>()?;
        let want = [
            (1.0 - 0.48145466) / 0.26862954,
            (0.0 - 0.4578275) / 0.26130258,
            (0.5 - 0.40821073) / 0.27577711,
        ];
        assert_close(
            &y.iter().map(|&v| v as f64).collect::<Vec<_>>(),
            &want,
            1e-6,
            "normalize",
        );
        assert!(clip_normalize(&Tensor::zeros(
            (1, 1, 2, 2),
            DType::F32,
            &candle_core::Device::Cpu
        )?)
        .is_err());
        Ok(())
    }

    #[test]
    fn empty_image_gives_no_cutouts_and_apply_reports_it() -> Result<()> {
        let c = Cutouts::default();
        assert!(c.sample(&mut rng(1), 0, 10).is_empty());
        let image = seeded_tensor(&[1, 3, 4, 4], 1, DType::F32)?;
        let err = c.apply(&image, &[], &mut rng(1)).unwrap_err();
        assert!(err.to_string().contains("no cutouts"), "{err}");
        Ok(())
    }

    #[test]
    fn invalid_settings_name_the_field() {
        let bad = Cutouts {
            cut_pow: -1.0,
            ..Cutouts::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("cut_pow"));
        let bad = Cutouts {
            style: CutoutStyle {
                min_size_frac: 2.0,
                ..CutoutStyle::default()
            },
            ..Cutouts::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("min_size_frac"));
        assert!(Cutouts::default().validate().is_ok());
    }
}
