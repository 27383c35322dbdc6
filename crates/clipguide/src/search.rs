//! Text-to-image search over a folder, with image embeddings cached on disk beside the images
//! and refreshed when a file's size or modification time changes.

use anyhow::{Context, Result};
use candle_core::Tensor;
use clipguide_clip::{cosine_matrix, Clip};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const IMAGE_EXTS: [&str; 6] = ["png", "jpg", "jpeg", "webp", "bmp", "gif"];

#[derive(Serialize, Deserialize, Default)]
struct Index {
    model_key: String,
    entries: HashMap<String, Entry>,
}

#[derive(Serialize, Deserialize, Clone)]
struct Entry {
    size: u64,
    mtime_ns: u128,
    embedding: Vec<f32>,
}

pub struct SearchHit {
    pub path: PathBuf,
    pub score: f32,
}

pub struct SearchStats {
    pub embedded: usize,
    pub cached: usize,
    pub skipped: Vec<(PathBuf, String)>,
}

fn stamp(path: &Path) -> Result<(u64, u128)> {
    let md = std::fs::metadata(path)?;
    let mtime = md
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Ok((md.len(), mtime))
}

pub fn cache_path(dir: &Path) -> PathBuf {
    dir.join(".clipguide-search.json")
}

pub fn search(
    clip: &Clip,
    model_key: &str,
    dir: &Path,
    query: &str,
    top: usize,
) -> Result<(Vec<SearchHit>, SearchStats)> {
    anyhow::ensure!(
        dir.is_dir(),
        "{}: not a folder. --dir takes a folder of images.",
        dir.display()
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| IMAGE_EXTS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();
    anyhow::ensure!(
        !files.is_empty(),
        "{}: no images (png, jpg, webp, bmp, gif) in this folder.",
        dir.display()
    );
    let cpath = cache_path(dir);
    let old: Index = std::fs::read_to_string(&cpath)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .filter(|i: &Index| i.model_key == model_key)
        .unwrap_or_default();
    let mut index = Index {
        model_key: model_key.to_string(),
        entries: HashMap::new(),
    };
    let mut stats = SearchStats {
        embedded: 0,
        cached: 0,
        skipped: vec![],
    };
    let mut todo = vec![];
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let (size, mtime_ns) = stamp(f)?;
        match old.entries.get(&name) {
            Some(e) if e.size == size && e.mtime_ns == mtime_ns => {
                index.entries.insert(name, e.clone());
                stats.cached += 1;
            }
            _ => todo.push((name, f.clone(), size, mtime_ns)),
        }
    }
    for chunk in todo.chunks(16) {
        let mut imgs = vec![];
        let mut keep = vec![];
        for (name, path, size, mtime) in chunk {
            match clip.load_image(path) {
                Ok(img) => {
                    imgs.push(img);
                    keep.push((name.clone(), *size, *mtime));
                }
                Err(e) => stats.skipped.push((path.clone(), e.to_string())),
            }
        }
        if imgs.is_empty() {
            continue;
        }
        let emb = clip.embed_images(&imgs)?.to_vec2::<f32>()?;
        for ((name, size, mtime_ns), embedding) in keep.into_iter().zip(emb) {
            index.entries.insert(
                name,
                Entry {
                    size,
                    mtime_ns,
                    embedding,
                },
            );
            stats.embedded += 1;
        }
    }
    if stats.embedded > 0 || index.entries.len() != old.entries.len() {
        if let Some(parent) = cpath.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        clipguide_clip::fsutil::write_atomic(&cpath, serde_json::to_string(&index)?.as_bytes())
            .with_context(|| format!("writing {}", cpath.display()))?;
    }
    let mut names: Vec<&String> = index.entries.keys().collect();
    names.sort();
    anyhow::ensure!(!names.is_empty(), "no readable images in {}", dir.display());
    let dim = index.entries[names[0]].embedding.len();
    let flat: Vec<f32> = names
        .iter()
        .flat_map(|n| index.entries[*n].embedding.clone())
        .collect();
    let img = Tensor::from_vec(flat, (names.len(), dim), clip.device())?;
    let txt = clip.embed_texts(&[query])?;
    let scores = cosine_matrix(&img, &txt)?.squeeze(1)?.to_vec1::<f32>()?;
    let mut hits: Vec<SearchHit> = names
        .iter()
        .zip(scores)
        .map(|(n, score)| SearchHit {
            path: dir.join(n),
            score,
        })
        .collect();
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.path.cmp(&b.path)));
    hits.truncate(top);
    Ok((hits, stats))
}
