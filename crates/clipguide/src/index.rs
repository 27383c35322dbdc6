//! `clipguide index` / `search` / `dedupe` over an embedding store (crate `clipguide-index`):
//! flags, the progress bar, Ctrl-C, and printing.

use anyhow::{bail, Context, Result};
use clipguide_index::{
    AnnPolicy, IndexOptions, IndexReport, Progress, Shard, Source, Store, VectorType,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::Loaded;

/// Where a folder's store lives unless --out says otherwise.
pub fn default_store(dir: &Path) -> PathBuf {
    dir.join(".clipguide-store")
}

#[derive(clap::Args)]
pub struct IndexArgs {
    /// Folder of images to index (recursively); the store goes to DIR/.clipguide-store.
    #[arg(conflicts_with_all = ["files", "merge"])]
    dir: Option<PathBuf>,
    /// A text file with one image path per line (instead of DIR).
    #[arg(long, requires = "out", conflicts_with = "merge")]
    files: Option<PathBuf>,
    /// Index only shard I of N of --files (every N-th file from the I-th), into its own part
    /// files; join the shards with --merge STORE.
    #[arg(long, requires = "files")]
    shard: Option<Shard>,
    /// The store folder.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Join the shards written into STORE and check every part.
    #[arg(long, value_name = "STORE")]
    merge: Option<PathBuf>,
    /// Store embeddings as f32 instead of f16 (twice the size).
    #[arg(long)]
    f32: bool,
    /// Images per part file (each is saved as soon as it is full: the most an interrupted run loses).
    #[arg(long, default_value_t = 4096)]
    part_rows: usize,
    /// Images per forward pass.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Consider an HNSW index (index.usearch) from this many images; below, search is exact.
    #[arg(long, default_value_t = clipguide_index::ann::ANN_MIN_ROWS)]
    ann_min_rows: usize,
    /// auto: keep the index only where, calibrated on the store's own vectors, it reaches
    /// recall@10 0.95 at least twice as fast as exact search; always: keep it regardless.
    #[arg(long, value_enum, default_value_t = AnnArg::Auto)]
    ann: AnnArg,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum AnnArg {
    Auto,
    Always,
}

impl IndexArgs {
    fn ann_policy(&self) -> AnnPolicy {
        let min_rows = self.ann_min_rows;
        match self.ann {
            AnnArg::Auto => AnnPolicy::Auto { min_rows },
            AnnArg::Always => AnnPolicy::Always { min_rows },
        }
    }
}

pub fn run(a: IndexArgs, load: impl FnOnce() -> Result<Loaded>, json: bool) -> Result<()> {
    if let Some(store) = &a.merge {
        let r = clipguide_index::merge(store, a.ann_policy())
            .with_context(|| format!("merging the shards in {}", store.display()))?;
        for n in &r.notices {
            eprintln!("note: {n}");
        }
        if json {
            let notices: Vec<String> = r.notices.iter().map(|n| n.to_string()).collect();
            println!(
                "{}",
                json!({"store": store, "shards": r.shards, "parts": r.parts, "rows": r.rows,
                       "notices": notices})
            );
        } else {
            println!(
                "{}: {} shards merged, {} parts, {} images",
                store.display(),
                r.shards.len(),
                r.parts,
                r.rows
            );
        }
        return Ok(());
    }
    let (source, store) = match (&a.dir, &a.files) {
        (Some(dir), None) => (
            Source::Dir(dir.clone()),
            a.out.clone().unwrap_or_else(|| default_store(dir)),
        ),
        (None, Some(list)) => {
            let text = std::fs::read_to_string(list)
                .with_context(|| format!("reading the file list {}", list.display()))?;
            let files = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(PathBuf::from)
                .collect();
            let out = a.out.clone().expect("clap requires --out with --files");
            (
                Source::Files {
                    files,
                    shard: a.shard,
                },
                out,
            )
        }
        _ => {
            bail!("give a folder (clipguide index DIR), --files LIST --out STORE, or --merge STORE")
        }
    };
    let m = load()?;
    let opts = IndexOptions {
        vectors: if a.f32 {
            VectorType::F32
        } else {
            VectorType::F16
        },
        part_rows: a.part_rows,
        batch: a.batch,
        ann: a.ann_policy(),
    };
    let r = index_with_progress(&m, &source, &store, &opts, json)?;
    print_report(&r, &store, json)
}

/// Indexes with a progress bar (images/s) and Ctrl-C stopping after the current batch.
pub fn index_with_progress(
    m: &Loaded,
    source: &Source,
    store: &Path,
    opts: &IndexOptions,
    json: bool,
) -> Result<IndexReport> {
    let mut bar = Bar::new(json);
    let r = clipguide_index::index(&m.clip, &m.key()?, source, store, opts, &mut bar)
        .with_context(|| format!("indexing into {}", store.display()));
    bar.finish();
    let r = r?;
    for n in &r.notices {
        eprintln!("note: {n}");
    }
    for (p, e) in &r.skipped {
        eprintln!("skipped {}: {e}", p.display());
    }
    if r.stopped {
        eprintln!("stopped: what was embedded is saved; run the same command again to go on");
    }
    Ok(r)
}

/// The store update's progress bar (none with `--json`); Ctrl-C stops after the current batch,
/// keeping what was embedded.
pub struct Bar {
    bar: Option<ProgressBar>,
    json: bool,
    stop: Arc<AtomicBool>,
}

impl Bar {
    pub fn new(json: bool) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        {
            let stop = stop.clone();
            let _ = ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst));
        }
        Self {
            bar: None,
            json,
            stop,
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Progress for Bar {
    fn begin(&mut self, to_embed: usize) {
        if self.json || to_embed == 0 {
            return;
        }
        let pb = ProgressBar::new(to_embed as u64);
        pb.set_style(
            ProgressStyle::with_template(
                "{bar:30} {pos}/{len} images [{elapsed_precise}<{eta_precise}, {per_sec}]",
            )
            .expect("valid template"),
        );
        self.bar = Some(pb);
    }

    fn advanced(&mut self, n: usize) -> ControlFlow<()> {
        if let Some(b) = &self.bar {
            b.inc(n as u64);
        }
        match self.stop.load(Ordering::SeqCst) {
            true => ControlFlow::Break(()),
            false => ControlFlow::Continue(()),
        }
    }
}

fn print_report(r: &IndexReport, store: &Path, json: bool) -> Result<()> {
    if json {
        let skipped: Vec<_> = r
            .skipped
            .iter()
            .map(|(p, e)| json!({"path": p, "error": e}))
            .collect();
        let notices: Vec<String> = r.notices.iter().map(|n| n.to_string()).collect();
        println!(
            "{}",
            json!({
                "store": store, "rows": r.rows, "embedded": r.embedded, "kept": r.kept,
                "reused": r.reused, "dropped": r.dropped, "skipped": skipped,
                "notices": notices, "stopped": r.stopped,
            })
        );
    } else {
        println!(
            "{}: {} images ({} embedded, {} kept, {} reused, {} dropped, {} unreadable)",
            store.display(),
            r.rows,
            r.embedded,
            r.kept,
            r.reused,
            r.dropped,
            r.skipped.len()
        );
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct DedupeArgs {
    /// The store folder.
    #[arg(long, required_unless_present = "dir", conflicts_with = "dir")]
    store: Option<PathBuf>,
    /// A folder: its store is built or updated first.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Cosine similarity from which two images count as near-duplicates.
    #[arg(long, default_value_t = 0.95)]
    threshold: f32,
}

pub fn dedupe(a: DedupeArgs, load: impl FnOnce() -> Result<Loaded>, json: bool) -> Result<()> {
    let store = match (&a.store, &a.dir) {
        (Some(s), _) => s.clone(),
        (None, Some(dir)) => {
            let m = load()?;
            let store = default_store(dir);
            index_with_progress(
                &m,
                &Source::Dir(dir.clone()),
                &store,
                &IndexOptions::default(),
                json,
            )?;
            store
        }
        (None, None) => bail!("give --store STORE or --dir DIR"),
    };
    let s = Store::open(&store).with_context(|| format!("opening {}", store.display()))?;
    let pairs = s.duplicates(a.threshold)?;
    if json {
        let rows: Vec<_> = pairs
            .iter()
            .map(|p| json!({"a": p.a, "b": p.b, "score": p.score}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"threshold": a.threshold, "pairs": rows}))?
        );
    } else {
        eprintln!(
            "{} pairs at cosine >= {} among {} images",
            pairs.len(),
            a.threshold,
            s.len()
        );
        for p in &pairs {
            println!("{:.4}  {}  {}", p.score, p.a, p.b);
        }
    }
    Ok(())
}
