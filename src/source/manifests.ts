/**
 * The manifest-file source: Kubernetes objects from a YAML/JSON file or a directory of them, loaded into the
 * store and reloaded when the files change. A reload that fails (bad YAML, a bad object) is logged and the last
 * good state keeps serving; a good reload replaces the store's contents by difference, so names that stay are
 * answered throughout.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import yaml from 'js-yaml';
import type { Logger } from 'pino';
import { ManifestError } from '../errors.js';
import type { RecordStore, RecordsByKind, ResourceKind } from '../store/index.js';
import { parseLabelSelector, type LabelSelector } from './label-selector.js';
import { ObjectError, toRecord } from './objects.js';

const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);
/** Editors write a file in several steps; wait for them to settle before reading. */
const RELOAD_DELAY_MS = 100;

export type Snapshot = { [K in ResourceKind]: Array<RecordsByKind[K]> };

/** One object as written in a manifest file, before any checking: where it came from, for messages. */
export interface ManifestObject {
  readonly file: string;
  /** 1-based position of the YAML document in its file. */
  readonly document: number;
  readonly object: unknown;
}

/**
 * Every object under `path`, whole, `List`s flattened: what `loadManifests` slims for the store, and what
 * `clusterdns doctor` reads labels and containers from. Throws ManifestError naming the file (and line).
 */
export async function readManifestObjects(path: string): Promise<ManifestObject[]> {
  const objects: ManifestObject[] = [];
  for (const file of await manifestFiles(path)) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      throw new ManifestError(`${file}: cannot read: ${(error as Error).message}`, { cause: error });
    }
    objects.push(...manifestObjects(text, file));
  }
  return objects;
}

/** The objects of one manifest file's text; `file` names it in errors and decides JSON or YAML. */
export function manifestObjects(text: string, file: string): ManifestObject[] {
  let documents: unknown[];
  try {
    documents = extname(file) === '.json' ? [JSON.parse(text)] : yaml.loadAll(text, undefined, { filename: file });
  } catch (error) {
    const where = error instanceof yaml.YAMLException ? `${file}:${error.mark.line + 1}:${error.mark.column + 1}` : file;
    const reason = error instanceof yaml.YAMLException ? error.reason : (error as Error).message;
    throw new ManifestError(`${where}: invalid ${extname(file) === '.json' ? 'JSON' : 'YAML'}: ${reason}`, { cause: error });
  }
  const objects: ManifestObject[] = [];
  documents.forEach((document, index) => {
    for (const object of flattenLists(document)) {
      if (object !== null && object !== undefined) objects.push({ file, document: index + 1, object });
    }
  });
  return objects;
}

/**
 * Reads every manifest under `path` into slim records: with `labels`, only the Services, EndpointSlices and Pods
 * whose labels match (as the API server filters a watch); with `namespaceLabels`, only the Namespaces whose labels
 * match and what is in them (an object whose Namespace is not in the files is in no matching namespace). Throws
 * ManifestError naming the file (and line).
 */
export async function loadManifests(path: string, log?: Logger, labels?: LabelSelector, namespaceLabels?: LabelSelector): Promise<Snapshot> {
  const snapshot: Snapshot = { namespace: [], service: [], endpointslice: [], pod: [] };
  for (const object of await readManifestObjects(path)) {
    if (labels !== undefined && !selected(object.object, labels)) continue;
    if (namespaceLabels !== undefined && isNamespace(object.object) && !namespaceLabels.matches(labelsOf(object.object))) continue;
    addToSnapshot(snapshot, object, log);
  }
  if (namespaceLabels === undefined) return snapshot;
  const served = new Set(snapshot.namespace.map((record) => record.name));
  const inServed = (record: { readonly namespace: string }): boolean => served.has(record.namespace);
  return { namespace: snapshot.namespace, service: snapshot.service.filter(inServed), endpointslice: snapshot.endpointslice.filter(inServed), pod: snapshot.pod.filter(inServed) };
}

const isNamespace = (object: unknown): boolean => (object as { kind?: unknown } | undefined)?.kind === 'Namespace';
const labelsOf = (object: unknown): Record<string, string> | undefined => (object as { metadata?: { labels?: Record<string, string> } } | undefined)?.metadata?.labels;

/** Namespaces are never filtered by `labels` (CoreDNS's: namespace_labels is another option). */
function selected(object: unknown, labels: LabelSelector): boolean {
  return isNamespace(object) || labels.matches(labelsOf(object));
}

/** The slim records of one manifest file's text into `snapshot` (what the fuzz target drives). */
export function parseManifest(text: string, file: string, snapshot: Snapshot, log?: Logger): void {
  for (const object of manifestObjects(text, file)) addToSnapshot(snapshot, object, log);
}

function addToSnapshot(snapshot: Snapshot, { file, document, object }: ManifestObject, log?: Logger): void {
  try {
    const slim = toRecord(object);
    if (slim === undefined) {
      log?.debug({ file, document, kind: (object as { kind?: unknown }).kind }, 'ignoring an object of a kind clusterdns does not use');
      return;
    }
    (snapshot[slim.kind] as unknown[]).push(slim.record);
  } catch (error) {
    if (!(error instanceof ObjectError)) throw error;
    throw new ManifestError(`${file}: document ${document}: ${error.message}`, { cause: error });
  }
}

function flattenLists(document: unknown): unknown[] {
  if (typeof document === 'object' && document !== null && (document as { kind?: unknown }).kind === 'List') {
    const items = (document as { items?: unknown }).items;
    return Array.isArray(items) ? items.flatMap(flattenLists) : [];
  }
  return [document];
}

async function manifestFiles(path: string): Promise<string[]> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    throw new ManifestError(`${path}: cannot read: ${(error as Error).message}`, { cause: error });
  }
  if (!info.isDirectory()) return [path];
  const entries = await readdir(path, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile() && MANIFEST_EXTENSIONS.has(extname(entry.name)) && !entry.name.startsWith('.'))
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
}

/** Writes a snapshot into the store as one batch, by difference. */
export function applySnapshot(store: RecordStore, snapshot: Snapshot): void {
  store.batch(() => {
    store.replaceAll('namespace', snapshot.namespace);
    store.replaceAll('service', snapshot.service);
    store.replaceAll('endpointslice', snapshot.endpointslice);
    store.replaceAll('pod', snapshot.pod);
    store.markSynced();
  });
}

/** Loads `path` into the store, then keeps it in step with the files until `close()`. */
export class ManifestSource {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Reloads run one after another, never two at once. */
  private reloading: Promise<void> = Promise.resolve();
  private readonly path: string;

  private readonly labels: LabelSelector | undefined;
  private readonly namespaceLabels: LabelSelector | undefined;

  /**
   * `labels`, `namespaceLabels`: label selectors' texts (the kubernetes plugin's `labels` and `namespace_labels`,
   * already checked by its setup).
   */
  constructor(path: string, private readonly store: RecordStore, private readonly log: Logger, labels?: string, namespaceLabels?: string) {
    this.path = resolve(path);
    this.labels = labels === undefined ? undefined : parseLabelSelector(labels);
    this.namespaceLabels = namespaceLabels === undefined ? undefined : parseLabelSelector(namespaceLabels);
  }

  /** The first load; a failure here is fatal to startup (the caller reports it). */
  async start(): Promise<void> {
    const snapshot = await loadManifests(this.path, this.log, this.labels, this.namespaceLabels);
    applySnapshot(this.store, snapshot);
    this.log.info(counts(snapshot), 'loaded manifests');
    await this.watch();
  }

  close(): void {
    clearTimeout(this.timer);
    this.watcher?.close();
  }

  /**
   * Watches the directory, not the file: editors replace a file by renaming a new one over it. Not being able
   * to watch (the path went away after loading, the inotify limit) is logged; what was loaded keeps serving.
   */
  private async watch(): Promise<void> {
    try {
      const isDirectory = (await stat(this.path)).isDirectory();
      const name = basename(this.path);
      this.watcher = watch(isDirectory ? this.path : dirname(this.path), { recursive: isDirectory }, (_event, changed) => {
        if (!isDirectory && changed !== null && changed !== name) return;
        clearTimeout(this.timer);
        this.timer = setTimeout(() => (this.reloading = this.reloading.then(() => this.reload())), RELOAD_DELAY_MS);
      });
      this.watcher.on('error', (error) => this.log.error({ err: error }, 'stopped watching manifests; restart to pick up changes'));
    } catch (error) {
      this.log.error({ err: error }, 'cannot watch the manifests; serving what was loaded, restart to pick up changes');
    }
  }

  private async reload(): Promise<void> {
    try {
      const snapshot = await loadManifests(this.path, this.log, this.labels, this.namespaceLabels);
      applySnapshot(this.store, snapshot);
      this.log.info(counts(snapshot), 'reloaded manifests');
    } catch (error) {
      const message = error instanceof ManifestError ? error.message : `reading ${this.path}: ${(error as Error).message}`;
      this.log.error({ code: (error as ManifestError).code ?? 'E_MANIFEST' }, `${message}; still serving the last good manifests`);
    }
  }
}

function counts(snapshot: Snapshot): Record<string, number> {
  return {
    namespaces: snapshot.namespace.length,
    services: snapshot.service.length,
    endpointSlices: snapshot.endpointslice.length,
    pods: snapshot.pod.length,
  };
}
