//! The published config.json files of real CLIP checkpoints parse to the right shapes
//! (copies in tests/fixtures/configs, expected values in expected.json).

mod common;
use clipguide_clip::{Activation, ClipConfig};
use common::fixture;

#[test]
fn published_configs_parse_to_the_right_shapes() {
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("configs/expected.json")).unwrap())
            .unwrap();
    let expected = expected.as_object().unwrap();
    assert!(
        expected.len() >= 4,
        "expected.json lists {} configs",
        expected.len()
    );
    for (file, want) in expected {
        let path = fixture(&format!("configs/{file}/config.json"));
        let cfg = ClipConfig::from_file(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        let get = |k: &str| -> u64 {
            let mut v = want;
            for part in k.split('.') {
                v = v
                    .get(part)
                    .unwrap_or_else(|| panic!("{file}: expected.json lacks {k}"));
            }
            v.as_u64().unwrap()
        };
        let act = |k: &str| -> Activation {
            let mut v = want;
            for part in k.split('.') {
                v = &v[part];
            }
            Activation::parse("test", v.as_str().unwrap()).unwrap()
        };
        let t = &cfg.text;
        let v = &cfg.vision;
        let checks: [(&str, u64); 16] = [
            ("text.hidden_size", t.hidden_size as u64),
            ("text.num_hidden_layers", t.num_hidden_layers as u64),
            ("text.num_attention_heads", t.num_attention_heads as u64),
            ("text.intermediate_size", t.intermediate_size as u64),
            ("text.vocab_size", t.vocab_size as u64),
            (
                "text.max_position_embeddings",
                t.max_position_embeddings as u64,
            ),
            ("text.eos_token_id", t.eos_token_id as u64),
            ("text.pad_token_id", t.pad_token_id as u64),
            ("vision.hidden_size", v.hidden_size as u64),
            ("vision.num_hidden_layers", v.num_hidden_layers as u64),
            ("vision.num_attention_heads", v.num_attention_heads as u64),
            ("vision.intermediate_size", v.intermediate_size as u64),
            ("vision.patch_size", v.patch_size as u64),
            ("vision.image_size", v.image_size as u64),
            ("projection_dim", cfg.projection_dim as u64),
            ("vision.num_hidden_layers", v.num_hidden_layers as u64),
        ];
        for (k, got) in checks {
            assert_eq!(got, get(k), "{file}: {k}");
        }
        assert_eq!(
            t.hidden_act,
            act("text.hidden_act"),
            "{file}: text hidden_act"
        );
        assert_eq!(
            v.hidden_act,
            act("vision.hidden_act"),
            "{file}: vision hidden_act"
        );
    }
}
