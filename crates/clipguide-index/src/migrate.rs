//! The JSON cache that `search --dir` kept before the store (`DIR/.clipguide-search.json`):
//! read once when a folder's store is first built, then removed.

use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const JSON_CACHE: &str = ".clipguide-search.json";

#[derive(Deserialize)]
struct Cache {
    model_key: String,
    entries: HashMap<String, Entry>,
}

#[derive(Deserialize)]
struct Entry {
    size: u64,
    mtime_ns: u128,
    embedding: Vec<f32>,
}

/// An embedding from the old cache, valid while the file keeps its size and mtime.
pub struct Cached {
    pub size: u64,
    pub mtime_ns: i64,
    /// Unit length (the cache held unnormalised projections).
    pub unit: Vec<f32>,
}

pub fn cache_path(dir: &Path) -> PathBuf {
    dir.join(JSON_CACHE)
}

/// The cache's embeddings for `model` with `dim` dimensions, by file name; `None` when there
/// is no cache, it is unreadable or it belongs to another model (then it is simply not used).
pub fn read(dir: &Path, model: &str, dim: usize) -> Option<HashMap<String, Cached>> {
    let text = std::fs::read_to_string(cache_path(dir)).ok()?;
    let cache: Cache = serde_json::from_str(&text).ok()?;
    if cache.model_key != model {
        return None;
    }
    Some(
        cache
            .entries
            .into_iter()
            .filter(|(_, e)| e.embedding.len() == dim)
            .map(|(k, e)| {
                let norm = e
                    .embedding
                    .iter()
                    .map(|x| x * x)
                    .sum::<f32>()
                    .sqrt()
                    .max(1e-12);
                let unit = e.embedding.iter().map(|x| x / norm).collect();
                (
                    k,
                    Cached {
                        size: e.size,
                        mtime_ns: e.mtime_ns as i64,
                        unit,
                    },
                )
            })
            .collect(),
    )
}
