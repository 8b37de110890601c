//! A client's request as the gateway needs it: the model, whether it
//! streams and wants usage, the completion limit and residency, and the
//! body to forward (with usage always asked of the node when streaming,
//! since billing needs it). The rest of the body is the worker's to check.

use serde_json::{Map, Value};

use super::error::GatewayError;
use super::frames::Endpoint;
use crate::coordinator::jobs::api::Residency;

/// The request header naming where a request may be served.
pub const RESIDENCY_HEADER: &str = "x-garage-residency";
/// The completion tokens held for a request that sets no limit.
pub const DEFAULT_HOLD_TOKENS: u64 = 4_096;

/// One parsed gateway request.
#[derive(Debug, Clone, PartialEq)]
pub struct Ask {
    pub endpoint: Endpoint,
    pub model: String,
    pub stream: bool,
    /// Whether the client asked for the usage chunk.
    pub include_usage: bool,
    /// The completion limit the client set, if any.
    pub max_completion_tokens: Option<u64>,
    /// The body sent to the node.
    pub body: String,
    /// Bytes of the client's body: an upper bound of its prompt tokens.
    pub body_bytes: u64,
}

impl Ask {
    /// Parses `body` for `endpoint`.
    pub fn parse(endpoint: Endpoint, body: &[u8]) -> Result<Ask, GatewayError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            GatewayError::bad_request(None, format!("the request body is not valid JSON: {e}"))
        })?;
        let Value::Object(mut object) = value else {
            return Err(GatewayError::bad_request(
                None,
                "the request body must be a JSON object",
            ));
        };
        let model = match object.get("model") {
            Some(Value::String(m)) if !m.trim().is_empty() => m.clone(),
            _ => {
                return Err(GatewayError::bad_request(
                    Some("model"),
                    "`model` is required: one of the ids GET /v1/models lists",
                ))
            }
        };
        let stream = match object.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(GatewayError::bad_request(
                    Some("stream"),
                    "`stream` must be a boolean",
                ))
            }
        };
        let include_usage = object
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let max_completion_tokens = ["max_completion_tokens", "max_tokens"]
            .iter()
            .find_map(|key| object.get(*key).and_then(Value::as_u64));
        if stream {
            let options = object
                .entry("stream_options")
                .or_insert_with(|| Value::Object(Map::new()));
            match options {
                Value::Object(options) => {
                    options.insert("include_usage".into(), Value::Bool(true));
                }
                _ => {
                    return Err(GatewayError::bad_request(
                        Some("stream_options"),
                        "`stream_options` must be an object",
                    ))
                }
            }
        }
        Ok(Ask {
            endpoint,
            model,
            stream,
            include_usage,
            max_completion_tokens,
            body: Value::Object(object).to_string(),
            body_bytes: u64::try_from(body.len()).unwrap_or(u64::MAX),
        })
    }

    /// The completion tokens the hold covers.
    pub fn held_completion_tokens(&self) -> u64 {
        self.max_completion_tokens.unwrap_or(DEFAULT_HOLD_TOKENS)
    }
}

/// Parses a residency: comma-separated `EU`, country codes (`SE`) and
/// Swedish price areas (`SE3`), e.g. `SE` or `EU` or `SE3,SE4`.
pub fn parse_residency(text: &str) -> Result<Residency, String> {
    let mut residency = Residency::default();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let upper = part.to_ascii_uppercase();
        match upper.as_str() {
            "EU" => residency.eu = true,
            "SE1" | "SE2" | "SE3" | "SE4" => residency.price_areas.push(upper),
            code if code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()) => {
                residency.countries.push(upper)
            }
            _ => {
                return Err(format!(
                    "{part:?} is not a residency (fix: use EU, a country code like SE, or a Swedish price area SE1-SE4, comma-separated)"
                ))
            }
        }
    }
    if residency == Residency::default() {
        return Err("the residency is empty (fix: e.g. SE, EU or SE3)".into());
    }
    Ok(residency)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streamed_request_always_asks_the_node_for_usage() {
        let ask = Ask::parse(
            Endpoint::ChatCompletions,
            br#"{"model":"m","stream":true,"messages":[],"max_tokens":5}"#,
        )
        .unwrap();
        assert!(ask.stream && !ask.include_usage);
        assert_eq!(ask.max_completion_tokens, Some(5));
        let forwarded: Value = serde_json::from_str(&ask.body).unwrap();
        assert_eq!(forwarded["stream_options"]["include_usage"], true);
        assert_eq!(forwarded["messages"], serde_json::json!([]));

        let plain = Ask::parse(Endpoint::Completions, br#"{"model":"m","prompt":"x"}"#).unwrap();
        assert!(!plain.stream);
        assert_eq!(plain.held_completion_tokens(), DEFAULT_HOLD_TOKENS);
        assert!(!plain.body.contains("stream_options"));
    }

    #[test]
    fn bad_requests_name_the_field() {
        for (body, param) in [
            (&br#"{"prompt":"x"}"#[..], Some("model")),
            (br#"{"model":"m","stream":"yes"}"#, Some("stream")),
            (br#"[1]"#, None),
            (br#"{"#, None),
        ] {
            let err = Ask::parse(Endpoint::Completions, body).unwrap_err();
            assert_eq!(err.param, param, "{}", String::from_utf8_lossy(body));
            assert_eq!(err.status, axum::http::StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn residencies_parse_countries_the_eu_and_price_areas() {
        let r = parse_residency("SE").unwrap();
        assert_eq!(r.countries, vec!["SE".to_string()]);
        let r = parse_residency("eu, se3").unwrap();
        assert!(r.eu);
        assert_eq!(r.price_areas, vec!["SE3".to_string()]);
        for bad in ["", "Sweden", "S1", ","] {
            assert!(parse_residency(bad).is_err(), "{bad:?}");
        }
    }
}
