/**
 * The flags of `clusterdns top`, validated whole into one frozen value, like resolve's: which server's metrics
 * endpoint to read /debug/top from, and whether to print its JSON as it came.
 */
import { ConfigError } from '../errors.js';
import { flagsHelp, parseFlags, type FlagSpec } from './flags.js';

export interface TopConfig {
  /** The /debug/top URL to read. */
  readonly url: string;
  readonly json: boolean;
}

/** The prometheus plugin's default address, where /debug/top lives. */
const DEFAULT_SERVER = 'http://localhost:9153';
const TOP_PATH = '/debug/top';

export const TOP_FLAGS: Readonly<Record<string, FlagSpec>> = {
  server: {
    type: 'string',
    value: 'URL',
    default: DEFAULT_SERVER,
    help: 'the metrics endpoint of the clusterdns to ask: HOST:PORT, or http://HOST:PORT with any path prefix (kubectl proxy\'s)',
  },
  json: { type: 'boolean', help: 'print the JSON of /debug/top as the server gave it' },
  help: { type: 'boolean', help: 'print this help and exit' },
};

export function topHelp(): string {
  return flagsHelp(
    'clusterdns top [flags]',
    'Shows the names a running clusterdns answered NXDOMAIN or SERVFAIL most in the last minutes, the clients\n'
      + 'those answers went to, and which client asked which name. Exit status 0 when the server answered, 1 when not.',
    TOP_FLAGS,
  );
}

/** Parses `top`'s arguments. Returns undefined when `--help` was asked for. */
export function parseTopArgs(args: readonly string[]): TopConfig | undefined {
  const { values, positionals } = parseFlags('top', TOP_FLAGS, args, true);
  if (values.help === true) return undefined;
  if (positionals.length > 0) throw new ConfigError(`unexpected argument "${positionals[0]}"; see 'clusterdns top --help'`);
  return Object.freeze({ url: topUrl((values.server as string | undefined) ?? DEFAULT_SERVER), json: values.json === true });
}

/** `HOST:PORT` or an http(s) URL, with or without /debug/top at its end, as the /debug/top URL. */
function topUrl(server: string): string {
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(server) ? server : `http://${server}`);
  } catch {
    throw new ConfigError(`--server ${server}: not HOST:PORT or an http:// URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`--server ${server}: not an http:// or https:// URL`);
  if (url.search !== '' || url.hash !== '') throw new ConfigError(`--server ${server}: give the endpoint without a query or fragment`);
  const path = url.pathname.replace(/\/+$/, '');
  url.pathname = path.endsWith(TOP_PATH) ? path : `${path}${TOP_PATH}`;
  return url.href;
}
