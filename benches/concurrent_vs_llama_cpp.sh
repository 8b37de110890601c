#!/usr/bin/env bash
# Total decode throughput under 8 concurrent streams (issue 16): the
# SmolLM2 Q4_1 worker (--max-batch 8) and llama.cpp's own server with 8
# slots (llama-server -np 8, continuous batching) on the same GGUF and
# threads, back to back, ROUNDS times; benches/concurrent_streams.py runs
# the streams and prints total tokens/s; the ratio is garage / llama.cpp.
#
#   cargo build --release --locked
#   LLAMA_SERVER=/path/to/llama-server ROUNDS=2 bash benches/concurrent_vs_llama_cpp.sh
#
# llama-server is built from llama.cpp's source (the copy vendored in
# llama-cpp-python's source package will do):
#   cmake -B build -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF && cmake --build build --target llama-server -j
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source benches/lib.sh
GARAGE_BIN="${GARAGE_BIN:-target/release/garage}"
LLAMA_SERVER="${LLAMA_SERVER:-llama-server}"
STREAMS="${STREAMS:-8}"
PORT="${PORT:-18432}"
[[ -x "$GARAGE_BIN" ]] || die "$GARAGE_BIN is missing (cargo build --release --locked)"
[[ -f "$MODEL" ]] || die "$MODEL is missing (scripts/fetch-default-model.sh)"
command -v "$LLAMA_SERVER" >/dev/null || die "no llama-server at $LLAMA_SERVER (see the header)"
server=""
cleanup() { [[ -n "$server" ]] && kill "$server" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

# run NAME PORT READY_PATH COMMAND...: starts the server, runs the streams, stops it.
run() {
  local name=$1 port=$2 ready=$3
  shift 3
  "$@" >/dev/null 2>&1 &
  server=$!
  wait_for "http://127.0.0.1:$port$ready" 120
  echo "round $round: $name (load $(cut -d' ' -f1 /proc/loadavg)): $(python3 benches/concurrent_streams.py "http://127.0.0.1:$port" "$STREAMS")"
  kill "$server"; wait "$server" 2>/dev/null || true; server=""
}

echo "concurrent streams: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $THREADS threads"
for round in $(seq "$ROUNDS"); do
  run garage "$PORT" /readyz "$GARAGE_BIN" worker --model "$MODEL" --listen "127.0.0.1:$PORT" --max-batch "$STREAMS"
  run llama.cpp $(( PORT + 1 )) /health "$LLAMA_SERVER" -m "$MODEL" --host 127.0.0.1 --port $(( PORT + 1 )) \
    -np "$STREAMS" -c $(( STREAMS * 512 )) -t "$THREADS" -tb "$THREADS"
done
