import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BAD_CASES, caseName, caseRoute } from './fixtures/bad-plugins.js';
import { onEachDatabase } from './support/databases.js';
import { sqlByHand, startTestHost, type TestHost } from './support/host.js';
import { pluginSource, pluginsDirWithPowertable, writePlugin } from './support/plugin-sources.js';
import { getJson } from './support/util.js';

// Bad plugin directories present when the server starts. Discovery's trial load
// (compile, evaluate, factory, metadata) refuses what it can prove broken: those are
// never registered and GET /plugins/:name shows the discovery error. A plugin whose
// failure only shows when its hooks run is registered and shown as `error`.
// Names sort after "powertable": discovery registers in name order, and of two
// plugins claiming one route the earlier registered keeps it.

const INVALID_DIR_NAMES = ['Bad Name', 'UPPER', '-dash-first', `x${'a'.repeat(64)}`];

// PGlite and PostgreSQL suites run side by side, each with its own host and directories; the tests of a suite run in order.
describe('bad plugin directories at start', { concurrency: true }, () => {
  onEachDatabase('bad plugin directories at start', { concurrency: 1 }, (db) => {
    let t: TestHost;
    let plugins: { dir: string; cleanup(): void };
    const sources = new Map<string, string>();

    before(async () => {
      plugins = pluginsDirWithPowertable();
      writePlugin(plugins.dir, 'steady', pluginSource({ name: 'steady' }));
      for (const c of BAD_CASES) {
        const name = caseName('x', c);
        const src = c.source(name, caseRoute(name));
        sources.set(name, src);
        writePlugin(plugins.dir, name, src);
      }
      for (const bad of INVALID_DIR_NAMES) writePlugin(plugins.dir, bad, pluginSource({ name: 'whatever' }));
      mkdirSync(path.join(plugins.dir, 'x-no-entry'));
      t = await startTestHost({
        ...db.hostOptions,
        pluginsDir: plugins.dir,
        env: { HOOK_TIMEOUT_MS: '500' },
      });
    });
    after(async () => {
      await t?.close();
      plugins?.cleanup();
    });

    test('powertable and the healthy plugin serve', async () => {
      const hello = await getJson(`${t.url}/hello`);
      assert.equal(hello.status, 200);
      assert.equal(hello.body.plugin, 'powertable');
      const steady = await getJson(`${t.url}/steady`);
      assert.deepEqual(steady.body, { plugin: 'steady', version: '1.0.0' });
      for (const name of ['powertable', 'steady']) {
        const p = await getJson(`${t.url}/plugins/${name}`);
        assert.equal(p.body.state, 'serving', name);
        assert.equal(p.body.last_error, null, name);
      }
    });

    for (const c of BAD_CASES) {
      const name = caseName('x', c);
      test(`case ${c.id} ${c.title}: ${c.atDiscovery === 'refused' ? 'not registered' : 'registered, state error'}`, async () => {
        const { status, body } = await getJson(`${t.url}/plugins/${name}`);
        assert.equal(status, 200);
        assert.equal(body.state, 'error');
        assert.equal(body.serving ?? null, null);
        assert.equal(body.last_error?.code, c.code, JSON.stringify(body.last_error));
        assert.match(body.last_error.message, c.message(name, sources.get(name) as string, t.config.hookTimeoutMs));
        const rows = (await sqlByHand(t, db.url, 'SELECT name FROM plugins WHERE name = $1', [name])) as unknown[];
        if (c.atDiscovery === 'refused') {
          assert.equal(body.registered, false);
          assert.equal(rows.length, 0, 'validation before registration: no row');
        } else {
          assert.equal(body.registered, true);
          assert.equal(body.status, 'active');
          assert.equal(rows.length, 1);
        }
        assert.ok(
          t.logs.find((l) => l.level === 50 && l.plugin === name),
          'an error is logged with the plugin name',
        );
        assert.equal(t.host.dispatcher.current.plugins.has(name), false, 'nothing of it is in the route table');
        assert.equal(t.host.manager.serving(name), undefined);
      });
    }

    test('case 08: registerRoutes throwing halfway leaves no partial route', async () => {
      const name = caseName('x', BAD_CASES.find((c) => c.id === '08')!);
      const route = caseRoute(name);
      assert.equal((await getJson(`${t.url}${route}-first`)).status, 404);
      assert.equal((await getJson(`${t.url}${route}`, { method: 'POST' })).status, 404);
      assert.equal(t.host.dispatcher.current.find('GET', `${route}-first`), undefined);
    });

    test('case 09: the conflicting plugin is refused, powertable keeps GET /hello', async () => {
      const hello = await getJson(`${t.url}/hello`);
      assert.equal(hello.body.plugin, 'powertable');
      assert.equal(t.host.dispatcher.current.find('GET', '/hello')?.name, 'powertable');
      assert.equal((await getJson(`${t.url}/healthz`)).body.status, 'ok', 'core route still answered by the host');
      assert.equal((await getJson(`${t.url}/plugins`)).status, 200);
    });

    test('case 13: directories named outside the pattern are reported, not registered', async () => {
      const { body } = await getJson(`${t.url}/plugins`);
      for (const bad of INVALID_DIR_NAMES) {
        const entry = body.find((p: { name: string }) => p.name === bad);
        assert.ok(entry, `${bad} is listed`);
        assert.equal(entry.registered, false);
        assert.equal(entry.state, 'error');
        assert.equal(entry.last_error.code, 'PH_ERR_PLUGIN_NAME_INVALID');
        assert.ok(entry.last_error.message.startsWith(`${bad}: directory name is not a valid plugin name`));
        assert.ok(t.logs.find((l) => l.level === 50 && l.plugin === bad));
      }
      const rows = (await sqlByHand(t, db.url, 'SELECT name FROM plugins ORDER BY name')) as { name: string }[];
      for (const bad of INVALID_DIR_NAMES) assert.ok(!rows.some((r) => r.name === bad), `${bad} not registered`);
      const noEntry = await getJson(`${t.url}/plugins/x-no-entry`);
      assert.equal(noEntry.body.last_error.code, 'PH_ERR_PLUGIN_NO_ENTRY');
    });

    test('nothing else changed state: exactly powertable and steady serve', async () => {
      const { body } = await getJson(`${t.url}/plugins`);
      const serving = body.filter((p: { state: string }) => p.state === 'serving').map((p: { name: string }) => p.name);
      assert.deepEqual(serving.sort(), ['powertable', 'steady']);
      assert.deepEqual([...t.host.dispatcher.current.plugins.keys()].sort(), ['powertable', 'steady']);
      assert.equal((await getJson(`${t.url}/hello`)).status, 200);
      assert.equal((await getJson(`${t.url}/steady`)).status, 200);
    });
  });
});
