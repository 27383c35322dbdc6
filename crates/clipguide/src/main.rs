//! `clipguide`: the command-line front end. Argument parsing, wiring and printing only; every
//! feature is a library call in the `clipguide-*` crates.

mod annotate;
mod classify;
mod detect;
mod encode;
mod generate;
mod generate_world;
mod index;
mod progress;
mod prompt_args;
mod render;
mod search;
mod train_cmd;
mod vocab_notice;
mod zeroshot;

use anyhow::{bail, Context, Result};
use candle_core::Device;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use clipguide_clip::checkpoint::{self, Layout};
use clipguide_clip::{hub, Activation, Clip, ClipTokenizer, OpenClipOptions};
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(
    name = "clipguide",
    version,
    about = "CLIP in Rust: embeddings, similarity, zero-shot classification, search and CLIP-guided generation"
)]
struct Cli {
    /// Checkpoint folder or hub id: transformers layout (config.json, model.safetensors,
    /// tokenizer.json; e.g. openai/clip-vit-base-patch32) or OpenCLIP layout
    /// (open_clip_config.json + open_clip_model.safetensors or open_clip_pytorch_model.bin; e.g.
    /// laion/CLIP-ViT-B-32-laion2B-s34B-b79K). Default: the built-in CLIP of a drawn world (shapes, objects, scenes, styles; English and Japanese).
    #[arg(long, global = true)]
    model: Option<String>,
    /// The MLP activation of an OpenCLIP checkpoint, replacing what its config implies
    /// (configs that omit quick_gelu get exact GELU, except the hub ids clipguide knows were
    /// trained with QuickGELU: DFN, MetaCLIP).
    #[arg(long, global = true, value_enum)]
    act: Option<ActArg>,
    /// Precision of image embeddings computed without gradients (similarity, classify, search,
    /// eval): f32; bf16 products with f32 sums on CPUs with AVX512-BF16; or fp16 products on CPUs
    /// with AVX512-FP16 (Intel Sapphire Rapids on). Half precision is faster where the CPU has it,
    /// with embeddings within a cosine of 10⁻³; elsewhere f32 with a note. Guidance gradients are
    /// always f32.
    #[arg(long, global = true, value_enum, default_value_t = PrecisionArg::F32)]
    precision: PrecisionArg,
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PrecisionArg {
    F32,
    Bf16,
    F16,
}

impl PrecisionArg {
    fn precision(self) -> clipguide_clip::Precision {
        match self {
            Self::F32 => clipguide_clip::Precision::F32,
            Self::Bf16 => clipguide_clip::Precision::Bf16,
            Self::F16 => clipguide_clip::Precision::F16,
        }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ActArg {
    #[value(name = "quick_gelu")]
    QuickGelu,
    Gelu,
}

impl ActArg {
    fn activation(self) -> Activation {
        match self {
            Self::QuickGelu => Activation::QuickGelu,
            Self::Gelu => Activation::Gelu,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Token ids and attention mask per text (CLIP BPE, 77 positions).
    Tokenize {
        #[arg(required = true)]
        texts: Vec<String>,
        /// Pad every row to 77 (CLIP's default) instead of to the longest row.
        #[arg(long)]
        max_length: bool,
    },
    /// Projected, unnormalised embeddings (transformers' get_text_features / get_image_features).
    Embed {
        #[arg(long = "text")]
        texts: Vec<String>,
        #[arg(long = "image")]
        images: Vec<PathBuf>,
    },
    /// Cosine similarity, logits and softmax probabilities of images against texts.
    Similarity {
        #[arg(long = "image", required = true)]
        images: Vec<PathBuf>,
        #[arg(long = "text", required = true)]
        texts: Vec<String>,
    },
    /// Zero-shot classification of an image over labels (templates, ensembles, definitions) or
    /// candidate sentences.
    Classify(classify::ClassifyArgs),
    /// Zero-shot accuracy on an image folder with one sub-folder per class.
    Zeroshot(zeroshot::ZeroshotArgs),
    /// Find and box objects named in free text.
    Detect(detect::DetectArgs),
    /// Detection over a folder, written as COCO JSON (resumable).
    Annotate(annotate::AnnotateArgs),
    /// CLIP-guided image generation: optimise an image until CLIP sees the prompts in it.
    // Boxed: its many flags would make every other variant as large.
    Generate(Box<generate::GenerateArgs>),
    /// Render the live preview's layout for an image to a PNG, headlessly.
    Render(render::RenderArgs),
    /// Text conditioning for diffusion UNets (sd1 / sd2 / sdxl) written to safetensors.
    Encode(encode::EncodeArgs),
    /// Write the synthetic captioned-shapes dataset to a folder.
    Dataset(train_cmd::DatasetArgs),
    /// Train a small CLIP contrastively (on the synthetic shapes by default).
    Train(train_cmd::TrainArgs),
    /// Write an OpenCLIP checkpoint (folder or hub id) in the transformers layout, loadable with
    /// CLIPModel.from_pretrained.
    Convert {
        #[arg(long)]
        from: String,
        /// A new folder (nothing is overwritten).
        #[arg(long)]
        to: PathBuf,
    },
    /// Copy a checkpoint with its weights converted to float16 (how the built-in model is shipped).
    ExportF16 { src: PathBuf, dst: PathBuf },
    /// Zero-shot accuracy per attribute and retrieval recall on held-out shapes.
    Eval(train_cmd::EvalArgs),
    /// Build or update an embedding store (Parquet parts + manifest) from a folder or a file
    /// list; shard it over machines and merge.
    Index(index::IndexArgs),
    /// Text-to-image or image-to-image search over a store or a folder (its store is updated).
    Search(search::SearchArgs),
    /// Near-duplicate pairs of a store.
    Dedupe(index::DedupeArgs),
}

fn main() {
    // SAFETY: first thing in main, before any thread starts.
    unsafe { clipguide_clip::tune_process() };
    quiet_wayland_probe();
    let cmd = Cli::command().mut_subcommand("generate", generate::help_with_recipe_defaults);
    let cli = Cli::from_arg_matches(&cmd.get_matches()).unwrap_or_else(|e| e.exit());
    if let Err(e) = run(cli) {
        eprintln!("error: {e}");
        for cause in e.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
        std::process::exit(1);
    }
}

/// The Vulkan stack probes for a Wayland compositor, and without `XDG_RUNTIME_DIR` libwayland
/// prints "error: XDG_RUNTIME_DIR is invalid or not set" although nothing failed. With no Wayland
/// session to find, the probe is pointed at a socket path that cannot exist: it then fails quietly.
fn quiet_wayland_probe() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none()
        && std::env::var_os("WAYLAND_DISPLAY").is_none()
    {
        // Before any thread starts: nothing else reads the environment concurrently.
        std::env::set_var(
            "WAYLAND_DISPLAY",
            "/nonexistent/clipguide-no-wayland-session",
        );
    }
}

pub(crate) struct Loaded {
    pub(crate) clip: Clip,
    /// What identifies the weights, for stores; hashed only by the commands that use a store.
    weights: Weights,
}

enum Weights {
    Builtin,
    /// The weights file and the activations (`--act` changes the embeddings).
    File {
        path: PathBuf,
        activations: String,
    },
}

impl Loaded {
    /// The weights' content hash: the same checkpoint gives the same key on every machine and
    /// path.
    pub(crate) fn key(&self) -> Result<String> {
        match &self.weights {
            Weights::Builtin => Ok(format!(
                "builtin:{}",
                clipguide_index::bytes_key(clipguide_clip::builtin::MODEL_SAFETENSORS)
            )),
            Weights::File { path, activations } => {
                let hash = clipguide_index::weights_key(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                Ok(format!("{hash}:{activations}"))
            }
        }
    }
}

/// What the user typed about an OpenCLIP checkpoint, plus the hub id when `spec` is one.
fn open_clip_options(spec: &str, act: Option<ActArg>) -> OpenClipOptions {
    OpenClipOptions {
        activation: act.map(ActArg::activation),
        repo_id: match hub::ModelSpec::parse(spec) {
            Ok(hub::ModelSpec::Hub { repo, .. }) => Some(repo),
            _ => None,
        },
    }
}

/// Loads `--model` (or the built-in model) and sets its embedding precision from `--precision`.
fn load_model(spec: Option<&str>, act: Option<ActArg>, precision: PrecisionArg) -> Result<Loaded> {
    let mut m = load_checkpoint(spec, act)?;
    let precision = precision.precision();
    m.clip.embed_precision = precision;
    if !m.clip.model.embeds_at(precision) {
        let (name, flag) = match precision {
            clipguide_clip::Precision::F16 => ("f16", "AVX512-FP16"),
            _ => ("bf16", "AVX512-BF16"),
        };
        eprintln!("note: --precision {name} runs in f32 here: it needs a CPU with {flag} (and CLIPGUIDE_ISA not below avx512) and a tower whose layers run fused");
    }
    Ok(m)
}

fn load_checkpoint(spec: Option<&str>, act: Option<ActArg>) -> Result<Loaded> {
    let Some(spec) = spec else {
        if act.is_some() {
            bail!("--act applies to OpenCLIP checkpoints given with --model; the built-in model has its own activation");
        }
        let clip = Clip::builtin(&Device::Cpu)?;
        return Ok(Loaded {
            clip,
            weights: Weights::Builtin,
        });
    };
    let dir = hub::resolve(spec, true)?;
    let (clip, notes) = Clip::load_with(&dir, &Device::Cpu, &open_clip_options(spec, act))?;
    for n in notes {
        eprintln!("note: {n}");
    }
    // The activation is part of the weights' meaning (--act changes the embeddings).
    let cfg = clip.model.config();
    let activations = format!(
        "{}:{}",
        cfg.text.hidden_act.hf_name(),
        cfg.vision.hidden_act.hf_name()
    );
    Ok(Loaded {
        clip,
        weights: Weights::File {
            path: weights_file(&dir),
            activations,
        },
    })
}

/// The checkpoint's weights file.
fn weights_file(dir: &Path) -> PathBuf {
    match checkpoint::detect(dir).map(|d| d.layout) {
        Ok(
            Layout::Transformers { weights, .. }
            | Layout::OpenClip { weights, .. }
            | Layout::Rinna { weights, .. },
        ) => weights,
        Err(_) => dir.join("model.safetensors"),
    }
}

fn tokenizer_for(spec: Option<&str>) -> Result<ClipTokenizer> {
    match spec {
        None => Ok(ClipTokenizer::builtin()),
        Some(s) => {
            let dir = hub::resolve(s, true)?;
            Ok(checkpoint::tokenizer(&dir)?)
        }
    }
}

fn load_images(clip: &Clip, paths: &[PathBuf]) -> Result<Vec<image::RgbImage>> {
    paths
        .iter()
        .map(|p| clip.load_image(p).map_err(Into::into))
        .collect()
}

fn run(cli: Cli) -> Result<()> {
    // A misspelt CLIPGUIDE_ISA would otherwise run the default path without a word.
    clipguide_clip::ops::isa_request().map_err(anyhow::Error::msg)?;
    let model = cli.model.as_deref();
    match cli.command {
        Command::Tokenize { texts, max_length } => {
            let tok = tokenizer_for(model)?;
            let pad = if max_length {
                clipguide_clip::Padding::MaxLength
            } else {
                clipguide_clip::Padding::Longest
            };
            let batch = tok.encode_batch(&texts, pad, &Device::Cpu)?;
            let ids = batch.ids.to_vec2::<u32>()?;
            let mask = batch.attention_mask.to_vec2::<u32>()?;
            if cli.json {
                let rows: Vec<_> = texts
                    .iter()
                    .zip(ids.iter().zip(&mask))
                    .map(|(t, (i, m))| json!({"text": t, "input_ids": i, "attention_mask": m}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for (t, (i, m)) in texts.iter().zip(ids.iter().zip(&mask)) {
                    let n: u32 = m.iter().sum();
                    println!("{t:?} ({n} tokens)");
                    println!("  input_ids:      {i:?}");
                    println!("  attention_mask: {m:?}");
                }
            }
        }
        Command::Embed { texts, images } => {
            if texts.is_empty() && images.is_empty() {
                bail!("nothing to embed: pass --text TEXT and/or --image PATH");
            }
            let m = load_model(model, cli.act, cli.precision)?;
            let mut out = serde_json::Map::new();
            if !texts.is_empty() {
                let e = m.clip.embed_texts(&texts)?.to_vec2::<f32>()?;
                if !cli.json {
                    for (t, v) in texts.iter().zip(&e) {
                        println!("text  {t:?}: {}", fmt_vec(v));
                    }
                }
                out.insert(
                    "text_embeds".into(),
                    json!(texts
                        .iter()
                        .zip(&e)
                        .map(|(t, v)| json!({"text": t, "embedding": v}))
                        .collect::<Vec<_>>()),
                );
            }
            if !images.is_empty() {
                let imgs = load_images(&m.clip, &images)?;
                let e = m.clip.embed_images(&imgs)?.to_vec2::<f32>()?;
                if !cli.json {
                    for (p, v) in images.iter().zip(&e) {
                        println!("image {}: {}", p.display(), fmt_vec(v));
                    }
                }
                out.insert(
                    "image_embeds".into(),
                    json!(images
                        .iter()
                        .zip(&e)
                        .map(|(p, v)| json!({"image": p, "embedding": v}))
                        .collect::<Vec<_>>()),
                );
            }
            if cli.json {
                println!("{}", serde_json::to_string(&out)?);
            }
        }
        Command::Similarity { images, texts } => {
            let m = load_model(model, cli.act, cli.precision)?;
            let imgs = load_images(&m.clip, &images)?;
            let unknown = match model {
                None => vocab_notice::unknown_words_notice(texts.iter().map(String::as_str)),
                Some(_) => Vec::new(),
            };
            let ie = m.clip.embed_images(&imgs)?;
            let te = m.clip.embed_texts(&texts)?;
            let s = m.clip.similarity(&ie, &te)?;
            if cli.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "images": images, "texts": texts,
                        "cosine": s.cosine, "logits": s.logits, "probs": s.probs,
                        "logit_scale": m.clip.model.logit_scale()?,
                        "unknown_words": unknown,
                    }))?
                );
            } else {
                println!(
                    "{:<28} {:<32} {:>8} {:>8} {:>7}",
                    "image", "text", "cosine", "logit", "prob"
                );
                for (i, p) in images.iter().enumerate() {
                    for (j, t) in texts.iter().enumerate() {
                        println!(
                            "{:<28} {:<32} {:>8.4} {:>8.3} {:>6.1}%",
                            truncate(&p.display().to_string(), 28),
                            truncate(t, 32),
                            s.cosine[i][j],
                            s.logits[i][j],
                            100.0 * s.probs[i][j]
                        );
                    }
                }
            }
        }
        Command::Classify(a) => {
            let m = load_model(model, cli.act, cli.precision)?;
            classify::run(a, &m.clip, model.is_none(), cli.json)?
        }
        Command::Zeroshot(a) => {
            let m = load_model(model, cli.act, cli.precision)?;
            zeroshot::run(a, &m, cli.json)?
        }
        Command::Detect(a) => {
            let m = load_model(model, cli.act, cli.precision)?;
            detect::run(a, &m.clip, cli.json)?
        }
        Command::Annotate(a) => {
            let m = load_model(model, cli.act, cli.precision)?;
            annotate::run(a, &m.clip, cli.json)?
        }
        Command::Generate(a) => {
            let m = load_model(model, cli.act, cli.precision)?;
            generate::run(*a, &m.clip, model.is_none(), cli.json)?
        }
        Command::Render(a) => render::run(a)?,
        Command::Convert { from, to } => {
            let dir = hub::resolve(&from, true)?;
            let conv = clipguide_clip::convert::open_clip_to_transformers(
                &dir,
                &to,
                &open_clip_options(&from, cli.act),
            )
            .with_context(|| format!("converting {from} to {}", to.display()))?;
            for n in &conv.notes {
                eprintln!("note: {n}");
            }
            if cli.json {
                println!("{}", json!({"written": to, "notes": conv.notes}));
            } else {
                println!(
                    "wrote {} (transformers layout, {})",
                    to.display(),
                    conv.config.activation.describe()
                );
            }
        }
        Command::Encode(mut a) => {
            if cli.act.is_some() {
                bail!("--act is not taken by encode: the text encoders it loads use their config's activation");
            }
            a.model = cli.model.clone();
            encode::run(a, cli.json)?
        }
        Command::ExportF16 { src, dst } => {
            clipguide_train::trainer::export_f16(&src, &dst)
                .with_context(|| format!("exporting {} to {}", src.display(), dst.display()))?;
            println!("wrote {}", dst.display());
        }
        Command::Dataset(a) => train_cmd::dataset(a, cli.json)?,
        Command::Train(a) => train_cmd::train(a)?,
        Command::Eval(a) => {
            let m = load_model(model, cli.act, cli.precision)?;
            train_cmd::eval(a, &m.clip, cli.json)?
        }
        Command::Index(a) => index::run(a, || load_model(model, cli.act, cli.precision), cli.json)?,
        Command::Search(a) => {
            search::run(a, &load_model(model, cli.act, cli.precision)?, cli.json)?
        }
        Command::Dedupe(a) => {
            index::dedupe(a, || load_model(model, cli.act, cli.precision), cli.json)?
        }
    }
    Ok(())
}

fn fmt_vec(v: &[f32]) -> String {
    let head: Vec<String> = v.iter().take(6).map(|x| format!("{x:.4}")).collect();
    format!(
        "[{}{}] (dim {})",
        head.join(", "),
        if v.len() > 6 { ", …" } else { "" },
        v.len()
    )
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let t: String = s.chars().take(n - 1).collect();
        format!("{t}…")
    }
}
