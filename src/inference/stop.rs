//! When generation ends: end-of-sequence token, `max_tokens`, or a stop
//! sequence in the text. Text that might be the start of a stop sequence is
//! held back, so a stream never shows a stop sequence's prefix.

/// Why a sequence finished, as OpenAI's `finish_reason` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    Length,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
        }
    }
}

/// Tracks the generated text of one sequence against its stop sequences.
#[derive(Debug)]
pub struct StopChecker {
    stops: Vec<String>,
    pending: String,
}

/// Outcome of feeding one text piece.
#[derive(Debug, PartialEq, Eq)]
pub struct Fed {
    /// Text that is now safe to show.
    pub emit: String,
    /// True when a stop sequence was found (nothing after it is emitted).
    pub stopped: bool,
}

impl StopChecker {
    pub fn new(stops: Vec<String>) -> Self {
        let stops = stops.into_iter().filter(|s| !s.is_empty()).collect();
        StopChecker {
            stops,
            pending: String::new(),
        }
    }

    pub fn feed(&mut self, piece: &str) -> Fed {
        self.pending.push_str(piece);
        let first_stop = self
            .stops
            .iter()
            .filter_map(|s| self.pending.find(s.as_str()))
            .min();
        if let Some(at) = first_stop {
            let emit = self.pending[..at].to_string();
            self.pending.clear();
            return Fed {
                emit,
                stopped: true,
            };
        }
        // Hold back the longest suffix that is a prefix of some stop sequence.
        let mut hold = 0;
        for stop in &self.stops {
            for (i, _) in stop.char_indices().skip(1) {
                if i > hold && self.pending.ends_with(&stop[..i]) {
                    hold = i;
                }
            }
        }
        let cut = self.pending.len() - hold;
        let emit = self.pending[..cut].to_string();
        self.pending.drain(..cut);
        Fed {
            emit,
            stopped: false,
        }
    }

    /// Text still held back when generation ends for another reason.
    pub fn flush(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_across_pieces_and_holds_prefixes() {
        let mut s = StopChecker::new(vec!["\n\n".into(), "END".into()]);
        assert_eq!(s.feed("Hello E").emit, "Hello ");
        let fed = s.feed("NDING");
        assert_eq!(
            fed,
            Fed {
                emit: String::new(),
                stopped: true
            }
        );
        let mut s = StopChecker::new(vec!["END".into()]);
        assert_eq!(s.feed("Hi E").emit, "Hi ");
        assert_eq!(s.feed("lse").emit, "Else");
        assert_eq!(s.feed(" E").emit, " ");
        assert_eq!(s.flush(), "E");
    }

    #[test]
    fn no_stops_passes_through() {
        let mut s = StopChecker::new(vec![String::new()]);
        assert_eq!(s.feed("abc").emit, "abc");
    }
}
