// @ts-check
/**
 * A tiny scripted DNS server for tests that must run inside a network namespace (`ip netns exec NS node
 * test/support/dns-test-server.mjs CONFIG`), where the test's own process cannot go: hence plain JavaScript, run
 * by node as is (type-checked through tsconfig.test.json). Serves UDP only, as glibc asks over UDP.
 *
 * CONFIG is JSON: `listen` ("HOST:PORT"), `zone` (its SOA goes with negative answers), `records` (zone-file
 * lines `name. ttl IN TYPE data` for A, AAAA, CNAME and TXT) and `rcodes` ("name." or "name. TYPE" → an rcode name,
 * or DROP for no reply). Names it has no record for get NXDOMAIN inside the zone and REFUSED outside it.
 * Prints one JSON line when listening ({"event":"listening"}) and one per query ({"event":"query", name, type,
 * rcode, client}) on stdout; stops on SIGTERM.
 */
import dns2 from 'dns2';

const { Packet, UDPServer } = dns2;
// dns2's types index these tables by literal names only, and leave RCODE out.
const TYPE = /** @type {Record<string, number>} */ (Packet.TYPE);
const RCODE = /** @type {{ RCODE: Record<string, number> }} */ (/** @type {unknown} */ (Packet)).RCODE;

/** @type {{ listen: string, zone: string, records?: string[], rcodes?: Record<string, string> }} */
const config = JSON.parse(process.argv[2] ?? '{}');
const fqdn = (/** @type {string} */ name) => `${name.toLowerCase().replace(/\.$/, '')}.`;
const zone = fqdn(config.zone);

/** @type {Map<string, Array<{ type: string, ttl: number, data: string }>>} */
const records = new Map();
for (const line of config.records ?? []) {
  const [name = '', ttl = '0', , type = '', data = ''] = line.trim().split(/\s+/);
  const owner = fqdn(name);
  records.set(owner, [...(records.get(owner) ?? []), { type, ttl: Number(ttl), data }]);
}
const rcodes = new Map(Object.entries(config.rcodes ?? {}).map(([key, rcode]) => [key.toLowerCase(), rcode]));
for (const rcode of rcodes.values()) if (rcode !== 'DROP' && RCODE[rcode] === undefined) throw new Error(`unknown rcode ${rcode}`);

const inZone = (/** @type {string} */ name) => name === zone || name.endsWith(`.${zone}`);
const typeName = (/** @type {number} */ code) => Object.keys(TYPE).find((key) => TYPE[key] === code) ?? `TYPE${code}`;

/** A record as dns2 encodes it (plain fields; dns2 adds the encoder). */
const asResource = (/** @type {object} */ fields) => /** @type {dns2.Packet.Resource} */ (fields);

/** @param {string} name @param {string} type @param {number} ttl @param {string} data */
function resource(name, type, ttl, data) {
  const base = { name: name.replace(/\.$/, ''), type: TYPE[type], class: Packet.CLASS.IN, ttl };
  if (type === 'CNAME') return asResource({ ...base, domain: data.replace(/\.$/, '') });
  if (type === 'TXT') return asResource({ ...base, data });
  return asResource({ ...base, address: data });
}

const server = new UDPServer((request, send, rinfo) => {
  const client = /** @type {import('node:dgram').RemoteInfo} */ (rinfo);
  const question = request.questions[0];
  if (question === undefined) return;
  const name = fqdn(question.name);
  const type = typeName(question.type);
  const scripted = rcodes.get(`${name} ${type.toLowerCase()}`) ?? rcodes.get(name);
  const response = Packet.createResponseFromRequest(request);
  let rcode = scripted ?? 'NOERROR';
  if (scripted === undefined) {
    // Follow CNAMEs among our own records, as an authoritative server does within its zone.
    let owner = name;
    for (let hops = 0; hops < 8; hops++) {
      const here = records.get(owner) ?? [];
      const matching = here.filter((record) => record.type === type);
      const cname = here.find((record) => record.type === 'CNAME');
      for (const record of matching.length > 0 ? matching : cname ? [cname] : []) response.answers.push(resource(owner, record.type, record.ttl, record.data));
      if (matching.length > 0 || !cname) break;
      owner = fqdn(cname.data);
    }
    if (response.answers.length === 0 && !records.has(name)) rcode = inZone(name) ? 'NXDOMAIN' : 'REFUSED';
  }
  process.stdout.write(`${JSON.stringify({ event: 'query', name, type, rcode, client: `${client.address}:${client.port}` })}\n`);
  if (rcode === 'DROP') return;
  response.header.rcode = /** @type {number} */ (RCODE[rcode]);
  // Authoritative, so glibc does not take an empty NOERROR for a lame referral (res_send.c's "referred query").
  response.header.aa = inZone(name) ? 1 : 0;
  if (response.answers.length === 0 && inZone(name) && rcode !== 'REFUSED') {
    response.authorities.push(asResource({
      name: zone.replace(/\.$/, ''), type: Packet.TYPE.SOA, class: Packet.CLASS.IN, ttl: 5,
      primary: `ns.${zone}`.replace(/\.$/, ''), admin: `hostmaster.${zone}`.replace(/\.$/, ''),
      serial: 1, refresh: 7200, retry: 1800, expiration: 86400, minimum: 5,
    }));
  }
  void send(response);
});

const [host = '', port = '53'] = /^\[?(.*?)\]?:(\d+)$/.exec(config.listen)?.slice(1) ?? [];
await server.listen(Number(port), host);
process.stdout.write(`${JSON.stringify({ event: 'listening', address: config.listen })}\n`);
process.once('SIGTERM', () => server.close(() => process.exit(0)));
