/**
 * The kubernetes plugin's handler: the cluster zone's answer from the name table (index.ts), else the question
 * goes on to `next`. An ExternalName answer names a CNAME target outside our zones; the target is asked of
 * `next` (the forwarder, when there is one) and the two answers go out as one reply.
 */
import { isInZone, joinEde, prepareAnswer, preparedRecords, Rcode, type PreparedAnswer } from '../../wire/index.js';
import type { Client, Handler, Next, Question, Reply, Result } from '../plugin.js';
import type { ClusterResolver } from './index.js';

export class KubernetesHandler implements Handler {
  readonly name = 'kubernetes';

  /**
   * `zones`: wire keys of the zones it answers (the cluster domain, and the reverse zones it was given);
   * `fallthrough`: those whose NXDOMAIN goes on to `next` instead.
   */
  constructor(private readonly zone: ClusterResolver, private readonly zones: readonly string[], private readonly fallthrough: readonly string[] = []) {}

  resolve(q: Question, client: Client, next: Next): Result {
    if (!this.answers(q.key)) return next(q, client);
    const answer = this.zone.resolve(q);
    if (answer === undefined) return next(q, client);
    if (answer.rcode === Rcode.NXDOMAIN && this.fallthrough.length > 0 && this.fallsThrough(q.key)) return next(q, client);
    const own: Reply = { answer, plugin: this.name };
    const targetKey = answer.chaseTarget;
    if (targetKey === undefined) return own;
    const merge = (target: Reply): Reply => (target.plugin === ''
      ? own
      : { answer: mergeBehindCname(q.key, q.qtype, answer, targetKey, target.answer), plugin: this.name });
    const target = next({ ...q, key: targetKey }, client);
    return target instanceof Promise ? target.then(merge) : merge(target);
  }

  private answers(key: string): boolean {
    for (const zone of this.zones) if (isInZone(key, zone)) return true;
    return false;
  }

  private fallsThrough(key: string): boolean {
    for (const zone of this.fallthrough) if (isInZone(key, zone)) return true;
    return false;
  }
}

/**
 * `first` (whose answer ends in a CNAME to `targetKey`) followed by the answer for the target: the rcode is
 * the target's (RFC 6604), and a negative target brings its SOA. A failed target leaves `first` alone, so the
 * client can still follow the CNAME itself.
 */
export function mergeBehindCname(key: string, qtype: number, first: PreparedAnswer, targetKey: string, target: PreparedAnswer): PreparedAnswer {
  if (target.rcode !== Rcode.NOERROR && target.rcode !== Rcode.NXDOMAIN) return first;
  const ours = preparedRecords(key, qtype, first);
  const theirs = preparedRecords(targetKey, qtype, target);
  return prepareAnswer(key, {
    rcode: target.rcode,
    authoritative: first.authoritative,
    recursionAvailable: target.recursionAvailable === true,
    // What the target's server said about it (an upstream's EDE) is still true behind the CNAME, and so is what
    // ours said of the CNAME (the age of our state while the API server is unreachable): the target's explains the
    // rcode, so it goes first.
    ede: joinEde(target.ede, first.ede),
    answer: [...ours.answer, ...theirs.answer],
    authority: theirs.answer.length === 0 ? theirs.authority : [],
  });
}
