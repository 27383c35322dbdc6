//! Open-vocabulary detection from the CLIP towers alone, with no training:
//!
//! 1. **Dense similarity** (MaskCLIP): every patch's embedding by the last layer's value path
//!    ([`clipguide_clip::ClipModel::dense_patch_embeddings`]) against every label, on the whole
//!    image and on overlapping tiles (finer cells than one pass's patch grid), stretched from
//!    floor to peak per label. These are the heatmaps: they say where each label is, at the
//!    coarseness of the patch grid.
//! 2. **Candidates**: the segments of a class-agnostic graph-based segmentation at a few scales
//!    ([`crate::segment`], selective search's first stage), whose boxes follow the image's own
//!    edges; boxes drawn from the heatmaps' cells were too loose or too tight for IoU 0.5
//!    (BENCHMARKS.md, issue #26). A segment spanning the whole frame is the background.
//! 3. **Re-scoring**: each candidate's crop (with context) classified by the full model over
//!    the labels and background prompts; its score for a label is the label's probability
//!    there times the label's mean heatmap value over the segment's pixels.
//! 4. **Non-maximum suppression** per label.
//!
//! Boxes are in pixels of the input image.

use crate::error::{Result, ZeroShotError};
use crate::prompts::{class_embeddings, image_embeddings, scores, ClassPrompt, Templates};
use crate::segment;
use candle_core::Tensor;
use clipguide_clip::preprocess::pil_resize_bicubic;
use clipguide_clip::{l2_normalize, Clip};
use image::RgbImage;
use serde::{Deserialize, Serialize};

/// Settings of a detection run. `Default` is the setting BENCHMARKS.md measures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectOptions {
    /// Detections scoring below this are dropped.
    pub threshold: f32,
    /// Boxes of one label overlapping a better one by more than this IoU are suppressed.
    pub nms_iou: f32,
    /// At most this many detections, best first.
    pub max_detections: usize,
    /// Tilings of the dense pass: `n` covers the image with n×n tiles overlapping by half
    /// (1 = the whole image once).
    pub tilings: Vec<u32>,
    /// Cells per side of the heatmap grid the tiles are accumulated on.
    pub grid: u32,
    /// Context added around a candidate box before cropping, as a fraction of its side.
    pub context: f32,
    /// Prompts competing with the labels for "nothing there" (filled into the templates).
    pub background: Vec<String>,
    /// Scales (Felzenszwalb's `k`, for 0–255 colours) of the segmentations whose segments are
    /// the candidate boxes ([`crate::segment`]): small scales find small or low-contrast parts,
    /// large ones whole objects. Absent from annotation files written before detection used
    /// segments (read as none, so such a run is never resumed with today's options).
    #[serde(default)]
    pub segment_scales: Vec<f32>,
}

impl Default for DetectOptions {
    fn default() -> Self {
        Self {
            threshold: 0.1,
            nms_iou: 0.5,
            max_detections: 100,
            tilings: vec![1, 2, 3, 4],
            grid: 48,
            context: 0.25,
            background: vec!["background".into()],
            segment_scales: vec![100.0, 300.0, 1000.0],
        }
    }
}

/// One detection: `bbox` is `[x0, y0, x1, y1]` in input-image pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub label: String,
    pub score: f32,
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
}

/// A label's dense similarity map: `grid`×`grid` cells over the image, row-major; the cosines
/// of the patches covering each cell, averaged, then stretched to [0, 1] from their lowest to
/// their highest in this image.
#[derive(Debug, Clone, PartialEq)]
pub struct Heatmap {
    pub label: String,
    pub grid: u32,
    pub values: Vec<f32>,
}

impl Heatmap {
    /// The map as a grey image of the given size (nearest cell), white = 1.
    pub fn to_image(&self, width: u32, height: u32) -> image::GrayImage {
        let g = self.grid as f32;
        image::GrayImage::from_fn(width, height, |x, y| {
            let cx = ((x as f32 + 0.5) / width as f32 * g) as u32;
            let cy = ((y as f32 + 0.5) / height as f32 * g) as u32;
            let v =
                self.values[(cy.min(self.grid - 1) * self.grid + cx.min(self.grid - 1)) as usize];
            image::Luma([(v.clamp(0.0, 1.0) * 255.0).round() as u8])
        })
    }
}

#[derive(Debug, Clone)]
pub struct DetectOutput {
    /// Best first.
    pub detections: Vec<Detection>,
    /// One per label, in the labels' order.
    pub heatmaps: Vec<Heatmap>,
}

/// Text embeddings for detection, computed once and reused over many images.
#[derive(Debug, Clone)]
pub struct DetectPrompts {
    labels: Vec<String>,
    /// Unit embeddings [labels + background, P].
    embeddings: Tensor,
}

impl DetectPrompts {
    pub fn new(
        clip: &Clip,
        classes: &[ClassPrompt],
        templates: &Templates,
        opts: &DetectOptions,
    ) -> Result<Self> {
        if classes.is_empty() {
            return Err(ZeroShotError::BadInput(
                "no labels to detect: pass at least one".into(),
            ));
        }
        let mut all = classes.to_vec();
        all.extend(opts.background.iter().map(|b| ClassPrompt::new(b)));
        Ok(Self {
            labels: classes.iter().map(|c| c.label.clone()).collect(),
            embeddings: class_embeddings(clip, &all, templates)?,
        })
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }
}

/// Detects `prompts`' labels in `image`.
pub fn detect(
    clip: &Clip,
    image: &RgbImage,
    prompts: &DetectPrompts,
    opts: &DetectOptions,
) -> Result<DetectOutput> {
    check_options(opts)?;
    let (w, h) = image.dimensions();
    if w < 2 || h < 2 {
        return Err(ZeroShotError::BadInput(format!(
            "a {w}×{h} image is too small to search"
        )));
    }
    let heatmaps = dense_maps(clip, image, prompts, opts)?;
    let side = clip.processor.output_side() as u32;
    let candidates = segment_candidates(image, &heatmaps, opts);
    let mut detections = Vec::new();
    // Crops are embedded in batches: one forward pass per 64 candidates.
    for chunk in candidates.chunks(64) {
        let crops: Vec<RgbImage> = chunk
            .iter()
            .map(|c| crop_square(image, c.bbox, opts.context, side))
            .collect();
        let emb = image_embeddings(clip, &crops)?;
        let probs = scores(clip, &emb, &prompts.embeddings)?.probs;
        for (c, p) in chunk.iter().zip(probs) {
            // The crop's verdict, weighted by how much the dense map gives the label over the
            // segment's own pixels.
            for (k, label) in prompts.labels.iter().enumerate() {
                detections.push(Detection {
                    label: label.clone(),
                    score: p[k] * c.support[k],
                    bbox: c.bbox,
                });
            }
        }
    }
    let mut kept = nms(detections, opts.nms_iou);
    kept.retain(|d| d.score >= opts.threshold);
    kept.truncate(opts.max_detections);
    Ok(DetectOutput {
        detections: kept,
        heatmaps,
    })
}

/// A segment's bounding box, to re-score with the full model, with each label's mean heatmap
/// value over the segment's pixels.
struct Candidate {
    bbox: [f32; 4],
    support: Vec<f32>,
}

/// Gaussian smoothing before segmenting, in pixels: enough to merge JPEG and sensor noise,
/// little enough that a sharp edge's blur is not a band of segments of its own.
const SMOOTHING_SIGMA: f32 = 0.5;

/// Longest side an image is segmented at (larger ones are reduced first, boxes scaled back).
const SEGMENT_MAX_SIDE: u32 = 512;

/// Smallest segment kept as a candidate, as a fraction of the image's pixels.
const MIN_SEGMENT_FRACTION: f32 = 0.005;

/// The segments of every scale in `opts.segment_scales` large enough to be an object, once
/// each (a box found again at another scale is not repeated).
fn segment_candidates(
    image: &RgbImage,
    heatmaps: &[Heatmap],
    opts: &DetectOptions,
) -> Vec<Candidate> {
    // A photo is segmented at a reduced size: the segmentation's cost and memory grow with the
    // pixels (four edges each), and its boxes need no more precision than IoU 0.5 asks.
    let (iw, ih) = image.dimensions();
    let reduced;
    let image = if iw.max(ih) > SEGMENT_MAX_SIDE {
        let f = SEGMENT_MAX_SIDE as f32 / iw.max(ih) as f32;
        let (sw, sh) = (
            ((iw as f32 * f).round() as u32).max(1),
            ((ih as f32 * f).round() as u32).max(1),
        );
        reduced = image::imageops::resize(image, sw, sh, image::imageops::FilterType::Triangle);
        &reduced
    } else {
        image
    };
    let (w, h) = image.dimensions();
    let (to_x, to_y) = (iw as f32 / w as f32, ih as f32 / h as f32);
    let min_area = ((w * h) as f32 * MIN_SEGMENT_FRACTION).ceil() as u32;
    let m = opts.grid as usize;
    // The heatmap cell under each pixel.
    let cell_of = |i: usize| {
        let (x, y) = (i % w as usize, i / w as usize);
        (y * m / h as usize) * m + x * m / w as usize
    };
    let mut out: Vec<Candidate> = Vec::new();
    for &k in &opts.segment_scales {
        let seg = segment::segment(image, SMOOTHING_SIGMA, k, min_area);
        let mut sums = vec![vec![0f32; heatmaps.len()]; seg.regions.len()];
        for (i, &s) in seg.segment_of.iter().enumerate() {
            let cell = cell_of(i);
            for (acc, map) in sums[s as usize].iter_mut().zip(heatmaps) {
                *acc += map.values[cell];
            }
        }
        for (r, sum) in seg.regions.iter().zip(sums) {
            let b = r.bbox.map(|v| v as f32);
            let bbox = [b[0] * to_x, b[1] * to_y, b[2] * to_x, b[3] * to_y];
            // A segment spanning the whole frame is the scene's background (or an object
            // filling the frame, which is `classify`'s question, not a box).
            let frame = r.bbox == [0, 0, w, h];
            if frame || r.area < min_area || out.iter().any(|c| iou(c.bbox, bbox) > 0.95) {
                continue;
            }
            out.push(Candidate {
                bbox,
                support: sum.iter().map(|s| s / r.area as f32).collect(),
            });
        }
    }
    out
}

fn check_options(opts: &DetectOptions) -> Result<()> {
    let bad = |what: &str| Err(ZeroShotError::BadInput(what.into()));
    if opts.tilings.is_empty() || opts.tilings.iter().any(|&t| t == 0 || t > 8) {
        return bad("tilings must be between 1 and 8 tiles per side, at least one of them");
    }
    if !(4..=256).contains(&opts.grid) {
        return bad("the heatmap grid must have 4 to 256 cells per side");
    }
    if !(0.0..=1.0).contains(&opts.nms_iou) || !(0.0..=1.0).contains(&opts.threshold) {
        return bad("the score threshold and the NMS IoU must be between 0 and 1");
    }
    if opts
        .segment_scales
        .iter()
        .any(|k| !(1.0..=100_000.0).contains(k))
    {
        return bad("segmentation scales must be between 1 and 100000");
    }
    if !(0.0..=2.0).contains(&opts.context) {
        return bad("the crop context must be between 0 and 2 (a fraction of the box side)");
    }
    Ok(())
}

/// Per-label heatmaps on the `grid`: each tile's patch cosines added to the cells whose centres
/// they cover, averaged, then stretched per label.
fn dense_maps(
    clip: &Clip,
    image: &RgbImage,
    prompts: &DetectPrompts,
    opts: &DetectOptions,
) -> Result<Vec<Heatmap>> {
    let (w, h) = image.dimensions();
    let s = clip.processor.output_side() as u32;
    let vcfg = &clip.model.config().vision;
    let g = (vcfg.image_size / vcfg.patch_size) as u32;
    let m = opts.grid as usize;
    let n_labels = prompts.labels.len();
    let mut sum = vec![vec![0f32; m * m]; n_labels];
    let mut weight = vec![0f32; m * m];
    for &t in &opts.tilings {
        // n×n tiles overlapping by half: side 2/(n+1) of the image, stepping 1/(n+1).
        let (tw, th) = (
            2.0 * w as f32 / (t + 1) as f32,
            2.0 * h as f32 / (t + 1) as f32,
        );
        let mut rects = Vec::new();
        for ty in 0..t {
            for tx in 0..t {
                let (x0, y0) = if t == 1 {
                    (0.0, 0.0)
                } else {
                    (tx as f32 * tw / 2.0, ty as f32 * th / 2.0)
                };
                let (x1, y1) = if t == 1 {
                    (w as f32, h as f32)
                } else {
                    (x0 + tw, y0 + th)
                };
                rects.push([x0, y0, x1, y1]);
            }
        }
        let tiles: Vec<RgbImage> = rects.iter().map(|r| crop_resize(image, *r, s, s)).collect();
        let px = clip.processor.preprocess_batch(&tiles, clip.device())?;
        let dense = l2_normalize(&clip.model.dense_patch_embeddings(&px)?)?;
        // [tiles, patches, labels + background]
        let probs = dense
            .broadcast_matmul(&prompts.embeddings.t()?)?
            .to_vec3::<f32>()?;
        for (r, tile) in rects.iter().zip(probs) {
            let (pw, ph) = ((r[2] - r[0]) / g as f32, (r[3] - r[1]) / g as f32);
            for (pi, patch) in tile.iter().enumerate() {
                let (gx, gy) = ((pi as u32 % g) as f32, (pi as u32 / g) as f32);
                let (px0, py0) = (r[0] + gx * pw, r[1] + gy * ph);
                for cy in 0..m {
                    let yc = (cy as f32 + 0.5) * h as f32 / m as f32;
                    if yc < py0 || yc >= py0 + ph {
                        continue;
                    }
                    for cx in 0..m {
                        let xc = (cx as f32 + 0.5) * w as f32 / m as f32;
                        if xc < px0 || xc >= px0 + pw {
                            continue;
                        }
                        let cell = cy * m + cx;
                        weight[cell] += 1.0;
                        for (k, acc) in sum.iter_mut().enumerate() {
                            acc[cell] += patch[k];
                        }
                    }
                }
            }
        }
    }
    Ok(prompts
        .labels
        .iter()
        .zip(sum)
        .map(|(label, acc)| {
            let mean: Vec<f32> = acc
                .iter()
                .zip(&weight)
                .map(|(a, w)| if *w > 0.0 { a / w } else { 0.0 })
                .collect();
            // Each label's cosines stretched from their floor to their peak in this image: a
            // label that wins everywhere (one object on a plain background) still has its
            // object standing out above the rest.
            let lo = mean.iter().copied().fold(f32::INFINITY, f32::min);
            let hi = mean.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let span = if hi > lo { hi - lo } else { 1.0 };
            Heatmap {
                label: label.clone(),
                grid: opts.grid,
                values: mean.iter().map(|v| (v - lo) / span).collect(),
            }
        })
        .collect())
}

/// The square around `b` (its longer side plus `context` on each side), clipped to the image,
/// resized to `side`: what the full model re-scores.
fn crop_square(image: &RgbImage, b: [f32; 4], context: f32, side: u32) -> RgbImage {
    let (w, h) = image.dimensions();
    let (cx, cy) = ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0);
    let half = (b[2] - b[0]).max(b[3] - b[1]) * (0.5 + context);
    let r = [
        (cx - half).max(0.0),
        (cy - half).max(0.0),
        (cx + half).min(w as f32),
        (cy + half).min(h as f32),
    ];
    crop_resize(image, r, side, side)
}

/// Pixels of `r` (rounded outwards, at least one pixel) resized to `tw`×`th`.
fn crop_resize(image: &RgbImage, r: [f32; 4], tw: u32, th: u32) -> RgbImage {
    let (w, h) = image.dimensions();
    let x0 = (r[0].floor().max(0.0) as u32).min(w - 1);
    let y0 = (r[1].floor().max(0.0) as u32).min(h - 1);
    let x1 = (r[2].ceil() as u32).clamp(x0 + 1, w);
    let y1 = (r[3].ceil() as u32).clamp(y0 + 1, h);
    let crop = image::imageops::crop_imm(image, x0, y0, x1 - x0, y1 - y0).to_image();
    if crop.dimensions() == (tw, th) {
        crop
    } else {
        pil_resize_bicubic(&crop, tw as usize, th as usize)
    }
}

/// Intersection over union of two `[x0, y0, x1, y1]` boxes.
pub fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |r: [f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// Greedy non-maximum suppression per label: best first, a box is dropped when it overlaps a
/// kept box of the same label by more than `max_iou`. Returns the kept boxes, best first.
pub fn nms(mut detections: Vec<Detection>, max_iou: f32) -> Vec<Detection> {
    detections.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    for d in detections {
        if !kept
            .iter()
            .any(|k| k.label == d.label && iou(k.bbox, d.bbox) > max_iou)
        {
            kept.push(d);
        }
    }
    kept
}

/// A ground-truth box of one image.
#[derive(Debug, Clone, PartialEq)]
pub struct GroundTruth {
    pub label: String,
    pub bbox: [f32; 4],
}

/// Average precision at `iou_threshold` (PASCAL VOC's all-point interpolation) over a set of
/// images, `images[i]` = (its detections, its ground truth), for the labels `keep` accepts,
/// pooled: a detection is a true positive when it overlaps an unmatched ground-truth box of its
/// own label. `None` when no accepted label has ground truth.
pub fn average_precision(
    images: &[(Vec<Detection>, Vec<GroundTruth>)],
    keep: impl Fn(&str) -> bool,
    iou_threshold: f32,
) -> Option<f32> {
    let mut dets: Vec<(f32, usize, &Detection)> = Vec::new();
    let mut gts: Vec<Vec<&GroundTruth>> = Vec::new();
    for (i, (d, g)) in images.iter().enumerate() {
        dets.extend(d.iter().filter(|d| keep(&d.label)).map(|d| (d.score, i, d)));
        gts.push(g.iter().filter(|g| keep(&g.label)).collect());
    }
    let total: usize = gts.iter().map(Vec::len).sum();
    if total == 0 {
        return None;
    }
    dets.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut used: Vec<Vec<bool>> = gts.iter().map(|g| vec![false; g.len()]).collect();
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut curve: Vec<(f32, f32)> = Vec::new();
    for (_, i, d) in dets {
        let best = gts[i]
            .iter()
            .enumerate()
            .filter(|(_, g)| g.label == d.label)
            .map(|(j, g)| (j, iou(g.bbox, d.bbox)))
            .max_by(|x, y| x.1.total_cmp(&y.1));
        match best {
            Some((j, o)) if o >= iou_threshold && !used[i][j] => {
                used[i][j] = true;
                tp += 1;
            }
            _ => fp += 1,
        }
        curve.push((tp as f32 / total as f32, tp as f32 / (tp + fp) as f32));
    }
    // Area under the precision envelope (precision made monotone from the right).
    let mut ap = 0.0;
    let mut prev_recall = 0.0;
    for k in 0..curve.len() {
        let p = curve[k..].iter().map(|c| c.1).fold(0.0f32, f32::max);
        ap += (curve[k].0 - prev_recall) * p;
        prev_recall = curve[k].0;
    }
    Some(ap)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(label: &str, score: f32, bbox: [f32; 4]) -> Detection {
        Detection {
            label: label.into(),
            score,
            bbox,
        }
    }

    #[test]
    fn candidates_are_the_segments_boxes_without_the_frame_with_their_mean_heat() {
        use image::Rgb;
        // Two hard-edged rectangles on white, 64×64.
        let img = RgbImage::from_fn(64, 64, |x, y| {
            if (8..24).contains(&x) && (10..30).contains(&y) {
                Rgb([200, 30, 30])
            } else if (40..60).contains(&x) && (36..52).contains(&y) {
                Rgb([30, 30, 200])
            } else {
                Rgb([255, 255, 255])
            }
        });
        // One label whose 8×8 map is 1 in the top half and 0 below.
        let map = Heatmap {
            label: "a".into(),
            grid: 8,
            values: (0..64).map(|i| if i < 32 { 1.0 } else { 0.0 }).collect(),
        };
        let opts = DetectOptions {
            grid: 8,
            ..DetectOptions::default()
        };
        let got = segment_candidates(&img, &[map], &opts);
        // The red one: rows 10..30, all in the map's top half (rows 0..32) → 1.
        // The blue one: rows 36..52, all in the bottom half → 0.
        for (rect, heat) in [
            ([8.0, 10.0, 24.0, 30.0], 1.0),
            ([40.0, 36.0, 60.0, 52.0], 0.0),
        ] {
            assert!(
                got.iter().any(|c| c.bbox == rect && c.support == [heat]),
                "{rect:?} {:?}",
                got.iter().map(|c| c.bbox).collect::<Vec<_>>()
            );
        }
        // Nothing else but the blur band just around each edge; never the white frame.
        for c in &got {
            let near = |r: [f32; 4]| c.bbox.iter().zip(r).all(|(a, b)| (a - b).abs() <= 2.0);
            assert!(
                near([8.0, 10.0, 24.0, 30.0]) || near([40.0, 36.0, 60.0, 52.0]),
                "{:?}",
                c.bbox
            );
        }
    }

    #[test]
    fn a_large_image_is_segmented_reduced_and_its_boxes_come_back_in_its_pixels() {
        use image::Rgb;
        // 1600×1200 (segmented at 512×384): a red rectangle at [200, 250, 600, 750).
        let img = RgbImage::from_fn(1600, 1200, |x, y| {
            if (200..600).contains(&x) && (250..750).contains(&y) {
                Rgb([200, 30, 30])
            } else {
                Rgb([255, 255, 255])
            }
        });
        let map = Heatmap {
            label: "a".into(),
            grid: 8,
            values: vec![1.0; 64],
        };
        let opts = DetectOptions {
            grid: 8,
            ..DetectOptions::default()
        };
        let got = segment_candidates(&img, &[map], &opts);
        let want = [200.0, 250.0, 600.0, 750.0];
        assert!(
            got.iter()
                .any(|c| c.bbox.iter().zip(want).all(|(a, b)| (a - b).abs() <= 4.0)),
            "{:?}",
            got.iter().map(|c| c.bbox).collect::<Vec<_>>()
        );
        assert!(got
            .iter()
            .all(|c| c.bbox[2] <= 1600.0 && c.bbox[3] <= 1200.0));
    }

    #[test]
    fn iou_of_known_boxes() {
        assert_eq!(iou([0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0]), 1.0 / 7.0);
        assert_eq!(iou([0.0, 0.0, 1.0, 1.0], [2.0, 2.0, 3.0, 3.0]), 0.0);
        assert_eq!(iou([0.0, 0.0, 4.0, 4.0], [0.0, 0.0, 4.0, 4.0]), 1.0);
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes_per_label() {
        let kept = nms(
            vec![
                det("a", 0.5, [0.0, 0.0, 10.0, 10.0]),
                det("a", 0.9, [1.0, 1.0, 11.0, 11.0]),
                det("b", 0.4, [1.0, 1.0, 11.0, 11.0]),
                det("a", 0.3, [20.0, 20.0, 30.0, 30.0]),
            ],
            0.5,
        );
        let got: Vec<(&str, f32)> = kept.iter().map(|d| (d.label.as_str(), d.score)).collect();
        assert_eq!(got, vec![("a", 0.9), ("b", 0.4), ("a", 0.3)]);
    }

    #[test]
    fn average_precision_of_a_hand_worked_ranking() {
        let gt = |b| GroundTruth {
            label: "a".into(),
            bbox: b,
        };
        let b1 = [0.0, 0.0, 10.0, 10.0];
        let b2 = [20.0, 20.0, 30.0, 30.0];
        // Ranked: hit (P=1, R=.5), miss (P=.5), hit (P=2/3, R=1) → 0.5·1 + 0.5·2/3.
        let images = vec![
            (
                vec![det("a", 0.9, b1), det("a", 0.8, [50.0, 50.0, 60.0, 60.0])],
                vec![gt(b1)],
            ),
            (vec![det("a", 0.7, b2), det("b", 0.99, b2)], vec![gt(b2)]),
        ];
        let ap = average_precision(&images, |l| l == "a", 0.5).unwrap();
        assert!((ap - (0.5 + 0.5 * 2.0 / 3.0)).abs() < 1e-6, "{ap}");
        assert_eq!(average_precision(&images, |l| l == "c", 0.5), None);
        // A duplicate of an already-matched box is a false positive.
        let dup = vec![(vec![det("a", 0.9, b1), det("a", 0.8, b1)], vec![gt(b1)])];
        assert_eq!(average_precision(&dup, |l| l == "a", 0.5), Some(1.0));
        // Pooled over labels, the "b" detection on b2 is a false positive ranked first (no "b"
        // ground truth): precisions at the two hits are 1/2 and 2/4, so AP = 0.5·0.5 + 0.5·0.5.
        let pooled = average_precision(&images, |_| true, 0.5).unwrap();
        assert!((pooled - 0.5).abs() < 1e-6, "{pooled}");
    }
}
