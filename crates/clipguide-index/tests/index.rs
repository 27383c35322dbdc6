//! Indexing a folder or file list with the built-in model: incremental updates, resuming after
//! SIGKILL, shards and merge, migration of the old JSON cache, and bad input.

mod common;

use clipguide_index::{
    image_query, index, merge, text_query, AnnPolicy, IndexError, IndexOptions, Notice, Progress,
    Shard, Source, Store, VectorType,
};
use common::*;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

fn opts(part_rows: usize) -> IndexOptions {
    IndexOptions {
        vectors: VectorType::F16,
        part_rows,
        batch: 8,
        ann: AnnPolicy::Auto {
            min_rows: usize::MAX,
        },
    }
}

fn store_paths(store: &Path) -> Vec<String> {
    let s = Store::open(store).unwrap();
    let mut p: Vec<String> = s.rows.meta.iter().map(|m| m.path.clone()).collect();
    p.sort();
    p
}

#[test]
fn adding_10_and_deleting_5_embeds_exactly_10_and_drops_5() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = dir.path().join("photos");
    let files = write_images(&imgs, 0, 1000);
    let store = imgs.join(".clipguide-store");
    let src = Source::Dir(imgs.clone());
    let r = index(clip(), MODEL, &src, &store, &opts(256), &mut ()).unwrap();
    assert_eq!((r.embedded, r.kept, r.dropped, r.rows), (1000, 0, 0, 1000));

    // Unchanged: nothing embedded, nothing rewritten.
    let before = folder_bytes(&store);
    let r = index(clip(), MODEL, &src, &store, &opts(256), &mut ()).unwrap();
    assert_eq!((r.embedded, r.kept, r.dropped), (0, 1000, 0));
    assert_eq!(folder_bytes(&store), before);

    write_images(&imgs.join("new"), 5000, 10);
    for f in &files[100..105] {
        std::fs::remove_file(f).unwrap();
    }
    let r = index(clip(), MODEL, &src, &store, &opts(256), &mut ()).unwrap();
    assert_eq!(r.embedded, 10);
    assert_eq!(r.dropped, 5);
    assert_eq!(r.kept, 995);
    assert_eq!(r.rows, 1005);
    let paths = store_paths(&store);
    assert_eq!(paths.len(), 1005);
    assert!(paths.contains(&"new/img-5009.png".to_string()));
    assert!(!paths.contains(&"img-0100.png".to_string()));

    // A file touched but not changed keeps its embedding (same hash); one rewritten is embedded.
    let t = std::fs::File::options()
        .write(true)
        .open(&files[0])
        .unwrap();
    t.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000))
        .unwrap();
    drop(t);
    write_image(&files[1], 77_777);
    let r = index(clip(), MODEL, &src, &store, &opts(256), &mut ()).unwrap();
    assert_eq!((r.embedded, r.reused, r.dropped), (1, 1, 0));
}

/// Stops (as Ctrl-C does in the CLI) after the first batch.
struct StopAfterOne;
impl Progress for StopAfterOne {
    fn advanced(&mut self, _n: usize) -> ControlFlow<()> {
        ControlFlow::Break(())
    }
}

#[test]
fn a_stopped_run_keeps_what_it_embedded_and_the_next_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = dir.path().join("imgs");
    write_images(&imgs, 0, 30);
    let store = dir.path().join("store");
    let src = Source::Dir(imgs.clone());
    let r = index(clip(), MODEL, &src, &store, &opts(16), &mut StopAfterOne).unwrap();
    assert!(r.stopped);
    // One batch of 8, saved as a part although the part was not full.
    assert_eq!((r.embedded, r.rows), (8, 8));
    assert_eq!(Store::open(&store).unwrap().len(), 8);
    let r = index(clip(), MODEL, &src, &store, &opts(16), &mut ()).unwrap();
    assert_eq!((r.kept, r.embedded, r.rows, r.stopped), (8, 22, 30, false));
}

/// Set in the child process that is killed mid-run.
const CHILD_ENV: &str = "CLIPGUIDE_INDEX_TEST_CHILD";

struct Slow;
impl Progress for Slow {
    fn advanced(&mut self, _n: usize) -> ControlFlow<()> {
        std::thread::sleep(std::time::Duration::from_millis(40));
        ControlFlow::Continue(())
    }
}

/// Run by `killed_run_resumes_to_the_same_store` in a child process, which it kills.
#[test]
#[ignore = "run as a child process by killed_run_resumes_to_the_same_store"]
fn child_indexes_slowly() {
    let Ok(arg) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (imgs, store) = arg.split_once('|').unwrap();
    let src = Source::Dir(PathBuf::from(imgs));
    index(clip(), MODEL, &src, Path::new(store), &opts(8), &mut Slow).unwrap();
}

#[test]
fn killed_run_resumes_to_the_same_store() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = dir.path().join("imgs");
    write_images(&imgs, 0, 80);
    let (killed, whole) = (dir.path().join("killed"), dir.path().join("whole"));
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_indexes_slowly",
            "--ignored",
            "--nocapture",
        ])
        .env(
            CHILD_ENV,
            format!("{}|{}", imgs.display(), killed.display()),
        )
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until at least two parts are committed, then SIGKILL.
    let start = std::time::Instant::now();
    loop {
        let m = clipguide_index::Manifest::read(&killed.join("manifest.json"))
            .ok()
            .flatten();
        if m.is_some_and(|m| m.parts.len() >= 2) {
            break;
        }
        assert!(
            start.elapsed().as_secs() < 120,
            "the child never committed two parts"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child ended before it was killed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let m = clipguide_index::Manifest::read(&killed.join("manifest.json"))
        .unwrap()
        .unwrap();
    let had = m.rows();
    assert!(had < 80, "killed too late to test resuming ({had} rows)");

    let src = Source::Dir(imgs.clone());
    let r = index(clip(), MODEL, &src, &killed, &opts(8), &mut ()).unwrap();
    assert_eq!(r.kept, had);
    assert_eq!(r.embedded, 80 - had);
    index(clip(), MODEL, &src, &whole, &opts(8), &mut ()).unwrap();
    assert_eq!(folder_bytes(&killed), folder_bytes(&whole));
}

#[test]
fn four_shards_merged_search_like_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_images(&dir.path().join("imgs"), 0, 60);
    let (sharded, single) = (dir.path().join("sharded"), dir.path().join("single"));
    for i in 0..4 {
        let src = Source::Files {
            files: files.clone(),
            shard: Some(Shard { index: i, count: 4 }),
        };
        let r = index(clip(), MODEL, &src, &sharded, &opts(7), &mut ()).unwrap();
        assert_eq!(r.embedded, 15);
    }
    assert!(matches!(
        Store::open(&sharded),
        Err(IndexError::NoStore { .. })
    ));
    let m = merge(&sharded, AnnPolicy::Never).unwrap();
    assert_eq!((m.shards.len(), m.rows), (4, 60));
    let src = Source::Files {
        files: files.clone(),
        shard: None,
    };
    index(clip(), MODEL, &src, &single, &opts(1000), &mut ()).unwrap();
    let (a, b) = (
        Store::open(&sharded).unwrap(),
        Store::open(&single).unwrap(),
    );
    for text in ["a red circle", "a blue square on green", "stripes"] {
        let q = text_query(clip(), text).unwrap();
        let (ha, hb) = (
            a.search_exact(&q, 10).unwrap(),
            b.search_exact(&q, 10).unwrap(),
        );
        let pa: Vec<&str> = ha.iter().map(|h| h.path.as_str()).collect();
        let pb: Vec<&str> = hb.iter().map(|h| h.path.as_str()).collect();
        assert_eq!(pa, pb, "{text}");
        for (x, y) in ha.iter().zip(&hb) {
            assert!(
                (x.score - y.score).abs() < 1e-3,
                "{text}: {} vs {}",
                x.score,
                y.score
            );
        }
    }
    // A shard run again after the merge (its manifest is gone) writes new part names and
    // removes none of the merged store's: the store still opens with every row.
    let parts_before: Vec<String> = a.manifest.parts.iter().map(|p| p.file.clone()).collect();
    let src = Source::Files {
        files: files.clone(),
        shard: Some(Shard { index: 2, count: 4 }),
    };
    index(clip(), MODEL, &src, &sharded, &opts(7), &mut ()).unwrap();
    for f in &parts_before {
        assert!(
            sharded.join(f).exists(),
            "{f} removed by a shard run after the merge"
        );
    }
    assert_eq!(Store::open(&sharded).unwrap().len(), 60);
    let e = merge(&sharded, AnnPolicy::Never).unwrap_err();
    assert!(matches!(e, IndexError::DuplicatePath { .. }), "{e}");
    std::fs::remove_file(sharded.join("shard-00002-of-00004.json")).unwrap();

    // A file in two shards is refused at merge time.
    let src = Source::Files {
        files: files[..3].to_vec(),
        shard: Some(Shard { index: 0, count: 1 }),
    };
    index(clip(), MODEL, &src, &sharded, &opts(7), &mut ()).unwrap();
    let e = merge(&sharded, AnnPolicy::Never).unwrap_err();
    assert!(matches!(e, IndexError::DuplicatePath { .. }), "{e}");
}

#[test]
fn bad_input_is_named_refused_or_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = dir.path().join("imgs");
    write_images(&imgs, 0, 12);
    std::fs::write(imgs.join("broken.jpg"), b"not a jpeg at all").unwrap();
    let store = dir.path().join("store");
    let src = Source::Dir(imgs.clone());
    let r = index(clip(), MODEL, &src, &store, &opts(5), &mut ()).unwrap();
    assert_eq!(r.embedded, 12);
    assert_eq!(r.skipped.len(), 1);
    assert_eq!(r.skipped[0].0, imgs.join("broken.jpg"));

    // Another model: refused, naming both.
    let e = index(clip(), "other-model", &src, &store, &opts(5), &mut ()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, IndexError::ModelMismatch { .. }));
    assert!(
        msg.contains("\"builtin:test\"") && msg.contains("\"other-model\""),
        "{msg}"
    );

    // A query of the wrong dimension.
    let s = Store::open(&store).unwrap();
    let e = s.search_exact(&[1.0; 7], 3).unwrap_err();
    assert!(
        matches!(e, IndexError::QueryDimension { got: 7, .. }),
        "{e}"
    );

    // A corrupt part: refused for queries, dropped and rebuilt by indexing.
    let part = store.join(&s.manifest.parts[1].file);
    let mut bytes = std::fs::read(&part).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&part, bytes).unwrap();
    assert!(matches!(
        Store::open(&store),
        Err(IndexError::BadPart { .. })
    ));
    let r = index(clip(), MODEL, &src, &store, &opts(5), &mut ()).unwrap();
    assert_eq!(r.embedded, 5);
    assert!(r
        .notices
        .iter()
        .any(|n| matches!(n, Notice::CorruptPart { .. })));
    assert_eq!(Store::open(&store).unwrap().len(), 12);

    // A corrupt manifest: everything rebuilt, with a notice.
    std::fs::write(
        store.join("manifest.json"),
        b"{\"format\": \"clipguide-store\"",
    )
    .unwrap();
    let r = index(clip(), MODEL, &src, &store, &opts(5), &mut ()).unwrap();
    assert_eq!(r.embedded, 12);
    assert!(r
        .notices
        .iter()
        .any(|n| matches!(n, Notice::CorruptManifest { .. })));
    assert_eq!(Store::open(&store).unwrap().len(), 12);
    let parquet = std::fs::read_dir(&store)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "parquet")
        })
        .count();
    assert_eq!(parquet, 3, "the old parts were removed");
}

#[test]
fn old_json_cache_is_migrated_once() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = dir.path().join("imgs");
    let files = write_images(&imgs, 0, 6);
    // The old cache held unnormalised projections keyed by file name.
    let mut entries = serde_json::Map::new();
    for f in &files {
        let img = clip().load_image(f).unwrap();
        let e = clip().embed_images(&[img]).unwrap().squeeze(0).unwrap();
        let e: Vec<f32> = e
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|x| x * 3.0)
            .collect();
        let md = std::fs::metadata(f).unwrap();
        let mtime = md
            .modified()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        entries.insert(
            f.file_name().unwrap().to_string_lossy().into(),
            serde_json::json!({"size": md.len(), "mtime_ns": mtime.as_nanos() as u64, "embedding": e}),
        );
    }
    let cache = imgs.join(".clipguide-search.json");
    let json = serde_json::json!({"model_key": MODEL, "entries": entries});
    std::fs::write(&cache, json.to_string()).unwrap();
    let store = imgs.join(".clipguide-store");
    let src = Source::Dir(imgs.clone());
    let r = index(clip(), MODEL, &src, &store, &opts(100), &mut ()).unwrap();
    assert_eq!((r.embedded, r.reused), (0, 6));
    assert!(r
        .notices
        .iter()
        .any(|n| matches!(n, Notice::Migrated { rows: 6, .. })));
    assert!(!cache.exists());
    let s = Store::open(&store).unwrap();
    for i in 0..s.len() {
        let v = s.rows.row_f32(i);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 2e-3, "row {i} has norm {norm}");
    }
}

#[test]
fn image_query_finds_itself_and_dedupe_finds_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = dir.path().join("imgs");
    let files = write_images(&imgs, 0, 20);
    std::fs::copy(&files[3], imgs.join("copy-of-3.png")).unwrap();
    let store = dir.path().join("store");
    let src = Source::Dir(imgs.clone());
    let opts = IndexOptions {
        vectors: VectorType::F32,
        ..opts(100)
    };
    let r = index(clip(), MODEL, &src, &store, &opts, &mut ()).unwrap();
    // The copy has the content of a file indexed in the same run: both embedded, no reuse.
    assert_eq!(r.rows, 21);
    let s = Store::open(&store).unwrap();
    assert_eq!(s.manifest.vectors, VectorType::F32);
    let q = image_query(clip(), &files[7]).unwrap();
    let hits = s.search_exact(&q, 3).unwrap();
    assert_eq!(hits[0].path, "img-0007.png");
    assert!(hits[0].score > 0.9999, "{}", hits[0].score);
    let pairs = s.duplicates(0.9999).unwrap();
    assert_eq!(pairs.len(), 1, "{pairs:?}");
    assert_eq!(
        (pairs[0].a.as_str(), pairs[0].b.as_str()),
        ("copy-of-3.png", "img-0003.png")
    );
}

#[test]
fn a_small_ann_index_is_the_same_file_when_built_again() {
    // Below SEQUENTIAL_BUILD_BELOW rows the graph is built in row order on one thread, so the
    // same images give the same index, byte for byte (a parallel build's graph depends on how
    // the threads interleave).
    let dir = tempfile::tempdir().unwrap();
    let imgs = dir.path().join("imgs");
    write_images(&imgs, 0, 60);
    let src = Source::Dir(imgs.clone());
    let opts = IndexOptions {
        ann: AnnPolicy::Always { min_rows: 50 },
        ..opts(16)
    };
    let built: Vec<Vec<u8>> = ["a", "b"]
        .iter()
        .map(|name| {
            let store = dir.path().join(name);
            index(clip(), MODEL, &src, &store, &opts, &mut ()).unwrap();
            std::fs::read(store.join("index.usearch")).unwrap()
        })
        .collect();
    assert!(built[0].len() > 1000);
    assert!(built[0] == built[1], "two builds of the same rows differ");
}

#[test]
fn ann_index_is_built_above_the_threshold_checked_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = dir.path().join("imgs");
    write_images(&imgs, 0, 60);
    let store = dir.path().join("store");
    let src = Source::Dir(imgs.clone());
    let opts = IndexOptions {
        ann: AnnPolicy::Always { min_rows: 50 },
        ..opts(16)
    };
    index(clip(), MODEL, &src, &store, &opts, &mut ()).unwrap();
    let s = Store::open(&store).unwrap();
    assert!(s.has_ann() && s.notice.is_none());
    // 60 rows, built in row order (one fixed graph): at the widest beam its search finds the
    // exact top 10 (the calibrated width reaches 0.95 on calibration's queries, not these).
    s.set_ann_expansion(clipguide_index::ann::EXPANSION_SEARCH);
    for text in ["a red circle", "green stripes"] {
        let q = text_query(clip(), text).unwrap();
        assert_eq!(s.search(&q, 10).unwrap(), s.search_exact(&q, 10).unwrap());
    }

    // Corrupt: queries fall back to exact search with a notice; indexing rebuilds it.
    let ix = store.join("index.usearch");
    let mut bytes = std::fs::read(&ix).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x5a;
    std::fs::write(&ix, &bytes).unwrap();
    let s = Store::open(&store).unwrap();
    assert!(!s.has_ann());
    assert!(
        s.notice.as_deref().unwrap().contains("checksum"),
        "{:?}",
        s.notice
    );
    let q = text_query(clip(), "a blue square").unwrap();
    assert_eq!(s.search(&q, 5).unwrap(), s.search_exact(&q, 5).unwrap());
    let r = index(clip(), MODEL, &src, &store, &opts, &mut ()).unwrap();
    assert_eq!(r.embedded, 0);
    assert!(
        r.notices
            .iter()
            .any(|n| matches!(n, Notice::IndexRebuilt { .. })),
        "{:?}",
        r.notices
    );
    assert!(Store::open(&store).unwrap().has_ann());

    // New images: their part is appended, and its rows added to the index (not rebuilt).
    write_images(&imgs, 100, 5);
    let before = std::fs::metadata(&ix).unwrap().len();
    let r = index(clip(), MODEL, &src, &store, &opts, &mut ()).unwrap();
    assert!(r.notices.is_empty(), "{:?}", r.notices);
    let s = Store::open(&store).unwrap();
    assert!(s.has_ann() && s.notice.is_none());
    let info = s.manifest.index.clone().unwrap();
    assert_eq!(info.parts, Some(s.manifest.parts.len()));
    assert!(std::fs::metadata(&ix).unwrap().len() > before);
    let q = image_query(clip(), &imgs.join("img-0102.png")).unwrap();
    assert_eq!(s.search(&q, 1).unwrap()[0].path, "img-0102.png");

    // A deleted image rewrites its part: the index is rebuilt over the new rows.
    std::fs::remove_file(imgs.join("img-0003.png")).unwrap();
    let r = index(clip(), MODEL, &src, &store, &opts, &mut ()).unwrap();
    assert_eq!(r.dropped, 1);
    assert!(
        r.notices
            .iter()
            .any(|n| matches!(n, Notice::AnnBuilt { .. })),
        "{:?}",
        r.notices
    );
    let s = Store::open(&store).unwrap();
    assert!(s.has_ann() && s.notice.is_none() && s.len() == 64);

    // Below the threshold the index is removed.
    let opts = IndexOptions {
        ann: AnnPolicy::Always { min_rows: 1000 },
        ..opts
    };
    index(clip(), MODEL, &src, &store, &opts, &mut ()).unwrap();
    assert!(!ix.exists());
    assert!(!Store::open(&store).unwrap().has_ann());
}
