//! Builds a `tokenizers` tokenizer from GGUF metadata (`tokenizer.ggml.*`):
//! byte-level BPE ("gpt2" model) with its merges, control tokens as special
//! tokens, and the pre-tokenizer llama.cpp names in `tokenizer.ggml.pre`.

use std::collections::HashMap;

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, PreTokenizerWrapper, Tokenizer};

use super::reader::Value;
use crate::inference::tokenizer::TokenizerError;

/// GGUF token types that are not ordinary text (control, user-defined).
const CONTROL: i64 = 3;
const USER_DEFINED: i64 = 4;

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
    if model != "gpt2" {
        return Err(TokenizerError::Build(format!(
            "tokenizer model {model:?} is not supported (only byte-level BPE, \"gpt2\")"
        )));
    }
    let tokens = strings(meta, "tokenizer.ggml.tokens")?;
    let merges: Vec<(String, String)> = strings(meta, "tokenizer.ggml.merges")?
        .into_iter()
        .filter_map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        })
        .collect();
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
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

    if let Some(types) = meta
        .get("tokenizer.ggml.token_type")
        .and_then(Value::as_array)
    {
        let special: Vec<AddedToken> = types
            .iter()
            .zip(&tokens)
            .filter(|(t, _)| matches!(t, Value::Int(CONTROL | USER_DEFINED)))
            .map(|(_, tok)| AddedToken::from(tok.clone(), true))
            .collect();
        tokenizer.add_special_tokens(&special);
    }
    Ok((tokenizer, tokens))
}
