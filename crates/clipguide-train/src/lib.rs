//! Training and evaluation of clipguide's own small CLIP on the built-in world
//! (`clipguide_shapes`): the trainer, the CLOOB objective and the zero-shot evaluation.

pub mod cloob;
pub mod eval;
pub mod trainer;
