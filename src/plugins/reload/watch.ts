/**
 * Watches the Corefile for the reload plugin: its SHA-512 every INTERVAL (± JITTER, so replicas do not reload in
 * step), and at once when its directory changes (a ConfigMap volume swaps its `..data` symlink on an edit), so a
 * `kubectl edit cm coredns` is picked up within about a second rather than half a minute. Only a changed hash is
 * reported; applying it is the caller's.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import type { ReloadConfig } from './setup.js';

/** Quiet time after a change in the Corefile's directory before it is read. */
const SETTLE_MS = 150;

export function corefileHash(text: string): string {
  return createHash('sha512').update(text).digest('hex');
}

export interface CorefileWatch {
  close(): void;
}

/** Calls `changed` with the new text and hash whenever the file's hash differs from the last one seen. */
export function watchCorefile(path: string, hash: string, config: ReloadConfig, changed: (text: string, hash: string) => void, random = Math.random): CorefileWatch {
  let last = hash;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let checking = false;
  let again = false;
  const check = async (): Promise<void> => {
    if (closed) return;
    // A change while a look is under way is looked at again after it: it may be the one that matters.
    if (checking) {
      again = true;
      return;
    }
    checking = true;
    try {
      const text = await readFile(path, 'utf8');
      const next = corefileHash(text);
      if (next !== last) {
        last = next;
        changed(text, next);
      }
    } catch {
      // Missing for a moment while a ConfigMap swaps its files: the next look finds it.
    } finally {
      checking = false;
    }
    if (again) {
      again = false;
      await check();
    }
  };
  const schedule = (): void => {
    const delay = config.intervalMs + (random() * 2 - 1) * config.jitterMs;
    timer = setTimeout(() => void check().finally(() => closed || schedule()), delay);
    timer.unref();
  };
  schedule();
  let watcher: FSWatcher | undefined;
  let settling: NodeJS.Timeout | undefined;
  try {
    // Looked at once the directory has been quiet for SETTLE_MS: a file written in place is read whole.
    watcher = watch(dirname(path), { persistent: false }, () => {
      clearTimeout(settling);
      settling = setTimeout(() => void check(), SETTLE_MS);
      settling.unref();
    });
  } catch {
    // A directory that cannot be watched: the poll alone still finds every change.
  }
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      clearTimeout(settling);
      watcher?.close();
    },
  };
}
