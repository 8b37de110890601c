//! Builds a `tokenizers` tokenizer from GGUF metadata (`tokenizer.ggml.*`):
//! byte-level BPE ("gpt2" model) with its merges and the pre-tokenizer
//! llama.cpp names in `tokenizer.ggml.pre`, or SentencePiece BPE ("llama"
//! model: Llama 2, TinyLlama, Mistral) from its scores with byte fallback;
//! control tokens become special tokens.

use std::collections::HashMap;

use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::{Merges, Vocab, BPE};
use tokenizers::normalizers::{Prepend, Replace, Sequence as NormalizerSequence};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, PreTokenizerWrapper, Tokenizer};

use super::reader::Value;
use crate::inference::tokenizer::TokenizerError;

/// GGUF token types (llama.cpp's `llama_token_type`).
const NORMAL: i64 = 1;
const UNKNOWN: i64 = 2;
const CONTROL: i64 = 3;
const USER_DEFINED: i64 = 4;
/// SentencePiece's word-boundary mark, standing for a space.
const SPACE_MARK: &str = "\u{2581}";

fn strings(meta: &HashMap<String, Value>, key: &str) -> Result<Vec<String>, TokenizerError> {
    meta.get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| TokenizerError::Build(format!("metadata {key} is missing")))?
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| TokenizerError::Build(format!("{key} holds a non-string")))
        })
        .collect()
}

/// The tokenizer described by the metadata, and its token strings.
pub fn build(meta: &HashMap<String, Value>) -> Result<(Tokenizer, Vec<String>), TokenizerError> {
    let model = meta
        .get("tokenizer.ggml.model")
        .and_then(Value::as_str)
        .unwrap_or("");
    let tokens = strings(meta, "tokenizer.ggml.tokens")?;
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let types: Vec<i64> = meta
        .get("tokenizer.ggml.token_type")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|v| match v {
                    Value::Int(t) => *t,
                    _ => NORMAL,
                })
                .collect()
        })
        .unwrap_or_default();
    let mut tokenizer = match model {
        "gpt2" => byte_level_bpe(meta, vocab)?,
        "llama" => sentencepiece_bpe(meta, &tokens, &types, vocab)?,
        _ => {
            return Err(TokenizerError::Build(format!(
                "tokenizer model {model:?} is not supported (byte-level BPE \"gpt2\" or \
                 SentencePiece \"llama\")"
            )))
        }
    };
    let special: Vec<AddedToken> = types
        .iter()
        .zip(&tokens)
        .filter(|(t, _)| [UNKNOWN, CONTROL, USER_DEFINED].contains(t))
        .map(|(_, tok)| AddedToken::from(tok.clone(), true))
        .collect();
    tokenizer.add_special_tokens(&special);
    Ok((tokenizer, tokens))
}

fn byte_level_bpe(
    meta: &HashMap<String, Value>,
    vocab: Vocab,
) -> Result<Tokenizer, TokenizerError> {
    let merges: Merges = strings(meta, "tokenizer.ggml.merges")?
        .into_iter()
        .filter_map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        })
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| TokenizerError::Build(format!("BPE: {e}")))?;
    let mut tokenizer = Tokenizer::new(bpe);

    let byte_level = ByteLevel::new(false, true, true);
    let pre = meta
        .get("tokenizer.ggml.pre")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let pre_tokenizer: PreTokenizerWrapper = match pre {
        // llama.cpp's "smollm" (and "starcoder") split digits one by one first.
        "smollm" | "starcoder" | "refact" => {
            Sequence::new(vec![Digits::new(true).into(), byte_level.into()]).into()
        }
        _ => byte_level.into(),
    };
    tokenizer.with_pre_tokenizer(Some(pre_tokenizer));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
    Ok(tokenizer)
}

/// SentencePiece BPE as llama.cpp runs it: repeatedly join the adjacent
/// pair whose joined piece is in the vocabulary with the highest score;
/// characters outside the vocabulary become `<0xXX>` byte tokens. The same
/// as BPE whose merges are every split of a piece into two pieces, ranked
/// by the joined piece's score (how Hugging Face converts these models).
fn sentencepiece_bpe(
    meta: &HashMap<String, Value>,
    tokens: &[String],
    types: &[i64],
    vocab: Vocab,
) -> Result<Tokenizer, TokenizerError> {
    let scores: Vec<f64> = meta
        .get("tokenizer.ggml.scores")
        .and_then(Value::as_array)
        .ok_or_else(|| TokenizerError::Build("metadata tokenizer.ggml.scores is missing".into()))?
        .iter()
        .map(|v| v.as_f64().unwrap_or(0.0))
        .collect();
    let merges = merges_from_scores(tokens, types, &scores, &vocab);
    let unk = types
        .iter()
        .position(|t| *t == UNKNOWN)
        .and_then(|i| tokens.get(i))
        .cloned()
        .unwrap_or_else(|| "<unk>".into());
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .unk_token(unk)
        .fuse_unk(true)
        .byte_fallback(true)
        .build()
        .map_err(|e| TokenizerError::Build(format!("SentencePiece BPE: {e}")))?;
    let mut tokenizer = Tokenizer::new(bpe);
    let space_prefix = !matches!(
        meta.get("tokenizer.ggml.add_space_prefix"),
        Some(Value::Bool(false))
    );
    let replace = |from: &str, to: &str| {
        Replace::new(from, to).map_err(|e| TokenizerError::Build(format!("normalizer: {e}")))
    };
    let mut normalizers = Vec::new();
    if space_prefix {
        normalizers.push(Prepend::new(SPACE_MARK.into()).into());
    }
    normalizers.push(replace(" ", SPACE_MARK)?.into());
    tokenizer.with_normalizer(Some(NormalizerSequence::new(normalizers)));
    let mut decoders = vec![
        replace(SPACE_MARK, " ")?.into(),
        ByteFallback::new().into(),
        Fuse::new().into(),
    ];
    if space_prefix {
        decoders.push(Strip::new(' ', 1, 0).into());
    }
    tokenizer.with_decoder(Some(DecoderSequence::new(decoders)));
    Ok(tokenizer)
}

/// Every split of an ordinary piece into two pieces of the vocabulary, most
/// preferred first: higher score of the joined piece, then lower ids.
fn merges_from_scores(tokens: &[String], types: &[i64], scores: &[f64], vocab: &Vocab) -> Merges {
    let mut ranked: Vec<(f64, u32, u32, String, String)> = Vec::new();
    for (id, piece) in tokens.iter().enumerate() {
        if types
            .get(id)
            .is_some_and(|t| *t != NORMAL && *t != USER_DEFINED)
        {
            continue;
        }
        let score = scores.get(id).copied().unwrap_or(0.0);
        for (at, _) in piece.char_indices().skip(1) {
            let (left, right) = piece.split_at(at);
            if let (Some(&l), Some(&r)) = (vocab.get(left), vocab.get(right)) {
                ranked.push((score, l, r, left.to_string(), right.to_string()));
            }
        }
    }
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    ranked.into_iter().map(|(_, _, _, l, r)| (l, r)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(tokens: &[&str], types: &[i64], scores: &[f64]) -> HashMap<String, Value> {
        HashMap::from([
            ("tokenizer.ggml.model".into(), Value::Str("llama".into())),
            (
                "tokenizer.ggml.tokens".into(),
                Value::Array(tokens.iter().map(|t| Value::Str(t.to_string())).collect()),
            ),
            (
                "tokenizer.ggml.token_type".into(),
                Value::Array(types.iter().map(|t| Value::Int(*t)).collect()),
            ),
            (
                "tokenizer.ggml.scores".into(),
                Value::Array(scores.iter().map(|s| Value::Float(*s)).collect()),
            ),
        ])
    }

    #[test]
    fn sentencepiece_merges_by_score_and_falls_back_to_bytes() {
        let mut tokens = vec![
            "<unk>",
            "<s>",
            "\u{2581}",
            "a",
            "b",
            "c",
            "ab",
            "bc",
            "\u{2581}ab",
        ];
        let mut types = vec![
            UNKNOWN, CONTROL, NORMAL, NORMAL, NORMAL, NORMAL, NORMAL, NORMAL, NORMAL,
        ];
        // "bc" outranks "ab", and " ab" outranks both.
        let mut scores = vec![0.0, 0.0, -1.0, -1.0, -1.0, -1.0, -3.0, -2.0, -0.5];
        let bytes: Vec<String> = (0..=255u8).map(|b| format!("<0x{b:02X}>")).collect();
        tokens.extend(bytes.iter().map(String::as_str));
        types.extend(std::iter::repeat_n(6, 256));
        scores.extend(std::iter::repeat_n(0.0, 256));
        let (tok, _) = build(&meta(&tokens, &types, &scores)).expect("builds");
        let pieces = |text: &str| {
            tok.encode(text, false)
                .expect("encode")
                .get_tokens()
                .to_vec()
        };
        assert_eq!(pieces("ab"), ["\u{2581}ab"]);
        assert_eq!(pieces("abc"), ["\u{2581}", "a", "bc"]);
        assert_eq!(pieces("cabc"), ["\u{2581}", "c", "a", "bc"]);
        // "é" is not in the vocabulary: its two UTF-8 bytes.
        assert_eq!(pieces("é"), ["\u{2581}", "<0xC3>", "<0xA9>"]);
        let ids = tok
            .encode("ab cabé", false)
            .expect("encode")
            .get_ids()
            .to_vec();
        assert_eq!(tok.decode(&ids, false).expect("decode"), "ab cabé");
    }
}
