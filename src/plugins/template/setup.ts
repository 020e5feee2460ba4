/**
 * The template plugin's setup. Syntax (CoreDNS's):
 *
 *   template CLASS TYPE [ZONE...] {
 *       match REGEX...
 *       answer RR...
 *       additional RR...
 *       authority RR...
 *       rcode CODE
 *       fallthrough [ZONE...]
 *   }
 *
 * Each `template` line of a server block is one template, tried in the order written. Regexes are Go's, records
 * are Go templates of zone-file lines; both are compiled here, so a regex or template clusterdns cannot run as
 * CoreDNS would, or a record type it cannot write, stops the load naming the line. `ederror` is not supported.
 */
import { expectArgs, pluginError, unknownOption } from '../../corefile/errors.js';
import type { Directive } from '../../corefile/types.js';
import { CLASS_CODES, nameToKey, ROOT_KEY, TYPE_CODES } from '../../wire/index.js';
import { goRegexp, type GoRegexp } from '../go-regexp.js';
import type { PluginSetup } from '../plugin.js';
import { zoneName } from '../setup-values.js';
import { compileTemplate, TemplateExecError, TemplateSyntaxError, type CompiledTemplate } from './go-template.js';
import { TemplateHandler, type Section, type Template } from './index.js';
import { newTemplateStats, registerTemplateMetrics } from './metrics.js';
import { recordType } from './rr-text.js';

export interface TemplateConfig {
  readonly templates: readonly Template[];
}

const USAGE = 'template CLASS TYPE [ZONE...] { match REGEX...; answer RR; additional RR; authority RR; rcode CODE; fallthrough [ZONE...] }';
const OPTIONS = ['match', 'answer', 'additional', 'authority', 'rcode', 'fallthrough', 'upstream'];
/** The rcodes a reply header holds (miekg/dns's names); the extended ones need an OPT record we do not write. */
const RCODES: Readonly<Record<string, number>> = {
  NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, YXDOMAIN: 6, YXRRSET: 7, NXRRSET: 8, NOTAUTH: 9, NOTZONE: 10,
};
/** The record types a template may write (rr-text.ts). */
const WRITABLE = new Set(['A', 'AAAA', 'CNAME', 'DNAME', 'MX', 'NS', 'PTR', 'SOA', 'SRV', 'TXT']);

export const template: PluginSetup<TemplateConfig> = {
  name: 'template',
  parse(directives, zones) {
    return Object.freeze({ templates: Object.freeze(directives.map((directive) => parseTemplate(directive, zones))) });
  },
  create(config, context) {
    const stats = newTemplateStats();
    return { handler: new TemplateHandler(config.templates, stats), close: registerTemplateMetrics(context.registry, stats) };
  },
};

function parseTemplate(plugin: Directive, blockZones: readonly string[]): Template {
  const [classText, typeText, ...zoneTexts] = expectArgs(plugin, 2, Infinity, USAGE) as [string, string, ...string[]];
  const qclass = CLASS_CODES[classText.toUpperCase()];
  if (qclass === undefined) throw pluginError(plugin, `invalid query class "${classText}" (one of ${Object.keys(CLASS_CODES).join(', ')})`);
  const qtype = TYPE_CODES[typeText.toUpperCase()];
  if (qtype === undefined) throw pluginError(plugin, `invalid query type "${typeText}"`);
  // CoreDNS splits a quoted zone list on spaces.
  const zones = zoneTexts.length === 0
    ? blockZones
    : zoneTexts.flatMap((text) => text.replace(/^['"]|['"]$/g, '').split(/\s+/).filter(Boolean)).map((text) => zoneName({ plugin }, text));
  const regexps: GoRegexp[] = [];
  const records: Record<Section, CompiledTemplate[]> = { answer: [], authority: [], additional: [] };
  let rcode = RCODES.NOERROR!;
  let fallthrough: string[] | undefined;
  for (const line of plugin.block ?? []) {
    if (!OPTIONS.includes(line.name)) {
      if (line.name === 'ederror') throw pluginError(plugin, 'option "ederror" is not supported by clusterdns (it writes no extended DNS errors)', line);
      throw unknownOption(plugin, line, OPTIONS);
    }
    if (line.block !== undefined) throw pluginError(plugin, `option "${line.name}" takes no block`, line);
    switch (line.name) {
      case 'match':
        for (const text of expectArgs(line, 1, Infinity, 'match REGEX...', plugin)) regexps.push(goRegexp({ plugin, line }, text));
        break;
      case 'answer':
      case 'additional':
      case 'authority':
        for (const text of expectArgs(line, 1, Infinity, `${line.name} RR...`, plugin)) records[line.name].push(compileRecord(plugin, line, text));
        break;
      case 'rcode': {
        const [code] = expectArgs(line, 1, 1, 'rcode CODE', plugin) as [string];
        const value = RCODES[code.toUpperCase()];
        if (value === undefined) throw pluginError(plugin, `option "rcode": "${code}" is not one of ${Object.keys(RCODES).join(', ')}`, line);
        rcode = value;
        break;
      }
      case 'fallthrough':
        fallthrough = line.args.length === 0 ? [ROOT_KEY] : line.args.map((text) => nameToKey(zoneName({ plugin, line }, text)));
        break;
      case 'upstream':
        // CoreDNS always looks CNAME targets up now; the bare option is accepted as it still is, addresses are not.
        if (line.args.length > 0) throw pluginError(plugin, 'option "upstream": addresses are not supported (CNAME targets are asked of the plugins after template)', line);
        break;
    }
  }
  if (regexps.length === 0) regexps.push(goRegexp({ plugin }, '.*'));
  return Object.freeze({ zones, zoneKeys: zones.map((zone) => nameToKey(zone)), qclass, qtype, regexps, records, rcode, fallthrough });
}

/** A record template, compiled, and checked to write a record type clusterdns can write. */
function compileRecord(plugin: Directive, line: Directive, text: string): CompiledTemplate {
  let compiled: CompiledTemplate;
  try {
    compiled = compileTemplate(text);
  } catch (error) {
    if (error instanceof TemplateSyntaxError) throw pluginError(plugin, `option "${line.name}": ${error.message}`, line);
    throw error;
  }
  // The type is nearly always literal text: render with stand-in values to read it, and refuse one we cannot write.
  let sample: string | undefined;
  try {
    sample = compiled.render({ Zone: 'example.', Name: 'a.example.', Regex: '', Class: 'IN', Type: 'A', Remote: '192.0.2.1', Match: new Array(10).fill('1'), Group: {} });
  } catch (error) {
    if (!(error instanceof TemplateExecError)) throw error;
  }
  const type = sample === undefined ? undefined : recordType(sample);
  if (type !== undefined && type in TYPE_CODES && !WRITABLE.has(type)) {
    throw pluginError(plugin, `option "${line.name}": record type ${type} is not supported (supported: ${[...WRITABLE].join(', ')})`, line);
  }
  return compiled;
}
