#!/usr/bin/env bash
# bench/run.sh — dnsperf benchmark: clusterdns against nsd on loopback, in the same run.
#
# Owns: bench/out/ (generated data, server configs and logs, raw dnsperf output, summary) and the processes it
# starts (nsd, clusterdns, dnsperf). Must not touch: anything else. Sends traffic only to 127.0.0.1, and stops
# only the PIDs it started. Every step is bounded; see bench/README.md for the knobs and how to read the table.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${BENCH_OUT:-$ROOT/bench/out}
RUN_SECS=${BENCH_SECONDS:-10}           # length of one measured dnsperf run
ROUNDS=${BENCH_ROUNDS:-3}               # rounds; each runs every scenario against each server
WARMUP_SECS=${BENCH_WARMUP:-3}          # unmeasured load per server before round 1 (JIT, caches)
STEADY_QPS=${BENCH_QPS:-20000}          # offered load of the latency scenario
ONLY=${BENCH_ONLY:-}                    # empty: both; "nsd" or "clusterdns": just that one
SERVICES=${BENCH_SERVICES:-1000}
NAMESPACES=${BENCH_NAMESPACES:-10}
SERVER_CPU=${BENCH_SERVER_CPU:-1}       # both servers are pinned here, one at a time under load
CLIENT_CPU=${BENCH_CLIENT_CPU:-0}       # dnsperf is pinned here
START_TIMEOUT=${BENCH_START_TIMEOUT:-30}
# how to start clusterdns, before "serve --listen ... --manifests ... --log-level warn" (run from the repo root);
# by default node with the flags of the image's ENTRYPOINT (set below), so the figures are those of what is deployed
CLUSTERDNS_CMD=${BENCH_CLUSTERDNS_CMD:-}
# dnsperf flags for the max-QPS scenarios, tuned so one pinned core of dnsperf can keep nsd busy (README).
MAX_ARGS=${BENCH_DNSPERF_ARGS:--c 8 -q 500 -T 2}
# ... and for the fixed-rate latency scenario: one send/receive thread pair, so the client adds little delay.
STEADY_ARGS=${BENCH_DNSPERF_STEADY_ARGS:--c 8 -q 500}
QUERY_TIMEOUT=2                         # dnsperf -t: a reply later than this counts as lost

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

require_uints SECONDS:RUN_SECS ROUNDS:ROUNDS WARMUP:WARMUP_SECS QPS:STEADY_QPS SERVICES:SERVICES NAMESPACES:NAMESPACES \
  SERVER_CPU:SERVER_CPU CLIENT_CPU:CLIENT_CPU START_TIMEOUT:START_TIMEOUT
((RUN_SECS > 0 && ROUNDS > 0 && STEADY_QPS > 0)) || die "BENCH_SECONDS, BENCH_ROUNDS and BENCH_QPS must be > 0"
case $ONLY in
  '') SERVERS=(nsd clusterdns) ;;
  nsd | clusterdns) SERVERS=("$ONLY") ;;
  *) die "BENCH_ONLY must be empty, 'nsd' or 'clusterdns', got '$ONLY'" ;;
esac

# ---- prerequisites ----
if ! command -v dnsperf >/dev/null || ! command -v nsd >/dev/null; then
  echo "bench: dnsperf and nsd are required; install them with:" >&2
  echo "  apt-get install -y dnsperf nsd" >&2
  exit 1
fi
command -v dig >/dev/null || die "dig is required: apt-get install -y bind9-dnsutils"
command -v taskset >/dev/null || die "taskset is required: apt-get install -y util-linux"
command -v node >/dev/null || die "node is required"
[[ -n $CLUSTERDNS_CMD ]] || CLUSTERDNS_CMD=$(image_clusterdns_cmd)
require_cpus
if [[ $ONLY != nsd && -z ${BENCH_CLUSTERDNS_CMD:-} && ! -f $ROOT/dist/cli.js ]]; then
  die "dist/cli.js is missing: run 'npm run build' (or 'npm run bench'), or BENCH_ONLY=nsd to bench nsd alone"
fi

# ---- data ----
mkdir -p "$OUT"
rm -rf "$OUT/runs"
mkdir -p "$OUT/runs"
node "$ROOT/bench/gen.mjs" --out "$OUT" --services "$SERVICES" --namespaces "$NAMESPACES" >&2
read -r PROBE_NAME PROBE_IP <"$OUT/probe.txt"

# ---- servers ----
start_nsd() { nsd_start "$1" cluster.local zone.db; }

start_clusterdns() {
  local port=$1
  # shellcheck disable=SC2086  # CLUSTERDNS_CMD is a command line, meant to word-split
  (cd "$ROOT" && exec taskset -c "$SERVER_CPU" $CLUSTERDNS_CMD serve --listen "127.0.0.1:$port" \
    --manifests "$OUT/cluster.yaml" --upstream none --log-level warn) >"$OUT/clusterdns.log" 2>&1 &
  PID_OF[clusterdns]=$!
}

for s in "${SERVERS[@]}"; do pick_port "PORT_OF[$s]"; done
for s in "${SERVERS[@]}"; do "start_$s" "${PORT_OF[$s]}"; done
for s in "${SERVERS[@]}"; do wait_answer "$s" "$PROBE_NAME" "$PROBE_IP" "$START_TIMEOUT"; done

# ---- same answers? rcode and answer section on a sample, before any load ----
DIFFS=-
if ((${#SERVERS[@]} == 2)); then
  DIFFS=0
  checked=0
  while read -r name type; do
    a=$(answer_of "${PORT_OF[nsd]}" "$name" "$type")
    b=$(answer_of "${PORT_OF[clusterdns]}" "$name" "$type")
    checked=$((checked + 1))
    if [[ $a != "$b" ]]; then
      DIFFS=$((DIFFS + 1))
      ((DIFFS > 5)) || log "answers differ for $name $type:"$'\n'"  nsd:        $a"$'\n'"  clusterdns: $b"
    fi
  done < <(awk 'NR % 40 == 1' "$OUT/mixed.txt"; echo "$PROBE_NAME AAAA"; echo "ns0.svc.cluster.local A")
  log "answer check: $DIFFS of $checked sampled queries differ"
fi

# ---- measuring ----
RESULTS=$OUT/results.tsv
echo "$RESULTS_HEADER" >"$RESULTS"

measure() { # scenario server round
  local data=$OUT/existing.txt args=$MAX_ARGS
  case $1 in
    mixed) data=$OUT/mixed.txt ;;
    steady) args="$STEADY_ARGS -Q $STEADY_QPS -v" ;;
  esac
  # shellcheck disable=SC2086  # the dnsperf flags are meant to word-split
  measure_dnsperf "$1" "$2" "$3" "$data" $args
}

SCENARIOS=(existing mixed steady)
if ((WARMUP_SECS > 0)); then
  for s in "${SERVERS[@]}"; do
    log "warm-up: $s, ${WARMUP_SECS}s on mixed.txt"
    dnsperf_run "$s" "$OUT/mixed.txt" "$WARMUP_SECS" "$OUT/runs/warmup.$s.txt" $MAX_ARGS
  done
fi
log "measuring: $ROUNDS rounds x ${#SCENARIOS[@]} scenarios x ${#SERVERS[@]} servers x ${RUN_SECS}s"
for ((r = 1; r <= ROUNDS; r++)); do
  order=("${SERVERS[@]}")
  # alternate who goes first, so neither always runs on the hotter (or quieter) half of the machine's noise
  ((r % 2 == 0 && ${#order[@]} == 2)) && order=("${order[1]}" "${order[0]}")
  for scenario in "${SCENARIOS[@]}"; do
    for s in "${order[@]}"; do measure "$scenario" "$s" "$r"; done
  done
done

# ---- summary: medians over rounds, lost summed ----
META="clusterdns $(bench_rev), nsd $(nsd -v 2>&1 | sed -n 's/^NSD version //p'), $(tool_versions)"
awk -F'\t' -v meta="$META" -v diffs="$DIFFS" -v qps="$STEADY_QPS" -v rounds="$ROUNDS" -v secs="$RUN_SECS" '
  function median(list,  a, n, i, j, v) {
    n = split(list, a, " ")
    if (n == 0) return ""
    for (i = 2; i <= n; i++) { v = a[i] + 0; for (j = i - 1; j > 0 && a[j] + 0 > v; j--) a[j + 1] = a[j]; a[j + 1] = v }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  function has(k) { return k in q }
  function fmt(k, list) { return has(k) ? sprintf("%d", median(list[k])) : "-" }
  function lat(k) { return (k in p50) ? sprintf("%.3f/%.3f", median(p50[k]), median(p99[k])) : "-" }
  NR == 1 { next }
  {
    k = $1 SUBSEP $2
    q[k] = q[k] " " $4; lost[k] += $6; sent[k] += $5
    if ($7 != "-") { p50[k] = p50[k] " " $7; p99[k] = p99[k] " " $8 }
    cpu[k] = cpu[k] " " $9; ccpu[k] = ccpu[k] " " $10
    if ($9 > 0) eff[k] = eff[k] " " ($4 * 100 / $9)   # queries per server CPU-second, this round
    n = split($11, parts, ",")
    for (i = 1; i <= n; i++) { split(parts[i], kv, ":"); rc[k, kv[1]] += kv[2]; codes[kv[1]] = 1 }
    seen[$1] = 1
  }
  END {
    printf "\nclusterdns vs nsd on 127.0.0.1: medians of %d rounds x %ds (lost: summed)\n%s\n", rounds, secs, meta
    if (diffs != "-")
      printf "answers: %s\n", diffs == 0 ? "same rcode and answer section on every sampled query" : diffs " sampled queries DIFFER (see the log above)"
    printf "\n%-9s %9s %9s %6s %-13s %-13s %-13s %-9s %-8s %-8s %s\n", "scenario", "nsd qps", "cdns qps", "ratio", "target",
      "nsd p50/p99", "cdns p50/p99", "lost n/c", "cpu% n/c", "perf% n/c", "q/cpu-s ratio"
    split("existing mixed steady", order, " ")
    for (o = 1; o <= 3; o++) {
      s = order[o]; if (!(s in seen)) continue
      kn = s SUBSEP "nsd"; kc = s SUBSEP "clusterdns"
      qn = has(kn) ? median(q[kn]) : ""; qc = has(kc) ? median(q[kc]) : ""
      both = qn != "" && qc != "" && qn > 0
      ratio = both ? sprintf("%.2fx", qc / qn) : "-"
      eratio = (both && (kn in eff) && (kc in eff)) ? sprintf("%.2fx", median(eff[kc]) / median(eff[kn])) : "-"
      if (s == "steady") {
        p = (kc in p99) ? median(p99[kc]) : ""
        target = "p99<1ms " (p == "" ? "?" : (p < 1 && lost[kc] == 0 && qc >= 0.98 * qps ? "ok" : "MISS"))
      } else target = ">=0.45x " (!both ? "?" : (qc / qn >= 0.45 ? "ok" : "MISS"))
      printf "%-9s %9s %9s %6s %-13s %-13s %-13s %-9s %-8s %-8s %s\n", s, fmt(kn, q), fmt(kc, q), ratio, target,
        lat(kn), lat(kc), (has(kn) ? lost[kn] : "-") "/" (has(kc) ? lost[kc] : "-"),
        fmt(kn, cpu) "/" fmt(kc, cpu), fmt(kn, ccpu) "/" fmt(kc, ccpu), eratio
    }
    printf "\nrcodes, all rounds:\n"
    for (o = 1; o <= 3; o++) {
      s = order[o]; if (!(s in seen)) continue
      for (sv = 1; sv <= 2; sv++) {
        server = sv == 1 ? "nsd" : "clusterdns"; k = s SUBSEP server
        if (!has(k)) continue
        line = ""
        for (c in codes) if ((k, c) in rc) line = line sprintf("  %s %d (%.1f%%)", c, rc[k, c], 100 * rc[k, c] / sent[k])
        printf "  %-9s %-10s sent %9d:%s\n", s, server, sent[k], line
      }
    }
  }' "$RESULTS" | tee "$OUT/summary.txt"
echo "raw dnsperf output: $OUT/runs/   per-run figures: $RESULTS"
