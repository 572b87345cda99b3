import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { definePlugin } from '../src/sdk/index.js';
import { sqlByHand, startTestHost, type TestHost } from './support/host.js';
import { pluginsDirWithPowertable } from './support/plugin-sources.js';
import { getJson, waitFor } from './support/util.js';

const events: string[] = [];
const staticPlugin = definePlugin(() => ({
  getMetadata: () => ({ name: 'builtin', version: '3.1.4', description: 'compiled into the host', author: 'host' }),
  initialize: () => {
    events.push('init');
  },
  registerRoutes: (server) => {
    server.get('/builtin', async () => ({ builtin: true }));
  },
  cleanup: () => {
    events.push('cleanup');
  },
}));

describe('static plugins', () => {
  let t: TestHost;
  let plugins: { dir: string; cleanup(): void };
  before(async () => {
    plugins = pluginsDirWithPowertable();
    t = await startTestHost({ kind: 'pglite', pluginsDir: plugins.dir, staticPlugins: new Map([['builtin', staticPlugin]]) });
  });
  after(async () => {
    await t?.close();
    plugins.cleanup();
  });

  test('are registered as type static and served beside dynamic ones', async () => {
    const p = await getJson(`${t.url}/plugins/builtin`);
    assert.equal(p.body.type, 'static');
    assert.equal(p.body.version, '3.1.4');
    assert.equal(p.body.state, 'serving');
    assert.deepEqual((await getJson(`${t.url}/builtin`)).body, { builtin: true });
    assert.equal((await fetch(`${t.url}/hello`)).status, 200);
  });

  test('follow the same desired state: inactive unloads and runs cleanup', async () => {
    await sqlByHand(t, undefined, "UPDATE plugins SET status = 'inactive' WHERE name = 'builtin'");
    await waitFor(async () => (await fetch(`${t.url}/builtin`)).status === 404, 'builtin unloaded');
    await waitFor(() => events.includes('cleanup'), 'cleanup ran');
    await sqlByHand(t, undefined, "UPDATE plugins SET status = 'active' WHERE name = 'builtin'");
    await waitFor(async () => (await fetch(`${t.url}/builtin`)).status === 200, 'builtin back');
    assert.deepEqual(events.filter((e) => e === 'init').length, 2);
  });
});
