//! `clipguide render`: draws the live preview's layout (image, cutouts, status line, plot)
//! to a PNG without a window, through the same wgpu shaders, for CI, servers and docs.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clipguide_clip::load_image;
use clipguide_guide::parse_size;
use clipguide_preview::{Filter, PreviewFrame};

use clipguide_preview::write_preview_png;

/// Preview resampling, as spelled on the command line.
#[derive(Clone, Copy, Debug, Default, clap::ValueEnum)]
pub enum FilterArg {
    /// Nearest pixel: shows the real pixels.
    Nearest,
    /// Bilinear.
    #[default]
    Linear,
}

impl From<FilterArg> for Filter {
    fn from(f: FilterArg) -> Filter {
        match f {
            FilterArg::Nearest => Filter::Nearest,
            FilterArg::Linear => Filter::Linear,
        }
    }
}

/// Arguments of `clipguide render`.
#[derive(clap::Args, Debug)]
pub struct RenderArgs {
    /// The image shown in the main area.
    #[arg(long)]
    pub image: PathBuf,
    /// Images shown in the cutout strip, in order (repeatable, or several after one flag).
    #[arg(long = "cutouts-from", num_args = 1..)]
    pub cutouts_from: Vec<PathBuf>,
    /// Step number shown in the status line.
    #[arg(long, default_value_t = 0)]
    pub step: usize,
    /// Similarity shown in the status line.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub similarity: f32,
    /// Similarity history to plot, comma-separated (e.g. 0.1,0.15,0.2).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub history: Vec<f32>,
    /// Resampling of the image and cutouts.
    #[arg(long, value_enum, default_value_t = FilterArg::Linear)]
    pub filter: FilterArg,
    /// Size of the rendered layout, `WxH`.
    #[arg(long, default_value = "768x576")]
    pub size: String,
    /// Output PNG (written atomically).
    #[arg(short, long)]
    pub output: PathBuf,
}

/// Runs `clipguide render`.
pub fn run(args: RenderArgs) -> Result<()> {
    let (w, h) = parse_size(&args.size).context("--size")?;
    let image = load_image(&args.image)
        .with_context(|| format!("reading --image {}", args.image.display()))?;
    let cutouts = args
        .cutouts_from
        .iter()
        .map(|p| load_image(p).with_context(|| format!("reading --cutouts-from {}", p.display())))
        .collect::<Result<Vec<_>>>()?;
    let frame = PreviewFrame {
        image,
        cutouts,
        step: args.step,
        similarity: args.similarity,
        history: args.history,
        filter: args.filter.into(),
    };
    // parse_size caps sides at 8192, so they fit in u32.
    write_preview_png(&frame, (w as u32, h as u32), &args.output)?;
    eprintln!("{} ({w}x{h})", args.output.display());
    Ok(())
}
