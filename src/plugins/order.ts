/**
 * The plugins clusterdns has, in the chain order declared once: CoreDNS's plugin.cfg order. A query passes the
 * plugins of its server block in this order, whatever order the Corefile lists them in (as in CoreDNS).
 * Adding a plugin is its folder plus one line here.
 */
import { any } from './any/setup.js';
import { autopath } from './autopath/setup.js';
import { bind } from './bind/setup.js';
import { bufsize } from './bufsize/setup.js';
import { cache } from './cache/setup.js';
import { chaos } from './chaos/setup.js';
import { debug } from './debug/setup.js';
import { errors } from './errors/setup.js';
import { forward } from './forward/setup.js';
import { health } from './health/setup.js';
import { hosts } from './hosts/setup.js';
import { k8sExternal } from './k8s_external/setup.js';
import { kubernetes } from './kubernetes/setup.js';
import { loadbalance } from './loadbalance/setup.js';
import { log } from './log/setup.js';
import { multisocket } from './multisocket/setup.js';
import { nsid } from './nsid/setup.js';
import { loop } from './loop/setup.js';
import type { PluginSetup } from './plugin.js';
import { prometheus } from './prometheus/setup.js';
import { ready } from './ready/setup.js';
import { reload } from './reload/setup.js';
import { rewrite } from './rewrite/setup.js';
import { template } from './template/setup.js';
import { whoami } from './whoami/setup.js';

// Each setup's config type is its own; the list holds them all (a config only ever meets its own setup).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const PLUGINS: readonly PluginSetup<any>[] = [
  multisocket,
  reload,
  nsid,
  bufsize,
  bind,
  debug,
  ready,
  health,
  prometheus,
  errors,
  log,
  any,
  chaos,
  loadbalance,
  cache,
  rewrite,
  autopath,
  template,
  hosts,
  k8sExternal,
  kubernetes,
  loop,
  forward,
  whoami,
];
