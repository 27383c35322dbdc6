//! Draws a [`PictureSpec`] with tiny-skia, then applies its style.
//!
//! Things are drawn in a local frame one unit tall (ground things stand on y = 0 and reach up to
//! y = −1; sky things are centred on the origin), mapped to the image by a translate, rotate and
//! uniform scale; proportions come from the object's `aspect`, so nothing is ever squashed.
//! Shapes are bold and few so each thing stays recognisable at 64×64.

use image::RgbImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tiny_skia::{
    Color, FillRule, LineCap, Paint, Path, PathBuilder, Pixmap, Rect, Stroke, Transform,
};

use super::{Backdrop, Ground, ObjectKind, PictureObject, PictureSpec, Sky, HORIZON};
use crate::scene::Size;
use crate::style::{apply_style, pixmap_to_rgb};

/// Renders `spec` at `size`×`size` pixels. The same spec and size always give the same bytes.
pub fn render_picture(spec: &PictureSpec, size: u32) -> RgbImage {
    let Some(mut pixmap) = Pixmap::new(size, size) else {
        return RgbImage::new(size, size);
    };
    let side = size as f32;
    let seed = spec.seed();
    draw_backdrop(&mut pixmap, spec.backdrop, side, seed);

    let mut order: Vec<&PictureObject> = spec.objects.iter().collect();
    // Mountains at the back, then the sky, then ground things from far (high) to near (low).
    order.sort_by(|a, b| {
        draw_rank(a)
            .total_cmp(&draw_rank(b))
            .then(a.placement.index().cmp(&b.placement.index()))
    });
    for object in order {
        draw_object(&mut pixmap, object, spec.backdrop, side);
    }
    apply_style(&pixmap_to_rgb(&pixmap), spec.style, seed)
}

fn draw_rank(o: &PictureObject) -> f32 {
    match o.kind {
        ObjectKind::Mountain => -2.0,
        k if k.is_sky() => -1.0,
        _ => o.placement.cell().1 as f32 + o.jitter[1],
    }
}

/// Height of the thing in fractions of the image side.
/// On a plain background a thing is the whole subject, so sky things are drawn as large as
/// ground things there.
fn height(o: &PictureObject, backdrop: Backdrop) -> f32 {
    let plain = matches!(backdrop, Backdrop::Plain(_));
    let base = match (o.kind, o.size) {
        (_, Size::Small) if plain => 0.36,
        (_, Size::Large) if plain => 0.6,
        (ObjectKind::Mountain, Size::Small) => 0.24,
        (ObjectKind::Mountain, Size::Large) => 0.36,
        (k, Size::Small) if k.is_sky() => 0.2,
        (k, Size::Large) if k.is_sky() => 0.3,
        (_, Size::Small) => 0.34,
        (_, Size::Large) => 0.52,
    };
    base * o.scale
}

/// Half the width of the drawing in local units (one unit = its height).
fn half_width(o: &PictureObject) -> f32 {
    let a = o.aspect;
    match o.kind {
        ObjectKind::Sunflower => 0.38,
        ObjectKind::Tulip | ObjectKind::Daisy => 0.32,
        ObjectKind::Tree => 0.4 * a,
        ObjectKind::House => 0.5 * a,
        ObjectKind::Pagoda => 0.31 * a,
        ObjectKind::ToriiGate => 0.62 * a,
        ObjectKind::Mountain => 0.85 * a,
        ObjectKind::Sun => 0.5,
        ObjectKind::Moon => 0.45,
        ObjectKind::Cloud => 0.55 * a,
    }
}

/// The transform from the object's local frame to pixels.
fn frame(o: &PictureObject, backdrop: Backdrop, side: f32) -> Transform {
    let (col, row) = o.placement.cell();
    let mut cx = (col as f32 + 0.5) / 3.0 + o.jitter[0];
    let cy = (row as f32 + 0.5) / 3.0 + o.jitter[1];
    let h = height(o, backdrop);
    // Keep the whole thing inside the picture (a mountain may run off the side).
    if o.kind != ObjectKind::Mountain {
        let half = half_width(o) * h + 0.01;
        cx = if half < 0.5 {
            cx.clamp(half, 1.0 - half)
        } else {
            0.5
        };
    }
    // Local origin: the centre for sky things, the foot for everything else.
    let (x, y) = if o.kind.is_sky() {
        (cx, cy)
    } else {
        match backdrop {
            Backdrop::Plain(_) => (cx, cy + h / 2.0),
            Backdrop::Landscape { .. } if o.kind == ObjectKind::Mountain => (cx, HORIZON + 0.03),
            Backdrop::Landscape { .. } => (cx, (cy + h / 2.0).clamp(HORIZON + 0.05, 0.97)),
        }
    };
    Transform::from_translate(x * side, y * side)
        .pre_rotate(o.tilt)
        .pre_scale(h * side, h * side)
}

// ---------------------------------------------------------------------------------------------
// Painting helpers.

type Rgb = [u8; 3];

fn paint(c: Rgb, alpha: f32) -> Paint<'static> {
    let mut p = Paint {
        anti_alias: true,
        ..Paint::default()
    };
    p.set_color(Color::from_rgba8(
        c[0],
        c[1],
        c[2],
        (alpha.clamp(0.0, 1.0) * 255.0).round() as u8,
    ));
    p
}

fn fill(pm: &mut Pixmap, path: Option<Path>, c: Rgb, t: Transform) {
    fill_alpha(pm, path, c, 1.0, t);
}

fn fill_alpha(pm: &mut Pixmap, path: Option<Path>, c: Rgb, alpha: f32, t: Transform) {
    if let Some(path) = path {
        pm.fill_path(&path, &paint(c, alpha), FillRule::Winding, t, None);
    }
}

fn stroke(pm: &mut Pixmap, path: Option<Path>, c: Rgb, alpha: f32, width: f32, t: Transform) {
    if let Some(path) = path {
        let s = Stroke {
            width,
            line_cap: LineCap::Round,
            ..Stroke::default()
        };
        pm.stroke_path(&path, &paint(c, alpha), &s, t, None);
    }
}

fn circle(x: f32, y: f32, r: f32) -> Option<Path> {
    PathBuilder::from_circle(x, y, r)
}

fn rect(x0: f32, y0: f32, x1: f32, y1: f32) -> Option<Path> {
    Rect::from_ltrb(x0.min(x1), y0.min(y1), x0.max(x1), y0.max(y1)).map(PathBuilder::from_rect)
}

fn polygon(points: &[(f32, f32)]) -> Option<Path> {
    let mut pb = PathBuilder::new();
    let (&(x0, y0), rest) = points.split_first()?;
    pb.move_to(x0, y0);
    for &(x, y) in rest {
        pb.line_to(x, y);
    }
    pb.close();
    pb.finish()
}

fn line(a: (f32, f32), b: (f32, f32)) -> Option<Path> {
    let mut pb = PathBuilder::new();
    pb.move_to(a.0, a.1);
    pb.line_to(b.0, b.1);
    pb.finish()
}

/// An ellipse centred at (x, y) with half-axes (rx, ry), rotated by `deg` degrees.
fn ellipse(
    pm: &mut Pixmap,
    (x, y): (f32, f32),
    (rx, ry): (f32, f32),
    deg: f32,
    c: Rgb,
    t: Transform,
) {
    let path = Rect::from_ltrb(-rx, -ry, rx, ry).and_then(PathBuilder::from_oval);
    fill(pm, path, c, t.pre_translate(x, y).pre_rotate(deg));
}

fn tint(c: Rgb, t: [i8; 3]) -> Rgb {
    std::array::from_fn(|i| (c[i] as i16 + t[i] as i16).clamp(0, 255) as u8)
}

fn mix(a: Rgb, b: Rgb, t: f32) -> Rgb {
    std::array::from_fn(|i| (a[i] as f32 + (b[i] as f32 - a[i] as f32) * t).round() as u8)
}

// ---------------------------------------------------------------------------------------------
// Backdrops.

fn draw_backdrop(pm: &mut Pixmap, backdrop: Backdrop, side: f32, seed: u64) {
    let (sky, ground) = match backdrop {
        Backdrop::Plain(colour) => {
            let c = colour.rgb();
            pm.fill(Color::from_rgba8(c[0], c[1], c[2], 255));
            return;
        }
        Backdrop::Landscape { sky, ground } => (sky, ground),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xBAC0_D509);
    let horizon = HORIZON * side;
    // Vertical gradients, row by row.
    let (w, h) = (pm.width() as usize, pm.height() as usize);
    let sky_stops: &[Rgb] = match sky {
        Sky::Day => &[[70, 130, 220], [170, 210, 245]],
        Sky::Sunset => &[[85, 60, 140], [230, 100, 90], [250, 190, 90]],
        Sky::Night => &[[8, 12, 40], [32, 42, 95]],
        Sky::Aurora => &[[5, 8, 28], [22, 34, 75]],
    };
    let ground_stops: &[Rgb] = match ground {
        Ground::Grass => &[[95, 175, 70], [45, 125, 45]],
        Ground::Snow => &[[215, 225, 242], [245, 247, 252]],
        Ground::Ice => &[[170, 215, 232], [135, 190, 218]],
        Ground::Sea => &[[45, 105, 185], [18, 55, 135]],
    };
    let data = pm.data_mut();
    for y in 0..h {
        let fy = y as f32 + 0.5;
        let c = if fy < horizon {
            gradient(sky_stops, fy / horizon)
        } else {
            gradient(ground_stops, (fy - horizon) / (side - horizon).max(1.0))
        };
        for x in 0..w {
            let i = (y * w + x) * 4;
            data[i..i + 4].copy_from_slice(&[c[0], c[1], c[2], 255]);
        }
    }
    let id = Transform::identity();
    if sky.is_night() {
        for _ in 0..(side as usize / 4).clamp(12, 60) {
            let x = rng.random_range(0.0..side);
            let y = rng.random_range(0.0..horizon * 0.95);
            let r = side * rng.random_range(0.003..0.007);
            fill(pm, circle(x, y, r.max(0.5)), [250, 250, 235], id);
        }
    }
    if sky == Sky::Aurora {
        for (band, colour) in [
            (0usize, [60u8, 235, 140]),
            (1, [170, 80, 230]),
            (2, [80, 240, 190]),
        ] {
            let y0 = horizon * rng.random_range(0.2..0.55) + band as f32 * side * 0.03;
            let amp = side * rng.random_range(0.04..0.09);
            let freq = rng.random_range(1.0..2.2);
            let phase = rng.random_range(0.0..std::f32::consts::TAU);
            let mut pb = PathBuilder::new();
            for k in 0..=32 {
                let x = side * k as f32 / 32.0;
                let y = y0 + amp * (std::f32::consts::TAU * freq * x / side + phase).sin();
                if k == 0 {
                    pb.move_to(x, y);
                } else {
                    pb.line_to(x, y);
                }
            }
            let path = pb.finish();
            let alpha = if band == 1 { 0.25 } else { 0.3 };
            // Soft curtain: a wide faint stroke, a narrower brighter core, and rays hanging down.
            stroke(pm, path.clone(), colour, alpha * 0.6, side * 0.11, id);
            stroke(pm, path.clone(), colour, alpha, side * 0.05, id);
            stroke(
                pm,
                path,
                mix(colour, [255, 255, 255], 0.4),
                alpha,
                side * 0.015,
                id,
            );
        }
    }
    let ground_path = |t: f32| t * side;
    match ground {
        Ground::Grass => {
            for _ in 0..(side as usize / 3).clamp(16, 90) {
                let x = rng.random_range(0.0..side);
                let y = rng.random_range(horizon + side * 0.02..side);
                let len = side * 0.025 * (0.5 + (y - horizon) / (side - horizon));
                let lean = rng.random_range(-0.4..0.4) * len;
                stroke(
                    pm,
                    line((x, y), (x + lean, y - len)),
                    [35, 105, 35],
                    0.8,
                    (side * 0.006).max(0.7),
                    id,
                );
            }
        }
        Ground::Snow => {
            for _ in 0..5 {
                let x = rng.random_range(0.0..side);
                let y = rng.random_range(horizon + side * 0.04..side);
                let rx = side * rng.random_range(0.08..0.2);
                ellipse(pm, (x, y), (rx, rx * 0.18), 0.0, [200, 212, 235], id);
            }
        }
        Ground::Ice => {
            for _ in 0..7 {
                let mut x = rng.random_range(0.0..side);
                let mut y = rng.random_range(horizon + side * 0.03..side);
                let mut pb = PathBuilder::new();
                pb.move_to(x, y);
                for _ in 0..4 {
                    x += side * rng.random_range(-0.08..0.08);
                    y += side * rng.random_range(-0.03..0.04);
                    pb.line_to(x, y.clamp(horizon + 1.0, side));
                }
                let path = pb.finish();
                stroke(
                    pm,
                    path.clone(),
                    [245, 252, 255],
                    0.9,
                    (side * 0.008).max(0.8),
                    id,
                );
                stroke(pm, path, [95, 150, 185], 0.8, (side * 0.004).max(0.5), id);
            }
        }
        Ground::Sea => {
            for _ in 0..(side as usize / 8).clamp(8, 30) {
                let x = rng.random_range(0.0..side);
                let y = rng.random_range(horizon + side * 0.03..side);
                let len = side * 0.05 * (0.6 + (y - horizon) / (side - horizon));
                let mut pb = PathBuilder::new();
                pb.move_to(x - len, y);
                pb.quad_to(x - len / 2.0, y - len * 0.35, x, y);
                pb.quad_to(x + len / 2.0, y - len * 0.35, x + len, y);
                stroke(
                    pm,
                    pb.finish(),
                    [150, 195, 240],
                    0.9,
                    (side * 0.007).max(0.7),
                    id,
                );
            }
            // A bright line where the sea meets the sky.
            stroke(
                pm,
                line((0.0, ground_path(HORIZON)), (side, ground_path(HORIZON))),
                [120, 170, 225],
                0.8,
                (side * 0.006).max(0.6),
                id,
            );
        }
    }
}

fn gradient(stops: &[Rgb], t: f32) -> Rgb {
    let t = t.clamp(0.0, 1.0) * (stops.len() - 1) as f32;
    let i = (t.floor() as usize).min(stops.len() - 2);
    mix(stops[i], stops[i + 1], t - i as f32)
}

// ---------------------------------------------------------------------------------------------
// Objects.

fn draw_object(pm: &mut Pixmap, o: &PictureObject, backdrop: Backdrop, side: f32) {
    let t = frame(o, backdrop, side);
    let sky = match backdrop {
        Backdrop::Landscape { sky, .. } => Some(sky),
        Backdrop::Plain(_) => None,
    };
    match o.kind {
        ObjectKind::Sunflower => sunflower(pm, o, t),
        ObjectKind::Tulip => tulip(pm, o, t),
        ObjectKind::Daisy => daisy(pm, o, t),
        ObjectKind::Tree => tree(pm, o, t),
        ObjectKind::House => house(pm, o, t),
        ObjectKind::Pagoda => pagoda(pm, o, t),
        ObjectKind::ToriiGate => torii(pm, o, t),
        ObjectKind::Mountain => mountain(pm, o, t),
        ObjectKind::Sun => sun(pm, o, t, sky),
        ObjectKind::Moon => moon(pm, o, t),
        ObjectKind::Cloud => cloud(pm, o, t, sky),
    }
}

const STEM: Rgb = [40, 135, 45];
const LEAF: Rgb = [55, 150, 50];

fn stem_and_leaves(pm: &mut Pixmap, o: &PictureObject, t: Transform, top: f32) {
    stroke(
        pm,
        line((0.0, 0.0), (0.0, top)),
        tint(STEM, o.tint),
        1.0,
        0.07,
        t,
    );
    let leaf = tint(LEAF, o.tint);
    ellipse(pm, (-0.1, top * 0.45), (0.12, 0.045), -30.0, leaf, t);
    ellipse(pm, (0.1, top * 0.65), (0.12, 0.045), 30.0, leaf, t);
}

/// Petal ring: `n` pointed petals from radius `r0` to `r1` around (cx, cy), `offset` in petal steps.
fn petals(
    pm: &mut Pixmap,
    (cx, cy): (f32, f32),
    (n, offset): (u8, f32),
    (r0, r1): (f32, f32),
    width: f32,
    c: Rgb,
    t: Transform,
) {
    let n = n.max(3);
    for k in 0..n {
        let a = std::f32::consts::TAU * (k as f32 + offset) / n as f32;
        let (dx, dy) = (a.cos(), a.sin());
        let (nx, ny) = (-dy, dx);
        let mid = (r0 + r1) * 0.5;
        let mut pb = PathBuilder::new();
        pb.move_to(cx + dx * r0, cy + dy * r0);
        pb.quad_to(
            cx + dx * mid + nx * width,
            cy + dy * mid + ny * width,
            cx + dx * r1,
            cy + dy * r1,
        );
        pb.quad_to(
            cx + dx * mid - nx * width,
            cy + dy * mid - ny * width,
            cx + dx * r0,
            cy + dy * r0,
        );
        pb.close();
        fill(pm, pb.finish(), c, t);
    }
}

fn sunflower(pm: &mut Pixmap, o: &PictureObject, t: Transform) {
    let head = (0.0, -0.63);
    stem_and_leaves(pm, o, t, head.1);
    let r_out = 0.36;
    let r_centre = 0.15 * o.aspect;
    let n = o.petals.max(8);
    let w = std::f32::consts::PI * r_out / n as f32 * 0.9;
    petals(
        pm,
        head,
        (n, 0.5),
        (r_centre * 0.8, r_out * 0.95),
        w,
        tint([235, 150, 15], o.tint),
        t,
    );
    petals(
        pm,
        head,
        (n, 0.0),
        (r_centre * 0.8, r_out),
        w,
        tint([250, 205, 25], o.tint),
        t,
    );
    fill(pm, circle(head.0, head.1, r_centre), [105, 58, 20], t);
    fill(pm, circle(head.0, head.1, r_centre * 0.6), [70, 38, 15], t);
}

fn tulip(pm: &mut Pixmap, o: &PictureObject, t: Transform) {
    stroke(
        pm,
        line((0.0, 0.0), (0.0, -0.62)),
        tint(STEM, o.tint),
        1.0,
        0.06,
        t,
    );
    let leaf = tint(LEAF, o.tint);
    for s in [-1.0f32, 1.0] {
        let mut pb = PathBuilder::new();
        pb.move_to(0.0, -0.02);
        pb.quad_to(s * 0.2, -0.15, s * 0.16, -0.5);
        pb.quad_to(s * 0.05, -0.25, 0.0, -0.02);
        pb.close();
        fill(pm, pb.finish(), leaf, t);
    }
    let colour = match o.variant % 4 {
        0 => [220, 30, 45],
        1 => [240, 110, 170],
        2 => [140, 45, 170],
        _ => [245, 125, 30],
    };
    let colour = tint(colour, o.tint);
    let mut pb = PathBuilder::new();
    pb.move_to(-0.17, -0.93);
    pb.quad_to(-0.21, -0.6, 0.0, -0.6);
    pb.quad_to(0.21, -0.6, 0.17, -0.93);
    pb.line_to(0.085, -0.8);
    pb.line_to(0.0, -0.98);
    pb.line_to(-0.085, -0.8);
    pb.close();
    fill(pm, pb.finish(), colour, t);
    // The middle petal's edges.
    let dark = mix(colour, [0, 0, 0], 0.3);
    let mut pb = PathBuilder::new();
    pb.move_to(-0.085, -0.8);
    pb.quad_to(-0.07, -0.65, 0.0, -0.63);
    pb.quad_to(0.07, -0.65, 0.085, -0.8);
    stroke(pm, pb.finish(), dark, 0.8, 0.02, t);
}

fn daisy(pm: &mut Pixmap, o: &PictureObject, t: Transform) {
    let head = (0.0, -0.7);
    stem_and_leaves(pm, o, t, head.1);
    let n = o.petals.max(8);
    let r_centre = 0.085 * o.aspect;
    // Rounded white petals with a faint grey edge so they read on light grounds.
    for k in 0..n {
        let a = 360.0 * k as f32 / n as f32;
        let rad = a.to_radians();
        let (x, y) = (head.0 + rad.cos() * 0.18, head.1 + rad.sin() * 0.18);
        ellipse(pm, (x, y), (0.13, 0.05), a, [190, 190, 195], t);
        ellipse(
            pm,
            (x, y),
            (0.115, 0.038),
            a,
            tint([252, 252, 250], [o.tint[0] / 4; 3]),
            t,
        );
    }
    fill(
        pm,
        circle(head.0, head.1, r_centre),
        tint([245, 195, 30], o.tint),
        t,
    );
}

fn tree(pm: &mut Pixmap, o: &PictureObject, t: Transform) {
    let a = o.aspect;
    let trunk = tint([110, 70, 35], o.tint);
    if o.variant.is_multiple_of(2) {
        fill(pm, rect(-0.06, 0.0, 0.06, -0.45), trunk, t);
        let leaf = tint([45, 140, 50], o.tint);
        let shade = mix(leaf, [0, 40, 0], 0.35);
        for (x, y, r, c) in [
            (-0.17, -0.5, 0.2, shade),
            (0.17, -0.5, 0.2, shade),
            (0.0, -0.47, 0.2, shade),
            (-0.12, -0.62, 0.22, leaf),
            (0.12, -0.62, 0.22, leaf),
            (0.0, -0.76, 0.24, leaf),
        ] {
            fill(pm, circle(x * a, y, r), c, t);
        }
    } else {
        fill(pm, rect(-0.05, 0.0, 0.05, -0.2), trunk, t);
        let leaf = tint([25, 110, 60], o.tint);
        for (k, (y0, y1, hw)) in [
            (-0.15, -0.55, 0.34),
            (-0.38, -0.78, 0.27),
            (-0.6, -1.0, 0.2),
        ]
        .into_iter()
        .enumerate()
        {
            let c = mix(leaf, [0, 0, 0], 0.1 * (2 - k) as f32);
            fill(pm, polygon(&[(-hw * a, y0), (hw * a, y0), (0.0, y1)]), c, t);
        }
    }
}

fn house(pm: &mut Pixmap, o: &PictureObject, t: Transform) {
    let a = o.aspect;
    let walls = match o.variant % 3 {
        0 => [240, 220, 170],
        1 => [170, 200, 230],
        _ => [235, 185, 170],
    };
    let roof = match (o.variant / 2) % 3 {
        0 => [185, 45, 40],
        1 => [75, 75, 90],
        _ => [130, 70, 40],
    };
    let (hw, wall_top) = (0.4 * a, -0.55);
    fill(pm, rect(-hw, 0.0, hw, wall_top), tint(walls, o.tint), t);
    fill(
        pm,
        polygon(&[
            (-hw - 0.08, wall_top + 0.02),
            (hw + 0.08, wall_top + 0.02),
            (0.0, -1.0),
        ]),
        tint(roof, o.tint),
        t,
    );
    fill(pm, rect(-0.26 * a, 0.0, -0.06 * a, -0.34), [110, 65, 35], t);
    let (wx0, wx1, wy0, wy1) = (0.06 * a, 0.28 * a, -0.22, -0.42);
    fill(pm, rect(wx0, wy0, wx1, wy1), [175, 215, 240], t);
    let frame = [90, 70, 55];
    stroke(
        pm,
        line(((wx0 + wx1) / 2.0, wy0), ((wx0 + wx1) / 2.0, wy1)),
        frame,
        1.0,
        0.025,
        t,
    );
    stroke(
        pm,
        line((wx0, (wy0 + wy1) / 2.0), (wx1, (wy0 + wy1) / 2.0)),
        frame,
        1.0,
        0.025,
        t,
    );
}

fn pagoda(pm: &mut Pixmap, o: &PictureObject, t: Transform) {
    let a = o.aspect * 0.85;
    let body = tint(
        if o.variant.is_multiple_of(2) {
            [175, 65, 40]
        } else {
            [120, 70, 40]
        },
        o.tint,
    );
    let roof = tint([55, 50, 58], o.tint);
    fill(
        pm,
        rect(-0.26 * a, 0.0, 0.26 * a, -0.03),
        [150, 150, 150],
        t,
    );
    let tiers = 5;
    let tier_h = 0.8 / tiers as f32;
    for i in 0..tiers {
        let y0 = -0.03 - i as f32 * tier_h;
        let bw = (0.3 - 0.035 * i as f32) * a;
        let rw = (0.72 - 0.08 * i as f32) * a;
        let yb = y0 - tier_h * 0.5;
        let yt = y0 - tier_h * 0.98;
        fill(pm, rect(-bw / 2.0, y0, bw / 2.0, yb + 0.01), body, t);
        let lift = tier_h * 0.35;
        let mut pb = PathBuilder::new();
        pb.move_to(-rw / 2.0, yb - lift);
        pb.quad_to(-rw * 0.3, yb + 0.01, -bw * 0.55, yb + 0.01);
        pb.line_to(bw * 0.55, yb + 0.01);
        pb.quad_to(rw * 0.3, yb + 0.01, rw / 2.0, yb - lift);
        pb.quad_to(rw * 0.25, yb - tier_h * 0.3, rw * 0.16, yt);
        pb.line_to(-rw * 0.16, yt);
        pb.quad_to(-rw * 0.25, yb - tier_h * 0.3, -rw / 2.0, yb - lift);
        pb.close();
        fill(pm, pb.finish(), roof, t);
    }
    // The spire with its rings.
    let top = -0.03 - 0.8;
    stroke(
        pm,
        line((0.0, top + 0.02), (0.0, -1.0)),
        [70, 60, 50],
        1.0,
        0.025,
        t,
    );
    for k in 0..3 {
        let y = top - 0.04 - 0.045 * k as f32;
        stroke(
            pm,
            line((-0.035, y), (0.035, y)),
            [70, 60, 50],
            1.0,
            0.018,
            t,
        );
    }
}

fn torii(pm: &mut Pixmap, o: &PictureObject, t: Transform) {
    let a = o.aspect;
    let red = tint([225, 65, 35], o.tint);
    let black = [30, 25, 25];
    let px = 0.3 * a;
    for s in [-1.0f32, 1.0] {
        let x = s * px;
        fill(
            pm,
            polygon(&[
                (x - 0.045, 0.0),
                (x + 0.045, 0.0),
                (x + 0.035, -0.86),
                (x - 0.035, -0.86),
            ]),
            red,
            t,
        );
        fill(pm, rect(x - 0.05, 0.0, x + 0.05, -0.06), black, t);
    }
    // Nuki (lower beam), strut, shimaki and the curved kasagi on top.
    fill(pm, rect(-0.43 * a, -0.6, 0.43 * a, -0.66), red, t);
    fill(pm, rect(-0.03, -0.66, 0.03, -0.8), red, t);
    fill(pm, rect(-0.47 * a, -0.78, 0.47 * a, -0.84), red, t);
    let mut pb = PathBuilder::new();
    pb.move_to(-0.58 * a, -0.97);
    pb.quad_to(0.0, -0.82, 0.58 * a, -0.97);
    pb.line_to(0.52 * a, -0.86);
    pb.quad_to(0.0, -0.76, -0.52 * a, -0.86);
    pb.close();
    fill(pm, pb.finish(), red, t);
    let mut pb = PathBuilder::new();
    pb.move_to(-0.6 * a, -0.985);
    pb.quad_to(0.0, -0.84, 0.6 * a, -0.985);
    stroke(pm, pb.finish(), black, 1.0, 0.04, t);
}

fn mountain(pm: &mut Pixmap, o: &PictureObject, t: Transform) {
    let hw = 0.85 * o.aspect;
    let rock = tint(
        if o.variant.is_multiple_of(2) {
            [105, 115, 140]
        } else {
            [120, 105, 90]
        },
        o.tint,
    );
    fill(pm, polygon(&[(-hw, 0.0), (hw, 0.0), (0.0, -1.0)]), rock, t);
    fill_alpha(
        pm,
        polygon(&[(0.0, -1.0), (hw, 0.0), (0.15 * hw, 0.0)]),
        [20, 20, 40],
        0.25,
        t,
    );
    let cap = 0.32;
    let e = hw * cap;
    fill(
        pm,
        polygon(&[
            (0.0, -1.0),
            (e, -1.0 + cap),
            (e * 0.45, -1.0 + cap * 0.82),
            (e * 0.1, -1.0 + cap * 1.05),
            (-e * 0.35, -1.0 + cap * 0.8),
            (-e, -1.0 + cap),
        ]),
        [245, 246, 250],
        t,
    );
}

fn sun(pm: &mut Pixmap, o: &PictureObject, t: Transform, sky: Option<Sky>) {
    let colour = if sky == Some(Sky::Sunset) {
        [250, 120, 40]
    } else {
        [252, 205, 35]
    };
    let colour = tint(colour, o.tint);
    let n = o.petals.max(6);
    for k in 0..n {
        let a = std::f32::consts::TAU * k as f32 / n as f32;
        let (dx, dy) = (a.cos(), a.sin());
        let (nx, ny) = (-dy * 0.05, dx * 0.05);
        fill(
            pm,
            polygon(&[
                (dx * 0.34 + nx, dy * 0.34 + ny),
                (dx * 0.5, dy * 0.5),
                (dx * 0.34 - nx, dy * 0.34 - ny),
            ]),
            colour,
            t,
        );
    }
    fill(pm, circle(0.0, 0.0, 0.3), colour, t);
}

fn moon(pm: &mut Pixmap, o: &PictureObject, t: Transform) {
    // Outer half circle and inner half ellipse: a crescent facing left or right.
    let facing = if o.variant.is_multiple_of(2) {
        1.0
    } else {
        -1.0
    };
    // A fat crescent, so a small moon survives pixel art and the 64×64 training size.
    let (r, k) = (0.45, 0.1);
    let steps = 24;
    let mut points = Vec::with_capacity(2 * steps + 2);
    for i in 0..=steps {
        let a = -std::f32::consts::FRAC_PI_2 + std::f32::consts::PI * i as f32 / steps as f32;
        points.push((-facing * r * a.cos(), r * a.sin()));
    }
    for i in (0..=steps).rev() {
        let a = -std::f32::consts::FRAC_PI_2 + std::f32::consts::PI * i as f32 / steps as f32;
        points.push((-facing * r * k * a.cos(), r * a.sin()));
    }
    fill(pm, polygon(&points), tint([245, 235, 175], o.tint), t);
}

fn cloud(pm: &mut Pixmap, o: &PictureObject, t: Transform, sky: Option<Sky>) {
    let colour = match sky {
        Some(Sky::Sunset) => [250, 215, 205],
        Some(Sky::Night | Sky::Aurora) => [150, 155, 178],
        _ => [250, 250, 252],
    };
    let colour = tint(colour, [o.tint[0] / 3; 3]);
    let shade = mix(colour, [120, 130, 160], 0.25);
    let a = o.aspect * 1.1;
    fill(pm, rect(-0.36 * a, 0.02, 0.36 * a, 0.2), shade, t);
    for (x, y, r) in [(-0.36, 0.1, 0.11), (0.36, 0.1, 0.11)] {
        fill(pm, circle(x * a, y, r), shade, t);
    }
    for (x, y, r) in [(-0.22, 0.02, 0.18), (0.0, -0.08, 0.25), (0.22, 0.0, 0.19)] {
        fill(pm, circle(x * a, y, r), colour, t);
    }
    fill(pm, rect(-0.34 * a, 0.02, 0.34 * a, 0.16), colour, t);
    for x in [-0.34 * a, 0.34 * a] {
        fill(pm, circle(x, 0.09, 0.07), colour, t);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::palette::Colour;
    use crate::picture::{Backdrop, PictureSpec};
    use crate::scene::Placement;
    use crate::style::Style;
    use rand::SeedableRng;

    pub(crate) fn single(kind: ObjectKind, backdrop: Backdrop, style: Style) -> PictureSpec {
        PictureSpec {
            backdrop,
            objects: vec![PictureObject {
                kind,
                placement: Placement::Center,
                size: Size::Large,
                scale: 1.0,
                jitter: [0.0, 0.0],
                aspect: 1.0,
                tilt: 0.0,
                petals: 18,
                variant: 0,
                tint: [0, 0, 0],
            }],
            style,
        }
    }

    #[test]
    fn rendering_is_deterministic_and_sized() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        for _ in 0..12 {
            let s = PictureSpec::random(&mut rng);
            let a = render_picture(&s, 64);
            assert_eq!(a.dimensions(), (64, 64));
            assert_eq!(a.as_raw(), render_picture(&s, 64).as_raw(), "{s:?}");
        }
        assert_eq!(render_picture(&PictureSpec::random(&mut rng), 0).len(), 0);
    }

    fn count(img: &RgbImage, pred: impl Fn([u8; 3]) -> bool) -> usize {
        img.pixels().filter(|p| pred(p.0)).count()
    }

    #[test]
    fn things_have_their_colours() {
        let blue = Backdrop::Plain(Colour::Blue);
        let yellow = |p: [u8; 3]| p[0] > 200 && p[1] > 170 && p[2] < 90;
        let img = render_picture(&single(ObjectKind::Sunflower, blue, Style::Flat), 64);
        assert!(count(&img, yellow) > 150, "{}", count(&img, yellow));
        let vermilion = |p: [u8; 3]| p[0] > 190 && p[1] < 110 && p[2] < 80;
        let img = render_picture(&single(ObjectKind::ToriiGate, blue, Style::Flat), 64);
        assert!(count(&img, vermilion) > 100);
        let img = render_picture(&single(ObjectKind::Tree, blue, Style::Flat), 64);
        assert_eq!(count(&img, yellow), 0);
        // Nothing is drawn outside the picture's own colours: a tree has no vermilion.
        assert_eq!(count(&img, vermilion), 0);
        let night = Backdrop::Landscape {
            sky: Sky::Night,
            ground: Ground::Snow,
        };
        let img = render_picture(&single(ObjectKind::House, night, Style::Flat), 64);
        // Dark sky above the horizon, white snow in the bottom corners.
        let top = img.get_pixel(2, 2).0;
        let bottom = img.get_pixel(2, 61).0;
        assert!(top.iter().all(|&v| v < 80), "{top:?}");
        assert!(bottom.iter().all(|&v| v > 200), "{bottom:?}");
    }

    #[test]
    fn every_kind_draws_something_on_every_backdrop_it_fits() {
        let backdrops = [
            Backdrop::Plain(Colour::Purple),
            Backdrop::Landscape {
                sky: Sky::Day,
                ground: Ground::Grass,
            },
            Backdrop::Landscape {
                sky: Sky::Aurora,
                ground: Ground::Ice,
            },
        ];
        for backdrop in backdrops {
            let empty = {
                let mut s = single(ObjectKind::Cloud, backdrop, Style::Flat);
                s.objects.clear();
                render_picture(&s, 64)
            };
            for kind in ObjectKind::ALL {
                let mut s = single(kind, backdrop, Style::Flat);
                let Some(&p) = Placement::ALL
                    .iter()
                    .find(|&&p| crate::picture::fits(kind, backdrop, p))
                else {
                    continue;
                };
                s.objects[0].placement = p;
                let img = render_picture(&s, 64);
                let changed = img
                    .pixels()
                    .zip(empty.pixels())
                    .filter(|(a, b)| a != b)
                    .count();
                assert!(
                    changed > 64 * 64 / 40,
                    "{kind:?} on {backdrop:?}: {changed}"
                );
            }
        }
    }
}
