//! One whole run as a library call: [`generate`] runs the starts and the steps of a
//! [`GenerateConfig`] and tells [`Observer`]s about it; [`RunOutputs`] is the observer that
//! writes what a run leaves behind (the PNG with its stored run, frames, GIF, JSON log).

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clipguide_clip::Clip;
use image::RgbImage;

use crate::config::GenerateConfig;
use crate::error::{GuideError, Result};
use crate::generator::{Generator, PromptSimilarity, StepReport};
use crate::png_meta::{save_png_with_text, write_atomic, PARAMS_KEY};
use crate::stored::StoredRun;

/// Something that follows a run: progress, outputs, a live preview. Every method may stop the
/// run (`Break`) or fail it; the image as it is then is still the run's result.
pub trait Observer {
    /// After step `report.step` of start `start` (only when the run has several starts).
    fn start_step(&mut self, _start: usize, _report: &StepReport) -> Result<ControlFlow<()>> {
        Ok(ControlFlow::Continue(()))
    }
    /// When the run's main phase begins (after the starts), before its first step.
    fn begin(&mut self, _g: &Generator) -> Result<()> {
        Ok(())
    }
    /// After each step of the main phase.
    fn step(&mut self, _g: &Generator, _report: &StepReport) -> Result<ControlFlow<()>> {
        Ok(ControlFlow::Continue(()))
    }
    /// Time the run spent waiting on this observer (a paused preview): not optimisation time.
    fn paused(&self) -> Duration {
        Duration::ZERO
    }
    /// After the run ended, with its settled image.
    fn end(&mut self, _g: &Generator, _summary: &RunSummary) -> Result<()> {
        Ok(())
    }
}

/// How a run went.
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// The run as it was made: the config with `schedule.steps` set to the steps done, so it
    /// re-makes exactly this image (every schedule is a function of the step index).
    pub config: GenerateConfig,
    /// Steps the result has (the winning start's included).
    pub steps_done: usize,
    /// Steps computed: every start's plus the main phase's.
    pub steps_taken: usize,
    /// Stopped before the configured steps (Ctrl-C, an observer).
    pub stopped_early: bool,
    /// Optimisation time, pauses excluded.
    pub seconds: f64,
    /// The whole final image's similarity to every target.
    pub final_similarity: Vec<PromptSimilarity>,
    /// The main phase's step reports.
    pub reports: Vec<StepReport>,
}

/// Whether the run goes on after the observers' answers: any `Break`, any error (kept in
/// `failure` for the caller) or `stop` ends it.
fn go_on(
    answers: impl Iterator<Item = Result<ControlFlow<()>>>,
    stop: &AtomicBool,
    failure: &mut Option<GuideError>,
) -> ControlFlow<()> {
    let mut flow = ControlFlow::Continue(());
    for answer in answers {
        match answer {
            Ok(ControlFlow::Continue(())) => {}
            Ok(ControlFlow::Break(())) => flow = ControlFlow::Break(()),
            Err(e) => {
                failure.get_or_insert(e);
                flow = ControlFlow::Break(());
            }
        }
    }
    if stop.load(Ordering::SeqCst) {
        flow = ControlFlow::Break(());
    }
    flow
}

/// Runs `config` with `clip`: the starts (if several), then the steps, telling `observers`
/// about each; `stop` (Ctrl-C) ends the run early with the image as it is. An observer's
/// error during the run stops it and is returned, nothing written; at the end, observers are
/// told in order, so put the one that writes the result first.
pub fn generate(
    clip: &Clip,
    config: &GenerateConfig,
    observers: &mut [&mut dyn Observer],
    stop: &AtomicBool,
) -> Result<RunSummary> {
    let started = Instant::now();
    let mut failure: Option<GuideError> = None;
    let mut start_phase_steps = 0usize;
    let mut gen = if config.selection.starts > 1 {
        Generator::new_best_start(clip, config.clone(), |start, report| {
            start_phase_steps += 1;
            let answers = observers.iter_mut().map(|o| o.start_step(start, report));
            go_on(answers, stop, &mut failure)
        })?
    } else {
        Generator::new(clip, config.clone())?
    };
    if let Some(e) = failure.take() {
        return Err(e);
    }
    for o in observers.iter_mut() {
        o.begin(&gen)?;
    }
    let outcome = gen.run(|g, report| {
        let answers = observers.iter_mut().map(|o| o.step(g, report));
        go_on(answers, stop, &mut failure)
    })?;
    let paused: Duration = observers.iter().map(|o| o.paused()).sum();
    let seconds = started.elapsed().saturating_sub(paused).as_secs_f64();
    if let Some(e) = failure {
        return Err(e);
    }
    let steps_done = gen.steps_done();
    let mut stored = config.clone();
    stored.schedule.steps = steps_done;
    let summary = RunSummary {
        config: stored,
        steps_done,
        steps_taken: start_phase_steps + outcome.reports.len(),
        stopped_early: outcome.stopped_early,
        seconds,
        final_similarity: gen.image_similarity()?,
        reports: outcome.reports,
    };
    for o in observers.iter_mut() {
        o.end(&gen, &summary)?;
    }
    Ok(summary)
}

/// GIF frames to aim for when no frame spacing is given.
pub const GIF_FRAMES: usize = 60;

/// What a run writes besides its progress: the image (a PNG that stores the run), and
/// optionally frames, an animated GIF and a JSON log. Each file is written whole or not at
/// all (temporary file and rename).
#[derive(Clone, Debug)]
pub struct RunOutputs {
    /// The result PNG; the run is stored in it ([`StoredRun`]).
    pub image: PathBuf,
    /// Write a frame every `every` steps into `dir` (`frame_00010.png`, ...).
    pub frames: Option<(PathBuf, usize)>,
    /// Write the progression as an animated GIF here.
    pub gif: Option<PathBuf>,
    /// Write the config, timing and every step's report here as JSON.
    pub log: Option<PathBuf>,
    gif_every: usize,
    gif_frames: Vec<RgbImage>,
}

impl RunOutputs {
    /// Outputs of a run of `steps` steps; the GIF takes a frame every `frames.1` steps, or
    /// [`GIF_FRAMES`] over the run. Creates the frames folder.
    pub fn new(
        image: PathBuf,
        frames: Option<(PathBuf, usize)>,
        gif: Option<PathBuf>,
        log: Option<PathBuf>,
        steps: usize,
    ) -> Result<Self> {
        if let Some((dir, every)) = &frames {
            if *every == 0 {
                return Err(GuideError::invalid(
                    "frame spacing",
                    "0: give the number of steps between frames, at least 1",
                ));
            }
            std::fs::create_dir_all(dir).map_err(|source| GuideError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let gif_every = frames.as_ref().map_or((steps / GIF_FRAMES).max(1), |f| f.1);
        Ok(Self {
            image,
            frames,
            gif,
            log,
            gif_every,
            gif_frames: Vec::new(),
        })
    }

    /// The default frames folder for `image`: `STEM_frames` beside it.
    pub fn default_frames_dir(image: &Path) -> PathBuf {
        image.with_file_name(format!("{}_frames", stem(image)))
    }
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into())
}

impl Observer for RunOutputs {
    fn begin(&mut self, g: &Generator) -> Result<()> {
        if self.gif.is_some() {
            self.gif_frames.push(g.image()?);
        }
        Ok(())
    }

    fn step(&mut self, g: &Generator, report: &StepReport) -> Result<ControlFlow<()>> {
        let done = report.step + 1;
        if let Some((dir, every)) = &self.frames {
            if done.is_multiple_of(*every) {
                let path = dir.join(format!("frame_{done:05}.png"));
                g.image()?.save(&path).map_err(|e| GuideError::Image {
                    path: path.display().to_string(),
                    problem: format!("cannot be written: {e}"),
                })?;
            }
        }
        if self.gif.is_some() && done.is_multiple_of(self.gif_every) {
            self.gif_frames.push(g.image()?);
        }
        Ok(ControlFlow::Continue(()))
    }

    fn end(&mut self, g: &Generator, summary: &RunSummary) -> Result<()> {
        let image = g.image()?;
        let text = StoredRun::json(&summary.config)?;
        save_png_with_text(&self.image, &image, PARAMS_KEY, &text)?;
        if let Some(gif) = &self.gif {
            if !summary.steps_done.is_multiple_of(self.gif_every) {
                self.gif_frames.push(image);
            }
            write_gif(gif, &self.gif_frames)?;
        }
        if let Some(log) = &self.log {
            let v = serde_json::json!({
                "config": summary.config,
                "stopped_early": summary.stopped_early,
                "seconds": summary.seconds,
                "final_image_similarity": summary.final_similarity,
                "steps": summary.reports,
            });
            let text = serde_json::to_string_pretty(&v)
                .map_err(|e| GuideError::invalid("log", e.to_string()))?;
            write_atomic(log, text.as_bytes())?;
        }
        Ok(())
    }
}

/// Writes `OUTPUT-stepN.png` beside `output`: the image as it is at step `done`, storing the
/// run that re-makes it (a run is a function of the step index). Returns its path.
pub fn save_step_png(g: &Generator, done: usize, output: &Path) -> Result<PathBuf> {
    let path = output.with_file_name(format!("{}-step{done}.png", stem(output)));
    let mut cfg = g.config().clone();
    cfg.schedule.steps = done;
    save_png_with_text(&path, &g.image()?, PARAMS_KEY, &StoredRun::json(&cfg)?)?;
    Ok(path)
}

fn write_gif(path: &Path, frames: &[RgbImage]) -> Result<()> {
    use image::codecs::gif::{GifEncoder, Repeat};
    let gif_err = |e: image::ImageError| GuideError::Image {
        path: path.display().to_string(),
        problem: format!("cannot be encoded: {e}"),
    };
    let mut bytes = Vec::new();
    {
        let mut enc = GifEncoder::new_with_speed(&mut bytes, 10);
        enc.set_repeat(Repeat::Infinite).map_err(gif_err)?;
        for f in frames {
            let rgba = image::DynamicImage::ImageRgb8(f.clone()).to_rgba8();
            let delay = image::Delay::from_numer_denom_ms(80, 1);
            enc.encode_frame(image::Frame::from_parts(rgba, 0, 0, delay))
                .map_err(gif_err)?;
        }
    }
    write_atomic(path, &bytes)
}
