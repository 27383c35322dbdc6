//! Resolving `--model`: a local checkpoint folder, or a Hugging Face hub id downloaded with
//! `hf-hub` into the standard cache (HF_HOME, HF_ENDPOINT and HF_HUB_OFFLINE honoured), so files
//! Python users already have are reused.

use crate::error::{ClipError, Result};
use std::path::{Path, PathBuf};

/// Files a CLIP checkpoint needs.
pub const REQUIRED_FILES: [&str; 2] = ["config.json", "model.safetensors"];
/// Files used when present.
pub const OPTIONAL_FILES: [&str; 4] = [
    "tokenizer.json",
    "special_tokens_map.json",
    "tokenizer_config.json",
    "preprocessor_config.json",
];

/// Where a model comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSpec {
    Local(PathBuf),
    Hub { repo: String, revision: String },
}

impl ModelSpec {
    /// A path that exists is local; `owner/name[@revision]` is a hub id; anything else is an error.
    pub fn parse(spec: &str) -> Result<Self> {
        let path = Path::new(spec);
        if path.exists() {
            if path.is_dir() {
                return Ok(Self::Local(path.to_path_buf()));
            }
            return Err(ClipError::MissingFile {
                path: path.to_path_buf(),
                hint: "--model takes a checkpoint FOLDER (with config.json and model.safetensors) or a hub id like openai/clip-vit-base-patch32.".into(),
            });
        }
        let (repo, revision) = match spec.split_once('@') {
            Some((r, rev)) => (r, rev.to_string()),
            None => (spec, "main".to_string()),
        };
        let parts: Vec<&str> = repo.split('/').collect();
        let valid = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        if parts.len() == 2 && parts.iter().all(|p| valid(p)) && !revision.is_empty() {
            Ok(Self::Hub {
                repo: repo.to_string(),
                revision,
            })
        } else {
            Err(ClipError::MissingFile {
                path: path.to_path_buf(),
                hint: "No such folder, and it is not a hub id of the form owner/name (e.g. openai/clip-vit-base-patch32).".into(),
            })
        }
    }
}

fn offline() -> bool {
    matches!(
        std::env::var("HF_HUB_OFFLINE").as_deref(),
        Ok("1") | Ok("true") | Ok("TRUE") | Ok("yes") | Ok("ON") | Ok("on")
    )
}

/// Returns a local folder holding the checkpoint's files, downloading what is missing.
pub fn resolve(spec: &str, progress: bool) -> Result<PathBuf> {
    match ModelSpec::parse(spec)? {
        ModelSpec::Local(p) => Ok(p),
        ModelSpec::Hub { repo, revision } => download(&repo, &revision, progress),
    }
}

fn hub_err(repo: &str, detail: impl ToString, hint: &str) -> ClipError {
    ClipError::Hub {
        repo: repo.to_string(),
        detail: detail.to_string(),
        hint: hint.to_string(),
    }
}

fn download(repo_id: &str, revision: &str, progress: bool) -> Result<PathBuf> {
    use hf_hub::{Repo, RepoType};
    let repo = Repo::with_revision(repo_id.to_string(), RepoType::Model, revision.to_string());
    if offline() {
        let cache = hf_hub::Cache::from_env().repo(repo);
        let mut dir = None;
        for f in REQUIRED_FILES {
            let p = cache.get(f).ok_or_else(|| {
                hub_err(
                    repo_id,
                    format!("{f} is not in the local cache and HF_HUB_OFFLINE is set"),
                    "Unset HF_HUB_OFFLINE to download it, or point HF_HOME at a cache that has it.",
                )
            })?;
            dir = p.parent().map(Path::to_path_buf);
        }
        return Ok(dir.expect("REQUIRED_FILES is not empty"));
    }
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_progress(progress)
        .build()
        .map_err(|e| hub_err(repo_id, e, "Check HF_HOME and HF_ENDPOINT."))?;
    let api_repo = api.repo(repo);
    let mut dir = None;
    for f in REQUIRED_FILES {
        let p = api_repo.get(f).map_err(|e| {
            hub_err(
                repo_id,
                format!("{f}: {e}"),
                "Check the id and your network (HF_ENDPOINT sets the server; HF_HUB_OFFLINE=1 uses the cache only). Only safetensors checkpoints are supported.",
            )
        })?;
        dir = p.parent().map(Path::to_path_buf);
    }
    // Optional files: a 404 just means the checkpoint lacks them.
    for f in OPTIONAL_FILES {
        let _ = api_repo.get(f);
    }
    Ok(dir.expect("REQUIRED_FILES is not empty"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hub_ids() {
        assert_eq!(
            ModelSpec::parse("openai/clip-vit-base-patch32").unwrap(),
            ModelSpec::Hub {
                repo: "openai/clip-vit-base-patch32".into(),
                revision: "main".into()
            }
        );
        assert_eq!(
            ModelSpec::parse("laion/CLIP-ViT-H-14-laion2B-s32B-b79K@abc123").unwrap(),
            ModelSpec::Hub {
                repo: "laion/CLIP-ViT-H-14-laion2B-s32B-b79K".into(),
                revision: "abc123".into()
            }
        );
    }

    #[test]
    fn rejects_nonsense() {
        let e = ModelSpec::parse("no/such/folder/here")
            .unwrap_err()
            .to_string();
        assert!(e.contains("owner/name"), "{e}");
        assert!(ModelSpec::parse("plainword").is_err());
    }
}
