use super::*;
use crate::testutil::{assert_close, check_gradients, seeded_tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::fourier::invert3;

/// An RGB test image in [0, 1] that includes exact black and white pixels.
fn test_rgb(h: usize, w: usize, seed: u64) -> Result<Tensor> {
    let t = ((seeded_tensor(&[1, 3, h, w], seed, DType::F32)? * 0.6)? + 0.5)?;
    Ok(t.clamp(0.0f32, 1.0f32)?)
}

fn values(t: &Tensor) -> Result<Vec<f64>> {
    Ok(t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?)
}

#[test]
fn color_matrix_is_lucids_normalised_by_largest_column_norm() {
    let m = color_correlation_normalized();
    let norm0 = (0.26f64 * 0.26 + 0.27 * 0.27 + 0.27 * 0.27).sqrt();
    assert!((m[0][0] - 0.26 / norm0).abs() < 1e-15 && (m[2][1] + 0.09 / norm0).abs() < 1e-15);
    let inv = invert3(m);
    for (i, row) in m.iter().enumerate() {
        for j in 0..3 {
            let p: f64 = row
                .iter()
                .zip(&inv)
                .map(|(a, inv_row)| a * inv_row[j])
                .sum();
            assert!((p - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
        }
    }
}

#[test]
fn spectrum_scale_follows_lucid() -> Result<()> {
    // 4 x 6: fy = [0, .25, -.5, -.25], fx = [0, 1/6, 1/3, 1/2]; floor 1/6.
    let s = values(&FourierImage::spectrum_scale(6, 4, 1.0)?)?;
    assert_eq!(s.len(), 16);
    assert!((s[0] - 6.0).abs() < 1e-12, "DC uses the floor");
    assert!((s[1] - 6.0).abs() < 1e-12);
    let f = (0.25f64 * 0.25 + 0.25).sqrt();
    assert!((s[4 + 3] - 1.0 / f).abs() < 1e-12);
    let s2 = values(&FourierImage::spectrum_scale(6, 4, 2.0)?)?;
    assert!((s2[4 + 3] - 1.0 / (f * f)).abs() < 1e-12);
    Ok(())
}

#[test]
fn from_rgb_reproduces_the_image() -> Result<()> {
    for &(h, w) in &[(8, 8), (7, 5), (6, 9), (1, 4)] {
        let rgb = test_rgb(h, w, 30)?;
        let want = values(&rgb)?;
        assert!(
            want.contains(&0.0) || want.contains(&1.0) || h == 1,
            "test image should saturate somewhere"
        );
        let fourier = FourierImage::from_rgb(&rgb, 1.0)?;
        assert_eq!((fourier.width(), fourier.height()), (w, h));
        assert_close(
            &values(&fourier.to_rgb()?)?,
            &want,
            1e-3,
            &format!("fourier {h}x{w}"),
        );
        assert_close(
            &values(&PixelImage::from_rgb(&rgb)?.to_rgb()?)?,
            &want,
            1e-3,
            "pixels",
        );
        assert_close(
            &values(&PyramidImage::from_rgb(&rgb, 3)?.to_rgb()?)?,
            &want,
            1e-3,
            "pyramid",
        );
    }
    Ok(())
}

#[test]
fn fourier_to_rgb_gradients_match_finite_differences() -> Result<()> {
    let (h, w) = (4, 5);
    let re = seeded_tensor(&[3, h, 3], 31, DType::F64)?;
    let im = seeded_tensor(&[3, h, 3], 32, DType::F64)?;
    let weights = seeded_tensor(&[1, 3, h, w], 33, DType::F64)?;
    check_gradients(&[re, im], 1e-6, 1e-6, |xs| {
        let img = FourierImage::from_spectrum(&xs[0], &xs[1], w, 1.0)?;
        Ok(img.to_rgb()?.mul(&weights)?.sum_all()?)
    })
}

#[test]
fn pyramid_gradients_match_finite_differences() -> Result<()> {
    let (h, w) = (5, 6);
    let levels: Vec<Tensor> = (0..3)
        .map(|k| {
            let (lh, lw) = PyramidImage::level_size(w, h, k);
            seeded_tensor(&[1, 3, lh, lw], 40 + k as u64, DType::F64)
        })
        .collect::<Result<_>>()?;
    assert_eq!(levels[2].dims(), &[1, 3, 2, 2]);
    let weights = seeded_tensor(&[1, 3, h, w], 44, DType::F64)?;
    check_gradients(&levels, 1e-6, 1e-6, |xs| {
        let img = PyramidImage::from_levels(xs, w, h)?;
        Ok(img.to_rgb()?.mul(&weights)?.sum_all()?)
    })
}

#[test]
fn random_inits_are_seeded_and_sized() -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let f = FourierImage::random(9, 6, 1.0, FourierImage::DEFAULT_STD, &mut rng)?;
    assert_eq!(f.params()[0].dims(), &[3, 6, 5]);
    let rgb = f.to_rgb()?;
    assert_eq!(rgb.dims(), &[1, 3, 6, 9]);
    // With lucid's std the image starts near mid-grey but not flat.
    let v = values(&rgb)?;
    assert!(v.iter().all(|x| (x - 0.5).abs() < 0.2) && v.iter().any(|x| (x - 0.5).abs() > 1e-4));
    let again = FourierImage::random(
        9,
        6,
        1.0,
        FourierImage::DEFAULT_STD,
        &mut ChaCha8Rng::seed_from_u64(1),
    )?;
    assert_eq!(values(&again.to_rgb()?)?, v);
    let p = PyramidImage::random(9, 6, 4, 0.1, &mut rng)?;
    assert_eq!(p.params().len(), 4);
    assert_eq!(p.to_rgb()?.dims(), &[1, 3, 6, 9]);
    let px = PixelImage::random(3, 2, 0.1, &mut rng)?;
    assert_eq!(px.to_rgb()?.dims(), &[1, 3, 2, 3]);
    Ok(())
}

#[test]
fn bad_sizes_are_errors() -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    assert!(FourierImage::random(0, 4, 1.0, 0.01, &mut rng).is_err());
    assert!(PyramidImage::random(4, 4, 0, 0.01, &mut rng).is_err());
    let wrong = Tensor::zeros((3, 4, 4), DType::F32, &Device::Cpu)?;
    assert!(matches!(
        PixelImage::from_rgb(&wrong),
        Err(GuideError::Shape { .. })
    ));
    Ok(())
}

#[test]
fn primitives_gradients_match_finite_differences() -> Result<()> {
    let (w, h) = (9, 7);
    let t = |dims: &[usize], seed: u64| seeded_tensor(dims, seed, DType::F64);
    let inputs = [t(&[3], 1)?, t(&[2, 2], 2)?, t(&[2], 3)?, t(&[2, 3], 4)?];
    let weights = seeded_tensor(&[1, 3, h, w], 5, DType::F64)?;
    check_gradients(&inputs, 1e-6, 1e-6, |xs| {
        let img = PrimitivesImage::from_logits(&xs[0], &xs[1], &xs[2], &xs[3], w, h)?;
        Ok(img.to_rgb()?.mul(&weights)?.sum_all()?)
    })
}

/// Every outline passes finite-difference gradients to centre and radius (the kinks of
/// max/min are avoided by the seeded positions, which put no pixel exactly on one).
#[test]
fn shaped_primitives_gradients_match_finite_differences() -> Result<()> {
    let (w, h) = (9, 7);
    let t = |dims: &[usize], seed: u64| seeded_tensor(dims, seed, DType::F64);
    let weights = seeded_tensor(&[1, 3, h, w], 5, DType::F64)?;
    for shape in PrimitiveShape::ALL {
        let inputs = [t(&[3], 1)?, t(&[1, 2], 2)?, t(&[1], 3)?, t(&[1, 3], 4)?];
        check_gradients(&inputs, 1e-6, 1e-5, |xs| {
            let img = PrimitivesImage::from_logits(&xs[0], &xs[1], &xs[2], &xs[3], w, h)?;
            img.set_shape(0, shape)?;
            Ok(img.to_rgb()?.mul(&weights)?.sum_all()?)
        })
        .map_err(|e| GuideError::invalid("test", format!("{shape:?}: {e}")))?;
    }
    Ok(())
}

/// One red primitive of radius `min_radius` (radius logit far below 0) centred on a blue
/// square image of `side` px, drawn as `shape` with the given edge; returns the red channel.
fn red_primitive(
    side: usize,
    shape: PrimitiveShape,
    edge: f64,
    min_radius: f64,
) -> Result<Vec<f64>> {
    let spec = PrimitivesSpec {
        outlines: true,
        edge,
        min_radius,
        ..PrimitivesSpec::new(1)
    };
    let img = PrimitivesImage::from_spec(
        side,
        side,
        &spec,
        1.0,
        (0, 1),
        &mut ChaCha8Rng::seed_from_u64(3),
    )?;
    let dev = Device::Cpu;
    img.background
        .set(&Tensor::new(&[-12f32, -12.0, 12.0], &dev)?)?;
    img.colours
        .set(&Tensor::new(&[[12f32, -12.0, -12.0]], &dev)?)?;
    img.centres.set(&Tensor::new(&[[0f32, 0.0]], &dev)?)?;
    img.radii.set(&Tensor::new(&[-40f32], &dev)?)?;
    img.set_shape(0, shape)?;
    values(&img.to_rgb()?.squeeze(0)?.get(0)?)
}

/// A ring of radius 0.1 of the side has a band 0.045 wide: under the default edge (0.03)
/// no pixel gets past ~0.68 of the ring's colour, under a sharp one (0.012) the band does.
#[test]
fn a_sharp_edge_lets_a_thin_ring_reach_its_colour() -> Result<()> {
    let peak = |edge: f64| -> Result<f64> {
        let red = red_primitive(256, PrimitiveShape::Ring, edge, 0.1)?;
        Ok(red.into_iter().fold(0.0, f64::max))
    };
    let (soft, sharp) = (peak(PrimitivesImage::EDGE)?, peak(0.012)?);
    assert!(soft < 0.7, "default edge peak {soft}");
    assert!(sharp > 0.8, "sharp edge peak {sharp}");
    Ok(())
}

/// The radius never falls below the spec's smallest radius: a disc whose radius logit is
/// far below 0 covers about π·min_radius² of the image.
#[test]
fn min_radius_bounds_the_disc_area() -> Result<()> {
    for min_radius in [PrimitivesImage::MIN_RADIUS, 0.08] {
        let red = red_primitive(400, PrimitiveShape::Circle, 0.002, min_radius)?;
        // The centre logit is 0, so the disc sits at the image's centre, wholly inside.
        let area = red.iter().filter(|&&v| v > 0.5).count() as f64 / 16e4;
        let expected = std::f64::consts::PI * min_radius * min_radius;
        assert!(
            (area / expected - 1.0).abs() < 0.1,
            "min radius {min_radius}: area {area}, expected {expected}"
        );
    }
    Ok(())
}

/// Edges outside (0, 0.5] and smallest radii outside [0, 0.4] are refused by name.
#[test]
fn outline_settings_are_checked() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for (edge, min_radius, field) in [
        (0.0, 0.03, "primitive edge"),
        (f64::NAN, 0.03, "primitive edge"),
        (0.03, -0.1, "primitive min radius"),
        (0.03, 0.41, "primitive min radius"),
    ] {
        let spec = PrimitivesSpec {
            edge,
            min_radius,
            ..PrimitivesSpec::new(1)
        };
        let e = PrimitivesImage::from_spec(8, 8, &spec, 1.0, (0, 1), &mut rng)
            .err()
            .expect("refused");
        assert!(e.to_string().contains(field), "{e}");
    }
}

/// Shape choice adds one slot per primitive after the colour slots; choosing there changes
/// the outline (and the picture), choosing an absent option is refused.
#[test]
fn shape_slots_follow_colour_slots_and_change_the_outline() -> Result<()> {
    let spec = PrimitivesSpec {
        palette: Some(vec![[255, 0, 0], [0, 0, 255]]),
        outlines: true,
        ..PrimitivesSpec::new(1)
    };
    let img = PrimitivesImage::from_spec(
        32,
        32,
        &spec,
        1.0,
        (0, 1),
        &mut ChaCha8Rng::seed_from_u64(1),
    )?;
    assert_eq!(img.choice_slots(), vec![2, 2, 6]);
    img.set_choice(0, 1)?;
    img.set_choice(1, 0)?;
    let disc = img.to_rgb()?;
    let star = PrimitiveShape::ALL
        .iter()
        .position(|s| *s == PrimitiveShape::Star);
    img.set_choice(2, star.unwrap())?;
    assert_eq!(img.shapes(), vec![PrimitiveShape::Star]);
    let starred = img.to_rgb()?;
    let changed = (disc - starred)?.abs()?.gt(0.5)?;
    let changed = changed
        .to_dtype(DType::F32)?
        .sum_all()?
        .to_scalar::<f32>()?;
    assert!(
        changed >= 10.0,
        "a star differs from a disc in {changed} values"
    );
    assert!(img.set_choice(2, 6).is_err());
    assert!(img.set_choice(3, 0).is_err());
    let plain = PrimitivesImage::from_spec(
        32,
        32,
        &PrimitivesSpec::new(2),
        1.0,
        (0, 1),
        &mut ChaCha8Rng::seed_from_u64(1),
    )?;
    assert!(
        plain.choice_slots().is_empty(),
        "no palette, no shape choice"
    );
    Ok(())
}

/// A disc shows its colour at its centre and the background shows in the corners;
/// a later disc covers an earlier one.
#[test]
fn primitives_paint_discs_over_the_background() -> Result<()> {
    let (w, h) = (64, 48);
    let dev = Device::Cpu;
    let logit = |p: f64| (p / (1.0 - p)).ln();
    // Background blue; disc 0 red at (0.25, 0.5); disc 1 green at the same place, smaller.
    let bg = Tensor::new(&[-9.0f32, -9.0, 9.0], &dev)?;
    let centres = Tensor::new(
        &[[logit(0.25) as f32, 0.0], [logit(0.25) as f32, 0.0]],
        &dev,
    )?;
    let radii = Tensor::new(&[2.0f32, -1.0], &dev)?;
    let colours = Tensor::new(&[[9.0f32, -9.0, -9.0], [-9.0, 9.0, -9.0]], &dev)?;
    let img = PrimitivesImage::from_logits(&bg, &centres, &radii, &colours, w, h)?;
    let rgb = img.to_rgb()?.squeeze(0)?;
    let px = |x: usize, y: usize| -> Result<Vec<f32>> {
        Ok(rgb
            .narrow(1, y, 1)?
            .narrow(2, x, 1)?
            .flatten_all()?
            .to_vec1::<f32>()?)
    };
    let near = |a: Vec<f32>, b: [f32; 3]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 0.05);
    assert!(
        near(px(16, 24)?, [0.0, 1.0, 0.0]),
        "centre: {:?}",
        px(16, 24)?
    );
    assert!(
        near(px(16 + 14, 24)?, [1.0, 0.0, 0.0]),
        "ring of disc 0: {:?}",
        px(30, 24)?
    );
    assert!(
        near(px(63, 0)?, [0.0, 0.0, 1.0]),
        "corner: {:?}",
        px(63, 0)?
    );
    Ok(())
}

/// With a palette every pixel is a palette colour (soft edges blend two of them), the
/// colour scores still get gradients (straight-through), and `set_choice` picks colours.
#[test]
fn palette_primitives_show_palette_colours_and_take_gradients() -> Result<()> {
    let palette = vec![[255u8, 0, 0], [0, 255, 0], [0, 0, 255]];
    let spec = PrimitivesSpec {
        palette: Some(palette.clone()),
        ..PrimitivesSpec::new(1)
    };
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let img = PrimitivesImage::from_spec(40, 40, &spec, 1.0, (0, 1), &mut rng)?;
    assert_eq!(img.choice_slots(), vec![3, 3]);
    img.set_choice(0, 2)?; // background blue
    img.set_choice(1, 0)?; // disc red
    let rgb = img.to_rgb()?.squeeze(0)?;
    let px = |x: usize, y: usize| -> Result<Vec<f32>> {
        Ok(rgb
            .narrow(1, y, 1)?
            .narrow(2, x, 1)?
            .flatten_all()?
            .to_vec1::<f32>()?)
    };
    let near = |a: Vec<f32>, b: [f32; 3]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-4);
    let c = candle_nn::ops::sigmoid(img.centres.as_tensor())?.to_vec2::<f32>()?;
    let (cx, cy) = ((c[0][0] * 40.0) as usize, (c[0][1] * 40.0) as usize);
    assert!(
        near(px(cx, cy)?, [1.0, 0.0, 0.0]),
        "disc: {:?}",
        px(cx, cy)?
    );
    // The corner farthest from the disc.
    let far = |v: usize| if v < 20 { 39 } else { 0 };
    let (fx, fy) = (far(cx), far(cy));
    assert!(
        near(px(fx, fy)?, [0.0, 0.0, 1.0]),
        "background: {:?}",
        px(fx, fy)?
    );
    let weights = seeded_tensor(&[1, 3, 40, 40], 9, DType::F32)?;
    let grads = img.to_rgb()?.mul(&weights)?.sum_all()?.backward()?;
    for v in img.params() {
        let g = grads.get(&v).expect("every parameter gets a gradient");
        let norm = g.sqr()?.sum_all()?.to_scalar::<f32>()?;
        assert!(norm > 0.0, "zero gradient for a {:?} parameter", v.dims());
    }
    let e = img.set_choice(2, 0).unwrap_err().to_string();
    assert!(e.contains("2 slots"), "{e}");
    let e = img.set_choice(1, 3).unwrap_err().to_string();
    assert!(e.contains("3 options"), "{e}");
    let free = PrimitivesImage::random(8, 8, 2, 1.0, &mut rng)?;
    assert!(free.choice_slots().is_empty());
    assert!(free.set_choice(0, 0).is_err());
    Ok(())
}

/// Nine one-disc starts put their discs at the centres of the 3×3 grid.
#[test]
fn primitives_starts_cover_the_grid() -> Result<()> {
    let mut seen = Vec::new();
    for start in 0..9 {
        let spec = PrimitivesSpec::new(1);
        let img = PrimitivesImage::from_spec(
            90,
            90,
            &spec,
            1.0,
            (start, 9),
            &mut ChaCha8Rng::seed_from_u64(1),
        )?;
        let c = candle_nn::ops::sigmoid(img.centres.as_tensor())?.to_vec2::<f32>()?;
        let cell = |v: f32| (v * 3.0).floor() as usize;
        let (x, y) = (cell(c[0][0]), cell(c[0][1]));
        assert_eq!(
            (x, y),
            (start % 3, start / 3),
            "start {start}: centre {c:?}"
        );
        seen.push((x, y));
    }
    seen.dedup();
    assert_eq!(seen.len(), 9);
    Ok(())
}

#[test]
fn primitives_are_seeded_and_reject_zero_discs() -> Result<()> {
    let make = |seed| -> Result<Vec<f64>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        values(&PrimitivesImage::random(20, 12, 4, 1.0, &mut rng)?.to_rgb()?)
    };
    assert_eq!(make(3)?, make(3)?);
    assert_ne!(make(3)?, make(4)?);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let err = PrimitivesImage::random(20, 12, 0, 1.0, &mut rng)
        .err()
        .expect("zero discs is an error")
        .to_string();
    assert!(err.contains("at least 1"), "{err}");
    Ok(())
}
