//! The verdict on a qualification job: its answer text (from the worker's
//! OpenAI-style response) must contain the expected text, and its speed
//! (completion tokens over the time from lease grant to complete) must
//! reach the market's minimum, or the live parameter
//! `qualification.<market>.minTokensPerSecond` where one is set.

use serde_json::Value;

use super::api::Qualification;
use crate::coordinator::jobs::api::{InferenceRequest, JobState};

/// How long a node that failed waits before its next try.
pub const RETRY_PAUSE_MS: i64 = 60_000;
/// How long the worker may take on a qualification job.
pub const QUALIFICATION_TIMEOUT_MS: i64 = 300_000;

/// What a qualification job showed.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Passed {
        tokens_per_second: f64,
    },
    Failed {
        tokens_per_second: Option<f64>,
        reason: String,
    },
}

impl Verdict {
    /// Logs what node `node`'s qualification showed.
    pub fn log(&self, node: uuid::Uuid) {
        match self {
            Verdict::Passed { tokens_per_second } => {
                tracing::info!(%node, tokens_per_second, "node qualified");
            }
            Verdict::Failed { reason, .. } => {
                tracing::warn!(%node, %reason, "node failed its qualification");
            }
        }
    }
}

/// `qualification` with its minimum speed replaced by the live
/// `qualification.<market>.minTokensPerSecond`, when one is set.
pub fn with_minimum(qualification: Qualification, minimum: Option<i64>) -> Qualification {
    match minimum {
        Some(tokens_per_second) => Qualification {
            // Parameters are integers of at most 100000: exact in an f64.
            min_tokens_per_second: tokens_per_second as f64,
            ..qualification
        },
        None => qualification,
    }
}

/// The inference request of a qualification job: greedy, one answer.
pub fn request(qualification: &Qualification) -> InferenceRequest {
    InferenceRequest {
        model: qualification.model.clone(),
        messages: None,
        prompt: Some(qualification.prompt.clone()),
        max_tokens: Some(qualification.max_tokens),
        temperature: Some(0.0),
        top_p: None,
        seed: Some(0),
        stop: Vec::new(),
    }
}

/// The answer text of a completion or chat response.
fn answer(result: &Value) -> Option<&str> {
    let choice = result.get("choices")?.get(0)?;
    choice
        .get("text")
        .or_else(|| choice.get("message").and_then(|m| m.get("content")))
        .and_then(Value::as_str)
}

/// Judges a qualification job that ended in `state` with `result`,
/// `elapsed_ms` after its lease was granted.
pub fn judge(
    qualification: &Qualification,
    state: JobState,
    result: &Value,
    elapsed_ms: i64,
) -> Verdict {
    let failed = |tokens_per_second, reason: String| Verdict::Failed {
        tokens_per_second,
        reason,
    };
    if state != JobState::Succeeded {
        return failed(
            None,
            format!("the qualification job ended {}", state.as_str()),
        );
    }
    let Some(tokens) = result
        .get("usage")
        .and_then(|usage| usage.get("completion_tokens"))
        .and_then(Value::as_u64)
    else {
        return failed(None, "the result has no usage.completion_tokens".into());
    };
    let seconds = elapsed_ms.max(1) as f64 / 1000.0;
    let speed = tokens as f64 / seconds;
    let Some(text) = answer(result) else {
        return failed(Some(speed), "the result has no answer text".into());
    };
    let expected = qualification.expected.trim();
    if !text.contains(expected) {
        return failed(
            Some(speed),
            format!("wrong answer: {text:?} does not contain {expected:?}"),
        );
    }
    if speed < qualification.min_tokens_per_second {
        return failed(
            Some(speed),
            format!(
                "too slow: {speed:.1} tokens/s, the market's minimum is {:.1}",
                qualification.min_tokens_per_second
            ),
        );
    }
    Verdict::Passed {
        tokens_per_second: speed,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn paris() -> Qualification {
        Qualification {
            model: "m".into(),
            prompt: "The capital of France is".into(),
            expected: " Paris.".into(),
            max_tokens: 3,
            min_tokens_per_second: 10.0,
        }
    }

    fn response(text: &str, tokens: u64) -> Value {
        json!({"choices": [{"text": text}], "usage": {"completion_tokens": tokens}})
    }

    #[test]
    fn a_right_answer_at_speed_passes() {
        let verdict = judge(&paris(), JobState::Succeeded, &response(" Paris.", 3), 100);
        assert_eq!(
            verdict,
            Verdict::Passed {
                tokens_per_second: 30.0
            }
        );
        let chat = json!({"choices": [{"message": {"content": "Paris."}}], "usage": {"completion_tokens": 3}});
        assert!(matches!(
            judge(&paris(), JobState::Succeeded, &chat, 100),
            Verdict::Passed { .. }
        ));
    }

    #[test]
    fn a_set_minimum_overrides_the_markets_own() {
        let slow = response(" Paris.", 3);
        let strict = with_minimum(paris(), Some(100));
        assert!(matches!(
            judge(&strict, JobState::Succeeded, &slow, 100),
            Verdict::Failed { .. }
        ));
        assert_eq!(with_minimum(paris(), None), paris());
        let lenient = with_minimum(paris(), Some(1));
        assert!(matches!(
            judge(&lenient, JobState::Succeeded, &response(" Paris.", 3), 1000),
            Verdict::Passed { .. }
        ));
    }

    #[test]
    fn a_wrong_slow_or_failed_job_fails() {
        let reason = |verdict| match verdict {
            Verdict::Failed { reason, .. } => reason,
            passed => panic!("passed: {passed:?}"),
        };
        let wrong = judge(&paris(), JobState::Succeeded, &response(" Lyon.", 3), 100);
        assert!(reason(wrong).starts_with("wrong answer"));
        let slow = judge(&paris(), JobState::Succeeded, &response(" Paris.", 3), 1000);
        assert!(reason(slow).starts_with("too slow: 3.0 tokens/s"));
        let ended = judge(&paris(), JobState::Failed, &Value::Null, 100);
        assert_eq!(reason(ended), "the qualification job ended FAILED");
        let bare = judge(&paris(), JobState::Succeeded, &json!({"choices": []}), 100);
        assert!(reason(bare).contains("usage"));
    }
}
