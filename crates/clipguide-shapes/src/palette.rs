//! The fixed colour vocabulary shared by the synthetic dataset, its captions and the judge.
//! Every colour word maps to one sRGB value, chosen far apart so nearest-colour lookup is unambiguous.

use serde::{Deserialize, Serialize};

/// A colour word of the vocabulary. The discriminant is the index into [`Palette::COLOURS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Colour {
    Red,
    Green,
    Blue,
    Yellow,
    Orange,
    Purple,
    White,
    Black,
    Pink,
    Cyan,
    Brown,
    Gray,
}

/// One entry of the palette table: the caption word and its fixed sRGB value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NamedColour {
    pub colour: Colour,
    pub name: &'static str,
    pub rgb: [u8; 3],
}

/// The colour table. Values are hand-picked so every pair is at least ~90 apart in RGB
/// (checked by a test), which keeps antialiased edges from being mistaken for a third colour.
pub struct Palette;

impl Palette {
    /// The sRGB values in palette order: the colours a generator may restrict itself to
    /// (`clipguide_guide::PrimitivesSpec::palette`) when guided by a model trained on this vocabulary.
    pub fn srgb() -> Vec<[u8; 3]> {
        Self::COLOURS.iter().map(|c| c.rgb).collect()
    }

    pub const COLOURS: [NamedColour; 12] = [
        NamedColour {
            colour: Colour::Red,
            name: "red",
            rgb: [220, 30, 30],
        },
        NamedColour {
            colour: Colour::Green,
            name: "green",
            rgb: [30, 170, 50],
        },
        NamedColour {
            colour: Colour::Blue,
            name: "blue",
            rgb: [30, 60, 220],
        },
        NamedColour {
            colour: Colour::Yellow,
            name: "yellow",
            rgb: [245, 220, 30],
        },
        NamedColour {
            colour: Colour::Orange,
            name: "orange",
            rgb: [245, 130, 20],
        },
        NamedColour {
            colour: Colour::Purple,
            name: "purple",
            rgb: [130, 40, 170],
        },
        NamedColour {
            colour: Colour::White,
            name: "white",
            rgb: [245, 245, 245],
        },
        NamedColour {
            colour: Colour::Black,
            name: "black",
            rgb: [15, 15, 15],
        },
        NamedColour {
            colour: Colour::Pink,
            name: "pink",
            rgb: [245, 120, 190],
        },
        NamedColour {
            colour: Colour::Cyan,
            name: "cyan",
            rgb: [30, 210, 220],
        },
        NamedColour {
            colour: Colour::Brown,
            name: "brown",
            rgb: [120, 70, 30],
        },
        NamedColour {
            colour: Colour::Gray,
            name: "gray",
            rgb: [128, 128, 128],
        },
    ];

    /// Number of colours in the vocabulary.
    pub const fn len() -> usize {
        Self::COLOURS.len()
    }

    /// Index (into [`Palette::COLOURS`]) of the palette colour closest to `rgb` in squared
    /// sRGB distance; ties go to the lower index so the result is deterministic.
    pub fn nearest(rgb: [u8; 3]) -> usize {
        let mut best = 0;
        let mut best_d = u32::MAX;
        for (i, entry) in Self::COLOURS.iter().enumerate() {
            let d = rgb_distance_sq(rgb, entry.rgb);
            if d < best_d {
                best_d = d;
                best = i;
            }
        }
        best
    }
}

/// Whether every antialiased mix of `a` and `b` (25/50/75%) is still nearest to `a` or `b`.
/// Fine patterns in a pair that fails this (black and white blend to gray) fill the image with
/// a third colour that no caption mentions, so scene sampling avoids such pattern pairs.
pub fn blends_cleanly(a: Colour, b: Colour) -> bool {
    let (ca, cb) = (a.rgb(), b.rgb());
    [0.25f32, 0.5, 0.75].iter().all(|&t| {
        let mix: [u8; 3] =
            std::array::from_fn(|i| (ca[i] as f32 * (1.0 - t) + cb[i] as f32 * t).round() as u8);
        let nearest = Colour::nearest(mix);
        nearest == a || nearest == b
    })
}

/// Squared Euclidean distance between two sRGB triples.
pub fn rgb_distance_sq(a: [u8; 3], b: [u8; 3]) -> u32 {
    a.iter()
        .zip(b.iter())
        .map(|(&x, &y)| {
            let d = x as i32 - y as i32;
            (d * d) as u32
        })
        .sum()
}

impl Colour {
    /// All colours in palette order.
    pub const ALL: [Colour; 12] = [
        Colour::Red,
        Colour::Green,
        Colour::Blue,
        Colour::Yellow,
        Colour::Orange,
        Colour::Purple,
        Colour::White,
        Colour::Black,
        Colour::Pink,
        Colour::Cyan,
        Colour::Brown,
        Colour::Gray,
    ];

    /// Position of this colour in [`Palette::COLOURS`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Colour at palette index `index`, or `None` when out of range.
    pub fn from_index(index: usize) -> Option<Colour> {
        Self::ALL.get(index).copied()
    }

    /// The caption word ("red").
    pub const fn name(self) -> &'static str {
        Palette::COLOURS[self as usize].name
    }

    /// The fixed sRGB value.
    pub const fn rgb(self) -> [u8; 3] {
        Palette::COLOURS[self as usize].rgb
    }

    /// The palette colour closest to `rgb`.
    pub fn nearest(rgb: [u8; 3]) -> Colour {
        Self::ALL[Palette::nearest(rgb)]
    }

    /// Parses a colour word; accepts "grey" as well as "gray". Case-insensitive.
    pub fn from_word(word: &str) -> Option<Colour> {
        let lower = word.to_ascii_lowercase();
        if lower == "grey" {
            return Some(Colour::Gray);
        }
        Self::ALL.iter().copied().find(|c| c.name() == lower)
    }
}

impl std::fmt::Display for Colour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_order_matches_enum_order() {
        for (i, entry) in Palette::COLOURS.iter().enumerate() {
            assert_eq!(entry.colour.index(), i, "{} is out of place", entry.name);
            assert_eq!(Colour::ALL[i], entry.colour);
        }
    }

    #[test]
    fn colours_are_well_separated() {
        for (i, a) in Palette::COLOURS.iter().enumerate() {
            for b in &Palette::COLOURS[i + 1..] {
                let d = (rgb_distance_sq(a.rgb, b.rgb) as f64).sqrt();
                assert!(d >= 85.0, "{} and {} are only {d:.1} apart", a.name, b.name);
            }
        }
    }

    #[test]
    fn nearest_recovers_each_colour_and_small_perturbations() {
        for entry in &Palette::COLOURS {
            assert_eq!(Palette::nearest(entry.rgb), entry.colour.index());
            let nudged = entry.rgb.map(|v| v.saturating_add(12).saturating_sub(5));
            assert_eq!(
                Colour::nearest(nudged),
                entry.colour,
                "nudged {}",
                entry.name
            );
        }
        assert_eq!(Colour::nearest([255, 0, 0]), Colour::Red);
        assert_eq!(Colour::nearest([0, 0, 0]), Colour::Black);
        assert_eq!(Colour::nearest([255, 255, 255]), Colour::White);
    }

    #[test]
    fn clean_blends_exclude_pairs_that_mix_into_a_third_colour() {
        // Black and white mix to gray; red and yellow mix to orange.
        assert!(!blends_cleanly(Colour::Black, Colour::White));
        assert!(!blends_cleanly(Colour::Red, Colour::Yellow));
        assert!(blends_cleanly(Colour::Red, Colour::Orange));
        assert!(blends_cleanly(Colour::Blue, Colour::Cyan));
        let clean = Colour::ALL
            .iter()
            .flat_map(|&a| Colour::ALL.iter().map(move |&b| (a, b)))
            .filter(|&(a, b)| a != b && blends_cleanly(a, b))
            .count();
        assert!(clean >= 40, "only {clean} ordered pairs blend cleanly");
    }

    #[test]
    fn words_round_trip() {
        for c in Colour::ALL {
            assert_eq!(Colour::from_word(c.name()), Some(c));
            assert_eq!(Colour::from_word(&c.name().to_uppercase()), Some(c));
        }
        assert_eq!(Colour::from_word("grey"), Some(Colour::Gray));
        assert_eq!(Colour::from_word("mauve"), None);
        assert_eq!(Colour::from_index(12), None);
    }
}
