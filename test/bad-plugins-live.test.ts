import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Compiler } from '../src/compiler/index.js';
import { type Database, openDatabase, PluginRepository } from '../src/db/index.js';
import { isHostError } from '../src/errors/index.js';
import { BAD_CASES, caseName, caseRoute, lineOf } from './fixtures/bad-plugins.js';
import { onEachDatabase } from './support/databases.js';
import { sqlByHand, startTestHost, type TestHost } from './support/host.js';
import { pluginSource, pluginsDirWithPowertable, writePlugin } from './support/plugin-sources.js';
import { afterTimersDue, getJson, tempDir, waitFor } from './support/util.js';

// Bad plugins arriving while the server runs: a row inserted by SQL pointing at a
// bad source (state `error`), and a good plugin whose source is replaced by a bad
// one and then reloaded (the old version keeps answering, `last_error` is set).

interface Baseline {
  hash: string;
  loaded_at: string;
}

async function plugin(t: TestHost, name: string): Promise<any> {
  return (await getJson(`${t.url}/plugins/${name}`)).body;
}

// PGlite and PostgreSQL suites run side by side, each with its own host and directories; the tests of a suite run in order.
describe('bad plugins arriving live', { concurrency: true }, () => {
  onEachDatabase('bad plugins arriving live', { concurrency: 1 }, (db) => {
    let t: TestHost;
    let plugins: { dir: string; cleanup(): void };
    /** A second connection writing desired state, as the admin API or another node would. */
    let writer: { db: Database; repo: PluginRepository } | undefined;
    const baseline = new Map<string, Baseline>();

    const repo = () => writer?.repo ?? t.host.repo;

    async function insertRow(name: string, dir: string): Promise<void> {
      await sqlByHand(t, db.url, 'INSERT INTO plugins (id, name, type, path, source_path, status) VALUES ($1, $2, $3, $4, $4, $5)', [
        randomUUID(),
        name,
        'dynamic',
        dir,
        'active',
      ]);
    }

    before(async () => {
      plugins = pluginsDirWithPowertable();
      writePlugin(plugins.dir, 'steady', pluginSource({ name: 'steady' }));
      t = await startTestHost({ ...db.hostOptions, pluginsDir: plugins.dir, env: { HOOK_TIMEOUT_MS: '500' } });
      if (db.url !== undefined) {
        const wdb = await openDatabase({ databaseUrl: db.url, dataDir: undefined });
        writer = { db: wdb, repo: new PluginRepository(wdb.orm) };
      }
      for (const name of ['powertable', 'steady']) {
        const p = await plugin(t, name);
        assert.equal(p.state, 'serving');
        baseline.set(name, { hash: p.serving.hash, loaded_at: p.serving.loaded_at });
      }
    });
    after(async () => {
      await writer?.db.close();
      await t?.close();
      plugins?.cleanup();
    });

    async function assertHealthyUntouched(): Promise<void> {
      for (const [name, b] of baseline) {
        const p = await plugin(t, name);
        assert.equal(p.state, 'serving', name);
        assert.equal(p.last_error, null, name);
        assert.deepEqual({ hash: p.serving.hash, loaded_at: p.serving.loaded_at }, b, `${name} was not reloaded`);
      }
      assert.equal((await getJson(`${t.url}/hello`)).body.plugin, 'powertable');
      assert.equal((await getJson(`${t.url}/steady`)).body.plugin, 'steady');
    }

    test('rows inserted by SQL pointing at bad sources: each is `error` naming the file or hook', async () => {
      const sources = new Map<string, string>();
      for (const c of BAD_CASES) {
        const name = caseName('l', c);
        const src = c.source(name, caseRoute(name));
        sources.set(name, src);
        await insertRow(name, writePlugin(plugins.dir, name, src));
      }
      // The sources compile one after another (one type-check worker), so one bound covers them all
      await waitFor(
        async () => {
          for (const c of BAD_CASES) if ((await plugin(t, caseName('l', c))).state !== 'error') return false;
          return true;
        },
        'every bad row to be in error',
        90_000,
      );
      for (const c of BAD_CASES) {
        const name = caseName('l', c);
        const p = await waitFor(async () => {
          const b = await plugin(t, name);
          return b.state === 'error' && b.last_error ? b : undefined;
        }, `${name} to be in error`);
        assert.equal(p.last_error.code, c.code, `${name}: ${p.last_error.message}`);
        assert.match(p.last_error.message, c.message(name, sources.get(name) as string, t.config.hookTimeoutMs));
        assert.equal(p.serving, null);
        assert.equal(p.status, 'active', 'desired state is not rewritten by the node');
        const node = await waitFor(async () => {
          const v = await plugin(t, name);
          return v.nodes?.find((n: { node_id: string; state: string }) => n.node_id === t.config.nodeId && n.state === 'error');
        }, `${name}: observed state to be recorded`);
        assert.equal(node.last_error.code, c.code);
        assert.ok(t.logs.find((l) => l.level === 50 && l.plugin === name));
        assert.equal(t.host.dispatcher.current.plugins.has(name), false);
      }
      // case 08: the route registered before registerRoutes threw (08) or hung (08b) is not reachable
      for (const id of ['08', '08b']) {
        const partial = caseRoute(caseName('l', BAD_CASES.find((c) => c.id === id)!));
        assert.equal((await getJson(`${t.url}${partial}-first`)).status, 404, `no partial route (${id})`);
      }
      await assertHealthyUntouched();
    });

    test('a row with an invalid name inserted by SQL is refused with a recorded error (case 13)', async () => {
      const dir = writePlugin(plugins.dir, 'l13-valid-dir', pluginSource({ name: 'l13-valid-dir' }));
      await insertRow('Bad.Name', dir);
      const entry = await waitFor(async () => {
        const { body } = await getJson(`${t.url}/plugins`);
        const e = body.find((p: { name: string }) => p.name === 'Bad.Name');
        return e?.state === 'error' ? e : undefined;
      }, 'Bad.Name to be in error');
      assert.equal(entry.last_error.code, 'PH_ERR_PLUGIN_NAME_INVALID');
      assert.equal(t.host.dispatcher.current.plugins.has('Bad.Name'), false);
      assert.ok(t.logs.find((l) => l.level === 50 && l.plugin === 'Bad.Name'));
      await assertHealthyUntouched();
    });

    test('a good plugin replaced by a bad source and reloaded keeps serving the old version', async () => {
      const names = BAD_CASES.map((c) => caseName('r', c));
      for (const name of names)
        await insertRow(name, writePlugin(plugins.dir, name, pluginSource({ name, version: '1.0.0', route: caseRoute(name) })));
      // one bound for all: they compile one after another
      await waitFor(
        async () => {
          for (const name of names) if ((await plugin(t, name)).state !== 'serving') return false;
          return true;
        },
        'every plugin to serve v1',
        90_000,
      );
      const v1 = new Map<string, Baseline>();
      for (const name of names) {
        const p = await plugin(t, name);
        v1.set(name, { hash: p.serving.hash, loaded_at: p.serving.loaded_at });
      }
      const sources = new Map<string, string>();
      for (const [i, c] of BAD_CASES.entries()) {
        const name = caseName('r', c);
        const src = c.source(name, caseRoute(name));
        sources.set(name, src);
        writeFileSync(path.join(plugins.dir, name, 'main.ts'), src);
        // reload either as the admin API does (generation bump) or as a person would (a version UPDATE)
        if (i % 2 === 0) assert.ok(await repo().bumpGeneration(name));
        else await sqlByHand(t, db.url, "UPDATE plugins SET version = '2.0.0' WHERE name = $1", [name]);
      }
      await waitFor(
        async () => {
          for (const c of BAD_CASES) if ((await plugin(t, caseName('r', c))).last_error === null) return false;
          return true;
        },
        'every failed reload to be recorded',
        90_000,
      );
      for (const c of BAD_CASES) {
        const name = caseName('r', c);
        const p = await waitFor(async () => {
          const b = await plugin(t, name);
          return b.last_error ? b : undefined;
        }, `${name} to record the failed reload`);
        assert.equal(p.last_error.code, c.code, `${name}: ${p.last_error.message}`);
        assert.match(p.last_error.message, c.message(name, sources.get(name) as string, t.config.hookTimeoutMs));
        assert.equal(p.state, 'serving', 'the old version keeps serving');
        assert.equal(p.serving.version, '1.0.0');
        assert.deepEqual({ hash: p.serving.hash, loaded_at: p.serving.loaded_at }, v1.get(name), 'old version not replaced');
        const res = await getJson(`${t.url}${caseRoute(name)}`);
        assert.equal(res.status, 200, name);
        assert.deepEqual(res.body, { plugin: name, version: '1.0.0' }, 'old version keeps answering');
        assert.ok(t.logs.find((l) => l.level === 50 && l.plugin === name && String(l.msg).includes('keeps serving')));
      }
      for (const id of ['08', '08b']) {
        const partial = caseRoute(caseName('r', BAD_CASES.find((c) => c.id === id)!));
        assert.equal((await getJson(`${t.url}${partial}-first`)).status, 404, `no partial route from the failed version (${id})`);
      }
      assert.equal((await getJson(`${t.url}/hello`)).body.plugin, 'powertable', 'the conflicting reload did not take /hello');
      await assertHealthyUntouched();
    });

    /** What one loaded instance's `initialize` started; recorded in a global (plugin code runs in the host's realm). */
    interface Started {
      aborted: string[];
      ticks: number;
      fired: number;
    }
    const startedBy = (key: string) => (globalThis as unknown as Record<string, Started[] | undefined>)[key] ?? [];

    /**
     * A plugin whose `initialize` listens on `ctx.signal`, starts an interval (every 10 ms) and a timeout (100 ms),
     * lets the interval run for a moment, then runs `end`.
     */
    function undoProbe(name: string, key: string, end: string): string {
      return pluginSource({
        name,
        head: `const started = ((globalThis as unknown as Record<string, Array<{ aborted: string[]; ticks: number; fired: number }>>)[${JSON.stringify(key)}] ??= []);`,
        initialize: `      const mine = { aborted: [] as string[], ticks: 0, fired: 0 };
      started.push(mine);
      ctx.signal.addEventListener('abort', () => mine.aborted.push(String((ctx.signal.reason as Error).message)));
      setInterval(() => { mine.ticks++; }, 10);
      setTimeout(() => { mine.fired++; }, 100);
      await new Promise((r) => setTimeout(r, 30));
${end}`,
      });
    }

    async function failedLoad(name: string, end: string, code: string): Promise<{ view: any; started: Started[] }> {
      const key = `__ph_undo_${db.kind}_${process.pid}_${name}`;
      await insertRow(name, writePlugin(plugins.dir, name, undoProbe(name, key, end)));
      const view = await waitFor(async () => {
        const b = await plugin(t, name);
        return b.state === 'error' ? b : undefined;
      }, `${name} to be in error`);
      assert.equal(view.last_error.code, code, view.last_error.message);
      const started = startedBy(key);
      assert.ok(started.length > 0, 'initialize ran');
      for (const s of started) assert.ok(s.ticks > 0, 'the interval ran while initialize did (the probe sees a live timer)');
      return { view, started };
    }

    /** Every timer of `started` still armed would have fired by the time a 150 ms timer armed now fires. */
    async function assertTimersCleared(started: Started[]): Promise<void> {
      const before = started.map((s) => ({ ticks: s.ticks, fired: s.fired }));
      await afterTimersDue(150);
      assert.deepEqual(
        started.map((s) => ({ ticks: s.ticks, fired: s.fired })),
        before,
        'no timer started in initialize fired after the failed load',
      );
    }

    test('case 06: after initialize throws, its ctx.signal is aborted and the timers it started are cleared', async () => {
      const { view, started } = await failedLoad('u06-undo', "      throw new Error('init exploded');", 'PH_ERR_HOOK_FAILED');
      assert.match(view.last_error.message, /^u06-undo: initialize\(\) threw: init exploded/);
      for (const s of started) {
        assert.deepEqual(s.aborted, ['load failed'], 'ctx.signal aborted by the failed load');
        assert.equal(s.fired, 0);
      }
      await assertTimersCleared(started);
      await assertHealthyUntouched();
    });

    test('case 07: initialize that never settles is cut at HOOK_TIMEOUT_MS; its ctx.signal is aborted, its timers cleared', async () => {
      const { view, started } = await failedLoad('u07-undo', '      await new Promise(() => {});', 'PH_ERR_HOOK_TIMEOUT');
      assert.equal(view.last_error.message, `u07-undo: initialize() did not finish within ${t.config.hookTimeoutMs} ms`);
      for (const s of started) assert.deepEqual(s.aborted, ['initialize timed out'], 'ctx.signal aborted while initialize still ran');
      await assertTimersCleared(started);
      await assertHealthyUntouched();
    });

    test('a fixed source clears the error on the next reload', async () => {
      const name = caseName('r', BAD_CASES[0]!);
      writeFileSync(path.join(plugins.dir, name, 'main.ts'), pluginSource({ name, version: '3.0.0', route: caseRoute(name) }));
      await repo().bumpGeneration(name);
      const p = await waitFor(async () => {
        const b = await plugin(t, name);
        return b.serving?.version === '3.0.0' ? b : undefined;
      }, `${name} to serve the fixed version`);
      assert.equal(p.last_error, null);
      assert.deepEqual((await getJson(`${t.url}${caseRoute(name)}`)).body, { plugin: name, version: '3.0.0' });
      await assertHealthyUntouched();
    });
  });
});

describe('compile errors without the type check (TYPECHECK=0)', () => {
  test('a missing package and a syntax error still name file:line:column', async () => {
    const pl = tempDir('ph-plugins-');
    const art = tempDir('ph-art-');
    try {
      const compiler = new Compiler({ artifactsDir: art.dir, pluginsDir: pl.dir, typecheck: false });
      for (const id of ['14', '01']) {
        const c = BAD_CASES.find((x) => x.id === id)!;
        const name = caseName('n', c);
        const src = c.source(name, caseRoute(name));
        const dir = writePlugin(pl.dir, name, src);
        await assert.rejects(compiler.compile(dir), (err: unknown) => {
          assert.ok(isHostError(err, c.code as 'PH_ERR_COMPILE_RESOLVE'), String(err));
          const marker = id === '14' ? 'IMPORT' : 'SYNTAX';
          assert.match(err.message, new RegExp(`^${name}/main\\.ts:${lineOf(src, marker)}:\\d+: `));
          return true;
        });
      }
    } finally {
      pl.cleanup();
      art.cleanup();
    }
  });
});
