/**
 * Plugin sources for tests, from one generator: a valid plugin serving `GET <route>` with `{ plugin, version }`,
 * in which every part can be changed or replaced (the broken plugins of `test/fixtures/bad-plugins.ts` are
 * this plugin with one part replaced). Plus the plugins directories the tests write them into.
 */
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, tempDir } from './util.js';

export interface PluginSourceOptions {
  /** Plugin name, returned by `getMetadata()` (it must equal the directory name). */
  name: string;
  /** Default `1.0.0`. */
  version?: string;
  /** The route the plugin serves and declares; default `/${name}`. */
  route?: string;
  /** Endpoints declared in `getMetadata()`; default `GET route`; `null`: none declared. */
  endpoints?: Array<{ method: string; path: string }> | null;
  /**
   * A marked plugin: its answers carry `instance`, new for every loaded instance (a reload of the same version
   * is visible from outside), and it logs `initializing NAME VERSION` in `initialize` and
   * `cleaned up NAME VERSION` (with `instance`) in `cleanup`.
   */
  marked?: boolean;
  /** `initialize` waits this long first. */
  initMs?: number;
  /** `initialize` throws an `Error` with this message. */
  initThrows?: string;
  /** Also serves `GET <route>/slow`, which logs `slow request started` (with `instance` when marked) and answers after this long. */
  slowMs?: number;
  /** Code before the factory (imports, module state). */
  head?: string;
  /** Code at the start of the factory, which runs once per loaded instance. */
  factory?: string;
  /** Replaces the whole object `getMetadata()` returns (source text of an expression). */
  metadata?: string;
  /** Code appended to `initialize(ctx)`. */
  initialize?: string;
  /** Replaces the body of `registerRoutes(server)`. */
  routes?: string;
  /** Body of `cleanup(ctx)` (after the marked log line). */
  cleanup?: string;
  /** Body of a `healthCheck(ctx)` method (none when unset). */
  healthCheck?: string;
}

const q = JSON.stringify;

/** Source of a plugin (see `PluginSourceOptions`); with only a name, a valid plugin serving `GET /<name>` with `{ plugin, version }`. */
export function pluginSource(o: PluginSourceOptions): string {
  const version = o.version ?? '1.0.0';
  const route = o.route ?? `/${o.name}`;
  const endpoints = o.endpoints === undefined ? [{ method: 'GET', path: route }] : o.endpoints;
  const metadata =
    o.metadata ??
    `({ name: ${q(o.name)}, version: ${q(version)}, description: 'test plugin', author: 'tests'${
      endpoints === null ? '' : `, endpoints: ${q(endpoints)}`
    } })`;
  const answer = `{ plugin: ${q(o.name)}, version: ${q(version)}${o.marked ? ', instance' : ''} }`;
  const routes =
    o.routes ??
    [
      `      server.get(${q(route)}, async () => (${answer}));`,
      o.slowMs === undefined
        ? ''
        : [
            `      server.get(${q(`${route}/slow`)}, async () => {`,
            `        server.log.info(${o.marked ? '{ instance }' : '{}'}, 'slow request started');`,
            `        await new Promise((r) => setTimeout(r, ${o.slowMs}));`,
            `        return ${answer};`,
            '      });',
          ].join('\n'),
    ].join('\n');
  const initialize = [
    o.marked ? `      ctx.log.info(${q(`initializing ${o.name} ${version}`)});` : '',
    o.initMs === undefined ? '' : `      await new Promise((r) => setTimeout(r, ${o.initMs}));`,
    o.initThrows === undefined ? '' : `      throw new Error(${q(o.initThrows)});`,
    o.initialize ?? '',
  ];
  const cleanup = [o.marked ? `      ctx.log.info({ instance }, ${q(`cleaned up ${o.name} ${version}`)});` : '', o.cleanup ?? ''];
  return [
    "import { definePlugin } from 'plugin-host/sdk';",
    o.head ?? '',
    'export const newPlugin = definePlugin(() => {',
    o.marked ? '  const instance = Math.random().toString(36).slice(2);' : '',
    o.factory ?? '',
    '  return {',
    `    getMetadata: () => ${metadata},`,
    '    async initialize(ctx) {',
    ...initialize,
    '    },',
    '    registerRoutes(server) {',
    routes,
    '    },',
    '    async cleanup(ctx) {',
    ...cleanup,
    '    },',
    o.healthCheck === undefined ? '' : `    async healthCheck(ctx) {\n      ${o.healthCheck}\n    },`,
    '  };',
    '});',
    '',
  ].join('\n');
}

/** Writes `source` as the entry file of plugin directory `name` under `pluginsDir`; returns the directory. */
export function writePlugin(pluginsDir: string, name: string, source: string, file = 'main.ts'): string {
  const dir = path.join(pluginsDir, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, file), source);
  return dir;
}

/** A plugins directory holding a copy of the example powertable plugin. */
export function pluginsDirWithPowertable(): { dir: string; cleanup(): void } {
  const t = tempDir('ph-plugins-');
  cpSync(path.join(ROOT, 'plugins', 'powertable'), path.join(t.dir, 'powertable'), { recursive: true });
  return t;
}

/** A plugin registering the given routes (each answers who it is). */
export function routesPlugin(name: string, routes: Array<[method: string, url: string]>, version = '1.0.0'): string {
  const regs = routes
    .map(
      ([m, u]) =>
        `    server.route({ method: ${JSON.stringify(m)}, url: ${JSON.stringify(u)}, handler: async () => ({ captured: ${JSON.stringify(name)} }) });`,
    )
    .join('\n');
  return `import { definePlugin } from 'plugin-host/sdk';
export const newPlugin = definePlugin(() => ({
  getMetadata: () => ({ name: ${JSON.stringify(name)}, version: ${JSON.stringify(version)}, description: 'd', author: 'a' }),
  initialize() {},
  registerRoutes(server) {
${regs}
  },
  cleanup() {},
}));
`;
}
