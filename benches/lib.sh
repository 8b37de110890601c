# Shared helpers for the benchmark scripts (sourced, not run).
# Every loop here is bounded; cleanup only touches containers labelled
# garage.bench=converge (both the garage node and the compose project).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GARAGE_BIN="${GARAGE_BIN:-$ROOT/target/release/garage}"
NODE_YAML="$ROOT/benches/converge/node.yaml"
COMPOSE_YML="$ROOT/benches/converge/docker-compose.yml"
COMPOSE_PROJECT="garage-bench"
BENCH_LABEL="garage.bench=converge"
NODE_NAME="bench"
N_CONTAINERS=20
AGENT_URL="http://127.0.0.1:19464"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# wait_for URL SECONDS: until URL answers 2xx; exits the script past SECONDS.
wait_for() { # URL SECONDS
  local deadline=$(( $(date +%s) + $2 ))
  until curl -fs -o /dev/null "$1"; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "no answer from $1 within $2 s" >&2; exit 1; }
    sleep 0.2
  done
}

# The llama.cpp comparisons (inference_vs_llama_cpp.sh, prefill_vs_llama_cpp.sh):
# SmolLM2's GGUF, a Python with llama-cpp-python, threads and rounds.
PYTHON="${PYTHON:-.venv-bench/bin/python}"
THREADS="${THREADS:-2}"
ROUNDS="${ROUNDS:-2}"
MODEL=".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"

# llama_cpp_preflight: exits unless MODEL and PYTHON's llama_cpp are there.
llama_cpp_preflight() {
  [[ -f "$ROOT/$MODEL" ]] || die "$MODEL is missing (see README: Tests)"
  "$PYTHON" -c 'import llama_cpp' || die "$PYTHON has no llama_cpp"
}

now_ns() { date +%s%N; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

preflight() {
  [[ -x "$GARAGE_BIN" ]] || die "GARAGE_BIN=$GARAGE_BIN is not executable (cargo build --release --locked, or set GARAGE_BIN)"
  docker info >/dev/null 2>&1 || die "no Docker engine answers (start dockerd or run .ci/run)"
  "$ROOT/docker/test-image.sh" >&2
  say "garage: $GARAGE_BIN ($("$GARAGE_BIN" --version 2>/dev/null || echo '?'))"
  say "engine: $(docker version --format 'server {{.Server.Version}}, API {{.Server.APIVersion}}')"
  say "machine: $(nproc) cores, $(uname -srm)"
}

# Number of running containers with the bench label.
running_count() {
  docker ps -q --filter "label=$BENCH_LABEL" --filter status=running | wc -l
}

# Removes every container with the bench label (garage's and compose's),
# and compose's network; bounded.
teardown() {
  docker-compose -p "$COMPOSE_PROJECT" -f "$COMPOSE_YML" down -t 0 --remove-orphans >/dev/null 2>&1 || true
  local ids
  ids="$(docker ps -aq --filter "label=$BENCH_LABEL")"
  if [[ -n "$ids" ]]; then
    # shellcheck disable=SC2086
    docker rm -f $ids >/dev/null 2>&1 || true
  fi
  local deadline=$(( $(date +%s) + 60 ))
  while [[ -n "$(docker ps -aq --filter "label=$BENCH_LABEL")" ]]; do
    [[ $(date +%s) -lt $deadline ]] || die "bench containers still present after 60 s"
    sleep 0.2
  done
}

# wait_running N TIMEOUT_S: until N bench containers run.
wait_running() {
  local want=$1 deadline=$(( $(date +%s) + $2 ))
  until [[ "$(running_count)" -eq "$want" ]]; do
    [[ $(date +%s) -lt $deadline ]] || die "$(running_count)/$want bench containers running after $2 s"
    sleep 0.1
  done
}

# Agent lifecycle ------------------------------------------------------
AGENT_PID=""
AGENT_LOG=""
start_agent() {
  AGENT_LOG="$(mktemp /tmp/garage-bench-agent.XXXXXX.log)"
  "$GARAGE_BIN" run -f "$NODE_YAML" >"$AGENT_LOG" 2>&1 &
  AGENT_PID=$!
  say "agent pid $AGENT_PID, log $AGENT_LOG"
  local deadline=$(( $(date +%s) + 60 ))
  until curl -fsS "$AGENT_URL/healthz" >/dev/null 2>&1; do
    kill -0 "$AGENT_PID" 2>/dev/null || { tail -n 30 "$AGENT_LOG" >&2; die "agent exited"; }
    [[ $(date +%s) -lt $deadline ]] || die "agent did not serve $AGENT_URL within 60 s"
    sleep 0.1
  done
}
stop_agent() {
  if [[ -n "$AGENT_PID" ]] && kill -0 "$AGENT_PID" 2>/dev/null; then
    kill -TERM "$AGENT_PID" 2>/dev/null || true
    local i
    for i in $(seq 1 100); do kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$AGENT_PID" 2>/dev/null || true
    wait "$AGENT_PID" 2>/dev/null || true
  fi
  AGENT_PID=""
}

# Statistics (numbers on stdin, one a line) ----------------------------
median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) {print "nan"; exit} if (NR%2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }
# percentile P: nearest rank.
percentile() { sort -n | awk -v p="$1" '{a[NR]=$1} END {if (NR==0) {print "nan"; exit} r=int((p/100)*NR+0.999999); if (r<1) r=1; if (r>NR) r=NR; print a[r]}'; }
