/** An in-process host on an ephemeral port, its log lines, and SQL "by hand" beside it. */
import { Writable } from 'node:stream';
import postgres from 'postgres';
import { type HostConfig, loadConfig } from '../../src/config/index.js';
import { Host, type HostOptions } from '../../src/host.js';
import { createLogger } from '../../src/logger.js';
import type { DbKind } from './databases.js';
import { tempDir } from './util.js';

/** Collects log lines as objects, so tests can assert what was logged. */
export class LogSink extends Writable {
  readonly lines: Record<string, unknown>[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    for (const l of chunk.toString().split('\n')) {
      if (l.trim() === '') continue;
      try {
        this.lines.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        /* not JSON */
      }
    }
    cb();
  }
  find(pred: (l: Record<string, unknown>) => boolean): Record<string, unknown> | undefined {
    return this.lines.find(pred);
  }
}

export interface TestHost {
  host: Host;
  /** The data plane: plugin routes and the public reads. */
  url: string;
  /** The control plane: admin writes, console, feed, metrics. */
  adminUrl: string;
  logs: LogSink;
  config: HostConfig;
  close(): Promise<void>;
}

/**
 * Hosts of one test process start one at a time. They share the process's event loop, and a start type-checks the
 * plugins it finds in one synchronous program (the worker thread takes over once the host serves): on a loaded
 * machine, one start could stall another's Fastify boot past Fastify's 10 s plugin timeout (FST_ERR_PLUGIN_TIMEOUT).
 */
let starting: Promise<unknown> = Promise.resolve();

/** Starts an in-process host on an ephemeral port (after any other start of this process has finished). */
export async function startTestHost(
  opts: { kind: DbKind; pluginsDir: string; databaseUrl?: string; dataDir?: string; env?: Record<string, string> } & HostOptions,
): Promise<TestHost> {
  const data = opts.dataDir === undefined ? tempDir('ph-data-') : undefined;
  const dataDir = opts.dataDir ?? (data as { dir: string }).dir;
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    PLUGINS_DIR: opts.pluginsDir,
    DATA_DIR: dataDir,
    LOG_LEVEL: 'info',
    HOOK_TIMEOUT_MS: '1500',
    DRAIN_TIMEOUT_MS: '2000',
    RECONCILE_INTERVAL_MS: '30000',
    ...(opts.kind === 'postgres' && opts.databaseUrl ? { DATABASE_URL: opts.databaseUrl } : {}),
    ...opts.env,
  });
  const logs = new LogSink();
  const host = new Host(config, { ...opts, logger: createLogger('debug', logs) });
  const start = starting.then(() => host.start());
  starting = start.catch(() => {});
  try {
    await start;
  } catch (err) {
    await host.close().catch(() => {});
    data?.cleanup();
    throw err;
  }
  return {
    host,
    url: host.url,
    adminUrl: host.adminUrl,
    logs,
    config,
    async close() {
      await host.close();
      data?.cleanup();
    },
  };
}

/** Runs SQL "by hand": on PostgreSQL from a separate connection (as psql would), on PGlite through the embedded instance. */
export async function sqlByHand(t: TestHost, databaseUrl: string | undefined, text: string, params: unknown[] = []): Promise<unknown[]> {
  if (t.host.db.kind === 'pglite') return t.host.db.query(text, params);
  const sql = postgres(databaseUrl as string, { max: 1, onnotice: () => {} });
  try {
    return (await sql.unsafe(text, params as never[])) as unknown as unknown[];
  } finally {
    await sql.end();
  }
}
