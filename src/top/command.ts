/**
 * `clusterdns top`: reads a running server's /debug/top (telemetry/top.ts) over HTTP and prints it as three
 * aligned tables, or as the JSON it came as. Knows the report's shape only; nothing of how it is counted.
 */
import type { TopConfig } from '../config/top-args.js';
import type { TopClient, TopName, TopPair, TopReport } from '../telemetry/top.js';

/** Long enough for a server across `kubectl port-forward`; a hung one still fails in seconds. */
const FETCH_TIMEOUT_MS = 5_000;

export interface TopOutcome {
  readonly stdout?: string;
  readonly stderr?: string;
  readonly exitCode: number;
}

export async function runTop(config: TopConfig): Promise<TopOutcome> {
  let body: string;
  try {
    const response = await fetch(config.url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), headers: { accept: 'application/json' } });
    body = await response.text();
    if (!response.ok) {
      const hint = response.status === 404 ? ' (is it the metrics address of clusterdns? /debug/top is served beside /metrics)' : '';
      return { stderr: `clusterdns: ${config.url}: HTTP ${response.status}${hint}\n`, exitCode: 1 };
    }
  } catch (error) {
    return { stderr: `clusterdns: cannot read ${config.url}: ${reason(error)}\n`, exitCode: 1 };
  }
  let report: TopReport;
  try {
    report = JSON.parse(body) as TopReport;
    if (!Array.isArray(report.names) || !Array.isArray(report.clients) || !Array.isArray(report.pairs)) throw new Error('no names, clients and pairs');
  } catch (error) {
    return { stderr: `clusterdns: ${config.url} is not clusterdns's /debug/top: ${(error as Error).message}\n`, exitCode: 1 };
  }
  return { stdout: config.json ? body : formatTop(report), exitCode: 0 };
}

/** fetch() says "fetch failed" and keeps the reason (ECONNREFUSED, a timeout) in its cause. */
function reason(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  if ((error as Error).name === 'TimeoutError') return `no answer within ${FETCH_TIMEOUT_MS / 1000} s`;
  return cause?.code ?? cause?.message ?? (error as Error).message;
}

export function formatTop(report: TopReport): string {
  const { window } = report;
  const lines = [
    `${report.failures} NXDOMAIN and SERVFAIL answers in the last ${window.seconds} s (since ${window.since}; ${report.capacity} counters per table, ${window.intervalSeconds} s intervals)`,
  ];
  if (report.failures === 0) return `${lines[0]}\n`;
  const count = (row: { count: number; error: number }): string[] => [String(row.count), row.error === 0 ? '' : `±${row.error}`];
  lines.push('', ...table(['name', 'rcode', 'count', '±'], report.names.map((row: TopName) => [row.name, row.rcode, ...count(row)])));
  lines.push('', ...table(['client', 'count', '±'], report.clients.map((row: TopClient) => [row.client, ...count(row)])));
  lines.push('', ...table(['client', 'name', 'rcode', 'count', '±'], report.pairs.map((row: TopPair) => [row.client, row.name, row.rcode, ...count(row)])));
  return `${lines.join('\n')}\n`;
}

/** Columns two spaces apart, counts right-aligned (the last two columns); the ± column only when one has an error. */
function table(headings: readonly string[], rows: readonly string[][]): string[] {
  const withError = rows.some((row) => row[row.length - 1] !== '');
  const shown = withError ? headings.length : headings.length - 1;
  const cells = [headings, ...rows].map((row) => row.slice(0, shown));
  const widths = Array.from({ length: shown }, (_, column) => Math.max(...cells.map((row) => row[column]!.length)));
  const numeric = (column: number): boolean => column >= headings.length - 2;
  return cells.map((row) => row.map((cell, column) => (numeric(column) ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!))).join('  ').trimEnd());
}
