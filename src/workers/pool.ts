/**
 * workers/ — the threads that answer DNS beside the main one (`--workers N`, the Corefile's `multisocket N`).
 *
 * Owns the worker threads and what crosses to them: each gets the plan's origin (it makes the same plan and
 * chains itself), the addresses the main thread bound (it binds the same ones with SO_REUSEPORT, so the kernel
 * spreads queries over every thread's socket), and the main thread's store as a snapshot and then as mirrored
 * writes (store.mirror): one API watch per process, however many threads (N watches would multiply the load
 * on the API server, coredns/coredns#7771). It sums their metrics into the main thread's /metrics and their
 * failing names into its /debug/top, reports a thread that is not ready on /ready, passes a reloaded Corefile on,
 * and starts a thread that dies again from a fresh snapshot, without a relist and without the other threads
 * missing a query.
 * Must not touch: the source, the HTTP endpoints and the proxy, which stay in the main thread.
 */
import { Worker } from 'node:worker_threads';
import { AggregatorRegistry, Counter, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { LogLevel } from '../config/index.js';
import type { HostPort } from '../ip.js';
import type { MetricsJson, PlanOrigin } from '../main.js';
import type { RecordStore, StoreWrite } from '../store/index.js';
import { mergeReports, type TopReport } from '../telemetry/top.js';

/** What a worker starts from (workerData). */
export interface WorkerStart {
  readonly index: number;
  readonly origin: PlanOrigin;
  readonly logLevel: LogLevel;
  readonly listen: readonly HostPort[];
  /** The store as it was when the worker was made; later writes follow as messages. */
  readonly snapshot: readonly StoreWrite[];
  readonly snapshotAtMs: number;
}

/** Main thread → worker. */
export type ToWorker =
  | { readonly type: 'writes'; readonly writes: readonly StoreWrite[]; readonly atMs: number }
  | { readonly type: 'reload'; readonly text: string; readonly hash: string }
  | { readonly type: 'ask'; readonly id: number; readonly what: Asked }
  | { readonly type: 'close' };

/** What the main thread asks a worker for when it is scraped. */
export type Asked = 'metrics' | 'top';

/** Worker → main thread. */
export type FromWorker =
  | { readonly type: 'started' }
  | { readonly type: 'state'; readonly notReady: string | undefined }
  | { readonly type: 'answer'; readonly id: number; readonly answer: MetricsJson | TopReport | undefined }
  | { readonly type: 'failed'; readonly message: string };

export interface PoolOptions {
  readonly origin: PlanOrigin;
  readonly logLevel: LogLevel;
  readonly listen: readonly HostPort[];
  readonly store: RecordStore;
  readonly registry: Registry;
  readonly log: Logger;
}

/** A worker's metrics (or top) must come within this, or the scrape goes on without them (and says so in the log). */
const ANSWER_TIMEOUT_MS = 2000;
/** A worker that dies is started again at once, but not more often than this (a crash loop must not spin). */
const RESTART_BACKOFF_MS = 1000;
/**
 * Each thread's heap: the old space as the main thread's (runtime/heap.ts), young space small, for the same
 * reason as there: the store is long-lived, and a large young generation only costs RSS.
 */
const RESOURCE_LIMITS = { maxOldGenerationSizeMb: 256, maxYoungGenerationSizeMb: 6 };

interface Slot {
  worker: Worker | undefined;
  notReady: string | undefined;
  restarts: number;
}

export class WorkerPool {
  private readonly slots: Slot[];
  private closed = false;
  private nextId = 0;
  private readonly waiting = new Map<number, (answer: MetricsJson | TopReport | undefined) => void>();
  private readonly restarted: Counter;
  private corefile: { text: string; hash: string } | undefined;

  constructor(count: number, private readonly options: PoolOptions) {
    this.slots = Array.from({ length: count }, () => ({ worker: undefined, notReady: 'starting', restarts: 0 }));
    this.restarted = new Counter({ name: 'clusterdns_worker_restarts_total', help: 'Worker threads started again after they died.', registers: [options.registry] });
    // Every write that changed the main thread's store goes to every worker, in order.
    options.store.mirror((writes, atMs) => this.post({ type: 'writes', writes, atMs }));
  }

  /** Starts every worker; resolves once each answers on its sockets (or rejects with the first failure). */
  async start(): Promise<void> {
    await Promise.all(this.slots.map((_, index) => this.spawn(index)));
    this.options.log.info({ threads: this.slots.length + 1 }, 'worker threads answering beside the main thread');
  }

  /** Why some worker is not ready, or undefined. */
  notReady(): string | undefined {
    const waiting = this.slots.flatMap((slot, index) => (slot.notReady === undefined ? [] : [`worker ${index + 1}: ${slot.notReady}`]));
    return waiting.length === 0 ? undefined : waiting.join(', ');
  }

  /** The main thread's metrics with every worker's summed in, as Prometheus text. */
  async metrics(own: MetricsJson): Promise<string> {
    const theirs = await this.askAll('metrics') as Array<MetricsJson | undefined>;
    return AggregatorRegistry.aggregate([own, ...theirs.filter((metrics) => metrics !== undefined)]).metrics();
  }

  /** The main thread's failing names (/debug/top) with every worker's summed in. */
  async top(own: TopReport): Promise<TopReport> {
    const theirs = await this.askAll('top') as Array<TopReport | undefined>;
    return mergeReports(own, theirs.filter((report) => report !== undefined));
  }

  private askAll(what: Asked): Promise<Array<MetricsJson | TopReport | undefined>> {
    return Promise.all(this.slots.map((slot, index) => this.ask(slot, index, what)));
  }

  /** A Corefile the main thread has applied: each worker applies it too (and one started later starts from it). */
  reload(text: string, hash: string): void {
    this.corefile = { text, hash };
    this.post({ type: 'reload', text, hash });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map(async (slot) => {
      const worker = slot.worker;
      if (worker === undefined) return;
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      worker.postMessage({ type: 'close' } satisfies ToWorker);
      const timer = setTimeout(() => void worker.terminate(), 5000);
      await exited;
      clearTimeout(timer);
    }));
  }

  private post(message: ToWorker): void {
    for (const slot of this.slots) slot.worker?.postMessage(message);
  }

  private ask(slot: Slot, index: number, what: Asked): Promise<MetricsJson | TopReport | undefined> {
    const worker = slot.worker;
    if (worker === undefined) return Promise.resolve(undefined);
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        this.options.log.warn({ worker: index + 1, what }, 'a worker thread did not answer in time; the scrape goes on without its counts');
        resolve(undefined);
      }, ANSWER_TIMEOUT_MS);
      this.waiting.set(id, (answer) => {
        clearTimeout(timer);
        resolve(answer);
      });
      worker.postMessage({ type: 'ask', id, what } satisfies ToWorker);
    });
  }

  private spawn(index: number): Promise<void> {
    const slot = this.slots[index]!;
    const { store } = this.options;
    const origin: PlanOrigin = this.corefile !== undefined && this.options.origin.kind === 'corefile'
      ? { ...this.options.origin, text: this.corefile.text }
      : this.options.origin;
    const start: WorkerStart = {
      index: index + 1,
      origin,
      logLevel: this.options.logLevel,
      listen: this.options.listen,
      snapshot: store.snapshot(),
      snapshotAtMs: store.lastChangeMs,
    };
    const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: start, resourceLimits: RESOURCE_LIMITS });
    slot.worker = worker;
    slot.notReady = 'starting';
    return new Promise((resolve, reject) => {
      let started = false;
      worker.on('message', (message: FromWorker) => {
        switch (message.type) {
          case 'started':
            started = true;
            resolve();
            break;
          case 'state':
            slot.notReady = message.notReady;
            break;
          case 'answer':
            this.waiting.get(message.id)?.(message.answer);
            this.waiting.delete(message.id);
            break;
          case 'failed':
            if (!started) reject(new Error(`worker ${index + 1} could not start: ${message.message}`));
            break;
        }
      });
      worker.on('error', (error) => {
        this.options.log.error({ err: error, worker: index + 1 }, 'a worker thread failed');
        if (!started) reject(error);
      });
      worker.on('exit', (code) => {
        if (slot.worker === worker) slot.worker = undefined;
        if (this.closed || !started) return;
        slot.notReady = 'restarting';
        slot.restarts++;
        this.restarted.inc();
        this.options.log.error({ worker: index + 1, code }, 'a worker thread died; starting it again from the store (no relist)');
        setTimeout(() => {
          if (this.closed) return;
          this.spawn(index).catch((error: unknown) => this.options.log.error({ err: error, worker: index + 1 }, 'a worker thread could not be started again'));
        }, slot.restarts > 1 ? RESTART_BACKOFF_MS : 0).unref();
      });
    });
  }
}
