/**
 * The console's configuration editor in headless Chromium: it reads a plugin's configuration
 * through the admin API with the token, shows the server's refusal naming the field (nothing
 * stored), saves a valid configuration with a secret reference (applied, the value never on
 * the page), and refuses to overwrite a change made meanwhile.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, PageWatch, textOf, waitForText } from './browser.js';
import { configuredPlugin, shownKey } from './fixtures/configured-plugin.js';
import { startTestHost, type TestHost } from './support/host.js';
import { writePlugin } from './support/plugin-sources.js';
import { getJson, tempDir } from './support/util.js';

const TOKEN = 'console-config-token-1';
const JSON_AUTH = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };

describe('console configuration editor (PGlite)', () => {
  let browser: Browser;
  let t: TestHost;
  let plugins: { dir: string; cleanup(): void };
  let page: Page;
  let watch: PageWatch;
  const secret = `console-secret-${randomUUID()}`;

  before(async () => {
    browser = await launchChromium();
    plugins = tempDir('ph-console-config-');
    writePlugin(plugins.dir, 'greeter', configuredPlugin('greeter'));
    t = await startTestHost({ kind: 'pglite', pluginsDir: plugins.dir, env: { ADMIN_TOKEN: TOKEN }, environment: { GREETER_KEY: secret } });
    page = await browser.newPage();
    watch = new PageWatch(page, t.adminUrl);
  });
  after(async () => {
    await page?.close();
    await browser?.close();
    await t?.close();
    plugins?.cleanup();
  });

  const section = () => page.locator('#detail-config');
  const status = () => page.locator('#config-status');
  const stored = async () => (await getJson(`${t.adminUrl}/plugins/greeter/config`, { headers: JSON_AUTH })).body;

  test('without the token the section says so; with it, the stored configuration is shown', async () => {
    await page.goto(`${t.adminUrl}/console#plugin=greeter`);
    await page.locator('#detail').waitFor({ state: 'visible' });
    await waitForText(section(), /needs the admin token/, 'the token is asked for');
    // the page's own token field is behind the modal dialog: the section asks for the token itself
    await section().getByLabel('Admin token').fill(TOKEN);
    await page.getByRole('button', { name: 'Show configuration' }).click();
    await waitForText(section(), /Nothing stored: the defaults apply/, 'the configuration');
    assert.deepEqual(JSON.parse(await page.locator('#config-text').inputValue()), {}, 'nothing stored');
    assert.match(await textOf(section()), /With the defaults applied/);
  });

  test('an invalid configuration is refused by the server naming the field, and nothing is stored', async () => {
    await watch.expecting([/status of 400/], async () => {
      await page.locator('#config-text').fill('{"greeting": 5, "colour": "red"}');
      await page.getByRole('button', { name: 'Save' }).click();
      const text = await waitForText(status(), /PH_ERR_PLUGIN_CONFIG_INVALID/, 'the refusal');
      assert.match(text, /\/greeting\s+must be string/);
      assert.match(text, /\/colour\s+is not allowed/);
    });
    assert.equal((await stored()).revision, 0, 'nothing stored');
    await page.locator('#config-text').fill('{"greeting": ');
    await page.getByRole('button', { name: 'Save' }).click();
    await waitForText(status(), /Not JSON/, 'a local parse error, no request');
  });

  test('a valid configuration with a secret reference is saved and applied; the value never reaches the page', async () => {
    await page.locator('#config-text').fill('{"greeting": "from the console", "key": {"$env": "GREETER_KEY"}}');
    await page.getByRole('button', { name: 'Save' }).click();
    await waitForText(status(), /Stored as revision \d+; this node: serving/, 'stored and applied');
    const shown = (await getJson(`${t.url}/greeter`)).body.config;
    assert.deepEqual(shown, { greeting: 'from the console', key: shownKey(secret) });
    assert.match(await page.locator('#config-text').inputValue(), /"\$env": "GREETER_KEY"/);
    assert.ok(!(await page.content()).includes(secret), 'no secret value on the page');
  });

  test('a change made meanwhile is not overwritten (If-Match)', async () => {
    const r = await getJson(`${t.adminUrl}/plugins/greeter/config`, {
      method: 'PATCH',
      headers: JSON_AUTH,
      body: JSON.stringify({ count: 1 }),
    });
    assert.equal(r.status, 200);
    await watch.expecting([/status of 412/], async () => {
      await page.locator('#config-text').fill('{"greeting": "stale edit"}');
      await page.getByRole('button', { name: 'Save' }).click();
      await waitForText(status(), /PH_ERR_PLUGIN_CONFIG_CONFLICT/, 'the conflict');
    });
    assert.equal((await stored()).config.count, 1, 'the other change stands');
    await page.getByRole('button', { name: 'Discard changes' }).click();
    await waitForText(section(), new RegExp(`Revision ${r.body.revision}\\b`), 'the current revision read again');
    watch.assertClean();
  });
});
