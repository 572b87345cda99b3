import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { pluginSource, pluginsDirWithPowertable, writePlugin } from './support/plugin-sources.js';
import { killAllServers, type ServerProcess, startServer } from './support/server-process.js';
import { getJson, tempDir, waitFor } from './support/util.js';

// Case 11 in a real server process (`node bin/plugin-host.mjs serve`): faults that
// escape the wrapped timers and hooks reach the process-level handlers, which
// attribute them to the plugin in whose async scope they were raised (never from the stack's text, which
// plugin code can write), log them and keep the process serving.

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
        server.get('/x11/socket', async () => {
          const net = await import('node:net');
          // no 'error' listener: the refused connection is an uncaught exception
          new net.Socket().connect(1, '127.0.0.1');
          return { armed: true };
        });
        server.get('/x11/forged', async () => {
          const e = new Error('forged boom');
          e.stack = ['Error: forged boom', '    at /somewhere/artifacts/' + 'a'.repeat(64) + '.cjs:1:1'].join(String.fromCharCode(10));
          setTimeout(() => { void Promise.reject(e); }, 1);
          return { armed: true };
        });
        server.get('/x11/escape', async (request) => {
          // a listener on the host's own server: it runs in the host's scope, so nothing can say whose it is
          (request.raw.socket as unknown as { server: import('node:events').EventEmitter }).server.once('request', () => {
            throw new Error('escaped boom');
          });
          return { armed: true };
        });
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
    // a microtask's throw: caught by the host's queueMicrotask, as a timer's is
    ['/x11/microtask', 'microtask boom', undefined],
    // globalThis.setTimeout is the plugin's tracked timer: its throw is caught by the wrapper, as a bare one's
    ['/x11/raw-timer', 'raw timer boom', undefined],
    ['/x11/floating-rejection', 'floating boom', 'unhandledRejection'],
    ['/x11/emitter', 'emitter boom', 'uncaughtException'],
    ['/x11/string', 'a bare string', 'uncaughtException'],
    ['/x11/socket', 'ECONNREFUSED', 'uncaughtException'],
    ['/x11/forged', 'forged boom', 'unhandledRejection'],
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

  test("a fault no plugin's scope explains: logged at fatal and counted; /readyz stays 200, plugins keep serving", async () => {
    const s = server as ServerProcess;
    const before = await getJson(`${url}/readyz`);
    assert.equal(before.status, 200, `ready before the fault: ${JSON.stringify(before.body)}`);
    const armed = await getJson(`${url}/x11/escape`);
    assert.equal(armed.status, 200, JSON.stringify(armed.body));
    // the next request runs the listener; on a connection of its own, as the throw leaves that connection's parser unusable
    await new Promise<void>((resolve) => {
      http
        .get(`${url}/x11/ok`, { agent: false }, (res) => {
          res.resume();
          res.on('end', () => resolve());
          res.on('error', () => resolve());
        })
        .on('error', () => resolve());
    });
    const line = await waitFor(() => s.findLog((l) => l.level === 60 && String(l.msg).includes('escaped boom')), 'the fault logged');
    assert.equal(line.plugin, undefined);
    assert.match(String(line.msg), /not attributed to a plugin/);
    assert.equal((await getJson(`${url}/readyz`)).status, 200, 'one fault does not take the node out of service');
    assert.equal((await getJson(`${url}/hello`)).status, 200);
    const metrics = await (await fetch(`${s.adminUrl}/metrics`)).text();
    assert.match(metrics, /plugin_host_process_faults_total\{plugin=""\} [1-9]/);
    assert.match(metrics, /plugin_host_process_faults_total\{plugin="x11-faults"\} [1-9]/);
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
