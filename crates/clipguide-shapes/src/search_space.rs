//! The world as a space a CLIP can search ([`clipguide_guide::DrawnSpace`]): a point is a
//! shapes scene in a style, or a picture; its coordinates are the words a caption could name
//! (colours, shape, size, count, place, object kinds, backdrop, style). The built-in model's
//! `world` recipe is this space searched by [`clipguide_guide::search`]: the model's zero-shot
//! judgement picks every coordinate, so any prompt the world can draw (in either language)
//! is drawn, and nothing outside the world can be.

use image::RgbImage;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use clipguide_guide::{DrawnSpace, SearchSettings};

use crate::palette::Colour;
use crate::picture::{
    render_picture, Backdrop, Ground, ObjectKind, PictureObject, PictureSpec, Sky,
    MAX_PICTURE_OBJECTS,
};
use crate::render::render;
use crate::scene::{Placement, SceneConfig, SceneSpec, Shape, Size};
use crate::style::{apply_style, content_seed, Style};
use crate::world::WorldContent;

/// Styles a shapes scene can be searched in: a pencil sketch drops the colours its caption names.
const SHAPE_STYLES: [Style; 4] = [
    Style::Flat,
    Style::OilPainting,
    Style::Watercolour,
    Style::PixelArt,
];

/// The search settings of the `world` recipe: sixteen starts (half scenes, half pictures),
/// at most four passes each.
pub const WORLD_SEARCH: SearchSettings = SearchSettings {
    starts: 16,
    rounds: 4,
    seed: 0,
};

/// The built-in world as a search space.
#[derive(Clone, Copy, Debug, Default)]
pub struct WorldSpace;

/// A world-recipe run, as stored in the PNG it wrote: what was asked, how hard it searched,
/// and the drawing it found (which alone re-draws the image at any size).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredWorldDrawing {
    /// Format version of this record: bumped when a field changes meaning.
    pub version: u32,
    /// The weighted prompts searched for.
    pub prompts: Vec<(String, f32)>,
    pub search: SearchSettings,
    pub content: WorldContent,
}

impl StoredWorldDrawing {
    pub const VERSION: u32 = 1;
    /// The PNG text keyword the record is stored under.
    pub const PNG_KEYWORD: &'static str = "clipguide-world-drawing";
}

/// Draws a world point at `size`.
pub fn draw_content(content: &WorldContent, size: u32) -> RgbImage {
    match content {
        WorldContent::Shapes { scene, style } => {
            let image = render(scene, size);
            if *style == Style::Flat {
                image
            } else {
                apply_style(&image, *style, content_seed(scene))
            }
        }
        WorldContent::Picture(spec) => render_picture(spec, size),
    }
}

fn scene_moves(scene: &SceneSpec, style: Style) -> Vec<Vec<WorldContent>> {
    let shapes = |scenes: Vec<SceneSpec>| -> Vec<WorldContent> {
        scenes
            .into_iter()
            .map(|scene| WorldContent::Shapes { scene, style })
            .collect()
    };
    let Some(g) = scene.groups.first().copied() else {
        return Vec::new();
    };
    let with = |f: &dyn Fn(&mut SceneSpec)| {
        let mut s = scene.clone();
        f(&mut s);
        s
    };
    let mut groups = Vec::new();
    groups.push(shapes(
        Colour::ALL
            .iter()
            .filter(|&&c| c != scene.background && c != g.colour)
            .map(|&c| with(&|s| s.background = c))
            .collect(),
    ));
    groups.push(shapes(
        Colour::ALL
            .iter()
            .filter(|&&c| c != scene.background && c != g.colour)
            .map(|&c| with(&|s| s.groups[0].colour = c))
            .collect(),
    ));
    groups.push(shapes(
        Shape::ALL
            .iter()
            .filter(|&&k| k != g.shape)
            .map(|&k| with(&|s| s.groups[0].shape = k))
            .collect(),
    ));
    groups.push(shapes(
        Placement::ALL
            .iter()
            .filter(|&&p| p != g.placement)
            .map(|&p| with(&|s| s.groups[0].placement = p))
            .collect(),
    ));
    // Several objects are always small (as the world draws them), so size and count move
    // together: one single large, one single small, two or three small.
    groups.push(shapes(
        [
            (1u8, Size::Large),
            (1, Size::Small),
            (2, Size::Small),
            (3, Size::Small),
        ]
        .into_iter()
        .filter(|&(n, z)| (n, z) != (g.count, g.size))
        .map(|(n, z)| {
            with(&|s| {
                s.groups[0].count = n;
                s.groups[0].size = z;
            })
        })
        .collect(),
    ));
    groups.push(
        SHAPE_STYLES
            .iter()
            .filter(|&&st| st != style)
            .map(|&st| WorldContent::Shapes {
                scene: scene.clone(),
                style: st,
            })
            .collect(),
    );
    groups
}

fn all_backdrops() -> Vec<Backdrop> {
    let mut out: Vec<Backdrop> = Colour::ALL.iter().map(|&c| Backdrop::Plain(c)).collect();
    for sky in Sky::ALL {
        for ground in Ground::ALL {
            out.push(Backdrop::Landscape { sky, ground });
        }
    }
    out
}

/// Moves from a picture, grouped by coordinate: backdrop; per object its kind, placement, size;
/// objects added or removed; style (in this order).
pub(crate) fn picture_moves(spec: &PictureSpec) -> Vec<Vec<WorldContent>> {
    let valid = |s: PictureSpec| s.is_consistent().then_some(WorldContent::Picture(s));
    let with = |f: &dyn Fn(&mut PictureSpec)| {
        let mut s = spec.clone();
        f(&mut s);
        valid(s)
    };
    let mut groups = Vec::new();
    groups.push(
        all_backdrops()
            .into_iter()
            .filter(|&b| b != spec.backdrop)
            .filter_map(|b| with(&|s| s.backdrop = b))
            .collect(),
    );
    for (i, o) in spec.objects.iter().enumerate() {
        groups.push(
            ObjectKind::ALL
                .iter()
                .filter(|&&k| k != o.kind)
                .filter_map(|&k| {
                    with(&|s| {
                        s.objects[i] = PictureObject {
                            kind: k,
                            ..PictureObject::plain(k, o.placement, o.size)
                        }
                    })
                })
                .collect(),
        );
        groups.push(
            Placement::ALL
                .iter()
                .filter(|&&p| p != o.placement)
                .filter_map(|&p| with(&|s| s.objects[i].placement = p))
                .collect(),
        );
        groups.push(
            Size::ALL
                .iter()
                .filter(|&&z| z != o.size)
                .filter_map(|&z| with(&|s| s.objects[i].size = z))
                .collect(),
        );
    }
    // Add an object (each kind at each place it fits), or take one away.
    let mut edits: Vec<WorldContent> = Vec::new();
    if spec.objects.len() < MAX_PICTURE_OBJECTS {
        for kind in ObjectKind::ALL {
            for placement in Placement::ALL {
                if let Some(c) = with(&|s| {
                    s.objects
                        .push(PictureObject::plain(kind, placement, Size::Small))
                }) {
                    edits.push(c);
                }
            }
        }
    }
    if spec.objects.len() > 1 {
        for i in 0..spec.objects.len() {
            if let Some(c) = with(&|s| {
                s.objects.remove(i);
            }) {
                edits.push(c);
            }
        }
    }
    groups.push(edits);
    groups.push(
        Style::ALL
            .iter()
            .filter(|&&st| st != spec.style)
            .filter_map(|&st| with(&|s| s.style = st))
            .collect(),
    );
    groups
}

impl DrawnSpace for WorldSpace {
    type Point = WorldContent;

    fn starts(&self, count: usize, rng: &mut ChaCha8Rng) -> Vec<WorldContent> {
        (0..count)
            .map(|k| {
                if k % 2 == 0 {
                    WorldContent::Shapes {
                        scene: SceneSpec::random_with(rng, &SceneConfig::single_group()),
                        style: Style::Flat,
                    }
                } else {
                    WorldContent::Picture(PictureSpec::random(rng))
                }
            })
            .collect()
    }

    fn moves(&self, point: &WorldContent) -> Vec<Vec<WorldContent>> {
        match point {
            WorldContent::Shapes { scene, style } => scene_moves(scene, *style),
            WorldContent::Picture(spec) => picture_moves(spec),
        }
    }

    fn draw(&self, point: &WorldContent, size: u32) -> RgbImage {
        draw_content(point, size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn every_move_changes_one_thing_and_stays_drawable() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let starts = WorldSpace.starts(12, &mut rng);
        assert!(starts.iter().any(|s| matches!(s, WorldContent::Picture(_))));
        assert!(starts
            .iter()
            .any(|s| matches!(s, WorldContent::Shapes { .. })));
        for start in &starts {
            let groups = WorldSpace.moves(start);
            assert!(groups.len() >= 5, "{start:?}");
            for group in &groups {
                for m in group {
                    assert_ne!(m, start);
                    match m {
                        WorldContent::Picture(p) => assert!(p.is_consistent(), "{p:?}"),
                        WorldContent::Shapes { scene, style } => {
                            let g = scene.groups[0];
                            assert_ne!(g.colour, scene.background);
                            assert!(g.count == 1 || g.size == Size::Small);
                            assert_ne!(*style, Style::PencilSketch);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_moves_reach_every_word_of_a_scene() {
        let scene = SceneSpec {
            background: Colour::Blue,
            pattern: None,
            groups: vec![crate::ObjectGroup {
                shape: Shape::Circle,
                colour: Colour::Red,
                size: Size::Large,
                count: 1,
                placement: Placement::Center,
                jitter: [0.0, 0.0],
            }],
        };
        let moves: Vec<WorldContent> = WorldSpace
            .moves(&WorldContent::Shapes {
                scene,
                style: Style::Flat,
            })
            .concat();
        let reach = |f: &dyn Fn(&SceneSpec, Style) -> bool| {
            moves.iter().any(|m| match m {
                WorldContent::Shapes { scene, style } => f(scene, *style),
                _ => false,
            })
        };
        assert!(reach(&|s, _| s.background == Colour::Yellow));
        assert!(reach(&|s, _| s.groups[0].colour == Colour::Green));
        assert!(reach(&|s, _| s.groups[0].shape == Shape::Star));
        assert!(reach(&|s, _| s.groups[0].placement == Placement::TopLeft));
        assert!(reach(&|s, _| s.groups[0].count == 3));
        assert!(reach(&|_, st| st == Style::OilPainting));
    }

    #[test]
    fn pictures_can_gain_and_lose_objects_and_change_style() {
        let spec = PictureSpec {
            backdrop: Backdrop::Landscape {
                sky: Sky::Night,
                ground: Ground::Snow,
            },
            objects: vec![PictureObject::plain(
                ObjectKind::House,
                Placement::Bottom,
                Size::Large,
            )],
            style: Style::Flat,
        };
        let moves = WorldSpace.moves(&WorldContent::Picture(spec)).concat();
        let pictures: Vec<&PictureSpec> = moves
            .iter()
            .filter_map(|m| match m {
                WorldContent::Picture(p) => Some(p),
                _ => None,
            })
            .collect();
        assert!(pictures
            .iter()
            .any(|p| p.objects.iter().any(|o| o.kind == ObjectKind::Pagoda)));
        assert!(pictures
            .iter()
            .any(|p| p.objects.iter().any(|o| o.kind == ObjectKind::Moon)));
        assert!(pictures.iter().any(|p| p.style == Style::OilPainting));
        assert!(pictures.iter().any(|p| matches!(
            p.backdrop,
            Backdrop::Landscape {
                sky: Sky::Aurora,
                ..
            }
        )));
        // A sun cannot be added to a night sky.
        assert!(!pictures
            .iter()
            .any(|p| p.objects.iter().any(|o| o.kind == ObjectKind::Sun)));
    }

    #[test]
    fn a_point_draws_the_same_bytes_every_time_and_styles_show() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let start = WorldSpace.starts(1, &mut rng).remove(0);
        assert_eq!(draw_content(&start, 64), draw_content(&start, 64));
        if let WorldContent::Shapes { scene, .. } = &start {
            let flat = draw_content(
                &WorldContent::Shapes {
                    scene: scene.clone(),
                    style: Style::Flat,
                },
                64,
            );
            let oil = draw_content(
                &WorldContent::Shapes {
                    scene: scene.clone(),
                    style: Style::OilPainting,
                },
                64,
            );
            assert_ne!(flat, oil);
        } else {
            panic!("the first start is a shapes scene");
        }
    }

    #[test]
    fn stored_drawings_of_version_1_still_read() {
        // Written by this version; a later format must keep reading it.
        let json = r#"{"version":1,"prompts":[["a yellow star, oil painting",1.0]],"search":{"starts":16,"rounds":4,"seed":3},"content":{"Shapes":{"scene":{"background":"blue","pattern":null,"groups":[{"shape":"star","colour":"yellow","size":"large","count":1,"placement":"center","jitter":[0.0,0.0]}]},"style":"oil_painting"}}}"#;
        let stored: StoredWorldDrawing = serde_json::from_str(json).unwrap();
        assert_eq!(stored.version, 1);
        assert_eq!(stored.search.seed, 3);
        assert_eq!(stored.prompts[0].1, 1.0);
        match stored.content {
            WorldContent::Shapes { scene, style } => {
                assert_eq!(style, Style::OilPainting);
                assert_eq!(scene.groups[0].shape, Shape::Star);
            }
            other => panic!("{other:?}"),
        }
    }
}
