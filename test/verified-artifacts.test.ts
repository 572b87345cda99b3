// Every bundle is verified against the SHA-256 recorded when it was published, before a byte of it is
// evaluated: a tampered copy in the database or on disk is refused, checked against real server processes.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import postgres from 'postgres';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { pluginsDirWithPowertable, routesPlugin, writePlugin } from './support/plugin-sources.js';
import { killAllServers, type ServerProcess, startServer } from './support/server-process.js';
import { getJson, tempDir } from './support/util.js';

describe('verified artifacts (PostgreSQL, server processes)', () => {
  const temps: Array<{ cleanup(): void }> = [];
  let db: TestDatabase;
  let sql: postgres.Sql;

  after(async () => {
    await killAllServers();
    await sql?.end();
    await db?.drop();
    for (const t of temps) t.cleanup();
  });

  test('a tampered bundle in the database is refused by a node without the source; the node that has it is unaffected', async () => {
    db = await createTestDatabase();
    sql = postgres(db.url, { max: 1, onnotice: () => {} });
    const plugins = pluginsDirWithPowertable();
    writePlugin(plugins.dir, 'verified', routesPlugin('verified', [['GET', '/verified']]));
    const [dataA, dataB, emptyPlugins] = [tempDir('ph-data-'), tempDir('ph-data-'), tempDir('ph-empty-')];
    temps.push(plugins, dataA, dataB, emptyPlugins);
    const a = await startServer({
      name: 'artifacts-a',
      env: { PLUGINS_DIR: plugins.dir, DATA_DIR: dataA.dir, DATABASE_URL: db.url, NODE_ID: 'node-a' },
    });
    const [row] = await sql`SELECT artifact_hash FROM plugins WHERE name = 'verified'`;
    const hash = row?.artifact_hash as string;
    const [art] =
      await sql`SELECT sha256, encode(sha256(convert_to(bundle, 'UTF8')), 'hex') AS actual FROM plugin_artifacts WHERE hash = ${hash}`;
    assert.equal(art?.sha256, art?.actual, 'every published bundle carries its digest');
    await sql`UPDATE plugin_artifacts SET bundle = bundle || ${'\n;globalThis.tampered = true;\n'} WHERE hash = ${hash}`;

    const b = await startServer({
      name: 'artifacts-b',
      env: { PLUGINS_DIR: emptyPlugins.dir, DATA_DIR: dataB.dir, DATABASE_URL: db.url, NODE_ID: 'node-b', DISCOVER: '0' },
    });
    const onB = (await getJson(`${b.url}/plugins/verified`)).body;
    assert.equal(onB.state, 'error');
    assert.equal(onB.last_error.code, 'PH_ERR_ARTIFACT_INTEGRITY');
    assert.match(
      onB.last_error.message,
      new RegExp(
        `^verified: artifact ${hash} \\(version 1\\.0\\.0\\) from the database failed its integrity check: sha256 [0-9a-f]{64}, expected ${art?.sha256}`,
      ),
    );
    assert.equal((await fetch(`${b.url}/verified`)).status, 404);
    assert.equal((await fetch(`${b.url}/hello`)).status, 200, 'the untampered plugin loads from the database');
    assert.deepEqual(
      readdirSync(path.join(dataB.dir, 'artifacts')).filter((f) => f.startsWith(hash)),
      [],
      'nothing of it was cached',
    );
    // the error is visible from any node; the node with the source serves its own build
    const view = (await getJson(`${a.url}/plugins/verified`)).body;
    const nodeB = view.nodes.find((n: { node_id: string }) => n.node_id === 'node-b');
    assert.equal(nodeB.last_error.code, 'PH_ERR_ARTIFACT_INTEGRITY');
    assert.deepEqual((await getJson(`${a.url}/verified`)).body, { captured: 'verified' });
    await Promise.all([a.stop(), b.stop()]);
  });

  test('a tampered artifact file is deleted and rebuilt from source at the next start', async () => {
    const plugins = pluginsDirWithPowertable();
    const data = tempDir('ph-data-');
    temps.push(plugins, data);
    const env = { PLUGINS_DIR: plugins.dir, DATA_DIR: data.dir, DATABASE_URL: db.url, NODE_ID: 'node-file' };
    await sql`DELETE FROM plugins`;
    await sql`DELETE FROM plugin_removals`;
    let s: ServerProcess = await startServer({ name: 'artifacts-file', env });
    const [row] = await sql`SELECT artifact_hash FROM plugins WHERE name = 'powertable'`;
    const file = path.join(data.dir, 'artifacts', `${row?.artifact_hash}.cjs`);
    const good = readFileSync(file, 'utf8');
    await s.stop();
    writeFileSync(file, good.replace('PowerTable plugin - GET /hello', 'PowerTable tampered'));
    s = await startServer({ name: 'artifacts-file-2', env });
    try {
      const logged = s.findLog((l) => l.code === 'PH_ERR_ARTIFACT_INTEGRITY' && l.plugin === 'powertable');
      assert.ok(logged, 'the mismatch is logged against the plugin');
      assert.equal((await getJson(`${s.url}/hello`)).body.message, 'PowerTable plugin - GET /hello', 'the rebuilt version serves');
      assert.equal(readFileSync(file, 'utf8'), good, 'the file was rebuilt');
    } finally {
      await s.stop();
    }
  });
});
