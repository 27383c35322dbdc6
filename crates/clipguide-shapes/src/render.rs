//! Rasterises a `SceneSpec` into an antialiased sRGB image.
//! Each pixel averages a 4×4 grid of point samples, so edges get intermediate colours like a real photo.

use image::{Rgb, RgbImage};

use crate::drawing::GroupDrawing;

use crate::scene::{
    BackgroundPattern, ObjectGroup, PatternKind, Placement, SceneSpec, Shape, StripeDirection,
};

/// Samples per pixel side; 4×4 = 16 samples per pixel.
pub const SUPERSAMPLE: u32 = 4;
/// Period of stripes and dot grid, in fractions of the image side (8 pixels at 64²).
pub(crate) const PATTERN_PERIOD: f64 = 1.0 / 8.0;
/// Fraction of each stripe period painted in the pattern colour.
pub(crate) const STRIPE_DUTY: f64 = 0.375;
/// Dot radius as a fraction of the pattern period.
pub(crate) const DOT_RADIUS: f64 = 0.22;
/// Gap kept between objects and the image edge, in fractions of the image side.
const EDGE_MARGIN: f64 = 0.02;
/// Objects in a group are drawn a little smaller than a lone object of the same size,
/// and their centres sit this many item diameters apart, so three fit in about one cell.
const GROUP_ITEM_SCALE: f64 = 0.9;
const GROUP_SPACING: f64 = 1.25;

/// One object ready to rasterise, in image-fraction coordinates.
#[derive(Clone, Debug)]
pub(crate) struct PlacedObject {
    pub(crate) shape: Shape,
    pub(crate) colour: [u8; 3],
    pub(crate) centre: [f64; 2],
    pub(crate) radius: f64,
    /// How this object's outline is drawn (proportions, rotation, aspect).
    pub(crate) drawing: GroupDrawing,
    /// Image offset (in radii) → unit frame: the inverse of the drawing's rotation and aspect.
    to_unit: [[f64; 2]; 2],
    /// Polygon vertices in the unit frame (for triangle and star).
    polygon: Vec<[f64; 2]>,
}

impl PlacedObject {
    fn contains(&self, p: [f64; 2]) -> bool {
        let dx = (p[0] - self.centre[0]) / self.radius;
        let dy = (p[1] - self.centre[1]) / self.radius;
        let m = self.to_unit;
        let u = m[0][0] * dx + m[0][1] * dy;
        let v = m[1][0] * dx + m[1][1] * dy;
        if u.abs() > 1.0 || v.abs() > 1.0 {
            return false;
        }
        let d = &self.drawing;
        match self.shape {
            Shape::Circle => u * u + v * v <= 1.0,
            // Squares are shrunk so their visual weight matches a circle of the same size.
            Shape::Square => u.abs() <= 0.82 && v.abs() <= 0.82,
            Shape::Triangle | Shape::Star => point_in_polygon([u, v], &self.polygon),
            Shape::Cross => {
                let arm = d.cross_arm as f64;
                (u.abs() <= arm && v.abs() <= 0.95) || (v.abs() <= arm && u.abs() <= 0.95)
            }
            Shape::Ring => {
                let d2 = u * u + v * v;
                let inner = d.ring_inner as f64;
                (inner * inner..=1.0).contains(&d2)
            }
        }
    }
}

/// Unit-frame outline for polygon shapes; `y` grows downwards as in the image.
fn unit_polygon(shape: Shape, drawing: &GroupDrawing) -> Vec<[f64; 2]> {
    match shape {
        // Apex up, base slightly below centre so the triangle looks centred in its box.
        Shape::Triangle => vec![[0.0, -1.0], [1.0, 0.75], [-1.0, 0.75]],
        Shape::Star => {
            let points = drawing.star_points.max(4) as usize;
            (0..2 * points)
                .map(|k| {
                    let angle = -std::f64::consts::FRAC_PI_2
                        + k as f64 * std::f64::consts::PI / points as f64;
                    let r = if k % 2 == 0 {
                        1.0
                    } else {
                        drawing.star_inner as f64
                    };
                    // Shift down a little: a star's points reach higher than its lower legs.
                    [r * angle.cos(), r * angle.sin() + 0.08]
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// Even-odd rule point-in-polygon test.
fn point_in_polygon(p: [f64; 2], poly: &[[f64; 2]]) -> bool {
    let mut inside = false;
    let mut j = poly.len().wrapping_sub(1);
    for i in 0..poly.len() {
        let (a, b) = (poly[i], poly[j]);
        if (a[1] > p[1]) != (b[1] > p[1]) {
            let x = a[0] + (p[1] - a[1]) * (b[0] - a[0]) / (b[1] - a[1]);
            if p[0] < x {
                inside = !inside;
            }
        }
        j = i;
    }
    inside
}

/// Offsets of group members from the group centre, in units of the member spacing.
fn group_offsets(count: u8) -> Vec<[f64; 2]> {
    match count {
        0 => Vec::new(),
        1 => vec![[0.0, 0.0]],
        2 => vec![[-0.5, 0.0], [0.5, 0.0]],
        // Equilateral triangle: every pair is exactly one spacing apart.
        3 => vec![[-0.5, 0.289], [0.5, 0.289], [0.0, -0.577]],
        n => {
            let ring = 0.5 / (std::f64::consts::PI / n as f64).sin();
            (0..n)
                .map(|k| {
                    let a = k as f64 * std::f64::consts::TAU / n as f64;
                    [ring * a.cos(), ring * a.sin()]
                })
                .collect()
        }
    }
}

/// Centre of a placement's grid cell, in fractions of the image side.
pub fn cell_centre(placement: Placement) -> [f64; 2] {
    let (c, r) = placement.cell();
    [(c as f64 + 0.5) / 3.0, (r as f64 + 0.5) / 3.0]
}

/// Lays out a group's members: cell centre plus jitter, then shifted so the whole group
/// stays inside the image (large corner objects would otherwise be cut off by the edge).
pub(crate) fn place_group(group: &ObjectGroup, drawing: &GroupDrawing) -> Vec<PlacedObject> {
    let base = cell_centre(group.placement);
    let mut centre = [
        base[0] + group.jitter[0] as f64,
        base[1] + group.jitter[1] as f64,
    ];
    let item_diameter = if group.count > 1 {
        group.size.diameter() * GROUP_ITEM_SCALE
    } else {
        group.size.diameter()
    } * drawing.scale as f64;
    let radius = item_diameter / 2.0;
    let spacing = item_diameter * GROUP_SPACING;
    let offsets = group_offsets(group.count);
    for axis in 0..2 {
        let lo_extent = offsets.iter().map(|o| o[axis]).fold(0.0_f64, f64::min) * spacing;
        let hi_extent = offsets.iter().map(|o| o[axis]).fold(0.0_f64, f64::max) * spacing;
        let lo = EDGE_MARGIN + radius - lo_extent;
        let hi = 1.0 - EDGE_MARGIN - radius - hi_extent;
        centre[axis] = if lo > hi {
            0.5
        } else {
            centre[axis].clamp(lo, hi)
        };
    }
    let polygon = unit_polygon(group.shape, drawing);
    let to_unit = drawing.unit_frame();
    offsets
        .iter()
        .map(|o| PlacedObject {
            shape: group.shape,
            colour: group.colour.rgb(),
            centre: [centre[0] + o[0] * spacing, centre[1] + o[1] * spacing],
            radius,
            drawing: *drawing,
            to_unit,
            polygon: polygon.clone(),
        })
        .collect()
}

/// Whether the background pattern colour covers point `p` (image-fraction coordinates).
pub(crate) fn pattern_covers(pattern: &BackgroundPattern, p: [f64; 2]) -> bool {
    match pattern.kind {
        PatternKind::Striped => {
            let t = match pattern.direction {
                StripeDirection::Horizontal => p[1],
                StripeDirection::Vertical => p[0],
                StripeDirection::Diagonal => (p[0] + p[1]) * std::f64::consts::FRAC_1_SQRT_2,
            };
            (t / PATTERN_PERIOD).rem_euclid(1.0) < STRIPE_DUTY
        }
        PatternKind::Dotted => {
            let fx = (p[0] / PATTERN_PERIOD).rem_euclid(1.0) - 0.5;
            let fy = (p[1] / PATTERN_PERIOD).rem_euclid(1.0) - 0.5;
            fx * fx + fy * fy <= DOT_RADIUS * DOT_RADIUS
        }
    }
}

/// Renders `scene` as a `size`×`size` image with the plain drawing (the world's canonical look).
/// Later groups are drawn over earlier ones. A size of 0 gives an empty image rather than an
/// error: there is nothing to get wrong.
pub fn render(scene: &SceneSpec, size: u32) -> RgbImage {
    let drawings = vec![GroupDrawing::PLAIN; scene.groups.len()];
    render_supersampled(scene, &drawings, size)
}

/// The supersampling rasteriser: each pixel averages a 4×4 grid of point samples.
pub(crate) fn render_supersampled(
    scene: &SceneSpec,
    drawings: &[GroupDrawing],
    size: u32,
) -> RgbImage {
    let objects: Vec<PlacedObject> = scene
        .groups
        .iter()
        .zip(
            drawings
                .iter()
                .chain(std::iter::repeat(&GroupDrawing::PLAIN)),
        )
        .flat_map(|(g, d)| place_group(g, d))
        .collect();
    let background = scene.background.rgb();
    let samples = SUPERSAMPLE * SUPERSAMPLE;
    let side = size as f64;
    let mut image = RgbImage::new(size, size);
    for py in 0..size {
        for px in 0..size {
            let mut sum = [0u32; 3];
            for sy in 0..SUPERSAMPLE {
                for sx in 0..SUPERSAMPLE {
                    let p = [
                        (px as f64 + (sx as f64 + 0.5) / SUPERSAMPLE as f64) / side,
                        (py as f64 + (sy as f64 + 0.5) / SUPERSAMPLE as f64) / side,
                    ];
                    let colour = sample_colour(scene, &objects, background, p);
                    for (acc, &c) in sum.iter_mut().zip(colour.iter()) {
                        *acc += c as u32;
                    }
                }
            }
            // Box filter with rounding to nearest.
            let pixel = sum.map(|s| ((s + samples / 2) / samples) as u8);
            image.put_pixel(px, py, Rgb(pixel));
        }
    }
    image
}

fn sample_colour(
    scene: &SceneSpec,
    objects: &[PlacedObject],
    background: [u8; 3],
    p: [f64; 2],
) -> [u8; 3] {
    if let Some(o) = objects.iter().rev().find(|o| o.contains(p)) {
        return o.colour;
    }
    match &scene.pattern {
        Some(pattern) if pattern_covers(pattern, p) => pattern.colour.rgb(),
        _ => background,
    }
}

/// Pixel-space bounding boxes `[x0, y0, x1, y1)` of every object a group renders (by
/// [`render`]): the tightest box holding every pixel the object covers at least one sample of,
/// as COCO boxes are drawn, not the circle the object is inscribed in.
pub fn object_boxes(group: &ObjectGroup, size: u32) -> Vec<[u32; 4]> {
    let side = size as f64;
    place_group(group, &GroupDrawing::PLAIN)
        .iter()
        .filter_map(|o| {
            // Only pixels inside the object's circumscribed square can hold one of its samples.
            let to_px = |v: f64| (v * side).clamp(0.0, side);
            let (x0, y0) = (
                to_px(o.centre[0] - o.radius).floor() as u32,
                to_px(o.centre[1] - o.radius).floor() as u32,
            );
            let (x1, y1) = (
                to_px(o.centre[0] + o.radius).ceil() as u32,
                to_px(o.centre[1] + o.radius).ceil() as u32,
            );
            let mut b = [u32::MAX, u32::MAX, 0, 0];
            for py in y0..y1 {
                for px in x0..x1 {
                    let covered = (0..SUPERSAMPLE * SUPERSAMPLE).any(|s| {
                        let (sx, sy) = (s % SUPERSAMPLE, s / SUPERSAMPLE);
                        o.contains([
                            (px as f64 + (sx as f64 + 0.5) / SUPERSAMPLE as f64) / side,
                            (py as f64 + (sy as f64 + 0.5) / SUPERSAMPLE as f64) / side,
                        ])
                    });
                    if covered {
                        b = [
                            b[0].min(px),
                            b[1].min(py),
                            b[2].max(px + 1),
                            b[3].max(py + 1),
                        ];
                    }
                }
            }
            (b[0] < b[2]).then_some(b)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::palette::Colour;
    use crate::scene::Size;

    fn one_object(shape: Shape, placement: Placement, size: Size) -> SceneSpec {
        SceneSpec {
            background: Colour::Blue,
            pattern: None,
            groups: vec![ObjectGroup {
                shape,
                colour: Colour::Red,
                size,
                count: 1,
                placement,
                jitter: [0.0, 0.0],
            }],
        }
    }

    #[test]
    fn object_boxes_are_the_tight_boxes_of_the_drawn_pixels() {
        for shape in Shape::ALL {
            for (placement, size) in [
                (Placement::Center, Size::Large),
                (Placement::TopLeft, Size::Small),
                (Placement::Right, Size::Large),
            ] {
                let scene = one_object(shape, placement, size);
                let img = render(&scene, 96);
                // Every pixel that is not pure background has some of the object in it.
                let mut b = [u32::MAX, u32::MAX, 0, 0];
                for (x, y, p) in img.enumerate_pixels() {
                    if p.0 != Colour::Blue.rgb() {
                        b = [b[0].min(x), b[1].min(y), b[2].max(x + 1), b[3].max(y + 1)];
                    }
                }
                let boxes = object_boxes(&scene.groups[0], 96);
                assert_eq!(boxes, vec![b], "{shape:?} {placement:?} {size:?}");
            }
        }
    }

    fn colour_count(img: &RgbImage, colour: Colour) -> usize {
        img.pixels()
            .filter(|p| Colour::nearest(p.0) == colour)
            .count()
    }

    #[test]
    fn polygon_test_matches_known_points() {
        let square = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]];
        assert!(point_in_polygon([0.5, 0.5], &square));
        assert!(!point_in_polygon([1.5, 0.5], &square));
        let star = unit_polygon(Shape::Star, &GroupDrawing::PLAIN);
        assert!(point_in_polygon([0.0, 0.0], &star), "star centre");
        assert!(point_in_polygon([0.0, -0.9], &star), "top point");
        // Between two points, outside the inner radius.
        assert!(!point_in_polygon([0.6, -0.6], &star));
    }

    #[test]
    fn group_members_do_not_overlap_and_stay_inside() {
        for count in 1..=3u8 {
            for placement in Placement::ALL {
                let group = ObjectGroup {
                    shape: Shape::Circle,
                    colour: Colour::Red,
                    size: Size::Small,
                    count,
                    placement,
                    jitter: [0.02, -0.02],
                };
                let objs = place_group(&group, &GroupDrawing::PLAIN);
                assert_eq!(objs.len(), count as usize);
                for (i, a) in objs.iter().enumerate() {
                    for axis in 0..2 {
                        assert!(a.centre[axis] - a.radius >= EDGE_MARGIN - 1e-9);
                        assert!(a.centre[axis] + a.radius <= 1.0 - EDGE_MARGIN + 1e-9);
                    }
                    for b in &objs[i + 1..] {
                        let d = ((a.centre[0] - b.centre[0]).powi(2)
                            + (a.centre[1] - b.centre[1]).powi(2))
                        .sqrt();
                        assert!(d > a.radius + b.radius, "{placement:?} x{count} overlap");
                    }
                }
            }
        }
    }

    #[test]
    fn every_shape_has_distinct_area() {
        // Shapes must differ in filled area; otherwise they could be silently drawn identically.
        let mut areas: Vec<(Shape, usize)> = Shape::ALL
            .iter()
            .map(|&s| {
                let img = render(&one_object(s, Placement::Center, Size::Large), 128);
                (s, colour_count(&img, Colour::Red))
            })
            .collect();
        areas.sort_by_key(|a| a.1);
        for w in areas.windows(2) {
            assert!(w[1].1 > w[0].1 + 20, "{areas:?}");
        }
        // Circle of diameter 0.36·128 ≈ 46 px: area π·23² ≈ 1642.
        let circle = areas.iter().find(|a| a.0 == Shape::Circle).unwrap().1 as f64;
        assert!((circle - 1642.0).abs() < 60.0, "circle area {circle}");
    }

    #[test]
    fn ring_has_a_hole_and_cross_has_empty_corners() {
        let img = render(&one_object(Shape::Ring, Placement::Center, Size::Large), 64);
        assert_eq!(Colour::nearest(img.get_pixel(32, 32).0), Colour::Blue);
        let img = render(
            &one_object(Shape::Cross, Placement::Center, Size::Large),
            64,
        );
        assert_eq!(Colour::nearest(img.get_pixel(32, 32).0), Colour::Red);
        // Quarter-way to the corner of the bounding box lies outside both arms.
        assert_eq!(
            Colour::nearest(img.get_pixel(32 + 8, 32 + 8).0),
            Colour::Blue
        );
    }

    #[test]
    fn zero_size_renders_empty_image() {
        let img = render(&one_object(Shape::Star, Placement::Top, Size::Small), 0);
        assert_eq!(img.dimensions(), (0, 0));
    }

    #[test]
    fn stripes_and_dots_cover_expected_fractions() {
        let mut scene = one_object(Shape::Circle, Placement::Center, Size::Small);
        scene.groups.clear();
        scene.pattern = Some(BackgroundPattern {
            kind: PatternKind::Striped,
            colour: Colour::White,
            direction: StripeDirection::Horizontal,
        });
        let img = render(&scene, 64);
        let frac = colour_count(&img, Colour::White) as f64 / (64.0 * 64.0);
        // Duty cycle 3/8.
        assert!((frac - 0.375).abs() < 0.02, "stripe fraction {frac}");
        scene.pattern = Some(BackgroundPattern {
            kind: PatternKind::Dotted,
            colour: Colour::White,
            direction: StripeDirection::Horizontal,
        });
        let img = render(&scene, 128);
        let frac = colour_count(&img, Colour::White) as f64 / (128.0 * 128.0);
        // One dot of radius 0.22 periods per period²: π·0.22² ≈ 0.152.
        assert!((frac - 0.152).abs() < 0.03, "dot fraction {frac}");
    }
}
