/**
 * Runs the real `dig` (bind9-dnsutils) against a test server and parses what it prints into the parts a test
 * compares: status, flags, and each section as zone-file lines (`name. ttl IN TYPE data`, whitespace folded).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface DigResult {
  readonly status: string;
  readonly flags: readonly string[];
  readonly answer: readonly string[];
  readonly authority: readonly string[];
  readonly additional: readonly string[];
  readonly raw: string;
}

/** `args` are dig's own (name, type, +tcp, +noedns...); server, port and retry settings are added here. */
export async function dig(port: number, args: readonly string[], server = '127.0.0.1'): Promise<DigResult> {
  const { stdout } = await run('dig', [`@${server}`, '-p', String(port), '+tries=1', '+time=2', '+nocookie', ...args], { timeout: 10_000 });
  return parseDig(stdout);
}

export function parseDig(raw: string): DigResult {
  const status = /status: ([A-Z]+)/.exec(raw)?.[1] ?? 'NO-REPLY';
  const flags = (/;; flags: ([a-z ]*);/.exec(raw)?.[1] ?? '').trim().split(/\s+/).filter(Boolean);
  const section = (title: string): string[] => {
    const start = raw.indexOf(`;; ${title} SECTION:\n`);
    if (start < 0) return [];
    const lines: string[] = [];
    for (const line of raw.slice(start).split('\n').slice(1)) {
      if (line.trim() === '' || line.startsWith(';;')) break;
      lines.push(line.trim().split(/\s+/).join(' '));
    }
    return lines;
  };
  return { status, flags, answer: section('ANSWER'), authority: section('AUTHORITY'), additional: section('ADDITIONAL'), raw };
}

/** Zone-file lines normalised for order-free comparison. */
export function lines(...records: string[]): string[] {
  return records.map((record) => record.trim().split(/\s+/).join(' ')).sort();
}
