// Blue/green reloads of a real server process under continuous load: 100 reloads with zero failed requests,
// in-flight requests finishing on the version they started on, and reloads to versions that fail to compile,
// throw in initialize or claim another plugin's route, while the old version answers throughout.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import postgres from 'postgres';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { startLoad } from './support/load.js';
import { pluginSource, pluginsDirWithPowertable, writePlugin } from './support/plugin-sources.js';
import { killAllServers, type ServerProcess, startServer } from './support/server-process.js';
import { getJson, tempDir, waitFor } from './support/util.js';

describe('reloads under load', () => {
  let db: TestDatabase;
  let sql: postgres.Sql;
  let plugins: { dir: string; cleanup(): void };
  let data: { dir: string; cleanup(): void };
  let node: ServerProcess;

  const target = async () => (await getJson(`${node.url}/target`)).body as { version: string; instance: string };
  const bump = () => sql`UPDATE plugins SET generation = generation + 1 WHERE name = 'target'`;
  const view = async () => (await getJson(`${node.url}/plugins/target`)).body;

  before(async () => {
    db = await createTestDatabase();
    sql = postgres(db.url, { max: 1, onnotice: () => {} });
    plugins = pluginsDirWithPowertable();
    data = tempDir('ph-data-');
    writePlugin(plugins.dir, 'target', pluginSource({ name: 'target', version: '1.0.0', route: '/target', marked: true, slowMs: 600 }));
    writePlugin(plugins.dir, 'other', pluginSource({ name: 'other', version: '1.0.0', route: '/other', marked: true }));
    node = await startServer({
      name: 'node',
      env: { DATABASE_URL: db.url, PLUGINS_DIR: plugins.dir, DATA_DIR: data.dir, NODE_ID: 'load-node', TYPECHECK: '0', LOG_LEVEL: 'info' },
    });
  });

  after(async () => {
    await killAllServers();
    await sql?.end({ timeout: 1 });
    await db?.drop();
    plugins?.cleanup();
    data?.cleanup();
  });

  test('an in-flight request finishes on the version it started on; that version is cleaned up after it', async () => {
    const old = await target();
    const slow = getJson(`${node.url}/target/slow`);
    await waitFor(
      () => node.findLog((l) => l.instance === old.instance && l.msg === 'slow request started'),
      'the slow request to be in flight',
    );
    await bump();
    const fresh = await waitFor(async () => {
      const b = await target();
      return b.instance !== old.instance ? b : undefined;
    }, 'the new instance to answer');
    assert.ok(
      !node.findLog((l) => l.instance === old.instance && String(l.msg).startsWith('cleaned up')),
      'the old version is not cleaned up while its request runs',
    );
    const r = await slow;
    assert.equal(r.status, 200);
    assert.equal(r.body.instance, old.instance, 'answered by the version it started on');
    await waitFor(
      () => node.findLog((l) => l.instance === old.instance && String(l.msg).startsWith('cleaned up target')),
      'the old version cleaned up after draining',
    );
    assert.notEqual(fresh.instance, old.instance);
  });

  test('100 reloads under continuous load: zero failed requests, zero non-2xx', async (t) => {
    const load = startLoad(`${node.url}/target`, { concurrency: 6, maxMs: 80_000, field: 'instance' });
    await waitFor(() => load.count > 20, 'load running');
    let current = await target();
    const instances = new Set([current.instance]);
    const t0 = performance.now();
    for (let i = 1; i <= 100; i++) {
      // every tenth reload is a new version (a changed source, compiled); the others reload the same artifact
      const version = i % 10 === 0 ? `1.${i / 10}.0` : current.version;
      if (i % 10 === 0)
        writePlugin(plugins.dir, 'target', pluginSource({ name: 'target', version, route: '/target', marked: true, slowMs: 600 }));
      await bump();
      const prev = current.instance;
      current = await waitFor(async () => {
        const b = await target();
        return b.instance !== prev && b.version === version ? b : undefined;
      }, `reload ${i}`);
      instances.add(current.instance);
    }
    const ms = performance.now() - t0;
    const stats = await load.stop();
    t.diagnostic(
      `100 reloads in ${(ms / 1000).toFixed(1)} s under ${stats.requests} requests (${Object.keys(stats.seen).length} instances answered the load): ${JSON.stringify(stats.byStatus)}`,
    );
    assert.equal(instances.size, 101, 'every reload produced a new instance that answered');
    assert.equal(stats.byStatus[0] ?? 0, 0, `no failed requests: ${stats.errors.join('; ')}`);
    assert.equal(stats.non2xx, 0, `no non-2xx: ${JSON.stringify(stats.byStatus)} ${stats.errors.join('; ')}`);
    assert.ok(stats.requests > 500, `the load really ran (${stats.requests} requests)`);
    assert.ok(Object.keys(stats.seen).length > 10, `the load saw many instances (${Object.keys(stats.seen).length})`);
    // every replaced instance ran its cleanup once drained (bounded)
    await waitFor(
      () => node.logs.filter((l) => String(l.msg).startsWith('cleaned up target')).length >= 101,
      'every replaced version cleaned up',
    );
    const v = await view();
    assert.equal(v.state, 'serving');
    assert.equal(v.last_error, null);
    node.logs.length = 0; // keep memory flat for the rest of the file
  });

  test('reloads to a version that fails to compile, throws in initialize, or claims another route: the old one answers throughout', async () => {
    const good = await target();
    const load = startLoad(`${node.url}/target`, { concurrency: 4, maxMs: 60_000, field: 'version' });
    const other = startLoad(`${node.url}/other`, { concurrency: 1, maxMs: 60_000, field: 'version' });
    await waitFor(() => load.count > 20, 'load running');

    // the local view records a failure first; this node's observed-state row in the database follows it
    const failedWith = async (code: string) =>
      waitFor(async () => {
        const v = await view();
        const observed = v.nodes?.find((n: { node_id: string }) => n.node_id === 'load-node');
        return v.last_error?.code === code && observed?.last_error?.code === code ? v : undefined;
      }, `last_error ${code}, locally and in the observed state`);

    // 1. does not compile
    writePlugin(
      plugins.dir,
      'target',
      `import { definePlugin } from 'plugin-host/sdk';\nexport const newPlugin = definePlugin(() => ({ oops`,
    );
    await bump();
    let v = await failedWith('PH_ERR_COMPILE_SYNTAX');
    assert.match(v.last_error.message, /main\.ts:\d+:\d+/, 'names file:line:column');
    assert.equal(v.serving.version, good.version, 'the old version serves');
    assert.equal(v.status, 'active', 'desired status untouched');
    assert.equal((await target()).instance, good.instance);

    // 2. throws in initialize
    writePlugin(
      plugins.dir,
      'target',
      pluginSource({ name: 'target', version: '9.0.0', route: '/target', marked: true, initThrows: 'database of the plugin is gone' }),
    );
    await bump();
    v = await failedWith('PH_ERR_HOOK_FAILED');
    assert.match(v.last_error.message, /initialize\(\) threw: database of the plugin is gone/);
    assert.equal(v.last_error.version, '9.0.0', 'the failed version is named');
    assert.equal(v.serving.version, good.version, 'beside the version that serves');
    const mine = v.nodes.find((n: { node_id: string }) => n.node_id === 'load-node');
    assert.equal(mine.serving_version, good.version);
    assert.equal(mine.failed_version, '9.0.0');
    assert.equal(mine.state, 'serving');
    assert.equal((await target()).instance, good.instance);

    // 3. claims the route of plugin "other"
    writePlugin(
      plugins.dir,
      'target',
      pluginSource({
        name: 'target',
        version: '9.1.0',
        routes: `      server.get('/target', async () => ({ version: '9.1.0', instance: 'conflicting' }));
      server.get('/other', async () => ({ version: 'stolen' }));`,
      }),
    );
    await bump();
    v = await failedWith('PH_ERR_ROUTE_CONFLICT');
    assert.match(v.last_error.message, /target: route GET \/other is already served by plugin "other"/, 'names both plugins');
    assert.equal(v.last_error.version, '9.1.0');
    assert.equal(v.serving.version, good.version);
    assert.equal((await target()).instance, good.instance);
    assert.equal((await getJson(`${node.url}/other`)).body.plugin, 'other', 'the first plugin keeps its route');

    // 4. a good version again
    writePlugin(plugins.dir, 'target', pluginSource({ name: 'target', version: '10.0.0', route: '/target', marked: true }));
    await bump();
    await waitFor(async () => (await target()).version === '10.0.0', 'target 10.0.0');
    v = await view();
    assert.equal(v.last_error, null, 'the error clears once a version loads');

    const s = await load.stop();
    const o = await other.stop();
    assert.equal(s.non2xx + (s.byStatus[0] ?? 0), 0, `target never failed: ${JSON.stringify(s.byStatus)} ${s.errors.join('; ')}`);
    assert.deepEqual(Object.keys(s.seen).sort(), [good.version, '10.0.0'].sort(), 'only the good versions ever answered');
    assert.equal(o.non2xx + (o.byStatus[0] ?? 0), 0, `other never failed: ${JSON.stringify(o.byStatus)}`);
    assert.deepEqual(Object.keys(o.seen), ['1.0.0']);
  });
});
