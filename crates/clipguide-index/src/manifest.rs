//! The store's table of contents: `manifest.json` (or, for one shard of a sharded build,
//! `shard-I-of-N.json`), a small versioned JSON file naming the model, the dimension, the vector
//! type and every part file with its row count and checksum.

use crate::error::{read_err, write_err, IndexError, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The `format` field: says what this JSON file is to anyone who finds it.
pub const FORMAT: &str = "clipguide-store";
/// Raised when a field changes meaning; older versions are refused with a message.
pub const VERSION: u32 = 1;
pub const MANIFEST_FILE: &str = "manifest.json";

/// How the embeddings are stored in the parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum VectorType {
    /// Half precision: half the size, ~1e-3 relative error, enough for cosine ranking.
    #[default]
    F16,
    F32,
}

impl VectorType {
    pub fn bytes(self) -> usize {
        match self {
            Self::F16 => 2,
            Self::F32 => 4,
        }
    }
}

/// One Parquet part file of the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartInfo {
    /// File name inside the store folder.
    pub file: String,
    pub rows: usize,
    /// xxh3-64 of the file's bytes, hex.
    pub xxh3: String,
}

/// The ANN index file beside the parts, valid for exactly the parts it was built from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexInfo {
    pub file: String,
    pub xxh3: String,
    /// xxh3 of the checksums, in order, of the parts it was built from: the first [`Self::parts`]
    /// of the manifest's list. Parts appended after them are added to the index by the next
    /// indexing run; any other change makes it stale.
    pub parts_xxh3: String,
    /// How many of the manifest's parts (from the first) it holds; absent in indexes written
    /// before parts were appended to them: all.
    #[serde(default)]
    pub parts: Option<usize>,
    /// What calibrating it on the store's own rows chose and measured; absent in indexes built
    /// before calibration (they search with [`crate::ann::EXPANSION_SEARCH`]).
    #[serde(default)]
    pub calibration: Option<AnnCalibration>,
}

/// What calibrating an HNSW index on its store's own rows measured ([`crate::ann`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnCalibration {
    /// Rows in the store when measured.
    pub rows: usize,
    /// The search beam width chosen: the smallest power of two that reached the target recall,
    /// else the widest tried.
    pub expansion_search: usize,
    /// recall@10 against exact search at that width, in thousandths.
    pub recall_permille: u32,
    /// Median time of one query through the index and by exact search, in microseconds.
    pub ann_us: u64,
    pub exact_us: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    /// The embedding model's key: a store answers queries embedded by this model only.
    pub model: String,
    pub dim: usize,
    pub vectors: VectorType,
    pub parts: Vec<PartInfo>,
    /// Sequence number of the next part file this writer creates (part names are never reused,
    /// so a reader holding an older manifest never sees a file change under it).
    pub next_part: u64,
    #[serde(default)]
    pub index: Option<IndexInfo>,
    /// An index built, measured no faster than exact search, and dropped: not tried again until
    /// the store has twice these rows.
    #[serde(default)]
    pub ann_declined: Option<AnnCalibration>,
}

impl Manifest {
    pub fn new(model: &str, dim: usize, vectors: VectorType) -> Self {
        Self {
            format: FORMAT.into(),
            version: VERSION,
            model: model.into(),
            dim,
            vectors,
            parts: vec![],
            next_part: 0,
            index: None,
            ann_declined: None,
        }
    }

    pub fn rows(&self) -> usize {
        self.parts.iter().map(|p| p.rows).sum()
    }

    /// Reads and validates a manifest; `Ok(None)` when the file does not exist.
    pub fn read(path: &Path) -> Result<Option<Self>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(read_err(path)(e)),
        };
        Self::from_json_str(&text, path).map(Some)
    }

    /// Parses and validates a manifest's text (`path` names it in errors): its format and
    /// version, a non-zero dimension, row counts whose total fits, and files that are plain
    /// names inside the store folder, each part named once (the writer removes the files a
    /// manifest names, so a path such as `../x` must never get that far).
    pub fn from_json_str(text: &str, path: &Path) -> Result<Self> {
        let bad = |detail: String| IndexError::BadManifest {
            path: path.to_path_buf(),
            detail,
        };
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
        if v.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(bad(format!("its \"format\" is not {FORMAT:?}")));
        }
        match v.get("version").and_then(|f| f.as_u64()) {
            Some(n) if n == VERSION as u64 => {}
            other => {
                return Err(bad(format!(
                    "version {other:?}; this clipguide reads version {VERSION}"
                )))
            }
        }
        let m: Self = serde_json::from_value(v).map_err(|e| bad(e.to_string()))?;
        if m.dim == 0 {
            return Err(bad("dim is 0".into()));
        }
        if m.parts
            .iter()
            .try_fold(0usize, |n, p| n.checked_add(p.rows))
            .is_none()
        {
            return Err(bad(
                "the parts' row counts add up to more than a count can hold".into(),
            ));
        }
        let files = m
            .parts
            .iter()
            .map(|p| &p.file)
            .chain(m.index.iter().map(|i| &i.file));
        let mut seen = std::collections::HashSet::new();
        for file in files {
            if !is_file_name(file) {
                return Err(bad(format!(
                    "{file:?} is not the name of a file in the store folder"
                )));
            }
            if !seen.insert(file) {
                return Err(bad(format!("{file:?} is listed twice")));
            }
        }
        Ok(m)
    }

    /// The manifest's JSON, as [`Manifest::write`] writes it.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a manifest serialises")
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        clipguide_clip::fsutil::write_atomic(path, self.to_json().as_bytes())
            .map_err(write_err(path))
    }

    /// Checksum of the parts list, what an index built from them records.
    pub fn parts_checksum(&self) -> String {
        self.parts_checksum_of(self.parts.len())
            .expect("the whole list is a prefix of itself")
    }

    /// Checksum of the first `n` parts; `None` when there are fewer.
    pub fn parts_checksum_of(&self, n: usize) -> Option<String> {
        let joined: Vec<&str> = self
            .parts
            .get(..n)?
            .iter()
            .map(|p| p.xxh3.as_str())
            .collect();
        Some(checksum(joined.join(",").as_bytes()))
    }

    /// How many of the first parts the index holds, when they are still the first parts of this
    /// list (so that the rest can be added to it); `None` without an index or when it is stale.
    pub fn index_prefix(&self) -> Option<usize> {
        let ix = self.index.as_ref()?;
        let n = ix.parts.unwrap_or(self.parts.len());
        (self.parts_checksum_of(n)? == ix.parts_xxh3).then_some(n)
    }
}

/// One plain name, no folder part: what the writer names its files, on any platform.
fn is_file_name(name: &str) -> bool {
    let mut parts = Path::new(name).components();
    let one = matches!(
        (parts.next(), parts.next()),
        (Some(std::path::Component::Normal(n)), None) if n == name
    );
    one && !name.contains(['/', '\\'])
}

pub fn checksum(bytes: &[u8]) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(bytes))
}

/// The manifest file of shard `i` of `n`.
pub fn shard_manifest_path(store: &Path, shard: Shard) -> PathBuf {
    store.join(format!(
        "shard-{:05}-of-{:05}.json",
        shard.index, shard.count
    ))
}

/// Shard `index` of `count`: the files at positions `index`, `index + count`, … of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = IndexError;
    fn from_str(s: &str) -> Result<Self> {
        let bad = |detail: &str| IndexError::BadShard {
            spec: s.into(),
            detail: detail.into(),
        };
        let (i, n) = s.split_once('/').ok_or_else(|| bad("no '/'"))?;
        let index: usize = i.trim().parse().map_err(|_| bad("I is not a number"))?;
        let count: usize = n.trim().parse().map_err(|_| bad("N is not a number"))?;
        if count == 0 || index >= count {
            return Err(bad("I must be below N"));
        }
        Ok(Self { index, count })
    }
}

impl Shard {
    pub fn take<T: Clone>(self, items: &[T]) -> Vec<T> {
        items
            .iter()
            .skip(self.index)
            .step_by(self.count)
            .cloned()
            .collect()
    }

    /// Prefix of this shard's part files, so shards writing into one folder never collide.
    pub fn part_prefix(self) -> String {
        format!("part-s{:05}of{:05}-", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest(parts: serde_json::Value, index: serde_json::Value) -> String {
        json!({
            "format": FORMAT, "version": VERSION, "model": "m", "dim": 4, "vectors": "f16",
            "parts": parts, "next_part": 2, "index": index,
        })
        .to_string()
    }

    fn part(file: &str, rows: usize) -> serde_json::Value {
        json!({"file": file, "rows": rows, "xxh3": "c60eecdfb61b34bd"})
    }

    fn parse(text: &str) -> Result<Manifest> {
        Manifest::from_json_str(text, Path::new("s/manifest.json"))
    }

    #[test]
    fn a_manifest_survives_its_write_back() {
        let index = json!({"file": "index.usearch", "xxh3": "a", "parts_xxh3": "b"});
        let text = manifest(
            json!([part("p-00000.parquet", 2), part("p-00001.parquet", 1)]),
            index,
        );
        let m = parse(&text).unwrap();
        assert_eq!(m.rows(), 3);
        assert_eq!(parse(&m.to_json()).unwrap(), m);
    }

    #[test]
    fn an_index_from_before_calibration_reads_as_uncalibrated() {
        // Version-1 manifests written before 2026-12-08 name an index with three fields and
        // have no `ann_declined`; calibration then searched at ann::EXPANSION_SEARCH.
        let index = json!({"file": "index.usearch", "xxh3": "a", "parts_xxh3": "b"});
        let m = parse(&manifest(json!([part("p.parquet", 2)]), index)).unwrap();
        let info = m.index.as_ref().unwrap();
        assert_eq!(info.calibration, None);
        assert_eq!(m.ann_declined, None);
        // And a calibrated one survives its write-back.
        let mut m2 = m.clone();
        let c = AnnCalibration {
            rows: 2,
            expansion_search: 64,
            recall_permille: 970,
            ann_us: 300,
            exact_us: 6000,
        };
        m2.index.as_mut().unwrap().calibration = Some(c.clone());
        m2.ann_declined = Some(c);
        assert_eq!(parse(&m2.to_json()).unwrap(), m2);
    }

    #[test]
    fn files_outside_the_store_folder_are_refused() {
        // The indexer removes the parts and index a manifest names once they are replaced: a
        // name reaching outside the folder would remove a file that is not the store's.
        for name in [
            "../x.parquet",
            "/tmp/x.parquet",
            "a/b.parquet",
            "a\\b",
            "..",
            ".",
            "",
        ] {
            let e = parse(&manifest(json!([part(name, 1)]), json!(null))).unwrap_err();
            assert!(
                e.to_string()
                    .contains("not the name of a file in the store folder"),
                "{name:?}: {e}"
            );
            let index = json!({"file": name, "xxh3": "a", "parts_xxh3": "b"});
            assert!(parse(&manifest(json!([]), index)).is_err(), "{name:?}");
        }
        let twice = manifest(
            json!([part("p.parquet", 1), part("p.parquet", 1)]),
            json!(null),
        );
        assert!(parse(&twice)
            .unwrap_err()
            .to_string()
            .contains("listed twice"));
    }

    #[test]
    fn row_counts_that_overflow_are_refused() {
        // Their sum once overflowed in `rows()`.
        let text = manifest(json!([part("a", usize::MAX), part("b", 1)]), json!(null));
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("row counts"), "{e}");
        assert!(parse(&manifest(json!([part("a", usize::MAX)]), json!(null))).is_ok());
    }
}
