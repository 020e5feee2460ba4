/**
 * The hosts plugin's handler: A, AAAA and PTR answers from an /etc/hosts-style file and the Corefile's inline
 * entries (table.ts), answered synchronously from the table built when the file was last read. The file is looked
 * at every `reload` interval and read again only when its modification time or size changed, as CoreDNS does; a
 * file that cannot be read leaves the last table serving.
 *
 * What it answers, as CoreDNS's hosts plugin does: a PTR for an address it has (whatever the zones; other PTR
 * questions go on to `next`); for a name in its zones, the name's addresses, or NODATA when the name has only
 * addresses of the other family (or the type is neither A nor AAAA). A name it does not have goes on to `next`
 * with `fallthrough`, else SERVFAIL: without a zone of its own it has no SOA to prove the name does not exist.
 */
import { stat, readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { emptyAnswer, isInZone, Rcode, RRType } from '../../wire/index.js';
import type { Client, Handler, Next, Question, Reply, Result } from '../plugin.js';
import type { HostsConfig } from './setup.js';
import { HostsEntries, HostsTable, parseHostsLine } from './table.js';

/** The plugin's config (setup.ts) as the handler reads it: its zones as wire keys, and where it logs. */
export interface HostsOptions extends Omit<HostsConfig, 'zones' | 'fallthrough'> {
  /** Wire keys of the zones it answers. */
  readonly zones: readonly string[];
  /** Wire keys of the zones whose unknown names go on to `next`. */
  readonly fallthrough: readonly string[];
  readonly log: Logger;
}

/** What the metrics read. */
export interface HostsStats {
  readonly path: string;
  readonly entries: number;
  /** The modification time of the file as last read, in seconds (CoreDNS's coredns_hosts_reload_timestamp_seconds). */
  readonly reloadTimestampSeconds: number;
}

const SERVFAIL = emptyAnswer(Rcode.SERVFAIL);

export class Hosts implements Handler {
  readonly name = 'hosts';
  private readonly inline = new HostsEntries();
  private table: HostsTable;
  /** The file as last read: what tells a changed file from an unchanged one. */
  private read: { readonly mtimeMs: number; readonly size: number } | undefined;
  /** The last problem logged about the file, so a file that stays missing is reported once. */
  private problem: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;

  constructor(private readonly options: HostsOptions) {
    for (const line of options.inline) this.inline.add(line, options.zones, options.reverse);
    this.table = new HostsTable(new HostsEntries(), this.inline, options.ttl);
  }

  resolve(q: Question, client: Client, next: Next): Result {
    const table = this.table;
    if (q.qtype === RRType.PTR) {
      const answer = table.ptr(q.key);
      return answer === undefined ? next(q, client) : { answer, plugin: this.name };
    }
    if (!inAny(q.key, this.options.zones)) return next(q, client);
    const answer = table.lookup(q.key, q.qtype);
    if (answer === undefined) return this.fallsThrough(q.key) ? next(q, client) : this.reply(SERVFAIL);
    const unsupported = q.qtype !== RRType.A && q.qtype !== RRType.AAAA;
    if (unsupported && this.options.fallthroughUnsupported && this.fallsThrough(q.key)) return next(q, client);
    return this.reply(answer);
  }

  get stats(): HostsStats {
    return {
      path: this.options.path,
      entries: this.table.size,
      reloadTimestampSeconds: this.read === undefined ? 0 : this.read.mtimeMs / 1000,
    };
  }

  /** Reads the file, then looks at it every `reloadMs`. Resolves once the first read is done. */
  async start(): Promise<void> {
    await this.refresh();
    if (this.options.reloadMs > 0) {
      this.timer = setInterval(() => void this.refresh(), this.options.reloadMs);
      this.timer.unref();
    }
  }

  close(): void {
    clearInterval(this.timer);
  }

  /** Reads the file again if its modification time or size changed since the last read; one read at a time. */
  refresh(): Promise<void> {
    this.refreshing ??= this.readIfChanged().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async readIfChanged(): Promise<void> {
    const { path, log } = this.options;
    try {
      const { mtimeMs, size } = await stat(path);
      if (this.read !== undefined && this.read.mtimeMs === mtimeMs && this.read.size === size) return;
      // A directory fails here (EISDIR), like a missing file. A file changed between the stat and the read is read
      // again at the next look, its stat having moved on.
      const text = await readFile(path, 'utf8');
      this.read = { mtimeMs, size };
      this.problem = undefined;
      const { entries, skipped, firstSkipped } = this.parseFile(text);
      this.table = new HostsTable(entries, this.inline, this.options.ttl);
      if (skipped > 0) log.warn({ hostsfile: path, skipped, first: `${path}:${firstSkipped!.line}: ${firstSkipped!.problem}` }, 'hosts file: lines that are not ADDRESS NAME... are left out');
      log.debug({ hostsfile: path, entries: this.table.size }, 'hosts file read');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      if (this.problem === code) return;
      this.problem = code;
      // CoreDNS keeps what it last read when the file goes (a ConfigMap being swapped, say): so does this.
      const keeps = this.read === undefined ? 'serving the inline entries only' : 'keeping the entries last read';
      log.warn({ hostsfile: path, err: (error as Error).message }, `cannot read the hosts file: ${keeps} until it can be read`);
    }
  }

  private parseFile(text: string): { entries: HostsEntries; skipped: number; firstSkipped?: { line: number; problem: string } } {
    const entries = new HostsEntries();
    let skipped = 0;
    let firstSkipped: { line: number; problem: string } | undefined;
    text.split('\n').forEach((raw, index) => {
      const line = parseHostsLine(raw);
      if (line === undefined) return;
      if (typeof line === 'string') {
        skipped++;
        firstSkipped ??= { line: index + 1, problem: line };
        return;
      }
      // Names outside the zones are left out quietly: /etc/hosts names localhost whatever the zones are.
      entries.add(line, this.options.zones, this.options.reverse);
    });
    return { entries, skipped, ...(firstSkipped !== undefined && { firstSkipped }) };
  }

  private fallsThrough(key: string): boolean {
    return inAny(key, this.options.fallthrough);
  }

  private reply(answer: Reply['answer']): Reply {
    return { answer, plugin: this.name };
  }
}

function inAny(key: string, zones: readonly string[]): boolean {
  for (const zone of zones) if (isInZone(key, zone)) return true;
  return false;
}
