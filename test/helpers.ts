import { randomUUID } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { type HostConfig, loadConfig } from '../src/config/index.js';
import { Host, type HostOptions } from '../src/host.js';
import { createLogger } from '../src/logger.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The local PostgreSQL server used by tests; each test file creates its own database on it. */
export const PG_ADMIN_URL = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export type DbKind = 'pglite' | 'postgres';
export const DB_KINDS: DbKind[] = ['pglite', 'postgres'];

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

/** Creates a fresh database on the local PostgreSQL server. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `ph_test_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
  const admin = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = PG_ADMIN_URL.replace(/\/[^/]*$/, `/${name}`);
  return {
    url,
    name,
    async drop() {
      const a = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} });
      await a.unsafe(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${name}' AND pid <> pg_backend_pid()`);
      await a.unsafe(`DROP DATABASE IF EXISTS ${name}`);
      await a.end();
    },
  };
}

/** A temporary directory removed by `cleanup`. */
export function tempDir(prefix = 'ph-'): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A plugins directory holding a copy of the example powertable plugin. */
export function pluginsDirWithPowertable(): { dir: string; cleanup(): void } {
  const t = tempDir('ph-plugins-');
  cpSync(path.join(ROOT, 'plugins', 'powertable'), path.join(t.dir, 'powertable'), { recursive: true });
  return t;
}

export function writePlugin(pluginsDir: string, name: string, source: string, file = 'main.ts'): string {
  const dir = path.join(pluginsDir, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, file), source);
  return dir;
}

/** Source of a small valid plugin serving `GET <route>` with `{ plugin, version, ...extra }`. */
export function simplePlugin(name: string, version = '1.0.0', route = `/${name}`, extra = ''): string {
  return `import { definePlugin } from 'plugin-host/sdk';
export const newPlugin = definePlugin(() => ({
  getMetadata: () => ({ name: ${JSON.stringify(name)}, version: ${JSON.stringify(version)}, description: 'test plugin', author: 'tests', endpoints: [{ method: 'GET', path: ${JSON.stringify(route)} }] }),
  initialize() {},
  registerRoutes(server) {
    server.get(${JSON.stringify(route)}, async () => ({ plugin: ${JSON.stringify(name)}, version: ${JSON.stringify(version)} ${extra} }));
  },
  cleanup() {},
}));
`;
}

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
  url: string;
  logs: LogSink;
  config: HostConfig;
  close(): Promise<void>;
}

/** Starts an in-process host on an ephemeral port. */
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
  try {
    await host.start();
  } catch (err) {
    await host.close().catch(() => {});
    data?.cleanup();
    throw err;
  }
  return {
    host,
    url: host.url,
    logs,
    config,
    async close() {
      await host.close();
      data?.cleanup();
    },
  };
}

/** Polls `fn` until it returns a truthy value or the bound elapses (a bound on waiting, not a timing assertion). */
export async function waitFor<T>(fn: () => Promise<T> | T, what: string, timeoutMs = 10_000, everyMs = 25): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function getJson(url: string, init?: RequestInit): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body, headers: res.headers };
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
