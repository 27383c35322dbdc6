//! Renderer behaviour through the public API: objects land in their cell, backgrounds frame the
//! image, counted objects are separable, and edges are antialiased.

use clipguide_shapes::palette::Colour;
use clipguide_shapes::{render, ObjectGroup, Placement, SceneSpec, Shape, Size, SUPERSAMPLE};
use image::RgbImage;

fn scene(shape: Shape, size: Size, count: u8, placement: Placement, jitter: [f32; 2]) -> SceneSpec {
    SceneSpec {
        background: Colour::Blue,
        pattern: None,
        groups: vec![ObjectGroup {
            shape,
            colour: Colour::Yellow,
            size,
            count,
            placement,
            jitter,
        }],
    }
}

/// Fraction of each 3×3 cell whose nearest palette colour is `colour`.
fn cell_fractions(img: &RgbImage, colour: Colour) -> [f64; 9] {
    let (w, h) = img.dimensions();
    let mut hits = [0.0; 9];
    let mut totals = [0.0; 9];
    for (x, y, p) in img.enumerate_pixels() {
        let cell = (y * 3 / h * 3 + x * 3 / w) as usize;
        totals[cell] += 1.0;
        if Colour::nearest(p.0) == colour {
            hits[cell] += 1.0;
        }
    }
    std::array::from_fn(|i| hits[i] / totals[i])
}

/// 4-connected components of pixels nearest to `colour`, ignoring specks under `min_pixels`.
fn components(img: &RgbImage, colour: Colour, min_pixels: usize) -> usize {
    let (w, h) = img.dimensions();
    let mask: Vec<bool> = img
        .pixels()
        .map(|p| Colour::nearest(p.0) == colour)
        .collect();
    let mut seen = vec![false; mask.len()];
    let mut n = 0;
    for start in 0..mask.len() {
        if !mask[start] || seen[start] {
            continue;
        }
        let mut stack = vec![start];
        seen[start] = true;
        let mut size = 0;
        while let Some(i) = stack.pop() {
            size += 1;
            let (x, y) = ((i as u32 % w) as i64, (i as u32 / w) as i64);
            for (dx, dy) in [(1, 0), (-1, 0), (0, 1), (0, -1)] {
                let (nx, ny) = (x + dx, y + dy);
                if nx < 0 || ny < 0 || nx >= w as i64 || ny >= h as i64 {
                    continue;
                }
                let j = (ny as u32 * w + nx as u32) as usize;
                if mask[j] && !seen[j] {
                    seen[j] = true;
                    stack.push(j);
                }
            }
        }
        if size >= min_pixels {
            n += 1;
        }
    }
    n
}

#[test]
fn objects_land_in_their_cell_and_background_fills_corners() {
    for placement in Placement::ALL {
        for shape in Shape::ALL {
            for size in Size::ALL {
                for jitter in [[0.03, 0.03], [-0.03, -0.03]] {
                    let img = render(&scene(shape, size, 1, placement, jitter), 64);
                    let f = cell_fractions(&img, Colour::Yellow);
                    let target = f[placement.index()];
                    let others = (0..9)
                        .filter(|&i| i != placement.index())
                        .map(|i| f[i])
                        .fold(0.0, f64::max);
                    assert!(
                        target > 0.08 && target > 2.0 * others,
                        "{shape:?} {size:?} at {placement:?}: cells {f:?}"
                    );
                    for (x, y) in [(0, 0), (63, 0), (0, 63), (63, 63)] {
                        assert_eq!(img.get_pixel(x, y).0, Colour::Blue.rgb(), "corner {x},{y}");
                    }
                }
            }
        }
    }
}

#[test]
fn counted_objects_are_separate_blobs_in_their_cell() {
    for count in 1..=3u8 {
        for placement in Placement::ALL {
            for shape in [Shape::Circle, Shape::Square, Shape::Star, Shape::Cross] {
                let img = render(
                    &scene(shape, Size::Small, count, placement, [0.02, -0.02]),
                    64,
                );
                assert_eq!(
                    components(&img, Colour::Yellow, 10),
                    count as usize,
                    "{count} {shape:?} at {placement:?}"
                );
                let f = cell_fractions(&img, Colour::Yellow);
                let best = (0..9).max_by(|&a, &b| f[a].total_cmp(&f[b])).unwrap();
                assert_eq!(
                    best,
                    placement.index(),
                    "{count} {shape:?} at {placement:?}: {f:?}"
                );
            }
        }
    }
}

#[test]
fn edges_are_antialiased_with_intermediate_colours() {
    let img = render(
        &scene(Shape::Circle, Size::Large, 1, Placement::Center, [0.0, 0.0]),
        64,
    );
    let (fg, bg) = (Colour::Yellow.rgb(), Colour::Blue.rgb());
    let mut intermediate = 0;
    for p in img.pixels() {
        if p.0 == fg || p.0 == bg {
            continue;
        }
        // A blend of the two colours: each channel lies between them.
        for c in 0..3 {
            let (lo, hi) = (fg[c].min(bg[c]), fg[c].max(bg[c]));
            assert!((lo..=hi).contains(&p.0[c]), "{:?} is not a blend", p.0);
        }
        intermediate += 1;
    }
    // Circle circumference ≈ π·23 px ≈ 72 edge pixels; most are partially covered.
    assert!(intermediate >= 40, "only {intermediate} blended pixels");
    assert_eq!(SUPERSAMPLE, 4);
    // Interior and exterior stay pure.
    assert_eq!(img.get_pixel(32, 32).0, fg);
    assert_eq!(img.get_pixel(5, 32).0, bg);
}

#[test]
fn multi_object_scenes_keep_each_object_in_its_cell() {
    let s = SceneSpec {
        background: Colour::Black,
        pattern: None,
        groups: vec![
            ObjectGroup {
                shape: Shape::Circle,
                colour: Colour::Red,
                size: Size::Small,
                count: 1,
                placement: Placement::TopLeft,
                jitter: [0.03, 0.03],
            },
            ObjectGroup {
                shape: Shape::Square,
                colour: Colour::Green,
                size: Size::Small,
                count: 1,
                placement: Placement::Top,
                jitter: [-0.03, 0.03],
            },
        ],
    };
    let img = render(&s, 96);
    let red = cell_fractions(&img, Colour::Red);
    let green = cell_fractions(&img, Colour::Green);
    assert!(red[0] > 0.15 && red[1] == 0.0, "{red:?}");
    assert!(green[1] > 0.15 && green[0] == 0.0, "{green:?}");
}
