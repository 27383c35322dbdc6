//! Image preprocessing as the reference implementations do it: transformers'
//! `CLIPImageProcessor` (shortest side resized, centre crop) and open_clip's transforms
//! (`shortest`, `squash`, `longest` resize modes; bicubic or bilinear), then ×1/255 and the
//! checkpoint's mean/std.
//! The u8 path reproduces Pillow's resampler bit for bit (coefficients, fixed point, two passes),
//! because that is what the reference processors run; the tensor path applies the same
//! coefficients in f32 as matrices, so it stays differentiable.

use crate::error::{ClipError, Result};
use crate::ops::elementwise;
#[cfg(target_arch = "x86_64")]
use crate::ops::isa;
use candle_core::{Device, Tensor};
use image::{RgbImage, RgbaImage};
use std::path::Path;

pub const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
pub const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_6, 0.275_777_1];

/// How an image is brought to the model's input size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resize {
    /// Shortest side to `size` (aspect kept), then a centre crop of `crop` × `crop`
    /// (`CLIPImageProcessor`; open_clip's `shortest`).
    ShortestEdge { size: usize, crop: usize },
    /// Both sides to `size`, aspect ratio not kept (open_clip's `squash`).
    Squash { size: usize },
    /// Longest side to `size` (aspect kept), then padded to `size` × `size` with `fill` and
    /// centred (open_clip's `longest`).
    LongestEdge { size: usize, fill: u8 },
}

impl Resize {
    /// The side of the square the processor outputs.
    pub fn output_side(&self) -> usize {
        match *self {
            Self::ShortestEdge { crop, .. } => crop,
            Self::Squash { size } | Self::LongestEdge { size, .. } => size,
        }
    }

    /// (width, height) an image of `w` × `h` is resampled to before cropping or padding.
    pub fn resized_dims(&self, w: usize, h: usize, rounding: Convention) -> (usize, usize) {
        match *self {
            Self::ShortestEdge { size, .. } => resize_output_size(w, h, size),
            Self::Squash { size } => (size, size),
            Self::LongestEdge { size, .. } => {
                // timm's ResizeKeepRatio(longest=1): ratio = max(h, w) / size, round(x / ratio).
                let ratio = (h as f64 / size as f64).max(w as f64 / size as f64);
                // At least one pixel (Pillow refuses a zero size; a 4000×4 image keeps a row).
                let r = |x: usize| match rounding {
                    Convention::OpenClip => round_half_even(x as f64 / ratio).max(1),
                    Convention::Transformers => ((x as f64 / ratio).round() as usize).max(1),
                };
                (r(w), r(h))
            }
        }
    }
}

/// Pillow's resampling filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    /// Keys cubic, a = −0.5 (`PIL.Image.BICUBIC`).
    Bicubic,
    /// Triangle filter (`PIL.Image.BILINEAR`).
    Bilinear,
}

impl Interpolation {
    fn support(self) -> f64 {
        match self {
            Self::Bicubic => 2.0,
            Self::Bilinear => 1.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        match self {
            Self::Bicubic => bicubic(x),
            Self::Bilinear => {
                let x = x.abs();
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
        }
    }
}

/// Whose conventions decide the details the two reference pipelines disagree on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Convention {
    /// transformers 5: transparency composited onto white; crop offsets rounded down.
    Transformers,
    /// open_clip (torchvision on PIL): an RGBA image is resized with premultiplied alpha, as
    /// Pillow does, and its alpha then dropped; crop offsets `int(round(d / 2))`, half to even.
    OpenClip,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ImageProcessor {
    pub resize: Resize,
    pub interpolation: Interpolation,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub convention: Convention,
}

impl ImageProcessor {
    /// CLIP's processor for a model of input size `image_size`.
    pub fn for_size(image_size: usize) -> Self {
        Self {
            resize: Resize::ShortestEdge {
                size: image_size,
                crop: image_size,
            },
            interpolation: Interpolation::Bicubic,
            mean: CLIP_MEAN,
            std: CLIP_STD,
            convention: Convention::Transformers,
        }
    }

    /// The side of the square tensors this processor makes.
    pub fn output_side(&self) -> usize {
        self.resize.output_side()
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
        let (mut size, mut crop) = (image_size, image_size);
        if let Some(s) = v.get("size") {
            if let Some(n) = num(s).or_else(|| s.get("shortest_edge").and_then(num)) {
                size = n;
            }
        }
        if let Some(c) = v.get("crop_size") {
            if let Some(n) = num(c).or_else(|| c.get("height").and_then(num)) {
                crop = n;
            }
        }
        p.resize = Resize::ShortestEdge { size, crop };
        if v.get("resample").and_then(|r| r.as_u64()) == Some(2) {
            p.interpolation = Interpolation::Bilinear;
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

    /// [`Self::load_image`] for embedding many files: a JPEG much larger than the model's input
    /// is decoded at a reduced scale (1/2, 1/4 or 1/8, done in the inverse DCT), the smallest that
    /// keeps both sides at least [`REDUCED_DECODE_MARGIN`] times what the resize makes of them,
    /// so the bicubic resize still has that many source pixels per output pixel. Other files,
    /// and JPEGs this decoder cannot read at a reduced scale, go through [`Self::load_image`].
    ///
    /// Pixels differ slightly from the full decode, as Pillow's `draft` mode does; the index,
    /// its image queries and folder evaluation use this, single-image commands the exact path.
    pub fn load_image_reduced(&self, path: &Path) -> Result<RgbImage> {
        match self.reduced_jpeg(path) {
            Some(img) => Ok(img),
            None => self.load_image(path),
        }
    }

    fn reduced_jpeg(&self, path: &Path) -> Option<RgbImage> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        if ext != "jpg" && ext != "jpeg" {
            return None;
        }
        let file = std::fs::File::open(path).ok()?;
        let mut dec = jpeg_decoder::Decoder::new(std::io::BufReader::new(file));
        dec.read_info().ok()?;
        let info = dec.info()?;
        let (w, h) = (info.width as usize, info.height as usize);
        let (nw, nh) = self.resize.resized_dims(w, h, self.convention);
        let denom = [8usize, 4, 2].into_iter().find(|d| {
            w.div_ceil(*d) >= REDUCED_DECODE_MARGIN * nw
                && h.div_ceil(*d) >= REDUCED_DECODE_MARGIN * nh
        })?;
        let (sw, sh) = dec
            .scale(w.div_ceil(denom) as u16, h.div_ceil(denom) as u16)
            .ok()?;
        let pixels = dec.decode().ok()?;
        let (sw, sh) = (sw as u32, sh as u32);
        match dec.info()?.pixel_format {
            jpeg_decoder::PixelFormat::RGB24 => RgbImage::from_raw(sw, sh, pixels),
            jpeg_decoder::PixelFormat::L8 => {
                RgbImage::from_raw(sw, sh, pixels.iter().flat_map(|&v| [v, v, v]).collect())
            }
            // CMYK and 16-bit greys: the exact path.
            _ => None,
        }
    }

    /// Opens an image file as the reference pipeline sees it. transformers composites
    /// transparency onto white. open_clip resizes an RGBA image with Pillow, which premultiplies
    /// alpha around the resampling, and then drops alpha: for such an image the resize is done
    /// here (so [`Self::preprocess`] then finds it at its size and only crops or pads).
    pub fn load_image(&self, path: &Path) -> Result<RgbImage> {
        let img = decode_image(path)?;
        if !img.color().has_alpha() {
            return Ok(img.to_rgb8());
        }
        let rgba = img.to_rgba8();
        match self.convention {
            Convention::Transformers => Ok(composite_rgba_on_white(&rgba)),
            Convention::OpenClip => {
                let (w, h) = (rgba.width() as usize, rgba.height() as usize);
                let (nw, nh) = self.resize.resized_dims(w, h, self.convention);
                let rgba = if (nw, nh) == (w, h) {
                    rgba
                } else {
                    let pre = premultiply(rgba.into_raw());
                    let out = pil_resize(&pre, 4, w, h, nw, nh, self.interpolation);
                    RgbaImage::from_raw(nw as u32, nh as u32, unpremultiply(out))
                        .expect("buffer size matches")
                };
                Ok(RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
                    let p = rgba.get_pixel(x, y).0;
                    image::Rgb([p[0], p[1], p[2]])
                }))
            }
        }
    }

    /// Resize and crop or pad in u8, as the reference processor does.
    pub fn resize_and_crop(&self, img: &RgbImage) -> RgbImage {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let (nw, nh) = self.resize.resized_dims(w, h, self.convention);
        let resized = if (nw, nh) == (w, h) {
            img.clone()
        } else {
            let out = pil_resize(img.as_raw(), 3, w, h, nw, nh, self.interpolation);
            RgbImage::from_raw(nw as u32, nh as u32, out).expect("buffer size matches")
        };
        let side = self.output_side();
        let fill = match self.resize {
            Resize::LongestEdge { fill, .. } => fill,
            _ => 0,
        };
        center_crop_or_pad(&resized, side, side, fill, self.convention)
    }

    /// [3, side, side] normalised f32 tensor.
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

    /// [B, 3, side, side] for several images.
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

    /// `(x − mean) / std` with this checkpoint's statistics, on RGB in [0, 1] [B, 3, H, W];
    /// differentiable (guidance feeds its cutouts through this).
    pub fn normalize(&self, rgb: &Tensor) -> Result<Tensor> {
        match rgb.dims() {
            [_, 3, _, _] => Ok(normalize(rgb, &self.mean, &self.std)?),
            dims => Err(ClipError::BadInput {
                detail: format!("expected RGB [batch, 3, H, W], got {dims:?}"),
            }),
        }
    }

    /// Differentiable path: RGB in [0, 1] as [B, 3, H, W] → normalised [B, 3, side, side], with
    /// the same resampling maths in f32 (no u8 rounding).
    pub fn preprocess_tensor(&self, rgb: &Tensor) -> Result<Tensor> {
        let (_, c, h, w) = rgb.dims4()?;
        if c != 3 {
            return Err(ClipError::BadInput {
                detail: format!("expected RGB [batch, 3, H, W], got {c} channels"),
            });
        }
        let (nw, nh) = self.resize.resized_dims(w, h, self.convention);
        let dev = rgb.device();
        let mut x = rgb.clone();
        if (nw, nh) != (w, h) {
            let f = self.interpolation;
            let rh = Tensor::from_vec(resample_matrix_with(h, nh, f), (nh, h), dev)?;
            let rw = Tensor::from_vec(resample_matrix_with(w, nw, f), (nw, w), dev)?;
            // Clamped after each pass like Pillow's u8 passes, so bicubic overshoot at hard edges
            // does not leak out of [0, 1] (gradients still flow where the value is inside).
            x = x.broadcast_matmul(&rw.t()?)?.clamp(0f32, 1f32)?;
            x = rh.broadcast_matmul(&x)?.clamp(0f32, 1f32)?;
        }
        let side = self.output_side();
        let fill = match self.resize {
            Resize::LongestEdge { fill, .. } => fill as f32 / 255.0,
            _ => 0.0,
        };
        let (top, left) = crop_offsets(nw, nh, side, side, self.convention);
        let x = pad_tensor(&x, top, left, side, fill)?;
        Ok(normalize(&x, &self.mean, &self.std)?)
    }
}

/// Python's `round` (half to even) for non-negative values, as `int(round(x))`: only an exact
/// .5 is a tie.
fn round_half_even(x: f64) -> usize {
    let floor = x.floor();
    let r = match x - floor {
        d if d < 0.5 => floor,
        d if d > 0.5 => floor + 1.0,
        _ if floor % 2.0 == 0.0 => floor,
        _ => floor + 1.0,
    };
    r.max(0.0) as usize
}

/// Top and left offsets of a `cw` × `ch` window in a `w` × `h` image, each possibly negative
/// (the window sticks out and is padded). The padding split is torchvision's (less on the
/// top/left); the crop offset is floored (transformers) or rounded half to even (torchvision).
fn crop_offsets(w: usize, h: usize, cw: usize, ch: usize, conv: Convention) -> (i64, i64) {
    let off = |n: usize, c: usize| -> i64 {
        match conv {
            Convention::Transformers => (n as i64 - c as i64).div_euclid(2),
            Convention::OpenClip if c > n => -(((c - n) / 2) as i64),
            Convention::OpenClip => round_half_even((n - c) as f64 / 2.0) as i64,
        }
    };
    (off(h, ch), off(w, cw))
}

/// The `side` × `side` window at (`top`, `left`) of [B, C, H, W]; outside the image, `fill`.
fn pad_tensor(
    x: &Tensor,
    top: i64,
    left: i64,
    side: usize,
    fill: f32,
) -> candle_core::Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    // Pad first where the window sticks out, then narrow.
    let (pt, pl) = ((-top).max(0) as usize, (-left).max(0) as usize);
    let pb = (top + side as i64 - h as i64).max(0) as usize;
    let pr = (left + side as i64 - w as i64).max(0) as usize;
    let mut x = x.clone();
    if pl + pr > 0 {
        let mut parts = Vec::new();
        if pl > 0 {
            parts.push(Tensor::full(fill, (b, c, h, pl), x.device())?);
        }
        parts.push(x.clone());
        if pr > 0 {
            parts.push(Tensor::full(fill, (b, c, h, pr), x.device())?);
        }
        x = Tensor::cat(&parts, 3)?;
    }
    let wp = x.dim(3)?;
    if pt + pb > 0 {
        let mut parts = Vec::new();
        if pt > 0 {
            parts.push(Tensor::full(fill, (b, c, pt, wp), x.device())?);
        }
        parts.push(x.clone());
        if pb > 0 {
            parts.push(Tensor::full(fill, (b, c, pb, wp), x.device())?);
        }
        x = Tensor::cat(&parts, 2)?;
    }
    x.narrow(2, top.max(0) as usize, side)?
        .narrow(3, left.max(0) as usize, side)
}

/// (x − mean) / std per channel on [B, 3, H, W].
pub fn normalize(x: &Tensor, mean: &[f32; 3], std: &[f32; 3]) -> candle_core::Result<Tensor> {
    let m = Tensor::new(mean, x.device())?
        .reshape((1, 3, 1, 1))?
        .to_dtype(x.dtype())?;
    let s = Tensor::new(std, x.device())?
        .reshape((1, 3, 1, 1))?
        .to_dtype(x.dtype())?;
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
    center_crop_or_pad(img, cw, ch, 0, Convention::Transformers)
}

/// The centred `cw` × `ch` window of `img`, with `fill` where it sticks out; offsets as
/// [`Convention`] says.
pub fn center_crop_or_pad(
    img: &RgbImage,
    cw: usize,
    ch: usize,
    fill: u8,
    conv: Convention,
) -> RgbImage {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let (top, left) = crop_offsets(w as usize, h as usize, cw, ch, conv);
    RgbImage::from_fn(cw as u32, ch as u32, |x, y| {
        let (sx, sy) = (x as i64 + left, y as i64 + top);
        if sx >= 0 && sy >= 0 && sx < w && sy < h {
            *img.get_pixel(sx as u32, sy as u32)
        } else {
            image::Rgb([fill; 3])
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

/// Pillow's `precompute_coeffs`: per output sample, the first input index and the normalised
/// weights (support widened by the scale when shrinking, i.e. antialiased).
fn coeffs(in_size: usize, out_size: usize, filter: Interpolation) -> Vec<(usize, Vec<f64>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filterscale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let mut k: Vec<f64> = (xmin..xmax)
                .map(|x| filter.weight((x as f64 - center + 0.5) * ss))
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
    resample_matrix_with(in_size, out_size, Interpolation::Bicubic)
}

/// Dense [out, in] matrix of `filter`'s resampling weights (row-major).
pub fn resample_matrix_with(in_size: usize, out_size: usize, filter: Interpolation) -> Vec<f32> {
    let mut m = vec![0f32; in_size * out_size];
    for (o, (xmin, k)) in coeffs(in_size, out_size, filter).into_iter().enumerate() {
        for (j, w) in k.into_iter().enumerate() {
            m[o * in_size + xmin + j] = w as f32;
        }
    }
    m
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Pillow's fixed-point filter taps for each output pixel: (first source pixel, taps).
fn fixed_coeffs(in_size: usize, out_size: usize, filter: Interpolation) -> Vec<(usize, Vec<i32>)> {
    coeffs(in_size, out_size, filter)
        .into_iter()
        .map(|(xmin, k)| {
            let k = k
                .into_iter()
                .map(|v| {
                    let s = v * (1u64 << PRECISION_BITS) as f64;
                    // C's (int) cast truncates toward zero after the ±0.5.
                    (if v < 0.0 { s - 0.5 } else { s + 0.5 }) as i32
                })
                .collect();
            (xmin, k)
        })
        .collect()
}

/// Pillow's `clip8`: a fixed-point sum back to u8.
fn clip8(v: i32) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Pillow's `Image.resize((w, h), BICUBIC)` on 8-bit RGB.
pub fn pil_resize_bicubic(img: &RgbImage, out_w: usize, out_h: usize) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let out = pil_resize(img.as_raw(), 3, w, h, out_w, out_h, Interpolation::Bicubic);
    RgbImage::from_raw(out_w as u32, out_h as u32, out).expect("buffer size matches")
}

/// Pillow's `Image.resize` on interleaved 8-bit pixels with `ch` channels (3 or 4): horizontal
/// pass, then vertical, each rounded to u8 in fixed point with Pillow's 32-bit sums (Resample.c),
/// so the bytes are Pillow's.
fn pil_resize(
    src: &[u8],
    ch: usize,
    w: usize,
    h: usize,
    out_w: usize,
    out_h: usize,
    filter: Interpolation,
) -> Vec<u8> {
    if [w, h, out_w, out_h].contains(&0) {
        return vec![0; out_w * out_h * ch];
    }
    let horiz: std::borrow::Cow<[u8]> = if out_w != w {
        let kx = fixed_coeffs(w, out_w, filter);
        let mut out = vec![0u8; out_w * h * ch];
        match ch {
            3 => resize_rows::<3>(src, w, &kx, &mut out),
            4 => resize_rows::<4>(src, w, &kx, &mut out),
            _ => unreachable!("pil_resize is called with 3 or 4 channels"),
        }
        out.into()
    } else {
        src.into()
    };
    if out_h == h {
        return horiz.into_owned();
    }
    let ky = fixed_coeffs(h, out_h, filter);
    let mut out = vec![0u8; out_w * ch * out_h];
    elementwise!(resize_columns(&horiz, out_w * ch, &ky, &mut out));
    out
}

/// The vertical pass, one output row at a time summed across whole source rows of `row` bytes,
/// so the inner loop runs over contiguous bytes and vectorises.
#[inline(always)]
fn resize_columns(src: &[u8], row: usize, ky: &[(usize, Vec<i32>)], out: &mut [u8]) {
    let mut acc = vec![0i32; row];
    for ((ymin, k), dst) in ky.iter().zip(out.chunks_exact_mut(row)) {
        acc.fill(1 << (PRECISION_BITS - 1));
        for (j, &kv) in k.iter().enumerate() {
            let s = &src[(ymin + j) * row..(ymin + j + 1) * row];
            for (a, &v) in acc.iter_mut().zip(s) {
                *a += v as i32 * kv;
            }
        }
        for (d, &a) in dst.iter_mut().zip(&acc) {
            *d = clip8(a);
        }
    }
}

/// The horizontal pass for `CH` interleaved channels (3 or 4), AVX2 where [`isa`] allows it.
/// Every filter window lies inside the row (`coeffs` clips them).
fn resize_rows<const CH: usize>(src: &[u8], w: usize, kx: &[(usize, Vec<i32>)], out: &mut [u8]) {
    debug_assert!(kx.iter().all(|(xmin, k)| xmin + k.len() <= w));
    #[cfg(target_arch = "x86_64")]
    if isa() != "baseline" {
        // SAFETY: `isa` names AVX2 or above only when the CPU reports it.
        unsafe { x86::resize_rows::<CH>(src, w, kx, out) };
        return;
    }
    resize_rows_portable::<CH>(src, w, kx, out)
}

/// [`resize_rows`] in plain Rust: each source row is first spread to four bytes a pixel, so that
/// a tap is one multiply-add over the pixel's four lanes.
fn resize_rows_portable<const CH: usize>(
    src: &[u8],
    w: usize,
    kx: &[(usize, Vec<i32>)],
    out: &mut [u8],
) {
    let mut quad = vec![[0u8; 4]; w];
    for (s, d) in src
        .chunks_exact(w * CH)
        .zip(out.chunks_exact_mut(kx.len() * CH))
    {
        for (q, p) in quad.iter_mut().zip(s.chunks_exact(CH)) {
            q[..CH].copy_from_slice(p);
        }
        for ((xmin, k), px) in kx.iter().zip(d.chunks_exact_mut(CH)) {
            let mut ss = [1i32 << (PRECISION_BITS - 1); 4];
            for (&kv, p) in k.iter().zip(&quad[*xmin..]) {
                for c in 0..4 {
                    ss[c] += p[c] as i32 * kv;
                }
            }
            for c in 0..CH {
                px[c] = clip8(ss[c]);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::PRECISION_BITS;
    use std::arch::x86_64::*;

    /// [`super::resize_rows`] two taps at a time: 8 lanes hold two pixels' four channels.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn resize_rows<const CH: usize>(
        src: &[u8],
        w: usize,
        kx: &[(usize, Vec<i32>)],
        out: &mut [u8],
    ) {
        let mut quad = vec![0u32; w];
        for (s, d) in src
            .chunks_exact(w * CH)
            .zip(out.chunks_exact_mut(kx.len() * CH))
        {
            for (q, p) in quad.iter_mut().zip(s.chunks_exact(CH)) {
                let mut b = [0u8; 4];
                b[..CH].copy_from_slice(p);
                *q = u32::from_le_bytes(b);
            }
            for ((xmin, k), px) in kx.iter().zip(d.chunks_exact_mut(CH)) {
                let mut acc = _mm256_setzero_si256();
                let taps = quad.as_ptr().add(*xmin);
                let mut pairs = k.chunks_exact(2);
                let mut j = 0;
                for pair in &mut pairs {
                    let v = _mm256_cvtepu8_epi32(_mm_loadl_epi64(taps.add(j).cast()));
                    let kv = _mm256_setr_epi32(
                        pair[0], pair[0], pair[0], pair[0], pair[1], pair[1], pair[1], pair[1],
                    );
                    acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(v, kv));
                    j += 2;
                }
                if let [last] = pairs.remainder() {
                    let v = _mm256_cvtepu8_epi32(_mm_cvtsi32_si128(*taps.add(j) as i32));
                    acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(v, _mm256_set1_epi32(*last)));
                }
                let sum = _mm_add_epi32(
                    _mm256_castsi256_si128(acc),
                    _mm256_extracti128_si256::<1>(acc),
                );
                let sum = _mm_add_epi32(sum, _mm_set1_epi32(1 << (PRECISION_BITS - 1)));
                // Pillow's clip8: shift, then saturate to 0..=255 (i32 → i16 → u8).
                let v = _mm_srai_epi32::<{ PRECISION_BITS as i32 }>(sum);
                let v = _mm_packus_epi16(_mm_packs_epi32(v, v), v);
                let bytes = (_mm_cvtsi128_si32(v) as u32).to_le_bytes();
                px.copy_from_slice(&bytes[..CH]);
            }
        }
    }
}

/// Pillow's RGBA → RGBa conversion (`rgbA2rgba`): each colour times alpha / 255, rounded.
fn premultiply(mut px: Vec<u8>) -> Vec<u8> {
    for p in px.chunks_exact_mut(4) {
        let a = p[3] as u32;
        for c in &mut p[..3] {
            let tmp = *c as u32 * a + 128;
            *c = ((tmp + (tmp >> 8)) >> 8) as u8;
        }
    }
    px
}

/// Pillow's RGBa → RGBA conversion (`rgba2rgbA`): colours divided by alpha where it is neither
/// 0 nor 255, clipped to 255.
fn unpremultiply(mut px: Vec<u8>) -> Vec<u8> {
    for p in px.chunks_exact_mut(4) {
        let a = p[3] as u32;
        if a != 0 && a != 255 {
            for c in &mut p[..3] {
                *c = ((255 * *c as u32) / a).min(255) as u8;
            }
        }
    }
    px
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

/// How many source pixels per output pixel (along each side) a reduced-scale JPEG decode keeps
/// for the resize ([`ImageProcessor::load_image_reduced`]).
pub const REDUCED_DECODE_MARGIN: usize = 2;

fn decode_image(path: &Path) -> Result<image::DynamicImage> {
    if !path.exists() {
        return Err(ClipError::MissingFile {
            path: path.to_path_buf(),
            hint: "Check the image path.".into(),
        });
    }
    image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| ClipError::Io {
            path: path.to_path_buf(),
            source: e,
        })?
        .decode()
        .map_err(|e| ClipError::BadImage {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })
}

fn composite_rgba_on_white(rgba: &RgbaImage) -> RgbImage {
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let p = rgba.get_pixel(x, y).0;
        image::Rgb([0, 1, 2].map(|c| composite_on_white(p[c], p[3])))
    })
}

/// Opens an image file as 8-bit RGB. Transparent pixels are composited onto white, as
/// transformers 5's processors do (transformers 4 dropped the alpha channel instead); a
/// checkpoint's own conventions are applied by [`ImageProcessor::load_image`].
pub fn load_image(path: &Path) -> Result<RgbImage> {
    let img = decode_image(path)?;
    if !img.color().has_alpha() {
        return Ok(img.to_rgb8());
    }
    Ok(composite_rgba_on_white(&img.to_rgba8()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A smooth 1024×768 picture with a sharp-edged disc, as JPEG (quality 92) and PNG.
    fn photo_files(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
        let img = RgbImage::from_fn(1024, 768, |x, y| {
            let (dx, dy) = (x as f32 - 600.0, y as f32 - 300.0);
            if dx * dx + dy * dy < 150.0 * 150.0 {
                image::Rgb([220, 40, 40])
            } else {
                image::Rgb([(x / 4) as u8, (y / 3) as u8, 128])
            }
        });
        let (jpg, png) = (dir.join("photo.jpg"), dir.join("photo.png"));
        let mut out = std::io::BufWriter::new(std::fs::File::create(&jpg).unwrap());
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92)
            .encode_image(&img)
            .unwrap();
        drop(out);
        img.save(&png).unwrap();
        (jpg, png)
    }

    #[test]
    fn a_large_jpeg_decoded_at_a_reduced_scale_preprocesses_nearly_as_the_full_decode() {
        let dir = tempfile::tempdir().unwrap();
        let (jpg, png) = photo_files(dir.path());
        let p = ImageProcessor::for_size(64);
        // Short side 768 → 64: 1/4 keeps 192 ≥ 2 × 64 (1/8 would leave 96).
        let reduced = p.load_image_reduced(&jpg).unwrap();
        assert_eq!(reduced.dimensions(), (256, 192));
        let full = p.load_image(&jpg).unwrap();
        assert_eq!(full.dimensions(), (1024, 768));
        let a = p.preprocess(&reduced, &Device::Cpu).unwrap();
        let b = p.preprocess(&full, &Device::Cpu).unwrap();
        let d = (&a - &b).unwrap().abs().unwrap().flatten_all().unwrap();
        let mean = d.mean_all().unwrap().to_scalar::<f32>().unwrap();
        let max = d.max_all().unwrap().to_scalar::<f32>().unwrap();
        // Normalised units (1/255 of a channel ≈ 0.015).
        assert!(mean < 0.02 && max < 0.5, "mean {mean}, max {max}");
        // A model input as large as the file, and files other than JPEG: the exact path.
        let big = ImageProcessor::for_size(448);
        assert_eq!(
            big.load_image_reduced(&jpg).unwrap(),
            big.load_image(&jpg).unwrap()
        );
        assert_eq!(
            p.load_image_reduced(&png).unwrap(),
            p.load_image(&png).unwrap()
        );
    }

    #[test]
    fn output_size_follows_transformers() {
        assert_eq!(resize_output_size(300, 200, 64), (96, 64));
        assert_eq!(resize_output_size(200, 300, 64), (64, 96));
        // int() truncation: 64 * 25 / 40 = 40 exactly, 64*41/25 = 104.96 → 104
        assert_eq!(resize_output_size(25, 41, 64), (64, 104));
    }

    #[test]
    fn python_rounding_ties_only_at_exact_halves() {
        assert_eq!(round_half_even(2.5), 2);
        assert_eq!(round_half_even(3.5), 4);
        assert_eq!(round_half_even(7.499999999999999), 7);
        assert_eq!(round_half_even(7.500000000000001), 8);
        // 297 / (576 / 224) = 115.49999999999999 in f64: Python's round gives 115.
        let longest = Resize::LongestEdge { size: 224, fill: 0 };
        assert_eq!(
            longest.resized_dims(576, 297, Convention::OpenClip),
            (224, 115)
        );
        assert_eq!(longest.resized_dims(400, 4, Convention::OpenClip), (224, 2));
        assert_eq!(
            longest.resized_dims(4000, 4, Convention::OpenClip),
            (224, 1)
        );
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

    /// Resample.c's loops as written (one sum per channel and output pixel, 64-bit sums here):
    /// the reference the row-wise passes must match byte for byte.
    fn resize_as_resample_c(
        src: &[u8],
        ch: usize,
        (w, h): (usize, usize),
        (out_w, out_h): (usize, usize),
        filter: Interpolation,
    ) -> Vec<u8> {
        let round = 1i64 << (PRECISION_BITS - 1);
        let clip = |v: i64| (v >> PRECISION_BITS).clamp(0, 255) as u8;
        let kx = fixed_coeffs(w, out_w, filter);
        let mut horiz = vec![0u8; out_w * h * ch];
        for y in 0..h {
            for (xx, (xmin, k)) in kx.iter().enumerate() {
                for c in 0..ch {
                    let mut ss = round;
                    for (j, &kv) in k.iter().enumerate() {
                        ss += src[(y * w + xmin + j) * ch + c] as i64 * kv as i64;
                    }
                    horiz[(y * out_w + xx) * ch + c] = clip(ss);
                }
            }
        }
        let ky = fixed_coeffs(h, out_h, filter);
        let mut out = vec![0u8; out_w * out_h * ch];
        for (yy, (ymin, k)) in ky.iter().enumerate() {
            for x in 0..out_w {
                for c in 0..ch {
                    let mut ss = round;
                    for (j, &kv) in k.iter().enumerate() {
                        ss += horiz[((ymin + j) * out_w + x) * ch + c] as i64 * kv as i64;
                    }
                    out[(yy * out_w + x) * ch + c] = clip(ss);
                }
            }
        }
        out
    }

    #[test]
    fn row_wise_resize_gives_resample_c_bytes() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut byte = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Mostly extremes, so bicubic overshoot hits both clamps.
            match state % 4 {
                0 => 0,
                1 => 255,
                _ => (state >> 32) as u8,
            }
        };
        let sizes = [
            ((640, 480), (298, 224)),
            ((97, 301), (224, 695)),
            ((5, 3), (224, 224)),
            ((1600, 37), (224, 5)),
            ((224, 300), (224, 224)),
            ((640, 37), (301, 37)),
        ];
        for filter in [Interpolation::Bicubic, Interpolation::Bilinear] {
            for ch in [3, 4] {
                for ((w, h), (ow, oh)) in sizes {
                    let src: Vec<u8> = (0..w * h * ch).map(|_| byte()).collect();
                    let got = pil_resize(&src, ch, w, h, ow, oh, filter);
                    let want = resize_as_resample_c(&src, ch, (w, h), (ow, oh), filter);
                    assert!(got == want, "{filter:?} {ch} channels {w}x{h} -> {ow}x{oh}");
                    // Both horizontal passes, whichever `isa` chose for this process.
                    let kx = fixed_coeffs(w, ow, filter);
                    let mut portable = vec![0u8; ow * h * ch];
                    let mut simd = vec![0u8; ow * h * ch];
                    match ch {
                        3 => resize_rows_portable::<3>(&src, w, &kx, &mut portable),
                        _ => resize_rows_portable::<4>(&src, w, &kx, &mut portable),
                    }
                    #[cfg(target_arch = "x86_64")]
                    if std::arch::is_x86_feature_detected!("avx2") {
                        // SAFETY: the CPU has AVX2.
                        unsafe {
                            match ch {
                                3 => x86::resize_rows::<3>(&src, w, &kx, &mut simd),
                                _ => x86::resize_rows::<4>(&src, w, &kx, &mut simd),
                            }
                        }
                        assert!(portable == simd, "AVX2 and portable rows differ");
                    }
                    let _ = &mut simd;
                    if oh == h {
                        assert!(portable == want, "portable rows {w}x{h} -> {ow}x{oh}");
                    }
                }
            }
        }
    }

    #[test]
    fn empty_sizes_give_empty_images() {
        let img = RgbImage::from_pixel(5, 3, image::Rgb([1, 2, 3]));
        assert_eq!(pil_resize_bicubic(&img, 0, 4).len(), 0);
        assert_eq!(pil_resize_bicubic(&RgbImage::new(0, 0), 0, 0).len(), 0);
    }

    #[test]
    fn constant_image_stays_constant() {
        let img = RgbImage::from_pixel(37, 23, image::Rgb([200, 10, 77]));
        let out = pil_resize_bicubic(&img, 11, 50);
        assert!(out.pixels().all(|p| p.0 == [200, 10, 77]));
    }
}
