#!/usr/bin/env bash
# bench/forward.sh — names outside the cluster zone (issue 4), on loopback, in one run:
#   1. forwarded names answered from the cache: dnsperf max QPS of clusterdns against unbound, both forwarding to
#      the same nsd upstream, both caches warm, each server pinned to the same core, alternating per round;
#   2. a pod-style lookup of an external name (glibc's search-path walk, emulated from a pod's address) against
#      clusterdns with --autopath and without: queries per lookup and client-observed latency.
#
# Owns: bench/out/forward/ (data, server configs and logs, raw runs, figures) and the processes it starts (nsd,
# unbound, two clusterdns, dnsperf, the lookup client). Must not touch: anything else. Sends traffic only to
# 127.0.0.1 (the machine's resolv.conf is never read for upstreams), stops only the PIDs it started, and bounds
# every wait. See bench/README.md, "Forwarding and the cache".
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${BENCH_OUT:-$ROOT/bench/out}/forward
RUN_SECS=${BENCH_SECONDS:-10}           # length of one measured dnsperf run
ROUNDS=${BENCH_ROUNDS:-3}               # rounds of each part; who goes first alternates
WARMUP_SECS=${BENCH_WARMUP:-3}          # unmeasured load per server after the cache pass (JIT)
NAMES=${BENCH_NAMES:-1000}              # A names in the upstream zone, all queried
LOOKUPS=${BENCH_LOOKUPS:-2000}          # pod-style lookups per server and round
POD_IP=${BENCH_POD_IP:-127.0.0.11}      # the lookup client sends from here: a pod of namespace default
SERVER_CPU=${BENCH_SERVER_CPU:-1}       # every server is pinned here; one at a time is under load
CLIENT_CPU=${BENCH_CLIENT_CPU:-0}       # dnsperf and the lookup client are pinned here
START_TIMEOUT=${BENCH_START_TIMEOUT:-30}
# how to start clusterdns, before "serve --listen ..." (run from the repo root), e.g. to profile it; by default
# with the image's node flags (lib.sh)
CLUSTERDNS_CMD=${BENCH_CLUSTERDNS_CMD:-}
# the same dnsperf flags as run.sh's max-QPS scenarios (tuned there: one pinned dnsperf core, see README)
MAX_ARGS=${BENCH_DNSPERF_ARGS:--c 8 -q 500 -T 2}
QUERY_TIMEOUT=2                         # dnsperf -t: a reply later than this counts as lost
LOOKUP_TIMEOUT_MS=1000                  # the lookup client's wait for one candidate's replies
TARGET=0.6                              # issue 4: cache hits at >= 0.6x unbound's QPS

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

require_uints SECONDS:RUN_SECS ROUNDS:ROUNDS WARMUP:WARMUP_SECS NAMES:NAMES LOOKUPS:LOOKUPS SERVER_CPU:SERVER_CPU \
  CLIENT_CPU:CLIENT_CPU START_TIMEOUT:START_TIMEOUT
((RUN_SECS > 0 && ROUNDS > 0 && NAMES > 0 && LOOKUPS > 0)) || die "BENCH_SECONDS, BENCH_ROUNDS, BENCH_NAMES and BENCH_LOOKUPS must be > 0"

# ---- prerequisites ----
PATH=$PATH:/usr/sbin # where Debian puts nsd and unbound; a non-root PATH may lack it
for tool in dnsperf nsd unbound unbound-checkconf dig curl taskset timeout node; do
  command -v "$tool" >/dev/null || die "$tool is required: apt-get install -y dnsperf nsd unbound bind9-dnsutils curl util-linux"
done
require_cpus
if [[ -z ${BENCH_CLUSTERDNS_CMD:-} && ! -f $ROOT/dist/cli.js ]]; then die "dist/cli.js is missing: run 'npm run build'"; fi
[[ -n $CLUSTERDNS_CMD ]] || CLUSTERDNS_CMD=$(image_clusterdns_cmd)

# ---- data ----
rm -rf "$OUT"
mkdir -p "$OUT/runs"
node "$ROOT/bench/forward-gen.mjs" --out "$OUT" --names "$NAMES" --pod-ip "$POD_IP" >&2
read -r PROBE_NAME PROBE_IP <"$OUT/probe.txt"

# ---- servers: nsd (the upstream), unbound, clusterdns, and clusterdns --autopath ----
SERVERS=(nsd unbound clusterdns autopath)
for s in "${SERVERS[@]}"; do pick_port "PORT_OF[$s]"; done
declare -A METRICS_PORT_OF=()
for s in clusterdns autopath; do pick_port "METRICS_PORT_OF[$s]"; done
UPSTREAM=127.0.0.1:${PORT_OF[nsd]}

start_unbound() {
  cat >"$OUT/unbound.conf" <<EOF
# written by bench/forward.sh: a caching forwarder in the foreground, one thread, nothing but the cache
server:
  interface: 127.0.0.1@${PORT_OF[unbound]}
  port: ${PORT_OF[unbound]}
  do-ip4: yes
  do-ip6: no
  access-control: 127.0.0.0/8 allow
  num-threads: 1
  chroot: ""
  username: ""
  directory: "$OUT"
  pidfile: "$OUT/unbound.pid"
  use-syslog: no
  logfile: ""
  do-daemonize: no
  # verbosity 1 logs the thread's totals at exit (queries, answers from cache, recursions): the cache check
  verbosity: 1
  # no validator, so no trust anchor: a plain cache in front of the forwarder
  module-config: "iterator"
  # the upstream is on loopback
  do-not-query-localhost: no
  # .test is a special-use domain that unbound answers itself (NXDOMAIN) unless told not to
  local-zone: "test." nodefault
  # the upstream gets the full name, as clusterdns sends it
  qname-minimisation: no
  # clusterdns cannot turn prefetch off; with TTL 3600 it never fires in a run, and unbound's is off
  prefetch: no
  # room for every name, many times over
  msg-cache-size: 64m
  rrset-cache-size: 128m
  # the receive buffer clusterdns asks for (4 MiB; here the kernel's rmem_max allows it)
  so-rcvbuf: 4m
remote-control:
  control-enable: no
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@${PORT_OF[nsd]}
EOF
  unbound-checkconf "$OUT/unbound.conf" >/dev/null || die "unbound-checkconf rejected $OUT/unbound.conf"
  taskset -c "$SERVER_CPU" unbound -d -c "$OUT/unbound.conf" >"$OUT/unbound.log" 2>&1 &
  PID_OF[unbound]=$!
}

start_clusterdns_as() { # server extra-flags...: clusterdns forwarding to nsd, both processes alike but for the flags
  local server=$1 metrics=127.0.0.1:${METRICS_PORT_OF[$1]}
  shift
  # --cache-size: room for A and AAAA of every name. --resolv-conf: a file of ours with no search line, so that
  # --autopath walks the pod's cluster search path and nothing else. --lameduck 0: stop at once when told.
  # shellcheck disable=SC2086  # CLUSTERDNS_CMD is a command line, meant to word-split
  (cd "$ROOT" && exec taskset -c "$SERVER_CPU" $CLUSTERDNS_CMD serve --listen "127.0.0.1:${PORT_OF[$server]}" \
    --manifests "$OUT/cluster.yaml" --upstream "$UPSTREAM" --resolv-conf "$OUT/resolv.conf" \
    --cache-size $((NAMES * 2 > 10000 ? NAMES * 2 : 10000)) --health "$metrics" --ready "$metrics" \
    --metrics "$metrics" --lameduck 0 --log-level warn "$@") >"$OUT/$server.log" 2>&1 &
  PID_OF[$server]=$!
}
start_clusterdns() { start_clusterdns_as clusterdns; }
start_autopath() { start_clusterdns_as autopath --autopath; }

nsd_start "${PORT_OF[nsd]}" example.test example.test.db
wait_answer nsd "$PROBE_NAME" "$PROBE_IP" "$START_TIMEOUT"
for s in unbound clusterdns autopath; do "start_$s"; done
for s in unbound clusterdns autopath; do wait_answer "$s" "$PROBE_NAME" "$PROBE_IP" "$START_TIMEOUT"; done

# ---- warm the caches: one pass over every name, through each server ----
for s in unbound clusterdns; do
  taskset -c "$CLIENT_CPU" timeout -k 5 60 dnsperf -s 127.0.0.1 -p "${PORT_OF[$s]}" -d "$OUT/forward.txt" -n 1 -q 100 \
    -t "$QUERY_TIMEOUT" >"$OUT/runs/cachepass.$s.txt" 2>&1 || die "the cache pass through $s failed, see $OUT/runs/cachepass.$s.txt"
  grep -q 'Queries lost: *0 ' "$OUT/runs/cachepass.$s.txt" || die "the cache pass through $s lost queries, see $OUT/runs/cachepass.$s.txt"
done
log "caches warm: one pass over $NAMES names through unbound and clusterdns"

# ---- same answers? every name, through dig's batch mode (one dig per server), TTLs left out (they count down) ----
answers_of() { # server -> one line per query: "STATUS | owner class type data | ..."
  # dig exits non-zero when a query times out; that query's line says NO-REPLY and the comparison shows it
  { timeout -k 5 $((NAMES / 10 + 60)) dig @127.0.0.1 -p "${PORT_OF[$1]}" +tries=1 +time=2 +noall +comments +answer \
    -f "$OUT/forward.txt" 2>&1 || true; } | awk '
      function flush() { if (line != "") print line; line = "" }
      /status:/ { flush(); line = $0; sub(/.*status: /, "", line); sub(/,.*/, "", line); next }
      /connection timed out|no servers could be reached/ { flush(); line = "NO-REPLY"; next }
      /^[^;]/ && NF { $1 = tolower($1); $2 = ""; line = line " |" $0 }
      END { flush() }'
}
answers_of unbound >"$OUT/answers.unbound.txt"
answers_of clusterdns >"$OUT/answers.clusterdns.txt"
CHECKED=$(wc -l <"$OUT/answers.unbound.txt")
DIFFS=$(diff "$OUT/answers.unbound.txt" "$OUT/answers.clusterdns.txt" | grep -c '^<' || true)
ANSWERED=$(grep -c '^NOERROR |' "$OUT/answers.clusterdns.txt" || true)
((CHECKED == NAMES)) || log "warning: dig gave $CHECKED replies from unbound for $NAMES queries"
log "answer check: $DIFFS of $CHECKED names differ between unbound and clusterdns; clusterdns answered $ANSWERED NOERROR with records"
((DIFFS == 0)) || diff "$OUT/answers.unbound.txt" "$OUT/answers.clusterdns.txt" | head -10 >&2 || true

# ---- part 1: max QPS from the cache, unbound against clusterdns ----
RESULTS=$OUT/results.tsv
echo "$RESULTS_HEADER" >"$RESULTS"
if ((WARMUP_SECS > 0)); then
  for s in unbound clusterdns; do
    log "warm-up: $s, ${WARMUP_SECS}s"
    # shellcheck disable=SC2086  # the dnsperf flags are meant to word-split
    dnsperf_run "$s" "$OUT/forward.txt" "$WARMUP_SECS" "$OUT/runs/warmup.$s.txt" $MAX_ARGS
  done
fi
mapfile -t NSD_PIDS < <(server_pids nsd)
NSD_TICKS0=$(cpu_ticks "${NSD_PIDS[@]}")
metric HITS0 clusterdns coredns_cache_hits_total
metric MISSES0 clusterdns coredns_cache_misses_total
metric FORWARDED0 clusterdns coredns_forward_requests_total
log "measuring: $ROUNDS rounds x 2 servers x ${RUN_SECS}s, dnsperf $MAX_ARGS"
for ((r = 1; r <= ROUNDS; r++)); do
  order=(unbound clusterdns)
  # alternate who goes first, so neither always runs on the hotter (or quieter) half of the machine's noise
  ((r % 2 == 0)) && order=(clusterdns unbound)
  # shellcheck disable=SC2086  # the dnsperf flags are meant to word-split
  for s in "${order[@]}"; do measure_dnsperf cached "$s" "$r" "$OUT/forward.txt" $MAX_ARGS; done
done
NSD_TICKS=$(($(cpu_ticks "${NSD_PIDS[@]}") - NSD_TICKS0))
metric HITS clusterdns coredns_cache_hits_total
metric MISSES clusterdns coredns_cache_misses_total
metric FORWARDED clusterdns coredns_forward_requests_total
HITS=$((HITS - HITS0)) MISSES=$((MISSES - MISSES0)) FORWARDED=$((FORWARDED - FORWARDED0))
# unbound logs its totals when it stops; it is not needed for part 2
stop_server unbound
UNBOUND_STATS=$(sed -n 's/.*server stats for thread 0: \([0-9]* queries, [0-9]* answers from cache, [0-9]* recursions\).*/\1/p' \
  "$OUT/unbound.log" | head -1)

# ---- part 2: a pod's lookup of an external name, --autopath against without ----
SEARCH="default.svc.cluster.local svc.cluster.local cluster.local"
metric COMPLETIONS0 autopath coredns_autopath_success_count_total
log "pod-style lookups: $ROUNDS rounds x 2 servers x $LOOKUPS lookups from $POD_IP"
for ((r = 1; r <= ROUNDS; r++)); do
  order=(clusterdns autopath)
  ((r % 2 == 0)) && order=(autopath clusterdns)
  for s in "${order[@]}"; do
    mode=off
    [[ $s == autopath ]] && mode=on
    # the first round warms each server's cache with every lookup's names first (unmeasured), and its JIT
    warm=
    ((r == 1)) && warm=--warm
    timeout -k 5 $(((LOOKUPS + NAMES) * 8 * LOOKUP_TIMEOUT_MS / 1000 + 60)) taskset -c "$CLIENT_CPU" \
      node "$ROOT/bench/autopath-client.mjs" --server "127.0.0.1:${PORT_OF[$s]}" --bind "$POD_IP" \
      --names "$OUT/names.txt" --lookups "$LOOKUPS" --search "$SEARCH" --ndots 5 --timeout-ms "$LOOKUP_TIMEOUT_MS" \
      --label "$mode" --out "$OUT/runs/lookups.$mode.$r.tsv" $warm >>"$OUT/lookups.jsonl" || die "the lookup client failed against $s"
    kill -0 "${PID_OF[$s]}" 2>/dev/null || die "$s died during the lookups (see $OUT/$s.log)"
    log "round $r lookups completion $mode: $(tail -1 "$OUT/lookups.jsonl")"
  done
done
metric COMPLETIONS autopath coredns_autopath_success_count_total
COMPLETIONS=$((COMPLETIONS - COMPLETIONS0))
metric COMPLETIONS_OFF clusterdns coredns_autopath_success_count_total

# ---- summary ----
cat >"$OUT/checks.txt" <<EOF
meta clusterdns $(bench_rev), unbound $(unbound -V | sed -n 's/^Version //p'), nsd $(nsd -v 2>&1 | sed -n 's/^NSD version //p') (upstream), $(tool_versions)
rounds $ROUNDS
seconds $RUN_SECS
names $NAMES
checked $CHECKED
diffs $DIFFS
answered $ANSWERED
hits $HITS
misses $MISSES
forwarded $FORWARDED
nsd_cpu_s $(awk -v t="$NSD_TICKS" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }')
unbound_stats ${UNBOUND_STATS:-unknown}
target $TARGET
lookups $LOOKUPS
pod_ip $POD_IP
search $SEARCH
completions_on $COMPLETIONS
completions_off $COMPLETIONS_OFF
EOF
node "$ROOT/bench/forward-summary.mjs" "$OUT" | tee "$OUT/summary.txt"
echo "raw runs: $OUT/runs/   per-run figures: $RESULTS, $OUT/lookups.jsonl"
