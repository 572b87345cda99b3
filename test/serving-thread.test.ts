// The serving thread only serves: the TypeScript checker never loads in it, whether the node compiles plugins
// (checks run in a worker thread) or only loads published artifacts, and once a node serves, registering, compiling,
// publishing and loading a plugin never blocks it on the file system (no synchronous call on the plugins or artifacts
// directories, no synchronous esbuild call); checked in real server processes.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import postgres from 'postgres';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { pluginSource, pluginsDirWithPowertable, writePlugin } from './support/plugin-sources.js';
import { killAllServers, startServer } from './support/server-process.js';
import { getJson, ROOT, tempDir, waitFor } from './support/util.js';

const PROBE = pathToFileURL(path.join(ROOT, 'test', 'support', 'typescript-probe.mjs')).href;
const SYNC_PROBE = pathToFileURL(path.join(ROOT, 'test', 'support', 'sync-io-probe.mjs')).href;
const TOKEN = 'serving-thread-token';

describe('the serving thread never loads TypeScript (PostgreSQL, server processes)', () => {
  const temps: Array<{ cleanup(): void }> = [];
  let db: TestDatabase;
  after(async () => {
    await killAllServers();
    await db?.drop();
    for (const t of temps) t.cleanup();
  });

  test('a node that compiles (checks in its worker) and a node that only loads artifacts', async () => {
    db = await createTestDatabase();
    const plugins = pluginsDirWithPowertable();
    const [dataA, dataB, empty, probes] = [tempDir('ph-data-'), tempDir('ph-data-'), tempDir('ph-empty-'), tempDir('ph-probe-')];
    temps.push(plugins, dataA, dataB, empty, probes);
    const probeEnv = (name: string, pluginsDir: string, dataDir: string) => ({
      NODE_OPTIONS: `--import=${PROBE} --import=${SYNC_PROBE}`,
      TS_PROBE_OUT: path.join(probes.dir, `${name}.json`),
      SYNC_PROBE_OUT: path.join(probes.dir, `${name}-sync.json`),
      SYNC_PROBE_DIRS: [realpathSync(pluginsDir), path.join(realpathSync(dataDir), 'artifacts')].join(path.delimiter),
    });
    const a = await startServer({
      name: 'compiling-node',
      env: {
        PLUGINS_DIR: plugins.dir,
        DATA_DIR: dataA.dir,
        DATABASE_URL: db.url,
        ADMIN_TOKEN: TOKEN,
        ...probeEnv('a', plugins.dir, dataA.dir),
      },
    });
    const b = await startServer({
      name: 'artifact-node',
      env: { PLUGINS_DIR: empty.dir, DATA_DIR: dataB.dir, DATABASE_URL: db.url, DISCOVER: '0', ...probeEnv('b', empty.dir, dataB.dir) },
    });
    assert.equal((await getJson(`${b.url}/hello`)).status, 200, 'the artifact node serves the published version');
    // both serve: from here on, their probes record any synchronous file-system or esbuild call
    process.kill(a.pid, 'SIGUSR2');
    process.kill(b.pid, 'SIGUSR2');
    // a new version compiled and type-checked while serving: the check runs in the worker
    writePlugin(plugins.dir, 'typed', pluginSource({ name: 'typed' }));
    const reg = await getJson(`${a.adminUrl}/plugins`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ path: 'typed' }),
    });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    await waitFor(async () => (await getJson(`${b.url}/typed`)).status === 200, 'the artifact node to load it');
    // a new version through the database: notification, compile, publication, the artifact fetched by node B
    writePlugin(plugins.dir, 'typed', pluginSource({ name: 'typed', version: '2.0.0' }));
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      await sql`UPDATE plugins SET version = '2.0.0' WHERE name = 'typed'`;
    } finally {
      await sql.end();
    }
    for (const node of [a, b]) {
      await waitFor(async () => (await getJson(`${node.url}/typed`)).body?.version === '2.0.0', 'both nodes to serve version 2.0.0');
    }
    await Promise.all([a.stop(), b.stop()]);
    for (const name of ['a', 'b']) {
      const out = path.join(probes.dir, `${name}.json`);
      assert.ok(existsSync(out), `the probe of node ${name} reported`);
      assert.deepEqual(JSON.parse(readFileSync(out, 'utf8')), [], `node ${name}'s serving thread loaded TypeScript`);
      const sync = path.join(probes.dir, `${name}-sync.json`);
      assert.ok(existsSync(sync), `the synchronous-I/O probe of node ${name} reported`);
      assert.deepEqual(JSON.parse(readFileSync(sync, 'utf8')), [], `node ${name}'s serving thread blocked on the file system or esbuild`);
    }
  });
});
