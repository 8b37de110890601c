#!/usr/bin/env bash
# Dispatch latency (issue 11): the cost of the network path. The same
# trivial job, N times each, alternating:
#   network: `garage job submit --follow` through a coordinator to a node's
#            agent (claim long-poll, lease, podman run, log shipping,
#            complete), wall time until the CLI has the final state;
#   local:   `garage job run` of the same file on the same node.
# Prints p50/p95 of both, the ratio of the p50s, and from the job's history
# the time from submission to its lease (placement) and to its end.
#
#   benches/dispatch_latency.sh [N]     (default 20; needs garage/podman:0.1,
#                                        garage-test/busybox:1, a built garage)
# Makes its own coordinator (loopback, temporary state) and node
# (bench-dispatch-<pid>), and removes both at the end.
set -euo pipefail
n="${1:-20}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
garage="${GARAGE_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/garage}"
[ -x "$garage" ] || garage="${CARGO_TARGET_DIR:-$repo/target}/debug/garage"
# wait_for, shared with the other scripts (after $garage: lib.sh sets its own GARAGE_BIN).
source "$repo/benches/lib.sh"
node="bench-dispatch-$$"
port="${GARAGE_BENCH_PORT:-17$(( $$ % 900 + 100 ))}"
metrics_port=$(( port + 1 ))
url="http://127.0.0.1:$port"
dir="$(mktemp -d)"
chmod 700 "$dir"
coordinator_pid=""
agent_pid=""
stop() { # PID: TERM, then KILL after 10 s
  [ -n "$1" ] || return 0
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
}
cleanup() {
  stop "$agent_pid"
  "$garage" down -f "$dir/node.yaml" >/dev/null 2>&1 || true
  docker volume rm -f "$node-sock" "$node-cache" >/dev/null 2>&1 || true
  stop "$coordinator_pid"
  rm -rf "$dir"
}
trap cleanup EXIT

export GARAGE_ADMIN_TOKEN="bench-dispatch-admin-token-0123456789abcdef"
mkdir -m 700 "$dir/coordinator"
"$garage" coordinator --listen "127.0.0.1:$port" --state-dir "$dir/coordinator" \
  --registration open >"$dir/coordinator.log" 2>&1 &
coordinator_pid=$!
wait_for "$url/healthz" 30
"$garage" account create bench --url "$url" >"$dir/key" 2>/dev/null
chmod 600 "$dir/key"

cat > "$dir/node.yaml" <<YAML
apiVersion: garage.ai/v1alpha1
kind: Node
metadata: {name: $node}
spec:
  coordinator: {url: "$url"}
  gpu: {mode: none}
  metrics: {listen: "127.0.0.1:$metrics_port"}
  podman: {socketVolume: $node-sock, cacheVolume: $node-cache, jobs: {hostImages: ["garage-test/*"]}}
  jobs: {accept: true, maxConcurrent: 1}
YAML
cat > "$dir/job.yaml" <<YAML
version: "0.1"
type: container
ops:
  - {type: container/run, id: t, args: {image: garage-test/busybox:1, cmd: ["true"]}}
YAML
mkdir -m 700 "$dir/state"
"$garage" run -f "$dir/node.yaml" --state-dir "$dir/state" >"$dir/agent.log" 2>&1 &
agent_pid=$!
wait_for "http://127.0.0.1:$metrics_port/readyz" 180

submit() {
  "$garage" job submit "$dir/job.yaml" --follow --coordinator "$url" --api-key-file "$dir/key" \
    >"$dir/last.json" 2>/dev/null
}
local_run() {
  "$garage" job run "$dir/job.yaml" --node-file "$dir/node.yaml" --state-dir "$dir/state" >/dev/null 2>&1
}
time_ms() { local s e; s=$(date +%s%N); "$@"; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
# Warm-up: the first job of each path copies the image into podman.
submit || { echo "the warm-up network job failed:" >&2; cat "$dir/last.json" >&2; tail -n 20 "$dir/agent.log" >&2; exit 1; }
local_run
for _ in $(seq "$n"); do
  echo "network $(time_ms submit)"
  python3 - "$dir/last.json" <<'PY' >>"$dir/history"
import datetime, json, sys
job = json.load(open(sys.argv[1]))
def at(state):
    for event in job["history"]:
        if event["state"] == state:
            return datetime.datetime.fromisoformat(event["at"].replace("Z", "+00:00"))
queued, running, done = at("QUEUED"), at("RUNNING"), at("SUCCEEDED")
print(f"placed {(running - queued).total_seconds() * 1000:.0f}")
print(f"ran {(done - queued).total_seconds() * 1000:.0f}")
PY
  echo "local $(time_ms local_run)"
done > "$dir/times"
cat "$dir/history" >> "$dir/times"
python3 - "$dir/times" <<'PY'
import statistics, sys
by = {}
for line in open(sys.argv[1]):
    k, v = line.split()
    by.setdefault(k, []).append(float(v))
def pct(xs, p):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]
names = {"network": "garage job submit --follow (wall)", "local": "garage job run (wall)",
         "placed": "submitted → leased (coordinator)", "ran": "submitted → succeeded (coordinator)"}
for k in ["network", "local", "placed", "ran"]:
    v = by[k]
    print(f"{names[k]:38s} n={len(v):3d}  p50 {statistics.median(v):7.0f} ms  p95 {pct(v, 95):7.0f} ms")
print(f"network / local (p50): {statistics.median(by['network']) / statistics.median(by['local']):.2f}x")
PY
