// The console with a scoped token, in a real browser: it hides the buttons whose actions the token's scopes do not
// allow (Disable of another plugin, Rollback without publish), keeps those it allows working, and shows a plugin's
// audit trail in its detail view, naming the token that acted.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, PageWatch, textOf, waitForText } from './browser.js';
import { startTestHost, type TestHost } from './support/host.js';
import { pluginSource, pluginsDirWithPowertable, writePlugin } from './support/plugin-sources.js';
import { getJson, waitFor } from './support/util.js';

const ADMIN = 'console-tokens-admin';

describe('console with a scoped token', () => {
  let browser: Browser;
  let t: TestHost;
  let plugins: { dir: string; cleanup(): void };
  let page: Page;
  let watch: PageWatch;
  let scoped = '';

  before(async () => {
    browser = await launchChromium();
    plugins = pluginsDirWithPowertable();
    writePlugin(plugins.dir, 'greeter', pluginSource({ name: 'greeter', version: '1.2.0' }));
    t = await startTestHost({ kind: 'pglite', pluginsDir: plugins.dir, env: { ADMIN_TOKEN: ADMIN } });
    const made = await getJson(`${t.adminUrl}/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'greeter team', scopes: ['operate:greeter', 'read'] }),
    });
    scoped = made.body.token;
    page = await browser.newPage();
    watch = new PageWatch(page, t.adminUrl);
  });
  after(async () => {
    await page?.close();
    await browser?.close();
    await t?.close();
    plugins.cleanup();
  });

  test('a token holding operate:greeter sees Disable for greeter only, and it works', async () => {
    await page.goto(`${t.adminUrl}/console`);
    // without a token the page reads the plugins but does not follow changes (the feed needs a token)
    await page.locator('body[data-loaded="true"]').waitFor({ timeout: 15_000 });
    assert.ok(await page.getByRole('button', { name: 'Disable powertable' }).isVisible(), 'no token: nothing is known, nothing hidden');
    await page.getByLabel('Admin token').fill(scoped);
    await page.locator('body[data-token-scopes="operate:greeter read"]').waitFor({ timeout: 15_000 });
    await page.locator('body[data-connection="live"]').waitFor({ timeout: 15_000 });
    await waitFor(async () => !(await page.getByRole('button', { name: 'Disable powertable' }).isVisible()), 'Disable powertable hidden');
    assert.ok(await page.getByRole('button', { name: 'Disable greeter' }).isVisible());
    await page.getByRole('button', { name: 'Disable greeter' }).click();
    await waitForText(page.locator('#message'), /greeter disabled/, 'disable confirmed');
    assert.equal((await getJson(`${t.url}/plugins/greeter`)).body.status, 'inactive');
  });

  test("the detail view hides Rollback without publish, and shows the plugin's audit trail naming the token", async () => {
    await page.locator('#plugins a', { hasText: 'greeter' }).click();
    const dialog = page.locator('#detail');
    await dialog.waitFor({ state: 'visible' });
    await waitForText(dialog.locator('#detail-audit'), /greeter team \(api\): POST \/plugins\/:name\/disable → ok/, 'the audit entry');
    await waitFor(async () => (await dialog.locator('#versions-table tr').count()) > 0, 'the versions');
    const buttons = await dialog.locator('#detail-versions button').count();
    assert.equal(await dialog.locator('#detail-versions button.denied').count(), buttons, 'every version action is hidden');
    assert.equal(await dialog.locator('#detail-versions button:visible').count(), 0);
    assert.doesNotMatch(await textOf(dialog.locator('#detail-audit')), /ph_/, 'no secret shown');
  });

  test('the page stayed clean', () => {
    watch.assertClean();
  });
});
