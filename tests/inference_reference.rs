//! The burn Llama model against the independent NumPy reference
//! (tests/reference/llama_numpy.py) on tiny random checkpoints: last-token
//! logits of the first pass (whole, and prefilled in chunks on the cache
//! as the scheduler's chunked prefill does), greedy continuations, single
//! and batched, and mean-pooled embeddings.

mod common;

use std::path::Path;

use garage::inference::backend::Cpu;
use garage::inference::checkpoint::Checkpoint;
use garage::inference::loader;
use garage::inference::model::{Llama, SeqStep};
use garage::inference::sampler::argmax;

const PROMPTS: [&str; 3] = [
    "The capital of France is",
    "Hello, world!",
    "def add(a, b):",
];
const STEPS: usize = 8;

struct Case {
    input_ids: Vec<u32>,
    last_logits: Vec<f32>,
    greedy: Vec<u32>,
    embedding: Vec<f32>,
}

fn reference(python: &Path, dir: &Path) -> Vec<Case> {
    let out = dir.join("reference.json");
    let script = common::script("llama_numpy.py");
    let mut args = vec![
        script.to_str().expect("utf8").to_string(),
        dir.to_str().expect("utf8").to_string(),
        out.to_str().expect("utf8").to_string(),
        "--steps".into(),
        STEPS.to_string(),
    ];
    for p in PROMPTS {
        args.push("--prompt".into());
        args.push(p.into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    common::run(python, &args);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out).expect("read")).expect("json");
    let nums = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|x| x.as_f64().expect("number"))
            .collect()
    };
    json["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| Case {
            input_ids: nums(&c["input_ids"]).iter().map(|&x| x as u32).collect(),
            last_logits: nums(&c["last_logits"]).iter().map(|&x| x as f32).collect(),
            greedy: nums(&c["greedy"]).iter().map(|&x| x as u32).collect(),
            embedding: nums(&c["embedding"]).iter().map(|&x| x as f32).collect(),
        })
        .collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "vocabulary sizes differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn rows(t: burn::tensor::Tensor<Cpu, 2>) -> Vec<Vec<f32>> {
    let [n, v] = t.dims();
    let flat: Vec<f32> = t.into_data().to_vec().expect("f32 logits");
    (0..n).map(|i| flat[i * v..(i + 1) * v].to_vec()).collect()
}

fn check(extra: &[&str]) {
    let Some(python) = common::python() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    common::make_tiny(&python, dir.path(), extra);
    let cases = reference(&python, dir.path());
    let Checkpoint {
        config,
        mut weights,
        tokenizer,
        ..
    } = loader::load(dir.path()).expect("load checkpoint");
    let model = Llama::<Cpu>::from_weights(&config, &mut weights, &Default::default())
        .expect("build model");

    // One sequence at a time, greedy with the KV cache.
    for (prompt, case) in PROMPTS.iter().zip(&cases) {
        let ids = tokenizer.encode(prompt).expect("encode");
        assert_eq!(ids, case.input_ids, "token ids of {prompt:?}");
        let mut cache = model.new_cache();
        let mut logits = rows(model.forward(&mut [SeqStep {
            tokens: &ids,
            cache: &mut cache,
        }]))
        .remove(0);
        let diff = max_abs_diff(&logits, &case.last_logits);
        assert!(diff < 1e-4, "{extra:?} {prompt:?}: max abs diff {diff}");
        let mut greedy = Vec::new();
        for _ in 0..STEPS {
            let next = argmax(&logits);
            greedy.push(next);
            logits = rows(model.forward(&mut [SeqStep {
                tokens: &[next],
                cache: &mut cache,
            }]))
            .remove(0);
        }
        assert_eq!(
            greedy, case.greedy,
            "{extra:?} greedy continuation of {prompt:?}"
        );

        // Prefilled two tokens a pass on the growing cache.
        let mut cache = model.new_cache();
        let mut last = Vec::new();
        for chunk in ids.chunks(2) {
            last = rows(model.forward(&mut [SeqStep {
                tokens: chunk,
                cache: &mut cache,
            }]))
            .remove(0);
        }
        let diff = max_abs_diff(&last, &case.last_logits);
        assert!(
            diff < 1e-4,
            "{extra:?} {prompt:?} in chunks: max abs diff {diff}"
        );

        let diff = max_abs_diff(&model.embedding(&ids), &case.embedding);
        assert!(
            diff < 1e-4,
            "{extra:?} {prompt:?} embedding: max abs diff {diff}"
        );
    }

    // All prompts in one batch: prefill together, then decode together.
    let mut caches: Vec<_> = cases.iter().map(|_| model.new_cache()).collect();
    let mut inputs: Vec<Vec<u32>> = cases.iter().map(|c| c.input_ids.clone()).collect();
    let mut produced: Vec<Vec<u32>> = vec![Vec::new(); cases.len()];
    for step in 0..=STEPS {
        let mut steps: Vec<SeqStep<'_, Cpu>> = inputs
            .iter()
            .zip(caches.iter_mut())
            .map(|(tokens, cache)| SeqStep { tokens, cache })
            .collect();
        let out = rows(model.forward(&mut steps));
        for (i, row) in out.iter().enumerate() {
            if step == 0 {
                let diff = max_abs_diff(row, &cases[i].last_logits);
                assert!(diff < 1e-4, "batched prefill {i}: max abs diff {diff}");
            }
            if step < STEPS {
                let next = argmax(row);
                produced[i].push(next);
                inputs[i] = vec![next];
            }
        }
    }
    for (i, case) in cases.iter().enumerate() {
        assert_eq!(produced[i], case.greedy, "{extra:?} batched greedy {i}");
    }
}

#[test]
fn gqa_llama3_rope_tied_f32_matches_reference() {
    check(&["--variant", "gqa-llama3-tied", "--dtype", "f32"]);
}

#[test]
fn mha_untied_bf16_sharded_matches_reference() {
    check(&[
        "--variant",
        "mha-untied",
        "--dtype",
        "bf16",
        "--shards",
        "2",
    ]);
}

#[test]
fn gqa_f16_matches_reference() {
    check(&[
        "--variant",
        "gqa-llama3-tied",
        "--dtype",
        "f16",
        "--seed",
        "7",
    ]);
}
