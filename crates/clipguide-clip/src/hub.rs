//! Resolving `--model`: a local checkpoint folder, or a Hugging Face hub id downloaded with
//! `hf-hub` into the standard cache (HF_HOME, HF_ENDPOINT and HF_HUB_OFFLINE honoured), so files
//! Python users already have are reused.

use crate::error::{ClipError, Result};
use std::path::{Path, PathBuf};

/// Files used when present (transformers layout).
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
                hint: "a model is a checkpoint FOLDER (config.json + model.safetensors, or open_clip_config.json + open_clip weights) or a hub id like openai/clip-vit-base-patch32.".into(),
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

/// Fetches one file: from the cache only, or through the API.
trait Fetch {
    fn fetch(&self, file: &str) -> std::result::Result<PathBuf, String>;
}

struct CacheOnly(hf_hub::CacheRepo);

impl Fetch for CacheOnly {
    fn fetch(&self, file: &str) -> std::result::Result<PathBuf, String> {
        self.0
            .get(file)
            .ok_or_else(|| format!("{file} is not in the local cache and HF_HUB_OFFLINE is set"))
    }
}

impl Fetch for hf_hub::api::sync::ApiRepo {
    fn fetch(&self, file: &str) -> std::result::Result<PathBuf, String> {
        self.get(file).map_err(|e| format!("{file}: {e}"))
    }
}

/// The first of `files` that can be had.
fn first_of(src: &dyn Fetch, files: &[&str]) -> std::result::Result<PathBuf, String> {
    let mut errors = Vec::new();
    for f in files {
        match src.fetch(f) {
            Ok(p) => return Ok(p),
            Err(e) => errors.push(e),
        }
    }
    Err(errors.join("; "))
}

/// Gets the files of whichever layout the repository has: transformers' (`config.json` of a
/// CLIP + weights) first, else OpenCLIP's. Returns the folder they are in.
fn fetch_checkpoint(src: &dyn Fetch, optional: bool) -> std::result::Result<PathBuf, String> {
    let hf = src.fetch("config.json").and_then(|config| {
        if !crate::checkpoint::is_clip_config(&config) {
            return Err("config.json is not a CLIP config".to_string());
        }
        first_of(src, &crate::checkpoint::TRANSFORMERS_WEIGHT_FILES)
    });
    let weights = match hf {
        Ok(w) => {
            if optional {
                // A 404 just means the checkpoint lacks them. The OpenCLIP config (small) lets
                // the loader say that the repo has both layouts.
                for f in OPTIONAL_FILES.iter().chain([&crate::openclip::CONFIG_FILE]) {
                    let _ = src.fetch(f);
                }
            }
            w
        }
        Err(hf_err) => {
            let oc = src
                .fetch(crate::openclip::CONFIG_FILE)
                .and_then(|_| first_of(src, &crate::openclip::WEIGHT_FILES));
            match oc {
                Ok(w) => w,
                Err(oc_err) => {
                    return Err(format!(
                    "no transformers checkpoint ({hf_err}) and no OpenCLIP checkpoint ({oc_err})"
                ))
                }
            }
        }
    };
    Ok(weights.parent().map(Path::to_path_buf).unwrap_or_default())
}

fn download(repo_id: &str, revision: &str, progress: bool) -> Result<PathBuf> {
    use hf_hub::{Repo, RepoType};
    let repo = Repo::with_revision(repo_id.to_string(), RepoType::Model, revision.to_string());
    if offline() {
        let cache = CacheOnly(hf_hub::Cache::from_env().repo(repo));
        return fetch_checkpoint(&cache, false).map_err(|e| {
            hub_err(
                repo_id,
                e,
                "Unset HF_HUB_OFFLINE to download it, or point HF_HOME at a cache that has it.",
            )
        });
    }
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_progress(progress)
        .build()
        .map_err(|e| hub_err(repo_id, e, "Check HF_HOME and HF_ENDPOINT."))?;
    let dir = fetch_checkpoint(&api.repo(repo), true).map_err(|e| {
        hub_err(
            repo_id,
            e,
            "Check the id and your network (HF_ENDPOINT sets the server; HF_HUB_OFFLINE=1 uses the cache only). clipguide reads transformers checkpoints (config.json + model.safetensors or pytorch_model.bin), OpenCLIP ones (open_clip_config.json + open_clip_model.safetensors or open_clip_pytorch_model.bin) and rinna's (config.json with a BERT text_config + pytorch_model.bin).",
        )
    })?;
    // rinna's repos hold no tokenizer: theirs is rinna/japanese-roberta-base's sentencepiece.
    if matches!(
        crate::checkpoint::detect(&dir).map(|d| d.layout),
        Ok(crate::checkpoint::Layout::Rinna { .. })
    ) && !dir.join("spiece.model").exists()
    {
        let tok_repo = crate::rinna::TOKENIZER_REPO;
        let tok = api.repo(Repo::with_revision(
            tok_repo.to_string(),
            RepoType::Model,
            "main".into(),
        ));
        for (i, f) in crate::rinna::TOKENIZER_FILES.iter().enumerate() {
            if let Err(e) = tok.fetch(f) {
                if i == 0 {
                    return Err(hub_err(
                        tok_repo,
                        e,
                        "rinna's models need this repository's spiece.model: check the network, or copy the file into the model folder.",
                    ));
                }
            }
        }
    }
    Ok(dir)
}

/// The cache folder of `repo` (main revision) when it holds `file`; no network.
pub fn cached_repo_dir(repo: &str, file: &str) -> Option<PathBuf> {
    use hf_hub::{Repo, RepoType};
    let cache = hf_hub::Cache::from_env().repo(Repo::with_revision(
        repo.to_string(),
        RepoType::Model,
        "main".to_string(),
    ));
    cache.get(file)?.parent().map(Path::to_path_buf)
}

/// The hub id of a folder in the Hugging Face cache (`…/models--owner--name/snapshots/REV`),
/// so per-repository knowledge applies to what `--model owner/name` downloaded.
pub fn repo_id_of_cache_dir(dir: &Path) -> Option<String> {
    let mut parts = dir
        .components()
        .rev()
        .map(|c| c.as_os_str().to_string_lossy());
    let _rev = parts.next()?;
    if parts.next()? != "snapshots" {
        return None;
    }
    let name = parts.next()?;
    let rest = name.strip_prefix("models--")?;
    let (owner, repo) = rest.split_once("--")?;
    Some(format!("{owner}/{repo}"))
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
    fn cache_folders_name_their_repository() {
        let p = Path::new("/h/hub/models--apple--DFN5B-CLIP-ViT-H-14-378/snapshots/abc123");
        assert_eq!(
            repo_id_of_cache_dir(p).as_deref(),
            Some("apple/DFN5B-CLIP-ViT-H-14-378")
        );
        assert_eq!(repo_id_of_cache_dir(Path::new("/tmp/my-model")), None);
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
