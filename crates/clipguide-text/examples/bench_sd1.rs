//! Prompts per second for the `sd1` preset on a ViT-L/14-shaped text tower with random weights
//! (hidden 768, 12 layers, 12 heads), and the pooled path on the shortest length holding the EOS
//! against the full 77 positions.
//!
//! `cargo run -p clipguide-text --example bench_sd1 [-- ROUNDS]` (RAYON_NUM_THREADS sets threads).

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use clipguide_clip::{ClipTokenizer, TextConfig};
use clipguide_text::{
    Conditioner, EncodeOptions, LayerChoice, Preset, TextEncoder, TextEncoderConfig,
};

const PROMPTS: [&str; 8] = [
    "a photo of a cat",
    "an astronaut riding a horse on mars, highly detailed",
    "portrait of an old fisherman, dramatic lighting, oil painting",
    "a red car",
    "a cozy cabin in the snowy mountains at night, warm light in the windows, stars",
    "watercolor of a fox",
    "a futuristic city skyline at sunset, flying cars, neon signs, cinematic, 8k",
    "a bowl of ramen",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // SAFETY: first thing in main, before any thread starts.
    unsafe { clipguide_clip::tune_process() };
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(3);
    let device = Device::Cpu;
    let cfg = TextEncoderConfig {
        text: TextConfig {
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            ..TextConfig::default()
        },
        projection_dim: 768,
    };
    // Random weights: speed does not depend on their values.
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
    let encoder = TextEncoder::new(&cfg, vb, ClipTokenizer::builtin())?;
    let conditioner = Conditioner::new(Preset::Sd1, vec![encoder])?;
    let opts = EncodeOptions::diffusers(Preset::Sd1);

    // Warm-up, then full sd1 conditioning: prompt + empty negative, [1, 77, 768] each.
    conditioner.encode(PROMPTS[0], None, &opts, &[])?;
    let start = Instant::now();
    for _ in 0..rounds {
        for p in PROMPTS {
            conditioner.encode(p, None, &opts, &[])?;
        }
    }
    let n = (rounds * PROMPTS.len()) as f64;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "sd1 conditioning (prompt + negative, 77 tokens each): {:.2} prompts/s ({:.1} ms/prompt)",
        n / secs,
        1e3 * secs / n
    );

    // Pooled states of the batch: all 77 positions vs the shortest prefix holding every EOS.
    let encoder = &conditioner.encoders()[0];
    let tok = encoder.tokenizer();
    let batch = tok.encode_batch(&PROMPTS, clipguide_clip::Padding::MaxLength, &device)?;
    let longest = batch.rows.iter().map(Vec::len).max().unwrap_or(2);
    let time = |f: &dyn Fn() -> Result<Tensor, Box<dyn std::error::Error>>| {
        f()?; // warm-up
        let start = Instant::now();
        let mut out = None;
        for _ in 0..rounds {
            out = Some(f()?);
        }
        Ok::<_, Box<dyn std::error::Error>>((start.elapsed().as_secs_f64() / rounds as f64, out))
    };
    let (t77, full) = time(&|| {
        let out = encoder.encode_ids(&batch.ids, LayerChoice::Last, true)?;
        Ok(out.pooled.ok_or("pooled state missing")?)
    })?;
    let (tshort, short) = time(&|| Ok(encoder.pooled_shortest(&batch.ids, false)?))?;
    let diff = match (full, short) {
        (Some(a), Some(b)) => a
            .sub(&b)?
            .abs()?
            .flatten_all()?
            .max(0)?
            .to_scalar::<f32>()?,
        _ => f32::NAN,
    };
    let b = PROMPTS.len() as f64;
    println!(
        "pooled, batch of {}: 77 positions {:.1} prompts/s, shortest ({longest} positions) {:.1} prompts/s, {:.1}x faster, max |diff| {diff:.1e}",
        PROMPTS.len(),
        b / t77,
        b / tshort,
        t77 / tshort
    );
    Ok(())
}
