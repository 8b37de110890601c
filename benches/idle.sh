#!/usr/bin/env bash
# Agent idle cost: the agent runs the 20 bench containers; after they run
# and a settle period, measure over IDLE_S seconds (default 60):
#   CPU %  = (utime+stime delta from /proc/PID/stat) / CLK_TCK / wall * 100
#   RSS    = max of VmRSS from /proc/PID/status sampled every second, and
#            VmHWM (the kernel's peak RSS) at the end.
#
#   GARAGE_BIN=target/release/garage IDLE_S=60 benches/idle.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"

IDLE_S="${IDLE_S:-60}"
SETTLE_S="${SETTLE_S:-5}"
preflight
trap 'stop_agent; teardown' EXIT
teardown
start_agent
wait_running "$N_CONTAINERS" 120
say "20 containers running; settling ${SETTLE_S} s"
sleep "$SETTLE_S"

ticks() { sed 's/^.*) //' "/proc/$AGENT_PID/stat" | awk '{print $12 + $13}'; }  # utime+stime (fields 14,15)
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$AGENT_PID/status"; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$AGENT_PID/status"; }
clk=$(getconf CLK_TCK)

t0=$(now_ns); c0=$(ticks); max_rss=$(rss_kb)
for _ in $(seq 1 "$IDLE_S"); do
  sleep 1
  kill -0 "$AGENT_PID" 2>/dev/null || die "agent exited during the idle window"
  r=$(rss_kb); (( r > max_rss )) && max_rss=$r
done
t1=$(now_ns); c1=$(ticks); hwm=$(hwm_kb)
[[ "$(running_count)" -eq $N_CONTAINERS ]] || die "containers changed during the idle window"

awk -v dc=$(( c1 - c0 )) -v clk="$clk" -v ns=$(( t1 - t0 )) -v rss="$max_rss" -v hwm="$hwm" 'BEGIN {
  wall = ns / 1e9
  printf "idle window: %.1f s, %d ticks at %d/s\n", wall, dc, clk
  printf "CPU: %.3f %% of one core (goal < 0.5 %%)\n", (dc / clk) / wall * 100
  printf "RSS: max %.1f MiB during the window, peak (VmHWM) %.1f MiB (goal < 30 MB)\n", rss / 1024, hwm / 1024
}'
