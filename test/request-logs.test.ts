// What the default log level writes about plugin requests: Fastify's pair of lines, bound to the plugin and a
// request id, without credentials; and a plugin cannot write a line that names another plugin.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { onEachDatabase } from './support/databases.js';
import { startTestHost, type TestHost } from './support/host.js';
import { pluginSource, writePlugin } from './support/plugin-sources.js';
import { tempDir, waitFor } from './support/util.js';

const BEARER = 'Bearer sekret-bearer-7f3a';
const COOKIE = 'session=sekret-cookie-91bc';
const PROXY = 'Basic sekret-proxy-2d4e';

/** A plugin that logs what a careless or hostile author would: the raw headers, and keys the host owns. */
const LOUD = pluginSource({
  name: 'loud',
  routes: [
    "      server.get('/loud', async (request) => {",
    '        request.log.info({ headers: request.headers, req: request.raw }, "headers as received");',
    "        request.log.info({ plugin: 'victim', reqId: 'forged', node: 'other' }, 'impersonating');",
    "        request.log.child({ plugin: 'victim' }).info('impersonating through a child');",
    "        request.log.child({}, { formatters: { log: (o) => o } }).info({ plugin: 'victim' }, 'impersonating through formatters');",
    '        return { ok: true };',
    '      });',
  ].join('\n'),
  initialize: "      ctx.log.info({ plugin: 'victim' }, 'impersonating at initialize');",
});

onEachDatabase('request logs', (db) => {
  let t: TestHost;
  let plugins: { dir: string; cleanup(): void };

  before(async () => {
    plugins = tempDir('ph-plugins-');
    writePlugin(plugins.dir, 'loud', LOUD);
    writePlugin(plugins.dir, 'victim', pluginSource({ name: 'victim' }));
    t = await startTestHost({ ...db.hostOptions, pluginsDir: plugins.dir, env: { LOG_LEVEL: 'info' } });
  });
  after(async () => {
    await t?.close();
    plugins?.cleanup();
  });

  test('a plugin request is logged as received and as completed, with status, time, plugin and request id; no credential', async () => {
    const res = await fetch(`${t.url}/loud?q=1`, {
      headers: { authorization: BEARER, cookie: COOKIE, 'proxy-authorization': PROXY, 'x-api-key': 'sekret-key-5a5a' },
    });
    assert.equal(res.status, 200);
    const completed = await waitFor(() => t.logs.find((l) => l.msg === 'request completed' && l.plugin === 'loud'), 'request completed');
    const received = t.logs.find((l) => l.msg === 'incoming request' && l.plugin === 'loud');
    assert.ok(received, 'an "incoming request" line');
    assert.deepEqual(received.req, { method: 'GET', url: '/loud?q=1' });
    assert.equal(typeof received.reqId, 'string');
    assert.equal(completed.reqId, received.reqId, 'both lines carry the same request id');
    assert.deepEqual(completed.res, { statusCode: 200 });
    assert.equal(typeof completed.responseTime, 'number');

    const all = JSON.stringify(t.logs.lines);
    for (const secret of ['sekret-bearer', 'sekret-cookie', 'sekret-proxy', 'sekret-key']) {
      assert.ok(!all.includes(secret), `${secret} is in no log line`);
    }
    const dumped = t.logs.find((l) => l.msg === 'headers as received') as { headers: Record<string, unknown> };
    assert.equal(dumped.headers.authorization, '[REDACTED]');
    assert.equal(dumped.headers.cookie, '[REDACTED]');
    assert.equal(typeof dumped.headers['user-agent'], 'string', 'other headers stay');

    // request ids are unique across plugins (each plugin has its own Fastify instance)
    await fetch(`${t.url}/victim`);
    const victimLine = await waitFor(() => t.logs.find((l) => l.msg === 'request completed' && l.plugin === 'victim'), 'victim completed');
    assert.notEqual(victimLine.reqId, completed.reqId);
  });

  test("a plugin's log lines cannot name another plugin, nor set the request id", async () => {
    await fetch(`${t.url}/loud`);
    for (const msg of [
      'impersonating',
      'impersonating through a child',
      'impersonating through formatters',
      'impersonating at initialize',
    ]) {
      const line = await waitFor(() => t.logs.find((l) => l.msg === msg), msg);
      assert.equal(line.plugin, 'loud', `${msg}: ${JSON.stringify(line)}`);
      assert.notEqual(line.reqId, 'forged');
      assert.equal(line.node, undefined);
    }
    assert.ok(!t.logs.lines.some((l) => l.plugin === 'victim' && String(l.msg).startsWith('impersonating')));
  });
});
