/**
 * The chain order, declared once: CoreDNS's plugin.cfg order for the plugins clusterdns has. A query passes the
 * plugins of its server block in this order, whatever order the Corefile lists them in (as in CoreDNS).
 * Adding a plugin is its folder plus one line here.
 */
export const PLUGIN_ORDER = [
  'cache',
  'autopath',
  'kubernetes',
  'forward',
] as const;

export type PluginName = (typeof PLUGIN_ORDER)[number];
