//! The built-in CLIP tokenizer against transformers' CLIPTokenizer on 1,000+ varied strings
//! (reference ids in tests/fixtures/tokenizer/cases.json, made by tools/make_fixtures.py).

mod common;
use clipguide_clip::{ClipTokenizer, Padding};
use common::fixture;

#[derive(serde::Deserialize)]
struct Case {
    text: String,
    /// transformers 4's slow tokenizer (with ftfy).
    ids: Vec<u32>,
    /// transformers 5's CLIPTokenizer (tokenizers-backed), only where it differs from `ids`.
    fast_ids: Option<Vec<u32>>,
}

#[test]
fn ids_match_transformers_clip_tokenizer() {
    let text = std::fs::read_to_string(fixture("tokenizer/cases.json")).unwrap();
    let cases: Vec<Case> = serde_json::from_str(&text).unwrap();
    assert!(cases.len() >= 1000, "only {} cases", cases.len());
    let tok = ClipTokenizer::builtin();
    let mut bad = vec![];
    for c in &cases {
        let got = tok.encode(&c.text).unwrap();
        let want = c.fast_ids.as_ref().unwrap_or(&c.ids);
        if &got != want {
            bad.push(format!(
                "{:?}\n   got  {:?}\n   want {:?}",
                c.text, got, want
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {} strings differ, first ones:\n{}",
        bad.len(),
        cases.len(),
        bad.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn framing_truncation_and_padding() {
    let tok = ClipTokenizer::builtin();
    assert_eq!(tok.vocab_size(), 49408);
    assert_eq!(
        (tok.bos_id(), tok.eos_id(), tok.pad_id()),
        (49406, 49407, 49407)
    );
    let long = "word ".repeat(200);
    let ids = tok.encode(&long).unwrap();
    assert_eq!(ids.len(), 77);
    assert_eq!(ids[0], 49406);
    assert_eq!(ids[76], 49407);
    let b = tok
        .encode_batch(
            &["a cat", &long],
            Padding::MaxLength,
            &candle_core::Device::Cpu,
        )
        .unwrap();
    let ids = b.ids.to_vec2::<u32>().unwrap();
    let mask = b.attention_mask.to_vec2::<u32>().unwrap();
    assert_eq!(ids[0].len(), 77);
    assert_eq!(&ids[0][..4], &[49406, 320, 2368, 49407]);
    assert!(ids[0][4..].iter().all(|&t| t == 49407));
    assert_eq!(mask[0].iter().sum::<u32>(), 4);
    assert_eq!(mask[1].iter().sum::<u32>(), 77);
    let b = tok
        .encode_batch(
            &["a cat", "a dog on a sofa"],
            Padding::Longest,
            &candle_core::Device::Cpu,
        )
        .unwrap();
    assert_eq!(b.ids.dims(), &[2, 7]);
}

#[test]
fn pad_id_comes_from_the_checkpoint() {
    // OpenCLIP exports pad with "!" (id 0), declared in special_tokens_map.json.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tokenizer.json"),
        clipguide_clip::tokenizer::BUILTIN_TOKENIZER_JSON,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("special_tokens_map.json"),
        r#"{"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "!"}"#,
    )
    .unwrap();
    let tok = ClipTokenizer::for_checkpoint(dir.path()).unwrap();
    assert_eq!(tok.pad_id(), 0);
    let missing = ClipTokenizer::from_file(&dir.path().join("nope.json")).unwrap_err();
    assert!(missing.to_string().contains("nope.json"));
    std::fs::write(dir.path().join("bad.json"), "{not json").unwrap();
    let bad = ClipTokenizer::from_file(&dir.path().join("bad.json")).unwrap_err();
    assert!(bad.to_string().contains("bad.json"), "{bad}");
}
