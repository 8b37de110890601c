#!/usr/bin/env bash
# Single-stream decode of SmolLM2-135M-Instruct Q4_1: garage (quantised
# kernels on flex, benches/inference_decode.rs) and llama.cpp (through
# llama-cpp-python, benches/llama_cpp_reference.py) back to back, ROUNDS
# times, with the load average before each run; prints tokens/s and the ratio.
#
#   PYTHON=.venv-bench/bin/python THREADS=2 ROUNDS=2 bash benches/inference_vs_llama_cpp.sh
#
# The cargo profile is PROFILE (default dev, as the tests build: dependencies
# at opt-level 3; release rebuilds burn); extra cargo flags (e.g. --features
# cuda) go in CARGO_FLAGS.
set -euo pipefail
# shellcheck source=benches/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

llama_cpp_preflight
# shellcheck disable=SC2086
cargo bench --locked --profile "${PROFILE:-dev}" ${CARGO_FLAGS:-} --bench inference_decode --no-run >&2

for round in $(seq "$ROUNDS"); do
  echo "round $round: load before garage: $(cut -d' ' -f1-3 /proc/loadavg)"
  # shellcheck disable=SC2086
  ours=$(cargo bench --locked --profile "${PROFILE:-dev}" ${CARGO_FLAGS:-} --bench inference_decode -- \
           smollm2-single-stream 2>/dev/null |
         sed -n 's/.*decode \([0-9.]*\) tokens\/s.*/\1/p')
  echo "round $round: garage: $ours tokens/s"
  echo "round $round: load before llama.cpp: $(cut -d' ' -f1-3 /proc/loadavg)"
  peer=$("$PYTHON" benches/llama_cpp_reference.py "$MODEL" "$OUT/rec.json" \
           --threads "$THREADS" --bench-tokens 64 2>/dev/null |
         tail -1 | "$PYTHON" -c 'import json,sys; print(round(json.load(sys.stdin)["decode_tokens_per_s"], 1))')
  echo "round $round: llama.cpp ($THREADS threads): $peer tokens/s"
  echo "round $round: garage / llama.cpp = $(awk -v a="$ours" -v b="$peer" 'BEGIN { printf "%.2f", a / b }')"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
