//! Decode speed of the model on the CPU backends (flex vs ndarray), on the
//! SmolLM2 GGUF when present (quantised kernels, and the dense f32 path for
//! comparison) and on random models of given shapes. A benchmark:
//! `cargo bench --bench inference_decode [-- NAME…]`, NAME one of
//! `smollm2-single-stream` (the figure `benches/inference_vs_llama_cpp.sh`
//! compares with llama.cpp), `smollm2-prefill` (prompt processing, which
//! `benches/prefill_vs_llama_cpp.sh` compares), `cpu-backends`,
//! `step-breakdown`; all of them without a name.

use std::path::Path;
use std::time::Instant;

use burn::backend::Flex;
use burn::tensor::backend::Backend;
use garage::inference::config::LlamaConfig;
use garage::inference::loader;
use garage::inference::model::{Llama, SeqStep};
use garage::inference::sampler::argmax;
use garage::inference::weights::{HostTensor, WeightMap};
use rand::{Rng, SeedableRng};

fn random_weights(c: &LlamaConfig) -> WeightMap {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut map = WeightMap::new(Path::new("random"));
    let mut put = |name: String, shape: Vec<usize>| {
        let n: usize = shape.iter().product();
        let data = (0..n).map(|_| rng.random_range(-0.05f32..0.05)).collect();
        map.insert(name, HostTensor { shape, data }, Path::new("random"));
    };
    let (h, q, kv, i) = (
        c.hidden_size,
        c.num_heads * c.head_dim,
        c.num_kv_heads * c.head_dim,
        c.intermediate_size,
    );
    put("model.embed_tokens.weight".into(), vec![c.vocab_size, h]);
    put("model.norm.weight".into(), vec![h]);
    if !c.tie_word_embeddings {
        put("lm_head.weight".into(), vec![c.vocab_size, h]);
    }
    for l in 0..c.num_layers {
        let p = format!("model.layers.{l}.");
        put(format!("{p}input_layernorm.weight"), vec![h]);
        put(format!("{p}post_attention_layernorm.weight"), vec![h]);
        put(format!("{p}self_attn.q_proj.weight"), vec![q, h]);
        put(format!("{p}self_attn.k_proj.weight"), vec![kv, h]);
        put(format!("{p}self_attn.v_proj.weight"), vec![kv, h]);
        put(format!("{p}self_attn.o_proj.weight"), vec![h, q]);
        put(format!("{p}mlp.gate_proj.weight"), vec![i, h]);
        put(format!("{p}mlp.up_proj.weight"), vec![i, h]);
        put(format!("{p}mlp.down_proj.weight"), vec![h, i]);
    }
    map
}

/// Prints time to first token and decode tokens/s (after the first token)
/// for `batch` copies of `prompt`, greedy, 128 tokens each.
fn measure<B: Backend>(label: &str, model: &Llama<B>, prompt: &[u32], batch: usize) {
    let decode = 128;
    let mut caches: Vec<_> = (0..batch).map(|_| model.new_cache()).collect();
    let start = Instant::now();
    let mut inputs: Vec<Vec<u32>> = vec![prompt.to_vec(); batch];
    let mut first = None;
    for _ in 0..=decode {
        let mut steps: Vec<SeqStep<'_, B>> = inputs
            .iter()
            .zip(caches.iter_mut())
            .map(|(tokens, cache)| SeqStep { tokens, cache })
            .collect();
        let logits = model.forward(&mut steps);
        let vocab = logits.dims()[1];
        let rows: Vec<f32> = logits.into_data().to_vec().expect("logits");
        for (b, input) in inputs.iter_mut().enumerate() {
            *input = vec![argmax(&rows[b * vocab..(b + 1) * vocab])];
        }
        first.get_or_insert_with(Instant::now);
    }
    let first = first.expect("ran");
    let ttft = (first - start).as_secs_f64();
    let rate = (decode * batch) as f64 / first.elapsed().as_secs_f64();
    println!(
        "{label}: batch {batch}: time to first token {:.1} ms ({}-token prompt), decode {rate:.1} tokens/s",
        ttft * 1e3,
        prompt.len()
    );
}

fn smollm2_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// The benchmarks, by the name given on the command line.
const BENCHMARKS: [(&str, fn()); 4] = [
    ("smollm2-single-stream", smollm2_single_stream_decode),
    ("smollm2-prefill", smollm2_prefill),
    ("cpu-backends", cpu_backends_decode_speed),
    ("step-breakdown", decode_step_breakdown),
];

fn main() {
    // `cargo bench` passes `--bench`; every other argument names a benchmark.
    let names: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    for name in &names {
        assert!(
            BENCHMARKS.iter().any(|(known, _)| known == name),
            "unknown benchmark {name:?}; known: {:?}",
            BENCHMARKS.map(|(known, _)| known)
        );
    }
    for (name, run) in BENCHMARKS {
        if names.is_empty() || names.iter().any(|n| n == name) {
            run();
        }
    }
}

/// The figure benches/inference_vs_llama_cpp.sh compares with llama.cpp:
/// SmolLM2 Q4_1, one sequence, quantised kernels on flex.
fn smollm2_single_stream_decode() {
    let gguf = smollm2_path();
    assert!(gguf.is_file(), "{} is missing", gguf.display());
    let mut cp = loader::load(&gguf).expect("load");
    let prompt = cp
        .tokenizer
        .encode("Once upon a time, there was a")
        .expect("encode");
    let model = Llama::<Flex>::from_weights(&cp.config, &mut cp.weights, &Default::default())
        .expect("build");
    measure(
        "SmolLM2-135M Q4_1, quantised kernels, on flex",
        &model,
        &prompt,
        1,
    );
}

/// The text whose first N tokens both engines prefill (the same words
/// `benches/llama_cpp_reference.py --prefill` tokenizes).
const PREFILL_TEXT: &str = "Once upon a time, there was a little robot who lived in a garage \
    and fixed the bicycles of every child in the village. ";

/// Prompt processing on SmolLM2 Q4_1: one forward pass over the first N
/// tokens of [`PREFILL_TEXT`] repeated, on a fresh cache, for each N in
/// `GARAGE_PREFILL_TOKENS` (default 128,512,1024); the median of three.
fn smollm2_prefill() {
    let gguf = smollm2_path();
    assert!(gguf.is_file(), "{} is missing", gguf.display());
    let mut cp = loader::load(&gguf).expect("load");
    let text = PREFILL_TEXT.repeat(100);
    let all = cp.tokenizer.encode(&text).expect("encode");
    let model = Llama::<Flex>::from_weights(&cp.config, &mut cp.weights, &Default::default())
        .expect("build");
    let sizes = std::env::var("GARAGE_PREFILL_TOKENS").unwrap_or_else(|_| "128,512,1024".into());
    for n in sizes
        .split(',')
        .map(|n| n.trim().parse::<usize>().expect("token counts"))
    {
        assert!(n <= all.len(), "at most {} tokens", all.len());
        let mut times: Vec<f64> = (0..3)
            .map(|_| {
                let mut cache = model.new_cache();
                let start = Instant::now();
                let logits = model.forward(&mut [SeqStep {
                    tokens: &all[..n],
                    cache: &mut cache,
                }]);
                let _ = logits.into_data();
                start.elapsed().as_secs_f64()
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let median = times[1];
        println!(
            "SmolLM2-135M Q4_1 prefill: {n} tokens in {:.1} ms ({:.1} tokens/s)",
            median * 1e3,
            n as f64 / median
        );
    }
}

/// SmolLM2 (when present) on flex at batch 1 and 8, on ndarray, and dense;
/// then a TinyLlama-shaped random model.
fn cpu_backends_decode_speed() {
    let gguf = smollm2_path();
    if gguf.is_file() {
        // The prompt benches/llama_cpp_reference.py times llama.cpp on.
        let prompt = loader::load(&gguf)
            .expect("load")
            .tokenizer
            .encode("Once upon a time, there was a")
            .expect("encode");
        let dev = Default::default();
        let mut cp = loader::load(&gguf).expect("load");
        let flex = Llama::<Flex>::from_weights(&cp.config, &mut cp.weights, &dev).expect("build");
        let label = "SmolLM2-135M Q4_1, quantised kernels, on flex";
        measure(label, &flex, &prompt, 1);
        measure(label, &flex, &prompt, 8);
        drop(flex);
        let mut cp = loader::load(&gguf).expect("load");
        let ndarray = Llama::<burn::backend::NdArray>::from_weights(
            &cp.config,
            &mut cp.weights,
            &Default::default(),
        )
        .expect("build");
        measure(
            "SmolLM2-135M Q4_1, quantised kernels, on ndarray",
            &ndarray,
            &prompt,
            1,
        );
        drop(ndarray);
        let mut cp = loader::load(&gguf).expect("load");
        let dense =
            Llama::<Flex>::from_weights_dense(&cp.config, &mut cp.weights, &dev).expect("build");
        measure("SmolLM2-135M Q4_1→f32, dense, on flex", &dense, &prompt, 1);
    }
    let tinyllama = LlamaConfig {
        hidden_size: 2048,
        intermediate_size: 5632,
        num_layers: 22,
        num_heads: 32,
        num_kv_heads: 4,
        head_dim: 64,
        vocab_size: 32000,
        max_position_embeddings: 2048,
        rms_norm_eps: 1e-5,
        rope_theta: 10000.0,
        rope_scaling: None,
        rope_freq_factors: None,
        tie_word_embeddings: false,
        bos_token_id: Some(1),
        eos_token_ids: vec![2],
    };
    let mut w = random_weights(&tinyllama);
    let prompt: Vec<u32> = (0..8).map(|i| i * 7 + 3).collect();
    let model =
        Llama::<Flex>::from_weights(&tinyllama, &mut w, &Default::default()).expect("build");
    measure("TinyLlama-1.1B-shaped f32 on flex", &model, &prompt, 1);
}

/// Where a SmolLM2-shaped decode step spends its time on flex: the weight
/// matmuls alone (same shapes, one token) against the whole step.
fn decode_step_breakdown() {
    for dtype in [burn::tensor::DType::F32, burn::tensor::DType::F16] {
        weight_matmuls(dtype);
    }
}

fn weight_matmuls(dtype: burn::tensor::DType) {
    use burn::tensor::{Distribution, Tensor};
    type B = burn::backend::Flex;
    let dev = Default::default();
    let opts = (&dev, dtype);
    let (h, qkv, inter, vocab, layers) = (576, 576 + 2 * 192, 1536, 49152, 30);
    let w_qkv = Tensor::<B, 2>::random([h, qkv], Distribution::Default, opts);
    let w_o = Tensor::<B, 2>::random([h, h], Distribution::Default, opts);
    let w_gu = Tensor::<B, 2>::random([h, 2 * inter], Distribution::Default, opts);
    let w_d = Tensor::<B, 2>::random([inter, h], Distribution::Default, opts);
    let head = Tensor::<B, 2>::random([h, vocab], Distribution::Default, opts);
    let x = Tensor::<B, 2>::random([1, h], Distribution::Default, opts);
    let xi = Tensor::<B, 2>::random([1, inter], Distribution::Default, opts);
    let steps = 20;
    let start = Instant::now();
    for _ in 0..steps {
        let mut acc = Vec::new();
        for _ in 0..layers {
            acc.push(x.clone().matmul(w_qkv.clone()));
            acc.push(x.clone().matmul(w_o.clone()));
            acc.push(x.clone().matmul(w_gu.clone()));
            acc.push(xi.clone().matmul(w_d.clone()));
        }
        let out = x.clone().matmul(head.clone());
        let _ = out.into_data();
        for t in acc {
            let _ = t.into_data();
        }
    }
    let per = start.elapsed().as_secs_f64() / steps as f64;
    println!(
        "weight matmuls of one SmolLM2 decode step ({dtype:?}, {:.0} MB of weights): {:.1} ms",
        (layers * (h * qkv + h * h + h * 2 * inter + inter * h) + h * vocab) as f64
            * dtype.size() as f64
            * 1e-6,
        per * 1e3
    );
}
