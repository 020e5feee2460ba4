/**
 * The template plugin's metrics, with CoreDNS's names and labels, kept as plain counts by label values on the
 * query path and turned into series at scrape time:
 *
 *   coredns_template_matches_total{server,zone,view,class,type}
 *   coredns_template_template_failures_total{server,zone,view,class,type,section,template}
 *   coredns_template_rr_failures_total{server,zone,view,class,type,section,template}
 *
 * Every label is bounded: zone and template come from the Corefile, class and type are mnemonics or "other".
 * `server` and `view` are empty: a plugin's setup is not told its server block's address (see README).
 */
import { Counter, type Registry } from 'prom-client';
import { addSource, perRegistry } from '../../telemetry/index.js';

const MATCH_LABELS = ['server', 'zone', 'view', 'class', 'type'] as const;
const FAILURE_LABELS = [...MATCH_LABELS, 'section', 'template'] as const;

/** Counts by label values (joined with NUL, which no label value holds). */
export class LabelledCounts {
  private readonly counts = new Map<string, number>();

  inc(values: readonly string[]): void {
    const key = values.join('\0');
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  entries(): IterableIterator<[string, number]> {
    return this.counts.entries();
  }
}

export interface TemplateStats {
  /** zone, class, type */
  readonly matches: LabelledCounts;
  /** zone, class, type, section, template */
  readonly templateFailures: LabelledCounts;
  readonly rrFailures: LabelledCounts;
}

export function newTemplateStats(): TemplateStats {
  return { matches: new LabelledCounts(), templateFailures: new LabelledCounts(), rrFailures: new LabelledCounts() };
}

/** Registers the template metrics once per registry; every template handler's counts are summed into them. */
export function registerTemplateMetrics(registry: Registry, stats: TemplateStats): () => void {
  return addSource(perRegistry(registry, 'template', () => {
    const sources: TemplateStats[] = [];
    const counter = (name: string, help: string, labelNames: readonly string[], pick: (stats: TemplateStats) => LabelledCounts): void => {
      new Counter({
        name,
        help,
        labelNames,
        registers: [registry],
        collect() {
          this.reset();
          for (const source of sources) {
            for (const [key, count] of pick(source).entries()) {
              const [zone = '', klass = '', type = '', section, template] = key.split('\0');
              const labels: Record<string, string> = { server: '', zone, view: '', class: klass, type };
              if (section !== undefined) Object.assign(labels, { section, template: template ?? '' });
              this.inc(labels, count);
            }
          }
        },
      });
    };
    counter('coredns_template_matches_total', 'Counter of template regex matches.', MATCH_LABELS, (s) => s.matches);
    counter('coredns_template_template_failures_total', 'Counter of go template failures.', FAILURE_LABELS, (s) => s.templateFailures);
    counter('coredns_template_rr_failures_total', 'Counter of mis-templated RRs.', FAILURE_LABELS, (s) => s.rrFailures);
    return sources;
  }), stats);
}
