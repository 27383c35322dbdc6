//! Building and updating a store: only new or changed files are embedded (size and mtime first,
//! then the content hash), deleted ones are dropped, and every part is committed with the
//! manifest as soon as it is written, so a killed run resumes where it stopped and ends with the
//! same store as an uninterrupted one (the same parts; whether an ANN index is kept beside them
//! under [`AnnPolicy::Auto`] depends on measured times).

use crate::ann::{self, AnnPolicy, AnnRefresh};
use crate::error::{read_err, write_err, IndexError, Result};
use crate::manifest::AnnCalibration;
use crate::manifest::{shard_manifest_path, Manifest, PartInfo, Shard, VectorType, MANIFEST_FILE};
use crate::migrate;
use crate::part::{self, FileMeta, Rows};
use crate::scan::{self, Found};
use candle_core::Tensor;
use clipguide_clip::{l2_normalize, Clip};
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// What to index.
#[derive(Clone, Debug)]
pub enum Source {
    /// Every image under a folder, recursively (hidden entries left out); paths are stored
    /// relative to it.
    Dir(PathBuf),
    /// The files of a list, stored as written. With a shard, only its share (every N-th file)
    /// is indexed, into part files and a manifest of its own (`shard-I-of-N.json`) that
    /// [`merge`] later joins: shards never write the same file.
    Files {
        files: Vec<PathBuf>,
        shard: Option<Shard>,
    },
}

#[derive(Clone, Debug)]
pub struct IndexOptions {
    /// Element type of new stores (an existing store keeps its own).
    pub vectors: VectorType,
    /// Images per part file: each part is committed when written, so this is also the most
    /// work an interrupted run loses.
    pub part_rows: usize,
    /// Images per forward pass.
    pub batch: usize,
    /// When the ANN index is built and kept (shards build none: `merge` does).
    pub ann: AnnPolicy,
}

impl Default for IndexOptions {
    fn default() -> Self {
        Self {
            vectors: VectorType::F16,
            part_rows: 4096,
            batch: 32,
            ann: AnnPolicy::default(),
        }
    }
}

/// Told how indexing advances; `Break` stops after the current batch, keeping what was embedded.
pub trait Progress {
    fn begin(&mut self, _to_embed: usize) {}
    /// `n` more files done (embedded or found unreadable).
    fn advanced(&mut self, _n: usize) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

impl Progress for () {}

/// Something found and repaired, or decided, on the way, for the user to know.
#[derive(Clone, Debug, PartialEq)]
pub enum Notice {
    /// The manifest could not be trusted: the store was rebuilt from the images.
    CorruptManifest { path: PathBuf, detail: String },
    /// A part failed its checksum or could not be parsed: it was dropped, its images embedded again.
    CorruptPart { file: String, detail: String },
    /// The old JSON cache was read into the store and removed.
    Migrated { from: PathBuf, rows: usize },
    /// `--f32`/f16 differs from the existing store's type, which was kept.
    VectorTypeKept { store: VectorType },
    /// The ANN index failed its checksum or was built from other parts: rebuilt.
    IndexRebuilt { detail: String },
    /// An ANN index was built and calibrated on the store's rows, and kept.
    AnnBuilt { calibration: AnnCalibration },
    /// An ANN index was built, measured no faster than exact search, and dropped.
    AnnDeclined { calibration: AnnCalibration },
}

impl Notice {
    /// What a refresh of the ANN index has to say, if anything.
    pub fn of_ann(done: AnnRefresh) -> Vec<Self> {
        match done {
            // Appending parts to the index is routine, not news.
            AnnRefresh::Unchanged | AnnRefresh::Removed | AnnRefresh::Extended { .. } => vec![],
            AnnRefresh::Built {
                calibration,
                replaced,
            } => replaced
                .map(|detail| Self::IndexRebuilt { detail })
                .into_iter()
                .chain([Self::AnnBuilt { calibration }])
                .collect(),
            AnnRefresh::Declined {
                calibration,
                replaced,
            } => replaced
                .map(|detail| Self::IndexRebuilt { detail })
                .into_iter()
                .chain([Self::AnnDeclined { calibration }])
                .collect(),
        }
    }
}

/// "recall@10 0.962 at beam width 128: 0.31 ms a query against 6.59 ms exact, 100000 rows"
fn describe(c: &AnnCalibration) -> String {
    format!(
        "recall@10 {:.3} at beam width {}: {:.2} ms a query against {:.2} ms exact, {} rows",
        c.recall_permille as f64 / 1000.0,
        c.expansion_search,
        c.ann_us as f64 / 1000.0,
        c.exact_us as f64 / 1000.0,
        c.rows
    )
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::CorruptManifest { path, detail } => write!(
                f,
                "{}: corrupt ({detail}); the store is rebuilt from the images",
                path.display()
            ),
            Self::CorruptPart { file, detail } => {
                write!(f, "{file}: {detail}; dropped, its images embedded again")
            }
            Self::Migrated { from, rows } => write!(
                f,
                "{} read into the store ({rows} embeddings) and removed",
                from.display()
            ),
            Self::VectorTypeKept { store } => write!(
                f,
                "the store holds {store:?} vectors and keeps them (delete it to change the type)"
            ),
            Self::IndexRebuilt { detail } => write!(f, "ANN index rebuilt: {detail}"),
            Self::AnnBuilt { calibration } => {
                write!(f, "ANN index built and kept: {}", describe(calibration))
            }
            Self::AnnDeclined { calibration } => write!(
                f,
                "ANN index not kept, search stays exact: {} (tried again when the store doubles)",
                describe(calibration)
            ),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct IndexReport {
    /// Files run through the model.
    pub embedded: usize,
    /// Rows kept from the store as they were (same size and mtime, or same content).
    pub kept: usize,
    /// Rows whose embedding was taken from another row with the same content, or from the
    /// old JSON cache, without running the model.
    pub reused: usize,
    /// Rows of files no longer in the source.
    pub dropped: usize,
    /// Files that could not be read or decoded, with why; not in the store (tried again next run).
    pub skipped: Vec<(PathBuf, String)>,
    pub notices: Vec<Notice>,
    /// Stopped by [`Progress::advanced`] before the end: what was embedded is saved.
    pub stopped: bool,
    /// Rows in the store (or the shard) now.
    pub rows: usize,
}

/// What is already stored, loaded leniently: a corrupt manifest or part becomes a notice.
struct Existing {
    manifest: Manifest,
    parts: Vec<(PartInfo, Rows)>,
}

fn load_existing(
    mpath: &Path,
    store: &Path,
    model: &str,
    dim: usize,
    vectors: VectorType,
    notices: &mut Vec<Notice>,
) -> Result<Existing> {
    let manifest = match Manifest::read(mpath) {
        Ok(Some(m)) => m,
        Ok(None) => Manifest::new(model, dim, vectors),
        Err(IndexError::BadManifest { path, detail }) => {
            notices.push(Notice::CorruptManifest { path, detail });
            Manifest::new(model, dim, vectors)
        }
        Err(e) => return Err(e),
    };
    if manifest.model != model {
        return Err(IndexError::ModelMismatch {
            store: store.to_path_buf(),
            store_model: manifest.model,
            model: model.into(),
        });
    }
    if manifest.dim != dim {
        return Err(IndexError::DimMismatch {
            store: store.to_path_buf(),
            store_dim: manifest.dim,
            dim,
        });
    }
    let mut manifest = manifest;
    if manifest.parts.is_empty() {
        manifest.vectors = vectors;
    } else if manifest.vectors != vectors {
        notices.push(Notice::VectorTypeKept {
            store: manifest.vectors,
        });
    }
    let read: Vec<Result<Rows>> = manifest
        .parts
        .par_iter()
        .map(|p| part::read(&store.join(&p.file), &p.xxh3, dim, manifest.vectors))
        .collect();
    let mut parts = vec![];
    for (p, r) in manifest.parts.iter().zip(read) {
        match r {
            Ok(rows) => parts.push((p.clone(), rows)),
            Err(IndexError::BadPart { detail, .. }) => notices.push(Notice::CorruptPart {
                file: p.file.clone(),
                detail,
            }),
            Err(e) => return Err(e),
        }
    }
    manifest.parts = parts.iter().map(|(p, _)| p.clone()).collect();
    Ok(Existing { manifest, parts })
}

/// How a scanned file relates to what is stored.
enum Plan {
    /// Stored row unchanged (part, row).
    Keep(usize, usize),
    /// Content known (same file touched, moved, or in the old cache): new metadata, stored vector.
    Reuse(FileMeta, Vec<f32>),
    /// Run through the model.
    Embed(Found, FileMeta),
}

/// Builds or updates the store at `store` from `source` with `clip`, whose weights `model`
/// names (a store answers only queries embedded by the same model).
pub fn index(
    clip: &Clip,
    model: &str,
    source: &Source,
    store: &Path,
    opts: &IndexOptions,
    progress: &mut dyn Progress,
) -> Result<IndexReport> {
    let dim = clip.model.config().projection_dim;
    let (files, shard) = match source {
        Source::Dir(dir) => {
            if !dir.is_dir() {
                return Err(IndexError::Read {
                    path: dir.clone(),
                    source: std::io::Error::new(std::io::ErrorKind::NotFound, "not a folder"),
                });
            }
            let found = scan::walk(dir).map_err(read_err(dir))?;
            if found.is_empty() {
                return Err(IndexError::NoImages { path: dir.clone() });
            }
            (found, None)
        }
        Source::Files { files, shard } => {
            let mine = match shard {
                Some(s) => s.take(files),
                None => files.clone(),
            };
            let mut found: Vec<Found> = mine
                .into_iter()
                .map(|p| Found {
                    key: p.to_string_lossy().into_owned(),
                    path: p,
                })
                .collect();
            found.sort_by(|a, b| a.key.cmp(&b.key));
            found.dedup_by(|a, b| a.key == b.key);
            (found, *shard)
        }
    };
    std::fs::create_dir_all(store).map_err(write_err(store))?;
    let mpath = match shard {
        Some(s) => shard_manifest_path(store, s),
        None => store.join(MANIFEST_FILE),
    };
    let prefix = shard.map_or_else(|| "part-".to_string(), |s| s.part_prefix());
    let mut report = IndexReport::default();
    let Existing {
        mut manifest,
        parts,
    } = load_existing(&mpath, store, model, dim, opts.vectors, &mut report.notices)?;
    manifest.next_part = remove_orphans(store, &prefix, &manifest)?.max(manifest.next_part);
    let kind = manifest.vectors;

    // The old JSON cache, for a folder's first store only.
    let migrated = match (source, parts.is_empty()) {
        (Source::Dir(dir), true) => migrate::read(dir, model, dim).map(|m| (dir.clone(), m)),
        _ => None,
    };

    let mut by_path: HashMap<&str, (usize, usize)> = HashMap::new();
    let mut by_hash: HashMap<&str, (usize, usize)> = HashMap::new();
    for (pi, (_, rows)) in parts.iter().enumerate() {
        for (ri, m) in rows.meta.iter().enumerate() {
            by_path.insert(&m.path, (pi, ri));
            by_hash.insert(&m.hash, (pi, ri));
        }
    }
    let plans: Vec<std::result::Result<Plan, (PathBuf, String)>> = files
        .par_iter()
        .map(|f| {
            let fail = |e: std::io::Error| (f.path.clone(), e.to_string());
            let (size, mtime_ns) = scan::stamp(&f.path).map_err(fail)?;
            let old = by_path.get(f.key.as_str()).copied();
            if let Some((pi, ri)) = old {
                let m = &parts[pi].1.meta[ri];
                if m.size == size && m.mtime_ns == mtime_ns {
                    return Ok(Plan::Keep(pi, ri));
                }
            }
            let meta = FileMeta {
                path: f.key.clone(),
                size,
                mtime_ns,
                hash: scan::content_hash(&f.path).map_err(fail)?,
            };
            if let Some((pi, ri)) = by_hash.get(meta.hash.as_str()).copied() {
                return Ok(Plan::Reuse(meta, parts[pi].1.row_f32(ri)));
            }
            if let Some(c) = migrated.as_ref().and_then(|(_, m)| m.get(&f.key)) {
                if c.size == size && c.mtime_ns == mtime_ns {
                    return Ok(Plan::Reuse(meta, c.unit.clone()));
                }
            }
            Ok(Plan::Embed(f.clone(), meta))
        })
        .collect();

    let mut kept: HashSet<(usize, usize)> = HashSet::new();
    let mut carry = Rows::new(dim, kind);
    let mut to_embed = vec![];
    for p in plans {
        match p {
            Ok(Plan::Keep(pi, ri)) => {
                kept.insert((pi, ri));
            }
            Ok(Plan::Reuse(meta, v)) => carry.push(meta, &v),
            Ok(Plan::Embed(f, meta)) => to_embed.push((f, meta)),
            Err(skip) => report.skipped.push(skip),
        }
    }
    report.kept = kept.len();
    report.reused = carry.len();
    let scanned: HashSet<&str> = files.iter().map(|f| f.key.as_str()).collect();
    report.dropped = by_path.keys().filter(|k| !scanned.contains(*k)).count();

    // Parts that lost a row are rewritten: their unchanged rows join the carried ones.
    let mut dirty = vec![];
    for (pi, (info, rows)) in parts.iter().enumerate() {
        if (0..rows.len()).all(|ri| kept.contains(&(pi, ri))) {
            continue;
        }
        dirty.push(info.file.clone());
        for ri in (0..rows.len()).filter(|ri| kept.contains(&(pi, *ri))) {
            carry.push_row_of(rows, ri);
        }
    }
    let mut writer = PartWriter {
        store,
        mpath: &mpath,
        prefix: &prefix,
        model,
        manifest: &mut manifest,
    };
    let fresh = !mpath.exists();
    if !carry.is_empty() || !dirty.is_empty() || fresh || !report.notices.is_empty() {
        let mut order: Vec<usize> = (0..carry.len()).collect();
        order.sort_by(|a, b| carry.meta[*a].path.cmp(&carry.meta[*b].path));
        let mut new_parts = vec![];
        for chunk in order.chunks(opts.part_rows.max(1)) {
            let mut rows = Rows::new(dim, kind);
            for &i in chunk {
                rows.push_row_of(&carry, i);
            }
            new_parts.push(writer.write_part(&rows)?);
        }
        writer.manifest.parts.retain(|p| !dirty.contains(&p.file));
        writer.manifest.parts.extend(new_parts);
        writer.commit()?;
        for f in &dirty {
            let _ = std::fs::remove_file(store.join(f));
        }
    }

    progress.begin(to_embed.len());
    embed_all(clip, &to_embed, opts, &mut writer, progress, &mut report)?;
    report.rows = writer.manifest.rows();
    if shard.is_none() && !report.stopped {
        let had_index = writer.manifest.index.is_some();
        if !ann::surely_unchanged(writer.manifest, opts.ann)
            && (report.rows >= opts.ann.min_rows() || had_index)
        {
            let rows = crate::store::read_rows(store, writer.manifest)?;
            let done = ann::refresh(store, writer.manifest, &rows, opts.ann)?;
            report.notices.extend(Notice::of_ann(done));
            writer.manifest.write(&mpath)?;
        }
    }
    if let Some((dir, m)) = migrated {
        let rows = m.len();
        let from = migrate::cache_path(&dir);
        std::fs::remove_file(&from).map_err(write_err(&from))?;
        report.notices.push(Notice::Migrated { from, rows });
    }
    Ok(report)
}

/// Writes part files and commits the manifest that names them.
struct PartWriter<'a> {
    store: &'a Path,
    mpath: &'a Path,
    prefix: &'a str,
    model: &'a str,
    manifest: &'a mut Manifest,
}

impl PartWriter<'_> {
    fn write_part(&mut self, rows: &Rows) -> Result<PartInfo> {
        let file = format!("{}{:05}.parquet", self.prefix, self.manifest.next_part);
        self.manifest.next_part += 1;
        let xxh3 = part::write(&self.store.join(&file), rows, self.model)?;
        Ok(PartInfo {
            file,
            rows: rows.len(),
            xxh3,
        })
    }

    fn commit(&mut self) -> Result<()> {
        // Parts changed other than by appending: an index built from the old ones no longer
        // applies. (Appended parts are added to it once indexing ends.)
        if let Some(ix) = &self.manifest.index {
            if self.manifest.index_prefix().is_none() {
                let _ = std::fs::remove_file(self.store.join(&ix.file));
                self.manifest.index = None;
            }
        }
        self.manifest.write(self.mpath)
    }
}

/// Removes part files and temporaries with this writer's prefix that no manifest names: what a
/// killed run left between writing a part and committing the manifest. A shard's parts that a
/// merge moved into the store's `manifest.json` are kept (the shard's own manifest is gone after
/// the merge; when `manifest.json` cannot be read, nothing but temporaries is removed). Returns
/// the first part number above every file of this prefix left, so that no name is reused.
fn remove_orphans(store: &Path, prefix: &str, manifest: &Manifest) -> Result<u64> {
    let mut named: HashSet<String> = manifest.parts.iter().map(|p| p.file.clone()).collect();
    let main = store.join(MANIFEST_FILE);
    let mut may_remove = true;
    if prefix != "part-" {
        match Manifest::read(&main) {
            Ok(Some(m)) => named.extend(m.parts.into_iter().map(|p| p.file)),
            Ok(None) => {}
            Err(_) => may_remove = false,
        }
    }
    let mut next = 0u64;
    for e in std::fs::read_dir(store).map_err(read_err(store))? {
        let e = e.map_err(read_err(store))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let temp = name.starts_with(&format!(".{prefix}")) && name.ends_with(".tmp");
        let part = name.starts_with(prefix) && name.ends_with(".parquet");
        let orphan = part && !named.contains(&name) && may_remove;
        if temp || orphan {
            let _ = std::fs::remove_file(e.path());
        } else if part {
            let number = name[prefix.len()..name.len() - ".parquet".len()].parse::<u64>();
            if let Ok(n) = number {
                next = next.max(n + 1);
            }
        }
    }
    Ok(next)
}

/// One batch decoded and preprocessed: the pixels of the readable files, and the rest named.
struct Batch {
    /// Whether this is the last batch of its part: the part is written after it.
    last_of_chunk: bool,
    metas: Vec<FileMeta>,
    pixels: Option<Tensor>,
    skipped: Vec<(PathBuf, String)>,
}

/// Embeds `todo` part by part. Decoding and preprocessing run on a thread of their own (files of a
/// batch in parallel) while the model runs the previous batch.
fn embed_all(
    clip: &Clip,
    todo: &[(Found, FileMeta)],
    opts: &IndexOptions,
    writer: &mut PartWriter,
    progress: &mut dyn Progress,
    report: &mut IndexReport,
) -> Result<()> {
    if todo.is_empty() {
        return Ok(());
    }
    let (dim, kind) = (writer.manifest.dim, writer.manifest.vectors);
    let part_rows = opts.part_rows.max(1);
    let batch = opts.batch.clamp(1, part_rows);
    let (tx, rx) = std::sync::mpsc::sync_channel::<std::result::Result<Batch, IndexError>>(2);
    std::thread::scope(|s| -> Result<()> {
        s.spawn(move || {
            for chunk in todo.chunks(part_rows) {
                let n = chunk.len().div_ceil(batch);
                for (bi, b) in chunk.chunks(batch).enumerate() {
                    let msg = prepare(clip, b, bi + 1 == n);
                    if tx.send(msg).is_err() {
                        return;
                    }
                }
            }
        });
        let mut rows = Rows::new(dim, kind);
        for msg in rx {
            let b = msg?;
            let done = b.metas.len() + b.skipped.len();
            report.skipped.extend(b.skipped);
            if let Some(px) = b.pixels {
                // `--precision bf16` reaches the store as it reaches every other embedding.
                let emb =
                    l2_normalize(&clip.model.image_features_with(&px, clip.embed_precision)?)?
                        .to_vec2::<f32>()?;
                for (m, v) in b.metas.into_iter().zip(emb) {
                    rows.push(m, &v);
                    report.embedded += 1;
                }
            }
            let stop = progress.advanced(done).is_break();
            if (b.last_of_chunk || stop) && !rows.is_empty() {
                let info = writer.write_part(&rows)?;
                writer.manifest.parts.push(info);
                writer.commit()?;
                rows = Rows::new(dim, kind);
            }
            if stop {
                report.stopped = true;
                // Dropping the receiver ends the decoding thread at its next batch.
                break;
            }
        }
        Ok(())
    })
}

fn prepare(clip: &Clip, files: &[(Found, FileMeta)], last_of_chunk: bool) -> Result<Batch> {
    let device = clip.device();
    let loaded: Vec<std::result::Result<Tensor, String>> = files
        .par_iter()
        .map(|(f, _)| {
            let img = clip
                .load_image_reduced(&f.path)
                .map_err(|e| e.to_string())?;
            clip.processor
                .preprocess(&img, device)
                .map_err(|e| e.to_string())
        })
        .collect();
    let mut metas = vec![];
    let mut pixels = vec![];
    let mut skipped = vec![];
    for ((f, m), r) in files.iter().zip(loaded) {
        match r {
            Ok(t) => {
                metas.push(m.clone());
                pixels.push(t);
            }
            Err(e) => skipped.push((f.path.clone(), e)),
        }
    }
    let pixels = match pixels.is_empty() {
        true => None,
        false => Some(Tensor::stack(&pixels, 0)?),
    };
    Ok(Batch {
        last_of_chunk,
        metas,
        pixels,
        skipped,
    })
}
