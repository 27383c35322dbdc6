//! A generation run on the terminal: progress bars while it runs (an observer of the run) and
//! its outcome when it ends (stderr, or one JSON line on stdout with `--json`).

use std::ops::ControlFlow;

use anyhow::Result;
use clipguide_guide::{Generator, Observer, RunSummary, StepReport};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::generate::GenerateArgs;

/// The progress bars: the start phase's, then the run's.
pub struct Progress {
    starts: ProgressBar,
    main: ProgressBar,
    start_count: usize,
    start_steps_done: usize,
}

impl Progress {
    pub fn new(json: bool, starts: usize, start_steps: usize, steps: usize) -> Self {
        let bar = |len: usize| {
            let pb = match json {
                true => ProgressBar::hidden(),
                false => ProgressBar::new(len as u64),
            };
            pb.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}, {per_sec}] {msg}",
                )
                .expect("valid template"),
            );
            pb
        };
        let starts_len = if starts > 1 { starts * start_steps } else { 0 };
        Self {
            starts: bar(starts_len),
            main: bar(steps),
            start_count: starts,
            start_steps_done: 0,
        }
    }
}

impl Drop for Progress {
    /// A failed run leaves no half-drawn bars above its error.
    fn drop(&mut self) {
        self.starts.finish_and_clear();
        self.main.finish_and_clear();
    }
}

impl Observer for Progress {
    fn start_step(
        &mut self,
        start: usize,
        r: &StepReport,
    ) -> clipguide_guide::Result<ControlFlow<()>> {
        self.start_steps_done += 1;
        self.starts.set_position(self.start_steps_done as u64);
        let sim = r.weighted_similarity();
        let total = self.start_count;
        self.starts
            .set_message(format!("start {}/{total} sim {sim:.3}", start + 1));
        Ok(ControlFlow::Continue(()))
    }

    fn begin(&mut self, _g: &Generator) -> clipguide_guide::Result<()> {
        self.starts.finish_and_clear();
        // The run's rate and ETA count its own steps, not the starts'.
        self.main.reset();
        Ok(())
    }

    fn step(&mut self, _g: &Generator, r: &StepReport) -> clipguide_guide::Result<ControlFlow<()>> {
        self.main.set_position((r.step + 1) as u64);
        let sim = r.weighted_similarity();
        self.main
            .set_message(format!("loss {:.4} sim {sim:.3}", r.loss));
        Ok(ControlFlow::Continue(()))
    }

    fn end(&mut self, _g: &Generator, _s: &RunSummary) -> clipguide_guide::Result<()> {
        self.main.finish_and_clear();
        Ok(())
    }
}

/// The run's outcome on stdout (`--json`) or stderr.
/// The run's closing lines; `unknown_words` (the built-in model's unseen prompt words, already
/// noted on stderr) go into the JSON.
pub fn report(
    args: &GenerateArgs,
    s: &RunSummary,
    asked: usize,
    unknown_words: &[String],
    json: bool,
) -> Result<()> {
    let per_step = s.seconds / s.steps_taken.max(1) as f64;
    if json {
        let v = json!({
            "output": args.output,
            "steps": s.steps_done,
            "steps_taken": s.steps_taken,
            "stopped_early": s.stopped_early,
            "seconds": s.seconds,
            "seconds_per_step": per_step,
            "final_image_similarity": s.final_similarity,
            "unknown_words": unknown_words,
        });
        println!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    let (done, cfg) = (s.steps_done, &s.config);
    if s.stopped_early {
        eprintln!("stopped after {done} of {asked} steps; writing the current image");
    }
    let starts = match cfg.selection.starts {
        n if n > 1 && s.steps_taken > s.reports.len() => format!(" after {n} starts"),
        _ => String::new(),
    };
    eprintln!(
        "{} ({}x{}, {done} steps{starts}, {} taken, {:.2} it/s)",
        args.output.display(),
        cfg.width,
        cfg.height,
        s.steps_taken,
        1.0 / per_step
    );
    for p in &s.final_similarity {
        eprintln!(
            "  similarity {:.4}  weight {:>5}  {}",
            p.similarity, p.weight, p.prompt
        );
    }
    Ok(())
}
