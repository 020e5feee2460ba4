#!/usr/bin/env bash
# bench/soak.sh — clusterdns for SOAK_MINUTES (default 10) under mixed load at half its measured maximum QPS, while
# the test API server churns (50 EndpointSlice changes/s, a Service created and deleted every second), drops every
# watch once a minute, forces a 410 relist every 3 minutes and is unreachable for 30 s twice. One row a minute
# (QPS, lost, p50/p99, RSS, heap, event-loop delay p99) and verdicts at the end; exits non-zero if one fails.
# See bench/README.md, "Soak", and bench/soak.mjs for what is checked and how.
#
# Owns: nothing beyond what bench/cluster.sh owns (bench/out/, the processes it starts, stopped by PID on every exit
# path). Must not touch: anything else; loopback only; bounded by BENCH_DEADLINE (the soak's length + 10 min).
#
# Usage: bash bench/soak.sh                 SOAK_MINUTES=60 bash bench/soak.sh          SOAK_QPS=20000 bash bench/soak.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MINUTES=${SOAK_MINUTES:-10}
[[ $MINUTES =~ ^[0-9]+$ ]] && ((MINUTES >= 2)) || { echo "bench: SOAK_MINUTES must be an integer >= 2, got '$MINUTES'" >&2; exit 1; }
[[ ${SOAK_QPS:-0} =~ ^[0-9]+$ ]] || { echo "bench: SOAK_QPS must be a non-negative integer" >&2; exit 1; }
command -v dnsperf >/dev/null || { echo "bench: dnsperf is required: apt-get install -y dnsperf" >&2; exit 1; }
command -v chromium >/dev/null || echo "bench: no chromium: the plot stays an SVG (bench/out/soak-*.svg)" >&2
export SOAK_SERVER_CPUS=${SOAK_SERVER_CPUS:-0-$(($(nproc) - 1))} SOAK_MINUTES=$MINUTES BENCH_DEADLINE=${BENCH_DEADLINE:-$((MINUTES * 60 + 600))}
exec bash "$ROOT/bench/cluster.sh" soak
