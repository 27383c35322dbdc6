//! The wgpu device, the three pipelines (image, plot, text) and the draw calls
//! that turn a [`PreviewFrame`] into pixels, offscreen (read back) or on a window surface.

use std::borrow::Cow;
use std::sync::mpsc;

use bytemuck::{Pod, Zeroable};
use image::{RgbImage, RgbaImage};
use wgpu::util::DeviceExt;

use crate::font;
use crate::layout::{Layout, Rect, MIN_SIDE, PAD};
use crate::{Filter, PreviewError, PreviewFrame};

const IMAGE_WGSL: &str = include_str!("../../../shaders/image.wgsl");
const PLOT_WGSL: &str = include_str!("../../../shaders/plot.wgsl");
const TEXT_WGSL: &str = include_str!("../../../shaders/text.wgsl");

/// Must match `INSET` in `plot.wgsl`: the curve keeps this far from the panel edge.
const PLOT_INSET: u32 = 4;

/// Colours the renderer draws with (sRGB bytes, written unchanged to the target).
pub mod palette {
    /// Behind the main image and thumbnails.
    pub const BACKGROUND: [u8; 3] = [20, 20, 24];
    /// Inside the plot panel.
    pub const PLOT_BACKGROUND: [u8; 3] = [36, 36, 44];
    /// The plot panel's one-pixel frame.
    pub const PLOT_BORDER: [u8; 3] = [90, 90, 100];
    /// The similarity curve.
    pub const PLOT_LINE: [u8; 3] = [255, 170, 30];
    /// Behind the status line.
    pub const TEXT_BACKGROUND: [u8; 3] = [8, 8, 10];
    /// The status line's glyphs.
    pub const TEXT: [u8; 3] = [235, 235, 235];
}

fn rgba(c: [u8; 3]) -> [f32; 4] {
    [
        f32::from(c[0]) / 255.0,
        f32::from(c[1]) / 255.0,
        f32::from(c[2]) / 255.0,
        1.0,
    ]
}

fn rect_f32(r: Rect) -> [f32; 4] {
    [r.x as f32, r.y as f32, r.w as f32, r.h as f32]
}

// The uniform structs mirror the WGSL ones field for field (std140-style
// offsets: vec4s on 16 bytes, explicit padding where WGSL would insert it).

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct QuadUniform {
    rect: [f32; 4],
    target_size: [f32; 2],
    _pad: [f32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct PlotUniform {
    rect: [f32; 4],
    target_size: [f32; 2],
    count: u32,
    _pad0: u32,
    range: [f32; 2],
    _pad1: [f32; 2],
    line_color: [f32; 4],
    background: [f32; 4],
    border: [f32; 4],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct TextUniform {
    rect: [f32; 4],
    target_size: [f32; 2],
    scale: f32,
    len: u32,
    origin: [f32; 2],
    _pad: [f32; 2],
    color: [f32; 4],
    background: [f32; 4],
}

/// Renders [`PreviewFrame`]s with wgpu. Holds the device, queue and pipelines;
/// cheap to call repeatedly, textures are uploaded per frame.
pub struct Renderer {
    device: wgpu::Device,
    queue: wgpu::Queue,
    adapter: wgpu::AdapterInfo,
    format: wgpu::TextureFormat,
    image: Pipeline,
    plot: Pipeline,
    text: Pipeline,
    nearest: wgpu::Sampler,
    linear: wgpu::Sampler,
    glyph_rows: wgpu::Buffer,
}

struct Pipeline {
    pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
}

impl Renderer {
    /// Opens the best available adapter (GPU first, then software ones such as
    /// lavapipe) without any window. `WGPU_BACKEND` and friends are honoured.
    pub fn new_headless() -> Result<Self, PreviewError> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
        let adapter = adapters
            .into_iter()
            .min_by_key(|a| device_type_rank(a.get_info().device_type))
            .ok_or_else(|| {
                PreviewError::NoAdapter(format!(
                    "wgpu backends compiled in: {:?}",
                    wgpu::Instance::enabled_backend_features()
                ))
            })?;
        Self::from_adapter(&adapter, wgpu::TextureFormat::Rgba8Unorm)
    }

    /// Opens a device on `adapter` and builds pipelines that render to `format`
    /// (`Rgba8Unorm` or `Bgra8Unorm`; the window passes its surface's).
    pub(crate) fn from_adapter(
        adapter: &wgpu::Adapter,
        format: wgpu::TextureFormat,
    ) -> Result<Self, PreviewError> {
        let info = adapter.get_info();
        let device_error = |reason: String| PreviewError::Device {
            adapter: format!("{} ({:?})", info.name, info.backend),
            reason,
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("clipguide-preview"),
            // The adapter's own limits, so large previews and images are allowed
            // wherever the hardware (or lavapipe) allows them.
            required_limits: adapter.limits(),
            ..Default::default()
        }))
        .map_err(|e| device_error(e.to_string()))?;

        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let image = build_pipeline(
            &device,
            "image",
            IMAGE_WGSL,
            &[
                uniform_entry(0),
                wgpu::BindGroupLayoutEntry {
                    binding: 1,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Texture {
                        sample_type: wgpu::TextureSampleType::Float { filterable: true },
                        view_dimension: wgpu::TextureViewDimension::D2,
                        multisampled: false,
                    },
                    count: None,
                },
                wgpu::BindGroupLayoutEntry {
                    binding: 2,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
                    count: None,
                },
            ],
            format,
        );
        let plot = build_pipeline(
            &device,
            "plot",
            PLOT_WGSL,
            &[uniform_entry(0), storage_entry(1)],
            format,
        );
        let text = build_pipeline(
            &device,
            "text",
            TEXT_WGSL,
            &[uniform_entry(0), storage_entry(1), storage_entry(2)],
            format,
        );
        let sampler = |filter: wgpu::FilterMode| {
            device.create_sampler(&wgpu::SamplerDescriptor {
                label: Some("preview sampler"),
                address_mode_u: wgpu::AddressMode::ClampToEdge,
                address_mode_v: wgpu::AddressMode::ClampToEdge,
                mag_filter: filter,
                min_filter: filter,
                ..Default::default()
            })
        };
        let nearest = sampler(wgpu::FilterMode::Nearest);
        let linear = sampler(wgpu::FilterMode::Linear);
        let glyph_rows = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("font glyph rows"),
            contents: bytemuck::cast_slice(&font::glyph_rows()),
            usage: wgpu::BufferUsages::STORAGE,
        });
        if let Some(err) = pollster::block_on(scope.pop()) {
            return Err(device_error(format!(
                "building the preview pipelines: {err}"
            )));
        }
        Ok(Renderer {
            device,
            queue,
            adapter: info,
            format,
            image,
            plot,
            text,
            nearest,
            linear,
            glyph_rows,
        })
    }

    /// Name and backend of the adapter in use, e.g. `llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan)`.
    pub fn adapter_name(&self) -> String {
        format!("{} ({:?})", self.adapter.name, self.adapter.backend)
    }

    /// True when rendering runs on the CPU (lavapipe/llvmpipe or similar).
    pub fn is_software(&self) -> bool {
        self.adapter.device_type == wgpu::DeviceType::Cpu
    }

    // Used by the window to present on its surface.
    #[cfg_attr(not(feature = "window"), allow(dead_code))]
    pub(crate) fn device(&self) -> &wgpu::Device {
        &self.device
    }

    // Used by the window to present on its surface.
    #[cfg_attr(not(feature = "window"), allow(dead_code))]
    pub(crate) fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// Largest supported target or image side on this device.
    pub fn max_side(&self) -> u32 {
        self.device.limits().max_texture_dimension_2d
    }

    /// Renders `frame` into a new `width × height` image laid out as [`Layout`] describes.
    pub fn render_to_image(
        &self,
        frame: &PreviewFrame,
        width: u32,
        height: u32,
    ) -> Result<RgbaImage, PreviewError> {
        self.check_target_size(width, height)?;
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let target = self.device.create_texture(&wgpu::TextureDescriptor {
            label: Some("preview target"),
            size: extent(width, height),
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: self.format,
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
            view_formats: &[],
        });
        let view = target.create_view(&wgpu::TextureViewDescriptor::default());
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        self.encode(&mut encoder, &view, width, height, Some(frame))?;

        // Buffer rows must be 256-byte aligned for texture copies.
        let row_bytes = 4 * width;
        let padded_row = row_bytes.div_ceil(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT)
            * wgpu::COPY_BYTES_PER_ROW_ALIGNMENT;
        let readback = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("preview readback"),
            size: u64::from(padded_row) * u64::from(height),
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
            mapped_at_creation: false,
        });
        encoder.copy_texture_to_buffer(
            wgpu::TexelCopyTextureInfo {
                texture: &target,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            wgpu::TexelCopyBufferInfo {
                buffer: &readback,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(padded_row),
                    rows_per_image: Some(height),
                },
            },
            extent(width, height),
        );
        self.queue.submit([encoder.finish()]);
        if let Some(err) = pollster::block_on(scope.pop()) {
            return Err(PreviewError::Gpu(err.to_string()));
        }

        let slice = readback.slice(..);
        let (tx, rx) = mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |result| {
            // The receiver only disappears if this function already returned.
            let _ = tx.send(result);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| PreviewError::Gpu(format!("waiting for the GPU: {e}")))?;
        rx.recv()
            .map_err(|_| PreviewError::Gpu("readback callback never ran".into()))?
            .map_err(|e| PreviewError::Gpu(format!("mapping the readback buffer: {e}")))?;
        let mapped = slice
            .get_mapped_range()
            .map_err(|e| PreviewError::Gpu(format!("reading the readback buffer: {e}")))?;
        let mut pixels = Vec::with_capacity((row_bytes * height) as usize);
        for row in mapped.chunks_exact(padded_row as usize) {
            pixels.extend_from_slice(&row[..row_bytes as usize]);
        }
        drop(mapped);
        readback.unmap();
        if self.format == wgpu::TextureFormat::Bgra8Unorm {
            pixels.chunks_exact_mut(4).for_each(|px| px.swap(0, 2));
        }
        RgbaImage::from_raw(width, height, pixels)
            .ok_or_else(|| PreviewError::Gpu("readback size mismatch".into()))
    }

    fn check_target_size(&self, width: u32, height: u32) -> Result<(), PreviewError> {
        let max = self.max_side();
        if width < MIN_SIDE || height < MIN_SIDE || width > max || height > max {
            return Err(PreviewError::InvalidSize {
                width,
                height,
                min: MIN_SIDE,
                max,
            });
        }
        Ok(())
    }

    /// Records the whole preview into `view` (a `width × height` target of this
    /// renderer's format). With no frame only the background is drawn.
    pub(crate) fn encode(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        view: &wgpu::TextureView,
        width: u32,
        height: u32,
        frame: Option<&PreviewFrame>,
    ) -> Result<(), PreviewError> {
        let draws = match frame {
            Some(frame) => self.prepare(frame, width, height)?,
            None => Vec::new(),
        };
        let bg = rgba(palette::BACKGROUND);
        let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("preview"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view,
                depth_slice: None,
                resolve_target: None,
                ops: wgpu::Operations {
                    load: wgpu::LoadOp::Clear(wgpu::Color {
                        r: f64::from(bg[0]),
                        g: f64::from(bg[1]),
                        b: f64::from(bg[2]),
                        a: 1.0,
                    }),
                    store: wgpu::StoreOp::Store,
                },
            })],
            ..Default::default()
        });
        for (pipeline, bind_group) in &draws {
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, bind_group, &[]);
            pass.draw(0..4, 0..1);
        }
        Ok(())
    }

    /// Uploads the frame's images and parameters; one (pipeline, bind group) per quad.
    fn prepare(
        &self,
        frame: &PreviewFrame,
        width: u32,
        height: u32,
    ) -> Result<Vec<(&wgpu::RenderPipeline, wgpu::BindGroup)>, PreviewError> {
        let max = self.max_side();
        check_image("the preview image", &frame.image, max)?;
        for (i, cutout) in frame.cutouts.iter().enumerate() {
            check_image(&format!("cutout {i}"), cutout, max)?;
        }
        let cutout_sizes: Vec<(u32, u32)> = frame.cutouts.iter().map(|c| c.dimensions()).collect();
        let layout = Layout::new(width, height, frame.image.dimensions(), &cutout_sizes);
        let target_size = [width as f32, height as f32];
        let sampler = match frame.filter {
            Filter::Nearest => &self.nearest,
            Filter::Linear => &self.linear,
        };

        let mut draws = Vec::new();
        let images = std::iter::once((&frame.image, layout.image))
            .chain(frame.cutouts.iter().zip(layout.thumbnails.iter().copied()));
        for (img, rect) in images {
            let texture = self.upload(img);
            let quad = QuadUniform {
                rect: rect_f32(rect),
                target_size,
                _pad: [0.0; 2],
            };
            let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("image quad"),
                layout: &self.image.layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: self.uniform(&quad).as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: wgpu::BindingResource::TextureView(
                            &texture.create_view(&wgpu::TextureViewDescriptor::default()),
                        ),
                    },
                    wgpu::BindGroupEntry {
                        binding: 2,
                        resource: wgpu::BindingResource::Sampler(sampler),
                    },
                ],
            });
            draws.push((&self.image.pipeline, bind_group));
        }

        let max_points = layout.plot.w.saturating_sub(2 * PLOT_INSET).max(1) as usize;
        let (series, range) = plot_series(&frame.history, max_points);
        let plot = PlotUniform {
            rect: rect_f32(layout.plot),
            target_size,
            count: series.len() as u32,
            _pad0: 0,
            range,
            _pad1: [0.0; 2],
            line_color: rgba(palette::PLOT_LINE),
            background: rgba(palette::PLOT_BACKGROUND),
            border: rgba(palette::PLOT_BORDER),
        };
        let values = self.storage(&series);
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("plot"),
            layout: &self.plot.layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: self.uniform(&plot).as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: values.as_entire_binding(),
                },
            ],
        });
        draws.push((&self.plot.pipeline, bind_group));

        let glyphs: Vec<u32> = frame.status_line().chars().map(font::glyph_index).collect();
        let text = TextUniform {
            rect: rect_f32(layout.text_bar),
            target_size,
            scale: layout.text_scale as f32,
            len: glyphs.len() as u32,
            origin: [PAD as f32, PAD as f32],
            _pad: [0.0; 2],
            color: rgba(palette::TEXT),
            background: rgba(palette::TEXT_BACKGROUND),
        };
        let glyph_buffer = self.storage(&glyphs);
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("text"),
            layout: &self.text.layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: self.uniform(&text).as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: self.glyph_rows.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: glyph_buffer.as_entire_binding(),
                },
            ],
        });
        draws.push((&self.text.pipeline, bind_group));
        Ok(draws)
    }

    fn upload(&self, img: &RgbImage) -> wgpu::Texture {
        let (w, h) = img.dimensions();
        let rgba: Vec<u8> = img.pixels().flat_map(|p| [p[0], p[1], p[2], 255]).collect();
        self.device.create_texture_with_data(
            &self.queue,
            &wgpu::TextureDescriptor {
                label: Some("preview image"),
                size: extent(w, h),
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                // Not sRGB: bytes are sampled and written back unchanged, so
                // the preview shows exactly the generator's pixel values.
                format: wgpu::TextureFormat::Rgba8Unorm,
                usage: wgpu::TextureUsages::TEXTURE_BINDING,
                view_formats: &[],
            },
            wgpu::util::TextureDataOrder::LayerMajor,
            &rgba,
        )
    }

    fn uniform<T: Pod>(&self, value: &T) -> wgpu::Buffer {
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("preview uniform"),
                contents: bytemuck::bytes_of(value),
                usage: wgpu::BufferUsages::UNIFORM,
            })
    }

    /// A read-only storage buffer; never empty, since zero-sized bindings are invalid.
    fn storage<T: Pod + Default>(&self, values: &[T]) -> wgpu::Buffer {
        let placeholder = [T::default()];
        let values = if values.is_empty() {
            &placeholder[..]
        } else {
            values
        };
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("preview storage"),
                contents: bytemuck::cast_slice(values),
                usage: wgpu::BufferUsages::STORAGE,
            })
    }

    // Used by the window to present on its surface.
    #[cfg_attr(not(feature = "window"), allow(dead_code))]
    pub(crate) fn format(&self) -> wgpu::TextureFormat {
        self.format
    }
}

/// Prefer real GPUs, then virtual ones, then CPU renderers such as lavapipe.
fn device_type_rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

fn check_image(what: &str, img: &RgbImage, max: u32) -> Result<(), PreviewError> {
    let (width, height) = img.dimensions();
    if width == 0 || height == 0 || width > max || height > max {
        return Err(PreviewError::InvalidImage {
            what: what.to_string(),
            width,
            height,
            max,
        });
    }
    Ok(())
}

fn extent(width: u32, height: u32) -> wgpu::Extent3d {
    wgpu::Extent3d {
        width,
        height,
        depth_or_array_layers: 1,
    }
}

fn uniform_entry(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::VERTEX | wgpu::ShaderStages::FRAGMENT,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

fn storage_entry(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::FRAGMENT,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only: true },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

/// A quad pipeline: `vs_main`/`fs_main` from `source`, four-vertex triangle strip, no vertex buffers.
fn build_pipeline(
    device: &wgpu::Device,
    label: &str,
    source: &str,
    entries: &[wgpu::BindGroupLayoutEntry],
    format: wgpu::TextureFormat,
) -> Pipeline {
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(Cow::Borrowed(source)),
    });
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(label),
        entries,
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(label),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some(label),
        layout: Some(&pipeline_layout),
        vertex: wgpu::VertexState {
            module: &module,
            entry_point: Some("vs_main"),
            compilation_options: Default::default(),
            buffers: &[],
        },
        primitive: wgpu::PrimitiveState {
            topology: wgpu::PrimitiveTopology::TriangleStrip,
            ..Default::default()
        },
        depth_stencil: None,
        multisample: wgpu::MultisampleState::default(),
        fragment: Some(wgpu::FragmentState {
            module: &module,
            entry_point: Some("fs_main"),
            compilation_options: Default::default(),
            targets: &[Some(wgpu::ColorTargetState {
                format,
                blend: None,
                write_mask: wgpu::ColorWrites::ALL,
            })],
        }),
        multiview_mask: None,
        cache: None,
    });
    Pipeline { pipeline, layout }
}

/// The history as drawn: non-finite values replaced by the previous finite one
/// (or the first, for a leading run), averaged into at most `max_points` buckets
/// so neighbouring samples are at least a pixel apart; plus the `[low, high]`
/// value range mapped to the panel's bottom and top. All non-finite: nothing to draw.
pub(crate) fn plot_series(history: &[f32], max_points: usize) -> (Vec<f32>, [f32; 2]) {
    let Some(first) = history.iter().copied().find(|v| v.is_finite()) else {
        return (Vec::new(), [0.0, 1.0]);
    };
    let mut last = first;
    let filled: Vec<f32> = history
        .iter()
        .map(|&v| {
            if v.is_finite() {
                last = v;
            }
            last
        })
        .collect();
    let n = filled.len();
    let m = n.min(max_points.max(1));
    let series: Vec<f32> = (0..m)
        .map(|i| {
            let bucket = &filled[i * n / m..(i + 1) * n / m];
            // Sum in f64: long histories of similar values lose precision in f32.
            (bucket.iter().map(|&v| f64::from(v)).sum::<f64>() / bucket.len() as f64) as f32
        })
        .collect();
    let low = series.iter().copied().fold(f32::INFINITY, f32::min);
    let high = series.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    // A flat history is drawn across the middle of the panel.
    let range = if high - low > 1e-6 {
        [low, high]
    } else {
        [low - 0.5, high + 0.5]
    };
    (series, range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plot_series_fills_gaps_and_downsamples() {
        let (s, r) = plot_series(&[f32::NAN, 1.0, f32::INFINITY, 3.0], 10);
        assert_eq!(s, vec![1.0, 1.0, 1.0, 3.0]);
        assert_eq!(r, [1.0, 3.0]);

        let history: Vec<f32> = (0..100).map(|i| i as f32).collect();
        let (s, r) = plot_series(&history, 10);
        assert_eq!(s.len(), 10);
        // Bucket 0 averages 0..=9, bucket 9 averages 90..=99.
        assert_eq!(s[0], 4.5);
        assert_eq!(s[9], 94.5);
        assert_eq!(r, [4.5, 94.5]);

        let (s, r) = plot_series(&[0.25; 5], 10);
        assert_eq!(s, vec![0.25; 5]);
        assert_eq!(r, [-0.25, 0.75]);

        assert!(plot_series(&[], 10).0.is_empty());
        assert!(plot_series(&[f32::NAN], 10).0.is_empty());
    }
}
