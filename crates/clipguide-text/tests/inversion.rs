//! Textual-inversion loaders on tiny safetensors files written at test time.

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::Device;
use clipguide_text::{load_inversion, InversionError, InversionFormat, LoadedInversion};
use safetensors::tensor::{Dtype, TensorView};

/// Little-endian f32 bytes of `0.0, 1.0, 2.0, ...` (n values).
fn ramp(n: usize) -> Vec<u8> {
    (0..n).flat_map(|i| (i as f32).to_le_bytes()).collect()
}

/// Writes `{name: (shape, bytes)}` as `<stem>.safetensors` in `dir`.
fn write(dir: &tempfile::TempDir, stem: &str, tensors: &[(&str, Vec<usize>, Vec<u8>)]) -> PathBuf {
    write_typed(dir, stem, tensors, Dtype::F32)
}

fn write_typed(
    dir: &tempfile::TempDir,
    stem: &str,
    tensors: &[(&str, Vec<usize>, Vec<u8>)],
    dtype: Dtype,
) -> PathBuf {
    let views: HashMap<String, TensorView> = tensors
        .iter()
        .map(|(k, shape, bytes)| {
            (
                k.to_string(),
                TensorView::new(dtype, shape.clone(), bytes).unwrap(),
            )
        })
        .collect();
    let path = dir.path().join(format!("{stem}.safetensors"));
    std::fs::write(&path, safetensors::serialize(&views, None).unwrap()).unwrap();
    path
}

fn single(loaded: LoadedInversion) -> (InversionFormat, clipguide_text::Embedding) {
    match loaded {
        LoadedInversion::Single { format, embedding } => (format, embedding),
        LoadedInversion::Sdxl(_) => panic!("expected a single-encoder embedding"),
    }
}

#[test]
fn a1111_string_to_param() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "my-style",
        &[("string_to_param.*", vec![2, 4], ramp(8))],
    );
    let (format, emb) = single(load_inversion(&path, &Device::Cpu).unwrap());
    assert_eq!(format, InversionFormat::A1111);
    assert_eq!(emb.name, "my-style");
    assert_eq!((emb.len(), emb.dim()), (2, 4));
    assert_eq!(
        emb.vectors.to_vec2::<f32>().unwrap(),
        vec![vec![0., 1., 2., 3.], vec![4., 5., 6., 7.]]
    );
}

#[test]
fn kohya_emb_params() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "k", &[("emb_params", vec![3, 2], ramp(6))]);
    let (format, emb) = single(load_inversion(&path, &Device::Cpu).unwrap());
    assert_eq!(format, InversionFormat::Kohya);
    assert_eq!(emb.vectors.to_vec2::<f32>().unwrap()[2], vec![4., 5.]);
}

#[test]
fn diffusers_single_vector_becomes_one_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "learned_embeds", &[("<cat-toy>", vec![4], ramp(4))]);
    let (format, emb) = single(load_inversion(&path, &Device::Cpu).unwrap());
    assert_eq!(
        format,
        InversionFormat::Diffusers {
            token: "<cat-toy>".into()
        }
    );
    assert_eq!(emb.vectors.dims(), &[1, 4]);
    assert_eq!(
        emb.vectors.to_vec2::<f32>().unwrap(),
        vec![vec![0., 1., 2., 3.]]
    );
}

#[test]
fn diffusers_multi_vector() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "e", &[("<tok>", vec![2, 3], ramp(6))]);
    let (_, emb) = single(load_inversion(&path, &Device::Cpu).unwrap());
    assert_eq!(emb.vectors.dims(), &[2, 3]);
}

#[test]
fn f16_is_converted_to_f32() {
    let dir = tempfile::tempdir().unwrap();
    let halves: Vec<u8> = [1.5f32, -2.0]
        .iter()
        .flat_map(|&v| half_bits(v).to_le_bytes())
        .collect();
    let path = write_typed(&dir, "h", &[("emb_params", vec![1, 2], halves)], Dtype::F16);
    let (_, emb) = single(load_inversion(&path, &Device::Cpu).unwrap());
    assert_eq!(emb.vectors.dtype(), candle_core::DType::F32);
    assert_eq!(emb.vectors.to_vec2::<f32>().unwrap(), vec![vec![1.5, -2.0]]);
}

/// IEEE half bits for the exactly representable values used above.
fn half_bits(v: f32) -> u16 {
    match v {
        1.5 => 0x3E00,
        -2.0 => 0xC000,
        _ => unreachable!("test only uses 1.5 and -2.0"),
    }
}

#[test]
fn sdxl_clip_l_and_clip_g() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "xl",
        &[
            ("clip_l", vec![2, 768], ramp(2 * 768)),
            ("clip_g", vec![2, 1280], ramp(2 * 1280)),
        ],
    );
    let loaded = load_inversion(&path, &Device::Cpu).unwrap();
    assert_eq!(loaded.format(), InversionFormat::Sdxl);
    let l = loaded.for_encoder_dim(768).unwrap();
    let g = loaded.for_encoder_dim(1280).unwrap();
    assert_eq!(l.vectors.dims(), &[2, 768]);
    assert_eq!(g.vectors.dims(), &[2, 1280]);
    assert_eq!(g.vectors.to_vec2::<f32>().unwrap()[1][0], 1280.0);
    let err = loaded.for_encoder_dim(1024).unwrap_err();
    assert!(
        matches!(err, InversionError::SdxlDimMismatch { .. }),
        "{err}"
    );
}

#[test]
fn sdxl_vector_counts_must_agree() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "xl",
        &[
            ("clip_l", vec![1, 2], ramp(2)),
            ("clip_g", vec![2, 3], ramp(6)),
        ],
    );
    let err = load_inversion(&path, &Device::Cpu).unwrap_err();
    assert!(matches!(
        err,
        InversionError::SdxlVectorMismatch {
            clip_l: 1,
            clip_g: 2,
            ..
        }
    ));
}

#[test]
fn dim_mismatch_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "sd2", &[("emb_params", vec![1, 1024], ramp(1024))]);
    let loaded = load_inversion(&path, &Device::Cpu).unwrap();
    let err = loaded.for_encoder_dim(768).unwrap_err();
    assert!(
        err.to_string()
            .contains("has dim 1024 but the text encoder expects 768"),
        "{err}"
    );
    assert!(loaded.for_encoder_dim(1024).is_ok());
}

#[test]
fn unknown_and_ambiguous_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let two = write(
        &dir,
        "two",
        &[("a", vec![1, 2], ramp(2)), ("b", vec![1, 2], ramp(2))],
    );
    assert!(matches!(
        load_inversion(&two, &Device::Cpu).unwrap_err(),
        InversionError::MultipleTerms { .. }
    ));
    let terms = write(
        &dir,
        "terms",
        &[
            ("string_to_param.a", vec![1, 2], ramp(2)),
            ("string_to_param.b", vec![1, 2], ramp(2)),
        ],
    );
    assert!(matches!(
        load_inversion(&terms, &Device::Cpu).unwrap_err(),
        InversionError::MultipleTerms { .. }
    ));
    let half_xl = write(
        &dir,
        "half",
        &[("clip_l", vec![1, 2], ramp(2)), ("x", vec![1, 2], ramp(2))],
    );
    let err = load_inversion(&half_xl, &Device::Cpu).unwrap_err();
    assert!(matches!(err, InversionError::UnknownLayout { .. }), "{err}");
    assert!(err.to_string().contains("emb_params"), "{err}");
}

#[test]
fn bad_shapes_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let cube = write(&dir, "cube", &[("emb_params", vec![1, 1, 2], ramp(2))]);
    let err = load_inversion(&cube, &Device::Cpu).unwrap_err();
    assert!(matches!(err, InversionError::BadShape { .. }), "{err}");

    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"not a safetensors file").unwrap();
    assert!(matches!(
        load_inversion(&garbage, &Device::Cpu).unwrap_err(),
        InversionError::Safetensors { .. }
    ));
    let missing = dir.path().join("missing.safetensors");
    assert!(matches!(
        load_inversion(&missing, &Device::Cpu).unwrap_err(),
        InversionError::Read { .. }
    ));
}

#[test]
fn integer_tensors_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let ints: Vec<u8> = [1u32, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
    let path = write_typed(
        &dir,
        "ints",
        &[("emb_params", vec![1, 2], ints)],
        Dtype::U32,
    );
    assert!(matches!(
        load_inversion(&path, &Device::Cpu).unwrap_err(),
        InversionError::NotFloat { .. }
    ));
}
