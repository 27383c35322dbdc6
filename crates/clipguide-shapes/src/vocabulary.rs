//! The words of the built-in model's training captions, to tell a user which words of a prompt
//! the model never saw (it then reads them as noise, and generation silently ignores them).

use std::collections::BTreeSet;
use std::sync::OnceLock;

use crate::captions_ja::{japanese_lexicon, japanese_runs, segment_japanese};
use crate::{ShapesDataset, WorldMix};

/// Items of the shipped training mix whose captions make the vocabulary. Every template, colour,
/// shape, placement, size, count, pattern, object, backdrop and style word appears well within
/// this many (a test checks that 4× more items add no word).
const SCENES: usize = 8000;

/// Every word of the English captions the built-in model was trained on, lower-case. The
/// Japanese captions' words are [`japanese_lexicon`].
pub fn training_vocabulary() -> &'static BTreeSet<String> {
    static WORDS: OnceLock<BTreeSet<String>> = OnceLock::new();
    WORDS.get_or_init(|| vocabulary_of(SCENES))
}

fn vocabulary_of(scenes: usize) -> BTreeSet<String> {
    // The seed does not matter: every seed draws from the same templates and word lists.
    let data = ShapesDataset::new(0, 64).expect("64 px is a valid dataset size");
    let english = WorldMix {
        japanese: 0.0,
        ..WorldMix::SHIPPED
    };
    (0..scenes)
        .flat_map(|i| data.world_captions(i, &english).1)
        .flat_map(|caption| words(&caption).collect::<Vec<_>>())
        .collect()
}

/// The words of `text` as the vocabulary counts them: lower-case runs of letters and digits
/// (any script; hyphens and apostrophes split words, as in the captions).
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
}

/// The words of `text` the built-in model never saw in training, each once, in order of first
/// appearance. Japanese runs of the text (kana and kanji, with digits right before them as in
/// 「2個」) are segmented by greedy longest match against [`japanese_lexicon`], and each maximal
/// run no word matches is one unknown word (「青い背景に赤いドラゴン」 → 「ドラゴン」); the rest
/// is split into English words and checked against [`training_vocabulary`].
pub fn unknown_words(text: &str) -> Vec<String> {
    let vocab = training_vocabulary();
    let lexicon = japanese_lexicon();
    let mut seen = BTreeSet::new();
    let mut unknown = Vec::new();
    for (japanese, run) in japanese_runs(text) {
        let candidates: Vec<String> = if japanese {
            segment_japanese(&run, lexicon)
                .into_iter()
                .filter(|s| !s.known)
                .map(|s| s.text)
                .collect()
        } else {
            words(&run).filter(|w| !vocab.contains(w)).collect()
        };
        for w in candidates {
            if seen.insert(w.clone()) {
                unknown.push(w);
            }
        }
    }
    unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vocabulary_is_complete_at_its_sample_size() {
        assert_eq!(&vocabulary_of(4 * SCENES), training_vocabulary());
    }

    #[test]
    fn words_of_the_world_are_known_and_others_are_named() {
        assert!(unknown_words("a red circle on a blue background").is_empty());
        assert!(unknown_words("Two small YELLOW stars in the top left corner").is_empty());
        // Everyday wording of the same world (captions.rs: size_words, placement_phrases).
        assert!(unknown_words("a big red circle in the upper left, blue backdrop").is_empty());
        assert!(unknown_words("three tiny stars along the bottom of a white image").is_empty());
        // The headline prompts are the world's words now (pictures, styles, places).
        assert!(unknown_words("sunflower oil painting").is_empty());
        assert!(unknown_words("Kyoto at the North Pole").is_empty());
        assert!(unknown_words("a watercolour of a pagoda under the northern lights").is_empty());
        assert_eq!(
            unknown_words("sunflower oil painting on a wooden easel"),
            ["wooden", "easel"]
        );
        assert_eq!(unknown_words("a crimson disc"), ["crimson"]);
        // Requests and everyday nouns (captions.rs: REQUESTS, shape_nouns, BACKGROUND_NOUNS).
        assert!(unknown_words("please draw a grey donut in the top-left, green bg").is_empty());
        assert_eq!(unknown_words("doodle a plus sign"), ["doodle"]);
        assert!(unknown_words("青い背景に赤い丸").is_empty());
        assert!(unknown_words("黄色い背景の中央に大きな青い星、2個の白い輪").is_empty());
        assert!(unknown_words("ひまわりの油絵").is_empty());
        assert!(unknown_words("北極の京都").is_empty());
        assert!(unknown_words("背景を黒にして、左上に大きめの赤い丸を描いてください").is_empty());
        assert_eq!(unknown_words("青い背景に赤いドラゴン"), ["ドラゴン"]);
        assert_eq!(
            unknown_words("a red dragon, 青い背景に赤いドラゴン and 油絵"),
            ["dragon", "ドラゴン"]
        );
        assert_eq!(unknown_words("5個の丸"), ["5個"]);
    }
}
