#!/usr/bin/env python3
"""llama.cpp's prompt processing on a GGUF model, via `llama-cpp-python`:
the first N tokens of the text `benches/inference_decode.rs`
(`smollm2-prefill`) prefills, evaluated on a fresh context, the median of
three, for each N. Prints one line per N and a JSON summary.

    python benches/llama_cpp_prefill.py .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf \
        --tokens 128,512,1024 --threads 2
"""
import argparse
import json
import statistics
import time

from llama_cpp import Llama

# The same words as PREFILL_TEXT in benches/inference_decode.rs.
TEXT = (
    "Once upon a time, there was a little robot who lived in a garage "
    "and fixed the bicycles of every child in the village. "
)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--tokens", default="128,512,1024")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    sizes = [int(n) for n in args.tokens.split(",")]
    llm = Llama(
        model_path=args.model,
        n_ctx=max(sizes) + 16,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        n_batch=512,
        verbose=False,
    )
    ids = llm.tokenize((TEXT * 100).encode(), add_bos=True, special=True)
    results = {}
    for n in sizes:
        times = []
        for _ in range(3):
            llm.reset()
            start = time.perf_counter()
            llm.eval(ids[:n])
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        results[n] = median
        print(f"llama.cpp prefill: {n} tokens in {median * 1e3:.1f} ms ({n / median:.1f} tokens/s)")
    print(json.dumps({"threads": args.threads, "prefill_s": results}))


if __name__ == "__main__":
    main()
