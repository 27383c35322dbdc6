//! `clipguide detect`: boxes for labels named in free text, as JSON or a table, drawn on the
//! image and as one similarity heatmap per label.

use crate::prompt_args::{KnowledgeArgs, TemplateArgs};
use anyhow::{Context, Result};
use clipguide_clip::fsutil::write_atomic_with;
use clipguide_clip::Clip;
use clipguide_zeroshot::detect::{detect, DetectOptions, DetectPrompts, Detection};
use image::{Rgb, RgbImage};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct DetectArgs {
    #[arg(long)]
    image: PathBuf,
    /// Comma-separated labels to find, e.g. "red circle,blue star".
    #[arg(long, value_delimiter = ',')]
    labels: Vec<String>,
    #[command(flatten)]
    detect: DetectFlags,
    /// Draw the boxes and their labels (coloured per label) on the image and write it here.
    #[arg(short = 'o', long)]
    out: Option<PathBuf>,
    /// Write one similarity map per label into this folder as <label>.png (characters other
    /// than letters and digits written as _).
    #[arg(long)]
    heatmap: Option<PathBuf>,
}

/// Detection settings shared with `annotate`.
#[derive(clap::Args, Debug)]
pub struct DetectFlags {
    /// Drop detections scoring below this (0..1).
    #[arg(long, default_value_t = DetectOptions::default().threshold)]
    pub threshold: f32,
    /// Comma-separated prompts that compete with the labels for "nothing there".
    #[arg(long, value_delimiter = ',', default_value = "background")]
    pub background: Vec<String>,
    #[command(flatten)]
    pub templates: TemplateArgs,
    #[command(flatten)]
    pub knowledge: KnowledgeArgs,
}

impl DetectFlags {
    pub fn prepare(
        &self,
        clip: &Clip,
        labels: &[String],
    ) -> Result<(DetectPrompts, DetectOptions)> {
        let opts = DetectOptions {
            threshold: self.threshold,
            background: self.background.clone(),
            ..DetectOptions::default()
        };
        let classes = self.knowledge.classes(labels, 1)?;
        let prompts = DetectPrompts::new(clip, &classes, &self.templates.templates()?, &opts)?;
        Ok((prompts, opts))
    }
}

pub fn run(a: DetectArgs, clip: &Clip, json: bool) -> Result<()> {
    let (prompts, opts) = a.detect.prepare(clip, &a.labels)?;
    let img = clip.load_image(&a.image)?;
    let out = detect(clip, &img, &prompts, &opts)?;
    if let Some(dir) = &a.heatmap {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for h in &out.heatmaps {
            let path = dir.join(format!("{}.png", file_stem(&h.label)));
            let map = h.to_image(img.width(), img.height());
            write_atomic_with(&path, |tmp| {
                map.save_with_format(tmp, image::ImageFormat::Png)
                    .map_err(std::io::Error::other)
            })
            .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    if let Some(path) = &a.out {
        let boxed = draw_boxes(&img, &out.detections, prompts.labels());
        write_atomic_with(path, |tmp| {
            boxed
                .save_with_format(tmp, image::ImageFormat::Png)
                .map_err(std::io::Error::other)
        })
        .with_context(|| format!("writing {}", path.display()))?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&out.detections)?);
    } else if out.detections.is_empty() {
        println!("nothing found above --threshold {}", opts.threshold);
    } else {
        for d in &out.detections {
            let [x0, y0, x1, y1] = d.bbox;
            println!(
                "{:<24} {:>5.3}  [{x0:.0}, {y0:.0}, {x1:.0}, {y1:.0}]",
                d.label, d.score
            );
        }
    }
    Ok(())
}

/// A label as a file name: letters and digits kept, anything else `_`.
fn file_stem(label: &str) -> String {
    label
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '_' })
        .collect()
}

const BOX_COLOURS: [[u8; 3]; 6] = [
    [255, 40, 40],
    [40, 220, 40],
    [40, 120, 255],
    [255, 200, 0],
    [255, 0, 255],
    [0, 230, 230],
];

/// The image with each detection's box outlined (2 px) in its label's colour, a score bar along
/// the top edge as long as the score, and the label and score written above the box (inside it
/// at the image's top edge).
fn draw_boxes(img: &RgbImage, detections: &[Detection], labels: &[String]) -> RgbImage {
    let mut out = img.clone();
    let (w, h) = out.dimensions();
    for d in detections {
        let k = labels.iter().position(|l| l == &d.label).unwrap_or(0);
        let c = Rgb(BOX_COLOURS[k % BOX_COLOURS.len()]);
        let [x0, y0, x1, y1] = d.bbox.map(|v| v.round().max(0.0) as u32);
        let (x1, y1) = (x1.min(w).saturating_sub(1), y1.min(h).saturating_sub(1));
        for t in 0..2 {
            for x in x0..=x1 {
                out.put_pixel(x, (y0 + t).min(h - 1), c);
                out.put_pixel(x, y1.saturating_sub(t), c);
            }
            for y in y0..=y1 {
                out.put_pixel((x0 + t).min(w - 1), y, c);
                out.put_pixel(x1.saturating_sub(t), y, c);
            }
        }
        let text = format!("{} {:.2}", d.label, d.score);
        let ty = if y0 >= 9 { y0 - 9 } else { y0 + 6 };
        clipguide_preview::draw_text(&mut out, x0 + 1, ty, &text, 1, c.0);
        let bar = x0 + ((x1 - x0) as f32 * d.score.clamp(0.0, 1.0)) as u32;
        for x in x0..bar {
            for y in (y0 + 2).min(h - 1)..(y0 + 5).min(h) {
                out.put_pixel(x, y, c);
            }
        }
    }
    out
}
