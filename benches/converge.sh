#!/usr/bin/env bash
# Converge 20 containers from nothing: `garage apply --wait` against
# `docker-compose up -d` on the equivalent compose file, same image, same
# engine, ROUNDS rounds each (default 5), everything torn down between runs.
# The order alternates each round so neither tool always runs on a warmer
# engine. Prints every round, the medians and the ratio garage/compose.
#
#   GARAGE_BIN=target/release/garage ROUNDS=5 benches/converge.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS="${ROUNDS:-5}"
command -v docker-compose >/dev/null || die "docker-compose not found (apt-get install docker-compose)"
preflight
say "docker-compose: $(docker-compose version --short 2>/dev/null)"
APPLY_LOG="$(mktemp /tmp/garage-bench-apply.XXXXXX.log)"
trap 'teardown; rm -f "$APPLY_LOG"' EXIT
teardown

run_garage() {
  local t0 t1
  t0=$(now_ms)
  "$GARAGE_BIN" apply -f "$NODE_YAML" --wait --timeout 120s >"$APPLY_LOG" 2>&1 \
    || { tail -n 30 "$APPLY_LOG" >&2; die "garage apply failed"; }
  t1=$(now_ms)
  [[ "$(running_count)" -eq $N_CONTAINERS ]] || die "garage apply returned with $(running_count)/$N_CONTAINERS running"
  echo $(( t1 - t0 ))
}
run_compose() {
  local t0 t1
  t0=$(now_ms)
  docker-compose -p "$COMPOSE_PROJECT" -f "$COMPOSE_YML" up -d >/dev/null 2>&1
  t1=$(now_ms)
  [[ "$(running_count)" -eq $N_CONTAINERS ]] || die "compose up returned with $(running_count)/$N_CONTAINERS running"
  echo $(( t1 - t0 ))
}

g_times=(); c_times=()
printf '%-6s %12s %12s\n' round garage_ms compose_ms
for r in $(seq 1 "$ROUNDS"); do
  if (( r % 2 )); then
    g=$(run_garage); teardown
    c=$(run_compose); teardown
  else
    c=$(run_compose); teardown
    g=$(run_garage); teardown
  fi
  g_times+=("$g"); c_times+=("$c")
  printf '%-6s %12s %12s\n' "$r" "$g" "$c"
done
gm=$(printf '%s\n' "${g_times[@]}" | median)
cm=$(printf '%s\n' "${c_times[@]}" | median)
printf '%-6s %12s %12s\n' median "$gm" "$cm"
awk -v g="$gm" -v c="$cm" 'BEGIN { printf "ratio garage/compose: %.2f (goal <= 0.5)\n", g / c }'
