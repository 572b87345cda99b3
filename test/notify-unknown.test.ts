// A NOTIFY naming a plugin no node knows costs one indexed read and leaves nothing behind: no state, no
// rows, no memory.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { HOST_PATH_PREFIXES } from '../src/model/index.js';
import { createTestDatabase, type DbKind } from './support/databases.js';
import { sqlByHand, startTestHost } from './support/host.js';
import { pluginsDirWithPowertable } from './support/plugin-sources.js';
import { getJson } from './support/util.js';

/** A full garbage collection, from a test (the flag is set at run time: no special runner flags). */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

async function heapAfterGc(): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < 3; i++) {
    collectGarbage();
    await new Promise((r) => setImmediate(r));
    samples.push(process.memoryUsage().heapUsed);
  }
  return samples.sort((x, y) => x - y)[1] as number;
}

for (const kind of ['pglite', 'postgres'] as DbKind[]) {
  describe(`notifications naming unknown plugins on ${kind}`, () => {
    test('NOTIFYs naming 10,000 unknown plugins cost one read each and leave nothing behind', async () => {
      const plugins = pluginsDirWithPowertable();
      const db = kind === 'postgres' ? await createTestDatabase() : undefined;
      const t = await startTestHost({ kind, pluginsDir: plugins.dir, ...(db ? { databaseUrl: db.url } : {}) });
      try {
        // 64-character names, the longest valid: a leak of one small entry per name would show as megabytes
        const storm = (n: number, seed: string) =>
          sqlByHand(
            t,
            db?.url,
            `SELECT count(pg_notify('plugin_changes', json_build_object('operation', 'UPDATE', 'table', 'plugins', 'id', g::text,
               'name', 'ghost-' || $1 || '-' || substr(md5(g::text) || md5(g::text), 1, 50))::text)) FROM generate_series(1, ${n}) g`,
            [seed],
          );
        /** Sends `n` notifications, then a real change, and waits until everything before it was reconciled. */
        const settle = async (n: number, seed: string) => {
          const reloaded = new Promise<void>((resolve) => {
            const on = (name: string) => {
              if (name !== 'powertable') return;
              t.host.manager.off('loaded', on);
              resolve();
            };
            t.host.manager.on('loaded', on);
          });
          await storm(n, seed);
          // delivered after every notification above: once its reload ran, theirs were all requested
          await sqlByHand(t, db?.url, "UPDATE plugins SET generation = generation + 1 WHERE name = 'powertable'");
          await reloaded;
          await t.host.manager.idle();
        };
        // the first storm grows what is allocated once (compiled code, the driver's buffers); the second must not grow
        // the paths the running host owns are those its documented list names (the scaffold and the docs use the list)
        assert.deepEqual([...t.host.dispatcher.hostPaths.segments].sort(), [...HOST_PATH_PREFIXES].sort());
        await settle(10_000, 'warm');
        const before = await heapAfterGc();
        await settle(10_000, 'storm');
        const grown = (await heapAfterGc()) - before;
        assert.deepEqual(
          t.host.manager.snapshots().map((s) => s.name),
          ['powertable'],
          'no state kept for names that are not plugins',
        );
        assert.deepEqual(t.host.manager.retained(), { records: 1, scheduled: 0, published: 1 }, 'nothing remembered of them');
        const states = await sqlByHand(t, db?.url, "SELECT count(*)::int AS n FROM plugin_node_state WHERE plugin_name LIKE 'ghost-%'");
        assert.equal((states[0] as { n: number }).n, 0, 'nothing written for them');
        assert.ok(grown < 1024 * 1024, `the heap grew by ${Math.round(grown / 1024)} KB over 10,000 unknown names`);
        assert.equal((await getJson(`${t.url}/hello`)).status, 200);
      } finally {
        await t.close();
        await db?.drop();
        plugins.cleanup();
      }
    });
  });
}
