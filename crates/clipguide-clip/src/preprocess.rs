//! Image preprocessing with the meaning of transformers' `CLIPImageProcessor`: shortest side
//! resized (bicubic) to `size`, centre crop, ×1/255, CLIP mean/std.
//! The u8 path reproduces Pillow's resampler bit for bit (coefficients, fixed point, two passes),
//! because that is what the reference processor runs; the tensor path applies the same
//! coefficients in f32 as matrices, so it stays differentiable.

use crate::error::{ClipError, Result};
use candle_core::{Device, Tensor};
use image::RgbImage;
use std::path::Path;

pub const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
pub const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_6, 0.275_777_1];

#[derive(Debug, Clone, PartialEq)]
pub struct ImageProcessor {
    /// Target length of the shortest side.
    pub size: usize,
    /// Centre-crop height and width.
    pub crop: usize,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl ImageProcessor {
    /// CLIP's processor for a model of input size `image_size`.
    pub fn for_size(image_size: usize) -> Self {
        Self {
            size: image_size,
            crop: image_size,
            mean: CLIP_MEAN,
            std: CLIP_STD,
        }
    }

    /// Reads `preprocessor_config.json` when the checkpoint has one, else CLIP defaults.
    pub fn for_checkpoint(dir: &Path, image_size: usize) -> Self {
        let mut p = Self::for_size(image_size);
        let Ok(text) = std::fs::read_to_string(dir.join("preprocessor_config.json")) else {
            return p;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
            return p;
        };
        let num = |v: &serde_json::Value| v.as_u64().map(|x| x as usize);
        if let Some(s) = v.get("size") {
            if let Some(n) = num(s).or_else(|| s.get("shortest_edge").and_then(num)) {
                p.size = n;
            }
        }
        if let Some(c) = v.get("crop_size") {
            if let Some(n) = num(c).or_else(|| c.get("height").and_then(num)) {
                p.crop = n;
            }
        }
        let triple = |k: &str| -> Option<[f32; 3]> {
            let a = v.get(k)?.as_array()?;
            if a.len() != 3 {
                return None;
            }
            Some([
                a[0].as_f64()? as f32,
                a[1].as_f64()? as f32,
                a[2].as_f64()? as f32,
            ])
        };
        if let Some(m) = triple("image_mean") {
            p.mean = m;
        }
        if let Some(s) = triple("image_std") {
            p.std = s;
        }
        p
    }

    /// Resize + crop in u8, as the reference processor does.
    pub fn resize_and_crop(&self, img: &RgbImage) -> RgbImage {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let (nw, nh) = resize_output_size(w, h, self.size);
        let resized = pil_resize_bicubic(img, nw, nh);
        center_crop(&resized, self.crop, self.crop)
    }

    /// [3, crop, crop] normalised f32 tensor.
    pub fn preprocess(&self, img: &RgbImage, device: &Device) -> Result<Tensor> {
        let img = self.resize_and_crop(img);
        let (w, h) = (img.width() as usize, img.height() as usize);
        let mut data = vec![0f32; 3 * w * h];
        for (x, y, px) in img.enumerate_pixels() {
            for c in 0..3 {
                let v = px[c] as f32 * (1.0 / 255.0);
                data[c * w * h + y as usize * w + x as usize] = (v - self.mean[c]) / self.std[c];
            }
        }
        Ok(Tensor::from_vec(data, (3, h, w), device)?)
    }

    /// [B, 3, crop, crop] for several images.
    pub fn preprocess_batch(&self, imgs: &[RgbImage], device: &Device) -> Result<Tensor> {
        if imgs.is_empty() {
            return Err(ClipError::BadInput {
                detail: "no images to preprocess: pass at least one".into(),
            });
        }
        let ts = imgs
            .iter()
            .map(|i| self.preprocess(i, device))
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::stack(&ts, 0)?)
    }

    /// Differentiable path: RGB in [0, 1] as [B, 3, H, W] → normalised [B, 3, crop, crop], with
    /// the same resampling maths in f32 (no u8 rounding).
    pub fn preprocess_tensor(&self, rgb: &Tensor) -> Result<Tensor> {
        let (_, c, h, w) = rgb.dims4()?;
        if c != 3 {
            return Err(ClipError::BadInput {
                detail: format!("expected RGB [batch, 3, H, W], got {c} channels"),
            });
        }
        let (nw, nh) = resize_output_size(w, h, self.size);
        let dev = rgb.device();
        let mut x = rgb.clone();
        if (nw, nh) != (w, h) {
            let rh = Tensor::from_vec(resample_matrix(h, nh), (nh, h), dev)?;
            let rw = Tensor::from_vec(resample_matrix(w, nw), (nw, w), dev)?;
            // Clamped after each pass like Pillow's u8 passes, so bicubic overshoot at hard edges
            // does not leak out of [0, 1] (gradients still flow where the value is inside).
            x = x.broadcast_matmul(&rw.t()?)?.clamp(0f32, 1f32)?;
            x = rh.broadcast_matmul(&x)?.clamp(0f32, 1f32)?;
        }
        let top = nh.saturating_sub(self.crop) / 2;
        let left = nw.saturating_sub(self.crop) / 2;
        let x = x
            .narrow(2, top, self.crop.min(nh))?
            .narrow(3, left, self.crop.min(nw))?;
        Ok(normalize(&x, &self.mean, &self.std)?)
    }
}

/// (x − mean) / std per channel on [B, 3, H, W].
pub fn normalize(x: &Tensor, mean: &[f32; 3], std: &[f32; 3]) -> candle_core::Result<Tensor> {
    let m = Tensor::new(mean, x.device())?.reshape((1, 3, 1, 1))?;
    let s = Tensor::new(std, x.device())?.reshape((1, 3, 1, 1))?;
    x.broadcast_sub(&m)?.broadcast_div(&s)
}

/// transformers' `get_resize_output_image_size(default_to_square=False)`.
pub fn resize_output_size(w: usize, h: usize, shortest: usize) -> (usize, usize) {
    if w <= h {
        (shortest, (shortest as f64 * h as f64 / w as f64) as usize)
    } else {
        ((shortest as f64 * w as f64 / h as f64) as usize, shortest)
    }
}

/// Centre crop as transformers does it (offsets rounded down); pads with black if smaller.
pub fn center_crop(img: &RgbImage, cw: usize, ch: usize) -> RgbImage {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let top = (h - ch as i64).div_euclid(2);
    let left = (w - cw as i64).div_euclid(2);
    RgbImage::from_fn(cw as u32, ch as u32, |x, y| {
        let (sx, sy) = (x as i64 + left, y as i64 + top);
        if sx >= 0 && sy >= 0 && sx < w && sy < h {
            *img.get_pixel(sx as u32, sy as u32)
        } else {
            image::Rgb([0, 0, 0])
        }
    })
}

fn bicubic(x: f64) -> f64 {
    // Keys cubic with a = -0.5, Pillow's BICUBIC.
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Pillow's `precompute_coeffs` for bicubic: per output sample, the first input index and the
/// normalised weights (support widened by the scale when shrinking, i.e. antialiased).
fn coeffs(in_size: usize, out_size: usize) -> Vec<(usize, Vec<f64>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = 2.0 * filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filterscale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let mut k: Vec<f64> = (xmin..xmax)
                .map(|x| bicubic((x as f64 - center + 0.5) * ss))
                .collect();
            let ww: f64 = k.iter().sum();
            if ww != 0.0 {
                k.iter_mut().for_each(|v| *v /= ww);
            }
            (xmin, k)
        })
        .collect()
}

/// Dense [out, in] matrix of the bicubic resampling weights (row-major), for the tensor path.
pub fn resample_matrix(in_size: usize, out_size: usize) -> Vec<f32> {
    let mut m = vec![0f32; in_size * out_size];
    for (o, (xmin, k)) in coeffs(in_size, out_size).into_iter().enumerate() {
        for (j, w) in k.into_iter().enumerate() {
            m[o * in_size + xmin + j] = w as f32;
        }
    }
    m
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

fn fixed_coeffs(in_size: usize, out_size: usize) -> Vec<(usize, Vec<i64>)> {
    coeffs(in_size, out_size)
        .into_iter()
        .map(|(xmin, k)| {
            let k = k
                .into_iter()
                .map(|v| {
                    let s = v * (1u64 << PRECISION_BITS) as f64;
                    // C's (int) cast truncates toward zero after the ±0.5.
                    (if v < 0.0 { s - 0.5 } else { s + 0.5 }) as i64
                })
                .collect();
            (xmin, k)
        })
        .collect()
}

fn clip8(v: i64) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Pillow's `Image.resize((w, h), BICUBIC)` on 8-bit RGB: horizontal pass, then vertical,
/// each rounded to u8 in fixed point, as Resample.c does.
pub fn pil_resize_bicubic(img: &RgbImage, out_w: usize, out_h: usize) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let src = img.as_raw();
    let round = 1i64 << (PRECISION_BITS - 1);
    let horiz: Vec<u8> = if out_w != w {
        let kx = fixed_coeffs(w, out_w);
        let mut out = vec![0u8; out_w * h * 3];
        for y in 0..h {
            for (xx, (xmin, k)) in kx.iter().enumerate() {
                for c in 0..3 {
                    let mut ss = round;
                    for (j, &kv) in k.iter().enumerate() {
                        ss += src[(y * w + xmin + j) * 3 + c] as i64 * kv;
                    }
                    out[(y * out_w + xx) * 3 + c] = clip8(ss);
                }
            }
        }
        out
    } else {
        src.clone()
    };
    let vert: Vec<u8> = if out_h != h {
        let ky = fixed_coeffs(h, out_h);
        let mut out = vec![0u8; out_w * out_h * 3];
        for (yy, (ymin, k)) in ky.iter().enumerate() {
            for x in 0..out_w {
                for c in 0..3 {
                    let mut ss = round;
                    for (j, &kv) in k.iter().enumerate() {
                        ss += horiz[((ymin + j) * out_w + x) * 3 + c] as i64 * kv;
                    }
                    out[(yy * out_w + x) * 3 + c] = clip8(ss);
                }
            }
        }
        out
    } else {
        horiz
    };
    RgbImage::from_raw(out_w as u32, out_h as u32, vert).expect("buffer size matches")
}

/// Pillow's `alpha_composite` of `src` over opaque white, in its integer arithmetic
/// (AlphaComposite.c, 7 extra bits of precision, rounded divisions by 255).
fn composite_on_white(r: u8, a: u8) -> u8 {
    const PB: u32 = 7;
    let shift_div255 = |x: u32| ((x >> 8) + x) >> 8;
    let (sa, dr) = (a as u32, 255u32);
    let blend = 255 * (255 - sa);
    let outa255 = sa * 255 + blend;
    let coef1 = sa * 255 * 255 * (1 << PB) / outa255;
    let coef2 = 255 * (1 << PB) - coef1;
    let tmp = r as u32 * coef1 + dr * coef2;
    (shift_div255(tmp + (0x80 << PB)) >> PB) as u8
}

/// Opens an image file as 8-bit RGB. Transparent pixels are composited onto white, as
/// transformers 5's processors do (transformers 4 dropped the alpha channel instead).
pub fn load_image(path: &Path) -> Result<RgbImage> {
    if !path.exists() {
        return Err(ClipError::MissingFile {
            path: path.to_path_buf(),
            hint: "Check the image path.".into(),
        });
    }
    let img = image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| ClipError::Io {
            path: path.to_path_buf(),
            source: e,
        })?
        .decode()
        .map_err(|e| ClipError::BadImage {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
    if !img.color().has_alpha() {
        return Ok(img.to_rgb8());
    }
    let rgba = img.to_rgba8();
    Ok(RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let p = rgba.get_pixel(x, y).0;
        image::Rgb([0, 1, 2].map(|c| composite_on_white(p[c], p[3])))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_size_follows_transformers() {
        assert_eq!(resize_output_size(300, 200, 64), (96, 64));
        assert_eq!(resize_output_size(200, 300, 64), (64, 96));
        // int() truncation: 64 * 25 / 40 = 40 exactly, 64*41/25 = 104.96 → 104
        assert_eq!(resize_output_size(25, 41, 64), (64, 104));
    }

    #[test]
    fn resample_rows_sum_to_one() {
        for (i, o) in [(10, 4), (4, 10), (7, 7), (300, 64)] {
            let m = resample_matrix(i, o);
            for r in 0..o {
                let s: f32 = m[r * i..(r + 1) * i].iter().sum();
                assert!((s - 1.0).abs() < 1e-5, "{i}->{o} row {r} sums to {s}");
            }
        }
    }

    #[test]
    fn constant_image_stays_constant() {
        let img = RgbImage::from_pixel(37, 23, image::Rgb([200, 10, 77]));
        let out = pil_resize_bicubic(&img, 11, 50);
        assert!(out.pixels().all(|p| p.0 == [200, 10, 77]));
    }
}
