//! Our own options in a SQLite URL, read and removed before the driver
//! sees it: `synchronous=full` (the default: every acknowledged commit is
//! on disk, a power loss included) or `synchronous=normal` (WAL synced at
//! checkpoints: a commit survives the process crashing, not the machine).

use super::StoreError;

/// The `PRAGMA synchronous` a URL asks for, and the URL without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    pub url: String,
    pub synchronous: &'static str,
}

/// Reads `synchronous` out of `url`'s query string (any other parameter is
/// the driver's).
pub fn parse(url: &str) -> Result<SqliteOptions, StoreError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok(SqliteOptions {
            url: url.to_string(),
            synchronous: "FULL",
        });
    };
    let mut synchronous = "FULL";
    let mut rest = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("synchronous", value)) => {
                synchronous = match value.to_ascii_lowercase().as_str() {
                    "full" => "FULL",
                    "normal" => "NORMAL",
                    _ => {
                        return Err(StoreError::BadSynchronous {
                            value: value.to_string(),
                        })
                    }
                }
            }
            _ => rest.push(pair),
        }
    }
    let url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok(SqliteOptions { url, synchronous })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_unless_the_url_says_normal() {
        let plain = parse("sqlite:///d/c.db").expect("parses");
        assert_eq!(
            (plain.url.as_str(), plain.synchronous),
            ("sqlite:///d/c.db", "FULL")
        );
        let normal = parse("sqlite:///d/c.db?mode=rwc&synchronous=NORMAL").expect("parses");
        assert_eq!(
            (normal.url.as_str(), normal.synchronous),
            ("sqlite:///d/c.db?mode=rwc", "NORMAL")
        );
        let only = parse("sqlite:///d/c.db?synchronous=full").expect("parses");
        assert_eq!(
            (only.url.as_str(), only.synchronous),
            ("sqlite:///d/c.db", "FULL")
        );
        let err = parse("sqlite:///d/c.db?synchronous=off").expect_err("off is refused");
        assert!(err.to_string().contains("\"off\""), "{err}");
    }
}
