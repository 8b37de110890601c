//! The rule for the shard file names a `model.safetensors.index.json` lists:
//! plain file names in the model's own directory, checked before any hub
//! request or file-system join (issue 9, C13: `../` and absolute names made
//! the hub download write outside its cache). Hugging Face shards are plain
//! names like `model-00001-of-00002.safetensors`, so no subdirectories.

/// Why a shard name from an index file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "shard name {name:?} {reason}; a shard must be a plain file name next to the index, \
     like model-00001-of-00002.safetensors"
)]
pub struct ShardNameError {
    pub name: String,
    pub reason: &'static str,
}

/// Accepts `name` when it is a plain relative file name: not empty, not `.`
/// or `..`, and free of `/`, `\` and NUL.
pub fn check(name: &str) -> Result<(), ShardNameError> {
    let reason = if name.is_empty() {
        Some("is empty")
    } else if name.starts_with('/') {
        Some("is an absolute path")
    } else if name.contains('/') || name.contains('\\') {
        Some("names a directory (holds `/` or `\\`)")
    } else if name.contains('\0') {
        Some("holds a NUL byte")
    } else if name == "." || name == ".." {
        Some("is a directory, not a file")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(ShardNameError {
            name: name.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_file_names_pass() {
        for name in ["model-00001-of-00002.safetensors", "a.safetensors", "..x"] {
            assert_eq!(check(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn names_that_leave_the_directory_are_refused() {
        for (name, reason) in [
            ("../../escape.safetensors", "names a directory"),
            ("/etc/passwd", "absolute path"),
            ("sub/model.safetensors", "names a directory"),
            ("..\\escape.safetensors", "names a directory"),
            ("", "is empty"),
            ("..", "is a directory"),
            (".", "is a directory"),
            ("a\0b", "NUL"),
        ] {
            let e = check(name).expect_err(name).to_string();
            assert!(
                e.contains(reason) && e.contains("plain file name"),
                "{name:?}: {e}"
            );
        }
    }
}
