#!/usr/bin/env bash
# The proxy benchmark: clusterdns's userspace proxy against a direct connection and against haproxy (TCP mode)
# over the same backends, in one run. See bench/README.md ("Proxy"). Bounded: every load run has a deadline.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "bench: $*" >&2; exit 1; }
command -v haproxy >/dev/null || die "haproxy is required: apt-get install -y haproxy"
command -v taskset >/dev/null || die "taskset is required: apt-get install -y util-linux"
command -v node >/dev/null || die "node is required"
[[ -f $ROOT/dist/cli.js ]] || die "dist/cli.js is missing: run 'npm run build' first"
(($(nproc) >= 2)) || die "needs 2 CPUs: the proxies get one, the backends and client the other"
exec node "$ROOT/bench/proxy.mjs"
