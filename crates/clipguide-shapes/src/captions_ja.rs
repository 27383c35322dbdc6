//! Japanese captions of a `SceneSpec`, the Japanese word lists behind them, and the lexicon
//! (every word and particle of those captions) that segments Japanese text for the judge's
//! parser and for unknown-word detection.
//!
//! The captions follow Japanese word order: background, then place, then the object
//! (「黄色い背景の中央に大きな青い星」). Like the English captions, every caption states only what
//! is true of the scene; size and count may be left out, colour, shape and background never.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::captions::{canonical_caption, captions, CAPTIONS_PER_SCENE};
use crate::language::Language;
use crate::palette::Colour;
use crate::scene::{
    BackgroundPattern, ObjectGroup, PatternKind, Placement, SceneSpec, Shape, Size,
};

/// Attributive colour forms ("赤い丸", "緑の丸"); index 0 is the canonical one.
pub fn colour_adjectives_ja(colour: Colour) -> &'static [&'static str] {
    match colour {
        Colour::Red => &["赤い", "赤の"],
        Colour::Green => &["緑の", "緑色の"],
        Colour::Blue => &["青い", "青の"],
        Colour::Yellow => &["黄色い", "黄色の"],
        Colour::Orange => &["オレンジ色の", "オレンジの"],
        Colour::Purple => &["紫の", "紫色の"],
        Colour::White => &["白い", "白の"],
        Colour::Black => &["黒い", "黒の"],
        Colour::Pink => &["ピンクの", "ピンク色の"],
        Colour::Cyan => &["水色の", "シアンの"],
        Colour::Brown => &["茶色の", "茶色い"],
        Colour::Gray => &["灰色の", "グレーの"],
    }
}

/// The colour as a noun ("背景は赤").
pub fn colour_noun_ja(colour: Colour) -> &'static str {
    match colour {
        Colour::Red => "赤",
        Colour::Green => "緑",
        Colour::Blue => "青",
        Colour::Yellow => "黄色",
        Colour::Orange => "オレンジ色",
        Colour::Purple => "紫",
        Colour::White => "白",
        Colour::Black => "黒",
        Colour::Pink => "ピンク",
        Colour::Cyan => "水色",
        Colour::Brown => "茶色",
        Colour::Gray => "灰色",
    }
}

/// "青地" ("a blue ground"): only the colours for which the word is idiomatic.
fn colour_ground_ja(colour: Colour) -> Option<&'static str> {
    match colour {
        Colour::Red => Some("赤地"),
        Colour::Green => Some("緑地"),
        Colour::Blue => Some("青地"),
        Colour::Yellow => Some("黄地"),
        Colour::White => Some("白地"),
        Colour::Black => Some("黒地"),
        _ => None,
    }
}

/// Every colour word stem the Japanese parser reads, with its colour. Attributive forms are
/// these stems plus い or の.
const COLOUR_STEMS_JA: [(&str, Colour); 25] = [
    ("赤", Colour::Red),
    ("赤い", Colour::Red),
    ("緑", Colour::Green),
    ("緑色", Colour::Green),
    ("青", Colour::Blue),
    ("青い", Colour::Blue),
    ("黄色", Colour::Yellow),
    ("黄色い", Colour::Yellow),
    ("黄", Colour::Yellow),
    ("オレンジ", Colour::Orange),
    ("オレンジ色", Colour::Orange),
    ("紫", Colour::Purple),
    ("紫色", Colour::Purple),
    ("白", Colour::White),
    ("白い", Colour::White),
    ("黒", Colour::Black),
    ("黒い", Colour::Black),
    ("ピンク", Colour::Pink),
    ("ピンク色", Colour::Pink),
    ("水色", Colour::Cyan),
    ("シアン", Colour::Cyan),
    ("茶色", Colour::Brown),
    ("茶色い", Colour::Brown),
    ("灰色", Colour::Gray),
    ("グレー", Colour::Gray),
];

/// The colour a Japanese lexicon word names ("赤い", "緑色", "黄"), if any.
pub fn colour_from_word_ja(word: &str) -> Option<Colour> {
    COLOUR_STEMS_JA
        .iter()
        .find(|(w, _)| *w == word)
        .map(|&(_, c)| c)
}

/// Shape words; index 0 is the canonical one.
pub fn shape_words_ja(shape: Shape) -> &'static [&'static str] {
    match shape {
        Shape::Circle => &["丸", "円"],
        Shape::Square => &["四角", "正方形", "四角形"],
        Shape::Triangle => &["三角", "三角形"],
        Shape::Star => &["星", "星形"],
        Shape::Cross => &["十字", "十字形"],
        Shape::Ring => &["輪", "リング"],
    }
}

/// The shape a Japanese word names.
pub fn shape_from_word_ja(word: &str) -> Option<Shape> {
    Shape::ALL
        .iter()
        .copied()
        .find(|&s| shape_words_ja(s).contains(&word))
}

/// Size words; index 0 is the canonical one.
pub fn size_words_ja(size: Size) -> &'static [&'static str] {
    match size {
        Size::Large => &["大きな", "大きい", "大きめの"],
        Size::Small => &["小さな", "小さい", "小さめの"],
    }
}

/// The size a Japanese word names.
pub fn size_from_word_ja(word: &str) -> Option<Size> {
    Size::ALL
        .iter()
        .copied()
        .find(|&s| size_words_ja(s).contains(&word))
}

/// Count words for 1..=3 ("二つ", "2個", "ふたつ"); index 0 is the canonical one. Empty otherwise.
pub fn count_words_ja(count: u8) -> &'static [&'static str] {
    match count {
        1 => &["一つ", "1個", "ひとつ"],
        2 => &["二つ", "2個", "ふたつ"],
        3 => &["三つ", "3個", "みっつ"],
        _ => &[],
    }
}

/// The count a Japanese word names (full-width digits should be folded to ASCII first).
pub fn count_from_word_ja(word: &str) -> Option<u8> {
    (1..=3u8).find(|&n| count_words_ja(n).contains(&word))
}

/// Placement noun phrases (followed by に in captions); index 0 is canonical. Top and bottom
/// avoid the bare 上/下, which after 「背景の」 would read "on/under the background".
pub fn placement_phrases_ja(placement: Placement) -> &'static [&'static str] {
    match placement {
        Placement::TopLeft => &["左上", "左上の隅"],
        Placement::Top => &["上部", "上の方"],
        Placement::TopRight => &["右上", "右上の隅"],
        Placement::Left => &["左側", "左"],
        Placement::Center => &["中央", "真ん中", "中心"],
        Placement::Right => &["右側", "右"],
        Placement::BottomLeft => &["左下", "左下の隅"],
        Placement::Bottom => &["下部", "下の方"],
        Placement::BottomRight => &["右下", "右下の隅"],
    }
}

/// The placement a Japanese lexicon word names (「左上」, 「真ん中」, 「上」).
pub fn placement_from_word_ja(word: &str) -> Option<Placement> {
    Some(match word {
        "左上" => Placement::TopLeft,
        "上" | "上部" => Placement::Top,
        "右上" => Placement::TopRight,
        "左" | "左側" => Placement::Left,
        "中央" | "真ん中" | "中心" => Placement::Center,
        "右" | "右側" => Placement::Right,
        "左下" => Placement::BottomLeft,
        "下" | "下部" => Placement::Bottom,
        "右下" => Placement::BottomRight,
        _ => return None,
    })
}

/// Pattern nouns; index 0 is canonical.
fn pattern_words_ja(kind: PatternKind) -> &'static [&'static str] {
    match kind {
        PatternKind::Striped => &["縞模様", "ストライプ"],
        PatternKind::Dotted => &["水玉模様", "ドット"],
    }
}

/// Nouns and function words of the captions and probes that are not in the tables above.
const OTHER_WORDS_JA: [&str; 23] = [
    "背景",
    "地",
    "画像",
    "図形",
    "隅",
    "方",
    "の",
    "に",
    "と",
    "が",
    "は",
    "で",
    "ある",
    "あります",
    "入った",
    "上",
    "下",
    "色",
    "ない",
    "を",
    "描いて",
    "ください",
    "して",
];

/// Every word and particle of the Japanese captions and zero-shot probes: the units a Japanese
/// run of text is segmented into (greedy longest match). Built from the word lists of this
/// module, so a new caption word only needs adding to its list (a test checks that every
/// caption segments into these words and that every word is used).
pub fn japanese_lexicon() -> &'static BTreeSet<String> {
    static WORDS: OnceLock<BTreeSet<String>> = OnceLock::new();
    WORDS.get_or_init(|| {
        let mut words: BTreeSet<String> = BTreeSet::new();
        let mut add = |w: &str| {
            words.insert(w.to_string());
        };
        COLOUR_STEMS_JA.iter().for_each(|(w, _)| add(w));
        for s in Shape::ALL {
            shape_words_ja(s).iter().for_each(|w| add(w));
        }
        for s in Size::ALL {
            size_words_ja(s).iter().for_each(|w| add(w));
        }
        for n in 1..=3 {
            count_words_ja(n).iter().for_each(|w| add(w));
        }
        for p in Placement::ALL {
            // Phrases such as 「左上の隅」 are several words: the atoms are listed singly.
            for phrase in placement_phrases_ja(p) {
                if placement_from_word_ja(phrase).is_some() {
                    add(phrase);
                }
            }
        }
        for k in [PatternKind::Striped, PatternKind::Dotted] {
            pattern_words_ja(k).iter().for_each(|w| add(w));
        }
        OTHER_WORDS_JA.iter().for_each(|w| add(w));
        crate::picture::japanese_words().iter().for_each(|w| add(w));
        words
    })
}

/// Whether `c` belongs to a Japanese run of text: kana (with the long-vowel mark), CJK
/// ideographs (with 々) or half-width katakana; the same ranges as [`Language::of_text`].
pub fn is_japanese_char(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0xFF66..=0xFF9F | 0x3005)
}

/// Folds full-width digits (「２個」) to ASCII.
pub fn fold_digits(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap_or(c),
            _ => c,
        })
        .collect()
}

/// One piece of a segmented Japanese run: a lexicon word, or a maximal run no word matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub text: String,
    pub known: bool,
}

/// Segments one run of Japanese text by greedy longest match against `lexicon`; the characters
/// where no word starts are gathered into maximal unknown segments
/// (「ひまわりの油絵」 → ひまわり?, の, 油絵?).
pub fn segment_japanese(run: &str, lexicon: &BTreeSet<String>) -> Vec<Segment> {
    let longest = lexicon.iter().map(|w| w.chars().count()).max().unwrap_or(0);
    let chars: Vec<char> = run.chars().collect();
    let mut out: Vec<Segment> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let matched = (1..=longest.min(chars.len() - i)).rev().find(|&n| {
            let candidate: String = chars[i..i + n].iter().collect();
            lexicon.contains(&candidate)
        });
        match matched {
            Some(n) => {
                out.push(Segment {
                    text: chars[i..i + n].iter().collect(),
                    known: true,
                });
                i += n;
            }
            None => {
                match out.last_mut() {
                    Some(last) if !last.known => last.text.push(chars[i]),
                    _ => out.push(Segment {
                        text: chars[i].to_string(),
                        known: false,
                    }),
                }
                i += 1;
            }
        }
    }
    out
}

/// Splits `text` into runs, in order: `(true, run)` for Japanese runs (digits directly before
/// a Japanese character, as in 「2個」, belong to the run), `(false, run)` for everything else.
pub fn japanese_runs(text: &str) -> Vec<(bool, String)> {
    let chars: Vec<char> = text.chars().collect();
    let mut japanese: Vec<bool> = chars.iter().map(|&c| is_japanese_char(c)).collect();
    // A digit run followed by a Japanese character joins it.
    for i in (0..chars.len()).rev() {
        if chars[i].is_ascii_digit() && japanese.get(i + 1).copied().unwrap_or(false) {
            japanese[i] = true;
        }
    }
    let mut runs: Vec<(bool, String)> = Vec::new();
    for (c, j) in chars.into_iter().zip(japanese) {
        match runs.last_mut() {
            Some((kind, run)) if *kind == j => run.push(c),
            _ => runs.push((j, c.to_string())),
        }
    }
    runs
}

/// The canonical object phrase: 「大きな青い星」, 「二つの小さな赤い星」.
fn object_phrase_ja(group: &ObjectGroup) -> String {
    let body = format!(
        "{}{}{}",
        size_words_ja(group.size)[0],
        colour_adjectives_ja(group.colour)[0],
        shape_words_ja(group.shape)[0]
    );
    if group.count == 1 {
        body
    } else {
        format!("{}の{body}", count_phrase(group.count, 0))
    }
}

fn count_phrase(count: u8, variant: usize) -> String {
    let words = count_words_ja(count);
    match words.get(variant % words.len().max(1)) {
        Some(w) => w.to_string(),
        None => format!("{count}個"),
    }
}

/// The canonical background noun phrase: 「青い背景」, 「緑と白の縞模様の背景」.
fn background_phrase_ja(scene: &SceneSpec) -> String {
    match &scene.pattern {
        None => format!("{}背景", colour_adjectives_ja(scene.background)[0]),
        Some(p) => format!(
            "{}と{}の{}の背景",
            colour_noun_ja(scene.background),
            colour_noun_ja(p.colour),
            pattern_words_ja(p.kind)[0]
        ),
    }
}

/// The canonical Japanese caption: every attribute stated, fixed phrasing
/// (「黄色い背景の中央に大きな青い星」, 「黒い背景の左上に二つの小さな赤い星、右下に大きな白い輪」).
pub fn canonical_caption_ja(scene: &SceneSpec) -> String {
    let background = background_phrase_ja(scene);
    if scene.groups.is_empty() {
        return format!("図形のない{background}");
    }
    let items: Vec<String> = scene
        .groups
        .iter()
        .map(|g| {
            format!(
                "{}に{}",
                placement_phrases_ja(g.placement)[0],
                object_phrase_ja(g)
            )
        })
        .collect();
    format!("{background}の{}", items.join("、"))
}

/// A random background noun phrase (「青い背景」, 「青の背景」, 「緑と白のストライプの背景」,
/// 「白いドットが入った緑の背景」).
fn random_background(rng: &mut ChaCha8Rng, scene: &SceneSpec) -> String {
    let bg = scene.background;
    match &scene.pattern {
        None => {
            if rng.random_bool(0.5) {
                format!("{}背景", pick(rng, colour_adjectives_ja(bg)))
            } else {
                format!("{}の背景", colour_noun_ja(bg))
            }
        }
        Some(p) => background_pattern_phrase(rng, bg, p),
    }
}

fn background_pattern_phrase(rng: &mut ChaCha8Rng, bg: Colour, p: &BackgroundPattern) -> String {
    let pattern = pick(rng, pattern_words_ja(p.kind));
    if rng.random_bool(0.5) {
        format!(
            "{}と{}の{pattern}の背景",
            colour_noun_ja(bg),
            colour_noun_ja(p.colour)
        )
    } else {
        format!(
            "{}{pattern}が入った{}の背景",
            pick(rng, colour_adjectives_ja(p.colour)),
            colour_noun_ja(bg)
        )
    }
}

/// 「青い背景に」 or, for plain backgrounds that have the word, 「青地に」.
fn random_background_at(rng: &mut ChaCha8Rng, scene: &SceneSpec) -> String {
    match (scene.pattern, colour_ground_ja(scene.background)) {
        (None, Some(ground)) if rng.random_bool(0.3) => ground.to_string(),
        _ => random_background(rng, scene),
    }
}

fn pick<'a>(rng: &mut ChaCha8Rng, words: &[&'a str]) -> &'a str {
    words.choose(rng).copied().unwrap_or("")
}

/// A random object noun phrase: 「赤い丸」, 「大きな赤い丸」, 「一つの赤の円」, 「3個の小さな青い星」.
fn random_object(rng: &mut ChaCha8Rng, group: &ObjectGroup) -> String {
    let size = if rng.random_bool(0.5) {
        pick(rng, size_words_ja(group.size))
    } else {
        ""
    };
    let body = format!(
        "{size}{}{}",
        pick(rng, colour_adjectives_ja(group.colour)),
        pick(rng, shape_words_ja(group.shape))
    );
    if group.count > 1 || rng.random_bool(0.15) {
        let variant = rng.random_range(0..3);
        format!("{}の{body}", count_phrase(group.count, variant))
    } else {
        body
    }
}

fn random_place(rng: &mut ChaCha8Rng, placement: Placement) -> &'static str {
    pick(rng, placement_phrases_ja(placement))
}

/// 「左上に赤い丸、右下に青い星」.
fn placed_items(rng: &mut ChaCha8Rng, scene: &SceneSpec) -> String {
    scene
        .groups
        .iter()
        .map(|g| {
            let place = random_place(rng, g.placement);
            format!("{place}に{}", random_object(rng, g))
        })
        .collect::<Vec<_>>()
        .join("、")
}

#[derive(Clone, Copy, Debug)]
enum TemplateJa {
    /// 「青い背景の左上に赤い丸」
    Full,
    /// 「青い背景に赤い丸」, 「青地に赤い丸と緑の三角」
    NoPlacement,
    /// 「中央に赤い丸がある青い画像」
    PictureWith,
    /// 「赤い丸、中央、青い背景」
    Terse,
    /// 「黒い背景の左上に赤い星が二つあります」
    ThereIs,
    /// 「中央に大きな青い星、背景は黄色」
    PlacementFirst,
    /// A request: 「青い背景に、左上に赤い丸を描いて」, 「背景を青にして、左上に赤い丸」,
    /// 「左上に赤い星を二つ描いてください、背景は青」
    Request,
}

const TEMPLATES_JA: [TemplateJa; 7] = [
    TemplateJa::Full,
    TemplateJa::NoPlacement,
    TemplateJa::PictureWith,
    TemplateJa::Terse,
    TemplateJa::ThereIs,
    TemplateJa::PlacementFirst,
    TemplateJa::Request,
];

/// The background as it follows 「背景は」: 「黄色」, 「緑と白の縞模様」.
fn background_predicate(rng: &mut ChaCha8Rng, scene: &SceneSpec) -> String {
    match &scene.pattern {
        None => colour_noun_ja(scene.background).to_string(),
        Some(p) => format!(
            "{}と{}の{}",
            colour_noun_ja(scene.background),
            colour_noun_ja(p.colour),
            pick(rng, pattern_words_ja(p.kind))
        ),
    }
}

fn render_template_ja(template: TemplateJa, scene: &SceneSpec, rng: &mut ChaCha8Rng) -> String {
    match template {
        TemplateJa::Full => {
            let bg = random_background_at(rng, scene);
            format!("{bg}の{}", placed_items(rng, scene))
        }
        TemplateJa::NoPlacement => {
            let bg = random_background_at(rng, scene);
            let items: Vec<String> = scene.groups.iter().map(|g| random_object(rng, g)).collect();
            format!("{bg}に{}", items.join("と"))
        }
        TemplateJa::PictureWith => {
            let items = placed_items(rng, scene);
            let noun = match scene.pattern {
                None if rng.random_bool(0.5) => {
                    format!("{}画像", pick(rng, colour_adjectives_ja(scene.background)))
                }
                _ => background_phrase_ja(scene),
            };
            format!("{items}がある{noun}")
        }
        TemplateJa::Terse => {
            let mut parts: Vec<String> = Vec::new();
            let with_place = scene.groups.len() > 1 || rng.random_bool(0.5);
            for g in &scene.groups {
                let what = format!(
                    "{}{}",
                    colour_adjectives_ja(g.colour)[0],
                    shape_words_ja(g.shape)[0]
                );
                let what = if g.count > 1 {
                    format!("{}の{what}", count_words_ja(g.count)[0])
                } else {
                    what
                };
                match (with_place, scene.groups.len()) {
                    (false, _) => parts.push(what),
                    (true, 1) => {
                        parts.push(what);
                        parts.push(placement_phrases_ja(g.placement)[0].to_string());
                    }
                    (true, _) => {
                        parts.push(format!("{}に{what}", placement_phrases_ja(g.placement)[0]))
                    }
                }
            }
            parts.push(background_phrase_ja(scene));
            parts.join("、")
        }
        TemplateJa::ThereIs => {
            let bg = random_background(rng, scene);
            match scene.groups.as_slice() {
                [g] if g.count > 1 && rng.random_bool(0.5) => {
                    // The count after the noun: 「赤い星が二つあります」.
                    let variant = rng.random_range(0..3);
                    format!(
                        "{bg}の{}に{}{}が{}あります",
                        random_place(rng, g.placement),
                        pick(rng, colour_adjectives_ja(g.colour)),
                        pick(rng, shape_words_ja(g.shape)),
                        count_phrase(g.count, variant)
                    )
                }
                [_] => format!("{bg}の{}があります", placed_items(rng, scene)),
                _ => format!("{bg}に、{}があります", placed_items(rng, scene)),
            }
        }
        TemplateJa::PlacementFirst => {
            let background = background_predicate(rng, scene);
            format!("{}、背景は{background}", placed_items(rng, scene))
        }
        TemplateJa::Request => {
            let plea = if rng.random_bool(0.5) {
                "描いて"
            } else {
                "描いてください"
            };
            match (scene.groups.as_slice(), rng.random_range(0..3)) {
                // The count after the object: 「赤い星を二つ描いて」.
                ([g], 0) => {
                    let size = if rng.random_bool(0.5) {
                        pick(rng, size_words_ja(g.size))
                    } else {
                        ""
                    };
                    let count = if g.count > 1 || rng.random_bool(0.3) {
                        count_phrase(g.count, rng.random_range(0..3))
                    } else {
                        String::new()
                    };
                    format!(
                        "{}に{size}{}{}を{count}{plea}、背景は{}",
                        random_place(rng, g.placement),
                        pick(rng, colour_adjectives_ja(g.colour)),
                        pick(rng, shape_words_ja(g.shape)),
                        background_predicate(rng, scene)
                    )
                }
                (_, 1) if scene.pattern.is_none() => format!(
                    "背景を{}にして、{}",
                    colour_noun_ja(scene.background),
                    placed_items(rng, scene)
                ),
                _ => {
                    let bg = random_background_at(rng, scene);
                    format!("{bg}に、{}を{plea}", placed_items(rng, scene))
                }
            }
        }
    }
}

/// Up to [`CAPTIONS_PER_SCENE`] distinct Japanese captions: the canonical caption first, then
/// paraphrases from shuffled templates.
pub fn captions_ja(scene: &SceneSpec, rng: &mut ChaCha8Rng) -> Vec<String> {
    let mut out = vec![canonical_caption_ja(scene)];
    if scene.groups.is_empty() {
        return out;
    }
    let mut order = TEMPLATES_JA.to_vec();
    order.shuffle(rng);
    // Up to three passes: a later pass fills in when a paraphrase repeated.
    for template in order.iter().chain(order.iter()).chain(order.iter()) {
        if out.len() >= CAPTIONS_PER_SCENE {
            break;
        }
        let c = render_template_ja(*template, scene, rng);
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

/// [`captions`] or [`captions_ja`].
pub fn captions_in(scene: &SceneSpec, language: Language, rng: &mut ChaCha8Rng) -> Vec<String> {
    match language {
        Language::English => captions(scene, rng),
        Language::Japanese => captions_ja(scene, rng),
    }
}

/// [`canonical_caption`] or [`canonical_caption_ja`].
pub fn canonical_caption_in(scene: &SceneSpec, language: Language) -> String {
    match language {
        Language::English => canonical_caption(scene),
        Language::Japanese => canonical_caption_ja(scene),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::{SceneConfig, StripeDirection};
    use rand::SeedableRng;

    fn single(shape: Shape, colour: Colour, size: Size, count: u8, p: Placement) -> ObjectGroup {
        ObjectGroup {
            shape,
            colour,
            size,
            count,
            placement: p,
            jitter: [0.0, 0.0],
        }
    }

    fn scene(background: Colour, groups: Vec<ObjectGroup>) -> SceneSpec {
        SceneSpec {
            background,
            pattern: None,
            groups,
        }
    }

    #[test]
    fn canonical_japanese_captions_read_naturally() {
        let s = scene(
            Colour::Yellow,
            vec![single(
                Shape::Star,
                Colour::Blue,
                Size::Large,
                1,
                Placement::Center,
            )],
        );
        assert_eq!(canonical_caption_ja(&s), "黄色い背景の中央に大きな青い星");
        let s = scene(
            Colour::Black,
            vec![single(
                Shape::Star,
                Colour::Yellow,
                Size::Small,
                2,
                Placement::TopLeft,
            )],
        );
        assert_eq!(
            canonical_caption_ja(&s),
            "黒い背景の左上に二つの小さな黄色い星"
        );
        let mut s = scene(
            Colour::Green,
            vec![
                single(
                    Shape::Ring,
                    Colour::Yellow,
                    Size::Large,
                    1,
                    Placement::Center,
                ),
                single(
                    Shape::Cross,
                    Colour::Orange,
                    Size::Small,
                    1,
                    Placement::Bottom,
                ),
            ],
        );
        s.pattern = Some(BackgroundPattern {
            kind: PatternKind::Striped,
            colour: Colour::White,
            direction: StripeDirection::Diagonal,
        });
        assert_eq!(
            canonical_caption_ja(&s),
            "緑と白の縞模様の背景の中央に大きな黄色い輪、下部に小さなオレンジ色の十字"
        );
        assert_eq!(
            canonical_caption_in(&s, Language::English),
            canonical_caption(&s)
        );
        assert_eq!(
            canonical_caption_in(&s, Language::Japanese),
            canonical_caption_ja(&s)
        );
    }

    #[test]
    fn required_phrasings_are_produced() {
        let s = scene(
            Colour::Blue,
            vec![single(
                Shape::Circle,
                Colour::Red,
                Size::Large,
                1,
                Placement::Center,
            )],
        );
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut seen = BTreeSet::new();
        for _ in 0..200 {
            seen.extend(captions_ja(&s, &mut rng));
        }
        for want in [
            "青い背景に赤い丸",
            "青地に赤い丸",
            "青い背景の中央に大きな赤い丸",
            "赤い丸、中央、青い背景",
            "中央に赤い丸、背景は青",
            "青い背景の真ん中に赤い丸があります",
            "中央に赤い丸がある青い画像",
        ] {
            assert!(seen.contains(want), "{want} never produced: {seen:?}");
        }
        let s = scene(
            Colour::Black,
            vec![single(
                Shape::Star,
                Colour::Yellow,
                Size::Small,
                2,
                Placement::Top,
            )],
        );
        let mut seen = BTreeSet::new();
        for _ in 0..200 {
            seen.extend(captions_ja(&s, &mut rng));
        }
        assert!(
            seen.iter().any(|c| c.contains("二つの黄色い星")),
            "{seen:?}"
        );
        assert!(seen.iter().any(|c| c.contains("2個の")), "{seen:?}");
        assert!(
            seen.iter().any(|c| c.contains("黄色い星が二つあります")),
            "{seen:?}"
        );
        // Counted groups never lose their count, and no caption claims the wrong size.
        for c in &seen {
            assert!(
                c.contains("二つ") || c.contains("2個") || c.contains("ふたつ"),
                "{c}"
            );
            assert!(!c.contains("大き"), "{c}");
        }
    }

    #[test]
    fn japanese_captions_are_varied_and_segment_into_the_lexicon() {
        let lexicon = japanese_lexicon();
        let mut used: BTreeSet<String> = BTreeSet::new();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for k in 0..800 {
            // Shapes scenes and pictures alike: the lexicon is the whole world's.
            let caps = if k % 2 == 0 {
                let s = SceneSpec::random(&mut rng);
                captions_ja(&s, &mut rng)
            } else {
                let p = crate::PictureSpec::random(&mut rng);
                crate::picture_captions(&p, Language::Japanese, &mut rng)
            };
            assert!(caps.len() >= 4, "{caps:?}");
            let unique: BTreeSet<_> = caps.iter().collect();
            assert_eq!(unique.len(), caps.len());
            for c in &caps {
                for (japanese, run) in japanese_runs(c) {
                    if !japanese {
                        assert!(
                            run.chars().all(|ch| ch == '、' || ch == '：'),
                            "{c}: {run:?}"
                        );
                        continue;
                    }
                    for seg in segment_japanese(&run, lexicon) {
                        assert!(seg.known, "{c}: unknown {:?}", seg.text);
                        used.insert(seg.text);
                    }
                }
            }
        }
        // Every lexicon word but the parser-only ones (bare 上/下, で, stems read in user
        // prompts) occurs in the captions.
        let parser_only = [
            "上",
            "下",
            "で",
            "色",
            "図形",
            "ない",
            "オレンジ",
            "緑色",
            "紫色",
            "黄",
            // Picture grounds without a ground thing on them: rare in a sample this size.
            "雪原",
            "氷原",
        ];
        let missing: Vec<&String> = lexicon
            .iter()
            .filter(|w| !used.contains(*w) && !parser_only.contains(&w.as_str()))
            .collect();
        assert!(missing.is_empty(), "never used: {missing:?}");
    }

    #[test]
    fn segmentation_takes_the_longest_word_and_gathers_unknown_runs() {
        let lex = japanese_lexicon();
        let seg = |t: &str| {
            segment_japanese(t, lex)
                .into_iter()
                .map(|s| (s.text, s.known))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            seg("青い背景に赤い丸"),
            [
                ("青い", true),
                ("背景", true),
                ("に", true),
                ("赤い", true),
                ("丸", true)
            ]
            .map(|(a, b)| (a.to_string(), b))
        );
        assert_eq!(
            seg("ひまわりの油絵"),
            [("ひまわり", true), ("の", true), ("油絵", true)].map(|(a, b)| (a.to_string(), b))
        );
        assert_eq!(seg("三角形")[0].0, "三角形");
        assert_eq!(
            japanese_runs("a 2個の星!"),
            vec![
                (false, "a ".to_string()),
                (true, "2個の星".to_string()),
                (false, "!".into())
            ]
        );
        assert_eq!(fold_digits("２個"), "2個");
    }

    #[test]
    fn captions_in_dispatches_on_language() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let s = SceneSpec::random_with(&mut rng, &SceneConfig::single_group());
        let en = captions_in(&s, Language::English, &mut ChaCha8Rng::seed_from_u64(2));
        assert_eq!(en, captions(&s, &mut ChaCha8Rng::seed_from_u64(2)));
        let ja = captions_in(&s, Language::Japanese, &mut ChaCha8Rng::seed_from_u64(2));
        assert!(ja
            .iter()
            .all(|c| Language::of_text(c) == Language::Japanese));
        assert_eq!(ja[0], canonical_caption_ja(&s));
    }
}
