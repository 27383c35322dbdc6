//! Class-agnostic region proposals for detection: the graph-based segmentation of
//! Felzenszwalb and Huttenlocher (IJCV 2004), the first stage of selective search.
//!
//! CLIP says *what* is in a crop but, at a patch grid of 8×8 or 7×7, only roughly *where*: its
//! dense maps find an object, their cells are too coarse to draw a box that overlaps it by half.
//! Segments follow the image's own edges, so their bounding boxes are tight; the dense maps
//! and the full model then decide which segments are which label (`detect`).

use image::RgbImage;

/// One segment: its bounding box `[x0, y0, x1, y1)` in pixels and its pixel count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub bbox: [u32; 4],
    pub area: u32,
}

/// A partition of an image's pixels into connected segments.
#[derive(Debug, Clone)]
pub struct Segmentation {
    pub width: u32,
    pub height: u32,
    /// The segment of each pixel, row-major, indexing `regions`.
    pub segment_of: Vec<u32>,
    pub regions: Vec<Region>,
}

/// Segments `image` (smoothed by a Gaussian of `sigma` pixels first; 0 = not smoothed).
/// `k` sets the scale: larger values prefer larger segments (the paper's 300 is a good start
/// for 0–255 colours); segments smaller than `min_size` pixels are merged into a neighbour.
pub fn segment(image: &RgbImage, sigma: f32, k: f32, min_size: u32) -> Segmentation {
    let (w, h) = image.dimensions();
    let (wu, hu) = (w as usize, h as usize);
    let px = smooth(image, sigma);
    let dist = |a: usize, b: usize| -> f32 {
        let d: f32 = (0..3)
            .map(|c| (px[a * 3 + c] - px[b * 3 + c]).powi(2))
            .sum();
        d.sqrt()
    };
    // 8-connected grid graph: right, down, down-right, down-left.
    let mut edges: Vec<(f32, u32, u32)> = Vec::with_capacity(wu * hu * 4);
    for y in 0..hu {
        for x in 0..wu {
            let i = y * wu + x;
            let mut add = |j: usize| edges.push((dist(i, j), i as u32, j as u32));
            if x + 1 < wu {
                add(i + 1);
            }
            if y + 1 < hu {
                add(i + wu);
                if x + 1 < wu {
                    add(i + wu + 1);
                }
                if x > 0 {
                    add(i + wu - 1);
                }
            }
        }
    }
    // Stable order: ties broken by the pixel indices, so the result never depends on the sort.
    edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut sets = DisjointSets::new(wu * hu);
    // The largest edge inside each component's minimum spanning tree, plus k/|C|.
    let mut threshold = vec![k; wu * hu];
    for &(wgt, a, b) in &edges {
        let (ra, rb) = (sets.find(a as usize), sets.find(b as usize));
        if ra != rb && wgt <= threshold[ra] && wgt <= threshold[rb] {
            let r = sets.union(ra, rb);
            threshold[r] = wgt + k / sets.size[r] as f32;
        }
    }
    for &(_, a, b) in &edges {
        let (ra, rb) = (sets.find(a as usize), sets.find(b as usize));
        if ra != rb && (sets.size[ra] < min_size || sets.size[rb] < min_size) {
            sets.union(ra, rb);
        }
    }
    let mut id_of_root = vec![u32::MAX; wu * hu];
    let mut regions: Vec<Region> = Vec::new();
    let mut segment_of = vec![0u32; wu * hu];
    for (i, seg) in segment_of.iter_mut().enumerate() {
        let root = sets.find(i);
        if id_of_root[root] == u32::MAX {
            id_of_root[root] = regions.len() as u32;
            regions.push(Region {
                bbox: [u32::MAX, u32::MAX, 0, 0],
                area: 0,
            });
        }
        let id = id_of_root[root];
        *seg = id;
        let (x, y) = ((i % wu) as u32, (i / wu) as u32);
        let r = &mut regions[id as usize];
        r.bbox = [
            r.bbox[0].min(x),
            r.bbox[1].min(y),
            r.bbox[2].max(x + 1),
            r.bbox[3].max(y + 1),
        ];
        r.area += 1;
    }
    Segmentation {
        width: w,
        height: h,
        segment_of,
        regions,
    }
}

/// The image as interleaved f32 RGB, blurred by a separable Gaussian (edges clamped).
fn smooth(image: &RgbImage, sigma: f32) -> Vec<f32> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let src: Vec<f32> = image.as_raw().iter().map(|&v| v as f32).collect();
    if sigma <= 0.0 {
        return src;
    }
    let radius = (sigma * 4.0).ceil() as isize;
    let mut kernel: Vec<f32> = (-radius..=radius)
        .map(|d| (-((d * d) as f32) / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f32 = kernel.iter().sum();
    kernel.iter_mut().for_each(|v| *v /= total);
    let pass = |src: &[f32], horizontal: bool| -> Vec<f32> {
        let mut out = vec![0f32; src.len()];
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    let mut acc = 0.0;
                    for (t, kv) in kernel.iter().enumerate() {
                        let d = t as isize - radius;
                        let (sx, sy) = if horizontal {
                            ((x as isize + d).clamp(0, w as isize - 1) as usize, y)
                        } else {
                            (x, (y as isize + d).clamp(0, h as isize - 1) as usize)
                        };
                        acc += kv * src[(sy * w + sx) * 3 + c];
                    }
                    out[(y * w + x) * 3 + c] = acc;
                }
            }
        }
        out
    };
    pass(&pass(&src, true), false)
}

struct DisjointSets {
    parent: Vec<usize>,
    size: Vec<u32>,
}

impl DisjointSets {
    fn new(n: usize) -> Self {
        Self {
            parent: (0..n).collect(),
            size: vec![1; n],
        }
    }

    fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    /// Joins two roots; returns the new root (the larger set's, the lower index on a tie).
    fn union(&mut self, a: usize, b: usize) -> usize {
        let (big, small) = if (self.size[a], b) > (self.size[b], a) {
            (a, b)
        } else {
            (b, a)
        };
        self.parent[small] = big;
        self.size[big] += self.size[small];
        big
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    fn canvas() -> RgbImage {
        // A red 10×6 rectangle at (4, 5) and a blue disc of radius 5 at (22, 20) on white.
        RgbImage::from_fn(32, 32, |x, y| {
            let (fx, fy) = (x as f32 + 0.5 - 22.0, y as f32 + 0.5 - 20.0);
            if (4..14).contains(&x) && (5..11).contains(&y) {
                Rgb([220, 20, 20])
            } else if fx * fx + fy * fy <= 25.0 {
                Rgb([20, 20, 220])
            } else {
                Rgb([255, 255, 255])
            }
        })
    }

    #[test]
    fn hard_edged_shapes_are_their_own_segments_with_exact_boxes() {
        let seg = segment(&canvas(), 0.0, 300.0, 4);
        let mut boxes: Vec<[u32; 4]> = seg.regions.iter().map(|r| r.bbox).collect();
        boxes.sort();
        assert_eq!(
            boxes,
            vec![[0, 0, 32, 32], [4, 5, 14, 11], [17, 15, 27, 25]]
        );
        let rect = seg
            .regions
            .iter()
            .find(|r| r.bbox == [4, 5, 14, 11])
            .unwrap();
        assert_eq!(rect.area, 60);
        assert_eq!(seg.segment_of[5 * 32 + 4], seg.segment_of[10 * 32 + 13]);
        assert_ne!(seg.segment_of[0], seg.segment_of[5 * 32 + 4]);
    }

    #[test]
    fn smoothing_keeps_the_boxes_of_high_contrast_shapes_within_a_pixel() {
        let seg = segment(&canvas(), 0.5, 300.0, 20);
        let boxes: Vec<[u32; 4]> = seg.regions.iter().map(|r| r.bbox).collect();
        for want in [[4u32, 5, 14, 11], [17, 15, 27, 25]] {
            assert!(
                boxes
                    .iter()
                    .any(|b| b.iter().zip(want).all(|(g, w)| g.abs_diff(w) <= 1)),
                "{want:?} in {boxes:?}"
            );
        }
    }

    #[test]
    fn a_larger_scale_merges_low_contrast_neighbours() {
        // Two greys 10 apart: separate at a small k, one segment at a large one.
        let img = RgbImage::from_fn(16, 16, |x, _| {
            if x < 8 {
                Rgb([100, 100, 100])
            } else {
                Rgb([110, 110, 110])
            }
        });
        assert_eq!(segment(&img, 0.0, 1.0, 1).regions.len(), 2);
        assert_eq!(segment(&img, 0.0, 5000.0, 1).regions.len(), 1);
    }
}
