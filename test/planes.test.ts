// Two listeners, on real server processes and both databases: the data plane serves the plugins, the
// public reads, health and its document, and answers 404 for every control-plane route (a write, the
// console, the feed, metrics) while nothing changes; the control plane holds them. The feed, full,
// answers 503 with Retry-After, an anonymous client takes no slot, and the other routes keep answering.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase, DB_KINDS, type TestDatabase } from './support/databases.js';
import { pluginsDirWithPowertable } from './support/plugin-sources.js';
import { killAllServers, type ServerProcess, startServer } from './support/server-process.js';
import { getJson, tempDir, waitFor } from './support/util.js';

const TOKEN = 'planes-token-1234';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const JSON_AUTH = { ...AUTH, 'content-type': 'application/json' };

/** Every kind of control-plane route, as a hostile client of the data plane would try it (with the token). */
const CONTROL_ROUTES: Array<[method: string, path: string, body?: string]> = [
  ['POST', '/plugins/powertable/disable'],
  ['POST', '/plugins/powertable/toggle'],
  ['POST', '/plugins/powertable/reload'],
  ['POST', '/plugins/powertable/isolation', '{"mode":"worker"}'],
  ['POST', '/plugins', '{"path":"powertable"}'],
  ['DELETE', '/plugins/powertable'],
  ['PUT', '/plugins/powertable/config', '{}'],
  ['GET', '/plugins/powertable/config'],
  ['PUT', '/plugins/powertable/source'],
  ['POST', '/plugins/powertable/rollback', '{"version":"0.1.0"}'],
  ['POST', '/plugins/powertable/rollout', '{"version":"0.1.0"}'],
  ['GET', '/plugins/powertable/versions'],
  ['GET', '/plugins/powertable/errors'],
  ['GET', '/console'],
  ['GET', '/console/app.js'],
  ['GET', '/events'],
  ['HEAD', '/events'],
  ['GET', '/metrics'],
  ['GET', '/cluster'],
];

for (const kind of DB_KINDS) {
  describe(`two planes on ${kind} (server process)`, () => {
    let s: ServerProcess;
    let db: TestDatabase | undefined;
    const temps: Array<{ cleanup(): void }> = [];

    before(async () => {
      const plugins = pluginsDirWithPowertable();
      const data = tempDir('ph-planes-');
      temps.push(plugins, data);
      const env: Record<string, string> = {
        PLUGINS_DIR: plugins.dir,
        DATA_DIR: data.dir,
        ADMIN_TOKEN: TOKEN,
        EVENTS_MAX_PER_TOKEN: '2',
        EVENTS_MAX_STREAMS: '3',
      };
      if (kind === 'postgres') {
        db = await createTestDatabase();
        env.DATABASE_URL = db.url;
      }
      s = await startServer({ name: `planes-${kind}`, env });
    });
    after(async () => {
      await killAllServers();
      await db?.drop();
      for (const t of temps) t.cleanup();
    });

    test('two origins; the control plane on loopback', () => {
      assert.notEqual(new URL(s.url).port, new URL(s.adminUrl).port);
      assert.equal(new URL(s.adminUrl).hostname, '127.0.0.1');
    });

    test('the data plane answers 404 for every control-plane route, and nothing changes', async () => {
      const before = (await getJson(`${s.url}/plugins/powertable`)).body.generation as number;
      for (const [method, path, body] of CONTROL_ROUTES) {
        const r = await getJson(`${s.url}${path}`, {
          method,
          headers: body === undefined ? AUTH : JSON_AUTH,
          ...(body === undefined ? {} : { body }),
        });
        assert.equal(r.status, 404, `${method} ${path} on the data plane: ${r.status}`);
        assert.equal(r.headers.get('allow'), null, `${method} ${path}: no Allow header naming what the other listener does`);
        if (method !== 'HEAD') assert.equal(r.body.code, 'PH_ERR_NOT_FOUND', `${method} ${path}`);
      }
      const row = await getJson(`${s.url}/plugins/powertable`);
      assert.equal(row.body.status, 'active');
      assert.equal(row.body.generation, before, 'no write reached the database');
      assert.equal((await getJson(`${s.url}/hello`)).status, 200);
    });

    test('the data plane still serves the plugins, the seed reads, health and its document', async () => {
      assert.equal((await getJson(`${s.url}/hello`)).body.plugin, 'powertable');
      const list = await getJson(`${s.url}/plugins`);
      assert.equal(list.status, 200);
      assert.ok(Array.isArray(list.body) && list.body.some((p: { name: string }) => p.name === 'powertable'));
      const one = await getJson(`${s.url}/plugins/powertable`);
      assert.equal(one.status, 200);
      assert.equal(one.body.name, 'powertable');
      assert.equal(one.body.state, 'serving');
      assert.equal((await getJson(`${s.url}/plugins/powertable/health`)).status, 200);
      assert.equal((await fetch(`${s.url}/healthz`)).status, 200);
      assert.equal((await fetch(`${s.url}/readyz`)).status, 200);
      const doc = await getJson(`${s.url}/openapi.json`);
      assert.equal(doc.status, 200);
      assert.ok(doc.body.paths['/hello'], 'the plugin routes are documented');
    });

    test('the control plane holds them: a write, the console, metrics', async () => {
      assert.equal((await fetch(`${s.adminUrl}/console`)).status, 200);
      assert.equal((await fetch(`${s.adminUrl}/metrics`)).status, 200);
      assert.equal((await fetch(`${s.adminUrl}/hello`)).status, 404, 'no plugin route on the control plane');
      const before = (await getJson(`${s.adminUrl}/plugins/powertable`)).body.generation as number;
      const r = await getJson(`${s.adminUrl}/plugins/powertable/reload`, { method: 'POST', headers: AUTH });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.generation, before + 1);
    });

    test('the feed: anonymous clients take no slot; full per token, it answers 503 with Retry-After; other routes keep answering', async () => {
      const open: AbortController[] = [];
      const stream = async (headers: Record<string, string>) => {
        const ac = new AbortController();
        const res = await fetch(`${s.adminUrl}/events`, { headers, signal: ac.signal });
        if (res.status === 200) open.push(ac);
        return res;
      };
      try {
        for (let i = 0; i < 20; i++) {
          const anonymous = await stream({});
          assert.equal(anonymous.status, 401, 'an anonymous client is refused before it holds anything');
        }
        assert.equal((await stream({ authorization: 'Bearer not-the-token' })).status, 401);
        assert.equal((await stream(AUTH)).status, 200, 'the operator still gets a stream');
        assert.equal((await stream(AUTH)).status, 200);
        const full = await stream(AUTH);
        assert.equal(full.status, 503);
        assert.equal(full.headers.get('retry-after'), '5');
        const problem = (await full.json()) as { code: string; detail: string };
        assert.equal(problem.code, 'PH_ERR_EVENTS_LIMIT');
        assert.match(problem.detail, /EVENTS_MAX_PER_TOKEN/);
        // the rest of both planes is untouched
        assert.equal((await fetch(`${s.adminUrl}/metrics`)).status, 200);
        assert.equal((await fetch(`${s.adminUrl}/plugins`)).status, 200);
        assert.equal((await fetch(`${s.url}/hello`)).status, 200);
      } finally {
        for (const ac of open) ac.abort();
      }
      await waitFor(async () => {
        const res = await stream(AUTH);
        return res.status === 200 ? true : undefined;
      }, 'a slot freed once a stream closed');
      for (const ac of open) ac.abort();
    });
  });
}
