//! `clipguide encode`: prompt → `cond.safetensors` with the four tensors diffusers' pipelines take.
//! Argument parsing and printing only; the work is `clipguide_text::Conditioner`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use candle_core::Device;
use clipguide_clip::hub;
use clipguide_text::{
    load_inversion, parse_prompt, ChunkConfig, ChunkMode, Conditioner, ConditioningError,
    EncodeOptions, OutputDType, ParseMode, Preset, Weighting,
};
use serde_json::json;

/// Options of `clipguide encode`. Defaults reproduce diffusers' `encode_prompt` exactly.
#[derive(clap::Args, Debug, Clone)]
pub struct EncodeArgs {
    /// sd1 (CLIP-L last layer, [1,77,768]), sd2 (OpenCLIP-H penultimate + LN, [1,77,1024]) or
    /// sdxl (CLIP-L ⊕ bigG penultimate, [1,77,2048] + pooled [1,1280]).
    #[arg(long, value_parser = ["sd1", "sd2", "sdxl"])]
    pub preset: String,
    /// sd1/sd2: the global `--model` (a text encoder folder, a diffusers pipeline folder with
    /// text_encoder/, or a hub id). Filled in by the caller from the top-level flag, not parsed
    /// here, because `--model` is already a global option of the CLI.
    #[arg(skip)]
    pub model: Option<String>,
    /// sdxl: CLIP-L text encoder folder (or a pipeline folder: its text_encoder/ is used).
    #[arg(long = "model-l")]
    pub model_l: Option<String>,
    /// sdxl: OpenCLIP bigG text encoder with projection (or a pipeline folder: text_encoder_2/).
    #[arg(long = "model-g")]
    pub model_g: Option<String>,
    #[arg(long)]
    pub prompt: String,
    /// Negative prompt. Without it, sdxl writes zeros (diffusers' force_zeros_for_empty_prompt)
    /// and sd1/sd2 encode "".
    #[arg(long)]
    pub negative: Option<String>,
    /// diffusers convention: layers skipped on top of the preset's layer. 1 = A1111 "Clip skip 2"
    /// = ComfyUI CLIPSetLastLayer -2 for sd1 (hidden_states[-2] + final LN); for sdxl, 1 reads
    /// hidden_states[-3] as diffusers does.
    #[arg(long)]
    pub clip_skip: Option<usize>,
    /// Whether --clip-skip also applies to the negative prompt: `ignore` as diffusers'
    /// encode_prompt does, `same` as A1111 and ComfyUI do.
    #[arg(long, default_value = "ignore", value_parser = ["ignore", "same"])]
    pub negative_clip_skip: String,
    /// Encode "" instead of writing zeros when sdxl gets no --negative.
    #[arg(long)]
    pub no_zero_negative: bool,
    /// Prompt syntax and weight maths: none (plain text, diffusers), a1111 (multiply, restore the
    /// mean), a1111-no-norm (multiply), comfy (e + (z − e)·w against the empty prompt).
    #[arg(long, default_value = "none", value_parser = ["none", "a1111", "a1111-no-norm", "comfy"])]
    pub weighting: String,
    /// Read a malformed prompt as the UI itself does (unclosed brackets closed, a `:x` that is
    /// not a number kept as text, a stray `)` kept) instead of refusing it; a note on stderr
    /// says what was read differently. Well-formed prompts encode the same either way.
    #[arg(long)]
    pub lenient_syntax: bool,
    /// truncate: one 77-token chunk (diffusers); a1111: 75-token chunks, BREAK, comma backtrack,
    /// concatenated along the token axis.
    #[arg(long, default_value = "truncate", value_parser = ["a1111", "truncate"])]
    pub chunking: String,
    /// Textual-inversion file (A1111, kohya, diffusers or SDXL safetensors); its file stem is the
    /// trigger word. Repeatable.
    #[arg(long = "embedding")]
    pub embeddings: Vec<PathBuf>,
    #[arg(long, default_value = "f32", value_parser = ["f32", "f16"])]
    pub dtype: String,
    /// Output safetensors file (written atomically).
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
}

/// One folder per text encoder of the preset, resolved from local paths or hub ids.
fn encoder_dirs(args: &EncodeArgs, preset: Preset, progress: bool) -> Result<Vec<PathBuf>> {
    let specs: Vec<String> = match preset {
        Preset::Sd1 | Preset::Sd2 => {
            if args.model_l.is_some() || args.model_g.is_some() {
                bail!("--model-l/--model-g are for --preset sdxl; use --model for {}", preset.name());
            }
            vec![args.model.clone().with_context(|| {
                format!("--preset {} needs --model (a text encoder folder, a diffusers pipeline folder or a hub id)", preset.name())
            })?]
        }
        Preset::Sdxl => match (&args.model_l, &args.model_g, &args.model) {
            (Some(l), Some(g), _) => vec![l.clone(), g.clone()],
            // One SDXL pipeline folder holds both text_encoder/ and text_encoder_2/.
            (None, None, Some(m)) => vec![m.clone(), m.clone()],
            _ => bail!("--preset sdxl needs --model-l (CLIP-L) and --model-g (bigG with projection), or --model with a diffusers SDXL pipeline folder"),
        },
    };
    specs
        .iter()
        .map(|s| hub::resolve(s, progress).with_context(|| format!("resolving {s}")))
        .collect()
}

pub fn run(args: EncodeArgs, json: bool) -> Result<()> {
    let preset: Preset = args.preset.parse()?;
    let weighting: Weighting = args.weighting.parse()?;
    let dtype: OutputDType = args.dtype.parse()?;
    let chunking = match args.chunking.as_str() {
        "a1111" => ChunkConfig::a1111_default(),
        _ => ChunkMode::Truncate,
    };
    let device = Device::Cpu;
    let dirs = encoder_dirs(&args, preset, !json)?;
    let conditioner = Conditioner::load(preset, &dirs, &device)?;
    let inversions = args
        .embeddings
        .iter()
        .map(|p| load_inversion(p, &device))
        .collect::<Result<Vec<_>, _>>()?;
    let mut opts = EncodeOptions::diffusers(preset);
    opts.weighting = weighting;
    opts.chunking = chunking;
    opts.clip_skip = args.clip_skip;
    opts.negative_ignores_clip_skip = args.negative_clip_skip == "ignore";
    opts.strict_syntax = !args.lenient_syntax;
    if args.lenient_syntax {
        let texts = [Some(args.prompt.as_str()), args.negative.as_deref()];
        for (which, text) in ["prompt", "negative prompt"].iter().zip(texts) {
            let strict = parse_prompt(text.unwrap_or(""), weighting.syntax(), ParseMode::Strict);
            if let Err(e) = strict {
                eprintln!("note: {which}: {e}; read as {} reads it", args.weighting);
            }
        }
    }
    if args.no_zero_negative {
        opts.zero_missing_negative = false;
    }
    let cond = conditioner
        .encode(&args.prompt, args.negative.as_deref(), &opts, &inversions)
        .map_err(|e| match e {
            ConditioningError::Parse { .. } => anyhow::anyhow!(
                "{e}\n  (or pass --lenient-syntax to read it as {} does)",
                args.weighting
            ),
            other => other.into(),
        })?;
    cond.save(&args.output, dtype)?;

    let shapes: Vec<(&str, Vec<usize>)> = cond
        .named(OutputDType::F32)?
        .into_iter()
        .map(|(name, t)| (name, t.dims().to_vec()))
        .collect();
    if json {
        let tensors: serde_json::Map<String, serde_json::Value> = shapes
            .iter()
            .map(|(n, s)| (n.to_string(), json!(s)))
            .collect();
        let summary = json!({
            "output": args.output,
            "preset": preset.name(),
            "dtype": args.dtype,
            "weighting": args.weighting,
            "chunking": args.chunking,
            "clip_skip": args.clip_skip,
            "negative_zeroed": args.negative.is_none() && opts.zero_missing_negative,
            "embeddings": inversions.iter().map(|i| i.name().to_string()).collect::<Vec<_>>(),
            "tensors": tensors,
        });
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        for (name, shape) in &shapes {
            println!("{name:<31} {shape:?}");
        }
        println!("wrote {} ({})", args.output.display(), args.dtype);
    }
    Ok(())
}
