//! Constrained decoding with llguidance: a JSON schema (from
//! `response_format` or a tool call) becomes a grammar, and every decode
//! step masks the logits to the tokens that keep the output a prefix of a
//! document valid against it; the end-of-sequence token is allowed only
//! where the document is complete. Grammar size and per-step work are
//! bounded by llguidance's parser limits.

mod vocabulary;

use std::sync::Arc;

use llguidance::api::TopLevelGrammar;
use llguidance::{Matcher, ParserFactory};
use serde_json::{json, Value};

use crate::inference::tokenizer::TextTokenizer;

/// Why a grammar could not be built or followed.
#[derive(Debug, thiserror::Error)]
pub enum GrammarError {
    #[error("structured output is not available for this model's vocabulary: {0}")]
    Vocabulary(String),
    #[error("the JSON schema cannot be used: {0}")]
    Schema(String),
    #[error("constrained decoding failed: {0}")]
    Step(String),
}

/// Builds constraints for one model's vocabulary (built once at load).
#[derive(Clone)]
pub struct Grammars {
    factory: Arc<ParserFactory>,
}

impl std::fmt::Debug for Grammars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grammars").finish_non_exhaustive()
    }
}

/// How constrained JSON is laid out: one space after `:` and `,` and no
/// other whitespace, so a model cannot spend its tokens on blank space.
fn layout() -> Value {
    json!({
        "whitespace_flexible": false,
        "item_separator": ", ",
        "key_separator": ": ",
    })
}

impl Grammars {
    /// The constraint builder for a model whose logits have `vocab_size`
    /// columns and whose tokens `tokenizer` spells.
    pub fn new(tokenizer: Arc<TextTokenizer>, vocab_size: usize) -> Result<Self, GrammarError> {
        let env = vocabulary::environment(tokenizer, vocab_size)?;
        let mut factory =
            ParserFactory::new_simple(&env).map_err(|e| GrammarError::Vocabulary(e.to_string()))?;
        factory.quiet();
        Ok(Grammars {
            factory: Arc::new(factory),
        })
    }

    /// A constraint that lets through only a JSON document valid against
    /// `schema` (`true` or `{}`: any JSON value).
    pub fn json(&self, schema: &Value) -> Result<Constraint, GrammarError> {
        let mut schema = match schema {
            Value::Bool(true) => json!({}),
            Value::Object(_) => schema.clone(),
            other => {
                return Err(GrammarError::Schema(format!(
                    "a schema is an object, got {other}"
                )))
            }
        };
        if let Value::Object(fields) = &mut schema {
            fields.insert("x-guidance".into(), layout());
        }
        let parser = self
            .factory
            .create_parser(TopLevelGrammar::from_json_schema(schema))
            .map_err(|e| GrammarError::Schema(e.to_string()))?;
        let matcher = Matcher::new(Ok(parser));
        match matcher.get_error() {
            Some(error) => Err(GrammarError::Schema(error)),
            None => Ok(Constraint {
                matcher: Box::new(matcher),
            }),
        }
    }
}

/// One sequence's position in its grammar (boxed: a matcher is large and
/// travels through the engine's queue).
pub struct Constraint {
    matcher: Box<Matcher>,
}

impl std::fmt::Debug for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Constraint")
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}

impl Constraint {
    /// Sets the logit of every token the grammar does not allow next to −∞
    /// (only end-of-sequence once the document is complete).
    pub fn mask(&mut self, logits: &mut [f32]) -> Result<(), GrammarError> {
        let allowed = self
            .matcher
            .compute_mask_or_eos()
            .map_err(|e| GrammarError::Step(e.to_string()))?;
        for (id, logit) in logits.iter_mut().enumerate() {
            if !allowed.is_allowed(id as u32) {
                *logit = f32::NEG_INFINITY;
            }
        }
        Ok(())
    }

    /// Moves past the sampled `token` (one [`Self::mask`] allowed).
    pub fn accept(&mut self, token: u32) -> Result<(), GrammarError> {
        self.matcher
            .consume_token(token)
            .map_err(|e| GrammarError::Step(e.to_string()))
    }

    /// True once the document is complete and nothing more may follow.
    pub fn is_finished(&self) -> bool {
        self.matcher.is_stopped()
    }
}

#[cfg(test)]
mod tests;
