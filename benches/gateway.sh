#!/usr/bin/env bash
# The gateway's cost (issue 14): time to first token and streamed tokens/s
# through the coordinator's OpenAI gateway vs the same node's worker asked
# directly, same run, 1 and 8 concurrent streams (benches/gateway_ttft.py).
# Makes its own coordinator, SmolLM2 worker and agent on loopback (temporary
# state; the agent links to the coordinator, the worker's port is known only
# to the agent and to the direct path) and stops them at the end.
#
#   benches/gateway.sh [ROUNDS]   (default 10; needs a built garage, the
#                                  SmolLM2 GGUF in .cache/models and .venv)
set -euo pipefail
rounds="${1:-10}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
garage="${GARAGE_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/garage}"
[ -x "$garage" ] || garage="${CARGO_TARGET_DIR:-$repo/target}/debug/garage"
# wait_for, shared with the other scripts (after $garage: lib.sh sets its own GARAGE_BIN).
source "$repo/benches/lib.sh"
model="${GARAGE_SMOLLM2_GGUF:-$repo/.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
python="${PYTHON:-$repo/.venv/bin/python}"
[ -f "$model" ] || { echo "no model at $model (scripts/fetch-default-model.sh .cache/models)" >&2; exit 1; }
base=$(( 18000 + $$ % 900 ))
coordinator_port=$base worker_port=$(( base + 1 )) metrics_port=$(( base + 2 ))
url="http://127.0.0.1:$coordinator_port"
dir="$(mktemp -d)"
chmod 700 "$dir"
pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$dir"
}
trap stop_all EXIT
export GARAGE_ADMIN_TOKEN="bench-gateway-admin-token-0123456789abcdef"
"$garage" coordinator --listen "127.0.0.1:$coordinator_port" --state-dir "$dir/coordinator" \
  --registration open --heartbeat-interval 1s >"$dir/coordinator.log" 2>&1 &
pids+=($!)
"$garage" worker --listen "127.0.0.1:$worker_port" --model "$model" --model-name smollm2 \
  >"$dir/worker.log" 2>&1 &
pids+=($!)
wait_for "$url/healthz" 30
wait_for "http://127.0.0.1:$worker_port/readyz" 120
cat >"$dir/node.yaml" <<YAML
apiVersion: garage.ai/v1alpha1
kind: Node
metadata:
  name: bench-gateway-$$
spec:
  coordinator: {url: "$url"}
  location: {country: SE}
  gpu: {mode: none}
  metrics: {listen: "127.0.0.1:$metrics_port"}
  containers: []
  gateway: {serve: true, workerUrl: "http://127.0.0.1:$worker_port", slots: 8}
YAML
"$garage" run -f "$dir/node.yaml" >"$dir/agent.log" 2>&1 &
pids+=($!)
key="$("$garage" account create bench --url "$url")"
account="client:$(echo "$key" | cut -d_ -f2)"
"$garage" ledger mint "$account" 1000000000000 --url "$url" >/dev/null
deadline=$(( $(date +%s) + 60 ))
until curl -fs -H "authorization: Bearer $key" "$url/v1/models" | grep -q '"smollm2"'; do
  [ "$(date +%s)" -lt "$deadline" ] || { echo "the node did not link within 60 s" >&2; cat "$dir/agent.log" >&2; exit 1; }
  sleep 0.2
done
echo "garage: $garage; machine: $(nproc) cores; rounds: $rounds" >&2
"$python" "$repo/benches/gateway_ttft.py" "$url" "$key" "http://127.0.0.1:$worker_port" "$rounds"
