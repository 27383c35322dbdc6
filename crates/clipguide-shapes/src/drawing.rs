//! How a scene is drawn, apart from what it shows: outline proportions, rotation, aspect,
//! continuous size, edge softness and which of two rasterisers draws it. Captions never depend
//! on any of it, so a model trained across drawings learns shapes rather than one renderer's
//! conventions.
//!
//! [`GroupDrawing::PLAIN`] with the supersampling rasteriser is the world's canonical look
//! ([`crate::render`]); [`Drawing::random`] varies everything a caption leaves open.

use image::RgbImage;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tiny_skia::{FillRule, Paint, PathBuilder, Pixmap, Rect, Transform};

use crate::render::{
    pattern_covers, place_group, render_supersampled, PlacedObject, DOT_RADIUS, PATTERN_PERIOD,
    STRIPE_DUTY,
};
use crate::scene::{
    BackgroundPattern, PatternKind, Placement, SceneSpec, Shape, Size, StripeDirection,
};

/// Which rasteriser draws a scene.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rasteriser {
    /// clipguide's own: 4×4 point samples per pixel, box-filtered, shapes as inside tests.
    Supersampled,
    /// tiny-skia: analytic anti-aliased paths, with its own outline conventions (a full-box
    /// square, an equilateral triangle centred on its centroid, even-odd rings).
    Vector,
}

/// The outline of one object group, within what its caption says.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupDrawing {
    /// Multiplies the size class's diameter (continuous size; small and large never meet).
    pub scale: f32,
    /// Width over height of the outline's box (circles become ellipses).
    pub aspect: f32,
    /// Radians; bounded per shape so a square stays a square and a cross a cross.
    pub rotation: f32,
    /// A ring's inner radius over its outer radius.
    pub ring_inner: f32,
    /// A cross arm's half-width over the cross's half-extent.
    pub cross_arm: f32,
    /// A star's inner radius over its outer radius.
    pub star_inner: f32,
    pub star_points: u8,
}

impl GroupDrawing {
    /// The canonical outline (the world before drawings varied).
    pub const PLAIN: GroupDrawing = GroupDrawing {
        scale: 1.0,
        aspect: 1.0,
        rotation: 0.0,
        ring_inner: 0.55,
        cross_arm: 0.3,
        star_inner: 0.45,
        star_points: 5,
    };

    /// A random outline for `shape`; `may_grow` lets a lone centred *large* object fill most of
    /// the image (as a photographed or hand-drawn object often does). A small one never grows:
    /// grown, it would be as big as a large one and the size words would mean nothing.
    pub fn random(shape: Shape, size: Size, may_grow: bool, rng: &mut ChaCha8Rng) -> GroupDrawing {
        let max_rotation: f32 = match shape {
            Shape::Circle | Shape::Ring => std::f32::consts::PI,
            Shape::Square => 0.2,
            Shape::Triangle => 0.35,
            Shape::Star => 0.6,
            Shape::Cross => 0.25,
        };
        let aspect_spread: f32 = match shape {
            Shape::Square | Shape::Cross => 0.08,
            _ => 0.22,
        };
        // One bool and one float are drawn either way, so the rest of the stream does not
        // depend on the size.
        let scale = if may_grow && rng.random_bool(0.35) && size == Size::Large {
            rng.random_range(1.2..=1.7)
        } else {
            rng.random_range(0.85..=1.15)
        };
        GroupDrawing {
            scale,
            aspect: (1.0 + rng.random_range(-aspect_spread..=aspect_spread)).max(0.5),
            rotation: rng.random_range(-max_rotation..=max_rotation),
            ring_inner: rng.random_range(0.4..=0.72),
            cross_arm: rng.random_range(0.2..=0.38),
            star_inner: rng.random_range(0.36..=0.56),
            star_points: if rng.random_bool(0.75) { 5 } else { 6 },
        }
    }

    /// Image offset (in radii) → unit frame: undo the rotation, then the aspect (the unit
    /// outline is stretched by `aspect` in x and `1/aspect` in y, keeping its area).
    pub(crate) fn unit_frame(self) -> [[f64; 2]; 2] {
        let (s, c) = (self.rotation as f64).sin_cos();
        let a = (self.aspect as f64).sqrt();
        // R(-θ) then diag(1/a, a).
        [[c / a, s / a], [-s * a, c * a]]
    }
}

/// Everything about how a scene is drawn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Drawing {
    pub rasteriser: Rasteriser,
    /// Anti-aliased edges (the supersampling rasteriser always averages; the vector one may
    /// draw hard, aliased edges, as many simple drawing programs do).
    #[serde(default = "anti_aliased")]
    pub anti_alias: bool,
    /// Gaussian blur applied after rasterising, as a fraction of the image side (0 = hard).
    pub softness: f32,
    /// One per object group of the scene, in order.
    pub groups: Vec<GroupDrawing>,
}

fn anti_aliased() -> bool {
    true
}

impl Drawing {
    /// The canonical look of `scene`.
    pub fn plain(scene: &SceneSpec) -> Drawing {
        Drawing {
            rasteriser: Rasteriser::Supersampled,
            anti_alias: true,
            softness: 0.0,
            groups: vec![GroupDrawing::PLAIN; scene.groups.len()],
        }
    }

    /// A random drawing of `scene`: either rasteriser (the vector one aliased a third of the
    /// time), a third of the time soft edges.
    pub fn random(scene: &SceneSpec, rng: &mut ChaCha8Rng) -> Drawing {
        let rasteriser = if rng.random_bool(0.5) {
            Rasteriser::Supersampled
        } else {
            Rasteriser::Vector
        };
        let anti_alias = rasteriser == Rasteriser::Supersampled || !rng.random_bool(0.33);
        let softness = if rng.random_bool(0.33) {
            rng.random_range(0.004..=0.014)
        } else {
            0.0
        };
        let lone_centre = scene.groups.len() == 1
            && scene.groups[0].count == 1
            && scene.groups[0].placement == Placement::Center;
        let groups = scene
            .groups
            .iter()
            .map(|g| GroupDrawing::random(g.shape, g.size, lone_centre, rng))
            .collect();
        Drawing {
            rasteriser,
            anti_alias,
            softness,
            groups,
        }
    }
}

/// A scene and how to draw it: what a training item of the varied world is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DrawnScene {
    pub scene: SceneSpec,
    pub drawing: Drawing,
}

/// Renders a drawn scene as a `size`×`size` image.
pub fn render_drawn(drawn: &DrawnScene, size: u32) -> RgbImage {
    let scene = &drawn.scene;
    let d = &drawn.drawing;
    let image = match d.rasteriser {
        Rasteriser::Supersampled => render_supersampled(scene, &d.groups, size),
        Rasteriser::Vector => render_vector(scene, &d.groups, d.anti_alias, size),
    };
    let sigma = d.softness * size as f32;
    if sigma > 0.05 && size > 0 {
        image::imageops::blur(&image, sigma)
    } else {
        image
    }
}

fn paint_of(rgb: [u8; 3], anti_alias: bool) -> Paint<'static> {
    let mut paint = Paint::default();
    paint.set_color_rgba8(rgb[0], rgb[1], rgb[2], 255);
    paint.anti_alias = anti_alias;
    paint
}

/// tiny-skia's drawing of the scene. Outline conventions differ on purpose from the
/// supersampling rasteriser's (see [`Rasteriser::Vector`]).
fn render_vector(
    scene: &SceneSpec,
    drawings: &[GroupDrawing],
    anti_alias: bool,
    size: u32,
) -> RgbImage {
    let Some(mut pixmap) = Pixmap::new(size.max(1), size.max(1)) else {
        return RgbImage::new(size, size);
    };
    if size == 0 {
        return RgbImage::new(0, 0);
    }
    let side = size as f32;
    let bg = scene.background.rgb();
    pixmap.fill(tiny_skia::Color::from_rgba8(bg[0], bg[1], bg[2], 255));
    if let Some(pattern) = &scene.pattern {
        draw_pattern(&mut pixmap, pattern, anti_alias, side);
    }
    for (group, drawing) in scene.groups.iter().zip(
        drawings
            .iter()
            .chain(std::iter::repeat(&GroupDrawing::PLAIN)),
    ) {
        for object in place_group(group, drawing) {
            draw_object(&mut pixmap, &object, anti_alias, side);
        }
    }
    let mut image = RgbImage::new(size, size);
    for (dst, src) in image.pixels_mut().zip(pixmap.pixels()) {
        // Every layer is opaque over an opaque fill, so premultiplied = straight colour.
        let c = src.demultiply();
        dst.0 = [c.red(), c.green(), c.blue()];
    }
    image
}

fn draw_pattern(pixmap: &mut Pixmap, pattern: &BackgroundPattern, anti_alias: bool, side: f32) {
    let paint = paint_of(pattern.colour.rgb(), anti_alias);
    let period = PATTERN_PERIOD as f32 * side;
    match pattern.kind {
        PatternKind::Striped => {
            let width = STRIPE_DUTY as f32 * period;
            let mut pb = PathBuilder::new();
            // Stripes across a square twice the image, rotated into place about the centre.
            let n = (2.0 * side / period).ceil() as i32 + 2;
            for k in -n..=n {
                if let Some(r) = Rect::from_xywh(-side, k as f32 * period, 3.0 * side, width) {
                    pb.push_rect(r);
                }
            }
            let Some(path) = pb.finish() else { return };
            let transform = match pattern.direction {
                StripeDirection::Horizontal => Transform::identity(),
                StripeDirection::Vertical => Transform::from_row(0.0, 1.0, 1.0, 0.0, 0.0, 0.0),
                StripeDirection::Diagonal => Transform::from_rotate(-45.0),
            };
            pixmap.fill_path(&path, &paint, FillRule::Winding, transform, None);
        }
        PatternKind::Dotted => {
            let mut pb = PathBuilder::new();
            let n = (1.0 / PATTERN_PERIOD).ceil() as i32;
            for i in 0..=n {
                for j in 0..=n {
                    let cx = (i as f32 + 0.5) * period;
                    let cy = (j as f32 + 0.5) * period;
                    pb.push_circle(cx, cy, DOT_RADIUS as f32 * period);
                }
            }
            if let Some(path) = pb.finish() {
                pixmap.fill_path(
                    &path,
                    &paint,
                    FillRule::Winding,
                    Transform::identity(),
                    None,
                );
            }
        }
    }
    // The supersampling rasteriser's pattern test is the reference for where a pattern lies;
    // the vector path only has to agree with it in coverage, which a test checks.
    let _ = pattern_covers;
}

fn draw_object(pixmap: &mut Pixmap, object: &PlacedObject, anti_alias: bool, side: f32) {
    let d = &object.drawing;
    let mut pb = PathBuilder::new();
    let mut rule = FillRule::Winding;
    match object.shape {
        Shape::Circle => pb.push_circle(0.0, 0.0, 1.0),
        Shape::Square => {
            if let Some(r) = Rect::from_ltrb(-0.78, -0.78, 0.78, 0.78) {
                pb.push_rect(r)
            }
        }
        Shape::Triangle => {
            // Equilateral, centred on its centroid (circumradius 1.15: it just fits the box).
            for k in 0..3 {
                let a = -std::f32::consts::FRAC_PI_2 + k as f32 * std::f32::consts::TAU / 3.0;
                let (x, y) = (1.15 * a.cos(), 1.15 * a.sin() + 0.15);
                if k == 0 {
                    pb.move_to(x, y)
                } else {
                    pb.line_to(x, y)
                }
            }
            pb.close();
        }
        Shape::Star => {
            let points = d.star_points.max(4) as usize;
            for k in 0..2 * points {
                let a =
                    -std::f32::consts::FRAC_PI_2 + k as f32 * std::f32::consts::PI / points as f32;
                let r = if k % 2 == 0 { 1.0 } else { d.star_inner };
                let (x, y) = (r * a.cos(), r * a.sin() + 0.05);
                if k == 0 {
                    pb.move_to(x, y)
                } else {
                    pb.line_to(x, y)
                }
            }
            pb.close();
        }
        Shape::Cross => {
            let (w, l) = (d.cross_arm, 0.95);
            for r in [Rect::from_ltrb(-w, -l, w, l), Rect::from_ltrb(-l, -w, l, w)]
                .into_iter()
                .flatten()
            {
                pb.push_rect(r);
            }
        }
        Shape::Ring => {
            pb.push_circle(0.0, 0.0, 1.0);
            pb.push_circle(0.0, 0.0, d.ring_inner);
            rule = FillRule::EvenOdd;
        }
    }
    let Some(path) = pb.finish() else { return };
    let a = d.aspect.sqrt();
    let r = object.radius as f32 * side;
    let transform = Transform::from_translate(
        object.centre[0] as f32 * side,
        object.centre[1] as f32 * side,
    )
    .pre_rotate(d.rotation.to_degrees())
    .pre_scale(r * a, r / a);
    pixmap.fill_path(
        &path,
        &paint_of(object.colour, anti_alias),
        rule,
        transform,
        None,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::palette::Colour;
    use crate::scene::{ObjectGroup, Size};
    use crate::{render, SceneConfig};
    use rand::SeedableRng;

    fn lone(shape: Shape) -> SceneSpec {
        SceneSpec {
            background: Colour::Blue,
            pattern: None,
            groups: vec![ObjectGroup {
                shape,
                colour: Colour::Red,
                size: Size::Large,
                count: 1,
                placement: Placement::Center,
                jitter: [0.0, 0.0],
            }],
        }
    }

    fn fraction(img: &RgbImage, colour: Colour) -> f64 {
        img.pixels()
            .filter(|p| Colour::nearest(p.0) == colour)
            .count() as f64
            / (img.width() * img.height()) as f64
    }

    #[test]
    fn the_plain_drawing_is_the_canonical_render() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..20 {
            let scene = SceneSpec::random(&mut rng);
            let drawn = DrawnScene {
                drawing: Drawing::plain(&scene),
                scene: scene.clone(),
            };
            assert_eq!(render_drawn(&drawn, 48), render(&scene, 48));
        }
    }

    #[test]
    fn both_rasterisers_cover_about_the_same_object_and_pattern_area() {
        for shape in Shape::ALL {
            let scene = lone(shape);
            let mut drawn = DrawnScene {
                drawing: Drawing::plain(&scene),
                scene,
            };
            let own = fraction(&render_drawn(&drawn, 96), Colour::Red);
            drawn.drawing.rasteriser = Rasteriser::Vector;
            let vector = fraction(&render_drawn(&drawn, 96), Colour::Red);
            assert!(own > 0.02 && vector > 0.02, "{shape:?}: {own} {vector}");
            // Different conventions, same object: within a third of each other.
            assert!(
                (own / vector - 1.0).abs() < 0.35,
                "{shape:?}: {own} vs {vector}"
            );
        }
        for (kind, direction) in [
            (PatternKind::Striped, StripeDirection::Horizontal),
            (PatternKind::Striped, StripeDirection::Vertical),
            (PatternKind::Striped, StripeDirection::Diagonal),
            (PatternKind::Dotted, StripeDirection::Horizontal),
        ] {
            let scene = SceneSpec {
                background: Colour::Blue,
                pattern: Some(BackgroundPattern {
                    kind,
                    colour: Colour::White,
                    direction,
                }),
                groups: vec![],
            };
            let own = fraction(&render(&scene, 64), Colour::White);
            let drawn = DrawnScene {
                drawing: Drawing {
                    rasteriser: Rasteriser::Vector,
                    anti_alias: true,
                    softness: 0.0,
                    groups: vec![],
                },
                scene,
            };
            let vector = fraction(&render_drawn(&drawn, 64), Colour::White);
            assert!(
                (own - vector).abs() < 0.05,
                "{kind:?} {direction:?}: {own} vs {vector}"
            );
        }
    }

    #[test]
    fn rotation_and_aspect_move_the_outline_but_keep_its_area() {
        let scene = lone(Shape::Square);
        let plain = render(&scene, 96);
        let mut drawing = Drawing::plain(&scene);
        drawing.groups[0].rotation = 0.2;
        drawing.groups[0].aspect = 1.08;
        let varied = render_drawn(
            &DrawnScene {
                scene: scene.clone(),
                drawing,
            },
            96,
        );
        assert_ne!(plain, varied);
        let (a, b) = (
            fraction(&plain, Colour::Red),
            fraction(&varied, Colour::Red),
        );
        assert!((a - b).abs() < 0.01, "{a} vs {b}");
    }

    #[test]
    fn random_drawings_keep_within_what_captions_allow() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut saw = (false, false, false, false);
        for _ in 0..400 {
            let scene = SceneSpec::random_with(&mut rng, &SceneConfig::default());
            let drawing = Drawing::random(&scene, &mut rng);
            assert_eq!(drawing.groups.len(), scene.groups.len());
            for (g, d) in scene.groups.iter().zip(&drawing.groups) {
                if d.scale > 1.15 {
                    // Only a lone centred object may grow past its size class.
                    assert!(scene.groups.len() == 1 && g.count == 1);
                    assert_eq!(g.placement, Placement::Center);
                    saw.0 = true;
                }
                // Drawn diameters of the two size classes never meet, grown or not.
                let drawn = g.size.diameter() * d.scale as f64;
                match g.size {
                    Size::Small => assert!(drawn <= 0.2 * 1.15 + 1e-6, "small drawn at {drawn}"),
                    Size::Large => assert!(drawn >= 0.36 * 0.85 - 1e-6, "large drawn at {drawn}"),
                }
                if g.shape == Shape::Square {
                    assert!(d.rotation.abs() <= 0.2 && (d.aspect - 1.0).abs() <= 0.08 + 1e-6);
                }
            }
            saw.1 |= drawing.rasteriser == Rasteriser::Vector;
            saw.2 |= drawing.softness > 0.0;
            // Only the vector rasteriser draws aliased edges.
            assert!(drawing.anti_alias || drawing.rasteriser == Rasteriser::Vector);
            saw.3 |= !drawing.anti_alias;
        }
        assert_eq!(saw, (true, true, true, true));
    }

    #[test]
    fn a_lone_centred_object_grows_only_when_large() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (mut small_max, mut large_max) = (0f32, 0f32);
        for _ in 0..200 {
            for shape in Shape::ALL {
                small_max =
                    small_max.max(GroupDrawing::random(shape, Size::Small, true, &mut rng).scale);
                large_max =
                    large_max.max(GroupDrawing::random(shape, Size::Large, true, &mut rng).scale);
            }
        }
        assert!(small_max <= 1.15, "a small object grew to {small_max}×");
        assert!(
            large_max > 1.5,
            "a lone large object should sometimes fill the image: {large_max}×"
        );
    }

    #[test]
    fn aliased_edges_have_only_the_two_colours() {
        let scene = lone(Shape::Star);
        let mut drawing = Drawing::plain(&scene);
        drawing.rasteriser = Rasteriser::Vector;
        let count_colours = |d: &Drawing| {
            let img = render_drawn(
                &DrawnScene {
                    scene: scene.clone(),
                    drawing: d.clone(),
                },
                64,
            );
            img.pixels()
                .map(|p| p.0)
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        };
        assert!(count_colours(&drawing) > 2, "anti-aliased edges blend");
        drawing.anti_alias = false;
        assert_eq!(count_colours(&drawing), 2);
    }

    #[test]
    fn drawing_is_reproducible() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let scene = SceneSpec::random(&mut rng);
        let drawing = Drawing::random(&scene, &mut rng);
        let drawn = DrawnScene { scene, drawing };
        assert_eq!(render_drawn(&drawn, 64), render_drawn(&drawn, 64));
    }
}
