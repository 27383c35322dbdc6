//! Detection over a folder written as COCO detection JSON (images, categories, annotations with
//! `bbox` `[x, y, width, height]` and `score`), loadable by pycocotools
//! (`tools/check_coco.py`). The file is rewritten atomically as work proceeds, and a run started
//! on an existing file carries on where it stopped: images already in it are not detected again,
//! and ids are assigned from the sorted file names, so an interrupted and resumed run writes the
//! same bytes as an uninterrupted one.

use crate::detect::{detect, DetectOptions, DetectPrompts, Detection};
use crate::error::{io_err, Result, ZeroShotError};
use crate::folder::list_images;
use clipguide_clip::fsutil::write_atomic;
use clipguide_clip::Clip;
use serde::{Deserialize, Serialize};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// `clipguide.format` of an annotation file.
pub const FORMAT: &str = "clipguide-annotate";
/// `clipguide.version`: bumped on any change of meaning or field name.
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CocoImage {
    pub id: u64,
    pub file_name: String,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CocoCategory {
    pub id: u64,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CocoAnnotation {
    pub id: u64,
    pub image_id: u64,
    pub category_id: u64,
    /// `[x, y, width, height]` in pixels, COCO's convention.
    pub bbox: [f32; 4],
    pub area: f32,
    pub score: f32,
    pub iscrowd: u8,
}

/// What clipguide adds to the COCO fields: the format version, the labels and options of the run
/// (a resumed run must use the same) and the images that could not be read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub format: String,
    pub version: u32,
    pub labels: Vec<String>,
    pub options: DetectOptions,
    /// File names (relative to the folder) that could not be read, with the error.
    pub skipped: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CocoFile {
    pub clipguide: RunInfo,
    pub images: Vec<CocoImage>,
    pub categories: Vec<CocoCategory>,
    pub annotations: Vec<CocoAnnotation>,
}

impl CocoFile {
    /// Reads a file written by [`annotate`], checking its format and version.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(io_err(path))?;
        Self::from_json_str(&text, path)
    }

    /// Parses the text of a file written by [`annotate`] (`path` names it in errors), checking
    /// its format and version, and that it holds together as a resumed run needs: every
    /// annotation's category is one of the labels and its image is listed, the categories are
    /// the labels in order, and every number is finite (a non-finite one would be written back
    /// as `null`, which no later run could read).
    pub fn from_json_str(text: &str, path: &Path) -> Result<Self> {
        let bad = |detail: String| ZeroShotError::BadAnnotations {
            path: path.into(),
            kind: FORMAT,
            detail,
        };
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        match value.pointer("/clipguide/format").and_then(|f| f.as_str()) {
            Some(FORMAT) => {}
            other => {
                return Err(bad(format!(
                    "clipguide.format is {other:?}, not {FORMAT:?}"
                )))
            }
        }
        match value.pointer("/clipguide/version").and_then(|v| v.as_u64()) {
            Some(v) if v == VERSION as u64 => {}
            other => {
                return Err(bad(format!(
                    "clipguide.version is {other:?}; this build reads {VERSION}"
                )))
            }
        }
        let file: Self = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
        file.check().map_err(bad)?;
        Ok(file)
    }

    fn check(&self) -> std::result::Result<(), String> {
        let labels = &self.clipguide.labels;
        let expected = labels.iter().enumerate().map(|(k, l)| (k as u64 + 1, l));
        if !self.categories.iter().map(|c| (c.id, &c.name)).eq(expected) {
            return Err(
                "the categories are not the labels of clipguide.labels, numbered from 1".into(),
            );
        }
        let o = &self.clipguide.options;
        let option_numbers = [o.threshold, o.nms_iou, o.context];
        if !option_numbers
            .iter()
            .chain(&o.segment_scales)
            .all(|v| v.is_finite())
        {
            return Err("a detection option is not a finite number".into());
        }
        let mut ids = std::collections::HashSet::new();
        if let Some(im) = self.images.iter().find(|im| !ids.insert(im.id)) {
            return Err(format!("image id {} is given twice", im.id));
        }
        for a in &self.annotations {
            if !ids.contains(&a.image_id) {
                return Err(format!(
                    "annotation {} is of image {}, which is not listed",
                    a.id, a.image_id
                ));
            }
            if a.category_id == 0 || a.category_id > labels.len() as u64 {
                return Err(format!(
                    "annotation {} has category {}, not one of the {} labels",
                    a.id,
                    a.category_id,
                    labels.len()
                ));
            }
            // A resumed run writes the box back through its corners: those numbers too.
            let corners = corners(a.bbox);
            let (rebuilt, rebuilt_area) = coco_box(corners);
            let numbers = [a.bbox, corners, rebuilt];
            if !(numbers
                .iter()
                .flatten()
                .chain([&a.area, &a.score, &rebuilt_area]))
            .all(|v| v.is_finite())
            {
                return Err(format!(
                    "annotation {} has a box, area or score that is not a finite number",
                    a.id
                ));
            }
        }
        Ok(())
    }

    pub fn to_json(&self) -> String {
        // Plain data: serialising cannot fail.
        serde_json::to_string_pretty(self).expect("COCO file serialises") + "\n"
    }
}

/// One image's outcome, kept while a run goes on.
#[derive(Debug, Clone)]
enum Done {
    Detected {
        width: u32,
        height: u32,
        detections: Vec<Detection>,
    },
    Unreadable(String),
}

/// How far a run got.
#[derive(Debug, Clone, PartialEq)]
pub struct AnnotateSummary {
    pub images: usize,
    /// Images found in an existing file and not detected again.
    pub resumed: usize,
    pub annotations: usize,
    pub skipped: usize,
    /// False when the observer stopped the run (the file holds what was done).
    pub finished: bool,
}

/// Detects `prompts`' labels in every image of `dir` (sorted by name) and writes COCO JSON to
/// `out`, atomically after every `save_every` images and at the end. An existing `out` from the
/// same labels and options is resumed; one from other labels or options is an error rather than
/// mixed. `observe(done, total)` runs after each image; `Break` stops after saving.
#[allow(clippy::too_many_arguments)]
pub fn annotate(
    clip: &Clip,
    dir: &Path,
    prompts: &DetectPrompts,
    opts: &DetectOptions,
    out: &Path,
    save_every: usize,
    observe: &mut dyn FnMut(usize, usize) -> ControlFlow<()>,
) -> Result<AnnotateSummary> {
    if !dir.is_dir() {
        return Err(ZeroShotError::BadFolder {
            path: dir.into(),
            detail: "not a folder: give a folder of images".into(),
        });
    }
    let files = list_images(dir)?;
    if files.is_empty() {
        return Err(ZeroShotError::BadFolder {
            path: dir.into(),
            detail: "no images (png, jpg, jpeg, webp, bmp, gif) in this folder".into(),
        });
    }
    let names: Vec<String> = files.iter().map(|p| file_name(p)).collect();
    let mut done: Vec<Option<Done>> = vec![None; files.len()];
    let resumed = if out.exists() {
        resume(&CocoFile::read(out)?, out, prompts, opts, &names, &mut done)?
    } else {
        0
    };
    let total = files.len();
    let mut since_save = 0;
    let mut finished = true;
    for i in 0..total {
        if done[i].is_some() {
            continue;
        }
        done[i] = Some(match clip.load_image(&files[i]) {
            Ok(img) => Done::Detected {
                width: img.width(),
                height: img.height(),
                detections: detect(clip, &img, prompts, opts)?.detections,
            },
            Err(e) => Done::Unreadable(e.to_string()),
        });
        since_save += 1;
        if since_save >= save_every.max(1) {
            write(out, &assemble(prompts, opts, &names, &done))?;
            since_save = 0;
        }
        if observe(done.iter().filter(|d| d.is_some()).count(), total).is_break() {
            finished = false;
            break;
        }
    }
    let file = assemble(prompts, opts, &names, &done);
    write(out, &file)?;
    Ok(AnnotateSummary {
        images: file.images.len(),
        resumed,
        annotations: file.annotations.len(),
        skipped: file.clipguide.skipped.len(),
        finished,
    })
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn write(out: &Path, file: &CocoFile) -> Result<()> {
    write_atomic(out, file.to_json().as_bytes()).map_err(io_err(out))
}

/// Fills `done` from an existing file; returns how many images it held.
fn resume(
    old: &CocoFile,
    out: &Path,
    prompts: &DetectPrompts,
    opts: &DetectOptions,
    names: &[String],
    done: &mut [Option<Done>],
) -> Result<usize> {
    if old.clipguide.labels != prompts.labels() || &old.clipguide.options != opts {
        return Err(ZeroShotError::BadInput(format!(
            "{} was written with other labels or detection settings ({}): give the same ones to resume it, or another --out",
            out.display(),
            old.clipguide.labels.join(", ")
        )));
    }
    let mut count = 0;
    for (i, name) in names.iter().enumerate() {
        if let Some(img) = old.images.iter().find(|im| &im.file_name == name) {
            let detections = old
                .annotations
                .iter()
                .filter(|a| a.image_id == img.id)
                .map(|a| Detection {
                    // In range: `from_json_str` checked it against the file's labels, which
                    // are these.
                    label: prompts.labels()[(a.category_id - 1) as usize].clone(),
                    score: a.score,
                    bbox: corners(a.bbox),
                })
                .collect();
            done[i] = Some(Done::Detected {
                width: img.width,
                height: img.height,
                detections,
            });
            count += 1;
        } else if let Some((_, e)) = old.clipguide.skipped.iter().find(|(n, _)| n == name) {
            done[i] = Some(Done::Unreadable(e.clone()));
            count += 1;
        }
    }
    Ok(count)
}

/// The file for what is done so far: image ids are positions in the sorted folder (1-based),
/// annotation ids follow image order then score order.
fn assemble(
    prompts: &DetectPrompts,
    opts: &DetectOptions,
    names: &[String],
    done: &[Option<Done>],
) -> CocoFile {
    let labels = prompts.labels();
    let mut images = Vec::new();
    let mut annotations = Vec::new();
    let mut skipped = Vec::new();
    for (i, (name, d)) in names.iter().zip(done).enumerate() {
        let id = i as u64 + 1;
        match d {
            None => {}
            Some(Done::Unreadable(e)) => skipped.push((name.clone(), e.clone())),
            Some(Done::Detected {
                width,
                height,
                detections,
            }) => {
                images.push(CocoImage {
                    id,
                    file_name: name.clone(),
                    width: *width,
                    height: *height,
                });
                for det in detections {
                    let (bbox, area) = coco_box(det.bbox);
                    let category =
                        labels.iter().position(|l| l == &det.label).unwrap_or(0) as u64 + 1;
                    annotations.push(CocoAnnotation {
                        id: annotations.len() as u64 + 1,
                        image_id: id,
                        category_id: category,
                        bbox,
                        area,
                        score: det.score,
                        iscrowd: 0,
                    });
                }
            }
        }
    }
    CocoFile {
        clipguide: RunInfo {
            format: FORMAT.into(),
            version: VERSION,
            labels: labels.to_vec(),
            options: opts.clone(),
            skipped,
        },
        images,
        categories: labels
            .iter()
            .enumerate()
            .map(|(k, l)| CocoCategory {
                id: k as u64 + 1,
                name: l.clone(),
            })
            .collect(),
        annotations,
    }
}

/// `[x0, y0, x1, y1]` of COCO's `[x, y, width, height]`.
fn corners([x, y, w, h]: [f32; 4]) -> [f32; 4] {
    [x, y, x + w, y + h]
}

/// COCO's `[x, y, width, height]` and area of `[x0, y0, x1, y1]`.
fn coco_box([x0, y0, x1, y1]: [f32; 4]) -> ([f32; 4], f32) {
    let (w, h) = (x1 - x0, y1 - y0);
    ([x0, y0, w, h], w * h)
}

/// The folder a COCO file's `file_name`s are relative to is the annotated folder.
pub fn image_path(dir: &Path, image: &CocoImage) -> PathBuf {
    dir.join(&image.file_name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn fixture() -> Value {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/annotations_v1.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn parse(v: &Value) -> Result<CocoFile> {
        CocoFile::from_json_str(&v.to_string(), Path::new("a.json"))
    }

    /// The fixture with `edit` applied must be refused with a message containing `needle`.
    fn refused(edit: impl FnOnce(&mut Value), needle: &str) {
        let mut v = fixture();
        edit(&mut v);
        let e = parse(&v).unwrap_err().to_string();
        assert!(e.contains(needle) && e.contains("a.json"), "{needle}: {e}");
    }

    #[test]
    fn a_stored_file_survives_its_write_back() {
        let f = parse(&fixture()).unwrap();
        let back = CocoFile::from_json_str(&f.to_json(), Path::new("b.json")).unwrap();
        assert_eq!(back, f);
    }

    #[test]
    fn a_category_a_resumed_run_could_not_name_is_refused() {
        // Category 0 and one past the labels once panicked when a run resumed the file.
        for id in [0, 4, u64::MAX] {
            refused(
                |v| v["annotations"][0]["category_id"] = json!(id),
                "category",
            );
        }
        refused(
            |v| v["annotations"][0]["image_id"] = json!(99),
            "not listed",
        );
        refused(|v| v["images"][1]["id"] = json!(1), "twice");
        refused(
            |v| v["categories"][1]["name"] = json!("a cat"),
            "categories",
        );
        refused(
            |v| {
                v["categories"].as_array_mut().unwrap().pop();
            },
            "categories",
        );
    }

    #[test]
    fn numbers_that_could_not_be_written_back_are_refused() {
        // 1e39 is a finite JSON number but an infinite f32, which serde_json writes as null.
        refused(|v| v["annotations"][0]["score"] = json!(1e39), "finite");
        refused(
            |v| v["clipguide"]["options"]["segment_scales"] = json!([-1e39]),
            "finite",
        );
        // Every number finite, but the area a resumed run computes from the box is not.
        refused(
            |v| v["annotations"][0]["bbox"] = json!([0.0, 0.0, 1e20, 1e20]),
            "finite",
        );
        let mut v = fixture();
        v["annotations"][0]["bbox"] = json!([1.0, 2.0, 1e10, 3.0]);
        assert!(parse(&v).is_ok());
    }
}
