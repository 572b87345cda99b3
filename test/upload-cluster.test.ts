// `plugin-host push` to a cluster of two server processes sharing PostgreSQL and no disk: both PLUGINS_DIRs are
// empty. A pushed plugin (importing an npm package from its node_modules) is served by both; a new version pushed
// replaces it on both; a reload through the node that never received an upload restores the source from the
// archive stored in the database, recompiles it there, and both serve the result.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { greetingPluginSource, writeTinyPackage } from './support/archives.js';
import { cli } from './support/cli.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { pluginSource, writePlugin } from './support/plugin-sources.js';
import { killAllServers, type ServerProcess, startServer } from './support/server-process.js';
import { getJson, tempDir, waitFor } from './support/util.js';

const TOKEN = 'cluster-upload-token';

let database: TestDatabase;
const tmp = tempDir('ph-upc-');
const nodes: ServerProcess[] = [];

function dirs(node: string): { plugins: string; data: string } {
  const plugins = path.join(tmp.dir, node, 'plugins');
  const data = path.join(tmp.dir, node, 'data');
  return { plugins, data };
}

before(async () => {
  database = await createTestDatabase();
  for (const name of ['a', 'b']) {
    const d = dirs(name);
    mkdirSync(d.plugins, { recursive: true });
    nodes.push(
      await startServer({
        name: `node-${name}`,
        env: { DATABASE_URL: database.url, PLUGINS_DIR: d.plugins, DATA_DIR: d.data, ADMIN_TOKEN: TOKEN, NODE_ID: `upc-${name}` },
      }),
    );
  }
});

after(async () => {
  await killAllServers();
  await database?.drop();
  tmp.cleanup();
});

async function servedEverywhere(route: string, version: string): Promise<void> {
  for (const n of nodes) {
    await waitFor(
      async () => {
        const r = await getJson(`${n.url}${route}`);
        return r.status === 200 && r.body.version === version;
      },
      `${n.name} serves ${route} ${version}`,
      60_000,
    );
  }
}

test('push to one node of two with empty plugins directories: both serve it, a new version, a reload with no source on disk', async () => {
  const [a, b] = nodes as [ServerProcess, ServerProcess];
  const work = path.join(tmp.dir, 'laptop');
  const dir = writePlugin(work, 'pushed', greetingPluginSource('pushed'));
  writeTinyPackage(dir);

  const first = await cli(['push', dir, '--server', a.adminUrl, '--token', TOKEN, '--include-node-modules']);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /pushed: uploaded: 1\.0\.0/);
  await servedEverywhere('/pushed', '1.0.0');
  assert.equal((await getJson(`${b.url}/pushed`)).body.message, 'hello pushed from tiny-greet');

  writePlugin(work, 'pushed', greetingPluginSource('pushed', 'tiny-greet', '1.1.0'));
  // the data plane takes no upload: the same push aimed at it is a 404 and changes nothing
  const toData = await cli(['push', dir, '--server', a.url, '--token', TOKEN, '--include-node-modules']);
  assert.equal(toData.code, 1);
  assert.match(toData.stderr, /PH_ERR_NOT_FOUND/);
  await servedEverywhere('/pushed', '1.0.0');
  // without --server, PLUGIN_HOST_URL names the control plane
  const second = await cli(['push', dir, '--token', TOKEN, '--include-node-modules'], { PLUGIN_HOST_URL: a.adminUrl });
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout, /new version uploaded: 1\.1\.0/);
  await servedEverywhere('/pushed', '1.1.0');

  // node b never received an upload: no source of the plugin on its disk
  for (const n of ['a', 'b']) assert.deepEqual(readdirSync(dirs(n).plugins), []);
  assert.equal(existsSync(path.join(dirs('b').data, 'sources')), false);
  const reload = await getJson(`${b.adminUrl}/plugins/pushed/reload`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(reload.status, 200, JSON.stringify(reload.body));
  assert.equal(reload.body.recompiled, true);
  assert.ok(existsSync(path.join(dirs('b').data, 'sources')), 'node b restored the source from the database');
  for (const n of nodes) {
    await waitFor(
      async () => (await getJson(`${n.url}/plugins/pushed`)).body?.generation === reload.body.generation,
      `${n.name} sees generation ${reload.body.generation}`,
    );
  }
  await servedEverywhere('/pushed', '1.1.0');

  // a push the server refuses prints the coded error and changes nothing
  const broken = writePlugin(work, 'pushed', pluginSource({ name: 'pushed', version: '2.0.0', factory: '  const n: number = "x";' }));
  const refused = await cli(['push', broken, '--server', b.adminUrl, '--token', TOKEN]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /PH_ERR_COMPILE_TYPE: pushed\/main\.ts:\d+:\d+/);
  await servedEverywhere('/pushed', '1.1.0');
});
