/**
 * The baseline: a plain Fastify 5 app serving the very same plugin code (each
 * directory of PLAIN_PLUGINS is imported and its routes registered on a child
 * context, as the host does), with the host's logger settings or (PLAIN_LOGGER=off) none.
 * Started by the benchmarks as its own process, compiled to JavaScript first (bench/lib/server.ts).
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import Fastify, { LogController } from 'fastify';
import { findEntry } from '../src/discovery/index.js';
import { createLogger } from '../src/logger.js';
import type { PluginFactory } from '../src/sdk/index.js';

const log = createLogger(process.env.LOG_LEVEL ?? 'warn');
// PLAIN_LOGGER=off: the app as most are written (`logger: false`); PLAIN_LOGGER=fastify: `logger: true`, Fastify's
// default (pino at info, a line per request received and completed); otherwise pino at the host's level, as the host has
const app =
  process.env.PLAIN_LOGGER === 'off'
    ? Fastify({ logger: false })
    : process.env.PLAIN_LOGGER === 'fastify'
      ? Fastify({ logger: true })
      : Fastify({ loggerInstance: log, logController: new LogController({ disableRequestLogging: true }) });
const dirs = (process.env.PLAIN_PLUGINS ?? '').split(path.delimiter).filter((d) => d !== '');
// PLAIN_MODULES: each plugin compiled to JavaScript (same order as PLAIN_PLUGINS), so no TypeScript loader is needed
const modules = (process.env.PLAIN_MODULES ?? '').split(path.delimiter).filter((d) => d !== '');
for (const [i, dir] of dirs.entries()) {
  const entry = modules[i] ?? (await findEntry(dir));
  if (entry === undefined) throw new Error(`${dir}: no entry file`);
  const mod = (await import(pathToFileURL(entry).href)) as { newPlugin: PluginFactory };
  const plugin = mod.newPlugin();
  const ctx = { name: path.basename(dir), log, signal: new AbortController().signal, sourceDir: dir, config: {} };
  await plugin.initialize(ctx);
  app.register(async (child) => {
    await plugin.registerRoutes(child, ctx);
  });
}
app.get('/__ready', async () => ({ ok: true }));
await app.listen({ port: Number(process.env.PORT ?? 3001), host: process.env.HOST ?? '127.0.0.1' });
const stop = () => {
  app.close().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
