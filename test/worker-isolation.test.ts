// Worker isolation against real server processes: a plugin that spins, exits, exhausts its heap, hangs in
// initialize or crashes in a loop takes down only its own worker; every other plugin keeps serving.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { onEachDatabase } from './support/databases.js';
import { startLoad } from './support/load.js';
import { pluginSource, pluginsDirWithPowertable, writePlugin } from './support/plugin-sources.js';
import { killAllServers, type ServerProcess, startServer } from './support/server-process.js';
import { getJson, tempDir, waitFor } from './support/util.js';

const TOKEN = 'worker-isolation-token';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const AUTH_JSON = { ...AUTH, 'content-type': 'application/json' };
const REQUEST_TIMEOUT_MS = 4000;
const STALL_MS = 1500;

/** A worker plugin whose routes do what `routes` says (source text of `registerRoutes`' body). */
function misbehaving(name: string, routes: string, extra: { initialize?: string; version?: string } = {}): string {
  return pluginSource({
    name,
    version: extra.version ?? '1.0.0',
    endpoints: null,
    routes,
    ...(extra.initialize ? { initialize: extra.initialize } : {}),
  });
}

onEachDatabase('worker isolation (server process)', (db) => {
  let s: ServerProcess;
  let plugins: { dir: string; cleanup(): void };
  let data: { dir: string; cleanup(): void };

  before(async () => {
    plugins = pluginsDirWithPowertable();
    data = tempDir('ph-data-');
    writePlugin(
      plugins.dir,
      'spin',
      misbehaving(
        'spin',
        `      server.get('/spin/loop', async () => { for (;;) {} });
      server.get('/spin/ok', async () => ({ ok: true }));`,
      ),
    );
    writePlugin(
      plugins.dir,
      'quitter',
      misbehaving(
        'quitter',
        `      server.get('/quit', async () => { process.exit(3); });\n      server.get('/quit/ok', async () => ({ ok: true }));`,
      ),
    );
    writePlugin(
      plugins.dir,
      'hog',
      misbehaving(
        'hog',
        `      server.get('/hog', async () => { const keep = []; for (;;) keep.push(new Array(4e6).fill(Math.random())); });
      server.get('/hog/ok', async () => ({ ok: true }));`,
      ),
    );
    writePlugin(
      plugins.dir,
      'peek',
      misbehaving(
        'peek',
        `      server.get('/peek', async () => ({ admin: process.env.ADMIN_TOKEN ?? null, db: process.env.DATABASE_URL ?? null, pgpassword: process.env.PGPASSWORD ?? null }));`,
      ),
    );
    writePlugin(
      plugins.dir,
      'echo',
      misbehaving(
        'echo',
        `      server.post('/echo', async (req, reply) => reply.type(req.headers['content-type'] ?? 'application/octet-stream').send(req.body));
      server.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));`,
      ),
    );
    s = await startServer({
      name: `workers-${db.kind}`,
      // six plugins, each starting a worker thread of its own
      readyTimeoutMs: 120_000,
      env: {
        PLUGINS_DIR: plugins.dir,
        DATA_DIR: data.dir,
        ADMIN_TOKEN: TOKEN,
        PGPASSWORD: 'not-for-plugins',
        PLUGIN_ISOLATION: 'worker',
        PLUGIN_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
        PLUGIN_STALL_TIMEOUT_MS: String(STALL_MS),
        PLUGIN_MEMORY_MB: '64',
        PLUGIN_CRASH_LIMIT: '4',
        HOOK_TIMEOUT_MS: '1500',
        ...(db.url === undefined ? {} : { DATABASE_URL: db.url }),
      },
    });
  });
  after(async () => {
    await killAllServers();
    plugins?.cleanup();
    data?.cleanup();
  });

  const get = (p: string) => getJson(`${s.url}${p}`);

  test('every plugin runs in a worker of its own, and says so', async () => {
    const p = (await get('/plugins/powertable')).body;
    assert.equal(p.state, 'serving');
    assert.equal(p.serving.isolation, 'worker');
    assert.equal(p.serving.runtime.state, 'up');
    assert.equal(p.nodes[0].isolation, 'worker');
    assert.equal((await get('/hello')).body.plugin, 'powertable');
  });

  test('request and answer cross the thread boundary intact: JSON, binary, HEAD, 404, a body over the limit', async () => {
    const json = await getJson(`${s.url}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":[1,2,3]}' });
    assert.deepEqual(json.body, { a: [1, 2, 3] });
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const bin = await fetch(`${s.url}/echo`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: bytes });
    assert.equal(bin.status, 200);
    assert.deepEqual(Buffer.from(await bin.arrayBuffer()), bytes);
    const head = await fetch(`${s.url}/hello`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
    const big = await fetch(`${s.url}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: Buffer.alloc(2 * 1024 * 1024),
    });
    assert.equal(big.status, 413);
    assert.equal(((await big.json()) as { code: string }).code, 'PH_ERR_PAYLOAD_TOO_LARGE');
    const missing = await get('/spin/nothing');
    assert.equal(missing.status, 404);
  });

  test("a worker plugin reads none of the host's secrets", async () => {
    assert.deepEqual((await get('/peek')).body, { admin: null, db: null, pgpassword: null });
  });

  test('a handler spinning forever: others are served meanwhile, it gets a 5xx, the plugin serves again after a restart', async () => {
    let settled = false;
    const spinning = fetch(`${s.url}/spin/loop`).then(async (r) => {
      settled = true;
      return { status: r.status, body: (await r.json()) as { code: string } };
    });
    // the serving thread is free: other plugins answer while the spin goes on
    for (let i = 0; i < 5; i++) assert.equal((await get('/hello')).status, 200);
    assert.equal(settled, false, 'answered before the spinning request');
    const r = await spinning;
    assert.ok(r.status === 503 || r.status === 504, `status ${r.status}`);
    assert.ok(['PH_ERR_PLUGIN_UNAVAILABLE', 'PH_ERR_PLUGIN_TIMEOUT'].includes(r.body.code), r.body.code);
    await s.waitForLog((l) => l.plugin === 'spin' && l.reason === 'stall', 'the stall detector to end the worker');
    const ok = await waitFor(async () => {
      const x = await get('/spin/ok');
      return x.status === 200 ? x : undefined;
    }, 'spin to serve again after its restart');
    assert.deepEqual(ok.body, { ok: true });
    const p = (await get('/plugins/spin')).body;
    assert.equal(p.state, 'serving');
    assert.ok(p.serving.runtime.restarts >= 1);
  });

  test('process.exit() in a handler ends only that worker; while it restarts its routes answer 503 with Retry-After', async () => {
    const r = await get('/quit');
    assert.equal(r.status, 503);
    assert.equal(r.body.code, 'PH_ERR_PLUGIN_UNAVAILABLE');
    const during = await get('/quit/ok');
    if (during.status === 503) assert.ok(Number(during.headers.get('retry-after')) >= 1, 'Retry-After while restarting');
    await waitFor(async () => (await get('/quit/ok')).status === 200, 'quitter to serve again');
    assert.equal((await get('/hello')).status, 200);
    assert.ok(s.findLog((l) => l.plugin === 'quitter' && l.reason === 'exit'));
  });

  test('an allocation loop over PLUGIN_MEMORY_MB ends only that worker', async () => {
    const r = await get('/hog');
    assert.equal(r.status, 503);
    await s.waitForLog((l) => l.plugin === 'hog' && l.reason === 'memory', 'the heap cap to end the worker');
    await waitFor(async () => (await get('/hog/ok')).status === 200, 'hog to serve again');
    assert.equal((await get('/hello')).status, 200);
    const metrics = await (await fetch(`${s.adminUrl}/metrics`)).text();
    assert.match(metrics, /plugin_host_worker_restarts_total\{plugin="hog",reason="memory"\} [1-9]/);
  });

  test('an initialize that never returns: the worker is ended, the old version keeps serving', async () => {
    writePlugin(
      plugins.dir,
      'spin',
      misbehaving('spin', "      server.get('/spin/ok', async () => ({ ok: 2 }));", { version: '2.0.0', initialize: '      for (;;) {}' }),
    );
    const r = await getJson(`${s.adminUrl}/plugins/spin/reload`, { method: 'POST', headers: AUTH });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const p = await waitFor(async () => {
      const b = (await get('/plugins/spin')).body;
      return b.last_error !== null ? b : undefined;
    }, 'the reload to fail');
    assert.equal(p.state, 'serving');
    assert.equal(p.serving.version, '1.0.0');
    assert.equal(p.last_error.code, 'PH_ERR_HOOK_TIMEOUT');
    assert.match(p.last_error.message, /did not return within \d+ ms; its worker was ended/);
    assert.deepEqual((await get('/spin/ok')).body, { ok: true }, 'the old version answers');
  });

  test('a crash loop stops the restarts: the plugin is in error with the reason until its desired state changes', async () => {
    writePlugin(
      plugins.dir,
      'crasher',
      misbehaving('crasher', "      server.get('/crasher', async () => ({ up: true }));", {
        initialize: '      setTimeout(() => process.exit(7), 100);',
      }),
    );
    const reg = await getJson(`${s.adminUrl}/plugins`, { method: 'POST', headers: AUTH_JSON, body: JSON.stringify({ path: 'crasher' }) });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    const p = await waitFor(async () => {
      const b = (await get('/plugins/crasher')).body;
      return b.state === 'error' ? b : undefined;
    }, 'crasher to be in error after its crash loop');
    assert.equal(p.last_error.code, 'PH_ERR_PLUGIN_CRASHED');
    assert.match(p.last_error.message, /ended 4 times within \d+ ms \(last: exited with code 7\); not restarted/);
    assert.equal((await get('/crasher')).status, 404, 'its routes are gone');
    assert.equal((await get('/hello')).status, 200);
    const metrics = await (await fetch(`${s.adminUrl}/metrics`)).text();
    assert.match(metrics, /plugin_host_worker_restarts_total\{plugin="crasher",reason="exit"\} [1-9]/);
    // a change of desired state tries again
    writePlugin(
      plugins.dir,
      'crasher',
      misbehaving('crasher', "      server.get('/crasher', async () => ({ up: true }));", { version: '1.0.1' }),
    );
    assert.equal((await getJson(`${s.adminUrl}/plugins/crasher/reload`, { method: 'POST', headers: AUTH })).status, 200);
    await waitFor(async () => (await get('/crasher')).status === 200, 'the fixed crasher to serve');
  });

  test('switching a plugin between modes under load: every request answered', async () => {
    const load = startLoad(`${s.url}/hello`, { concurrency: 4 });
    await waitFor(() => load.count > 20, 'load to start');
    for (const mode of ['inline', 'worker', 'inline', null]) {
      const r = await getJson(`${s.adminUrl}/plugins/powertable/isolation`, {
        method: 'POST',
        headers: AUTH_JSON,
        body: JSON.stringify({ mode }),
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.isolation, mode);
      assert.equal(r.body.serving.isolation, mode ?? 'worker');
    }
    const stats = await load.stop();
    assert.equal(stats.non2xx, 0, stats.errors.join('\n'));
    assert.equal(stats.byStatus[0] ?? 0, 0, stats.errors.join('\n'));
  });

  test('20 reloads of a worker plugin under continuous load: zero failed requests', async () => {
    const load = startLoad(`${s.url}/hello`, { concurrency: 4 });
    await waitFor(() => load.count > 20, 'load to start');
    for (let i = 0; i < 20; i++) {
      const r = await getJson(`${s.adminUrl}/plugins/powertable/reload`, { method: 'POST', headers: AUTH });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.serving.isolation, 'worker');
    }
    const stats = await load.stop();
    assert.equal(stats.non2xx, 0, stats.errors.join('\n'));
    assert.equal(stats.byStatus[0] ?? 0, 0, stats.errors.join('\n'));
    assert.ok(stats.requests > 20);
  });
});
