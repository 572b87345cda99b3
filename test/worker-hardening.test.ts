// Worker hardening against real server processes: a hostile worker plugin tries the short escapes (the
// inspector, child processes, cluster, nested workers, native addons, internal bindings), answers with headers
// HTTP forbids, streams to a client that does not read, stalls a stream, and holds gigabytes of Buffers. Each is
// refused or ended with a coded answer for that request or that worker alone; the host goes on serving.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { onEachDatabase } from './support/databases.js';
import { pluginSource, pluginsDirWithPowertable, writePlugin } from './support/plugin-sources.js';
import { killAllServers, type ServerProcess, startServer } from './support/server-process.js';
import { getJson, tempDir, waitFor } from './support/util.js';

const TOKEN = 'worker-hardening-token';
const REQUEST_TIMEOUT_MS = 2000;
const MEMORY_MB = 128;
const MB = 1024 * 1024;

/** Modules whose import refuses the load, each in a plugin of its own. */
const FORBIDDEN = ['node:inspector', 'node:child_process', 'node:cluster', 'node:worker_threads'];

const plugin = (name: string, routes: string, head = '') => pluginSource({ name, endpoints: null, routes, ...(head ? { head } : {}) });

/** Resident memory of a process, now and at its peak (`VmRSS`, `VmHWM` of /proc/<pid>/status), in bytes. */
function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

/** Starts a GET whose body the test reads only when it says so. */
function pausedGet(url: string): Promise<{ res: http.IncomingMessage; req: http.ClientRequest }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      res.pause();
      resolve({ res, req });
    });
    req.on('error', reject);
  });
}

onEachDatabase('worker hardening (server process)', (db) => {
  let s: ServerProcess;
  let plugins: { dir: string; cleanup(): void };
  let data: { dir: string; cleanup(): void };

  before(async () => {
    plugins = pluginsDirWithPowertable();
    data = tempDir('ph-data-');
    FORBIDDEN.forEach((m, i) => {
      writePlugin(
        plugins.dir,
        `escape${i}`,
        plugin(`escape${i}`, `      server.get('/escape${i}', async () => typeof mod);`, `import * as mod from '${m}';`),
      );
    });
    writePlugin(
      plugins.dir,
      'prober',
      plugin(
        'prober',
        `      const attempt = (fn: () => unknown) => { try { fn(); return { refused: null }; } catch (err) { return { refused: (err as { code?: string }).code ?? String(err) }; } };
      server.get('/prober/require', async (req) => {
        const r = require;
        return attempt(() => r(String((req.query as { m: string }).m)));
      });
      server.get('/prober/binding', async () => attempt(() => (process as unknown as { binding(n: string): unknown }).binding('spawn_sync')));
      server.get('/prober/linked', async () => attempt(() => (process as unknown as { _linkedBinding(n: string): unknown })._linkedBinding('x')));
      server.get('/prober/dlopen', async () => attempt(() => process.dlopen({ exports: {} } as never, '/nonexistent/addon.node')));
      server.get('/prober/ok', async () => ({ ok: true }));`,
      ),
    );
    writePlugin(
      plugins.dir,
      'badhead',
      plugin(
        'badhead',
        `      server.get('/badhead/newline', async (_req, reply) => { reply.raw.setHeader('x-evil', 'a\\r\\nset-cookie: admin=1'); return 'x'; });
      server.get('/badhead/name', async (_req, reply) => { reply.raw.setHeader('bad name', '1'); return 'x'; });
      server.get('/badhead/stream', async (_req, reply) => {
        const { Readable } = await import('node:stream');
        reply.raw.setHeader('x-evil', 'a\\nb');
        return reply.send(Readable.from((async function* () { yield 'a'; await new Promise((r) => setTimeout(r, 20)); yield 'b'; })()));
      });
      server.get('/badhead/ok', async () => ({ ok: true }));`,
      ),
    );
    writePlugin(
      plugins.dir,
      'streamer',
      plugin(
        'streamer',
        `      server.get('/streamer/big', async (_req, reply) => {
        const { Readable } = await import('node:stream');
        let sent = 0;
        const chunk = Buffer.alloc(64 * 1024, 120);
        // a synchronous source: it never yields on its own
        return reply.type('application/octet-stream').send(new Readable({ read() { if (sent >= 100 * 1024 * 1024) { this.push(null); return; } sent += chunk.length; produced += chunk.length; this.push(chunk); } }));
      });
      server.get('/streamer/endless', async (_req, reply) => {
        const { Readable } = await import('node:stream');
        const chunk = Buffer.alloc(64 * 1024, 121);
        return reply.send(new Readable({ read() { produced += chunk.length; this.push(chunk); } }));
      });
      server.get('/streamer/stall', async (_req, reply) => {
        const { Readable } = await import('node:stream');
        let once = false;
        return reply.send(new Readable({ read() { if (!once) { once = true; this.push('first'); } } }));
      });
      server.get('/streamer/produced', async () => ({ produced }));
      server.get('/streamer/ok', async () => ({ ok: true }));`,
        'let produced = 0;',
      ),
    );
    writePlugin(
      plugins.dir,
      'hoard',
      plugin(
        'hoard',
        `      server.get('/hoard/buffers', async () => { for (let i = 0; i < 1536; i++) kept.push(Buffer.alloc(1024 * 1024, 1)); return { held: kept.length }; });
      server.get('/hoard/arrays', async () => { for (let i = 0; i < 4; i++) kept.push(new Uint8Array(8 * 1024 * 1024).fill(1)); return { held: kept.length }; });
      server.get('/hoard/ok', async () => ({ ok: true }));`,
        'const kept: unknown[] = [];',
      ),
    );
    s = await startServer({
      name: `worker-hardening-${db.kind}`,
      readyTimeoutMs: 120_000,
      env: {
        PLUGINS_DIR: plugins.dir,
        DATA_DIR: data.dir,
        ADMIN_TOKEN: TOKEN,
        PLUGIN_ISOLATION: 'worker',
        PLUGIN_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
        PLUGIN_STALL_TIMEOUT_MS: '3000',
        PLUGIN_MEMORY_MB: String(MEMORY_MB),
        PLUGIN_CRASH_LIMIT: '10',
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
  const restartsOf = async (name: string) => (await get(`/plugins/${name}`)).body.serving.runtime.restarts as number;

  test('importing the inspector, child_process, cluster or worker_threads refuses the load with a code naming the module', async () => {
    for (const [i, m] of FORBIDDEN.entries()) {
      const p = (await get(`/plugins/escape${i}`)).body;
      assert.equal(p.last_error?.code, 'PH_ERR_LOAD_FORBIDDEN_MODULE', `${m}: ${JSON.stringify(p.last_error)}`);
      assert.ok(p.last_error.message.includes(m), p.last_error.message);
      assert.equal((await get(`/escape${i}`)).status, 404, `${m}: nothing serves`);
    }
    assert.equal((await get('/hello')).status, 200);
  });

  test('a computed require, process.binding, process._linkedBinding and process.dlopen are refused in the worker', async () => {
    for (const m of [...FORBIDDEN, 'inspector', 'child_process', 'node:module', 'node:wasi', '/tmp/addon.node']) {
      const r = await get(`/prober/require?m=${encodeURIComponent(m)}`);
      assert.deepEqual(r.body, { refused: 'PH_ERR_LOAD_FORBIDDEN_MODULE' }, m);
    }
    assert.deepEqual((await get('/prober/require?m=node:crypto')).body, { refused: null }, 'other built-ins load');
    for (const what of ['binding', 'linked', 'dlopen']) {
      assert.deepEqual((await get(`/prober/${what}`)).body, { refused: 'PH_ERR_LOAD_FORBIDDEN_MODULE' }, what);
    }
    assert.equal((await get('/prober/ok')).status, 200);
    assert.equal(await restartsOf('prober'), 0);
  });

  test('a header HTTP forbids is a 502 for that request only; the plugin and the host go on', async () => {
    for (const p of ['/badhead/newline', '/badhead/name', '/badhead/stream']) {
      const r = await fetch(`${s.url}${p}`);
      assert.equal(r.status, 502, p);
      assert.equal(r.headers.get('set-cookie'), null);
      assert.equal(((await r.json()) as { code: string }).code, 'PH_ERR_PLUGIN_BAD_ANSWER', p);
    }
    assert.deepEqual((await get('/badhead/ok')).body, { ok: true });
    assert.equal(await restartsOf('badhead'), 0);
    assert.equal((await get('/readyz')).status, 200);
    assert.ok(s.findLog((l) => l.plugin === 'badhead' && l.code === 'PH_ERR_PLUGIN_BAD_ANSWER'));
  });

  test('a streamed answer flows with backpressure: the plugin is paused while the client does not read', async () => {
    const { res } = await pausedGet(`${s.url}/streamer/big`);
    assert.equal(res.statusCode, 200);
    // wait until the plugin stopped producing (the window and the socket buffers are full)
    let last = -1;
    let same = 0;
    await waitFor(
      async () => {
        const now = (await get('/streamer/produced')).body.produced as number;
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
    assert.equal(received, 100 * MB);
    assert.equal(await restartsOf('streamer'), 0);
  });

  test('a source that never yields cannot stall its worker: the client takes what it wants and leaves', async () => {
    const { res, req } = await pausedGet(`${s.url}/streamer/endless`);
    let received = 0;
    res.on('data', (c: Buffer) => {
      received += c.length;
      if (received >= 4 * MB) req.destroy();
    });
    res.on('error', () => {});
    res.resume();
    await new Promise((r) => res.on('close', r));
    assert.ok(received >= 4 * MB);
    assert.deepEqual((await get('/streamer/ok')).body, { ok: true });
    assert.equal(await restartsOf('streamer'), 0);
  });

  test('a stalled stream ends that request, not the plugin', async () => {
    const r = await fetch(`${s.url}/streamer/stall`);
    assert.equal(r.status, 200);
    await assert.rejects(r.text(), 'the stalled stream is cut');
    await s.waitForLog((l) => l.plugin === 'streamer' && l.reason === 'stream-stalled', 'the stalled stream to be logged');
    assert.deepEqual((await get('/streamer/ok')).body, { ok: true });
    assert.equal(await restartsOf('streamer'), 0);
  });

  test('Buffers past PLUGIN_MEMORY_MB end the worker, counted in the metrics; the host stays bounded; it restarts', async () => {
    const before = memoryOf(s.pid);
    const r = await get('/hoard/buffers');
    assert.equal(r.status, 503, JSON.stringify(r.body));
    assert.equal(r.body.code, 'PH_ERR_PLUGIN_UNAVAILABLE');
    await s.waitForLog((l) => l.plugin === 'hoard' && l.reason === 'memory', 'the memory cap to end the worker');
    await waitFor(async () => (await get('/hoard/ok')).status === 200, 'hoard to serve again');
    // ArrayBuffers allocated a little per request: the heartbeat sees them
    await waitFor(async () => (await get('/hoard/arrays')).status !== 200, 'the arrays to pass the cap');
    await waitFor(async () => (await get('/hoard/ok')).status === 200, 'hoard to serve again');
    const after = memoryOf(s.pid);
    // the high-water mark is the process's whole life: an earlier test (100 MB streamed) may have set it already;
    // 1.5 GB of Buffers in the host would raise it past both bounds
    assert.ok(
      after.peak <= Math.max(before.peak, before.rss + 3 * MEMORY_MB * MB),
      `host peak ${Math.round(after.peak / MB)} MB, ${Math.round(before.rss / MB)} MB before (peak ${Math.round(before.peak / MB)} MB)`,
    );
    assert.equal((await get('/hello')).status, 200);
    const metrics = await (await fetch(`${s.adminUrl}/metrics`)).text();
    const m = /plugin_host_worker_restarts_total\{plugin="hoard",reason="memory"\} (\d+)/.exec(metrics);
    assert.ok(
      m !== null && Number(m[1]) >= 2,
      metrics
        .split('\n')
        .filter((l) => l.includes('hoard'))
        .join('\n'),
    );
  });
});
