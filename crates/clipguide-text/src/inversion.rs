//! Textual-inversion embedding files: A1111, kohya, diffusers and SDXL `.safetensors` layouts.
//! Detects the layout from tensor names, returns `[n, dim]` f32 vectors and checks the dim.
//!
//! Detection order follows A1111's `create_embedding_from_data`
//! (modules/textual_inversion/textual_inversion.py) for flattened safetensors keys:
//! 1. `string_to_param.<token>`: A1111's own format (exactly one term allowed);
//! 2. `clip_l` and `clip_g`: SDXL (vector counts must agree);
//! 3. `emb_params`: kohya sd-scripts;
//! 4. a single tensor `{token: [dim] or [n, dim]}`: diffusers `learned_embeds.safetensors`.
//!
//! Like A1111, the trigger word ([`Embedding::name`]) is the file stem; diffusers' own token
//! is kept in [`InversionFormat::Diffusers`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

/// A textual-inversion embedding for one text encoder.
#[derive(Debug, Clone)]
pub struct Embedding {
    pub name: String,
    /// `[n, dim]`, f32.
    pub vectors: Tensor,
}

impl Embedding {
    /// Number of vectors, i.e. prompt positions the trigger occupies.
    pub fn len(&self) -> usize {
        self.vectors.dims()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn dim(&self) -> usize {
        self.vectors.dims()[1]
    }

    /// Errors unless the vectors fit a text encoder with hidden size `expected`.
    pub fn check_dim(&self, expected: usize) -> Result<(), InversionError> {
        if self.dim() != expected {
            return Err(InversionError::DimMismatch {
                name: self.name.clone(),
                found: self.dim(),
                expected,
            });
        }
        Ok(())
    }
}

/// An SDXL embedding: one set of vectors per text encoder.
#[derive(Debug, Clone)]
pub struct SdxlEmbedding {
    pub name: String,
    /// `[n, 768]` for CLIP-L.
    pub clip_l: Tensor,
    /// `[n, 1280]` for OpenCLIP-G.
    pub clip_g: Tensor,
}

/// Which file layout an embedding came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InversionFormat {
    /// `string_to_param.<token>`.
    A1111,
    /// `emb_params`.
    Kohya,
    /// `{token: tensor}`; `token` is the trigger diffusers would register.
    Diffusers { token: String },
    /// `clip_l` + `clip_g`.
    Sdxl,
}

/// A loaded embedding file.
#[derive(Debug, Clone)]
pub enum LoadedInversion {
    Single {
        format: InversionFormat,
        embedding: Embedding,
    },
    Sdxl(SdxlEmbedding),
}

impl LoadedInversion {
    pub fn name(&self) -> &str {
        match self {
            LoadedInversion::Single { embedding, .. } => &embedding.name,
            LoadedInversion::Sdxl(e) => &e.name,
        }
    }

    pub fn format(&self) -> InversionFormat {
        match self {
            LoadedInversion::Single { format, .. } => format.clone(),
            LoadedInversion::Sdxl(_) => InversionFormat::Sdxl,
        }
    }

    /// The vectors for a text encoder of hidden size `dim`: a single-encoder embedding must
    /// match it; an SDXL embedding gives `clip_l` or `clip_g`, whichever has that size.
    pub fn for_encoder_dim(&self, dim: usize) -> Result<Embedding, InversionError> {
        match self {
            LoadedInversion::Single { embedding, .. } => {
                embedding.check_dim(dim)?;
                Ok(embedding.clone())
            }
            LoadedInversion::Sdxl(e) => {
                let (l, g) = (e.clip_l.dims()[1], e.clip_g.dims()[1]);
                let vectors = if l == dim {
                    e.clip_l.clone()
                } else if g == dim {
                    e.clip_g.clone()
                } else {
                    return Err(InversionError::SdxlDimMismatch {
                        name: e.name.clone(),
                        clip_l: l,
                        clip_g: g,
                        expected: dim,
                    });
                };
                Ok(Embedding {
                    name: e.name.clone(),
                    vectors,
                })
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InversionError {
    #[error("cannot read embedding file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("embedding {name:?} is not a valid safetensors file: {message}")]
    Safetensors { name: String, message: String },
    #[error("embedding {name:?} has an unknown layout (tensors: {keys:?}): expected 'string_to_param.*' (A1111), 'emb_params' (kohya), 'clip_l' + 'clip_g' (SDXL) or a single token tensor (diffusers)")]
    UnknownLayout { name: String, keys: Vec<String> },
    #[error("embedding {name:?} holds several terms {keys:?}; only single-term files are supported: split it into one file per trigger")]
    MultipleTerms { name: String, keys: Vec<String> },
    #[error("embedding {name:?}: tensor '{key}' has shape {shape:?}; expected [dim] or [vectors, dim] with at least one vector")]
    BadShape {
        name: String,
        key: String,
        shape: Vec<usize>,
    },
    #[error("embedding {name:?}: tensor '{key}' has dtype {dtype:?}; expected a float type (f32, f16, bf16, f64)")]
    NotFloat {
        name: String,
        key: String,
        dtype: DType,
    },
    #[error("SDXL embedding {name:?} has {clip_l} clip_l vectors but {clip_g} clip_g vectors: both must be equal")]
    SdxlVectorMismatch {
        name: String,
        clip_l: usize,
        clip_g: usize,
    },
    #[error("embedding {name:?} has dim {found} but the text encoder expects {expected}: it was trained for another model (768 = SD1 CLIP-L, 1024 = SD2, 1280 = SDXL CLIP-G)")]
    DimMismatch {
        name: String,
        found: usize,
        expected: usize,
    },
    #[error("SDXL embedding {name:?} has clip_l dim {clip_l} and clip_g dim {clip_g} but the text encoder expects {expected}: use it with an SDXL text encoder")]
    SdxlDimMismatch {
        name: String,
        clip_l: usize,
        clip_g: usize,
        expected: usize,
    },
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Loads an embedding file; the trigger name is the file stem, as in A1111.
pub fn load_inversion(path: &Path, device: &Device) -> Result<LoadedInversion, InversionError> {
    let bytes = std::fs::read(path).map_err(|source| InversionError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    load_inversion_bytes(&bytes, &name, device)
}

/// Loads an embedding from safetensors bytes, naming it `name`.
pub fn load_inversion_bytes(
    bytes: &[u8],
    name: &str,
    device: &Device,
) -> Result<LoadedInversion, InversionError> {
    let tensors = candle_core::safetensors::load_buffer(bytes, device).map_err(|e| {
        InversionError::Safetensors {
            name: name.to_string(),
            message: e.to_string(),
        }
    })?;
    let mut keys: Vec<String> = tensors.keys().cloned().collect();
    keys.sort();
    from_tensors(tensors, keys, name)
}

fn from_tensors(
    mut tensors: HashMap<String, Tensor>,
    keys: Vec<String>,
    name: &str,
) -> Result<LoadedInversion, InversionError> {
    let name_s = name.to_string();
    let single = |format: InversionFormat, key: &str, t: Tensor| {
        Ok(LoadedInversion::Single {
            format,
            embedding: Embedding {
                name: name_s.clone(),
                vectors: as_vectors(name, key, t)?,
            },
        })
    };

    let terms: Vec<&String> = keys
        .iter()
        .filter(|k| k.starts_with("string_to_param."))
        .collect();
    if terms.len() > 1 {
        return Err(InversionError::MultipleTerms {
            name: name_s,
            keys: terms.into_iter().cloned().collect(),
        });
    }
    if let Some(key) = terms.first() {
        let t = tensors.remove(*key).expect("key listed from the map");
        return single(InversionFormat::A1111, key, t);
    }
    if tensors.contains_key("clip_l") && tensors.contains_key("clip_g") {
        let clip_l = as_vectors(name, "clip_l", tensors.remove("clip_l").expect("checked"))?;
        let clip_g = as_vectors(name, "clip_g", tensors.remove("clip_g").expect("checked"))?;
        let (l, g) = (clip_l.dims()[0], clip_g.dims()[0]);
        if l != g {
            return Err(InversionError::SdxlVectorMismatch {
                name: name_s,
                clip_l: l,
                clip_g: g,
            });
        }
        return Ok(LoadedInversion::Sdxl(SdxlEmbedding {
            name: name_s,
            clip_l,
            clip_g,
        }));
    }
    if let Some(t) = tensors.remove("emb_params") {
        return single(InversionFormat::Kohya, "emb_params", t);
    }
    if keys.len() == 1 {
        let key = &keys[0];
        let t = tensors.remove(key).expect("key listed from the map");
        return single(InversionFormat::Diffusers { token: key.clone() }, key, t);
    }
    if keys.len() > 1 && !keys.iter().any(|k| k == "clip_l" || k == "clip_g") {
        return Err(InversionError::MultipleTerms { name: name_s, keys });
    }
    Err(InversionError::UnknownLayout { name: name_s, keys })
}

/// `[dim]` becomes `[1, dim]` (diffusers single vector); anything else must be `[n >= 1, dim]`.
fn as_vectors(name: &str, key: &str, t: Tensor) -> Result<Tensor, InversionError> {
    if !t.dtype().is_float() {
        return Err(InversionError::NotFloat {
            name: name.to_string(),
            key: key.to_string(),
            dtype: t.dtype(),
        });
    }
    let t = match t.dims() {
        &[d] if d > 0 => t.unsqueeze(0)?,
        &[n, d] if n > 0 && d > 0 => t,
        other => {
            return Err(InversionError::BadShape {
                name: name.to_string(),
                key: key.to_string(),
                shape: other.to_vec(),
            })
        }
    };
    Ok(t.to_dtype(DType::F32)?)
}
