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

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

for v in SECONDS:RUN_SECS ROUNDS:ROUNDS WARMUP:WARMUP_SECS QPS:STEADY_QPS SERVICES:SERVICES NAMESPACES:NAMESPACES \
  SERVER_CPU:SERVER_CPU CLIENT_CPU:CLIENT_CPU START_TIMEOUT:START_TIMEOUT; do
  var=${v#*:}
  [[ ${!var} =~ ^[0-9]+$ ]] || die "BENCH_${v%%:*} must be a non-negative integer, got '${!var}'"
done
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
[[ -n $CLUSTERDNS_CMD ]] || CLUSTERDNS_CMD="node $(cd "$ROOT" && node -p "JSON.parse(/^ENTRYPOINT (.*)\$/m.exec(require('fs').readFileSync('Dockerfile', 'utf8'))[1]).slice(1, -1).join(' ')") dist/cli.js"
NCPU=$(nproc)
((SERVER_CPU < NCPU && CLIENT_CPU < NCPU)) || die "BENCH_SERVER_CPU/BENCH_CLIENT_CPU must be < nproc ($NCPU)"
((SERVER_CPU != CLIENT_CPU)) || log "warning: server and dnsperf share CPU $SERVER_CPU; figures will be low"
if [[ $ONLY != nsd && -z ${BENCH_CLUSTERDNS_CMD:-} && ! -f $ROOT/dist/cli.js ]]; then
  die "dist/cli.js is missing: run 'npm run build' (or 'npm run bench'), or BENCH_ONLY=nsd to bench nsd alone"
fi

# ---- cleanup: only the PIDs started here ----
declare -A PID_OF=()   # server -> PID we started
KIDS=()                # their descendants, recorded once each server is up (nsd forks; kids outlive a killed parent)
cleanup() {
  local pid deadline alive
  for pid in "${PID_OF[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  deadline=$((SECONDS + 10))
  while ((SECONDS < deadline)); do
    alive=0
    for pid in "${PID_OF[@]}" "${KIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || return 0
    sleep 0.2
  done
  for pid in "${PID_OF[@]}" "${KIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

descendants() { # pid -> all descendant PIDs, one per line
  local kid
  for kid in $(ps -o pid= --ppid "$1" 2>/dev/null || true); do
    echo "$kid"
    descendants "$kid"
  done
}

free_port() { # a port free for both UDP and TCP on 127.0.0.1
  node -e '
    const net = require("node:net"), dgram = require("node:dgram");
    const tcp = net.createServer().listen(0, "127.0.0.1", () => {
      const port = tcp.address().port, udp = dgram.createSocket("udp4");
      udp.once("error", () => { tcp.close(); process.exitCode = 1; });
      udp.bind(port, "127.0.0.1", () => { console.log(port); udp.close(); tcp.close(); });
    });'
}
pick_port() {
  local i p
  for i in 1 2 3 4 5; do
    p=$(free_port) && [[ -n $p && $p != "${1:-}" ]] && { echo "$p"; return 0; }
  done
  die "could not find a free port"
}

# ---- data ----
mkdir -p "$OUT"
rm -rf "$OUT/runs"
mkdir -p "$OUT/runs"
node "$ROOT/bench/gen.mjs" --out "$OUT" --services "$SERVICES" --namespaces "$NAMESPACES" >&2
read -r PROBE_NAME PROBE_IP <"$OUT/probe.txt"

# ---- servers ----
declare -A PORT_OF=()

start_nsd() {
  local port=$1
  cat >"$OUT/nsd.conf" <<EOF
# written by bench/run.sh; foreground, one server process, no privileges, everything under $OUT
server:
  ip-address: 127.0.0.1@$port
  port: $port
  do-ip4: yes
  do-ip6: no
  server-count: 1
  username: ""
  chroot: ""
  zonesdir: "$OUT"
  pidfile: "$OUT/nsd.pid"
  database: ""
  zonelistfile: "$OUT/nsd.zonelist"
  xfrdfile: "$OUT/nsd.xfrd.state"
  xfrdir: "$OUT"
  logfile: "$OUT/nsd.log"
  verbosity: 1
  hide-version: yes
  # no NS/glue on positive answers, like CoreDNS and clusterdns (costs nsd the SRV targets' A: see README)
  minimal-responses: yes
  # response rate limiting would drop most of a benchmark's queries
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: "cluster.local"
  zonefile: "zone.db"
EOF
  rm -f "$OUT/nsd.log" "$OUT/nsd.zonelist" "$OUT/nsd.xfrd.state"
  nsd-checkconf "$OUT/nsd.conf" || die "nsd-checkconf rejected $OUT/nsd.conf"
  taskset -c "$SERVER_CPU" nsd -d -c "$OUT/nsd.conf" >"$OUT/nsd.stdout" 2>&1 &
  PID_OF[nsd]=$!
}

start_clusterdns() {
  local port=$1
  # shellcheck disable=SC2086  # CLUSTERDNS_CMD is a command line, meant to word-split
  (cd "$ROOT" && exec taskset -c "$SERVER_CPU" $CLUSTERDNS_CMD serve --listen "127.0.0.1:$port" \
    --manifests "$OUT/cluster.yaml" --upstream none --log-level warn) >"$OUT/clusterdns.log" 2>&1 &
  PID_OF[clusterdns]=$!
}

wait_ready() { # server: wait until it answers the probe with the expected address
  local server=$1 port=${PORT_OF[$1]} pid=${PID_OF[$1]} deadline=$((SECONDS + START_TIMEOUT)) got
  while ((SECONDS < deadline)); do
    kill -0 "$pid" 2>/dev/null || { tail -20 "$OUT/$server".{log,stdout} 2>/dev/null >&2 || true; die "$server exited during start"; }
    got=$(dig @127.0.0.1 -p "$port" +short +tries=1 +time=1 "$PROBE_NAME" A 2>/dev/null || true)
    if [[ $got == "$PROBE_IP" ]]; then
      mapfile -t -O "${#KIDS[@]}" KIDS < <(descendants "$pid")
      log "$server ready on 127.0.0.1:$port (pid $pid)"
      return 0
    fi
    sleep 0.3
  done
  tail -20 "$OUT/$server".{log,stdout} 2>/dev/null >&2 || true
  die "$server did not answer $PROBE_NAME with $PROBE_IP within ${START_TIMEOUT}s"
}

last_port=
for s in "${SERVERS[@]}"; do
  PORT_OF[$s]=$(pick_port "$last_port")
  last_port=${PORT_OF[$s]}
  "start_$s" "${PORT_OF[$s]}"
done
for s in "${SERVERS[@]}"; do wait_ready "$s"; done

# ---- same answers? rcode and answer section on a sample, before any load ----
answer_of() { # port name type -> "STATUS rr|rr|..." (owner lower-cased, order-free)
  local out status
  out=$(dig @127.0.0.1 -p "$1" +tries=1 +time=1 +noall +comments +answer "$2" "$3" 2>&1 || true)
  status=$(sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$out")
  echo "${status:-NO-REPLY} $(grep -v '^;' <<<"$out" | awk 'NF { $1 = tolower($1); print }' | sort | paste -sd'|')"
}
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
printf 'scenario\tserver\tround\tqps\tsent\tlost\tp50_ms\tp99_ms\tserver_cpu_pct\tclient_cpu_pct\trcodes\n' >"$RESULTS"

cpu_ticks() { # sum of user+system ticks of the given PIDs (threads included; vanished PIDs count 0)
  local pid t=0 v
  for pid in "$@"; do
    v=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{ print $12 + $13 }') || v=0
    t=$((t + ${v:-0}))
  done
  echo "$t"
}
server_pids() { echo "${PID_OF[$1]}"; descendants "${PID_OF[$1]}"; }

dnsperf_run() { # server datafile seconds outfile extra-args...: dnsperf pinned, bounded, its CPU time appended
  local server=$1 data=$2 secs=$3 file=$4
  shift 4
  # shellcheck disable=SC2048,SC2086  # the dnsperf flags are meant to word-split
  (
    timeout -k 5 $((secs + QUERY_TIMEOUT + 20)) taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "${PORT_OF[$server]}" \
      -d "$data" -l "$secs" -t "$QUERY_TIMEOUT" $* || echo "dnsperf exit status $?"
    times # not in a pipeline: that would be a subshell with no children; line 2 = dnsperf's CPU time
  ) >"$file" 2>&1
}

measure() { # scenario server round
  local scenario=$1 server=$2 round=$3 file="$OUT/runs/$1.$2.$3.txt" pids t0 t1 hz
  local data=$OUT/existing.txt args=$MAX_ARGS
  case $scenario in
    mixed) data=$OUT/mixed.txt ;;
    steady) args="$STEADY_ARGS -Q $STEADY_QPS -v" ;;
  esac
  mapfile -t pids < <(server_pids "$server")
  t0=$(cpu_ticks "${pids[@]}")
  dnsperf_run "$server" "$data" "$RUN_SECS" "$file" $args
  t1=$(cpu_ticks "${pids[@]}")
  hz=$(getconf CLK_TCK)
  kill -0 "${PID_OF[$server]}" 2>/dev/null || die "$server died during $scenario (see $OUT/$server.log)"
  grep -q '^dnsperf exit status' "$file" && { cat "$file" >&2; die "dnsperf failed, see $file"; }
  awk -v scenario="$scenario" -v server="$server" -v round="$round" -v secs="$RUN_SECS" -v hz="$hz" \
    -v sticks=$((t1 - t0)) '
    function sec(s,  m) { m = s; sub(/m.*/, "", m); sub(/^[0-9]+m/, "", s); sub(/s$/, "", s); return m * 60 + s }
    /^> / && $2 != "T" && $2 != "I" { lat[++n] = $NF + 0 }
    /Queries sent:/ { sent = $3 }
    /Queries lost:/ { lost = $3 }
    /Queries per second:/ { qps = $4 }
    /Response codes:/ { sub(/.*Response codes: */, ""); rc = $0; gsub(/ \([0-9.]+%\)/, "", rc); gsub(/, /, ",", rc); gsub(/ /, ":", rc) }
    /^[0-9]+m[0-9.]+s [0-9]+m[0-9.]+s$/ { client = sec($1) + sec($2) } # the last one: children of the subshell
    END {
      p50 = p99 = "-"
      if (n > 0) {
        # sort the latencies (asort is gawk-only; this is plain awk): shell sort, fine for ~10^5 values
        for (gap = int(n / 2); gap > 0; gap = int(gap / 2))
          for (i = gap + 1; i <= n; i++) { v = lat[i]; for (j = i; j > gap && lat[j - gap] > v; j -= gap) lat[j] = lat[j - gap]; lat[j] = v }
        i50 = int(n * 0.50); if (i50 < n * 0.50) i50++
        i99 = int(n * 0.99); if (i99 < n * 0.99) i99++
        p50 = sprintf("%.3f", lat[i50] * 1000); p99 = sprintf("%.3f", lat[i99] * 1000)
      }
      printf "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%.1f\t%.1f\t%s\n", scenario, server, round, qps, sent, lost, p50, p99,
        100 * sticks / hz / secs, 100 * client / secs, (rc == "" ? "-" : rc)
    }' "$file" >>"$RESULTS"
  tail -1 "$RESULTS" | awk -F'\t' '{ printf "bench: round %s %-8s %-10s %7d qps  lost %-6d p50 %s p99 %s ms  cpu server %s%% dnsperf %s%%\n", $3, $1, $2, $4, $6, $7, $8, $9, $10 }' >&2
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
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || REV="$REV+dirty"
META="clusterdns $REV, node $(node -v), nsd $(nsd -v 2>&1 | sed -n 's/^NSD version //p'), \
dnsperf $(dnsperf -h 2>&1 | sed -n 's/^Version //p'), $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ)"
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
