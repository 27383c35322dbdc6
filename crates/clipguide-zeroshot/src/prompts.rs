//! What the text tower reads for each class: a label (optionally with a definition, K-LITE's
//! knowledge), filled into one or more templates whose normalised embeddings are averaged, as the
//! CLIP paper's prompt ensembles do.

use crate::error::{io_err, Result, ZeroShotError};
use candle_core::{Tensor, D};
use clipguide_clip::{l2_normalize, Clip};
use image::RgbImage;
use serde::Serialize;
use std::path::Path;

/// The CLIP paper's 80 ImageNet templates (`tools/make_clip80_templates.py`).
pub const CLIP80: &str = include_str!("../data/clip80_templates.txt");

/// Texts embedded at once: keeps the activations of 80 templates × many classes bounded.
const TEXT_BATCH: usize = 256;

/// One or more templates, each with one `{}` where the class prompt goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Templates(Vec<String>);

impl Templates {
    /// One template, e.g. `"a photo of a {}"`.
    pub fn single(template: &str) -> Result<Self> {
        Self::checked(vec![template.to_string()], None)
    }

    /// The class prompt itself, no template (candidate sentences).
    pub fn identity() -> Self {
        Self(vec!["{}".into()])
    }

    /// The CLIP paper's 80 ImageNet templates.
    pub fn clip80() -> Self {
        Self(CLIP80.lines().map(str::to_string).collect())
    }

    /// A list of templates, each needing a `{}`.
    pub fn from_list(list: Vec<String>) -> Result<Self> {
        Self::checked(list, None)
    }

    /// One template per non-empty line of a file; a line without `{}` is an error naming it.
    pub fn from_file(path: &Path) -> Result<Self> {
        Self::parse(&read_text(path)?, path)
    }

    /// [`Templates::from_file`] on the file's text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let lines: Vec<(usize, String)> = content_lines(text)
            .map(|(n, l)| (n, l.to_string()))
            .collect();
        for (n, l) in &lines {
            if !l.contains("{}") {
                return Err(ZeroShotError::BadLine {
                    path: path.into(),
                    line: *n,
                    detail: format!("template {l:?} has no {{}} where the label goes, e.g. \"a photo of a {{}}.\""),
                });
            }
        }
        Self::checked(lines.into_iter().map(|(_, l)| l).collect(), Some(path))
    }

    fn checked(list: Vec<String>, path: Option<&Path>) -> Result<Self> {
        let from = path.map_or(String::new(), |p| format!("{}: ", p.display()));
        if list.is_empty() {
            return Err(ZeroShotError::BadInput(format!(
                "{from}no templates: give at least one, with {{}} where the label goes"
            )));
        }
        if let Some(t) = list.iter().find(|t| !t.contains("{}")) {
            return Err(ZeroShotError::BadInput(format!(
                "{from}template {t:?} has no {{}} placeholder for the label, e.g. \"a photo of a {{}}\""
            )));
        }
        Ok(Self(list))
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every template filled with `text`.
    pub fn fill(&self, text: &str) -> Vec<String> {
        self.0.iter().map(|t| t.replacen("{}", text, 1)).collect()
    }
}

/// A class as the text tower sees it: its label and, K-LITE style, an optional definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClassPrompt {
    pub label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub definition: Option<String>,
}

impl ClassPrompt {
    pub fn new(label: &str) -> Self {
        Self {
            label: label.to_string(),
            definition: None,
        }
    }

    pub fn with_definition(label: &str, definition: &str) -> Self {
        Self {
            label: label.to_string(),
            definition: Some(definition.to_string()),
        }
    }

    /// What fills a template's `{}`: "label, definition" (K-LITE's form) or the label.
    pub fn text(&self) -> String {
        match &self.definition {
            Some(d) => format!("{}, {d}", self.label),
            None => self.label.clone(),
        }
    }
}

/// Reads a file as UTF-8 text, naming it on error.
pub(crate) fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(io_err(path))
}

/// Non-empty, non-comment (`#`) lines with their 1-based line numbers, trailing whitespace and a
/// `\r` removed.
pub(crate) fn content_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end()))
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
}

/// Parses `label<TAB>definition` lines (blank lines and `#` comments skipped). A line without
/// exactly one tab, or with an empty side, is an error naming its line number.
pub fn parse_labels_file(text: &str, path: &Path) -> Result<Vec<ClassPrompt>> {
    let bad = |line: usize, detail: String| ZeroShotError::BadLine {
        path: path.into(),
        line,
        detail,
    };
    let mut out: Vec<ClassPrompt> = Vec::new();
    for (n, line) in content_lines(text) {
        let parts: Vec<&str> = line.split('\t').collect();
        let [label, definition] = parts.as_slice() else {
            return Err(bad(
                n,
                format!(
                    "expected label<TAB>definition, found {} tab(s) in {line:?}: separate the label from its definition with one tab",
                    parts.len() - 1
                ),
            ));
        };
        let (label, definition) = (label.trim(), definition.trim());
        if label.is_empty() || definition.is_empty() {
            return Err(bad(
                n,
                format!(
                    "empty {} in {line:?}: both sides of the tab need text",
                    if label.is_empty() {
                        "label"
                    } else {
                        "definition"
                    }
                ),
            ));
        }
        if out.iter().any(|c| c.label == label) {
            return Err(bad(
                n,
                format!("label {label:?} is given twice: keep one line per label"),
            ));
        }
        out.push(ClassPrompt::with_definition(label, definition));
    }
    if out.is_empty() {
        return Err(ZeroShotError::BadInput(format!(
            "{}: no label<TAB>definition lines",
            path.display()
        )));
    }
    Ok(out)
}

/// [`parse_labels_file`] on a file.
pub fn read_labels_file(path: &Path) -> Result<Vec<ClassPrompt>> {
    parse_labels_file(&read_text(path)?, path)
}

/// One sentence (or name) per non-empty line, `#` comments skipped; at least one.
pub fn read_lines_file(path: &Path) -> Result<Vec<String>> {
    parse_lines_file(&read_text(path)?, path)
}

/// [`read_lines_file`] on the file's text; `path` names it in errors.
pub fn parse_lines_file(text: &str, path: &Path) -> Result<Vec<String>> {
    let lines: Vec<String> = content_lines(text)
        .map(|(_, l)| l.trim().to_string())
        .collect();
    if lines.is_empty() {
        return Err(ZeroShotError::BadInput(format!(
            "{}: no lines: write one entry per line",
            path.display()
        )));
    }
    Ok(lines)
}

/// Unit-norm class embeddings [C, P]: each class's prompt filled into every template, the
/// normalised text embeddings averaged and normalised again (the CLIP paper's ensemble).
pub fn class_embeddings(
    clip: &Clip,
    classes: &[ClassPrompt],
    templates: &Templates,
) -> Result<Tensor> {
    if classes.is_empty() {
        return Err(ZeroShotError::BadInput(
            "no classes given: pass at least one label".into(),
        ));
    }
    let t = templates.len();
    let texts: Vec<String> = classes
        .iter()
        .flat_map(|c| templates.fill(&c.text()))
        .collect();
    let mut parts = Vec::new();
    for chunk in texts.chunks(TEXT_BATCH) {
        parts.push(l2_normalize(&clip.embed_texts(chunk)?)?);
    }
    let all = Tensor::cat(&parts, 0)?;
    let p = all.dim(D::Minus1)?;
    let mean = all.reshape((classes.len(), t, p))?.mean(1)?;
    Ok(l2_normalize(&mean)?)
}

/// Unit-norm image embeddings [N, P].
pub fn image_embeddings(clip: &Clip, images: &[RgbImage]) -> Result<Tensor> {
    Ok(l2_normalize(&clip.embed_images(images)?)?)
}

/// A class's score for one image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scored {
    pub label: String,
    /// Softmax over the classes of logit_scale × cosine.
    pub prob: f32,
    pub cosine: f32,
}

/// Rows per image, columns per class.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreTable {
    /// Softmax over the classes of logit_scale × cosine.
    pub probs: Vec<Vec<f32>>,
    pub cosines: Vec<Vec<f32>>,
}

/// Probabilities and cosines of unit image embeddings [N, P] against unit class embeddings
/// [C, P].
pub fn scores(clip: &Clip, images: &Tensor, classes: &Tensor) -> Result<ScoreTable> {
    let cos = images.matmul(&classes.t()?)?;
    let logits = (&cos * clip.model.logit_scale()? as f64)?;
    let probs = candle_nn::ops::softmax(&logits, D::Minus1)?;
    Ok(ScoreTable {
        probs: probs.to_vec2()?,
        cosines: cos.to_vec2()?,
    })
}

/// Classes ranked for one image, best first.
pub fn classify(
    clip: &Clip,
    image: &RgbImage,
    classes: &[ClassPrompt],
    templates: &Templates,
) -> Result<Vec<Scored>> {
    let c = class_embeddings(clip, classes, templates)?;
    let i = image_embeddings(clip, std::slice::from_ref(image))?;
    let ScoreTable {
        probs,
        cosines: cos,
    } = scores(clip, &i, &c)?;
    let mut ranked: Vec<Scored> = classes
        .iter()
        .zip(probs[0].iter().zip(&cos[0]))
        .map(|(c, (&prob, &cosine))| Scored {
            label: c.label.clone(),
            prob,
            cosine,
        })
        .collect();
    ranked.sort_by(|a, b| b.prob.total_cmp(&a.prob));
    Ok(ranked)
}

/// Candidate sentences ranked for one image (no template), best first.
pub fn rank_sentences(clip: &Clip, image: &RgbImage, sentences: &[String]) -> Result<Vec<Scored>> {
    let classes: Vec<ClassPrompt> = sentences.iter().map(|s| ClassPrompt::new(s)).collect();
    classify(clip, image, &classes, &Templates::identity())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip80_has_eighty_templates_each_with_one_placeholder() {
        let t = Templates::clip80();
        assert_eq!(t.len(), 80);
        assert!(t.as_slice().iter().all(|s| s.matches("{}").count() == 1));
        assert_eq!(t.as_slice()[0], "a bad photo of a {}.");
        assert!(t.as_slice().contains(&"itap of my {}.".to_string()));
    }

    #[test]
    fn labels_file_lines_parse_and_a_malformed_line_names_its_number() {
        let p = Path::new("labels.tsv");
        let ok =
            parse_labels_file("# shapes\ndisc\ta round flat circle\n\nbox\ta square\n", p).unwrap();
        assert_eq!(
            ok,
            vec![
                ClassPrompt::with_definition("disc", "a round flat circle"),
                ClassPrompt::with_definition("box", "a square"),
            ]
        );
        assert_eq!(ok[0].text(), "disc, a round flat circle");
        let e = parse_labels_file("disc\ta circle\nbox a square\n", p).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("line 2") && msg.contains("one tab"), "{msg}");
        let e = parse_labels_file("disc\ta circle\n\n\t a square\n", p).unwrap_err();
        assert!(
            e.to_string().contains("line 3") && e.to_string().contains("empty label"),
            "{e}"
        );
        let e = parse_labels_file("a\tb\tc\n", p).unwrap_err();
        assert!(e.to_string().contains("2 tab(s)"), "{e}");
        let e = parse_labels_file("a\tb\na\tc\n", p).unwrap_err();
        assert!(
            e.to_string().contains("line 2") && e.to_string().contains("twice"),
            "{e}"
        );
    }

    #[test]
    fn template_and_lines_files_read_from_their_text() {
        let p = Path::new("t.txt");
        let t = Templates::parse("a {}.\n# note\n\n  the {} \r\n", p).unwrap();
        assert_eq!(t.as_slice(), ["a {}.", "  the {}"]);
        let e = Templates::parse("a {}\na photo\n", p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.txt, line 2") && e.contains("no {}"), "{e}");
        assert!(Templates::parse("# only a comment\n", p).is_err());
        let lines = parse_lines_file(" red circle \n#x\n\nblue star\r\n", p).unwrap();
        assert_eq!(lines, ["red circle", "blue star"]);
        let e = parse_lines_file("\n  \n# x\n", p).unwrap_err().to_string();
        assert!(e.contains("t.txt: no lines"), "{e}");
    }

    #[test]
    fn templates_need_a_placeholder() {
        assert!(Templates::single("a photo").is_err());
        assert_eq!(
            Templates::single("a {}").unwrap().fill("red circle"),
            vec!["a red circle"]
        );
    }
}
