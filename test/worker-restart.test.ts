/**
 * A worker thread that dies (src/workers/pool.ts): the pool of the built server (dist/, whose worker.js the threads
 * run) in this process as the main thread, over a store this test writes. A thread is ended from outside, as a
 * crash or an out-of-memory in it ends it; the test holds that the other thread kept answering, that the dead one
 * is started again from the store as it is now (a change made while it was down included) without anything being
 * listed again, and that clusterdns_worker_restarts_total and /ready's reason say so meanwhile.
 */
import { createSocket, type Socket } from 'node:dgram';
import type { Worker } from 'node:worker_threads';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseServeArgs } from '../src/config/index.js';
import { applySnapshot, loadManifests } from '../src/source/manifests.js';
import { RecordStore } from '../src/store/index.js';
import { decodeMessage, encodeQuery, nameToKey } from '../src/wire/index.js';
import { freePort } from './support/server-process.js';

type PoolModule = typeof import('../src/workers/pool.js');
const DEMO = new URL('../examples/demo-cluster.yaml', import.meta.url).pathname;

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The pool's threads, as the pool holds them (private there: only a test ends one from outside). */
const threadsOf = (pool: object): Array<Worker | undefined> => (pool as { slots: Array<{ worker: Worker | undefined }> }).slots.map((slot) => slot.worker);

/**
 * Clients on `count` source ports (the kernel picks a thread's socket per source port) asking `web` every
 * `intervalMs`: each counts its queries and its answers, so a client whose thread kept running can be told from one
 * whose thread died under it.
 */
function clients(port: number, count: number, intervalMs: number): { sockets: Socket[]; sent: number[]; answered: number[]; addresses: string[][]; pause(): void; close(): void } {
  const state = { sockets: [] as Socket[], sent: [] as number[], answered: [] as number[], addresses: [] as string[][] };
  const key = nameToKey('web.default.svc.cluster.local');
  for (let i = 0; i < count; i++) {
    const socket = createSocket('udp4');
    state.sockets.push(socket);
    state.sent.push(0);
    state.answered.push(0);
    state.addresses.push([]);
    socket.on('message', (packet) => {
      const reply = decodeMessage(packet);
      state.answered[i]!++;
      const a = reply.answer.find((record) => record.type === 1);
      if (a !== undefined) state.addresses[i]!.push([...a.rdata].join('.'));
    });
  }
  let id = 0;
  const timer = setInterval(() => {
    state.sockets.forEach((socket, i) => {
      id = (id + 1) & 0xffff;
      state.sent[i]!++;
      socket.send(encodeQuery({ id, key, qtype: 1, qclass: 1, dnssecOk: false, checkingDisabled: false }, 1232), port, '127.0.0.1');
    });
  }, intervalMs);
  return { ...state, pause: () => clearInterval(timer), close: () => (clearInterval(timer), state.sockets.forEach((socket) => socket.close())) };
}

describe('a worker thread that dies', () => {
  it('is started again from the store as it is, while the other thread answers every query', async () => {
    const { WorkerPool } = (await import('../dist/workers/pool.js' as string)) as PoolModule;
    const port = await freePort();
    const config = parseServeArgs(['--manifests', DEMO, '--listen', `127.0.0.1:${port}`, '--upstream', 'none', '--workers', '3'])!;
    const store = new RecordStore();
    applySnapshot(store, await loadManifests(DEMO));
    store.markSynced();
    const registry = new Registry();
    const pool = new WorkerPool(2, {
      origin: { kind: 'flags', config, command: 'serve' },
      logLevel: 'silent',
      listen: [{ host: '127.0.0.1', port }],
      store,
      registry,
      log: pino({ level: 'silent' }),
    });
    cleanups.push(() => pool.close());
    await pool.start();
    await vi.waitFor(() => expect(pool.notReady()).toBeUndefined(), { timeout: 5000, interval: 20 });

    const load = clients(port, 8, 5);
    cleanups.push(() => load.close());
    await vi.waitFor(() => expect(Math.min(...load.answered)).toBeGreaterThan(20), { timeout: 5000, interval: 20 });
    const before = [...load.answered];
    const victim = threadsOf(pool)[0]!;
    const exited = new Promise((resolve) => victim.once('exit', resolve));
    await victim.terminate();
    await exited;
    // While it is down: the store changes (the restarted thread must start from this, not from what it had).
    const web = store.getService('default', 'web')!;
    store.upsert('service', { ...web, clusterIPs: ['10.96.0.99'] });
    await vi.waitFor(() => expect(threadsOf(pool)[0]).not.toBe(victim), { timeout: 5000, interval: 10 });
    await vi.waitFor(() => expect(pool.notReady()).toBeUndefined(), { timeout: 5000, interval: 20 });
    const restarted = threadsOf(pool)[0]!;
    await new Promise((resolve) => setTimeout(resolve, 300));
    // The last queries' answers arrive before the count.
    load.pause();
    await new Promise((resolve) => setTimeout(resolve, 200));

    expect((await registry.getSingleMetric('clusterdns_worker_restarts_total')!.get()).values[0]!.value).toBe(1);
    expect(restarted).toBeDefined();
    // Every client got answers after the death (the kernel moved the dead socket's clients to the others at once),
    // and every client's last answer is the change made while the thread was down, whichever thread gave it.
    for (let i = 0; i < load.sockets.length; i++) {
      expect(load.answered[i]!, `client ${i}`).toBeGreaterThan(before[i]! + 20);
      expect(load.addresses[i]!.at(-1), `client ${i}`).toBe('10.96.0.99');
    }
    // What was lost is at most what was queued at the dead thread's socket when it went: a query or two per client.
    const lost = load.sent.reduce((sum, sent, i) => sum + sent - load.answered[i]!, 0);
    expect(lost).toBeLessThanOrEqual(2 * load.sockets.length);
  });
});
