//! Where each part of the preview goes in a `width × height` target; pure
//! integer arithmetic so tests and the window agree with the renderer to the pixel.

/// A pixel rectangle in the target, origin top-left, y down; covers
/// columns `x..x + w` and rows `y..y + h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl Rect {
    /// The largest rectangle with `content`'s aspect ratio that fits in
    /// `self`, centred (at least 1×1).
    pub fn fit(&self, content_w: u32, content_h: u32) -> Rect {
        let scale = f64::min(
            f64::from(self.w) / f64::from(content_w.max(1)),
            f64::from(self.h) / f64::from(content_h.max(1)),
        );
        let w = ((f64::from(content_w) * scale).round() as u32).clamp(1, self.w.max(1));
        let h = ((f64::from(content_h) * scale).round() as u32).clamp(1, self.h.max(1));
        Rect {
            x: self.x + (self.w.saturating_sub(w)) / 2,
            y: self.y + (self.h.saturating_sub(h)) / 2,
            w,
            h,
        }
    }
}

/// Gap in pixels between panels and around the edges.
pub const PAD: u32 = 4;
/// Smallest target side the layout supports.
pub const MIN_SIDE: u32 = 64;
/// Smallest cutout thumbnail side; cutouts that would not fit at this size are left out.
pub const MIN_THUMB: u32 = 8;

/// The preview's layout (`W × H` target, `P` = [`PAD`]):
///
/// ```text
/// +--------------------------------+----------+
/// |                                |  plot    |  top area: H - text_h - strip_h rows
/// |   main image, aspect kept,     |  (W/4    |  main box: x P..(W - W/4 - P), y P..(top - P)
/// |   centred in the main box      |  wide)   |  plot: x (W - W/4)..(W - P), y from P,
/// |                                |          |        h = min(top - 2P, (W/4 - P) * 3/4)
/// +--------------------------------+----------+
/// | [c0] [c1] [c2] ...  cutout thumbnails     |  strip_h = max(H/6, 8) rows, only with cutouts;
/// +-------------------------------------------+  square cells of side min(strip_h - P, (W - P)/n - P)
/// | step N  sim 0.123                         |  text bar: text_h = 7*s + 2P rows, s = max(1, H/200);
/// +-------------------------------------------+  glyphs start at (P, bar top + P), 6*s px apart
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Where the main image is drawn (already fitted to its aspect ratio).
    pub image: Rect,
    /// The similarity plot panel, border included.
    pub plot: Rect,
    /// The status text bar across the bottom.
    pub text_bar: Rect,
    /// Pixels per font dot in the text bar.
    pub text_scale: u32,
    /// One fitted rectangle per cutout shown, left to right.
    pub thumbnails: Vec<Rect>,
}

impl Layout {
    /// Layout for a `width × height` target showing an `image_w × image_h`
    /// image and the given cutout sizes. The caller checks `width, height >= MIN_SIDE`.
    pub fn new(width: u32, height: u32, image_size: (u32, u32), cutouts: &[(u32, u32)]) -> Layout {
        let text_scale = (height / 200).max(1);
        let text_h = 7 * text_scale + 2 * PAD;
        let text_bar = Rect {
            x: 0,
            y: height - text_h,
            w: width,
            h: text_h,
        };

        let strip_h = if cutouts.is_empty() {
            0
        } else {
            (height / 6).max(MIN_THUMB)
        };
        let strip_y = text_bar.y.saturating_sub(strip_h);
        let max_shown = ((width - PAD) / (MIN_THUMB + PAD)) as usize;
        let shown = cutouts.len().min(max_shown);
        let thumbnails = if shown == 0 {
            Vec::new()
        } else {
            let side = (strip_h - PAD).min((width - PAD) / shown as u32 - PAD);
            cutouts[..shown]
                .iter()
                .enumerate()
                .map(|(i, &(w, h))| {
                    Rect {
                        x: PAD + i as u32 * (side + PAD),
                        y: strip_y + (strip_h - side) / 2,
                        w: side,
                        h: side,
                    }
                    .fit(w, h)
                })
                .collect()
        };

        let top_h = strip_y;
        let side_w = width / 4;
        let main_box = Rect {
            x: PAD,
            y: PAD,
            w: width.saturating_sub(side_w + 2 * PAD).max(1),
            h: top_h.saturating_sub(2 * PAD).max(1),
        };
        let plot = Rect {
            x: width - side_w,
            y: PAD,
            w: side_w.saturating_sub(PAD).max(1),
            h: (top_h.saturating_sub(2 * PAD))
                .min(side_w.saturating_sub(PAD) * 3 / 4)
                .max(1),
        };
        Layout {
            image: main_box.fit(image_size.0, image_size.1),
            plot,
            text_bar,
            text_scale,
            thumbnails,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlaps(a: &Rect, b: &Rect) -> bool {
        a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h
    }

    fn inside(r: &Rect, w: u32, h: u32) -> bool {
        r.w > 0 && r.h > 0 && r.x + r.w <= w && r.y + r.h <= h
    }

    #[test]
    fn fit_keeps_aspect_and_centres() {
        let bx = Rect {
            x: 10,
            y: 20,
            w: 200,
            h: 100,
        };
        // 4:1 content is width-limited: 200×50, centred vertically.
        assert_eq!(
            bx.fit(40, 10),
            Rect {
                x: 10,
                y: 45,
                w: 200,
                h: 50
            }
        );
        // 1:1 content is height-limited: 100×100, centred horizontally.
        assert_eq!(
            bx.fit(7, 7),
            Rect {
                x: 60,
                y: 20,
                w: 100,
                h: 100
            }
        );
    }

    #[test]
    fn panels_stay_inside_and_apart_for_many_sizes() {
        for &(w, h) in &[(64, 64), (512, 384), (1920, 1080), (100, 900), (900, 100)] {
            for n in [0usize, 1, 8, 500] {
                let cutouts = vec![(224, 224); n];
                let l = Layout::new(w, h, (300, 200), &cutouts);
                let mut rects = vec![l.image, l.plot, l.text_bar];
                rects.extend(l.thumbnails.iter().copied());
                for (i, a) in rects.iter().enumerate() {
                    assert!(inside(a, w, h), "{w}x{h} n={n}: {a:?} outside");
                    for b in &rects[i + 1..] {
                        assert!(!overlaps(a, b), "{w}x{h} n={n}: {a:?} overlaps {b:?}");
                    }
                }
                assert!(l.thumbnails.len() <= n);
                if n > 0 && w >= 512 {
                    assert!(!l.thumbnails.is_empty());
                }
            }
        }
    }
}
