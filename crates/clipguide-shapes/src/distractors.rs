//! Made-up words inserted into training captions, so the built-in model learns that a word it
//! does not know says nothing about the picture.
//!
//! Why: the model's captions come from a closed set of templates, and a prompt word outside
//! them ("northwest", "teensy") otherwise moves the text embedding as far as a colour word
//! does, often onto the wrong colour or shape. Trained with pronounceable nonsense beside true
//! captions, the text tower learns to pass over unfamiliar tokens. Made-up words, not real
//! ones, so no English (or Japanese) word is taught to mean nothing, and the vocabulary the
//! unknown-word notice reads ([`crate::vocabulary`]) is unchanged: the words are new each time.

use rand::seq::IndexedRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::captions_ja::is_japanese_char;

const ONSETS: [&str; 20] = [
    "b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "gl", "st", "tr",
    "sh", "ch",
];
const VOWELS: [&str; 8] = ["a", "e", "i", "o", "u", "ai", "ou", "ee"];
const CODAS: [&str; 6] = ["", "", "n", "s", "th", "x"];
const KANA: [&str; 24] = [
    "カ", "キ", "ク", "コ", "サ", "シ", "ス", "タ", "テ", "ト", "ナ", "ヌ", "ホ", "マ", "ミ", "モ",
    "ラ", "リ", "ル", "ロ", "ポ", "ビ", "ゾ", "ン",
];

/// A pronounceable made-up word of two or three syllables ("traimex", "gloubeeth").
pub fn made_up_word(rng: &mut ChaCha8Rng) -> String {
    let syllables = rng.random_range(2..=3);
    let mut w = String::new();
    for _ in 0..syllables {
        w.push_str(ONSETS.choose(rng).expect("listed"));
        w.push_str(VOWELS.choose(rng).expect("listed"));
    }
    w.push_str(CODAS.choose(rng).expect("listed"));
    w
}

/// A made-up katakana word of three or four characters (「ポキラン」), never one that starts
/// with ン.
pub fn made_up_word_ja(rng: &mut ChaCha8Rng) -> String {
    let n = rng.random_range(3..=4);
    let mut w = String::new();
    while w.chars().count() < n {
        let k = *KANA.choose(rng).expect("listed");
        if !(w.is_empty() && k == "ン") {
            w.push_str(k);
        }
    }
    w
}

/// `caption` with one or two made-up words inserted: between words of an English caption,
/// and for a Japanese one at its start or after a 「、」 (followed by の or a 「、」, as a
/// modifier or an aside).
pub fn with_made_up_words(caption: &str, rng: &mut ChaCha8Rng) -> String {
    let insertions = rng.random_range(1..=2);
    if caption.chars().any(is_japanese_char) {
        let mut parts: Vec<String> = caption.split('、').map(str::to_string).collect();
        for _ in 0..insertions {
            let i = rng.random_range(0..parts.len());
            let joint = if rng.random_bool(0.5) { "の" } else { "、" };
            parts[i] = format!("{}{joint}{}", made_up_word_ja(rng), parts[i]);
        }
        parts.join("、")
    } else {
        let mut words: Vec<String> = caption.split(' ').map(str::to_string).collect();
        for _ in 0..insertions {
            let at = rng.random_range(0..=words.len());
            words.insert(at, made_up_word(rng));
        }
        words.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::unknown_words;
    use rand::SeedableRng;

    #[test]
    fn made_up_words_are_inserted_and_the_caption_kept() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        for _ in 0..200 {
            let c = "a small red star in the top left corner on a blue background";
            let d = with_made_up_words(c, &mut rng);
            let added = d.split(' ').count() - c.split(' ').count();
            assert!((1..=2).contains(&added), "{d}");
            let kept: Vec<&str> = d
                .split(' ')
                .filter(|w| c.split(' ').any(|x| x == *w))
                .collect();
            assert_eq!(kept.join(" "), c, "{d}");
            // New to the model: the unknown-word notice names them.
            assert!(!unknown_words(&d).is_empty(), "{d}");
            let ja = "青い背景の左上に赤い丸、右下に白い星";
            let d = with_made_up_words(ja, &mut rng);
            assert!(d.chars().count() >= ja.chars().count() + 4, "{d}");
            // The caption's own characters, in order, are all still there.
            let mut rest = d.chars();
            assert!(ja.chars().all(|c| rest.any(|x| x == c)), "{d}");
            assert!(!unknown_words(&d).is_empty(), "{d}");
        }
    }
}
