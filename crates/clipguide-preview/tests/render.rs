//! Renders frames through wgpu (lavapipe on machines without a GPU) and checks
//! the pixels: placement and scale, filtering, the plot's direction and the font.

use std::sync::OnceLock;

use clipguide_preview::{
    palette, Filter, PreviewError, PreviewFrame, Renderer, RgbImage, RgbaImage,
};

/// One renderer for the whole test binary: opening a device takes a while on lavapipe.
fn renderer() -> &'static Renderer {
    static RENDERER: OnceLock<Renderer> = OnceLock::new();
    RENDERER.get_or_init(|| {
        Renderer::new_headless().unwrap_or_else(|e| {
            panic!(
                "these tests render through wgpu and need a Vulkan adapter: {e}\n\
                 On Debian/Ubuntu: apt-get install mesa-vulkan-drivers (the lavapipe CPU renderer)"
            )
        })
    })
}

const W: u32 = 512;
const H: u32 = 384;

fn rgb(img: &RgbaImage, x: u32, y: u32) -> [u8; 3] {
    let p = img.get_pixel(x, y);
    [p[0], p[1], p[2]]
}

/// Bounding box (x0, y0, x1, y1), inclusive, of pixels satisfying `pred`.
fn bbox(img: &RgbaImage, pred: impl Fn([u8; 3]) -> bool) -> Option<(u32, u32, u32, u32)> {
    let mut b: Option<(u32, u32, u32, u32)> = None;
    for (x, y, p) in img.enumerate_pixels() {
        if pred([p[0], p[1], p[2]]) {
            b = Some(match b {
                None => (x, y, x, y),
                Some((x0, y0, x1, y1)) => (x0.min(x), y0.min(y), x1.max(x), y1.max(y)),
            });
        }
    }
    b
}

const RED: [u8; 3] = [230, 20, 20];
const GREEN: [u8; 3] = [20, 200, 40];
const BLUE: [u8; 3] = [30, 40, 220];
const YELLOW: [u8; 3] = [240, 220, 10];

/// An 80×40 image whose four 40×20 quadrants are red, green / blue, yellow.
fn quadrants() -> RgbImage {
    RgbImage::from_fn(80, 40, |x, y| {
        image::Rgb(match (x < 40, y < 20) {
            (true, true) => RED,
            (false, true) => GREEN,
            (true, false) => BLUE,
            (false, false) => YELLOW,
        })
    })
}

#[test]
fn main_image_is_fitted_into_the_left_area_keeping_aspect() {
    let mut frame = PreviewFrame::new(quadrants());
    frame.filter = Filter::Nearest;
    let out = renderer().render_to_image(&frame, W, H).unwrap();
    assert_eq!(out.dimensions(), (W, H));

    let quad = [RED, GREEN, BLUE, YELLOW];
    let (x0, y0, x1, y1) = bbox(&out, |p| quad.contains(&p)).expect("image not drawn");
    let (w, h) = (x1 - x0 + 1, y1 - y0 + 1);
    // Documented layout: main box is x 4..380 (W - W/4 - 4), y 4..365 (above
    // the 15-row text bar). A 2:1 image is width-limited there: 376×188,
    // centred vertically at y = 4 + (361 - 188) / 2 = 90.
    assert_eq!((x0, w), (4, 376), "horizontal placement/scale");
    assert_eq!((y0, h), (90, 188), "vertical placement/scale");

    // Each quadrant's colour fills its quarter of the drawn rectangle...
    let (cx, cy) = (x0 + w / 2, y0 + h / 2);
    for (colour, qx, qy) in [
        (RED, x0, y0),
        (GREEN, cx, y0),
        (BLUE, x0, cy),
        (YELLOW, cx, cy),
    ] {
        for y in qy..qy + h / 2 {
            for x in qx..qx + w / 2 {
                assert_eq!(rgb(&out, x, y), colour, "pixel ({x}, {y})");
            }
        }
    }
    // ...and nothing but background lies around it in the main area.
    for x in 0..W - W / 4 {
        for y in [y0 - 1, y1 + 1, 2] {
            assert_eq!(rgb(&out, x, y), palette::BACKGROUND, "({x}, {y})");
        }
    }
}

/// A 4×4 checkerboard of two colours, upscaled a lot.
fn checkerboard_frame(filter: Filter) -> PreviewFrame {
    let mut frame = PreviewFrame::new(RgbImage::from_fn(4, 4, |x, y| {
        image::Rgb(if (x + y) % 2 == 0 { RED } else { BLUE })
    }));
    frame.filter = filter;
    frame
}

/// Colours inside the drawn square image (square 4×4 input: height-limited, 361×361 at x 11, y 4).
fn image_pixels(out: &RgbaImage) -> Vec<[u8; 3]> {
    let mut v = Vec::new();
    for y in 4..4 + 361 {
        for x in 11..11 + 361 {
            v.push(rgb(out, x, y));
        }
    }
    v
}

#[test]
fn nearest_keeps_two_colours_and_linear_blends_them() {
    let nearest = renderer()
        .render_to_image(&checkerboard_frame(Filter::Nearest), W, H)
        .unwrap();
    let linear = renderer()
        .render_to_image(&checkerboard_frame(Filter::Linear), W, H)
        .unwrap();

    let near_px = image_pixels(&nearest);
    assert!(
        near_px.iter().all(|p| *p == RED || *p == BLUE),
        "nearest produced a colour other than the two squares"
    );
    let reds = near_px.iter().filter(|p| **p == RED).count();
    // Half the squares each (within the rounding of 361 / 4 per cell).
    assert!(
        (reds as f64 / near_px.len() as f64 - 0.5).abs() < 0.01,
        "{reds}"
    );

    let lin_px = image_pixels(&linear);
    let blended = lin_px.iter().filter(|p| **p != RED && **p != BLUE).count();
    assert!(
        blended > lin_px.len() / 4,
        "linear filtering should blend between squares, only {blended} blended pixels"
    );
    // A blend lies between the two colours channel by channel.
    let mut distinct: Vec<[u8; 3]> = lin_px.clone();
    distinct.sort();
    distinct.dedup();
    assert!(distinct.len() > 50, "{} distinct colours", distinct.len());
    for p in &distinct {
        for c in 0..3 {
            let (lo, hi) = (RED[c].min(BLUE[c]), RED[c].max(BLUE[c]));
            assert!(lo <= p[c] && p[c] <= hi, "{p:?} outside the red-blue range");
        }
    }
    // Square centres keep their colour under both filters (cell 0 is red, cell 1 blue).
    let cell = 361.0 / 4.0;
    let centre = |i: f64| (11.0 + cell * (i + 0.5)) as u32;
    // Linear blends a little even there: the pixel centre is not exactly the texel centre.
    let close = |a: [u8; 3], b: [u8; 3]| (0..3).all(|c| a[c].abs_diff(b[c]) <= 4);
    let row = (4.0 + cell * 0.5) as u32;
    assert_eq!(rgb(&nearest, centre(0.0), row), RED);
    assert_eq!(rgb(&nearest, centre(1.0), row), BLUE);
    assert!(close(rgb(&linear, centre(0.0), row), RED));
    assert!(close(rgb(&linear, centre(1.0), row), BLUE));
    // Halfway between two squares linear gives an even mix.
    let edge = rgb(&linear, (11.0 + cell) as u32, row);
    assert!(close(edge, [130, 30, 120]), "{edge:?}");
}

/// Mean row of plot-line pixels in the first and last few line columns.
fn plot_line_ends(out: &RgbaImage) -> (f64, f64) {
    let mut columns: Vec<(u32, Vec<u32>)> = Vec::new();
    for x in 0..W {
        let ys: Vec<u32> = (0..H)
            .filter(|&y| rgb(out, x, y) == palette::PLOT_LINE)
            .collect();
        if !ys.is_empty() {
            columns.push((x, ys));
        }
    }
    assert!(
        columns.len() > 50,
        "plot line barely drawn: {} columns",
        columns.len()
    );
    let mean = |cols: &[(u32, Vec<u32>)]| {
        let all: Vec<u32> = cols.iter().flat_map(|(_, ys)| ys.iter().copied()).collect();
        all.iter().map(|&y| f64::from(y)).sum::<f64>() / all.len() as f64
    };
    (mean(&columns[..3]), mean(&columns[columns.len() - 3..]))
}

fn frame_with_history(history: Vec<f32>) -> PreviewFrame {
    let mut frame = PreviewFrame::new(RgbImage::from_pixel(8, 8, image::Rgb([60, 60, 60])));
    frame.history = history;
    frame
}

#[test]
fn plot_rises_where_the_similarity_rises() {
    let rising: Vec<f32> = (0..300).map(|i| 0.15 + 0.0005 * i as f32).collect();
    let out = renderer()
        .render_to_image(&frame_with_history(rising.clone()), W, H)
        .unwrap();
    // The plot lives in the top-right panel.
    let (x0, y0, x1, y1) = bbox(&out, |p| p == palette::PLOT_LINE).unwrap();
    assert!(
        x0 >= W - W / 4 && x1 < W && y0 >= 4 && y1 < H / 2,
        "line at {x0},{y0}-{x1},{y1}"
    );
    let (start, end) = plot_line_ends(&out);
    // y grows downwards: rising data ends higher up, by most of the panel height.
    assert!(start - end > 50.0, "start y {start}, end y {end}");

    let falling: Vec<f32> = rising.iter().rev().copied().collect();
    let out = renderer()
        .render_to_image(&frame_with_history(falling), W, H)
        .unwrap();
    let (start, end) = plot_line_ends(&out);
    assert!(end - start > 50.0, "start y {start}, end y {end}");

    let flat = renderer()
        .render_to_image(&frame_with_history(vec![0.3; 100]), W, H)
        .unwrap();
    let (start, end) = plot_line_ends(&flat);
    assert!(
        (start - end).abs() < 1.0,
        "flat history drawn sloped: {start} vs {end}"
    );
}

#[test]
fn empty_or_non_finite_history_draws_no_line() {
    for history in [vec![], vec![f32::NAN; 10]] {
        let out = renderer()
            .render_to_image(&frame_with_history(history), W, H)
            .unwrap();
        assert!(bbox(&out, |p| p == palette::PLOT_LINE).is_none());
        // The panel itself is still there.
        assert!(bbox(&out, |p| p == palette::PLOT_BACKGROUND).is_some());
    }
}

/// The 5×7 dot pattern of the glyph cell `index` in the status line
/// (scale 1 at this height: cells 6 px apart from (4, bar top + 4)).
fn glyph_at(out: &RgbaImage, index: u32) -> Vec<String> {
    let bar_top = H - (7 + 8);
    (0..7)
        .map(|row| {
            (0..5)
                .map(|col| {
                    let p = rgb(out, 4 + 6 * index + col, bar_top + 4 + row);
                    if p == palette::TEXT {
                        '#'
                    } else {
                        assert_eq!(p, palette::TEXT_BACKGROUND);
                        '.'
                    }
                })
                .collect()
        })
        .collect()
}

#[test]
fn status_line_is_drawn_with_the_bitmap_font() {
    let mut frame = frame_with_history(vec![0.1, 0.2]);
    frame.step = 7;
    frame.similarity = 0.25;
    let out = renderer().render_to_image(&frame, W, H).unwrap();
    assert_eq!(frame.status_line(), "step 7  sim 0.250");

    // Text pixels exist only in the bottom bar.
    let (_, y0, _, y1) = bbox(&out, |p| p == palette::TEXT).expect("no text drawn");
    assert!(y0 >= H - 15 && y1 < H, "text rows {y0}..={y1}");

    let s = [
        ".....", ".....", ".###.", "#....", ".###.", "....#", "####.",
    ];
    let seven = [
        "#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#...",
    ];
    let blank = [
        ".....", ".....", ".....", ".....", ".....", ".....", ".....",
    ];
    assert_eq!(glyph_at(&out, 0), s, "first character 's'");
    assert_eq!(glyph_at(&out, 4), blank, "the space after 'step'");
    assert_eq!(glyph_at(&out, 5), seven, "the step number");

    // A different step changes the digits and nothing before them.
    frame.step = 1;
    let other = renderer().render_to_image(&frame, W, H).unwrap();
    assert_eq!(glyph_at(&other, 0), s);
    assert_ne!(glyph_at(&other, 5), seven);
}

#[test]
fn cutouts_appear_left_to_right_in_the_bottom_strip() {
    let colours = [RED, GREEN, BLUE];
    let mut frame = frame_with_history(vec![]);
    frame.cutouts = colours
        .iter()
        .map(|&c| RgbImage::from_pixel(16, 16, image::Rgb(c)))
        .collect();
    let out = renderer().render_to_image(&frame, W, H).unwrap();
    let boxes: Vec<_> = colours
        .iter()
        .map(|&c| bbox(&out, |p| p == c).expect("cutout missing"))
        .collect();
    for (x0, y0, x1, y1) in &boxes {
        // Square thumbnails between the main area and the text bar.
        assert_eq!(x1 - x0, y1 - y0);
        assert!(x1 - x0 + 1 >= 32, "thumbnail too small: {}", x1 - x0 + 1);
        assert!(*y0 > H / 2 && *y1 < H - 15, "rows {y0}..={y1}");
    }
    assert!(
        boxes[0].2 < boxes[1].0 && boxes[1].2 < boxes[2].0,
        "{boxes:?}"
    );
}

#[test]
fn bad_sizes_are_errors_not_panics() {
    let frame = PreviewFrame::new(quadrants());
    assert!(matches!(
        renderer().render_to_image(&frame, 10, 200),
        Err(PreviewError::InvalidSize { width: 10, .. })
    ));
    let too_big = renderer().max_side() + 1;
    assert!(matches!(
        renderer().render_to_image(&frame, too_big, 200),
        Err(PreviewError::InvalidSize { .. })
    ));
    let empty = PreviewFrame::new(RgbImage::new(0, 5));
    let err = renderer().render_to_image(&empty, W, H).unwrap_err();
    assert!(
        matches!(err, PreviewError::InvalidImage { width: 0, .. }),
        "{err}"
    );
    let mut bad_cutout = PreviewFrame::new(quadrants());
    bad_cutout.cutouts = vec![RgbImage::new(4, 4), RgbImage::new(4, 0)];
    let err = renderer().render_to_image(&bad_cutout, W, H).unwrap_err();
    assert!(err.to_string().contains("cutout 1"), "{err}");
}
