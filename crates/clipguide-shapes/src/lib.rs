//! The built-in model's world: everything that knows what the procedural drawings are.
//!
//! - [`palette`]: the fixed colour vocabulary and nearest-colour lookup.
//! - scenes ([`SceneSpec`]), rendering ([`render`]), captions, hard negatives, zero-shot probes
//!   and dataset I/O: a pure function of a seed, so the trainer streams unlimited data.
//! - [`judge`]: prompt parsing and the pass/fail colour-layout check, plus the benchmark prompts.
//! - [`training_vocabulary`] / [`japanese_lexicon`] / [`unknown_words`]: the words of the
//!   English and Japanese captions, so a prompt's unseen words can be named.
//! - Japanese: [`captions_ja`], [`canonical_caption_ja`], [`zero_shot_task_in`]; the judge's
//!   parser reads Japanese prompts too.
//! - [`recipe`]: the generation recipes that suit a model trained on this world (palette,
//!   outlines, placement contrasts, edge, radius, size and steps).
//!
//! Invariant: nothing here loads or runs a CLIP model; the world produces `RgbImage`s and
//! strings, and the recipes produce `clipguide_guide` settings. Nothing prints.

mod captions;
mod captions_ja;
mod dataset;
mod distractors;
mod drawing;
mod hard_negatives;
pub mod judge;
mod language;
pub mod palette;
mod picture;
pub mod recipe;
mod render;
mod scene;
mod search_space;
mod style;
mod sunflower;
mod vocabulary;
mod world;
mod zero_shot;
mod zero_shot_ja;

pub use captions::{
    canonical_caption, captions, count_word, placement_contrasts, placement_phrases,
    placement_variants, shape_nouns, size_words, CAPTIONS_PER_SCENE,
};
pub use captions_ja::{
    canonical_caption_in, canonical_caption_ja, captions_in, captions_ja, colour_adjectives_ja,
    colour_from_word_ja, colour_noun_ja, count_from_word_ja, count_words_ja, is_japanese_char,
    japanese_lexicon, japanese_runs, placement_from_word_ja, placement_phrases_ja,
    segment_japanese, shape_from_word_ja, shape_words_ja, size_from_word_ja, size_words_ja,
    Segment,
};
pub use dataset::{
    read_captions, write_dataset, write_dataset_with, CaptionRecord, DatasetError, DatasetSummary,
    ShapesDataset, CAPTIONS_FILE, IMAGES_DIR, MAX_IMAGE_SIZE, MIN_IMAGE_SIZE,
};
pub use distractors::{made_up_word, made_up_word_ja, with_made_up_words};
pub use drawing::{render_drawn, Drawing, DrawnScene, GroupDrawing, Rasteriser};
pub use hard_negatives::{HardItem, HardNegatives, HARD_NEGATIVE_ATTRIBUTES};
pub use language::Language;
pub use picture::{
    fits, picture_canonical_caption, picture_captions, picture_probes, render_picture, Backdrop,
    Ground, ObjectKind, PictureObject, PictureSpec, Sky, HORIZON, MAX_PICTURE_OBJECTS,
};
pub use render::{cell_centre, object_boxes, render, SUPERSAMPLE};
pub use scene::{
    BackgroundPattern, ObjectGroup, PatternKind, Placement, SceneConfig, SceneSpec, Shape, Size,
    StripeDirection,
};
pub use search_space::{draw_content, StoredWorldDrawing, WorldSpace, WORLD_SEARCH};
pub use style::{apply_style, Style};
pub use sunflower::{find_sunflower, SunflowerFound};
pub use vocabulary::{training_vocabulary, unknown_words};
pub use world::{styled_caption, WorldContent, WorldItem, WorldMix};
pub use zero_shot::{attribute_prompts, zero_shot_task, Attribute, PromptStyle, ZeroShotTask};
pub use zero_shot_ja::{attribute_prompts_in, zero_shot_task_in};
