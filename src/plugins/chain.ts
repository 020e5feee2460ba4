/**
 * The chain: handlers composed once, each one's `next` being the ones after it. Past the last handler nobody is
 * authoritative for the name and nothing forwards it: REFUSED, written by the server itself (plugin ''), with
 * Extended DNS Error 20 (Not Authoritative) saying so.
 */
import { EdeCode, emptyAnswer, encodeEde, Rcode } from '../wire/index.js';
import type { Handler, Next, Reply } from './plugin.js';

export const NOBODY_ANSWERS: Reply = {
  answer: emptyAnswer(Rcode.REFUSED, false, encodeEde(EdeCode.NOT_AUTHORITATIVE, 'no zone served here holds this name, and nothing forwards it')),
  plugin: '',
};

/** `handlers` as one Next, built once (no closure per query), ending in `end`: REFUSED unless given another. */
export function chainOf(handlers: readonly Handler[], end: Next = () => NOBODY_ANSWERS): Next {
  let next: Next = end;
  for (let i = handlers.length - 1; i >= 0; i--) {
    const handler = handlers[i]!;
    const after = next;
    next = (q, client) => handler.resolve(q, client, after);
  }
  return next;
}
