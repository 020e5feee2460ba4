/**
 * Loopback VIPs for `--proxy-vip loopback`: every ClusterIP service gets one address from a range inside
 * 127.0.0.0/8 (every address there is local on Linux, so binding needs no interface set-up). The slot is a hash
 * of `namespace/name`, probing on to the next free slot on a collision, so a service keeps its address for its
 * lifetime and usually across restarts too: a developer's shell history and a client's cached DNS answer stay
 * good. An address is released when its service goes away or stops being a ClusterIP service.
 */
import { ipv4ToNumber, numberToIpv4 } from '../ip.js';
import { serviceKey, splitServiceKey, type StoreView } from '../store/index.js';

export interface LoopbackRange {
  /** The network address, e.g. `127.32.0.0`. */
  readonly network: string;
  readonly prefix: number;
}

export class LoopbackVips {
  private readonly base: number;
  /** Usable slots: the range without its first and last address (network and broadcast by convention). */
  private readonly slots: number;
  private readonly bySlot = new Map<number, string>();
  private readonly byService = new Map<string, number>();
  private readonly unsubscribe: () => void;

  constructor(store: StoreView, range: LoopbackRange) {
    this.base = ipv4ToNumber(range.network);
    this.slots = 2 ** (32 - range.prefix) - 2;
    this.unsubscribe = store.subscribe((changes) => {
      for (const key of changes.services) {
        const { namespace, name } = splitServiceKey(key);
        const service = store.getService(namespace, name);
        if (service === undefined || service.kind !== 'ClusterIP') this.release(key);
      }
    });
  }

  /** The service's loopback address, allocated on first ask: one address, or none when the range is full. */
  addressesOf(service: { readonly namespace: string; readonly name: string }): string[] {
    const key = serviceKey(service.namespace, service.name);
    let slot = this.byService.get(key);
    if (slot === undefined) {
      slot = this.freeSlot(key);
      if (slot === undefined) return [];
      this.byService.set(key, slot);
      this.bySlot.set(slot, key);
    }
    return [numberToIpv4(this.base + 1 + slot)];
  }

  get allocated(): number {
    return this.byService.size;
  }

  close(): void {
    this.unsubscribe();
  }

  private freeSlot(key: string): number | undefined {
    const start = fnv1a(key) % this.slots;
    for (let i = 0; i < this.slots; i++) {
      const slot = (start + i) % this.slots;
      if (!this.bySlot.has(slot)) return slot;
    }
    return undefined;
  }

  private release(key: string): void {
    const slot = this.byService.get(key);
    if (slot === undefined) return;
    this.byService.delete(key);
    this.bySlot.delete(slot);
  }
}

/** 32-bit FNV-1a: cheap, and spreads similar names (`svc1`, `svc2`) over the range. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}
