/**
 * Whether the API server is reachable, shared by every watch stream of one Kubernetes source, and the waits
 * between their retries. Owns the retry schedule; knows nothing of lists, watches or DNS.
 *
 *   some stream is not failing → each failing stream waits out its own full-jitter backoff (a fault of its own,
 *                                a 403 on one resource, must not make it hammer the server)
 *   every stream is failing    → the server is taken to be down: no stream retries on its own timer; one at a
 *                                time (the one that has waited longest) is let go as a probe, on a jittered
 *                                schedule of about one per `probeMs`, and the others wait for its verdict
 *   any request answered       → every waiting stream is let go at once, whatever was left of its wait; a
 *                                probe, or a retry 3 × probeMs old, still without an answer is abandoned and
 *                                made again at once (it may be lost in a connection that will never answer),
 *                                and a stream whose request fails after that answer came tries again at once.
 *                                At most once per probeMs (an answer sooner is acted on when that is over):
 *                                streams that each fail right after an answer (a proxy that breaks every
 *                                watch) must not let each other go in a tight loop.
 *
 * So a down API server sees at most two requests per `probeMs` from one clusterdns, however long it is down, and
 * once it answers again every stream is back within a probe interval, not after a backoff grown for minutes.
 * A probe that gets no answer at all (a black-holed address: no refusal, no reset) is given up after 3 × probeMs,
 * not the usual request timeout, so the probes go on while the network loses them. A DNS Deployment is a
 * handful of replicas, not the thousands of clients client-go's long backoff protects the API server from.
 */

/** Time and timers, injected so tests can step them. */
export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const REAL_CLOCK: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface ReachTuning {
  /** The mean gap between probes while every stream fails is 3/4 of this; no two closer than half of it. */
  readonly probeMs: number;
  readonly random: () => number;
  readonly clock: Clock;
}

interface Waiter {
  readonly member: ReachMember;
  readonly release: () => void;
  /** The end of the member's own backoff: only while the server is not taken to be down. */
  timer: unknown;
  dueAt: number | undefined;
}

/** One stream's view of the shared reachability: what it reports, and how it waits. */
export interface ReachMember {
  /** The API server answered one of this stream's requests (a list page, a watch's 200). */
  succeeded(): void;
  /** A request of this stream failed (refused, timed out, 5xx, 403...). */
  failed(): void;
  /**
   * Waits before the stream's next try: its own `delayMs`, or while every stream fails its turn as the probe;
   * cut short the moment any stream's request is answered, or by `signal`.
   */
  wait(delayMs: number, signal: AbortSignal): Promise<void>;
  /** When its current wait is expected to end (clock ms), or undefined when it is not waiting. */
  nextTryAt(): number | undefined;
  /**
   * A request of this stream starts now. Its timeout is `usualMs`, or while the server is taken to be down (the
   * request is a probe) at most 3 × probeMs. A probe, or a retry (the stream has failed since its last answer)
   * still unanswered after 3 × probeMs, is `abandon`ed when another stream's request is answered. `settle` once it
   * has its answer or has failed. A first list and the later pages of a list are not retries: never abandoned.
   */
  startRequest(usualMs: number, abandon: () => void): { readonly timeoutMs: number; settle(): void };
}

interface MemberState {
  /** It has failed since it last got an answer. */
  failing: boolean;
  /** The count of releases when its last request began, or when it last released the others itself. */
  seen: number;
}

export class Reachability {
  private readonly members = new Map<ReachMember, MemberState>();
  private readonly waiters: Waiter[] = [];
  /** Retries that have no answer yet. */
  private readonly retries = new Set<{ readonly member: ReachMember; readonly abandon: () => void; readonly probe: boolean; readonly at: number }>();
  /** Answers that let every waiting stream go, and when the last did. */
  private releases = 0;
  private releasedAt = -Infinity;
  private releaseTimer: unknown;
  private probeTimer: unknown;
  private probeAt: number | undefined;
  /** `down` as last told to `onDown`. */
  private toldDown = false;

  /** `onDown` is told each time `down` changes, as it changes (inside the stream's succeeded() or failed()). */
  constructor(private readonly tuning: ReachTuning, private readonly onDown?: (down: boolean) => void) {}

  /** Every stream joins before the first request; it starts as not failing. */
  join(): ReachMember {
    const member: ReachMember = {
      succeeded: () => this.succeeded(member),
      failed: () => this.failed(member),
      wait: (delayMs, signal) => this.wait(member, delayMs, signal),
      nextTryAt: () => this.nextTryAt(member),
      startRequest: (usualMs, abandon) => this.startRequest(member, usualMs, abandon),
    };
    this.members.set(member, { failing: false, seen: 0 });
    return member;
  }

  /** Every stream has failed since it last got an answer: the API server is taken to be down. */
  get down(): boolean {
    if (this.members.size === 0) return false;
    for (const state of this.members.values()) if (!state.failing) return false;
    return true;
  }

  private tellDown(): void {
    const down = this.down;
    if (down === this.toldDown) return;
    this.toldDown = down;
    this.onDown?.(down);
  }

  /** Ends every wait, probe timer and pending release (the streams' signals end their waits). */
  close(): void {
    this.stopProbing();
    if (this.releaseTimer !== undefined) this.tuning.clock.clearTimeout(this.releaseTimer);
    this.releaseTimer = undefined;
  }

  private succeeded(member: ReachMember): void {
    this.members.get(member)!.failing = false;
    this.tellDown();
    this.stopProbing();
    const sooner = this.releasedAt + this.tuning.probeMs - this.tuning.clock.now();
    if (sooner <= 0) return this.release(member);
    this.releaseTimer ??= this.tuning.clock.setTimeout(() => {
      this.releaseTimer = undefined;
      this.release(undefined);
    }, sooner);
  }

  /** The server answered (`by` that stream): every waiting stream goes, and retries that may be lost are made again. */
  private release(by: ReachMember | undefined): void {
    const now = this.tuning.clock.now();
    this.releasedAt = now;
    this.releases++;
    if (by !== undefined) this.members.get(by)!.seen = this.releases;
    for (const waiter of this.waiters.splice(0)) this.finish(waiter);
    const stale = now - 3 * this.tuning.probeMs;
    for (const retry of [...this.retries]) {
      if (retry.member === by || (!retry.probe && retry.at > stale)) continue;
      this.retries.delete(retry);
      retry.abandon();
    }
  }

  private failed(member: ReachMember): void {
    const state = this.members.get(member)!;
    if (state.failing) return;
    state.failing = true;
    this.tellDown();
    if (!this.down) return;
    // Down now: the waits already under way end with a probe, not with their own timers.
    for (const waiter of this.waiters) this.clearOwn(waiter);
    this.probeSoon();
  }

  private wait(member: ReachMember, delayMs: number, signal: AbortSignal): Promise<void> {
    const state = this.members.get(member)!;
    // Another stream's answer let the waiting go since this one's request began: the server is back, whatever
    // that request met.
    const answered = state.seen !== this.releases;
    state.seen = this.releases;
    if (signal.aborted || (answered && !this.down)) return Promise.resolve();
    return new Promise((resolve) => {
      const onAbort = (): void => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        if (this.waiters.length === 0) this.stopProbing();
        this.finish(waiter);
      };
      const waiter: Waiter = {
        member,
        release: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
        timer: undefined,
        dueAt: undefined,
      };
      signal.addEventListener('abort', onAbort, { once: true });
      if (!this.down && delayMs <= 0) return waiter.release();
      this.waiters.push(waiter);
      if (this.down) return this.probeSoon();
      waiter.dueAt = this.tuning.clock.now() + delayMs;
      waiter.timer = this.tuning.clock.setTimeout(() => {
        waiter.timer = undefined;
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        this.finish(waiter);
      }, delayMs);
    });
  }

  private startRequest(member: ReachMember, usualMs: number, abandon: () => void): { timeoutMs: number; settle(): void } {
    const state = this.members.get(member)!;
    state.seen = this.releases;
    const probe = this.down;
    const timeoutMs = probe ? Math.min(usualMs, 3 * this.tuning.probeMs) : usualMs;
    if (!state.failing) return { timeoutMs, settle: () => undefined };
    const retry = { member, abandon, probe, at: this.tuning.clock.now() };
    this.retries.add(retry);
    return { timeoutMs, settle: () => this.retries.delete(retry) };
  }

  private nextTryAt(member: ReachMember): number | undefined {
    const waiter = this.waiters.find((entry) => entry.member === member);
    if (waiter === undefined) return undefined;
    return waiter.dueAt ?? this.probeAt;
  }

  /** Schedules the next probe, unless one is scheduled or nobody waits to be it. */
  private probeSoon(): void {
    if (this.probeTimer !== undefined || this.waiters.length === 0) return;
    const half = this.tuning.probeMs / 2;
    const delay = Math.floor(half + this.tuning.random() * half);
    this.probeAt = this.tuning.clock.now() + delay;
    this.probeTimer = this.tuning.clock.setTimeout(() => {
      this.probeTimer = undefined;
      this.probeAt = undefined;
      if (!this.down) return;
      const probe = this.waiters.shift();
      if (probe !== undefined) this.finish(probe);
      this.probeSoon();
    }, delay);
  }

  private stopProbing(): void {
    if (this.probeTimer !== undefined) this.tuning.clock.clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    this.probeAt = undefined;
  }

  private clearOwn(waiter: Waiter): void {
    if (waiter.timer !== undefined) this.tuning.clock.clearTimeout(waiter.timer);
    waiter.timer = undefined;
    waiter.dueAt = undefined;
  }

  private finish(waiter: Waiter): void {
    this.clearOwn(waiter);
    waiter.release();
  }
}
