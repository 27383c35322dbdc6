//! Captions and zero-shot probes for composed pictures, in English and Japanese.
//!
//! Every caption names every kind of thing in the picture (with its count) and nothing else;
//! "Kyoto" appears exactly when a pagoda or torii gate does, "the North Pole" exactly when the
//! ground is snow or ice under a night sky. The first caption is the canonical one, which the
//! probes vary in one attribute at a time.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{fits, Backdrop, Ground, ObjectKind, PictureSpec, Sky};
use crate::captions::{count_word, placement_phrases, CAPTIONS_PER_SCENE};
use crate::language::Language;
use crate::palette::Colour;
use crate::scene::Size;
use crate::style::Style;
use crate::zero_shot::{Attribute, ZeroShotTask};

/// The things of one kind in a picture, in order of first appearance.
struct Group {
    kind: ObjectKind,
    count: usize,
    /// The size class when every one of them has the same.
    size: Option<Size>,
}

fn groups(spec: &PictureSpec) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::new();
    for o in &spec.objects {
        match out.iter_mut().find(|g| g.kind == o.kind) {
            Some(g) => {
                g.count += 1;
                if g.size != Some(o.size) {
                    g.size = None;
                }
            }
            None => out.push(Group {
                kind: o.kind,
                count: 1,
                size: Some(o.size),
            }),
        }
    }
    out
}

fn has_ground_thing(spec: &PictureSpec) -> bool {
    spec.objects.iter().any(|o| o.kind.is_ground())
}

// ---------------------------------------------------------------------------------------------
// English.

fn article(next: &str) -> &'static str {
    match next.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

fn join_en(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// "a sunflower", "two small sunflowers", "the sun".
fn en_group(g: &Group, with_size: bool) -> String {
    if g.kind.is_unique() {
        return format!("the {}", g.kind.name());
    }
    let size = match g.size {
        Some(s) if with_size => format!("{} ", s.name()),
        _ => String::new(),
    };
    if g.count == 1 {
        let body = format!("{size}{}", g.kind.name());
        format!("{} {body}", article(&body))
    } else {
        format!(
            "{} {size}{}",
            count_word(g.count.min(255) as u8),
            g.kind.plural()
        )
    }
}

fn en_objects(spec: &PictureSpec, with_size: bool) -> String {
    let items: Vec<String> = groups(spec)
        .iter()
        .map(|g| en_group(g, with_size))
        .collect();
    join_en(&items)
}

/// "an oil painting of"; variant 0 is canonical.
fn en_style_prefix(style: Style, variant: usize) -> &'static str {
    let table: &[&str] = match style {
        Style::Flat => &[
            "an illustration of",
            "a picture of",
            "a flat illustration of",
        ],
        Style::OilPainting => &[
            "an oil painting of",
            "a painting in oils of",
            "an oil painting showing",
        ],
        Style::Watercolour => &[
            "a watercolour of",
            "a watercolour painting of",
            "a watercolor painting of",
        ],
        Style::PixelArt => &[
            "pixel art of",
            "a pixel art picture of",
            "8-bit pixel art of",
        ],
        Style::PencilSketch => &[
            "a pencil sketch of",
            "a pencil drawing of",
            "a graphite sketch of",
        ],
    };
    table[variant % table.len()]
}

/// "oil painting", for captions that end with the style.
fn en_style_suffix(style: Style, variant: usize) -> &'static str {
    let table: &[&str] = match style {
        Style::Flat => &["illustration", "flat illustration"],
        Style::OilPainting => &["oil painting", "oil on canvas"],
        Style::Watercolour => &["watercolour", "watercolor"],
        Style::PixelArt => &["pixel art", "pixel art"],
        Style::PencilSketch => &["pencil sketch", "pencil drawing"],
    };
    table[variant % table.len()]
}

fn en_ground(ground: Ground, has_ground: bool, variant: usize) -> &'static str {
    let table: [&str; 2] = match (ground, has_ground) {
        (Ground::Grass, true) => ["in a green meadow", "on green grass"],
        (Ground::Grass, false) => ["over a green meadow", "above green fields"],
        (Ground::Snow, true) => ["in the snow", "on snowy ground"],
        (Ground::Snow, false) => ["over a snowy field", "above the snow"],
        (Ground::Ice, true) => ["on the ice", "on an ice field"],
        (Ground::Ice, false) => ["over the ice", "above an ice field"],
        (Ground::Sea, true) => ["by the sea", "by the ocean"],
        (Ground::Sea, false) => ["over the sea", "above the ocean"],
    };
    table[variant % 2]
}

fn en_sky(sky: Sky, variant: usize) -> &'static str {
    let table: [&str; 2] = match sky {
        Sky::Day => ["under a blue sky", "in the daytime"],
        Sky::Sunset => ["at sunset", "under a sunset sky"],
        Sky::Night => ["at night", "under a starry sky"],
        Sky::Aurora => ["under the northern lights", "under an aurora"],
    };
    table[variant % 2]
}

/// "on a blue background", "in the snow under the northern lights".
fn en_backdrop(spec: &PictureSpec, variant: usize) -> String {
    match spec.backdrop {
        Backdrop::Plain(c) => {
            let on = if variant.is_multiple_of(2) {
                "on"
            } else {
                "against"
            };
            format!("{on} {} {c} background", article(c.name()))
        }
        Backdrop::Landscape { sky, ground } => format!(
            "{} {}",
            en_ground(ground, has_ground_thing(spec), variant),
            en_sky(sky, variant / 2)
        ),
    }
}

/// "Kyoto", "the North Pole", "Kyoto at the North Pole".
fn en_place(spec: &PictureSpec) -> Option<&'static str> {
    match (spec.in_kyoto(), spec.at_north_pole()) {
        (true, true) => Some("Kyoto at the North Pole"),
        (true, false) => Some("Kyoto"),
        (false, true) => Some("the North Pole"),
        (false, false) => None,
    }
}

/// " in Kyoto", " at the North Pole", ", Kyoto at the North Pole".
fn en_place_suffix(spec: &PictureSpec) -> String {
    match (spec.in_kyoto(), spec.at_north_pole()) {
        (true, true) => ", Kyoto at the North Pole".into(),
        (true, false) => " in Kyoto".into(),
        (false, true) => " at the North Pole".into(),
        (false, false) => String::new(),
    }
}

fn en_canonical(spec: &PictureSpec) -> String {
    format!(
        "{} {} {}{}",
        en_style_prefix(spec.style, 0),
        en_objects(spec, false),
        en_backdrop(spec, 0),
        en_place_suffix(spec)
    )
}

fn en_template(template: usize, spec: &PictureSpec, rng: &mut ChaCha8Rng) -> Option<String> {
    let sv = rng.random_range(0..3usize);
    let bv = rng.random_range(0..4usize);
    let with_size = rng.random_bool(0.5);
    let prefix = en_style_prefix(spec.style, sv);
    let suffix = en_style_suffix(spec.style, sv);
    let objects = en_objects(spec, with_size);
    let backdrop = en_backdrop(spec, bv);
    let place = en_place_suffix(spec);
    Some(match template {
        0 => format!("{objects} {backdrop}{place}, {suffix}"),
        1 => format!("{prefix} {objects}"),
        2 => match (en_place(spec), spec.backdrop) {
            (Some(name), _) => format!("{name}: {prefix} {objects}"),
            (None, Backdrop::Landscape { sky, ground }) => {
                let g = match ground {
                    Ground::Grass => "green",
                    Ground::Snow => "snowy",
                    Ground::Ice => "icy",
                    Ground::Sea => "seaside",
                };
                let s = match sky {
                    Sky::Day => "daytime",
                    Sky::Sunset => "sunset",
                    Sky::Night => "night",
                    Sky::Aurora => "aurora",
                };
                format!("{prefix} a {g} {s} landscape with {objects}")
            }
            (None, Backdrop::Plain(c)) => format!("{prefix} {objects} on {c}"),
        },
        3 => format!("{objects} {backdrop}{place}"),
        4 => {
            let o = spec.main_object()?;
            let phrases = placement_phrases(o.placement);
            let at = phrases[rng.random_range(0..phrases.len())];
            format!("{prefix} {objects} {at}, {backdrop}")
        }
        _ => format!("{suffix}: {objects} {backdrop}{place}"),
    })
}

const EN_TEMPLATES: usize = 6;

// ---------------------------------------------------------------------------------------------
// Japanese.

/// Colour adjectives as they precede 背景 (青い背景).
fn ja_colour(c: Colour) -> &'static str {
    match c {
        Colour::Red => "赤い",
        Colour::Green => "緑の",
        Colour::Blue => "青い",
        Colour::Yellow => "黄色い",
        Colour::Orange => "オレンジ色の",
        Colour::Purple => "紫の",
        Colour::White => "白い",
        Colour::Black => "黒い",
        Colour::Pink => "ピンクの",
        Colour::Cyan => "水色の",
        Colour::Brown => "茶色の",
        Colour::Gray => "灰色の",
    }
}

fn ja_number(n: usize) -> String {
    const WORDS: [&str; 10] = ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"];
    WORDS
        .get(n)
        .map(|w| w.to_string())
        .unwrap_or_else(|| n.to_string())
}

/// 「ひまわり」, 「二本の小さなひまわり」, 「太陽」.
fn ja_group(g: &Group, with_size: bool) -> String {
    let size = match g.size {
        Some(Size::Small) if with_size && !g.kind.is_unique() => "小さな",
        Some(Size::Large) if with_size && !g.kind.is_unique() => "大きな",
        _ => "",
    };
    if g.count == 1 {
        format!("{size}{}", g.kind.ja_name())
    } else {
        format!(
            "{}{}の{size}{}",
            ja_number(g.count),
            g.kind.ja_counter(),
            g.kind.ja_name()
        )
    }
}

fn ja_objects(spec: &PictureSpec, with_size: bool) -> String {
    groups(spec)
        .iter()
        .map(|g| ja_group(g, with_size))
        .collect::<Vec<_>>()
        .join("と")
}

fn ja_ground(ground: Ground, has_ground: bool) -> &'static str {
    match (ground, has_ground) {
        (Ground::Grass, true) => "草原の",
        (Ground::Grass, false) => "草原の上の",
        (Ground::Snow, true) => "雪の上の",
        (Ground::Snow, false) => "雪原の上の",
        (Ground::Ice, true) => "氷の上の",
        (Ground::Ice, false) => "氷原の上の",
        (Ground::Sea, true) => "海辺の",
        (Ground::Sea, false) => "海の上の",
    }
}

fn ja_sky(sky: Sky) -> &'static str {
    match sky {
        Sky::Day => "青空",
        Sky::Sunset => "夕焼け空",
        Sky::Night => "星空",
        Sky::Aurora => "オーロラの夜空",
    }
}

/// 「京都の」, 「北極の」, 「北極の京都の」.
fn ja_place(spec: &PictureSpec) -> &'static str {
    match (spec.in_kyoto(), spec.at_north_pole()) {
        (true, true) => "北極の京都の",
        (true, false) => "京都の",
        (false, true) => "北極の",
        (false, false) => "",
    }
}

/// The scene without its style: 「青い背景のひまわり」, 「北極の雪の上の家、オーロラの夜空」.
fn ja_scene(spec: &PictureSpec, with_size: bool, particle: &str) -> String {
    let objects = ja_objects(spec, with_size);
    match spec.backdrop {
        Backdrop::Plain(c) => format!("{}背景{particle}{objects}", ja_colour(c)),
        Backdrop::Landscape { sky, ground } => format!(
            "{}{}{objects}、{}",
            ja_place(spec),
            ja_ground(ground, has_ground_thing(spec)),
            ja_sky(sky)
        ),
    }
}

fn ja_canonical(spec: &PictureSpec) -> String {
    format!("{}の{}", ja_scene(spec, false, "の"), spec.style.ja_name())
}

fn ja_template(template: usize, spec: &PictureSpec, rng: &mut ChaCha8Rng) -> Option<String> {
    let with_size = rng.random_bool(0.5);
    let style = spec.style.ja_name();
    let objects = ja_objects(spec, with_size);
    Some(match template {
        0 => format!("{style}の{objects}"),
        1 => format!("{objects}の{style}"),
        2 => ja_scene(spec, with_size, "に"),
        3 => {
            let place = ja_place(spec);
            if place.is_empty() {
                format!("{style}：{}", ja_scene(spec, with_size, "の"))
            } else {
                format!("{place}{objects}の{style}")
            }
        }
        4 => match (spec.in_kyoto(), spec.at_north_pole()) {
            (true, true) => format!("北極の京都、{objects}、{style}"),
            (true, false) => format!("京都、{objects}、{style}"),
            (false, true) => format!("北極、{objects}、{style}"),
            (false, false) => format!("{}、{style}", ja_scene(spec, with_size, "に")),
        },
        _ => format!("{}の{style}", ja_scene(spec, true, "の")),
    })
}

const JA_TEMPLATES: usize = 6;

/// Every word the Japanese picture captions are made of (object names, counters, numbers,
/// backdrops, places, styles, particles; colours are the shapes captions'), for the unknown-word lexicon
/// ([`crate::japanese_lexicon`]); a test checks every caption segments into the lexicon.
pub(crate) fn japanese_words() -> Vec<&'static str> {
    let mut words: Vec<&'static str> = vec![
        "二",
        "三",
        "小さな",
        "大きな",
        "背景",
        "の",
        "に",
        "と",
        "上",
        "草原",
        "雪",
        "雪原",
        "氷",
        "氷原",
        "海辺",
        "海",
        "青空",
        "夕焼け空",
        "星空",
        "オーロラ",
        "夜空",
        "京都",
        "北極",
    ];
    for kind in ObjectKind::ALL {
        words.push(kind.ja_name());
        // 「二つ」 is a word of the shapes captions already; the other counters are new.
        if kind.ja_counter() != "つ" {
            words.push(kind.ja_counter());
        }
    }
    words.extend(Style::ALL.iter().map(|s| s.ja_name()));
    // Colours (赤い, 緑の) segment into the shapes captions' colour words and particles.
    words
}

// ---------------------------------------------------------------------------------------------
// Public API.

/// The canonical caption: every kind with its count, the backdrop, the place and the style in
/// a fixed wording. Caption 0 of [`picture_captions`] and the base of every probe candidate.
pub fn picture_canonical_caption(spec: &PictureSpec, language: Language) -> String {
    match language {
        Language::English => en_canonical(spec),
        Language::Japanese => ja_canonical(spec),
    }
}

/// Up to [`CAPTIONS_PER_SCENE`] distinct captions: the canonical one first, then paraphrases
/// from shuffled templates.
pub fn picture_captions(
    spec: &PictureSpec,
    language: Language,
    rng: &mut ChaCha8Rng,
) -> Vec<String> {
    let mut out = vec![picture_canonical_caption(spec, language)];
    let n = match language {
        Language::English => EN_TEMPLATES,
        Language::Japanese => JA_TEMPLATES,
    };
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(rng);
    // Two passes: the second fills in when a paraphrase repeated.
    for &t in order.iter().chain(order.iter()) {
        if out.len() >= CAPTIONS_PER_SCENE {
            break;
        }
        let caption = match language {
            Language::English => en_template(t, spec, rng),
            Language::Japanese => ja_template(t, spec, rng),
        };
        if let Some(c) = caption {
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    out
}

/// Zero-shot probes for `spec`: the style among all five (always), and the object among the
/// kinds that could stand in its place (only for pictures of one thing). Candidates are
/// canonical captions of the picture with just that one thing changed.
pub fn picture_probes(spec: &PictureSpec, language: Language) -> Vec<ZeroShotTask> {
    let mut out = Vec::with_capacity(2);
    if let Some(main) = spec.main_object() {
        let kinds: Vec<ObjectKind> = ObjectKind::ALL
            .iter()
            .copied()
            .filter(|&k| fits(k, spec.backdrop, main.placement))
            .collect();
        if let (true, Some(correct)) =
            (kinds.len() >= 2, kinds.iter().position(|&k| k == main.kind))
        {
            let candidates = kinds
                .iter()
                .map(|&k| {
                    let mut s = spec.clone();
                    s.objects[0].kind = k;
                    picture_canonical_caption(&s, language)
                })
                .collect();
            out.push(ZeroShotTask {
                attribute: Attribute::Object,
                candidates,
                correct,
            });
        }
    }
    if let Some(correct) = Style::ALL.iter().position(|&s| s == spec.style) {
        let candidates = Style::ALL
            .iter()
            .map(|&style| {
                let mut s = spec.clone();
                s.style = style;
                picture_canonical_caption(&s, language)
            })
            .collect();
        out.push(ZeroShotTask {
            attribute: Attribute::Style,
            candidates,
            correct,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::picture::PictureObject;
    use crate::scene::Placement;
    use rand::SeedableRng;

    /// Whether `word` occurs in `text` as a whole word (so "sun" is not found in "sunset").
    fn mentions(text: &str, word: &str) -> bool {
        let is_letter = |c: Option<char>| c.is_some_and(|c| c.is_alphabetic());
        text.match_indices(word).any(|(at, _)| {
            !is_letter(text[..at].chars().next_back())
                && !is_letter(text[at + word.len()..].chars().next())
        })
    }

    fn object(kind: ObjectKind, placement: Placement, size: Size) -> PictureObject {
        PictureObject {
            kind,
            placement,
            size,
            scale: 1.0,
            jitter: [0.0, 0.0],
            aspect: 1.0,
            tilt: 0.0,
            petals: 16,
            variant: 0,
            tint: [0, 0, 0],
        }
    }

    #[test]
    fn captions_name_exactly_what_is_drawn() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let mut saw_both_places = false;
        for _ in 0..500 {
            let spec = PictureSpec::random(&mut rng);
            for language in Language::ALL {
                let caps = picture_captions(&spec, language, &mut rng);
                assert_eq!(caps.len(), CAPTIONS_PER_SCENE, "{caps:?}");
                assert_eq!(caps[0], picture_canonical_caption(&spec, language));
                let unique: std::collections::HashSet<_> = caps.iter().collect();
                assert_eq!(unique.len(), caps.len());
                for (i, c) in caps.iter().enumerate() {
                    for kind in ObjectKind::ALL {
                        let present = spec.count(kind) > 0;
                        let named = match language {
                            Language::English => {
                                mentions(c, kind.name()) || mentions(c, kind.plural())
                            }
                            Language::Japanese => c.contains(kind.ja_name()),
                        };
                        assert_eq!(present, named, "{kind:?} in {c:?} of {spec:?}");
                    }
                    let (kyoto, pole) = match language {
                        Language::English => (c.contains("Kyoto"), c.contains("North Pole")),
                        Language::Japanese => {
                            assert_eq!(Language::of_text(c), Language::Japanese, "{c}");
                            (c.contains("京都"), c.contains("北極"))
                        }
                    };
                    // A place is only named when it is shown, and the canonical caption always
                    // names it; shorter paraphrases may leave it out.
                    assert!(!kyoto || spec.in_kyoto(), "{c}");
                    assert!(!pole || spec.at_north_pole(), "{c}");
                    if i == 0 {
                        assert_eq!(kyoto, spec.in_kyoto(), "{c}");
                        assert_eq!(pole, spec.at_north_pole(), "{c}");
                    }
                    saw_both_places |= kyoto && pole;
                }
                // The style is named in all but at most one caption.
                let styled = caps
                    .iter()
                    .filter(|c| match language {
                        Language::English => {
                            (0..3).any(|v| c.contains(en_style_prefix(spec.style, v)))
                                || (0..2).any(|v| c.contains(en_style_suffix(spec.style, v)))
                        }
                        Language::Japanese => c.contains(spec.style.ja_name()),
                    })
                    .count();
                assert!(styled >= caps.len() - 1, "{caps:?}");
            }
        }
        assert!(saw_both_places);
    }

    #[test]
    fn canonical_captions_read_as_intended() {
        let mut spec = PictureSpec {
            backdrop: Backdrop::Plain(Colour::Blue),
            objects: vec![object(
                ObjectKind::Sunflower,
                Placement::Center,
                Size::Large,
            )],
            style: Style::OilPainting,
        };
        assert_eq!(
            picture_canonical_caption(&spec, Language::English),
            "an oil painting of a sunflower on a blue background"
        );
        assert_eq!(
            picture_canonical_caption(&spec, Language::Japanese),
            "青い背景のひまわりの油絵"
        );
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let ja = picture_captions(&spec, Language::Japanese, &mut rng);
        assert!(
            ja.iter()
                .any(|c| c.trim_start_matches("大きな") == "ひまわりの油絵"),
            "{ja:?}"
        );

        spec.backdrop = Backdrop::Landscape {
            sky: Sky::Aurora,
            ground: Ground::Snow,
        };
        spec.style = Style::Watercolour;
        spec.objects = vec![
            object(ObjectKind::Pagoda, Placement::Center, Size::Small),
            object(ObjectKind::Moon, Placement::TopLeft, Size::Small),
        ];
        assert!(spec.is_consistent());
        assert_eq!(
            picture_canonical_caption(&spec, Language::English),
            "a watercolour of a pagoda and the moon in the snow under the northern lights, \
             Kyoto at the North Pole"
        );
        assert_eq!(
            picture_canonical_caption(&spec, Language::Japanese),
            "北極の京都の雪の上の五重塔と月、オーロラの夜空の水彩画"
        );

        spec.backdrop = Backdrop::Landscape {
            sky: Sky::Day,
            ground: Ground::Grass,
        };
        spec.style = Style::PixelArt;
        spec.objects = vec![
            object(ObjectKind::Sunflower, Placement::Left, Size::Small),
            object(ObjectKind::Sunflower, Placement::Right, Size::Small),
        ];
        assert_eq!(
            picture_canonical_caption(&spec, Language::English),
            "pixel art of two sunflowers in a green meadow under a blue sky"
        );
        assert_eq!(
            picture_canonical_caption(&spec, Language::Japanese),
            "草原の二本のひまわり、青空のドット絵"
        );
        let caps = picture_captions(&spec, Language::English, &mut rng);
        assert!(
            caps.iter()
                .all(|c| c.contains("two") && c.contains("sunflowers")),
            "{caps:?}"
        );
    }

    #[test]
    fn probes_hold_the_true_answer() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut object_probes = 0;
        for _ in 0..300 {
            let spec = PictureSpec::random(&mut rng);
            for language in Language::ALL {
                let probes = picture_probes(&spec, language);
                let canonical = picture_canonical_caption(&spec, language);
                for p in &probes {
                    assert_eq!(p.candidates[p.correct], canonical);
                    let unique: std::collections::HashSet<_> = p.candidates.iter().collect();
                    assert_eq!(unique.len(), p.candidates.len(), "{p:?}");
                    assert!(p.candidates.len() >= 2);
                }
                let style = probes.iter().find(|p| p.attribute == Attribute::Style);
                assert_eq!(style.map(|p| p.candidates.len()), Some(5));
                let object = probes.iter().find(|p| p.attribute == Attribute::Object);
                if spec.objects.len() > 1 {
                    assert!(object.is_none());
                }
                if let Some(p) = object {
                    object_probes += 1;
                    // Every candidate is a picture that keeps the composition rules.
                    assert!(p.candidates.iter().all(|c| !c.is_empty()));
                    let kinds: Vec<ObjectKind> = ObjectKind::ALL
                        .iter()
                        .copied()
                        .filter(|&k| fits(k, spec.backdrop, spec.objects[0].placement))
                        .collect();
                    assert_eq!(kinds.len(), p.candidates.len());
                    assert_eq!(kinds[p.correct], spec.objects[0].kind);
                }
            }
        }
        assert!(object_probes > 200, "{object_probes}");
    }

    #[test]
    fn object_probe_swaps_only_plausible_things() {
        let spec = PictureSpec {
            backdrop: Backdrop::Landscape {
                sky: Sky::Night,
                ground: Ground::Ice,
            },
            objects: vec![object(ObjectKind::Moon, Placement::Top, Size::Large)],
            style: Style::Flat,
        };
        let probes = picture_probes(&spec, Language::English);
        let object = &probes[0];
        assert_eq!(object.attribute, Attribute::Object);
        // Only the moon and a cloud fit the night sky: no sun.
        assert_eq!(object.candidates.len(), 2, "{:?}", object.candidates);
        assert!(object.candidates.iter().all(|c| !mentions(c, "sun")));
    }
}
