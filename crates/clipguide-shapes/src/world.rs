//! The training world's mixture: how often an item is drawn with a varied outline and
//! rasteriser (and, as the world grows, a picture instead of shapes, a style, a Japanese
//! caption). Settings of this world live here, not in the trainer.
//!
//! With every probability at 0 an item is exactly the [`ShapesDataset`] item of the first world,
//! so runs and checkpoints made before the mix existed replay unchanged: every new choice is
//! drawn from a generator of its own, never from the item's scene stream.

use image::RgbImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::dataset::{DatasetError, ShapesDataset};
use crate::drawing::{render_drawn, Drawing, DrawnScene};
use crate::scene::SceneSpec;

/// Probabilities of the world's variations, per item.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorldMix {
    /// An item's scene drawn with a random [`Drawing`] (outline, rasteriser, edges) rather
    /// than the canonical look.
    #[serde(default)]
    pub varied_drawing: f64,
}

impl WorldMix {
    /// The first world: canonical drawings only.
    pub const CANONICAL: WorldMix = WorldMix {
        varied_drawing: 0.0,
    };

    /// Refuses a probability outside [0, 1], naming the setting.
    pub fn check(&self) -> Result<(), DatasetError> {
        for (field, value) in [("varied_drawing", self.varied_drawing)] {
            if !(0.0..=1.0).contains(&value) {
                return Err(DatasetError::InvalidConfig {
                    field,
                    value: value.to_string(),
                    fix: "use a probability between 0 and 1",
                });
            }
        }
        Ok(())
    }

    /// Draws `scene` under this mix: a random drawing with probability `varied_drawing`.
    pub fn draw(&self, scene: &SceneSpec, size: u32, rng: &mut ChaCha8Rng) -> RgbImage {
        let drawing = if self.varied_drawing > 0.0 && rng.random_bool(self.varied_drawing) {
            Drawing::random(scene, rng)
        } else {
            Drawing::plain(scene)
        };
        render_drawn(
            &DrawnScene {
                scene: scene.clone(),
                drawing,
            },
            size,
        )
    }
}

/// A training item of the mixed world.
#[derive(Clone, Debug)]
pub struct WorldItem {
    pub image: RgbImage,
    /// Canonical first, as [`ShapesDataset::get`].
    pub captions: Vec<String>,
    pub scene: SceneSpec,
}

impl ShapesDataset {
    /// The generator of item `index`'s variations: separate from its scene stream, so that a
    /// mix of all zeros leaves the item as it was.
    fn variation_rng(&self, index: usize) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed() ^ 0x7A3D_91C4_E25B_0F68);
        rng.set_stream(index as u64);
        rng
    }

    /// Item `index` of the world under `mix`.
    pub fn world_item(&self, index: usize, mix: &WorldMix) -> WorldItem {
        let (scene, captions) = self.describe(index);
        let mut rng = self.variation_rng(index);
        WorldItem {
            image: mix.draw(&scene, self.size(), &mut rng),
            captions,
            scene,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_mix_is_the_first_world() {
        let data = ShapesDataset::new(9, 32).unwrap();
        for i in 0..20 {
            let item = data.world_item(i, &WorldMix::CANONICAL);
            let (image, captions, scene) = data.get(i);
            assert_eq!((item.image, item.captions, item.scene), (image, captions, scene));
        }
    }

    #[test]
    fn a_full_mix_varies_drawings_but_not_scenes_or_captions() {
        let data = ShapesDataset::new(9, 32).unwrap();
        let mix = WorldMix {
            varied_drawing: 1.0,
        };
        let mut differ = 0;
        for i in 0..20 {
            let item = data.world_item(i, &mix);
            let (image, captions, scene) = data.get(i);
            assert_eq!((&item.captions, &item.scene), (&captions, &scene));
            differ += usize::from(item.image != image);
            assert_eq!(item.image, data.world_item(i, &mix).image, "reproducible");
        }
        assert!(differ >= 18, "{differ} of 20 drawn differently");
    }

    #[test]
    fn probabilities_outside_the_unit_interval_are_refused() {
        let err = WorldMix {
            varied_drawing: 1.5,
        }
        .check()
        .unwrap_err()
        .to_string();
        assert!(err.contains("varied_drawing") && err.contains("between 0 and 1"), "{err}");
    }
}
