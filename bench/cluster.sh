#!/usr/bin/env bash
# bench/cluster.sh — live-cluster benchmarks: clusterdns watching the test API server (test/support/k8s-api-server.ts)
# over 127.0.0.1. `propagation`: watch event -> new answer, p50..max over 1,000 changes, against the query
# round-trip floor of the same run. `scale`: 10k services / 100k endpoints (then + 100k pods): time to a correct
# answer, RSS, peak RSS, memory per endpoint and per pod, against an empty cluster of the same run. `churn`:
# cluster-zone QPS while 200 EndpointSlice updates a second touch 1% of the services, against no updates.
# `reload`: queries lost and p99 at a fixed 20k QPS while the Corefile is reloaded 10 times, against no reload.
# `outage`: from an unreachable API server's return to every watch back and every changed answer right, against
# watches closed cleanly (not part of `all`: about 2 minutes of outages). `soak`: bench/soak.mjs, run by
# bench/soak.sh (not part of `all`: 10 minutes or SOAK_MINUTES). `memlimit`: the scale cluster with pods,
# clusterdns alone in a memory cgroup of MEMLIMIT_MIB (170, CoreDNS's limit) through sync, a 410 relist and an API
# server restart: peak memory, OOM kills, answers lost; then the largest size that fits per worker count (not part
# of `all`: needs root, about 10 minutes).
#
# Owns: bench/out/ (the compiled test API server in bench/out/fake/, logs, figures) and the processes it starts.
# Must not touch: anything else; it builds nothing of clusterdns (run `npm run build` first) and stops only its
# own PIDs and its own cgroups. Every step is bounded. See bench/README.md, "Live cluster: propagation and scale".
#
# Usage: bash bench/cluster.sh [propagation|scale|churn|reload|outage|soak|memlimit|all]     (default: all)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${BENCH_OUT:-$ROOT/bench/out}
WHAT=${1:-all}
SERVER_CPU=${BENCH_SERVER_CPU:-1}   # clusterdns is pinned here
CLIENT_CPU=${BENCH_CLIENT_CPU:-0}   # the driver (test API server + DNS poller) is pinned here
DEADLINE=${BENCH_DEADLINE:-1200}    # seconds, per benchmark

die() { echo "bench: $*" >&2; exit 1; }

case $WHAT in propagation | scale | churn | reload | outage | soak | memlimit | all) ;; *) die "usage: bash bench/cluster.sh [propagation|scale|churn|reload|outage|soak|memlimit|all]" ;; esac
for v in SERVER_CPU CLIENT_CPU DEADLINE; do [[ ${!v} =~ ^[0-9]+$ ]] || die "BENCH_$v must be a non-negative integer"; done
command -v node >/dev/null || die "node is required"
command -v taskset >/dev/null || die "taskset is required: apt-get install -y util-linux"
command -v timeout >/dev/null || die "timeout is required (coreutils)"
[[ -f $ROOT/dist/cli.js ]] || die "dist/cli.js is missing: run 'npm run build' first"
TSC=$ROOT/node_modules/.bin/tsc
[[ -x $TSC ]] || die "$TSC is missing: run 'npm ci' first"
NCPU=$(nproc)
((SERVER_CPU < NCPU && CLIENT_CPU < NCPU)) || die "BENCH_SERVER_CPU/BENCH_CLIENT_CPU must be < nproc ($NCPU)"
((SERVER_CPU != CLIENT_CPU)) || echo "bench: warning: clusterdns and the driver share CPU $SERVER_CPU" >&2

# ---- cleanup: only the PIDs started here (each driver kills the clusterdns it started, by PID, on SIGTERM) ----
DRIVER=
cleanup() {
  [[ -n $DRIVER ]] || return 0
  kill -TERM "$DRIVER" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$DRIVER" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$DRIVER" 2>/dev/null || true
  remove_cgroups
}
# memlimit's cgroups ($BENCH_CGROUP_TAG-*, children of this shell's memory cgroup), should its driver have been
# killed before it removed them: their processes are the clusterdns it started.
remove_cgroups() {
  local parent
  if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then parent=/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup)
  else parent=/sys/fs/cgroup/memory$(awk -F: '$2 ~ /(^|,)memory(,|$)/ { print $3 }' /proc/self/cgroup); fi
  for cg in "$parent/$BENCH_CGROUP_TAG"-*; do
    [[ -d $cg ]] || continue
    while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done <"$cg/cgroup.procs"
    for _ in $(seq 50); do rmdir "$cg" 2>/dev/null && break; sleep 0.1; done
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the test API server and test upstream, compiled from test/ (tsc only, into bench/out/fake/, where node_modules resolves) ----
mkdir -p "$OUT" "$ROOT/bench/out"
rm -rf "$ROOT/bench/out/fake"
timeout 120 "$TSC" --outDir "$ROOT/bench/out/fake" --rootDir "$ROOT/test/support" --module NodeNext \
  --moduleResolution NodeNext --target ES2022 --strict --skipLibCheck --types node \
  "$ROOT/test/support/k8s-api-server.ts" "$ROOT/test/support/upstream.ts" || die "could not compile test/support/{k8s-api-server,upstream}.ts"

BENCH_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || BENCH_REV="$BENCH_REV+dirty"
BENCH_CGROUP_TAG=clusterdns-bench-$$
export BENCH_REV BENCH_CGROUP_TAG BENCH_OUT=$OUT BENCH_SERVER_CPU=$SERVER_CPU BENCH_CLIENT_CPU=$CLIENT_CPU BENCH_DEADLINE=$DEADLINE

run() { # script: the driver pinned to CLIENT_CPU, bounded; its output also in bench/out/<name>.out
  local name=$1
  timeout -k 10 $((DEADLINE + 30)) taskset -c "$CLIENT_CPU" node "$ROOT/bench/$name.mjs" > >(tee "$OUT/$name.out") &
  DRIVER=$!
  wait "$DRIVER" || { local rc=$?; remove_cgroups; DRIVER=; die "$name failed (exit $rc); clusterdns logs: $OUT/$name*.log"; }
  remove_cgroups
  DRIVER=
}

[[ $WHAT == all || $WHAT == propagation ]] && run propagation
[[ $WHAT == all || $WHAT == scale ]] && run scale
[[ $WHAT == all || $WHAT == churn ]] && run churn
[[ $WHAT == all || $WHAT == reload ]] && run reload
[[ $WHAT == outage ]] && run outage
[[ $WHAT == soak ]] && run soak
[[ $WHAT == memlimit ]] && run memlimit
exit 0
