//! The synthetic captioned-shapes dataset: scene sampling, rendering, captions and zero-shot probes.
//! Everything is a pure function of a seed, so the trainer streams unlimited data without touching disk.

mod captions;
mod dataset;
mod hard_negatives;
mod render;
mod scene;
mod zero_shot;

pub use captions::{
    canonical_caption, captions, count_word, placement_contrasts, placement_phrases,
    placement_variants, CAPTIONS_PER_SCENE,
};
pub use dataset::{
    read_captions, write_dataset, write_dataset_with, CaptionRecord, DatasetError, DatasetSummary,
    ShapesDataset, CAPTIONS_FILE, IMAGES_DIR, MAX_IMAGE_SIZE, MIN_IMAGE_SIZE,
};
pub use hard_negatives::{HardNegatives, HARD_NEGATIVE_ATTRIBUTES};
pub use render::{cell_centre, object_boxes, render, SUPERSAMPLE};
pub use scene::{
    BackgroundPattern, ObjectGroup, PatternKind, Placement, SceneConfig, SceneSpec, Shape, Size,
    StripeDirection,
};
pub use zero_shot::{attribute_prompts, zero_shot_task, Attribute, PromptStyle, ZeroShotTask};
