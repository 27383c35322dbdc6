//! Between tensors and 8-bit images, and image files as tensors.

use candle_core::{DType, Device, Tensor};
use image::RgbImage;

use crate::error::{GuideError, Result};

/// `[3, H, W]` in [0, 1] (values outside are clamped) to an 8-bit image.
pub fn tensor_to_image(t: &Tensor) -> Result<RgbImage> {
    let (c, h, w) = t.dims3()?;
    if c != 3 {
        return Err(GuideError::Shape {
            what: "image tensor",
            got: t.dims().to_vec(),
            expected: "[3, H, W]",
        });
    }
    let v = t
        .to_dtype(DType::F32)?
        .to_device(&Device::Cpu)?
        .permute((1, 2, 0))?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let bytes = v
        .iter()
        .map(|x| (x.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    RgbImage::from_raw(w as u32, h as u32, bytes).ok_or_else(|| {
        GuideError::invalid("image tensor", format!("{w}x{h} does not fit its data"))
    })
}

/// An 8-bit image as `[1, 3, H, W]` f32 in [0, 1].
pub fn image_to_tensor(img: &RgbImage) -> Result<Tensor> {
    let (w, h) = img.dimensions();
    let data: Vec<f32> = img.as_raw().iter().map(|&b| b as f32 / 255.0).collect();
    Ok(
        Tensor::from_vec(data, (h as usize, w as usize, 3), &Device::Cpu)?
            .permute((2, 0, 1))?
            .contiguous()?
            .unsqueeze(0)?,
    )
}

/// Loads an image file resized to exactly `width × height` (Lanczos3) as `[1, 3, H, W]`.
pub(crate) fn load_rgb_tensor(
    path: &std::path::Path,
    width: usize,
    height: usize,
) -> Result<Tensor> {
    if !path.exists() {
        return Err(GuideError::Image {
            path: path.display().to_string(),
            problem: "init image not found: check its path".into(),
        });
    }
    let img = clipguide_clip::load_image(path).map_err(|e| GuideError::Image {
        path: path.display().to_string(),
        problem: format!("cannot be used as the init image: {e}"),
    })?;
    let img = if img.dimensions() == (width as u32, height as u32) {
        img
    } else {
        image::imageops::resize(
            &img,
            width as u32,
            height as u32,
            image::imageops::FilterType::Lanczos3,
        )
    };
    image_to_tensor(&img)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_tensor_round_trip_is_exact() -> Result<()> {
        let mut img = RgbImage::new(5, 3);
        for (i, p) in img.pixels_mut().enumerate() {
            *p = image::Rgb([(i * 17) as u8, 255 - (i * 13) as u8, (i * 7 % 256) as u8]);
        }
        let t = image_to_tensor(&img)?;
        assert_eq!(t.dims(), &[1, 3, 3, 5]);
        // Channel 1 of pixel (row 0, col 1) is 255 - 13.
        let v = t.get(0)?.get(1)?.get(0)?.get(1)?.to_scalar::<f32>()?;
        assert!((v - 242.0 / 255.0).abs() < 1e-7);
        assert_eq!(tensor_to_image(&t.squeeze(0)?)?, img);
        Ok(())
    }
}
