//! The prompt flags shared by classify, zeroshot, detect and annotate: templates (one, a file,
//! or the CLIP paper's 80) and where class definitions come from (a labels file, WordNet).

use anyhow::{bail, Result};
use clipguide_zeroshot::folder::with_definitions;
use clipguide_zeroshot::prompts::{read_labels_file, ClassPrompt, Templates};
use clipguide_zeroshot::wordnet::{WordNet, DEBIAN_DIR};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct TemplateArgs {
    /// The prompt around each label; {} is replaced by the label.
    #[arg(long, default_value = "a photo of a {}")]
    pub template: String,
    /// A prompt ensemble instead of --template: a file with one template per line, or `clip80`
    /// (the CLIP paper's 80 ImageNet templates). Each class's normalised text embeddings are
    /// averaged over the templates.
    #[arg(long, conflicts_with = "template")]
    pub templates: Option<String>,
}

impl TemplateArgs {
    pub fn templates(&self) -> Result<Templates> {
        Ok(match self.templates.as_deref() {
            Some("clip80") => Templates::clip80(),
            Some(file) => Templates::from_file(&PathBuf::from(file))?,
            None => Templates::single(&self.template)?,
        })
    }
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Knowledge {
    /// The first-sense gloss of each label from WordNet (Debian's wordnet-base files).
    Wordnet,
}

#[derive(clap::Args, Debug)]
pub struct KnowledgeArgs {
    /// K-LITE definitions: `label<TAB>definition` lines; each prompt is the template filled with
    /// "label, definition".
    #[arg(long)]
    pub labels_file: Option<PathBuf>,
    /// Fetch each label's definition from a knowledge source instead of a labels file.
    #[arg(long, value_enum, conflicts_with = "labels_file")]
    pub knowledge: Option<Knowledge>,
    /// Where the WordNet database is (index.noun, data.noun, ...).
    #[arg(long, default_value = DEBIAN_DIR)]
    pub wordnet_dir: PathBuf,
}

impl KnowledgeArgs {
    /// The classes for `names` with their definitions, if any were asked for.
    pub fn define(&self, names: &[String]) -> Result<Vec<ClassPrompt>> {
        if let Some(path) = &self.labels_file {
            return Ok(with_definitions(names, &read_labels_file(path)?)?);
        }
        match self.knowledge {
            Some(Knowledge::Wordnet) => Ok(WordNet::open(&self.wordnet_dir)?.define(names)?),
            None => Ok(names.iter().map(|n| ClassPrompt::new(n)).collect()),
        }
    }

    /// The classes named by `--labels`, or by the labels file when no `--labels` are given.
    pub fn classes(&self, labels: &[String], at_least: usize) -> Result<Vec<ClassPrompt>> {
        let labels: Vec<String> = labels
            .iter()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        let classes = match (&self.labels_file, labels.is_empty()) {
            (Some(path), true) => read_labels_file(path)?,
            (None, true) => bail!("give the labels: --labels a,b,c or --labels-file FILE"),
            (_, false) => self.define(&labels)?,
        };
        if classes.len() < at_least {
            let n = ["no", "one", "two"].get(at_least).unwrap_or(&"more");
            bail!("at least {n} labels are needed, e.g. --labels cat,dog,car");
        }
        Ok(classes)
    }
}
