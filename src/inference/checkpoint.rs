//! A loaded model source: config, host weights, tokenizer and chat template,
//! whichever format (Hugging Face directory or GGUF file) it came from. The
//! loaders ([`super::hf`], [`super::gguf`]) build it; [`super::loader`]
//! picks the loader.

use crate::inference::chat_template::ChatTemplate;
use crate::inference::config::LlamaConfig;
use crate::inference::tokenizer::TextTokenizer;
use crate::inference::weights::WeightMap;

/// Everything read from a model source, before it is put on a device.
#[derive(Debug)]
pub struct Checkpoint {
    /// The model id the API reports (directory or file stem).
    pub name: String,
    pub config: LlamaConfig,
    pub weights: WeightMap,
    pub tokenizer: TextTokenizer,
    pub chat_template: Option<ChatTemplate>,
}
