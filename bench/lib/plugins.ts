import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT } from './util.js';

/** A temporary directory removed by `cleanup()`. */
export function tempDir(prefix: string): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), `ph-bench-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function writePlugin(pluginsDir: string, name: string, source: string): string {
  const dir = path.join(pluginsDir, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'main.ts'), source);
  return dir;
}

/** Copies the example plugin (GET /hello with a response schema). */
export function copyPowertable(pluginsDir: string): string {
  const dir = path.join(pluginsDir, 'powertable');
  cpSync(path.join(ROOT, 'plugins', 'powertable'), dir, { recursive: true });
  return dir;
}

/**
 * A plugin with a JSON route whose response schema describes a list of
 * records (GET /bench/json): serialization is a real part of the work.
 */
export function jsonPluginSource(): string {
  return `import { definePlugin } from 'plugin-host/sdk';

const items = Array.from({ length: 10 }, (_, i) => ({
  id: i + 1,
  name: \`item-\${i + 1}\`,
  price: Math.round((i + 1) * 9.99 * 100) / 100,
  tags: ['alpha', 'beta'],
  active: i % 2 === 0,
}));

export const newPlugin = definePlugin(() => ({
  getMetadata: () => ({
    name: 'benchjson',
    version: '1.0.0',
    description: 'JSON route with a response schema',
    author: 'bench',
    endpoints: [{ method: 'GET', path: '/bench/json' }],
  }),
  initialize() {},
  registerRoutes(server) {
    server.get(
      '/bench/json',
      {
        schema: {
          response: {
            200: {
              type: 'object',
              properties: {
                count: { type: 'integer' },
                items: {
                  type: 'array',
                  items: {
                    type: 'object',
                    properties: {
                      id: { type: 'integer' },
                      name: { type: 'string' },
                      price: { type: 'number' },
                      tags: { type: 'array', items: { type: 'string' } },
                      active: { type: 'boolean' },
                    },
                  },
                },
              },
            },
          },
        },
      },
      async () => ({ count: items.length, items }),
    );
  },
  cleanup() {},
}));
`;
}

/**
 * A small plugin named `name` at `version` serving `routes` routes under
 * `/<name>/…` (static and parametric, the last is `/<name>/version`), each answering a small JSON object.
 * `payload` adds a constant of that many bytes, so memory held per version is visible.
 */
export function smallPluginSource(name: string, version = '1.0.0', routes = 1, payload = 0): string {
  const lines: string[] = [];
  for (let i = 0; i < routes - 1; i++) {
    const url = i % 3 === 2 ? `/${name}/r${i}/:id` : `/${name}/r${i}`;
    lines.push(`    server.get(${JSON.stringify(url)}, async () => ({ plugin: NAME, version: VERSION, route: ${i} }));`);
  }
  const blob = payload > 0 ? `\nconst BLOB = ${JSON.stringify('x'.repeat(payload))} + VERSION;\n` : '';
  return `import { definePlugin } from 'plugin-host/sdk';

const NAME = ${JSON.stringify(name)};
const VERSION = ${JSON.stringify(version)};
${blob}
export const newPlugin = definePlugin(() => ({
  getMetadata: () => ({
    name: NAME,
    version: VERSION,
    description: 'benchmark plugin',
    author: 'bench',
    endpoints: [{ method: 'GET', path: ${JSON.stringify(`/${name}/version`)} }],
  }),
  initialize() {},
  registerRoutes(server) {
${lines.join('\n')}
    server.get(${JSON.stringify(`/${name}/version`)}, async () => ({ plugin: NAME, version: VERSION${payload > 0 ? ', size: BLOB.length' : ''} }));
  },
  cleanup() {},
}));
`;
}

/** Writes `count` plugins `p000`… with `routes` routes each. */
export function writeManyPlugins(pluginsDir: string, count: number, routes: number): string[] {
  return Array.from({ length: count }, (_, i) => {
    const name = `p${String(i).padStart(3, '0')}`;
    return writePlugin(pluginsDir, name, smallPluginSource(name, '1.0.0', routes));
  });
}

/** powertable's source with another version (and so another content hash). */
export function powertableSource(version: string, original: string): string {
  return original.replace(/const VERSION = '[^']*';/, `const VERSION = '${version}';`);
}
