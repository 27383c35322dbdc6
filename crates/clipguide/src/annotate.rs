//! `clipguide annotate`: detection over a folder written as COCO JSON, atomically after every
//! few images; an existing file is resumed and Ctrl-C keeps what was done.

use crate::detect::DetectFlags;
use anyhow::{Context, Result};
use clipguide_clip::Clip;
use clipguide_zeroshot::coco::annotate;
use indicatif::{ProgressBar, ProgressStyle};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct AnnotateArgs {
    /// A folder of images (not searched recursively).
    #[arg(long)]
    dir: PathBuf,
    /// Comma-separated labels to find, e.g. "red circle,blue star".
    #[arg(long, value_delimiter = ',')]
    labels: Vec<String>,
    /// The COCO JSON file; if it exists (same labels and settings), the run resumes it.
    #[arg(long)]
    out: PathBuf,
    /// Rewrite the file after this many images.
    #[arg(long, default_value_t = 20)]
    save_every: usize,
    #[command(flatten)]
    detect: DetectFlags,
}

pub fn run(a: AnnotateArgs, clip: &Clip, json: bool) -> Result<()> {
    let (prompts, opts) = a.detect.prepare(clip, &a.labels)?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // Ctrl-C stops after the current image; the file then holds everything done so far.
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst));
    }
    let bar = if json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} images [{elapsed_precise}<{eta_precise}]",
        )
        .expect("valid template"),
    );
    let summary = annotate(
        clip,
        &a.dir,
        &prompts,
        &opts,
        &a.out,
        a.save_every,
        &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            if stop.load(Ordering::SeqCst) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    );
    bar.finish_and_clear();
    let s = summary.with_context(|| format!("annotating {}", a.dir.display()))?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "out": a.out, "images": s.images, "resumed": s.resumed,
                "annotations": s.annotations, "skipped": s.skipped, "finished": s.finished,
            })
        );
    } else {
        println!(
            "{} {}: {} images ({} from the existing file), {} annotations, {} unreadable images skipped",
            if s.finished { "wrote" } else { "stopped; run again to resume" },
            a.out.display(),
            s.images,
            s.resumed,
            s.annotations,
            s.skipped
        );
    }
    Ok(())
}
