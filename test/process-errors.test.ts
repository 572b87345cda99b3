import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  createTestDatabase,
  getJson,
  pluginsDirWithPowertable,
  ROOT,
  type TestDatabase,
  tempDir,
  waitFor,
  writePlugin,
} from './helpers.js';

// Case 11 in a real server process (`node bin/plugin-host.mjs serve`): faults that
// escape the wrapped timers and hooks reach the process-level handlers, which
// attribute them to the plugin whose artifact file is in the stack, log them and
// keep the process serving.

const FAULTS = `import { definePlugin } from 'plugin-host/sdk';
export const newPlugin = definePlugin(() => ({
  getMetadata: () => ({ name: 'x11-faults', version: '1.0.0', description: '', author: '' }),
  initialize() {},
  registerRoutes(server) {
    server.get('/x11/next-tick', async () => { process.nextTick(() => { throw new Error('nextTick boom'); }); return { armed: true }; });
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
    server.get('/x11/ok', async () => ({ ok: true }));
  },
  cleanup() {},
}));
`;

type Line = Record<string, unknown>;

class Server {
  readonly lines: Line[] = [];
  readonly raw: string[] = [];
  exitCode: number | null | undefined;
  readonly exited: Promise<void>;
  constructor(readonly child: ChildProcess) {
    this.exited = new Promise((resolve) =>
      child.once('exit', (code) => {
        this.exitCode = code;
        resolve();
      }),
    );
    for (const stream of [child.stdout, child.stderr]) {
      let rest = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        const parts = (rest + chunk).split('\n');
        rest = parts.pop() ?? '';
        for (const l of parts) {
          if (l.trim() === '') continue;
          this.raw.push(l);
          try {
            this.lines.push(JSON.parse(l) as Line);
          } catch {
            /* not JSON */
          }
        }
      });
    }
  }
  get url(): string | undefined {
    const l = this.lines.find((x) => typeof x.url === 'string' && String(x.msg).startsWith('plugin-host listening'));
    return l?.url as string | undefined;
  }
}

describe('process-level faults from plugin code in a real server process', () => {
  let db: TestDatabase;
  let plugins: { dir: string; cleanup(): void };
  let data: { dir: string; cleanup(): void };
  let server: Server | undefined;
  let url: string;

  before(async () => {
    plugins = pluginsDirWithPowertable();
    writePlugin(plugins.dir, 'x11-faults', FAULTS);
    data = tempDir('ph-data-');
    db = await createTestDatabase();
    const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'plugin-host.mjs'), 'serve'], {
      cwd: ROOT,
      env: {
        ...process.env,
        NODE_ENV: 'test',
        PORT: '0',
        HOST: '127.0.0.1',
        DATABASE_URL: db.url,
        DATA_DIR: data.dir,
        PLUGINS_DIR: plugins.dir,
        LOG_LEVEL: 'info',
        HOOK_TIMEOUT_MS: '1000',
        DRAIN_TIMEOUT_MS: '1000',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    server = new Server(child);
    url = await waitFor(
      () => {
        if (server?.exitCode !== undefined) throw new Error(`server exited: ${server?.raw.join('\n')}`);
        return server?.url;
      },
      'the server to listen',
      30_000,
    );
  });
  after(async () => {
    if (server !== undefined && server.exitCode === undefined) {
      server.child.kill('SIGKILL');
      await server.exited;
    }
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
      const s = server as Server;
      assert.equal((await getJson(`${url}${route}`)).status, 200);
      const line = await waitFor(() => s.lines.find((l) => l.level === 50 && String(l.msg).includes(text)), `"${text}" to be logged`);
      assert.equal(line.plugin, 'x11-faults', JSON.stringify(line));
      if (fault !== undefined) assert.equal(line.fault, fault);
      assert.equal(s.exitCode, undefined, 'the process is still running');
      assert.deepEqual((await getJson(`${url}/x11/ok`)).body, { ok: true });
      assert.equal((await getJson(`${url}/hello`)).body.plugin, 'powertable');
    });
  }

  test("a fault no plugin explains is the host's: logged at fatal, /readyz answers 503 with the reason, plugins keep serving", async () => {
    const s = server as Server;
    assert.equal((await getJson(`${url}/readyz`)).status, 200, 'ready before the fault');
    assert.equal((await getJson(`${url}/x11/string`)).status, 200);
    const line = await waitFor(() => s.lines.find((l) => l.level === 60 && String(l.msg).includes('a bare string')), 'the fault logged');
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
    const s = server as Server;
    s.child.kill('SIGTERM');
    await s.exited;
    assert.equal(s.exitCode, 0, s.raw.slice(-5).join('\n'));
  });
});
