//! Live preview of a CLIP-guided generation: renders the current image, the
//! cutouts CLIP sees, a status line and a similarity plot with wgpu, headless or in a window.
//!
//! The preview never blocks the optimiser: frames go in through a bounded
//! channel the optimiser only `try_send`s to, controls come back through a channel it polls.
//! See [`Layout`] for where each part is drawn.

mod font;
mod layout;
mod live;
mod render;
#[cfg(feature = "window")]
mod window;

pub use font::draw_text;
pub use image::{RgbImage, RgbaImage};
pub use layout::{Layout, Rect, MIN_SIDE, MIN_THUMB, PAD};
#[cfg(feature = "window")]
pub use live::LivePreview;
pub use live::{frame_of, write_preview_png, PreviewPng, PREVIEW_PNG_SIZE};
pub use render::{palette, Renderer};
#[cfg(feature = "window")]
pub use window::{spawn_preview, PreviewWindow};

/// How the main image and thumbnails are resampled to their on-screen size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Filter {
    /// Each output pixel takes the nearest source pixel: shows the real pixels.
    Nearest,
    /// Bilinear interpolation between source pixels.
    #[default]
    Linear,
}

/// Everything one preview frame shows.
#[derive(Clone, Debug)]
pub struct PreviewFrame {
    /// The current generated image.
    pub image: RgbImage,
    /// Crops of the image as CLIP sees them this step (may be empty).
    pub cutouts: Vec<RgbImage>,
    /// Optimisation step shown in the status line.
    pub step: usize,
    /// Current image–text similarity shown in the status line.
    pub similarity: f32,
    /// Similarity per step so far; plotted, autoscaled to its finite range.
    pub history: Vec<f32>,
    /// Resampling for the image and thumbnails.
    pub filter: Filter,
}

impl PreviewFrame {
    /// A frame with no cutouts or history, at step 0.
    pub fn new(image: RgbImage) -> Self {
        PreviewFrame {
            image,
            cutouts: Vec::new(),
            step: 0,
            similarity: 0.0,
            history: Vec::new(),
            filter: Filter::default(),
        }
    }

    /// The status line drawn in the text bar.
    pub fn status_line(&self) -> String {
        format!("step {}  sim {:.3}", self.step, self.similarity)
    }
}

/// What the user asked for in the preview window; the optimiser polls these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Space: pause or resume optimisation.
    TogglePause,
    /// S: save the current frame (the optimiser owns the image, so it saves).
    SaveFrame,
    /// Esc: stop the run.
    Stop,
}

/// Why the preview could not start or render.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error(
        "no GPU or software graphics adapter found ({0}); install Vulkan drivers, \
         e.g. `apt-get install mesa-vulkan-drivers` for the lavapipe CPU renderer"
    )]
    NoAdapter(String),
    #[error("could not open a graphics device on adapter {adapter}: {reason}")]
    Device { adapter: String, reason: String },
    #[error("preview size {width}x{height} is unsupported: each side must be between {min} and {max} pixels")]
    InvalidSize {
        width: u32,
        height: u32,
        min: u32,
        max: u32,
    },
    #[error("{what} is {width}x{height}: sides must be between 1 and {max} pixels")]
    InvalidImage {
        what: String,
        width: u32,
        height: u32,
        max: u32,
    },
    #[error("GPU error while rendering the preview: {0}")]
    Gpu(String),
    #[error(
        "cannot open a preview window: {0}; a display is needed (is DISPLAY set?), \
         the run itself can go on without the preview"
    )]
    NoDisplay(String),
    #[error("preview window failed: {0}")]
    Window(String),
}
