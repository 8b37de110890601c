//! Chunked prefill: how many prompt tokens each sequence feeds in one
//! forward pass. While any sequence is decoding, prompts share a budget of
//! `chunk` tokens per pass (first admitted first), so a long prompt is
//! spread over many passes instead of freezing every running stream for
//! its whole prefill; with nobody decoding, each prompt goes in at once.

/// Tokens each sequence feeds this pass, given each one's prompt tokens
/// not yet fed (0: it is decoding and feeds its last sampled token).
/// A prefilling sequence given 0 sits this pass out.
pub fn plan(pending: &[usize], chunk: usize) -> Vec<usize> {
    let decoding = pending.contains(&0);
    let mut budget = if decoding && chunk > 0 {
        chunk
    } else {
        usize::MAX
    };
    pending
        .iter()
        .map(|&p| {
            if p == 0 {
                1
            } else {
                let take = p.min(budget);
                budget -= take;
                take
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_go_in_whole_when_nobody_decodes() {
        assert_eq!(plan(&[1024, 7], 32), [1024, 7]);
        assert_eq!(plan(&[], 32), Vec::<usize>::new());
    }

    #[test]
    fn prompts_share_the_chunk_while_others_decode() {
        assert_eq!(plan(&[0, 1024, 0], 32), [1, 32, 1]);
        assert_eq!(plan(&[0, 20, 30], 32), [1, 20, 12]);
        assert_eq!(
            plan(&[0, 40, 30], 32),
            [1, 32, 0],
            "the second waits its turn"
        );
    }

    #[test]
    fn a_chunk_of_zero_turns_chunking_off() {
        assert_eq!(plan(&[0, 1024], 0), [1, 1024]);
    }
}
