//! The caption languages of the world: every scene is captioned in each, from the same drawing.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    English,
    Japanese,
}

impl Language {
    pub const ALL: [Language; 2] = [Language::English, Language::Japanese];

    pub const fn name(self) -> &'static str {
        match self {
            Language::English => "english",
            Language::Japanese => "japanese",
        }
    }

    /// The language a prompt is written in: Japanese when it holds any kana or CJK ideograph.
    pub fn of_text(text: &str) -> Language {
        let japanese = text.chars().any(|c| {
            matches!(c as u32,
                0x3040..=0x30FF   // hiragana, katakana
                | 0x4E00..=0x9FFF // CJK unified ideographs
                | 0x3400..=0x4DBF // extension A
                | 0xFF66..=0xFF9F) // half-width katakana
        });
        if japanese {
            Language::Japanese
        } else {
            Language::English
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kana_or_kanji_make_a_prompt_japanese() {
        assert_eq!(Language::of_text("青い背景に赤い丸"), Language::Japanese);
        assert_eq!(Language::of_text("ひまわり"), Language::Japanese);
        assert_eq!(Language::of_text("a red circle"), Language::English);
        assert_eq!(Language::of_text("café — naïve"), Language::English);
    }
}
