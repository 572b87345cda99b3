import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { pluginSource, pluginsDirWithPowertable, writePlugin } from './support/plugin-sources.js';
import { killAllServers, type ServerProcess, startServer } from './support/server-process.js';
import { getJson, tempDir, waitFor } from './support/util.js';

// Case 11 in a real server process (`node bin/plugin-host.mjs serve`): faults that
// escape the wrapped timers and hooks reach the process-level handlers, which
// attribute them to the plugin whose artifact file is in the stack, log them and
// keep the process serving.

const FAULTS = pluginSource({
  name: 'x11-faults',
  endpoints: null,
  routes: `        server.get('/x11/next-tick', async () => { process.nextTick(() => { throw new Error('nextTick boom'); }); return { armed: true }; });
        server.get('/x11/microtask', async () => { queueMicrotask(() => { throw new Error('microtask boom'); }); return { armed: true }; });
        server.get('/x11/raw-timer', async () => {
          globalThis.setTimeout(() => { throw new Error('raw timer boom'); }, 1);
          return { armed: true };
        });
        server.get('/x11/floating-rejection', async () => { void Promise.reject(new Error('floating boom')); return { armed: true }; });
        server.get('/x11/async-timer', async () => {
          setTimeout(async () => { throw new Error('async timer boom'); }, 1);
          return { armed: true };
        });
        server.get('/x11/emitter', async () => {
          const { EventEmitter } = await import('node:events');
          const e = new EventEmitter();
          setImmediate(() => process.nextTick(() => e.emit('error', new Error('emitter boom'))));
          return { armed: true };
        });
        server.get('/x11/string', async () => { process.nextTick(() => { throw 'a bare string'; }); return { armed: true }; });
        server.get('/x11/ok', async () => ({ ok: true }));`,
});

describe('process-level faults from plugin code in a real server process', () => {
  let db: TestDatabase;
  let plugins: { dir: string; cleanup(): void };
  let data: { dir: string; cleanup(): void };
  let server: ServerProcess | undefined;
  let url: string;

  before(async () => {
    plugins = pluginsDirWithPowertable();
    writePlugin(plugins.dir, 'x11-faults', FAULTS);
    data = tempDir('ph-data-');
    db = await createTestDatabase();
    server = await startServer({
      name: 'faults',
      env: {
        DATABASE_URL: db.url,
        DATA_DIR: data.dir,
        PLUGINS_DIR: plugins.dir,
        LOG_LEVEL: 'info',
        HOOK_TIMEOUT_MS: '1000',
        DRAIN_TIMEOUT_MS: '1000',
      },
      readyTimeoutMs: 30_000,
    });
    url = server.url;
  });
  after(async () => {
    await killAllServers();
    await db?.drop();
    plugins?.cleanup();
    data?.cleanup();
  });

  const faults: [route: string, text: string, fault: string | undefined][] = [
    ['/x11/next-tick', 'nextTick boom', 'uncaughtException'],
    ['/x11/microtask', 'microtask boom', 'uncaughtException'],
    ['/x11/raw-timer', 'raw timer boom', 'uncaughtException'],
    ['/x11/floating-rejection', 'floating boom', 'unhandledRejection'],
    ['/x11/emitter', 'emitter boom', 'uncaughtException'],
    // an async callback of a wrapped timer: caught by the wrapper itself
    ['/x11/async-timer', 'async timer boom', undefined],
  ];

  for (const [route, text, fault] of faults) {
    test(`${route}: ${fault ?? 'wrapped timer rejection'} is attributed to x11-faults and the process survives`, async () => {
      const s = server as ServerProcess;
      assert.equal((await getJson(`${url}${route}`)).status, 200);
      const line = await waitFor(() => s.findLog((l) => l.level === 50 && String(l.msg).includes(text)), `"${text}" to be logged`);
      assert.equal(line.plugin, 'x11-faults', JSON.stringify(line));
      if (fault !== undefined) assert.equal(line.fault, fault);
      assert.equal(s.exit, undefined, 'the process is still running');
      assert.deepEqual((await getJson(`${url}/x11/ok`)).body, { ok: true });
      assert.equal((await getJson(`${url}/hello`)).body.plugin, 'powertable');
    });
  }

  test("a fault no plugin explains is the host's: logged at fatal, /readyz answers 503 with the reason, plugins keep serving", async () => {
    const s = server as ServerProcess;
    assert.equal((await getJson(`${url}/readyz`)).status, 200, 'ready before the fault');
    assert.equal((await getJson(`${url}/x11/string`)).status, 200);
    const line = await waitFor(() => s.findLog((l) => l.level === 60 && String(l.msg).includes('a bare string')), 'the fault logged');
    assert.equal(line.plugin, undefined);
    assert.match(String(line.msg), /not attributed to a plugin/);
    const ready = await getJson(`${url}/readyz`);
    assert.equal(ready.status, 503);
    assert.equal(ready.body.code, 'PH_ERR_NOT_READY');
    assert.ok(
      ready.body.reasons.some((r: string) => r.includes('host fault') && r.includes('a bare string')),
      JSON.stringify(ready.body),
    );
    assert.equal((await getJson(`${url}/healthz`)).status, 200, 'alive: the process answers');
    assert.equal((await getJson(`${url}/hello`)).status, 200);
    const p = await getJson(`${url}/plugins/x11-faults`);
    assert.equal(p.body.state, 'serving');
  });

  test('the process still shuts down cleanly on SIGTERM', async () => {
    const s = server as ServerProcess;
    s.signal('SIGTERM');
    const exit = await s.exited;
    assert.equal(exit.code, 0, s.tail(5));
  });
});
