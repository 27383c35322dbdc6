//! `clipguide search`: text-to-image or image-to-image search over a store (`--store`), or over a
//! folder whose store (DIR/.clipguide-store) is built or updated first (`--dir`).

use anyhow::{Context, Result};
use clipguide_index::{IndexOptions, Source, Store};
use serde_json::json;
use std::path::PathBuf;

use crate::index::{default_store, index_with_progress};
use crate::Loaded;

#[derive(clap::Args)]
pub struct SearchArgs {
    /// A folder of images: its store (DIR/.clipguide-store) is built or updated, then searched.
    #[arg(long, required_unless_present = "store", conflicts_with = "store")]
    dir: Option<PathBuf>,
    /// A store built by `clipguide index`.
    #[arg(long)]
    store: Option<PathBuf>,
    /// Find images matching this text.
    #[arg(long, required_unless_present = "image", conflicts_with = "image")]
    text: Option<String>,
    /// Find images similar to this one.
    #[arg(long)]
    image: Option<PathBuf>,
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Compare the query with every image even when the store has an ANN index.
    #[arg(long)]
    exact: bool,
}

pub fn run(a: SearchArgs, m: &Loaded, json: bool) -> Result<()> {
    let (store, base, update) = match (&a.store, &a.dir) {
        (Some(s), _) => (s.clone(), None, None),
        (None, Some(dir)) => {
            let store = default_store(dir);
            let source = Source::Dir(dir.clone());
            let r = index_with_progress(m, &source, &store, &IndexOptions::default(), json)?;
            (store, Some(dir.clone()), Some(r))
        }
        (None, None) => unreachable!("clap requires --dir or --store"),
    };
    let s = Store::open(&store).with_context(|| format!("opening {}", store.display()))?;
    s.check_model(&m.key()?)?;
    if let Some(n) = &s.notice {
        eprintln!("note: {n}");
    }
    let (query, q) = match (&a.text, &a.image) {
        (Some(t), _) => (json!(t), clipguide_index::text_query(&m.clip, t)?),
        (None, Some(p)) => (
            json!(p),
            clipguide_index::image_query(&m.clip, p)
                .with_context(|| format!("embedding the query image {}", p.display()))?,
        ),
        (None, None) => unreachable!("clap requires --text or --image"),
    };
    let hits = match a.exact {
        true => s.search_exact(&q, a.top)?,
        false => s.search(&q, a.top)?,
    };
    // Paths of a folder's store are relative to the folder.
    let shown = |p: &str| match &base {
        Some(d) => d.join(p),
        None => PathBuf::from(p),
    };
    if json {
        let rows: Vec<_> = hits
            .iter()
            .map(|h| json!({"path": shown(&h.path), "score": h.score}))
            .collect();
        let mut out = json!({"query": query, "results": rows});
        if let Some(r) = &update {
            out["embedded"] = json!(r.embedded);
            out["cached"] = json!(r.kept + r.reused);
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for (i, h) in hits.iter().enumerate() {
            println!("{:>2}. {:.4}  {}", i + 1, h.score, shown(&h.path).display());
        }
    }
    Ok(())
}
