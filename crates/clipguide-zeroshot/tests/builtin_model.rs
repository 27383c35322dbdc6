//! The library against the built-in model on the shapes world: ensembles against embeddings
//! computed directly, folder evaluation against the world's own zero-shot probe on the same
//! images, detection of a rendered object, and COCO files (resume, yesterday's file).

use candle_core::Device;
use clipguide_clip::{cosine_matrix, l2_normalize, Clip};
use clipguide_shapes::palette::Colour;
use clipguide_shapes::{
    object_boxes, render, zero_shot_task, Attribute, ObjectGroup, Placement, PromptStyle,
    SceneConfig, SceneSpec, Shape, ShapesDataset, Size,
};
use clipguide_zeroshot::coco::{annotate, CocoFile};
use clipguide_zeroshot::detect::{detect, iou, DetectOptions, DetectPrompts};
use clipguide_zeroshot::folder::{
    evaluate, evaluate_cached, EmbeddingCache, FolderReport, ImageFolder,
};
use clipguide_zeroshot::prompts::{class_embeddings, ClassPrompt, Templates};
use clipguide_zeroshot::ZeroShotError;
use std::ops::ControlFlow;
use std::path::Path;

fn clip() -> Clip {
    Clip::builtin(&Device::Cpu).unwrap()
}

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn max_diff(a: &candle_core::Tensor, b: &candle_core::Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[test]
fn an_ensemble_is_the_normalised_mean_of_normalised_template_embeddings() {
    let clip = clip();
    let t = ["a {}", "a picture of a {}"];
    let templates = Templates::single(t[0]).unwrap();
    let two = {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.txt");
        std::fs::write(&p, format!("# two\n{}\n\n{}\n", t[0], t[1])).unwrap();
        Templates::from_file(&p).unwrap()
    };
    let classes = [
        ClassPrompt::new("red circle"),
        ClassPrompt::with_definition("disc", "a round flat circle"),
    ];
    let got = class_embeddings(&clip, &classes, &two).unwrap();
    let mut rows = Vec::new();
    for c in ["red circle", "disc, a round flat circle"] {
        let a = l2_normalize(&clip.embed_texts(&[t[0].replace("{}", c)]).unwrap()).unwrap();
        let b = l2_normalize(&clip.embed_texts(&[t[1].replace("{}", c)]).unwrap()).unwrap();
        rows.push(l2_normalize(&((a + b).unwrap() / 2.0).unwrap()).unwrap());
    }
    let want = candle_core::Tensor::cat(&rows, 0).unwrap();
    assert!(max_diff(&got, &want) < 1e-5, "{}", max_diff(&got, &want));
    // One template: just the normalised prompt embedding, and not the ensemble.
    let one = class_embeddings(&clip, &classes[..1], &templates).unwrap();
    assert!(
        max_diff(
            &one,
            &l2_normalize(&clip.embed_texts(&["a red circle"]).unwrap()).unwrap()
        ) < 1e-5
    );
    assert!(max_diff(&one, &got.narrow(0, 0, 1).unwrap()) > 1e-3);
}

/// Shape classification of single-object scenes written as a class-per-folder tree agrees,
/// image for image, with the shapes world's own probe (`zero_shot_task`, isolated wording) on
/// the same scenes; an unreadable file is skipped and counted.
#[test]
fn folder_accuracy_agrees_with_the_worlds_zero_shot_probe() {
    let clip = clip();
    let dir = tempfile::tempdir().unwrap();
    let ds = ShapesDataset::with_config(777, 64, SceneConfig::single_group()).unwrap();
    let n = 60;
    let mut hits = 0;
    for i in 0..n {
        let (img, _, scene) = ds.get(i);
        let shape = scene.groups[0].shape.name();
        let class_dir = dir.path().join(shape);
        std::fs::create_dir_all(&class_dir).unwrap();
        img.save(class_dir.join(format!("{i:03}.png"))).unwrap();
        let task = zero_shot_task(&scene, Attribute::Shape, PromptStyle::Isolated).unwrap();
        let cos = cosine_matrix(
            &clip.embed_images(&[img]).unwrap(),
            &clip.embed_texts(&task.candidates).unwrap(),
        )
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
        let best = (0..cos[0].len())
            .max_by(|&a, &b| cos[0][a].total_cmp(&cos[0][b]))
            .unwrap();
        hits += usize::from(best == task.correct);
    }
    std::fs::write(dir.path().join("star/broken.png"), b"not a png").unwrap();
    let folder = ImageFolder::scan(dir.path()).unwrap();
    assert_eq!(
        folder.classes,
        ["circle", "cross", "ring", "square", "star", "triangle"]
    );
    let names = folder.class_names(None).unwrap();
    let classes: Vec<ClassPrompt> = names.iter().map(|n| ClassPrompt::new(n)).collect();
    let text = class_embeddings(&clip, &classes, &Templates::single("a {}").unwrap()).unwrap();
    let mut calls = Vec::new();
    let report = evaluate(&clip, &folder, &text, 7, &mut |done, total| {
        calls.push((done, total))
    })
    .unwrap();
    assert_eq!(report.images, n);
    assert_eq!(report.skipped.len(), 1);
    assert!(report.skipped[0].path.ends_with("star/broken.png"));
    assert_eq!((report.top1 * n as f32).round() as usize, hits);
    assert!(
        hits > n / 2,
        "the built-in model should beat chance by far: {hits}/{n}"
    );
    assert!(report.top5 >= report.top1);
    assert_eq!(report.per_class.iter().map(|c| c.images).sum::<usize>(), n);
    assert_eq!(
        report.confusions.iter().map(|c| c.count).sum::<usize>(),
        n - hits
    );
    assert_eq!(calls.last(), Some(&(n + 1, n + 1)));
    assert_eq!(calls.len(), (n + 1).div_ceil(7));
}

/// Writes `n` single-object scenes of the built-in world into `dir/<shape>/`, and one
/// unreadable file.
fn shape_folder(dir: &Path, n: usize) {
    let ds = ShapesDataset::with_config(778, 64, SceneConfig::single_group()).unwrap();
    for i in 0..n {
        let (img, _, scene) = ds.get(i);
        let class_dir = dir.join(scene.groups[0].shape.name());
        std::fs::create_dir_all(&class_dir).unwrap();
        img.save(class_dir.join(format!("{i:03}.png"))).unwrap();
    }
    std::fs::create_dir_all(dir.join("star")).unwrap();
    std::fs::write(dir.join("star/broken.png"), b"not a png").unwrap();
}

/// Stops the store update after the first batch.
struct StopAfterFirst;

impl clipguide_index::Progress for StopAfterFirst {
    fn advanced(&mut self, _n: usize) -> ControlFlow<()> {
        ControlFlow::Break(())
    }
}

#[test]
fn cached_evaluation_gives_the_direct_report_and_embeds_each_image_once() {
    let clip = clip();
    let dir = tempfile::tempdir().unwrap();
    let n = 40;
    shape_folder(dir.path(), n);
    let folder = ImageFolder::scan(dir.path()).unwrap();
    let names = folder.class_names(None).unwrap();
    let classes: Vec<ClassPrompt> = names.iter().map(|n| ClassPrompt::new(n)).collect();
    let text = class_embeddings(&clip, &classes, &Templates::single("a {}").unwrap()).unwrap();
    let direct = evaluate(&clip, &folder, &text, 8, &mut |_, _| {}).unwrap();

    let store = dir.path().join(".clipguide-store");
    let options = clipguide_index::IndexOptions {
        vectors: clipguide_index::VectorType::F32,
        part_rows: 16,
        batch: 8,
        ..Default::default()
    };
    let cache = EmbeddingCache {
        store: &store,
        model_key: "builtin-test",
        options: &options,
    };
    // Stopped after its first batch: an error saying so, and the batch kept.
    let stopped = evaluate_cached(&clip, &folder, &text, &cache, &mut StopAfterFirst)
        .err()
        .expect("a stopped run is not a report");
    assert!(
        matches!(stopped, ZeroShotError::Stopped { embedded: 8, .. }),
        "{stopped}"
    );
    let first = evaluate_cached(&clip, &folder, &text, &cache, &mut ()).unwrap();
    assert_eq!(
        first.index.embedded,
        n - 8,
        "the stopped run's batch is reused"
    );
    assert_eq!(first.report.images, n);
    // Same images, same classes: the same report as embedding directly, unreadable file included.
    assert_eq!(first.report.per_class, direct.per_class);
    assert_eq!(first.report.confusions, direct.confusions);
    assert_eq!(
        (first.report.top1, first.report.top5),
        (direct.top1, direct.top5)
    );
    assert_eq!(first.report.skipped.len(), 1);
    assert!(first.report.skipped[0].path.ends_with("star/broken.png"));

    // Other class wording: no image goes through the model again.
    let other: Vec<ClassPrompt> = names
        .iter()
        .map(|n| ClassPrompt::new(&format!("a {n} shape")))
        .collect();
    let text2 = class_embeddings(&clip, &other, &Templates::single("{}").unwrap()).unwrap();
    let again = evaluate_cached(&clip, &folder, &text2, &cache, &mut ()).unwrap();
    assert_eq!(again.index.embedded, 0);
    assert_eq!(again.index.kept, n);
    assert_eq!(
        again.report,
        evaluate(&clip, &folder, &text2, 8, &mut |_, _| {}).unwrap()
    );

    // Another model's store is refused, not mixed in.
    let other_model = EmbeddingCache {
        model_key: "another-model",
        ..cache
    };
    let e = evaluate_cached(&clip, &folder, &text, &other_model, &mut ())
        .err()
        .expect("a store of another model is refused")
        .to_string();
    assert!(
        e.contains("another-model") && e.contains("builtin-test"),
        "{e}"
    );
}

#[test]
fn empty_folders_are_errors_naming_the_layout() {
    let dir = tempfile::tempdir().unwrap();
    let e = ImageFolder::scan(dir.path()).unwrap_err().to_string();
    assert!(e.contains("no class sub-folders"), "{e}");
    std::fs::create_dir(dir.path().join("cat")).unwrap();
    let e = ImageFolder::scan(dir.path()).unwrap_err().to_string();
    assert!(e.contains("no images"), "{e}");
    let missing = ImageFolder::scan(&dir.path().join("nope"))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("not a folder"), "{missing}");
}

/// A report written by today's build ("yesterday's file" for tomorrow's).
#[test]
fn a_stored_zero_shot_report_reads() {
    let text = std::fs::read_to_string(fixture("zeroshot_report_v1.json")).unwrap();
    let r: FolderReport = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (r.format.as_str(), r.version),
        ("clipguide-zeroshot-report", 1)
    );
    assert_eq!(r.per_class.len(), 6);
    assert_eq!(
        r.per_class.iter().map(|c| c.images).sum::<usize>(),
        r.images
    );
}

fn one_object(size: u32) -> (image::RgbImage, [f32; 4]) {
    let group = ObjectGroup {
        shape: Shape::Circle,
        colour: Colour::Red,
        size: Size::Large,
        count: 1,
        placement: Placement::Center,
        jitter: [0.0, 0.0],
    };
    let scene = SceneSpec {
        background: Colour::Blue,
        pattern: None,
        groups: vec![group],
    };
    (
        render(&scene, size),
        object_boxes(&group, size)[0].map(|v| v as f32),
    )
}

#[test]
fn a_large_rendered_object_is_boxed_and_its_heatmap_peaks_on_it() {
    let clip = clip();
    let (img, gt) = one_object(128);
    let opts = DetectOptions::default();
    let classes = [
        ClassPrompt::new("red circle"),
        ClassPrompt::new("green star"),
    ];
    let prompts =
        DetectPrompts::new(&clip, &classes, &Templates::single("a {}").unwrap(), &opts).unwrap();
    let out = detect(&clip, &img, &prompts, &opts).unwrap();
    let best = &out.detections[0];
    assert_eq!(best.label, "red circle", "{:?}", out.detections);
    assert!(iou(best.bbox, gt) >= 0.5, "{:?} against {gt:?}", best.bbox);
    // The heatmap peaks on the object: its highest cell lies in the object's box, and the cells
    // in the box score higher on average than those outside it.
    let map = &out.heatmaps[0];
    let g = map.grid as usize;
    let cell = 128.0 / g as f32;
    let inside = |i: usize| {
        let (x, y) = (((i % g) as f32 + 0.5) * cell, ((i / g) as f32 + 0.5) * cell);
        x >= gt[0] && x <= gt[2] && y >= gt[1] && y <= gt[3]
    };
    let peak = (0..g * g)
        .max_by(|&a, &b| map.values[a].total_cmp(&map.values[b]))
        .unwrap();
    assert!(
        inside(peak),
        "peak cell {peak} outside {gt:?}: {:?}",
        map.values
    );
    let mean = |keep: bool| {
        let v: Vec<f32> = (0..g * g)
            .filter(|&i| inside(i) == keep)
            .map(|i| map.values[i])
            .collect();
        v.iter().sum::<f32>() / v.len() as f32
    };
    let (mean_in, mean_out) = (mean(true), mean(false));
    assert!(mean_in > mean_out, "in {mean_in}, out {mean_out}");
}

/// Three hard-edged shapes drawn here (not by the world's renderer), each found by its label
/// with a box overlapping the drawn one by at least half, above a label that is not there.
#[test]
fn three_drawn_objects_are_each_boxed_by_their_own_label() {
    let clip = clip();
    let side = 128u32;
    let bg = Colour::Green.rgb();
    // (label, colour, box [x0, y0, x1, y1), shape test on the box's unit square)
    type Inside = fn(f32, f32) -> bool;
    let objects: [(&str, Colour, [u32; 4], Inside); 3] = [
        ("red circle", Colour::Red, [10, 12, 50, 52], |u, v| {
            (u - 0.5).powi(2) + (v - 0.5).powi(2) <= 0.25
        }),
        ("blue square", Colour::Blue, [74, 20, 112, 58], |_, _| true),
        (
            "yellow triangle",
            Colour::Yellow,
            [40, 76, 84, 120],
            |u, v| (u - 0.5).abs() <= v / 2.0,
        ),
    ];
    let img = image::RgbImage::from_fn(side, side, |x, y| {
        for (_, colour, b, inside) in &objects {
            let (u, v) = (
                (x as f32 + 0.5 - b[0] as f32) / (b[2] - b[0]) as f32,
                (y as f32 + 0.5 - b[1] as f32) / (b[3] - b[1]) as f32,
            );
            if (0.0..1.0).contains(&u) && (0.0..1.0).contains(&v) && inside(u, v) {
                return image::Rgb(colour.rgb());
            }
        }
        image::Rgb(bg)
    });
    let opts = DetectOptions::default();
    let mut classes: Vec<ClassPrompt> = objects.iter().map(|o| ClassPrompt::new(o.0)).collect();
    classes.push(ClassPrompt::new("white star"));
    let prompts =
        DetectPrompts::new(&clip, &classes, &Templates::single("a {}").unwrap(), &opts).unwrap();
    let out = detect(&clip, &img, &prompts, &opts).unwrap();
    let best = |label: &str| out.detections.iter().find(|d| d.label == label);
    let absent = best("white star").map_or(0.0, |d| d.score);
    for (label, _, b, _) in &objects {
        let d = best(label).unwrap_or_else(|| panic!("no {label}: {:?}", out.detections));
        let gt = b.map(|v| v as f32);
        assert!(
            iou(d.bbox, gt) >= 0.5,
            "{label}: {:?} against {gt:?}",
            d.bbox
        );
        assert!(
            d.score > absent,
            "{label} {} against white star {absent}",
            d.score
        );
    }
}

fn annotated_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let ds = ShapesDataset::with_config(31, 96, SceneConfig::default()).unwrap();
    for i in 0..3 {
        ds.get(i)
            .0
            .save(dir.path().join(format!("img{i}.png")))
            .unwrap();
    }
    std::fs::write(dir.path().join("img1_broken.jpg"), b"\xff\xd8 truncated").unwrap();
    dir
}

#[test]
fn an_interrupted_and_resumed_annotation_writes_the_same_file() {
    let clip = clip();
    let dir = annotated_folder();
    let opts = DetectOptions::default();
    let classes = [
        ClassPrompt::new("red circle"),
        ClassPrompt::new("blue square"),
    ];
    let prompts =
        DetectPrompts::new(&clip, &classes, &Templates::single("a {}").unwrap(), &opts).unwrap();
    let whole = dir.path().join("whole.json");
    let s = annotate(
        &clip,
        dir.path(),
        &prompts,
        &opts,
        &whole,
        2,
        &mut |_, _| ControlFlow::Continue(()),
    )
    .unwrap();
    assert_eq!(
        (s.images, s.skipped, s.resumed, s.finished),
        (3, 1, 0, true)
    );
    let parts = dir.path().join("parts.json");
    let stopped = annotate(
        &clip,
        dir.path(),
        &prompts,
        &opts,
        &parts,
        1,
        &mut |done, _| {
            if done >= 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    )
    .unwrap();
    assert!(!stopped.finished);
    let partial = CocoFile::read(&parts).unwrap();
    assert_eq!(partial.images.len() + partial.clipguide.skipped.len(), 2);
    let resumed = annotate(
        &clip,
        dir.path(),
        &prompts,
        &opts,
        &parts,
        1,
        &mut |_, _| ControlFlow::Continue(()),
    )
    .unwrap();
    assert_eq!(resumed.resumed, 2);
    assert_eq!(
        std::fs::read(&whole).unwrap(),
        std::fs::read(&parts).unwrap()
    );
    // Other labels do not mix into an existing file.
    let other = DetectPrompts::new(
        &clip,
        &classes[..1],
        &Templates::single("a {}").unwrap(),
        &opts,
    )
    .unwrap();
    let e = annotate(&clip, dir.path(), &other, &opts, &parts, 1, &mut |_, _| {
        ControlFlow::Continue(())
    })
    .unwrap_err();
    assert!(matches!(e, ZeroShotError::BadInput(_)), "{e}");
    // And an empty folder is an error, not an empty file.
    let empty = tempfile::tempdir().unwrap();
    let e = annotate(
        &clip,
        empty.path(),
        &prompts,
        &opts,
        &empty.path().join("a.json"),
        1,
        &mut |_, _| ControlFlow::Continue(()),
    );
    assert!(e.unwrap_err().to_string().contains("no images"));
    assert!(!empty.path().join("a.json").exists());
}

/// An annotation file written by today's build ("yesterday's file" for tomorrow's).
#[test]
fn a_stored_annotation_file_reads_and_a_wrong_version_is_refused() {
    let f = CocoFile::read(&fixture("annotations_v1.json")).unwrap();
    assert_eq!(f.categories.len(), f.clipguide.labels.len());
    assert!(!f.images.is_empty() && !f.annotations.is_empty());
    assert!(f
        .annotations
        .iter()
        .all(|a| f.images.iter().any(|i| i.id == a.image_id)));
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("v99.json");
    let text = std::fs::read_to_string(fixture("annotations_v1.json")).unwrap();
    std::fs::write(&p, text.replacen("\"version\": 1", "\"version\": 99", 1)).unwrap();
    let e = CocoFile::read(&p).unwrap_err().to_string();
    assert!(e.contains("version") && e.contains("99"), "{e}");
}
