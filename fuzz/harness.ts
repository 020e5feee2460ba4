/**
 * The fuzz driver: fast-check-driven randomized fuzzing, NOT coverage-guided. Jazzer.js (the coverage-guided
 * fuzzer the issue asks for) cannot be installed here: the only prebuilt binary of @jazzer.js/fuzzer@4.0.0 for
 * linux-x64 needs glibc 2.38 (`__isoc23_strtol`), Debian 12 has 2.36, and that release ships no C++ source;
 * 1.x-2.1.0 ship source, but their install script fetches a prebuild from github.com and their CMake build
 * downloads libFuzzer (compiler-rt) from github.com, neither reachable (the README's Fuzzing section has the
 * details). So inputs come from the seed corpus (fuzz/corpus/<target>/) under random mutations, libFuzzer's kinds
 * (bit flips, interesting values, inserts, deletes, duplicated ranges, dictionary tokens, splices), plus each
 * target's own structured generators and plain random bytes; fast-check picks them, and shrinks a failing one.
 *
 * A target is a check of bytes, as Jazzer's `fuzz(data)` is: it throws when its invariant does not hold. Every
 * input must also finish within the target's bound (a soft bound, a failure fast-check shrinks), and a watchdog
 * thread kills the process when one runs past HARD_BOUND_MS (an endless loop never returns to be timed), after
 * saving the input to fuzz/crashes/<target>/. A failing input is saved there too.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';

export interface FuzzTarget {
  /** Also the name of its corpus folder, fuzz/corpus/<name>/. */
  readonly name: string;
  /** Throws when the invariant does not hold for `data`. */
  readonly check: (data: Buffer) => void;
  /** Inputs built for the target (whole messages, event streams), beside the mutated seeds. */
  readonly generators?: ReadonlyArray<fc.Arbitrary<Buffer>>;
  /** Tokens the mutator inserts (keywords, punctuation), as a libFuzzer dictionary. */
  readonly dictionary?: readonly string[];
  /** The most milliseconds one input may take; default DEFAULT_BOUND_MS. */
  readonly boundMs?: number;
}

export interface FuzzResult {
  readonly seeds: number;
  readonly runs: number;
  readonly seconds: number;
}

const ROOT = new URL('.', import.meta.url).pathname;
/** Generous against GC pauses on a shared 2-core machine; a parser that backtracks takes seconds, not this. */
const DEFAULT_BOUND_MS = 1000;
const HARD_BOUND_MS = 10_000;
/** The largest input the watchdog can save. */
const MAX_SAVED = 1 << 20;

export function corpusDir(name: string): string {
  return join(ROOT, 'corpus', name);
}

export function loadCorpus(name: string): Buffer[] {
  const dir = corpusDir(name);
  return readdirSync(dir).filter((file) => !file.startsWith('.')).sort().map((file) => readFileSync(join(dir, file)));
}

/** Where a failing or hanging input is written, named by its hash (as libFuzzer names crash files). */
function saveCrash(name: string, kind: string, data: Buffer): string {
  const dir = join(ROOT, 'crashes', name);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${kind}-${createHash('sha1').update(data).digest('hex')}`);
  writeFileSync(file, data);
  return file;
}

/**
 * A thread that watches the main one through shared memory: [state, length] in Int32s, the start time in a
 * Float64, then the input's bytes. It polls; when one input has run HARD_BOUND_MS it saves the input and kills
 * the process (process.kill from a worker ends the whole process, as libFuzzer's -timeout does).
 */
class Watchdog {
  private readonly header = new Int32Array(new SharedArrayBuffer(8));
  private readonly started = new Float64Array(new SharedArrayBuffer(8));
  private readonly bytes = new Uint8Array(new SharedArrayBuffer(MAX_SAVED));
  private readonly worker: Worker;

  constructor(name: string) {
    const dir = join(ROOT, 'crashes', name);
    this.worker = new Worker(
      `const { workerData: w } = require('node:worker_threads');
      const fs = require('node:fs');
      setInterval(() => {
        if (Atomics.load(w.header, 0) !== 1 || performance.timeOrigin + performance.now() - w.started[0] < w.hardMs) return;
        const data = Buffer.from(w.bytes.slice(0, Atomics.load(w.header, 1)));
        fs.mkdirSync(w.dir, { recursive: true });
        const file = w.dir + '/timeout-' + require('node:crypto').createHash('sha1').update(data).digest('hex');
        fs.writeFileSync(file, data);
        process.stderr.write('fuzz: an input ran over ' + w.hardMs + ' ms; saved to ' + file + '\\n');
        process.kill(process.pid, 'SIGKILL');
      }, 200);`,
      { eval: true, workerData: { header: this.header, started: this.started, bytes: this.bytes, dir, hardMs: HARD_BOUND_MS } },
    );
    this.worker.unref();
  }

  begin(data: Buffer): void {
    const length = Math.min(data.length, MAX_SAVED);
    this.bytes.set(data.subarray(0, length));
    Atomics.store(this.header, 1, length);
    this.started[0] = performance.timeOrigin + performance.now();
    Atomics.store(this.header, 0, 1);
  }

  end(): void {
    Atomics.store(this.header, 0, 0);
  }

  stop(): Promise<number> {
    return this.worker.terminate();
  }
}

/** libFuzzer's "interesting values": boundaries of one and two bytes, where length and count checks go wrong. */
const INTERESTING = [0, 1, 0x3f, 0x40, 0x7f, 0x80, 0xc0, 0xff, 0x100, 0x3fff, 0x7fff, 0x8000, 0xffff];

type Mutation =
  | { readonly kind: 'flip'; readonly at: number; readonly bit: number }
  | { readonly kind: 'value'; readonly at: number; readonly value: number; readonly wide: boolean }
  | { readonly kind: 'insert'; readonly at: number; readonly bytes: Uint8Array }
  | { readonly kind: 'delete'; readonly at: number; readonly length: number }
  | { readonly kind: 'duplicate'; readonly at: number; readonly length: number; readonly to: number }
  | { readonly kind: 'token'; readonly at: number; readonly token: string }
  | { readonly kind: 'splice'; readonly at: number; readonly other: Buffer; readonly from: number };

function mutation(seeds: readonly Buffer[], dictionary: readonly string[]): fc.Arbitrary<Mutation> {
  const at = fc.nat();
  const kinds: Array<fc.Arbitrary<Mutation>> = [
    fc.record({ kind: fc.constant('flip' as const), at, bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant('value' as const), at, value: fc.constantFrom(...INTERESTING), wide: fc.boolean() }),
    fc.record({ kind: fc.constant('insert' as const), at, bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
    fc.record({ kind: fc.constant('delete' as const), at, length: fc.integer({ min: 1, max: 16 }) }),
    fc.record({ kind: fc.constant('duplicate' as const), at, length: fc.integer({ min: 1, max: 64 }), to: fc.nat() }),
    fc.record({ kind: fc.constant('splice' as const), at, other: fc.constantFrom(...seeds), from: fc.nat() }),
  ];
  if (dictionary.length > 0) kinds.push(fc.record({ kind: fc.constant('token' as const), at, token: fc.constantFrom(...dictionary) }));
  return fc.oneof(...kinds);
}

function applyMutation(data: Buffer, m: Mutation): Buffer {
  const position = (n: number, size = data.length): number => (size === 0 ? 0 : n % (size + 1));
  switch (m.kind) {
    case 'flip': {
      if (data.length === 0) return data;
      const out = Buffer.from(data);
      out[m.at % data.length]! ^= 1 << m.bit;
      return out;
    }
    case 'value': {
      if (data.length < (m.wide ? 2 : 1)) return data;
      const out = Buffer.from(data);
      if (m.wide) out.writeUInt16BE(m.value & 0xffff, m.at % (data.length - 1));
      else out[m.at % data.length] = m.value & 0xff;
      return out;
    }
    case 'insert': {
      const p = position(m.at);
      return Buffer.concat([data.subarray(0, p), m.bytes, data.subarray(p)]);
    }
    case 'delete': {
      const p = position(m.at);
      return Buffer.concat([data.subarray(0, p), data.subarray(p + m.length)]);
    }
    case 'duplicate': {
      const p = position(m.at);
      const range = data.subarray(p, p + m.length);
      const to = position(m.to);
      return Buffer.concat([data.subarray(0, to), range, data.subarray(to)]);
    }
    case 'token': {
      const p = position(m.at);
      return Buffer.concat([data.subarray(0, p), Buffer.from(m.token, 'latin1'), data.subarray(p)]);
    }
    case 'splice': {
      const p = position(m.at);
      return Buffer.concat([data.subarray(0, p), m.other.subarray(position(m.from, m.other.length))]);
    }
  }
}

/** A seed with one to eight mutations applied in turn. */
export function mutatedSeeds(seeds: readonly Buffer[], dictionary: readonly string[] = []): fc.Arbitrary<Buffer> {
  return fc.tuple(fc.constantFrom(...seeds), fc.array(mutation(seeds, dictionary), { minLength: 1, maxLength: 8 }))
    .map(([seed, mutations]) => mutations.reduce(applyMutation, seed));
}

/** Runs `target` for about `seconds`: every seed first, then generated inputs. Throws on the first failure. */
export async function runTarget(target: FuzzTarget, seconds: number): Promise<FuzzResult> {
  const seeds = loadCorpus(target.name);
  if (seeds.length === 0) throw new Error(`fuzz/corpus/${target.name}/ has no seeds`);
  const bound = target.boundMs ?? DEFAULT_BOUND_MS;
  const watchdog = new Watchdog(target.name);
  const started = performance.now();
  let runs = 0;
  let failing: Buffer | undefined;
  const once = (data: Buffer): void => {
    runs++;
    watchdog.begin(data);
    const before = performance.now();
    try {
      target.check(data);
      const took = performance.now() - before;
      if (took > bound) throw new Error(`took ${took.toFixed(0)} ms, more than the bound of ${bound} ms`);
    } catch (error) {
      // Shrinking tries smaller inputs: the last one that failed is the smallest found.
      failing = data;
      throw error;
    } finally {
      watchdog.end();
    }
  };
  try {
    for (const seed of seeds) once(seed);
    const inputs = fc.oneof(
      { weight: 6, arbitrary: mutatedSeeds(seeds, target.dictionary) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 600 }).map((bytes) => Buffer.from(bytes)) },
      ...(target.generators ?? []).map((arbitrary) => ({ weight: 3, arbitrary })),
    );
    const remaining = Math.max(0, seconds * 1000 - (performance.now() - started));
    const seed = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
    fc.assert(fc.property(inputs, once), {
      numRuns: Number.MAX_SAFE_INTEGER,
      interruptAfterTimeLimit: remaining,
      markInterruptAsFailure: false,
      ...(seed !== undefined && { seed }),
    });
  } catch (error) {
    if (failing !== undefined) {
      const file = saveCrash(target.name, 'crash', failing);
      throw new Error(`fuzz target ${target.name} failed on the input saved to ${file} ` +
        `(${failing.length} bytes: ${JSON.stringify(failing.toString('latin1').slice(0, 200))}): ${(error as Error).message}`, { cause: error });
    }
    throw error;
  } finally {
    await watchdog.stop();
  }
  return { seeds: seeds.length, runs, seconds: (performance.now() - started) / 1000 };
}

/** A small assertion that says what was expected: the targets' invariants read as `expect(...)` lines. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`invariant broken: ${message}`);
}
