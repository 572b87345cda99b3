// A reconcile that finds nothing changed for a version compiled here (a periodic resync, this node's own
// publication coming back as a notification) skips the compile step: it neither reads the artifact back nor
// rebuilds it. A change of the source on disk is still seen, since the source is hashed every time. And the
// first round, which writes its endpoint lists together when it ends, leaves each plugin's real routes stored.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { onEachDatabase } from './support/databases.js';
import { startTestHost, type TestHost } from './support/host.js';
import { pluginSource, pluginsDirWithPowertable, writePlugin } from './support/plugin-sources.js';
import { getJson } from './support/util.js';

onEachDatabase('a reconcile with nothing changed', (db) => {
  let t: TestHost;
  let plugins: { dir: string; cleanup(): void };

  before(async () => {
    plugins = pluginsDirWithPowertable();
    // declares one endpoint, registers two routes: its first load stores both
    writePlugin(
      plugins.dir,
      'twoways',
      pluginSource({
        name: 'twoways',
        routes: [
          "      server.get('/twoways', async () => ({ ok: 1 }));",
          "      server.post('/twoways/items', async () => ({ ok: 2 }));",
        ].join('\n'),
      }),
    );
    t = await startTestHost({ ...db.hostOptions, pluginsDir: plugins.dir });
  });
  after(async () => {
    await t?.close();
    plugins.cleanup();
  });

  test('skips the compile step, and still sees a changed source', async () => {
    const serving = t.host.manager.serving('powertable');
    assert.ok(serving !== undefined, 'powertable serves');
    const file = path.join(t.config.artifactsDir, `${serving.hash}.cjs`);
    assert.ok(existsSync(file), 'the artifact file was written when it was compiled');
    // a compile would find the file gone and build it again: nothing rebuilds it on a reconcile with no change
    rmSync(file);
    await t.host.manager.reconcileAll();
    await t.host.manager.reconcile('powertable');
    assert.equal(existsSync(file), false, 'no compile ran for an unchanged source');
    assert.equal(t.host.manager.serving('powertable'), serving, 'the same version still serves');

    const entry = path.join(plugins.dir, 'powertable', 'main.ts');
    writeFileSync(entry, readFileSync(entry, 'utf8').replace(/const VERSION = '[^']*';/, "const VERSION = '0.2.0';"));
    await t.host.manager.reconcile('powertable');
    const next = t.host.manager.serving('powertable');
    assert.notEqual(next, serving, 'a changed source is compiled and loaded');
    assert.equal(next?.version, '0.2.0');
    assert.equal((await getJson(`${t.url}/hello`)).body.version, '0.2.0');
  });

  test('the endpoints of the first round are the routes each plugin registered', async () => {
    const row = await t.host.repo.getByName('twoways');
    assert.deepEqual(row?.endpoints.map((e) => `${e.method} ${e.path}`).sort(), ['GET /twoways', 'POST /twoways/items']);
    const pt = await t.host.repo.getByName('powertable');
    assert.deepEqual(
      pt?.endpoints.map((e) => `${e.method} ${e.path}`),
      ['GET /hello'],
    );
  });
});
