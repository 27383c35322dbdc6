//! `clipguide zeroshot`: zero-shot accuracy on an ImageFolder (one sub-folder per class).

use crate::prompt_args::{KnowledgeArgs, TemplateArgs};
use anyhow::{Context, Result};
use clipguide_clip::Clip;
use clipguide_zeroshot::folder::{evaluate, ImageFolder};
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
    /// Confusion pairs listed (the JSON has them all).
    #[arg(long, default_value_t = 10)]
    confusions: usize,
    #[command(flatten)]
    templates: TemplateArgs,
    #[command(flatten)]
    knowledge: KnowledgeArgs,
}

pub fn run(a: ZeroshotArgs, clip: &Clip, json: bool) -> Result<()> {
    let folder = ImageFolder::scan(&a.dir)?;
    let names = match &a.classnames {
        Some(p) => folder.class_names(Some(&read_lines_file(p)?))?,
        None => folder.class_names(None)?,
    };
    let classes = a.knowledge.define(&names)?;
    let text = class_embeddings(clip, &classes, &a.templates.templates()?)?;
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
    let report = evaluate(clip, &folder, &text, a.batch, &mut |done, _| {
        bar.set_position(done as u64)
    });
    bar.finish_and_clear();
    let report = report.with_context(|| format!("evaluating {}", a.dir.display()))?;
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
