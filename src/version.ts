/** What package.json says of clusterdns itself: its version (`clusterdns version`, the chaos plugin) and its authors. */
import { readFileSync } from 'node:fs';

interface Person {
  readonly name?: string;
  readonly email?: string;
}

interface Manifest {
  readonly version: string;
  readonly author?: string | Person;
  readonly contributors?: ReadonlyArray<string | Person>;
}

function manifest(): Manifest {
  return JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as Manifest;
}

export function version(): string {
  return manifest().version;
}

/** package.json's author and contributors as written (`Name <email>`), or `clusterdns` when it names none. */
export function authors(): string[] {
  const { author, contributors = [] } = manifest();
  const people = [...(author === undefined ? [] : [author]), ...contributors].map((person) => (typeof person === 'string' ? person : person.name ?? person.email ?? '')).filter((name) => name !== '');
  return people.length > 0 ? people : ['clusterdns'];
}
