#!/usr/bin/env bash
# Head-of-line blocking by a long prompt (issue 16): the SmolLM2 Q4_1
# worker with each --prefill-chunk in CHUNKS (0 = the whole prompt in one
# pass, as before chunked prefill), ROUNDS times each, alternating; per run
# benches/prefill_interference.py streams 160 tokens while a ~1,024-token
# prompt arrives, and prints the stream's inter-token median and p99.
#
#   cargo build --release --locked
#   CHUNKS="0 4 16 32" ROUNDS=2 bash benches/prefill_interference.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
GARAGE_BIN="${GARAGE_BIN:-target/release/garage}"
PYTHON="${PYTHON:-python3}"
CHUNKS="${CHUNKS:-0 4 16 32}"
ROUNDS="${ROUNDS:-2}"
MODEL=".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
[[ -x "$GARAGE_BIN" ]] || { echo "error: $GARAGE_BIN is missing (cargo build --release --locked)" >&2; exit 1; }
[[ -f "$MODEL" ]] || { echo "error: $MODEL is missing (scripts/fetch-default-model.sh)" >&2; exit 1; }
source benches/lib.sh

PORT="${PORT:-18431}"
worker=""
cleanup() { [[ -n "$worker" ]] && kill "$worker" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

echo "prefill interference: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for round in $(seq "$ROUNDS"); do
  for chunk in $CHUNKS; do
    "$GARAGE_BIN" worker --model "$MODEL" --listen "127.0.0.1:$PORT" --prefill-chunk "$chunk" \
      --max-batch 8 >/dev/null 2>&1 &
    worker=$!
    wait_for "http://127.0.0.1:$PORT/readyz" 120
    echo "round $round, --prefill-chunk $chunk (load $(cut -d' ' -f1 /proc/loadavg)): $("$PYTHON" benches/prefill_interference.py "http://127.0.0.1:$PORT")"
    kill "$worker"; wait "$worker" 2>/dev/null || true; worker=""
  done
done
