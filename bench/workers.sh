#!/usr/bin/env bash
# bench/workers.sh — what `--workers 2` costs and buys against `--workers 1`, measured in one run, with nsd's
# `server-count: 2` against 1 as the baseline of the capacity figure. On a 2-core machine whose load generator
# needs a core, scaling shows as cost, not as a 2-core peak (issue "A supported runtime and every core"):
#   cost      server CPU-seconds per million answered queries at a fixed BENCH_QPS (15k), dnsperf pinned to
#             BENCH_CLIENT_CPU, the server free on every CPU: workers 2 over workers 1, target <= 1.25
#   spread    each thread's share of the answers at saturation with 2 workers (clusterdns_thread_responses_total):
#             target 40-60%
#   capacity  maximum QPS with nothing pinned: clusterdns's gain from 2 workers over nsd's from 2 servers,
#             target >= 0.9
#
# Owns: bench/out/workers.* and the processes it starts (nsd, clusterdns, dnsperf). Must not touch: anything
# else. Traffic only to 127.0.0.1; stops only its own PIDs; every step bounded.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${BENCH_OUT:-$ROOT/bench/out}
RUN_SECS=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
COST_QPS=${BENCH_QPS:-15000}
SERVICES=${BENCH_SERVICES:-1000}
NAMESPACES=${BENCH_NAMESPACES:-10}
SERVER_CPU=${BENCH_SERVER_CPU:-1}
CLIENT_CPU=${BENCH_CLIENT_CPU:-0}
START_TIMEOUT=${BENCH_START_TIMEOUT:-30}
MAX_ARGS=${BENCH_DNSPERF_ARGS:--c 8 -q 500 -T 2}
QUERY_TIMEOUT=2
ALL_CPUS=0-$(($(nproc) - 1))

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
require_uints SECONDS:RUN_SECS ROUNDS:ROUNDS QPS:COST_QPS SERVICES:SERVICES NAMESPACES:NAMESPACES
command -v dnsperf >/dev/null && command -v nsd >/dev/null || die "dnsperf and nsd are required: apt-get install -y dnsperf nsd"
[[ -f $ROOT/dist/cli.js ]] || die "dist/cli.js is missing: run 'npm run build' first"
((RUN_SECS > 0 && ROUNDS > 0)) || die "BENCH_SECONDS and BENCH_ROUNDS must be > 0"

declare -A PID_OF PORT_OF
KIDS=()
RESULTS=$OUT/workers.results.tsv
mkdir -p "$OUT/runs"
: >"$RESULTS"
node "$ROOT/bench/gen.mjs" --out "$OUT" --services "$SERVICES" --namespaces "$NAMESPACES" >&2
read -r PROBE_NAME PROBE_IP <"$OUT/probe.txt"
CLUSTERDNS_CMD=${BENCH_CLUSTERDNS_CMD:-$(image_clusterdns_cmd)}

start() { # server (cdns1|cdns2|nsd1|nsd2) cpus
  local server=$1 cpus=$2
  pick_port "PORT_OF[$server]"
  case $server in
    cdns*)
      pick_port "PORT_OF[$server-metrics]"
      # shellcheck disable=SC2086  # CLUSTERDNS_CMD is a command line
      (cd "$ROOT" && exec taskset -c "$cpus" $CLUSTERDNS_CMD serve --listen "127.0.0.1:${PORT_OF[$server]}" --workers "${server#cdns}" \
        --manifests "$OUT/cluster.yaml" --upstream none --log-level warn --metrics "127.0.0.1:${PORT_OF[$server-metrics]}" \
        --health 127.0.0.1:0 --ready 127.0.0.1:0) >"$OUT/workers.$server.log" 2>&1 &
      PID_OF[$server]=$! ;;
    nsd*)
      SERVER_CPUS=$cpus NSD_SERVER_COUNT=${server#nsd} nsd_start "${PORT_OF[$server]}" cluster.local zone.db
      PID_OF[$server]=${PID_OF[nsd]}
      unset "PID_OF[nsd]" ;;
  esac
  wait_answer "$server" "$PROBE_NAME" "$PROBE_IP" "$START_TIMEOUT"
}

thread_counts() { # server -> "count0 count1" of clusterdns_thread_responses_total (/metrics opens just after DNS)
  local i body
  for i in $(seq 50); do
    body=$(curl -s --max-time 5 "http://127.0.0.1:${PORT_OF[$1-metrics]}/metrics") && break
    sleep 0.1
  done
  [[ -n ${body:-} ]] || die "no /metrics from $1"
  awk '/^clusterdns_thread_responses_total/ { printf "%s ", $2 }' <<<"$body"
}

run_cost() { # server round: fixed rate, server on every CPU, dnsperf pinned
  start "$1" "$ALL_CPUS"
  dnsperf_run "$1" "$OUT/existing.txt" 3 "$OUT/runs/workers.warmup.$1.txt" $MAX_ARGS
  # shellcheck disable=SC2086
  measure_dnsperf "cost" "$1" "$2" "$OUT/existing.txt" -c 8 -q 500 -Q "$COST_QPS"
  stop_server "$1"
}

run_capacity() { # server round: maximum rate, nothing pinned (dnsperf shares both CPUs with the server)
  start "$1" "$ALL_CPUS"
  local before after
  [[ $1 == cdns2 ]] && before=$(thread_counts "$1")
  dnsperf_run "$1" "$OUT/existing.txt" 3 "$OUT/runs/workers.warmup.$1.txt" $MAX_ARGS
  # shellcheck disable=SC2086
  CLIENT_CPU=$ALL_CPUS measure_dnsperf "capacity" "$1" "$2" "$OUT/existing.txt" $MAX_ARGS
  if [[ $1 == cdns2 ]]; then
    after=$(thread_counts "$1")
    echo "$2 $before $after" >>"$OUT/workers.spread.txt"
  fi
  stop_server "$1"
}

: >"$OUT/workers.spread.txt"
for ((r = 1; r <= ROUNDS; r++)); do
  for s in cdns1 cdns2; do run_cost "$s" "$r"; done
  for s in cdns1 cdns2 nsd1 nsd2; do run_capacity "$s" "$r"; done
done

awk -F'\t' -v rounds="$ROUNDS" -v secs="$RUN_SECS" -v qps="$COST_QPS" -v meta="clusterdns $(bench_rev), $(tool_versions)" '
  function median(list,  a, n, i, j, v) {
    n = split(list, a, " ")
    for (i = 2; i <= n; i++) { v = a[i] + 0; for (j = i - 1; j > 0 && a[j] + 0 > v; j--) a[j + 1] = a[j]; a[j + 1] = v }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  # CPU-seconds per million answered: cpu% x seconds / answered queries
  $1 == "cost" { per[$2] = per[$2] " " ($9 / 100 * secs) / (($5 - $6) / 1e6); lost[$2] += $6 }
  $1 == "capacity" { cap[$2] = cap[$2] " " $4 }
  END {
    printf "workers: medians of %d rounds x %ds; %s\n", rounds, secs, meta
    c1 = median(per["cdns1"]); c2 = median(per["cdns2"])
    printf "cost at %d QPS: workers 1 %.1f, workers 2 %.1f CPU-s per million answered: x%.2f (target <= 1.25) %s; lost %d / %d\n",
      qps, c1, c2, c2 / c1, (c2 / c1 <= 1.25 ? "MET" : "NOT MET"), lost["cdns1"], lost["cdns2"]
    q1 = median(cap["cdns1"]); q2 = median(cap["cdns2"]); n1 = median(cap["nsd1"]); n2 = median(cap["nsd2"])
    printf "capacity, nothing pinned: clusterdns %d -> %d qps (x%.2f), nsd %d -> %d qps (x%.2f); gain ratio %.2f (target >= 0.9) %s\n",
      q1, q2, q2 / q1, n1, n2, n2 / n1, (q2 / q1) / (n2 / n1), ((q2 / q1) / (n2 / n1) >= 0.9 ? "MET" : "NOT MET")
  }' "$RESULTS" | tee "$OUT/workers.txt"
awk '{ d0 = $4 - $2; d1 = $5 - $3; t = d0 + d1; if (t > 0) printf "spread at saturation, round %d: main thread %.0f%%, worker %.0f%% (target 40-60%% each)\n", $1, 100 * d0 / t, 100 * d1 / t }' \
  "$OUT/workers.spread.txt" | tee -a "$OUT/workers.txt"
