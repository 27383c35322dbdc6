//! Zero-shot probes in either caption language: the same tasks as [`zero_shot_task`], with
//! Japanese candidates (canonical Japanese captions, or 「赤い図形」-style isolated wording).

use crate::captions_ja::{
    canonical_caption_ja, colour_adjectives_ja, count_words_ja, placement_phrases_ja,
    shape_words_ja, size_words_ja,
};
use crate::language::Language;
use crate::scene::SceneSpec;
use crate::zero_shot::{task_worded, zero_shot_task, Attribute, PromptStyle, Varied, ZeroShotTask};

/// The task probing `attribute` for `scene` with candidates in `language`: English is exactly
/// [`zero_shot_task`]; Japanese has the same candidate scenes in the same order (so the same
/// `correct` index), worded by [`canonical_caption_ja`] or an isolated Japanese template.
/// `None` for multi-group scenes, and for attributes without Japanese wording.
pub fn zero_shot_task_in(
    scene: &SceneSpec,
    attribute: Attribute,
    style: PromptStyle,
    language: Language,
) -> Option<ZeroShotTask> {
    match language {
        Language::English => zero_shot_task(scene, attribute, style),
        Language::Japanese => task_worded(
            scene,
            attribute,
            style,
            canonical_caption_ja,
            isolated_japanese,
        ),
    }
}

/// 「赤い図形」, 「星」, 「中央にある図形」, 「二つの図形」, …
fn isolated_japanese(v: Varied) -> String {
    match v {
        Varied::ObjectColour(c) => format!("{}図形", colour_adjectives_ja(c)[0]),
        Varied::BackgroundColour(c) => format!("{}背景", colour_adjectives_ja(c)[0]),
        Varied::Shape(shape) => shape_words_ja(shape)[0].to_string(),
        Varied::Placement(p) => format!("{}にある図形", placement_phrases_ja(p)[0]),
        Varied::Count(n) => format!("{}の図形", count_words_ja(n)[0]),
        Varied::Size(size) => format!("{}図形", size_words_ja(size)[0]),
    }
}

/// One task per attribute in `language` (see [`zero_shot_task_in`]); empty for multi-group scenes.
pub fn attribute_prompts_in(
    scene: &SceneSpec,
    style: PromptStyle,
    language: Language,
) -> Vec<ZeroShotTask> {
    Attribute::ALL
        .iter()
        .filter_map(|&a| zero_shot_task_in(scene, a, style, language))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::palette::Colour;
    use crate::scene::{ObjectGroup, Placement, SceneConfig, Shape, Size};
    use crate::zero_shot::attribute_prompts;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn japanese_tasks_mirror_the_english_ones() {
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        for _ in 0..150 {
            let s = SceneSpec::random_with(&mut rng, &SceneConfig::single_group());
            for style in [PromptStyle::FullCaption, PromptStyle::Isolated] {
                let en = attribute_prompts(&s, style);
                assert_eq!(attribute_prompts_in(&s, style, Language::English), en);
                let ja = attribute_prompts_in(&s, style, Language::Japanese);
                assert_eq!(ja.len(), en.len());
                for (j, e) in ja.iter().zip(&en) {
                    assert_eq!(
                        (j.attribute, j.correct, j.candidates.len()),
                        (e.attribute, e.correct, e.candidates.len())
                    );
                    let unique: std::collections::HashSet<_> = j.candidates.iter().collect();
                    assert_eq!(unique.len(), j.candidates.len(), "{j:?}");
                    if style == PromptStyle::FullCaption {
                        assert_eq!(j.candidates[j.correct], canonical_caption_ja(&s));
                    }
                }
            }
        }
    }

    #[test]
    fn japanese_isolated_wording() {
        let s = SceneSpec {
            background: Colour::Blue,
            pattern: None,
            groups: vec![ObjectGroup {
                shape: Shape::Star,
                colour: Colour::Red,
                size: Size::Small,
                count: 2,
                placement: Placement::TopLeft,
                jitter: [0.0, 0.0],
            }],
        };
        let t = |a| zero_shot_task_in(&s, a, PromptStyle::Isolated, Language::Japanese).unwrap();
        let shape = t(Attribute::Shape);
        assert_eq!(shape.candidates[shape.correct], "星");
        let count = t(Attribute::Count);
        assert_eq!(count.candidates, ["一つの図形", "二つの図形", "三つの図形"]);
        assert_eq!(count.correct, 1);
        let colour = t(Attribute::ObjectColour);
        assert_eq!(colour.candidates[colour.correct], "赤い図形");
        let place = t(Attribute::Placement);
        assert_eq!(place.candidates[place.correct], "左上にある図形");
        let full = zero_shot_task_in(
            &s,
            Attribute::Size,
            PromptStyle::FullCaption,
            Language::Japanese,
        )
        .unwrap();
        assert_eq!(
            full.candidates,
            [
                "青い背景の左上に二つの小さな赤い星",
                "青い背景の左上に二つの大きな赤い星"
            ]
        );
    }
}
