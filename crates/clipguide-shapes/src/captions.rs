//! Turns a `SceneSpec` into several English captions from different templates and paraphrases.
//! The first caption is always the canonical full description; the judge parser reads all of them.

use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::scene::{
    BackgroundPattern, ObjectGroup, PatternKind, Placement, SceneSpec, Shape, Size,
};

/// How many captions [`captions`] returns per scene (fewer only if paraphrases run out).
pub const CAPTIONS_PER_SCENE: usize = 5;

/// Number words for counts 0..=9; larger counts fall back to digits.
pub fn count_word(count: u8) -> String {
    const WORDS: [&str; 10] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    ];
    WORDS
        .get(count as usize)
        .map(|w| w.to_string())
        .unwrap_or_else(|| count.to_string())
}

fn article(next_word: &str) -> &'static str {
    match next_word.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

/// Placement paraphrases; index 0 is the canonical one. Beside the grid's own words they hold
/// what people commonly write for the same cell ("upper left", "at the far right", "along the
/// top", "in the very middle", British "centre"), so a prompt in everyday wording is not noise
/// to the built-in model.
pub fn placement_phrases(placement: Placement) -> &'static [&'static str] {
    match placement {
        Placement::TopLeft => &[
            "in the top left corner",
            "at the top left",
            "in the top left",
            "in the upper left",
            "in the upper left corner",
            "at the upper left",
        ],
        Placement::Top => &[
            "at the top",
            "at the top of the picture",
            "along the top",
            "near the top",
            "at the top edge",
            "in the top middle",
            "at the top centre",
            "in the upper middle",
        ],
        Placement::TopRight => &[
            "in the top right corner",
            "at the top right",
            "in the top right",
            "in the upper right",
            "in the upper right corner",
            "at the upper right",
        ],
        Placement::Left => &[
            "on the left",
            "on the left side",
            "on the left-hand side",
            "at the far left",
            "on the far left",
            "at the left edge",
        ],
        Placement::Center => &[
            "in the center",
            "in the middle",
            "in the center of the picture",
            "in the centre",
            "at the centre",
            "in the very middle",
            "dead center",
            "dead centre",
            "in the middle of the image",
        ],
        Placement::Right => &[
            "on the right",
            "on the right side",
            "on the right-hand side",
            "at the far right",
            "on the far right",
            "at the right edge",
        ],
        Placement::BottomLeft => &[
            "in the bottom left corner",
            "at the bottom left",
            "in the bottom left",
            "in the lower left",
            "in the lower left corner",
            "at the lower left",
        ],
        Placement::Bottom => &[
            "at the bottom",
            "at the bottom of the picture",
            "along the bottom",
            "near the bottom",
            "at the bottom edge",
            "in the bottom middle",
            "at the bottom centre",
            "in the lower middle",
        ],
        Placement::BottomRight => &[
            "in the bottom right corner",
            "at the bottom right",
            "in the bottom right",
            "in the lower right",
            "in the lower right corner",
            "at the lower right",
        ],
    }
}

/// Size words; index 0 is the canonical one ([`Size::name`]), the rest the everyday synonyms.
pub fn size_words(size: Size) -> &'static [&'static str] {
    match size {
        Size::Small => &["small", "tiny", "little"],
        Size::Large => &["large", "big", "huge"],
    }
}

/// Shape nouns as (singular, plural); index 0 is the canonical one ([`Shape::name`]), the rest
/// the everyday words for the same drawing ("disc", "donut", "plus sign"). Only words that fit
/// what the world draws: its crosses are upright (a "×" is not one of them).
pub fn shape_nouns(shape: Shape) -> &'static [(&'static str, &'static str)] {
    match shape {
        Shape::Circle => &[("circle", "circles"), ("disc", "discs"), ("disk", "disks")],
        Shape::Square => &[("square", "squares")],
        Shape::Triangle => &[("triangle", "triangles")],
        Shape::Star => &[("star", "stars")],
        Shape::Cross => &[("cross", "crosses"), ("plus sign", "plus signs")],
        Shape::Ring => &[
            ("ring", "rings"),
            ("donut", "donuts"),
            ("doughnut", "doughnuts"),
            ("hoop", "hoops"),
        ],
    }
}

/// The other placements of a prompt in the dataset's phrasing: finds the placement phrase it
/// uses (the longest of [`placement_phrases`] it contains as whole words, so "at the top left"
/// is not read as "at the top") and returns that placement with the prompt rewritten once for
/// each of the eight others (their canonical phrase in its place). `None` if the prompt names
/// no placement, or names one twice.
///
/// Why: these are the contrasts a zero-shot classifier weighs a layout against
/// (`clipguide_guide::Selection::contrasts`), which is how the built-in model tells corners apart best.
pub fn placement_variants(prompt: &str) -> Option<(Placement, Vec<String>)> {
    let lower = prompt.to_ascii_lowercase();
    // A phrase counts only as whole words: no letter, digit or hyphen right before or after.
    let is_edge = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric() && c != '-');
    let mut matches: Vec<(Placement, usize, usize)> = Vec::new();
    for placement in Placement::ALL {
        for phrase in placement_phrases(placement) {
            for (at, _) in lower.match_indices(phrase) {
                let end = at + phrase.len();
                if is_edge(lower[..at].chars().next_back()) && is_edge(lower[end..].chars().next())
                {
                    matches.push((placement, at, end));
                }
            }
        }
    }
    // A phrase inside a longer one ("at the top" in "at the top left") is not a placement.
    let inside = |&(_, a, e): &(Placement, usize, usize)| {
        matches
            .iter()
            .any(|&(_, a2, e2)| a2 <= a && e <= e2 && e2 - a2 > e - a)
    };
    let outer: Vec<_> = matches.iter().filter(|m| !inside(m)).collect();
    let [&(placement, at, end)] = outer.as_slice() else {
        return None;
    };
    let variants = Placement::ALL
        .iter()
        .filter(|&&p| p != placement)
        .map(|&p| {
            format!(
                "{}{}{}",
                &prompt[..at],
                placement_phrases(p)[0],
                &prompt[end..]
            )
        })
        .collect();
    Some((placement, variants))
}

/// The contrasts the built-in model's generation recipe uses (`clipguide_guide::Selection::contrasts`) for
/// a run's prompt texts: for a single prompt naming one placement, that prompt at the eight
/// other placements ([`placement_variants`]); none for anything else (several prompts, no
/// placement), where there is no one layout to contrast.
///
/// Why: the built-in model judges "which of the nine placements is this" better than "how
/// similar is this image": with these contrasts the judge suite passes 20 of 24 prompts, 19
/// without (BENCHMARKS.md).
pub fn placement_contrasts(prompt_texts: &[&str]) -> Vec<String> {
    match prompt_texts {
        [one] => placement_variants(one)
            .map(|(_, variants)| variants)
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// "a large red circle", "an orange star", "two tiny blue crosses": `size_word` is one of
/// [`size_words`] of the group's size, or `None` to leave the size unsaid.
fn object_phrase(group: &ObjectGroup, size_word: Option<&str>, numeral_one: bool) -> String {
    object_phrase_with(group, size_word, numeral_one, shape_nouns(group.shape)[0])
}

/// [`object_phrase`] with the shape's noun pair `noun` (one of [`shape_nouns`]).
fn object_phrase_with(
    group: &ObjectGroup,
    size_word: Option<&str>,
    numeral_one: bool,
    noun: (&str, &str),
) -> String {
    let noun = if group.count == 1 { noun.0 } else { noun.1 };
    let body = match size_word {
        Some(size) => format!("{size} {} {noun}", group.colour.name()),
        None => format!("{} {noun}", group.colour.name()),
    };
    if group.count == 1 && !numeral_one {
        format!("{} {body}", article(&body))
    } else {
        format!("{} {body}", count_word(group.count))
    }
}

fn pattern_noun(pattern: &BackgroundPattern) -> &'static str {
    match pattern.kind {
        PatternKind::Striped => "stripes",
        PatternKind::Dotted => "dots",
    }
}

/// "on a blue background", "against a blue backdrop", "on a striped green and white background".
fn background_on_phrase(scene: &SceneSpec, variant: usize) -> String {
    let c = scene.background.name();
    let a = article(c);
    // Even variants use the canonical "on a ... background" form.
    let canonical_form = variant.is_multiple_of(2);
    match &scene.pattern {
        None => match variant % 8 {
            1 => format!("against {a} {c} background"),
            3 => format!("on {a} {c} backdrop"),
            5 => format!("over {a} {c} background"),
            7 => format!("against {a} {c} backdrop"),
            _ => format!("on {a} {c} background"),
        },
        Some(p) if canonical_form => {
            format!(
                "on a {} {c} and {} background",
                p.kind.name(),
                p.colour.name()
            )
        }
        Some(p) => format!(
            "on {a} {c} background with {} {}",
            p.colour.name(),
            pattern_noun(p)
        ),
    }
}

/// Noun phrase that can start a caption: "a blue picture", "a striped green and white background".
fn background_noun_phrase(scene: &SceneSpec, variant: usize) -> String {
    let c = scene.background.name();
    let a = article(c);
    match &scene.pattern {
        None => match variant % 4 {
            0 => format!("{a} {c} picture"),
            1 => format!("{a} {c} image"),
            2 => format!("{a} {c} background"),
            _ => format!("{a} {c} backdrop"),
        },
        Some(p) => format!("a {} {c} and {} background", p.kind.name(), p.colour.name()),
    }
}

fn terse_background(scene: &SceneSpec) -> String {
    let c = scene.background.name();
    match &scene.pattern {
        None => format!("{c} background"),
        Some(p) => format!("{} {c} and {} background", p.kind.name(), p.colour.name()),
    }
}

/// "a, b and c".
fn join_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The canonical caption: every attribute stated, fixed phrasing. Used as caption 0 and by
/// the zero-shot prompt builders so candidates differ only in the attribute under test.
pub fn canonical_caption(scene: &SceneSpec) -> String {
    let items: Vec<String> = scene
        .groups
        .iter()
        .map(|g| {
            format!(
                "{} {}",
                object_phrase(g, Some(g.size.name()), false),
                placement_phrases(g.placement)[0]
            )
        })
        .collect();
    format!("{} {}", join_list(&items), background_on_phrase(scene, 0))
}

#[derive(Clone, Copy, Debug)]
enum Template {
    /// "a red circle in the top left corner against a blue background"
    Full,
    /// "a red circle on a blue background"
    NoPlacement,
    /// "a blue picture with a red circle in the middle"
    PictureWith,
    /// "red circle, top left, blue background"
    Terse,
    /// "there are two red stars at the top left on a black background"
    ThereIs,
    /// "in the top left corner, a red circle on a blue background" (single group only)
    PlacementFirst,
    /// "a big red circle in the middle, blue backdrop"
    CommaBackground,
    /// "a tiny gray ring in the upper left of a pink image" (plain backgrounds only)
    PlacedOf,
    /// "a red circle at the top. blue background." or "background: blue. a red circle at the top."
    Sentences,
    /// "blue background, a red circle at the top" or "on a blue canvas, a red circle at the top"
    BackgroundFirst,
    /// "make the background blue and put a red circle at the top", "a red circle at the top, and
    /// set the background to blue" (plain backgrounds only)
    SetBackground,
    /// "two small purple squares in the center with a white background"
    WithBackground,
}

const TEMPLATES: [Template; 12] = [
    Template::Full,
    Template::NoPlacement,
    Template::PictureWith,
    Template::Terse,
    Template::ThereIs,
    Template::PlacementFirst,
    Template::CommaBackground,
    Template::PlacedOf,
    Template::Sentences,
    Template::BackgroundFirst,
    Template::SetBackground,
    Template::WithBackground,
];

/// Nouns a plain background goes by in everyday prompts; index 0 is the canonical one.
const BACKGROUND_NOUNS: [&str; 4] = ["background", "backdrop", "canvas", "bg"];

/// What people put before a description when they ask for a picture ("draw", "can you make").
const REQUESTS: [&str; 12] = [
    "draw",
    "paint",
    "make",
    "sketch",
    "show",
    "create",
    "generate",
    "render",
    "please draw",
    "can you draw",
    "i want",
    "give me",
];

/// Whether a caption of `template` can follow a request verb ("draw …"): those that start with
/// the object or the picture.
fn takes_request(template: Template) -> bool {
    matches!(
        template,
        Template::Full
            | Template::NoPlacement
            | Template::PictureWith
            | Template::Terse
            | Template::CommaBackground
            | Template::PlacedOf
            | Template::WithBackground
    )
}

/// Everyday surface variation of a paraphrase, each with its own chance: a request verb in
/// front ("draw …", "… please"), "grey" for "gray", hyphenated corners ("top-left").
fn everyday_form(caption: String, template: Template, rng: &mut ChaCha8Rng) -> String {
    let mut out = caption;
    if takes_request(template) && rng.random_bool(0.3) {
        let verb = REQUESTS.choose(rng).expect("requests are listed");
        out = format!("{verb} {out}");
        if rng.random_bool(0.25) {
            out.push_str(" please");
        }
    }
    if rng.random_bool(0.5) {
        out = out.replace("gray", "grey");
    }
    if rng.random_bool(0.3) {
        for v in ["top", "bottom", "upper", "lower"] {
            for h in ["left", "right"] {
                out = out.replace(&format!("{v} {h}"), &format!("{v}-{h}"));
            }
        }
    }
    out
}

fn random_place(rng: &mut ChaCha8Rng, placement: Placement) -> &'static str {
    placement_phrases(placement)
        .choose(rng)
        .expect("every placement has phrases")
}

fn random_object(rng: &mut ChaCha8Rng, group: &ObjectGroup) -> String {
    let with_size = rng.random_bool(0.5);
    let numeral_one = rng.random_bool(0.15);
    let size_word = with_size.then(|| {
        *size_words(group.size)
            .choose(rng)
            .expect("every size has words")
    });
    let noun = random_noun(rng, group.shape);
    object_phrase_with(group, size_word, numeral_one, noun)
}

/// The canonical noun three times in four, else one of its everyday synonyms.
fn random_noun(rng: &mut ChaCha8Rng, shape: Shape) -> (&'static str, &'static str) {
    let nouns = shape_nouns(shape);
    if nouns.len() > 1 && rng.random_bool(0.25) {
        nouns[rng.random_range(1..nouns.len())]
    } else {
        nouns[0]
    }
}

/// A placement phrase without its preposition, for terse captions ("upper left corner",
/// "top middle", "dead centre").
fn random_bare_place(rng: &mut ChaCha8Rng, placement: Placement) -> &'static str {
    let phrase = random_place(rng, placement);
    ["in the ", "at the ", "on the ", "along the ", "near the "]
        .iter()
        .find_map(|p| phrase.strip_prefix(p))
        .unwrap_or(phrase)
}

fn placed_items(rng: &mut ChaCha8Rng, scene: &SceneSpec) -> Vec<String> {
    scene
        .groups
        .iter()
        .map(|g| {
            let obj = random_object(rng, g);
            format!("{obj} {}", random_place(rng, g.placement))
        })
        .collect()
}

fn render_template(template: Template, scene: &SceneSpec, rng: &mut ChaCha8Rng) -> Option<String> {
    let bg_variant = rng.random_range(0..8usize);
    let caption = match template {
        Template::Full => format!(
            "{} {}",
            join_list(&placed_items(rng, scene)),
            background_on_phrase(scene, bg_variant)
        ),
        Template::NoPlacement => {
            let items: Vec<String> = scene.groups.iter().map(|g| random_object(rng, g)).collect();
            format!(
                "{} {}",
                join_list(&items),
                background_on_phrase(scene, bg_variant)
            )
        }
        Template::PictureWith => format!(
            "{} with {}",
            background_noun_phrase(scene, bg_variant),
            join_list(&placed_items(rng, scene))
        ),
        Template::Terse => {
            let with_place = scene.groups.len() > 1 || rng.random_bool(0.5);
            let mut parts: Vec<String> = scene
                .groups
                .iter()
                .map(|g| {
                    let noun = random_noun(rng, g.shape);
                    let what = if g.count == 1 {
                        format!("{} {}", g.colour.name(), noun.0)
                    } else {
                        format!("{} {} {}", count_word(g.count), g.colour.name(), noun.1)
                    };
                    let place = if rng.random_bool(0.5) {
                        g.placement.words()
                    } else {
                        random_bare_place(rng, g.placement)
                    };
                    match (with_place, scene.groups.len()) {
                        (false, _) => what,
                        (true, 1) => format!("{what}, {place}"),
                        (true, _) => format!("{what} {place}"),
                    }
                })
                .collect();
            parts.push(terse_background(scene));
            parts.join(", ")
        }
        Template::ThereIs => {
            let verb = if scene.groups[0].count == 1 {
                "is"
            } else {
                "are"
            };
            format!(
                "there {verb} {} {}",
                join_list(&placed_items(rng, scene)),
                background_on_phrase(scene, bg_variant)
            )
        }
        Template::PlacementFirst => {
            let [g] = scene.groups.as_slice() else {
                return None;
            };
            format!(
                "{}, {} {}",
                random_place(rng, g.placement),
                random_object(rng, g),
                background_on_phrase(scene, bg_variant)
            )
        }
        Template::CommaBackground => {
            let noun = BACKGROUND_NOUNS[bg_variant % BACKGROUND_NOUNS.len()];
            let background = match scene.pattern {
                None => format!("{} {noun}", scene.background.name()),
                Some(_) => terse_background(scene),
            };
            format!("{}, {background}", join_list(&placed_items(rng, scene)))
        }
        Template::PlacedOf => {
            if scene.pattern.is_some() {
                return None;
            }
            let c = scene.background.name();
            let noun = ["picture", "image", "canvas"][bg_variant % 3];
            format!(
                "{} of {} {c} {noun}",
                join_list(&placed_items(rng, scene)),
                article(c)
            )
        }
        Template::Sentences => {
            let items = join_list(&placed_items(rng, scene));
            if rng.random_bool(0.5) {
                format!("{items}. {}.", terse_background(scene))
            } else {
                let c = match &scene.pattern {
                    None => scene.background.name().to_string(),
                    Some(_) => terse_background(scene),
                };
                format!("background: {c}. {items}.")
            }
        }
        Template::BackgroundFirst => {
            let items = join_list(&placed_items(rng, scene));
            match (&scene.pattern, rng.random_bool(0.5)) {
                (None, true) => {
                    let c = scene.background.name();
                    let noun = BACKGROUND_NOUNS.choose(rng).expect("nouns are listed");
                    format!("on {} {c} {noun}, {items}", article(c))
                }
                _ => format!("{}, {items}", terse_background(scene)),
            }
        }
        Template::SetBackground => {
            if scene.pattern.is_some() {
                return None;
            }
            let c = scene.background.name();
            let items = join_list(&placed_items(rng, scene));
            match rng.random_range(0..3) {
                0 => format!("make the background {c} and put {items}"),
                1 => format!("{items}, and set the background to {c}"),
                _ => format!("{items}, and make the background {c}"),
            }
        }
        Template::WithBackground => {
            let background = match &scene.pattern {
                None => {
                    let c = scene.background.name();
                    let noun = BACKGROUND_NOUNS.choose(rng).expect("nouns are listed");
                    format!("{} {c} {noun}", article(c))
                }
                Some(_) => format!("a {}", terse_background(scene)),
            };
            format!("{} with {background}", join_list(&placed_items(rng, scene)))
        }
    };
    Some(everyday_form(caption, template, rng))
}

/// Up to [`CAPTIONS_PER_SCENE`] distinct captions: the canonical caption first, then
/// paraphrases from shuffled templates. A scene without objects gets just its background.
pub fn captions(scene: &SceneSpec, rng: &mut ChaCha8Rng) -> Vec<String> {
    if scene.groups.is_empty() {
        return vec![format!(
            "{} with no shapes",
            background_noun_phrase(scene, 0)
        )];
    }
    let mut out = vec![canonical_caption(scene)];
    let mut order = TEMPLATES.to_vec();
    order.shuffle(rng);
    // Two passes over the templates: the second fills in when a paraphrase repeated.
    for template in order.iter().chain(order.iter()) {
        if out.len() >= CAPTIONS_PER_SCENE {
            break;
        }
        if let Some(c) = render_template(*template, scene, rng) {
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::palette::Colour;
    use crate::scene::{Shape, Size, StripeDirection};
    use rand::SeedableRng;

    #[test]
    fn placement_variants_rewrite_the_longest_phrase() {
        let (p, v) =
            placement_variants("a red circle at the top left on a blue background").unwrap();
        assert_eq!(p, Placement::TopLeft);
        assert_eq!(v.len(), 8);
        assert!(v.contains(&"a red circle at the top on a blue background".to_string()));
        assert!(
            v.contains(&"a red circle in the bottom right corner on a blue background".to_string())
        );
        assert!(!v.iter().any(|t| t.contains("top left")), "{v:?}");
        let (p, v) = placement_variants("A cross at the top of the picture").unwrap();
        assert_eq!(p, Placement::Top);
        assert!(v.contains(&"A cross in the center".to_string()), "{v:?}");
        let (p, _) = placement_variants("a star on the left-hand side").unwrap();
        assert_eq!(p, Placement::Left);
        assert_eq!(
            placement_variants("a red circle on a blue background"),
            None
        );
        assert_eq!(
            placement_variants("a red circle on the left and a star on the right"),
            None,
            "two placements: no single layout to contrast"
        );
    }

    fn group(
        shape: Shape,
        colour: Colour,
        size: Size,
        count: u8,
        placement: Placement,
    ) -> ObjectGroup {
        ObjectGroup {
            shape,
            colour,
            size,
            count,
            placement,
            jitter: [0.0, 0.0],
        }
    }

    #[test]
    fn canonical_captions_read_naturally() {
        let scene = SceneSpec {
            background: Colour::Black,
            pattern: None,
            groups: vec![group(
                Shape::Star,
                Colour::Red,
                Size::Small,
                2,
                Placement::TopLeft,
            )],
        };
        assert_eq!(
            canonical_caption(&scene),
            "two small red stars in the top left corner on a black background"
        );
        let scene = SceneSpec {
            background: Colour::Green,
            pattern: Some(BackgroundPattern {
                kind: PatternKind::Striped,
                colour: Colour::White,
                direction: StripeDirection::Diagonal,
            }),
            groups: vec![
                group(
                    Shape::Ring,
                    Colour::Yellow,
                    Size::Large,
                    1,
                    Placement::Center,
                ),
                group(
                    Shape::Cross,
                    Colour::Orange,
                    Size::Small,
                    1,
                    Placement::Bottom,
                ),
            ],
        };
        assert_eq!(
            canonical_caption(&scene),
            "a large yellow ring in the center and a small orange cross at the bottom \
             on a striped green and white background"
        );
    }

    #[test]
    fn articles_and_plurals() {
        let g = group(Shape::Cross, Colour::Orange, Size::Large, 1, Placement::Top);
        assert_eq!(object_phrase(&g, None, false), "an orange cross");
        assert_eq!(
            object_phrase(&g, Some("large"), false),
            "a large orange cross"
        );
        assert_eq!(
            object_phrase(&g, Some("huge"), false),
            "a huge orange cross"
        );
        assert_eq!(object_phrase(&g, None, true), "one orange cross");
        let g = group(Shape::Cross, Colour::Orange, Size::Small, 3, Placement::Top);
        assert_eq!(object_phrase(&g, None, false), "three orange crosses");
        assert_eq!(
            object_phrase(&g, Some("tiny"), false),
            "three tiny orange crosses"
        );
    }

    #[test]
    fn captions_mention_the_scene_and_are_varied() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut templates_seen = std::collections::HashSet::new();
        for _ in 0..300 {
            let scene = SceneSpec::random(&mut rng);
            let caps = captions(&scene, &mut rng);
            assert!(caps.len() >= 4, "{caps:?}");
            let unique: std::collections::HashSet<_> = caps.iter().collect();
            assert_eq!(unique.len(), caps.len());
            for c in &caps {
                // "grey" is the everyday spelling of the palette's "gray".
                let names = |colour: Colour| {
                    c.contains(colour.name()) || (colour == Colour::Gray && c.contains("grey"))
                };
                assert!(names(scene.background), "{c}");
                for g in &scene.groups {
                    assert!(names(g.colour), "{c} lacks {:?}", g.colour);
                    let nouns: Vec<&str> = shape_nouns(g.shape)
                        .iter()
                        .map(|&(one, many)| if g.count == 1 { one } else { many })
                        .collect();
                    assert!(nouns.iter().any(|n| c.contains(n)), "{c} lacks {nouns:?}");
                    if g.count > 1 {
                        assert!(c.contains(&count_word(g.count)), "{c}");
                    }
                }
                if let Some(p) = scene.pattern {
                    assert!(names(p.colour), "{c}");
                }
                templates_seen.insert(c.split(' ').next().unwrap().to_string());
            }
        }
        // Captions start with different words across templates ("a", "there", "in", "red", ...).
        assert!(templates_seen.len() >= 10, "{templates_seen:?}");
    }

    #[test]
    fn terse_and_picture_templates_have_expected_form() {
        let scene = SceneSpec {
            background: Colour::Blue,
            pattern: None,
            groups: vec![group(
                Shape::Circle,
                Colour::Red,
                Size::Large,
                1,
                Placement::Center,
            )],
        };
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut seen_terse = false;
        let mut seen_picture = false;
        for _ in 0..50 {
            for c in captions(&scene, &mut rng) {
                seen_terse |= c == "red circle, blue background"
                    || c == "red circle, center, blue background";
                seen_picture |=
                    c.starts_with("a blue picture with a") || c.starts_with("a blue image with a");
            }
        }
        assert!(seen_terse && seen_picture);
    }
}
