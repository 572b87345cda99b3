import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { onEachDatabase } from './support/databases.js';
import { sqlByHand, startTestHost, type TestHost } from './support/host.js';
import { pluginSource, pluginsDirWithPowertable, writePlugin } from './support/plugin-sources.js';
import { getJson, tempDir, waitFor } from './support/util.js';

const TOKEN = 'admin-secret-1234';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const JSON_AUTH = { ...AUTH, 'content-type': 'application/json' };

function assertProblem(r: { status: number; body: any; headers: Headers }, status: number, code: string): void {
  assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status} ${JSON.stringify(r.body)}`);
  assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/);
  assert.equal(r.body.code, code);
  assert.equal(r.body.status, status);
  assert.equal(typeof r.body.detail, 'string');
}

onEachDatabase('admin API', (db) => {
  let t: TestHost;
  /** A second node without a token: on PostgreSQL it shares the database, so it must follow every admin change. */
  let other: TestHost;
  let plugins: { dir: string; cleanup(): void };
  let outside: { dir: string; cleanup(): void };

  before(async () => {
    plugins = pluginsDirWithPowertable();
    outside = tempDir('ph-outside-');
    t = await startTestHost({ ...db.hostOptions, pluginsDir: plugins.dir, env: { ADMIN_TOKEN: TOKEN } });
    other = await startTestHost({ ...db.hostOptions, pluginsDir: plugins.dir, env: { DISCOVER: '0' } });
  });
  after(async () => {
    await other?.close();
    await t?.close();
    plugins.cleanup();
    outside.cleanup();
  });

  const post = (p: string, body?: unknown, headers: Record<string, string> = AUTH) =>
    getJson(`${t.adminUrl}${p}`, {
      method: 'POST',
      headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
  const hello = async (url = t.url) => (await fetch(`${url}/hello`)).status;

  test('without ADMIN_TOKEN configured, admin routes answer 403 saying how to enable them', async () => {
    const r = await getJson(`${other.adminUrl}/plugins/powertable/disable`, { method: 'POST', headers: AUTH });
    assertProblem(r, 403, 'PH_ERR_ADMIN_DISABLED');
    assert.match(r.body.detail, /ADMIN_TOKEN/);
    assert.equal(await hello(), 200);
  });

  test('missing, wrong and misplaced tokens are refused with 401 and change nothing', async () => {
    const attempts: Record<string, string>[] = [
      {},
      { authorization: 'Bearer wrong-token-xx' },
      { authorization: `Bearer ${TOKEN}x` },
      { authorization: TOKEN },
      { authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}` },
      { 'x-admin-token': TOKEN },
      { cookie: `token=${TOKEN}` },
    ];
    for (const headers of attempts) {
      const r = await post('/plugins/powertable/disable', undefined, headers);
      assertProblem(r, 401, 'PH_ERR_UNAUTHORIZED');
      assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/);
    }
    const q = await post(`/plugins/powertable/disable?token=${TOKEN}`, undefined, {});
    assertProblem(q, 401, 'PH_ERR_UNAUTHORIZED');
    const del = await getJson(`${t.adminUrl}/plugins/powertable`, { method: 'DELETE' });
    assertProblem(del, 401, 'PH_ERR_UNAUTHORIZED');
    const row = await getJson(`${t.url}/plugins/powertable`);
    assert.equal(row.body.status, 'active');
    assert.equal(await hello(), 200);
  });

  test('disable and enable write the row, answer the resulting state, and every node follows', async () => {
    const d = await post('/plugins/powertable/disable');
    assert.equal(d.status, 200);
    assert.equal(d.body.name, 'powertable');
    assert.equal(d.body.status, 'inactive');
    assert.equal(d.body.state, 'unloaded');
    assert.equal(d.body.changed, true);
    assert.equal(d.body.settled, true);
    assert.equal(await hello(), 404);
    if (db.kind === 'postgres') await waitFor(async () => (await hello(other.url)) === 404, 'the other node to unload');

    const again = await post('/plugins/powertable/disable');
    assert.equal(again.status, 200);
    assert.equal(again.body.changed, false);

    const e = await post('/plugins/powertable/enable');
    assert.equal(e.status, 200);
    assert.equal(e.body.status, 'active');
    assert.equal(e.body.state, 'serving');
    assert.equal(e.body.serving.version, '0.1.0');
    assert.equal(await hello(), 200);
    if (db.kind === 'postgres') await waitFor(async () => (await hello(other.url)) === 200, 'the other node to load');
  });

  test('toggle flips the desired status both ways', async () => {
    const off = await post('/plugins/powertable/toggle');
    assert.equal(off.status, 200);
    assert.equal(off.body.status, 'inactive');
    assert.equal(await hello(), 404);
    const on = await post('/plugins/powertable/toggle');
    assert.equal(on.body.status, 'active');
    assert.equal(on.body.state, 'serving');
    assert.equal(await hello(), 200);
  });

  test('reload recompiles from source, bumps the generation and serves the new code everywhere', async () => {
    const before = await getJson(`${t.url}/plugins/powertable`);
    const main = path.join(plugins.dir, 'powertable', 'main.ts');
    const original = readFileSync(main, 'utf8');
    writeFileSync(main, original.replace("'PowerTable plugin - GET /hello'", "'PowerTable reloaded'"));
    try {
      const r = await post('/plugins/powertable/reload');
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.recompiled, true);
      assert.equal(r.body.generation, before.body.generation + 1);
      assert.notEqual(r.body.artifact_hash, before.body.artifact_hash);
      assert.equal(r.body.serving.hash, r.body.artifact_hash);
      assert.equal((await getJson(`${t.url}/hello`)).body.message, 'PowerTable reloaded');
      if (db.kind === 'postgres') {
        await waitFor(async () => (await getJson(`${other.url}/hello`)).body.message === 'PowerTable reloaded', 'the other node to reload');
      }

      // a source that does not compile: 422 naming file:line:column, nothing written, the old version keeps serving
      writeFileSync(main, `${original}\nconst broken: number = ;\n`);
      const bad = await post('/plugins/powertable/reload');
      assertProblem(bad, 422, 'PH_ERR_COMPILE_SYNTAX');
      assert.match(bad.body.detail, /powertable\/main\.ts:\d+:\d+/);
      const after = await getJson(`${t.url}/plugins/powertable`);
      assert.equal(after.body.generation, r.body.generation);
      assert.equal(after.body.artifact_hash, r.body.artifact_hash);
      assert.equal((await getJson(`${t.url}/hello`)).body.message, 'PowerTable reloaded');
    } finally {
      writeFileSync(main, original);
    }
    const back = await post('/plugins/powertable/reload');
    assert.equal(back.status, 200);
    assert.equal(back.body.artifact_hash, before.body.artifact_hash);
    assert.equal((await getJson(`${t.url}/hello`)).body.message, 'PowerTable plugin - GET /hello');
  });

  test('unknown plugins answer 404 and invalid names 400, on every admin route', async () => {
    for (const action of ['enable', 'disable', 'toggle', 'reload']) {
      assertProblem(await post(`/plugins/nope/${action}`), 404, 'PH_ERR_PLUGIN_NOT_FOUND');
      assertProblem(await post(`/plugins/Bad_Name/${action}`), 400, 'PH_ERR_PLUGIN_NAME_INVALID');
      assertProblem(await post(`/plugins/..%2F..%2Fetc/${action}`), 400, 'PH_ERR_PLUGIN_NAME_INVALID');
      assertProblem(await post(`/plugins/-dash/${action}`), 400, 'PH_ERR_PLUGIN_NAME_INVALID');
      assertProblem(await post(`/plugins/${'a'.repeat(65)}/${action}`), 400, 'PH_ERR_PLUGIN_NAME_INVALID');
    }
    assertProblem(await getJson(`${t.adminUrl}/plugins/nope`, { method: 'DELETE', headers: AUTH }), 404, 'PH_ERR_PLUGIN_NOT_FOUND');
    assertProblem(await getJson(`${t.adminUrl}/plugins/UP`, { method: 'DELETE', headers: AUTH }), 400, 'PH_ERR_PLUGIN_NAME_INVALID');
  });

  test('POST /plugins registers a directory inside PLUGINS_DIR and serves it; DELETE removes it', async () => {
    writePlugin(plugins.dir, 'greeter', pluginSource({ name: 'greeter', version: '1.2.3', route: '/greet' }));
    const r = await post('/plugins', { path: 'greeter' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.name, 'greeter');
    assert.equal(r.body.status, 'active');
    assert.equal(r.body.state, 'serving');
    assert.equal(r.body.version, '1.2.3');
    assert.deepEqual((await getJson(`${t.url}/greet`)).body, { plugin: 'greeter', version: '1.2.3' });
    if (db.kind === 'postgres')
      await waitFor(async () => (await fetch(`${other.url}/greet`)).status === 200, 'the other node to load greeter');

    assertProblem(await post('/plugins', { path: 'greeter' }), 409, 'PH_ERR_PLUGIN_EXISTS');
    assertProblem(await post('/plugins', { path: path.join(plugins.dir, 'greeter') }), 409, 'PH_ERR_PLUGIN_EXISTS');

    const del = await getJson(`${t.adminUrl}/plugins/greeter`, { method: 'DELETE', headers: AUTH });
    assert.equal(del.status, 200);
    assert.equal(del.body.registered, false);
    assert.equal(del.body.state, 'unloaded');
    assert.equal((await fetch(`${t.url}/greet`)).status, 404);
    assertProblem(await getJson(`${t.url}/plugins/greeter`), 404, 'PH_ERR_PLUGIN_NOT_FOUND');
    if (db.kind === 'postgres')
      await waitFor(async () => (await fetch(`${other.url}/greet`)).status === 404, 'the other node to unload greeter');

    // registered inactive: nothing serves until enabled
    const inactive = await post('/plugins', { path: 'greeter', status: 'inactive' });
    assert.equal(inactive.status, 201);
    assert.equal(inactive.body.status, 'inactive');
    assert.equal((await fetch(`${t.url}/greet`)).status, 404);
    assert.equal((await getJson(`${t.adminUrl}/plugins/greeter`, { method: 'DELETE', headers: AUTH })).status, 200);
  });

  test('POST /plugins refuses paths that leave PLUGINS_DIR, bad bodies and broken plugins, registering nothing', async () => {
    writePlugin(outside.dir, 'evil', pluginSource({ name: 'evil', version: '1.0.0', route: '/evil' }));
    symlinkSync(path.join(outside.dir, 'evil'), path.join(plugins.dir, 'evil'));
    mkdirSync(path.join(plugins.dir, 'nested', 'deeper'), { recursive: true });
    const registered = async () =>
      (await getJson(`${t.url}/plugins`)).body
        .filter((p: { registered: boolean }) => p.registered)
        .map((p: { name: string }) => p.name)
        .sort();
    const rows = () => sqlByHand(t, db.url, 'SELECT name, status, generation, artifact_hash, updated_at::text FROM plugins ORDER BY name');
    const registeredBefore = await registered();
    const rowsBefore = await rows();
    assert.deepEqual(registeredBefore, ['powertable']);

    for (const p of [
      '../evil',
      '..',
      '.',
      '',
      '/etc',
      '/',
      path.join(outside.dir, 'evil'),
      'nested/deeper',
      'powertable/../../x',
      'a\u0000b',
    ]) {
      const r = await post('/plugins', { path: p });
      if (p === '') assertProblem(r, 400, 'PH_ERR_VALIDATION');
      else assertProblem(r, 400, 'PH_ERR_PLUGIN_PATH_OUTSIDE');
    }
    assertProblem(await post('/plugins', { path: 'evil' }), 400, 'PH_ERR_PLUGIN_PATH_OUTSIDE'); // symlink out
    assertProblem(await post('/plugins', { path: 'missing' }), 422, 'PH_ERR_PLUGIN_NO_ENTRY');
    assertProblem(await post('/plugins', {}), 400, 'PH_ERR_VALIDATION');
    assertProblem(await post('/plugins', { path: 'greeter', extra: 1 }), 400, 'PH_ERR_VALIDATION');
    assertProblem(await post('/plugins', { path: 'greeter', status: 'maybe' }), 400, 'PH_ERR_VALIDATION');
    assertProblem(await post('/plugins', { path: 'greeter', name: 'other' }), 400, 'PH_ERR_BAD_REQUEST');
    assertProblem(await post('/plugins', { path: 42 }), 400, 'PH_ERR_VALIDATION');
    assertProblem(await post('/plugins', '{"path": '), 400, 'PH_ERR_INVALID_JSON');
    assertProblem(await post('/plugins', '[]'), 400, 'PH_ERR_VALIDATION');
    const text = await getJson(`${t.adminUrl}/plugins`, { method: 'POST', headers: { ...AUTH, 'content-type': 'text/xml' }, body: '<a/>' });
    assertProblem(text, 415, 'PH_ERR_UNSUPPORTED_MEDIA_TYPE');

    writePlugin(plugins.dir, 'broken', `export const newPlugin = () => {\n  return 1 +;\n};\n`);
    const broken = await post('/plugins', { path: 'broken' });
    assert.equal(broken.status, 422);
    assert.match(broken.body.code, /^PH_ERR_COMPILE_/);
    assert.match(broken.body.detail, /broken\/main\.ts:\d+:\d+/);

    const big = await post('/plugins', { path: 'x'.repeat(1024 * 1024) });
    assertProblem(big, 413, 'PH_ERR_PAYLOAD_TOO_LARGE');

    assert.deepEqual(await registered(), registeredBefore, 'nothing was registered');
    assert.deepEqual(await rows(), rowsBefore, 'no row was written');
    assert.equal(await hello(), 200);
  });

  test('GET /plugins/:name includes the result of the plugin health check', async () => {
    const r = await getJson(`${t.url}/plugins/powertable`);
    assert.equal(r.status, 200);
    assert.equal(r.body.health.ok, true);
    assert.equal(r.body.health.version, '0.1.0');
    const h = await getJson(`${t.url}/plugins/powertable/health`);
    assert.equal(h.status, 200);
    assert.equal(h.body.ok, true);
    await post('/plugins/powertable/disable');
    assert.equal((await getJson(`${t.url}/plugins/powertable`)).body.health, null);
    assertProblem(await getJson(`${t.url}/plugins/powertable/health`), 409, 'PH_ERR_PLUGIN_NOT_SERVING');
    await post('/plugins/powertable/enable');
  });
});

describe('admin writes go through the database', () => {
  test('a JSON body is not needed on action routes, and the request content type is irrelevant when empty', async () => {
    const plugins = pluginsDirWithPowertable();
    const t = await startTestHost({ kind: 'pglite', pluginsDir: plugins.dir, env: { ADMIN_TOKEN: TOKEN } });
    try {
      const r = await getJson(`${t.adminUrl}/plugins/powertable/disable`, { method: 'POST', headers: JSON_AUTH, body: '{}' });
      assert.equal(r.status, 200);
      const rows = await t.host.db.query<{ status: string }>("SELECT status FROM plugins WHERE name = 'powertable'");
      assert.equal(rows[0]?.status, 'inactive');
      const log = t.logs.find((l) => l.msg === 'plugin powertable set inactive');
      assert.ok(log, 'the admin change is logged');
      assert.equal(log.plugin, 'powertable');
    } finally {
      await t.close();
      plugins.cleanup();
    }
  });
});
