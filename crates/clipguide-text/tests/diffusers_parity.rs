//! Presets against reference tensors from diffusers' own `encode_prompt` and re-implementations
//! of A1111 / ComfyUI (tools/make_text_fixtures.py, committed in tests/fixtures/text).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use clipguide_text::{
    load_inversion, ChunkConfig, ChunkMode, Conditioner, Conditioning, EncodeOptions, LayerChoice,
    OutputDType, Preset, TextEncoder,
};
use serde::Deserialize;

const TOLERANCE: f32 = 1e-4;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/text")
}

#[derive(Deserialize)]
struct Case {
    name: String,
    preset: String,
    prompt: String,
    negative: Option<String>,
    weighting: String,
    chunking: String,
    clip_skip: Option<usize>,
    negative_clip_skip: String,
    #[serde(default)]
    embeddings: Vec<String>,
    tensors: Vec<String>,
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(fixtures().join("cases.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Writes a loadable text encoder folder from a compact fixture: the token embedding comes as
/// the used rows + their ids and is expanded to the full 49408-row table (other rows zero).
fn materialize(name: &str, into: &Path) -> PathBuf {
    let src = fixtures().join(name);
    let dir = into.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(src.join("config.json"), dir.join("config.json")).unwrap();
    let mut tensors =
        candle_core::safetensors::load(src.join("compact.safetensors"), &Device::Cpu).unwrap();
    let key = "text_model.embeddings.token_embedding";
    let rows = tensors.remove(&format!("{key}.rows")).unwrap();
    let ids = tensors.remove(&format!("{key}.ids")).unwrap();
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    let vocab = cfg["vocab_size"].as_u64().unwrap() as usize;
    let dim = rows.dims2().unwrap().1;
    let full = Tensor::zeros((vocab, dim), DType::F32, &Device::Cpu)
        .unwrap()
        .index_add(
            &ids.to_dtype(DType::U32).unwrap(),
            &rows.to_dtype(DType::F32).unwrap(),
            0,
        )
        .unwrap()
        .to_dtype(DType::F16)
        .unwrap();
    tensors.insert(format!("{key}.weight"), full);
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
    dir
}

struct Models {
    _tmp: tempfile::TempDir,
    sd1: Conditioner,
    sdxl: Conditioner,
}

fn models() -> Models {
    let tmp = tempfile::tempdir().unwrap();
    let sd1 = materialize("sd1_text_encoder", tmp.path());
    let l = materialize("sdxl_text_encoder", tmp.path());
    let g = materialize("sdxl_text_encoder_2", tmp.path());
    Models {
        sd1: Conditioner::load(Preset::Sd1, &[sd1], &Device::Cpu).unwrap(),
        sdxl: Conditioner::load(Preset::Sdxl, &[l, g], &Device::Cpu).unwrap(),
        _tmp: tmp,
    }
}

fn options(case: &Case, preset: Preset) -> EncodeOptions {
    let mut opts = EncodeOptions::diffusers(preset);
    opts.weighting = case.weighting.parse().unwrap();
    opts.chunking = match case.chunking.as_str() {
        "a1111" => ChunkConfig::a1111_default(),
        "truncate" => ChunkMode::Truncate,
        other => panic!("unknown chunking {other}"),
    };
    opts.clip_skip = case.clip_skip;
    opts.negative_ignores_clip_skip = case.negative_clip_skip == "none";
    opts
}

fn encode(models: &Models, case: &Case) -> Conditioning {
    let preset: Preset = case.preset.parse().unwrap();
    let conditioner = match preset {
        Preset::Sd1 => &models.sd1,
        Preset::Sdxl => &models.sdxl,
        Preset::Sd2 => panic!("no sd2 fixture"),
    };
    let inversions: Vec<_> = case
        .embeddings
        .iter()
        .map(|f| load_inversion(&fixtures().join(f), &Device::Cpu).unwrap())
        .collect();
    conditioner
        .encode(
            &case.prompt,
            case.negative.as_deref(),
            &options(case, preset),
            &inversions,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", case.name))
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    a.sub(b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[test]
fn every_case_matches_its_reference() {
    let refs =
        candle_core::safetensors::load(fixtures().join("references.safetensors"), &Device::Cpu)
            .unwrap();
    let models = models();
    let all = cases();
    assert!(all.len() >= 20, "only {} cases in cases.json", all.len());
    let mut failures = Vec::new();
    let mut worst = (0f32, String::new());
    for case in &all {
        let got: HashMap<_, _> = encode(&models, case)
            .named(OutputDType::F32)
            .unwrap()
            .into_iter()
            .collect();
        for name in &case.tensors {
            let want = &refs[&format!("{}.{name}", case.name)];
            let have = &got[name.as_str()];
            if have.dims() != want.dims() {
                failures.push(format!(
                    "{}.{name}: shape {:?}, reference {:?}",
                    case.name,
                    have.dims(),
                    want.dims()
                ));
                continue;
            }
            let diff = max_abs_diff(have, want);
            if diff > worst.0 {
                worst = (diff, format!("{}.{name}", case.name));
            }
            if diff.is_nan() || diff > TOLERANCE {
                failures.push(format!("{}.{name}: max |diff| {diff:e}", case.name));
            }
        }
    }
    eprintln!(
        "{} cases, worst max |diff| {:e} at {}",
        all.len(),
        worst.0,
        worst.1
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The references differ where the options differ, so a wrong layer or mode cannot pass.
#[test]
fn references_distinguish_the_options() {
    let refs =
        candle_core::safetensors::load(fixtures().join("references.safetensors"), &Device::Cpu)
            .unwrap();
    let r = |n: &str| &refs[n];
    let pairs = [
        ("sd1_plain.prompt_embeds", "sd1_clip_skip1.prompt_embeds"),
        (
            "sd1_clip_skip1.prompt_embeds",
            "sd1_clip_skip2.prompt_embeds",
        ),
        (
            "sd1_plain.negative_prompt_embeds",
            "sd1_negative.negative_prompt_embeds",
        ),
        (
            "sdxl_negative.prompt_embeds",
            "sdxl_clip_skip1.prompt_embeds",
        ),
        (
            "sd1_weighted_a1111.prompt_embeds",
            "sd1_weighted_a1111-no-norm.prompt_embeds",
        ),
        (
            "sd1_plain.prompt_embeds",
            "sd1_textual_inversion.prompt_embeds",
        ),
    ];
    for (a, b) in pairs {
        assert!(max_abs_diff(r(a), r(b)) > 1e-2, "{a} vs {b}");
    }
    // SDXL without a negative: zeros (force_zeros_for_empty_prompt); with "": an encoding.
    let zero = r("sdxl_plain.negative_prompt_embeds");
    assert_eq!(max_abs_diff(zero, &zero.zeros_like().unwrap()), 0.0);
    let empty = r("sdxl_empty_negative.negative_prompt_embeds");
    assert!(max_abs_diff(empty, &empty.zeros_like().unwrap()) > 1e-1);
    assert_eq!(r("sdxl_plain.prompt_embeds").dims(), &[1, 77, 32 + 48]);
    assert_eq!(r("sdxl_plain.pooled_prompt_embeds").dims(), &[1, 40]);
    assert_eq!(r("sd1_long_a1111.prompt_embeds").dims(), &[1, 154, 32]);
    assert_eq!(
        r("sdxl_long_a1111.negative_prompt_embeds").dims(),
        &[1, 154, 80]
    );
}

/// diffusers ignores clip_skip for the negative; A1111 applies it to both (the default here).
#[test]
fn negative_clip_skip_is_selectable() {
    let models = models();
    let mut opts = EncodeOptions::diffusers(Preset::Sd1);
    opts.clip_skip = Some(1);
    let quirk = models.sd1.encode("a cat", Some("dog"), &opts, &[]).unwrap();
    opts.negative_ignores_clip_skip = false;
    let same = models.sd1.encode("a cat", Some("dog"), &opts, &[]).unwrap();
    opts.clip_skip = None;
    let plain = models.sd1.encode("a cat", Some("dog"), &opts, &[]).unwrap();
    let sdxl_like = models.sd1.encode("dog", None, &opts, &[]).unwrap();
    assert!(max_abs_diff(&quirk.prompt_embeds, &same.prompt_embeds) < 1e-6);
    assert!(max_abs_diff(&quirk.negative_prompt_embeds, &plain.negative_prompt_embeds) < 1e-6);
    assert!(max_abs_diff(&same.negative_prompt_embeds, &plain.negative_prompt_embeds) > 1e-2);
    // The negative's layer is the prompt's layer: "dog" as a prompt with the same skip.
    assert!(max_abs_diff(&plain.negative_prompt_embeds, &sdxl_like.prompt_embeds) < 1e-5);
}

#[test]
fn layer_conventions_agree() {
    assert_eq!(
        LayerChoice::from_diffusers_clip_skip(Some(1)),
        LayerChoice::from_a1111_clip_skip(2)
    );
    assert_eq!(
        LayerChoice::from_a1111_clip_skip(2),
        LayerChoice::from_comfy_layer(-2).unwrap()
    );
    assert_eq!(
        LayerChoice::from_diffusers_clip_skip(None),
        LayerChoice::Last
    );
    assert_eq!(LayerChoice::from_a1111_clip_skip(1), LayerChoice::Last);
    assert_eq!(LayerChoice::from_comfy_layer(-1), Some(LayerChoice::Last));
    assert_eq!(LayerChoice::from_comfy_layer(0), None);
    assert_eq!(
        LayerChoice::from_comfy_layer(-3),
        Some(LayerChoice::Skip {
            k: 2,
            final_norm: true
        })
    );
}

/// `Skip { k: 0, final_norm: true }` is `Last`, stopping early gives the same hidden state as the
/// full pass, and skipping more layers than exist is an error naming the limit.
#[test]
fn early_stop_and_layer_range() {
    let tmp = tempfile::tempdir().unwrap();
    let enc =
        TextEncoder::load(&materialize("sd1_text_encoder", tmp.path()), &Device::Cpu).unwrap();
    let ids = Tensor::new(&[[49406u32, 320, 1125, 49407, 49407]], &Device::Cpu).unwrap();
    let last = enc.encode_ids(&ids, LayerChoice::Last, true).unwrap();
    let k0 = enc
        .encode_ids(
            &ids,
            LayerChoice::Skip {
                k: 0,
                final_norm: true,
            },
            false,
        )
        .unwrap();
    assert!(max_abs_diff(&last.hidden, &k0.hidden) < 1e-6);
    assert!(k0.pooled.is_none());
    let skip = LayerChoice::Skip {
        k: 1,
        final_norm: false,
    };
    let short = enc.encode_ids(&ids, skip, false).unwrap();
    let full = enc.encode_ids(&ids, skip, true).unwrap();
    assert!(max_abs_diff(&short.hidden, &full.hidden) < 1e-6);
    let reference = enc.tower().forward_ids(&ids, true).unwrap();
    assert!(max_abs_diff(&short.hidden, &reference.hidden_states[2]) < 1e-5);
    assert!(max_abs_diff(full.pooled.as_ref().unwrap(), &reference.pooled) < 1e-5);
    let err = enc
        .encode_ids(
            &ids,
            LayerChoice::Skip {
                k: 4,
                final_norm: true,
            },
            false,
        )
        .unwrap_err();
    assert!(err.to_string().contains("3 layers"), "{err}");
}

/// The pooled state on the shortest prefix holding the EOS equals the 77-position one.
#[test]
fn pooled_on_shortest_prefix_matches_full_length() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = materialize("sdxl_text_encoder_2", tmp.path());
    let enc = TextEncoder::load(&dir, &Device::Cpu)
        .unwrap()
        .with_pad_id(0);
    let mut rows = vec![vec![0u32; 77]; 2];
    for (row, words) in rows
        .iter_mut()
        .zip([&[320u32, 1125][..], &[320, 2368, 539, 320, 2117]])
    {
        row[0] = 49406;
        row[1..=words.len()].copy_from_slice(words);
        row[words.len() + 1] = 49407;
    }
    let ids = Tensor::new(rows, &Device::Cpu).unwrap();
    let full = enc.encode_ids(&ids, LayerChoice::Last, true).unwrap();
    let full = enc.project(full.pooled.as_ref().unwrap()).unwrap();
    let short = enc.pooled_shortest(&ids, true).unwrap();
    assert_eq!(short.dims(), &[2, 40]);
    assert!(max_abs_diff(&full, &short) < 1e-5);
}

#[test]
fn saved_file_has_the_four_tensors_in_the_chosen_dtype() {
    let models = models();
    let cond = models
        .sdxl
        .encode(
            "a cat",
            Some("blurry"),
            &EncodeOptions::diffusers(Preset::Sdxl),
            &[],
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cond.safetensors");
    cond.save(&path, OutputDType::F16).unwrap();
    let back = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    let mut names: Vec<_> = back.keys().cloned().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "negative_pooled_prompt_embeds",
            "negative_prompt_embeds",
            "pooled_prompt_embeds",
            "prompt_embeds"
        ]
    );
    assert!(back.values().all(|t| t.dtype() == DType::F16));
    let pe = back["prompt_embeds"].to_dtype(DType::F32).unwrap();
    assert_eq!(pe.dims(), &[1, 77, 80]);
    assert!(max_abs_diff(&pe, &cond.prompt_embeds) < 1e-2);
    // Only the final file is left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    // A folder that does not exist is an error naming the path, not a panic.
    let err = cond
        .save(
            &dir.path().join("missing/cond.safetensors"),
            OutputDType::F32,
        )
        .unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn sdxl_needs_a_projection_and_two_encoders() {
    let tmp = tempfile::tempdir().unwrap();
    let l = materialize("sdxl_text_encoder", tmp.path());
    let err = Conditioner::load(Preset::Sdxl, &[l.clone(), l.clone()], &Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("text_projection"), "{err}");
    let err = Conditioner::load(Preset::Sdxl, &[l], &Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("needs 2"), "{err}");
    let err = Conditioner::load(Preset::Sd1, &[tmp.path().join("nope")], &Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("text_encoder"), "{err}");
}
