//! GGUF loading on tiny checkpoints written by llama.cpp's own `gguf` Python
//! package, one per block type: the GGUF model on the dense path
//! (dequantised, Q/K rows un-permuted, tokenizer from metadata) must compute
//! the same logits as the same weights loaded from safetensors, which
//! inference_reference checks against the NumPy reference. The quantised
//! kernels (activations rounded to 8 bits, as llama.cpp does) must stay
//! close to that.

mod common;

use garage::inference::backend::Cpu;
use garage::inference::chat_template::Message;
use garage::inference::checkpoint::Checkpoint;
use garage::inference::loader;
use garage::inference::model::{Llama, SeqStep};

const PROMPTS: [&str; 4] = [
    "The capital of France is",
    "Once upon a time there was 1 fox.",
    "<|im_start|>user\nHello<|im_end|>",
    // Characters outside the tiny vocabularies: byte fallback in SentencePiece.
    "Crème brûlée ☕  twice  spaced",
];

fn last_logits(model: &Llama<Cpu>, ids: &[u32]) -> Vec<f32> {
    let mut cache = model.new_cache();
    model
        .forward(&mut [SeqStep {
            tokens: ids,
            cache: &mut cache,
        }])
        .into_data()
        .to_vec()
        .expect("logits")
}

fn build(cp: &mut Checkpoint) -> Llama<Cpu> {
    Llama::<Cpu>::from_weights(&cp.config, &mut cp.weights, &Default::default()).expect("build")
}

fn build_dense(cp: &mut Checkpoint) -> Llama<Cpu> {
    Llama::<Cpu>::from_weights_dense(&cp.config, &mut cp.weights, &Default::default())
        .expect("build")
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max)
}

fn check(qtype: &str) {
    check_variant("gqa-tied", qtype, "bpe");
}

fn check_variant(variant: &str, qtype: &str, tokenizer: &str) {
    let Some(python) = common::python() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    common::make_tiny(
        &python,
        dir.path(),
        &[
            "--variant",
            variant,
            "--gguf",
            qtype,
            "--tokenizer",
            tokenizer,
        ],
    );
    let mut hf = loader::load(dir.path()).expect("load safetensors");
    let mut gg = loader::load(&dir.path().join("model.gguf")).expect("load gguf");
    // GGUF stores eps as f32.
    assert!((hf.config.rms_norm_eps - gg.config.rms_norm_eps).abs() < 1e-9);
    // GGUF carries Llama-3 rope scaling as divisors, not as `rope_scaling`:
    // the logits below compare the two forms.
    assert_eq!(
        hf.config.rope_scaling.is_some(),
        gg.config.rope_freq_factors.is_some(),
        "{variant}: rope_freqs.weight read"
    );
    let neutral =
        |c: &garage::inference::config::LlamaConfig| garage::inference::config::LlamaConfig {
            rms_norm_eps: hf.config.rms_norm_eps,
            rope_scaling: None,
            rope_freq_factors: None,
            ..c.clone()
        };
    assert_eq!(
        neutral(&hf.config),
        neutral(&gg.config),
        "{qtype}: config from GGUF metadata"
    );
    let hf_model = build(&mut hf);
    let gg_model = build_dense(&mut gg);
    let mut gg_again = loader::load(&dir.path().join("model.gguf")).expect("load gguf");
    let gg_kernels = build(&mut gg_again);
    for prompt in PROMPTS {
        let ids = hf.tokenizer.encode(prompt).expect("encode");
        assert_eq!(
            gg.tokenizer.encode(prompt).expect("encode"),
            ids,
            "{qtype}: ids of {prompt:?}"
        );
        let a = last_logits(&hf_model, &ids);
        let b = last_logits(&gg_model, &ids);
        let diff = max_abs_diff(&a, &b);
        assert!(diff < 1e-4, "{qtype}: {prompt:?}: max abs diff {diff}");
        let q = last_logits(&gg_kernels, &ids);
        let scale = a.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let diff = max_abs_diff(&a, &q);
        // Measured: up to 0.047 of the largest logit on these random tiny
        // models (8-bit activations); the SmolLM2 test checks real tokens.
        assert!(
            diff <= 0.1 * scale,
            "{qtype}: {prompt:?}: quantised kernels: max abs diff {diff}, max |logit| {scale}"
        );
    }
    let messages = [Message {
        role: "user".into(),
        content: "Hi".into(),
    }];
    let render = |cp: &Checkpoint| {
        cp.chat_template
            .as_ref()
            .expect("template")
            .render(&messages)
            .expect("render")
    };
    assert_eq!(render(&hf), render(&gg), "{qtype}: chat template");
}

#[test]
fn gguf_llama3_rope_freqs_match_rope_scaling() {
    check_variant("gqa-llama3-tied", "F32", "bpe");
}

#[test]
fn gguf_sentencepiece_vocabulary_matches_tokenizer_json() {
    check_variant("gqa-tied", "Q8_0", "spm");
}

#[test]
fn gguf_f32_matches_safetensors() {
    check("F32");
}

#[test]
fn gguf_f16_matches_safetensors() {
    check("F16");
}

#[test]
fn gguf_q8_0_matches_safetensors() {
    check("Q8_0");
}

#[test]
fn gguf_q4_0_matches_safetensors() {
    check("Q4_0");
}

#[test]
fn gguf_q4_1_matches_safetensors() {
    check("Q4_1");
}
