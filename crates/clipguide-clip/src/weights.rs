//! Reading a weight file into named tensors, whatever its format: safetensors, or a PyTorch
//! `torch.save` zip archive (`.bin`, `.pth`, `.pt`) holding a state dict — bare, or wrapped as
//! `{"state_dict": …}` with DataParallel's `module.` prefix, as training checkpoints are.
//! The format is told by the file's first bytes, not its name.

use crate::error::{ClipError, Result};
use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

/// What a weight file is, by its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightFormat {
    Safetensors,
    /// A `torch.save` zip archive with a pickled state dict.
    TorchZip,
}

impl WeightFormat {
    /// Reads the first bytes: a zip local-file header is a torch archive; a little-endian header
    /// length followed by `{` is safetensors.
    pub fn sniff(path: &Path) -> Result<Self> {
        let mut head = [0u8; 9];
        let n = std::fs::File::open(path)
            .and_then(|mut f| {
                let mut n = 0;
                while n < head.len() {
                    match f.read(&mut head[n..])? {
                        0 => break,
                        k => n += k,
                    }
                }
                Ok(n)
            })
            .map_err(|e| io_error(path, e))?;
        if n >= 4 && head[..4] == *b"PK\x03\x04" {
            return Ok(Self::TorchZip);
        }
        if n == 9 && head[8] == b'{' {
            return Ok(Self::Safetensors);
        }
        let detail = if n >= 2 && head[0] == 0x80 {
            "a legacy (pre-1.6, non-zip) torch.save pickle, which is not read: re-save it with a current torch (torch.save(torch.load(f), f)) or as safetensors".to_string()
        } else {
            "neither safetensors nor a torch.save zip archive".to_string()
        };
        Err(ClipError::BadWeights {
            path: path.to_path_buf(),
            detail,
        })
    }
}

fn io_error(path: &Path, e: std::io::Error) -> ClipError {
    if e.kind() == std::io::ErrorKind::NotFound {
        ClipError::MissingFile {
            path: path.to_path_buf(),
            hint: "Check the checkpoint folder: the weight file named by its layout is missing."
                .into(),
        }
    } else {
        ClipError::Io {
            path: path.to_path_buf(),
            source: e,
        }
    }
}

/// All tensors of a weight file, by name, on `device` in their stored dtype. A torch archive's
/// state dict may be wrapped in `{"state_dict": …}`; a `module.` prefix on every name is removed.
pub fn read_weights(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    let bad = |detail: String| ClipError::BadWeights {
        path: path.to_path_buf(),
        detail,
    };
    let tensors: HashMap<String, Tensor> = match WeightFormat::sniff(path)? {
        WeightFormat::Safetensors => {
            let data = std::fs::read(path).map_err(|e| io_error(path, e))?;
            candle_core::safetensors::load_buffer(&data, device).map_err(|e| bad(e.to_string()))?
        }
        WeightFormat::TorchZip => {
            crate::torch_zip::check_archive(path)
                .map_err(|e| bad(format!("torch archive: {e}")))?;
            let read = |key: Option<&str>| {
                let torch = |e: String| bad(format!("torch archive: {e}"));
                let infos = candle_core::pickle::read_pth_tensor_info(path, false, key)
                    .map_err(|e| torch(e.to_string()))?;
                let extents = infos
                    .iter()
                    .map(|i| {
                        // Bytes from the storage's start to the tensor's last element
                        // (candle keeps the start offset in bytes).
                        let reach = i
                            .layout
                            .dims()
                            .iter()
                            .try_fold(i.dtype.size_in_bytes(), |n, &d| n.checked_mul(d))
                            .and_then(|n| n.checked_add(i.layout.start_offset()))
                            .unwrap_or(usize::MAX);
                        (i.path.clone(), reach as u64)
                    })
                    .collect::<Vec<_>>();
                crate::torch_zip::check_extents(path, &extents).map_err(torch)?;
                candle_core::pickle::read_all_with_key(path, key).map_err(|e| torch(e.to_string()))
            };
            let mut named = read(None)?;
            if named.is_empty() {
                // A training checkpoint: {"epoch": …, "state_dict": {…}, …}.
                named = read(Some("state_dict")).map_err(|e| {
                    bad(format!("the torch archive holds no tensors at its top level, and reading its \"state_dict\" entry failed: {e}"))
                })?;
            }
            named
                .into_iter()
                .map(|(k, t)| Ok((k, t.to_device(device)?)))
                .collect::<candle_core::Result<_>>()?
        }
    };
    if tensors.is_empty() {
        return Err(bad("it holds no tensors".into()));
    }
    if tensors.keys().all(|k| k.starts_with("module.")) {
        return Ok(tensors
            .into_iter()
            .map(|(k, t)| (k["module.".len()..].to_string(), t))
            .collect());
    }
    Ok(tensors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_names_what_the_file_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.bin");
        std::fs::write(&p, b"hello, this is text").unwrap();
        let e = WeightFormat::sniff(&p).unwrap_err().to_string();
        assert!(
            e.contains("w.bin") && e.contains("neither safetensors"),
            "{e}"
        );
        std::fs::write(&p, [0x80, 0x02, b'c', b'x']).unwrap();
        let e = WeightFormat::sniff(&p).unwrap_err().to_string();
        assert!(e.contains("legacy"), "{e}");
        let e = read_weights(&dir.path().join("absent.bin"), &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(e.contains("absent.bin") && e.contains("not found"), "{e}");
    }

    #[test]
    fn safetensors_and_module_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.safetensors");
        let t = Tensor::new(&[1f32, 2.0], &Device::Cpu).unwrap();
        let map: HashMap<String, Tensor> = [
            ("module.a.b".to_string(), t.clone()),
            ("module.c".into(), t),
        ]
        .into();
        candle_core::safetensors::save(&map, &p).unwrap();
        assert_eq!(WeightFormat::sniff(&p).unwrap(), WeightFormat::Safetensors);
        let got = read_weights(&p, &Device::Cpu).unwrap();
        let mut keys: Vec<_> = got.keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["a.b", "c"]);
    }
}
