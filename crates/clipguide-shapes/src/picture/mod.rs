//! The composed-picture world: scenes with things in them (sunflowers, a pagoda, the moon) on a
//! plain background or in a landscape, drawn in one of five [`Style`]s and captioned in English
//! and Japanese.
//!
//! A [`PictureSpec`] holds every random choice, so [`render_picture`], [`picture_captions`] and
//! [`picture_probes`] are pure functions of it. Composition follows a few rules that keep
//! captions true and pictures plausible ([`fits`]): sky things in the sky band, the sun by day or
//! at sunset, the moon by night, flowers only on grass, only mountains rising from the sea.

mod captions;
mod draw;

pub(crate) use captions::japanese_words;
pub use captions::{picture_canonical_caption, picture_captions, picture_probes};
pub use draw::render_picture;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::palette::Colour;
use crate::scene::{Placement, Size};
use crate::style::Style;

/// The things a picture can show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Sunflower,
    Tulip,
    Daisy,
    Tree,
    House,
    Pagoda,
    ToriiGate,
    Mountain,
    Sun,
    Moon,
    Cloud,
}

impl ObjectKind {
    pub const ALL: [ObjectKind; 11] = [
        ObjectKind::Sunflower,
        ObjectKind::Tulip,
        ObjectKind::Daisy,
        ObjectKind::Tree,
        ObjectKind::House,
        ObjectKind::Pagoda,
        ObjectKind::ToriiGate,
        ObjectKind::Mountain,
        ObjectKind::Sun,
        ObjectKind::Moon,
        ObjectKind::Cloud,
    ];

    /// Singular caption word ("torii gate").
    pub const fn name(self) -> &'static str {
        match self {
            ObjectKind::Sunflower => "sunflower",
            ObjectKind::Tulip => "tulip",
            ObjectKind::Daisy => "daisy",
            ObjectKind::Tree => "tree",
            ObjectKind::House => "house",
            ObjectKind::Pagoda => "pagoda",
            ObjectKind::ToriiGate => "torii gate",
            ObjectKind::Mountain => "mountain",
            ObjectKind::Sun => "sun",
            ObjectKind::Moon => "moon",
            ObjectKind::Cloud => "cloud",
        }
    }

    /// Plural caption word ("daisies").
    pub const fn plural(self) -> &'static str {
        match self {
            ObjectKind::Sunflower => "sunflowers",
            ObjectKind::Tulip => "tulips",
            ObjectKind::Daisy => "daisies",
            ObjectKind::Tree => "trees",
            ObjectKind::House => "houses",
            ObjectKind::Pagoda => "pagodas",
            ObjectKind::ToriiGate => "torii gates",
            ObjectKind::Mountain => "mountains",
            ObjectKind::Sun => "suns",
            ObjectKind::Moon => "moons",
            ObjectKind::Cloud => "clouds",
        }
    }

    /// The Japanese word (五重塔).
    pub const fn ja_name(self) -> &'static str {
        match self {
            ObjectKind::Sunflower => "ひまわり",
            ObjectKind::Tulip => "チューリップ",
            ObjectKind::Daisy => "デイジー",
            ObjectKind::Tree => "木",
            ObjectKind::House => "家",
            ObjectKind::Pagoda => "五重塔",
            ObjectKind::ToriiGate => "鳥居",
            ObjectKind::Mountain => "山",
            ObjectKind::Sun => "太陽",
            ObjectKind::Moon => "月",
            ObjectKind::Cloud => "雲",
        }
    }

    /// The Japanese counter word (本 for flowers and trees: 二本のひまわり).
    pub const fn ja_counter(self) -> &'static str {
        match self {
            ObjectKind::Sunflower | ObjectKind::Tulip | ObjectKind::Daisy | ObjectKind::Tree => {
                "本"
            }
            ObjectKind::House => "軒",
            ObjectKind::Pagoda | ObjectKind::ToriiGate => "基",
            ObjectKind::Mountain | ObjectKind::Sun | ObjectKind::Moon | ObjectKind::Cloud => "つ",
        }
    }

    /// Sky things: drawn in the sky band of a landscape.
    pub const fn is_sky(self) -> bool {
        matches!(self, ObjectKind::Sun | ObjectKind::Moon | ObjectKind::Cloud)
    }

    /// Ground things: standing on the ground of a landscape (the mountain rises from the horizon).
    pub const fn is_ground(self) -> bool {
        !self.is_sky()
    }

    pub const fn is_flower(self) -> bool {
        matches!(
            self,
            ObjectKind::Sunflower | ObjectKind::Tulip | ObjectKind::Daisy
        )
    }

    /// Things that make a picture "Kyoto".
    pub const fn is_kyoto(self) -> bool {
        matches!(self, ObjectKind::Pagoda | ObjectKind::ToriiGate)
    }

    /// There is one sun and one moon: captions say "the sun", and a picture never shows two.
    pub const fn is_unique(self) -> bool {
        matches!(self, ObjectKind::Sun | ObjectKind::Moon)
    }

    /// Parses a singular or plural English word, or the Japanese word.
    pub fn from_word(word: &str) -> Option<ObjectKind> {
        let lower = word.trim().to_ascii_lowercase();
        Self::ALL
            .iter()
            .copied()
            .find(|k| k.name() == lower || k.plural() == lower || k.ja_name() == word.trim())
    }

    /// Plain background colours the thing stays visible on: never its own main colours.
    pub fn plain_backgrounds(self) -> Vec<Colour> {
        let clash: &[Colour] = match self {
            ObjectKind::Sunflower => &[Colour::Yellow, Colour::Orange, Colour::Brown],
            ObjectKind::Tulip => &[Colour::Red, Colour::Pink, Colour::Purple, Colour::Orange],
            ObjectKind::Daisy => &[Colour::White, Colour::Yellow],
            ObjectKind::Tree => &[Colour::Green, Colour::Brown],
            ObjectKind::House => &[Colour::White, Colour::Red, Colour::Brown],
            ObjectKind::Pagoda => &[Colour::Black, Colour::Brown, Colour::Gray],
            ObjectKind::ToriiGate => &[Colour::Red, Colour::Orange],
            ObjectKind::Mountain => &[Colour::Gray, Colour::Blue, Colour::White],
            ObjectKind::Sun => &[Colour::Yellow, Colour::Orange, Colour::White],
            ObjectKind::Moon => &[Colour::Yellow, Colour::White],
            ObjectKind::Cloud => &[Colour::White, Colour::Gray],
        };
        Colour::ALL
            .iter()
            .copied()
            .filter(|c| !clash.contains(c))
            .collect()
    }
}

/// The sky of a landscape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sky {
    Day,
    Sunset,
    Night,
    /// A starry night with the northern lights.
    Aurora,
}

impl Sky {
    pub const ALL: [Sky; 4] = [Sky::Day, Sky::Sunset, Sky::Night, Sky::Aurora];

    pub const fn is_night(self) -> bool {
        matches!(self, Sky::Night | Sky::Aurora)
    }
}

/// The ground of a landscape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ground {
    Grass,
    Snow,
    Ice,
    Sea,
}

impl Ground {
    pub const ALL: [Ground; 4] = [Ground::Grass, Ground::Snow, Ground::Ice, Ground::Sea];

    pub const fn is_frozen(self) -> bool {
        matches!(self, Ground::Snow | Ground::Ice)
    }
}

/// What is behind the objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backdrop {
    /// One flat colour: "a sunflower on a blue background".
    Plain(Colour),
    /// Sky above the horizon ([`HORIZON`]), ground below.
    Landscape { sky: Sky, ground: Ground },
}

/// Height of the horizon in a landscape, as a fraction of the image side from the top.
pub const HORIZON: f32 = 0.6;

/// One thing in a picture, with every drawing variation decided up front.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PictureObject {
    pub kind: ObjectKind,
    /// Its cell of the 3×3 grid. In a landscape the row follows from the kind (see [`fits`]).
    pub placement: Placement,
    pub size: Size,
    /// Multiplies the size class's height: 0.85..=1.15 in generated pictures.
    pub scale: f32,
    /// Offset from the cell centre, in fractions of the image side (|j| ≤ 0.04).
    pub jitter: [f32; 2],
    /// A proportion of the drawing, 0.85..=1.15: width of a house, tree or mountain, size of a
    /// flower's centre, length of a torii gate's beams.
    pub aspect: f32,
    /// Rotation in degrees (flowers, clouds and the moon lean a little; buildings stay upright).
    pub tilt: f32,
    /// Petals of a flower, rays of the sun (ignored by things without any).
    pub petals: u8,
    /// A discrete drawing variant: tulip colour, round or conical tree, house colours,
    /// which way the crescent faces, pagoda wood.
    pub variant: u8,
    /// Colour jitter added to the main colours, per channel.
    pub tint: [i8; 3],
}

/// Everything that determines one composed picture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PictureSpec {
    pub backdrop: Backdrop,
    /// Drawn back to front: mountains, sky things, then ground things from far to near.
    pub objects: Vec<PictureObject>,
    pub style: Style,
}

/// Whether `kind` may stand at `placement` on `backdrop`: the composition rules.
///
/// On a plain background anything goes whose colours the background does not swallow. In a
/// landscape sky things live in the top row (the sun only by day or at sunset, the moon only at
/// night), the mountain rises from the horizon in the middle row, and ground things stand in
/// the middle or bottom row: buildings and trees on anything but the sea, flowers only on grass.
pub fn fits(kind: ObjectKind, backdrop: Backdrop, placement: Placement) -> bool {
    match backdrop {
        Backdrop::Plain(colour) => kind.plain_backgrounds().contains(&colour),
        Backdrop::Landscape { sky, ground } => {
            let row = placement.cell().1;
            match kind {
                ObjectKind::Sun => !sky.is_night() && row == 0,
                ObjectKind::Moon => sky.is_night() && row == 0,
                ObjectKind::Cloud => row == 0,
                ObjectKind::Mountain => row == 1,
                ObjectKind::Sunflower | ObjectKind::Tulip | ObjectKind::Daisy => {
                    ground == Ground::Grass && row >= 1
                }
                ObjectKind::Tree
                | ObjectKind::House
                | ObjectKind::Pagoda
                | ObjectKind::ToriiGate => ground != Ground::Sea && row >= 1,
            }
        }
    }
}

/// How many objects a generated picture may hold.
pub const MAX_PICTURE_OBJECTS: usize = 3;

impl PictureSpec {
    /// A picture from the default distribution: 30 % plain backgrounds with one thing near the
    /// centre, 70 % landscapes with one to three things (half of them with one main object),
    /// styles uniform.
    pub fn random(rng: &mut ChaCha8Rng) -> PictureSpec {
        let style = pick(rng, &Style::ALL);
        if rng.random_bool(0.3) {
            let kind = pick(rng, &ObjectKind::ALL);
            let background = pick(rng, &kind.plain_backgrounds());
            let mut object = random_object(rng, kind, Placement::Center);
            object.size = pick(rng, &Size::ALL);
            return PictureSpec {
                backdrop: Backdrop::Plain(background),
                objects: vec![object],
                style,
            };
        }
        let sky = pick(rng, &Sky::ALL);
        let ground = pick(rng, &Ground::ALL);
        let backdrop = Backdrop::Landscape { sky, ground };
        let roll: f64 = rng.random();
        let want = if roll < 0.5 {
            1
        } else if roll < 0.8 {
            2
        } else {
            3
        };
        let mut objects: Vec<PictureObject> = Vec::with_capacity(want);
        // The first object is usually a ground thing: the picture's subject.
        let first_ground = ground != Ground::Sea || rng.random_bool(0.5);
        for attempt in 0..60 {
            if objects.len() >= want {
                break;
            }
            let kind = if attempt == 0 {
                let pool: Vec<ObjectKind> = ObjectKind::ALL
                    .iter()
                    .copied()
                    .filter(|&k| k.is_ground() == first_ground)
                    .filter(|&k| Placement::ALL.iter().any(|&p| fits(k, backdrop, p)))
                    .collect();
                match pool.as_slice() {
                    [] => pick(rng, &[ObjectKind::Cloud]),
                    pool => pick(rng, pool),
                }
            } else if rng.random_bool(0.35) {
                // Repeat a kind: "two sunflowers", "three clouds".
                objects[rng.random_range(0..objects.len())].kind
            } else {
                pick(rng, &ObjectKind::ALL)
            };
            let cells: Vec<Placement> = Placement::ALL
                .iter()
                .copied()
                .filter(|&p| fits(kind, backdrop, p))
                .filter(|&p| objects.iter().all(|o| o.placement != p))
                .collect();
            if cells.is_empty() || (kind.is_unique() && objects.iter().any(|o| o.kind == kind)) {
                continue;
            }
            let placement = pick(rng, &cells);
            objects.push(random_object(rng, kind, placement));
        }
        // Large things in neighbouring cells would cover each other; shrink both.
        for i in 0..objects.len() {
            for j in 0..objects.len() {
                if i != j && objects[i].placement.grid_distance(objects[j].placement) <= 1 {
                    objects[i].size = Size::Small;
                }
            }
        }
        PictureSpec {
            backdrop,
            objects,
            style,
        }
    }

    /// Whether the picture keeps the composition rules: 1..=3 objects, each [`fits`] its place,
    /// no two in one cell, at most one sun and one moon.
    pub fn is_consistent(&self) -> bool {
        let n = self.objects.len();
        (1..=MAX_PICTURE_OBJECTS).contains(&n)
            && self
                .objects
                .iter()
                .all(|o| fits(o.kind, self.backdrop, o.placement))
            && self.objects.iter().enumerate().all(|(i, a)| {
                self.objects[i + 1..].iter().all(|b| {
                    a.placement != b.placement && !(a.kind == b.kind && a.kind.is_unique())
                })
            })
    }

    /// The one object a picture is about, when it has exactly one.
    pub fn main_object(&self) -> Option<&PictureObject> {
        match self.objects.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    /// A pagoda or a torii gate makes a landscape Kyoto (a pagoda on a plain background is
    /// just a pagoda: it is nowhere).
    pub fn in_kyoto(&self) -> bool {
        matches!(self.backdrop, Backdrop::Landscape { .. })
            && self.objects.iter().any(|o| o.kind.is_kyoto())
    }

    /// Snow or ice under a night sky is the North Pole.
    pub fn at_north_pole(&self) -> bool {
        matches!(self.backdrop, Backdrop::Landscape { sky, ground } if sky.is_night() && ground.is_frozen())
    }

    /// How many objects of `kind` the picture holds.
    pub fn count(&self, kind: ObjectKind) -> usize {
        self.objects.iter().filter(|o| o.kind == kind).count()
    }

    /// A seed derived from the whole spec (for the style's and the backdrop's random details),
    /// so the picture is a pure function of the spec: FNV-1a over its JSON form.
    pub fn seed(&self) -> u64 {
        crate::style::content_seed(self)
    }
}

impl PictureObject {
    /// `kind` at `placement` in its middle proportions, upright and untinted: the object a
    /// search adds before the model tunes the rest.
    pub fn plain(kind: ObjectKind, placement: Placement, size: Size) -> PictureObject {
        PictureObject {
            kind,
            placement,
            size,
            scale: 1.0,
            jitter: [0.0, 0.0],
            aspect: 1.0,
            tilt: 0.0,
            petals: match kind {
                ObjectKind::Sunflower => 18,
                ObjectKind::Daisy => 13,
                ObjectKind::Sun => 10,
                _ => 0,
            },
            variant: 0,
            tint: [0, 0, 0],
        }
    }
}

fn random_object(rng: &mut ChaCha8Rng, kind: ObjectKind, placement: Placement) -> PictureObject {
    let upright = matches!(
        kind,
        ObjectKind::House | ObjectKind::Pagoda | ObjectKind::ToriiGate | ObjectKind::Mountain
    );
    let petals = match kind {
        ObjectKind::Sunflower => rng.random_range(14..=22),
        ObjectKind::Daisy => rng.random_range(10..=16),
        ObjectKind::Sun => rng.random_range(8..=12),
        _ => 0,
    };
    PictureObject {
        kind,
        placement,
        size: pick(rng, &Size::ALL),
        scale: rng.random_range(0.85..=1.15),
        jitter: [
            rng.random_range(-0.04..=0.04),
            rng.random_range(-0.04..=0.04),
        ],
        aspect: rng.random_range(0.85..=1.15),
        tilt: if upright {
            0.0
        } else {
            rng.random_range(-8.0..=8.0)
        },
        petals,
        variant: rng.random_range(0..4),
        tint: std::array::from_fn(|_| rng.random_range(-12..=12)),
    }
}

/// Uniform choice from a non-empty table.
fn pick<T: Copy>(rng: &mut ChaCha8Rng, table: &[T]) -> T {
    table[rng.random_range(0..table.len())]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn random_pictures_keep_the_composition_rules() {
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        let mut styles = std::collections::HashMap::new();
        let (mut plain, mut single, mut multi, mut repeated) = (0, 0, 0, 0);
        for _ in 0..600 {
            let s = PictureSpec::random(&mut rng);
            assert!(s.is_consistent(), "{s:?}");
            *styles.entry(s.style).or_insert(0) += 1;
            match s.backdrop {
                Backdrop::Plain(c) => {
                    plain += 1;
                    let [o] = s.objects.as_slice() else {
                        panic!("plain pictures hold one object: {s:?}")
                    };
                    assert_eq!(o.placement, Placement::Center);
                    assert!(o.kind.plain_backgrounds().contains(&c));
                }
                Backdrop::Landscape { sky, ground } => {
                    for o in &s.objects {
                        if o.kind == ObjectKind::Sun {
                            assert!(!sky.is_night(), "{s:?}");
                        }
                        if o.kind == ObjectKind::Moon {
                            assert!(sky.is_night(), "{s:?}");
                        }
                        if o.kind.is_sky() {
                            assert_eq!(o.placement.cell().1, 0);
                        } else {
                            assert!(o.placement.cell().1 >= 1);
                        }
                        if ground == Ground::Sea {
                            assert!(o.kind.is_sky() || o.kind == ObjectKind::Mountain);
                        }
                        if o.kind.is_flower() {
                            assert_eq!(ground, Ground::Grass);
                        }
                    }
                    single += usize::from(s.objects.len() == 1);
                    multi += usize::from(s.objects.len() > 1);
                    repeated += usize::from(ObjectKind::ALL.iter().any(|&k| s.count(k) > 1));
                }
            }
            for o in &s.objects {
                assert!((0.85..=1.15).contains(&o.scale) && (0.85..=1.15).contains(&o.aspect));
                assert!(o.jitter.iter().all(|j| j.abs() <= 0.04));
            }
        }
        assert!(plain > 120 && single > 150 && multi > 150 && repeated > 30);
        assert_eq!(styles.len(), 5);
        assert!(styles.values().all(|&n| n > 80), "{styles:?}");
    }

    #[test]
    fn rules_reject_implausible_places() {
        let night_snow = Backdrop::Landscape {
            sky: Sky::Night,
            ground: Ground::Snow,
        };
        let day_sea = Backdrop::Landscape {
            sky: Sky::Day,
            ground: Ground::Sea,
        };
        assert!(!fits(ObjectKind::Sun, night_snow, Placement::Top));
        assert!(fits(ObjectKind::Moon, night_snow, Placement::TopLeft));
        assert!(!fits(ObjectKind::Moon, night_snow, Placement::Bottom));
        assert!(!fits(ObjectKind::Sunflower, day_sea, Placement::Bottom));
        assert!(!fits(ObjectKind::Sunflower, night_snow, Placement::Bottom));
        assert!(!fits(ObjectKind::House, day_sea, Placement::Bottom));
        assert!(fits(ObjectKind::Mountain, day_sea, Placement::Left));
        assert!(!fits(ObjectKind::Mountain, day_sea, Placement::BottomLeft));
        assert!(fits(ObjectKind::Pagoda, night_snow, Placement::Center));
        assert!(!fits(
            ObjectKind::Sunflower,
            Backdrop::Plain(Colour::Yellow),
            Placement::Center
        ));
        let mut s = PictureSpec {
            backdrop: night_snow,
            objects: vec![],
            style: Style::Flat,
        };
        assert!(!s.is_consistent(), "no objects");
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        s.objects
            .push(random_object(&mut rng, ObjectKind::Moon, Placement::Top));
        assert!(s.is_consistent());
        s.objects.push(random_object(
            &mut rng,
            ObjectKind::Moon,
            Placement::TopLeft,
        ));
        assert!(!s.is_consistent(), "two moons");
        s.objects[1] = random_object(&mut rng, ObjectKind::Cloud, Placement::Top);
        assert!(!s.is_consistent(), "one cell, two things");
        assert!(s.at_north_pole() && !s.in_kyoto());
    }

    #[test]
    fn words_parse_and_seeds_follow_the_spec() {
        assert_eq!(
            ObjectKind::from_word("Torii gates"),
            Some(ObjectKind::ToriiGate)
        );
        assert_eq!(
            ObjectKind::from_word("ひまわり"),
            Some(ObjectKind::Sunflower)
        );
        assert_eq!(ObjectKind::from_word("rose"), None);
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let a = PictureSpec::random(&mut rng);
        let mut b = a.clone();
        assert_eq!(a.seed(), b.seed());
        b.objects[0].tilt += 1.0;
        assert_ne!(a.seed(), b.seed());
    }

    /// Writes example renders for a person to look at: one picture per style and a Kyoto at
    /// the North Pole scene, 256×256, into /tmp/world-B-examples.
    #[test]
    #[ignore = "writes example renders to /tmp for a person to look at; run by hand"]
    fn save_examples() {
        use crate::language::Language;
        let dir = std::path::Path::new("/tmp/world-B-examples");
        std::fs::create_dir_all(dir).expect("create the examples folder");
        let object = |kind, placement, size| {
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            let mut o = random_object(&mut rng, kind, placement);
            o.size = size;
            o
        };
        let meadow = Backdrop::Landscape {
            sky: Sky::Day,
            ground: Ground::Grass,
        };
        let examples = [
            (
                "flat-sunflower-on-blue",
                PictureSpec {
                    backdrop: Backdrop::Plain(Colour::Blue),
                    objects: vec![object(
                        ObjectKind::Sunflower,
                        Placement::Center,
                        Size::Large,
                    )],
                    style: Style::Flat,
                },
            ),
            (
                "oil-sunflowers-in-meadow",
                PictureSpec {
                    backdrop: meadow,
                    objects: vec![
                        object(ObjectKind::Sunflower, Placement::Bottom, Size::Large),
                        object(ObjectKind::Sun, Placement::TopRight, Size::Small),
                        object(ObjectKind::Cloud, Placement::TopLeft, Size::Large),
                    ],
                    style: Style::OilPainting,
                },
            ),
            (
                "watercolour-torii-at-sunset",
                PictureSpec {
                    backdrop: Backdrop::Landscape {
                        sky: Sky::Sunset,
                        ground: Ground::Grass,
                    },
                    objects: vec![
                        object(ObjectKind::ToriiGate, Placement::Bottom, Size::Large),
                        object(ObjectKind::Mountain, Placement::Left, Size::Large),
                    ],
                    style: Style::Watercolour,
                },
            ),
            (
                "pixel-art-house-and-tree",
                PictureSpec {
                    backdrop: Backdrop::Landscape {
                        sky: Sky::Night,
                        ground: Ground::Snow,
                    },
                    objects: vec![
                        object(ObjectKind::House, Placement::BottomLeft, Size::Large),
                        object(ObjectKind::Tree, Placement::Right, Size::Small),
                        object(ObjectKind::Moon, Placement::TopRight, Size::Small),
                    ],
                    style: Style::PixelArt,
                },
            ),
            (
                "pencil-tulip-on-yellow",
                PictureSpec {
                    backdrop: Backdrop::Plain(Colour::Yellow),
                    objects: vec![object(ObjectKind::Tulip, Placement::Center, Size::Large)],
                    style: Style::PencilSketch,
                },
            ),
            (
                "kyoto-at-the-north-pole",
                PictureSpec {
                    backdrop: Backdrop::Landscape {
                        sky: Sky::Aurora,
                        ground: Ground::Ice,
                    },
                    objects: vec![
                        object(ObjectKind::Pagoda, Placement::Bottom, Size::Large),
                        object(ObjectKind::ToriiGate, Placement::Left, Size::Small),
                        object(ObjectKind::Moon, Placement::TopRight, Size::Small),
                    ],
                    style: Style::Flat,
                },
            ),
        ];
        let mut notes = String::new();
        for (name, spec) in examples {
            assert!(spec.is_consistent(), "{name}");
            render_picture(&spec, 256)
                .save(dir.join(format!("{name}.png")))
                .expect("write the example");
            render_picture(&spec, 64)
                .save(dir.join(format!("{name}-64.png")))
                .expect("write the example");
            let mut rng = ChaCha8Rng::seed_from_u64(1);
            for language in Language::ALL {
                for c in picture_captions(&spec, language, &mut rng) {
                    notes.push_str(&format!("{name}\t{}\t{c}\n", language.name()));
                }
            }
        }
        std::fs::write(dir.join("captions.tsv"), notes).expect("write the captions");
    }
}
