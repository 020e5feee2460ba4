/**
 * Runs every fuzz target (fuzz/targets/) for FUZZ_SECONDS each (default 60), one after another, and prints what
 * each did. FUZZ_TARGETS=query,reply runs only those; FUZZ_SEED fixes fast-check's seed to replay a run.
 */
import { expect, test } from 'vitest';
import { runTarget, type FuzzTarget } from './harness.js';
import { target as corefile } from './targets/corefile.js';
import { target as kubeconfig } from './targets/kubeconfig.js';
import { target as manifests } from './targets/manifests.js';
import { target as query } from './targets/query.js';
import { target as reply } from './targets/reply.js';
import { target as resolvConf } from './targets/resolv-conf.js';
import { target as tcpStream } from './targets/tcp-stream.js';
import { target as watchLines } from './targets/watch-lines.js';

const TARGETS: readonly FuzzTarget[] = [query, tcpStream, reply, corefile, resolvConf, manifests, watchLines, kubeconfig];
const seconds = Number(process.env.FUZZ_SECONDS ?? 60);
const only = process.env.FUZZ_TARGETS?.split(',');

for (const target of TARGETS) {
  test.runIf(only === undefined || only.includes(target.name))(target.name, async () => {
    const result = await runTarget(target, seconds);
    console.log(`fuzz ${target.name}: ${result.runs} inputs (${result.seeds} seeds) in ${result.seconds.toFixed(1)} s, no invariant broken`);
    expect(result.runs).toBeGreaterThan(result.seeds);
  }, (seconds + 60) * 1000);
}
