import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { onEachDatabase } from './support/databases.js';
import { sqlByHand, startTestHost, type TestHost } from './support/host.js';
import { pluginSource, pluginsDirWithPowertable, writePlugin } from './support/plugin-sources.js';
import { getJson, waitFor } from './support/util.js';

// The original host's example flow, then live row changes made by hand, on both databases.
onEachDatabase('seed lifecycle', (db) => {
  let t: TestHost;
  let plugins: { dir: string; cleanup(): void };

  before(async () => {
    plugins = pluginsDirWithPowertable();
    t = await startTestHost({ ...db.hostOptions, pluginsDir: plugins.dir });
  });
  after(async () => {
    await t?.close();
    plugins.cleanup();
  });

  test('GET /plugins lists powertable as active with the seed field names', async () => {
    const { status, body } = await getJson(`${t.url}/plugins`);
    assert.equal(status, 200);
    assert.ok(Array.isArray(body));
    const p = body.find((x: { name: string }) => x.name === 'powertable');
    assert.ok(p, 'powertable is listed');
    for (const field of [
      'id',
      'name',
      'description',
      'version',
      'author',
      'type',
      'path',
      'status',
      'endpoints',
      'binary_path',
      'source_path',
      'created_at',
      'updated_at',
    ]) {
      assert.ok(field in p, `field ${field}`);
    }
    assert.equal(p.status, 'active');
    assert.equal(p.type, 'dynamic');
    assert.equal(p.version, '0.1.0');
    assert.equal(p.state, 'serving');
    assert.deepEqual(
      p.endpoints.map((e: { method: string; path: string }) => `${e.method} ${e.path}`),
      ['GET /hello'],
    );
    const filtered = await getJson(`${t.url}/plugins?status=inactive`);
    assert.deepEqual(filtered.body, []);
  });

  test('GET /hello answers with the seed body', async () => {
    const { status, body } = await getJson(`${t.url}/hello`);
    assert.equal(status, 200);
    assert.deepEqual(body, { message: 'PowerTable plugin - GET /hello', plugin: 'powertable', version: '0.1.0', tables: ['hello'] });
  });

  test('GET /plugins/:name answers one plugin or a 404 problem', async () => {
    const one = await getJson(`${t.url}/plugins/powertable`);
    assert.equal(one.status, 200);
    assert.equal(one.body.name, 'powertable');
    assert.equal(one.body.serving.version, '0.1.0');
    assert.ok(Array.isArray(one.body.nodes) && one.body.nodes.length === 1, 'this node reports its view');
    const missing = await getJson(`${t.url}/plugins/nope`);
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get('content-type'), 'application/problem+json; charset=utf-8');
    assert.equal(missing.body.code, 'PH_ERR_PLUGIN_NOT_FOUND');
    assert.equal(missing.body.status, 404);
  });

  test('UPDATE to inactive unloads, back to active loads again', async () => {
    await sqlByHand(t, db.url, "UPDATE plugins SET status = 'inactive' WHERE name = 'powertable'");
    await waitFor(async () => (await fetch(`${t.url}/hello`)).status === 404, '/hello to be gone');
    const p = await getJson(`${t.url}/plugins/powertable`);
    assert.equal(p.body.status, 'inactive');
    assert.equal(p.body.state, 'unloaded');
    await sqlByHand(t, db.url, "UPDATE plugins SET status = 'active' WHERE name = 'powertable'");
    await waitFor(async () => (await fetch(`${t.url}/hello`)).status === 200, '/hello to be back');
  });

  test('INSERT of a new plugin row serves it; DELETE removes it', async () => {
    const dir = writePlugin(plugins.dir, 'greeter', pluginSource({ name: 'greeter', version: '2.0.0', route: '/greet' }));
    await sqlByHand(t, db.url, 'INSERT INTO plugins (id, name, type, path, source_path, status) VALUES ($1, $2, $3, $4, $4, $5)', [
      randomUUID(),
      'greeter',
      'dynamic',
      dir,
      'active',
    ]);
    const res = await waitFor(async () => {
      const r = await getJson(`${t.url}/greet`);
      return r.status === 200 ? r : undefined;
    }, '/greet to be served');
    assert.deepEqual(res.body, { plugin: 'greeter', version: '2.0.0' });
    // the node that compiled it published metadata and endpoints
    const row = await waitFor(async () => {
      const r = await getJson(`${t.url}/plugins/greeter`);
      return r.body.version === '2.0.0' && r.body.artifact_hash ? r.body : undefined;
    }, 'greeter metadata to be published');
    assert.deepEqual(
      row.endpoints.map((e: { method: string; path: string }) => `${e.method} ${e.path}`),
      ['GET /greet'],
    );
    await sqlByHand(t, db.url, "DELETE FROM plugins WHERE name = 'greeter'");
    await waitFor(async () => (await fetch(`${t.url}/greet`)).status === 404, '/greet to be gone');
    assert.equal((await getJson(`${t.url}/plugins/greeter`)).status, 404);
    assert.equal((await fetch(`${t.url}/hello`)).status, 200, 'powertable unaffected');
  });
});
