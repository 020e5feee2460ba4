/**
 * One watched collection (say, all Services, or the Services of one namespace) kept in the store by a
 * list+watch loop, the way client-go's reflector does it but holding no API objects: each item is converted to
 * its slim record as it arrives and dropped.
 *
 *   list (paged, limit/continue, one snapshot) → replace the collection's records by difference
 *   watch from the list's resourceVersion (bookmarks on) → upsert / remove per event, remember resourceVersion
 *   clean end → watch again from the last resourceVersion          410 Gone → list again, reconcile
 *   any other failure, or silence for a watchdog period → back off (full jitter), watch again from there
 *
 * Its waits go through the source's shared reachability (kube-reach.ts): told of every answered and failed
 * request, it lets the stream go early once any stream reaches the API server, and while every stream fails it
 * sends one probe at a time instead of each stream's own retries.
 *
 * The store is only ever written, never cleared: whatever goes wrong, the last known records keep being served.
 * Owns its state (connected, relists, last event) and logs each change of it once; knows nothing of DNS.
 */
import type { Logger } from 'pino';
import { serviceKey, type RecordsByKind, type RecordStore, type ResourceKind } from '../store/index.js';
import { describeError, isExpiredList, listPage, startWatch, type Json, type WatchEnd } from './kube-api.js';
import type { KubeAccess } from './kube-config.js';
import type { ReachMember } from './kube-reach.js';
import { ObjectError } from './objects.js';

export interface CollectionSpec<K extends ResourceKind> {
  readonly kind: K;
  /** The collection's API path, e.g. `/api/v1/services` or `/api/v1/namespaces/a/services`. */
  readonly path: string;
  /** Set when the collection is one namespace's share of a namespaced kind. */
  readonly namespace?: string;
  readonly fieldSelector?: string;
  /** Only objects whose labels match (the kubernetes plugin's `labels`), filtered by the API server. */
  readonly labelSelector?: string;
  /** API object → slim record, or undefined when the object gives none; throws ObjectError on a bad object. */
  readonly convert: (object: Json) => RecordsByKind[K] | undefined;
  /** A filter applied after conversion (namespaces outside `--namespaces`). */
  readonly keep?: (record: RecordsByKind[K]) => boolean;
  /** Told of each object a watch event put into the store (not of list items), after it is there. */
  readonly observe?: (object: Json) => void;
}

export interface StreamTuning {
  /** Items per list page at most. */
  readonly pageSize: number;
  /** The size of list page to aim for, in bytes of JSON. */
  readonly pageBytes: number;
  readonly watchdogMs: number;
  readonly requestTimeoutMs: number;
  readonly backoffBaseMs: number;
  readonly backoffCapMs: number;
  readonly random: () => number;
  readonly now: () => number;
}

export interface StreamState {
  connected: boolean;
  relists: number;
  lastEventAt: number | undefined;
  /** The first complete list has been written to the store. */
  listed: boolean;
  /** Why the stream is not connected, while it is not. */
  reason: string | undefined;
  /** Since when (per `now`) it has been retrying, while it is not connected after a failure. */
  retryingSince: number | undefined;
}

/** Where a stream's records go: the whole kind, or (with `namespace`) one namespace's share of it. */
export interface RecordSink<K extends ResourceKind> {
  replace(records: Array<RecordsByKind[K]>): void;
  put(record: RecordsByKind[K]): void;
  drop(namespace: string, name: string): void;
}

/** The store's difference-based replaceAll reconciles a relist, scoped to the stream's namespace if it has one. */
export function storeSink<K extends ResourceKind>(store: RecordStore, kind: K, namespace?: string): RecordSink<K> {
  return {
    replace: (records) => store.replaceAll(kind, records, namespace === undefined ? undefined : { namespace }),
    put: (record) => store.upsert(kind, record),
    drop: (ns, name) => store.remove(kind, ns, name),
  };
}

/** Full-jitter exponential backoff: uniform in [0, min(cap, base × 2^(attempt−1))). */
export function backoffDelay(attempt: number, random: () => number, baseMs: number, capMs: number): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
  return Math.floor(random() * ceiling);
}

/** Why a probe still without an answer was given up: it may be lost, and the server is known to answer again. */
const ABANDONED = 'abandoned: the API server answered another request first; trying again';

/** Items on the first page of a list, before anything is known of their size (an EndpointSlice can be 30 KB). */
const FIRST_PAGE_ITEMS = 50;

type WatchResult = { readonly end: WatchEnd; readonly events: number };

export class CollectionStream<K extends ResourceKind> {
  readonly state: StreamState = { connected: false, relists: 0, lastEventAt: undefined, listed: false, reason: undefined, retryingSince: undefined };
  private resourceVersion: string | undefined;
  /** Objects already reported as unusable (`namespace/name`), so each is logged once, not on every change. */
  private reported = new Set<string>();
  private logged: 'connected' | 'retrying' | undefined;
  /** After a watch went silent, response headers prove nothing: only an event (or bookmark) counts as connected. */
  private needsEvent = false;

  constructor(
    private readonly access: KubeAccess,
    private readonly spec: CollectionSpec<K>,
    private readonly sink: RecordSink<K>,
    private readonly log: Logger,
    private readonly tuning: StreamTuning,
    private readonly signal: AbortSignal,
    private readonly reach: ReachMember,
    /** Told of every change of `state` but lastEventAt (which callers read when they need it). */
    private readonly changed: () => void,
  ) {}

  /** Runs until the signal aborts; never rejects. */
  async run(): Promise<void> {
    let failures = 0;
    while (!this.signal.aborted) {
      try {
        let fresh = false;
        if (this.resourceVersion === undefined) {
          try {
            this.resourceVersion = await this.list();
            failures = 0;
            fresh = true;
          } catch (error) {
            if (this.signal.aborted) return;
            // A continue token that expired mid-list (410) just means: list again from the start.
            if (!isExpiredList(error)) this.retrying(`list: ${describeError(error)}`);
            await this.pause(++failures);
            continue;
          }
        }
        const { end, events } = await this.watch(this.resourceVersion);
        if (this.signal.aborted) return;
        if (events > 0) failures = 0;
        switch (end.type) {
          case 'closed':
            // Servers end watches routinely; resume at once, unless watches keep ending with nothing in them.
            if (events === 0) await this.pause(++failures);
            break;
          case 'expired':
            this.resourceVersion = undefined;
            this.state.relists++;
            this.log.info({ relists: this.state.relists }, 'resourceVersion expired (410 Gone): listing again');
            this.changed();
            // Relist at once; only a watch from a list just made that expires before any event backs off.
            if (fresh && events === 0) await this.pause(++failures);
            break;
          case 'failed':
            this.retrying(end.reason);
            await this.pause(++failures);
            break;
        }
      } catch (error) {
        // A bug (the store threw, say): never stop watching over it; list again so the store is whole.
        if (this.signal.aborted) return;
        this.log.error({ err: error }, 'unexpected error in the watch loop; listing again');
        this.resourceVersion = undefined;
        await this.pause(++failures);
      }
    }
  }

  private async list(): Promise<string> {
    const records: Array<RecordsByKind[K]> = [];
    const bad = new Set<string>();
    let token: string | undefined;
    let resourceVersion: string;
    // A page's JSON, and the objects parsed from it, are alive together until its items are converted: their size,
    // not the item count, sets the peak memory of a list. Pages are sized to pageBytes from what the last one
    // weighed, starting small: 500 EndpointSlices of 100 endpoints are 12 MB of JSON and ~80 MB parsed, 500
    // Services 0.3 MB.
    let limit = Math.min(this.tuning.pageSize, FIRST_PAGE_ITEMS);
    do {
      const query = { limit: String(limit), continue: token, fieldSelector: this.spec.fieldSelector, labelSelector: this.spec.labelSelector };
      const page = await this.withDeadline((signal) => listPage(this.access, this.spec.path, query, signal));
      this.reach.succeeded();
      limit = Math.max(1, Math.min(this.tuning.pageSize, Math.floor((limit * this.tuning.pageBytes) / Math.max(page.size, 1))));
      for (const item of page.items) {
        const record = this.convert(item as Json, bad);
        if (record !== undefined) records.push(record);
      }
      resourceVersion = page.resourceVersion;
      token = page.continueToken;
    } while (token !== undefined);
    // Only after the whole list: applying a page at a time would remove what later pages still hold.
    this.sink.replace(records);
    this.reported = new Set([...this.reported].filter((key) => bad.has(key)));
    if (!this.state.listed) {
      this.state.listed = true;
      this.log.info({ records: records.length, resourceVersion }, 'listed');
      this.changed();
    } else {
      this.log.info({ records: records.length, resourceVersion }, 'listed again; reconciled by difference');
    }
    return resourceVersion;
  }

  /**
   * A list page that does not finish within requestTimeoutMs (a probe's shorter deadline while the API server is
   * taken to be down) is abandoned. The signal ends the request; the race
   * also covers what comes before it (an exec credential plugin that hangs).
   */
  private async withDeadline<T>(call: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    const request = this.reach.startRequest(this.tuning.requestTimeoutMs, () => controller.abort(new Error(ABANDONED)));
    const timeoutMs = request.timeoutMs;
    const timer = setTimeout(() => controller.abort(new Error(`no complete answer within ${timeoutMs} ms`)), timeoutMs);
    const onClose = (): void => controller.abort(new Error('closing'));
    this.signal.addEventListener('abort', onClose, { once: true });
    const abandoned = new Promise<never>((_resolve, reject) => {
      controller.signal.addEventListener('abort', () => reject(controller.signal.reason as Error), { once: true });
    });
    const work = call(controller.signal);
    work.catch(() => undefined); // settles after the race is lost; nothing more to do with it
    try {
      return await Promise.race([work, abandoned]);
    } finally {
      clearTimeout(timer);
      request.settle();
      this.signal.removeEventListener('abort', onClose);
    }
  }

  private watch(resourceVersion: string): Promise<WatchResult> {
    return new Promise((resolve) => {
      let events = 0;
      let sinceCheck = 0;
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      let probe: ReturnType<ReachMember['startRequest']> | undefined;
      const finish = (end: WatchEnd): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        probe?.settle();
        this.signal.removeEventListener('abort', onClose);
        resolve({ end, events });
      };
      const giveUp = (reason: string): void => {
        request.abandon();
        finish({ type: 'failed', reason });
      };
      // Silence for a whole period (no event, not even a bookmark) means the stream is dead, whatever TCP says.
      const check = (): void => {
        if (sinceCheck === 0) {
          this.needsEvent = true;
          return giveUp(`no event or bookmark for ${this.tuning.watchdogMs} ms`);
        }
        sinceCheck = 0;
        timer = setTimeout(check, this.tuning.watchdogMs);
      };
      const query: Record<string, string> = { resourceVersion, allowWatchBookmarks: 'true' };
      if (this.spec.fieldSelector !== undefined) query.fieldSelector = this.spec.fieldSelector;
      if (this.spec.labelSelector !== undefined) query.labelSelector = this.spec.labelSelector;
      const request = startWatch(this.access, this.spec.path, query, {
        onOpen: () => {
          clearTimeout(timer);
          probe?.settle();
          this.reach.succeeded();
          if (!this.needsEvent) this.connected();
          timer = setTimeout(check, this.tuning.watchdogMs);
        },
        onEvent: (type, object) => {
          events++;
          sinceCheck++;
          if (!this.state.connected) {
            this.needsEvent = false;
            this.connected();
          }
          this.onEvent(type, object);
        },
        onEnd: finish,
      });
      const onClose = (): void => {
        request.abandon();
        finish({ type: 'closed' });
      };
      if (this.signal.aborted) return onClose();
      this.signal.addEventListener('abort', onClose, { once: true });
      // A watch whose headers do not come is given up as a list page would be.
      probe = this.reach.startRequest(this.tuning.requestTimeoutMs, () => giveUp(ABANDONED));
      const { timeoutMs } = probe;
      timer = setTimeout(() => giveUp(`no answer to the watch request within ${timeoutMs} ms`), timeoutMs);
    });
  }

  private onEvent(type: string, object: Json): void {
    this.state.lastEventAt = this.tuning.now();
    const metadata = (object.metadata ?? {}) as { name?: unknown; namespace?: unknown; resourceVersion?: unknown };
    switch (type) {
      case 'ADDED':
      case 'MODIFIED': {
        const record = this.convert(object, undefined);
        if (record !== undefined) {
          this.sink.put(record);
          this.spec.observe?.(object);
        } else if (typeof metadata.name === 'string' && !this.reported.has(this.keyOf(metadata))) {
          // The object no longer gives a record (a pod that lost its IP, a slice that lost its service label).
          this.sink.drop(String(metadata.namespace ?? ''), metadata.name);
        }
        break;
      }
      case 'DELETED':
        if (typeof metadata.name === 'string') {
          this.sink.drop(String(metadata.namespace ?? ''), metadata.name);
          this.reported.delete(this.keyOf(metadata));
        }
        break;
      case 'BOOKMARK':
        break;
      default:
        this.log.debug({ type }, 'ignoring a watch event of unknown type');
        return;
    }
    if (typeof metadata.resourceVersion === 'string' && metadata.resourceVersion !== '') {
      this.resourceVersion = metadata.resourceVersion;
    }
  }

  /**
   * The record for an object, or undefined when it gives none, is filtered out, or is unusable. An unusable
   * object is logged once by name and skipped: on a change, its last good record stays.
   */
  private convert(object: Json, bad: Set<string> | undefined): RecordsByKind[K] | undefined {
    const metadata = (object.metadata ?? {}) as { name?: unknown; namespace?: unknown };
    const key = this.keyOf(metadata);
    try {
      const record = this.spec.convert(object);
      this.reported.delete(key);
      return record !== undefined && (this.spec.keep?.(record) ?? true) ? record : undefined;
    } catch (error) {
      if (!(error instanceof ObjectError)) throw error;
      bad?.add(key);
      if (!this.reported.has(key)) {
        this.reported.add(key);
        this.log.warn({ object: key, err: error.message }, 'skipping an object clusterdns cannot use');
      }
      return undefined;
    }
  }

  private keyOf(metadata: { name?: unknown; namespace?: unknown }): string {
    return serviceKey(String(metadata.namespace ?? ''), String(metadata.name ?? ''));
  }

  private connected(): void {
    if (this.logged !== 'connected') {
      this.log.info(this.logged === 'retrying' ? 'watch connected again' : 'watch connected');
      this.logged = 'connected';
    }
    if (this.state.connected) return;
    this.state.connected = true;
    this.state.reason = undefined;
    this.state.retryingSince = undefined;
    this.changed();
  }

  private retrying(reason: string): void {
    this.reach.failed();
    if (this.logged !== 'retrying') {
      this.log.warn({ reason }, 'cannot watch; retrying with backoff, serving the last known records meanwhile');
      this.logged = 'retrying';
    }
    if (!this.state.connected && this.state.reason === reason) return;
    this.state.connected = false;
    this.state.reason = reason;
    this.state.retryingSince ??= this.tuning.now();
    this.changed();
  }

  /**
   * Waits out the backoff for the `attempt`-th consecutive failure (or, while the API server is taken to be down,
   * its turn as the probe), until any stream reaches the server, or until close.
   */
  private pause(attempt: number): Promise<void> {
    const delay = backoffDelay(attempt, this.tuning.random, this.tuning.backoffBaseMs, this.tuning.backoffCapMs);
    this.log.debug({ attempt, delayMs: delay, reason: this.state.reason }, 'backing off');
    return this.reach.wait(delay, this.signal);
  }
}
