/** Queries as raw bytes, for tests of the wire layer that feed parseQuery and writeReply directly. */

/** A query as dig sends it: RD set, one question, and an OPT record (DO set) advertising `edns` bytes when given. */
export function query(name: string, type: number, edns?: number): Buffer {
  const labels = name.split('.').map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label)]));
  const header = Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, edns ? 1 : 0]);
  const question = Buffer.concat([...labels, Buffer.from([0, type >> 8, type & 0xff, 0, 1])]);
  const opt = edns ? Buffer.from([0, 0, 41, edns >> 8, edns & 0xff, 0, 0, 0x80, 0, 0, 0]) : Buffer.alloc(0);
  return Buffer.concat([header, question, opt]);
}
