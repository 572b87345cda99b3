/**
 * Runs in its own process with --expose-gc. Mode `host`: a host (PostgreSQL)
 * reloading one plugin whose source changes every time, through the real path
 * (UPDATE, notify, compile, load, swap, retire). Mode `esm`: the naive
 * alternative, the same bundle imported with `import()` and a cache-busting
 * query. Prints one JSON line: memory after `first` and after `total` reloads.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';
import Fastify from 'fastify';
import { SDK_ENTRY } from '../src/compiler/sdk-path.js';
import { loadConfig } from '../src/config/index.js';
import { startHost } from '../src/host.js';
import type { PluginFactory } from '../src/sdk/index.js';
import { createDatabase } from './lib/pg.js';
import { smallPluginSource, tempDir, writePlugin } from './lib/plugins.js';
import { sleep } from './lib/util.js';

const [mode = 'host', firstArg = '10', totalArg = '1000'] = process.argv.slice(2);
const FIRST = Number(firstArg);
const TOTAL = Number(totalArg);
const PAYLOAD = 16 * 1024;
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');

async function measure(): Promise<{ rss: number; heapUsed: number; external: number }> {
  for (let i = 0; i < 4; i++) {
    gc?.();
    await sleep(20);
  }
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external };
}

const source = (i: number) => smallPluginSource('memplugin', `1.0.${i}`, 2, PAYLOAD);
const out: Record<string, unknown> = { mode };
const tmp = tempDir(`mem-${mode}`);

if (mode === 'host') {
  const db = await createDatabase('mem');
  const dir = writePlugin(tmp.dir, 'memplugin', source(0));
  const host = await startHost(
    loadConfig({
      ...process.env,
      PORT: '0',
      DATABASE_URL: db.url,
      PLUGINS_DIR: tmp.dir,
      ARTIFACTS_DIR: path.join(tmp.dir, '.artifacts'),
      LOG_LEVEL: 'warn',
    }),
  );
  try {
    for (let i = 1; i <= TOTAL; i++) {
      const version = `1.0.${i}`;
      writeFileSync(path.join(dir, 'main.ts'), source(i));
      const loaded = new Promise<void>((resolve) => {
        const on = (name: string) => {
          if (name === 'memplugin' && host.manager.serving('memplugin')?.version === version) {
            host.manager.off('loaded', on);
            resolve();
          }
        };
        host.manager.on('loaded', on);
      });
      await db.sql`UPDATE plugins SET version = ${version} WHERE name = 'memplugin'`;
      await loaded;
      if (i === FIRST || i === TOTAL) {
        await host.manager.idle();
        await sleep(100); // the replaced version drains and unloads
        out[`after${i}`] = await measure();
      }
    }
  } finally {
    await host.close();
    await db.drop();
  }
} else {
  const file = path.join(tmp.dir, 'plugin.mjs');
  for (let i = 1; i <= TOTAL; i++) {
    const entry = path.join(tmp.dir, 'main.ts');
    writeFileSync(entry, source(i));
    esbuild.buildSync({
      entryPoints: [entry],
      bundle: true,
      outfile: file,
      platform: 'node',
      format: 'esm',
      alias: { 'plugin-host/sdk': SDK_ENTRY },
      logLevel: 'silent',
    });
    const mod = (await import(`${pathToFileURL(file).href}?v=${i}`)) as { newPlugin: PluginFactory };
    const plugin = mod.newPlugin();
    plugin.getMetadata();
    const app = Fastify();
    const ctx = { name: 'memory', log: app.log, signal: new AbortController().signal, sourceDir: undefined, config: {} };
    app.register(async (child) => {
      await plugin.registerRoutes(child, ctx);
    });
    await app.ready();
    await app.close();
    if (i === FIRST || i === TOTAL) out[`after${i}`] = await measure();
  }
}
tmp.cleanup();
console.log(JSON.stringify(out));
process.exit(0);
