// Draws one texture into a pixel rectangle of the target: the main image and
// each cutout thumbnail. The sampler bound decides nearest vs linear scaling.

struct Quad {
    // x, y, width, height in target pixels (origin top-left, y down).
    rect: vec4<f32>,
    target_size: vec2<f32>,
    _pad: vec2<f32>,
};

@group(0) @binding(0) var<uniform> quad: Quad;
@group(0) @binding(1) var image: texture_2d<f32>;
@group(0) @binding(2) var image_sampler: sampler;

struct VertexOut {
    @builtin(position) position: vec4<f32>,
    @location(0) uv: vec2<f32>,
};

// Four vertices drawn as a triangle strip; the corner comes from the index so
// no vertex buffer is needed.
@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> VertexOut {
    let corner = vec2<f32>(f32(index & 1u), f32(index >> 1u));
    let pixel = quad.rect.xy + corner * quad.rect.zw;
    let ndc = pixel / quad.target_size * 2.0 - 1.0;
    var out: VertexOut;
    out.position = vec4<f32>(ndc.x, -ndc.y, 0.0, 1.0);
    out.uv = corner;
    return out;
}

@fragment
fn fs_main(in: VertexOut) -> @location(0) vec4<f32> {
    return vec4<f32>(textureSample(image, image_sampler, in.uv).rgb, 1.0);
}
