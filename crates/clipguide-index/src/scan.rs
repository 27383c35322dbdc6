//! Finding the images to index and what identifies their content.

use crate::part::FileMeta;
use std::path::{Path, PathBuf};

pub const IMAGE_EXTS: [&str; 6] = ["png", "jpg", "jpeg", "webp", "bmp", "gif"];

/// A file to index: the path stored in the store and where to read it.
#[derive(Clone, Debug)]
pub struct Found {
    pub key: String,
    pub path: PathBuf,
}

pub fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Every image under `dir`, recursively, sorted by stored path (relative, `/`-separated).
/// Hidden files and folders (`.name`, such as the store itself) are left out.
pub fn walk(dir: &Path) -> std::io::Result<Vec<Found>> {
    let mut out = vec![];
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((d, prefix)) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let key = format!("{prefix}{name}");
            let ft = e.file_type()?;
            let path = e.path();
            if ft.is_dir() || (ft.is_symlink() && path.is_dir()) {
                stack.push((path, format!("{key}/")));
            } else if is_image(&path) {
                out.push(Found { key, path });
            }
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// The key [`walk`] stores for `path` found under `root`: relative, `/`-separated.
pub fn dir_key(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Size and modification time (ns since the epoch).
pub fn stamp(path: &Path) -> std::io::Result<(u64, i64)> {
    let md = std::fs::metadata(path)?;
    let mtime = md
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    Ok((md.len(), mtime))
}

/// xxh3-128 of the file's bytes, hex.
pub fn content_hash(path: &Path) -> std::io::Result<String> {
    let bytes = std::fs::read(path)?;
    Ok(format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&bytes)))
}

/// Stamp and hash together.
pub fn file_meta(f: &Found) -> std::io::Result<FileMeta> {
    let (size, mtime_ns) = stamp(&f.path)?;
    Ok(FileMeta {
        path: f.key.clone(),
        size,
        mtime_ns,
        hash: content_hash(&f.path)?,
    })
}

/// What names a model's weights in a store: a hash of their bytes, so the same checkpoint gives
/// the same key wherever it lies (shards indexed on several machines merge) and new weights of
/// the same size never reuse old embeddings.
pub fn weights_key(path: &Path) -> std::io::Result<String> {
    let file = std::fs::File::open(path)?;
    // SAFETY: read-only map of a weights file, read once here; a checkpoint rewritten while
    // clipguide runs would already corrupt the loaded model itself.
    let map = unsafe { memmap2::Mmap::map(&file)? };
    Ok(bytes_key(&map))
}

/// [`weights_key`] of weights held in memory (the built-in model's).
pub fn bytes_key(bytes: &[u8]) -> String {
    format!("xxh3-128:{:032x}", xxhash_rust::xxh3::xxh3_128(bytes))
}
