import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { compileErrors, validate } from '@readme/openapi-parser';
import { onEachDatabase } from './support/databases.js';
import { startTestHost, type TestHost } from './support/host.js';
import { pluginsDirWithPowertable, writePlugin } from './support/plugin-sources.js';
import { getJson } from './support/util.js';

const TOKEN = 'openapi-token-123';
const AUTH = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };

/** A plugin with parameters, a query, a body, nullable fields, a shared schema and a wildcard. */
const CATALOG = `import { definePlugin } from 'plugin-host/sdk';
export const newPlugin = definePlugin(() => ({
  getMetadata: () => ({ name: 'catalog', version: '2.1.0', description: 'Items for sale', author: 'tests' }),
  initialize() {},
  registerRoutes(server) {
    server.addSchema({ $id: 'item', type: 'object', properties: { id: { type: 'integer' }, label: { type: ['string', 'null'] } }, required: ['id'] });
    server.get('/items/:id', {
      schema: {
        summary: 'One item',
        operationId: 'getItem',
        params: { type: 'object', properties: { id: { type: 'integer', minimum: 1 } }, required: ['id'] },
        querystring: { type: 'object', properties: { expand: { type: 'boolean' } } },
        response: { 200: { $ref: 'item#' }, 404: { type: 'object', properties: { message: { type: 'string' } } } },
      },
    }, async (req) => ({ id: (req.params as { id: number }).id, label: null }));
    server.post('/items', {
      schema: {
        body: { type: 'object', properties: { label: { type: 'string', maxLength: 20 } }, required: ['label'], additionalProperties: false },
        response: { 201: { type: 'object', properties: { id: { type: 'integer' } } } },
      },
    }, async (_req, reply) => reply.code(201).send({ id: 1 }));
    server.get('/files/*', async () => ({ ok: true }));
  },
  cleanup() {},
}));
`;

async function assertValid(doc: unknown): Promise<void> {
  const result = await validate(structuredClone(doc) as never);
  assert.ok(result.valid, `the document is valid OpenAPI: ${result.valid ? '' : compileErrors(result)}`);
}

onEachDatabase('live OpenAPI', (db) => {
  let t: TestHost;
  let plugins: { dir: string; cleanup(): void };

  before(async () => {
    plugins = pluginsDirWithPowertable();
    t = await startTestHost({ ...db.hostOptions, pluginsDir: plugins.dir, env: { ADMIN_TOKEN: TOKEN } });
  });
  after(async () => {
    await t?.close();
    plugins.cleanup();
  });

  test("the data plane's document: its reads, health and the plugin routes, no control-plane operation", async () => {
    const { status, body: doc } = await getJson(`${t.url}/openapi.json`);
    assert.equal(status, 200);
    await assertValid(doc);
    assert.deepEqual(doc.servers, [{ url: t.url, description: 'data plane' }]);
    for (const p of ['/plugins', '/plugins/{name}', '/plugins/{name}/health', '/healthz', '/readyz', '/openapi.json', '/hello']) {
      assert.ok(doc.paths[p], `data-plane path ${p}`);
    }
    for (const p of ['/metrics', '/events', '/console', '/cluster', '/plugins/{name}/enable', '/plugins/{name}/versions']) {
      assert.equal(doc.paths[p], undefined, `${p} is the control plane's`);
    }
    assert.equal(doc.paths['/plugins'].post, undefined, 'no registration on the data plane');
    assert.equal(doc.paths['/plugins/{name}'].delete, undefined, 'no removal on the data plane');
  });

  test('describes core, admin and loaded plugin routes, and validates', async () => {
    const { status, body: doc } = await getJson(`${t.adminUrl}/openapi.json`);
    assert.equal(status, 200);
    assert.equal(doc.openapi, '3.1.0');
    await assertValid(doc);
    assert.deepEqual(doc.servers, [{ url: t.adminUrl, description: 'control plane' }]);
    assert.deepEqual(
      doc.paths['/hello'].servers,
      [{ url: t.url, description: 'data plane: plugin routes' }],
      'plugin routes answer on the data plane',
    );
    for (const p of ['/plugins', '/plugins/{name}', '/plugins/{name}/health', '/healthz', '/readyz', '/metrics', '/openapi.json']) {
      assert.ok(doc.paths[p], `core path ${p}`);
    }
    for (const a of ['enable', 'disable', 'toggle', 'reload']) {
      const op = doc.paths[`/plugins/{name}/${a}`]?.post;
      assert.ok(op, `admin route ${a}`);
      assert.deepEqual(op.tags, ['admin']);
      assert.deepEqual(op.security, [{ bearerAuth: [] }]);
    }
    for (const m of ['get', 'put', 'patch']) {
      const op = doc.paths['/plugins/{name}/config']?.[m];
      assert.ok(op, `${m.toUpperCase()} /plugins/{name}/config`);
      assert.deepEqual(op.tags, ['admin']);
      assert.deepEqual(op.security, [{ bearerAuth: [] }]);
      assert.ok(op.responses['200'].content['application/json'].schema.properties.revision, `${m}: the answer is described`);
    }
    assert.ok(doc.paths['/plugins/{name}/config'].patch.requestBody.content['application/merge-patch+json'], 'PATCH takes a merge patch');
    assert.ok(doc.paths['/plugins'].post, 'POST /plugins');
    assert.ok(doc.paths['/plugins/{name}'].delete, 'DELETE /plugins/{name}');
    assert.equal(doc.components.securitySchemes.bearerAuth.scheme, 'bearer');
    assert.deepEqual(doc.paths['/hello'].get.tags, ['powertable']);
    assert.ok(doc.paths['/hello'].get.responses['200'].content['application/json'].schema.properties.tables, 'plugin response schema');
    assert.ok(
      doc.tags.some((x: { name: string }) => x.name === 'powertable'),
      'the plugin has its tag',
    );
    assert.ok(!Object.keys(doc.paths).some((p) => p.startsWith('/docs')), 'Swagger UI routes are hidden');
  });

  test('a plugin loaded later appears with its schemas, and disappears once unloaded', async () => {
    writePlugin(plugins.dir, 'catalog', CATALOG);
    const reg = await getJson(`${t.adminUrl}/plugins`, { method: 'POST', headers: AUTH, body: JSON.stringify({ path: 'catalog' }) });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    assert.equal(reg.body.state, 'serving');

    const { body: doc } = await getJson(`${t.adminUrl}/openapi.json`);
    await assertValid(doc);
    const get = doc.paths['/items/{id}']?.get;
    assert.ok(get, 'GET /items/{id}');
    assert.deepEqual(get.tags, ['catalog']);
    assert.equal(get.operationId, 'catalog.getItem');
    assert.ok(
      get.parameters.some((p: { in: string; name: string; required: boolean }) => p.in === 'path' && p.name === 'id' && p.required),
      'path parameter',
    );
    assert.ok(
      get.parameters.some((p: { in: string; name: string }) => p.in === 'query' && p.name === 'expand'),
      'query parameter',
    );
    const item = JSON.stringify(get.responses['200']);
    const resolved = item.includes('"label"') || /#\/components\/schemas\/catalog\./.test(item);
    assert.ok(resolved, `the shared schema is described: ${item}`);
    const post = doc.paths['/items']?.post;
    assert.ok(post.requestBody.content['application/json'].schema.required.includes('label'), 'request body schema');
    assert.ok(post.responses['201'], 'documented status');
    assert.ok(doc.paths['/files/{*}'] ?? doc.paths['/files/*'] ?? Object.keys(doc.paths).find((p) => p.startsWith('/files/')), 'wildcard');
    assert.ok(doc.tags.some((x: { name: string; description: string }) => x.name === 'catalog' && x.description.includes('2.1.0')));
    assert.deepEqual((await getJson(`${t.url}/items/7`)).body, { id: 7, label: null });

    const off = await getJson(`${t.adminUrl}/plugins/catalog/disable`, { method: 'POST', headers: { authorization: AUTH.authorization } });
    assert.equal(off.status, 200);
    const { body: after } = await getJson(`${t.adminUrl}/openapi.json`);
    await assertValid(after);
    assert.equal(after.paths['/items/{id}'], undefined);
    assert.equal(after.paths['/items'], undefined);
    assert.ok(!after.tags.some((x: { name: string }) => x.name === 'catalog'));
    assert.ok(!Object.keys(after.components?.schemas ?? {}).some((k) => k.startsWith('catalog.')));
    assert.ok(after.paths['/hello'], 'other plugins stay');
  });

  test("every schema of the host's routes compiles (they compile on first use, not at start)", () => {
    // a route's validators and serializers that no request needed yet are still pending after start
    const pending = t.host.schemas.compileAll();
    assert.ok(pending > 20, `the host's route schemas waited for their first use (${pending} pending)`);
    assert.equal(t.host.schemas.compileAll(), 0, 'each compiles once');
  });

  test('Swagger UI at /docs shows the same live document', async () => {
    const page = await fetch(`${t.url}/docs/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    assert.match(await page.text(), /swagger/i);
    const ui = await getJson(`${t.url}/docs/json`);
    const live = await getJson(`${t.url}/openapi.json`);
    assert.equal(ui.status, 200);
    assert.deepEqual(Object.keys(ui.body.paths).sort(), Object.keys(live.body.paths).sort());
  });
});
