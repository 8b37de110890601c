//! `POST /v1/embeddings`: each input (text or token ids) run through the
//! model, its final hidden states mean-pooled and scaled to unit length
//! (as llama.cpp's server does), answered as floats or, as the official
//! client asks by default, base64 of little-endian f32s.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;

use super::error::ApiError;
use super::handlers::{check_model, parse};
use super::openai::*;
use super::stream::Guard;
use super::{AppState, Loaded};
use crate::inference::engine::EmbedRequest;
use crate::inference::metrics::{Endpoint, Outcome};

/// Inputs one request may embed.
pub const MAX_INPUTS: usize = 64;

/// The inputs as token ids, checked: some, each non-empty, in the
/// vocabulary and within the context.
fn inputs(loaded: &Loaded, input: Prompt) -> Result<Vec<Vec<u32>>, ApiError> {
    let encode = |text: &str| {
        loaded
            .tokenizer
            .encode(text)
            .map_err(|e| ApiError::bad_request(e.to_string(), Some("input")))
    };
    let all = match input {
        Prompt::Text(text) => vec![encode(&text)?],
        Prompt::Texts(texts) => texts.iter().map(|t| encode(t)).collect::<Result<_, _>>()?,
        Prompt::Tokens(ids) => vec![ids],
        Prompt::TokenLists(lists) => lists,
    };
    if all.is_empty() || all.len() > MAX_INPUTS {
        return Err(ApiError::bad_request(
            format!("input must hold 1 to {MAX_INPUTS} items, got {}", all.len()),
            Some("input"),
        ));
    }
    for (i, ids) in all.iter().enumerate() {
        if ids.is_empty() {
            return Err(ApiError::bad_request(
                format!("input[{i}] is empty"),
                Some("input"),
            ));
        }
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= loaded.vocab_size) {
            return Err(ApiError::bad_request(
                format!("input[{i}]: token id {id} is outside the model's vocabulary"),
                Some("input"),
            ));
        }
        if ids.len() > loaded.max_context {
            return Err(ApiError::context_exceeded(format!(
                "This model's maximum context length is {} tokens. However, input[{i}] is {} tokens.",
                loaded.max_context,
                ids.len()
            )));
        }
    }
    Ok(all)
}

fn base64_f32(vector: &[f32]) -> String {
    let bytes: Vec<u8> = vector.iter().flat_map(|v| v.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub async fn embeddings(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut guard = Guard::new(state.metrics.clone(), Endpoint::Embeddings);
    let answer = async {
        let loaded = state.loaded()?;
        let req: EmbeddingRequest = parse(body)?;
        check_model(loaded, req.model.as_deref())?;
        let base64 = match req.encoding_format.as_deref() {
            None | Some("float") => false,
            Some("base64") => true,
            Some(other) => {
                return Err(ApiError::bad_request(
                    format!("encoding_format {other:?} is not float or base64"),
                    Some("encoding_format"),
                ))
            }
        };
        let inputs = inputs(loaded, req.input)?;
        let prompt_tokens = inputs.iter().map(Vec::len).sum();
        let (reply, vectors) = tokio::sync::oneshot::channel();
        loaded.engine.embed(EmbedRequest { inputs, reply })?;
        let vectors = vectors
            .await
            .map_err(|_| ApiError::internal("the engine stopped"))?;
        if let Some(width) = req.dimensions {
            let own = vectors.first().map_or(0, Vec::len);
            if width != own {
                return Err(ApiError::bad_request(
                    format!("this model's embeddings have {own} dimensions; dimensions={width} is not served"),
                    Some("dimensions"),
                ));
            }
        }
        Ok(EmbeddingList {
            object: "list",
            data: vectors
                .into_iter()
                .enumerate()
                .map(|(index, vector)| Embedding {
                    object: "embedding",
                    index,
                    embedding: if base64 {
                        EmbeddingVector::Base64(base64_f32(&vector))
                    } else {
                        EmbeddingVector::Float(vector)
                    },
                })
                .collect(),
            model: loaded.model_name.clone(),
            usage: EmbeddingUsage {
                prompt_tokens,
                total_tokens: prompt_tokens,
            },
        })
    }
    .await;
    match answer {
        Ok(list) => {
            guard.finish(Outcome::Ok);
            Json(list).into_response()
        }
        Err(e) => {
            guard.finish(e.outcome());
            e.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_holds_little_endian_f32s() {
        let text = base64_f32(&[1.0, -2.5]);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .expect("base64");
        assert_eq!(
            bytes,
            [1.0f32.to_le_bytes(), (-2.5f32).to_le_bytes()].concat()
        );
    }
}
