/**
 * Takes docs/console.png: the console of a host with a few plugins, one of which no longer
 * compiles (its old version serving, the error with file:line:column), one that fails to start,
 * and one directory that could not be registered. Run with `npm run console:screenshot`.
 */
import path from 'node:path';
import { launchChromium, waitForText } from '../test/browser.js';
import { sqlByHand, startTestHost } from '../test/support/host.js';
import { pluginSource, pluginsDirWithPowertable, writePlugin } from '../test/support/plugin-sources.js';
import { ROOT } from '../test/support/util.js';

const plugins = pluginsDirWithPowertable();
writePlugin(plugins.dir, 'greeter', pluginSource({ name: 'greeter', version: '1.2.0' }));
writePlugin(plugins.dir, 'catalog', pluginSource({ name: 'catalog', version: '2.0.1', route: '/items' }));
writePlugin(
  plugins.dir,
  'weather',
  pluginSource({
    name: 'weather',
    version: '0.3.0',
    route: '/weather',
    initialize: "      throw new Error('WEATHER_API_URL is not set');",
  }),
);
writePlugin(
  plugins.dir,
  'draft',
  "import { definePlugin } from 'plugin-host/sdk';\nexport const newPlugin = definePlugin(() => ({ getMetadata: () => ({ name: 'draft', version: '0.0.1' }) );\n",
);

const t = await startTestHost({ kind: 'pglite', pluginsDir: plugins.dir, env: { ADMIN_TOKEN: 'screenshot-token', NODE_ID: 'node-1' } });
const browser = await launchChromium();
try {
  // greeter's source breaks: the node keeps 1.2.0 serving and records where the error is
  writePlugin(plugins.dir, 'greeter', pluginSource({ name: 'greeter', version: '1.3.0', initialize: '      const x = ;' }));
  await sqlByHand(t, undefined, `UPDATE plugins SET generation = generation + 1 WHERE name = 'greeter'`);
  const page = await browser.newPage({ viewport: { width: 1280, height: 640 }, deviceScaleFactor: 1 });
  await page.goto(`${t.adminUrl}/console`);
  // the live feed needs the token
  await page.getByLabel('Admin token').fill('screenshot-token');
  await page.locator('body[data-loaded="true"][data-connection="live"]').waitFor();
  await waitForText(page.locator('#plugins tr[data-plugin="greeter"] .col-error'), /main\.ts:\d+:\d+/, 'greeter error');
  await waitForText(page.locator('#plugins tr[data-plugin="weather"] .col-nodes'), /error/, 'weather error');
  const file = path.join(ROOT, 'docs', 'console.png');
  await page.screenshot({ path: file, fullPage: true });
  console.log(`wrote ${path.relative(ROOT, file)}`);
} finally {
  await browser.close();
  await t.close();
  plugins.cleanup();
}
