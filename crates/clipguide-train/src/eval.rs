//! Zero-shot evaluation of a CLIP on held-out synthetic scenes: accuracy per attribute (object
//! colour, shape, background, position, count, size) and text→image retrieval recall@1/5.

use candle_core::Tensor;
use clipguide_clip::{cosine_matrix, Clip};
use clipguide_shapes::{
    attribute_prompts, canonical_caption, Attribute, PromptStyle, SceneConfig, ShapesDataset,
};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub count: usize,
    pub seed: u64,
    /// attribute name → accuracy in [0, 1]
    pub accuracy: BTreeMap<String, f32>,
    pub recall_at_1: f32,
    pub recall_at_5: f32,
}

pub fn evaluate(clip: &Clip, count: usize, seed: u64) -> crate::trainer::Result<EvalReport> {
    let size = clip.model.config().vision.image_size as u32;
    let ds = ShapesDataset::with_config(seed, size, SceneConfig::single_group())?;
    let mut hits: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut images = Vec::with_capacity(count);
    let mut captions = Vec::with_capacity(count);
    let mut text_cache: std::collections::HashMap<String, Vec<f32>> = Default::default();
    for i in 0..count {
        let (img, _, scene) = ds.get(i);
        let tasks = attribute_prompts(&scene, PromptStyle::FullCaption);
        let img_emb = clip.embed_images(std::slice::from_ref(&img))?;
        for task in tasks {
            let missing: Vec<String> = task
                .candidates
                .iter()
                .filter(|c| !text_cache.contains_key(*c))
                .cloned()
                .collect();
            if !missing.is_empty() {
                let e = clip.embed_texts(&missing)?.to_vec2::<f32>()?;
                for (c, v) in missing.into_iter().zip(e) {
                    text_cache.insert(c, v);
                }
            }
            let dim = text_cache[&task.candidates[0]].len();
            let flat: Vec<f32> = task
                .candidates
                .iter()
                .flat_map(|c| text_cache[c].clone())
                .collect();
            let t = Tensor::from_vec(flat, (task.candidates.len(), dim), clip.device())?;
            let scores = cosine_matrix(&img_emb, &t)?.squeeze(0)?.to_vec1::<f32>()?;
            let best = scores
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(k, _)| k)
                .unwrap_or(0);
            let e = hits.entry(task.attribute.name().to_string()).or_default();
            e.0 += usize::from(best == task.correct);
            e.1 += 1;
        }
        images.push(img);
        captions.push(canonical_caption(&scene));
    }
    let ie = clip.embed_images(&images)?;
    let te = clip.embed_texts(&captions)?;
    // text → image: for caption j, where does image j rank?
    let sim = cosine_matrix(&te, &ie)?.to_vec2::<f32>()?;
    let (mut r1, mut r5) = (0, 0);
    for (j, row) in sim.iter().enumerate() {
        let rank = row.iter().filter(|s| **s > row[j]).count();
        r1 += usize::from(rank < 1);
        r5 += usize::from(rank < 5);
    }
    let accuracy = Attribute::ALL
        .iter()
        .filter_map(|a| {
            hits.get(a.name())
                .map(|(h, n)| (a.name().to_string(), *h as f32 / (*n).max(1) as f32))
        })
        .collect();
    Ok(EvalReport {
        count,
        seed,
        accuracy,
        recall_at_1: r1 as f32 / count as f32,
        recall_at_5: r5 as f32 / count as f32,
    })
}
