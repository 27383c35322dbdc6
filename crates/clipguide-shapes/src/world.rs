//! The training world's mixture: how often an item is drawn with a varied outline and
//! rasteriser, is a picture (objects, skies, grounds) instead of shapes, goes through a style,
//! or is captioned in Japanese. Settings of this world live here, not in the trainer.
//!
//! With every probability at 0 an item is exactly the [`ShapesDataset`] item of the first world,
//! so runs and checkpoints made before the mix existed replay unchanged: every new choice is
//! drawn from a generator of its own, never from the item's scene stream.

use image::RgbImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::captions_ja::captions_in;
use crate::dataset::{DatasetError, ShapesDataset};
use crate::drawing::{render_drawn, Drawing, DrawnScene};
use crate::language::Language;
use crate::picture::{picture_captions, render_picture, PictureSpec};
use crate::render::render;
use crate::scene::SceneSpec;
use crate::search_space::picture_moves;
use crate::style::{apply_style, Style};
use rand::seq::IndexedRandom;

/// Probabilities of the world's variations, per item.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorldMix {
    /// An item's scene drawn with a random [`Drawing`] (outline, rasteriser, edges) rather
    /// than the canonical look.
    #[serde(default)]
    pub varied_drawing: f64,
    /// An item is a picture ([`PictureSpec`]: objects on a plain colour or in a landscape, in
    /// one of the styles) instead of a shapes scene.
    #[serde(default)]
    pub pictures: f64,
    /// An item's captions are Japanese instead of English (same drawing).
    #[serde(default)]
    pub japanese: f64,
    /// A shapes scene goes through a painting style (oil, watercolour, pixel art) named in its
    /// captions. Pencil sketches are left to pictures: they drop colour, and shapes captions
    /// name colours.
    #[serde(default)]
    pub styled: f64,
    /// An odd item that follows a picture is, with this probability, the same picture with its
    /// first object's kind or its style changed (and captions in the same language): a pair in
    /// one batch that only the object or the style tells apart, so the loss cannot separate
    /// pictures by backdrop alone.
    #[serde(default)]
    pub picture_pairs: f64,
}

/// Styles a shapes scene may be drawn in (see [`WorldMix::styled`]).
const SHAPE_STYLES: [Style; 3] = [Style::OilPainting, Style::Watercolour, Style::PixelArt];

impl WorldMix {
    /// The mix the shipped built-in model was trained on (BENCHMARKS.md has the recipe); the
    /// vocabulary it knows is this mix's ([`crate::training_vocabulary`]).
    /// (Its last phase; the first had pictures at 0.35 and no pairs.)
    pub const SHIPPED: WorldMix = WorldMix {
        varied_drawing: 0.6,
        pictures: 0.5,
        japanese: 0.4,
        styled: 0.2,
        picture_pairs: 0.8,
    };

    /// The first world: canonical drawings of shapes, English captions.
    pub const CANONICAL: WorldMix = WorldMix {
        varied_drawing: 0.0,
        pictures: 0.0,
        japanese: 0.0,
        styled: 0.0,
        picture_pairs: 0.0,
    };

    /// Refuses a probability outside [0, 1], naming the setting.
    pub fn check(&self) -> Result<(), DatasetError> {
        for (field, value) in [
            ("varied_drawing", self.varied_drawing),
            ("pictures", self.pictures),
            ("japanese", self.japanese),
            ("styled", self.styled),
            ("picture_pairs", self.picture_pairs),
        ] {
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

    /// How `scene` is drawn under this mix: a random drawing with probability `varied_drawing`.
    pub fn drawing(&self, scene: &SceneSpec, rng: &mut ChaCha8Rng) -> Drawing {
        if self.varied_drawing > 0.0 && rng.random_bool(self.varied_drawing) {
            Drawing::random(scene, rng)
        } else {
            Drawing::plain(scene)
        }
    }

    /// Draws `scene` under this mix (see [`Self::drawing`]).
    pub fn draw(&self, scene: &SceneSpec, size: u32, rng: &mut ChaCha8Rng) -> RgbImage {
        let drawing = self.drawing(scene, rng);
        render_drawn(
            &DrawnScene {
                scene: scene.clone(),
                drawing,
            },
            size,
        )
    }
}

/// What a world item shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum WorldContent {
    /// A shapes scene, in `style` (Flat unless [`WorldMix::styled`] chose one).
    Shapes {
        scene: SceneSpec,
        style: Style,
    },
    Picture(PictureSpec),
}

/// A training item of the mixed world.
#[derive(Clone, Debug)]
pub struct WorldItem {
    pub image: RgbImage,
    /// Canonical first, as [`ShapesDataset::get`], in `language`.
    pub captions: Vec<String>,
    pub language: Language,
    pub content: WorldContent,
}

/// A shapes caption in a style: the style's name around it, as pictures' captions say it.
pub fn styled_caption(caption: &str, style: Style, language: Language, variant: usize) -> String {
    if style == Style::Flat {
        return caption.to_string();
    }
    match language {
        Language::English => {
            let name = style.name();
            let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "an"
            } else {
                "a"
            };
            match (variant % 2, style) {
                (0, Style::PixelArt) => format!("pixel art of {caption}"),
                (0, _) => format!("{article} {name} of {caption}"),
                _ => format!("{caption}, {name}"),
            }
        }
        Language::Japanese => match variant % 2 {
            0 => format!("{caption}の{}", style.ja_name()),
            _ => format!("{}：{caption}", style.ja_name()),
        },
    }
}

impl ShapesDataset {
    /// The generator of item `index`'s variations: separate from its scene stream, so that a
    /// mix of all zeros leaves the item as it was.
    fn variation_rng(&self, index: usize) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed() ^ 0x7A3D_91C4_E25B_0F68);
        rng.set_stream(index as u64);
        rng
    }

    /// Everything item `index` of the world under `mix` is, short of its pixels: what it
    /// shows, its captions, and how the shapes (if any) are drawn and styled.
    fn describe_world(&self, index: usize, mix: &WorldMix) -> Described {
        if index % 2 == 1 && mix.picture_pairs > 0.0 {
            if let Some(pair) = self.picture_pair(index, mix) {
                return pair;
            }
        }
        let mut rng = self.variation_rng(index);
        let language = if mix.japanese > 0.0 && rng.random_bool(mix.japanese) {
            Language::Japanese
        } else {
            Language::English
        };
        if mix.pictures > 0.0 && rng.random_bool(mix.pictures) {
            let spec = PictureSpec::random(&mut rng);
            let captions = picture_captions(&spec, language, &mut rng);
            return Described {
                content: WorldContent::Picture(spec),
                language,
                captions,
                drawing: None,
                style_seed: 0,
            };
        }
        let (scene, english) = self.describe(index);
        let drawing = mix.drawing(&scene, &mut rng);
        let mut captions = match language {
            Language::English => english,
            Language::Japanese => captions_in(&scene, language, &mut rng),
        };
        let style = if mix.styled > 0.0 && rng.random_bool(mix.styled) {
            SHAPE_STYLES[rng.random_range(0..SHAPE_STYLES.len())]
        } else {
            Style::Flat
        };
        let mut style_seed = 0;
        if style != Style::Flat {
            style_seed = rng.random();
            for (k, c) in captions.iter_mut().enumerate() {
                *c = styled_caption(c, style, language, k);
            }
        }
        Described {
            content: WorldContent::Shapes { scene, style },
            language,
            captions,
            drawing: Some(drawing),
            style_seed,
        }
    }

    /// Item `index` (odd) as the previous item's picture with one thing changed, when the
    /// previous item is a picture and the pair is drawn (see [`WorldMix::picture_pairs`]).
    fn picture_pair(&self, index: usize, mix: &WorldMix) -> Option<Described> {
        let previous = self.describe_world(index - 1, mix);
        let WorldContent::Picture(spec) = &previous.content else {
            return None;
        };
        let mut rng = self.variation_rng(index);
        if !rng.random_bool(mix.picture_pairs) {
            return None;
        }
        let moves = picture_moves(spec);
        // Group 1 is the first object's kind, the last group the style.
        let mut choices: Vec<WorldContent> = moves.get(1).cloned().unwrap_or_default();
        choices.extend(moves.last().cloned().unwrap_or_default());
        let WorldContent::Picture(changed) = choices.choose(&mut rng)?.clone() else {
            return None;
        };
        let captions = picture_captions(&changed, previous.language, &mut rng);
        Some(Described {
            content: WorldContent::Picture(changed),
            language: previous.language,
            captions,
            drawing: None,
            style_seed: 0,
        })
    }

    /// The language and captions of item `index` under `mix`, without drawing it (cheap).
    pub fn world_captions(&self, index: usize, mix: &WorldMix) -> (Language, Vec<String>) {
        let d = self.describe_world(index, mix);
        (d.language, d.captions)
    }

    /// Item `index` of the world under `mix`.
    pub fn world_item(&self, index: usize, mix: &WorldMix) -> WorldItem {
        let d = self.describe_world(index, mix);
        let image = match (&d.content, d.drawing) {
            (WorldContent::Shapes { scene, style }, Some(drawing)) => {
                let image = render_drawn(
                    &DrawnScene {
                        scene: scene.clone(),
                        drawing,
                    },
                    self.size(),
                );
                if *style == Style::Flat {
                    image
                } else {
                    apply_style(&image, *style, d.style_seed)
                }
            }
            (WorldContent::Picture(spec), _) => render_picture(spec, self.size()),
            (WorldContent::Shapes { scene, .. }, None) => render(scene, self.size()),
        };
        WorldItem {
            image,
            captions: d.captions,
            language: d.language,
            content: d.content,
        }
    }
}

/// [`ShapesDataset::describe_world`]'s answer.
struct Described {
    content: WorldContent,
    language: Language,
    captions: Vec<String>,
    drawing: Option<Drawing>,
    style_seed: u64,
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
            assert_eq!(item.language, Language::English);
            assert_eq!(
                (item.image, item.captions, item.content),
                (
                    image,
                    captions,
                    WorldContent::Shapes {
                        scene,
                        style: Style::Flat
                    }
                )
            );
        }
    }

    #[test]
    fn a_full_mix_varies_drawings_but_not_scenes_or_captions() {
        let data = ShapesDataset::new(9, 32).unwrap();
        let mix = WorldMix {
            varied_drawing: 1.0,
            ..WorldMix::CANONICAL
        };
        let mut differ = 0;
        for i in 0..20 {
            let item = data.world_item(i, &mix);
            let (image, captions, scene) = data.get(i);
            assert_eq!(item.captions, captions);
            assert_eq!(
                item.content,
                WorldContent::Shapes {
                    scene,
                    style: Style::Flat
                }
            );
            differ += usize::from(item.image != image);
            assert_eq!(item.image, data.world_item(i, &mix).image, "reproducible");
        }
        assert!(differ >= 18, "{differ} of 20 drawn differently");
    }

    #[test]
    fn probabilities_outside_the_unit_interval_are_refused() {
        let err = WorldMix {
            styled: 1.5,
            ..WorldMix::CANONICAL
        }
        .check()
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("styled") && err.contains("between 0 and 1"),
            "{err}"
        );
    }

    #[test]
    fn a_mixed_world_holds_pictures_styles_and_japanese_in_its_proportions() {
        let data = ShapesDataset::new(4, 32).unwrap();
        let mix = WorldMix {
            varied_drawing: 0.5,
            pictures: 0.4,
            japanese: 0.3,
            styled: 0.5,
            picture_pairs: 0.0,
        };
        let n = 400;
        let (mut pictures, mut japanese, mut styled_shapes, mut shapes) = (0, 0, 0, 0);
        for i in 0..n {
            let item = data.world_item(i, &mix);
            assert_eq!(item.image.dimensions(), (32, 32));
            let caption_language = Language::of_text(&item.captions[0]);
            assert_eq!(caption_language, item.language, "{:?}", item.captions);
            japanese += usize::from(item.language == Language::Japanese);
            match &item.content {
                WorldContent::Picture(_) => pictures += 1,
                WorldContent::Shapes { style, .. } => {
                    shapes += 1;
                    if *style != Style::Flat {
                        styled_shapes += 1;
                        let name = match item.language {
                            Language::English => style.name(),
                            Language::Japanese => style.ja_name(),
                        };
                        assert!(
                            item.captions.iter().all(|c| c.contains(name)),
                            "{style:?}: {:?}",
                            item.captions
                        );
                    }
                }
            }
        }
        let near =
            |count: usize, total: usize, p: f64| (count as f64 / total as f64 - p).abs() < 0.08;
        assert!(near(pictures, n, 0.4), "{pictures} pictures of {n}");
        assert!(near(japanese, n, 0.3), "{japanese} Japanese of {n}");
        assert!(
            near(styled_shapes, shapes, 0.5),
            "{styled_shapes} of {shapes}"
        );
    }

    #[test]
    fn picture_pairs_differ_from_their_partner_in_object_or_style_only() {
        let data = ShapesDataset::new(6, 32).unwrap();
        let mix = WorldMix {
            pictures: 1.0,
            picture_pairs: 1.0,
            japanese: 0.5,
            ..WorldMix::CANONICAL
        };
        let mut pairs = 0;
        for i in (0..60).step_by(2) {
            let (a, b) = (data.world_item(i, &mix), data.world_item(i + 1, &mix));
            let (WorldContent::Picture(pa), WorldContent::Picture(pb)) = (&a.content, &b.content)
            else {
                panic!("pictures only at pictures 1.0");
            };
            assert_eq!(a.language, b.language);
            assert_ne!(pa, pb);
            assert_eq!(pa.backdrop, pb.backdrop);
            let kind_changed = pa.objects[0].kind != pb.objects[0].kind;
            assert!(kind_changed ^ (pa.style != pb.style), "{pa:?} vs {pb:?}");
            assert!(pb.is_consistent());
            pairs += 1;
        }
        assert_eq!(pairs, 30);
    }

    #[test]
    fn styled_captions_name_the_style_in_each_language() {
        let c = "a red circle on a blue background";
        assert_eq!(
            styled_caption(c, Style::OilPainting, Language::English, 0),
            "an oil painting of a red circle on a blue background"
        );
        assert_eq!(
            styled_caption(c, Style::PixelArt, Language::English, 1),
            "a red circle on a blue background, pixel art"
        );
        assert_eq!(styled_caption(c, Style::Flat, Language::English, 0), c);
        assert_eq!(
            styled_caption(
                "青い背景に赤い丸",
                Style::OilPainting,
                Language::Japanese,
                0
            ),
            "青い背景に赤い丸の油絵"
        );
    }
}
