//! `clipguide classify`: zero-shot classification of one image over labels (with templates or
//! an ensemble, and K-LITE definitions) or over candidate sentences.

use crate::prompt_args::{KnowledgeArgs, TemplateArgs};
use anyhow::Result;
use clipguide_clip::Clip;
use clipguide_zeroshot::prompts::{classify, rank_sentences, read_lines_file};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ClassifyArgs {
    #[arg(long)]
    image: PathBuf,
    /// Comma-separated labels.
    #[arg(long, value_delimiter = ',')]
    labels: Vec<String>,
    /// Candidate sentences, one per line, ranked as written (no template): which sentence fits
    /// the image best.
    #[arg(long, conflicts_with_all = ["labels", "labels_file", "knowledge", "templates"])]
    texts_file: Option<PathBuf>,
    #[command(flatten)]
    templates: TemplateArgs,
    #[command(flatten)]
    knowledge: KnowledgeArgs,
}

/// `builtin_model`: name the labels' or sentences' words the built-in model never saw (stderr;
/// the JSON stays the ranked list).
pub fn run(a: ClassifyArgs, clip: &Clip, builtin_model: bool, json: bool) -> Result<()> {
    let ranked = match &a.texts_file {
        Some(path) => {
            let texts = read_lines_file(path)?;
            let img = clip.load_image(&a.image)?;
            if builtin_model {
                crate::vocab_notice::unknown_words_notice(texts.iter().map(String::as_str));
            }
            rank_sentences(clip, &img, &texts)?
        }
        None => {
            let classes = a.knowledge.classes(&a.labels, 2)?;
            let templates = a.templates.templates()?;
            let img = clip.load_image(&a.image)?;
            // After every check of the command line, so an error stays the first line.
            if builtin_model {
                crate::vocab_notice::unknown_words_notice(classes.iter().flat_map(|c| {
                    std::iter::once(c.label.as_str()).chain(c.definition.as_deref())
                }));
            }
            classify(clip, &img, &classes, &templates)?
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&ranked)?);
    } else {
        for (i, s) in ranked.iter().enumerate() {
            println!("{:>2}. {:<30} {:>6.2}%", i + 1, s.label, 100.0 * s.prob);
        }
    }
    Ok(())
}
