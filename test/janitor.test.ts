// Collection of what nothing refers to: artifacts (rows and files) no plugin row names and no live node
// serves, once older than the retention, and rows of nodes whose heartbeat is long gone.
import assert from 'node:assert/strict';
import { existsSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ARTIFACT_FORMAT, artifactHeader, bundleDigest } from '../src/artifacts/index.js';
import { createTestDatabase, DB_KINDS, type TestDatabase } from './support/databases.js';
import { sqlByHand, startTestHost, type TestHost } from './support/host.js';
import { pluginsDirWithPowertable } from './support/plugin-sources.js';

const DAY = 86_400_000;

for (const kind of DB_KINDS) {
  describe(`collection of unreferenced artifacts and dead nodes on ${kind}`, () => {
    let t: TestHost;
    let db: TestDatabase | undefined;
    let plugins: { dir: string; cleanup(): void };

    before(async () => {
      plugins = pluginsDirWithPowertable();
      if (kind === 'postgres') db = await createTestDatabase();
      t = await startTestHost({
        kind,
        pluginsDir: plugins.dir,
        ...(db ? { databaseUrl: db.url } : {}),
        env: { ARTIFACT_RETENTION_MS: String(2 * DAY), NODE_RETENTION_MS: String(DAY) },
      });
    });
    after(async () => {
      await t?.close();
      await db?.drop();
      plugins?.cleanup();
    });

    const q = (text: string, params: unknown[] = []) => sqlByHand(t, db?.url, text, params);

    async function artifact(hash: string, ageMs: number): Promise<string> {
      const bundle = `${artifactHeader(ARTIFACT_FORMAT, hash)}module.exports = {};\n`;
      await q(
        `INSERT INTO plugin_artifacts (hash, plugin_name, version, format, bundle, sha256, size, created_at)
         VALUES ($1, 'old', '0.0.1', $2, $3, $4, $5, now() - ($6 || ' milliseconds')::interval)`,
        [hash, ARTIFACT_FORMAT, bundle, bundleDigest(bundle), bundle.length, String(ageMs)],
      );
      const file = path.join(t.config.artifactsDir, `${hash}.cjs`);
      writeFileSync(file, bundle);
      const when = new Date(Date.now() - ageMs);
      utimesSync(file, when, when);
      return file;
    }

    test('old unreferenced artifacts and long-dead nodes go; what is named, served or recent stays', async () => {
      const [live] = (await q("SELECT artifact_hash FROM plugins WHERE name = 'powertable'")) as Array<{ artifact_hash: string }>;
      const liveHash = live?.artifact_hash as string;
      // the serving artifact is old too: it must stay because a row names it and this node serves it
      await q("UPDATE plugin_artifacts SET created_at = now() - interval '30 days' WHERE hash = $1", [liveHash]);
      const oldFile = await artifact('oldunreferenced', 10 * DAY);
      const recentFile = await artifact('recentunreferenced', 60_000);
      // a dead node (heartbeat two days ago) that serves an old artifact: neither keeps anything alive
      const deadFile = await artifact('servedbydead', 10 * DAY);
      await q("INSERT INTO plugin_host_nodes (node_id, address, pid, heartbeat_at) VALUES ('dead-node', '', 1, now() - interval '2 days')");
      await q(
        "INSERT INTO plugin_node_state (node_id, plugin_name, state, serving_hash) VALUES ('dead-node', 'powertable', 'serving', 'servedbydead')",
      );
      // a crash leftover
      const tmp = path.join(t.config.artifactsDir, 'leftover.cjs.123.tmp');
      writeFileSync(tmp, 'partial');
      utimesSync(tmp, new Date(Date.now() - 10 * DAY), new Date(Date.now() - 10 * DAY));

      await (t.host.janitor as NonNullable<typeof t.host.janitor>).runOnce();

      const hashes = ((await q('SELECT hash FROM plugin_artifacts ORDER BY hash')) as Array<{ hash: string }>).map((r) => r.hash);
      assert.deepEqual(hashes, [liveHash, 'recentunreferenced'].sort());
      assert.equal(existsSync(oldFile), false);
      assert.equal(existsSync(deadFile), false);
      assert.equal(existsSync(tmp), false);
      assert.equal(existsSync(recentFile), true, 'younger than the retention');
      assert.equal(existsSync(path.join(t.config.artifactsDir, `${liveHash}.cjs`)), true);
      const nodes = ((await q('SELECT node_id FROM plugin_host_nodes')) as Array<{ node_id: string }>).map((r) => r.node_id);
      assert.deepEqual(nodes, [t.config.nodeId], 'the dead node went, this one stays');
      const states = (await q("SELECT count(*)::int AS n FROM plugin_node_state WHERE node_id = 'dead-node'")) as Array<{ n: number }>;
      assert.equal(states[0]?.n, 0, 'its observed state went with it');
      assert.equal((await fetch(`${t.url}/hello`)).status, 200);
    });
  });
}
