import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Database, openDatabase, PluginRepository } from '../src/db/index.js';
import { onEachDatabase } from './support/databases.js';
import { sqlByHand, startTestHost, type TestHost } from './support/host.js';
import { pluginSource, pluginsDirWithPowertable, writePlugin } from './support/plugin-sources.js';
import { getJson, waitFor } from './support/util.js';

// Case 21: 50 concurrent enable / disable / reload writes for one plugin, from
// several connections at once. The node ends in the state of the last committed
// write, never has two loads of the plugin in flight, and never serves two
// versions or duplicate routes. The plugin counts its concurrent initialize calls
// in a global (plugin code runs in the host's realm).

const WRITES = 50;

function countingPlugin(key: string): string {
  return pluginSource({
    name: 'busy',
    endpoints: [
      { method: 'GET', path: '/busy' },
      { method: 'POST', path: '/busy' },
    ],
    head: `const g = globalThis as unknown as Record<string, { inflight: number; max: number; inits: number; cleanups: number }>;
const c = (g[${JSON.stringify(key)}] ??= { inflight: 0, max: 0, inits: 0, cleanups: 0 });`,
    initialize: `      c.inflight++;
      c.inits++;
      c.max = Math.max(c.max, c.inflight);
      try {
        await new Promise((r) => setTimeout(r, 5));
      } finally {
        c.inflight--;
      }`,
    routes: `      server.get('/busy', async () => ({ plugin: 'busy' }));
      server.post('/busy', async () => ({ plugin: 'busy' }));`,
    cleanup: '      c.cleanups++;',
  });
}

type Op = 'enable' | 'disable' | 'reload';

/** A deterministic mix of the three writes, ending in either state depending on the round. */
function ops(round: number): Op[] {
  const out: Op[] = [];
  for (let i = 0; i < WRITES; i++) out.push((['enable', 'disable', 'reload'] as const)[(i * 7 + round) % 3] as Op);
  return out;
}

/** Round 3: enables and reloads only, so the plugin stays active and every reload must replace the serving version. */
function opsWithoutDisable(): Op[] {
  return Array.from({ length: WRITES }, (_, i) => (i % 2 === 0 ? 'reload' : 'enable'));
}

// PGlite and PostgreSQL suites run side by side, each with its own host and directories; the tests of a suite run in order.
describe('50 concurrent writes for one plugin', { concurrency: true }, () => {
  onEachDatabase('50 concurrent writes for one plugin', { concurrency: 1 }, (db) => {
    let t: TestHost;
    let plugins: { dir: string; cleanup(): void };
    /** Writers on their own connections (a pool on PostgreSQL; the embedded instance on PGlite). */
    let writer: { db: Database; repo: PluginRepository } | undefined;
    const key = `__ph_busy_${db.kind}_${process.pid}`;
    const g = globalThis as unknown as Record<string, { inflight: number; max: number; inits: number; cleanups: number }>;
    /** Every load of busy on this node: the generation of the row it was loaded for. */
    const loaded: number[] = [];
    let unloaded = 0;

    before(async () => {
      plugins = pluginsDirWithPowertable();
      writePlugin(plugins.dir, 'busy', countingPlugin(key));
      t = await startTestHost({ ...db.hostOptions, pluginsDir: plugins.dir });
      if (db.url !== undefined) {
        const wdb = await openDatabase({ databaseUrl: db.url, dataDir: undefined });
        writer = { db: wdb, repo: new PluginRepository(wdb.orm) };
      }
      t.host.manager.on('loaded', (name) => {
        if (name === 'busy') loaded.push(t.host.manager.servingGeneration('busy'));
      });
      t.host.manager.on('unloaded', (name) => {
        if (name === 'busy') unloaded++;
      });
    });
    after(async () => {
      await writer?.db.close();
      await t?.close();
      plugins?.cleanup();
      delete g[key];
    });

    async function write(repo: PluginRepository, op: Op): Promise<void> {
      if (op === 'enable') await repo.setStatus('busy', 'active');
      else if (op === 'disable') await repo.setStatus('busy', 'inactive');
      else await repo.bumpGeneration('busy');
    }

    async function busyRow(): Promise<{ status: string; generation: number }> {
      const [row] = (await sqlByHand(t, db.url, "SELECT status, generation FROM plugins WHERE name = 'busy'")) as {
        status: string;
        generation: number;
      }[];
      assert.ok(row);
      return row;
    }

    /** Waits until the node serves (or has unloaded) what `row` says, and its lanes are idle. */
    async function converged(row: { status: string; generation: number }): Promise<void> {
      const want = row.status === 'active' ? 'serving' : 'unloaded';
      await waitFor(
        async () => {
          const v = (await getJson(`${t.url}/plugins/busy`)).body;
          if (v.state !== want) return false;
          return want === 'unloaded' || t.host.manager.servingGeneration('busy') === row.generation;
        },
        `busy to be ${want}${want === 'serving' ? ` for generation ${row.generation}` : ''}`,
      );
      await t.host.manager.idle();
    }

    for (const round of [0, 1, 2, 3]) {
      test(`round ${round}: the node converges to the last committed write`, async () => {
        const repo = writer?.repo ?? t.host.repo;
        const start = await busyRow();
        const wasServing = t.host.manager.serving('busy') !== undefined;
        const loadsBefore = loaded.length;
        const unloadsBefore = unloaded;
        const results = await Promise.allSettled((round === 3 ? opsWithoutDisable() : ops(round)).map((op) => write(repo, op)));
        assert.deepEqual(
          results.filter((r) => r.status === 'rejected'),
          [],
        );
        // the last committed write is what the row holds now
        const row = await busyRow();
        assert.ok(row.generation > start.generation, 'the round bumped the generation');
        await converged(row);
        const served = (await getJson(`${t.url}/busy`)).status;
        assert.equal(served, row.status === 'active' ? 200 : 404);
        // the writes caused the node's work: a load for the last generation written, or the unload of what served
        if (row.status === 'active') {
          assert.ok(
            loaded.slice(loadsBefore).includes(row.generation),
            `a load of generation ${row.generation} happened in this round (loads: ${loaded.slice(loadsBefore).join(', ')})`,
          );
        } else if (wasServing) {
          assert.ok(unloaded > unloadsBefore, 'the version serving before the round was unloaded');
        }

        // nothing is left to do: another full reconcile neither loads nor unloads
        const settledLoads = loaded.length;
        const settledUnloads = unloaded;
        await t.host.manager.reconcileAll();
        await t.host.manager.idle();
        assert.equal(loaded.length, settledLoads, 'the serving version already matched the last write (status and generation)');
        assert.equal(unloaded, settledUnloads);

        // one version at most, no duplicate routes
        const table = t.host.dispatcher.current;
        const serving = t.host.manager.serving('busy');
        if (row.status === 'active') {
          assert.ok(serving);
          assert.equal(table.plugins.get('busy'), serving, 'the table holds exactly the serving version');
          assert.equal(table.find('GET', '/busy'), serving);
          assert.equal(table.find('POST', '/busy'), serving);
          const keys = serving.routes.map((r) => `${r.method} ${r.url}`);
          assert.equal(new Set(keys).size, keys.length, 'no duplicate routes');
        } else {
          assert.equal(serving, undefined);
          assert.equal(table.plugins.has('busy'), false);
          assert.equal(table.find('GET', '/busy'), undefined);
        }
        const eps = (await sqlByHand(
          t,
          db.url,
          "SELECT e.method, e.path FROM plugin_endpoints e JOIN plugins p ON p.id = e.plugin_id WHERE p.name = 'busy'",
        )) as {
          method: string;
          path: string;
        }[];
        const epKeys = eps.map((e) => `${e.method} ${e.path}`);
        assert.equal(new Set(epKeys).size, epKeys.length, 'no duplicate endpoint rows');
        assert.equal((await getJson(`${t.url}/hello`)).status, 200, 'powertable unaffected');
      });
    }

    test('at most one load of the plugin was ever in flight', async () => {
      // Three waves of 50 concurrent writes, each ending active, so that every wave loads at least once; loads
      // requested while one is in flight must wait for it. Counted by the plugin's initialize and by the
      // manager's state transitions, from this test's writes only.
      const repo = writer?.repo ?? t.host.repo;
      const c = g[key];
      assert.ok(c, 'the plugin ran');
      await t.host.manager.idle();
      assert.equal(c.inflight, 0);
      c.inits = 0;
      c.max = 0;
      const fromLine = t.logs.lines.length;
      for (const wave of [6, 7, 8]) {
        await Promise.all(ops(wave).map((op) => write(repo, op)));
        await repo.setStatus('busy', 'active');
        await repo.bumpGeneration('busy');
        await converged(await busyRow());
      }
      assert.ok(c.inits >= 3, `a load in every wave (${c.inits})`);
      assert.equal(c.max, 1, 'initialize never ran twice at once');
      assert.equal(c.inflight, 0);
      // the manager's own view, from its state-transition log lines in order: a move into loading or
      // reloading starts a load, the move out of it ends it
      let inFlight = 0;
      let max = 0;
      let starts = 0;
      for (const l of t.logs.lines.slice(fromLine)) {
        if (l.plugin !== 'busy' || typeof l.to !== 'string') continue;
        if (l.to === 'loading' || l.to === 'reloading') {
          inFlight++;
          starts++;
        } else if (l.from === 'loading' || l.from === 'reloading') inFlight--;
        max = Math.max(max, inFlight);
      }
      assert.ok(starts >= 3, `the manager started a load in every wave (${starts})`);
      assert.equal(max, 1, 'the manager never had two loads of busy in flight');
      assert.equal(inFlight, 0);
    });

    test('a final enable serves exactly one version', async () => {
      const repo = writer?.repo ?? t.host.repo;
      await Promise.all(ops(5).map((op) => write(repo, op)));
      await repo.setStatus('busy', 'active');
      await waitFor(async () => (await getJson(`${t.url}/busy`)).status === 200, 'busy to serve');
      await t.host.manager.idle();
      const { body } = await getJson(`${t.url}/plugins`);
      assert.equal(body.filter((p: { name: string }) => p.name === 'busy').length, 1);
      const busy = body.find((p: { name: string }) => p.name === 'busy');
      assert.equal(busy.state, 'serving');
      const eps = busy.endpoints.map((e: { method: string; path: string }) => `${e.method} ${e.path}`).sort();
      assert.deepEqual(eps, ['GET /busy', 'POST /busy']);
    });
  });
});
