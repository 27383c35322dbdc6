// Similarity-over-time panel: background, border and a polyline through the
// values in a storage buffer, evaluated per pixel as distance to segments.

struct Plot {
    // x, y, width, height in target pixels (origin top-left, y down).
    rect: vec4<f32>,
    target_size: vec2<f32>,
    count: u32,
    _pad0: u32,
    // Value mapped to the bottom (x) and top (y) of the plot area.
    range: vec2<f32>,
    _pad1: vec2<f32>,
    line_color: vec4<f32>,
    background: vec4<f32>,
    border: vec4<f32>,
};

@group(0) @binding(0) var<uniform> plot: Plot;
@group(0) @binding(1) var<storage, read> values: array<f32>;

// Distance in pixels between the plot-area edge and the curve's extremes.
const INSET: f32 = 4.0;
// Half the drawn line's thickness in pixels.
const HALF_WIDTH: f32 = 1.0;

@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> @builtin(position) vec4<f32> {
    let corner = vec2<f32>(f32(index & 1u), f32(index >> 1u));
    let pixel = plot.rect.xy + corner * plot.rect.zw;
    let ndc = pixel / plot.target_size * 2.0 - 1.0;
    return vec4<f32>(ndc.x, -ndc.y, 0.0, 1.0);
}

// Position of sample i inside the panel, in panel-local pixels.
fn point(i: u32) -> vec2<f32> {
    let inner = plot.rect.zw - 2.0 * INSET;
    var t = 0.5;
    if plot.count > 1u {
        t = f32(i) / f32(plot.count - 1u);
    }
    let span = max(plot.range.y - plot.range.x, 1e-12);
    let v = clamp((values[i] - plot.range.x) / span, 0.0, 1.0);
    return vec2<f32>(INSET + t * inner.x, INSET + (1.0 - v) * inner.y);
}

fn segment_distance(p: vec2<f32>, a: vec2<f32>, b: vec2<f32>) -> f32 {
    let ab = b - a;
    let len2 = dot(ab, ab);
    var t = 0.0;
    if len2 > 0.0 {
        t = clamp(dot(p - a, ab) / len2, 0.0, 1.0);
    }
    return length(p - (a + t * ab));
}

@fragment
fn fs_main(@builtin(position) position: vec4<f32>) -> @location(0) vec4<f32> {
    let local = position.xy - plot.rect.xy;
    let size = plot.rect.zw;
    if local.x < 1.0 || local.y < 1.0 || local.x > size.x - 1.0 || local.y > size.y - 1.0 {
        return plot.border;
    }
    if plot.count == 0u {
        return plot.background;
    }
    var best = 1e9;
    if plot.count == 1u {
        best = length(local - point(0u));
    } else {
        // The CPU side keeps samples at least a pixel apart, so only the
        // segments starting within two samples of this column can be near it.
        let inner_w = max(size.x - 2.0 * INSET, 1.0);
        let t = (local.x - INSET) / inner_w * f32(plot.count - 1u);
        let base = i32(floor(t));
        for (var k = -2; k <= 2; k++) {
            let j = base + k;
            if j >= 0 && j < i32(plot.count) - 1 {
                best = min(best, segment_distance(local, point(u32(j)), point(u32(j) + 1u)));
            }
        }
    }
    if best <= HALF_WIDTH {
        return plot.line_color;
    }
    return plot.background;
}
