//! Broken model sources are clear errors naming the file and tensor, never
//! panics: truncated or corrupt safetensors and GGUF, a config that does not
//! match the weights, a missing tokenizer.

mod common;

use std::path::Path;

use garage::error_text::one_line;
use garage::inference::backend::Cpu;
use garage::inference::loader;
use garage::inference::model::Llama;

fn tiny(python: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    common::make_tiny(python, dir.path(), &[]);
    dir
}

fn load_err(dir: &Path) -> String {
    one_line(&loader::load(dir).expect_err("must fail"))
}

#[test]
fn truncated_and_corrupt_safetensors() {
    let Some(py) = common::python() else { return };
    let dir = tiny(&py);
    let file = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&file).expect("read");
    std::fs::write(&file, &bytes[..bytes.len() / 2]).expect("truncate");
    let e = load_err(dir.path());
    assert!(e.contains("model.safetensors: corrupt or truncated"), "{e}");

    std::fs::write(&file, b"\x10\0\0\0\0\0\0\0not json at all!").expect("corrupt");
    let e = load_err(dir.path());
    assert!(e.contains("model.safetensors: corrupt or truncated"), "{e}");
}

#[test]
fn config_not_matching_weights_names_file_and_tensor() {
    let Some(py) = common::python() else { return };
    let dir = tiny(&py);
    let cfg_path = dir.path().join("config.json");
    let text = std::fs::read_to_string(&cfg_path).expect("read");
    std::fs::write(
        &cfg_path,
        text.replace("\"intermediate_size\": 160", "\"intermediate_size\": 128"),
    )
    .expect("write");
    let mut cp = loader::load(dir.path()).expect("loads");
    let e = Llama::<Cpu>::from_weights(&cp.config, &mut cp.weights, &Default::default())
        .expect_err("shape mismatch");
    let e = one_line(&e);
    assert!(
        e.contains("model.safetensors")
            && e.contains("tensor model.layers.0.mlp.gate_proj.weight has shape [160, 64]")
            && e.contains("[128, 64]"),
        "{e}"
    );
}

#[test]
fn missing_tokenizer_and_missing_weights() {
    let Some(py) = common::python() else { return };
    let dir = tiny(&py);
    std::fs::remove_file(dir.path().join("tokenizer.json")).expect("rm");
    let e = load_err(dir.path());
    assert!(
        e.contains("tokenizer.json: tokenizer file is missing"),
        "{e}"
    );
    std::fs::remove_file(dir.path().join("model.safetensors")).expect("rm");
    let e = load_err(dir.path());
    assert!(e.contains("no model.safetensors"), "{e}");
}

#[test]
fn corrupt_and_truncated_gguf() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("m.gguf");
    std::fs::write(&path, b"NOPE\x03\0\0\0").expect("write");
    let e = load_err(&path);
    assert!(
        e.contains("m.gguf: corrupt or truncated GGUF file: not a GGUF file"),
        "{e}"
    );

    // A header that promises one tensor and one metadata entry, then stops.
    let mut bytes = b"GGUF".to_vec();
    bytes.extend(3u32.to_le_bytes());
    bytes.extend(1u64.to_le_bytes());
    bytes.extend(1u64.to_le_bytes());
    bytes.extend(20u64.to_le_bytes());
    bytes.extend(b"general.arch");
    std::fs::write(&path, &bytes).expect("write");
    let e = load_err(&path);
    assert!(e.contains("m.gguf: corrupt or truncated GGUF file"), "{e}");

    let e = load_err(&dir.path().join("absent"));
    assert!(e.contains("no such model"), "{e}");
}

#[test]
fn an_index_naming_shards_outside_the_directory_is_refused() {
    for bad in ["/etc/passwd", "../outside.safetensors"] {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                "num_attention_heads": 4, "vocab_size": 100}"#,
        )
        .expect("config");
        let index = serde_json::json!({"weight_map": {"w": bad}});
        std::fs::write(
            dir.path().join("model.safetensors.index.json"),
            index.to_string(),
        )
        .expect("index");
        let e = load_err(dir.path());
        assert!(
            e.contains("model.safetensors.index.json: refusing a shard")
                && e.contains(&format!("{bad:?}"))
                && e.contains("plain file name"),
            "{e}"
        );
    }
}

/// Runs the real `garage worker` on `model`; it must stop on its own, fast.
fn worker_fails(model: &Path) -> (Option<i32>, String) {
    let start = std::time::Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_garage"))
        .args([
            "worker",
            "--listen",
            "127.0.0.1:0",
            "--device",
            "cpu",
            "--model",
        ])
        .arg(model)
        .output()
        .expect("run garage worker");
    assert!(
        start.elapsed() < std::time::Duration::from_secs(60),
        "took {:?}",
        start.elapsed()
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_worker_refuses_an_absurd_context_and_a_gguf_with_absurd_counts() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "vocab_size": 100,
            "max_position_embeddings": 1000000000000}"#,
    )
    .expect("config");
    let (code, stderr) = worker_fails(dir.path());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("max_position_embeddings") && stderr.contains("1000000000000"),
        "{stderr}"
    );

    // 4 KB claiming 2^40 tensors.
    let path = dir.path().join("hostile.gguf");
    let mut bytes = b"GGUF".to_vec();
    bytes.extend(3u32.to_le_bytes());
    bytes.extend((1u64 << 40).to_le_bytes());
    bytes.extend(0u64.to_le_bytes());
    bytes.resize(4096, 0);
    std::fs::write(&path, &bytes).expect("write");
    let (code, stderr) = worker_fails(&path);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("hostile.gguf") && stderr.contains("tensor count"),
        "{stderr}"
    );

    // The same header in a sparse file larger than this machine's available
    // memory: refused before it is read, not an abort.
    let available = garage::meminfo::read()
        .expect("/proc/meminfo")
        .available_bytes;
    let sparse = dir.path().join("sparse.gguf");
    std::fs::write(&sparse, &bytes).expect("write");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&sparse)
        .and_then(|f| f.set_len(available + (1 << 30)))
        .expect("grow sparse");
    let (code, stderr) = worker_fails(&sparse);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("sparse.gguf") && stderr.contains("of memory available to load it"),
        "{stderr}"
    );
}
