#!/usr/bin/env bash
# Drift repair latency: with the agent running the 20 bench containers,
# KILLS times (default 50) `docker rm -f` one owned container (round robin
# over the components) and measure from the engine's `die` event of the old
# container to the `start` event of its replacement (both from one
# `docker events` stream, so the clock is the engine's, not a poll loop's).
# Also reported: from the old container's `destroy` (the engine has finished
# removing it; nothing can take its name before) to the replacement's start.
# Prints every kill, then p50 and p95 in ms.
#
#   GARAGE_BIN=target/release/garage KILLS=50 benches/drift_repair.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"

KILLS="${KILLS:-50}"
PER_KILL_TIMEOUT_S="${PER_KILL_TIMEOUT_S:-30}"
PAUSE_S="${PAUSE_S:-0.3}"
preflight
EVENTS_PID=""
EVENTS_LOG="$(mktemp /tmp/garage-bench-events.XXXXXX.log)"
cleanup() {
  [[ -n "$EVENTS_PID" ]] && kill "$EVENTS_PID" 2>/dev/null || true
  stop_agent
  teardown
  rm -f "$EVENTS_LOG"
}
trap cleanup EXIT
teardown
start_agent
wait_running "$N_CONTAINERS" 120
say "20 containers running; settling 2 s"
sleep 2

docker events --filter "label=ai.garage.node=$NODE_NAME" --filter event=die --filter event=destroy --filter event=start \
  --format '{{.TimeNano}} {{.Action}} {{.Actor.ID}} {{index .Actor.Attributes "ai.garage.component"}}' \
  >"$EVENTS_LOG" &
EVENTS_PID=$!
sleep 0.5

lat=()
lat_destroy=()
failed=0
printf '%-5s %-5s %10s %12s\n' kill comp die_to_start destroy_to_start
for i in $(seq 1 "$KILLS"); do
  comp=$(printf 'c%02d' $(( (i - 1) % N_CONTAINERS + 1 )))
  old=$(docker ps -q --no-trunc --filter "label=ai.garage.node=$NODE_NAME" \
        --filter "label=ai.garage.component=$comp" --filter status=running | head -n1)
  if [[ -z "$old" ]]; then
    # Not running yet from an earlier kill: wait for it, bounded.
    deadline=$(( $(date +%s) + PER_KILL_TIMEOUT_S ))
    while [[ -z "$old" && $(date +%s) -lt $deadline ]]; do
      sleep 0.05
      old=$(docker ps -q --no-trunc --filter "label=ai.garage.node=$NODE_NAME" \
            --filter "label=ai.garage.component=$comp" --filter status=running | head -n1)
    done
    [[ -n "$old" ]] || die "$comp not running before kill $i"
  fi
  docker rm -f "$old" >/dev/null
  deadline=$(( $(date +%s) + PER_KILL_TIMEOUT_S ))
  ms=""
  while [[ $(date +%s) -lt $deadline ]]; do
    die_ns=$(awk -v id="$old" '$2=="die" && $3==id {print $1; exit}' "$EVENTS_LOG")
    if [[ -n "$die_ns" ]]; then
      start_ns=$(awk -v c="$comp" -v id="$old" -v t="$die_ns" \
        '$2=="start" && $4==c && $3!=id && $1>t {print $1; exit}' "$EVENTS_LOG")
      if [[ -n "$start_ns" ]]; then
        ms=$(( (start_ns - die_ns) / 1000000 ))
        destroy_ns=$(awk -v id="$old" '$2=="destroy" && $3==id {print $1; exit}' "$EVENTS_LOG")
        dms=$(( (start_ns - ${destroy_ns:-$die_ns}) / 1000000 ))
        break
      fi
    fi
    sleep 0.01
  done
  if [[ -z "$ms" ]]; then
    failed=$(( failed + 1 ))
    printf '%-5s %-5s %10s\n' "$i" "$comp" "timeout"
  else
    lat+=("$ms")
    lat_destroy+=("$dms")
    printf '%-5s %-5s %10s %12s\n' "$i" "$comp" "$ms" "$dms"
  fi
  sleep "$PAUSE_S"
done
p50=$(printf '%s\n' "${lat[@]}" | percentile 50)
p95=$(printf '%s\n' "${lat[@]}" | percentile 95)
mx=$(printf '%s\n' "${lat[@]}" | sort -n | tail -n1)
echo "repairs: ${#lat[@]}/$KILLS (timeouts: $failed, bound ${PER_KILL_TIMEOUT_S}s)"
echo "die -> start:     p50 ${p50} ms (goal < 300)   p95 ${p95} ms (goal < 1000)   max ${mx} ms"
echo "destroy -> start: p50 $(printf '%s\n' "${lat_destroy[@]}" | percentile 50) ms   p95 $(printf '%s\n' "${lat_destroy[@]}" | percentile 95) ms"
[[ $failed -eq 0 ]]
