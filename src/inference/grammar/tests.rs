//! Constrained decoding on a byte-level vocabulary: whatever the logits
//! prefer, the output is a document valid against the schema.

use std::sync::Arc;

use serde_json::{json, Value};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

use super::*;

/// One token per byte (byte-level spelling) and `<|end|>` (id 256) as EOS.
fn byte_tokenizer() -> Arc<TextTokenizer> {
    let mut alphabet: Vec<char> = ByteLevel::alphabet().into_iter().collect();
    alphabet.sort_unstable();
    let vocab: tokenizers::models::bpe::Vocab = alphabet
        .iter()
        .enumerate()
        .map(|(i, c)| (c.to_string(), i as u32))
        .chain([("<|end|>".to_string(), 256)])
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, Vec::new())
        .build()
        .expect("BPE");
    let mut inner = Tokenizer::new(bpe);
    inner.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    inner.with_decoder(Some(ByteLevelDecoder::default()));
    inner.add_special_tokens(&[AddedToken::from("<|end|>", true)]);
    let mut tok = TextTokenizer::new(inner);
    tok.set_special(None, vec![256], false);
    Arc::new(tok)
}

/// Decodes greedily under `constraint` with logits that prefer `liked`
/// bytes, as a model would that ignores the schema; the text before EOS.
fn decode(tok: &TextTokenizer, mut constraint: Constraint, liked: &[u8]) -> String {
    let mut ids = Vec::new();
    for step in 0..200 {
        let mut logits: Vec<f32> = (0..257).map(|id| -(id as f32) / 1000.0).collect();
        let favourite = liked[step % liked.len()];
        let id = tok
            .encode_plain(&(favourite as char).to_string())
            .expect("encode")[0];
        logits[id as usize] = 10.0;
        constraint.mask(&mut logits).expect("mask");
        let next = crate::inference::sampler::argmax(&logits);
        if tok.is_eos(next) {
            return tok.decode(&ids).expect("decode");
        }
        constraint.accept(next).expect("accept");
        ids.push(next);
    }
    panic!("no end of sequence in 200 tokens: {:?}", tok.decode(&ids));
}

#[test]
fn output_follows_the_schema_whatever_the_model_prefers() {
    let tok = byte_tokenizer();
    let grammars = Grammars::new(tok.clone(), 257).expect("vocabulary");
    let schema = json!({
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 8},
            "rank": {"type": "integer", "minimum": 1, "maximum": 3},
            "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2}
        },
        "required": ["city", "rank", "tags"],
        "additionalProperties": false
    });
    let text = decode(&tok, grammars.json(&schema).expect("schema"), b"x9 ");
    let value: Value = serde_json::from_str(&text).expect("valid JSON");
    assert!(
        value["city"].as_str().is_some_and(|c| c.len() <= 8),
        "{text}"
    );
    assert!(
        (1..=3).contains(&value["rank"].as_i64().expect("rank")),
        "{text}"
    );
    assert!(
        value["tags"].as_array().is_some_and(|t| t.len() <= 2),
        "{text}"
    );
    assert!(!text.contains("  "), "compact layout: {text}");
}

#[test]
fn any_json_and_bad_schemas() {
    let tok = byte_tokenizer();
    let grammars = Grammars::new(tok.clone(), 257).expect("vocabulary");
    let text = decode(
        &tok,
        grammars.json(&json!({"type": "boolean"})).expect("schema"),
        b"f",
    );
    assert_eq!(text, "false");
    assert!(grammars.json(&json!(false)).is_err());
    assert!(grammars.json(&json!({"type": "no-such-type"})).is_err());
    assert!(grammars.json(&json!({"$ref": "#/$defs/missing"})).is_err());
}

#[test]
fn a_vocabulary_without_an_end_token_is_refused() {
    let mut tok = (*byte_tokenizer()).clone();
    tok.set_special(None, Vec::new(), false);
    assert!(matches!(
        Grammars::new(Arc::new(tok), 257),
        Err(GrammarError::Vocabulary(_))
    ));
}
