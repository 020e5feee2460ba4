# bench/lib.sh — shell functions shared by the dnsperf harnesses (bench/run.sh, bench/forward.sh). Sourced, not run.
#
# Owns: nothing on disk; the functions here write only under $OUT and stop only the PIDs recorded in PID_OF (and
# their descendants). The sourcing script sets, before calling them: ROOT, OUT, SERVER_CPU, CLIENT_CPU,
# QUERY_TIMEOUT, RUN_SECS and RESULTS; it starts its servers, records each one's PID in PID_OF[server] and its
# port in PORT_OF[server], and each server logs to $OUT/<server>.log or .stdout.
# shellcheck shell=bash

die() { echo "bench: $*" >&2; exit 1; }
# How clusterdns is started, before "serve ...": node with the image's flags (the Dockerfile's ENTRYPOINT: none
# today, as clusterdns sets its heap flags itself, src/runtime/heap.ts), so the figures are those of what ships.
image_clusterdns_cmd() { echo "node $(cd "$ROOT" && node -p "JSON.parse(/^ENTRYPOINT (.*)\$/m.exec(require('fs').readFileSync('Dockerfile', 'utf8'))[1]).slice(1, -1).join(' ')") dist/cli.js"; }
log() { echo "bench: $*" >&2; }

require_uints() { # KNOB:VAR...: each VAR must be a non-negative integer; errors name the BENCH_KNOB
  local v var
  for v in "$@"; do
    var=${v#*:}
    [[ ${!var} =~ ^[0-9]+$ ]] || die "BENCH_${v%%:*} must be a non-negative integer, got '${!var}'"
  done
}

require_cpus() { # the server and client CPUs exist, and are not the same one (a warning: it still runs)
  local ncpu
  ncpu=$(nproc)
  ((SERVER_CPU < ncpu && CLIENT_CPU < ncpu)) || die "BENCH_SERVER_CPU/BENCH_CLIENT_CPU must be < nproc ($ncpu)"
  ((SERVER_CPU != CLIENT_CPU)) || log "warning: servers and client share CPU $SERVER_CPU; figures will be low"
}

# ---- cleanup: only the PIDs started here ----
declare -A PID_OF=()   # server -> PID we started
declare -A PORT_OF=()  # server -> its DNS port on 127.0.0.1
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

stop_server() { # server: TERM it and wait (bounded) until it is gone, so it can write its exit logs
  local pid=${PID_OF[$1]} deadline=$((SECONDS + 10))
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  unset "PID_OF[$1]"
}

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
TAKEN_PORTS=" "
pick_port() { # VAR: set VAR to a free port not handed out before in this run (servers start after all are picked)
  local i p
  for i in 1 2 3 4 5 6 7 8; do
    p=$(free_port) && [[ -n $p && $TAKEN_PORTS != *" $p "* ]] && { TAKEN_PORTS+="$p "; printf -v "$1" %s "$p"; return 0; }
  done
  die "could not find a free port"
}

nsd_start() { # port zone zonefile (in $OUT): nsd in the foreground, NSD_SERVER_COUNT (1) server processes, on SERVER_CPUS (SERVER_CPU)
  local port=$1 zone=$2 zonefile=$3
  cat >"$OUT/nsd.conf" <<EOF
# written by bench/lib.sh; foreground, one server process, no privileges, everything under $OUT
server:
  ip-address: 127.0.0.1@$port
  port: $port
  do-ip4: yes
  do-ip6: no
  server-count: ${NSD_SERVER_COUNT:-1}
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
  name: "$zone"
  zonefile: "$zonefile"
EOF
  rm -f "$OUT/nsd.log" "$OUT/nsd.zonelist" "$OUT/nsd.xfrd.state"
  nsd-checkconf "$OUT/nsd.conf" || die "nsd-checkconf rejected $OUT/nsd.conf"
  taskset -c "${SERVER_CPUS:-$SERVER_CPU}" nsd -d -c "$OUT/nsd.conf" >"$OUT/nsd.stdout" 2>&1 &
  PID_OF[nsd]=$!
}

wait_answer() { # server name address timeout: wait until the server answers name A with exactly that address
  local server=$1 name=$2 want=$3 port=${PORT_OF[$1]} pid=${PID_OF[$1]} deadline=$((SECONDS + $4)) got
  while ((SECONDS < deadline)); do
    kill -0 "$pid" 2>/dev/null || { tail -20 "$OUT/$server".{log,stdout} 2>/dev/null >&2 || true; die "$server exited during start"; }
    got=$(dig @127.0.0.1 -p "$port" +short +tries=1 +time=1 "$name" A 2>/dev/null || true)
    if [[ $got == "$want" ]]; then
      mapfile -t -O "${#KIDS[@]}" KIDS < <(descendants "$pid")
      log "$server ready on 127.0.0.1:$port (pid $pid)"
      return 0
    fi
    sleep 0.3
  done
  tail -20 "$OUT/$server".{log,stdout} 2>/dev/null >&2 || true
  die "$server did not answer $name with $want within $4s"
}

answer_of() { # port name type -> "STATUS rr|rr|..." (owner lower-cased, order-free)
  local out status
  out=$(dig @127.0.0.1 -p "$1" +tries=1 +time=1 +noall +comments +answer "$2" "$3" 2>&1 || true)
  status=$(sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$out")
  echo "${status:-NO-REPLY} $(grep -v '^;' <<<"$out" | awk 'NF { $1 = tolower($1); print }' | sort | paste -sd'|')"
}

cpu_ticks() { # sum of user+system ticks of the given PIDs (threads included; vanished PIDs count 0)
  local pid t=0 v
  for pid in "$@"; do
    v=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{ print $12 + $13 }') || v=0
    t=$((t + ${v:-0}))
  done
  echo "$t"
}
metric() { # VAR server name: set VAR to the sum of all series of a metric on that clusterdns's METRICS_PORT_OF (0 when it has none)
  local sum
  sum=$(curl -sf --max-time 5 "http://127.0.0.1:${METRICS_PORT_OF[$2]}/metrics" | awk -v name="$3" '
    index($0, name) == 1 && (substr($0, length(name) + 1, 1) == "{" || substr($0, length(name) + 1, 1) == " ") { sum += $NF }
    END { printf "%d\n", sum }') || die "cannot read $2's /metrics"
  printf -v "$1" %s "$sum"
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

RESULTS_HEADER=$'scenario\tserver\tround\tqps\tsent\tlost\tp50_ms\tp99_ms\tserver_cpu_pct\tclient_cpu_pct\trcodes'

measure_dnsperf() { # scenario server round datafile dnsperf-args...: one measured run, one row appended to $RESULTS
  local scenario=$1 server=$2 round=$3 data=$4 file="$OUT/runs/$1.$2.$3.txt" pids t0 t1 hz
  shift 4
  mapfile -t pids < <(server_pids "$server")
  t0=$(cpu_ticks "${pids[@]}")
  dnsperf_run "$server" "$data" "$RUN_SECS" "$file" "$@"
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

bench_rev() { # the commit measured, "+dirty" when src/ has uncommitted changes
  local rev
  rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || rev="$rev+dirty"
  echo "$rev"
}
tool_versions() { # "node v20..., dnsperf 2.10.0, 2 CPUs, <date>": the tail of a summary's second line
  echo "node $(node -v), dnsperf $(dnsperf -h 2>&1 | sed -n 's/^Version //p'), $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ)"
}
