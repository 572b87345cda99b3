/**
 * The console's versions section in headless Chromium: a plugin published in two versions is
 * listed newest first; Rollback without the token shows the 401 and changes nothing, with it
 * pins the older version (served, marked pinned); a rollout in its canary stage shows Promote
 * and Abort, a refusal (409) shows the problem's detail, and Abort ends the rollout.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, PageWatch, textOf, waitForText } from './browser.js';
import { startTestHost, type TestHost } from './support/host.js';
import { pluginSource, writePlugin } from './support/plugin-sources.js';
import { getJson, tempDir, waitFor } from './support/util.js';

const TOKEN = 'console-versions-token-1';
const NAME = 'relay';
const AUTH = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };

describe('console versions section (PGlite)', () => {
  let browser: Browser;
  let t: TestHost;
  let plugins: { dir: string; cleanup(): void };
  let page: Page;
  let watch: PageWatch;

  const admin = (path: string, body: unknown = {}) =>
    getJson(`${t.adminUrl}/plugins/${NAME}${path}`, { method: 'POST', headers: AUTH, body: JSON.stringify(body) });
  const served = async () => (await getJson(`${t.url}/${NAME}`)).body.version as string | undefined;
  const servesSoon = (version: string) =>
    waitFor(async () => ((await served()) === version ? true : undefined), `GET /${NAME} answers ${version}`);
  const versionRow = (version: string) => page.locator(`#versions-table tbody tr[data-version="${version}"]`);
  const status = () => page.locator('#versions-status');

  before(async () => {
    browser = await launchChromium();
    plugins = tempDir('ph-console-versions-');
    writePlugin(plugins.dir, NAME, pluginSource({ name: NAME, version: '0.1.0' }));
    t = await startTestHost({ kind: 'pglite', pluginsDir: plugins.dir, env: { ADMIN_TOKEN: TOKEN, TYPECHECK: '0' } });
    // the second version: the source changed, then reloaded through the admin API
    writePlugin(plugins.dir, NAME, pluginSource({ name: NAME, version: '0.2.0' }));
    assert.equal((await admin('/reload')).status, 200);
    await servesSoon('0.2.0');
    page = await browser.newPage();
    watch = new PageWatch(page, t.adminUrl);
  });
  after(async () => {
    await page?.close();
    await browser?.close();
    await t?.close();
    plugins?.cleanup();
  });

  test('both versions are listed, newest first', async () => {
    await page.goto(`${t.adminUrl}/console#plugin=${NAME}`);
    await page.locator('#detail').waitFor({ state: 'visible' });
    await versionRow('0.1.0').waitFor();
    const listed = await page.locator('#versions-table tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-version')));
    assert.deepEqual(listed, ['0.2.0', '0.1.0']);
    assert.match(await textOf(versionRow('0.2.0')), /reload/, 'how it was published');
    assert.doesNotMatch(await textOf(page.locator('#versions-table')), /pinned/, 'nothing pinned yet');
  });

  test('Rollback without the token shows the 401 and changes nothing', async () => {
    await watch.expecting([/status of 401/], async () => {
      await page.getByRole('button', { name: 'Rollback to 0.1.0' }).click();
      await waitForText(status(), /401.*Authorization: Bearer/, 'the 401 problem of a missing token');
    });
    assert.equal(await served(), '0.2.0');
    assert.equal((await getJson(`${t.url}/plugins/${NAME}`)).body.pinned_hash, null, 'nothing pinned');
  });

  test('with the token, Rollback pins the older version: served and marked pinned', async () => {
    // the page's token field is behind the modal dialog: close it, give the token, open the plugin again
    await page.getByRole('button', { name: 'Close' }).click();
    await page.locator('#token').fill(TOKEN);
    await page.locator(`#plugins a.plugin-name`, { hasText: NAME }).click();
    await page.getByRole('button', { name: 'Rollback to 0.1.0' }).click();
    await waitForText(status(), /relay pinned to 0\.1\.0/, 'the rollback done');
    await servesSoon('0.1.0');
    await waitForText(versionRow('0.1.0'), /pinned/, 'the pinned version marked');
    const focused = await page.evaluate("document.activeElement?.getAttribute('aria-label')");
    assert.equal(focused, 'Rollback to 0.1.0', 'the rebuilt row keeps the keyboard focus');
    assert.doesNotMatch(await textOf(versionRow('0.2.0')), /pinned/);
  });

  test('a canary rollout shows Promote and Abort; a refused action shows the detail; Abort ends it', async () => {
    const nodeId = (await getJson(`${t.url}/plugins/${NAME}`)).body.node_id as string;
    const r = await admin('/rollout', { nodes: [nodeId], version: '0.2.0' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    // shown through the event stream, without a reload of the view
    const abort = page.getByRole('button', { name: 'Abort the rollout of 0.2.0' });
    await abort.waitFor();
    assert.equal(await page.getByRole('button', { name: 'Promote 0.2.0 to every node' }).count(), 1);
    await waitForText(versionRow('0.2.0'), /candidate/, 'the candidate marked');
    await servesSoon('0.2.0');

    await watch.expecting([/status of 409/], async () => {
      await page.getByRole('button', { name: 'Rollback to 0.1.0' }).click();
      await waitForText(status(), /409.*canary/, 'the 409 problem while the rollout is in its canary stage');
    });

    await abort.click();
    await waitForText(status(), /rollout of 0\.2\.0 aborted/, 'the abort done');
    await abort.waitFor({ state: 'detached' });
    await servesSoon('0.1.0');
    assert.equal((await getJson(`${t.url}/plugins/${NAME}`)).body.rollout.state, 'aborted');
    watch.assertClean();
  });
});
