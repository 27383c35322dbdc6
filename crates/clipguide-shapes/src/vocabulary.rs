//! The words of the built-in model's training captions, to tell a user which words of a prompt
//! the model never saw (it then reads them as noise, and generation silently ignores them).

use std::collections::BTreeSet;
use std::sync::OnceLock;

use crate::ShapesDataset;

/// Scenes whose captions make the vocabulary. Every template, colour, shape, placement, size,
/// count and pattern word appears well within this many (a test checks that 4× more scenes add
/// no word).
const SCENES: usize = 4000;

/// Every word of the captions the built-in model was trained on, lower-case.
pub fn training_vocabulary() -> &'static BTreeSet<String> {
    static WORDS: OnceLock<BTreeSet<String>> = OnceLock::new();
    WORDS.get_or_init(|| vocabulary_of(SCENES))
}

fn vocabulary_of(scenes: usize) -> BTreeSet<String> {
    // The seed does not matter: every seed draws from the same templates and word lists.
    let data = ShapesDataset::new(0, 64).expect("64 px is a valid dataset size");
    (0..scenes)
        .flat_map(|i| data.describe(i).1)
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
/// appearance. A Japanese phrase (no spaces) counts as one word.
pub fn unknown_words(text: &str) -> Vec<String> {
    let vocab = training_vocabulary();
    let mut seen = BTreeSet::new();
    words(text)
        .filter(|w| !vocab.contains(w) && seen.insert(w.clone()))
        .collect()
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
        assert_eq!(
            unknown_words("sunflower oil painting, oil on canvas"),
            ["sunflower", "oil", "painting", "canvas"]
        );
        assert_eq!(unknown_words("a crimson disc"), ["crimson", "disc"]);
        assert_eq!(unknown_words("青い背景に赤い丸"), ["青い背景に赤い丸"]);
    }
}
