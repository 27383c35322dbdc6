// Shared by the store's tests: small generated images and the built-in model.
#![allow(dead_code)]

use clipguide_clip::Clip;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub const MODEL: &str = "builtin:test";

pub fn clip() -> &'static Clip {
    static CLIP: OnceLock<Clip> = OnceLock::new();
    CLIP.get_or_init(|| Clip::builtin(&candle_core::Device::Cpu).expect("the built-in model loads"))
}

/// A small image, different for every `seed`: two colours in stripes of a seed-dependent
/// width and direction, plus a square.
pub fn write_image(path: &Path, seed: u32) {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(12345);
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        s
    };
    let c1 = [next() as u8, next() as u8, next() as u8];
    let c2 = [next() as u8, next() as u8, next() as u8];
    let c3 = [next() as u8, next() as u8, next() as u8];
    let width = 2 + next() % 9;
    let vertical = next() % 2 == 0;
    let (sx, sy, side) = (next() % 20, next() % 20, 6 + next() % 10);
    let img = image::RgbImage::from_fn(40, 40, |x, y| {
        if (sx..sx + side).contains(&x) && (sy..sy + side).contains(&y) {
            return image::Rgb(c3);
        }
        let t = if vertical { x } else { y };
        image::Rgb(if (t / width) % 2 == 0 { c1 } else { c2 })
    });
    img.save(path).expect("writing a test image");
}

/// `n` images `img-0000.png` … in `dir`, seeds `first..first + n`.
pub fn write_images(dir: &Path, first: u32, n: u32) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    (first..first + n)
        .map(|i| {
            let p = dir.join(format!("img-{i:04}.png"));
            write_image(&p, i);
            p
        })
        .collect()
}

/// Every file of a folder with its bytes, names sorted (to compare stores byte for byte).
pub fn folder_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}
