//! Joining shards: every `shard-I-of-N.json` in a store folder is checked (same model,
//! dimension and vector type; every part's checksum; no path in two parts) and its parts enter
//! `manifest.json`, which from then on owns them.

use crate::ann::AnnPolicy;
use crate::error::{read_err, write_err, IndexError, Result};
use crate::indexer::Notice;
use crate::manifest::{Manifest, MANIFEST_FILE};
use crate::part::{self, Rows};
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default)]
pub struct MergeReport {
    /// Shard manifests joined (and removed).
    pub shards: Vec<PathBuf>,
    pub parts: usize,
    pub rows: usize,
    /// What building the ANN index had to say.
    pub notices: Vec<Notice>,
}

/// Joins the shards in `store` and builds the ANN index as `ann` says (by default from
/// [`crate::ann::ANN_MIN_ROWS`] rows, kept where it beats exact search).
pub fn merge(store: &Path, ann: AnnPolicy) -> Result<MergeReport> {
    let mpath = store.join(MANIFEST_FILE);
    let mut shard_files: Vec<PathBuf> = std::fs::read_dir(store)
        .map_err(read_err(store))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("shard-") && n.ends_with(".json"))
        })
        .collect();
    shard_files.sort();
    let mut shards = vec![];
    for p in &shard_files {
        shards.push(Manifest::read(p)?.expect("listed just now"));
    }
    let mut merged = match Manifest::read(&mpath)? {
        Some(m) => m,
        None => {
            let first = shards.first().ok_or_else(|| IndexError::NoStore {
                path: store.to_path_buf(),
            })?;
            Manifest::new(&first.model, first.dim, first.vectors)
        }
    };
    for (s, p) in shards.iter().zip(&shard_files) {
        let what = if s.model != merged.model {
            Some(format!("model {:?} vs {:?}", s.model, merged.model))
        } else if s.dim != merged.dim {
            Some(format!("dimension {} vs {}", s.dim, merged.dim))
        } else if s.vectors != merged.vectors && !s.parts.is_empty() {
            Some(format!("vectors {:?} vs {:?}", s.vectors, merged.vectors))
        } else {
            None
        };
        if let Some(w) = what {
            return Err(IndexError::ShardMismatch {
                detail: format!("{} has {w}", p.display()),
            });
        }
        for part in &s.parts {
            if !merged.parts.iter().any(|q| q.file == part.file) {
                merged.parts.push(part.clone());
            }
        }
    }
    // Every part read back: checksums, schema, and no image in two parts.
    let parts: Vec<Rows> = merged
        .parts
        .par_iter()
        .map(|p| part::read(&store.join(&p.file), &p.xxh3, merged.dim, merged.vectors))
        .collect::<Result<_>>()?;
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for (p, rows) in merged.parts.iter().zip(&parts) {
        for path in rows.meta.iter().map(|m| &m.path) {
            if let Some(other) = seen.insert(path, &p.file) {
                return Err(IndexError::DuplicatePath {
                    path: path.clone(),
                    a: other.into(),
                    b: p.file.clone(),
                });
            }
        }
    }
    // An index holding the first parts takes the shards' appended parts; any other is stale.
    if let Some(ix) = &merged.index {
        if merged.index_prefix().is_none() {
            let _ = std::fs::remove_file(store.join(&ix.file));
            merged.index = None;
        }
    }
    let mut notices = vec![];
    let consider = merged.rows() >= ann.min_rows() || merged.index.is_some();
    if consider && !crate::ann::surely_unchanged(&merged, ann) {
        let mut rows = Rows::new(merged.dim, merged.vectors);
        for p in &parts {
            rows.append(p);
        }
        notices = Notice::of_ann(crate::ann::refresh(store, &mut merged, &rows, ann)?);
    }
    merged.write(&mpath)?;
    for p in &shard_files {
        std::fs::remove_file(p).map_err(write_err(p))?;
    }
    Ok(MergeReport {
        shards: shard_files,
        parts: merged.parts.len(),
        rows: merged.rows(),
        notices,
    })
}
