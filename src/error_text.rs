//! An error and its causes on one line (`outer: cause: root cause`), for
//! HTTP error bodies and test assertions; the CLI prints one cause a line.

use std::error::Error;

/// `e` and every `source()` below it, joined by `": "`.
pub fn one_line(e: &dyn Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("loading the model")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn causes_follow_the_message() {
        let e = Outer(std::io::Error::other("disk on fire"));
        assert_eq!(super::one_line(&e), "loading the model: disk on fire");
    }
}
