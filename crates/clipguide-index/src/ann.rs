//! The approximate nearest-neighbour index (HNSW, `usearch`) saved beside the parts as
//! `index.usearch`. It is built from exactly the parts the manifest names (their checksums are
//! recorded with it) and is never trusted otherwise: a stale or corrupt index is rebuilt by
//! indexing, and ignored (exact search) by queries. Below [`ANN_MIN_ROWS`] rows exact search is
//! as fast, so no index is kept.

use crate::error::{write_err, IndexError, Result};
use crate::manifest::{checksum, IndexInfo, Manifest, VectorType};
use crate::part::Rows;
use rayon::prelude::*;
use std::path::Path;
use usearch::{MetricKind, ScalarKind};

/// Rows from which an ANN index is built. On random 512-d unit vectors (no cluster structure,
/// the hardest case) HNSW was slower than exact search at every size measured, up to 10⁶ rows,
/// where it reached only recall@10 0.87 at 7× exact search's latency (BENCHMARKS.md, issue
/// #27): exact search it is up to 10⁷ rows (10 GB of f16 vectors, where memory rather than
/// speed calls for the index), until a measurement on real embeddings says where they cross.
pub const ANN_MIN_ROWS: usize = 10_000_000;
pub const INDEX_FILE: &str = "index.usearch";

/// Graph degree and build beam width (usearch's defaults are 16 and 128).
const CONNECTIVITY: usize = 16;
const EXPANSION_ADD: usize = 128;
/// Search beam width: the smallest that gave recall@10 ≥ 0.95 on 10⁵ random 512-d unit vectors
/// (tuned on other queries than those reported; BENCHMARKS.md). Real embeddings need less.
pub const EXPANSION_SEARCH: usize = 8192;

/// Stores smaller than this build their graph on one thread, reproducibly (10⁵ rows took
/// 169 s on two threads here, so about 6 min on one; the default threshold for an index at all
/// is [`ANN_MIN_ROWS`], far above).
pub const SEQUENTIAL_BUILD_BELOW: usize = 100_000;

pub struct Ann {
    index: usearch::Index,
}

fn ann_err<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> IndexError + '_ {
    move |e| IndexError::Ann {
        detail: format!("{what}: {e}"),
    }
}

impl Ann {
    /// An HNSW graph over every row (keys are row numbers): in row order on one thread below
    /// [`SEQUENTIAL_BUILD_BELOW`] rows, so the same rows give the same graph and the same file,
    /// on all cores above it (where the graph then depends on the threads' interleaving).
    pub fn build(rows: &Rows) -> Result<Self> {
        let opts = usearch::IndexOptions {
            dimensions: rows.dim,
            metric: MetricKind::IP,
            quantization: match rows.vectors.kind() {
                VectorType::F16 => ScalarKind::F16,
                VectorType::F32 => ScalarKind::F32,
            },
            connectivity: CONNECTIVITY,
            expansion_add: EXPANSION_ADD,
            expansion_search: EXPANSION_SEARCH,
            multi: false,
        };
        let index = usearch::Index::new(&opts).map_err(ann_err("creating the index"))?;
        let sequential = rows.len() < SEQUENTIAL_BUILD_BELOW;
        let threads = if sequential {
            1
        } else {
            rayon::current_num_threads()
        };
        index
            .reserve_capacity_and_threads(rows.len(), threads)
            .map_err(ann_err("reserving memory"))?;
        let add = |i: usize| {
            index
                .add(i as u64, &rows.row_f32(i))
                .map_err(ann_err("adding a vector"))
        };
        if sequential {
            (0..rows.len()).try_for_each(add)?;
        } else {
            (0..rows.len()).into_par_iter().try_for_each(add)?;
        }
        Ok(Self { index })
    }

    /// Saves atomically; returns the file's checksum.
    pub fn save(&self, path: &Path) -> Result<String> {
        let mut buf = vec![0u8; self.index.serialized_length()];
        self.index
            .save_to_buffer(&mut buf)
            .map_err(ann_err("serialising"))?;
        clipguide_clip::fsutil::write_atomic(path, &buf).map_err(write_err(path))?;
        Ok(checksum(&buf))
    }

    /// Loads an index whose bytes must match `expected`; the error says what is wrong.
    pub fn load(path: &Path, expected: &str) -> std::result::Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
        let sum = checksum(&bytes);
        if sum != expected {
            return Err(format!("checksum {sum} but the manifest says {expected}"));
        }
        let index = usearch::Index::restore_from_buffer(&bytes).map_err(|e| e.to_string())?;
        index.change_expansion_search(EXPANSION_SEARCH);
        Ok(Self { index })
    }

    pub fn len(&self) -> usize {
        self.index.size()
    }

    /// The search beam width: recall against time.
    pub fn set_expansion_search(&self, ef: usize) {
        self.index.change_expansion_search(ef);
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row numbers of (about) the `k` nearest rows.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<usize>> {
        let m = self.index.search(query, k).map_err(ann_err("searching"))?;
        Ok(m.keys.into_iter().map(|k| k as usize).collect())
    }
}

/// Why the manifest's index cannot be used, or `Ok(None)` when it has none.
pub fn open_checked(
    store: &Path,
    manifest: &Manifest,
    rows: usize,
) -> std::result::Result<Option<Ann>, String> {
    let Some(info) = &manifest.index else {
        return Ok(None);
    };
    if info.parts_xxh3 != manifest.parts_checksum() {
        return Err("it was built from other parts".into());
    }
    let ann = Ann::load(&store.join(&info.file), &info.xxh3)?;
    if ann.len() != rows {
        return Err(format!("{} vectors for {rows} rows", ann.len()));
    }
    Ok(Some(ann))
}

/// Makes the manifest's index match its parts: kept when valid, built when missing, stale or
/// corrupt (the reason returned for a notice), removed below `min_rows`. The caller commits the
/// manifest.
pub fn refresh(
    store: &Path,
    manifest: &mut Manifest,
    rows: &Rows,
    min_rows: usize,
) -> Result<Option<String>> {
    let path = store.join(INDEX_FILE);
    if rows.len() < min_rows {
        if manifest.index.take().is_some() || path.exists() {
            let _ = std::fs::remove_file(&path);
        }
        return Ok(None);
    }
    let why = match open_checked(store, manifest, rows.len()) {
        Ok(Some(_)) => return Ok(None),
        Ok(None) => None,
        Err(why) => Some(why),
    };
    let ann = Ann::build(rows)?;
    let xxh3 = ann.save(&path)?;
    manifest.index = Some(IndexInfo {
        file: INDEX_FILE.into(),
        xxh3,
        parts_xxh3: manifest.parts_checksum(),
    });
    Ok(why)
}
