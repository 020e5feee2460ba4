/**
 * The page of /debug/top?html in a real browser: Debian's chromium, headless, driven by playwright-core, against
 * the real server after real `dig` queries. The tables must show the failing names and clients as the JSON has
 * them, a hostile name must stay text (never markup), and the page's Content-Security-Policy must let its own
 * script run (a policy that blocked it would leave "loading…" and empty tables).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableOrCiFails } from './support/ci.js';
import { dig } from './support/dig.js';
import { startServer, type ServerProcess } from './support/server-process.js';

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = availableOrCiFails(existsSync(CHROMIUM), `chromium (${CHROMIUM}; apt-get install -y chromium)`);

/** A name any client may send: markup that would run script if the page put names into HTML. */
const HOSTILE = '<img/src=x/onerror=document.title=1>.default.svc.cluster.local';

let server: ServerProcess;
let browser: BrowserContext;
let profile: string;

beforeAll(async () => {
  if (!hasChromium) return;
  server = await startServer(['--manifests', 'test/fixtures/conformance-cluster.yaml']);
  for (let i = 0; i < 4; i++) await dig(server.port, ['cart.default.svc.cluster.local']);
  await dig(server.port, ['-b', '127.0.0.2', 'redis.default.svc.cluster.local']);
  await dig(server.port, [HOSTILE]);
  await dig(server.port, ['web.default.svc.cluster.local']);
  profile = await mkdtemp(join(tmpdir(), 'clusterdns-chromium-'));
  // A fresh profile (playwright passes it as --user-data-dir), and nothing of chromium's own that reaches the
  // network: the page is on loopback.
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  if (profile) await rm(profile, { recursive: true, force: true });
});

describe.skipIf(!hasChromium)('/debug/top?html in chromium', () => {
  it('shows the failing names, the clients and who asked what, as the JSON has them', async () => {
    const page = await browser.newPage();
    const blocked: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') blocked.push(message.text());
    });
    await page.goto(`http://${server.http.metrics}/debug/top?html`);
    await page.waitForSelector('body[data-loaded="true"]', { timeout: 10_000 });
    const rows = (id: string): Promise<string[][]> => page.$$eval(`#${id} tbody tr`, (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
    expect(await rows('names')).toEqual([
      ['cart.default.svc.cluster.local.', 'NXDOMAIN', '4', ''],
      ['<img/src=x/onerror=document.title=1>.default.svc.cluster.local.', 'NXDOMAIN', '1', ''],
      ['redis.default.svc.cluster.local.', 'NXDOMAIN', '1', ''],
    ]);
    expect(await rows('clients')).toEqual([['127.0.0.1', '5', ''], ['127.0.0.2', '1', '']]);
    expect((await rows('pairs'))[0]).toEqual(['127.0.0.1', 'cart.default.svc.cluster.local.', 'NXDOMAIN', '4', '']);
    expect(await page.textContent('#summary')).toMatch(/^6 NXDOMAIN and SERVFAIL answers in the last 300 s \(since /);
    // The hostile name stayed text: no element came of it, and its handler never ran.
    expect(await page.$$('img')).toEqual([]);
    expect(await page.title()).toBe('clusterdns: failing names');
    expect(blocked).toEqual([]);
    await page.close();
  });

  it('keeps itself current: a new failure shows without reloading the page', async () => {
    const page = await browser.newPage();
    await page.goto(`http://${server.http.metrics}/debug/top?html`);
    await page.waitForSelector('body[data-loaded="true"]', { timeout: 10_000 });
    await dig(server.port, ['latecomer.default.svc.cluster.local']);
    // The page refreshes every 5 s.
    await page.waitForSelector('#names td:text-is("latecomer.default.svc.cluster.local.")', { timeout: 15_000 });
    await page.close();
  });
});
