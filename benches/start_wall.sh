#!/usr/bin/env bash
# start.sh wall time: from an engine with no garage images (CLEAN=1: the
# podman and worker images and the debian base are removed first, so the
# base is made offline with debootstrap and both images are built) or with
# the images present (CLEAN=0), to a registered, benchmarked node whose
# worker answered a completion. The garage binary is given (GARAGE_BIN): the
# Rust build is not part of the figure. Each phase's time comes from
# start.sh's own step lines, stamped as they are printed.
#
#   CLEAN=1 GARAGE_BIN=target/debug/garage benches/start_wall.sh
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
GARAGE_BIN="${GARAGE_BIN:-$ROOT/target/release/garage}"
CLEAN="${CLEAN:-1}"
[[ -x "$GARAGE_BIN" ]] || { echo "GARAGE_BIN=$GARAGE_BIN is not executable" >&2; exit 1; }
name="bench-start-$$"
state="$(mktemp -d /tmp/garage-bench-start.XXXXXX)"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
args=(--yes --name "$name" --state-dir "$state" --worker-port "$(port)"
      --metrics-listen "127.0.0.1:$(port)" --coordinator-listen "127.0.0.1:$(port)")

cleanup() {
  bash "$ROOT/start.sh" "${args[@]}" --stop >/dev/null 2>&1 || true
  "$GARAGE_BIN" down -f "$state/node.yaml" >/dev/null 2>&1 || true
  docker volume rm -f "$name-models" "$name-podman-socket" "$name-podman-cache" >/dev/null 2>&1 || true
  rm -rf "$state"
}
trap cleanup EXIT

if [[ "$CLEAN" == 1 ]]; then
  echo "==> removing garage/podman:0.1, garage/worker:0.1 and debian:bookworm-slim" >&2
  docker image rm -f garage/podman:0.1 garage/worker:0.1 debian:bookworm-slim >/dev/null 2>&1 || true
fi
echo "==> machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), engine $(docker version --format '{{.Server.Version}}')" >&2
start=$(date +%s%N)
GARAGE_BIN="$GARAGE_BIN" bash "$ROOT/start.sh" "${args[@]}" 2>&1 | while IFS= read -r line; do
  printf '%7.1f s  %s\n' "$(( ($(date +%s%N) - start) / 1000000 ))e-3" "$line"
done
rc=${PIPESTATUS[0]}
total_ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "start.sh exit $rc, wall $(( total_ms / 1000 )).$(( total_ms % 1000 / 100 )) s (CLEAN=$CLEAN; goal < 180 s)"
exit "$rc"
