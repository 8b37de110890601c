#!/usr/bin/env python3
"""Record llama.cpp's greedy tokens (and its CPU speed) on a GGUF model, via
`llama-cpp-python` (PyPI; it compiles llama.cpp from source, ~10 min here).

The Rust test `tests/inference_smollm2.rs` compares our greedy tokens with
the recorded file, so CI never needs llama.cpp itself:

    pip install llama-cpp-python
    python benches/llama_cpp_reference.py .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf \
        tests/reference/smollm2_llama_cpp.json --threads 2
"""
import argparse
import json
import time

from llama_cpp import Llama

PROMPTS = [
    "The capital of France is",
    "Once upon a time, there was a",
    "The three primary colors are",
    "def fibonacci(n):",
    "Water boils at a temperature of",
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--tokens", type=int, default=24)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bench-tokens", type=int, default=128)
    args = ap.parse_args()

    llm = Llama(
        model_path=args.model,
        n_ctx=1024,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        n_batch=512,
        verbose=False,
    )
    cases = []
    for prompt in PROMPTS:
        ids = llm.tokenize(prompt.encode(), add_bos=False, special=True)
        llm.reset()
        out = []
        for tok in llm.generate(ids, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0):
            if tok == llm.token_eos() or len(out) == args.tokens:
                break
            out.append(tok)
        text = llm.detokenize(out).decode("utf-8", errors="replace")
        cases.append({"prompt": prompt, "prompt_ids": ids, "greedy_ids": out, "text": text})
        print(f"{prompt!r} -> {text!r}")

    # Speed: time to first token (prefill + 1 token) and steady decode rate.
    ids = llm.tokenize(PROMPTS[1].encode(), add_bos=False, special=True)
    llm.reset()
    start = time.perf_counter()
    first = None
    n = 0
    for _tok in llm.generate(ids, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0):
        n += 1
        if first is None:
            first = time.perf_counter()
        if n == args.bench_tokens:
            break
    end = time.perf_counter()
    bench = {
        "threads": args.threads,
        "prompt_tokens": len(ids),
        "ttft_s": first - start,
        "decode_tokens_per_s": (n - 1) / (end - first),
        "generated": n,
    }
    print(json.dumps(bench))
    with open(args.out, "w") as f:
        json.dump({"model": args.model.rsplit("/", 1)[-1], "cases": cases, "bench": bench}, f, indent=1)


if __name__ == "__main__":
    main()
