//! The approximate nearest-neighbour index (HNSW, `usearch`) saved beside the parts as
//! `index.usearch`. It records the checksums of the parts it holds, the first ones of the
//! manifest's list, and queries use it only when it holds them all: parts appended since are
//! added to it by the next indexing run, any other change (or a corrupt file) rebuilds it, and
//! meanwhile queries search exactly.
//!
//! Whether an index pays depends on the vectors, not only on their number: on vectors of low
//! intrinsic dimension (the structure real embeddings have; no real CLIP weights were at hand to
//! measure those) HNSW beat exact search 12× at 10⁵ rows, on uniform random 512-d vectors it lost
//! at every size up to 10⁶ (BENCHMARKS.md, issue #27). So from
//! [`ANN_MIN_ROWS`] rows the index is built and **calibrated on the store's own rows**: the
//! search beam width is the smallest that reaches [`TARGET_RECALL`] on queries between stored
//! vectors, and under [`AnnPolicy::Auto`] the index is kept only where that width searches at
//! least [`MIN_SPEEDUP`] times faster than exact search. Calibration is for 10 neighbours; a
//! search for more widens the beam in proportion ([`Ann::search`]).

use crate::error::{write_err, IndexError, Result};
use crate::manifest::{checksum, AnnCalibration, IndexInfo, Manifest, VectorType};
use crate::part::Rows;
use rayon::prelude::*;
use std::path::Path;
use std::time::Instant;
use usearch::{MetricKind, ScalarKind};

/// Rows from which an ANN index is built and calibrated. Below, exact search over the f16 matrix
/// takes under 4 ms a query here (3.4 ms at 5·10⁴ rows on the Intel Xeon), fast enough that an
/// index build (minutes) is not worth it.
pub const ANN_MIN_ROWS: usize = 50_000;
pub const INDEX_FILE: &str = "index.usearch";

/// When the ANN index is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnnPolicy {
    /// No index (an existing one is removed): stores that are only ever scanned whole, such as
    /// `zeroshot`'s embedding cache.
    Never,
    /// From `min_rows` rows: built, calibrated, and kept only where it is at least
    /// [`MIN_SPEEDUP`] times faster than exact search at [`TARGET_RECALL`].
    Auto { min_rows: usize },
    /// From `min_rows` rows: built, calibrated and kept whatever it measured.
    Always { min_rows: usize },
}

impl AnnPolicy {
    /// Rows from which an index is considered.
    pub fn min_rows(self) -> usize {
        match self {
            Self::Never => usize::MAX,
            Self::Auto { min_rows } | Self::Always { min_rows } => min_rows,
        }
    }
}

impl Default for AnnPolicy {
    fn default() -> Self {
        Self::Auto {
            min_rows: ANN_MIN_ROWS,
        }
    }
}

/// recall@10 against exact search that calibration asks of the beam width.
pub const TARGET_RECALL: f64 = 0.95;
/// How much faster than exact search a kept index must be ([`AnnPolicy::Auto`]): the index costs
/// minutes to build and a file as large as the vectors.
pub const MIN_SPEEDUP: f64 = 2.0;
/// Queries calibration measures (fewer on smaller stores).
const CALIBRATION_QUERIES: usize = 100;
/// Narrowest beam width calibration tries; it doubles from there up to [`EXPANSION_SEARCH`].
const MIN_EXPANSION: usize = 16;

/// Graph degree and build beam width (usearch's defaults are 16 and 128).
const CONNECTIVITY: usize = 16;
const EXPANSION_ADD: usize = 128;
/// Widest search beam width: the smallest that gave recall@10 ≥ 0.95 on 10⁵ random 512-d unit
/// vectors (BENCHMARKS.md), the hardest case; used by indexes built before calibration, and the
/// most calibration tries.
pub const EXPANSION_SEARCH: usize = 8192;

/// Stores smaller than this build their graph on one thread, reproducibly (10⁵ rows took
/// 169 s on two threads here, so about 6 min on one).
pub const SEQUENTIAL_BUILD_BELOW: usize = 20_000;

pub struct Ann {
    index: usearch::Index,
    /// Beam width for 10 neighbours (calibrated, or [`EXPANSION_SEARCH`]).
    ef: std::sync::atomic::AtomicUsize,
}

/// A beam width read from a manifest, kept within what calibration can choose (a corrupt or
/// hand-edited value must not reach usearch's allocator).
pub fn clamp_expansion(ef: usize) -> usize {
    ef.clamp(MIN_EXPANSION, EXPANSION_SEARCH)
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
        Ok(Self::with_ef(index, EXPANSION_SEARCH))
    }

    /// Adds `rows[from..]` with their row numbers as keys, in order on one thread when fewer
    /// than [`SEQUENTIAL_BUILD_BELOW`] (so the same appends give the same file), else in parallel.
    pub fn extend(&self, rows: &Rows, from: usize) -> Result<()> {
        // The same rule as `build`: a graph of more rows was built in parallel anyway.
        let sequential = rows.len() < SEQUENTIAL_BUILD_BELOW;
        let threads = if sequential {
            1
        } else {
            rayon::current_num_threads()
        };
        self.index
            .reserve_capacity_and_threads(rows.len(), threads)
            .map_err(ann_err("reserving memory"))?;
        let add = |i: usize| {
            self.index
                .add(i as u64, &rows.row_f32(i))
                .map_err(ann_err("adding a vector"))
        };
        if sequential {
            (from..rows.len()).try_for_each(add)
        } else {
            (from..rows.len()).into_par_iter().try_for_each(add)
        }
    }

    fn with_ef(index: usearch::Index, ef: usize) -> Self {
        index.change_expansion_search(ef);
        Self {
            index,
            ef: ef.into(),
        }
    }

    /// The index as the bytes of its file.
    fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; self.index.serialized_length()];
        self.index
            .save_to_buffer(&mut buf)
            .map_err(ann_err("serialising"))?;
        Ok(buf)
    }

    /// Saves atomically; returns the file's checksum.
    pub fn save(&self, path: &Path) -> Result<String> {
        let buf = self.to_bytes()?;
        clipguide_clip::fsutil::write_atomic(path, &buf).map_err(write_err(path))?;
        Ok(checksum(&buf))
    }

    /// Loads an index whose bytes must match `expected`, searching with beam width `ef`; the
    /// error says what is wrong.
    pub fn load(path: &Path, expected: &str, ef: usize) -> std::result::Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
        let sum = checksum(&bytes);
        if sum != expected {
            return Err(format!("checksum {sum} but the manifest says {expected}"));
        }
        let index = usearch::Index::restore_from_buffer(&bytes).map_err(|e| e.to_string())?;
        Ok(Self::with_ef(index, clamp_expansion(ef)))
    }

    pub fn len(&self) -> usize {
        self.index.size()
    }

    /// The search beam width for 10 neighbours: recall against time.
    pub fn set_expansion_search(&self, ef: usize) {
        self.ef.store(ef, std::sync::atomic::Ordering::Relaxed);
        self.index.change_expansion_search(ef);
    }

    /// The search beam width for 10 neighbours.
    pub fn expansion_search(&self) -> usize {
        self.ef.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row numbers of (about) the `k` nearest rows. The beam is [`Self::expansion_search`] times
    /// ⌈k / 10⌉, so that more neighbours keep about the calibrated recall. (usearch keeps one
    /// width per index: threads searching for different `k` at once may search at each other's.)
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<usize>> {
        let want = self
            .expansion_search()
            .saturating_mul(k.div_ceil(10).max(1))
            .min(k.max(EXPANSION_SEARCH));
        if self.index.expansion_search() != want {
            self.index.change_expansion_search(want);
        }
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
    match manifest.index_prefix() {
        Some(n) if n == manifest.parts.len() => {}
        Some(n) => {
            return Err(format!(
                "it holds {n} of the {} parts (`clipguide index` adds the rest)",
                manifest.parts.len()
            ))
        }
        None => return Err("it was built from other parts".into()),
    }
    let ef = info
        .calibration
        .as_ref()
        .map_or(EXPANSION_SEARCH, |c| c.expansion_search);
    // `load` clamps `ef` to what calibration can choose.
    let ann = Ann::load(&store.join(&info.file), &info.xxh3, ef)?;
    if ann.len() != rows {
        return Err(format!("{} vectors for {rows} rows", ann.len()));
    }
    Ok(Some(ann))
}

/// What [`refresh`] did to the store's index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnnRefresh {
    /// No index built or removed: a valid one kept, none below the row threshold, or one
    /// declined for fewer than half these rows.
    Unchanged,
    /// Removed: the store fell below the row threshold.
    Removed,
    /// Built and calibrated; `replaced` says why an existing index was not used.
    Built {
        calibration: AnnCalibration,
        replaced: Option<String>,
    },
    /// The parts appended since it was built added to it (`rows` of them); calibrated again
    /// when the store has doubled since the last calibration.
    Extended { rows: usize },
    /// Built, calibrated, and dropped as no faster than exact search; `replaced` as for
    /// `Built`.
    Declined {
        calibration: AnnCalibration,
        replaced: Option<String>,
    },
}

/// Makes the manifest's index match its parts under `policy`: kept when valid; extended when
/// parts were only appended; built and calibrated when missing, stale or corrupt; removed below
/// the row threshold. A store whose index was declined is not tried again until it has twice
/// the rows. The caller commits the manifest.
pub fn refresh(
    store: &Path,
    manifest: &mut Manifest,
    rows: &Rows,
    policy: AnnPolicy,
) -> Result<AnnRefresh> {
    refresh_measured(store, manifest, rows, policy, calibrate)
}

/// Whether [`refresh`] would leave the store's index alone without looking at its rows: below
/// the threshold with none, or declined for fewer than half these rows (and none to replace).
pub fn surely_unchanged(manifest: &Manifest, policy: AnnPolicy) -> bool {
    let rows = manifest.rows();
    if manifest.index.is_some() {
        return false;
    }
    rows < policy.min_rows() && manifest.ann_declined.is_none()
        || matches!(policy, AnnPolicy::Auto { .. }) && declined_below(manifest, rows)
}

fn declined_below(manifest: &Manifest, rows: usize) -> bool {
    manifest
        .ann_declined
        .as_ref()
        .is_some_and(|d| rows < d.rows.saturating_mul(2))
}

/// [`refresh`] with the calibration step given (tests fix what it measures).
fn refresh_measured(
    store: &Path,
    manifest: &mut Manifest,
    rows: &Rows,
    policy: AnnPolicy,
    measure: impl FnOnce(&Ann, &Rows, AnnPolicy) -> Result<AnnCalibration>,
) -> Result<AnnRefresh> {
    let path = store.join(INDEX_FILE);
    if rows.len() < policy.min_rows() {
        manifest.ann_declined = None;
        if manifest.index.take().is_some() || path.exists() {
            let _ = std::fs::remove_file(&path);
            return Ok(AnnRefresh::Removed);
        }
        return Ok(AnnRefresh::Unchanged);
    }
    let mut replaced = match open_checked(store, manifest, rows.len()) {
        Ok(Some(_)) => return Ok(AnnRefresh::Unchanged),
        Ok(None) => None,
        Err(why) => Some(why),
    };
    let auto = matches!(policy, AnnPolicy::Auto { .. });
    // An index holding the first parts takes the appended ones; anything else is rebuilt.
    let extended = match appendable(store, manifest, rows) {
        Ok(Some((ann, from))) => {
            ann.extend(rows, from)?;
            Some((ann, rows.len() - from))
        }
        Ok(None) => None,
        Err(why) => {
            replaced = Some(why);
            None
        }
    };
    let (ann, added) = match extended {
        Some((ann, added)) => (ann, Some(added)),
        None => {
            if auto && declined_below(manifest, rows.len()) && replaced.is_none() {
                return Ok(AnnRefresh::Unchanged);
            }
            (Ann::build(rows)?, None)
        }
    };
    let bytes = ann.to_bytes()?;
    // An extended index keeps its calibration until the store has doubled since it was made.
    let kept_calibration = added
        .and(manifest.index.as_ref())
        .and_then(|ix| ix.calibration.clone())
        .filter(|c| rows.len() < c.rows.saturating_mul(2) && (!auto || worth_keeping(c)));
    let calibration = match kept_calibration {
        Some(c) => c,
        None => measure(&ann, rows, policy)?,
    };
    if auto && !worth_keeping(&calibration) {
        manifest.index = None;
        let _ = std::fs::remove_file(&path);
        manifest.ann_declined = Some(calibration.clone());
        return Ok(AnnRefresh::Declined {
            calibration,
            replaced: if added.is_some() { None } else { replaced },
        });
    }
    clipguide_clip::fsutil::write_atomic(&path, &bytes).map_err(write_err(&path))?;
    manifest.ann_declined = None;
    manifest.index = Some(IndexInfo {
        file: INDEX_FILE.into(),
        xxh3: checksum(&bytes),
        parts_xxh3: manifest.parts_checksum(),
        parts: Some(manifest.parts.len()),
        calibration: Some(calibration.clone()),
    });
    Ok(match added {
        Some(rows) => AnnRefresh::Extended { rows },
        None => AnnRefresh::Built {
            calibration,
            replaced,
        },
    })
}

/// The manifest's index and the first row it lacks, when it holds the first parts of the list
/// and only parts were appended since; `Ok(None)` when it is absent or stale; `Err` (why) when
/// it cannot be read.
fn appendable(
    store: &Path,
    manifest: &Manifest,
    rows: &Rows,
) -> std::result::Result<Option<(Ann, usize)>, String> {
    let (Some(info), Some(n)) = (&manifest.index, manifest.index_prefix()) else {
        return Ok(None);
    };
    let from: usize = manifest.parts[..n].iter().map(|p| p.rows).sum();
    if n == manifest.parts.len() {
        return Ok(None);
    }
    if from > rows.len() {
        return Err(format!(
            "its parts' row counts ({from}) exceed the store's {} rows",
            rows.len()
        ));
    }
    let ef = info
        .calibration
        .as_ref()
        .map_or(EXPANSION_SEARCH, |c| c.expansion_search);
    let ann = Ann::load(&store.join(&info.file), &info.xxh3, ef)?;
    if ann.len() != from {
        return Err(format!(
            "{} vectors for the {from} rows of its parts",
            ann.len()
        ));
    }
    Ok(Some((ann, from)))
}

/// Whether a calibrated index reached the target recall at least [`MIN_SPEEDUP`] times faster
/// than exact search.
pub fn worth_keeping(c: &AnnCalibration) -> bool {
    c.recall_permille as f64 >= TARGET_RECALL * 1000.0
        && (c.ann_us as f64) * MIN_SPEEDUP <= c.exact_us as f64
}

/// Calibration queries: unit midpoints of two stored rows, spread over the store (points between
/// the data, as real queries are, never a stored vector itself).
fn calibration_queries(rows: &Rows) -> Vec<Vec<f32>> {
    let n = rows.len();
    let q = CALIBRATION_QUERIES.min(n);
    (0..q)
        .filter_map(|i| {
            let a = i * n / q;
            let b = (a + n / 2 + 7 * i + 1) % n;
            let (va, vb) = (rows.row_f32(a), rows.row_f32(b));
            let mid: Vec<f32> = va.iter().zip(&vb).map(|(x, y)| x + y).collect();
            let norm = mid.iter().map(|v| v * v).sum::<f32>().sqrt();
            (norm > 1e-3).then(|| mid.iter().map(|v| v / norm).collect())
        })
        .collect()
}

fn median_us(mut t: Vec<u64>) -> u64 {
    t.sort_unstable();
    t.get(t.len() / 2).copied().unwrap_or(0)
}

/// Measures exact search and the index (10 neighbours) on [`calibration_queries`], doubling the beam width from
/// [`MIN_EXPANSION`] until recall@10 reaches [`TARGET_RECALL`] (or [`EXPANSION_SEARCH`]); under
/// [`AnnPolicy::Auto`] it also stops where the index is already too slow to be kept. The width is
/// chosen by recall alone, so the same rows choose the same width; the times vary with the
/// machine's load.
pub fn calibrate(ann: &Ann, rows: &Rows, policy: AnnPolicy) -> Result<AnnCalibration> {
    let queries = calibration_queries(rows);
    let k = 10.min(rows.len());
    let mut exact_times = vec![];
    let truth: Vec<Vec<usize>> = queries
        .iter()
        .map(|q| {
            let t = Instant::now();
            let s = crate::store::scores(rows, q);
            let mut idx: Vec<usize> = (0..s.len()).collect();
            if k > 0 && k < idx.len() {
                idx.select_nth_unstable_by(k - 1, |a, b| s[*b].total_cmp(&s[*a]));
            }
            idx.truncate(k);
            exact_times.push(t.elapsed().as_micros() as u64);
            idx
        })
        .collect();
    let exact_us = median_us(exact_times);
    let mut ef = MIN_EXPANSION;
    loop {
        ann.set_expansion_search(ef);
        let (mut found, mut times) = (0usize, vec![]);
        for (q, want) in queries.iter().zip(&truth) {
            let t = Instant::now();
            let got = ann.search(q, k)?;
            times.push(t.elapsed().as_micros() as u64);
            found += got.iter().filter(|r| want.contains(r)).count();
        }
        let recall = found as f64 / (queries.len() * k).max(1) as f64;
        let c = AnnCalibration {
            rows: rows.len(),
            expansion_search: ef,
            recall_permille: (recall * 1000.0).floor() as u32,
            ann_us: median_us(times),
            exact_us,
        };
        let hopeless = matches!(policy, AnnPolicy::Auto { .. })
            && (c.ann_us as f64) * MIN_SPEEDUP > exact_us as f64;
        if recall >= TARGET_RECALL || ef >= EXPANSION_SEARCH || hopeless {
            return Ok(c);
        }
        ef *= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::part::FileMeta;

    /// Unit vectors near a `rank`-dimensional subspace of 64 (the structure graph indexes
    /// exploit; a higher rank is harder), from a fixed seed.
    fn clustered_rows(n: usize, rank: usize, kind: VectorType) -> Rows {
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        let mut uniform = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f32 / (1u64 << 53) as f32 * 2.0 - 1.0
        };
        let basis: Vec<Vec<f32>> = (0..rank)
            .map(|_| (0..64).map(|_| uniform()).collect())
            .collect();
        let mut rows = Rows::new(64, kind);
        for i in 0..n {
            let z: Vec<f32> = (0..rank).map(|_| uniform()).collect();
            let mut v: Vec<f32> = (0..64)
                .map(|d| (0..rank).map(|r| z[r] * basis[r][d]).sum::<f32>() + 0.05 * uniform())
                .collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
            let meta = FileMeta {
                path: format!("{i:05}.png"),
                size: 1,
                mtime_ns: 0,
                hash: format!("{i:032x}"),
            };
            rows.push(meta, &v);
        }
        rows
    }

    fn calibration(recall_permille: u32, ann_us: u64, exact_us: u64) -> AnnCalibration {
        AnnCalibration {
            rows: 1000,
            expansion_search: 64,
            recall_permille,
            ann_us,
            exact_us,
        }
    }

    /// recall@10 of `ann` at width `ef` on `queries`.
    fn recall_at(ann: &Ann, rows: &Rows, queries: &[Vec<f32>], ef: usize) -> f64 {
        ann.set_expansion_search(ef);
        let mut found = 0;
        for q in queries {
            let s = crate::store::scores(rows, q);
            let mut idx: Vec<usize> = (0..s.len()).collect();
            idx.sort_by(|a, b| s[*b].total_cmp(&s[*a]));
            let got = ann.search(q, 10).unwrap();
            found += got.iter().filter(|r| idx[..10].contains(r)).count();
        }
        found as f64 / (10 * queries.len()) as f64
    }

    #[test]
    fn an_index_is_kept_only_at_the_target_recall_and_speed() {
        assert!(worth_keeping(&calibration(950, 500, 1000)));
        assert!(!worth_keeping(&calibration(949, 10, 1000)), "recall short");
        assert!(
            !worth_keeping(&calibration(990, 501, 1000)),
            "not twice as fast"
        );
    }

    #[test]
    fn calibration_picks_the_narrowest_beam_reaching_the_target_recall() {
        // Rank 48 of 64: hard enough that the narrowest width falls short.
        let rows = clustered_rows(4000, 48, VectorType::F16);
        let ann = Ann::build(&rows).unwrap();
        let c = calibrate(&ann, &rows, AnnPolicy::Always { min_rows: 0 }).unwrap();
        assert_eq!(c.rows, 4000);
        assert!(c.recall_permille >= 950, "{c:?}");
        assert!(c.expansion_search.is_power_of_two(), "{c:?}");
        assert!(
            c.expansion_search > MIN_EXPANSION,
            "the test data is too easy to check the search: {c:?}"
        );
        let queries = calibration_queries(&rows);
        let narrower = recall_at(&ann, &rows, &queries, c.expansion_search / 2);
        assert!(narrower < TARGET_RECALL, "{narrower} at half of {c:?}");
        // The width holds on other queries than calibration's: stored rows moved a little.
        let moved: Vec<Vec<f32>> = (0..rows.len())
            .step_by(37)
            .map(|i| {
                let mut q = rows.row_f32(i);
                q.iter_mut()
                    .enumerate()
                    .for_each(|(d, x)| *x += 0.02 * (d % 3) as f32 - 0.02);
                q
            })
            .collect();
        let held_out = recall_at(&ann, &rows, &moved, c.expansion_search);
        assert!(held_out >= 0.9, "held-out recall {held_out} at {c:?}");
    }

    #[test]
    fn auto_keeps_a_fast_index_with_its_width_and_drops_a_slow_one() {
        let rows = clustered_rows(500, 4, VectorType::F32);
        let auto = AnnPolicy::Auto { min_rows: 100 };
        let fast = AnnCalibration {
            rows: 500,
            expansion_search: 32,
            ..calibration(990, 100, 1000)
        };
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest::new("m", 64, VectorType::F32);
        let measured = fast.clone();
        let done = refresh_measured(dir.path(), &mut m, &rows, auto, |_, _, _| Ok(measured));
        assert_eq!(
            done.unwrap(),
            AnnRefresh::Built {
                calibration: fast.clone(),
                replaced: None
            }
        );
        assert!(dir.path().join(INDEX_FILE).exists() && m.ann_declined.is_none());
        assert_eq!(m.index.as_ref().unwrap().calibration, Some(fast));
        let ann = open_checked(dir.path(), &m, rows.len()).unwrap().unwrap();
        assert_eq!(ann.expansion_search(), 32, "opened at the calibrated width");

        // Slow: dropped, recorded, and the stale file gone; `Always` keeps the same one.
        let slow = calibration(990, 600, 1000);
        let mut m = Manifest::new("m", 64, VectorType::F32);
        let measured = slow.clone();
        let done = refresh_measured(dir.path(), &mut m, &rows, auto, |_, _, _| Ok(measured));
        assert_eq!(
            done.unwrap(),
            AnnRefresh::Declined {
                calibration: slow.clone(),
                replaced: None
            }
        );
        assert!(!dir.path().join(INDEX_FILE).exists() && m.index.is_none());
        assert_eq!(m.ann_declined, Some(slow.clone()));
        let mut m = Manifest::new("m", 64, VectorType::F32);
        let always = AnnPolicy::Always { min_rows: 100 };
        let done = refresh_measured(dir.path(), &mut m, &rows, always, |_, _, _| Ok(slow));
        assert!(matches!(done.unwrap(), AnnRefresh::Built { .. }));
        assert!(m.index.is_some() && m.ann_declined.is_none());
    }

    #[test]
    fn a_declined_index_is_not_tried_again_until_the_store_doubles() {
        let dir = tempfile::tempdir().unwrap();
        let rows = clustered_rows(300, 4, VectorType::F32);
        let auto = AnnPolicy::Auto { min_rows: 100 };
        let mut m = Manifest::new("m", 64, VectorType::F32);
        m.parts.push(crate::manifest::PartInfo {
            file: "p.parquet".into(),
            rows: 300,
            xxh3: "0".into(),
        });
        m.ann_declined = Some(AnnCalibration {
            rows: 151,
            ..calibration(990, 900, 1000)
        });
        // 300 < 2 · 151: nothing is built, and the indexer need not read the rows to know it.
        assert!(surely_unchanged(&m, auto));
        let never_measured = |_: &Ann, _: &Rows, _| -> Result<AnnCalibration> {
            panic!("a declined store of fewer than twice the rows was measured again")
        };
        let done = refresh_measured(dir.path(), &mut m, &rows, auto, never_measured);
        assert_eq!(done.unwrap(), AnnRefresh::Unchanged);
        // At twice the rows it is measured again.
        m.ann_declined.as_mut().unwrap().rows = 150;
        assert!(!surely_unchanged(&m, auto));
        let fast = calibration(990, 100, 1000);
        let done = refresh_measured(dir.path(), &mut m, &rows, auto, |_, _, _| Ok(fast));
        assert!(matches!(done.unwrap(), AnnRefresh::Built { .. }));
        assert!(m.ann_declined.is_none());
        // Below the threshold, and under `Never`, the index goes.
        let high = AnnPolicy::Always { min_rows: 1000 };
        let done = refresh_measured(dir.path(), &mut m, &rows, high, never_measured);
        assert_eq!(done.unwrap(), AnnRefresh::Removed);
        assert!(m.index.is_none() && !dir.path().join(INDEX_FILE).exists());
        m.ann_declined = Some(calibration(990, 900, 1000));
        let done = refresh_measured(dir.path(), &mut m, &rows, AnnPolicy::Never, never_measured);
        assert_eq!(done.unwrap(), AnnRefresh::Unchanged);
        assert!(m.ann_declined.is_none());
    }

    fn part(name: &str, rows: usize) -> crate::manifest::PartInfo {
        crate::manifest::PartInfo {
            file: name.into(),
            rows,
            xxh3: format!("{name}-sum"),
        }
    }

    fn first(rows: &Rows, n: usize) -> Rows {
        let mut out = Rows::new(rows.dim, rows.vectors.kind());
        (0..n).for_each(|i| out.push_row_of(rows, i));
        out
    }

    #[test]
    fn appended_parts_are_added_to_the_index_and_other_changes_rebuild_it() {
        let dir = tempfile::tempdir().unwrap();
        let all = clustered_rows(700, 4, VectorType::F32);
        let always = AnnPolicy::Always { min_rows: 100 };
        let fixed = |rows: usize| {
            move |_: &Ann, _: &Rows, _| {
                Ok(AnnCalibration {
                    rows,
                    ..calibration(990, 100, 1000)
                })
            }
        };
        let never_measured = |_: &Ann, _: &Rows, _| -> Result<AnnCalibration> {
            panic!("calibrated again before the store doubled")
        };
        let mut m = Manifest::new("m", 64, VectorType::F32);
        m.parts.push(part("p0", 300));
        let done = refresh_measured(dir.path(), &mut m, &first(&all, 300), always, fixed(300));
        assert!(matches!(done.unwrap(), AnnRefresh::Built { .. }));
        assert_eq!(m.index.as_ref().unwrap().parts, Some(1));

        // A part appended: queries do not trust the index yet; refreshing adds its rows.
        m.parts.push(part("p1", 200));
        assert_eq!(m.index_prefix(), Some(1));
        let why = open_checked(dir.path(), &m, 500).err().unwrap();
        assert!(why.contains("holds 1 of the 2 parts"), "{why}");
        let rows = first(&all, 500);
        let done = refresh_measured(dir.path(), &mut m, &rows, always, never_measured);
        assert_eq!(done.unwrap(), AnnRefresh::Extended { rows: 200 });
        assert_eq!(m.index.as_ref().unwrap().parts, Some(2));
        let ann = open_checked(dir.path(), &m, 500).unwrap().unwrap();
        assert_eq!(ann.len(), 500);
        for row in [0, 299, 300, 450, 499] {
            assert_eq!(ann.search(&rows.row_f32(row), 1).unwrap(), vec![row]);
        }

        // Under Auto a kept calibration that would not be kept is measured again, not trusted.
        {
            let dir = tempfile::tempdir().unwrap();
            let mut m = Manifest::new("m", 64, VectorType::F32);
            m.parts.push(part("p0", 300));
            let slow = |_: &Ann, _: &Rows, _| Ok(calibration(990, 900, 1000));
            let _ = refresh_measured(dir.path(), &mut m, &first(&all, 300), always, slow);
            m.parts.push(part("p1", 200));
            let measured = std::cell::Cell::new(false);
            let auto = AnnPolicy::Auto { min_rows: 100 };
            let fast = |_: &Ann, _: &Rows, _| {
                measured.set(true);
                Ok(calibration(990, 100, 1000))
            };
            let done = refresh_measured(dir.path(), &mut m, &first(&all, 500), auto, fast);
            assert_eq!(done.unwrap(), AnnRefresh::Extended { rows: 200 });
            assert!(measured.get(), "an unfit calibration was reused");
        }

        // Past twice the calibrated rows, the extended index is calibrated again.
        m.parts.push(part("p2", 200));
        let done = refresh_measured(dir.path(), &mut m, &all, always, fixed(700));
        assert_eq!(done.unwrap(), AnnRefresh::Extended { rows: 200 });
        let info = m.index.clone().unwrap();
        assert_eq!(info.calibration.unwrap().rows, 700);

        // A part rewritten (rows dropped): not a prefix any more, so rebuilt.
        m.parts[0].xxh3 = "rewritten".into();
        assert_eq!(m.index_prefix(), None);
        let done = refresh_measured(dir.path(), &mut m, &all, always, fixed(700)).unwrap();
        match done {
            AnnRefresh::Built {
                replaced: Some(why),
                ..
            } => assert!(why.contains("other parts"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_corrupt_width_in_the_manifest_is_clamped() {
        assert_eq!(clamp_expansion(1 << 60), EXPANSION_SEARCH);
        assert_eq!(clamp_expansion(0), MIN_EXPANSION);
        assert_eq!(clamp_expansion(128), 128);
    }
}
