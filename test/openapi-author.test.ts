// The OpenAPI document respects what a plugin's author wrote: a plugin hands the host its schema transform
// (zod's `jsonSchemaTransform`), so a zod route's body reads as JSON Schema; the author's tags are kept beside
// the plugin's name; a `hide: true` route stays out. A transform that throws costs its route's schema only.
import assert from 'node:assert/strict';
import { symlinkSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { compileErrors, validate } from '@readme/openapi-parser';
import { onEachDatabase } from './support/databases.js';
import { startTestHost, type TestHost } from './support/host.js';
import { writePlugin } from './support/plugin-sources.js';
import { getJson, ROOT, tempDir, waitFor } from './support/util.js';

const ZODDED = `import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { definePlugin } from 'plugin-host/sdk';
import { z } from 'zod';
export const newPlugin = definePlugin(() => ({
  getMetadata: () => ({ name: 'zodded', version: '1.0.0', description: 'zod routes', author: 'tests' }),
  initialize() {},
  openapiTransform: jsonSchemaTransform,
  registerRoutes(server) {
    server.setValidatorCompiler(validatorCompiler);
    server.setSerializerCompiler(serializerCompiler);
    const app = server.withTypeProvider<ZodTypeProvider>();
    app.post(
      '/zod/items',
      {
        schema: {
          tags: ['items'],
          body: z.object({ label: z.string().max(20), count: z.number().int() }),
          response: { 201: z.object({ id: z.number() }) },
        },
      },
      async (req, reply) => reply.code(201).send({ id: req.body.count }),
    );
    app.get('/zod/secret', { schema: { hide: true } }, async () => ({ hidden: true }));
  },
  cleanup() {},
}));
`;

const PLAIN = `import { definePlugin } from 'plugin-host/sdk';
export const newPlugin = definePlugin(() => ({
  getMetadata: () => ({ name: 'plain', version: '1.0.0', description: 'JSON Schema routes', author: 'tests' }),
  initialize() {},
  registerRoutes(server) {
    server.get('/plain/orders', { schema: { tags: ['orders', 'plain'], summary: 'orders' } }, async () => []);
    server.get('/plain/internal', { schema: { hide: true, tags: ['internal'] } }, async () => ({}));
  },
  cleanup() {},
}));
`;

const THROWING = `import { definePlugin } from 'plugin-host/sdk';
export const newPlugin = definePlugin(() => ({
  getMetadata: () => ({ name: 'throwing', version: '1.0.0', description: 'a transform that throws', author: 'tests' }),
  initialize() {},
  openapiTransform() {
    throw new Error('no transform today');
  },
  registerRoutes(server) {
    server.post('/throwing/x', { schema: { body: { type: 'object', properties: { a: { type: 'string' } } } } }, async () => ({ ok: true }));
  },
  cleanup() {},
}));
`;

const TOKEN = 'openapi-author-token';

onEachDatabase('OpenAPI as the author wrote it', (db) => {
  let t: TestHost;
  let plugins: { dir: string; cleanup(): void };

  before(async () => {
    plugins = tempDir('ph-plugins-');
    const dir = writePlugin(plugins.dir, 'zodded', ZODDED);
    // zod and its type provider come from this project's own dev dependencies: nothing is fetched
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
    writePlugin(plugins.dir, 'plain', PLAIN);
    writePlugin(plugins.dir, 'throwing', THROWING);
    t = await startTestHost({ ...db.hostOptions, pluginsDir: plugins.dir, env: { ADMIN_TOKEN: TOKEN } });
    for (const name of ['zodded', 'plain', 'throwing']) {
      await waitFor(async () => {
        const p = await getJson(`${t.url}/plugins/${name}`);
        return p.body?.state === 'serving' ? true : undefined;
      }, `${name} to serve`).catch(async (err) => {
        throw new Error(`${err.message}: ${JSON.stringify((await getJson(`${t.url}/plugins/${name}`)).body)}`);
      });
    }
  });
  after(async () => {
    await t?.close();
    plugins?.cleanup();
  });

  test("a zod route's body and answer read as JSON Schema, through the plugin's own transform; validation still is zod's", async () => {
    const { body: doc } = await getJson(`${t.url}/openapi.json`);
    const post = doc.paths['/zod/items']?.post;
    assert.ok(post, `the zod route is documented: ${Object.keys(doc.paths).join(', ')}`);
    const body = post.requestBody.content['application/json'].schema;
    assert.equal(body.type, 'object', JSON.stringify(body));
    assert.deepEqual(body.properties.label, { type: 'string', maxLength: 20 });
    assert.equal(body.properties.count.type, 'integer');
    assert.deepEqual([...body.required].sort(), ['count', 'label']);
    assert.ok(!JSON.stringify(post).includes('"_def"') && !JSON.stringify(post).includes('"~standard"'), 'no zod internals');
    assert.equal(post.responses['201'].content['application/json'].schema.properties.id.type, 'number');
    const ok = await getJson(`${t.url}/zod/items`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"label":"a","count":3}',
    });
    assert.equal(ok.status, 201);
    const bad = await getJson(`${t.url}/zod/items`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"label":"a","count":1.5}',
    });
    assert.equal(bad.status, 400);
    const result = await validate(structuredClone(doc));
    assert.ok(result.valid, `the document is valid OpenAPI: ${result.valid ? '' : compileErrors(result)}`);
  });

  test("the author's tags are kept, the plugin's name added; hide: true routes stay hidden", async () => {
    const { body: doc } = await getJson(`${t.url}/openapi.json`);
    assert.deepEqual(doc.paths['/zod/items'].post.tags, ['items', 'zodded']);
    assert.deepEqual(doc.paths['/plain/orders'].get.tags, ['orders', 'plain'], 'a tag equal to the plugin name is not doubled');
    assert.equal(doc.paths['/zod/secret'], undefined, 'a hidden zod route is not published');
    assert.equal(doc.paths['/plain/internal'], undefined, 'a hidden route is not published');
    assert.equal((await getJson(`${t.url}/plain/internal`)).status, 200, 'hidden from the document, still served');
  });

  test("a plugin whose transform throws loads and serves; only that route's schema is left out", async () => {
    const { body: doc } = await getJson(`${t.url}/openapi.json`);
    const op = doc.paths['/throwing/x']?.post;
    assert.ok(op, 'the route is listed');
    assert.equal(op.requestBody, undefined, 'without the schema its transform could not give');
    assert.deepEqual(op.tags, ['throwing']);
    assert.ok(
      t.logs.lines.some((l) => String(l.msg).includes('openapiTransform threw')),
      'the failure is logged',
    );
  });

  test('in a worker the transform runs in the worker: the zod route still reads as JSON Schema', async () => {
    const r = await getJson(`${t.adminUrl}/plugins/zodded/isolation`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ mode: 'worker' }),
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.serving.isolation, 'worker');
    const { body: doc } = await getJson(`${t.url}/openapi.json`);
    const body = doc.paths['/zod/items'].post.requestBody.content['application/json'].schema;
    assert.deepEqual(body.properties.label, { type: 'string', maxLength: 20 });
    assert.deepEqual(doc.paths['/zod/items'].post.tags, ['items', 'zodded']);
    assert.equal(doc.paths['/zod/secret'], undefined);
  });
});
