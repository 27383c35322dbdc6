//! "Yesterday's files": a store written by this version (tests/fixtures/store-v1, written
//! 2026-12-06 by `write_fixture_store` below) must keep reading with the same rows and vectors.

use clipguide_index::manifest::{Manifest, PartInfo, VectorType};
use clipguide_index::part::{self, FileMeta, Rows};
use clipguide_index::{IndexError, Store};
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v1")
}

/// The rows the fixture holds; the vectors are exact in f16.
fn fixture_rows() -> Vec<(FileMeta, [f32; 4])> {
    let meta = |path: &str, size, mtime_ns, hash: &str| FileMeta {
        path: path.into(),
        size,
        mtime_ns,
        hash: hash.into(),
    };
    vec![
        (
            meta(
                "a.png",
                1234,
                1_765_000_000_000_000_000,
                "00112233445566778899aabbccddeeff",
            ),
            [1.0, 0.0, 0.0, 0.0],
        ),
        (
            meta("sub/b.jpg", 99, 5, "ffeeddccbbaa99887766554433221100"),
            [0.0, 0.0, 1.0, 0.0],
        ),
        (
            meta("c.webp", 7, -1, "0123456789abcdef0123456789abcdef"),
            [0.5, 0.5, 0.5, -0.5],
        ),
    ]
}

#[test]
#[ignore = "writes the committed fixture; run only when introducing a new store version"]
fn write_fixture_store() {
    let dir = fixture();
    std::fs::create_dir_all(&dir).unwrap();
    let mut m = Manifest::new("fixture-model", 4, VectorType::F16);
    for (i, chunk) in fixture_rows().chunks(2).enumerate() {
        let mut rows = Rows::new(4, VectorType::F16);
        for (meta, v) in chunk {
            rows.push(meta.clone(), v);
        }
        let file = format!("part-{i:05}.parquet");
        let xxh3 = part::write(&dir.join(&file), &rows, "fixture-model").unwrap();
        m.parts.push(PartInfo {
            file,
            rows: rows.len(),
            xxh3,
        });
        m.next_part += 1;
    }
    m.write(&dir.join("manifest.json")).unwrap();
}

#[test]
fn reads_the_committed_store() {
    let s = Store::open(&fixture()).expect("the committed fixture store opens");
    assert_eq!(s.manifest.version, 1);
    assert_eq!(s.manifest.model, "fixture-model");
    assert_eq!((s.manifest.dim, s.manifest.vectors), (4, VectorType::F16));
    assert_eq!(s.manifest.parts.len(), 2);
    let want = fixture_rows();
    assert_eq!(s.len(), want.len());
    for (i, (meta, v)) in want.iter().enumerate() {
        assert_eq!(&s.rows.meta[i], meta);
        assert_eq!(s.rows.row_f32(i), v);
    }
    let hits = s.search_exact(&[0.0, 1.0, 0.0, 0.0], 2).unwrap();
    assert_eq!(hits[0].path, "c.webp");
    assert_eq!(hits[0].score, 0.5);
    // Equal scores come in path order.
    assert_eq!((hits[1].path.as_str(), hits[1].score), ("a.png", 0.0));
    assert!(s.check_model("another").is_err());
}

#[test]
fn refuses_other_versions_and_formats() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture().join("manifest.json")).unwrap();
    let p = dir.path().join("manifest.json");
    std::fs::write(&p, text.replace("\"version\": 1", "\"version\": 2")).unwrap();
    let e = Manifest::read(&p).unwrap_err();
    assert!(matches!(e, IndexError::BadManifest { .. }));
    assert!(e.to_string().contains("version Some(2)"), "{e}");
    std::fs::write(&p, text.replace("clipguide-store", "something-else")).unwrap();
    assert!(Manifest::read(&p)
        .unwrap_err()
        .to_string()
        .contains("format"));
}
