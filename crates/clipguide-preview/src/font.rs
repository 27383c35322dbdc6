//! The 5×7 bitmap font used for the preview's status line, kept as ASCII art
//! so it can be reviewed by eye, and packed into one `u32` per glyph row for the GPU.

/// Dots per glyph row.
const GLYPH_W: usize = 5;
/// Rows per glyph.
pub(crate) const GLYPH_H: usize = 7;

/// Every drawable character; `#` is a lit dot. Descenders (g p q y) stay
/// inside the 7 rows, on the baseline. Uppercase letters fall back to
/// lowercase, anything else to `?`.
const GLYPHS: &[(char, [&str; GLYPH_H])] = &[
    (
        ' ',
        [
            ".....", ".....", ".....", ".....", ".....", ".....", ".....",
        ],
    ),
    (
        '?',
        [
            ".###.", "#...#", "....#", "...#.", "..#..", ".....", "..#..",
        ],
    ),
    (
        '0',
        [
            ".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###.",
        ],
    ),
    (
        '1',
        [
            "..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###.",
        ],
    ),
    (
        '2',
        [
            ".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####",
        ],
    ),
    (
        '3',
        [
            "#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###.",
        ],
    ),
    (
        '4',
        [
            "...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#.",
        ],
    ),
    (
        '5',
        [
            "#####", "#....", "####.", "....#", "....#", "#...#", ".###.",
        ],
    ),
    (
        '6',
        [
            "..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###.",
        ],
    ),
    (
        '7',
        [
            "#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#...",
        ],
    ),
    (
        '8',
        [
            ".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###.",
        ],
    ),
    (
        '9',
        [
            ".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##..",
        ],
    ),
    (
        '.',
        [
            ".....", ".....", ".....", ".....", ".....", ".##..", ".##..",
        ],
    ),
    (
        ',',
        [
            ".....", ".....", ".....", ".....", ".##..", "..#..", ".#...",
        ],
    ),
    (
        '-',
        [
            ".....", ".....", ".....", "#####", ".....", ".....", ".....",
        ],
    ),
    (
        '+',
        [
            ".....", "..#..", "..#..", "#####", "..#..", "..#..", ".....",
        ],
    ),
    (
        ':',
        [
            ".....", ".##..", ".##..", ".....", ".##..", ".##..", ".....",
        ],
    ),
    (
        '/',
        [
            ".....", "....#", "...#.", "..#..", ".#...", "#....", ".....",
        ],
    ),
    (
        '(',
        [
            "...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#.",
        ],
    ),
    (
        ')',
        [
            ".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#...",
        ],
    ),
    (
        '%',
        [
            "##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##",
        ],
    ),
    (
        '=',
        [
            ".....", ".....", "#####", ".....", "#####", ".....", ".....",
        ],
    ),
    (
        '_',
        [
            ".....", ".....", ".....", ".....", ".....", ".....", "#####",
        ],
    ),
    (
        'a',
        [
            ".....", ".....", ".###.", "....#", ".####", "#...#", ".####",
        ],
    ),
    (
        'b',
        [
            "#....", "#....", "#.##.", "##..#", "#...#", "#...#", "####.",
        ],
    ),
    (
        'c',
        [
            ".....", ".....", ".###.", "#....", "#....", "#...#", ".###.",
        ],
    ),
    (
        'd',
        [
            "....#", "....#", ".##.#", "#..##", "#...#", "#...#", ".####",
        ],
    ),
    (
        'e',
        [
            ".....", ".....", ".###.", "#...#", "#####", "#....", ".###.",
        ],
    ),
    (
        'f',
        [
            "..##.", ".#..#", ".#...", "###..", ".#...", ".#...", ".#...",
        ],
    ),
    (
        'g',
        [
            ".....", ".....", ".####", "#...#", ".####", "....#", ".###.",
        ],
    ),
    (
        'h',
        [
            "#....", "#....", "#.##.", "##..#", "#...#", "#...#", "#...#",
        ],
    ),
    (
        'i',
        [
            "..#..", ".....", ".##..", "..#..", "..#..", "..#..", ".###.",
        ],
    ),
    (
        'j',
        [
            "...#.", ".....", "..##.", "...#.", "...#.", "#..#.", ".##..",
        ],
    ),
    (
        'k',
        [
            "#....", "#....", "#..#.", "#.#..", "##...", "#.#..", "#..#.",
        ],
    ),
    (
        'l',
        [
            ".##..", "..#..", "..#..", "..#..", "..#..", "..#..", ".###.",
        ],
    ),
    (
        'm',
        [
            ".....", ".....", "##.#.", "#.#.#", "#.#.#", "#...#", "#...#",
        ],
    ),
    (
        'n',
        [
            ".....", ".....", "#.##.", "##..#", "#...#", "#...#", "#...#",
        ],
    ),
    (
        'o',
        [
            ".....", ".....", ".###.", "#...#", "#...#", "#...#", ".###.",
        ],
    ),
    (
        'p',
        [
            ".....", ".....", "####.", "#...#", "####.", "#....", "#....",
        ],
    ),
    (
        'q',
        [
            ".....", ".....", ".####", "#...#", ".####", "....#", "....#",
        ],
    ),
    (
        'r',
        [
            ".....", ".....", "#.##.", "##..#", "#....", "#....", "#....",
        ],
    ),
    (
        's',
        [
            ".....", ".....", ".###.", "#....", ".###.", "....#", "####.",
        ],
    ),
    (
        't',
        [
            ".#...", ".#...", "###..", ".#...", ".#...", ".#..#", "..##.",
        ],
    ),
    (
        'u',
        [
            ".....", ".....", "#...#", "#...#", "#...#", "#..##", ".##.#",
        ],
    ),
    (
        'v',
        [
            ".....", ".....", "#...#", "#...#", "#...#", ".#.#.", "..#..",
        ],
    ),
    (
        'w',
        [
            ".....", ".....", "#...#", "#...#", "#.#.#", "#.#.#", ".#.#.",
        ],
    ),
    (
        'x',
        [
            ".....", ".....", "#...#", ".#.#.", "..#..", ".#.#.", "#...#",
        ],
    ),
    (
        'y',
        [
            ".....", ".....", "#...#", "#...#", ".####", "....#", ".###.",
        ],
    ),
    (
        'z',
        [
            ".....", ".....", "#####", "...#.", "..#..", ".#...", "#####",
        ],
    ),
];

/// Index of the `?` glyph, drawn for characters the font lacks.
const FALLBACK: u32 = 1;

/// Glyph index for `c` in [`glyph_rows`].
pub(crate) fn glyph_index(c: char) -> u32 {
    let c = c.to_ascii_lowercase();
    GLYPHS
        .iter()
        .position(|(g, _)| *g == c)
        .map_or(FALLBACK, |i| i as u32)
}

/// All glyphs packed as `GLYPH_H` rows each; bit `GLYPH_W - 1` is the leftmost dot.
pub(crate) fn glyph_rows() -> Vec<u32> {
    GLYPHS
        .iter()
        .flat_map(|(_, rows)| rows.iter().map(|row| pack_row(row)))
        .collect()
}

/// Draws `text` on the CPU with its top-left corner at `(x, y)`, `scale` pixels per dot and one
/// dot between glyphs, clipped to the image (labels on images the CLI writes, e.g. detect's
/// boxes). Returns the drawn width in pixels.
pub fn draw_text(
    img: &mut image::RgbImage,
    x: u32,
    y: u32,
    text: &str,
    scale: u32,
    colour: [u8; 3],
) -> u32 {
    let rows = glyph_rows();
    let scale = scale.max(1);
    let advance = (GLYPH_W as u32 + 1) * scale;
    for (i, c) in text.chars().enumerate() {
        let g = glyph_index(c) as usize;
        let x0 = x + i as u32 * advance;
        for (r, bits) in rows[g * GLYPH_H..(g + 1) * GLYPH_H].iter().enumerate() {
            for col in 0..GLYPH_W {
                if bits >> (GLYPH_W - 1 - col) & 1 == 0 {
                    continue;
                }
                for dy in 0..scale {
                    for dx in 0..scale {
                        let (px, py) = (x0 + col as u32 * scale + dx, y + r as u32 * scale + dy);
                        if px < img.width() && py < img.height() {
                            img.put_pixel(px, py, image::Rgb(colour));
                        }
                    }
                }
            }
        }
    }
    advance * text.chars().count() as u32
}

fn pack_row(row: &str) -> u32 {
    debug_assert_eq!(row.len(), GLYPH_W);
    row.bytes()
        .fold(0, |bits, b| (bits << 1) | u32::from(b == b'#'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawn_text_lights_the_glyphs_dots() {
        let mut img = image::RgbImage::new(20, 10);
        let w = draw_text(&mut img, 1, 1, "1?", 1, [255, 0, 0]);
        assert_eq!(w, 12);
        // '?' is ".###." on its first row: dots 1..4 of the second glyph (x = 7 + 1..4).
        let lit: Vec<u32> = (0..20).filter(|&x| img.get_pixel(x, 1)[0] == 255).collect();
        let q: Vec<u32> = lit.into_iter().filter(|&x| x >= 7).collect();
        assert_eq!(q, vec![8, 9, 10]);
        // Clipped, not a panic, at the edge.
        draw_text(&mut img, 18, 8, "88", 2, [0, 255, 0]);
    }

    #[test]
    fn every_glyph_is_five_by_seven_of_dots_and_hashes() {
        for (c, rows) in GLYPHS {
            for row in rows {
                assert_eq!(row.len(), GLYPH_W, "glyph {c:?} row {row:?}");
                assert!(row.bytes().all(|b| b == b'#' || b == b'.'), "{c:?}");
            }
        }
    }

    #[test]
    fn glyphs_are_unique_and_distinct() {
        let packed = glyph_rows();
        let per_glyph: Vec<&[u32]> = packed.chunks(GLYPH_H).collect();
        for i in 0..per_glyph.len() {
            for j in i + 1..per_glyph.len() {
                assert_ne!(GLYPHS[i].0, GLYPHS[j].0, "character listed twice");
                assert_ne!(
                    per_glyph[i], per_glyph[j],
                    "{:?} vs {:?}",
                    GLYPHS[i].0, GLYPHS[j].0
                );
            }
        }
    }

    #[test]
    fn lookup_and_packing() {
        assert_eq!(glyph_index('?'), FALLBACK);
        assert_eq!(glyph_index('~'), FALLBACK);
        assert_eq!(glyph_index('S'), glyph_index('s'));
        assert_ne!(glyph_index('s'), FALLBACK);
        // '-' is a full middle row: all five bits set, other rows empty.
        let rows = glyph_rows();
        let minus = glyph_index('-') as usize * GLYPH_H;
        assert_eq!(&rows[minus..minus + GLYPH_H], &[0, 0, 0, 0b11111, 0, 0, 0]);
        assert_eq!(pack_row("#...."), 0b10000);
    }
}
