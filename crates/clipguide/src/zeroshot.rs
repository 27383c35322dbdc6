//! `clipguide zeroshot`: zero-shot accuracy on an ImageFolder (one sub-folder per class).

use crate::index::{default_store, Bar};
use crate::prompt_args::{KnowledgeArgs, TemplateArgs};
use crate::Loaded;
use anyhow::{Context, Result};
use clipguide_index::IndexOptions;
use clipguide_zeroshot::folder::{evaluate, evaluate_cached, EmbeddingCache, ImageFolder};
use clipguide_zeroshot::prompts::{class_embeddings, read_lines_file};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ZeroshotArgs {
    /// DIR/<class>/<image>: one sub-folder per class, classes in sorted folder order.
    #[arg(long)]
    dir: PathBuf,
    /// One class name per line, in sorted folder order (default: folder names, _ as spaces).
    #[arg(long)]
    classnames: Option<PathBuf>,
    /// Images embedded per forward pass.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Keep the image embeddings in this store (default: DIR/.clipguide-store, the one
    /// `search --dir` keeps), so a re-run embeds only new or changed images.
    #[arg(long, conflicts_with = "no_cache")]
    store: Option<PathBuf>,
    /// Embed every image afresh and write no store.
    #[arg(long)]
    no_cache: bool,
    /// Confusion pairs listed (the JSON has them all).
    #[arg(long, default_value_t = 10)]
    confusions: usize,
    #[command(flatten)]
    templates: TemplateArgs,
    #[command(flatten)]
    knowledge: KnowledgeArgs,
}

pub fn run(a: ZeroshotArgs, m: &Loaded, json: bool) -> Result<()> {
    let folder = ImageFolder::scan(&a.dir)?;
    let names = match &a.classnames {
        Some(p) => folder.class_names(Some(&read_lines_file(p)?))?,
        None => folder.class_names(None)?,
    };
    let classes = a.knowledge.define(&names)?;
    let text = class_embeddings(&m.clip, &classes, &a.templates.templates()?)?;
    let context = || format!("evaluating {}", a.dir.display());
    let report = if a.no_cache {
        direct(&a, m, &folder, &text, json).with_context(context)?
    } else {
        let store = a.store.clone().unwrap_or_else(|| default_store(&a.dir));
        let options = IndexOptions {
            batch: a.batch,
            // The cache is scanned whole: an ANN index would only cost time and disk.
            ann: clipguide_index::AnnPolicy::Never,
            ..IndexOptions::default()
        };
        let model_key = m.key()?;
        let cache = EmbeddingCache {
            store: &store,
            model_key: &model_key,
            options: &options,
        };
        let mut bar = Bar::new(json);
        let cached = evaluate_cached(&m.clip, &folder, &text, &cache, &mut bar);
        bar.finish();
        let cached = cached.with_context(context)?;
        for n in &cached.index.notices {
            eprintln!("note: {n}");
        }
        if !json {
            eprintln!(
                "{} images embedded, {} from the store {}",
                cached.index.embedded,
                cached.index.kept + cached.index.reused,
                store.display()
            );
        }
        cached.report
    };
    for s in &report.skipped {
        eprintln!("skipped {}: {}", s.path.display(), s.error);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "{} images, {} classes{}: top-1 {:.2}%, top-5 {:.2}%",
        report.images,
        report.per_class.len(),
        if report.skipped.is_empty() {
            String::new()
        } else {
            format!(" ({} unreadable, skipped)", report.skipped.len())
        },
        100.0 * report.top1,
        100.0 * report.top5
    );
    for c in &report.per_class {
        println!(
            "  {:<30} {:>6.2}%  ({} images)",
            c.class,
            100.0 * c.top1,
            c.images
        );
    }
    if !report.confusions.is_empty() {
        println!("most confused (truth → predicted):");
        for c in report.confusions.iter().take(a.confusions) {
            println!("  {:>5}  {} → {}", c.count, c.truth, c.predicted);
        }
    }
    Ok(())
}

/// Every image through the model, nothing stored.
fn direct(
    a: &ZeroshotArgs,
    m: &Loaded,
    folder: &ImageFolder,
    text: &candle_core::Tensor,
    json: bool,
) -> Result<clipguide_zeroshot::folder::FolderReport> {
    let bar = if json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(folder.images.len() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} images [{elapsed_precise}<{eta_precise}]",
        )
        .expect("valid template"),
    );
    let report = evaluate(&m.clip, folder, text, a.batch, &mut |done, _| {
        bar.set_position(done as u64)
    });
    bar.finish_and_clear();
    Ok(report?)
}
