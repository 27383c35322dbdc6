//! A store opened for queries: every part read and checked, the vectors in one matrix, and exact
//! (brute-force) cosine search over it.

use crate::ann::{self, Ann};
use crate::error::{IndexError, Result};
use crate::manifest::{Manifest, MANIFEST_FILE};
use crate::part::{self, Rows};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

pub struct Store {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// All parts' rows in manifest order.
    pub rows: Rows,
    ann: Option<Ann>,
    /// Why the store's ANN index was not used, when it was not.
    pub notice: Option<String>,
}

/// Every part's rows in manifest order, each part checked against its checksum. Parts are read
/// a thread's worth at a time and copied into one matrix sized up front, so the peak is the
/// store plus a few parts, not twice the store.
pub fn read_rows(dir: &Path, manifest: &Manifest) -> Result<Rows> {
    let mut rows = Rows::new(manifest.dim, manifest.vectors);
    rows.reserve(
        manifest
            .parts
            .iter()
            .fold(0usize, |n, p| n.saturating_add(p.rows)),
    );
    for batch in manifest.parts.chunks(rayon::current_num_threads().max(1)) {
        let parts: Vec<Rows> = batch
            .par_iter()
            .map(|p| part::read(&dir.join(&p.file), &p.xxh3, manifest.dim, manifest.vectors))
            .collect::<Result<_>>()?;
        for p in &parts {
            rows.append(p);
        }
    }
    Ok(rows)
}

/// Neighbours per row that `duplicates` checks through the ANN index.
pub const DEDUPE_NEIGHBOURS: usize = 32;

/// One search result.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    /// As stored: relative to the indexed folder, or as given in the file list.
    pub path: String,
    /// Cosine similarity with the query.
    pub score: f32,
    /// Row number in the store.
    pub row: usize,
}

/// Two stored images at least the dedupe threshold apart in cosine similarity.
#[derive(Clone, Debug, PartialEq)]
pub struct DuplicatePair {
    pub a: String,
    pub b: String,
    pub score: f32,
}

impl Store {
    /// Opens `dir/manifest.json` and every part it names, refusing a corrupt one.
    pub fn open(dir: &Path) -> Result<Self> {
        let mpath = dir.join(MANIFEST_FILE);
        let manifest = Manifest::read(&mpath)?.ok_or_else(|| IndexError::NoStore {
            path: dir.to_path_buf(),
        })?;
        let rows = read_rows(dir, &manifest)?;
        let (ann, notice) = match ann::open_checked(dir, &manifest, rows.len()) {
            Ok(a) => (a, None),
            Err(detail) => (
                None,
                Some(format!(
                    "{}: not used ({detail}); searching exactly. `clipguide index` brings it up to date",
                    ann::INDEX_FILE
                )),
            ),
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest,
            rows,
            ann,
            notice,
        })
    }

    /// The ANN search beam width for 10 neighbours (by default the one calibrated when the index
    /// was built, [`ann::EXPANSION_SEARCH`] for older indexes): recall against time.
    pub fn set_ann_expansion(&self, ef: usize) {
        if let Some(a) = &self.ann {
            a.set_expansion_search(ef);
        }
    }

    /// Whether queries go through the ANN index.
    pub fn has_ann(&self) -> bool {
        self.ann.is_some()
    }

    /// The `k` rows most similar to `query`, best first (ties by path): through the ANN index
    /// when the store has a valid one, else exact. Scores are exact cosines either way.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit>> {
        self.check_query(query)?;
        let Some(ann) = &self.ann else {
            return self.search_exact(query, k);
        };
        let mut hits: Vec<Hit> = ann
            .search(query, k)?
            .into_iter()
            .filter(|&row| row < self.rows.len())
            .map(|row| Hit {
                path: self.rows.meta[row].path.clone(),
                score: dot(query, &self.rows.row_f32(row)),
                row,
            })
            .collect();
        hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.path.cmp(&b.path))
        });
        Ok(hits)
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Refuses a model other than the store's, naming both.
    pub fn check_model(&self, model: &str) -> Result<()> {
        if self.manifest.model != model {
            return Err(IndexError::ModelMismatch {
                store: self.dir.clone(),
                store_model: self.manifest.model.clone(),
                model: model.into(),
            });
        }
        Ok(())
    }

    /// Checks that `query` has the store's dimension.
    pub fn check_query(&self, query: &[f32]) -> Result<()> {
        if query.len() != self.manifest.dim {
            return Err(IndexError::QueryDimension {
                store: self.dir.clone(),
                got: query.len(),
                want: self.manifest.dim,
                model: self.manifest.model.clone(),
            });
        }
        Ok(())
    }

    /// Cosine similarity of `query` (unit length) with every row.
    pub fn scores(&self, query: &[f32]) -> Result<Vec<f32>> {
        self.check_query(query)?;
        Ok(scores(&self.rows, query))
    }

    /// The `k` rows most similar to `query` by exact search, best first (ties by path).
    pub fn search_exact(&self, query: &[f32], k: usize) -> Result<Vec<Hit>> {
        let s = self.scores(query)?;
        Ok(top_k(&self.rows, &s, k))
    }

    /// Pairs of rows with cosine similarity ≥ `threshold`, most similar first. With an ANN
    /// index, each row's nearest [`DEDUPE_NEIGHBOURS`] are checked (a row with more
    /// near-duplicates than that lists only those); without, every pair (quadratic).
    pub fn duplicates(&self, threshold: f32) -> Result<Vec<DuplicatePair>> {
        let n = self.len();
        if let Some(ann) = &self.ann {
            let mut pairs: Vec<DuplicatePair> = (0..n)
                .into_par_iter()
                .map(|i| {
                    let q = self.rows.row_f32(i);
                    let near = ann.search(&q, DEDUPE_NEIGHBOURS + 1)?;
                    Ok(near
                        .into_iter()
                        .filter(|&j| j > i && j < n)
                        .map(|j| (j, dot(&q, &self.rows.row_f32(j))))
                        .filter(|&(_, s)| s >= threshold)
                        .map(|(j, s)| ordered_pair(&self.rows, i, j, s))
                        .collect::<Vec<_>>())
                })
                .collect::<Result<Vec<_>>>()?
                .into_iter()
                .flatten()
                .collect();
            sort_pairs(&mut pairs);
            return Ok(pairs);
        }
        let mut pairs: Vec<DuplicatePair> = (0..n)
            .into_par_iter()
            .flat_map_iter(|i| {
                let q = self.rows.row_f32(i);
                let mut buf = vec![0f32; self.rows.dim];
                let mut out = vec![];
                for j in i + 1..n {
                    self.rows.vectors.row_f32(j, self.rows.dim, &mut buf);
                    let s = dot(&q, &buf);
                    if s >= threshold {
                        out.push(ordered_pair(&self.rows, i, j, s));
                    }
                }
                out
            })
            .collect();
        sort_pairs(&mut pairs);
        Ok(pairs)
    }
}

pub(crate) fn ordered_pair(rows: &Rows, i: usize, j: usize, score: f32) -> DuplicatePair {
    let (a, b) = (&rows.meta[i].path, &rows.meta[j].path);
    let (a, b) = if a <= b { (a, b) } else { (b, a) };
    DuplicatePair {
        a: a.clone(),
        b: b.clone(),
        score,
    }
}

pub(crate) fn sort_pairs(pairs: &mut [DuplicatePair]) {
    pairs.sort_by(|x, y| {
        y.score
            .total_cmp(&x.score)
            .then_with(|| x.a.cmp(&y.a))
            .then_with(|| x.b.cmp(&y.b))
    });
}

pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight lanes let the compiler vectorise the reduction.
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// Dot products of `query` with every row, converting f16 rows a block at a time.
pub(crate) fn scores(rows: &Rows, query: &[f32]) -> Vec<f32> {
    const BLOCK: usize = 256;
    let dim = rows.dim;
    let mut out = vec![0f32; rows.len()];
    out.par_chunks_mut(BLOCK)
        .enumerate()
        .for_each(|(b, chunk)| {
            let mut buf = vec![0f32; dim];
            for (k, o) in chunk.iter_mut().enumerate() {
                rows.vectors.row_f32(b * BLOCK + k, dim, &mut buf);
                *o = dot(query, &buf);
            }
        });
    out
}

/// The `k` best rows by score, best first; equal scores in path order.
pub(crate) fn top_k(rows: &Rows, scores: &[f32], k: usize) -> Vec<Hit> {
    let cmp = |a: &usize, b: &usize| {
        scores[*b]
            .total_cmp(&scores[*a])
            .then_with(|| rows.meta[*a].path.cmp(&rows.meta[*b].path))
    };
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    let k = k.min(idx.len());
    if k == 0 {
        return vec![];
    }
    if k < idx.len() {
        idx.select_nth_unstable_by(k - 1, cmp);
        idx.truncate(k);
    }
    idx.sort_by(cmp);
    idx.into_iter()
        .map(|i| Hit {
            path: rows.meta[i].path.clone(),
            score: scores[i],
            row: i,
        })
        .collect()
}
