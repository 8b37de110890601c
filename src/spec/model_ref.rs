//! A model reference as the worker and node.yaml name it: a local path, or
//! a Hugging Face repository (`hf:owner/name[/file.gguf][@revision]`).
//! Plain data and its text form; fetching it is `crate::inference::hub`'s.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

const PREFIX: &str = "hf:";

/// A model as `garage worker --model` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelRef {
    /// A Hugging Face directory or a `.gguf` file on this host.
    Local(PathBuf),
    /// A repository on the hub.
    Hub(HubModel),
}

/// A Hugging Face repository, optionally one GGUF file in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubModel {
    /// `owner/name`.
    pub repo: String,
    /// Branch, tag or commit.
    pub revision: String,
    /// One `.gguf` file of the repository; `None` means the Hugging Face
    /// layout (config, tokenizer, safetensors), or the repository's only GGUF.
    pub file: Option<String>,
}

/// Why a `--model` value is not a model reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{value}` is not a model: {reason} (write a path, or hf:owner/name[/file.gguf][@revision])"
)]
pub struct ModelRefError {
    value: String,
    reason: &'static str,
}

impl FromStr for ModelRef {
    type Err = ModelRefError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let Some(rest) = value.strip_prefix(PREFIX) else {
            return Ok(ModelRef::Local(PathBuf::from(value)));
        };
        let err = |reason| ModelRefError {
            value: value.to_string(),
            reason,
        };
        let (path, revision) = match rest.split_once('@') {
            Some((path, revision)) if !revision.is_empty() => (path, revision.to_string()),
            Some(_) => return Err(err("the revision after `@` is empty")),
            None => (rest, "main".to_string()),
        };
        let mut parts = path.splitn(3, '/');
        let (Some(owner), Some(name)) = (parts.next(), parts.next()) else {
            return Err(err("the repository needs an owner and a name"));
        };
        let valid = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        if !valid(owner) || !valid(name) {
            return Err(err(
                "owner and name may hold letters, digits, `-`, `_` and `.`",
            ));
        }
        let file = match parts.next() {
            Some(f) if f.is_empty() || f.split('/').any(|s| s.is_empty() || s == "..") => {
                return Err(err("the file path inside the repository is not valid"))
            }
            Some(f) => Some(f.to_string()),
            None => None,
        };
        Ok(ModelRef::Hub(HubModel {
            repo: format!("{owner}/{name}"),
            revision,
            file,
        }))
    }
}

impl From<PathBuf> for ModelRef {
    fn from(path: PathBuf) -> Self {
        ModelRef::Local(path)
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelRef::Local(path) => write!(f, "{}", path.display()),
            ModelRef::Hub(m) => write!(f, "{m}"),
        }
    }
}

impl fmt::Display for HubModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", self.repo)?;
        if let Some(file) = &self.file {
            write!(f, "/{file}")?;
        }
        write!(f, "@{}", self.revision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(repo: &str, revision: &str, file: Option<&str>) -> ModelRef {
        ModelRef::Hub(HubModel {
            repo: repo.into(),
            revision: revision.into(),
            file: file.map(Into::into),
        })
    }

    #[test]
    fn model_refs_parse_and_print_back() {
        let cases = [
            (
                "hf:HuggingFaceTB/SmolLM2-135M-Instruct",
                hub("HuggingFaceTB/SmolLM2-135M-Instruct", "main", None),
            ),
            ("hf:o/n@v1.0", hub("o/n", "v1.0", None)),
            (
                "hf:o/n/sub/m.Q4_1.gguf@abc123",
                hub("o/n", "abc123", Some("sub/m.Q4_1.gguf")),
            ),
        ];
        for (text, want) in cases {
            let got: ModelRef = text.parse().expect(text);
            assert_eq!(got, want, "{text}");
            let printed = got.to_string();
            assert_eq!(printed.parse::<ModelRef>().expect("reparse"), want);
        }
        assert_eq!(
            "/models/x.gguf".parse::<ModelRef>().expect("path"),
            ModelRef::Local("/models/x.gguf".into())
        );
    }

    #[test]
    fn bad_model_refs_say_why() {
        for (text, reason) in [
            ("hf:justone", "owner and a name"),
            ("hf:o/n@", "revision after `@` is empty"),
            ("hf:o w/n", "letters, digits"),
            ("hf:o/n/../x.gguf", "file path"),
            ("hf:o/n/", "file path"),
        ] {
            let e = text.parse::<ModelRef>().expect_err(text).to_string();
            assert!(
                e.contains(reason) && e.contains("hf:owner/name"),
                "{text}: {e}"
            );
        }
    }
}
