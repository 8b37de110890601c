#!/usr/bin/env bash
# Prompt processing (prefill) of SmolLM2-135M-Instruct Q4_1: garage
# (benches/inference_decode.rs smollm2-prefill: one forward pass over N
# tokens with the quantised GEMM kernels) and llama.cpp (through
# llama-cpp-python, benches/llama_cpp_prefill.py, n_batch 512) back to back,
# ROUNDS times, with the load average before each; prints ms per prompt and
# the ratio llama.cpp time / garage time (> 1: garage is faster).
#
#   PYTHON=.venv-bench/bin/python THREADS=2 ROUNDS=2 TOKENS=128,512,1024 bash benches/prefill_vs_llama_cpp.sh
set -euo pipefail
# shellcheck source=benches/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
TOKENS="${TOKENS:-128,512,1024}"

llama_cpp_preflight
cargo bench --locked --profile "${PROFILE:-dev}" --bench inference_decode --no-run >&2

for round in $(seq "$ROUNDS"); do
  echo "round $round: load before garage: $(cut -d' ' -f1-3 /proc/loadavg)"
  ours=$(GARAGE_PREFILL_TOKENS="$TOKENS" cargo bench --locked --profile "${PROFILE:-dev}" \
           --bench inference_decode -- smollm2-prefill 2>/dev/null | grep 'prefill:')
  echo "$ours" | sed "s/^/round $round: garage: /"
  echo "round $round: load before llama.cpp: $(cut -d' ' -f1-3 /proc/loadavg)"
  peer=$("$PYTHON" benches/llama_cpp_prefill.py "$MODEL" --tokens "$TOKENS" --threads "$THREADS" 2>/dev/null)
  echo "$peer" | grep 'prefill:' | sed "s/^/round $round: /"
  for n in ${TOKENS//,/ }; do
    a=$(echo "$ours" | sed -n "s/.*prefill: $n tokens in \([0-9.]*\) ms.*/\1/p")
    b=$(echo "$peer" | sed -n "s/^llama.cpp prefill: $n tokens in \([0-9.]*\) ms.*/\1/p")
    echo "round $round: $n tokens: llama.cpp / garage time = $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", b / a }')"
  done
done
