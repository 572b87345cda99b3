import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { pluginsDirWithPowertable, writePlugin } from './support/plugin-sources.js';
import { killAllServers, type ServerProcess, startServer } from './support/server-process.js';
import { getJson, tempDir } from './support/util.js';

// Paths come from configuration, never from where the process was started: a server started from `/`
// with its plugins and data outside the project compiles, type-checks and serves them the same.
describe('started from another working directory', () => {
  const plugins = pluginsDirWithPowertable();
  const data = tempDir('ph-data-');
  let server: ServerProcess | undefined;

  after(async () => {
    await server?.stop();
    await killAllServers();
    plugins.cleanup();
    data.cleanup();
  });

  test('plugins outside the project are type-checked against the host and served', async () => {
    writePlugin(
      plugins.dir,
      'typed',
      `import type { FastifyInstance } from 'fastify';
import { definePlugin } from 'plugin-host/sdk';
function routes(server: FastifyInstance): void {
  server.get('/typed', async () => ({ node: typeof process.version }));
}
export const newPlugin = definePlugin(() => ({
  getMetadata: () => ({ name: 'typed', version: '1.0.0', description: 'uses fastify and node types', author: 'tests' }),
  initialize() {},
  registerRoutes: routes,
  cleanup() {},
}));
`,
    );
    server = await startServer({ name: 'from-root', cwd: '/', env: { PLUGINS_DIR: plugins.dir, DATA_DIR: data.dir } });
    const hello = await getJson(`${server.url}/hello`);
    assert.equal(hello.status, 200);
    assert.equal(hello.body.plugin, 'powertable');
    const typed = await getJson(`${server.url}/typed`);
    assert.equal(typed.status, 200, JSON.stringify((await getJson(`${server.url}/plugins/typed`)).body));
    assert.deepEqual(typed.body, { node: 'string' });
  });
});
