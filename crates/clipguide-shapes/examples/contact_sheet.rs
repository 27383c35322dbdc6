//! Writes a 4×4 contact sheet of dataset items at 64² and prints their captions, for eyeballing.
//! Usage: cargo run -p clipguide-shapes --example contact_sheet -- [OUT.png] [SEED] [UPSCALE]

use clipguide_shapes::ShapesDataset;
use image::{imageops, Rgb, RgbImage};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = args
        .next()
        .unwrap_or_else(|| "/tmp/shapes_sheet.png".into());
    let seed: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(0);
    let upscale: u32 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    const SIZE: u32 = 64;
    const GAP: u32 = 4;
    let ds = ShapesDataset::new(seed, SIZE)?;
    let side = 4 * SIZE + 5 * GAP;
    let mut sheet = RgbImage::from_pixel(side, side, Rgb([90, 90, 90]));
    for i in 0..16usize {
        let (img, caps, _) = ds.get(i);
        let (col, row) = (i as u32 % 4, i as u32 / 4);
        imageops::replace(
            &mut sheet,
            &img,
            (GAP + col * (SIZE + GAP)) as i64,
            (GAP + row * (SIZE + GAP)) as i64,
        );
        println!("{i:2} (row {row}, col {col}): {}", caps.join(" | "));
    }
    if upscale > 1 {
        sheet = imageops::resize(&sheet, side * upscale, side * upscale, imageops::Nearest);
    }
    sheet.save(&out)?;
    println!("wrote {out}");
    Ok(())
}
