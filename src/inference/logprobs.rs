//! Log-probabilities of the model's distribution for a drawn token and its
//! most likely alternatives (OpenAI's `logprobs` / `top_logprobs`), from
//! one row of logits: log-softmax, computed once per row in f64.

/// The chosen token's log-probability and the `top` most likely tokens
/// with theirs, most likely first.
#[derive(Debug, Clone, PartialEq)]
pub struct RowLogprobs {
    pub chosen: f32,
    pub top: Vec<(u32, f32)>,
}

/// Log-probabilities of `chosen` and of the `top` best tokens in `logits`.
pub fn row(logits: &[f32], chosen: u32, top: usize) -> RowLogprobs {
    let max = logits
        .iter()
        .copied()
        .filter(|l| l.is_finite())
        .fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits
        .iter()
        .filter(|l| l.is_finite())
        .map(|&l| f64::from(l - max).exp())
        .sum();
    let log_z = f64::from(max) + sum.ln();
    let logprob = |l: f32| (f64::from(l) - log_z) as f32;
    let mut best: Vec<(u32, f32)> = Vec::with_capacity(top + 1);
    if top > 0 {
        for (i, &l) in logits.iter().enumerate() {
            if !l.is_finite() {
                continue;
            }
            if best.len() < top || best.last().is_some_and(|&(_, worst)| l > worst) {
                let at = best.partition_point(|&(_, other)| other >= l);
                best.insert(at, (i as u32, l));
                best.truncate(top);
            }
        }
    }
    RowLogprobs {
        chosen: logits
            .get(chosen as usize)
            .map_or(f32::NEG_INFINITY, |&l| logprob(l)),
        top: best.into_iter().map(|(i, l)| (i, logprob(l))).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logprobs_are_a_log_softmax_and_the_top_are_sorted() {
        let logits = [1.0f32, 3.0, 2.0, f32::NEG_INFINITY];
        let got = row(&logits, 2, 2);
        let z: f64 = [1.0f64, 3.0, 2.0].iter().map(|l| l.exp()).sum();
        assert!((f64::from(got.chosen) - (2.0 - z.ln())).abs() < 1e-6);
        assert_eq!(got.top.iter().map(|t| t.0).collect::<Vec<_>>(), [1, 2]);
        let total: f64 = [0u32, 1, 2]
            .iter()
            .map(|&t| f64::from(row(&logits, t, 0).chosen).exp())
            .sum();
        assert!((total - 1.0).abs() < 1e-6, "{total}");
        assert!(row(&logits, 0, 0).top.is_empty());
    }
}
