//! Text ↔ token ids through the `tokenizers` crate, plus the model's special
//! tokens (BOS, end-of-sequence ids) and incremental detokenization for
//! streaming.

use std::path::{Path, PathBuf};

use tokenizers::Tokenizer;

/// Why text could not be tokenized or detokenized.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("{path}: invalid tokenizer")]
    Load {
        path: PathBuf,
        #[source]
        source: tokenizers::Error,
    },
    #[error("tokenizing the prompt")]
    Encode(#[source] tokenizers::Error),
    #[error("decoding token ids")]
    Decode(#[source] tokenizers::Error),
    #[error("building the tokenizer: {0}")]
    Build(String),
    #[error("writing the tokenizer as JSON")]
    Serialize(#[source] tokenizers::Error),
}

/// A tokenizer with the model's special-token conventions.
#[derive(Debug, Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    bos: Option<u32>,
    eos: Vec<u32>,
    add_bos: bool,
}

impl TextTokenizer {
    /// Loads a `tokenizer.json`; special tokens are set later with [`Self::set_special`].
    pub fn from_file(path: &Path) -> Result<Self, TokenizerError> {
        let inner = Tokenizer::from_file(path).map_err(|source| TokenizerError::Load {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self::new(inner))
    }

    /// Wraps an already built tokenizer (the GGUF loader builds one).
    pub fn new(inner: Tokenizer) -> Self {
        TextTokenizer {
            inner,
            bos: None,
            eos: Vec::new(),
            add_bos: false,
        }
    }

    pub fn set_special(&mut self, bos: Option<u32>, eos: Vec<u32>, add_bos: bool) {
        self.bos = bos;
        self.eos = eos;
        self.add_bos = add_bos && bos.is_some();
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    pub fn is_eos(&self, id: u32) -> bool {
        self.eos.contains(&id)
    }

    /// The end-of-sequence ids, the main one first.
    pub fn eos_ids(&self) -> &[u32] {
        &self.eos
    }

    /// The tokenizer in Hugging Face's `tokenizer.json` form.
    pub fn to_json(&self) -> Result<String, TokenizerError> {
        self.inner
            .to_string(false)
            .map_err(TokenizerError::Serialize)
    }

    /// Token ids of `text` alone: no BOS in front.
    pub fn encode_plain(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(TokenizerError::Encode)?;
        Ok(enc.get_ids().to_vec())
    }

    /// Token ids of `text`; prepends BOS when the model wants it and the text
    /// does not already start with it (chat templates often write it).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let plain = self.encode_plain(text)?;
        let mut ids = Vec::with_capacity(plain.len() + 1);
        if let Some(bos) = self.bos.filter(|_| self.add_bos) {
            if plain.first() != Some(&bos) {
                ids.push(bos);
            }
        }
        ids.extend_from_slice(&plain);
        Ok(ids)
    }

    /// Text of `ids`, special tokens left out.
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        self.inner.decode(ids, true).map_err(TokenizerError::Decode)
    }
}

/// Turns a stream of token ids into text pieces, holding back a piece while it
/// ends inside a multi-byte character (decoders emit U+FFFD for those).
#[derive(Debug, Default)]
pub struct Detokenizer {
    ids: Vec<u32>,
    prefix: usize,
    read: usize,
}

impl Detokenizer {
    pub fn push(&mut self, tok: &TextTokenizer, id: u32) -> Result<String, TokenizerError> {
        self.ids.push(id);
        let before = tok.decode(&self.ids[self.prefix..self.read])?;
        let after = tok.decode(&self.ids[self.prefix..])?;
        if after.len() > before.len() && !after.ends_with('\u{FFFD}') {
            let piece = after.get(before.len()..).unwrap_or_default().to_string();
            self.prefix = self.read;
            self.read = self.ids.len();
            Ok(piece)
        } else {
            Ok(String::new())
        }
    }
}
