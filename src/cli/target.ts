import { PluginAdmin, readServerInfo } from '../admin/index.js';
import { ArtifactStore } from '../artifacts/index.js';
import { Compiler } from '../compiler/index.js';
import { type HostConfig, liveWithinMs } from '../config/index.js';
import { type Database, lockOwner, openDatabase, PluginRepository, ReleaseRepository } from '../db/index.js';
import { HostError, isHostError } from '../errors/index.js';
import { createLogger } from '../logger.js';
import { Releases, RolloutDecisions } from '../releases/index.js';
import { runtimesFor } from '../runtime/index.js';
import type { Control } from './control/control.js';
import { HttpControl } from './control/http-control.js';
import { LocalControl } from './control/local-control.js';

/** A running server to send commands to. */
export interface ServerAddress {
  url: string;
  pid: number;
}

/**
 * Where commands go: the one rule, in one place. With `DATABASE_URL`, to PostgreSQL directly (running
 * servers follow through the notification; none needs to run): undefined. With the embedded database,
 * a running server holds its directory: commands then go through that server's admin API; with no
 * server running, undefined, and they open the directory themselves.
 */
export async function findServer(config: HostConfig): Promise<ServerAddress | undefined> {
  if (config.databaseUrl !== undefined) return undefined;
  const owner = lockOwner(config.dataDir);
  return owner === undefined ? undefined : serverOf(config, owner);
}

/** The server `pid` that holds the embedded database, once it says where it listens. */
async function serverOf(config: HostConfig, pid: number): Promise<ServerAddress> {
  // A server that just took the lock writes where it listens once it listens: wait for it (bounded).
  const deadline = Date.now() + 30_000;
  for (;;) {
    const info = readServerInfo(config.dataDir);
    if (info !== undefined && info.pid === pid) return { url: info.url, pid };
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

/** The control commands act through: a running server's (see `findServer`), or the database's own. */
export async function openControl(config: HostConfig, token: string | undefined): Promise<Control> {
  const server = await findServer(config);
  if (server !== undefined) return new HttpControl(server, token);
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
    if (owner !== undefined) return new HttpControl(await serverOf(config, owner), token); // a server started meanwhile
    throw err;
  }
  const repo = new PluginRepository(db.orm);
  const log = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, process.stderr as never);
  const admin = new PluginAdmin({
    repo,
    compiler: new Compiler({ artifactsDir: config.artifactsDir, pluginsDir: config.pluginsDir, typecheck: config.typecheck }),
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
    liveWithinMs: liveWithinMs(),
  });
  return new LocalControl({ db, repo, admin, releases });
}
