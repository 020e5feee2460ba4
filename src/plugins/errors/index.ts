/**
 * The errors plugin's log: each error a query was answered with is one line, CoreDNS's
 * `<rcode> <name> <type>: <error>` (`2 example.org. A: read udp ...: i/o timeout`), unless a `consolidate`
 * pattern takes it. A pattern counts the errors its REGEXP matches (the first matching pattern takes an error),
 * from the first one on; DURATION later it logs `N errors like 'REGEXP' occurred in last DURATION` and starts
 * again with the next match. Time comes from the injected `after`, so tests step it. Nothing here runs for a
 * query answered without an error: the server calls report() only for those that have one.
 */
import type { Logger } from 'pino';
import { keyToName, typeName } from '../../wire/index.js';
import type { ErrorSink, Question } from '../plugin.js';
import type { GoRegexp } from '../go-regexp.js';

/** CoreDNS's LEVEL words, and the logger's method each one logs with. */
export const LEVELS = { warning: 'warn', error: 'error', info: 'info', debug: 'debug' } as const;
export type Level = keyof typeof LEVELS;

export interface Consolidation {
  readonly periodMs: number;
  readonly regexp: GoRegexp;
  readonly level: Level;
  /** Log the first error of a period as it comes, and sum up only when more followed (CoreDNS's `show_first`). */
  readonly showFirst: boolean;
}

export interface ErrorsConfig {
  /** Each logged error's stack goes with its line (the `stack` field). */
  readonly stacktrace: boolean;
  /** In Corefile order: the first whose REGEXP matches an error's text takes it. */
  readonly consolidate: readonly Consolidation[];
}

/** A Go time.Duration as its String() writes it, which is how CoreDNS's summary line names the period: `5m0s`, `30s`, `500ms`. */
export function goDuration(ms: number): string {
  if (ms < 1000) return ms === 0 ? '0s' : `${ms}ms`;
  const hours = Math.floor(ms / 3_600_000);
  const minutes = Math.floor((ms % 3_600_000) / 60_000);
  const seconds = `${(ms % 60_000) / 1000}s`;
  return hours > 0 ? `${hours}h${minutes}m${seconds}` : minutes > 0 ? `${minutes}m${seconds}` : seconds;
}

interface Counter {
  readonly rule: Consolidation;
  /** Errors matched in the period under way; 0: none, and no timer. */
  count: number;
  cancel: (() => void) | undefined;
}

export class ErrorLog {
  private readonly counters: Counter[];
  private closed = false;

  constructor(
    private readonly config: ErrorsConfig,
    private readonly log: Logger,
    private readonly after: (ms: number, callback: () => void) => () => void,
  ) {
    this.counters = config.consolidate.map((rule) => ({ rule, count: 0, cancel: undefined }));
  }

  /** The block's ErrorSink (bound: the server calls it as a plain function). */
  readonly report: ErrorSink = (q, rcode, error) => {
    const text = error.message;
    for (const counter of this.counters) {
      if (!counter.rule.regexp.regexp.test(text)) continue;
      // After close (a reloaded Corefile's old chain) an error is logged on its own, as CoreDNS does once stopped.
      if (this.closed) break;
      if (++counter.count === 1) {
        counter.cancel = this.after(counter.rule.periodMs, () => this.flush(counter));
        if (counter.rule.showFirst) this.line(q, rcode, error, LEVELS[counter.rule.level]);
      }
      return;
    }
    this.line(q, rcode, error, 'error');
  };

  /** Sums up what is counted now (CoreDNS logs it on shutdown too) and stops counting. */
  close(): void {
    this.closed = true;
    for (const counter of this.counters) {
      counter.cancel?.();
      this.flush(counter);
    }
  }

  private line(q: Question, rcode: number, error: Error, level: 'warn' | 'error' | 'info' | 'debug'): void {
    const name = keyToName(q.key);
    const type = typeName(q.qtype);
    this.log[level]({ rcode, name, type, ...(this.config.stacktrace && { stack: error.stack }) }, `${rcode} ${name} ${type}: ${error.message}`);
  }

  private flush(counter: Counter): void {
    const { count, rule } = counter;
    counter.count = 0;
    counter.cancel = undefined;
    // show_first: a lone error was logged already.
    if (count === 0 || (rule.showFirst && count === 1)) return;
    const period = goDuration(rule.periodMs);
    this.log[LEVELS[rule.level]]({ count, pattern: rule.regexp.source, period }, `${count} errors like '${rule.regexp.source}' occurred in last ${period}`);
  }
}
