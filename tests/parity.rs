//! The Rust towers against transformers' CLIPModel on random-weight fixtures
//! (made by tools/make_fixtures.py): hidden states, pooled outputs, embeddings, logits and the
//! gradient of the cosine with respect to the pixels.

mod common;
use candle_core::{DType, Device, Tensor, Var, D};
use clipguide_clip::{cosine_matrix, ClipModel};
use common::*;

const TOL: f32 = 1e-4;
const GRAD_TOL: f32 = 1e-3;

fn check_model(name: &str) {
    let dir = fixture(name);
    let model = ClipModel::load(&dir, &Device::Cpu).unwrap();
    let r = load_reference(&format!("{name}/reference.safetensors"));
    let ids = r["input_ids"].to_dtype(DType::U32).unwrap();

    let text = model.text_forward(&ids, true).unwrap();
    let want_hidden = &r["text_hidden_states"];
    assert_eq!(text.hidden_states.len(), want_hidden.dim(0).unwrap());
    for (i, h) in text.hidden_states.iter().enumerate() {
        assert_close(
            &format!("{name} text hidden state {i}"),
            h,
            &want_hidden.get(i).unwrap(),
            TOL,
        );
    }
    assert_close(
        &format!("{name} text last_hidden_state"),
        &text.last_hidden_state,
        &r["text_last_hidden_state"],
        TOL,
    );
    assert_close(
        &format!("{name} text pooled"),
        &text.pooled,
        &r["text_pooled"],
        TOL,
    );
    let text_embeds = model.text_features(&ids).unwrap();
    assert_close(
        &format!("{name} text_embeds"),
        &text_embeds,
        &r["text_embeds"],
        TOL,
    );

    let px = &r["pixel_values"];
    let vision = model.vision_forward(px, true).unwrap();
    let want_vh = &r["vision_hidden_states"];
    assert_eq!(vision.hidden_states.len(), want_vh.dim(0).unwrap());
    for (i, h) in vision.hidden_states.iter().enumerate() {
        assert_close(
            &format!("{name} vision hidden state {i}"),
            h,
            &want_vh.get(i).unwrap(),
            TOL,
        );
    }
    assert_close(
        &format!("{name} vision last_hidden_state"),
        &vision.last_hidden_state,
        &r["vision_last_hidden_state"],
        TOL,
    );
    assert_close(
        &format!("{name} vision pooled"),
        &vision.pooled,
        &r["vision_pooled"],
        TOL,
    );
    let image_embeds = model.image_features(px).unwrap();
    assert_close(
        &format!("{name} image_embeds"),
        &image_embeds,
        &r["image_embeds"],
        TOL,
    );

    // The half-precision forwards (`Precision::Bf16`, `Precision::F16`) against transformers'
    // f32 embeddings: each image's embedding within a cosine of 0.999 where the CPU runs the
    // kernel (PyTorch's bf16 autocast gives 0.99999 on ViT-B/32 shapes, see BENCHMARKS.md), the
    // f32 bits elsewhere.
    for precision in [
        clipguide_clip::Precision::Bf16,
        clipguide_clip::Precision::F16,
    ] {
        let half = model.image_features_with(px, precision).unwrap();
        if model.embeds_at(precision) {
            let cos = cosine_matrix(&half, &r["image_embeds"])
                .unwrap()
                .to_vec2::<f32>()
                .unwrap();
            for (i, row) in cos.iter().enumerate() {
                assert!(
                    row[i] > 0.999,
                    "{name} {precision:?} image {i}: cosine {}",
                    row[i]
                );
            }
            assert!(max_abs(&(&half - &image_embeds).unwrap()) > 0.0);
        } else {
            assert_eq!(max_abs(&(&half - &image_embeds).unwrap()), 0.0);
        }
    }

    let logits = model.logits(&image_embeds, &text_embeds).unwrap();
    assert_close(
        &format!("{name} logits_per_image"),
        &logits,
        &r["logits_per_image"],
        TOL,
    );
    let scale = r["logit_scale"]
        .to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap();
    let scale = scale.to_vec1::<f32>().unwrap()[0];
    assert!((model.logit_scale().unwrap() - scale).abs() <= 1e-5 * scale);

    // d/dpixels of sum_i cos(image_embeds[i], text_embeds[0]), text side detached.
    let var = Var::from_tensor(px).unwrap();
    let emb = model.image_features(var.as_tensor()).unwrap();
    let target = text_embeds.narrow(0, 0, 1).unwrap().detach();
    let loss = cosine_matrix(&emb, &target).unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    let g = grads
        .get(var.as_tensor())
        .unwrap_or_else(|| panic!("{name}: no gradient reached the pixels"));
    assert!(max_abs(g) > 0.0, "{name}: pixel gradient is all zeros");
    assert_close(
        &format!("{name} grad_pixels"),
        g,
        &r["grad_pixels"],
        GRAD_TOL,
    );
}

#[test]
fn quick_gelu_model_matches_transformers() {
    check_model("tiny-clip-quickgelu");
}

#[test]
fn gelu_model_matches_transformers() {
    check_model("tiny-clip-gelu");
}

#[test]
fn pooling_uses_first_eos_not_argmax() {
    // The gelu fixture has eos_token_id 500 and a row where id 999 precedes the EOS.
    let dir = fixture("tiny-clip-gelu");
    let model = ClipModel::load(&dir, &Device::Cpu).unwrap();
    let r = load_reference("tiny-clip-gelu/reference.safetensors");
    let ids = r["input_ids"].to_dtype(DType::U32).unwrap();
    let rows = ids.to_vec2::<u32>().unwrap();
    let pos = model.text.as_clip().unwrap().eos_positions(&ids).unwrap();
    let mut saw_trap = false;
    for (row, p) in rows.iter().zip(&pos) {
        assert_eq!(row[*p], 500, "pooled at a non-EOS token");
        let argmax = row
            .iter()
            .enumerate()
            .max_by_key(|(i, v)| (**v, std::cmp::Reverse(*i)))
            .unwrap()
            .0;
        saw_trap |= argmax != *p;
    }
    assert!(
        saw_trap,
        "fixture lacks a row where argmax pooling would differ"
    );
}

#[test]
fn f16_weights_are_computed_in_f32() {
    let dir = fixture("tiny-clip-quickgelu");
    let st = candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
    assert!(
        st.values().any(|t| t.dtype() == DType::F16),
        "fixture was meant to be stored in f16"
    );
    let model = ClipModel::load(&dir, &Device::Cpu).unwrap();
    let px = Tensor::zeros((1, 3, 32, 32), DType::F32, &Device::Cpu).unwrap();
    let e = model.image_features(&px).unwrap();
    assert_eq!(e.dtype(), DType::F32);
    assert_eq!(e.dims(), &[1, 24]);
    let n = e
        .sqr()
        .unwrap()
        .sum(D::Minus1)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()[0];
    assert!(n.is_finite() && n > 0.0);
}

/// Training differentiates the same model code through `Var`s (`clipguide train`); every weight's
/// gradient must be transformers' — a missing or wrong one trains silently worse (a patch
/// projection that never trained went unnoticed for eight runs).
#[test]
fn weight_gradients_match_transformers() {
    use candle_nn::{VarBuilder, VarMap};
    use clipguide_clip::{l2_normalize, ClipConfig};
    let dir = fixture("tiny-clip-quickgelu");
    let r = load_reference("tiny-clip-quickgelu/param_grads.safetensors");
    let weights =
        candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
    let cfg = ClipConfig::from_file(&dir.join("config.json")).unwrap();
    let varmap = VarMap::new();
    let model = ClipModel::new(
        &cfg,
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )
    .unwrap();
    let vars = varmap.data().lock().unwrap().clone();
    assert_eq!(vars.len(), weights.len(), "every stored weight is a Var");
    for (name, var) in &vars {
        var.set(&weights[name].to_dtype(DType::F32).unwrap())
            .unwrap();
    }

    let ids = r["input_ids"].to_dtype(DType::U32).unwrap();
    let ie = l2_normalize(&model.image_features(&r["pixel_values"]).unwrap()).unwrap();
    let te = l2_normalize(&model.text_features(&ids).unwrap()).unwrap();
    let sims = ie.matmul(&te.t().unwrap()).unwrap();
    let scale = model.log_logit_scale().exp().unwrap();
    let loss = ((&ie * &r["w_image"]).unwrap().sum_all().unwrap()
        + (&te * &r["w_text"]).unwrap().sum_all().unwrap()
        + (sims.broadcast_mul(&scale).unwrap() * &r["w_logits"])
            .unwrap()
            .sum_all()
            .unwrap())
    .unwrap();
    assert_close("loss", &loss, &r["loss"], 1e-5);
    let grads = loss.backward().unwrap();

    let token = "text_model.embeddings.token_embedding.weight";
    let largest = r
        .iter()
        .filter(|(k, _)| k.starts_with("grad."))
        .map(|(_, g)| max_abs(g))
        .fold(0f32, f32::max);
    let mut checked = 0;
    for (name, var) in &vars {
        let got = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        if name == token {
            // Only the rows of the ids used are stored; the rest must be zero.
            let rows = r[&format!("grad_rows_ids.{token}")]
                .to_dtype(DType::U32)
                .unwrap();
            let want = &r[&format!("grad_rows.{token}")];
            assert_close(name, &got.index_select(&rows, 0).unwrap(), want, GRAD_TOL);
            let total = got
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            let kept = want
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(
                (total - kept).abs() <= 1e-4 * kept,
                "{name}: gradient outside the ids used"
            );
        } else {
            let want = &r[&format!("grad.{name}")];
            if max_abs(want) < 1e-5 * largest {
                // The key bias cannot change a softmax over keys: its true gradient is 0, and
                // both sides hold rounding noise.
                assert!(
                    max_abs(got) < 1e-5 * largest,
                    "{name}: gradient {} where transformers has ~0",
                    max_abs(got)
                );
            } else {
                assert_close(name, got, want, GRAD_TOL);
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 78, "every weight of the fixture is checked");
}
