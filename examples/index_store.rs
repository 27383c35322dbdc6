//! An embedding store through the library calls `clipguide index` and `clipguide search` make:
//! a folder indexed into Parquet parts (incrementally: run it twice and nothing is embedded the
//! second time), then a text query and an image query.
//!
//! `cargo run --release --example index_store -- DIR ["a red circle"]`

use candle_core::Device;
use clipguide_clip::Clip;
use clipguide_index::{image_query, index, text_query, IndexOptions, Source, Store};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("give a folder of images")?);
    let text = args.next().unwrap_or_else(|| "a red circle".into());
    let clip = Clip::builtin(&Device::Cpu)?;
    let store = dir.join(".clipguide-store");
    let source = Source::Dir(dir.clone());
    // The model key names the weights: a store refuses queries and updates from another model.
    let r = index(
        &clip,
        "builtin",
        &source,
        &store,
        &IndexOptions::default(),
        &mut (),
    )?;
    println!(
        "{} images: {} embedded, {} kept, {} dropped, {} unreadable",
        r.rows,
        r.embedded,
        r.kept,
        r.dropped,
        r.skipped.len()
    );
    let s = Store::open(&store)?;
    for h in s.search_exact(&text_query(&clip, &text)?, 3)? {
        println!("{text:?}: {:.4} {}", h.score, h.path);
    }
    let first = dir.join(&s.rows.meta[0].path);
    for h in s.search_exact(&image_query(&clip, &first)?, 3)? {
        println!("like {}: {:.4} {}", first.display(), h.score, h.path);
    }
    Ok(())
}
