//! The worker's body bytes as text frames: every piece a valid UTF-8
//! string, a character cut between two chunks carried over to the next,
//! invalid bytes as U+FFFD (the worker writes JSON, so there should be
//! none), and long pieces cut at character boundaries to fit a frame.

/// Splits a byte stream into UTF-8 strings without cutting a character.
#[derive(Debug, Default)]
pub struct Utf8Chunks {
    /// The start of a character whose remaining bytes have not come yet
    /// (at most 3 bytes).
    tail: Vec<u8>,
}

impl Utf8Chunks {
    pub fn new() -> Self {
        Self::default()
    }

    /// The text of the bytes so far; an incomplete character at the end
    /// waits for the next call.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        let mut buffer = std::mem::take(&mut self.tail);
        buffer.extend_from_slice(bytes);
        let mut text = String::with_capacity(buffer.len());
        let mut rest = buffer.as_slice();
        loop {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    text.push_str(valid);
                    break;
                }
                Err(err) => {
                    let (valid, after) = rest.split_at(err.valid_up_to());
                    text.push_str(&String::from_utf8_lossy(valid));
                    match err.error_len() {
                        Some(bad) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[bad..];
                        }
                        None => {
                            self.tail = after.to_vec();
                            break;
                        }
                    }
                }
            }
        }
        text
    }

    /// What is left when the body ended: an incomplete character, as U+FFFD.
    pub fn finish(self) -> String {
        String::from_utf8_lossy(&self.tail).into_owned()
    }
}

/// `text` in pieces of at most `max` bytes, cut at character boundaries
/// (`max` below 4 still makes progress, one character a piece).
pub fn pieces(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = max.min(rest.len());
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        if end == 0 {
            end = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let (piece, after) = rest.split_at(end);
        out.push(piece);
        rest = after;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_character_cut_between_chunks_waits_for_its_rest() {
        let text = "data: {\"content\":\"hé 😀 ok\"}\n\n";
        let bytes = text.as_bytes();
        // Every way of cutting the stream in two gives back the same text,
        // and no piece ends inside a character.
        for cut in 0..=bytes.len() {
            let mut chunks = Utf8Chunks::new();
            let first = chunks.push(&bytes[..cut]);
            let second = chunks.push(&bytes[cut..]);
            assert_eq!(format!("{first}{second}"), text, "cut at {cut}");
            assert_eq!(chunks.finish(), "");
        }
        // One byte at a time.
        let mut chunks = Utf8Chunks::new();
        let mut joined = String::new();
        for byte in bytes {
            joined.push_str(&chunks.push(std::slice::from_ref(byte)));
        }
        assert_eq!(joined, text);
        let emoji = "😀".as_bytes();
        let mut chunks = Utf8Chunks::new();
        assert_eq!(chunks.push(&emoji[..1]), "");
        assert_eq!(chunks.push(&emoji[1..3]), "");
        assert_eq!(chunks.push(&emoji[3..]), "😀");
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let mut chunks = Utf8Chunks::new();
        assert_eq!(chunks.push(b"a\xffb\xc3"), "a\u{fffd}b");
        // The cut-off start of "é" followed by a non-continuation byte.
        assert_eq!(chunks.push(b"x"), "\u{fffd}x");
        assert_eq!(chunks.push(b"\xe2\x82"), "");
        assert_eq!(chunks.finish(), "\u{fffd}");
    }

    #[test]
    fn long_text_is_cut_at_character_boundaries() {
        assert_eq!(pieces("abcdef", 4), vec!["abcd", "ef"]);
        assert_eq!(pieces("ééé", 3), vec!["é", "é", "é"]);
        assert_eq!(pieces("😀a", 2), vec!["😀", "a"]);
        assert!(pieces("", 4).is_empty());
        let long = "é".repeat(1000);
        let cut = pieces(&long, 301);
        assert!(cut.iter().all(|p| p.len() <= 301));
        assert_eq!(cut.concat(), long);
    }
}
