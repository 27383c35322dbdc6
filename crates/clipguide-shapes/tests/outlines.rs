//! The guide's shaped primitives against this world's renderer: the one place where the two
//! outline geometries (signed distances with gradients, CPU point tests) are held together.

/// The guide's shaped primitives draw the dataset's outlines: at the same centre and radius,
/// each primitive overlaps the dataset's rendering of its own shape (IoU ≥ 0.85) more than the
/// rendering of any other shape, so a model trained on the dataset sees the shape it was
/// asked to draw.
#[test]
fn shaped_primitives_match_the_dataset_outlines() {
    use candle_core::Device;
    use clipguide_guide::{Parameterization, PrimitiveShape, PrimitivesImage};
    use clipguide_shapes::palette::Colour;
    use clipguide_shapes::{render, ObjectGroup, Placement, SceneSpec, Shape, Size};
    let side = 96usize;
    let dataset_mask = |shape: Shape| -> Vec<bool> {
        let scene = SceneSpec {
            background: Colour::Blue,
            pattern: None,
            groups: vec![ObjectGroup {
                shape,
                colour: Colour::Red,
                size: Size::Large,
                count: 1,
                placement: Placement::Center,
                jitter: [0.0, 0.0],
            }],
        };
        render(&scene, side as u32)
            .pixels()
            .map(|p| p.0[0] > 127)
            .collect()
    };
    let dev = Device::Cpu;
    let logit = |p: f64| (p / (1.0 - p)).ln() as f32;
    let radius = Size::Large.diameter() / 2.0;
    let r_logit = logit(
        (radius - PrimitivesImage::MIN_RADIUS)
            / (PrimitivesImage::MAX_RADIUS - PrimitivesImage::MIN_RADIUS),
    );
    let primitive_mask = |shape: PrimitiveShape| -> Vec<bool> {
        let t = |v: &[f32], dims: &[usize]| {
            candle_core::Tensor::from_slice(v, dims, &dev).expect("test tensor")
        };
        let img = PrimitivesImage::from_logits(
            &t(&[-9.0, -9.0, 9.0], &[3]),
            &t(&[0.0, 0.0], &[1, 2]),
            &t(&[r_logit], &[1]),
            &t(&[9.0, -9.0, -9.0], &[1, 3]),
            side,
            side,
        )
        .expect("primitive image");
        img.set_shape(0, shape).expect("one primitive");
        let rgb = img.to_rgb().expect("render").squeeze(0).unwrap();
        let red = rgb.get(0).unwrap().flatten_all().unwrap();
        red.to_vec1::<f32>()
            .unwrap()
            .into_iter()
            .map(|v| v > 0.5)
            .collect()
    };
    let iou = |a: &[bool], b: &[bool]| {
        let inter = a.iter().zip(b).filter(|(x, y)| **x && **y).count() as f64;
        let union = a.iter().zip(b).filter(|(x, y)| **x || **y).count() as f64;
        inter / union.max(1.0)
    };
    let pairs = [
        (PrimitiveShape::Circle, Shape::Circle),
        (PrimitiveShape::Square, Shape::Square),
        (PrimitiveShape::Triangle, Shape::Triangle),
        (PrimitiveShape::Star, Shape::Star),
        (PrimitiveShape::Cross, Shape::Cross),
        (PrimitiveShape::Ring, Shape::Ring),
    ];
    let data: Vec<Vec<bool>> = pairs.iter().map(|(_, s)| dataset_mask(*s)).collect();
    for (i, (p, s)) in pairs.iter().enumerate() {
        let mine = primitive_mask(*p);
        let own = iou(&mine, &data[i]);
        assert!(own >= 0.85, "{p:?} vs the dataset's {s:?}: IoU {own:.3}");
        for (j, (_, other)) in pairs.iter().enumerate() {
            if j != i {
                let cross = iou(&mine, &data[j]);
                assert!(
                    cross < own,
                    "{p:?} overlaps the dataset's {other:?} ({cross:.3}) as much as its own {s:?} ({own:.3})"
                );
            }
        }
    }
}
