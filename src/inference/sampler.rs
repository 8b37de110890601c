//! Next-token choice from logits: the request's penalties and logit bias
//! first ([`penalties`]), then greedy at temperature 0, otherwise
//! temperature-scaled softmax restricted by top-k and top-p (nucleus), drawn
//! from a per-request RNG so a seed reproduces a completion.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::penalties::{self, History, Penalties};

/// Validated sampling parameters of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// 0 means greedy.
    pub temperature: f32,
    /// In (0, 1]; 1 keeps every token.
    pub top_p: f32,
    /// 0 keeps every token.
    pub top_k: usize,
    pub seed: Option<u64>,
    pub penalties: Penalties,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            seed: None,
            penalties: Penalties::default(),
        }
    }
}

/// Draws tokens for one sequence.
#[derive(Debug)]
pub struct Sampler {
    params: SamplingParams,
    rng: StdRng,
    history: History,
}

impl Sampler {
    /// A sampler for a sequence that starts with `prompt`.
    pub fn new(params: SamplingParams, prompt: &[u32]) -> Self {
        let rng = match params.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        Sampler {
            params,
            rng,
            history: History::new(prompt),
        }
    }

    /// The next token for `logits` (one row, vocabulary-sized), after the
    /// request's penalties; it counts as generated for the next ones.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        let token = if self.params.penalties.is_off() {
            self.draw(logits)
        } else {
            let mut adjusted = logits.to_vec();
            penalties::apply(&self.params.penalties, &self.history, &mut adjusted);
            self.draw(&adjusted)
        };
        self.history.push(token);
        token
    }

    fn draw(&mut self, logits: &[f32]) -> u32 {
        if self.params.temperature <= 0.0 {
            return argmax(logits);
        }
        let mut candidates: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .filter(|(_, l)| l.is_finite())
            .map(|(i, &l)| (i as u32, l / self.params.temperature))
            .collect();
        if candidates.is_empty() {
            return argmax(logits);
        }
        candidates.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
        if self.params.top_k > 0 {
            candidates.truncate(self.params.top_k);
        }
        let max = candidates[0].1;
        let mut probs: Vec<f32> = candidates.iter().map(|(_, l)| (l - max).exp()).collect();
        let total: f32 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= total);
        if self.params.top_p < 1.0 {
            let mut cumulative = 0.0;
            let mut keep = probs.len();
            for (i, p) in probs.iter().enumerate() {
                cumulative += p;
                if cumulative >= self.params.top_p {
                    keep = i + 1;
                    break;
                }
            }
            probs.truncate(keep);
        }
        let total: f32 = probs.iter().sum();
        let mut draw = self.rng.random::<f32>() * total;
        for (i, p) in probs.iter().enumerate() {
            draw -= p;
            if draw <= 0.0 {
                return candidates[i].0;
            }
        }
        candidates[probs.len() - 1].0
    }
}

/// Index of the largest logit (the first on ties); 0 for an empty row.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(temperature: f32, top_p: f32, top_k: usize, seed: u64) -> SamplingParams {
        SamplingParams {
            temperature,
            top_p,
            top_k,
            seed: Some(seed),
            penalties: Penalties::default(),
        }
    }

    #[test]
    fn temperature_zero_is_greedy() {
        let mut s = Sampler::new(params(0.0, 1.0, 0, 1), &[]);
        assert_eq!(s.sample(&[0.1, 3.0, 2.9, -1.0]), 1);
    }

    #[test]
    fn top_k_one_is_greedy_at_any_temperature() {
        let mut s = Sampler::new(params(5.0, 1.0, 1, 7), &[]);
        for _ in 0..50 {
            assert_eq!(s.sample(&[0.1, 3.0, 2.9, -1.0]), 1);
        }
    }

    #[test]
    fn top_p_keeps_the_nucleus() {
        // softmax ≈ [0.66, 0.24, 0.09, ...]: p = 0.5 keeps only the first.
        let mut s = Sampler::new(params(1.0, 0.5, 0, 3), &[]);
        for _ in 0..50 {
            assert_eq!(s.sample(&[3.0, 2.0, 1.0, -5.0]), 0);
        }
        let mut s = Sampler::new(params(1.0, 0.8, 0, 3), &[]);
        for _ in 0..200 {
            assert!(s.sample(&[3.0, 2.0, 1.0, -5.0]) < 2);
        }
    }

    #[test]
    fn seed_reproduces_and_high_temperature_spreads() {
        let logits = [1.0, 1.0, 1.0, 1.0];
        let draw = |seed| {
            let mut s = Sampler::new(params(1.0, 1.0, 0, seed), &[]);
            (0..64).map(|_| s.sample(&logits)).collect::<Vec<_>>()
        };
        assert_eq!(draw(42), draw(42));
        let seen: std::collections::HashSet<u32> = draw(42).into_iter().collect();
        assert_eq!(seen.len(), 4);
    }

    #[test]
    fn a_frequency_penalty_moves_greedy_off_a_repeated_token() {
        let mut p = params(0.0, 1.0, 0, 1);
        p.penalties.frequency = 1.0;
        let mut s = Sampler::new(p, &[]);
        let logits = [2.0, 1.5, 0.0];
        assert_eq!(s.sample(&logits), 0);
        assert_eq!(s.sample(&logits), 1, "0 now costs 1.0: 1.0 < 1.5");
        assert_eq!(s.sample(&logits), 0, "1 costs 1.0 too: 1.0 > 0.5");
    }
}
