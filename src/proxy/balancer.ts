/**
 * The choice of backend for one service port: round-robin over its ready targets, with `sessionAffinity:
 * ClientIP` and a penalty for targets that failed to connect. The algorithm is kube-proxy's userspace
 * `LoadBalancerRR` (an index that moves on by one per new choice; an affinity entry per client IP that a use
 * renews, so the timeout counts from the client's last connection), plus what that mode lacked:
 *
 * - A target whose connect failed sits out for a penalty that doubles with each consecutive failure (1 s up to
 *   30 s) while other targets are healthy, so one dead pod that is still listed as ready costs one failed
 *   attempt per penalty period, not one per connection. When its penalty is over, one connection probes it
 *   (others keep skipping it until that attempt ends); a success clears the penalty.
 * - A penalised target is still chosen when every target is penalised: the penalty is a preference, never an
 *   outage of its own making.
 *
 * Pure bookkeeping with an injected clock: no sockets, no timers.
 */

export interface Target {
  readonly ip: string;
  readonly port: number;
  /** `ip:port`, `[ip]:port` for IPv6: identifies the target across endpoint updates. */
  readonly key: string;
}

/** First penalty after a failed connect; it doubles per consecutive failure up to PENALTY_CAP_MS. */
const PENALTY_BASE_MS = 1000;
const PENALTY_CAP_MS = 30_000;
/** Affinity entries are swept of expired ones when the map has doubled since the last sweep, at least this big. */
const AFFINITY_SWEEP_MIN = 1024;

interface Health {
  failures: number;
  /** Not chosen before this (ms per the clock) while a healthy target exists. */
  retryAt: number;
}

interface Affinity {
  target: Target;
  lastUsedMs: number;
}

export class Balancer {
  private targets: readonly Target[] = [];
  private index = 0;
  private readonly health = new Map<string, Health>();
  private readonly affinity = new Map<string, Affinity>();
  private affinitySweepAt = AFFINITY_SWEEP_MIN;

  /**
   * @param affinityMs the ClientIP affinity timeout, or undefined for none
   * @param probeHoldMs how long a probe of a penalised target keeps others off it (the longest connect attempt)
   */
  constructor(
    private affinityMs: number | undefined,
    private readonly probeHoldMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.targets.length;
  }

  /** Whether choices depend on the client's address (ClientIP affinity is on). */
  get usesAffinity(): boolean {
    return this.affinityMs !== undefined;
  }

  has(key: string): boolean {
    return this.targets.some((target) => target.key === key);
  }

  /** New target set (and affinity setting): penalties and affinities of targets that stay are kept. */
  update(targets: readonly Target[], affinityMs: number | undefined): void {
    const keys = new Set(targets.map((target) => target.key));
    for (const key of this.health.keys()) if (!keys.has(key)) this.health.delete(key);
    if (affinityMs !== this.affinityMs) this.affinity.clear();
    for (const [client, entry] of this.affinity) if (!keys.has(entry.target.key)) this.affinity.delete(client);
    this.affinityMs = affinityMs;
    this.targets = targets;
    this.index = targets.length === 0 ? 0 : this.index % targets.length;
  }

  /**
   * The target for a new connection from `clientIp`, never one in `avoid` (targets this connection already
   * failed on); undefined when there is none. `retry` ignores the client's affinity: the affine target just failed.
   */
  pick(clientIp: string, avoid: ReadonlySet<string>, retry: boolean): Target | undefined {
    const now = this.now();
    if (this.affinityMs !== undefined && !retry) {
      const entry = this.affinity.get(clientIp);
      if (entry !== undefined && now - entry.lastUsedMs < this.affinityMs && !avoid.has(entry.target.key) && this.healthy(entry.target, now)) {
        entry.lastUsedMs = now;
        return entry.target;
      }
    }
    const target = this.nextInTurn(avoid, now, true) ?? this.nextInTurn(avoid, now, false);
    if (target === undefined) return undefined;
    const health = this.health.get(target.key);
    if (health !== undefined) health.retryAt = now + this.probeHoldMs;
    if (this.affinityMs !== undefined) this.remember(clientIp, target, now);
    return target;
  }

  /** A connect to `target` failed: it sits out a penalty that doubles per consecutive failure. */
  failed(target: Target): void {
    if (!this.has(target.key)) return;
    const health = this.health.get(target.key) ?? { failures: 0, retryAt: 0 };
    health.failures++;
    health.retryAt = this.now() + Math.min(PENALTY_CAP_MS, PENALTY_BASE_MS * 2 ** (health.failures - 1));
    this.health.set(target.key, health);
  }

  /** A connect to `target` succeeded: any penalty is over. */
  succeeded(target: Target): void {
    this.health.delete(target.key);
  }

  /** Moves the round-robin index past the first target in turn that is not avoided (and, if asked, healthy). */
  private nextInTurn(avoid: ReadonlySet<string>, now: number, healthyOnly: boolean): Target | undefined {
    const count = this.targets.length;
    for (let i = 0; i < count; i++) {
      const position = (this.index + i) % count;
      const target = this.targets[position]!;
      if (avoid.has(target.key) || (healthyOnly && !this.healthy(target, now))) continue;
      this.index = (position + 1) % count;
      return target;
    }
    return undefined;
  }

  private healthy(target: Target, now: number): boolean {
    const health = this.health.get(target.key);
    return health === undefined || health.retryAt <= now;
  }

  private remember(clientIp: string, target: Target, now: number): void {
    this.affinity.set(clientIp, { target, lastUsedMs: now });
    if (this.affinity.size < this.affinitySweepAt) return;
    for (const [client, entry] of this.affinity) {
      if (now - entry.lastUsedMs >= this.affinityMs!) this.affinity.delete(client);
    }
    this.affinitySweepAt = Math.max(AFFINITY_SWEEP_MIN, this.affinity.size * 2);
  }
}
