//! The preview through the `clipguide` binary: `render` draws known pixels where the layout
//! puts them, and `generate --preview` without a display says so once and still writes its image.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use clipguide_preview::{palette, Layout};
use image::{Rgb, RgbImage};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tiny_model() -> PathBuf {
    let p = root().join("tests/fixtures/tiny-clip-quickgelu");
    assert!(
        p.exists(),
        "missing fixture {}: run python3 tools/make_fixtures.py",
        p.display()
    );
    p
}

/// Runs the binary with no display, so no test ever opens a window.
fn clipguide(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clipguide"))
        .args(args)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .expect("running clipguide")
}

fn ok(args: &[&str]) -> Output {
    let out = clipguide(args);
    assert!(
        out.status.success(),
        "clipguide {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Four flat quadrants: red, green / blue, yellow.
fn quadrants(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| match (x < w / 2, y < h / 2) {
        (true, true) => Rgb([255, 0, 0]),
        (false, true) => Rgb([0, 255, 0]),
        (true, false) => Rgb([0, 0, 255]),
        (false, false) => Rgb([255, 255, 0]),
    })
}

fn rgb_at(img: &image::RgbaImage, x: u32, y: u32) -> [u8; 3] {
    let p = img.get_pixel(x, y).0;
    [p[0], p[1], p[2]]
}

#[test]
fn render_draws_the_image_and_cutouts_where_the_layout_puts_them() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.png");
    quadrants(40, 20).save(&input).unwrap();
    let cutout = dir.path().join("cut.png");
    RgbImage::from_pixel(16, 16, Rgb([255, 0, 255]))
        .save(&cutout)
        .unwrap();
    let out_path = dir.path().join("layout.png");
    ok(&[
        "render",
        "--image",
        input.to_str().unwrap(),
        "--cutouts-from",
        cutout.to_str().unwrap(),
        "--step",
        "42",
        "--similarity",
        "0.25",
        "--history",
        "0.1,0.2,0.3",
        "--filter",
        "nearest",
        "--size",
        "320x240",
        "-o",
        out_path.to_str().unwrap(),
    ]);
    let out = image::open(&out_path).unwrap().to_rgba8();
    assert_eq!(out.dimensions(), (320, 240));

    let layout = Layout::new(320, 240, (40, 20), &[(16, 16)]);
    let r = layout.image;
    // The centre of each quadrant, mapped into the image rectangle.
    for (fx, fy, want) in [
        (0.25, 0.25, [255, 0, 0]),
        (0.75, 0.25, [0, 255, 0]),
        (0.25, 0.75, [0, 0, 255]),
        (0.75, 0.75, [255, 255, 0]),
    ] {
        let x = r.x + (fx * r.w as f32) as u32;
        let y = r.y + (fy * r.h as f32) as u32;
        assert_eq!(
            rgb_at(&out, x, y),
            want,
            "image area at ({x}, {y}) in {r:?}"
        );
    }
    // The scaled image is 2:1 like the input, not stretched to its box.
    assert!(
        (r.w as f32 / r.h as f32 - 2.0).abs() < 0.1,
        "image rect {r:?}"
    );
    let t = layout.thumbnails[0];
    assert_eq!(rgb_at(&out, t.x + t.w / 2, t.y + t.h / 2), [255, 0, 255]);
    assert_eq!(rgb_at(&out, 0, 0), palette::BACKGROUND);
    // None of the input's colours leak outside the image rectangle's right edge.
    let right_of_image = rgb_at(&out, r.x + r.w + 1, r.y + r.h / 2);
    assert!(
        ![[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]].contains(&right_of_image),
        "input colour {right_of_image:?} right of the image rect {r:?}"
    );
}

#[test]
fn render_nearest_and_linear_differ_at_an_edge() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.png");
    quadrants(4, 4).save(&input).unwrap();
    let render = |filter: &str| {
        let out = dir.path().join(format!("{filter}.png"));
        ok(&[
            "render",
            "--image",
            input.to_str().unwrap(),
            "--filter",
            filter,
            "--size",
            "256x256",
            "-o",
            out.to_str().unwrap(),
        ]);
        image::open(&out).unwrap().to_rgba8()
    };
    let (nearest, linear) = (render("nearest"), render("linear"));
    let r = Layout::new(256, 256, (4, 4), &[]).image;
    // Just left of the red|green border: nearest is pure red, linear blends in green.
    let (x, y) = (r.x + r.w / 2 - 2, r.y + r.h / 4);
    assert_eq!(rgb_at(&nearest, x, y), [255, 0, 0]);
    let l = rgb_at(&linear, x, y);
    assert!(l[1] > 20 && l[0] < 250, "linear at the edge is {l:?}");
}

#[test]
fn render_rejects_a_too_small_size_with_the_limits() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.png");
    quadrants(8, 8).save(&input).unwrap();
    let out_path = dir.path().join("x.png");
    let out = clipguide(&[
        "render",
        "--image",
        input.to_str().unwrap(),
        "--size",
        "10x10",
        "-o",
        out_path.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("10x10") && err.contains("between"), "{err}");
    assert!(!out_path.exists());
}

#[test]
fn generate_preview_without_display_says_so_once_and_writes_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("gen.png");
    let preview_png = dir.path().join("layout.png");
    let model = tiny_model();
    let out = ok(&[
        "--model",
        model.to_str().unwrap(),
        "generate",
        "a red circle",
        "--preview",
        "--preview-every",
        "1",
        "--preview-filter",
        "nearest",
        "--preview-png",
        preview_png.to_str().unwrap(),
        "--steps",
        "3",
        "--size",
        "24x24",
        "--cutn",
        "2",
        "-o",
        output.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("preview unavailable"))
        .collect();
    assert_eq!(lines.len(), 1, "stderr:\n{err}");
    assert!(
        lines[0].starts_with("preview unavailable: "),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].ends_with("; continuing without it"),
        "{}",
        lines[0]
    );
    assert!(err.contains("3 steps"), "the run did not finish:\n{err}");

    let image = image::open(&output).unwrap().to_rgb8();
    assert_eq!(image.dimensions(), (24, 24));

    // The headless layout at the end shows that same image (nearest: exact pixels).
    let layout = image::open(&preview_png).unwrap().to_rgba8();
    assert_eq!(layout.dimensions(), (768, 576));
    let r = Layout::new(768, 576, (24, 24), &[(24, 24); 2]).image;
    for (sx, sy) in [(3u32, 3u32), (12, 12), (20, 7)] {
        let x = r.x + ((sx as f32 + 0.5) * r.w as f32 / 24.0) as u32;
        let y = r.y + ((sy as f32 + 0.5) * r.h as f32 / 24.0) as u32;
        assert_eq!(
            rgb_at(&layout, x, y),
            image.get_pixel(sx, sy).0,
            "layout pixel ({x}, {y}) vs image pixel ({sx}, {sy})"
        );
    }
}

/// A live run with the window open on a virtual X server (Xvfb, installed by .ci/run): the
/// window must actually open (no "preview unavailable" line) and the run must still finish.
#[test]
fn generate_with_a_window_under_xvfb() {
    let xvfb = Command::new("Xvfb")
        .args([":97", "-screen", "0", "1024x768x24"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    let mut xvfb = xvfb.expect("Xvfb is needed for the window test: apt-get install xvfb");
    std::thread::sleep(std::time::Duration::from_millis(800));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("w.png");
    let o = Command::new(env!("CARGO_BIN_EXE_clipguide"))
        .args([
            "generate",
            "a red circle",
            "--model",
            tiny_model().to_str().unwrap(),
            "--steps",
            "8",
            "--size",
            "32x32",
            "--preview",
            "--preview-every",
            "2",
            "-o",
            out.to_str().unwrap(),
        ])
        .env("DISPLAY", ":97")
        .env_remove("WAYLAND_DISPLAY")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let _ = xvfb.kill();
    let _ = xvfb.wait();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        !err.contains("preview unavailable"),
        "the window did not open:\n{err}"
    );
    assert_eq!(image::open(&out).unwrap().width(), 32);
}
