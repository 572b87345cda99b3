import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { onEachDatabase } from './support/databases.js';
import { sqlByHand, startTestHost, type TestHost } from './support/host.js';
import { pluginSource, pluginsDirWithPowertable, writePlugin } from './support/plugin-sources.js';
import { getJson, tempDir, waitFor } from './support/util.js';

// Case 9, route ownership over time: of two plugins claiming one route, the earlier
// registered keeps it — at start whichever loads faster, and across restarts — and
// the refused one gets the route once the owner is gone.

/** Claims GET /hello like powertable, and is slow to initialize. */
const SLOW_CLAIM = pluginSource({ name: 'a-claim', route: '/hello', endpoints: null, initMs: 300 });

// PGlite and PostgreSQL suites run side by side, each with its own host and directories; the tests of a suite run in order.
describe('route ownership between conflicting plugins', { concurrency: true }, () => {
  onEachDatabase('route ownership between conflicting plugins', { concurrency: 1 }, (db) => {
    let plugins: { dir: string; cleanup(): void };
    let data: { dir: string; cleanup(): void };
    let t: TestHost | undefined;

    const started: TestHost[] = [];
    const start = async () => {
      const h = await startTestHost({
        ...db.hostOptions,
        pluginsDir: plugins.dir,
        dataDir: data.dir,
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
    });
    after(async () => {
      for (const h of started) await h.close();
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
      await sqlByHand(host, db.url, "UPDATE plugins SET status = 'inactive' WHERE name = 'a-claim'");
      await waitFor(async () => (await view('powertable')).state === 'serving', 'powertable to take /hello');
      assert.equal((await getJson(`${host.url}/hello`)).body.plugin, 'powertable');
      assert.equal((await view('powertable')).last_error, null);
      await sqlByHand(host, db.url, "UPDATE plugins SET status = 'active' WHERE name = 'a-claim'");
      const claim = await waitFor(async () => {
        const v = await view('a-claim');
        return v.state === 'error' ? v : undefined;
      }, 'a-claim to be refused');
      assert.equal(claim.last_error.code, 'PH_ERR_ROUTE_CONFLICT');
      assert.equal((await getJson(`${host.url}/hello`)).body.plugin, 'powertable');
    });
  });
});
