//! `response_format` on both generation endpoints: the JSON schema an
//! answer is constrained to (`json_object`: any object; `json_schema`: the
//! given schema), compiled into the sequence's grammar before anything is
//! queued, so a schema llguidance cannot serve is a 400, not a broken answer.

use serde_json::{json, Value};

use super::error::ApiError;
use super::openai::ResponseFormat;
use super::Loaded;
use crate::error_text::one_line;
use crate::inference::grammar::Constraint;

/// OpenAI's rule for schema and function names.
pub(super) fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The schema `format` asks the answer to follow; `None` for plain text.
pub fn schema(format: Option<&ResponseFormat>) -> Result<Option<Value>, ApiError> {
    match format {
        None | Some(ResponseFormat::Text) => Ok(None),
        Some(ResponseFormat::JsonObject) => Ok(Some(json!({"type": "object"}))),
        Some(ResponseFormat::JsonSchema { json_schema }) => {
            if !valid_name(&json_schema.name) {
                return Err(ApiError::bad_request(
                    format!(
                        "response_format.json_schema.name {:?} must be 1 to 64 letters, digits, \
                         underscores or dashes",
                        json_schema.name
                    ),
                    Some("response_format"),
                ));
            }
            Ok(Some(
                json_schema.schema.clone().unwrap_or_else(|| json!({})),
            ))
        }
    }
}

/// The grammar for `schema` on the loaded model, or a 400 naming `param`.
pub fn constraint(
    loaded: &Loaded,
    schema: &Value,
    param: &'static str,
) -> Result<Constraint, ApiError> {
    let grammars = loaded
        .grammars
        .as_ref()
        .map_err(|e| ApiError::bad_request(one_line(e), Some(param)))?;
    grammars
        .json(schema)
        .map_err(|e| ApiError::bad_request(one_line(&e), Some(param)))
}
