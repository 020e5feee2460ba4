/**
 * plugins/template — answers made from the question by templates (CoreDNS's `template`): NODATA for AAAA, NXDOMAIN
 * for a zone that must not leak upstream, a fixed or pattern-built record for names a regex matches.
 *
 * The templates of a server block are tried in Corefile order. One whose zone, class and type fit the question
 * and one of whose regexes matches the name answers; one whose regexes all miss answers SERVFAIL unless it has
 * `fallthrough` (for the name's zone), which goes on to the next template and then to the next plugin. A template
 * without records answers with an answer prepared once at setup, so NODATA and NXDOMAIN templates cost a lookup;
 * one with records renders them per query (they depend on the name). A CNAME answer to an A or AAAA question
 * brings the target's records from the plugins after this one, as CoreDNS's upstream lookup does.
 */
import { classMnemonic, emptyAnswer, isInZone, keyToName, prepareAnswer, preparedRecords, Rcode, RRClass, RRType, typeMnemonic, type PreparedAnswer, type WireRecord } from '../../wire/index.js';
import type { GoRegexp } from '../go-regexp.js';
import type { Client, Handler, Next, Question, Reply, Result } from '../plugin.js';
import { TemplateExecError, type CompiledTemplate, type TemplateData } from './go-template.js';
import type { TemplateStats } from './metrics.js';
import { parseRecord, RecordTextError } from './rr-text.js';

export type Section = 'answer' | 'authority' | 'additional';

/** One `template` stanza, validated. */
export interface Template {
  /** Its zones as written after normalising (`example.`), and their wire keys, in the same order. */
  readonly zones: readonly string[];
  readonly zoneKeys: readonly string[];
  readonly qclass: number;
  readonly qtype: number;
  readonly regexps: readonly GoRegexp[];
  readonly records: Readonly<Record<Section, readonly CompiledTemplate[]>>;
  readonly rcode: number;
  /** Wire keys of the zones that fall through when no regex matches ('\0' for all); undefined without fallthrough. */
  readonly fallthrough: readonly string[] | undefined;
}

const SERVFAIL: Reply = { answer: emptyAnswer(Rcode.SERVFAIL), plugin: 'template' };
const SECTIONS: readonly Section[] = ['answer', 'authority', 'additional'];

export class TemplateHandler implements Handler {
  readonly name = 'template';
  private readonly zoneKeys: readonly string[];
  /** The answer of each template that has no records, prepared once. */
  private readonly fixed: ReadonlyMap<Template, PreparedAnswer>;

  constructor(private readonly templates: readonly Template[], private readonly stats: TemplateStats) {
    this.zoneKeys = [...new Set(templates.flatMap((template) => template.zoneKeys))];
    this.fixed = new Map(templates.filter((template) => SECTIONS.every((section) => template.records[section].length === 0))
      .map((template) => [template, emptyAnswer(template.rcode, true)]));
  }

  resolve(q: Question, client: Client, next: Next): Result {
    if (!this.zoneKeys.some((zone) => isInZone(q.key, zone))) return next(q, client);
    let name: string | undefined;
    for (const template of this.templates) {
      const zone = longestZone(template, q.key);
      if (zone === undefined) continue;
      if (template.qclass !== RRClass.ANY && q.qclass !== RRClass.ANY && q.qclass !== template.qclass) continue;
      if (template.qtype !== RRType.ANY && q.qtype !== RRType.ANY && q.qtype !== template.qtype) continue;
      name ??= keyToName(q.key);
      let regexp: GoRegexp | undefined;
      let match: RegExpExecArray | null = null;
      for (regexp of template.regexps) if ((match = regexp.regexp.exec(name)) !== null) break;
      if (match === null) {
        if (template.fallthrough?.some((key) => isInZone(q.key, key)) === true) continue;
        return SERVFAIL;
      }
      const klass = q.qclass !== RRClass.ANY ? q.qclass : template.qclass;
      const type = q.qtype !== RRType.ANY ? q.qtype : template.qtype;
      const labels = [zone, classMnemonic(klass) ?? 'other', typeMnemonic(type) ?? 'other'] as const;
      this.stats.matches.inc(labels);
      if (template.rcode === Rcode.SERVFAIL) return SERVFAIL;
      const fixed = this.fixed.get(template);
      if (fixed !== undefined) return { answer: fixed, plugin: this.name };
      const data: TemplateData = {
        Zone: zone,
        Name: name,
        Regex: regexp!.source,
        Class: classMnemonic(klass) ?? `CLASS${klass}`,
        Type: typeMnemonic(type) ?? `TYPE${type}`,
        Remote: client.address,
        Match: match.map((group) => group ?? ''),
        Group: groupsOf(match),
      };
      return this.answer(q, client, next, template, data, labels);
    }
    return next(q, client);
  }

  private answer(q: Question, client: Client, next: Next, template: Template, data: TemplateData, labels: readonly string[]): Result {
    const sections: Record<Section, WireRecord[]> = { answer: [], authority: [], additional: [] };
    for (const section of SECTIONS) {
      for (const record of template.records[section]) {
        let text: string;
        try {
          text = record.render(data);
        } catch (error) {
          if (!(error instanceof TemplateExecError)) throw error;
          this.stats.templateFailures.inc([...labels, section, record.source]);
          return SERVFAIL;
        }
        try {
          sections[section].push(parseRecord(text));
        } catch (error) {
          if (!(error instanceof RecordTextError)) throw error;
          this.stats.rrFailures.inc([...labels, section, record.source]);
          return SERVFAIL;
        }
      }
    }
    const reply = (answer: readonly WireRecord[]): Reply => ({
      answer: prepareAnswer(q.key, { rcode: template.rcode, authoritative: true, answer, authority: sections.authority, additional: sections.additional }),
      plugin: this.name,
    });
    const targets = q.qtype === RRType.A || q.qtype === RRType.AAAA ? sections.answer.filter((record) => record.type === RRType.CNAME) : [];
    if (targets.length === 0) return reply(sections.answer);
    return this.chase(q, client, next, sections.answer, targets, reply);
  }

  /** The answer with each CNAME target's records (of the question's type) added from the plugins after this one. */
  private chase(q: Question, client: Client, next: Next, answer: readonly WireRecord[], targets: readonly WireRecord[], reply: (answer: readonly WireRecord[]) => Reply): Result {
    const [target, ...rest] = targets;
    if (target === undefined) return reply(answer);
    const key = target.rdata.toString('latin1');
    const add = (found: Reply): Result => {
      const records = found.plugin === '' ? [] : preparedRecords(key, q.qtype, found.answer).answer;
      return this.chase(q, client, next, [...answer, ...records], rest, reply);
    };
    const found = next({ ...q, key }, client);
    return found instanceof Promise ? found.then(add) : add(found);
  }
}

/** The longest of the template's zones that holds `key`, as text, or undefined. */
function longestZone(template: Template, key: string): string | undefined {
  let best = -1;
  template.zoneKeys.forEach((zone, i) => {
    if (isInZone(key, zone) && (best < 0 || zone.length > template.zoneKeys[best]!.length)) best = i;
  });
  return best < 0 ? undefined : template.zones[best];
}

/** Go's .Group: every group by number, and the named ones by name too. */
function groupsOf(match: RegExpExecArray): Record<string, string> {
  const groups: Record<string, string> = {};
  match.forEach((value, i) => (groups[String(i)] = value ?? ''));
  for (const [name, value] of Object.entries(match.groups ?? {})) groups[name] = value ?? '';
  return groups;
}
