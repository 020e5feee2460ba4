#!/usr/bin/env bash
# bench/cache-workers.sh — what per-thread caches cost with --workers: each worker thread keeps its own cache (a
# name a thread has not seen is a miss there, whatever the others hold), so with N threads a name is fetched up to
# N times per TTL. Measured, in one run, at a fixed rate against a loopback nsd upstream whose names expire
# (BENCH_TTL, 10 s) and are asked as a cluster's external names are (Zipf, s = 1, over BENCH_NAMES): cache hit
# rate, upstream queries per second and server CPU per query, --workers 1 against --workers 2. The issue asks that
# shared-or-per-thread be decided by these figures (bench/README.md, "Caches per worker thread").
#
# Owns: bench/out/cache-workers/ and the processes it starts (nsd, clusterdns, dnsperf). Must not touch: anything
# else. Traffic only to 127.0.0.1 (never the machine's resolver); stops only its own PIDs; every step bounded.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${BENCH_OUT:-$ROOT/bench/out}/cache-workers
RUN_SECS=${BENCH_SECONDS:-30}           # one measured run per worker count; three TTLs by default
ROUNDS=${BENCH_ROUNDS:-2}               # rounds; each runs --workers 1 then 2, alternating who goes first
QPS=${BENCH_QPS:-10000}                 # dnsperf -Q: a fixed rate, below either's maximum
NAMES=${BENCH_NAMES:-5000}              # external names in the upstream zone
TTL=${BENCH_TTL:-10}                    # their TTL (and the negative TTL)
CLIENT_CPU=${BENCH_CLIENT_CPU:-0}       # dnsperf is pinned here; the servers may use every CPU
START_TIMEOUT=${BENCH_START_TIMEOUT:-30}
QUERY_TIMEOUT=2
SERVER_CPUS=0-$(($(nproc) - 1))                 # nsd (lib.sh) and clusterdns may use every CPU

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
require_uints SECONDS:RUN_SECS ROUNDS:ROUNDS QPS:QPS NAMES:NAMES TTL:TTL CLIENT_CPU:CLIENT_CPU START_TIMEOUT:START_TIMEOUT
((RUN_SECS > 0 && ROUNDS > 0 && QPS > 0 && TTL > 0)) || die "BENCH_SECONDS, BENCH_ROUNDS, BENCH_QPS and BENCH_TTL must be > 0"
for tool in dnsperf nsd dig curl taskset timeout node; do
  command -v "$tool" >/dev/null || die "$tool is required: apt-get install -y dnsperf nsd bind9-dnsutils curl util-linux"
done
[[ -f $ROOT/dist/cli.js ]] || die "dist/cli.js is missing: run 'npm run build' first"
CLUSTERDNS_CMD=$(image_clusterdns_cmd)

declare -A PID_OF PORT_OF METRICS_PORT_OF
KIDS=()
rm -rf "$OUT" && mkdir -p "$OUT/runs"
RESULTS=$OUT/results.tsv
printf 'workers\tround\tqps\tlost\thits\tmisses\thit_pct\tupstream_qps\tus_cpu_per_query\n' >"$RESULTS"

# A query file of RUN_SECS x QPS names, so dnsperf reads each line once: the Zipf draw is the traffic, not a loop of it.
node "$ROOT/bench/forward-gen.mjs" --out "$OUT" --names "$NAMES" --ttl "$TTL" --zipf $((RUN_SECS * QPS)) >&2
read -r PROBE_NAME PROBE_IP <"$OUT/probe.txt"

pick_port "PORT_OF[nsd]"
nsd_start "${PORT_OF[nsd]}" example.test example.test.db
wait_answer nsd "$PROBE_NAME" "$PROBE_IP" "$START_TIMEOUT"

measure() { # workers round: one clusterdns, fresh cache, one fixed-rate run; one row appended to $RESULTS
  local workers=$1 round=$2 name=cdns$1 file t0 t1 hits misses
  pick_port "PORT_OF[$name]"
  pick_port "METRICS_PORT_OF[$name]"
  # shellcheck disable=SC2086  # CLUSTERDNS_CMD is a command line, meant to word-split
  (cd "$ROOT" && exec taskset -c "$SERVER_CPUS" $CLUSTERDNS_CMD serve --listen "127.0.0.1:${PORT_OF[$name]}" \
    --manifests "$OUT/cluster.yaml" --upstream "127.0.0.1:${PORT_OF[nsd]}" --metrics "127.0.0.1:${METRICS_PORT_OF[$name]}" \
    --workers "$workers" --lameduck 0 --log-level warn) >"$OUT/$name.log" 2>&1 &
  PID_OF[$name]=$!
  wait_answer "$name" "$PROBE_NAME" "$PROBE_IP" "$START_TIMEOUT"
  file=$OUT/runs/workers$workers.$round.txt
  t0=$(cpu_ticks $(server_pids "$name"))
  timeout -k 5 $((RUN_SECS + QUERY_TIMEOUT + 20)) taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "${PORT_OF[$name]}" \
    -d "$OUT/zipf.txt" -n 1 -l "$RUN_SECS" -Q "$QPS" -c 8 -t "$QUERY_TIMEOUT" >"$file" 2>&1 || die "dnsperf failed, see $file"
  t1=$(cpu_ticks $(server_pids "$name"))
  metric hits "$name" coredns_cache_hits_total
  metric misses "$name" coredns_cache_misses_total
  stop_server "$name"
  awk -v w="$workers" -v r="$round" -v h="$hits" -v m="$misses" -v ticks=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v secs="$RUN_SECS" '
    /Queries completed:/ { done = $3 } /Queries lost:/ { lost = $3 } /Queries per second:/ { qps = $4 }
    END { printf "%s\t%s\t%.0f\t%d\t%d\t%d\t%.2f\t%.1f\t%.2f\n", w, r, qps, lost, h, m, 100 * h / (h + m), m / secs, ticks / hz * 1e6 / done }' \
    "$file" >>"$RESULTS"
}

log "measuring: $ROUNDS rounds x workers 1 and 2 x ${RUN_SECS}s at $QPS QPS; $NAMES names, TTL ${TTL}s, Zipf s=1"
for ((round = 1; round <= ROUNDS; round++)); do
  if ((round % 2)); then order=(1 2); else order=(2 1); fi
  for workers in "${order[@]}"; do measure "$workers" "$round"; done
done

{
  echo "cache-workers: clusterdns $(bench_rev), $(tool_versions)"
  echo "$NAMES names (Zipf s=1), TTL ${TTL}s, $QPS QPS for ${RUN_SECS}s per run, fresh cache per run; medians of $ROUNDS rounds"
  echo
  awk -F'\t' 'NR > 1 { n[$1]++; qps[$1, n[$1]] = $3; lost[$1] += $4; hit[$1, n[$1]] = $7; up[$1, n[$1]] = $8; cpu[$1, n[$1]] = $9 }
    function median(a, w,   i, j, t, v, k) {
      k = n[w]; for (i = 1; i <= k; i++) v[i] = a[w, i]
      for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
      return k % 2 ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
    }
    END {
      printf "  %-10s %8s %6s %9s %14s %14s\n", "", "qps", "lost", "hit rate", "upstream q/s", "us CPU/query"
      for (w = 1; w <= 2; w++) printf "  workers %-2d %8.0f %6d %8.2f%% %14.1f %14.2f\n", w, median(qps, w), lost[w], median(hit, w), median(up, w), median(cpu, w)
      printf "  2 over 1   %8s %6s %8.2f pt %13.2fx %13.2fx\n", "", "", median(hit, 2) - median(hit, 1), median(up, 2) / median(up, 1), median(cpu, 2) / median(cpu, 1)
    }' "$RESULTS"
} | tee "$OUT/summary.txt"
echo "per-run figures: $RESULTS"
