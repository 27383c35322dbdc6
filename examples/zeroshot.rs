//! The library calls behind `clipguide classify --labels-file/--templates`, `zeroshot` and
//! `annotate`, on a few of the shapes world's scenes with the built-in model: a K-LITE
//! classification, an ImageFolder evaluation (directly and with cached embeddings), and a COCO
//! file for a folder.
//!
//! `cargo run --release --example zeroshot -- OUT_DIR`

use candle_core::Device;
use clipguide_clip::Clip;
use clipguide_shapes::{SceneConfig, ShapesDataset};
use clipguide_zeroshot::coco::annotate;
use clipguide_zeroshot::detect::{DetectOptions, DetectPrompts};
use clipguide_zeroshot::folder::{evaluate, evaluate_cached, EmbeddingCache, ImageFolder};
use clipguide_zeroshot::prompts::{class_embeddings, classify, ClassPrompt, Templates};
use std::ops::ControlFlow;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::args().nth(1).ok_or("usage: zeroshot OUT_DIR")?);
    let clip = Clip::builtin(&Device::Cpu)?;
    let ds = ShapesDataset::with_config(5, 128, SceneConfig::single_group())?;

    // K-LITE: words the model never saw, with definitions in its vocabulary, over 80 templates.
    let (img, captions, _) = ds.get(0);
    let classes = [
        ClassPrompt::with_definition("disc", "a circle"),
        ClassPrompt::with_definition("box", "a square"),
        ClassPrompt::with_definition("doughnut", "a ring"),
    ];
    let ranked = classify(&clip, &img, &classes, &Templates::clip80())?;
    println!(
        "{:?}: best {:?} ({:.2})",
        captions[0], ranked[0].label, ranked[0].prob
    );

    // An ImageFolder of 40 scenes by shape, evaluated zero-shot.
    let folder_dir = out.join("by_shape");
    let flat_dir = out.join("flat");
    std::fs::create_dir_all(&flat_dir)?;
    for i in 0..40 {
        let (img, _, scene) = ds.get(i);
        let class_dir = folder_dir.join(scene.groups[0].shape.name());
        std::fs::create_dir_all(&class_dir)?;
        img.save(class_dir.join(format!("{i:03}.png")))?;
        if i < 5 {
            img.save(flat_dir.join(format!("{i:03}.png")))?;
        }
    }
    let folder = ImageFolder::scan(&folder_dir)?;
    let names: Vec<ClassPrompt> = folder
        .class_names(None)?
        .iter()
        .map(|n| ClassPrompt::new(n))
        .collect();
    let text = class_embeddings(&clip, &names, &Templates::single("a {}")?)?;
    let report = evaluate(&clip, &folder, &text, 16, &mut |_, _| {})?;
    println!(
        "top-1 {:.3}, top-5 {:.3} on {} images",
        report.top1, report.top5, report.images
    );
    // The same with the image embeddings kept in the folder's store: a second run (other class
    // wording, say) embeds nothing.
    let store = folder_dir.join(".clipguide-store");
    let options = clipguide_index::IndexOptions {
        ann: clipguide_index::AnnPolicy::Never,
        ..Default::default()
    };
    let cache = EmbeddingCache {
        store: &store,
        model_key: "builtin",
        options: &options,
    };
    let cached = evaluate_cached(&clip, &folder, &text, &cache, &mut ())?;
    println!(
        "cached: top-1 {:.3}; {} images embedded, {} from the store",
        cached.report.top1,
        cached.index.embedded,
        cached.index.kept + cached.index.reused
    );

    // COCO annotations for a flat folder (rerunning resumes the file).
    let opts = DetectOptions::default();
    let labels = [
        ClassPrompt::new("red circle"),
        ClassPrompt::new("blue square"),
    ];
    let prompts = DetectPrompts::new(&clip, &labels, &Templates::single("a {}")?, &opts)?;
    let coco = out.join("annotations.json");
    let s = annotate(&clip, &flat_dir, &prompts, &opts, &coco, 10, &mut |_, _| {
        ControlFlow::Continue(())
    })?;
    println!(
        "{}: {} images, {} annotations",
        coco.display(),
        s.images,
        s.annotations
    );
    Ok(())
}
