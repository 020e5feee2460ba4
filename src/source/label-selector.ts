/**
 * Label selectors, as the Kubernetes API takes them (`labelSelector=`), for the kubernetes plugin's `labels`
 * option: parsed once at setup, so a bad one stops start-up with its place, and written back in one canonical
 * form for the API server to filter lists and watches by. Manifest files have no API server: there the
 * selector is matched here, with the API server's rules (a `!=` or `notin` also matches an object without the
 * label).
 */

type Requirement =
  | { readonly key: string; readonly op: 'in' | 'notin'; readonly values: readonly string[] }
  | { readonly key: string; readonly op: 'exists' | 'absent' };

export interface LabelSelector {
  /** The canonical text, e.g. `app in (web),env!=dev`: what goes to the API server. */
  readonly text: string;
  matches(labels: Readonly<Record<string, string>> | undefined): boolean;
}

// A label key: an optional DNS-subdomain prefix and `/`, then a name of up to 63 characters; a value: up to 63
// characters of the same alphabet, or empty (Kubernetes' "Syntax and character set" of labels).
const NAME = '[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?';
const PREFIX = '[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*';
const KEY = `(?:${PREFIX}/)?${NAME}`;
const VALUE = `(?:${NAME})?`;
const ABSENT = new RegExp(`^!\\s*(${KEY})$`);
const SET = new RegExp(`^(${KEY})\\s+(in|notin)\\s*\\(([^()]*)\\)$`);
const EQUALITY = new RegExp(`^(${KEY})\\s*(==|=|!=)\\s*(${VALUE})$`);
const EXISTS = new RegExp(`^(${KEY})$`);
const IS_VALUE = new RegExp(`^${VALUE}$`);

/** Parses `text`; throws an Error saying which requirement is wrong. */
export function parseLabelSelector(text: string): LabelSelector {
  const requirements = terms(text).map(requirement);
  if (requirements.length === 0) throw new Error('an empty selector selects everything: leave the option out instead');
  return Object.freeze({
    text: requirements.map(written).join(','),
    matches: (labels: Readonly<Record<string, string>> | undefined) => requirements.every((required) => holds(required, labels)),
  });
}

/** The selector's terms: split at commas outside parentheses. */
function terms(text: string): string[] {
  const found: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    if ((c === ',' && depth === 0) || i === text.length) {
      const term = text.slice(start, i).trim();
      if (term === '' && text.trim() !== '') throw new Error(`an empty requirement in "${text}"`);
      if (term !== '') found.push(term);
      start = i + 1;
    }
  }
  return found;
}

function requirement(term: string): Requirement {
  let m = ABSENT.exec(term);
  if (m !== null) return { key: m[1]!, op: 'absent' };
  m = SET.exec(term);
  if (m !== null) {
    const values = m[3]!.split(',').map((value) => value.trim());
    const bad = values.find((value) => value === '' || !IS_VALUE.test(value));
    if (bad !== undefined) throw new Error(`"${term}": ${bad === '' ? 'an empty value' : `"${bad}" is not a label value`}`);
    return { key: m[1]!, op: m[2] as 'in' | 'notin', values };
  }
  m = EQUALITY.exec(term);
  if (m !== null) return { key: m[1]!, op: m[2] === '!=' ? 'notin' : 'in', values: [m[3]!] };
  m = EXISTS.exec(term);
  if (m !== null) return { key: m[1]!, op: 'exists' };
  throw new Error(`"${term}" is not a requirement (key, !key, key=value, key!=value, key in (a,b) or key notin (a,b))`);
}

function written(required: Requirement): string {
  switch (required.op) {
    case 'exists': return required.key;
    case 'absent': return `!${required.key}`;
    default:
      if (required.values.length === 1) return `${required.key}${required.op === 'in' ? '=' : '!='}${required.values[0]}`;
      return `${required.key} ${required.op} (${required.values.join(',')})`;
  }
}

function holds(required: Requirement, labels: Readonly<Record<string, string>> | undefined): boolean {
  const value = labels !== undefined && Object.hasOwn(labels, required.key) ? labels[required.key] : undefined;
  switch (required.op) {
    case 'exists': return value !== undefined;
    case 'absent': return value === undefined;
    case 'in': return value !== undefined && required.values.includes(value);
    case 'notin': return value === undefined || !required.values.includes(value);
  }
}
