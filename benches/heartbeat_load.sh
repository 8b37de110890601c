#!/usr/bin/env bash
# Coordinator heartbeat throughput and p99 latency (issue 5): runs the
# benchmark benches/coordinator_load.rs on SQLite, then on PostgreSQL
# when GARAGE_TEST_POSTGRES_URL is set. The coordinator under test is the
# garage binary at GARAGE_LOAD_BIN (default: a private copy of this build's
# dev binary, so another build cannot swap it mid-run).
#
#   benches/heartbeat_load.sh
#   GARAGE_LOAD_RATES=500,1000 GARAGE_LOAD_STEP_SECS=10 benches/heartbeat_load.sh
#   GARAGE_LOAD_BIN=$CARGO_TARGET_DIR/release/garage benches/heartbeat_load.sh
#
# Parameters (environment): GARAGE_LOAD_NODES (2000), GARAGE_LOAD_RATES
# (250,500,1000,2000,3333,5000), GARAGE_LOAD_HEALTHZ_RATES
# (1000,2000,3333,5000,7500,10000,15000,20000, or none), GARAGE_LOAD_WARMUP_SECS (3),
# GARAGE_LOAD_STEP_SECS (12), GARAGE_LOAD_P99_MS (50), GARAGE_LOAD_DBS
# (sqlite postgres).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
say() { printf '==> %s\n' "$*" >&2; }

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
cargo build --locked --bin garage >&2
cargo bench --locked --profile dev --bench coordinator_load --no-run >&2
if [[ -z "${GARAGE_LOAD_BIN:-}" ]]; then
  GARAGE_LOAD_BIN="$(mktemp -d)/garage"
  cp "$TARGET_DIR/debug/garage" "$GARAGE_LOAD_BIN"
fi
export GARAGE_LOAD_BIN
"$GARAGE_LOAD_BIN" coordinator --help >/dev/null
say "coordinator binary: $GARAGE_LOAD_BIN"
say "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -srm)"

for db in ${GARAGE_LOAD_DBS:-sqlite postgres}; do
  if [[ "$db" == postgres && -z "${GARAGE_TEST_POSTGRES_URL:-}" ]]; then
    say "skipping PostgreSQL: GARAGE_TEST_POSTGRES_URL is not set (.ci/run starts one)"
    continue
  fi
  say "$db; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  GARAGE_LOAD_DB="$db" timeout 900 \
    cargo bench --locked --profile dev --bench coordinator_load
  say "$db; load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
done
