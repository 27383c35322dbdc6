//! A colour-structure test for "is there a sunflower in this image", independent of the
//! renderer: a brown or dark-orange blob ringed by yellow petals on most sides.
//!
//! Why: generated images for sunflower prompts need a check that does not trust the model that
//! guided them. The test knows nothing of how [`crate::render_picture`] draws a sunflower; it
//! only asks for the colour layout every sunflower has.

use image::RgbImage;

/// Where a sunflower was found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SunflowerFound {
    /// Centre of the brown disc, in pixels.
    pub centre: [f32; 2],
    /// Radius of a disc with the blob's area, in pixels.
    pub centre_radius: f32,
    /// Fraction of angular sectors around the centre that are mostly yellow petals.
    pub petal_coverage: f32,
}

/// Angular sectors of the petal annulus.
const SECTORS: usize = 36;
/// A sector counts as petal when at least this share of its annulus pixels is yellow.
const SECTOR_YELLOW: f32 = 0.3;
/// A sunflower needs petals in at least this share of sectors.
const MIN_COVERAGE: f32 = 0.6;
/// The petal annulus, in multiples of the centre radius.
const ANNULUS: (f32, f32) = (1.2, 2.5);

fn is_yellow(p: [u8; 3]) -> bool {
    let [r, g, b] = p.map(|v| v as i32);
    r > 170 && g > 130 && b < 140 && r - b > 90 && g * 10 > r * 6 && g <= r + 20
}

fn is_centre(p: [u8; 3]) -> bool {
    let [r, g, b] = p.map(|v| v as i32);
    let luma = (299 * r + 587 * g + 114 * b) / 1000;
    (25..150).contains(&luma) && r > b + 20 && r >= g && g >= b - 10 && g * 100 < r * 85
}

/// Looks for a sunflower: every compact brown blob (4-connected) is tested for a ring of yellow
/// petals between 1.2 and 2.5 times its radius covering at least 60 % of the angles. The best
/// ring wins. Blobs under 2 px radius, or too ragged to be a disc, are skipped.
pub fn find_sunflower(image: &RgbImage) -> Option<SunflowerFound> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    if w == 0 || h == 0 {
        return None;
    }
    let centre_mask: Vec<bool> = image.pixels().map(|p| is_centre(p.0)).collect();
    let yellow: Vec<bool> = image.pixels().map(|p| is_yellow(p.0)).collect();
    let mut seen = vec![false; w * h];
    let mut best: Option<SunflowerFound> = None;
    let mut stack = Vec::new();
    for start in 0..w * h {
        if !centre_mask[start] || seen[start] {
            continue;
        }
        // Flood-fill one blob.
        let mut pixels: Vec<usize> = Vec::new();
        seen[start] = true;
        stack.push(start);
        while let Some(i) = stack.pop() {
            pixels.push(i);
            let (x, y) = (i % w, i / w);
            let mut visit = |j: usize| {
                if centre_mask[j] && !seen[j] {
                    seen[j] = true;
                    stack.push(j);
                }
            };
            if x > 0 {
                visit(i - 1);
            }
            if x + 1 < w {
                visit(i + 1);
            }
            if y > 0 {
                visit(i - w);
            }
            if y + 1 < h {
                visit(i + w);
            }
        }
        let area = pixels.len() as f32;
        let radius = (area / std::f32::consts::PI).sqrt();
        if radius < 2.0 {
            continue;
        }
        let (sx, sy) = pixels.iter().fold((0.0f32, 0.0f32), |(sx, sy), &i| {
            (sx + (i % w) as f32 + 0.5, sy + (i / w) as f32 + 0.5)
        });
        let (cx, cy) = (sx / area, sy / area);
        // Compact: nearly all of the blob lies within 1.6 radii of its centroid.
        let far = pixels
            .iter()
            .filter(|&&i| {
                let dx = (i % w) as f32 + 0.5 - cx;
                let dy = (i / w) as f32 + 0.5 - cy;
                dx * dx + dy * dy > (1.6 * radius).powi(2)
            })
            .count();
        if far as f32 > 0.05 * area {
            continue;
        }
        let coverage = petal_coverage(&yellow, w, h, (cx, cy), radius);
        if coverage >= MIN_COVERAGE && best.is_none_or(|b| coverage > b.petal_coverage) {
            best = Some(SunflowerFound {
                centre: [cx, cy],
                centre_radius: radius,
                petal_coverage: coverage,
            });
        }
    }
    best
}

/// Share of angular sectors whose part of the annulus is at least [`SECTOR_YELLOW`] yellow.
/// Pixels outside the image count as not yellow, so a flower cut by the border loses sectors.
fn petal_coverage(yellow: &[bool], w: usize, h: usize, (cx, cy): (f32, f32), r: f32) -> f32 {
    let (r0, r1) = (ANNULUS.0 * r, ANNULUS.1 * r);
    let mut total = [0u32; SECTORS];
    let mut hits = [0u32; SECTORS];
    let reach = r1.ceil() as i64 + 1;
    for dy in -reach..=reach {
        for dx in -reach..=reach {
            let (px, py) = (
                (cx - 0.5).round() as i64 + dx,
                (cy - 0.5).round() as i64 + dy,
            );
            let (fx, fy) = (px as f32 + 0.5 - cx, py as f32 + 0.5 - cy);
            let d = (fx * fx + fy * fy).sqrt();
            if d < r0 || d > r1 {
                continue;
            }
            let angle = fy.atan2(fx) + std::f32::consts::PI;
            let sector = ((angle / std::f32::consts::TAU * SECTORS as f32) as usize) % SECTORS;
            total[sector] += 1;
            let inside = px >= 0 && py >= 0 && (px as usize) < w && (py as usize) < h;
            if inside && yellow[py as usize * w + px as usize] {
                hits[sector] += 1;
            }
        }
    }
    let petal = (0..SECTORS)
        .filter(|&s| total[s] > 0 && hits[s] as f32 >= SECTOR_YELLOW * total[s] as f32)
        .count();
    petal as f32 / SECTORS as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::palette::Colour;
    use crate::picture::{render_picture, Backdrop, ObjectKind, PictureObject, PictureSpec};
    use crate::scene::{Placement, Size};
    use crate::style::{pixmap_to_rgb, Style};
    use image::Rgb;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use tiny_skia::{Color, FillRule, Paint, PathBuilder, Pixmap, Transform};

    fn picture(kind: ObjectKind, backdrop: Backdrop, style: Style, size: Size) -> PictureSpec {
        PictureSpec {
            backdrop,
            objects: vec![PictureObject {
                kind,
                placement: Placement::Center,
                size,
                scale: 1.0,
                jitter: [0.02, -0.01],
                aspect: 1.0,
                tilt: 4.0,
                petals: 17,
                variant: 0,
                tint: [5, -5, 3],
            }],
            style,
        }
    }

    #[test]
    fn finds_rendered_sunflowers_in_most_styles() {
        let blue = Backdrop::Plain(Colour::Blue);
        for style in [
            Style::Flat,
            Style::OilPainting,
            Style::Watercolour,
            Style::PixelArt,
        ] {
            let img = render_picture(
                &picture(ObjectKind::Sunflower, blue, style, Size::Large),
                256,
            );
            let found = find_sunflower(&img).unwrap_or_else(|| panic!("{style:?}"));
            // The head is in the upper middle of the picture.
            assert!(
                (found.centre[0] - 128.0).abs() < 40.0,
                "{style:?} {found:?}"
            );
            assert!(found.centre[1] < 128.0, "{style:?} {found:?}");
            assert!(found.centre_radius > 8.0, "{found:?}");
        }
        // Also a small one in a landscape, flat.
        let meadow = Backdrop::Landscape {
            sky: crate::picture::Sky::Day,
            ground: crate::picture::Ground::Grass,
        };
        let mut spec = picture(ObjectKind::Sunflower, meadow, Style::Flat, Size::Small);
        spec.objects[0].placement = Placement::Bottom;
        assert!(find_sunflower(&render_picture(&spec, 256)).is_some());
    }

    fn fill_circle(pm: &mut Pixmap, x: f32, y: f32, r: f32, c: [u8; 3]) {
        let mut paint = Paint {
            anti_alias: true,
            ..Paint::default()
        };
        paint.set_color(Color::from_rgba8(c[0], c[1], c[2], 255));
        if let Some(path) = PathBuilder::from_circle(x, y, r) {
            pm.fill_path(
                &path,
                &paint,
                FillRule::Winding,
                Transform::identity(),
                None,
            );
        }
    }

    fn canvas(bg: [u8; 3]) -> Pixmap {
        let mut pm = Pixmap::new(128, 128).unwrap();
        pm.fill(Color::from_rgba8(bg[0], bg[1], bg[2], 255));
        pm
    }

    /// A sunflower drawn differently from the renderer: round petals as discs, a bigger dark
    /// orange centre, off-centre, on green.
    #[test]
    fn finds_a_hand_drawn_sunflower() {
        let mut pm = canvas([40, 120, 60]);
        let (x, y) = (50.0, 70.0);
        for k in 0..12 {
            let a = std::f32::consts::TAU * k as f32 / 12.0;
            fill_circle(
                &mut pm,
                x + a.cos() * 26.0,
                y + a.sin() * 26.0,
                9.0,
                [240, 200, 40],
            );
        }
        fill_circle(&mut pm, x, y, 20.0, [255, 215, 0]);
        fill_circle(&mut pm, x, y, 15.0, [160, 80, 20]);
        let found = find_sunflower(&pixmap_to_rgb(&pm)).expect("hand-drawn sunflower");
        assert!((found.centre[0] - x).abs() < 2.0 && (found.centre[1] - y).abs() < 2.0);
        assert!((found.centre_radius - 15.0).abs() < 2.0, "{found:?}");
        assert!(found.petal_coverage > 0.9);
    }

    #[test]
    fn rejects_things_that_are_not_sunflowers() {
        let bg = [30, 60, 220];
        // A yellow disc; a brown disc; a yellow ring round a green centre.
        let mut yellow = canvas(bg);
        fill_circle(&mut yellow, 64.0, 64.0, 40.0, [245, 210, 30]);
        let mut brown = canvas(bg);
        fill_circle(&mut brown, 64.0, 64.0, 20.0, [120, 70, 30]);
        let mut green_centre = canvas(bg);
        fill_circle(&mut green_centre, 64.0, 64.0, 40.0, [245, 210, 30]);
        fill_circle(&mut green_centre, 64.0, 64.0, 16.0, [40, 150, 40]);
        // A brown centre with petals on one side only.
        let mut half = canvas(bg);
        for k in 0..5 {
            let a = std::f32::consts::PI * k as f32 / 5.0;
            fill_circle(
                &mut half,
                64.0 + a.cos() * 26.0,
                64.0 + a.sin() * 26.0,
                8.0,
                [245, 210, 30],
            );
        }
        fill_circle(&mut half, 64.0, 64.0, 15.0, [120, 70, 30]);
        for (name, pm) in [
            ("yellow disc", yellow),
            ("brown disc", brown),
            ("green centre", green_centre),
            ("half ring", half),
        ] {
            assert_eq!(find_sunflower(&pixmap_to_rgb(&pm)), None, "{name}");
        }
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let noise = RgbImage::from_fn(128, 128, |_, _| Rgb(std::array::from_fn(|_| rng.random())));
        assert_eq!(find_sunflower(&noise), None, "noise");
        let blue = Backdrop::Plain(Colour::Blue);
        for kind in [
            ObjectKind::Tulip,
            ObjectKind::Daisy,
            ObjectKind::Sun,
            ObjectKind::House,
        ] {
            let img = render_picture(&picture(kind, blue, Style::Flat, Size::Large), 128);
            assert_eq!(find_sunflower(&img), None, "{kind:?}");
        }
        assert_eq!(find_sunflower(&RgbImage::new(0, 0)), None);
    }
}
