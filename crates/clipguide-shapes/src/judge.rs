//! Automatic colour-layout judge for generated images: does the prompt's object colour sit in the
//! prompt's place, and does the prompt's background colour frame the image? Shape is parsed but not scored.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::palette::{Colour, Palette};
use crate::{ObjectGroup, Placement, SceneSpec, Shape, Size};

/// What a prompt asks for, as far as the judge can check it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JudgeTarget {
    pub background: Colour,
    pub object: Colour,
    /// Parsed for reporting; the judge does not score shape (generated shapes are too loose).
    pub shape: Option<Shape>,
    /// `None` when the prompt names no place: then the object may be anywhere.
    pub placement: Option<Placement>,
    /// Parsed for reporting ("two red stars" → 2); not scored.
    pub count: Option<u8>,
}

impl JudgeTarget {
    /// The target for group `index` of a dataset scene, or `None` if there is no such group.
    pub fn from_group(scene: &SceneSpec, index: usize) -> Option<JudgeTarget> {
        let g = scene.groups.get(index)?;
        Some(JudgeTarget {
            background: scene.background,
            object: g.colour,
            shape: Some(g.shape),
            placement: Some(g.placement),
            count: Some(g.count),
        })
    }

    /// A plain-background reference scene satisfying the target (large object unless counted;
    /// circle and center stand in for what the prompt left open). Useful as a "what good looks
    /// like" image next to generated ones.
    pub fn to_scene(&self) -> SceneSpec {
        let count = self.count.unwrap_or(1).max(1);
        SceneSpec {
            background: self.background,
            pattern: None,
            groups: vec![ObjectGroup {
                shape: self.shape.unwrap_or(Shape::Circle),
                colour: self.object,
                size: if count > 1 { Size::Small } else { Size::Large },
                count,
                placement: self.placement.unwrap_or(Placement::Center),
                jitter: [0.0, 0.0],
            }],
        }
    }
}

/// Pass thresholds; `Default` is tuned so every rendered dataset scene passes with margin.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct JudgeThresholds {
    /// Minimum fraction of the target cell in the object colour.
    pub min_region_fraction: f32,
    /// The target cell's object fraction must be at least this times any other cell's.
    pub min_region_ratio: f32,
    /// Minimum fraction of the border band in the background colour.
    pub min_border_fraction: f32,
    /// Object colour coverage of the whole image must lie in `[min_coverage, max_coverage]`:
    /// absent objects and object-coloured floods both fail.
    pub min_coverage: f32,
    pub max_coverage: f32,
}

impl Default for JudgeThresholds {
    fn default() -> Self {
        JudgeThresholds {
            min_region_fraction: 0.05,
            min_region_ratio: 1.5,
            min_border_fraction: 0.4,
            min_coverage: 0.005,
            max_coverage: 0.5,
        }
    }
}

/// The judge's decision and the measurements behind it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub pass: bool,
    /// Object colour present in a plausible amount.
    pub object_ok: bool,
    /// Object colour concentrated in the target cell (always true when no placement was asked).
    pub placement_ok: bool,
    /// Background colour dominates the border band.
    pub background_ok: bool,
    /// Fraction of the target cell (or of the best cell when no placement) in the object colour.
    pub object_in_region: f32,
    /// Highest object-colour fraction among the other cells.
    pub object_elsewhere: f32,
    /// Fraction of the whole image in the object colour.
    pub object_coverage: f32,
    /// Fraction of the border band in the background colour.
    pub background_border: f32,
    /// Most common palette colour in the border band.
    pub border_dominant: Colour,
    /// Cell holding the largest object-colour fraction.
    pub best_cell: Placement,
    /// Object-colour fraction per grid cell, row-major (index = `Placement::index`).
    pub cell_fractions: [f32; 9],
}

/// Judges `image` against `target` with [`JudgeThresholds::default`].
pub fn judge(image: &RgbImage, target: &JudgeTarget) -> Verdict {
    judge_with(image, target, &JudgeThresholds::default())
}

/// Judges `image` against `target`. Every pixel is mapped to its nearest palette colour;
/// the image is split into the same 3×3 grid the dataset places objects on.
///
/// Meant for images of 64 px or more: below that, antialiased edges of small objects and fine
/// patterns are a large share of the pixels and can map to a third palette colour.
pub fn judge_with(image: &RgbImage, target: &JudgeTarget, thresholds: &JudgeThresholds) -> Verdict {
    let (w, h) = image.dimensions();
    let band = (w.min(h) as f32 / 16.0).round().max(1.0) as u32;
    let mut cell_hits = [0u64; 9];
    let mut cell_totals = [0u64; 9];
    let mut border_counts = [0u64; Palette::len()];
    let mut border_total = 0u64;
    let mut object_total = 0u64;
    for (x, y, pixel) in image.enumerate_pixels() {
        let colour = Palette::nearest(pixel.0);
        let cell = ((y as u64 * 3 / h as u64) * 3 + x as u64 * 3 / w as u64) as usize;
        cell_totals[cell] += 1;
        if colour == target.object.index() {
            cell_hits[cell] += 1;
            object_total += 1;
        }
        if x < band || y < band || x >= w.saturating_sub(band) || y >= h.saturating_sub(band) {
            border_counts[colour] += 1;
            border_total += 1;
        }
    }
    let ratio = |num: u64, den: u64| {
        if den == 0 {
            0.0
        } else {
            num as f32 / den as f32
        }
    };
    let mut cell_fractions = [0.0f32; 9];
    for i in 0..9 {
        cell_fractions[i] = ratio(cell_hits[i], cell_totals[i]);
    }
    let best = (0..9)
        .max_by(|&a, &b| {
            cell_fractions[a]
                .total_cmp(&cell_fractions[b])
                .then(b.cmp(&a))
        })
        .unwrap_or(4);
    let region = target.placement.map(|p| p.index()).unwrap_or(best);
    let object_in_region = cell_fractions[region];
    let object_elsewhere = (0..9)
        .filter(|&i| i != region)
        .map(|i| cell_fractions[i])
        .fold(0.0f32, f32::max);
    let object_coverage = ratio(object_total, w as u64 * h as u64);
    let dominant = (0..Palette::len())
        .max_by(|&a, &b| border_counts[a].cmp(&border_counts[b]).then(b.cmp(&a)))
        .unwrap_or(0);
    let background_border = ratio(border_counts[target.background.index()], border_total);

    let object_ok = object_coverage >= thresholds.min_coverage
        && object_coverage <= thresholds.max_coverage
        && cell_fractions[best] >= thresholds.min_region_fraction;
    let placement_ok = match target.placement {
        None => true,
        Some(_) => {
            object_in_region >= thresholds.min_region_fraction
                && object_in_region >= thresholds.min_region_ratio * object_elsewhere
        }
    };
    let background_ok = border_total > 0
        && dominant == target.background.index()
        && background_border >= thresholds.min_border_fraction;
    Verdict {
        pass: object_ok && placement_ok && background_ok,
        object_ok,
        placement_ok,
        background_ok,
        object_in_region,
        object_elsewhere,
        object_coverage,
        background_border,
        border_dominant: Colour::ALL[dominant],
        best_cell: Placement::ALL[best],
        cell_fractions,
    }
}

/// Words that may sit between a background colour and the noun "background".
const BACKGROUND_FILLERS: [&str; 7] = [
    "striped", "dotted", "and", "plain", "solid", "colored", "coloured",
];
const BACKGROUND_NOUNS: [&str; 4] = ["background", "picture", "image", "backdrop"];

fn count_from_word(word: &str) -> Option<u8> {
    match word {
        "a" | "an" | "one" => Some(1),
        "two" => Some(2),
        "three" => Some(3),
        _ => None,
    }
}

fn placement_words(tokens: &[&str]) -> Vec<Placement> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let next = tokens.get(i + 1).copied();
        let vertical = match tokens[i] {
            "top" | "upper" => Some(0),
            "bottom" | "lower" => Some(2),
            _ => None,
        };
        if let Some(row) = vertical {
            let column = match next {
                Some("left") => Some(0),
                Some("right") => Some(2),
                _ => None,
            };
            found.extend(Placement::from_cell(column.unwrap_or(1), row));
            i += if column.is_some() { 2 } else { 1 };
            continue;
        }
        match tokens[i] {
            "left" => found.push(Placement::Left),
            "right" => found.push(Placement::Right),
            "center" | "centre" | "middle" | "central" => found.push(Placement::Center),
            _ => {}
        }
        i += 1;
    }
    found
}

/// Parses a single-object prompt in the dataset's phrasing ("a red circle on a blue background",
/// "a yellow square in the top left on a black background", "red circle, blue background").
///
/// Returns `None` when the prompt lacks an object colour + shape or a background colour, names
/// more than one object, or names contradictory places: the judge would have nothing sound to check.
pub fn parse_prompt(prompt: &str) -> Option<JudgeTarget> {
    let lower = prompt.to_ascii_lowercase();
    let cleaned: String = lower
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { ' ' })
        .collect();
    let tokens: Vec<&str> = cleaned.split_whitespace().collect();

    let mut background = None;
    for (k, t) in tokens.iter().enumerate() {
        if !BACKGROUND_NOUNS.contains(t) {
            continue;
        }
        // Walk back over "striped green and white": the first colour named is the background.
        let mut first_colour = None;
        for prev in tokens[..k].iter().rev() {
            if let Some(c) = Colour::from_word(prev) {
                first_colour = Some(c);
            } else if !BACKGROUND_FILLERS.contains(prev) {
                break;
            }
        }
        if first_colour.is_some() {
            background = first_colour;
            break;
        }
    }

    let mut objects = Vec::new();
    for (j, t) in tokens.iter().enumerate() {
        let Some(shape) = Shape::from_word(t) else {
            continue;
        };
        let mut k = j;
        let mut colour = None;
        // Look back over at most one size word for the colour.
        while k > 0 && j - k < 2 {
            k -= 1;
            if let Some(c) = Colour::from_word(tokens[k]) {
                colour = Some((c, k));
                break;
            }
            if !matches!(tokens[k], "small" | "large" | "big" | "tiny") {
                break;
            }
        }
        let (colour, ci) = colour?;
        let mut before = ci;
        if before > 0 && matches!(tokens[before - 1], "small" | "large" | "big" | "tiny") {
            before -= 1;
        }
        let count = before
            .checked_sub(1)
            .and_then(|b| count_from_word(tokens[b]))
            .or((shape.name() == *t).then_some(1));
        objects.push((colour, shape, count));
    }
    let [(object, shape, count)] = objects.as_slice() else {
        return None;
    };

    let places = placement_words(&tokens);
    let placement = match places.split_first() {
        None => None,
        Some((first, rest)) if rest.iter().all(|p| p == first) => Some(*first),
        Some(_) => return None,
    };
    Some(JudgeTarget {
        background: background?,
        object: *object,
        shape: Some(*shape),
        placement,
        count: *count,
    })
}

/// The generation benchmark: single-object prompts in the dataset's canonical phrasing,
/// covering all shapes, all nine placements and most colour pairs.
pub fn judge_suite() -> Vec<&'static str> {
    vec![
        "a red circle in the center on a blue background",
        "a yellow square in the top left corner on a black background",
        "a white star in the top right corner on a purple background",
        "a green triangle at the bottom on a white background",
        "a blue ring on the left on a yellow background",
        "an orange cross on the right on a black background",
        "a pink circle in the bottom left corner on a green background",
        "a cyan square in the bottom right corner on a red background",
        "a black star at the top on an orange background",
        "a purple triangle in the center on a white background",
        "a brown circle on the left on a cyan background",
        "a gray ring in the center on a pink background",
        "a red square at the top on a white background",
        "a yellow star in the center on a blue background",
        "a white cross in the bottom left corner on a red background",
        "a green ring in the top right corner on a black background",
        "a blue triangle on the right on a yellow background",
        "an orange circle at the bottom on a purple background",
        "a pink square on the left on a gray background",
        "a cyan star at the bottom on a brown background",
        "a red triangle in the top left corner on a green background",
        "a black circle in the bottom right corner on a white background",
        "a yellow cross in the center on a purple background",
        "a white ring at the top on a blue background",
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dataset_phrasings() {
        let t = parse_prompt("a red circle on a blue background").unwrap();
        assert_eq!(
            t,
            JudgeTarget {
                background: Colour::Blue,
                object: Colour::Red,
                shape: Some(Shape::Circle),
                placement: None,
                count: Some(1),
            }
        );
        let t = parse_prompt("a yellow square in the top left on a black background").unwrap();
        assert_eq!(
            (t.object, t.background, t.placement, t.shape),
            (
                Colour::Yellow,
                Colour::Black,
                Some(Placement::TopLeft),
                Some(Shape::Square)
            )
        );
        let t = parse_prompt("a blue picture with a red circle in the middle").unwrap();
        assert_eq!(
            (t.object, t.background, t.placement),
            (Colour::Red, Colour::Blue, Some(Placement::Center))
        );
        let t = parse_prompt("Red circle, blue background").unwrap();
        assert_eq!((t.object, t.background), (Colour::Red, Colour::Blue));
        let t = parse_prompt("two small red stars at the top left on a black background").unwrap();
        assert_eq!(
            (t.object, t.count, t.placement, t.shape),
            (
                Colour::Red,
                Some(2),
                Some(Placement::TopLeft),
                Some(Shape::Star)
            )
        );
        let t =
            parse_prompt("a striped green and white background with a large yellow ring").unwrap();
        assert_eq!(
            (t.object, t.background, t.shape),
            (Colour::Yellow, Colour::Green, Some(Shape::Ring))
        );
        let t =
            parse_prompt("an orange cross at the bottom of the picture against a grey background")
                .unwrap();
        assert_eq!(
            (t.object, t.background, t.placement),
            (Colour::Orange, Colour::Gray, Some(Placement::Bottom))
        );
        let t = parse_prompt(
            "in the bottom-right corner, a pink triangle on a green background with white dots",
        )
        .unwrap();
        assert_eq!(
            (t.object, t.background, t.placement),
            (Colour::Pink, Colour::Green, Some(Placement::BottomRight))
        );
    }

    #[test]
    fn rejects_unjudgeable_prompts() {
        assert_eq!(parse_prompt(""), None);
        assert_eq!(
            parse_prompt("a circle on a blue background"),
            None,
            "no object colour"
        );
        assert_eq!(parse_prompt("a red circle"), None, "no background");
        assert_eq!(
            parse_prompt("a red circle and a green square on a blue background"),
            None,
            "two objects"
        );
        assert_eq!(
            parse_prompt("a red circle at the top left and on the right on a blue background"),
            None,
            "contradictory places"
        );
    }

    #[test]
    fn judge_suite_is_parseable_and_varied() {
        let suite = judge_suite();
        assert!(suite.len() >= 20);
        let targets: Vec<JudgeTarget> = suite
            .iter()
            .map(|p| parse_prompt(p).unwrap_or_else(|| panic!("unparseable: {p}")))
            .collect();
        let shapes: std::collections::HashSet<_> = targets.iter().filter_map(|t| t.shape).collect();
        let places: std::collections::HashSet<_> =
            targets.iter().filter_map(|t| t.placement).collect();
        let objects: std::collections::HashSet<_> = targets.iter().map(|t| t.object).collect();
        let backgrounds: std::collections::HashSet<_> =
            targets.iter().map(|t| t.background).collect();
        assert_eq!(shapes.len(), 6);
        assert_eq!(places.len(), 9);
        assert!(objects.len() >= 10, "{objects:?}");
        assert!(backgrounds.len() >= 9, "{backgrounds:?}");
        for t in &targets {
            assert_ne!(t.object, t.background);
        }
        let unique: std::collections::HashSet<_> = suite.iter().collect();
        assert_eq!(unique.len(), suite.len());
    }
}
