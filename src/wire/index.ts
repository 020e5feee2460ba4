/**
 * wire/ — the DNS wire format, and the only part that may import dns2.
 *
 * Owns the hot-path query parser (query.ts), prepared answers with name compression (answer.ts), reply assembly
 * with EDNS and truncation (response.ts), whole messages from other servers and queries to them (message.ts),
 * TCP framing (tcp.ts), Extended DNS Errors (ede.ts), name keys (names.ts) and the protocol numbers (constants.ts). Knows nothing of
 * Kubernetes or of the store; plugins hand it records, the server hands it packets. exchange.ts, the client
 * side for `clusterdns resolve`, is imported by path so that serving never loads dns2.
 */
export * from './constants.js';
export * from './mnemonics.js';
export * from './names.js';
export * from './query.js';
export * from './answer.js';
export * from './response.js';
export * from './message.js';
export * from './tcp.js';
export * from './ede.js';
export * from './kept.js';
