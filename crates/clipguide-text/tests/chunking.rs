//! Chunk layout against A1111's `tokenize_line` rules, through the public API.

use std::collections::HashMap;

use clipguide_text::chunking::{CHUNK_LEN, CLIP_BOS, CLIP_COMMA, CLIP_EOS};
use clipguide_text::{
    align_chunks, chunk_prompt, empty_chunk, parse_a1111_lenient, ChunkConfig, ChunkError,
    ChunkMode, InversionSlot, InversionTriggers, PromptPiece, WordTokenizer,
};

/// Test tokenizer: splits on whitespace; "," is the comma id, "wN" is id 1000+N, other
/// words get ids from a table. Mirrors how CLIP gives one id per short word.
struct Words(HashMap<&'static str, u32>);

impl Words {
    fn new() -> Self {
        Words(HashMap::from([
            ("cat", 500),
            ("dog", 501),
            ("my", 700),
            ("emb", 701),
        ]))
    }
}

impl WordTokenizer for Words {
    fn encode_words(&self, text: &str) -> Result<Vec<u32>, ChunkError> {
        Ok(text
            .split_whitespace()
            .map(|w| match w {
                "," => CLIP_COMMA,
                _ if w.starts_with('w') => 1000 + w[1..].parse::<u32>().unwrap(),
                _ => self.0[w],
            })
            .collect())
    }
}

fn words(range: std::ops::Range<u32>) -> String {
    range.map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ")
}

fn ids(range: std::ops::Range<u32>) -> Vec<u32> {
    range.map(|i| 1000 + i).collect()
}

fn a1111(backtrack: usize) -> ChunkConfig {
    ChunkConfig::clip_l(ChunkMode::A1111 {
        comma_padding_backtrack: backtrack,
    })
}

fn chunk(prompt: &str, cfg: &ChunkConfig) -> clipguide_text::ChunkedPrompt {
    chunk_prompt(
        &parse_a1111_lenient(prompt),
        &Words::new(),
        &InversionTriggers::new(),
        cfg,
    )
    .unwrap()
}

/// `[BOS] + body + [EOS] + pad`, 77 long.
fn framed(body: &[u32], pad: u32) -> Vec<u32> {
    let mut v = vec![CLIP_BOS];
    v.extend_from_slice(body);
    v.push(CLIP_EOS);
    v.resize(CHUNK_LEN, pad);
    v
}

#[test]
fn empty_prompt_is_one_empty_chunk() {
    let out = chunk("", &a1111(20));
    assert_eq!(out.chunks.len(), 1);
    assert_eq!(out.chunks[0].ids, framed(&[], CLIP_EOS));
    assert_eq!(out.chunks[0].weights, vec![1.0; CHUNK_LEN]);
    assert_eq!(out.token_count, 0);
    assert_eq!(out.chunks[0], empty_chunk(&a1111(20)));
}

#[test]
fn weights_follow_spans_and_specials_are_one() {
    let out = chunk("cat (dog:1.5) [cat]", &a1111(20));
    let c = &out.chunks[0];
    assert_eq!(&c.ids[..5], &[CLIP_BOS, 500, 501, 500, CLIP_EOS]);
    assert_eq!(
        &c.weights[..5],
        &[1.0, 1.0, 1.5, (1.0f64 / 1.1) as f32, 1.0]
    );
    assert!(c.weights[5..].iter().all(|&w| w == 1.0));
}

#[test]
fn open_clip_pads_with_zero_after_eos() {
    let out = chunk(
        "cat dog",
        &ChunkConfig::open_clip(ChunkConfig::a1111_default()),
    );
    assert_eq!(out.chunks[0].ids, framed(&[500, 501], 0));
    assert_eq!(out.chunks[0].ids[3], CLIP_EOS);
}

#[test]
fn exactly_75_tokens_is_one_chunk() {
    let out = chunk(&words(0..75), &a1111(20));
    assert_eq!(out.chunks.len(), 1);
    assert_eq!(out.chunks[0].ids, framed(&ids(0..75), CLIP_EOS));
    assert_eq!(out.token_count, 75);
}

#[test]
fn token_76_opens_a_second_chunk() {
    let out = chunk(&words(0..76), &a1111(20));
    assert_eq!(out.chunks.len(), 2);
    assert_eq!(out.chunks[0].ids, framed(&ids(0..75), CLIP_EOS));
    assert_eq!(out.chunks[1].ids, framed(&ids(75..76), CLIP_EOS));
    // A1111 counts 75 for the closed chunk plus the tokens of the last.
    assert_eq!(out.token_count, 76);
}

#[test]
fn break_forces_a_new_chunk_even_when_empty() {
    let out = chunk("cat BREAK dog", &a1111(20));
    assert_eq!(out.chunks.len(), 2);
    assert_eq!(out.chunks[0].ids, framed(&[500], CLIP_EOS));
    assert_eq!(out.chunks[1].ids, framed(&[501], CLIP_EOS));
    assert_eq!(out.token_count, 76);

    let out = chunk("BREAK dog", &a1111(20));
    assert_eq!(out.chunks.len(), 2);
    assert_eq!(out.chunks[0].ids, framed(&[], CLIP_EOS));

    // A trailing BREAK leaves nothing to flush.
    assert_eq!(chunk("cat BREAK", &a1111(20)).chunks.len(), 1);
    assert_eq!(chunk("BREAK", &a1111(20)).chunks.len(), 1);
}

#[test]
fn comma_backtrack_moves_the_tail_after_the_last_comma() {
    // 60 words, a comma (body index 60), 14 words: the chunk is full at 75; the 76th token
    // finds the comma 15 back (<= 20), so the 14 words after it move to chunk 2.
    let prompt = format!("{} , {} {}", words(0..60), words(60..74), words(74..76));
    let out = chunk(&prompt, &a1111(20));
    assert_eq!(out.chunks.len(), 2);
    let mut first = ids(0..60);
    first.push(CLIP_COMMA);
    assert_eq!(out.chunks[0].ids, framed(&first, CLIP_EOS));
    assert_eq!(out.chunks[1].ids, framed(&ids(60..76), CLIP_EOS));
}

#[test]
fn comma_backtrack_off_or_too_far_keeps_full_chunks() {
    let prompt = format!("{} , {} {}", words(0..60), words(60..74), words(74..76));
    let off = chunk(&prompt, &a1111(0));
    let mut first = ids(0..60);
    first.push(CLIP_COMMA);
    first.extend(ids(60..74));
    assert_eq!(off.chunks[0].ids, framed(&first, CLIP_EOS));
    assert_eq!(off.chunks[1].ids, framed(&ids(74..76), CLIP_EOS));
    // Backtrack 14 < distance 15: no move.
    assert_eq!(chunk(&prompt, &a1111(14)).chunks, off.chunks);
}

#[test]
fn comma_that_arrives_at_a_full_chunk_is_not_remembered() {
    // 75 words, then a comma (starts chunk 2 at index 0, but last_comma is reset by the
    // chunk switch), then 74 words fill chunk 2, then one more: no backtrack happens.
    let prompt = format!("{} , {} w999", words(0..75), words(75..149));
    let out = chunk(&prompt, &a1111(20));
    assert_eq!(out.chunks.len(), 3);
    let mut second = vec![CLIP_COMMA];
    second.extend(ids(75..149));
    assert_eq!(out.chunks[1].ids, framed(&second, CLIP_EOS));
    assert_eq!(out.chunks[2].ids, framed(&[1999], CLIP_EOS));
}

#[test]
fn truncate_keeps_75_and_eos() {
    let cfg = ChunkConfig::clip_l(ChunkMode::Truncate);
    let out = chunk(&format!("{} BREAK {}", words(0..50), words(50..80)), &cfg);
    assert_eq!(out.chunks.len(), 1);
    assert_eq!(out.chunks[0].ids, framed(&ids(0..75), CLIP_EOS));
    assert_eq!(out.truncated_tokens, 5);
    assert_eq!(out.token_count, 75);
}

#[test]
fn align_pads_the_shorter_prompt_with_empty_chunks() {
    let cfg = a1111(20);
    let mut pos = chunk(&words(0..160), &cfg);
    let mut neg = chunk("dog", &cfg);
    assert_eq!(pos.chunks.len(), 3);
    align_chunks(&mut pos, &mut neg, &cfg);
    assert_eq!(neg.chunks.len(), 3);
    assert_eq!(neg.chunks[0].ids, framed(&[501], CLIP_EOS));
    assert_eq!(neg.chunks[1], empty_chunk(&cfg));
    assert_eq!(neg.chunks[2], empty_chunk(&cfg));
    assert_eq!(pos.chunks.len(), 3);
}

#[test]
fn tensors_have_chunk_shape() {
    let out = chunk(&words(0..80), &a1111(20));
    let dev = candle_core::Device::Cpu;
    let t = out.ids_tensor(&dev).unwrap();
    assert_eq!(t.dims(), &[2, CHUNK_LEN]);
    assert_eq!(t.to_vec2::<u32>().unwrap()[1][1], 1075);
    let w = out.weights_tensor(&dev).unwrap();
    assert_eq!(w.dims(), &[2, CHUNK_LEN]);
}

fn triggers(vectors: usize) -> InversionTriggers {
    let mut t = InversionTriggers::new();
    // "my emb" is a two-token trigger.
    t.add(&Words::new(), "my emb", vectors).unwrap();
    t
}

#[test]
fn inversion_trigger_expands_to_n_placeholders() {
    let cfg = a1111(20);
    let pieces = parse_a1111_lenient("cat (my emb:1.2) dog");
    let out = chunk_prompt(&pieces, &Words::new(), &triggers(3), &cfg).unwrap();
    let c = &out.chunks[0];
    assert_eq!(&c.ids[..7], &[CLIP_BOS, 500, 0, 0, 0, 501, CLIP_EOS]);
    assert_eq!(&c.weights[2..5], &[1.2, 1.2, 1.2]);
    let slots: Vec<_> = (0..3)
        .map(|v| InversionSlot {
            position: 2 + v,
            trigger: 0,
            vector: v,
        })
        .collect();
    assert_eq!(c.inversion_slots, slots);
}

#[test]
fn longer_trigger_wins_over_shared_prefix() {
    let mut t = InversionTriggers::new();
    t.add_ids("my", vec![700], 1).unwrap();
    t.add_ids("my emb", vec![700, 701], 2).unwrap();
    assert_eq!(t.find_at(&[700, 701], 0), Some((1, 2)));
    assert_eq!(t.find_at(&[700, 500], 0), Some((0, 1)));
    assert_eq!(t.find_at(&[500], 0), None);
}

#[test]
fn inversion_that_does_not_fit_starts_a_new_chunk() {
    let prompt = format!("{} my emb", words(0..73));
    let out = chunk_prompt(
        &parse_a1111_lenient(&prompt),
        &Words::new(),
        &triggers(4),
        &a1111(20),
    )
    .unwrap();
    assert_eq!(out.chunks.len(), 2);
    assert_eq!(out.chunks[0].ids, framed(&ids(0..73), CLIP_EOS));
    assert_eq!(out.chunks[1].ids, framed(&[0, 0, 0, 0], CLIP_EOS));
    assert_eq!(out.chunks[1].inversion_slots[0].position, 1);
    assert!(out.chunks[0].inversion_slots.is_empty());
}

#[test]
fn comma_backtrack_moves_inversion_slots_too() {
    // 60 words, comma, trigger (3 vectors), 11 words = 75; one more word triggers backtrack.
    let prompt = format!("{} , my emb {} w99", words(0..60), words(60..71));
    let out = chunk_prompt(
        &parse_a1111_lenient(&prompt),
        &Words::new(),
        &triggers(3),
        &a1111(20),
    )
    .unwrap();
    assert_eq!(out.chunks.len(), 2);
    assert!(out.chunks[0].inversion_slots.is_empty());
    let positions: Vec<_> = out.chunks[1]
        .inversion_slots
        .iter()
        .map(|s| s.position)
        .collect();
    assert_eq!(positions, vec![1, 2, 3]);
    assert_eq!(&out.chunks[1].ids[1..4], &[0, 0, 0]);
}

#[test]
fn bad_triggers_are_rejected() {
    let mut t = InversionTriggers::new();
    assert!(matches!(
        t.add_ids("x", vec![], 1),
        Err(ChunkError::EmptyTrigger { .. })
    ));
    let err = t.add_ids("x", vec![5], 76).unwrap_err();
    assert!(err.to_string().contains("76 vectors"), "{err}");
    assert!(t.add_ids("x", vec![5], 0).is_err());
}

#[test]
fn break_piece_list_without_spans_still_gives_one_chunk() {
    let out = chunk_prompt(&[], &Words::new(), &InversionTriggers::new(), &a1111(20)).unwrap();
    assert_eq!(out.chunks.len(), 1);
    let out = chunk_prompt(
        &[PromptPiece::Break],
        &Words::new(),
        &InversionTriggers::new(),
        &a1111(20),
    )
    .unwrap();
    assert_eq!(out.chunks.len(), 1);
}

fn tiny_tokenizer() -> tokenizers::Tokenizer {
    use tokenizers::models::wordlevel::WordLevel;
    use tokenizers::pre_tokenizers::whitespace::Whitespace;
    let vocab: HashMap<String, u32> = [("[UNK]", 0), ("a", 5), ("cat", 6), ("<s>", 9)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let model = WordLevel::builder()
        .vocab(vocab.into_iter().collect())
        .unk_token("[UNK]".into())
        .build()
        .unwrap();
    let mut tok = tokenizers::Tokenizer::new(model);
    tok.with_pre_tokenizer(Some(Whitespace {}));
    tok
}

#[test]
fn huggingface_tokenizer_encodes_words_without_specials() {
    let tok = tiny_tokenizer();
    assert_eq!(tok.encode_words("a cat").unwrap(), vec![5, 6]);
    assert_eq!(tok.encode_words("").unwrap(), Vec::<u32>::new());
}

#[test]
fn huggingface_tokenizer_with_truncation_is_refused() {
    let mut tok = tiny_tokenizer();
    tok.with_truncation(Some(tokenizers::TruncationParams {
        max_length: 1,
        ..Default::default()
    }))
    .unwrap();
    let err = tok.encode_words("a cat").unwrap_err();
    assert!(err.to_string().contains("truncation"), "{err}");
    let fixed = clipguide_text::plain_word_tokenizer(tok).unwrap();
    assert_eq!(fixed.encode_words("a cat").unwrap(), vec![5, 6]);
}
