/**
 * plugins/chaos — the server's own CHAOS-class TXT records (CoreDNS's `chaos`, BIND's convention): `version.bind`
 * and `version.server` give the version, `authors.bind` one TXT per author, `hostname.bind` and `id.server` the
 * host's name (a pod's name, in a cluster). TTL 0, class CH, not authoritative, as CoreDNS answers them. Any
 * other question, a CH one included, goes on to the next plugin. Every answer is prepared once, at start.
 */
import { hostname } from 'node:os';
import { nameToKey, prepareAnswer, Rcode, RRClass, RRType, type PreparedAnswer, type Question } from '../../wire/index.js';
import type { Client, Handler, Next, Result } from '../plugin.js';
import type { ChaosConfig } from './setup.js';

export class Chaos implements Handler {
  readonly name = 'chaos';
  /** By question key: the names this plugin answers. */
  private readonly answers = new Map<string, PreparedAnswer>();

  constructor(config: ChaosConfig, host = hostname()) {
    const texts: ReadonlyArray<[string, readonly string[]]> = [
      ['version.bind.', [config.version]],
      ['version.server.', [config.version]],
      ['authors.bind.', config.authors],
      ['hostname.bind.', [host]],
      ['id.server.', [host]],
    ];
    for (const [name, strings] of texts) {
      const key = nameToKey(name);
      const answer = strings.map((text) => ({ owner: key, class: RRClass.CH, ttl: 0, data: { type: RRType.TXT, texts: [text] } as const }));
      this.answers.set(key, prepareAnswer(key, { rcode: Rcode.NOERROR, authoritative: false, answer }));
    }
  }

  resolve(q: Question, client: Client, next: Next): Result {
    const answer = q.qclass === RRClass.CH && q.qtype === RRType.TXT ? this.answers.get(q.key) : undefined;
    return answer === undefined ? next(q, client) : { answer, plugin: this.name };
  }
}
