/**
 * The operator console in a real browser (headless Chromium through playwright-core): what it
 * shows, how it follows changes made anywhere, its actions through the admin API, its resync
 * after a server restart, and that it stays clean (no page errors, no console errors, no
 * request to another host).
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import postgres from 'postgres';
import { launchChromium, PageWatch, textOf, waitForText } from './browser.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { sqlByHand, startTestHost, type TestHost } from './support/host.js';
import { pluginSource, pluginsDirWithPowertable, writePlugin } from './support/plugin-sources.js';
import { killAllServers, type ServerProcess, startServer } from './support/server-process.js';
import { freePort, getJson, tempDir, waitFor } from './support/util.js';

const TOKEN = 'console-token-123';
const AUTH = { authorization: `Bearer ${TOKEN}` };

/** A plugin whose second line does not parse. */
const BROKEN = `import { definePlugin } from 'plugin-host/sdk';
const answer = ; // SYNTAX
export const newPlugin = definePlugin(() => ({
  getMetadata: () => ({ name: 'broken', version: '1.0.0', description: '', author: '' }),
  initialize() {},
  registerRoutes() {},
  cleanup() {},
}));
`;

const row = (page: Page, name: string) => page.locator(`#plugins tbody tr[data-plugin="${name}"]`);
const cell = (page: Page, name: string, column: string) => row(page, name).locator(`.col-${column}`);

/** Opens the console, types the admin token (the live feed needs it) and waits until the page has read the plugins and its event stream is live. */
async function openConsole(page: Page, url: string): Promise<void> {
  const res = await page.goto(`${url}/console`);
  assert.equal(res?.status(), 200);
  const csp = res?.headers()['content-security-policy'] ?? '';
  assert.match(csp, /script-src 'self'/, 'a CSP restricts scripts to the host');
  assert.doesNotMatch(csp, /unsafe-inline/, 'the CSP allows no inline script or style');
  await page.getByLabel('Admin token').fill(TOKEN);
  await page.locator('body[data-loaded="true"][data-connection="live"]').waitFor({ timeout: 15_000 });
}

/** Marks the page's JavaScript context: the mark survives anything but a reload. */
async function markPage(page: Page): Promise<void> {
  // expressions as strings: they run in the page, whose globals (window, document) this program does not type
  await page.evaluate('window.consoleTestMark = 42');
}
async function assertNotReloaded(page: Page): Promise<void> {
  const mark = await page.evaluate('window.consoleTestMark');
  assert.equal(mark, 42, 'the page was not reloaded');
}

let browser: Browser;

before(async () => {
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await killAllServers();
});

describe('console on PGlite', () => {
  let t: TestHost;
  let plugins: { dir: string; cleanup(): void };
  let page: Page;
  let watch: PageWatch;

  before(async () => {
    plugins = pluginsDirWithPowertable();
    writePlugin(plugins.dir, 'greeter', pluginSource({ name: 'greeter', version: '1.2.0' }));
    writePlugin(plugins.dir, 'broken', BROKEN);
    // registered, but its route would shadow the console's event stream: refused when loading
    writePlugin(plugins.dir, 'shadow', pluginSource({ name: 'shadow', version: '0.0.1', route: '/events' }));
    mkdirSync(path.join(plugins.dir, 'Not A Name'));
    writeFileSync(path.join(plugins.dir, 'Not A Name', 'main.ts'), pluginSource({ name: 'x' }));
    // every stream of this file uses the one token: the per-token cap is raised to reach the node's total cap
    t = await startTestHost({ kind: 'pglite', pluginsDir: plugins.dir, env: { ADMIN_TOKEN: TOKEN, EVENTS_MAX_PER_TOKEN: '1000' } });
    page = await browser.newPage();
    watch = new PageWatch(page, t.adminUrl);
  });
  after(async () => {
    await page?.close();
    await t?.close();
    plugins.cleanup();
  });

  test('shows a row per plugin with its desired status, version and state, and unregistered directories apart', async () => {
    await openConsole(page, t.adminUrl);
    await waitForText(cell(page, 'powertable', 'nodes'), /serving\s+0\.1\.0\s+this node/, 'powertable serving here');
    assert.match(await textOf(cell(page, 'powertable', 'status')), /active/);
    assert.match(await textOf(cell(page, 'powertable', 'version')), /0\.1\.0/);
    await waitForText(cell(page, 'greeter', 'nodes'), /serving\s+1\.2\.0/, 'greeter serving here');
    assert.equal(await page.locator('#plugins tbody tr').count(), 3, 'one row per registered plugin');
    await waitForText(cell(page, 'shadow', 'nodes'), /^error\b.*this node$/, 'shadow in error');
    assert.match(await textOf(cell(page, 'shadow', 'error')), /PH_ERR_ROUTE_RESERVED/);
    // the headers a person reads, as text
    const headers = await page.locator('#plugins thead th').allInnerTexts();
    assert.deepEqual(headers, ['Plugin', 'Desired', 'Version', 'Nodes', 'Isolation', 'Last error', 'Actions']);
    // no mode asked for: the one in effect here, marked as the host's default
    assert.equal(await textOf(cell(page, 'greeter', 'isolation')), 'inline (default)');

    const unregistered = page.locator('#unregistered');
    assert.ok(await unregistered.isVisible(), 'unregistered directories are shown');
    const broken = unregistered.locator('tr[data-plugin="broken"]');
    const text = await textOf(broken);
    assert.match(text, /PH_ERR_COMPILE_SYNTAX/);
    assert.match(text, /broken\/main\.ts:2:\d+/, 'the syntax error is shown with file:line:column');
    assert.match(await textOf(unregistered.locator('tr[data-plugin="Not A Name"]')), /PH_ERR_PLUGIN_NAME_INVALID/);
    assert.equal(await row(page, 'broken').count(), 0, 'an unregistered directory is not a plugin row');
  });

  test('a detail view, opened and closed with the keyboard, shows routes, health, nodes and the errors this node saw', async () => {
    await page.locator('#plugins a', { hasText: 'powertable' }).focus();
    await page.keyboard.press('Enter');
    const dialog = page.locator('#detail');
    await dialog.waitFor({ state: 'visible' });
    assert.equal(new URL(page.url()).hash, '#plugin=powertable');
    await waitForText(dialog.locator('#detail-routes'), /GET \/hello/, 'routes');
    await waitForText(dialog.locator('#detail-health'), /ok\b.*version 0\.1\.0/s, 'health check result');
    assert.match(await textOf(dialog.locator('#detail-nodes')), /\(this node\)\s+serving\s+0\.1\.0/);
    assert.match(await textOf(dialog.locator('#detail-errors')), /None since this node started/);
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    // the dialog hides at once; its close event, which forgets the fragment, is a task queued after it
    // polled from here: a predicate evaluated inside the page would itself break the console's CSP (no eval)
    await waitFor(() => new URL(page.url()).hash === '', 'closing forgets the fragment');

    // an unregistered directory has its error history too
    await page.locator('#unregistered a', { hasText: 'broken' }).click();
    await waitForText(dialog.locator('#detail-errors'), /PH_ERR_COMPILE_SYNTAX\s+broken\/main\.ts:2:\d+/, 'error history');
    await dialog.getByRole('button', { name: 'Close' }).click();
    await dialog.waitFor({ state: 'hidden' });
  });

  test('Disable and Enable need the admin token: without it the 401 is shown and nothing changes', async () => {
    await markPage(page);
    assert.equal((await getJson(`${t.url}/hello`)).status, 200);
    const disable = page.getByRole('button', { name: 'Disable powertable' });
    const refused = /status of 401/;

    await watch.expecting([refused], async () => {
      await page.getByRole('button', { name: 'Forget' }).click();
      await page.locator('body[data-connection="locked"]').waitFor({ timeout: 15_000 });
      await disable.click();
      await waitForText(page.locator('#message'), /401.*Authorization: Bearer/, 'the 401 problem of a missing token');
      await page.getByLabel('Admin token').fill('not-the-token');
      await disable.click();
      await waitForText(page.locator('#message'), /401.*the admin token is not valid/, 'the 401 problem of a wrong token');
      await page.getByLabel('Admin token').fill(TOKEN);
      await page.locator('body[data-connection="live"]').waitFor({ timeout: 15_000 });
    });
    assert.equal((await getJson(`${t.url}/hello`)).status, 200, 'refused actions changed nothing');
    assert.equal((await getJson(`${t.url}/plugins/powertable`)).body.status, 'active');
    assert.match(await textOf(cell(page, 'powertable', 'status')), /active/);

    await disable.click();
    await waitForText(page.locator('#message'), /powertable disabled/, 'disable confirmed');
    await waitForText(cell(page, 'powertable', 'status'), /inactive/, 'desired status inactive');
    await waitForText(cell(page, 'powertable', 'nodes'), /unloaded/, 'unloaded here');
    assert.equal((await getJson(`${t.url}/hello`)).status, 404, 'GET /hello is gone');

    await page.getByRole('button', { name: 'Enable powertable' }).click();
    await waitForText(cell(page, 'powertable', 'nodes'), /serving\s+0\.1\.0/, 'serving again');
    const hello = await getJson(`${t.url}/hello`);
    assert.equal(hello.status, 200, 'GET /hello answers again');
    assert.equal(hello.body.plugin, 'powertable');

    // the token lives in this tab's sessionStorage only
    const stored = await page.evaluate(
      "({ session: sessionStorage.getItem('plugin-host.admin-token'), local: localStorage.length, cookie: document.cookie })",
    );
    assert.deepEqual(stored, { session: TOKEN, local: 0, cookie: '' });
    await assertNotReloaded(page);
  });

  test('a change written with SQL shows up without a reload', async () => {
    await sqlByHand(t, undefined, `UPDATE plugins SET status = 'inactive' WHERE name = 'greeter'`);
    await waitForText(cell(page, 'greeter', 'status'), /inactive/, 'greeter inactive');
    await waitForText(cell(page, 'greeter', 'nodes'), /unloaded/, 'greeter unloaded');
    await assertNotReloaded(page);
  });

  test("the console routes are documented in OpenAPI, and GET /events stays the host's", async () => {
    const { body: doc } = await getJson(`${t.adminUrl}/openapi.json`);
    for (const p of ['/console', '/events']) assert.deepEqual(doc.paths[p]?.get?.tags, ['console'], `${p} documented`);
    for (const p of ['/cluster', '/plugins/{name}/errors']) assert.deepEqual(doc.paths[p]?.get?.tags, ['plugins'], `${p} documented`);
    const res = await fetch(`${t.adminUrl}/events`, { headers: AUTH, signal: AbortSignal.timeout(5000) });
    assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    assert.match(first, /event: hello\ndata: \{"node_id":/, 'the stream starts with hello');
  });

  test('a node holds at most 256 event streams and refuses the next with a problem', async () => {
    // the responses are kept too: an unread fetch body whose Response is garbage-collected is cancelled,
    // which would close its stream and let the node accept more than it holds at once
    const open: { ac: AbortController; res: Response }[] = [];
    try {
      let refused: Response | undefined;
      while (refused === undefined && open.length < 300) {
        const ac = new AbortController();
        const res = await fetch(`${t.adminUrl}/events`, { headers: AUTH, signal: ac.signal });
        if (res.status === 200) open.push({ ac, res });
        else refused = res;
      }
      assert.ok(refused, 'a stream was refused');
      assert.equal(refused.status, 503);
      assert.equal(refused.headers.get('retry-after'), '5');
      assert.equal(((await refused.json()) as { code: string }).code, 'PH_ERR_EVENTS_LIMIT');
      assert.equal(open.length + 1, 256, 'the page’s stream and ours make 256');
    } finally {
      for (const o of open) o.ac.abort();
    }
    await waitFor(async () => (await fetch(`${t.adminUrl}/events`, { method: 'HEAD', headers: AUTH })).status === 200, 'streams released');
  });

  test('the page stayed clean', () => {
    watch.assertClean();
    assert.ok(watch.expectedErrors.length > 0, 'the refused actions were seen by the browser');
  });
});

describe('console on PostgreSQL, two server processes', () => {
  let db: TestDatabase;
  let plugins: { dir: string; cleanup(): void };
  let dataA: { dir: string; cleanup(): void };
  let dataB: { dir: string; cleanup(): void };
  let port: number;
  let adminPort: number;
  let nodeA: ServerProcess;
  let nodeB: ServerProcess;
  /** Node A's control plane, where the console is. */
  let url: string;
  /** Node A's data plane. */
  let dataUrl: string;
  let page: Page;
  let watch: PageWatch;

  const envA = () => ({
    DATABASE_URL: db.url,
    PLUGINS_DIR: plugins.dir,
    DATA_DIR: dataA.dir,
    PORT: String(port),
    ADMIN_PORT: String(adminPort),
    NODE_ID: 'node-a',
    ADMIN_TOKEN: TOKEN,
  });
  /** SQL from a connection of its own, as psql would run it. */
  const sql = async (text: string) => {
    const c = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      await c.unsafe(text);
    } finally {
      await c.end();
    }
  };

  before(async () => {
    db = await createTestDatabase();
    plugins = pluginsDirWithPowertable();
    writePlugin(plugins.dir, 'greeter', pluginSource({ name: 'greeter', version: '1.2.0' }));
    dataA = tempDir('ph-console-a-');
    dataB = tempDir('ph-console-b-');
    port = await freePort();
    adminPort = await freePort();
    nodeA = await startServer({ name: 'node-a', env: envA() });
    url = nodeA.adminUrl;
    dataUrl = nodeA.url;
    nodeB = await startServer({
      name: 'node-b',
      env: { DATABASE_URL: db.url, PLUGINS_DIR: plugins.dir, DATA_DIR: dataB.dir, NODE_ID: 'node-b', DISCOVER: '0' },
    });
    page = await browser.newPage();
    watch = new PageWatch(page, url);
  });
  after(async () => {
    await page?.close();
    await nodeA?.stop();
    await nodeB?.stop();
    await db?.drop();
    plugins.cleanup();
    dataA.cleanup();
    dataB.cleanup();
  });

  test('every live node has its state in the row', async () => {
    await openConsole(page, url);
    await waitForText(cell(page, 'powertable', 'nodes'), /this node[\s\S]*serving\s+0\.1\.0\s+node-b/, 'both nodes serving');
    await markPage(page);
  });

  test('an SQL UPDATE made from another connection shows up without a reload, on every node', async () => {
    await sql(`UPDATE plugins SET status = 'inactive' WHERE name = 'greeter'`);
    await waitForText(cell(page, 'greeter', 'status'), /inactive/, 'greeter inactive');
    await waitForText(cell(page, 'greeter', 'nodes'), /^unloaded\s+this node\s+unloaded\s+node-b$/m, 'unloaded on both nodes');
    await sql(`UPDATE plugins SET status = 'active' WHERE name = 'greeter'`);
    await waitForText(cell(page, 'greeter', 'nodes'), /serving\s+1\.2\.0\s+this node\s+serving\s+1\.2\.0\s+node-b/, 'serving again');
    await assertNotReloaded(page);
  });

  test('a plugin whose source stops compiling shows its file:line as the last error, the old version still serving', async () => {
    writePlugin(plugins.dir, 'greeter', BROKEN.replace("name: 'broken'", "name: 'greeter'"));
    await sql(`UPDATE plugins SET generation = generation + 1 WHERE name = 'greeter'`);
    const text = await waitForText(cell(page, 'greeter', 'error'), /greeter\/main\.ts:2:\d+/, 'the compile error with its location');
    assert.match(text, /PH_ERR_COMPILE_SYNTAX/);
    assert.match(await textOf(cell(page, 'greeter', 'nodes')), /serving\s+1\.2\.0/, 'the old version keeps serving');
    assert.equal((await getJson(`${dataUrl}/greeter`)).status, 200);
    await assertNotReloaded(page);
  });

  test('a hundred plugins are listed', async () => {
    await sql(`INSERT INTO plugins (id, name, description, version, type, status)
               SELECT md5(random()::text), 'bulk-' || lpad(i::text, 3, '0'), 'bulk plugin ' || i, '1.0.' || i, 'dynamic', 'inactive'
               FROM generate_series(1, 100) AS i`);
    await waitFor(async () => (await page.locator('#plugins tbody tr').count()) === 102, '102 rows', 20_000);
    await waitForText(cell(page, 'bulk-100', 'nodes'), /unloaded\s+this node\s+unloaded\s+node-b/, 'a bulk row with both nodes');
    // a fresh page with 102 plugins: how long until the table is filled (shown, not asserted)
    const fresh = await browser.newPage();
    const freshWatch = new PageWatch(fresh, url);
    const t0 = Date.now();
    await openConsole(fresh, url);
    await waitFor(async () => (await fresh.locator('#plugins tbody tr').count()) === 102, '102 rows on a fresh page');
    const filled = await fresh.evaluate("performance.getEntriesByName('console-loaded')[0]?.startTime");
    console.log(
      `# console with 102 plugins: first complete table ${Math.round(Number(filled))} ms after navigation started (${Date.now() - t0} ms with the browser's new tab)`,
    );
    await fresh.close();
    freshWatch.assertClean();
    await sql(`DELETE FROM plugins WHERE name LIKE 'bulk-%'`);
    await waitFor(async () => (await page.locator('#plugins tbody tr').count()) === 2, 'bulk rows removed');
  });

  test('after the server restarts, the page resyncs and shows what changed while it was down', async () => {
    await watch.expecting(
      [/ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|ERR_EMPTY_RESPONSE|status of 503|Failed to fetch|network error/],
      async () => {
        // an open event stream does not hold the shutdown up
        assert.deepEqual(await nodeA.stop('SIGTERM'), { code: 0, signal: null }, 'a clean exit');
        await waitForText(page.locator('#connection'), /Reconnecting|Offline/, 'the page notices the server is gone');
        // written while the page cannot hear anything: only a resync can show it
        await sql(`UPDATE plugins SET status = 'inactive' WHERE name = 'powertable'`);
        nodeA = await startServer({ name: 'node-a (restarted)', env: envA() });
        assert.equal(nodeA.adminUrl, url, 'same address');
        await waitForText(page.locator('#connection'), /Live/, 'the stream is back', 30_000);
      },
    );
    await waitForText(cell(page, 'powertable', 'status'), /inactive/, 'the change made while down');
    await waitForText(cell(page, 'powertable', 'nodes'), /unloaded\s+this node\s+unloaded\s+node-b/, 'unloaded on both nodes');
    await assertNotReloaded(page);
  });

  test('the page stayed clean', () => {
    watch.assertClean();
  });
});
