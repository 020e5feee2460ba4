// The shared reachability of the Kubernetes source's watch streams (src/source/kube-reach.ts) on a stepped clock:
// no real time passes, every timer fires when the test moves the clock past it. Streams are stand-ins that try
// when let go and report the verdict the test gives them, as a CollectionStream does against a real server (the
// same rules against the test API server are in kube-source.test.ts).

import { describe, expect, it } from 'vitest';
import { Reachability, type Clock, type ReachMember } from '../src/source/kube-reach.js';
import { backoffDelay } from '../src/source/kube.js';

/** A clock that moves only when told; due timers fire in due order, each at its own time. */
class SteppedClock implements Clock {
  private time = 0;
  private readonly timers = new Map<number, { at: number; callback: () => void }>();
  private ids = 0;

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const id = ++this.ids;
    this.timers.set(id, { at: this.time + Math.max(ms, 0), callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Moves time forward by `ms`, firing every timer that comes due on the way; settles promises after each. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      await settle();
      const next = [...this.timers].filter(([, timer]) => timer.at <= end).sort(([, a], [, b]) => a.at - b.at)[0];
      if (next === undefined) break;
      this.timers.delete(next[0]);
      this.time = next[1].at;
      next[1].callback();
    }
    this.time = end;
    await settle();
  }
}

const settle = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

/** A stream stand-in: loops try → verdict → wait, counting its tries; `up` says what the server answers now. */
function streams(count: number, clock: SteppedClock, server: { up: boolean }, options: { random?: () => number; probeMs?: number } = {}) {
  const random = options.random ?? (() => 0.5);
  const reach = new Reachability({ probeMs: options.probeMs ?? 1_000, random, clock });
  const controller = new AbortController();
  const tries: Array<Array<number>> = [];
  const members: ReachMember[] = [];
  for (let index = 0; index < count; index++) {
    const member = reach.join();
    members.push(member);
    tries.push([]);
    void (async () => {
      let failures = 0;
      while (!controller.signal.aborted) {
        tries[index]!.push(clock.now());
        if (server.up) {
          member.succeeded();
          return; // connected: a healthy watch makes no more requests
        }
        member.failed();
        await member.wait(backoffDelay(++failures, random, 500, 30_000), controller.signal);
      }
    })();
  }
  return { reach, members, tries, stop: () => controller.abort() };
}

describe('Reachability', () => {
  it('tells onDown when the last stream that had the server fails, and again at the first answer, once each', () => {
    const clock = new SteppedClock();
    const told: Array<[boolean, number]> = [];
    const reach = new Reachability({ probeMs: 1_000, random: () => 0.5, clock }, (down) => told.push([down, clock.now()]));
    const [a, b] = [reach.join(), reach.join()];
    a.failed();
    a.failed();
    expect(told).toEqual([]);
    b.failed();
    expect(told).toEqual([[true, 0]]);
    a.failed();
    b.succeeded();
    b.succeeded();
    a.succeeded();
    expect(told).toEqual([[true, 0], [false, 0]]);
    reach.close();
  });

  it('after 60 s of outage, one probe at a time: at most 2 tries a second, none of them at once', async () => {
    const clock = new SteppedClock();
    const server = { up: false };
    let draws = 0;
    const random = (): number => ((draws++ * 0.618) % 1); // spread over [0, 1): jitter of every kind
    const { reach, tries, stop } = streams(4, clock, server, { random });
    await clock.advance(60_000);
    expect(reach.down).toBe(true);
    const all = tries.flat().sort((a, b) => a - b);
    // Each stream's first try, then probes at least 500 ms apart: never more than 2 in any second.
    const probes = all.slice(4);
    for (let i = 1; i < probes.length; i++) expect(probes[i]! - probes[i - 1]!, `probe ${i}`).toBeGreaterThanOrEqual(500);
    for (let second = 0; second < 60; second++) {
      expect(all.filter((t) => t >= second * 1000 && t < (second + 1) * 1000).length, `second ${second}`).toBeLessThanOrEqual(second === 0 ? 6 : 2);
    }
    expect(probes.length).toBeGreaterThanOrEqual(60); // and still trying: about 1.33 a second
    expect(probes.length).toBeLessThanOrEqual(120);
    // Turn by turn: every stream probes, not one forever.
    for (const own of tries) expect(own.length).toBeGreaterThan(10);
    stop();
  });

  it('the first answer lets every waiting stream go at once, however long each had waited', async () => {
    const clock = new SteppedClock();
    const server = { up: false };
    const { members, tries, stop } = streams(4, clock, server);
    await clock.advance(60_000);
    const before = tries.map((own) => own.length);
    server.up = true;
    const back = clock.now();
    await clock.advance(1_000); // the next probe comes within probeMs; it succeeds, and the rest follow it
    for (const [index, own] of tries.entries()) {
      expect(own.length, `stream ${index}`).toBe(before[index]! + 1);
      expect(own.at(-1)! - back, `stream ${index}`).toBeLessThanOrEqual(1_000);
    }
    expect(new Set(tries.map((own) => own.at(-1))).size).toBe(1); // all in the same instant
    for (const member of members) expect(member.nextTryAt()).toBeUndefined();
    stop();
  });

  it('while some stream is not failing, a failing one waits its own backoff, cut short by any answer', async () => {
    const clock = new SteppedClock();
    const reach = new Reachability({ probeMs: 1_000, random: () => 0.5, clock });
    const healthy = reach.join();
    const failing = reach.join();
    const controller = new AbortController();
    failing.failed();
    expect(reach.down).toBe(false);
    let released = false;
    void failing.wait(20_000, controller.signal).then(() => (released = true));
    await clock.advance(10_000);
    expect(released).toBe(false);
    expect(failing.nextTryAt()).toBe(20_000);
    healthy.succeeded(); // another stream reconnected: the server answers
    await settle();
    expect(released).toBe(true);
    expect(failing.nextTryAt()).toBeUndefined();
  });

  it('going down mid-wait turns own backoffs into probe turns; the next probe time is what nextTryAt reports', async () => {
    const clock = new SteppedClock();
    const reach = new Reachability({ probeMs: 1_000, random: () => 0, clock });
    const a = reach.join();
    const b = reach.join();
    const controller = new AbortController();
    a.failed();
    let aReleased = false;
    void a.wait(30_000, controller.signal).then(() => (aReleased = true));
    expect(a.nextTryAt()).toBe(30_000);
    b.failed(); // now every stream fails
    expect(reach.down).toBe(true);
    expect(a.nextTryAt()).toBe(500); // random 0: the earliest a probe may come, half of probeMs
    let bReleased = false;
    void b.wait(30_000, controller.signal).then(() => (bReleased = true));
    await clock.advance(500);
    expect([aReleased, bReleased]).toEqual([true, false]); // the one that waited longest probes first
    expect(b.nextTryAt()).toBe(1_000);
    await clock.advance(500);
    expect(bReleased).toBe(true);
  });

  it('streams that each fail right after an answer do not let each other go in a loop: a few tries a second at most', async () => {
    const clock = new SteppedClock();
    const reach = new Reachability({ probeMs: 1_000, random: () => 0.5, clock });
    const controller = new AbortController();
    const tries: number[] = [];
    // A proxy that answers every watch with 200 and then breaks it: an answer, then a failure, every time.
    const loops = [reach.join(), reach.join()].map(async (member) => {
      let failures = 0;
      for (let i = 0; i < 2_000 && !controller.signal.aborted; i++) {
        tries.push(clock.now());
        member.startRequest(60_000, () => undefined).settle();
        member.succeeded();
        member.failed();
        await member.wait(backoffDelay(++failures, () => 0.5, 500, 30_000), controller.signal);
      }
    });
    await clock.advance(60_000);
    controller.abort();
    await Promise.all(loops);
    reach.close();
    // At most one release a second (each lets the other go once), and probes while both fail: about 3 a second.
    expect(tries.length).toBeLessThanOrEqual(4 * 61);
    for (let second = 0; second < 60; second++) {
      expect(tries.filter((t) => t >= second * 1000 && t < (second + 1) * 1000).length, `second ${second}`).toBeLessThanOrEqual(4);
    }
  });

  it('an aborted wait ends at once and leaves no timer behind', async () => {
    const clock = new SteppedClock();
    const reach = new Reachability({ probeMs: 1_000, random: () => 0.5, clock });
    const member = reach.join();
    member.failed();
    const controller = new AbortController();
    const waiting = member.wait(10_000, controller.signal);
    controller.abort();
    await waiting;
    expect(member.nextTryAt()).toBeUndefined();
    await member.wait(10_000, controller.signal); // already aborted: no wait at all
  });
});
