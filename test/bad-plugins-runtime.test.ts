import assert from 'node:assert/strict';
import { STATUS_CODES } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { onEachDatabase } from './support/databases.js';
import { sqlByHand, startTestHost, type TestHost } from './support/host.js';
import { pluginSource, pluginsDirWithPowertable, writePlugin } from './support/plugin-sources.js';
import { afterTimersDue, getJson, waitFor } from './support/util.js';

// Plugins that load fine and misbehave while serving: handlers that throw or
// reject (case 10), timers that throw (case 11, in process; see
// process-errors.test.ts for the process-level handlers) and cleanups that throw
// or hang (case 12).

const SECRET = 'db password is hunter2';

const HANDLER = pluginSource({
  name: 'x10-handler',
  endpoints: null,
  routes: `        server.get('/x10/throw', () => { throw new Error(${JSON.stringify(SECRET)}); });
        server.get('/x10/reject', async () => { await Promise.resolve(); throw new Error(${JSON.stringify(SECRET)}); });
        server.get('/x10/throw-string', async () => { throw ${JSON.stringify(SECRET)}; });
        server.get('/x10/status-503', async () => { throw Object.assign(new Error(${JSON.stringify(SECRET)}), { statusCode: 503 }); });
        server.get('/x10/throw-null', async () => { throw null; });
        server.get('/x10/conflict', async () => { throw Object.assign(new Error('name already taken'), { statusCode: 409, code: 'E_TAKEN' }); });
        server.get('/x10/limited', async () => { throw Object.assign(new Error('slow down'), { statusCode: 429 }); });
        server.get('/x10/picky', async () => { throw Object.assign(new Error('only text/csv'), { statusCode: 406 }); });
        server.get('/x10/teapot', async () => { throw Object.assign(new Error('short and stout'), { statusCode: 418 }); });
        server.post('/x10/json', { schema: { body: { type: 'object', required: ['n'], properties: { n: { type: 'integer' } } } } }, async (req) => req.body);
        server.get('/x10/ok', async () => ({ ok: true }));`,
});

const TIMERS = pluginSource({
  name: 'x11-timers',
  endpoints: null,
  routes: `        server.get('/x11/timeout', async () => { setTimeout(() => { throw new Error('timeout boom'); }, 1); return { armed: true }; });
        server.get('/x11/interval', async () => {
          const t = setInterval(() => { clearInterval(t); throw new Error('interval boom'); }, 1);
          return { armed: true };
        });
        server.get('/x11/immediate', async () => { setImmediate(() => { throw new Error('immediate boom'); }); return { armed: true }; });
        server.get('/x11/async-timeout', async () => {
          setTimeout(async () => { await Promise.resolve(); throw new Error('async timeout boom'); }, 1);
          return { armed: true };
        });
        server.get('/x11/ok', async () => ({ ok: true }));`,
});

/** A plugin whose cleanup runs `cleanup`. */
function cleanupPlugin(name: string, cleanup: string): string {
  return pluginSource({ name, endpoints: null, cleanup });
}

/** What each loaded instance of `x11-ticker` counts: one counter per way of starting a timer. */
type Ticks = { interval: number; chain: number; viaGlobal: number; viaModule: number; viaPromises: number; viaIterator: number };
const TICKING = { interval: true, chain: true, viaGlobal: true, viaModule: true, viaPromises: true, viaIterator: true };
const STOPPED = { interval: false, chain: false, viaGlobal: false, viaModule: false, viaPromises: false, viaIterator: false };

/**
 * Every loaded instance of `x11-ticker` starts intervals in `initialize`, through every way there is (bare,
 * `globalThis.`, `node:timers`, a `node:timers/promises` loop and iterator); `GET /x11-ticker/chain` starts a
 * chain of timeouts and immediates (always one of them pending). Each instance counts its callbacks in a global
 * (plugin code runs in the host's realm).
 */
function tickerPlugin(key: string): string {
  return pluginSource({
    name: 'x11-ticker',
    marked: true,
    head: `import * as nodeTimers from 'node:timers';
import { setInterval as every, setTimeout as sleep } from 'node:timers/promises';
const counts = ((globalThis as unknown as Record<string, Record<string, Record<string, number>>>)[${JSON.stringify(key)}] ??= {});`,
    factory: '  const mine = { interval: 0, chain: 0, viaGlobal: 0, viaModule: 0, viaPromises: 0, viaIterator: 0 };',
    initialize: `      counts[instance] = mine;
      setInterval(() => { mine.interval++; }, 10);
      globalThis.setInterval(() => { mine.viaGlobal++; }, 10);
      nodeTimers.setInterval(() => { mine.viaModule++; }, 10);
      void (async () => { for (;;) { await sleep(10); mine.viaPromises++; } })().catch(() => {});
      void (async () => { for await (const _ of every(10)) mine.viaIterator++; })().catch(() => {});`,
    routes: `      server.get('/x11-ticker', async () => ({ instance }));
      server.get('/x11-ticker/chain', async () => {
        const step = () => {
          mine.chain++;
          setImmediate(() => setTimeout(step, 10));
        };
        setTimeout(step, 10);
        return { instance };
      });`,
  });
}

// PGlite and PostgreSQL suites run side by side, each with its own host and directories; the tests of a suite run in order.
describe('plugins misbehaving while serving', { concurrency: true }, () => {
  onEachDatabase('plugins misbehaving while serving', { concurrency: 1 }, (db) => {
    let t: TestHost | undefined;
    let plugins: { dir: string; cleanup(): void };
    const tickerKey = `__ph_ticker_${db.kind}_${process.pid}`;
    const ticks = (instance: string) => {
      const c = (globalThis as unknown as Record<string, Record<string, Ticks> | undefined>)[tickerKey]?.[instance];
      assert.ok(c, `instance ${instance} was initialized`);
      return { ...c };
    };
    /** Whether the timers of `instance` fired while a 60 ms timer armed after them ran out (see afterTimersDue). */
    const ticking = async (instance: string) => {
      const before = ticks(instance);
      await afterTimersDue(60);
      const after = ticks(instance);
      return Object.fromEntries(Object.keys(TICKING).map((k) => [k, after[k as keyof Ticks] > before[k as keyof Ticks]]));
    };

    const host = () => t as TestHost;
    const state = async (name: string) => (await getJson(`${host().url}/plugins/${name}`)).body;

    before(async () => {
      plugins = pluginsDirWithPowertable();
      writePlugin(plugins.dir, 'x10-handler', HANDLER);
      writePlugin(plugins.dir, 'x11-timers', TIMERS);
      writePlugin(plugins.dir, 'x12-cleanup-throws', cleanupPlugin('x12-cleanup-throws', "throw new Error('cleanup exploded');"));
      writePlugin(plugins.dir, 'x12-cleanup-hangs', cleanupPlugin('x12-cleanup-hangs', 'await new Promise(() => {});'));
      writePlugin(plugins.dir, 'x11-ticker', tickerPlugin(tickerKey));
      t = await startTestHost({ ...db.hostOptions, pluginsDir: plugins.dir, env: { HOOK_TIMEOUT_MS: '400' } });
      for (const n of ['powertable', 'x10-handler', 'x11-timers', 'x11-ticker', 'x12-cleanup-throws', 'x12-cleanup-hangs']) {
        assert.equal((await state(n)).state, 'serving', n);
      }
    });
    after(async () => {
      await t?.close();
      plugins?.cleanup();
    });

    test('case 10: a handler that throws or rejects answers a 500 problem naming no internals; the plugin stays up', async () => {
      for (const route of ['/x10/throw', '/x10/reject', '/x10/throw-string', '/x10/throw-null', '/x10/status-503']) {
        const before = host().logs.lines.length;
        const res = await getJson(`${host().url}${route}`);
        assert.equal(res.status, route === '/x10/status-503' ? 503 : 500, route);
        assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
        assert.equal(res.body.code, 'PH_ERR_PLUGIN_HANDLER', route);
        assert.equal(typeof res.body.title, 'string');
        assert.equal(typeof res.body.detail, 'string');
        const text = JSON.stringify(res.body);
        for (const internal of ['hunter2', 'Error:', '.cjs', '/tmp/', 'stack', plugins.dir]) {
          assert.ok(!text.includes(internal), `${route}: body names no internals (${internal}): ${text}`);
        }
        const logged = await waitFor(
          () =>
            host()
              .logs.lines.slice(before)
              .find((l) => l.level === 50 && l.plugin === 'x10-handler'),
          `an error logged for ${route}`,
        );
        assert.ok(String(logged.msg).includes('x10-handler'), String(logged.msg));
      }
      assert.deepEqual((await getJson(`${host().url}/x10/ok`)).body, { ok: true });
      const p = await state('x10-handler');
      assert.equal(p.state, 'serving');
      assert.equal(p.last_error, null);
      assert.equal((await getJson(`${host().url}/hello`)).status, 200);
    });

    test('case 10: 4xx answers of plugin routes carry stable PH_ERR_* codes', async () => {
      const post = (body: string, type = 'application/json') =>
        getJson(`${host().url}/x10/json`, { method: 'POST', headers: { 'content-type': type }, body });
      const cases: [Promise<{ status: number; body: any }>, number, string][] = [
        [post('{"n": 1'), 400, 'PH_ERR_INVALID_JSON'],
        [post('{"n": "x"}'), 400, 'PH_ERR_VALIDATION'],
        [post('n=1', 'text/csv'), 415, 'PH_ERR_UNSUPPORTED_MEDIA_TYPE'],
        [post(JSON.stringify({ n: 1, pad: 'x'.repeat(2 * 1024 * 1024) })), 413, 'PH_ERR_PAYLOAD_TOO_LARGE'],
        [getJson(`${host().url}/x10/conflict`), 409, 'PH_ERR_CLIENT_ERROR'],
        [getJson(`${host().url}/x10/limited`), 429, 'PH_ERR_TOO_MANY_REQUESTS'],
        [getJson(`${host().url}/x10/picky`), 406, 'PH_ERR_NOT_ACCEPTABLE'],
        [getJson(`${host().url}/x10/teapot`), 418, 'PH_ERR_CLIENT_ERROR'],
      ];
      for (const [res, status, code] of cases) {
        const r = await res;
        assert.equal(r.status, status, JSON.stringify(r.body));
        assert.equal(r.body.code, code, JSON.stringify(r.body));
        assert.equal(r.body.status, status);
        // the title is the status's own reason phrase, never "Bad request" for another status
        if (status !== 400) assert.equal(r.body.title.toLowerCase(), STATUS_CODES[status]?.toLowerCase(), JSON.stringify(r.body));
      }
      assert.equal((await getJson(`${host().url}/x10/conflict`)).body.plugin_code, 'E_TAKEN');
      assert.deepEqual((await post('{"n": 2}')).body, { n: 2 });
      const p = await state('x10-handler');
      assert.equal(p.state, 'serving');
      assert.equal(p.last_error, null);
      assert.equal((await getJson(`${host().url}/hello`)).status, 200);
    });

    test('case 11: a throw or rejection inside a plugin timer is logged against the plugin; the host keeps serving', async () => {
      const cases: [string, string][] = [
        ['/x11/timeout', 'timeout boom'],
        ['/x11/interval', 'interval boom'],
        ['/x11/immediate', 'immediate boom'],
        ['/x11/async-timeout', 'async timeout boom'],
      ];
      for (const [route, text] of cases) {
        assert.equal((await getJson(`${host().url}${route}`)).status, 200);
        await waitFor(
          () => host().logs.find((l) => l.level === 50 && l.plugin === 'x11-timers' && String(l.msg).includes(text)),
          `"${text}" to be logged against x11-timers`,
        );
      }
      assert.deepEqual((await getJson(`${host().url}/x11/ok`)).body, { ok: true });
      assert.equal((await state('x11-timers')).state, 'serving');
      assert.equal((await getJson(`${host().url}/hello`)).status, 200);
    });

    test('timers a version started are cleared when it is replaced and when it unloads', async () => {
      const v1 = (await getJson(`${host().url}/x11-ticker/chain`)).body.instance;
      assert.deepEqual(await ticking(v1), TICKING, 'the intervals and the chain run while the version serves');

      const loadedAt = (await state('x11-ticker')).serving.loaded_at;
      await host().host.repo.bumpGeneration('x11-ticker');
      await waitFor(async () => (await state('x11-ticker')).serving?.loaded_at !== loadedAt, 'the reload to swap');
      const v2 = (await getJson(`${host().url}/x11-ticker/chain`)).body.instance;
      assert.notEqual(v2, v1);
      // the replaced version is retired in the background (drain, cleanup, then its timers are cleared)
      await waitFor(async () => {
        const r = await ticking(v1);
        return Object.values(r).every((x) => !x);
      }, 'the timers of the replaced version to stop');
      assert.deepEqual(await ticking(v2), TICKING, 'the new version keeps its own timers');

      await sqlByHand(host(), db.url, "UPDATE plugins SET status = 'inactive' WHERE name = 'x11-ticker'");
      await waitFor(async () => (await state('x11-ticker')).state === 'unloaded', 'x11-ticker to unload');
      assert.deepEqual(await ticking(v2), STOPPED, 'an unloaded version has no timer left');
    });

    test('case 12: disabling a plugin whose cleanup throws or hangs still unloads it', async () => {
      for (const name of ['x12-cleanup-throws', 'x12-cleanup-hangs']) {
        await sqlByHand(host(), db.url, "UPDATE plugins SET status = 'inactive' WHERE name = $1", [name]);
      }
      for (const [name, code] of [
        ['x12-cleanup-throws', 'PH_ERR_HOOK_FAILED'],
        ['x12-cleanup-hangs', 'PH_ERR_HOOK_TIMEOUT'],
      ] as const) {
        await waitFor(async () => (await state(name)).state === 'unloaded', `${name} to unload`);
        assert.equal((await getJson(`${host().url}/${name}`)).status, 404);
        const line = host().logs.find((l) => l.level === 50 && l.plugin === name && l.code === code);
        assert.ok(line, `${name}: cleanup failure logged with the plugin name`);
        assert.match(String(line.msg), /cleanup/);
        if (code === 'PH_ERR_HOOK_TIMEOUT') {
          // the unload waited for the hanging cleanup only up to the configured limit
          assert.equal(line.msg, `cleanup failed: ${name}: cleanup() did not finish within ${host().config.hookTimeoutMs} ms`);
        }
      }
      assert.equal((await getJson(`${host().url}/hello`)).status, 200);
    });

    test('case 12: a reload whose old version hangs in cleanup swaps in the new version; shutdown stays bounded', async () => {
      await sqlByHand(host(), db.url, "UPDATE plugins SET status = 'active' WHERE name = 'x12-cleanup-hangs'");
      await waitFor(async () => (await state('x12-cleanup-hangs')).state === 'serving', 're-enabled');
      const first = (await state('x12-cleanup-hangs')).serving.loaded_at;
      await host().host.repo.bumpGeneration('x12-cleanup-hangs');
      await waitFor(async () => (await state('x12-cleanup-hangs')).serving?.loaded_at !== first, 'the reload to swap');
      assert.equal((await getJson(`${host().url}/x12-cleanup-hangs`)).status, 200);
      // The retired version's cleanup hangs, and so does the serving version's at shutdown: closing the host
      // waits for each only up to the hook limit (a close that waited for them would hang this test until the
      // runner's limit). Three cleanups were cut at the configured limit: at the disable of the test before,
      // of the retired version, and of the serving version at shutdown.
      const h = host();
      const cut = () =>
        h.logs.lines.filter(
          (l) =>
            l.plugin === 'x12-cleanup-hangs' &&
            l.code === 'PH_ERR_HOOK_TIMEOUT' &&
            l.msg === `cleanup failed: x12-cleanup-hangs: cleanup() did not finish within ${h.config.hookTimeoutMs} ms`,
        ).length;
      t = undefined;
      await h.close();
      assert.equal(cut(), 3);
    });
  });
});
