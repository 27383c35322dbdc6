//! `ClipTokenizer::from_sentencepiece_dir` against rinna's `japanese_clip.tokenize` (lower-case,
//! sentencepiece `encode`, truncate to 76, pad with [PAD], prepend [CLS]) on the committed cases
//! of tests/fixtures/rinna/tokenizer_cases.json, made with Python sentencepiece on the
//! spiece.model of tests/fixtures/rinna/tiny-clip.

mod common;
use candle_core::Device;
use clipguide_clip::tokenizer::Framing;
use clipguide_clip::{ClipError, ClipTokenizer, Padding};
use common::fixture;

const REGENERATE: &str = "python3 tools/make_rinna_fixtures.py";

#[derive(serde::Deserialize)]
struct Case {
    text: String,
    ids: Vec<u32>,
    attention_mask: Vec<u32>,
}

fn tokenizer() -> ClipTokenizer {
    let dir = fixture("rinna/tiny-clip");
    assert!(
        dir.join("spiece.model").exists(),
        "missing fixture {}/spiece.model: regenerate with `{REGENERATE}`",
        dir.display()
    );
    ClipTokenizer::from_sentencepiece_dir(&dir).unwrap()
}

fn cases() -> Vec<Case> {
    let path = fixture("rinna/tokenizer_cases.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "reading {} ({e}): regenerate with `{REGENERATE}`",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

#[test]
fn ids_and_masks_match_japanese_clip_tokenize() {
    let cases = cases();
    assert!(cases.len() >= 320, "only {} cases", cases.len());
    let tok = tokenizer();
    let texts: Vec<&str> = cases.iter().map(|c| c.text.as_str()).collect();
    let batch = tok
        .encode_batch(&texts, Padding::MaxLength, &Device::Cpu)
        .unwrap();
    assert_eq!(batch.ids.dims(), &[cases.len(), 77]);
    let ids = batch.ids.to_vec2::<u32>().unwrap();
    let mask = batch.attention_mask.to_vec2::<u32>().unwrap();
    let mut bad = vec![];
    for (i, c) in cases.iter().enumerate() {
        // `encode` gives the unpadded row; the batch pads it.
        let row = tok.encode(&c.text).unwrap();
        let unpadded = c.attention_mask.iter().filter(|&&m| m == 1).count();
        if ids[i] != c.ids || mask[i] != c.attention_mask || row[..] != c.ids[..unpadded] {
            bad.push(format!(
                "case {i} {:?}\n   got  {:?}\n   want {:?}\n   mask got  {:?}\n   mask want {:?}",
                c.text, ids[i], c.ids, mask[i], c.attention_mask
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {} strings differ from japanese_clip.tokenize, first ones:\n{}",
        bad.len(),
        cases.len(),
        bad.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn cls_framing_and_accessors() {
    let tok = tokenizer();
    let cls = tok.token_to_id("[CLS]").unwrap();
    let pad = tok.token_to_id("[PAD]").unwrap();
    assert_eq!(tok.framing(), &Framing::Cls { cls });
    assert_eq!(tok.cls_id(), Some(cls));
    assert_eq!(tok.bos_id(), cls);
    assert_eq!(tok.pad_id(), pad);
    assert_eq!(tok.max_len(), 77);

    // [CLS] first, no end token, 76 pieces at most.
    let long = "東京タワーの夜景と富士山の写真。".repeat(40);
    let ids = tok.encode(&long).unwrap();
    assert_eq!(ids.len(), 77);
    assert_eq!(ids[0], cls);
    assert_eq!(ids[1..], tok.encode_words(&long).unwrap()[..76]);

    // Lower-casing happens before sentencepiece, so "[CLS]" in text is plain text.
    let words = tok.encode_words("A [CLS]").unwrap();
    assert_eq!(words, tok.encode_words("a [cls]").unwrap());
    assert!(!words.contains(&cls));
    assert_eq!(tok.encode("").unwrap(), vec![cls]);

    // Longest padding pads to the longest row; the mask covers [CLS] and the pieces.
    let batch = tok
        .encode_batch(&["犬の写真", "猫"], Padding::Longest, &Device::Cpu)
        .unwrap();
    let rows = &batch.rows;
    let len = rows[0].len().max(rows[1].len());
    assert_eq!(batch.ids.dims(), &[2, len]);
    let mask = batch.attention_mask.to_vec2::<u32>().unwrap();
    for (row, m) in rows.iter().zip(&mask) {
        assert_eq!(m.iter().sum::<u32>() as usize, row.len());
    }

    // decode drops [CLS] and the padding.
    let padded = batch.ids.to_vec2::<u32>().unwrap();
    assert_eq!(tok.decode(&padded[1]).unwrap(), "猫");
    assert_eq!(tok.decode(&padded[0]).unwrap(), "犬の写真");
}

#[test]
fn missing_spiece_model_names_the_file_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let err = ClipTokenizer::from_sentencepiece_dir(dir.path()).unwrap_err();
    assert!(
        matches!(&err, ClipError::MissingFile { path, .. } if path.ends_with("spiece.model")),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("spiece.model"), "{msg}");
    assert!(msg.contains("rinna/japanese-roberta-base"), "{msg}");
}

#[test]
fn corrupt_spiece_model_is_a_tokenizer_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("spiece.model"), b"not a protobuf \xff\xff").unwrap();
    let err = ClipTokenizer::from_sentencepiece_dir(dir.path()).unwrap_err();
    assert!(matches!(err, ClipError::BadTokenizer { .. }), "{err:?}");
    assert!(err.to_string().contains("spiece.model"), "{err}");
}
