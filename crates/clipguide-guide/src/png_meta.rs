//! PNG files that carry their generation parameters: a `tEXt` chunk inserted after `IHDR`,
//! written atomically (temp file + rename), and read back for `--from-png`.
//!
//! `tEXt` is Latin-1, so text is stored as ASCII JSON with `\uXXXX` escapes for the rest.

use std::path::Path;

use image::RgbImage;

use crate::error::{GuideError, Result};

/// The keyword under which clipguide stores its parameters.
pub const PARAMS_KEY: &str = "clipguide";

const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

fn crc32(bytes: &[u8]) -> u32 {
    // Bitwise CRC-32 (ISO-HDLC, as PNG uses); chunks are small, so no table is needed.
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Escapes every non-ASCII character of JSON text as `\uXXXX` (surrogate pairs above the
/// BMP). Non-ASCII only occurs inside JSON strings, so the result is equivalent JSON.
pub fn ascii_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

/// Encodes `img` as PNG with a `tEXt` chunk `keyword` = `text` (ASCII) right after `IHDR`.
pub fn encode_png_with_text(img: &RgbImage, keyword: &str, text: &str) -> Result<Vec<u8>> {
    let bad_key = keyword.is_empty()
        || keyword.len() > 79
        || !keyword.bytes().all(|b| (32..=126).contains(&b));
    if bad_key || !text.is_ascii() || text.contains('\0') {
        return Err(GuideError::invalid(
            "PNG text chunk",
            "keyword must be 1-79 printable ASCII characters and text ASCII without NUL",
        ));
    }
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| GuideError::invalid("PNG encoding", e.to_string()))?;
    // Signature (8) + IHDR (4 length + 4 type + 13 data + 4 CRC).
    let after_ihdr = 8 + 25;
    if png.len() < after_ihdr || png[..8] != SIGNATURE || &png[12..16] != b"IHDR" {
        return Err(GuideError::invalid(
            "PNG encoding",
            "the encoder did not start with IHDR",
        ));
    }
    let mut body = Vec::with_capacity(4 + keyword.len() + 1 + text.len());
    body.extend_from_slice(b"tEXt");
    body.extend_from_slice(keyword.as_bytes());
    body.push(0);
    body.extend_from_slice(text.as_bytes());
    let mut chunk = Vec::with_capacity(body.len() + 8);
    chunk.extend_from_slice(&((body.len() - 4) as u32).to_be_bytes());
    chunk.extend_from_slice(&body);
    chunk.extend_from_slice(&crc32(&body).to_be_bytes());
    png.splice(after_ihdr..after_ihdr, chunk);
    Ok(png)
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so a
/// reader never sees a half-written file (and an interrupted run leaves the old one); the one
/// implementation is `clipguide_clip::fsutil::write_atomic`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    clipguide_clip::fsutil::write_atomic(path, bytes).map_err(|source| GuideError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Encodes `img` with `keyword` = `text` and writes it atomically.
pub fn save_png_with_text(path: &Path, img: &RgbImage, keyword: &str, text: &str) -> Result<()> {
    write_atomic(path, &encode_png_with_text(img, keyword, text)?)
}

/// The text of the first `tEXt` chunk named `keyword` in PNG bytes, if any.
pub fn png_text(png: &[u8], keyword: &str) -> Result<Option<String>> {
    if png.len() < 8 || png[..8] != SIGNATURE {
        return Err(GuideError::invalid("PNG file", "not a PNG (bad signature)"));
    }
    let mut pos = 8;
    while pos + 12 <= png.len() {
        let len = u32::from_be_bytes(png[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        let kind = &png[pos + 4..pos + 8];
        let end = pos + 8 + len;
        if end + 4 > png.len() {
            return Err(GuideError::invalid("PNG file", "a chunk runs past the end"));
        }
        if kind == b"tEXt" {
            let data = &png[pos + 8..end];
            if let Some(nul) = data.iter().position(|&b| b == 0) {
                if &data[..nul] == keyword.as_bytes() {
                    // Latin-1 to UTF-8: every byte is its own code point.
                    return Ok(Some(data[nul + 1..].iter().map(|&b| b as char).collect()));
                }
            }
        }
        if kind == b"IEND" {
            break;
        }
        pos = end + 4;
    }
    Ok(None)
}

/// Reads the `keyword` text of a PNG file.
pub fn read_png_text(path: &Path, keyword: &str) -> Result<Option<String>> {
    let bytes = std::fs::read(path).map_err(|source| GuideError::Io {
        path: path.display().to_string(),
        source,
    })?;
    png_text(&bytes, keyword).map_err(|e| GuideError::Image {
        path: path.display().to_string(),
        problem: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_png_specs_check_value() {
        // CRC-32 of "123456789" is 0xCBF43926; IEND's stored CRC is 0xAE426082.
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b"IEND"), 0xae42_6082);
    }

    #[test]
    fn text_survives_and_the_image_still_decodes() -> Result<()> {
        let mut img = RgbImage::new(3, 2);
        img.put_pixel(1, 1, image::Rgb([10, 200, 30]));
        let json = ascii_json(r#"{"prompt":"café 🌻"}"#);
        assert_eq!(json, r#"{"prompt":"caf\u00e9 \ud83c\udf3b"}"#);
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["prompt"], "café 🌻");
        let png = encode_png_with_text(&img, PARAMS_KEY, &json)?;
        assert_eq!(png_text(&png, PARAMS_KEY)?.as_deref(), Some(json.as_str()));
        assert_eq!(png_text(&png, "other")?, None);
        let decoded = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(decoded, img);
        Ok(())
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_file() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("clipguide-png-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.png");
        save_png_with_text(&path, &RgbImage::new(2, 2), PARAMS_KEY, "{}")?;
        save_png_with_text(&path, &RgbImage::new(4, 2), PARAMS_KEY, "{\"v\":2}")?;
        assert_eq!(
            read_png_text(&path, PARAMS_KEY)?.as_deref(),
            Some("{\"v\":2}")
        );
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(names.len(), 1, "temp file left behind");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(encode_png_with_text(&RgbImage::new(1, 1), "", "x").is_err());
        Ok(())
    }
}
