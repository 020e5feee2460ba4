// bench/answer-prober.mjs — a worker thread that asks clusterdns a sample of names, one at a time, one every
// `periodMs`, and counts the answers right, wrong and lost (no reply within `timeoutMs`) per phase. A thread of its
// own so that the driver's test API server, busy serving a list of 100k pods in the main thread, does not delay
// the replies past their timeout and count them lost.
//
// workerData: { port, expectations: [{ name, addresses } | { name, rcode }], periodMs, timeoutMs }. Messages in:
// { phase: 'label' } (later answers count under it), { stop: true }; out, after stop: { phases: { label: {
// asked, right, wrong, lost, maxMs, firstBad } } }.
// Owns: its UDP socket. Traffic goes only to 127.0.0.1.

import { parentPort, workerData } from 'node:worker_threads';
import { DnsClient, TYPE_A, answersRight } from './cluster-lib.mjs';

const { port, expectations, periodMs, timeoutMs } = workerData;
const client = await new DnsClient(port).open();
const phases = {};
let phase = 'start';
let stopping = false;
parentPort.on('message', (message) => {
  if (message.phase) phase = message.phase;
  if (message.stop) stopping = true;
});

for (let i = 0; !stopping; i++) {
  const expected = expectations[i % expectations.length];
  const counts = (phases[phase] ??= { asked: 0, right: 0, wrong: 0, lost: 0, maxMs: 0, firstBad: undefined });
  const t0 = performance.now();
  const reply = await client.query(expected.name, TYPE_A, timeoutMs);
  counts.asked++;
  if (reply === undefined) counts.lost++;
  else if (answersRight(reply, expected)) counts.right++;
  else counts.wrong++;
  if (reply !== undefined) counts.maxMs = Math.max(counts.maxMs, reply.at - t0);
  if (!answersRight(reply, expected)) counts.firstBad ??= { name: expected.name, reply: reply ?? 'no reply' };
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, periodMs - (performance.now() - t0))));
}
client.close();
parentPort.postMessage({ phases });
