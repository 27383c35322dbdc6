//! `clipguide dataset`, `train` and `eval`: thin wrappers over `clipguide_train`.

use anyhow::{bail, Context, Result};
use candle_core::Device;
use clap::{Args, ValueEnum};
use clipguide_shapes::WorldMix;
use clipguide_train::cloob;
use clipguide_train::trainer::{DataSource, Objective, RunEnd, TrainConfig, Trainer};
use indicatif::{ProgressBar, ProgressStyle};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Args)]
pub struct DatasetArgs {
    /// Dataset kind (only "shapes").
    pub kind: String,
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, default_value_t = 64)]
    pub size: u32,
}

pub fn dataset(a: DatasetArgs, json: bool) -> Result<()> {
    if a.kind != "shapes" {
        bail!("unknown dataset kind {:?}: only \"shapes\" exists", a.kind);
    }
    let summary = clipguide_shapes::write_dataset(&a.out, a.count, a.seed, a.size)?;
    if json {
        println!(
            "{}",
            serde_json::to_string(
                &serde_json::json!({"out": a.out, "count": a.count, "seed": a.seed, "size": a.size})
            )?
        );
    } else {
        let _ = summary;
        println!(
            "wrote {} images and captions.jsonl to {}",
            a.count,
            a.out.display()
        );
    }
    Ok(())
}

#[derive(Clone, Copy, ValueEnum)]
pub enum DataKind {
    Shapes,
}

/// `--loss`: the contrastive objective.
#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum LossKind {
    /// CLIP's symmetric InfoNCE with a learned temperature.
    Infonce,
    /// CLOOB: Hopfield retrieval + InfoLOOB, constant --inv-tau and --scale-hopfield.
    Cloob,
}

/// The library's defaults, the one place they are written: each flag below shows and uses
/// its field of `TrainConfig::default()`.
fn d() -> TrainConfig {
    TrainConfig::default()
}

/// `clipguide train`: every default is `TrainConfig::default()`'s (see [`d`]).
#[derive(Args)]
pub struct TrainArgs {
    /// "shapes" (procedural, streamed) or a folder of image+caption pairs.
    #[arg(long, default_value = "shapes")]
    pub data: String,
    /// Output checkpoint folder.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = d().steps)]
    pub steps: usize,
    #[arg(long, default_value_t = d().batch)]
    pub batch: usize,
    #[arg(long, default_value_t = d().lr)]
    pub lr: f64,
    #[arg(long, default_value_t = d().warmup)]
    pub warmup: usize,
    #[arg(long, default_value_t = d().seed)]
    pub seed: u64,
    #[arg(long, default_value_t = d().image_size)]
    pub image_size: usize,
    /// ViT patch side (must divide --image-size); 8 at 64² gives the 64 tokens the shipped model
    /// needs to count and place small shapes.
    #[arg(long, default_value_t = d().patch_size)]
    pub patch_size: usize,
    #[arg(long, default_value_t = d().checkpoint_every)]
    pub checkpoint_every: usize,
    /// PGD steps of adversarial training per batch (0 = off).
    #[arg(long, default_value_t = d().augment.pgd_steps)]
    pub pgd_steps: usize,
    /// Fraction of each batch, from its start, that PGD perturbs; the tail (labelled hard
    /// negatives, --singles last) stays clean. 1 = all.
    #[arg(long, default_value_t = d().augment.pgd_fraction)]
    pub pgd_fraction: f32,
    /// Max Gaussian noise std of the augmentation.
    #[arg(long, default_value_t = d().augment.noise_std)]
    pub noise: f32,
    /// Probability of a 3×3 box blur per image (augmentation; 0 = never).
    #[arg(long, default_value_t = d().augment.blur_prob)]
    pub blur: f64,
    /// Max random shift in pixels (augmentation; edges repeat).
    #[arg(long, default_value_t = d().augment.max_shift)]
    pub shift: i32,
    /// Brightness/contrast jitter amplitude (augmentation; kept small so colour names stay true).
    #[arg(long, default_value_t = d().augment.colour_jitter)]
    pub jitter: f32,
    /// Fraction of each batch given to groups of scenes that differ in one attribute
    /// (placement, shape or count; object colour too with --colour-negatives); 0 turns them off.
    #[arg(long, default_value_t = d().hard_negatives.fraction)]
    pub hard_negatives: f32,
    /// Scenes per hard-negative group; 1 = independent labelled single-object scenes (for a
    /// supervised phase with a large --aux-weight).
    #[arg(long, default_value_t = d().hard_negatives.group_size)]
    pub group_size: usize,
    /// Fraction of the hard negatives drawn as independent labelled single-object scenes, the
    /// rest in groups of --group-size (keeps both in one fine-tuning batch); 0 = all grouped.
    #[arg(long, default_value_t = d().hard_negatives.singles)]
    pub singles: f32,
    /// Sampling weight of hard-negative groups that differ only in the object's colour, beside
    /// placement, shape and count (whose weights sum to 1); 0 = none.
    #[arg(long, default_value_t = d().hard_negatives.colour_weight)]
    pub colour_negatives: f64,
    /// Sampling weight of hard-negative groups that differ only in the object's size (small or
    /// large; their captions always name it), beside the other attributes; 0 = none.
    #[arg(long, default_value_t = d().hard_negatives.size_weight)]
    pub size_negatives: f64,
    /// Probability that a hard-negative scene is captioned in Japanese. 0 = English only.
    #[arg(long, default_value_t = d().hard_negatives.japanese)]
    pub hard_japanese: f32,
    /// Probability that a synthetic scene is drawn with a random outline, rasteriser and edge
    /// (proportions, rotation, aspect, continuous size, supersampled or tiny-skia) instead of
    /// the canonical look; captions are unchanged. 0 = the first world.
    #[arg(long, default_value_t = d().world.varied_drawing)]
    pub varied_drawing: f64,
    /// Probability that an item is a picture (flowers, trees, houses, pagodas, torii gates,
    /// mountains, sun, moon, clouds on a plain colour or under a sky on grass, snow, ice or sea,
    /// in one of five styles) instead of a shapes scene. 0 = the first world.
    #[arg(long, default_value_t = d().world.pictures)]
    pub pictures: f64,
    /// Probability that an item is captioned in Japanese (same drawing). 0 = English only.
    #[arg(long, default_value_t = d().world.japanese)]
    pub japanese: f64,
    /// Probability that a shapes scene is painted (oil, watercolour or pixel art), named in its
    /// captions. 0 = never.
    #[arg(long, default_value_t = d().world.styled)]
    pub styled: f64,
    /// Probability that an odd item following a picture is that picture with its first object
    /// or its style changed (a pair only the object or the style tells apart). 0 = never.
    #[arg(long, default_value_t = d().world.picture_pairs)]
    pub picture_pairs: f64,
    /// Probability that a caption gets one or two made-up words inserted, so the model learns
    /// to pass over words it does not know. 0 = never.
    #[arg(long, default_value_t = d().made_up_words)]
    pub made_up_words: f64,
    /// Weight of the auxiliary placement/shape/count losses on the hard negatives (0 = off).
    #[arg(long, default_value_t = d().aux_weight)]
    pub aux_weight: f32,
    /// Learning-rate multiplier of the vision position and patch embeddings.
    #[arg(long, default_value_t = d().embedding_lr_mult)]
    pub embedding_lr_mult: f64,
    /// Init std of the vision position embeddings (CLIP's own init is 0.02; the shipped
    /// model used 1.0 so the class token sees placement).
    #[arg(long, default_value_t = d().vision_pos_init_std)]
    pub vision_pos_init_std: f32,
    /// Init std of the vision patch projection (CLIP's is 0.02; larger keeps patch content
    /// visible beside a large position code, see BENCHMARKS.md).
    #[arg(long, default_value_t = d().vision_patch_init_std)]
    pub vision_patch_init_std: f32,
    /// Initialise the other weights with CLIP's width- and depth-scaled stds (transformers'
    /// init) instead of 0.02 everywhere; see BENCHMARKS.md.
    #[arg(long)]
    pub clip_init: bool,
    /// Contrastive loss: infonce (CLIP's symmetric InfoNCE, learned temperature) or cloob
    /// (Hopfield retrieval + InfoLOOB, Fürst et al. 2022). Default: infonce; with --resume, the
    /// saved run's loss (a different one is refused).
    #[arg(long, value_enum)]
    pub loss: Option<LossKind>,
    #[arg(long, help = format!(
        "CLOOB's constant inverse temperature (only with --loss cloob). Default: {}",
        cloob::DEFAULT_INV_TAU
    ))]
    pub inv_tau: Option<f64>,
    #[arg(long, help = format!(
        "CLOOB's Hopfield retrieval scale β (only with --loss cloob). Default: {}",
        cloob::DEFAULT_SCALE_HOPFIELD
    ))]
    pub scale_hopfield: Option<f64>,
    /// Start from this checkpoint's weights (fine-tuning); optimiser and schedule start fresh.
    #[arg(long, conflicts_with = "resume")]
    pub init: Option<PathBuf>,
    /// Continue from the checkpoint in --out.
    #[arg(long)]
    pub resume: bool,
    /// Write a JSON line per step here.
    #[arg(long)]
    pub log: Option<PathBuf>,
}

impl TrainArgs {
    /// The run these flags describe, over `TrainConfig::default()` (the objective is settled by
    /// [`requested_objective`], since `--resume` keeps the saved one).
    fn config(&self) -> TrainConfig {
        let mut cfg = TrainConfig {
            steps: self.steps,
            batch: self.batch,
            lr: self.lr,
            warmup: self.warmup,
            seed: self.seed,
            image_size: self.image_size,
            patch_size: self.patch_size,
            checkpoint_every: self.checkpoint_every,
            aux_weight: self.aux_weight,
            embedding_lr_mult: self.embedding_lr_mult,
            vision_pos_init_std: self.vision_pos_init_std,
            vision_patch_init_std: self.vision_patch_init_std,
            clip_init: self.clip_init,
            ..TrainConfig::default()
        };
        let aug = &mut cfg.augment;
        aug.pgd_steps = self.pgd_steps;
        aug.pgd_fraction = self.pgd_fraction;
        aug.noise_std = self.noise;
        aug.blur_prob = self.blur;
        aug.max_shift = self.shift;
        aug.colour_jitter = self.jitter;
        let hard = &mut cfg.hard_negatives;
        hard.fraction = self.hard_negatives;
        hard.colour_weight = self.colour_negatives;
        hard.size_weight = self.size_negatives;
        hard.japanese = self.hard_japanese;
        hard.group_size = self.group_size;
        hard.singles = self.singles;
        cfg.world = WorldMix {
            varied_drawing: self.varied_drawing,
            pictures: self.pictures,
            japanese: self.japanese,
            styled: self.styled,
            picture_pairs: self.picture_pairs,
        };
        cfg.made_up_words = self.made_up_words;
        cfg
    }
}

/// The objective the flags ask for: `None` when no `--loss` is given (a new run then uses
/// InfoNCE, `--resume` the saved objective). Refuses the CLOOB knobs without `--loss cloob`.
fn requested_objective(
    loss: Option<LossKind>,
    inv_tau: Option<f64>,
    scale_hopfield: Option<f64>,
) -> Result<Option<Objective>> {
    if loss != Some(LossKind::Cloob) {
        let given = [("--inv-tau", inv_tau), ("--scale-hopfield", scale_hopfield)];
        if let Some((flag, _)) = given.iter().find(|(_, v)| v.is_some()) {
            let which = match loss {
                Some(_) => "--loss infonce was given",
                None => "the default loss is infonce",
            };
            bail!("{flag} is a CLOOB setting and needs --loss cloob ({which})");
        }
    }
    Ok(match loss {
        None => None,
        Some(LossKind::Infonce) => Some(Objective::InfoNce),
        Some(LossKind::Cloob) => Some(Objective::Cloob {
            inv_tau: inv_tau.unwrap_or(cloob::DEFAULT_INV_TAU),
            scale_hopfield: scale_hopfield.unwrap_or(cloob::DEFAULT_SCALE_HOPFIELD),
        }),
    })
}

pub fn train(a: TrainArgs) -> Result<()> {
    let dev = Device::Cpu;
    let objective = requested_objective(a.loss, a.inv_tau, a.scale_hopfield)?;
    let data = if a.data == "shapes" {
        // A resumed run draws the world it was trained on, whatever --seed and --image-size say.
        let (seed, size) = match a.resume {
            true => {
                let c = Trainer::saved_config(&a.out)
                    .with_context(|| format!("resuming from {}", a.out.display()))?;
                (c.seed, c.image_size)
            }
            false => (a.seed, a.image_size),
        };
        DataSource::shapes(seed, size as u32)?
    } else {
        DataSource::folder(std::path::Path::new(&a.data))?
    };
    let mut trainer = if a.resume {
        let t = Trainer::resume(&a.out, data, &dev, Some(a.steps))
            .with_context(|| format!("resuming from {}", a.out.display()))?;
        if let Some(o) = objective {
            let saved = t.config.objective;
            if o != saved {
                bail!(
                    "--resume: {} was trained with --loss {saved}, and this run asks for --loss {o}; \
                     resume without --loss (or with the saved settings), or train a new run in another --out",
                    a.out.display()
                );
            }
        }
        t
    } else {
        let cfg = TrainConfig {
            objective: objective.unwrap_or_default(),
            ..a.config()
        };
        let mut t = Trainer::new(cfg, data, &dev)?;
        if let Some(init) = &a.init {
            t.init_weights_from(init)
                .with_context(|| format!("--init {}", init.display()))?;
        }
        t
    };
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
            .context("installing the Ctrl-C handler")?;
    }
    let total = trainer.config.steps;
    let pb = ProgressBar::new(total as u64);
    pb.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}",
        )
        .expect("valid template"),
    );
    pb.set_position(trainer.step_index() as u64);
    let mut log = match &a.log {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("opening {}", p.display()))?,
        ),
        None => None,
    };
    let started = std::time::Instant::now();
    let start_step = trainer.step_index();
    let batch = trainer.config.batch;
    let end = trainer.run(&a.out, |s| -> Result<ControlFlow<()>> {
        let ips = ((s.step - start_step) * batch) as f64 / started.elapsed().as_secs_f64();
        pb.set_position(s.step as u64);
        pb.set_message(format!(
            "loss {:.3} acc {:.0}% scale {:.1} {:.0} img/s",
            s.loss,
            100.0 * s.accuracy,
            s.logit_scale,
            ips
        ));
        if let Some(f) = log.as_mut() {
            use std::io::Write;
            writeln!(f, "{}", serde_json::to_string(&s)?)?;
        }
        Ok(if stop.load(Ordering::SeqCst) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        })
    })?;
    match end {
        RunEnd::Stopped { step } => pb.abandon_with_message(format!(
            "interrupted: checkpoint at step {step} saved to {}",
            a.out.display()
        )),
        RunEnd::Finished => pb.finish_with_message(format!("done: {}", a.out.display())),
    }
    Ok(())
}

#[derive(Args)]
pub struct EvalArgs {
    #[arg(long, default_value = "shapes")]
    pub data: String,
    /// Drawings to evaluate (a seed never trained on).
    #[arg(long, default_value_t = 500)]
    pub count: usize,
    #[arg(long, default_value_t = 12345)]
    pub seed: u64,
    /// Draw each held-out scene with a random outline, rasteriser and edge instead of the
    /// canonical look.
    #[arg(long, conflicts_with_all = ["pictures", "drawings"])]
    pub varied: bool,
    /// Evaluate pictures (object and style probes) instead of shapes scenes.
    #[arg(long, conflicts_with = "drawings")]
    pub pictures: bool,
    /// Evaluate another renderer's drawings: a folder with scenes.jsonl
    /// ({"file", "scene"} per line), e.g. tests/fixtures/heldout-drawings/centred.
    #[arg(long, value_name = "DIR")]
    pub drawings: Option<PathBuf>,
    /// Language of the candidate captions.
    #[arg(long, value_enum, default_value_t = CaptionLanguage::En)]
    pub language: CaptionLanguage,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CaptionLanguage {
    En,
    Ja,
}

pub fn eval(a: EvalArgs, clip: &clipguide_clip::Clip, json: bool) -> Result<()> {
    use clipguide_train::eval::{evaluate_source, EvalSource};
    if a.data != "shapes" {
        bail!("--data: only \"shapes\" can be evaluated");
    }
    let source = match (&a.drawings, a.pictures) {
        (Some(dir), _) => EvalSource::Drawings(dir.clone()),
        (None, true) => EvalSource::Pictures {
            count: a.count,
            seed: a.seed,
        },
        (None, false) => EvalSource::Scenes {
            count: a.count,
            seed: a.seed,
            varied: a.varied,
        },
    };
    let language = match a.language {
        CaptionLanguage::En => clipguide_shapes::Language::English,
        CaptionLanguage::Ja => clipguide_shapes::Language::Japanese,
    };
    let r = evaluate_source(clip, &source, language)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "zero-shot accuracy on {} ({} candidates):",
            r.source,
            language.name()
        );
        for (k, v) in &r.accuracy {
            println!("  {k:<18} {:>6.1}%", 100.0 * v);
        }
        println!("  retrieval R@1      {:>6.1}%", 100.0 * r.recall_at_1);
        println!("  retrieval R@5      {:>6.1}%", 100.0 * r.recall_at_5);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flags' defaults are the library's: a run with none of them is `TrainConfig::default()`.
    #[test]
    fn no_flags_give_the_library_defaults() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            train: TrainArgs,
        }
        let cli = Cli::try_parse_from(["train", "--out", "x"]).unwrap();
        assert_eq!(cli.train.config(), TrainConfig::default());
        let cli =
            Cli::try_parse_from(["train", "--out", "x", "--noise", "0.5", "--singles", "0.25"])
                .unwrap();
        let cfg = cli.train.config();
        assert_eq!(
            (cfg.augment.noise_std, cfg.hard_negatives.singles),
            (0.5, 0.25)
        );
    }

    #[test]
    fn loss_flags_map_to_objectives() {
        assert_eq!(requested_objective(None, None, None).unwrap(), None);
        assert_eq!(
            requested_objective(Some(LossKind::Infonce), None, None).unwrap(),
            Some(Objective::InfoNce)
        );
        assert_eq!(
            requested_objective(Some(LossKind::Cloob), None, None).unwrap(),
            Some(Objective::CLOOB_DEFAULT)
        );
        assert_eq!(
            requested_objective(Some(LossKind::Cloob), Some(10.0), None).unwrap(),
            Some(Objective::Cloob {
                inv_tau: 10.0,
                scale_hopfield: 15.0
            })
        );
    }

    #[test]
    fn cloob_knobs_without_cloob_are_refused() {
        let e = requested_objective(Some(LossKind::Infonce), Some(30.0), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--inv-tau") && e.contains("--loss cloob") && e.contains("infonce"),
            "{e}"
        );
        let e = requested_objective(None, None, Some(15.0))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--scale-hopfield") && e.contains("--loss cloob"),
            "{e}"
        );
    }
}
