/**
 * telemetry/ — how clusterdns reports on itself: the pino logger factory (one child logger per part, JSON to
 * stderr so stdout stays free for command output). Per-query logging never happens here by default.
 */
import pino, { type Logger } from 'pino';
import type { LogLevel } from '../config/index.js';

export type { Logger };

export function createLogger(level: LogLevel): Logger {
  return pino({ level, base: { name: 'clusterdns' } }, pino.destination({ fd: 2, sync: true }));
}
