//! What a request does to the logits before a token is drawn: OpenAI's
//! `logit_bias` (added per token id), `presence_penalty` and
//! `frequency_penalty` (subtracted for tokens already generated: once, and
//! once per occurrence), and the `repetition_penalty` of llama.cpp and
//! Hugging Face (positive logits divided, negative multiplied, for tokens
//! in the prompt or the output). The model's own distribution, which
//! `logprobs` report, is left as it was.

use std::collections::{HashMap, HashSet};

/// The validated penalties of one request; the default changes nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Penalties {
    /// In [-2, 2].
    pub presence: f32,
    /// In [-2, 2].
    pub frequency: f32,
    /// Greater than 0; 1 is off.
    pub repetition: f32,
    /// Token id and what to add to its logit, in [-100, 100].
    pub logit_bias: Vec<(u32, f32)>,
}

impl Default for Penalties {
    fn default() -> Self {
        Penalties {
            presence: 0.0,
            frequency: 0.0,
            repetition: 1.0,
            logit_bias: Vec::new(),
        }
    }
}

impl Penalties {
    pub fn is_off(&self) -> bool {
        self.presence == 0.0
            && self.frequency == 0.0
            && self.repetition == 1.0
            && self.logit_bias.is_empty()
    }
}

/// The tokens one sequence has seen, for its penalties.
#[derive(Debug, Default)]
pub struct History {
    /// Generated tokens and how often each came.
    generated: HashMap<u32, u32>,
    /// Prompt and generated tokens (the repetition penalty's window).
    seen: HashSet<u32>,
}

impl History {
    pub fn new(prompt: &[u32]) -> Self {
        History {
            generated: HashMap::new(),
            seen: prompt.iter().copied().collect(),
        }
    }

    pub fn push(&mut self, token: u32) {
        *self.generated.entry(token).or_default() += 1;
        self.seen.insert(token);
    }
}

/// `logits` with `penalties` applied for `history`.
pub fn apply(penalties: &Penalties, history: &History, logits: &mut [f32]) {
    let mut at = |token: u32, change: &dyn Fn(f32) -> f32| {
        if let Some(logit) = logits.get_mut(token as usize) {
            *logit = change(*logit);
        }
    };
    if penalties.repetition != 1.0 {
        let r = penalties.repetition;
        for &token in &history.seen {
            at(token, &|l| if l > 0.0 { l / r } else { l * r });
        }
    }
    if penalties.presence != 0.0 || penalties.frequency != 0.0 {
        for (&token, &count) in &history.generated {
            let minus = penalties.presence + penalties.frequency * count as f32;
            at(token, &|l| l - minus);
        }
    }
    for &(token, bias) in &penalties.logit_bias {
        at(token, &|l| l + bias);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_and_frequency_lower_generated_tokens_by_count() {
        let mut history = History::new(&[0]);
        history.push(1);
        history.push(1);
        history.push(2);
        let penalties = Penalties {
            presence: 0.5,
            frequency: 0.25,
            ..Penalties::default()
        };
        let mut logits = [1.0, 1.0, 1.0, 1.0];
        apply(&penalties, &history, &mut logits);
        assert_eq!(logits, [1.0, 1.0 - 0.5 - 0.5, 1.0 - 0.5 - 0.25, 1.0]);
    }

    #[test]
    fn repetition_divides_positive_and_multiplies_negative_logits_of_seen_tokens() {
        let mut history = History::new(&[0, 1]);
        history.push(2);
        let penalties = Penalties {
            repetition: 2.0,
            ..Penalties::default()
        };
        let mut logits = [4.0, -4.0, 1.0, 3.0];
        apply(&penalties, &history, &mut logits);
        assert_eq!(logits, [2.0, -8.0, 0.5, 3.0]);
    }

    #[test]
    fn logit_bias_adds_and_ignores_ids_outside_the_row() {
        let penalties = Penalties {
            logit_bias: vec![(1, -100.0), (3, 5.0), (99, 1.0)],
            ..Penalties::default()
        };
        let mut logits = [0.0, 0.0, 0.0, 0.0];
        apply(&penalties, &History::default(), &mut logits);
        assert_eq!(logits, [0.0, -100.0, 0.0, 5.0]);
        assert!(Penalties::default().is_off() && !penalties.is_off());
    }
}
