//! The model and its initial weights: the shipped model's shape, the parameters in name order,
//! and a seeded init (0.02 everywhere, or CLIP's width- and depth-scaled stds) so that the same
//! seed gives the same weights.

use super::error::Result;
use candle_core::{Tensor, Var};
use candle_nn::VarMap;
use clipguide_clip::{Activation, ClipConfig, TextConfig, VisionConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The shipped model's shape: small enough to train on 2 cores in a session.
pub fn small_clip_config(image_size: usize, patch_size: usize) -> ClipConfig {
    ClipConfig {
        text: TextConfig {
            hidden_size: 128,
            intermediate_size: 512,
            num_hidden_layers: 4,
            num_attention_heads: 4,
            hidden_act: Activation::QuickGelu,
            ..TextConfig::default()
        },
        vision: VisionConfig {
            hidden_size: 128,
            intermediate_size: 512,
            num_hidden_layers: 4,
            num_attention_heads: 4,
            image_size,
            patch_size,
            hidden_act: Activation::QuickGelu,
            ..VisionConfig::default()
        },
        projection_dim: 128,
        logit_scale_init_value: 2.6592,
        text_projection_bias: false,
    }
}

/// The model's parameters sorted by checkpoint name (a VarMap iterates in hash order).
pub(super) fn sorted_vars(varmap: &VarMap) -> Vec<(String, Var)> {
    let data = varmap.data().lock().expect("varmap lock");
    let mut v: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Deterministic init: normal(0, 0.02) for matrices and embeddings, ones for norm weights
/// (names ending in layer_norm*/…norm*.weight), zeros for biases, CLIP's init for the temperature.
pub(super) fn reinit_seeded(
    varmap: &VarMap,
    seed: u64,
    vision_pos_std: f32,
    vision_patch_std: f32,
    clip_init: Option<&ClipConfig>,
) -> Result<()> {
    let data = varmap.data().lock().expect("varmap lock");
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for name in names {
        let var = &data[name];
        let shape = var.shape().clone();
        let n = shape.elem_count();
        let is_norm = name.contains("norm") || name.contains("layrnorm");
        let vals: Vec<f32> = if name == "logit_scale" {
            vec![2.6592]
        } else if name.ends_with(".bias") {
            vec![0.0; n]
        } else if is_norm && name.ends_with(".weight") {
            vec![1.0; n]
        } else {
            let std = match name.as_str() {
                "vision_model.embeddings.position_embedding.weight" => vision_pos_std,
                "vision_model.embeddings.patch_embedding.weight" => vision_patch_std,
                _ => clip_init.map_or(0.02, |cfg| clip_init_std(cfg, name)),
            };
            (0..n)
                .map(|_| {
                    let u1: f32 = rng.random_range(f32::EPSILON..1.0);
                    let u2: f32 = rng.random();
                    std * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
                })
                .collect()
        };
        var.set(&Tensor::from_vec(vals, shape, var.device())?)?;
    }
    Ok(())
}

/// The init std transformers' `CLIPPreTrainedModel._init_weights` gives the matrix `name`
/// (factor 1); 0.02 for the embedding tables and anything it does not scale.
fn clip_init_std(cfg: &ClipConfig, name: &str) -> f32 {
    let (d, layers) = if name.starts_with("vision_model.") || name == "visual_projection.weight" {
        (cfg.vision.hidden_size, cfg.vision.num_hidden_layers)
    } else {
        (cfg.text.hidden_size, cfg.text.num_hidden_layers)
    };
    let (d, layers) = (d as f32, layers as f32);
    let in_proj = d.powf(-0.5) * (2.0 * layers).powf(-0.5);
    if name.ends_with("_proj.weight") && name.contains(".self_attn.") {
        if name.ends_with("out_proj.weight") {
            d.powf(-0.5)
        } else {
            in_proj
        }
    } else if name.ends_with("mlp.fc1.weight") {
        (2.0 * d).powf(-0.5)
    } else if name.ends_with("mlp.fc2.weight") {
        in_proj
    } else if name == "vision_model.embeddings.class_embedding"
        || name == "visual_projection.weight"
        || name == "text_projection.weight"
    {
        d.powf(-0.5)
    } else {
        0.02
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainer::{DataSource, TrainConfig, Trainer};
    use candle_core::Device;

    /// The vision position and patch embeddings start at the configured spreads, the rest at
    /// CLIP's 0.02.
    #[test]
    fn embedding_init_stds_follow_the_config() {
        let cfg = TrainConfig {
            batch: 4,
            image_size: 32,
            vision_pos_init_std: 1.0,
            vision_patch_init_std: 0.15,
            ..TrainConfig::default()
        };
        let t = Trainer::new(cfg, DataSource::shapes(1, 32).unwrap(), &Device::Cpu).unwrap();
        let std_of = |name: &str| -> f32 {
            let vars = sorted_vars(&t.varmap);
            let (_, v) = vars.iter().find(|(n, _)| n == name).expect(name);
            let x: Vec<f32> = v.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            let mean = x.iter().sum::<f32>() / x.len() as f32;
            (x.iter().map(|a| (a - mean).powi(2)).sum::<f32>() / x.len() as f32).sqrt()
        };
        for (name, want) in [
            ("vision_model.embeddings.position_embedding.weight", 1.0),
            ("vision_model.embeddings.patch_embedding.weight", 0.15),
            ("vision_model.encoder.layers.0.mlp.fc1.weight", 0.02),
        ] {
            let got = std_of(name);
            assert!(
                (got / want - 1.0).abs() < 0.15,
                "{name}: std {got}, want {want}"
            );
        }
    }

    /// `clip_init` gives transformers' CLIP stds (written out here for width 128, 4 layers),
    /// keeps the two configured vision embedding stds, and leaves norms at 1 and biases at 0.
    #[test]
    fn clip_init_follows_transformers_stds() {
        let cfg = TrainConfig {
            batch: 4,
            image_size: 32,
            vision_pos_init_std: 1.0,
            vision_patch_init_std: 0.15,
            clip_init: true,
            ..TrainConfig::default()
        };
        let t = Trainer::new(cfg, DataSource::shapes(1, 32).unwrap(), &Device::Cpu).unwrap();
        let vars = sorted_vars(&t.varmap);
        let values = |name: &str| -> Vec<f32> {
            let (_, v) = vars.iter().find(|(n, _)| n == name).expect(name);
            v.as_tensor().flatten_all().unwrap().to_vec1().unwrap()
        };
        let std_of = |name: &str| -> f32 {
            let x = values(name);
            (x.iter().map(|a| a * a).sum::<f32>() / x.len() as f32).sqrt()
        };
        // D = 128, L = 4: in_proj = 128^-0.5 · 8^-0.5 = 0.03125, out_proj = 128^-0.5 = 0.0884,
        // fc1 = 256^-0.5 = 0.0625.
        for (name, want) in [
            (
                "vision_model.encoder.layers.0.self_attn.q_proj.weight",
                0.03125,
            ),
            (
                "text_model.encoder.layers.3.self_attn.v_proj.weight",
                0.03125,
            ),
            (
                "vision_model.encoder.layers.1.self_attn.out_proj.weight",
                0.0884,
            ),
            ("vision_model.encoder.layers.2.mlp.fc1.weight", 0.0625),
            ("text_model.encoder.layers.0.mlp.fc2.weight", 0.03125),
            ("visual_projection.weight", 0.0884),
            ("text_projection.weight", 0.0884),
            ("vision_model.embeddings.class_embedding", 0.0884),
            ("text_model.embeddings.token_embedding.weight", 0.02),
            ("text_model.embeddings.position_embedding.weight", 0.02),
            ("vision_model.embeddings.position_embedding.weight", 1.0),
            ("vision_model.embeddings.patch_embedding.weight", 0.15),
        ] {
            let got = std_of(name);
            // The class embedding has only 128 draws.
            assert!(
                (got / want - 1.0).abs() < 0.2,
                "{name}: std {got}, want {want}"
            );
        }
        assert!(values("vision_model.encoder.layers.0.layer_norm1.weight")
            .iter()
            .all(|v| *v == 1.0));
        assert!(values("vision_model.encoder.layers.0.mlp.fc1.bias")
            .iter()
            .all(|v| *v == 0.0));
    }
}
