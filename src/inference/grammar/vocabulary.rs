//! The model's vocabulary as llguidance sees it: every token id's bytes in a
//! token trie (special tokens marked so a grammar never spells them by
//! accident), the end-of-sequence ids, and tokenization through the model's
//! own tokenizer.

use std::sync::Arc;

use llguidance::toktrie::{TokEnv, TokRxInfo, TokTrie, TokenId, TokenizerEnv};

use super::GrammarError;
use crate::inference::tokenizer::TextTokenizer;

/// The tokenizer and its trie, for llguidance's lexer.
struct Vocabulary {
    trie: TokTrie,
    tokenizer: Arc<TextTokenizer>,
}

impl TokenizerEnv for Vocabulary {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    fn tokenize_bytes(&self, bytes: &[u8]) -> Vec<TokenId> {
        let text = String::from_utf8_lossy(bytes);
        self.tokenizer
            .encode_plain(&text)
            .unwrap_or_else(|_| self.trie.greedy_tokenize(bytes))
    }
}

/// llguidance's view of `tokenizer` for a model whose logits have
/// `vocab_size` columns (ids the tokenizer does not know stay empty: never
/// allowed).
pub fn environment(
    tokenizer: Arc<TextTokenizer>,
    vocab_size: usize,
) -> Result<TokEnv, GrammarError> {
    let eos = tokenizer.eos_ids().to_vec();
    let Some(&first_eos) = eos.first() else {
        return Err(GrammarError::Vocabulary(
            "the model names no end-of-sequence token".into(),
        ));
    };
    let text = tokenizer
        .to_json()
        .map_err(|e| GrammarError::Vocabulary(e.to_string()))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| GrammarError::Vocabulary(format!("the tokenizer's JSON: {e}")))?;
    // llguidance's reader asserts on vocabularies it does not expect; a
    // model file is outside input, so a panic there becomes an error here.
    let words = std::panic::catch_unwind(|| llguidance::token_bytes_from_tokenizer_json(&json))
        .map_err(|_| GrammarError::Vocabulary("the tokenizer's vocabulary is malformed".into()))?
        .map_err(|e| GrammarError::Vocabulary(e.to_string()))?;
    if words.len() > vocab_size {
        return Err(GrammarError::Vocabulary(format!(
            "the tokenizer has {} tokens but the model only {vocab_size}",
            words.len()
        )));
    }
    let mut words = words;
    words.resize(vocab_size, Vec::new());
    let vocab_size = u32::try_from(vocab_size)
        .map_err(|_| GrammarError::Vocabulary("the vocabulary is too large".into()))?;
    if eos.iter().any(|&id| id >= vocab_size) {
        return Err(GrammarError::Vocabulary(
            "an end-of-sequence id is outside the vocabulary".into(),
        ));
    }
    let info = TokRxInfo {
        tok_bos: tokenizer.bos(),
        ..TokRxInfo::new(vocab_size, first_eos)
    };
    let trie = TokTrie::from(&info, &words).with_eos_tokens(&eos);
    Ok(Arc::new(Vocabulary { trie, tokenizer }))
}
