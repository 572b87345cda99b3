import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  createTestDatabase,
  DB_KINDS,
  getJson,
  pluginsDirWithPowertable,
  sqlByHand,
  startTestHost,
  type TestDatabase,
  type TestHost,
  tempDir,
  waitFor,
  writePlugin,
} from './helpers.js';

// Case 9, route ownership over time: of two plugins claiming one route, the earlier
// registered keeps it — at start whichever loads faster, and across restarts — and
// the refused one gets the route once the owner is gone.

/** Claims GET /hello like powertable, and is slow to initialize. */
const SLOW_CLAIM = `import { definePlugin } from 'plugin-host/sdk';
export const newPlugin = definePlugin(() => ({
  getMetadata: () => ({ name: 'a-claim', version: '1.0.0', description: '', author: '' }),
  async initialize() { await new Promise((r) => setTimeout(r, 300)); },
  registerRoutes(server) { server.get('/hello', async () => ({ plugin: 'a-claim' })); },
  cleanup() {},
}));
`;

// PGlite and PostgreSQL suites run side by side, each with its own host and directories; the tests of a suite run in order.
describe('route ownership between conflicting plugins', { concurrency: true }, () => {
  for (const kind of DB_KINDS) {
    describe(`route ownership between conflicting plugins on ${kind}`, { concurrency: 1 }, () => {
      let db: TestDatabase | undefined;
      let plugins: { dir: string; cleanup(): void };
      let data: { dir: string; cleanup(): void };
      let t: TestHost | undefined;

      const started: TestHost[] = [];
      const start = async () => {
        const h = await startTestHost({
          kind,
          pluginsDir: plugins.dir,
          dataDir: data.dir,
          ...(db ? { databaseUrl: db.url } : {}),
          // a-claim's 300 ms initialize must stay far from the hook limit, even on a loaded machine
          env: { HOOK_TIMEOUT_MS: '20000' },
        });
        started.push(h);
        return h;
      };
      const view = async (name: string) => (await getJson(`${(t as TestHost).url}/plugins/${name}`)).body;

      before(async () => {
        plugins = pluginsDirWithPowertable();
        // registered first: discovery registers directories in name order
        writePlugin(plugins.dir, 'a-claim', SLOW_CLAIM);
        data = tempDir('ph-data-');
        if (kind === 'postgres') db = await createTestDatabase();
      });
      after(async () => {
        for (const h of started) await h.close();
        await db?.drop();
        plugins?.cleanup();
        data?.cleanup();
      });

      test('at start the earlier registered plugin keeps the route even when it loads slower, on every restart', async () => {
        for (let run = 0; run < 2; run++) {
          t = await start();
          assert.equal((await getJson(`${t.url}/hello`)).body.plugin, 'a-claim', `run ${run}`);
          const pt = await view('powertable');
          assert.equal(pt.state, 'error');
          assert.equal(pt.last_error.code, 'PH_ERR_ROUTE_CONFLICT');
          assert.match(pt.last_error.message, /^powertable: route GET \/hello is already served by plugin "a-claim"/);
          assert.equal((await view('a-claim')).state, 'serving');
          await t.close();
          t = undefined;
        }
      });

      test('once the owner is disabled the refused plugin gets the route; re-enabling the owner is refused in turn', async () => {
        t = await start();
        const host = t;
        await sqlByHand(host, db?.url, "UPDATE plugins SET status = 'inactive' WHERE name = 'a-claim'");
        await waitFor(async () => (await view('powertable')).state === 'serving', 'powertable to take /hello');
        assert.equal((await getJson(`${host.url}/hello`)).body.plugin, 'powertable');
        assert.equal((await view('powertable')).last_error, null);
        await sqlByHand(host, db?.url, "UPDATE plugins SET status = 'active' WHERE name = 'a-claim'");
        const claim = await waitFor(async () => {
          const v = await view('a-claim');
          return v.state === 'error' ? v : undefined;
        }, 'a-claim to be refused');
        assert.equal(claim.last_error.code, 'PH_ERR_ROUTE_CONFLICT');
        assert.equal((await getJson(`${host.url}/hello`)).body.plugin, 'powertable');
      });
    });
  }
});
