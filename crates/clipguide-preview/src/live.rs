//! The preview as observers of a generation run ([`clipguide_guide::Observer`]): the live window
//! ([`LivePreview`], with the `window` feature) and the headless layout PNG ([`PreviewPng`]).

use std::ops::ControlFlow;
use std::path::PathBuf;

use clipguide_guide::{Generator, GuideError, Observer, Result, RunSummary, StepReport};

use crate::{Filter, PreviewFrame, Renderer};

/// Size of the layout [`PreviewPng`] renders.
pub const PREVIEW_PNG_SIZE: (u32, u32) = (768, 576);

fn failed(problem: impl ToString) -> GuideError {
    GuideError::Observer {
        observer: "preview",
        problem: problem.to_string(),
    }
}

/// The frame the preview shows of `g` now, with the similarity `history` so far.
pub fn frame_of(g: &Generator, history: &[f32], filter: Filter) -> Result<PreviewFrame> {
    Ok(PreviewFrame {
        image: g.image()?,
        cutouts: g.cutout_images()?,
        step: g.steps_done(),
        similarity: history.last().copied().unwrap_or(0.0),
        history: history.to_vec(),
        filter,
    })
}

/// Renders `frame` in the preview layout headlessly (the window's shaders) at `size` and
/// writes it as a PNG atomically.
pub fn write_preview_png(
    frame: &PreviewFrame,
    size: (u32, u32),
    path: &std::path::Path,
) -> Result<()> {
    let renderer = Renderer::new_headless().map_err(failed)?;
    let rgba = renderer
        .render_to_image(frame, size.0, size.1)
        .map_err(|e| failed(format!("rendering at {}x{}: {e}", size.0, size.1)))?;
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgba8(rgba)
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(failed)?;
    clipguide_guide::png_meta::write_atomic(path, &bytes)
}

/// Writes the preview layout of the run's end (image, cutouts, status, similarity plot) to a
/// PNG, without a window: for servers.
pub struct PreviewPng {
    path: PathBuf,
    filter: Filter,
    history: Vec<f32>,
}

impl PreviewPng {
    /// Writes to `path` when the run ends.
    pub fn new(path: PathBuf, filter: Filter) -> Self {
        Self {
            path,
            filter,
            history: Vec::new(),
        }
    }
}

impl Observer for PreviewPng {
    fn step(&mut self, _g: &Generator, report: &StepReport) -> Result<ControlFlow<()>> {
        self.history.push(report.weighted_similarity());
        Ok(ControlFlow::Continue(()))
    }

    fn end(&mut self, g: &Generator, _summary: &RunSummary) -> Result<()> {
        let frame = frame_of(g, &self.history, self.filter)?;
        write_preview_png(&frame, PREVIEW_PNG_SIZE, &self.path)
    }
}

#[cfg(feature = "window")]
pub use window_observer::LivePreview;

#[cfg(feature = "window")]
mod window_observer {
    use std::ops::ControlFlow;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use clipguide_guide::{Generator, Observer, Result, RunSummary, StepReport};

    use super::frame_of;
    use crate::{spawn_preview, Control, Filter, PreviewFrame, PreviewWindow};

    /// How long a paused run sleeps between looks at the window's controls.
    const PAUSE_POLL: Duration = Duration::from_millis(50);

    /// What S (save the current image) does, given the generator and the step.
    pub type SaveFrame = Box<dyn FnMut(&Generator, usize) -> Result<()>>;

    /// The optimiser's side of the live window: frames out through a one-slot channel it only
    /// `try_send`s to (so it never waits on drawing), controls in through a channel it polls.
    /// Space pauses (time paused is not run time), S calls the save hook, Esc ends the run.
    pub struct LivePreview {
        window: PreviewWindow,
        frames: SyncSender<PreviewFrame>,
        controls: Receiver<Control>,
        every: usize,
        filter: Filter,
        stop: Arc<AtomicBool>,
        save: SaveFrame,
        paused: bool,
        paused_for: Duration,
        history: Vec<f32>,
        last: Option<PreviewFrame>,
    }

    impl LivePreview {
        /// Opens the window, sending a frame every `every` steps; `stop` (Ctrl-C) also ends a
        /// pause. The error says why there is no window (no display, no adapter).
        pub fn open(
            every: usize,
            filter: Filter,
            stop: Arc<AtomicBool>,
            save: SaveFrame,
        ) -> std::result::Result<Self, crate::PreviewError> {
            let (frames, frames_rx) = sync_channel::<PreviewFrame>(1);
            let (controls_tx, controls) = channel::<Control>();
            let window = spawn_preview(frames_rx, controls_tx)?;
            Ok(Self {
                window,
                frames,
                controls,
                every: every.max(1),
                filter,
                stop,
                save,
                paused: false,
                paused_for: Duration::ZERO,
                history: Vec::new(),
                last: None,
            })
        }

        fn end_pause(&mut self, started: Option<Instant>) {
            if let Some(t) = started {
                self.paused_for += t.elapsed();
            }
        }

        /// Sends the run's final frame and, when someone is at the terminal, keeps the window
        /// up until they close it; scripts and pipes return at once. Returns whether it waited.
        pub fn finish(self) -> bool {
            use std::io::IsTerminal;
            // The slot may still hold an older frame; give the window a moment to take it.
            let deadline = Instant::now() + Duration::from_millis(500);
            let mut frame = self.last;
            while let Some(f) = frame.take() {
                match self.frames.try_send(f) {
                    Err(std::sync::mpsc::TrySendError::Full(f)) if Instant::now() < deadline => {
                        frame = Some(f);
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    _ => {}
                }
            }
            drop(self.frames);
            let wait = self.window.is_open() && std::io::stdin().is_terminal();
            if wait {
                self.window.wait();
            }
            wait
        }

        /// Whether the window is still up (the user has not closed it).
        pub fn is_open(&self) -> bool {
            self.window.is_open()
        }

        /// The frame the window shows of `g` now.
        pub fn frame(&self, g: &Generator) -> Result<PreviewFrame> {
            frame_of(g, &self.history, self.filter)
        }
    }

    impl Observer for LivePreview {
        /// Sends a frame when one is due, acts on the window's keys and, while paused, waits
        /// here (still honouring Esc and Ctrl-C).
        fn step(&mut self, g: &Generator, report: &StepReport) -> Result<ControlFlow<()>> {
            self.history.push(report.weighted_similarity());
            let done = report.step + 1;
            if done.is_multiple_of(self.every) && self.window.is_open() {
                // Full: the window has not drawn the last frame yet, so this one is dropped
                // rather than waited for. Disconnected: the window was closed; the run goes on.
                let _ = self.frames.try_send(self.frame(g)?);
            }
            let mut pause_started: Option<Instant> = None;
            loop {
                while let Ok(control) = self.controls.try_recv() {
                    match control {
                        Control::TogglePause => self.paused = !self.paused,
                        Control::SaveFrame => (self.save)(g, done)?,
                        Control::Stop => {
                            self.end_pause(pause_started);
                            return Ok(ControlFlow::Break(()));
                        }
                    }
                }
                // A closed window can no longer unpause the run, so it resumes.
                if !self.paused || !self.window.is_open() || self.stop.load(Ordering::SeqCst) {
                    self.end_pause(pause_started);
                    return Ok(ControlFlow::Continue(()));
                }
                pause_started.get_or_insert_with(Instant::now);
                std::thread::sleep(PAUSE_POLL);
            }
        }

        fn paused(&self) -> Duration {
            self.paused_for
        }

        fn end(&mut self, g: &Generator, _summary: &RunSummary) -> Result<()> {
            self.last = Some(self.frame(g)?);
            Ok(())
        }
    }
}
