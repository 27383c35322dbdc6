//! Deterministic, unlimited stream of (image, captions, scene) items, and its on-disk form.
//! Item `i` depends only on `(seed, i)`, so trainers can stream it and `write_dataset` can reproduce it.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use clipguide_clip::fsutil::write_atomic;
use image::RgbImage;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::captions::captions;
use crate::render::render;
use crate::scene::{SceneConfig, SceneSpec};

/// Smallest image side accepted: below this, small objects are only a couple of pixels wide.
pub const MIN_IMAGE_SIZE: u32 = 16;
/// Largest image side accepted; rendering is CPU-only and grows with the square of the size.
pub const MAX_IMAGE_SIZE: u32 = 4096;

/// Errors from building or writing the synthetic dataset.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error(
        "image size {size} is out of range: use a side between {MIN_IMAGE_SIZE} and {MAX_IMAGE_SIZE} pixels"
    )]
    InvalidSize { size: u32 },
    #[error("invalid scene config: {field} = {value} ({fix})")]
    InvalidConfig {
        field: &'static str,
        value: String,
        fix: &'static str,
    },
    #[error("I/O error at {path}: {source} (check the directory exists and is writable)")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not encode image {path}: {source}")]
    Image {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    #[error("bad record on line {line} of {path}: {source} (the file may be truncated or from another tool)")]
    Json {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
}

/// A deterministic view of the infinite synthetic dataset.
#[derive(Clone, Debug)]
pub struct ShapesDataset {
    seed: u64,
    size: u32,
    config: SceneConfig,
}

impl ShapesDataset {
    /// The default scene distribution at `size`×`size` pixels.
    pub fn new(seed: u64, size: u32) -> Result<Self, DatasetError> {
        Self::with_config(seed, size, SceneConfig::default())
    }

    /// A dataset drawing scenes from `config` (e.g. [`SceneConfig::single_group`] for evaluation).
    pub fn with_config(seed: u64, size: u32, config: SceneConfig) -> Result<Self, DatasetError> {
        if !(MIN_IMAGE_SIZE..=MAX_IMAGE_SIZE).contains(&size) {
            return Err(DatasetError::InvalidSize { size });
        }
        if !(1..=3).contains(&config.max_groups) {
            return Err(DatasetError::InvalidConfig {
                field: "max_groups",
                value: config.max_groups.to_string(),
                fix: "use 1, 2 or 3",
            });
        }
        if !(1..=3).contains(&config.max_count) {
            return Err(DatasetError::InvalidConfig {
                field: "max_count",
                value: config.max_count.to_string(),
                fix: "use 1, 2 or 3",
            });
        }
        if !(0.0..=1.0).contains(&config.pattern_probability) {
            return Err(DatasetError::InvalidConfig {
                field: "pattern_probability",
                value: config.pattern_probability.to_string(),
                fix: "use a probability between 0 and 1",
            });
        }
        Ok(ShapesDataset { seed, size, config })
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn size(&self) -> u32 {
        self.size
    }

    pub fn config(&self) -> &SceneConfig {
        &self.config
    }

    /// The generator for item `index`: ChaCha8 keyed by the seed, on stream `index`, so items
    /// are independent and can be produced in any order or in parallel.
    pub fn item_rng(&self, index: usize) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(index as u64);
        rng
    }

    /// Scene and captions of item `index`, without rendering (cheap).
    pub fn describe(&self, index: usize) -> (SceneSpec, Vec<String>) {
        let mut rng = self.item_rng(index);
        let scene = SceneSpec::random_with(&mut rng, &self.config);
        let caps = captions(&scene, &mut rng);
        (scene, caps)
    }

    /// Item `index`: rendered image, its captions (canonical first) and the scene.
    pub fn get(&self, index: usize) -> (RgbImage, Vec<String>, SceneSpec) {
        let (scene, caps) = self.describe(index);
        (render(&scene, self.size), caps, scene)
    }
}

/// One line of `captions.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaptionRecord {
    /// Image path relative to the dataset directory, e.g. `images/000000.png`.
    pub file: String,
    pub captions: Vec<String>,
    pub scene: SceneSpec,
}

/// What [`write_dataset`] produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatasetSummary {
    pub images_dir: PathBuf,
    pub captions_path: PathBuf,
    pub count: usize,
}

/// Name of the captions file inside a dataset directory.
pub const CAPTIONS_FILE: &str = "captions.jsonl";
/// Name of the image folder inside a dataset directory.
pub const IMAGES_DIR: &str = "images";

/// Writes items `0..count` of `ShapesDataset::new(seed, size)` to `out_dir`
/// (`images/000000.png`… and `captions.jsonl`).
pub fn write_dataset(
    out_dir: &Path,
    count: usize,
    seed: u64,
    size: u32,
) -> Result<DatasetSummary, DatasetError> {
    let dataset = ShapesDataset::new(seed, size)?;
    write_dataset_with(out_dir, count, &dataset, |_, _| {})
}

/// Like [`write_dataset`] for any dataset; `progress(done, count)` is called after each image
/// so a CLI can draw a progress bar (the library itself never prints).
///
/// Each image and the captions file are written to a temporary name and renamed into place,
/// so an interrupted run never leaves a truncated file under the final name.
pub fn write_dataset_with(
    out_dir: &Path,
    count: usize,
    dataset: &ShapesDataset,
    mut progress: impl FnMut(usize, usize),
) -> Result<DatasetSummary, DatasetError> {
    let images_dir = out_dir.join(IMAGES_DIR);
    fs::create_dir_all(&images_dir).map_err(|source| DatasetError::Io {
        path: images_dir.clone(),
        source,
    })?;
    let mut jsonl = String::new();
    for index in 0..count {
        let (image, caps, scene) = dataset.get(index);
        let name = format!("{index:06}.png");
        let final_path = images_dir.join(&name);
        let mut png = Vec::new();
        image
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .map_err(|source| DatasetError::Image {
                path: final_path.clone(),
                source,
            })?;
        write_atomic(&final_path, &png).map_err(|source| DatasetError::Io {
            path: final_path.clone(),
            source,
        })?;
        let record = CaptionRecord {
            file: format!("{IMAGES_DIR}/{name}"),
            captions: caps,
            scene,
        };
        let line = serde_json::to_string(&record).map_err(|source| DatasetError::Json {
            path: out_dir.join(CAPTIONS_FILE),
            line: index + 1,
            source,
        })?;
        jsonl.push_str(&line);
        jsonl.push('\n');
        progress(index + 1, count);
    }
    let captions_path = out_dir.join(CAPTIONS_FILE);
    write_atomic(&captions_path, jsonl.as_bytes()).map_err(|source| DatasetError::Io {
        path: captions_path.clone(),
        source,
    })?;
    Ok(DatasetSummary {
        images_dir,
        captions_path,
        count,
    })
}

/// Reads a `captions.jsonl` written by [`write_dataset`]; blank lines are ignored.
pub fn read_captions(path: &Path) -> Result<Vec<CaptionRecord>, DatasetError> {
    let file = fs::File::open(path).map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut records = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| DatasetError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str(&line).map_err(|source| DatasetError::Json {
            path: path.to_path_buf(),
            line: i + 1,
            source,
        })?;
        records.push(record);
    }
    Ok(records)
}
