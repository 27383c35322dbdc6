//! Zero-shot evaluation of a CLIP on held-out drawings of the built-in world: accuracy per
//! attribute (object colour, shape, background, position, count, size; object and style on
//! pictures) and text→image retrieval recall@1/5, with English or Japanese candidates.
//!
//! The drawings come from the world's own renderers at a seed never trained on, or from a
//! folder another renderer wrote (`scenes.jsonl`: one `{"file", "scene"}` per line, the scene
//! in [`SceneSpec`]'s JSON), such as `tools/make_heldout_drawings.py`'s Pillow drawings.

use candle_core::Tensor;
use clipguide_clip::{cosine_matrix, Clip};
use clipguide_shapes::{
    attribute_prompts_in, canonical_caption_in, picture_canonical_caption, picture_probes,
    render_drawn, render_picture, Attribute, Drawing, DrawnScene, Language, PictureSpec,
    PromptStyle, SceneConfig, SceneSpec, ShapesDataset, ZeroShotTask,
};
use image::RgbImage;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::trainer::{Result, TrainError};

/// Where the held-out drawings come from.
#[derive(Debug, Clone, PartialEq)]
pub enum EvalSource {
    /// Single-group shapes scenes of seed `seed` in the canonical look, or (`varied`) each
    /// through a random drawing (outline, rasteriser, edges).
    Scenes {
        count: usize,
        seed: u64,
        varied: bool,
    },
    /// Pictures of seed `seed` (objects, backdrops, styles): object and style probes.
    Pictures { count: usize, seed: u64 },
    /// A folder of drawings with `scenes.jsonl` (another renderer's).
    Drawings(PathBuf),
}

impl EvalSource {
    fn describe(&self) -> String {
        match self {
            EvalSource::Scenes {
                count,
                seed,
                varied,
            } => format!(
                "{count} shapes scenes of seed {seed}, {} drawings",
                if *varied { "varied" } else { "canonical" }
            ),
            EvalSource::Pictures { count, seed } => format!("{count} pictures of seed {seed}"),
            EvalSource::Drawings(dir) => format!("the drawings in {}", dir.display()),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// What was evaluated, in words.
    pub source: String,
    pub language: Language,
    pub count: usize,
    /// attribute name → accuracy in [0, 1]
    pub accuracy: BTreeMap<String, f32>,
    pub recall_at_1: f32,
    pub recall_at_5: f32,
}

/// One line of a drawings folder's `scenes.jsonl`.
#[derive(Debug, Clone, Deserialize)]
struct DrawingRecord {
    file: String,
    scene: SceneSpec,
}

/// The file a drawings folder describes its images in.
pub const DRAWINGS_FILE: &str = "scenes.jsonl";

/// Reads a drawings folder: every image with its scene. Every line is checked before any image
/// is read, so a bad line near the end is reported at once.
pub fn read_drawings(dir: &Path) -> Result<Vec<(RgbImage, SceneSpec)>> {
    let path = dir.join(DRAWINGS_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| TrainError::Io {
        path: path.clone(),
        source: e,
    })?;
    parse_drawings(&text, &path)?
        .into_iter()
        .map(|(file, scene)| Ok((clipguide_clip::load_image(&dir.join(file))?, scene)))
        .collect()
}

/// The `(file, scene)` lines of a drawings folder's `scenes.jsonl` (`path` names it in errors),
/// blank lines skipped; at least one.
pub fn parse_drawings(text: &str, path: &Path) -> Result<Vec<(String, SceneSpec)>> {
    let mut out = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let record: DrawingRecord = serde_json::from_str(line).map_err(|e| {
            TrainError::Invalid(format!(
                "{}:{}: {e}; each line must be {{\"file\": \"name.png\", \"scene\": {{…}}}} with the scene in clipguide's SceneSpec JSON",
                path.display(),
                n + 1
            ))
        })?;
        out.push((record.file, record.scene));
    }
    if out.is_empty() {
        return Err(TrainError::Invalid(format!(
            "{}: no drawings listed; write one {{\"file\", \"scene\"}} line per image",
            path.display()
        )));
    }
    Ok(out)
}

/// The canonical evaluation of the first world: canonical drawings, English candidates.
pub fn evaluate(clip: &Clip, count: usize, seed: u64) -> Result<EvalReport> {
    evaluate_source(
        clip,
        &EvalSource::Scenes {
            count,
            seed,
            varied: false,
        },
        Language::English,
    )
}

/// Zero-shot accuracy and retrieval on `source`, with candidates in `language`.
pub fn evaluate_source(clip: &Clip, source: &EvalSource, language: Language) -> Result<EvalReport> {
    let size = clip.model.config().vision.image_size as u32;
    // Each item: image, its probes, its canonical caption.
    let mut items: Vec<(RgbImage, Vec<ZeroShotTask>, String)> = Vec::new();
    let mut push_scene = |image: RgbImage, scene: &SceneSpec| {
        let tasks = attribute_prompts_in(scene, PromptStyle::FullCaption, language);
        items.push((image, tasks, canonical_caption_in(scene, language)));
    };
    match source {
        EvalSource::Scenes {
            count,
            seed,
            varied,
        } => {
            let ds = ShapesDataset::with_config(*seed, size, SceneConfig::single_group())?;
            for i in 0..*count {
                let (image, _, scene) = ds.get(i);
                let image = if *varied {
                    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x00D2_A3B1);
                    rng.set_stream(i as u64);
                    let drawing = Drawing::random(&scene, &mut rng);
                    render_drawn(
                        &DrawnScene {
                            scene: scene.clone(),
                            drawing,
                        },
                        size,
                    )
                } else {
                    image
                };
                push_scene(image, &scene);
            }
        }
        EvalSource::Drawings(dir) => {
            let processor = clipguide_clip::ImageProcessor::for_size(size as usize);
            for (image, scene) in read_drawings(dir)? {
                let image = if image.dimensions() == (size, size) {
                    image
                } else {
                    processor.resize_and_crop(&image)
                };
                push_scene(image, &scene);
            }
        }
        EvalSource::Pictures { count, seed } => {
            for i in 0..*count {
                let mut rng = ChaCha8Rng::seed_from_u64(*seed);
                rng.set_stream(i as u64);
                let spec = PictureSpec::random(&mut rng);
                items.push((
                    render_picture(&spec, size),
                    picture_probes(&spec, language),
                    picture_canonical_caption(&spec, language),
                ));
            }
        }
    }
    score(clip, source.describe(), language, items)
}

fn score(
    clip: &Clip,
    source: String,
    language: Language,
    items: Vec<(RgbImage, Vec<ZeroShotTask>, String)>,
) -> Result<EvalReport> {
    let count = items.len();
    let mut hits: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut text_cache: HashMap<String, Vec<f32>> = HashMap::new();
    let images: Vec<RgbImage> = items.iter().map(|i| i.0.clone()).collect();
    let image_embeddings = clip.embed_images(&images)?;
    for (k, (_, tasks, _)) in items.iter().enumerate() {
        let img_emb = image_embeddings.narrow(0, k, 1)?;
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
    }
    let captions: Vec<String> = items.into_iter().map(|i| i.2).collect();
    let te = clip.embed_texts(&captions)?;
    // text → image: for caption j, where does image j rank?
    let sim = cosine_matrix(&te, &image_embeddings)?.to_vec2::<f32>()?;
    let (mut r1, mut r5) = (0, 0);
    for (j, row) in sim.iter().enumerate() {
        let rank = row.iter().filter(|s| **s > row[j]).count();
        r1 += usize::from(rank < 1);
        r5 += usize::from(rank < 5);
    }
    let accuracy = Attribute::ALL
        .iter()
        .chain(Attribute::PICTURE.iter())
        .filter_map(|a| {
            hits.get(a.name())
                .map(|(h, n)| (a.name().to_string(), *h as f32 / (*n).max(1) as f32))
        })
        .collect();
    Ok(EvalReport {
        source,
        language,
        count,
        accuracy,
        recall_at_1: r1 as f32 / count.max(1) as f32,
        recall_at_5: r5 as f32 / count.max(1) as f32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"file": "0000.png", "scene": {"background": "green", "pattern": null, "groups": [{"shape": "ring", "colour": "gray", "size": "large", "count": 1, "placement": "left", "jitter": [0.0, 0.0]}]}}"#;

    #[test]
    fn drawing_lines_parse_and_a_bad_one_names_its_number() {
        let p = Path::new("d/scenes.jsonl");
        let text = format!("{LINE}\r\n\n  \n{}\n", LINE.replace("0000", "0001"));
        let parsed = parse_drawings(&text, p).unwrap();
        assert_eq!(
            parsed.iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>(),
            ["0000.png", "0001.png"]
        );
        assert_eq!(parsed[0].1.groups[0].count, 1);
        let e = parse_drawings(&format!("{LINE}\n\n{{\"file\": \"x.png\"}}\n"), p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("d/scenes.jsonl:3") && e.contains("scene"), "{e}");
        let e = parse_drawings(" \n\n", p).unwrap_err().to_string();
        assert!(e.contains("no drawings listed"), "{e}");
    }
}
