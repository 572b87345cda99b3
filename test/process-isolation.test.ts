// Process isolation against real server processes: a hostile probe plugin running in a process of its own tries
// to read another plugin's bundle, the artifacts, /etc/passwd and the host's environment, to write, spawn, start a
// worker and signal the host; each is refused. Memory past the cap, a spin and a stalled stream end only that
// plugin's process or request; switching between all three modes and reloading under load fail no request.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { packDir } from './support/archives.js';
import { onEachDatabase } from './support/databases.js';
import { startLoad } from './support/load.js';
import { pluginSource, pluginsDirWithPowertable, writePlugin } from './support/plugin-sources.js';
import { killAllServers, type ServerProcess, startServer } from './support/server-process.js';
import { getJson, tempDir, waitFor } from './support/util.js';

const TOKEN = 'process-isolation-token';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const AUTH_JSON = { ...AUTH, 'content-type': 'application/json' };
const MEMORY_MB = 256;
const MB = 1024 * 1024;

const plugin = (name: string, routes: string, head = '') => pluginSource({ name, endpoints: null, routes, ...(head ? { head } : {}) });

function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
}

onEachDatabase('process isolation (server process)', (db) => {
  let s: ServerProcess;
  let plugins: { dir: string; cleanup(): void };
  let data: { dir: string; cleanup(): void };

  before(async () => {
    plugins = pluginsDirWithPowertable();
    data = tempDir('ph-data-');
    writePlugin(
      plugins.dir,
      'probe',
      plugin(
        'probe',
        `      const attempt = (fn: () => unknown) => { try { const v = fn(); return { refused: null, value: v === undefined ? null : String(v).slice(0, 40) }; } catch (err) { return { refused: (err as { code?: string }).code ?? String(err) }; } };
      const q = (req: { query: unknown }) => String((req.query as { p: string }).p);
      server.get('/probe/who', async () => ({ pid: process.pid, ppid: process.ppid, uid: process.getuid?.() ?? null, env: { ...process.env } }));
      server.get('/probe/read', async (req) => attempt(() => fs.readFileSync(q(req), 'utf8')));
      server.get('/probe/list', async (req) => attempt(() => fs.readdirSync(q(req)).join(',')));
      server.get('/probe/write', async (req) => attempt(() => fs.writeFileSync(q(req), 'owned')));
      server.get('/probe/require', async (req) => { const r = require; return attempt(() => r(q(req))); });
      server.get('/probe/signal', async (req) => attempt(() => process.kill(Number(q(req)), 'SIGTERM')));
      server.get('/probe/connect', async (req) => new Promise((resolve) => {
        const sock = net.connect(Number(q(req)), '127.0.0.1');
        sock.once('connect', () => { sock.destroy(); resolve({ connected: true }); });
        sock.once('error', (err) => resolve({ connected: false, code: (err as { code?: string }).code }));
      }));
      server.get('/probe/buffers', async () => { for (let i = 0; i < 1536; i++) kept.push(Buffer.alloc(MB, 1)); return { held: kept.length }; });
      server.get('/probe/spin', async () => { for (;;) {} });
      server.get('/probe/stream', async () => {
        const chunk = Buffer.alloc(64 * 1024, 120);
        let sent = 0;
        return new Readable({ read() { if (sent >= 64 * MB) { this.push(null); return; } sent += chunk.length; produced += chunk.length; this.push(chunk); } });
      });
      server.get('/probe/produced', async () => ({ produced }));
      server.get('/probe/exit', async () => { process.exit(3); });
      server.get('/probe/badhead', async (_req, reply) => { reply.raw.setHeader('x-evil', 'a\\r\\nset-cookie: admin=1'); return 'x'; });
      server.get('/probe/ok', async () => ({ ok: true }));`,
        `import fs from 'node:fs';
import net from 'node:net';
import { Readable } from 'node:stream';
const MB = 1024 * 1024;
const kept: Buffer[] = [];
let produced = 0;`,
      ),
    );
    writePlugin(
      plugins.dir,
      'neighbour',
      pluginSource({ name: 'neighbour', factory: "  process.env.NEIGHBOUR_SECRET = 'neighbour-only';" }),
    );
    s = await startServer({
      name: `process-isolation-${db.kind}`,
      readyTimeoutMs: 120_000,
      env: {
        PLUGINS_DIR: plugins.dir,
        DATA_DIR: data.dir,
        ADMIN_TOKEN: TOKEN,
        PGPASSWORD: 'not-for-plugins',
        PLUGIN_ISOLATION: 'process',
        PLUGIN_REQUEST_TIMEOUT_MS: '3000',
        PLUGIN_STALL_TIMEOUT_MS: '1500',
        PLUGIN_MEMORY_MB: String(MEMORY_MB),
        PLUGIN_CRASH_LIMIT: '10',
        UPLOAD_ISOLATION: 'process',
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
  const q = encodeURIComponent;

  test('the plugin runs in a process of its own, as another user, with an empty environment', async () => {
    const p = (await get('/plugins/probe')).body;
    assert.equal(p.serving.isolation, 'process');
    const who = (await get('/probe/who')).body;
    assert.notEqual(who.pid, s.pid);
    assert.equal(who.ppid, s.pid);
    if (process.getuid?.() === 0) assert.equal(who.uid, 65534, 'nobody');
    assert.deepEqual(who.env, {}, "none of ADMIN_TOKEN, DATABASE_URL, PGPASSWORD or another plugin's variables");
    assert.equal((await get('/neighbour')).status, 200);
  });

  test("file system: another plugin's bundle, the artifacts, the data directory and /etc/passwd are unreadable; nothing is writable", async () => {
    const neighbour = (await get('/plugins/neighbour')).body.binary_path as string;
    assert.ok(neighbour.startsWith(data.dir), neighbour);
    for (const file of [neighbour, '/etc/passwd', path.join(plugins.dir, 'neighbour', 'main.ts')]) {
      assert.equal((await get(`/probe/read?p=${q(file)}`)).body.refused, 'ERR_ACCESS_DENIED', file);
    }
    for (const dir of [path.dirname(neighbour), data.dir, '/']) {
      assert.equal((await get(`/probe/list?p=${q(dir)}`)).body.refused, 'ERR_ACCESS_DENIED', dir);
    }
    for (const file of ['/tmp/ph-owned', path.join(data.dir, 'owned')]) {
      assert.equal((await get(`/probe/write?p=${q(file)}`)).body.refused, 'ERR_ACCESS_DENIED', file);
    }
  });

  test('processes, workers, addons and the inspector are refused; the host cannot be signalled', async () => {
    for (const m of ['node:child_process', 'node:worker_threads', 'node:cluster', 'node:inspector', '/tmp/addon.node']) {
      assert.equal((await get(`/probe/require?p=${q(m)}`)).body.refused, 'PH_ERR_LOAD_FORBIDDEN_MODULE', m);
    }
    const signalled = (await get(`/probe/signal?p=${s.pid}`)).body;
    if (process.getuid?.() === 0) assert.equal(signalled.refused, 'EPERM');
    assert.equal(s.exit, undefined, 'the host is alive');
    assert.equal((await get('/hello')).status, 200);
  });

  test('network egress stays open (Node 20 has no network permission): documented, measured', async () => {
    const port = Number(new URL(s.url).port);
    assert.deepEqual((await get(`/probe/connect?p=${port}`)).body, { connected: true });
  });

  test('a streamed answer flows with backpressure over the IPC channel', async () => {
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http
        .get(`${s.url}/probe/stream`, (r) => {
          r.pause();
          resolve(r);
        })
        .on('error', reject);
    });
    let last = -1;
    let same = 0;
    await waitFor(
      async () => {
        const now = (await get('/probe/produced')).body.produced as number;
        same = now === last && now > 0 ? same + 1 : 0;
        last = now;
        return same >= 5;
      },
      'the plugin to stop producing',
      30_000,
      100,
    );
    assert.ok(last < 32 * MB, `produced ${last} bytes for a client that read nothing`);
    let received = 0;
    res.on('data', (c: Buffer) => {
      received += c.length;
    });
    res.resume();
    await new Promise((r) => res.on('end', r));
    assert.equal(received, 64 * MB);
  });

  test('1.5 GB of Buffers with a 256 MB cap: a 5xx, the host flat, another plugin answering throughout, then a restart', async () => {
    const hostBefore = rssOf(s.pid);
    const load = startLoad(`${s.url}/hello`, { concurrency: 2 });
    await waitFor(() => load.count > 5, 'load to start');
    const r = await get('/probe/buffers');
    assert.ok(r.status >= 500, `status ${r.status}`);
    assert.equal(r.body.code, 'PH_ERR_PLUGIN_UNAVAILABLE');
    await s.waitForLog((l) => l.plugin === 'probe' && l.reason === 'memory', 'the memory cap to end the process');
    await waitFor(async () => (await get('/probe/ok')).status === 200, 'probe to serve again');
    const stats = await load.stop();
    assert.equal(stats.non2xx, 0, stats.errors.join('\n'));
    assert.equal(stats.byStatus[0] ?? 0, 0, stats.errors.join('\n'));
    assert.ok(rssOf(s.pid) < hostBefore + 128 * MB, `host ${Math.round(rssOf(s.pid) / MB)} MB, ${Math.round(hostBefore / MB)} MB before`);
    const metrics = await (await fetch(`${s.adminUrl}/metrics`)).text();
    assert.match(metrics, /plugin_host_worker_restarts_total\{plugin="probe",reason="memory"\} [1-9]/);
  });

  test('a handler spinning forever: a 5xx, the stall detector ends the process, it serves again', async () => {
    const r = await get('/probe/spin');
    assert.ok(r.status === 503 || r.status === 504, `status ${r.status}`);
    await s.waitForLog((l) => l.plugin === 'probe' && l.reason === 'stall', 'the stall detector to end the process');
    await waitFor(async () => (await get('/probe/ok')).status === 200, 'probe to serve again');
    assert.equal((await get('/hello')).status, 200);
  });

  test('a header HTTP forbids is a 502 for that request only; process.exit() ends only the process, restarted', async () => {
    const bad = await get('/probe/badhead');
    assert.equal(bad.status, 502);
    assert.equal(bad.body.code, 'PH_ERR_PLUGIN_BAD_ANSWER');
    assert.equal(bad.headers.get('set-cookie'), null);
    assert.equal((await get('/probe/ok')).status, 200);
    const r = await get('/probe/exit');
    assert.equal(r.status, 503);
    assert.equal(r.body.code, 'PH_ERR_PLUGIN_UNAVAILABLE');
    await waitFor(async () => (await get('/probe/ok')).status === 200, 'probe to serve again');
    assert.ok(s.findLog((l) => l.plugin === 'probe' && l.reason === 'exit'));
    assert.equal((await get('/hello')).status, 200);
  });

  test('switching inline → worker → process → inline under load: every request answered', async () => {
    const load = startLoad(`${s.url}/hello`, { concurrency: 4 });
    await waitFor(() => load.count > 20, 'load to start');
    for (const mode of ['inline', 'worker', 'process', 'inline', null]) {
      const r = await getJson(`${s.adminUrl}/plugins/powertable/isolation`, {
        method: 'POST',
        headers: AUTH_JSON,
        body: JSON.stringify({ mode }),
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.serving.isolation, mode ?? 'process');
    }
    const stats = await load.stop();
    assert.equal(stats.non2xx, 0, stats.errors.join('\n'));
    assert.equal(stats.byStatus[0] ?? 0, 0, stats.errors.join('\n'));
  });

  test('20 reloads of a process plugin under continuous load: zero failed requests', async () => {
    const load = startLoad(`${s.url}/hello`, { concurrency: 4 });
    await waitFor(() => load.count > 20, 'load to start');
    for (let i = 0; i < 20; i++) {
      const r = await getJson(`${s.adminUrl}/plugins/powertable/reload`, { method: 'POST', headers: AUTH });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.serving.isolation, 'process');
    }
    const stats = await load.stop();
    assert.equal(stats.non2xx, 0, stats.errors.join('\n'));
    assert.equal(stats.byStatus[0] ?? 0, 0, stats.errors.join('\n'));
  });

  test('UPLOAD_ISOLATION=process: an uploaded plugin asked to run inline still runs in a process', async () => {
    const work = tempDir('ph-upload-');
    try {
      const dir = writePlugin(work.dir, 'uploaded', pluginSource({ name: 'uploaded' }));
      const put = await getJson(`${s.adminUrl}/plugins/uploaded/source`, {
        method: 'PUT',
        headers: { ...AUTH, 'content-type': 'application/gzip' },
        body: await packDir(dir),
      });
      assert.equal(put.status, 201, JSON.stringify(put.body));
      await waitFor(async () => (await get('/uploaded')).status === 200, 'the upload to serve');
      for (const mode of ['inline', 'worker']) {
        const r = await getJson(`${s.adminUrl}/plugins/uploaded/isolation`, {
          method: 'POST',
          headers: AUTH_JSON,
          body: JSON.stringify({ mode }),
        });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.equal(r.body.isolation, mode, 'the row says what the operator asked');
        assert.equal(r.body.serving.isolation, 'process', 'the upload policy wins');
      }
      assert.equal((await get('/uploaded')).status, 200);
    } finally {
      work.cleanup();
    }
  });

  test('an unknown isolation mode is refused, nothing changes', async () => {
    const r = await getJson(`${s.adminUrl}/plugins/powertable/isolation`, {
      method: 'POST',
      headers: AUTH_JSON,
      body: JSON.stringify({ mode: 'vm' }),
    });
    assert.equal(r.status, 400);
    assert.equal((await get('/plugins/powertable')).body.serving.isolation, 'process');
  });
});
