//! Zero-shot accuracy on an image folder in the ImageFolder layout (one sub-folder per class, as
//! ImageNet's validation set is usually arranged): top-1, top-5, per-class accuracy and the most
//! frequent confusions. This is how a published zero-shot figure is reproduced on one's own copy
//! of a dataset.

use crate::error::{io_err, Result, ZeroShotError};
use crate::prompts::{image_embeddings, ClassPrompt};
use candle_core::Tensor;
use clipguide_clip::Clip;
use clipguide_index::{dir_key, IndexOptions, IndexReport, Progress, Source, Store};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Extensions read as images (lower-case).
pub const IMAGE_EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "webp", "bmp", "gif"];

/// The format name of [`FolderReport`] JSON.
pub const REPORT_FORMAT: &str = "clipguide-zeroshot-report";
/// Its version: bumped on any change of meaning or field name.
pub const REPORT_VERSION: u32 = 1;

/// The classes (sub-folder names, sorted) and every image with its class index.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    pub root: PathBuf,
    pub classes: Vec<String>,
    pub images: Vec<(PathBuf, usize)>,
}

pub fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Image files directly in `dir`, sorted by path.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_err(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_image(p))
        .collect();
    files.sort();
    Ok(files)
}

impl ImageFolder {
    /// Scans `root`: each sub-folder (hidden ones left out) is a class, in sorted order, as
    /// torchvision's `ImageFolder` does.
    pub fn scan(root: &Path) -> Result<Self> {
        let bad = |detail: String| ZeroShotError::BadFolder {
            path: root.into(),
            detail,
        };
        if !root.is_dir() {
            return Err(bad(
                "not a folder: give a folder with one sub-folder of images per class".into(),
            ));
        }
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
            .map_err(io_err(root))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_dir()
                    && !p
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with('.'))
            })
            .collect();
        dirs.sort();
        if dirs.is_empty() {
            return Err(bad(
                "no class sub-folders: the layout is DIR/<class>/<image>, one sub-folder per class"
                    .into(),
            ));
        }
        let mut classes = Vec::new();
        let mut images = Vec::new();
        for (k, d) in dirs.iter().enumerate() {
            classes.push(
                d.file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default()
                    .to_string(),
            );
            images.extend(list_images(d)?.into_iter().map(|p| (p, k)));
        }
        if images.is_empty() {
            return Err(bad(format!(
                "no images ({}) in its {} class sub-folders",
                IMAGE_EXTENSIONS.join(", "),
                classes.len()
            )));
        }
        Ok(Self {
            root: root.into(),
            classes,
            images,
        })
    }

    /// The class prompts: folder names with `_` read as spaces, or `names` (one per class, in
    /// the sorted folder order) when given.
    pub fn class_names(&self, names: Option<&[String]>) -> Result<Vec<String>> {
        match names {
            Some(n) if n.len() != self.classes.len() => Err(ZeroShotError::BadInput(format!(
                "{} class names for {} class folders: give one name per sub-folder of {}, in sorted folder order",
                n.len(),
                self.classes.len(),
                self.root.display()
            ))),
            Some(n) => Ok(n.to_vec()),
            None => Ok(self.classes.iter().map(|c| c.replace('_', " ")).collect()),
        }
    }
}

/// Matches class names with K-LITE definitions by label; a class without one is an error.
pub fn with_definitions(names: &[String], defined: &[ClassPrompt]) -> Result<Vec<ClassPrompt>> {
    names
        .iter()
        .map(|n| {
            defined
                .iter()
                .find(|c| &c.label == n)
                .cloned()
                .ok_or_else(|| {
                    ZeroShotError::BadInput(format!(
                        "class {n:?} has no line in the labels file: add \"{n}<TAB>definition\""
                    ))
                })
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassAccuracy {
    pub class: String,
    pub images: usize,
    pub top1: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Confusion {
    pub truth: String,
    pub predicted: String,
    pub count: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    pub path: PathBuf,
    pub error: String,
}

/// What `zeroshot` reports (documented in README.md, "Zero-shot evaluation of a folder").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FolderReport {
    pub format: String,
    pub version: u32,
    /// Images classified (skipped ones not counted).
    pub images: usize,
    pub top1: f32,
    /// Top-5 accuracy (top-k with k = the class count when there are fewer than 5 classes).
    pub top5: f32,
    pub per_class: Vec<ClassAccuracy>,
    /// Off-diagonal (truth, predicted) pairs, most frequent first.
    pub confusions: Vec<Confusion>,
    pub skipped: Vec<Skipped>,
}

/// Classifies every image of `folder` against unit class embeddings [C, P] (one row per class,
/// in folder order), `batch` images at a time; `progress(done, total)` after each batch. An
/// image that cannot be read is skipped and listed, not fatal. Files are decoded as the index
/// decodes them ([`Clip::load_image_reduced`]), so this and [`evaluate_cached`] agree.
pub fn evaluate(
    clip: &Clip,
    folder: &ImageFolder,
    class_embeddings: &Tensor,
    batch: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<FolderReport> {
    let mut tally = Tally::new(folder, class_embeddings)?;
    let batch = batch.max(1);
    let total = folder.images.len();
    for (b, chunk) in folder.images.chunks(batch).enumerate() {
        let mut imgs = Vec::with_capacity(chunk.len());
        let mut truths = Vec::with_capacity(chunk.len());
        for (path, k) in chunk {
            match clip.load_image_reduced(path) {
                Ok(img) => {
                    imgs.push(img);
                    truths.push(*k);
                }
                Err(e) => tally.skip(path, e.to_string()),
            }
        }
        if !imgs.is_empty() {
            tally.add(&image_embeddings(clip, &imgs)?, class_embeddings, &truths)?;
        }
        progress((b * batch + chunk.len()).min(total), total);
    }
    tally.report(folder)
}

/// Where [`evaluate_cached`] keeps image embeddings: a `clipguide-index` store (the one
/// `clipguide search --dir` keeps too), under the key of the model that embeds them.
pub struct EmbeddingCache<'a> {
    pub store: &'a Path,
    pub model_key: &'a str,
    pub options: &'a IndexOptions,
}

/// [`evaluate_cached`]'s result: the report and what the store update did.
pub struct CachedReport {
    pub report: FolderReport,
    pub index: IndexReport,
}

/// [`evaluate`] with the image embeddings kept in a store: only images new or changed since the
/// last run go through the model, so re-running with other class names, templates or
/// definitions costs only the text side. Stopping through `progress` keeps what was embedded
/// and returns [`ZeroShotError::Stopped`].
pub fn evaluate_cached(
    clip: &Clip,
    folder: &ImageFolder,
    class_embeddings: &Tensor,
    cache: &EmbeddingCache,
    progress: &mut dyn Progress,
) -> Result<CachedReport> {
    let mut tally = Tally::new(folder, class_embeddings)?;
    let source = Source::Dir(folder.root.clone());
    let index = clipguide_index::index(
        clip,
        cache.model_key,
        &source,
        cache.store,
        cache.options,
        progress,
    )?;
    if index.stopped {
        return Err(ZeroShotError::Stopped {
            store: cache.store.to_path_buf(),
            embedded: index.embedded,
        });
    }
    let store = Store::open(cache.store)?;
    store.check_model(cache.model_key)?;
    let rows: HashMap<&str, usize> = store
        .rows
        .meta
        .iter()
        .enumerate()
        .map(|(i, m)| (m.path.as_str(), i))
        .collect();
    let why_skipped: HashMap<&Path, &str> = index
        .skipped
        .iter()
        .map(|(p, e)| (p.as_path(), e.as_str()))
        .collect();
    // Scored a block at a time so a large folder never holds all its vectors twice.
    const BLOCK: usize = 4096;
    let dim = store.manifest.dim;
    for block in folder.images.chunks(BLOCK) {
        let mut vectors = Vec::with_capacity(block.len() * dim);
        let mut truths = Vec::with_capacity(block.len());
        for (path, k) in block {
            match rows.get(dir_key(&folder.root, path).as_str()) {
                Some(&row) => {
                    vectors.extend(store.rows.row_f32(row));
                    truths.push(*k);
                }
                None => tally.skip(
                    path,
                    why_skipped
                        .get(path.as_path())
                        .map_or_else(|| "not in the store".to_string(), |e| e.to_string()),
                ),
            }
        }
        if !truths.is_empty() {
            let embedded =
                Tensor::from_vec(vectors, (truths.len(), dim), class_embeddings.device())?;
            tally.add(&embedded, class_embeddings, &truths)?;
        }
    }
    Ok(CachedReport {
        report: tally.report(folder)?,
        index,
    })
}

/// The confusion matrix and top-5 count as images are classified.
struct Tally {
    confusion: Vec<Vec<usize>>,
    top5_hits: usize,
    seen: usize,
    skipped: Vec<Skipped>,
}

impl Tally {
    fn new(folder: &ImageFolder, class_embeddings: &Tensor) -> Result<Self> {
        let c = folder.classes.len();
        if class_embeddings.dim(0)? != c {
            return Err(ZeroShotError::BadInput(format!(
                "{} class embeddings for {c} classes",
                class_embeddings.dim(0)?
            )));
        }
        Ok(Self {
            confusion: vec![vec![0usize; c]; c],
            top5_hits: 0,
            seen: 0,
            skipped: Vec::new(),
        })
    }

    fn skip(&mut self, path: &Path, error: String) {
        self.skipped.push(Skipped {
            path: path.to_path_buf(),
            error,
        });
    }

    /// Unit image embeddings [N, P] whose classes are `truths`.
    fn add(&mut self, images: &Tensor, class_embeddings: &Tensor, truths: &[usize]) -> Result<()> {
        let cos = images.matmul(&class_embeddings.t()?)?.to_vec2::<f32>()?;
        for (row, &truth) in cos.iter().zip(truths) {
            let better = row.iter().filter(|s| **s > row[truth]).count();
            self.top5_hits += usize::from(better < 5);
            self.confusion[truth][argmax(row)] += 1;
            self.seen += 1;
        }
        Ok(())
    }

    fn report(self, folder: &ImageFolder) -> Result<FolderReport> {
        let Tally {
            confusion,
            top5_hits,
            seen,
            skipped,
        } = self;
        let c = folder.classes.len();
        if seen == 0 {
            return Err(ZeroShotError::BadFolder {
                path: folder.root.clone(),
                detail: format!(
                    "none of its {} images could be read (first error: {})",
                    folder.images.len(),
                    skipped.first().map_or("", |s| s.error.as_str())
                ),
            });
        }
        let per_class = folder
            .classes
            .iter()
            .enumerate()
            .map(|(k, name)| {
                let n: usize = confusion[k].iter().sum();
                ClassAccuracy {
                    class: name.clone(),
                    images: n,
                    top1: confusion[k][k] as f32 / n.max(1) as f32,
                }
            })
            .collect();
        let mut confusions: Vec<Confusion> = (0..c)
            .flat_map(|t| (0..c).map(move |p| (t, p)))
            .filter(|&(t, p)| t != p && confusion[t][p] > 0)
            .map(|(t, p)| Confusion {
                truth: folder.classes[t].clone(),
                predicted: folder.classes[p].clone(),
                count: confusion[t][p],
            })
            .collect();
        confusions.sort_by_key(|c| std::cmp::Reverse(c.count));
        let correct: usize = (0..c).map(|k| confusion[k][k]).sum();
        Ok(FolderReport {
            format: REPORT_FORMAT.into(),
            version: REPORT_VERSION,
            images: seen,
            top1: correct as f32 / seen as f32,
            top5: top5_hits as f32 / seen as f32,
            per_class,
            confusions,
            skipped,
        })
    }
}

/// Index of the largest value (the first on ties).
pub(crate) fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 {
                (i, v)
            } else {
                best
            }
        })
        .0
}
