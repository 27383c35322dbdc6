//! Behaviour of the synthetic dataset through the public API: determinism, captions, disk round trip.

use clipguide_shapes::{
    read_captions, render, write_dataset, DatasetError, SceneConfig, ShapesDataset, CAPTIONS_FILE,
};

#[test]
fn same_seed_gives_identical_items_and_different_seeds_differ() {
    let a = ShapesDataset::new(42, 64).unwrap();
    let b = ShapesDataset::new(42, 64).unwrap();
    let c = ShapesDataset::new(43, 64).unwrap();
    for i in [0usize, 1, 17, 1000] {
        let (img_a, caps_a, scene_a) = a.get(i);
        let (img_b, caps_b, scene_b) = b.get(i);
        assert_eq!(img_a.as_raw(), img_b.as_raw(), "item {i} bytes differ");
        assert_eq!(caps_a, caps_b);
        assert_eq!(scene_a, scene_b);
    }
    let differing = (0..8)
        .filter(|&i| a.get(i).0.as_raw() != c.get(i).0.as_raw())
        .count();
    assert!(
        differing >= 7,
        "only {differing} of 8 items differ across seeds"
    );
    // Neighbouring items of one seed are different scenes too.
    assert_ne!(a.get(0).2, a.get(1).2);
}

#[test]
fn items_do_not_depend_on_access_order() {
    let ds = ShapesDataset::new(5, 32).unwrap();
    let forward: Vec<_> = (0..5).map(|i| ds.get(i).1).collect();
    let backward: Vec<_> = (0..5).rev().map(|i| ds.get(i).1).collect();
    let backward: Vec<_> = backward.into_iter().rev().collect();
    assert_eq!(forward, backward);
}

#[test]
fn get_renders_the_returned_scene_at_the_requested_size() {
    let ds = ShapesDataset::new(9, 48).unwrap();
    let (img, caps, scene) = ds.get(3);
    assert_eq!(img.dimensions(), (48, 48));
    assert_eq!(img.as_raw(), render(&scene, 48).as_raw());
    assert!(!caps.is_empty());
}

#[test]
fn invalid_sizes_and_configs_are_rejected_with_a_fix() {
    let err = ShapesDataset::new(0, 4).unwrap_err();
    assert!(matches!(err, DatasetError::InvalidSize { size: 4 }));
    assert!(err.to_string().contains("between 16 and"), "{err}");
    let bad = SceneConfig {
        max_groups: 0,
        ..SceneConfig::default()
    };
    let err = ShapesDataset::with_config(0, 64, bad).unwrap_err();
    assert!(err.to_string().contains("max_groups"), "{err}");
    let bad = SceneConfig {
        pattern_probability: 1.5,
        ..SceneConfig::default()
    };
    assert!(ShapesDataset::with_config(0, 64, bad).is_err());
}

#[test]
fn write_dataset_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("shapes");
    let summary = write_dataset(&out, 6, 7, 32).unwrap();
    assert_eq!(summary.count, 6);
    assert_eq!(summary.captions_path, out.join(CAPTIONS_FILE));

    let records = read_captions(&summary.captions_path).unwrap();
    assert_eq!(records.len(), 6);
    let ds = ShapesDataset::new(7, 32).unwrap();
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record.file, format!("images/{i:06}.png"));
        let on_disk = image::open(out.join(&record.file)).unwrap().to_rgb8();
        let (img, caps, scene) = ds.get(i);
        assert_eq!(
            on_disk.as_raw(),
            img.as_raw(),
            "image {i} differs after PNG round trip"
        );
        assert_eq!(record.captions, caps);
        assert_eq!(record.scene, scene);
    }
    // No temporary files left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .chain(std::fs::read_dir(out.join("images")).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The JSON shape promised to other tools.
    let first_line = std::fs::read_to_string(&summary.captions_path).unwrap();
    let value: serde_json::Value =
        serde_json::from_str(first_line.lines().next().unwrap()).unwrap();
    assert!(value["file"].is_string());
    assert!(value["captions"].is_array());
    assert!(value["scene"]["background"].is_string());
    assert!(value["scene"]["groups"][0]["placement"].is_string());
}

#[test]
fn write_dataset_reports_unwritable_directory() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let err = write_dataset(&blocker.join("sub"), 1, 0, 32).unwrap_err();
    assert!(matches!(err, DatasetError::Io { .. }), "{err:?}");
}

#[test]
fn read_captions_names_the_bad_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(CAPTIONS_FILE);
    std::fs::write(&path, "\n{\"file\": 3}\n").unwrap();
    match read_captions(&path).unwrap_err() {
        DatasetError::Json { line, .. } => assert_eq!(line, 2),
        other => panic!("expected a JSON error, got {other:?}"),
    }
}
