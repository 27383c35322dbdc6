//! Generation by search: a CLIP chooses, coordinate by coordinate, the settings of a drawing
//! procedure (a [`DrawnSpace`]) whose drawings it scores best for the prompts.
//!
//! Why beside gradient guidance: a small CLIP trained on a drawn world has adversarial pixel
//! gradients (a spectrum paints noise it scores above a clean drawing), but its zero-shot
//! judgement of whole drawings is good. Searching the world's own drawing settings asks the
//! model only for that judgement, and every image it can end on is a drawing, never an
//! adversarial pattern. This module knows no world: the space supplies starts, moves and
//! drawings; the model supplies scores.

use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::Tensor;
use clipguide_clip::Clip;
use image::RgbImage;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{GuideError, Result};

/// A drawing procedure with discrete settings.
pub trait DrawnSpace {
    /// One setting of every coordinate: what a drawing is made from.
    type Point: Clone;
    /// `count` starting points, drawn from `rng` (different kinds of drawing among them).
    fn starts(&self, count: usize, rng: &mut ChaCha8Rng) -> Vec<Self::Point>;
    /// The moves from `point`, grouped by coordinate: each group holds `point` with that one
    /// coordinate set to each of its other valid values (or an object added or removed).
    fn moves(&self, point: &Self::Point) -> Vec<Vec<Self::Point>>;
    /// Draws `point` as a `size`×`size` image; the same point gives the same bytes at a size.
    fn draw(&self, point: &Self::Point, size: u32) -> RgbImage;
}

/// How hard to search.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchSettings {
    /// Independent starting points; each is improved, the best-scoring result is kept.
    pub starts: usize,
    /// Most passes over all coordinates per start (a pass that changes nothing ends it).
    pub rounds: usize,
    pub seed: u64,
}

impl Default for SearchSettings {
    fn default() -> Self {
        Self {
            starts: 8,
            rounds: 4,
            seed: 0,
        }
    }
}

impl SearchSettings {
    /// Checks the counts, naming the one at fault.
    pub fn validate(&self) -> Result<()> {
        if !(1..=256).contains(&self.starts) {
            return Err(GuideError::invalid(
                "starts",
                format!("{}: give between 1 and 256 starting points", self.starts),
            ));
        }
        if !(1..=64).contains(&self.rounds) {
            return Err(GuideError::invalid(
                "rounds",
                format!("{}: give between 1 and 64 passes per start", self.rounds),
            ));
        }
        Ok(())
    }
}

/// Where a search stands, for progress display.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SearchProgress {
    /// Starts finished so far, of `starts`.
    pub start: usize,
    pub starts: usize,
    /// Drawings scored so far.
    pub scored: usize,
    /// The best score so far.
    pub best: f32,
}

/// The result of a search.
#[derive(Clone, Debug)]
pub struct SearchOutcome<P> {
    pub point: P,
    /// The weighted prompt similarity of `point`'s drawing at the model's input size.
    pub score: f32,
    /// Drawings scored.
    pub scored: usize,
    /// Whether a stop request ended the search early (the result is the best found so far).
    pub stopped: bool,
}

/// Weighted prompts as unit text embeddings `[P, D]` and their weights.
struct Targets {
    embeddings: Tensor,
    weights: Tensor,
}

impl Targets {
    fn new(clip: &Clip, prompts: &[(String, f32)]) -> Result<Self> {
        if prompts.is_empty() {
            return Err(GuideError::invalid(
                "prompts",
                "none given: give at least one text prompt".to_string(),
            ));
        }
        if let Some((t, w)) = prompts.iter().find(|(_, w)| !w.is_finite()) {
            return Err(GuideError::invalid(
                "prompt weight",
                format!("`{t}` has weight {w}: give a finite number"),
            ));
        }
        if prompts.iter().all(|(_, w)| *w <= 0.0) {
            return Err(GuideError::invalid(
                "prompt weight",
                "every prompt is negative: give at least one prompt with a positive weight"
                    .to_string(),
            ));
        }
        let texts: Vec<&str> = prompts.iter().map(|(t, _)| t.as_str()).collect();
        let embeddings = unit_rows(&clip.embed_texts(&texts)?)?;
        let weights: Vec<f32> = prompts.iter().map(|(_, w)| *w).collect();
        let weights = Tensor::from_vec(weights, (prompts.len(), 1), clip.device())?;
        Ok(Self {
            embeddings,
            weights,
        })
    }

    /// Each image's score: Σ_p weight_p · cos(image, prompt_p).
    fn scores(&self, clip: &Clip, images: &[RgbImage]) -> Result<Vec<f32>> {
        let e = unit_rows(&clip.embed_images(images)?)?;
        let cos = e.matmul(&self.embeddings.t()?)?; // [N, P]
        Ok(cos.matmul(&self.weights)?.squeeze(1)?.to_vec1::<f32>()?)
    }
}

fn unit_rows(t: &Tensor) -> Result<Tensor> {
    let norm = t.sqr()?.sum_keepdim(1)?.sqrt()?;
    Ok(t.broadcast_div(&norm)?)
}

/// Index of the largest score; the first on ties, so results do not depend on float order.
fn best_index(scores: &[f32]) -> usize {
    let mut best = 0;
    for (k, s) in scores.iter().enumerate() {
        if *s > scores[best] {
            best = k;
        }
    }
    best
}

/// Searches `space` for the drawing `clip` scores best for the weighted `prompts` (a negative
/// weight pushes away): from each of `settings.starts` starting points, coordinate ascent (every
/// value of one coordinate scored together, the best kept) until a pass changes nothing; the
/// best point over all starts wins. `progress` hears after every coordinate; setting `stop`
/// ends the search at the next coordinate with the best point so far.
pub fn search<S: DrawnSpace>(
    clip: &Clip,
    prompts: &[(String, f32)],
    space: &S,
    settings: &SearchSettings,
    progress: &mut dyn FnMut(SearchProgress),
    stop: &AtomicBool,
) -> Result<SearchOutcome<S::Point>> {
    settings.validate()?;
    let targets = Targets::new(clip, prompts)?;
    let size = clip.model.config().vision.image_size as u32;
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
    let starts = space.starts(settings.starts, &mut rng);
    if starts.is_empty() {
        return Err(GuideError::invalid(
            "starts",
            "the drawing space gave no starting point".to_string(),
        ));
    }
    let draw_all = |points: &[S::Point]| -> Vec<RgbImage> {
        points.iter().map(|p| space.draw(p, size)).collect()
    };
    let start_scores = targets.scores(clip, &draw_all(&starts))?;
    let mut scored = starts.len();
    let mut best: Option<(S::Point, f32)> = None;
    let mut stopped = false;
    'starts: for (k, (start, start_score)) in starts.iter().zip(start_scores).enumerate() {
        let (mut current, mut current_score) = (start.clone(), start_score);
        for _ in 0..settings.rounds {
            let mut changed = false;
            for group in space.moves(&current) {
                if stop.load(Ordering::Relaxed) {
                    stopped = true;
                    keep_better(&mut best, &current, current_score);
                    break 'starts;
                }
                if group.is_empty() {
                    continue;
                }
                let scores = targets.scores(clip, &draw_all(&group))?;
                scored += group.len();
                let b = best_index(&scores);
                if scores[b] > current_score {
                    current = group[b].clone();
                    current_score = scores[b];
                    changed = true;
                }
                progress(SearchProgress {
                    start: k,
                    starts: starts.len(),
                    scored,
                    best: best
                        .as_ref()
                        .map_or(current_score, |b| b.1.max(current_score)),
                });
            }
            if !changed {
                break;
            }
        }
        keep_better(&mut best, &current, current_score);
    }
    let (point, score) = best.expect("at least one start was scored");
    Ok(SearchOutcome {
        point,
        score,
        scored,
        stopped,
    })
}

fn keep_better<P: Clone>(best: &mut Option<(P, f32)>, point: &P, score: f32) {
    if best.as_ref().is_none_or(|b| score > b.1) {
        *best = Some((point.clone(), score));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The random-weight tiny CLIP fixture (tools/make_fixtures.py).
    fn tiny_clip() -> Clip {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/tiny-clip-quickgelu"
        );
        Clip::load(std::path::Path::new(dir), &candle_core::Device::Cpu)
            .unwrap_or_else(|e| panic!("the tiny CLIP fixture {dir} is missing or broken: {e}"))
    }

    /// A space of flat colours: a point is an index into `COLOURS`; the one move group is
    /// every other colour.
    struct Flat;
    const COLOURS: [[u8; 3]; 4] = [[220, 30, 30], [30, 170, 50], [30, 60, 220], [245, 220, 30]];

    impl DrawnSpace for Flat {
        type Point = usize;
        fn starts(&self, count: usize, _: &mut ChaCha8Rng) -> Vec<usize> {
            (0..count).map(|k| k % COLOURS.len()).collect()
        }
        fn moves(&self, p: &usize) -> Vec<Vec<usize>> {
            vec![(0..COLOURS.len()).filter(|c| c != p).collect()]
        }
        fn draw(&self, p: &usize, size: u32) -> RgbImage {
            RgbImage::from_pixel(size, size, image::Rgb(COLOURS[*p]))
        }
    }

    #[test]
    fn the_best_index_is_the_first_maximum() {
        assert_eq!(best_index(&[0.1, 0.3, 0.3, -1.0]), 1);
        assert_eq!(best_index(&[2.0]), 0);
    }

    #[test]
    fn settings_outside_their_range_are_refused_by_name() {
        let s = SearchSettings {
            starts: 0,
            ..SearchSettings::default()
        };
        assert!(s.validate().unwrap_err().to_string().contains("starts"));
        let s = SearchSettings {
            rounds: 65,
            ..SearchSettings::default()
        };
        assert!(s.validate().unwrap_err().to_string().contains("rounds"));
    }

    #[test]
    fn the_search_ends_on_the_drawing_the_model_scores_best() {
        let clip = tiny_clip();
        let prompts = vec![("a blue picture".to_string(), 1.0)];
        let stop = AtomicBool::new(false);
        let mut heard = 0;
        let settings = SearchSettings {
            starts: 1,
            rounds: 3,
            seed: 0,
        };
        let out = search(
            &clip,
            &prompts,
            &Flat,
            &settings,
            &mut |_| heard += 1,
            &stop,
        )
        .unwrap();
        // Whatever the random tiny model prefers, the search must end on its favourite of the
        // four drawings: score all four directly and compare.
        let images: Vec<RgbImage> = (0..4).map(|p| Flat.draw(&p, 32)).collect();
        let targets = Targets::new(&clip, &prompts).unwrap();
        let scores = targets.scores(&clip, &images).unwrap();
        assert_eq!(out.point, best_index(&scores));
        assert!((out.score - scores[out.point]).abs() < 1e-5);
        assert!(heard >= 1 && !out.stopped);
        // A negative weight on the same prompt turns the preference around.
        let negative = vec![
            ("a blue picture".to_string(), -1.0),
            ("anything".to_string(), 0.0001),
        ];
        let out = search(&clip, &negative, &Flat, &settings, &mut |_| {}, &stop).unwrap();
        let flipped = Targets::new(&clip, &negative)
            .unwrap()
            .scores(&clip, &images)
            .unwrap();
        assert_eq!(out.point, best_index(&flipped));
    }

    #[test]
    fn a_stop_request_returns_the_best_so_far() {
        let clip = tiny_clip();
        let stop = AtomicBool::new(true);
        let out = search(
            &clip,
            &[("x".to_string(), 1.0)],
            &Flat,
            &SearchSettings::default(),
            &mut |_| {},
            &stop,
        )
        .unwrap();
        assert!(out.stopped);
        assert_eq!(out.scored, SearchSettings::default().starts);
    }

    #[test]
    fn prompts_that_cannot_be_searched_are_refused() {
        let clip = tiny_clip();
        let stop = AtomicBool::new(false);
        let s = SearchSettings::default();
        for (prompts, word) in [
            (vec![], "at least one"),
            (vec![("a".to_string(), -1.0)], "positive"),
            (vec![("a".to_string(), f32::NAN)], "finite"),
        ] {
            let e = search(&clip, &prompts, &Flat, &s, &mut |_| {}, &stop)
                .unwrap_err()
                .to_string();
            assert!(e.contains(word), "{e}");
        }
    }
}
