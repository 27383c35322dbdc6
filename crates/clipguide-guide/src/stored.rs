//! What a generated PNG stores about the run that made it, as a versioned format of its own,
//! so renaming a field of [`GenerateConfig`] never breaks re-making yesterday's images.
//!
//! The `clipguide` text chunk holds JSON `{"generator": "clipguide", "format": N, "version":
//! CRATE_VERSION, "config": {...}}`. Format 1 (until 2026-12-06) had no `format` field and laid
//! the parameterisation's and selection's settings flat beside a data-less `param` name; the
//! oldest files had the config at the top level. Each format is read into its own type and
//! migrated forward; only the newest is written.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{GenerateConfig, ImagePrompt, Selection};
use crate::error::{GuideError, Result};
use crate::param::{Param, PrimitivesSpec};
use crate::png_meta::{ascii_json, read_png_text, PARAMS_KEY};
use crate::schedule::GuideSchedule;

/// The format this build writes.
pub const FORMAT: u64 = 2;

/// A run as stored in a PNG, by format.
#[derive(Clone, Debug)]
pub enum StoredRun {
    /// Format 1: the flat config of builds before 2026-12-06.
    V1(Box<ConfigV1>),
    /// Format 2: [`GenerateConfig`] as it is now.
    V2(Box<GenerateConfig>),
}

impl StoredRun {
    /// Reads the stored JSON text of a PNG's `clipguide` chunk.
    pub fn from_json(text: &str) -> Result<Self> {
        let bad = |problem: String| GuideError::invalid("stored run", problem);
        let v: Value = serde_json::from_str(text)
            .map_err(|e| bad(format!("the parameters chunk is not JSON: {e}")))?;
        let format = v.get("format").map(|f| f.as_u64());
        let config = v.get("config").cloned().unwrap_or_else(|| v.clone());
        let why = |e: serde_json::Error| {
            bad(format!(
                "the parameters do not read as format {}: {e}",
                format.flatten().unwrap_or(1)
            ))
        };
        match format {
            None => Ok(Self::V1(Box::new(
                serde_json::from_value(config).map_err(why)?,
            ))),
            Some(Some(2)) => Ok(Self::V2(Box::new(
                serde_json::from_value(config).map_err(why)?,
            ))),
            Some(f) => Err(bad(format!(
                "format {} is not one this build reads (1 to {FORMAT}): re-make it with the build that wrote it, or a newer clipguide",
                f.map_or_else(|| "(not a number)".to_string(), |f| f.to_string())
            ))),
        }
    }

    /// Reads the run stored in the PNG at `path`.
    pub fn from_png(path: &Path) -> Result<Self> {
        let text = read_png_text(path, PARAMS_KEY)?.ok_or_else(|| GuideError::Image {
            path: path.display().to_string(),
            problem: format!(
                "has no `{PARAMS_KEY}` text chunk: only PNGs written by `clipguide generate` can be re-made"
            ),
        })?;
        Self::from_json(&text).map_err(|e| GuideError::Image {
            path: path.display().to_string(),
            problem: e.to_string(),
        })
    }

    /// The run in today's terms.
    pub fn into_config(self) -> GenerateConfig {
        match self {
            Self::V1(c) => c.migrate(),
            Self::V2(c) => *c,
        }
    }

    /// The chunk text that stores `config` in the newest format (ASCII JSON).
    pub fn json(config: &GenerateConfig) -> Result<String> {
        let v = serde_json::json!({
            "generator": "clipguide",
            "format": FORMAT,
            "version": env!("CARGO_PKG_VERSION"),
            "config": config,
        });
        let text = serde_json::to_string(&v)
            .map_err(|e| GuideError::invalid("stored run", e.to_string()))?;
        Ok(ascii_json(&text))
    }
}

/// Format 1's parameterisation name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamNameV1 {
    Pixels,
    #[default]
    Fourier,
    Pyramid,
    Primitives,
}

/// Format 1's config, field for field as builds before 2026-12-06 wrote it (defaults too).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct ConfigV1 {
    pub width: usize,
    pub height: usize,
    #[serde(default)]
    pub param: ParamNameV1,
    #[serde(default = "v1_decay")]
    pub decay: f64,
    #[serde(default = "v1_levels")]
    pub levels: usize,
    #[serde(default = "v1_primitives")]
    pub primitives: usize,
    #[serde(default)]
    pub init_std: Option<f64>,
    #[serde(default)]
    pub init_image: Option<PathBuf>,
    #[serde(default)]
    pub init_weight: f32,
    #[serde(default)]
    pub image_prompts: Vec<ImagePrompt>,
    #[serde(default)]
    pub noise_prompt_weight: f32,
    #[serde(default)]
    pub palette: Option<Vec<[u8; 3]>>,
    #[serde(default)]
    pub primitive_shapes: bool,
    #[serde(default = "v1_edge")]
    pub primitive_edge: f64,
    #[serde(default = "v1_min_radius")]
    pub primitive_min_radius: f64,
    #[serde(default = "v1_starts")]
    pub starts: usize,
    #[serde(default = "v1_start_steps")]
    pub start_steps: usize,
    #[serde(default)]
    pub keep_best: bool,
    #[serde(default)]
    pub contrasts: Vec<String>,
    pub schedule: GuideSchedule,
}

// Format 1's defaults, written out: they must not follow today's constants.
fn v1_decay() -> f64 {
    1.5
}
fn v1_levels() -> usize {
    4
}
fn v1_primitives() -> usize {
    4
}
fn v1_edge() -> f64 {
    0.03
}
fn v1_min_radius() -> f64 {
    0.03
}
fn v1_starts() -> usize {
    1
}
fn v1_start_steps() -> usize {
    30
}

impl ConfigV1 {
    /// The same run in format 2: the flat settings of the parameterisation in use move into
    /// [`Param`] (those of the others, which never took effect, are dropped) and the
    /// selection's into [`Selection`].
    pub fn migrate(self) -> GenerateConfig {
        let param = match self.param {
            ParamNameV1::Pixels => Param::Pixels,
            ParamNameV1::Fourier => Param::Fourier { decay: self.decay },
            ParamNameV1::Pyramid => Param::Pyramid {
                levels: self.levels,
            },
            ParamNameV1::Primitives => Param::Primitives(PrimitivesSpec {
                count: self.primitives,
                palette: self.palette,
                outlines: self.primitive_shapes,
                edge: self.primitive_edge,
                min_radius: self.primitive_min_radius,
            }),
        };
        GenerateConfig {
            width: self.width,
            height: self.height,
            param,
            init_std: self.init_std,
            init_image: self.init_image,
            init_weight: self.init_weight,
            image_prompts: self.image_prompts,
            noise_prompt_weight: self.noise_prompt_weight,
            selection: Selection {
                starts: self.starts,
                start_steps: self.start_steps,
                keep_best: self.keep_best,
                contrasts: self.contrasts,
            },
            schedule: self.schedule,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_1_migrates_and_format_2_round_trips() {
        let v1 = r#"{"generator":"clipguide","version":"0.1.0","config":{"width":64,"height":32,
            "param":"primitives","primitives":1,"palette":[[1,2,3]],"primitive_shapes":true,
            "primitive_edge":0.012,"starts":9,"start_steps":40,"keep_best":true,
            "contrasts":["x"],"schedule":{"steps":5,"prompts":"0:a"}}}"#;
        let c = StoredRun::from_json(v1).unwrap().into_config();
        assert_eq!((c.width, c.height), (64, 32));
        assert_eq!(
            c.param,
            Param::Primitives(PrimitivesSpec {
                count: 1,
                palette: Some(vec![[1, 2, 3]]),
                outlines: true,
                edge: 0.012,
                min_radius: 0.03,
            })
        );
        assert_eq!(
            c.selection,
            Selection {
                starts: 9,
                start_steps: 40,
                keep_best: true,
                contrasts: vec!["x".into()],
            }
        );
        let text = StoredRun::json(&c).unwrap();
        assert!(text.contains(r#""format":2"#), "{text}");
        let back = StoredRun::from_json(&text).unwrap();
        assert!(matches!(back, StoredRun::V2(_)));
        assert_eq!(back.into_config(), c);
        // The oldest layout: the config at the top level.
        let bare = r#"{"width":8,"height":8,"schedule":{"steps":3,"prompts":"0:a"}}"#;
        let c = StoredRun::from_json(bare).unwrap().into_config();
        assert_eq!(c.param, Param::Fourier { decay: 1.5 });
    }

    #[test]
    fn unknown_formats_and_fields_are_refused_by_name() {
        let e = StoredRun::from_json(r#"{"format":3,"config":{}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("format 3") && e.contains("1 to 2"), "{e}");
        let e = StoredRun::from_json(
            r#"{"format":2,"config":{"width":8,"height":8,"param":{"kind":"fourier","decay":1.0},"colour":1,"schedule":{"steps":3,"prompts":"0:a"}}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("colour") && e.contains("format 2"), "{e}");
        let e = StoredRun::from_json("not json").unwrap_err().to_string();
        assert!(e.contains("not JSON"), "{e}");
    }
}
