/**
 * loop — CoreDNS's loop detection. The forward plugin here always probes each upstream for a loop at start and
 * whenever its upstreams change (a loop is logged once, the upstream dropped, /ready warns), so `loop` is
 * accepted and changes nothing: unlike CoreDNS, a loop does not stop the process. Syntax: `loop`.
 */
import { bareSetup } from '../setup-values.js';

export const loop = bareSetup('loop');
