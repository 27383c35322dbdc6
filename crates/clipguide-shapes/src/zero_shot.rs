//! Zero-shot probes: for one scene, candidate captions that differ in exactly one attribute.
//! A CLIP model that understands the attribute ranks the correct candidate first.

use serde::{Deserialize, Serialize};

use crate::captions::{canonical_caption, count_word, placement_phrases};
use crate::palette::Colour;
use crate::scene::{Placement, SceneSpec, Shape, Size};

/// The attribute a zero-shot task varies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attribute {
    ObjectColour,
    Shape,
    BackgroundColour,
    Placement,
    Count,
    Size,
    /// What a picture shows (sunflower, pagoda, …): probed by `picture_probes`.
    Object,
    /// How a picture is drawn (oil painting, pixel art, …): probed by `picture_probes`.
    Style,
}

impl Attribute {
    pub const ALL: [Attribute; 6] = [
        Attribute::ObjectColour,
        Attribute::Shape,
        Attribute::BackgroundColour,
        Attribute::Placement,
        Attribute::Count,
        Attribute::Size,
    ];

    /// The attributes of the composed-picture world ([`crate::picture_probes`]). Kept apart from
    /// [`Attribute::ALL`], which lists the shape-scene attributes that [`zero_shot_task`] probes.
    pub const PICTURE: [Attribute; 2] = [Attribute::Object, Attribute::Style];

    pub const fn name(self) -> &'static str {
        match self {
            Attribute::ObjectColour => "object_colour",
            Attribute::Shape => "shape",
            Attribute::BackgroundColour => "background_colour",
            Attribute::Placement => "placement",
            Attribute::Count => "count",
            Attribute::Size => "size",
            Attribute::Object => "object",
            Attribute::Style => "style",
        }
    }
}

/// How candidate prompts are worded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PromptStyle {
    /// The scene's canonical caption with only the attribute swapped
    /// ("a large red circle in the center on a blue background" vs "... green circle ...").
    FullCaption,
    /// A template naming only the attribute ("a red shape", "a shape in the center").
    Isolated,
}

/// One multiple-choice probe: classify the scene's image among `candidates`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZeroShotTask {
    pub attribute: Attribute,
    pub candidates: Vec<String>,
    /// Index into `candidates` of the caption that matches the scene.
    pub correct: usize,
}

/// Builds the task probing `attribute` for `scene`. Only single-group scenes have one
/// well-defined answer per attribute, so other scenes give `None`; so do the picture
/// attributes ([`Attribute::PICTURE`]), which shape scenes do not have.
///
/// Colour candidates leave out colours that would make the scene self-contradictory
/// (an object the colour of its background); the true value is always among them.
pub fn zero_shot_task(
    scene: &SceneSpec,
    attribute: Attribute,
    style: PromptStyle,
) -> Option<ZeroShotTask> {
    task_worded(scene, attribute, style, canonical_caption, isolated_english)
}

/// The value a probe's candidate scene takes for the attribute it varies.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Varied {
    ObjectColour(Colour),
    BackgroundColour(Colour),
    Shape(Shape),
    Placement(Placement),
    Count(u8),
    Size(Size),
}

/// The candidate scenes probing `attribute` for a single-group `scene`, each with the value it
/// varies, in probe order (the same in every language, so `correct` is too). `None` for
/// multi-group scenes and the picture attributes.
fn candidate_scenes(scene: &SceneSpec, attribute: Attribute) -> Option<Vec<(SceneSpec, Varied)>> {
    let [group] = scene.groups.as_slice() else {
        return None;
    };
    let pattern_colour = scene.pattern.map(|p| p.colour);
    let with = |change: &dyn Fn(&mut SceneSpec), v: Varied| {
        let mut s = scene.clone();
        change(&mut s);
        (s, v)
    };
    Some(match attribute {
        Attribute::ObjectColour => Colour::ALL
            .iter()
            .filter(|&&c| c != scene.background && Some(c) != pattern_colour)
            .map(|&c| with(&|s| s.groups[0].colour = c, Varied::ObjectColour(c)))
            .collect(),
        Attribute::BackgroundColour => Colour::ALL
            .iter()
            .filter(|&&c| c != group.colour && Some(c) != pattern_colour)
            .map(|&c| with(&|s| s.background = c, Varied::BackgroundColour(c)))
            .collect(),
        Attribute::Shape => Shape::ALL
            .iter()
            .map(|&shape| with(&|s| s.groups[0].shape = shape, Varied::Shape(shape)))
            .collect(),
        Attribute::Placement => Placement::ALL
            .iter()
            .map(|&p| with(&|s| s.groups[0].placement = p, Varied::Placement(p)))
            .collect(),
        Attribute::Count => (1..=3u8)
            .map(|n| with(&|s| s.groups[0].count = n, Varied::Count(n)))
            .collect(),
        Attribute::Size => Size::ALL
            .iter()
            .map(|&size| with(&|s| s.groups[0].size = size, Varied::Size(size)))
            .collect(),
        Attribute::Object | Attribute::Style => return None,
    })
}

/// A probe in one language: candidates are `caption` of each candidate scene, or the
/// `isolated` wording of the value it varies.
pub(crate) fn task_worded(
    scene: &SceneSpec,
    attribute: Attribute,
    style: PromptStyle,
    caption: fn(&SceneSpec) -> String,
    isolated: fn(Varied) -> String,
) -> Option<ZeroShotTask> {
    let variants = candidate_scenes(scene, attribute)?;
    let correct = variants.iter().position(|(s, _)| s == scene)?;
    let candidates = variants
        .into_iter()
        .map(|(s, v)| match style {
            PromptStyle::FullCaption => caption(&s),
            PromptStyle::Isolated => isolated(v),
        })
        .collect();
    Some(ZeroShotTask {
        attribute,
        candidates,
        correct,
    })
}

/// "a red shape", "a star", "a shape in the center", "two shapes", …
fn isolated_english(v: Varied) -> String {
    match v {
        Varied::ObjectColour(c) => format!("a {c} shape"),
        Varied::BackgroundColour(c) => format!("a {c} background"),
        Varied::Shape(shape) => format!("a {}", shape.name()),
        Varied::Placement(p) => format!("a shape {}", placement_phrases(p)[0]),
        Varied::Count(n) => {
            let noun = if n == 1 { "shape" } else { "shapes" };
            format!("{} {noun}", count_word(n))
        }
        Varied::Size(size) => format!("a {} shape", size.name()),
    }
}

/// One task per attribute (see [`zero_shot_task`]); empty for multi-group scenes.
pub fn attribute_prompts(scene: &SceneSpec, style: PromptStyle) -> Vec<ZeroShotTask> {
    Attribute::ALL
        .iter()
        .filter_map(|&a| zero_shot_task(scene, a, style))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::{ObjectGroup, SceneConfig};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn scene() -> SceneSpec {
        SceneSpec {
            background: Colour::Blue,
            pattern: None,
            groups: vec![ObjectGroup {
                shape: Shape::Star,
                colour: Colour::Red,
                size: Size::Small,
                count: 2,
                placement: Placement::TopLeft,
                jitter: [0.01, 0.0],
            }],
        }
    }

    #[test]
    fn full_caption_candidates_differ_in_one_attribute() {
        let s = scene();
        let tasks = attribute_prompts(&s, PromptStyle::FullCaption);
        assert_eq!(tasks.len(), Attribute::ALL.len());
        let by = |a| tasks.iter().find(|t| t.attribute == a).unwrap();

        let colour = by(Attribute::ObjectColour);
        assert_eq!(
            colour.candidates.len(),
            11,
            "all colours but the blue background"
        );
        assert_eq!(
            colour.candidates[colour.correct],
            "two small red stars in the top left corner on a blue background"
        );
        assert!(colour
            .candidates
            .contains(&"two small green stars in the top left corner on a blue background".into()));

        let count = by(Attribute::Count);
        assert_eq!(count.correct, 1);
        assert_eq!(
            count.candidates[0],
            "a small red star in the top left corner on a blue background"
        );

        let place = by(Attribute::Placement);
        assert_eq!(place.candidates.len(), 9);
        assert_eq!(place.correct, 0);
        assert!(place.candidates[4].contains("in the center"));

        let bg = by(Attribute::BackgroundColour);
        assert!(bg.candidates.iter().all(|c| !c.ends_with("red background")));
        assert!(bg.candidates[bg.correct].ends_with("on a blue background"));

        for t in &tasks {
            let unique: std::collections::HashSet<_> = t.candidates.iter().collect();
            assert_eq!(unique.len(), t.candidates.len(), "{:?}", t.attribute);
        }
    }

    #[test]
    fn isolated_style_names_only_the_attribute() {
        let s = scene();
        let shape = zero_shot_task(&s, Attribute::Shape, PromptStyle::Isolated).unwrap();
        assert_eq!(shape.candidates[shape.correct], "a star");
        assert_eq!(shape.candidates.len(), 6);
        let count = zero_shot_task(&s, Attribute::Count, PromptStyle::Isolated).unwrap();
        assert_eq!(
            count.candidates,
            vec!["one shape", "two shapes", "three shapes"]
        );
    }

    #[test]
    fn correct_index_tracks_random_scenes() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for _ in 0..200 {
            let s = SceneSpec::random_with(&mut rng, &SceneConfig::single_group());
            for t in attribute_prompts(&s, PromptStyle::FullCaption) {
                assert_eq!(t.candidates[t.correct], canonical_caption(&s));
            }
        }
    }

    #[test]
    fn picture_attributes_are_not_shape_scene_attributes() {
        assert!(Attribute::PICTURE
            .iter()
            .all(|a| !Attribute::ALL.contains(a)));
        for a in Attribute::PICTURE {
            assert_eq!(zero_shot_task(&scene(), a, PromptStyle::FullCaption), None);
        }
        assert_eq!(Attribute::Object.name(), "object");
        assert_eq!(Attribute::Style.name(), "style");
    }

    #[test]
    fn multi_group_scenes_have_no_tasks() {
        let mut s = scene();
        let mut other = s.groups[0];
        other.placement = Placement::BottomRight;
        other.shape = Shape::Ring;
        s.groups.push(other);
        assert!(attribute_prompts(&s, PromptStyle::FullCaption).is_empty());
    }
}
