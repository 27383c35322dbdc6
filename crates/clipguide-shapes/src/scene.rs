//! The scene description behind every synthetic image: background, optional pattern and object groups.
//! A `SceneSpec` holds every random choice (jitter included), so rendering and captioning are pure functions of it.

use rand::seq::IndexedRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::palette::{blends_cleanly, Colour};

/// Object shape vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    Circle,
    Square,
    Triangle,
    Star,
    Cross,
    Ring,
}

impl Shape {
    pub const ALL: [Shape; 6] = [
        Shape::Circle,
        Shape::Square,
        Shape::Triangle,
        Shape::Star,
        Shape::Cross,
        Shape::Ring,
    ];

    /// Singular caption word ("circle").
    pub const fn name(self) -> &'static str {
        match self {
            Shape::Circle => "circle",
            Shape::Square => "square",
            Shape::Triangle => "triangle",
            Shape::Star => "star",
            Shape::Cross => "cross",
            Shape::Ring => "ring",
        }
    }

    /// Plural caption word ("crosses").
    pub const fn plural(self) -> &'static str {
        match self {
            Shape::Circle => "circles",
            Shape::Square => "squares",
            Shape::Triangle => "triangles",
            Shape::Star => "stars",
            Shape::Cross => "crosses",
            Shape::Ring => "rings",
        }
    }

    /// Parses a singular or plural shape word, case-insensitive.
    pub fn from_word(word: &str) -> Option<Shape> {
        let lower = word.to_ascii_lowercase();
        Self::ALL
            .iter()
            .copied()
            .find(|s| s.name() == lower || s.plural() == lower)
    }
}

/// Object size class; the renderer maps it to a diameter relative to the image side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Size {
    Small,
    Large,
}

impl Size {
    pub const ALL: [Size; 2] = [Size::Small, Size::Large];

    pub const fn name(self) -> &'static str {
        match self {
            Size::Small => "small",
            Size::Large => "large",
        }
    }

    /// Diameter as a fraction of the image side.
    pub const fn diameter(self) -> f64 {
        match self {
            Size::Small => 0.2,
            Size::Large => 0.36,
        }
    }
}

/// A cell of the 3×3 placement grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    TopLeft,
    Top,
    TopRight,
    Left,
    Center,
    Right,
    BottomLeft,
    Bottom,
    BottomRight,
}

impl Placement {
    /// Row-major order: index = row * 3 + column.
    pub const ALL: [Placement; 9] = [
        Placement::TopLeft,
        Placement::Top,
        Placement::TopRight,
        Placement::Left,
        Placement::Center,
        Placement::Right,
        Placement::BottomLeft,
        Placement::Bottom,
        Placement::BottomRight,
    ];

    /// Row-major cell index 0..9.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// `(column, row)`, each in 0..3.
    pub const fn cell(self) -> (usize, usize) {
        (self as usize % 3, self as usize / 3)
    }

    /// The placement of grid cell `(column, row)`; `None` outside the 3×3 grid.
    pub fn from_cell(column: usize, row: usize) -> Option<Placement> {
        if column < 3 && row < 3 {
            Some(Self::ALL[row * 3 + column])
        } else {
            None
        }
    }

    /// Bare words ("top left", "center"), as used in terse captions.
    pub const fn words(self) -> &'static str {
        match self {
            Placement::TopLeft => "top left",
            Placement::Top => "top",
            Placement::TopRight => "top right",
            Placement::Left => "left",
            Placement::Center => "center",
            Placement::Right => "right",
            Placement::BottomLeft => "bottom left",
            Placement::Bottom => "bottom",
            Placement::BottomRight => "bottom right",
        }
    }

    /// Chebyshev distance between grid cells (0 same, 1 neighbours, 2 far apart).
    pub fn grid_distance(self, other: Placement) -> usize {
        let (ax, ay) = self.cell();
        let (bx, by) = other.cell();
        ax.abs_diff(bx).max(ay.abs_diff(by))
    }
}

/// Background pattern kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PatternKind {
    Striped,
    Dotted,
}

impl PatternKind {
    pub const fn name(self) -> &'static str {
        match self {
            PatternKind::Striped => "striped",
            PatternKind::Dotted => "dotted",
        }
    }
}

/// Stripe direction. Captions never mention it: it is nuisance variation the model should ignore.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StripeDirection {
    Horizontal,
    Vertical,
    Diagonal,
}

/// A second colour drawn over the background as stripes or dots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackgroundPattern {
    pub kind: PatternKind,
    pub colour: Colour,
    /// Only used by `Striped`.
    pub direction: StripeDirection,
}

/// `count` identical objects (same shape, colour and size) placed together in one grid cell.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectGroup {
    pub shape: Shape,
    pub colour: Colour,
    pub size: Size,
    /// Number of objects, 1..=3 in generated scenes.
    pub count: u8,
    pub placement: Placement,
    /// Offset of the group centre from the cell centre, in fractions of the image side.
    pub jitter: [f32; 2],
}

/// Everything that determines one synthetic image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SceneSpec {
    pub background: Colour,
    pub pattern: Option<BackgroundPattern>,
    /// One group (possibly with count > 1) or several single objects in distinct cells.
    pub groups: Vec<ObjectGroup>,
}

/// Knobs for [`SceneSpec::random_with`]; `Default` is the full training distribution.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SceneConfig {
    /// Maximum number of distinct object groups per scene, 1..=3.
    pub max_groups: usize,
    /// Maximum objects in a single group, 1..=3.
    pub max_count: u8,
    /// Probability of a striped or dotted background, 0..=1.
    pub pattern_probability: f64,
}

impl Default for SceneConfig {
    fn default() -> Self {
        SceneConfig {
            max_groups: 3,
            max_count: 3,
            pattern_probability: 0.25,
        }
    }
}

impl SceneConfig {
    /// One plain-background object group per scene: the setting for zero-shot evaluation.
    pub fn single_group() -> Self {
        SceneConfig {
            max_groups: 1,
            max_count: 3,
            pattern_probability: 0.0,
        }
    }
}

/// The colours an object may take on this background: never the background's or its pattern's,
/// else the object vanishes.
pub fn object_colours(background: Colour, pattern: Option<BackgroundPattern>) -> Vec<Colour> {
    Colour::ALL
        .iter()
        .copied()
        .filter(|&c| c != background && pattern.is_none_or(|p| p.colour != c))
        .collect()
}

/// Jitter bounds: small enough that an object never leaves its cell's neighbourhood.
const SINGLE_JITTER: f32 = 0.03;
const GROUP_JITTER: f32 = 0.02;

impl SceneSpec {
    /// A scene from the default distribution.
    pub fn random(rng: &mut ChaCha8Rng) -> SceneSpec {
        Self::random_with(rng, &SceneConfig::default())
    }

    /// A scene drawn from `config`. Out-of-range config values are clamped into range here;
    /// `ShapesDataset::with_config` rejects them with an error before they get this far.
    pub fn random_with(rng: &mut ChaCha8Rng, config: &SceneConfig) -> SceneSpec {
        let max_groups = config.max_groups.clamp(1, 3);
        let max_count = config.max_count.clamp(1, 3);
        let pattern_p = config.pattern_probability.clamp(0.0, 1.0);

        let background = pick(rng, &Colour::ALL);
        let pattern = if rng.random_bool(pattern_p) {
            let partners: Vec<Colour> = Colour::ALL
                .iter()
                .copied()
                .filter(|&c| c != background && blends_cleanly(background, c))
                .collect();
            let kind = pick(rng, &[PatternKind::Striped, PatternKind::Dotted]);
            let direction = pick(
                rng,
                &[
                    StripeDirection::Horizontal,
                    StripeDirection::Vertical,
                    StripeDirection::Diagonal,
                ],
            );
            // A background with no clean partner simply stays plain.
            partners.choose(rng).map(|&colour| BackgroundPattern {
                kind,
                colour,
                direction,
            })
        } else {
            None
        };
        let object_colours = object_colours(background, pattern);

        let roll: f64 = rng.random();
        let n_groups = if roll < 0.6 {
            1
        } else if roll < 0.85 {
            2
        } else {
            3
        }
        .min(max_groups);

        let mut groups: Vec<ObjectGroup> = Vec::with_capacity(n_groups);
        if n_groups == 1 {
            let count = if max_count == 1 || rng.random_bool(0.6) {
                1
            } else {
                rng.random_range(2..=max_count)
            };
            // Several large objects would not fit in one cell, so groups are always small.
            let size = if count > 1 {
                Size::Small
            } else {
                pick(rng, &Size::ALL)
            };
            let jitter = if count > 1 {
                GROUP_JITTER
            } else {
                SINGLE_JITTER
            };
            groups.push(ObjectGroup {
                shape: pick(rng, &Shape::ALL),
                colour: pick(rng, &object_colours),
                size,
                count,
                placement: pick(rng, &Placement::ALL),
                jitter: random_jitter(rng, jitter),
            });
        } else {
            while groups.len() < n_groups {
                let shape = pick(rng, &Shape::ALL);
                let colour = pick(rng, &object_colours);
                let placement = pick(rng, &Placement::ALL);
                let size = pick(rng, &Size::ALL);
                let jitter = random_jitter(rng, SINGLE_JITTER);
                // Distinct cells keep objects apart; distinct (shape, colour) keeps captions unambiguous.
                let clash = groups
                    .iter()
                    .any(|g| g.placement == placement || (g.shape == shape && g.colour == colour));
                if !clash {
                    groups.push(ObjectGroup {
                        shape,
                        colour,
                        size,
                        count: 1,
                        placement,
                        jitter,
                    });
                }
            }
            // Large objects in neighbouring cells would overlap; shrink both.
            for i in 0..groups.len() {
                for j in 0..groups.len() {
                    if i != j && groups[i].placement.grid_distance(groups[j].placement) <= 1 {
                        groups[i].size = Size::Small;
                    }
                }
            }
        }
        SceneSpec {
            background,
            pattern,
            groups,
        }
    }

    /// Total number of objects over all groups.
    pub fn object_count(&self) -> usize {
        self.groups.iter().map(|g| g.count as usize).sum()
    }
}

/// Uniform choice from a non-empty constant table.
fn pick<T: Copy>(rng: &mut ChaCha8Rng, table: &[T]) -> T {
    table[rng.random_range(0..table.len())]
}

fn random_jitter(rng: &mut ChaCha8Rng, bound: f32) -> [f32; 2] {
    [
        rng.random_range(-bound..=bound),
        rng.random_range(-bound..=bound),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn random_scenes_respect_invariants() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut saw_multi = false;
        let mut saw_count = false;
        let mut saw_pattern = false;
        for _ in 0..2000 {
            let s = SceneSpec::random(&mut rng);
            assert!((1..=3).contains(&s.object_count()), "{s:?}");
            assert!(!s.groups.is_empty());
            for g in &s.groups {
                assert_ne!(g.colour, s.background);
                if let Some(p) = s.pattern {
                    assert_ne!(p.colour, s.background);
                    assert!(blends_cleanly(p.colour, s.background), "{p:?}");
                    assert_ne!(p.colour, g.colour);
                }
                assert!(g.jitter.iter().all(|j| j.abs() <= SINGLE_JITTER));
                if g.count > 1 {
                    assert_eq!(g.size, Size::Small);
                }
            }
            if s.groups.len() > 1 {
                saw_multi = true;
                for (i, a) in s.groups.iter().enumerate() {
                    assert_eq!(a.count, 1);
                    for b in &s.groups[i + 1..] {
                        assert_ne!(a.placement, b.placement);
                        assert!(a.shape != b.shape || a.colour != b.colour);
                        if a.placement.grid_distance(b.placement) == 1 {
                            assert_eq!((a.size, b.size), (Size::Small, Size::Small));
                        }
                    }
                }
            }
            saw_count |= s.groups[0].count > 1;
            saw_pattern |= s.pattern.is_some();
        }
        assert!(saw_multi && saw_count && saw_pattern);
    }

    #[test]
    fn single_group_config_is_respected() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..500 {
            let s = SceneSpec::random_with(&mut rng, &SceneConfig::single_group());
            assert_eq!(s.groups.len(), 1);
            assert!(s.pattern.is_none());
        }
    }

    #[test]
    fn placement_cells_round_trip() {
        for p in Placement::ALL {
            let (c, r) = p.cell();
            assert_eq!(Placement::from_cell(c, r), Some(p));
        }
        assert_eq!(Placement::TopLeft.cell(), (0, 0));
        assert_eq!(Placement::BottomLeft.cell(), (0, 2));
        assert_eq!(Placement::Right.cell(), (2, 1));
        assert_eq!(Placement::from_cell(3, 0), None);
        assert_eq!(Placement::TopLeft.grid_distance(Placement::BottomRight), 2);
        assert_eq!(Placement::Center.grid_distance(Placement::TopLeft), 1);
    }

    #[test]
    fn shape_words_parse() {
        assert_eq!(Shape::from_word("Crosses"), Some(Shape::Cross));
        assert_eq!(Shape::from_word("star"), Some(Shape::Star));
        assert_eq!(Shape::from_word("blob"), None);
    }
}
