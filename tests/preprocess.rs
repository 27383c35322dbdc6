//! Image preprocessing against transformers' CLIPImageProcessor (Pillow bicubic resize,
//! centre crop, rescale, normalise) on small PNGs; and the differentiable tensor path.

mod common;
use candle_core::{Device, Tensor};
use clipguide_clip::{load_image, ImageProcessor};
use common::*;

#[test]
fn u8_path_matches_clip_image_processor() {
    let r = load_reference("preprocess/reference.safetensors");
    let p = ImageProcessor::for_size(64);
    let mut n = 0;
    for (key, want) in &r {
        let Some(name) = key.strip_prefix("pixel_values_") else {
            continue;
        };
        let img = load_image(&fixture(&format!("preprocess/{name}.png"))).unwrap();
        let got = p.preprocess(&img, &Device::Cpu).unwrap();
        let want = want.squeeze(0).unwrap_or(want.clone());
        // Pillow-exact resampling: only f32 rounding of the normalisation remains.
        assert_close(&format!("preprocess {name}"), &got, &want, 1e-5);
        n += 1;
    }
    assert!(n >= 4, "only {n} reference images");
}

#[test]
fn tensor_path_is_close_to_u8_path_and_differentiable() {
    let img = load_image(&fixture("preprocess/landscape_300x200.png")).unwrap();
    let p = ImageProcessor::for_size(64);
    let want = p.preprocess(&img, &Device::Cpu).unwrap();
    let (w, h) = (img.width() as usize, img.height() as usize);
    let data: Vec<f32> = (0..3)
        .flat_map(|c| img.pixels().map(move |px| px[c] as f32 / 255.0))
        .collect();
    let x =
        candle_core::Var::from_tensor(&Tensor::from_vec(data, (1, 3, h, w), &Device::Cpu).unwrap())
            .unwrap();
    let got = p.preprocess_tensor(x.as_tensor()).unwrap();
    // The u8 path rounds after each pass: at most ~1/255 per pass, divided by std ≈ 0.27.
    assert_close("tensor path", &got.squeeze(0).unwrap(), &want, 0.02);
    let g = got.sum_all().unwrap().backward().unwrap();
    let gx = g
        .get(x.as_tensor())
        .expect("gradient reaches the input image");
    assert!(max_abs(gx) > 0.0);
}
