//! The built-in model's honesty about its vocabulary: prompts with words it never saw in training
//! get one note on stderr naming them (it reads such words as noise).

/// The unknown words of `texts` (each once), after telling the user about them on stderr.
pub fn unknown_words_notice<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut unknown: Vec<String> = Vec::new();
    for text in texts {
        for w in clipguide_shapes::unknown_words(text) {
            if !unknown.contains(&w) {
                unknown.push(w);
            }
        }
    }
    if !unknown.is_empty() {
        eprintln!(
            "note: the built-in model never saw {} in training: {}. It knows a drawn world (colours, shapes, sizes, counts, placements, background patterns; flowers, trees, houses, pagodas, torii gates, mountains, sun, moon, clouds, skies and grounds; five drawing styles) in English and Japanese; --model loads a real CLIP, e.g. --model openai/clip-vit-base-patch32",
            if unknown.len() == 1 { "this word" } else { "these words" },
            unknown.join(", ")
        );
    }
    unknown
}
