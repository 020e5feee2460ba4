/**
 * debug — CoreDNS's `debug`: turns on debug logging, which is where the plugins' `[DEBUG]` lines go. Syntax:
 * `debug`, no arguments. It raises the process's log level to `debug` (a `--log-level trace` stays trace); the
 * level is the process's, so one block saying `debug` turns it on for all, as in CoreDNS. CoreDNS's other effect,
 * letting a panic crash the process, has no counterpart: a plugin that throws is answered SERVFAIL and logged with
 * its stack trace whether or not `debug` is there. The level is set at start: a reload that adds or removes
 * `debug` says that it takes effect at the next restart (main.ts).
 */
import { bareSetup } from '../setup-values.js';

export const debug = bareSetup('debug');
