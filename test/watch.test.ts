import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { onEachDatabase } from './support/databases.js';
import { startTestHost, type TestHost } from './support/host.js';
import { pluginSource, pluginsDirWithPowertable, writePlugin } from './support/plugin-sources.js';
import { getJson, waitFor } from './support/util.js';

const message = async (url: string) => (await getJson(`${url}/hello`)).body?.message;

onEachDatabase('watch mode', (db) => {
  let t: TestHost;
  /** On PostgreSQL: a second node without the source watcher, which must follow through the database. */
  let follower: TestHost | undefined;
  let plugins: { dir: string; cleanup(): void };
  let main: string;
  let original: string;

  before(async () => {
    plugins = pluginsDirWithPowertable();
    main = path.join(plugins.dir, 'powertable', 'main.ts');
    original = readFileSync(main, 'utf8');
    t = await startTestHost({ ...db.hostOptions, pluginsDir: plugins.dir, env: { WATCH: '1', WATCH_DEBOUNCE_MS: '50' } });
    if (db.kind === 'postgres') follower = await startTestHost({ ...db.hostOptions, pluginsDir: plugins.dir, env: { DISCOVER: '0' } });
  });
  after(async () => {
    await follower?.close();
    await t?.close();
    plugins.cleanup();
  });

  test('an edited source is recompiled, published and served by every node', async () => {
    assert.ok(t.host.watcher, 'the watcher runs with WATCH=1');
    const before = (await getJson(`${t.url}/plugins/powertable`)).body;
    writeFileSync(main, original.replace("'PowerTable plugin - GET /hello'", "'edited while serving'"));
    await waitFor(async () => (await message(t.url)) === 'edited while serving', 'the edited answer');
    const after = await waitFor(async () => {
      const r = (await getJson(`${t.url}/plugins/powertable`)).body;
      return r.artifact_hash !== before.artifact_hash && r.serving?.hash === r.artifact_hash ? r : undefined;
    }, 'the new hash to be published');
    assert.equal(after.last_error, null);
    assert.equal(after.state, 'serving');
    if (follower) {
      await waitFor(async () => (await message(follower!.url)) === 'edited while serving', 'the other node to reload');
    }
    assert.ok(
      t.logs.find((l) => l.plugin === 'powertable' && String(l.msg).includes('changed on disk: published')),
      'the change is logged with the plugin name',
    );
  });

  test('a broken edit keeps the serving version and records the error with file:line:column', async () => {
    const serving = (await getJson(`${t.url}/plugins/powertable`)).body;
    writeFileSync(
      main,
      original.replace("'PowerTable plugin - GET /hello'", "'never served'").replace('const tables =', 'const tables: number ='),
    );
    // the local view records the error first; the observed-state row in the database follows it
    const failed = await waitFor(async () => {
      const r = (await getJson(`${t.url}/plugins/powertable`)).body;
      const observed = r.nodes?.some((n: { last_error: { code: string } | null }) => n.last_error?.code);
      return r.last_error?.code && observed ? r : undefined;
    }, 'the compile error to be recorded, locally and in the observed state');
    assert.equal(failed.last_error.code, 'PH_ERR_COMPILE_TYPE');
    assert.match(failed.last_error.message, /powertable\/main\.ts:\d+:\d+/);
    assert.equal(failed.state, 'serving');
    assert.equal(failed.serving.hash, serving.serving.hash);
    assert.equal(failed.artifact_hash, serving.artifact_hash, 'nothing was published');
    assert.ok(
      failed.nodes.some((n: { last_error: { code: string } | null }) => n.last_error?.code === 'PH_ERR_COMPILE_TYPE'),
      'the error is in the observed state',
    );
    assert.equal(await message(t.url), 'edited while serving');
    if (follower) assert.equal(await message(follower.url), 'edited while serving');

    // fixing it rolls out again and clears the error
    writeFileSync(main, original.replace("'PowerTable plugin - GET /hello'", "'fixed'"));
    await waitFor(async () => (await message(t.url)) === 'fixed', 'the fixed answer');
    await waitFor(async () => (await getJson(`${t.url}/plugins/powertable`)).body.last_error === null, 'the error to clear');
    if (follower) await waitFor(async () => (await message(follower!.url)) === 'fixed', 'the other node to serve the fix');
  });

  test('a new plugin directory is discovered, registered and served', async () => {
    writePlugin(plugins.dir, 'newcomer', pluginSource({ name: 'newcomer', version: '0.0.1', route: '/newcomer' }));
    const r = await waitFor(async () => {
      const x = await getJson(`${t.url}/newcomer`);
      return x.status === 200 ? x : undefined;
    }, 'the new plugin to be served');
    assert.deepEqual(r.body, { plugin: 'newcomer', version: '0.0.1' });
    const row = (await getJson(`${t.url}/plugins/newcomer`)).body;
    assert.equal(row.status, 'active');
    assert.equal(row.registered, true);
    if (follower) await waitFor(async () => (await fetch(`${follower!.url}/newcomer`)).status === 200, 'the other node to serve it');
  });
});

describe('watch mode off', () => {
  test('without WATCH, edits are not rolled out', async () => {
    // The same edit is made to the plugin of a host without WATCH and of one with it: once the watching host
    // serves the edit, a watcher of the other would have had every chance to act (both see the change at once)
    const plugins = pluginsDirWithPowertable();
    const watched = pluginsDirWithPowertable();
    const t = await startTestHost({ kind: 'pglite', pluginsDir: plugins.dir });
    const control = await startTestHost({ kind: 'pglite', pluginsDir: watched.dir, env: { WATCH: '1', WATCH_DEBOUNCE_MS: '50' } });
    try {
      assert.equal(t.host.watcher, undefined);
      assert.ok(control.host.watcher);
      for (const dir of [plugins.dir, watched.dir]) {
        const main = path.join(dir, 'powertable', 'main.ts');
        writeFileSync(main, readFileSync(main, 'utf8').replace("'PowerTable plugin - GET /hello'", "'not watched'"));
      }
      await waitFor(async () => (await message(control.url)) === 'not watched', 'the watching host to serve the edit');
      assert.equal(await message(t.url), 'PowerTable plugin - GET /hello');
    } finally {
      await control.close();
      await t.close();
      watched.cleanup();
      plugins.cleanup();
    }
  });
});
