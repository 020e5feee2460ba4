/**
 * Target `watch-lines`: the bytes of a watch response body through the watch's line splitter and event decoder
 * (LineSplitter and parseWatchLine, src/source/kube-api.ts): newline-delimited JSON arriving in chunks that
 * split lines anywhere, partial last lines, huge lines. Invariant: the lines are the text's complete lines,
 * whatever the chunking (a partial last line is held back); each line decodes without throwing to nothing, an
 * end (410 → expired, any other ERROR → failed with a reason) or an event whose type is a string and whose
 * object is a JSON object, never null, an array or a scalar, which is what the stream loop reads `metadata` of.
 */
import fc from 'fast-check';
import { LineSplitter, parseWatchLine } from '../../src/source/kube-api.js';
import { assert, type FuzzTarget } from '../harness.js';

function split(chunks: readonly string[]): string[] {
  const splitter = new LineSplitter();
  const lines: string[] = [];
  for (const chunk of chunks) splitter.push(chunk, (line) => lines.push(line) > 0);
  return lines;
}

/** Chunk sizes from 1 to 4096 characters from a small LCG seeded by the text, so a failure replays. */
function chunksOf(text: string): string[] {
  const chunks: string[] = [];
  let state = text.length * 2654435761;
  for (let offset = 0; offset < text.length; ) {
    state = (state * 1103515245 + 12345) >>> 0;
    const size = 1 + (state >>> 12) % 4096;
    chunks.push(text.slice(offset, offset + size));
    offset += size;
  }
  return chunks;
}

const EVENT_TYPES = ['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK', 'ERROR', 'SOMETHING'];
const json = fc.jsonValue({ maxDepth: 3 });

/** Event lines of every shape the API server sends, and of shapes it should not: wrong objects, a huge line. */
const streams = fc.array(fc.oneof(
  fc.record({ type: fc.constantFrom(...EVENT_TYPES), object: fc.oneof(json, fc.constant({ metadata: { name: 'web', namespace: 'default', resourceVersion: '7' } })) }).map((event) => JSON.stringify(event)),
  fc.record({ type: fc.constant('ERROR'), object: fc.record({ kind: fc.constant('Status'), code: fc.constantFrom(410, 500, '410', null), reason: fc.string(), message: fc.string() }) }).map((event) => JSON.stringify(event)),
  json.map((value) => JSON.stringify(value)),
  fc.constantFrom('', ' ', '\r', 'null', '[]', '5', '"x"', '{"type":null}', '{"object":null}', '{'),
), { maxLength: 8 }).chain((lines) => fc.tuple(fc.constant(lines), fc.boolean(), fc.integer({ min: 0, max: 3 }))).map(([lines, partialLast, huge]) => {
  // Now and then one line of 1 to 3 MB (an EndpointSlice with thousands of endpoints is hundreds of KB).
  const big = huge === 0 ? [] : [JSON.stringify({ type: 'MODIFIED', object: { metadata: { name: 'big', namespace: 'default', annotations: { a: 'x'.repeat(huge << 20) } } } })];
  const text = [...lines, ...big].join('\n');
  return Buffer.from(partialLast ? text : `${text}\n`, 'utf8');
});

export const target: FuzzTarget = {
  name: 'watch-lines',
  check(data) {
    const text = data.toString('utf8');
    const lines = split([text]);
    const complete = text.split('\n').slice(0, -1);
    assert(lines.length === complete.length && lines.every((line, i) => line === complete[i]), 'the lines are the complete lines of the text');
    const chunked = split(chunksOf(text));
    assert(chunked.length === lines.length && chunked.every((line, i) => line === lines[i]), 'chunking does not change the lines');
    if (text.length <= 4096) {
      const byChar = split([...text]);
      assert(byChar.length === lines.length && byChar.every((line, i) => line === lines[i]), 'character by character gives the same lines');
    }
    for (const line of lines) {
      const parsed = parseWatchLine(line);
      if (parsed.kind === 'event') {
        assert(typeof parsed.type === 'string', 'an event type is a string');
        assert(typeof parsed.object === 'object' && parsed.object !== null && !Array.isArray(parsed.object), `an event object is an object: ${line.slice(0, 100)}`);
      } else if (parsed.kind === 'end') {
        assert(parsed.end.type === 'expired' || (parsed.end.type === 'failed' && parsed.end.reason !== ''), 'an end is expired or failed with a reason');
      }
    }
  },
  generators: [streams],
  dictionary: ['\n', '{', '}', '"type":', '"object":', '"ADDED"', '"ERROR"', '"BOOKMARK"', 'null', '"code":410', '"metadata":{}', '[', ']', ',', '\r\n', '\\n', '\\u0000', '\u00e9'],
};
