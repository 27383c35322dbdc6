// One line of text from a 5x7 bitmap font: the glyph rows and the string's
// glyph indices come in storage buffers, each dot drawn as a scale×scale block.

struct Text {
    // x, y, width, height in target pixels of the whole bar (origin top-left).
    rect: vec4<f32>,
    target_size: vec2<f32>,
    // Pixels per font dot.
    scale: f32,
    len: u32,
    // Offset of the first glyph's top-left corner inside the bar, in pixels.
    origin: vec2<f32>,
    _pad: vec2<f32>,
    color: vec4<f32>,
    background: vec4<f32>,
};

@group(0) @binding(0) var<uniform> text: Text;
// 7 rows per glyph; bit 4 of a row is the leftmost dot.
@group(0) @binding(1) var<storage, read> glyph_rows: array<u32>;
@group(0) @binding(2) var<storage, read> glyphs: array<u32>;

const GLYPH_W: u32 = 5u;
const GLYPH_H: u32 = 7u;
// A glyph plus one dot of spacing.
const ADVANCE: f32 = 6.0;

@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> @builtin(position) vec4<f32> {
    let corner = vec2<f32>(f32(index & 1u), f32(index >> 1u));
    let pixel = text.rect.xy + corner * text.rect.zw;
    let ndc = pixel / text.target_size * 2.0 - 1.0;
    return vec4<f32>(ndc.x, -ndc.y, 0.0, 1.0);
}

@fragment
fn fs_main(@builtin(position) position: vec4<f32>) -> @location(0) vec4<f32> {
    let local = position.xy - text.rect.xy - text.origin;
    if local.x < 0.0 || local.y < 0.0 {
        return text.background;
    }
    let cell_dot = vec2<u32>(floor(local / text.scale));
    let cell = cell_dot.x / u32(ADVANCE);
    let col = cell_dot.x % u32(ADVANCE);
    let row = cell_dot.y;
    if cell >= text.len || col >= GLYPH_W || row >= GLYPH_H {
        return text.background;
    }
    let bits = glyph_rows[glyphs[cell] * GLYPH_H + row];
    if ((bits >> (GLYPH_W - 1u - col)) & 1u) == 1u {
        return text.color;
    }
    return text.background;
}
