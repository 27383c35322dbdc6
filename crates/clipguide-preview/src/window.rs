//! The live preview window: a winit event loop on its own thread that shows the
//! newest frame received and turns key presses into [`Control`]s for the optimiser.

use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;

use crate::{Control, PreviewError, PreviewFrame};

/// Handle to a running preview window. Dropping it closes the window.
pub struct PreviewWindow {
    closer: Option<Box<dyn FnOnce() + Send>>,
    thread: Option<JoinHandle<()>>,
}

impl PreviewWindow {
    /// False once the user closed the window (or it failed).
    pub fn is_open(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Blocks until the user closes the window, e.g. to keep showing the final frame.
    pub fn wait(mut self) {
        if let Some(thread) = self.thread.take() {
            // A panic on the window thread already ended the preview; nothing to add.
            let _ = thread.join();
        }
    }

    /// Closes the window and waits for its thread to finish.
    pub fn close(self) {
        drop(self);
    }
}

impl Drop for PreviewWindow {
    fn drop(&mut self) {
        if let Some(close) = self.closer.take() {
            close();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Opens the preview window on its own thread and returns once it shows, or
/// with an error (no display, no adapter) the caller can report and run on without preview.
///
/// The optimiser never waits on the window: give it a bounded channel and
/// `try_send`, dropping frames the window has not caught up with:
///
/// ```no_run
/// use std::sync::mpsc::{channel, sync_channel};
/// use clipguide_preview::{spawn_preview, Control, PreviewFrame, RgbImage};
///
/// let (frame_tx, frame_rx) = sync_channel::<PreviewFrame>(1);
/// let (control_tx, control_rx) = channel::<Control>();
/// let preview = spawn_preview(frame_rx, control_tx)
///     .map_err(|e| eprintln!("running without preview: {e}"))
///     .ok();
/// for step in 0..100 {
///     // ... one optimisation step ...
///     let mut frame = PreviewFrame::new(RgbImage::new(64, 64));
///     frame.step = step;
///     let _ = frame_tx.try_send(frame); // Full or Disconnected: skip, never block
///     while let Ok(control) = control_rx.try_recv() {
///         if control == Control::Stop { break; }
///     }
/// }
/// drop(preview); // closes the window
/// ```
///
/// The window polls for frames every 30 ms and draws only the newest. Keys:
/// Space → [`Control::TogglePause`], S → [`Control::SaveFrame`], Esc → [`Control::Stop`].
/// Closing the window sends nothing: the run goes on, `try_send` then reports
/// `Disconnected`. Only one window per process (a winit limitation); X11 only
/// (Wayland desktops run it through XWayland).
pub fn spawn_preview(
    frames: Receiver<PreviewFrame>,
    controls: Sender<Control>,
) -> Result<PreviewWindow, PreviewError> {
    imp::spawn(frames, controls)
}

/// The window thread drains `frames` and keeps only the newest; a closed
/// channel just means the run finished and the last frame stays up.
fn drain_latest(frames: &Receiver<PreviewFrame>, latest: &mut Option<PreviewFrame>) -> Drained {
    let mut drained = Drained::default();
    loop {
        match frames.try_recv() {
            Ok(frame) => {
                *latest = Some(frame);
                drained.new_frame = true;
            }
            Err(TryRecvError::Empty) => return drained,
            Err(TryRecvError::Disconnected) => {
                drained.finished = true;
                return drained;
            }
        }
    }
}

#[derive(Default)]
struct Drained {
    new_frame: bool,
    finished: bool,
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "dragonfly",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd"
)))]
mod imp {
    use super::*;

    pub(super) fn spawn(
        _frames: Receiver<PreviewFrame>,
        _controls: Sender<Control>,
    ) -> Result<PreviewWindow, PreviewError> {
        Err(PreviewError::Window(
            "the preview window is only built for Linux and the BSDs (X11); \
             use Renderer::render_to_image for headless previews"
                .into(),
        ))
    }
}

// winit's X11 backend exists on these targets only.
#[cfg(any(
    target_os = "linux",
    target_os = "dragonfly",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd"
))]
mod imp {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use winit::application::ApplicationHandler;
    use winit::dpi::LogicalSize;
    use winit::event::{ElementState, KeyEvent, WindowEvent};
    use winit::event_loop::{ActiveEventLoop, ControlFlow, EventLoop};
    use winit::keyboard::{Key, NamedKey};
    use winit::platform::x11::EventLoopBuilderExtX11;
    use winit::window::{Window, WindowId};

    use super::*;
    use crate::layout::MIN_SIDE;
    use crate::Renderer;

    const POLL_INTERVAL: Duration = Duration::from_millis(30);
    const TITLE: &str = "clipguide preview";

    /// Wakes the event loop from the handle's thread.
    enum Wake {
        Close,
    }

    pub(super) fn spawn(
        frames: Receiver<PreviewFrame>,
        controls: Sender<Control>,
    ) -> Result<PreviewWindow, PreviewError> {
        let (started_tx, started_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("clipguide-preview".into())
            .spawn(move || {
                // The optimiser owns the main thread; X11 allows the loop elsewhere.
                let event_loop = match EventLoop::<Wake>::with_user_event()
                    .with_any_thread(true)
                    .build()
                {
                    Ok(event_loop) => event_loop,
                    Err(e) => {
                        let _ = started_tx.send(Err(PreviewError::NoDisplay(e.to_string())));
                        return;
                    }
                };
                let proxy = event_loop.create_proxy();
                let mut app = App {
                    frames,
                    controls,
                    started: Some((started_tx, proxy)),
                    gfx: None,
                    latest: None,
                };
                if let Err(e) = event_loop.run_app(&mut app) {
                    if let Some((started, _)) = app.started.take() {
                        let _ = started.send(Err(PreviewError::Window(e.to_string())));
                    }
                }
            })
            .map_err(|e| PreviewError::Window(format!("cannot start the window thread: {e}")))?;
        match started_rx.recv() {
            Ok(Ok(proxy)) => Ok(PreviewWindow {
                closer: Some(Box::new(move || {
                    // Fails only if the loop already ended, which is the goal.
                    let _ = proxy.send_event(Wake::Close);
                })),
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(PreviewError::Window(
                    "the window thread ended during start-up".into(),
                ))
            }
        }
    }

    type Started = (
        Sender<Result<winit::event_loop::EventLoopProxy<Wake>, PreviewError>>,
        winit::event_loop::EventLoopProxy<Wake>,
    );

    struct App {
        frames: Receiver<PreviewFrame>,
        controls: Sender<Control>,
        /// Present until the window is up (or failed); tells `spawn` the outcome.
        started: Option<Started>,
        gfx: Option<Gfx>,
        latest: Option<PreviewFrame>,
    }

    struct Gfx {
        window: Arc<Window>,
        surface: wgpu::Surface<'static>,
        config: wgpu::SurfaceConfiguration,
        renderer: Renderer,
    }

    impl Gfx {
        fn new(event_loop: &ActiveEventLoop) -> Result<Gfx, PreviewError> {
            let window = event_loop
                .create_window(
                    Window::default_attributes()
                        .with_title(TITLE)
                        .with_inner_size(LogicalSize::new(768.0, 576.0))
                        .with_min_inner_size(LogicalSize::new(
                            f64::from(MIN_SIDE),
                            f64::from(MIN_SIDE),
                        )),
                )
                .map_err(|e| PreviewError::NoDisplay(e.to_string()))?;
            let window = Arc::new(window);
            let instance = wgpu::Instance::new(
                wgpu::InstanceDescriptor::new_without_display_handle_from_env(),
            );
            let surface = instance
                .create_surface(window.clone())
                .map_err(|e| PreviewError::Window(format!("cannot draw into the window: {e}")))?;
            let adapter =
                pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
                    compatible_surface: Some(&surface),
                    ..Default::default()
                }))
                .map_err(|e| PreviewError::NoAdapter(e.to_string()))?;
            let size = window.inner_size();
            let mut config = surface
                .get_default_config(&adapter, size.width.max(1), size.height.max(1))
                .ok_or_else(|| {
                    PreviewError::Window("the adapter cannot present to this window".into())
                })?;
            let caps = surface.get_capabilities(&adapter);
            // Draw through a non-sRGB view so the generator's bytes reach the
            // screen unchanged, as in headless renders.
            let surface_format = [
                wgpu::TextureFormat::Bgra8Unorm,
                wgpu::TextureFormat::Rgba8Unorm,
                wgpu::TextureFormat::Bgra8UnormSrgb,
                wgpu::TextureFormat::Rgba8UnormSrgb,
            ]
            .into_iter()
            .find(|f| caps.formats.contains(f))
            .ok_or_else(|| {
                PreviewError::Window(format!(
                    "the window offers no 8-bit RGBA/BGRA format (has {:?})",
                    caps.formats
                ))
            })?;
            let draw_format = surface_format.remove_srgb_suffix();
            config.format = surface_format;
            config.view_formats = if draw_format == surface_format {
                Vec::new()
            } else {
                vec![draw_format]
            };
            config.present_mode = wgpu::PresentMode::AutoVsync;
            let renderer = Renderer::from_adapter(&adapter, draw_format)?;
            surface.configure(renderer.device(), &config);
            Ok(Gfx {
                window,
                surface,
                config,
                renderer,
            })
        }

        fn resize(&mut self, width: u32, height: u32) {
            if width > 0 && height > 0 {
                self.config.width = width;
                self.config.height = height;
                self.surface.configure(self.renderer.device(), &self.config);
            }
        }

        fn redraw(&mut self, frame: Option<&PreviewFrame>) {
            let (width, height) = (self.config.width, self.config.height);
            if width < MIN_SIDE || height < MIN_SIDE {
                return;
            }
            let texture = match self.surface.get_current_texture() {
                wgpu::CurrentSurfaceTexture::Success(t)
                | wgpu::CurrentSurfaceTexture::Suboptimal(t) => t,
                wgpu::CurrentSurfaceTexture::Outdated | wgpu::CurrentSurfaceTexture::Lost => {
                    self.surface.configure(self.renderer.device(), &self.config);
                    self.window.request_redraw();
                    return;
                }
                _ => return,
            };
            let view = texture.texture.create_view(&wgpu::TextureViewDescriptor {
                format: Some(self.renderer.format()),
                ..Default::default()
            });
            let device = self.renderer.device();
            let mut encoder =
                device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
            if let Err(e) = self
                .renderer
                .encode(&mut encoder, &view, width, height, frame)
            {
                // A frame we cannot draw (e.g. an oversized image): say so in the
                // title and show the background rather than stopping the preview.
                self.window.set_title(&format!("{TITLE}: {e}"));
                encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
                // Drawing nothing cannot fail.
                let _ = self
                    .renderer
                    .encode(&mut encoder, &view, width, height, None);
            }
            self.renderer.queue().submit([encoder.finish()]);
            self.window.pre_present_notify();
            self.renderer.queue().present(texture);
        }
    }

    fn control_for(key: &Key) -> Option<Control> {
        match key {
            Key::Named(NamedKey::Space) => Some(Control::TogglePause),
            Key::Named(NamedKey::Escape) => Some(Control::Stop),
            Key::Character(c) if c.eq_ignore_ascii_case("s") => Some(Control::SaveFrame),
            _ => None,
        }
    }

    impl ApplicationHandler<Wake> for App {
        fn resumed(&mut self, event_loop: &ActiveEventLoop) {
            if self.gfx.is_some() {
                return;
            }
            let result = Gfx::new(event_loop);
            let Some((started, proxy)) = self.started.take() else {
                return;
            };
            match result {
                Ok(gfx) => {
                    self.gfx = Some(gfx);
                    let _ = started.send(Ok(proxy));
                }
                Err(e) => {
                    let _ = started.send(Err(e));
                    event_loop.exit();
                }
            }
        }

        fn user_event(&mut self, event_loop: &ActiveEventLoop, event: Wake) {
            match event {
                Wake::Close => event_loop.exit(),
            }
        }

        fn window_event(&mut self, event_loop: &ActiveEventLoop, _: WindowId, event: WindowEvent) {
            let Some(gfx) = self.gfx.as_mut() else {
                return;
            };
            match event {
                WindowEvent::CloseRequested => event_loop.exit(),
                WindowEvent::Resized(size) => {
                    gfx.resize(size.width, size.height);
                    gfx.window.request_redraw();
                }
                WindowEvent::RedrawRequested => gfx.redraw(self.latest.as_ref()),
                WindowEvent::KeyboardInput {
                    event:
                        KeyEvent {
                            state: ElementState::Pressed,
                            repeat: false,
                            logical_key,
                            ..
                        },
                    ..
                } => {
                    if let Some(control) = control_for(&logical_key) {
                        // The optimiser may have finished; then nobody listens.
                        let _ = self.controls.send(control);
                    }
                }
                _ => {}
            }
        }

        fn about_to_wait(&mut self, event_loop: &ActiveEventLoop) {
            let drained = drain_latest(&self.frames, &mut self.latest);
            if let Some(gfx) = &self.gfx {
                if drained.new_frame {
                    gfx.window.request_redraw();
                }
                if drained.finished {
                    gfx.window.set_title(&format!("{TITLE} (finished)"));
                }
            }
            event_loop.set_control_flow(ControlFlow::WaitUntil(Instant::now() + POLL_INTERVAL));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::RgbImage;

    #[test]
    fn drain_keeps_only_the_newest_frame_and_notices_the_end() {
        let (tx, rx) = mpsc::sync_channel(4);
        let mut latest = None;
        assert!(!drain_latest(&rx, &mut latest).new_frame);
        for step in 1..=3 {
            let mut f = PreviewFrame::new(RgbImage::new(2, 2));
            f.step = step;
            tx.try_send(f).unwrap();
        }
        let d = drain_latest(&rx, &mut latest);
        assert!(d.new_frame && !d.finished);
        assert_eq!(latest.as_ref().map(|f| f.step), Some(3));
        drop(tx);
        let d = drain_latest(&rx, &mut latest);
        assert!(d.finished && !d.new_frame);
        assert_eq!(latest.map(|f| f.step), Some(3), "last frame stays up");
    }
}
