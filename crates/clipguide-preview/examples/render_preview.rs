//! Renders one synthetic preview frame headlessly and writes it as a PNG:
//! `cargo run -p clipguide-preview --example render_preview -- out.png [nearest|linear]`.

use clipguide_preview::{Filter, PreviewFrame, Renderer, RgbImage};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: render_preview OUT.png [nearest|linear]")?;
    let filter = match args.next().as_deref() {
        None | Some("linear") => Filter::Linear,
        Some("nearest") => Filter::Nearest,
        Some(other) => return Err(format!("unknown filter {other:?}").into()),
    };

    // A small smooth gradient with a bright disc, like an early generation.
    let image = RgbImage::from_fn(48, 32, |x, y| {
        let (fx, fy) = (x as f32 / 47.0, y as f32 / 31.0);
        let disc = ((fx - 0.6).powi(2) + (fy - 0.4).powi(2)).sqrt() < 0.25;
        let base = [fx * 200.0, fy * 160.0 + 40.0, (1.0 - fx) * 220.0];
        image::Rgb(base.map(|c| if disc { 255.0 - c * 0.3 } else { c } as u8))
    });
    let cutouts = (0..6)
        .map(|i| {
            let (cx, cy, size) = (i * 5, (i * 3) % 10, 20 - i * 2);
            image::imageops::crop_imm(&image, cx, cy, size, size).to_image()
        })
        .collect();
    let history: Vec<f32> = (0..200)
        .map(|i| 0.18 + 0.12 * (1.0 - (-(i as f32) / 60.0).exp()) + 0.004 * (i as f32 * 0.7).sin())
        .collect();
    let frame = PreviewFrame {
        image,
        cutouts,
        step: history.len(),
        similarity: *history.last().unwrap(),
        history,
        filter,
    };

    let renderer = Renderer::new_headless()?;
    let start = std::time::Instant::now();
    let out = renderer.render_to_image(&frame, 768, 576)?;
    println!(
        "rendered 768x576 on {} in {:.1} ms -> {path}",
        renderer.adapter_name(),
        start.elapsed().as_secs_f64() * 1e3
    );
    out.save(&path)?;
    Ok(())
}
