#!/usr/bin/env bash
# Job start latency: `garage job run` of a trivial job (file → container in
# podman → exit → JSON) against `podman run --rm` of the same image inside the
# same podman, and `docker run --rm` on the host engine, N runs each, p50/p95.
#
#   benches/jobs_start.sh [N]         (default 20; needs garage/podman:0.1,
#                                      garage-test/busybox:1, a built garage)
# Makes its own node (bench-jobs-<pid>) and removes it at the end.
set -euo pipefail
n="${1:-20}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
garage="${GARAGE_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/garage}"
[ -x "$garage" ] || garage="${CARGO_TARGET_DIR:-$repo/target}/debug/garage"
node="bench-jobs-$$"
dir="$(mktemp -d)"
cleanup() {
  "$garage" down -f "$dir/node.yaml" >/dev/null 2>&1 || true
  docker volume rm -f "$node-sock" "$node-cache" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
cat > "$dir/node.yaml" <<YAML
apiVersion: garage.ai/v1alpha1
kind: Node
metadata: {name: $node}
spec:
  gpu: {mode: none}
  podman: {socketVolume: $node-sock, cacheVolume: $node-cache, jobs: {hostImages: ["garage-test/*"]}}
YAML
cat > "$dir/job.yaml" <<YAML
version: "0.1"
type: container
ops:
  - {type: container/run, id: t, args: {image: garage-test/busybox:1, cmd: ["true"]}}
YAML
"$garage" apply -f "$dir/node.yaml" --wait --timeout 120s >/dev/null 2>&1
# Warm-up: the first job copies the image into podman.
"$garage" job run "$dir/job.yaml" --node-file "$dir/node.yaml" >/dev/null
podman_ctr="garage-$node-podman"
time_ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
for i in $(seq "$n"); do
  echo "garage $(time_ms "$garage" job run "$dir/job.yaml" --node-file "$dir/node.yaml")"
  echo "podman $(time_ms docker exec "$podman_ctr" podman run --rm garage-test/busybox:1 true)"
  echo "docker $(time_ms docker run --rm garage-test/busybox:1 true)"
done > "$dir/times"
python3 - "$dir/times" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
by = {}
for k, v in rows:
    by.setdefault(k, []).append(int(v))
def pct(xs, p):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]
p50 = {k: statistics.median(v) for k, v in by.items()}
for k, v in by.items():
    print(f"{k:7s} n={len(v):3d}  p50 {p50[k]:7.0f} ms  p95 {pct(v, 95):7.0f} ms")
print(f"garage job run / podman run (same podman): {p50['garage'] / p50['podman']:.2f}x")
print(f"nested (podman run) / host docker run:     {p50['podman'] / p50['docker']:.2f}x")
PY
