import { PluginAdmin, readServerInfo } from '../admin/index.js';
import { ArtifactStore } from '../artifacts/index.js';
import { Compiler } from '../compiler/index.js';
import type { HostConfig } from '../config/index.js';
import { type Database, lockOwner, openDatabase, PluginRepository, ReleaseRepository } from '../db/index.js';
import { describeError, ERROR_CODES, type ErrorCode, HostError, isHostError } from '../errors/index.js';
import { createLogger } from '../logger.js';
import { Releases, RolloutDecisions } from '../releases/index.js';
import { runtimesFor } from '../runtime/index.js';

/** Where a data command acts: the database directly, or a running server's admin API. */
export type Target =
  | { kind: 'database'; db: Database; repo: PluginRepository; admin: PluginAdmin; releases: Releases; close(): Promise<void> }
  | { kind: 'server'; url: string; pid: number; token: string | undefined; close(): Promise<void> };

async function serverTarget(config: HostConfig, pid: number, token: string | undefined): Promise<Target> {
  // A server that just took the lock writes where it listens once it listens: wait for it (bounded).
  const deadline = Date.now() + 30_000;
  for (;;) {
    const info = readServerInfo(config.dataDir);
    if (info !== undefined && info.pid === pid) return { kind: 'server', url: info.url, pid, token, close: async () => {} };
    if (lockOwner(config.dataDir) !== pid)
      throw new HostError('PH_ERR_SERVER_UNREACHABLE', `process ${pid} released ${config.dataDir}; retry`);
    if (Date.now() > deadline) {
      throw new HostError(
        'PH_ERR_SERVER_UNREACHABLE',
        `the embedded database in ${config.dataDir} is held by process ${pid}, which does not say where it listens (is it still starting?)`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * With `DATABASE_URL`, commands act on PostgreSQL directly (running servers
 * follow through the notification; none needs to run). With the embedded
 * database, a running server holds its directory: commands then go through
 * that server's admin API (with `ADMIN_TOKEN`); with no server running they
 * open the directory themselves.
 */
export async function openTarget(config: HostConfig, token: string | undefined): Promise<Target> {
  if (config.databaseUrl === undefined) {
    const owner = lockOwner(config.dataDir);
    if (owner !== undefined) return serverTarget(config, owner, token);
  }
  let db: Database;
  try {
    db = await openDatabase({
      databaseUrl: config.databaseUrl,
      password: config.databasePassword,
      dataDir: config.dataDir,
      retryForMs: 5000,
      // not the server's name: the audit trigger records the command line's writes with the database user
      applicationName: 'plugin-host-cli',
    });
  } catch (err) {
    const owner = isHostError(err, 'PH_ERR_DB_UNAVAILABLE') ? (err.details?.owner as number | undefined) : undefined;
    if (owner !== undefined) return serverTarget(config, owner, token); // a server started meanwhile
    throw err;
  }
  const repo = new PluginRepository(db.orm);
  const log = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, process.stderr as never);
  const compiler = new Compiler({ artifactsDir: config.artifactsDir, pluginsDir: config.pluginsDir, typecheck: config.typecheck });
  const admin = new PluginAdmin({
    repo,
    compiler,
    artifacts: new ArtifactStore(config.artifactsDir, repo, undefined, 'cli'),
    runtimes: runtimesFor(config),
    pluginsDir: config.pluginsDir,
    hookTimeoutMs: config.hookTimeoutMs,
    log,
  });
  const releases = new Releases({
    repo,
    releases: new ReleaseRepository(db.orm),
    admin,
    decisions: new RolloutDecisions(log),
    log,
    bakeMs: config.rolloutBakeMs,
    liveWithinMs: 15_000,
  });
  return { kind: 'database', db, repo, admin, releases, close: () => db.close() };
}

/** Calls a running server's API; a problem answer becomes a HostError carrying its code. */
export async function callServer(
  t: Extract<Target, { kind: 'server' }>,
  method: string,
  url: string,
  body?: unknown,
): Promise<Record<string, unknown> | Record<string, unknown>[]> {
  const headers: Record<string, string> = {};
  if (t.token !== undefined) headers.authorization = `Bearer ${t.token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(`${t.url}${url}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(120_000),
    });
  } catch (err) {
    throw new HostError('PH_ERR_SERVER_UNREACHABLE', `server ${t.url} (pid ${t.pid}) did not answer: ${describeError(err)}`, {
      cause: err,
    });
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new HostError('PH_ERR_SERVER_UNREACHABLE', `server ${t.url} answered ${res.status} without JSON`);
  }
  if (!res.ok) {
    const p = json as { code?: string; detail?: string };
    const code: ErrorCode = typeof p.code === 'string' && p.code in ERROR_CODES ? (p.code as ErrorCode) : 'PH_ERR_INTERNAL';
    let detail = p.detail ?? `HTTP ${res.status}`;
    if (code === 'PH_ERR_UNAUTHORIZED' && t.token === undefined) {
      detail += ` (the embedded database is held by the server at ${t.url}, pid ${t.pid}: set ADMIN_TOKEN or --token to its admin token)`;
    }
    throw new HostError(code, detail, { details: { status: res.status } });
  }
  return json as Record<string, unknown>;
}
