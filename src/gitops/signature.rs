//! Commit signatures: only commits signed with an SSH key from the allowed
//! signers file are applied (git's `gpg.format=ssh`, namespace `git`). The
//! file takes git's `allowedSignersFile` lines (`[principals] [options]
//! KEYTYPE BASE64 [comment]`) or bare public keys; blank lines and `#`
//! comments are skipped.

use std::path::Path;

use ssh_key::{HashAlg, PublicKey, SshSig};

/// The namespace git signs commits in.
const GIT_NAMESPACE: &str = "git";
/// The most keys one file may list (a bound on the file and on each check).
const MAX_SIGNERS: usize = 1024;
/// The largest allowed signers file read.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// Why a signers file cannot be used or a commit's signature is refused.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("cannot read the allowed signers file {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} line {line}: {message} (fix: write one `ssh-ed25519 AAAA… comment` key per line, as `ssh-keygen -y` prints it)")]
    BadLine {
        path: String,
        line: usize,
        message: String,
    },
    #[error("{path} lists no key (fix: add the public keys whose commits the node applies)")]
    NoKeys { path: String },
    #[error("{path} lists more than {MAX_SIGNERS} keys")]
    TooMany { path: String },
    #[error("the commit is not signed, and signatures are required (fix: sign it with `git commit -S` and a listed SSH key)")]
    Unsigned,
    #[error("the commit's signature is not an SSH signature ({message}); only SSH signatures are checked (fix: sign with `git -c gpg.format=ssh commit -S`)")]
    NotSsh { message: String },
    #[error("the commit is signed by {fingerprint}, which the allowed signers file does not list")]
    UnknownSigner { fingerprint: String },
    #[error("the commit's signature by {fingerprint} does not verify: {message}")]
    Invalid {
        fingerprint: String,
        message: String,
    },
}

/// The keys whose commits are applied.
#[derive(Debug, Clone)]
pub struct AllowedSigners {
    keys: Vec<PublicKey>,
}

impl AllowedSigners {
    /// Reads the allowed signers file at `path`.
    pub fn load(path: &Path) -> Result<Self, SignatureError> {
        use std::io::Read;
        let label = path.display().to_string();
        let read_error = |source| SignatureError::Read {
            path: label.clone(),
            source,
        };
        let mut text = String::new();
        std::fs::File::open(path)
            .map_err(read_error)?
            .take(MAX_FILE_BYTES)
            .read_to_string(&mut text)
            .map_err(read_error)?;
        Self::parse(&text, &label)
    }

    /// Parses the file's text; `label` names it in errors.
    pub fn parse(text: &str, label: &str) -> Result<Self, SignatureError> {
        let mut keys = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |message: String| SignatureError::BadLine {
                path: label.to_string(),
                line: index + 1,
                message,
            };
            let words: Vec<&str> = line.split_whitespace().collect();
            let start = words
                .iter()
                .position(|word| is_key_type(word))
                .ok_or_else(|| bad("no key type (ssh-ed25519, ecdsa-sha2-…, ssh-rsa)".into()))?;
            let key_text = words[start..].join(" ");
            let key = PublicKey::from_openssh(&key_text).map_err(|err| bad(err.to_string()))?;
            if keys.len() == MAX_SIGNERS {
                return Err(SignatureError::TooMany {
                    path: label.to_string(),
                });
            }
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(SignatureError::NoKeys {
                path: label.to_string(),
            });
        }
        Ok(AllowedSigners { keys })
    }

    /// Checks a commit's armored `signature` over `signed` (the commit
    /// object without its signature header); returns the signer's
    /// fingerprint.
    pub fn verify(
        &self,
        signature: Option<&[u8]>,
        signed: &[u8],
    ) -> Result<String, SignatureError> {
        let signature = signature.ok_or(SignatureError::Unsigned)?;
        let signature = SshSig::from_pem(signature).map_err(|err| SignatureError::NotSsh {
            message: err.to_string(),
        })?;
        let fingerprint = signature
            .public_key()
            .fingerprint(HashAlg::Sha256)
            .to_string();
        let key = self
            .keys
            .iter()
            .find(|key| key.key_data() == signature.public_key())
            .ok_or_else(|| SignatureError::UnknownSigner {
                fingerprint: fingerprint.clone(),
            })?;
        key.verify(GIT_NAMESPACE, signed, &signature)
            .map_err(|err| SignatureError::Invalid {
                fingerprint: fingerprint.clone(),
                message: err.to_string(),
            })?;
        Ok(fingerprint)
    }
}

fn is_key_type(word: &str) -> bool {
    word.starts_with("ssh-") || word.starts_with("ecdsa-sha2-") || word.starts_with("sk-")
}

#[cfg(test)]
mod tests {
    use super::*;

    // A key made by `ssh-keygen -t ed25519` for these tests only.
    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH3xRu5zfk5g7I5wCdTZG8ct8BM0sSJB7/MqEZBHij6G test";

    #[test]
    fn allowed_signers_lines_with_principals_and_comments_parse() {
        let text =
            format!("# the fleet's operators\n\nops@example.org namespaces=\"git\" {KEY}\n{KEY}\n");
        let signers = AllowedSigners::parse(&text, "signers").expect("parses");
        assert_eq!(signers.keys.len(), 2);
    }

    #[test]
    fn a_bad_line_is_named_and_an_empty_file_refused() {
        let err = AllowedSigners::parse("# ok\nnot a key\n", "signers").expect_err("bad line");
        assert!(err.to_string().contains("signers line 2"), "{err}");
        let err = AllowedSigners::parse("# nothing\n", "signers").expect_err("no keys");
        assert!(matches!(err, SignatureError::NoKeys { .. }), "{err}");
    }

    #[test]
    fn an_unsigned_or_garbled_signature_is_refused() {
        let signers = AllowedSigners::parse(KEY, "signers").expect("parses");
        assert!(matches!(
            signers.verify(None, b"tree 0\n"),
            Err(SignatureError::Unsigned)
        ));
        let err = signers
            .verify(
                Some(b"-----BEGIN PGP SIGNATURE-----\nxx\n-----END PGP SIGNATURE-----\n"),
                b"tree 0\n",
            )
            .expect_err("not ssh");
        assert!(matches!(err, SignatureError::NotSsh { .. }), "{err}");
    }
}
