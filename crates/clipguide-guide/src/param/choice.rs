//! [`Param`]: which parameterisation a run optimises, with the settings that belong to it.

use candle_core::Tensor;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{
    FourierImage, Parameterization, PixelImage, PrimitivesImage, PrimitivesSpec, PyramidImage,
};
use crate::error::{GuideError, Result};

/// The image parameterisation of a run and its own settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Param {
    /// [`PixelImage`]: one logit per pixel and channel.
    Pixels,
    /// [`FourierImage`]: a decorrelated spectrum whose frequencies are scaled by `1/f^decay`.
    Fourier {
        /// Frequency decay exponent.
        decay: f64,
    },
    /// [`PyramidImage`]: a sum of upsampled levels.
    Pyramid {
        /// Number of levels.
        levels: usize,
    },
    /// [`PrimitivesImage`]: soft primitives over a flat background.
    Primitives(PrimitivesSpec),
}

impl Param {
    /// Fourier decay when none is given: 1.5 leaves less high-frequency noise than lucid's
    /// 1.0, which PyTorch measurements found necessary for recognisable colour layouts.
    pub const DEFAULT_DECAY: f64 = 1.5;
    /// Pyramid depth when none is given.
    pub const DEFAULT_LEVELS: usize = 4;
    /// The names [`Self::with_defaults`] takes.
    pub const NAMES: [&'static str; 4] = ["pixels", "fourier", "pyramid", "primitives"];

    /// The parameterisation called `name` (`pixels`, `fourier`, `pyramid`, `primitives`; also
    /// `pixel` and `discs`) with its default settings.
    pub fn with_defaults(name: &str) -> Result<Self> {
        Ok(match name.trim().to_ascii_lowercase().as_str() {
            "pixels" | "pixel" => Self::Pixels,
            "fourier" => Self::Fourier {
                decay: Self::DEFAULT_DECAY,
            },
            "pyramid" => Self::Pyramid {
                levels: Self::DEFAULT_LEVELS,
            },
            "primitives" | "discs" => {
                Self::Primitives(PrimitivesSpec::new(PrimitivesImage::DEFAULT_COUNT))
            }
            other => {
                return Err(GuideError::invalid(
                    "parameterisation",
                    format!("`{other}`: expected pixels, fourier, pyramid or primitives"),
                ))
            }
        })
    }

    /// The name [`Self::with_defaults`] takes for this kind.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Pixels => "pixels",
            Self::Fourier { .. } => "fourier",
            Self::Pyramid { .. } => "pyramid",
            Self::Primitives(_) => "primitives",
        }
    }

    /// The primitives' settings, if this is the primitives parameterisation.
    pub fn primitives(&self) -> Option<&PrimitivesSpec> {
        match self {
            Self::Primitives(spec) => Some(spec),
            _ => None,
        }
    }

    /// The init std used when the config gives none: lucid's 0.01 for the spectrum, 0.1 for
    /// pixel logits, 0.1/levels per pyramid level (so the sum has a similar spread), and
    /// N(0, 1) colour logits for primitives (clearly different colours to start from).
    pub fn default_init_std(&self) -> f64 {
        match self {
            Self::Fourier { .. } => FourierImage::DEFAULT_STD,
            Self::Pixels => 0.1,
            Self::Pyramid { levels } => 0.1 / (*levels).max(1) as f64,
            Self::Primitives(_) => 1.0,
        }
    }

    /// Checks the settings, naming the one at fault.
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Pixels => Ok(()),
            Self::Fourier { decay } if !(decay.is_finite() && *decay >= 0.0) => {
                Err(GuideError::invalid(
                    "decay",
                    format!("{decay} must be a non-negative number (1.0-1.5 is common)"),
                ))
            }
            Self::Fourier { .. } => Ok(()),
            Self::Pyramid { levels: 0 } => Err(GuideError::invalid(
                "levels",
                "the pyramid needs at least 1 level",
            )),
            Self::Pyramid { .. } => Ok(()),
            Self::Primitives(spec) => spec.validate(),
        }
    }

    /// The parameterisation at `width × height`: from `init` (an RGB image `[1, 3, H, W]`)
    /// when given, else drawn from `rng` with std `std`. `start` is `(index, count)` of the
    /// run's starts; primitives place their discs by it ([`PrimitivesImage::from_spec`]).
    pub fn build(
        &self,
        (width, height): (usize, usize),
        std: f64,
        start: (usize, usize),
        init: Option<&Tensor>,
        rng: &mut ChaCha8Rng,
    ) -> Result<Box<dyn Parameterization>> {
        let (w, h) = (width, height);
        Ok(match (self, init) {
            (Self::Fourier { decay }, None) => {
                Box::new(FourierImage::random(w, h, *decay, std, rng)?)
            }
            (Self::Fourier { decay }, Some(rgb)) => Box::new(FourierImage::from_rgb(rgb, *decay)?),
            (Self::Pixels, None) => Box::new(PixelImage::random(w, h, std, rng)?),
            (Self::Pixels, Some(rgb)) => Box::new(PixelImage::from_rgb(rgb)?),
            (Self::Pyramid { levels }, None) => {
                Box::new(PyramidImage::random(w, h, *levels, std, rng)?)
            }
            (Self::Pyramid { levels }, Some(rgb)) => {
                Box::new(PyramidImage::from_rgb(rgb, *levels)?)
            }
            (Self::Primitives(spec), None) => {
                Box::new(PrimitivesImage::from_spec(w, h, spec, std, start, rng)?)
            }
            (Self::Primitives(_), Some(_)) => {
                return Err(GuideError::invalid(
                    "init image",
                    "the primitives parameterisation draws discs on a flat background and cannot start from an image: use the fourier, pixels or pyramid parameterisation with an init image",
                ))
            }
        })
    }
}

impl std::str::FromStr for Param {
    type Err = GuideError;
    fn from_str(s: &str) -> Result<Self> {
        Self::with_defaults(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_to_their_defaults_and_others_are_refused() {
        assert_eq!(
            "Pyramid".parse::<Param>().unwrap(),
            Param::Pyramid { levels: 4 }
        );
        assert_eq!("pixels".parse::<Param>().unwrap(), Param::Pixels);
        assert_eq!(
            "fourier".parse::<Param>().unwrap(),
            Param::Fourier { decay: 1.5 }
        );
        let p = "discs".parse::<Param>().unwrap();
        assert_eq!(p.primitives().map(|s| s.count), Some(4));
        for name in Param::NAMES {
            assert_eq!(name.parse::<Param>().unwrap().name(), name);
        }
        let err = "vqgan".parse::<Param>().unwrap_err().to_string();
        assert!(err.contains("vqgan") && err.contains("fourier"), "{err}");
    }

    #[test]
    fn stored_form_names_the_kind_and_carries_its_settings() {
        let p = Param::Fourier { decay: 1.0 };
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, r#"{"kind":"fourier","decay":1.0}"#);
        let prim: Param =
            serde_json::from_str(r#"{"kind":"primitives","count":2,"outlines":true}"#).unwrap();
        let spec = prim.primitives().unwrap();
        assert_eq!(
            (spec.count, spec.outlines, spec.edge),
            (2, true, PrimitivesImage::EDGE)
        );
        let e = serde_json::from_str::<Param>(r#"{"kind":"fourier","decay":1.0,"levels":2}"#)
            .unwrap_err();
        assert!(e.to_string().contains("levels"), "{e}");
    }
}
