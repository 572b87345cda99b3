// The serving thread only serves: the TypeScript checker never loads in it, whether the node compiles plugins
// (checks run in a worker thread) or only loads published artifacts; checked in real server processes.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { pluginSource, pluginsDirWithPowertable, writePlugin } from './support/plugin-sources.js';
import { killAllServers, startServer } from './support/server-process.js';
import { getJson, ROOT, tempDir, waitFor } from './support/util.js';

const PROBE = pathToFileURL(path.join(ROOT, 'test', 'support', 'typescript-probe.mjs')).href;
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
    const probeEnv = (name: string) => ({ NODE_OPTIONS: `--import=${PROBE}`, TS_PROBE_OUT: path.join(probes.dir, `${name}.json`) });
    const a = await startServer({
      name: 'compiling-node',
      env: { PLUGINS_DIR: plugins.dir, DATA_DIR: dataA.dir, DATABASE_URL: db.url, ADMIN_TOKEN: TOKEN, ...probeEnv('a') },
    });
    const b = await startServer({
      name: 'artifact-node',
      env: { PLUGINS_DIR: empty.dir, DATA_DIR: dataB.dir, DATABASE_URL: db.url, DISCOVER: '0', ...probeEnv('b') },
    });
    assert.equal((await getJson(`${b.url}/hello`)).status, 200, 'the artifact node serves the published version');
    // a new version compiled and type-checked while serving: the check runs in the worker
    writePlugin(plugins.dir, 'typed', pluginSource({ name: 'typed' }));
    const reg = await getJson(`${a.url}/plugins`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ path: 'typed' }),
    });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    await waitFor(async () => (await getJson(`${b.url}/typed`)).status === 200, 'the artifact node to load it');
    await Promise.all([a.stop(), b.stop()]);
    for (const name of ['a', 'b']) {
      const out = path.join(probes.dir, `${name}.json`);
      assert.ok(existsSync(out), `the probe of node ${name} reported`);
      assert.deepEqual(JSON.parse(readFileSync(out, 'utf8')), [], `node ${name}'s serving thread loaded TypeScript`);
    }
  });
});
