//! Drawing styles: post-processes that turn a flat rendering into an oil painting, a watercolour,
//! pixel art or a pencil sketch, so captions can name a style and a model can learn to see one.
//!
//! Every length is a fraction of the image side (the shorter one), so a style looks the same at
//! the 64×64 training size and the 256×256 output size. Every random choice comes from the seed,
//! so the same image, style and seed give the same bytes.

use image::{Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tiny_skia::{Color, LineCap, Paint, PathBuilder, Pixmap, Stroke, Transform};

/// How a picture is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Style {
    /// The renderer's own clean vector drawing.
    Flat,
    OilPainting,
    Watercolour,
    PixelArt,
    PencilSketch,
}

impl Style {
    pub const ALL: [Style; 5] = [
        Style::Flat,
        Style::OilPainting,
        Style::Watercolour,
        Style::PixelArt,
        Style::PencilSketch,
    ];

    /// The English caption words ("oil painting").
    pub const fn name(self) -> &'static str {
        match self {
            Style::Flat => "illustration",
            Style::OilPainting => "oil painting",
            Style::Watercolour => "watercolour",
            Style::PixelArt => "pixel art",
            Style::PencilSketch => "pencil sketch",
        }
    }

    /// The Japanese caption word (油絵).
    pub const fn ja_name(self) -> &'static str {
        match self {
            Style::Flat => "イラスト",
            Style::OilPainting => "油絵",
            Style::Watercolour => "水彩画",
            Style::PixelArt => "ドット絵",
            Style::PencilSketch => "鉛筆画",
        }
    }
}

/// Redraws `image` in `style`. `Flat` returns the image unchanged; the others keep the layout
/// and (except the sketch) the colours, so captions stay true. Images under 8 px on a side are
/// too small to carry a style and come back unchanged.
pub fn apply_style(image: &RgbImage, style: Style, seed: u64) -> RgbImage {
    if image.width().min(image.height()) < 8 {
        return image.clone();
    }
    match style {
        Style::Flat => image.clone(),
        Style::OilPainting => oil_painting(image, seed),
        Style::Watercolour => watercolour(image, seed),
        Style::PixelArt => pixel_art(image, seed),
        Style::PencilSketch => pencil_sketch(image, seed),
    }
}

// ---------------------------------------------------------------------------------------------
// Float image helpers.

/// A linear float image, channels in 0..=1, row-major.
#[derive(Clone)]
struct Buf {
    w: usize,
    h: usize,
    px: Vec<[f32; 3]>,
}

impl Buf {
    fn from_rgb(image: &RgbImage) -> Buf {
        let (w, h) = (image.width() as usize, image.height() as usize);
        let px = image
            .pixels()
            .map(|p| p.0.map(|v| v as f32 / 255.0))
            .collect();
        Buf { w, h, px }
    }

    fn to_rgb(&self) -> RgbImage {
        RgbImage::from_fn(self.w as u32, self.h as u32, |x, y| {
            let p = self.px[y as usize * self.w + x as usize];
            Rgb(p.map(to_u8))
        })
    }

    fn at(&self, x: isize, y: isize) -> [f32; 3] {
        let x = x.clamp(0, self.w as isize - 1) as usize;
        let y = y.clamp(0, self.h as isize - 1) as usize;
        self.px[y * self.w + x]
    }

    /// Bilinear sample at a continuous position (pixel centres at integer + 0.5), clamped.
    fn sample(&self, x: f32, y: f32) -> [f32; 3] {
        let fx = x - 0.5;
        let fy = y - 0.5;
        let x0 = fx.floor();
        let y0 = fy.floor();
        let (tx, ty) = (fx - x0, fy - y0);
        let (x0, y0) = (x0 as isize, y0 as isize);
        let a = self.at(x0, y0);
        let b = self.at(x0 + 1, y0);
        let c = self.at(x0, y0 + 1);
        let d = self.at(x0 + 1, y0 + 1);
        std::array::from_fn(|i| {
            let top = a[i] + (b[i] - a[i]) * tx;
            let bottom = c[i] + (d[i] - c[i]) * tx;
            top + (bottom - top) * ty
        })
    }

    /// Three box blurs of radius `r` (pixels): close to a Gaussian of sigma ≈ r.
    fn blur(&self, r: usize) -> Buf {
        let mut out = self.clone();
        if r == 0 {
            return out;
        }
        for _ in 0..3 {
            out = out.box_pass(r, true).box_pass(r, false);
        }
        out
    }

    fn box_pass(&self, r: usize, horizontal: bool) -> Buf {
        let (w, h) = (self.w, self.h);
        let mut px = vec![[0.0f32; 3]; w * h];
        let (lines, len) = if horizontal { (h, w) } else { (w, h) };
        let index = |line: usize, i: usize| {
            if horizontal {
                line * w + i
            } else {
                i * w + line
            }
        };
        let norm = 1.0 / (2 * r + 1) as f32;
        for line in 0..lines {
            let get = |i: isize| self.px[index(line, i.clamp(0, len as isize - 1) as usize)];
            let mut acc = [0.0f32; 3];
            for i in -(r as isize)..=(r as isize) {
                let p = get(i);
                (0..3).for_each(|c| acc[c] += p[c]);
            }
            for i in 0..len {
                px[index(line, i)] = acc.map(|v| v * norm);
                let add = get(i as isize + r as isize + 1);
                let sub = get(i as isize - r as isize);
                (0..3).for_each(|c| acc[c] += add[c] - sub[c]);
            }
        }
        Buf { w, h, px }
    }

    fn luminance(&self) -> Vec<f32> {
        self.px.iter().map(|&p| luma(p)).collect()
    }
}

fn luma(p: [f32; 3]) -> f32 {
    0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]
}

fn to_u8(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// Sobel gradient of a scalar field: `(gx, gy)` per pixel.
fn sobel(field: &[f32], w: usize, h: usize) -> Vec<[f32; 2]> {
    let at = |x: isize, y: isize| {
        field[y.clamp(0, h as isize - 1) as usize * w + x.clamp(0, w as isize - 1) as usize]
    };
    let mut out = Vec::with_capacity(w * h);
    for y in 0..h as isize {
        for x in 0..w as isize {
            let gx = (at(x + 1, y - 1) + 2.0 * at(x + 1, y) + at(x + 1, y + 1))
                - (at(x - 1, y - 1) + 2.0 * at(x - 1, y) + at(x - 1, y + 1));
            let gy = (at(x - 1, y + 1) + 2.0 * at(x, y + 1) + at(x + 1, y + 1))
                - (at(x - 1, y - 1) + 2.0 * at(x, y - 1) + at(x + 1, y - 1));
            out.push([gx / 8.0, gy / 8.0]);
        }
    }
    out
}

/// A stateless hash of a lattice point and a seed, uniform in 0..1.
pub(crate) fn hash01(x: i64, y: i64, seed: u64) -> f32 {
    let mut v = seed ^ 0x9E37_79B9_7F4A_7C15;
    v ^= (x as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    v = v.rotate_left(27).wrapping_mul(0x94D0_49BB_1331_11EB);
    v ^= (y as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    v ^= v >> 31;
    v = v.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    v ^= v >> 29;
    (v >> 40) as f32 / (1u64 << 24) as f32
}

/// Smooth value noise in 0..1 with features about `scale` pixels across.
pub(crate) fn value_noise(x: f32, y: f32, scale: f32, seed: u64) -> f32 {
    let (fx, fy) = (x / scale, y / scale);
    let (x0, y0) = (fx.floor(), fy.floor());
    let smooth = |t: f32| t * t * (3.0 - 2.0 * t);
    let (tx, ty) = (smooth(fx - x0), smooth(fy - y0));
    let (xi, yi) = (x0 as i64, y0 as i64);
    let a = hash01(xi, yi, seed);
    let b = hash01(xi + 1, yi, seed);
    let c = hash01(xi, yi + 1, seed);
    let d = hash01(xi + 1, yi + 1, seed);
    let top = a + (b - a) * tx;
    let bottom = c + (d - c) * tx;
    top + (bottom - top) * ty
}

/// Opaque premultiplied tiny-skia pixels to an `RgbImage`.
pub(crate) fn pixmap_to_rgb(pixmap: &Pixmap) -> RgbImage {
    let w = pixmap.width();
    let data = pixmap.data();
    RgbImage::from_fn(w, pixmap.height(), |x, y| {
        let i = ((y * w + x) * 4) as usize;
        Rgb([data[i], data[i + 1], data[i + 2]])
    })
}

// ---------------------------------------------------------------------------------------------
// Oil painting.

/// Stroke-based painting (after Hertzmann's painterly rendering): a few passes of short thick
/// strokes, coarse to fine, each following the local edge direction and taking its colour from
/// the source blurred to the brush size. Finer passes only repaint where the canvas still
/// differs from the source, so edges stay crisp and flat areas keep the big strokes. Every
/// stroke carries a light ridge and a dark ridge (impasto), and a canvas weave shows through.
fn oil_painting(image: &RgbImage, seed: u64) -> RgbImage {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0011_5EED);
    let src = Buf::from_rgb(image);
    let (w, h) = (src.w, src.h);
    let side = w.min(h) as f32;

    // Orientation: the colour structure tensor, smoothed so neighbouring strokes agree.
    let mut tensor = Buf {
        w,
        h,
        px: vec![[0.0; 3]; w * h],
    };
    for c in 0..3 {
        let channel: Vec<f32> = src.px.iter().map(|p| p[c]).collect();
        for (t, g) in tensor.px.iter_mut().zip(sobel(&channel, w, h)) {
            t[0] += g[0] * g[0];
            t[1] += g[0] * g[1];
            t[2] += g[1] * g[1];
        }
    }
    let tensor = tensor.blur((side * 0.012).round().max(1.0) as usize);
    let base_angle: f32 = rng.random_range(0.0..std::f32::consts::PI);

    let Some(mut pixmap) = Pixmap::new(w as u32, h as u32) else {
        return image.clone();
    };
    // Underpainting: the source blurred at the coarsest brush size.
    let under = src.blur((side * 0.03).round().max(1.0) as usize);
    fill_pixmap(&mut pixmap, &under);

    let passes = [(0.08f32, 0.0f32), (0.045, 0.05), (0.025, 0.06)];
    for (brush_frac, threshold) in passes {
        let width = (side * brush_frac).max(1.6);
        let reference = src.blur((width * 0.25).round() as usize);
        let canvas = Buf::from_rgb(&pixmap_to_rgb(&pixmap));
        let spacing = (width * 0.55).max(1.0);
        let cols = (w as f32 / spacing).ceil() as usize;
        let rows = (h as f32 / spacing).ceil() as usize;
        let mut cells: Vec<(f32, f32)> = Vec::with_capacity(cols * rows);
        for r in 0..rows {
            for c in 0..cols {
                let x = (c as f32 + rng.random_range(0.0..1.0)) * spacing;
                let y = (r as f32 + rng.random_range(0.0..1.0)) * spacing;
                cells.push((x.min(w as f32 - 0.5), y.min(h as f32 - 0.5)));
            }
        }
        // A fixed random order so later strokes overlap earlier ones without a visible scan.
        for i in (1..cells.len()).rev() {
            cells.swap(i, rng.random_range(0..=i));
        }
        for (x, y) in cells {
            let want = reference.sample(x, y);
            let have = canvas.sample(x, y);
            let error = (0..3).map(|c| (want[c] - have[c]).abs()).sum::<f32>() / 3.0;
            // Consume the same random numbers whether or not the stroke is drawn.
            let jitter: [f32; 3] = std::array::from_fn(|_| rng.random_range(-0.03..0.03));
            let shade: f32 = rng.random_range(-0.07..0.07);
            let angle_noise: f32 = rng.random_range(-0.5..0.5);
            let length_roll: f32 = rng.random_range(1.6..2.8);
            let bend: f32 = rng.random_range(-0.25..0.25);
            if error < threshold {
                continue;
            }
            let t = tensor.sample(x, y);
            let (jxx, jxy, jyy) = (t[0], t[1], t[2]);
            let strength = ((jxx - jyy).powi(2) + 4.0 * jxy * jxy).sqrt();
            let angle = if strength > 1e-4 {
                // Gradient direction + 90°: strokes run along edges.
                0.5 * (2.0 * jxy).atan2(jxx - jyy) + std::f32::consts::FRAC_PI_2 + angle_noise * 0.3
            } else {
                base_angle + angle_noise
            };
            let colour: [f32; 3] = std::array::from_fn(|c| want[c] + jitter[c] + shade);
            let half = width * length_roll * 0.5;
            let (dx, dy) = (angle.cos() * half, angle.sin() * half);
            let (nx, ny) = (-dy / half, dx / half);
            let ctrl = (x + nx * bend * width, y + ny * bend * width);
            let stroke_path = |off: f32| {
                let mut pb = PathBuilder::new();
                pb.move_to(x - dx + nx * off, y - dy + ny * off);
                pb.quad_to(
                    ctrl.0 + nx * off,
                    ctrl.1 + ny * off,
                    x + dx + nx * off,
                    y + dy + ny * off,
                );
                pb.finish()
            };
            let mut stroke = Stroke {
                width,
                line_cap: LineCap::Round,
                ..Stroke::default()
            };
            if let Some(path) = stroke_path(0.0) {
                pixmap.stroke_path(
                    &path,
                    &solid(colour, 1.0),
                    &stroke,
                    Transform::identity(),
                    None,
                );
            }
            // Impasto ridges: a light edge on one side, a dark one on the other.
            stroke.width = (width * 0.3).max(0.8);
            let light = colour.map(|v| v + (1.0 - v) * 0.3);
            let dark = colour.map(|v| v * 0.72);
            for (off, c) in [(width * 0.22, light), (-width * 0.3, dark)] {
                if let Some(path) = stroke_path(off) {
                    pixmap.stroke_path(&path, &solid(c, 0.3), &stroke, Transform::identity(), None);
                }
            }
        }
    }

    // Canvas weave.
    let period = (side / 90.0).max(2.0);
    let mut out = Buf::from_rgb(&pixmap_to_rgb(&pixmap));
    for y in 0..h {
        for x in 0..w {
            let wx = (x as f32 * std::f32::consts::TAU / period).sin();
            let wy = (y as f32 * std::f32::consts::TAU / period).sin();
            let grain = hash01(x as i64, y as i64, seed) - 0.5;
            let f = 1.0 + 0.035 * wx * wy + 0.03 * grain;
            let p = &mut out.px[y * w + x];
            *p = p.map(|v| v * f);
        }
    }
    out.to_rgb()
}

fn solid(colour: [f32; 3], alpha: f32) -> Paint<'static> {
    let mut paint = Paint {
        anti_alias: true,
        ..Paint::default()
    };
    let c = colour.map(to_u8);
    paint.set_color(Color::from_rgba8(c[0], c[1], c[2], to_u8(alpha)));
    paint
}

fn fill_pixmap(pixmap: &mut Pixmap, buf: &Buf) {
    for (dst, p) in pixmap.data_mut().chunks_exact_mut(4).zip(&buf.px) {
        let c = p.map(to_u8);
        dst.copy_from_slice(&[c[0], c[1], c[2], 255]);
    }
}

// ---------------------------------------------------------------------------------------------
// Watercolour.

/// Soft washes: the drawing blurred and wobbled (colour bleeds past its edges), diluted towards
/// the paper, with pigment pooling into darker rims at edges, blotchy density, paper grain and
/// a ragged border of bare paper.
fn watercolour(image: &RgbImage, seed: u64) -> RgbImage {
    let src = Buf::from_rgb(image);
    let (w, h) = (src.w, src.h);
    let side = w.min(h) as f32;
    let soft = src.blur((side * 0.012).round().max(1.0) as usize);

    // Bleeding: sample the softened drawing through a smooth random displacement.
    let amp = side * 0.02;
    let scale = side * 0.08;
    let mut wash = Buf {
        w,
        h,
        px: Vec::with_capacity(w * h),
    };
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
            let dx = (value_noise(fx, fy, scale, seed ^ 0xA1) - 0.5) * 2.0 * amp;
            let dy = (value_noise(fx, fy, scale, seed ^ 0xB2) - 0.5) * 2.0 * amp;
            wash.px.push(soft.sample(fx + dx, fy + dy));
        }
    }

    // Rims: where the wash changes, pigment pools and dries darker.
    let colour_edge: Vec<f32> = {
        let mut e = vec![0.0f32; w * h];
        for c in 0..3 {
            let channel: Vec<f32> = wash.px.iter().map(|p| p[c]).collect();
            for (acc, g) in e.iter_mut().zip(sobel(&channel, w, h)) {
                *acc += (g[0] * g[0] + g[1] * g[1]).sqrt();
            }
        }
        e.iter().map(|&e| e / 3.0).collect()
    };
    // Normalise edges by the brush scale: at small sizes gradients per pixel are larger.
    let edge_gain = side * 0.08;

    let paper = [0.985f32, 0.975, 0.945];
    let mut out = Buf {
        w,
        h,
        px: Vec::with_capacity(w * h),
    };
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let (fx, fy) = (x as f32, y as f32);
            let blotch = value_noise(fx, fy, side * 0.15, seed ^ 0xC3);
            let grain = hash01(x as i64, y as i64, seed ^ 0xD4);
            let fine = value_noise(fx, fy, (side * 0.012).max(1.5), seed ^ 0xE5);
            let mut density = 0.62 + 0.22 * blotch + 0.1 * (fine - 0.5);
            // Flecks of bare paper.
            // Bare paper round an uneven edge, as if the wash stopped short of the border.
            let edge = (x.min(w - 1 - x).min(y).min(h - 1 - y)) as f32 / side;
            let margin = 0.025 + 0.035 * value_noise(fx + fy, fx - fy, side * 0.1, seed ^ 0xF6);
            density *= ((edge - margin) / 0.02 + 0.5).clamp(0.0, 1.0);
            let rim = (colour_edge[i] * edge_gain / 4.0).min(1.0);
            let pigment = wash.px[i];
            let mut p: [f32; 3] =
                std::array::from_fn(|c| paper[c] - density * (paper[c] - pigment[c]));
            p = p.map(|v| v * (1.0 - 0.4 * rim));
            p = p.map(|v| v * (1.0 - 0.025 * (grain - 0.5)));
            out.px.push(p);
        }
    }
    out.to_rgb()
}

// ---------------------------------------------------------------------------------------------
// Pixel art.

/// Colours of a pixel-art picture: enough that a small moon keeps its own.
const PIXEL_PALETTE: usize = 12;

/// Cells across the image: 16 to 24, from the seed.
fn pixel_cells(seed: u64) -> u32 {
    16 + (seed % 9) as u32
}

/// Averages square cells (about 16–24 across), quantises them to a small palette (k-means,
/// [`PIXEL_PALETTE`] colours) and scales back up with hard nearest-neighbour edges.
fn pixel_art(image: &RgbImage, seed: u64) -> RgbImage {
    let (w, h) = (image.width(), image.height());
    let side = w.min(h);
    let cell = (side as f32 / pixel_cells(seed) as f32).round().max(1.0) as u32;
    let cols = w.div_ceil(cell);
    let rows = h.div_ceil(cell);
    let mut cells = Vec::with_capacity((cols * rows) as usize);
    for r in 0..rows {
        for c in 0..cols {
            let mut acc = [0.0f32; 3];
            let mut n = 0.0;
            for y in r * cell..((r + 1) * cell).min(h) {
                for x in c * cell..((c + 1) * cell).min(w) {
                    let p = image.get_pixel(x, y).0;
                    (0..3).for_each(|i| acc[i] += p[i] as f32);
                    n += 1.0;
                }
            }
            cells.push(acc.map(|v| v / n));
        }
    }
    let palette = kmeans(&cells, PIXEL_PALETTE);
    let snapped: Vec<[u8; 3]> = cells
        .iter()
        .map(|c| {
            let best = palette
                .iter()
                .min_by(|a, b| dist2(a, c).total_cmp(&dist2(b, c)))
                .copied()
                .unwrap_or(*c);
            best.map(|v| v.round().clamp(0.0, 255.0) as u8)
        })
        .collect();
    RgbImage::from_fn(w, h, |x, y| {
        Rgb(snapped[((y / cell) * cols + x / cell) as usize])
    })
}

fn dist2(a: &[f32; 3], b: &[f32; 3]) -> f32 {
    (0..3).map(|i| (a[i] - b[i]).powi(2)).sum()
}

/// Deterministic k-means: farthest-point initialisation from the first point, a few Lloyd steps.
fn kmeans(points: &[[f32; 3]], k: usize) -> Vec<[f32; 3]> {
    let Some(&first) = points.first() else {
        return Vec::new();
    };
    let mut centres = vec![first];
    while centres.len() < k {
        let far = points
            .iter()
            .map(|p| {
                let d = centres
                    .iter()
                    .map(|c| dist2(c, p))
                    .fold(f32::INFINITY, f32::min);
                (d, *p)
            })
            .max_by(|a, b| a.0.total_cmp(&b.0));
        match far {
            Some((d, p)) if d > 64.0 => centres.push(p),
            _ => break,
        }
    }
    for _ in 0..6 {
        let mut sums = vec![([0.0f32; 3], 0usize); centres.len()];
        for p in points {
            let best = (0..centres.len())
                .min_by(|&a, &b| dist2(&centres[a], p).total_cmp(&dist2(&centres[b], p)))
                .unwrap_or(0);
            (0..3).for_each(|i| sums[best].0[i] += p[i]);
            sums[best].1 += 1;
        }
        for (c, (sum, n)) in centres.iter_mut().zip(sums) {
            if n > 0 {
                *c = sum.map(|v| v / n as f32);
            }
        }
    }
    centres
}

// ---------------------------------------------------------------------------------------------
// Pencil sketch.

/// Graphite on off-white paper: outlines from the luminance gradient and diagonal hatching whose
/// density follows the darkness of the source (cross-hatching in the darkest areas). No colour.
fn pencil_sketch(image: &RgbImage, seed: u64) -> RgbImage {
    let src = Buf::from_rgb(image);
    let (w, h) = (src.w, src.h);
    let side = w.min(h) as f32;
    let soft = src.blur((side * 0.006).round() as usize);
    let lum = soft.luminance();
    let tone = src
        .blur((side * 0.01).round().max(1.0) as usize)
        .luminance();
    let grad = sobel(&lum, w, h);
    // Colour edges too: red on green has little luminance contrast but is still outlined.
    let mut colour_edge = vec![0.0f32; w * h];
    for c in 0..3 {
        let channel: Vec<f32> = soft.px.iter().map(|p| p[c]).collect();
        for (acc, g) in colour_edge.iter_mut().zip(sobel(&channel, w, h)) {
            *acc = acc.max((g[0] * g[0] + g[1] * g[1]).sqrt());
        }
    }
    let period = (side / 30.0).max(4.0);
    let line_w = (period * 0.3).max(0.9);
    let edge_gain = side * 0.05;
    let paper = [0.96f32, 0.955, 0.935];
    let graphite = 0.22f32;
    let mut out = Buf {
        w,
        h,
        px: Vec::with_capacity(w * h),
    };
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let (fx, fy) = (x as f32, y as f32);
            let g = grad[i];
            let edge = ((g[0] * g[0] + g[1] * g[1]).sqrt().max(colour_edge[i] * 0.7) * edge_gain
                / 2.0)
                .min(1.0);
            let dark = 1.0 - tone[i];
            // Hatching lines: a wobble keeps them hand-drawn; two directions in dark areas.
            let wobble = (value_noise(fx, fy, period * 3.0, seed) - 0.5) * period * 0.6;
            let line = |u: f32| {
                let d = (u + wobble).rem_euclid(period);
                let d = d.min(period - d);
                (1.0 - d / line_w).clamp(0.0, 1.0)
            };
            let mut ink = 0.0f32;
            if dark > 0.3 {
                ink = ink.max(line(fx + fy) * ((dark - 0.3) * 1.5).min(0.6));
            }
            if dark > 0.6 {
                ink = ink.max(line(fx - fy + period * 0.5) * ((dark - 0.6) * 2.0).min(0.6));
            }
            ink = ink.max(edge * 0.9);
            let grain = hash01(x as i64, y as i64, seed ^ 0x77) - 0.5;
            ink = (ink * (1.0 + 0.3 * grain)).clamp(0.0, 1.0);
            let paper_grain = 1.0 + 0.02 * grain;
            out.px.push(std::array::from_fn(|c| {
                (paper[c] * paper_grain) * (1.0 - ink) + graphite * ink
            }));
        }
    }
    out.to_rgb()
}

/// A stable seed from a value's content (FNV-1a over its JSON form), for the random details of
/// its style and backdrop: the same content gives the same strokes at every size, and a changed
/// field gives new ones.
pub(crate) fn content_seed<T: serde::Serialize>(value: &T) -> u64 {
    let json = serde_json::to_vec(value).unwrap_or_default();
    json.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A test drawing: a yellow disc with a brown centre and a red square on blue.
    pub(crate) fn test_image(size: u32) -> RgbImage {
        let s = size as f32;
        RgbImage::from_fn(size, size, |x, y| {
            let (fx, fy) = (x as f32 / s, y as f32 / s);
            let d = ((fx - 0.35).powi(2) + (fy - 0.4).powi(2)).sqrt();
            if d < 0.08 {
                Rgb([120, 70, 30])
            } else if d < 0.22 {
                Rgb([245, 210, 30])
            } else if (0.6..0.9).contains(&fx) && (0.55..0.85).contains(&fy) {
                Rgb([220, 30, 30])
            } else if fy > 0.9 {
                Rgb([30, 30, 30])
            } else {
                Rgb([30, 60, 220])
            }
        })
    }

    /// Fraction of image columns at which some row changes colour: pixel art changes only at
    /// cell boundaries.
    pub(crate) fn change_columns(img: &RgbImage) -> f32 {
        let (w, h) = img.dimensions();
        let changing = (1..w)
            .filter(|&x| (0..h).any(|y| img.get_pixel(x, y) != img.get_pixel(x - 1, y)))
            .count();
        changing as f32 / w as f32
    }

    /// Mean per-pixel saturation (max − min channel), 0..255.
    pub(crate) fn mean_saturation(img: &RgbImage) -> f32 {
        let sum: f32 = img
            .pixels()
            .map(|p| {
                let (mx, mn) = (p.0.iter().max().unwrap(), p.0.iter().min().unwrap());
                (mx - mn) as f32
            })
            .sum();
        sum / (img.width() * img.height()) as f32
    }

    pub(crate) fn mean_luma(img: &RgbImage) -> f32 {
        let sum: f32 = img.pixels().map(|p| luma(p.0.map(|v| v as f32))).sum();
        sum / (img.width() * img.height()) as f32
    }

    /// Mean absolute difference between horizontally adjacent pixels: texture and edges.
    pub(crate) fn roughness(img: &RgbImage) -> f32 {
        let (w, h) = img.dimensions();
        let mut sum = 0.0f32;
        for y in 0..h {
            for x in 1..w {
                let (a, b) = (img.get_pixel(x, y).0, img.get_pixel(x - 1, y).0);
                sum += (0..3)
                    .map(|c| (a[c] as f32 - b[c] as f32).abs())
                    .sum::<f32>();
            }
        }
        sum / ((w - 1) * h * 3) as f32
    }

    fn mean_abs_diff(a: &RgbImage, b: &RgbImage) -> f32 {
        let sum: f32 = a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(&x, &y)| (x as f32 - y as f32).abs())
            .sum();
        sum / a.as_raw().len() as f32
    }

    #[test]
    fn styles_are_deterministic_and_keep_the_size() {
        for size in [32u32, 64] {
            let img = test_image(size);
            for style in Style::ALL {
                let a = apply_style(&img, style, 5);
                let b = apply_style(&img, style, 5);
                assert_eq!(a.dimensions(), (size, size), "{style:?}");
                assert_eq!(a.as_raw(), b.as_raw(), "{style:?} at {size}");
            }
        }
        // Non-square and degenerate sizes do not panic.
        let odd = RgbImage::from_pixel(70, 40, Rgb([10, 200, 30]));
        for style in Style::ALL {
            assert_eq!(apply_style(&odd, style, 1).dimensions(), (70, 40));
        }
        let tiny = RgbImage::new(3, 3);
        assert_eq!(apply_style(&tiny, Style::OilPainting, 1), tiny);
        assert_eq!(
            apply_style(&RgbImage::new(0, 0), Style::PixelArt, 1).len(),
            0
        );
    }

    #[test]
    fn flat_is_identity_and_seeds_matter() {
        let img = test_image(64);
        assert_eq!(apply_style(&img, Style::Flat, 9), img);
        for style in [Style::OilPainting, Style::Watercolour, Style::PencilSketch] {
            assert_ne!(
                apply_style(&img, style, 1).as_raw(),
                apply_style(&img, style, 2).as_raw(),
                "{style:?}"
            );
        }
    }

    /// Each style is told apart from every other by simple statistics, at the training size
    /// and at the output size.
    #[test]
    fn styles_are_distinguishable_by_statistics() {
        for size in [64u32, 256] {
            let img = test_image(size);
            let out: Vec<RgbImage> = Style::ALL
                .iter()
                .map(|&s| apply_style(&img, s, 3))
                .collect();
            let [flat, oil, water, pixel, sketch] = &out[..] else {
                unreachable!()
            };
            // Pixel art: hard edges only at cell boundaries, few colours.
            let max_cols = 25.0 / size as f32;
            assert!(
                change_columns(pixel) <= max_cols,
                "{}",
                change_columns(pixel)
            );
            for other in [oil, water, sketch] {
                assert!(
                    change_columns(other) > 0.9,
                    "{size}: {}",
                    change_columns(other)
                );
            }
            assert!(change_columns(pixel) < 0.6 * change_columns(flat));
            let distinct: std::collections::HashSet<_> = pixel.pixels().collect();
            assert!(distinct.len() <= PIXEL_PALETTE, "{}", distinct.len());
            // Sketch: grey and light.
            assert!(
                mean_saturation(sketch) < 12.0,
                "{}",
                mean_saturation(sketch)
            );
            for other in [flat, oil, water, pixel] {
                assert!(mean_saturation(other) > 60.0, "{}", mean_saturation(other));
            }
            assert!(mean_luma(sketch) > mean_luma(flat) + 40.0);
            // Watercolour: lighter than the drawing and smooth; oil: textured all over.
            assert!(
                mean_luma(water) > mean_luma(flat) + 20.0,
                "{}",
                mean_luma(water)
            );
            assert!(mean_luma(oil) < mean_luma(flat) + 12.0);
            assert!(mean_saturation(oil) > mean_saturation(water) + 25.0);
            assert!(mean_luma(water) > mean_luma(oil) + 25.0);
            assert!(roughness(oil) > 1.5 * roughness(flat), "{}", roughness(oil));
            assert!(roughness(water) > roughness(flat));
            // The painting keeps the colours where they were.
            assert!(
                mean_abs_diff(oil, flat) < 40.0,
                "{}",
                mean_abs_diff(oil, flat)
            );
            assert!(
                mean_abs_diff(pixel, flat) < 30.0,
                "{}",
                mean_abs_diff(pixel, flat)
            );
        }
    }
}
