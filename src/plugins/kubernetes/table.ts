/**
 * The name table of the zones we are authoritative for: every name that exists, keyed by wire key, including
 * empty non-terminals, so "does this name exist?" (NXDOMAIN vs NODATA) is one map lookup.
 *
 * A node does not hold records; it holds record sources (a service entry, a port, the zone apex) that produce
 * records when the name is first asked after a change, and a store change costs only the names of the service
 * that changed. Endpoint and reverse names are not nodes: they are answered through their service's entry, so
 * the table grows with services, not endpoints (at 100k endpoints, a node per endpoint name and PTR was ~150 MB).
 */
import type { PreparedAnswer, ResourceRecord } from '../../wire/index.js';
import { parentKey } from '../../wire/index.js';

const NO_SOURCES: RecordSource[] = [];

export interface RecordSource {
  /** The records this source owns at `owner`. Called off the hot path, once per name per generation. */
  records(owner: string): readonly ResourceRecord[];
  /** The Extended DNS Error option its positive answers carry (a service with no ready endpoint), if any. */
  readonly ede?: Buffer;
}

export class NameNode {
  /** Almost always one source; arrays are built to size, since push() on an empty array reserves 17 slots. */
  sources: RecordSource[] = NO_SOURCES;
  /** Live nodes directly below this one: a node with children is an empty non-terminal, never NXDOMAIN. */
  children = 0;
  /** Holds that keep the node alive on their own (zone apex, the `<ns>.svc` name of an existing namespace). */
  pins = 0;
  /**
   * Prepared answers by qtype, valid for `generation` and until the node's sources or pins change (which drops
   * them); made when the name is first asked (most never are).
   */
  answers: Map<number, PreparedAnswer> | undefined;
  generation = -1;

  constructor(readonly key: string) {}

  get alive(): boolean {
    return this.sources.length > 0 || this.children > 0 || this.pins > 0;
  }

  records(): ResourceRecord[] {
    return this.sources.flatMap((source) => source.records(this.key));
  }
}

export class NameTable {
  private readonly nodes = new Map<string, NameNode>();

  get size(): number {
    return this.nodes.size;
  }

  get(key: string): NameNode | undefined {
    return this.nodes.get(key);
  }

  attach(key: string, source: RecordSource): void {
    const node = this.obtain(key);
    // concat, not spread or push: those leave the array room for 17, and there is almost always one source.
    node.sources = node.sources.length === 0 ? [source] : node.sources.concat(source);
    node.answers = undefined;
  }

  detach(key: string, source: RecordSource): void {
    const node = this.nodes.get(key);
    if (node === undefined) return;
    const remaining = node.sources.filter((existing) => existing !== source);
    node.sources = remaining.length === 0 ? NO_SOURCES : remaining;
    node.answers = undefined;
    this.release(node);
  }

  pin(key: string): void {
    const node = this.obtain(key);
    node.pins++;
    node.answers = undefined;
  }

  unpin(key: string): void {
    const node = this.nodes.get(key);
    if (node === undefined || node.pins === 0) return;
    node.pins--;
    node.answers = undefined;
    this.release(node);
  }

  private obtain(key: string): NameNode {
    let node = this.nodes.get(key);
    if (node !== undefined) return node;
    node = new NameNode(key);
    this.nodes.set(key, node);
    // Walk up creating empty non-terminals until an existing ancestor (at the latest, the pinned zone apex).
    for (let parent = parentKey(key); parent !== undefined; parent = parentKey(parent)) {
      const above = this.nodes.get(parent);
      if (above !== undefined) {
        above.children++;
        break;
      }
      const created = new NameNode(parent);
      created.children = 1;
      this.nodes.set(parent, created);
    }
    return node;
  }

  private release(node: NameNode): void {
    for (let current: NameNode | undefined = node; current !== undefined && !current.alive; ) {
      this.nodes.delete(current.key);
      const parent = parentKey(current.key);
      current = parent === undefined ? undefined : this.nodes.get(parent);
      if (current !== undefined) current.children--;
    }
  }
}
