import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { HostError } from '../errors/index.js';
import { HOST_PATH_PREFIXES, isValidPluginName, PLUGIN_NAME_PATTERN } from '../model/index.js';

/** The route a new plugin serves: `/<name>`, or `/<name>-plugin` when that would be a reserved host prefix. */
export function scaffoldRoute(name: string): string {
  const route = `/${name}`;
  return HOST_PATH_PREFIXES.includes(name) ? `${route}-plugin` : route;
}

function mainSource(name: string, route: string): string {
  return `import { definePlugin } from 'plugin-host/sdk';

const NAME = '${name}';
const VERSION = '0.1.0';

/**
 * ${name}: serves \`GET ${route}\`. Its configuration (\`plugin-host config set ${name} greeting=hi\`)
 * is checked against \`configSchema\`, and \`ctx.config\` is typed from it.
 */
export const newPlugin = definePlugin(() => ({
  getMetadata: () => ({
    name: NAME,
    version: VERSION,
    description: 'The ${name} plugin',
    author: '',
    endpoints: [{ method: 'GET', path: '${route}', handler: 'hello' }],
    configSchema: {
      type: 'object',
      properties: {
        greeting: { type: 'string', minLength: 1, default: 'hello', description: 'First word of the answer' },
      },
      additionalProperties: false,
    },
  }),
  initialize(ctx) {
    ctx.log.info('${name} initialized');
  },
  registerRoutes(server, ctx) {
    server.get(
      '${route}',
      {
        schema: {
          summary: 'Says hello',
          response: {
            200: {
              type: 'object',
              properties: { plugin: { type: 'string' }, version: { type: 'string' }, message: { type: 'string' } },
              required: ['plugin', 'version', 'message'],
            },
          },
        },
      },
      // read at each request: a configuration change reaches the handler as it is
      async () => ({ plugin: NAME, version: VERSION, message: \`\${ctx.config.greeting} from ${name}\` }),
    );
  },
  cleanup(ctx) {
    ctx.log.info('${name} cleaned up');
  },
  healthCheck: () => ({ ok: true }),
}));
`;
}

function testSource(name: string, route: string): string {
  return `// Run from the project root: node --import tsx --test <plugins dir>/${name}/main.test.ts
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Fastify from 'fastify';
import { newPlugin } from './main.js';

test('${name}: metadata, route, health check and cleanup', async () => {
  const plugin = newPlugin();
  const metadata = plugin.getMetadata();
  assert.equal(metadata.name, '${name}');
  assert.match(metadata.version, /^\\d+\\.\\d+\\.\\d+/);
  assert.equal(metadata.configSchema?.type, 'object');

  const app = Fastify();
  // the host gives ctx.config validated, with the schema's defaults applied
  const ctx = { name: metadata.name, log: app.log, signal: new AbortController().signal, sourceDir: undefined, config: { greeting: 'hi' } };
  await plugin.initialize(ctx);
  await app.register(async (child) => {
    await plugin.registerRoutes(child, ctx);
  });
  const res = await app.inject({ method: 'GET', url: '${route}' });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.json(), { plugin: '${name}', version: metadata.version, message: 'hi from ${name}' });

  assert.deepEqual(await plugin.healthCheck?.(ctx), { ok: true });
  await plugin.cleanup(ctx);
  await app.close();
});
`;
}

/**
 * Creates `<pluginsDir>/<name>/` with an entry file serving one route and a
 * test for it. Refuses an invalid name and an existing non-empty directory.
 */
export function scaffoldPlugin(pluginsDir: string, name: string): { dir: string; files: string[]; route: string } {
  if (!isValidPluginName(name)) {
    throw new HostError('PH_ERR_PLUGIN_NAME_INVALID', `"${name}" is not a valid plugin name (${PLUGIN_NAME_PATTERN})`);
  }
  const dir = path.join(pluginsDir, name);
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    throw new HostError('PH_ERR_PLUGIN_EXISTS', `${dir} already exists and is not empty`);
  }
  const route = scaffoldRoute(name);
  mkdirSync(dir, { recursive: true });
  const files = [path.join(dir, 'main.ts'), path.join(dir, 'main.test.ts')];
  writeFileSync(files[0] as string, mainSource(name, route));
  writeFileSync(files[1] as string, testSource(name, route));
  return { dir, files, route };
}
