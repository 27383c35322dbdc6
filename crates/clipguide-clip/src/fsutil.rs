//! Writing files and folders so that a reader never sees a half-written one: the content goes
//! to a temporary beside the destination (`.{name}.{pid}.tmp`, same folder, so the rename stays
//! on one file system), which is then renamed into place. On any error, or when a [`Staged`]
//! is dropped without [`Staged::commit`], the temporary is removed and the old file stays.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, written, synced to
/// disk, then renamed over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |tmp| File::create(tmp)?.write_all(bytes))
}

/// Like [`write_atomic`], but `write` produces the temporary file itself, given its path: for
/// writers that take a path (candle's safetensors, `image`'s encoders) or stream their output.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&Path) -> io::Result<()>,
) -> io::Result<()> {
    Staged::file(path, write)?.commit()
}

/// A file or folder written under its temporary name and not yet renamed into place.
///
/// Several files staged first and committed together change the destination folder within a
/// few renames, e.g. a checkpoint's weights and optimiser state. Dropping it uncommitted removes
/// the temporary.
#[derive(Debug)]
pub struct Staged {
    tmp: PathBuf,
    dest: PathBuf,
    is_dir: bool,
    committed: bool,
}

impl Staged {
    /// Lets `write` produce the file at the temporary path, then syncs it to disk. On error the
    /// temporary is removed.
    pub fn file(path: &Path, write: impl FnOnce(&Path) -> io::Result<()>) -> io::Result<Self> {
        let staged = Self {
            tmp: temp_path(path),
            dest: path.to_path_buf(),
            is_dir: false,
            committed: false,
        };
        write(&staged.tmp)?;
        OpenOptions::new()
            .write(true)
            .open(&staged.tmp)?
            .sync_all()?;
        Ok(staged)
    }

    /// An empty temporary folder for a folder that should appear at `path` complete or not at
    /// all; fill it through [`Staged::path`], then commit.
    pub fn dir(path: &Path) -> io::Result<Self> {
        let tmp = temp_path(path);
        // A leftover of a crashed process that had the same id.
        if tmp.is_dir() {
            std::fs::remove_dir_all(&tmp)?;
        }
        std::fs::create_dir(&tmp)?;
        Ok(Self {
            tmp,
            dest: path.to_path_buf(),
            is_dir: true,
            committed: false,
        })
    }

    /// Where the content is until it is committed.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Renames the temporary into place (replacing a file; a folder's destination must not
    /// exist, or be an empty folder). On error the temporary is removed.
    pub fn commit(mut self) -> io::Result<()> {
        std::fs::rename(&self.tmp, &self.dest)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = if self.is_dir {
                std::fs::remove_dir_all(&self.tmp)
            } else {
                std::fs::remove_file(&self.tmp)
            };
        }
    }
}

/// `.{name}.{pid}.tmp` in `path`'s folder.
fn temp_path(path: &Path) -> PathBuf {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    dir.join(format!(".{name}.{}.tmp", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writes_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        write_atomic(&p, b"old").unwrap();
        write_atomic(&p, b"new").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert_eq!(entries(dir.path()), ["a.txt"]);
    }

    /// A write that fails halfway (after part of the new content reached the temporary) leaves
    /// the old file as it was and no temporary behind; so does a rename that fails.
    #[test]
    fn interrupted_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.bin");
        write_atomic(&p, b"old").unwrap();
        let err = write_atomic_with(&p, |tmp| {
            File::create(tmp)?.write_all(b"half of the new")?;
            Err(io::Error::other("interrupted"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "interrupted");
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(entries(dir.path()), ["a.bin"]);

        // Staged but never committed (e.g. a later file of the same checkpoint failed).
        let staged = Staged::file(&p, |tmp| std::fs::write(tmp, b"new")).unwrap();
        assert!(staged.path().exists());
        drop(staged);
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(entries(dir.path()), ["a.bin"]);

        // The rename fails: a non-empty folder is in the way.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("x"), b"x").unwrap();
        assert!(write_atomic(&blocked, b"new").is_err());
        assert_eq!(entries(dir.path()), ["a.bin", "blocked"]);
    }

    #[test]
    fn staged_folders_appear_complete_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("model");
        let staged = Staged::dir(&out).unwrap();
        std::fs::write(staged.path().join("config.json"), b"{}").unwrap();
        assert!(!out.exists());
        drop(staged);
        assert!(entries(dir.path()).is_empty());

        let staged = Staged::dir(&out).unwrap();
        std::fs::write(staged.path().join("config.json"), b"{}").unwrap();
        staged.commit().unwrap();
        assert_eq!(entries(&out), ["config.json"]);
        assert_eq!(entries(dir.path()), ["model"]);
    }
}
