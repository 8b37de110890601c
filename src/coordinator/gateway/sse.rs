//! Reading the worker's server-sent events as they arrive in body chunks:
//! events are split at blank lines (a chunk may hold several or part of
//! one), and each `data:` payload is classified as the gateway needs it
//! (a token's text, the usage, the end, an error) without changing it, so
//! the client gets the worker's own bytes.

use serde_json::Value;

use super::billing::Tokens;

/// The most text an unfinished event may buffer.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// Splits a stream of text chunks into SSE `data:` payloads.
#[derive(Debug, Default)]
pub struct Splitter {
    buffer: String,
}

impl Splitter {
    /// The payloads completed by `chunk`; `Err` when an event outgrows
    /// [`MAX_EVENT_BYTES`].
    pub fn push(&mut self, chunk: &str) -> Result<Vec<String>, String> {
        self.buffer.push_str(&chunk.replace('\r', ""));
        let mut payloads = Vec::new();
        while let Some(end) = self.buffer.find("\n\n") {
            let event: String = self.buffer.drain(..end + 2).collect();
            let data: Vec<&str> = event
                .lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            if !data.is_empty() {
                payloads.push(data.join("\n"));
            }
        }
        if self.buffer.len() > MAX_EVENT_BYTES {
            return Err(format!(
                "an event of the node's stream passed {MAX_EVENT_BYTES} bytes"
            ));
        }
        Ok(payloads)
    }
}

/// What a payload is to the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Carries generated text (a token, roughly).
    Text,
    /// The usage chunk (no choices).
    Usage(Tokens),
    /// `[DONE]`.
    Done,
    /// An error the worker reported mid-stream.
    Error,
    /// Anything else (the role chunk, the finish chunk).
    Other,
}

/// Classifies one payload.
pub fn classify(payload: &str) -> Piece {
    if payload.trim() == "[DONE]" {
        return Piece::Done;
    }
    let Ok(value) = serde_json::from_str::<Value>(payload) else {
        return Piece::Other;
    };
    if value.get("error").is_some() {
        return Piece::Error;
    }
    let text = value
        .get("choices")
        .and_then(|c| c.get(0))
        .and_then(|c| {
            c.get("delta")
                .and_then(|d| d.get("content"))
                .or_else(|| c.get("text"))
        })
        .and_then(Value::as_str);
    if text.is_some_and(|t| !t.is_empty()) {
        return Piece::Text;
    }
    match usage(&value) {
        Some(tokens) => Piece::Usage(tokens),
        None => Piece::Other,
    }
}

/// The `usage` of a response or chunk.
pub fn usage(value: &Value) -> Option<Tokens> {
    let usage = value.get("usage").filter(|u| !u.is_null())?;
    Some(Tokens {
        prompt: usage.get("prompt_tokens")?.as_u64()?,
        completion: usage.get("completion_tokens")?.as_u64()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_and_within_chunks() {
        let mut s = Splitter::default();
        assert_eq!(s.push("data: {\"a\"").unwrap(), Vec::<String>::new());
        assert_eq!(
            s.push(":1}\n\ndata: [DONE]\n\n: keep-alive\n\n").unwrap(),
            vec!["{\"a\":1}".to_string(), "[DONE]".to_string()]
        );
        assert_eq!(s.push("data:x\r\n\r\n").unwrap(), vec!["x".to_string()]);
        assert!(s.push(&"y".repeat(MAX_EVENT_BYTES + 1)).is_err());
    }

    #[test]
    fn payloads_are_told_apart() {
        let chat = r#"{"choices":[{"index":0,"delta":{"content":" Paris"},"finish_reason":null}]}"#;
        assert_eq!(classify(chat), Piece::Text);
        let role = r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#;
        assert_eq!(classify(role), Piece::Other);
        let text = r#"{"choices":[{"index":0,"text":"x"}]}"#;
        assert_eq!(classify(text), Piece::Text);
        let usage =
            r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#;
        assert_eq!(
            classify(usage),
            Piece::Usage(Tokens {
                prompt: 5,
                completion: 2
            })
        );
        assert_eq!(classify("[DONE]"), Piece::Done);
        assert_eq!(classify(r#"{"error":{"message":"x"}}"#), Piece::Error);
    }
}
