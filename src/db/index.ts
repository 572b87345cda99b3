import { HostError } from '../errors/index.js';
import { backoffMs } from '../model/index.js';
import { guardConnectionErrors, isConnectionError } from './connection-errors.js';
import { migrate } from './migrations.js';
import { openPostgres } from './postgres.js';
import type { Database } from './types.js';

export * from './artifact-rows.js';
export * from './config-rows.js';
export { LOCK_FILE, lockOwner } from './lock.js';
export { MIGRATIONS, migrate } from './migrations.js';
export * from './node-rows.js';
export * from './releases.js';
export * from './repository.js';
export * from './schema.js';
export type { Database, Listener, Orm, RawTx } from './types.js';

export interface OpenOptions {
  databaseUrl: string | undefined;
  /** Password for `databaseUrl` when it is not in the URL (from `PGPASSWORD`, read before the environment was scrubbed). */
  password?: string | undefined;
  dataDir: string | undefined;
  onRetry?: (attempt: number, delayMs: number, err: unknown) => void;
  /** Called with the ids of the migrations this call applied (none when another node or an earlier start did). */
  onMigrated?: (applied: number[]) => void;
  /** `application_name` on PostgreSQL (default `plugin-host`, the server's). */
  applicationName?: string;
  /** Give up after this long (ms); default: retry forever. */
  retryForMs?: number;
  signal?: AbortSignal;
}

/**
 * Opens the database and applies migrations. A server that is not reachable
 * yet is retried with capped backoff (and one clear log line per attempt), so a
 * host started before its database becomes ready once the database appears.
 */
export async function openDatabase(options: OpenOptions): Promise<Database> {
  if (options.databaseUrl === undefined) {
    // loaded only when used: PGlite's module is a large share of a start on PostgreSQL otherwise
    const { openPglite } = await import('./pglite.js');
    const db = await openPglite(options.dataDir);
    // not `onMigrated?.(await migrate(db))`: optional chaining would skip the migration itself without a callback
    const applied = await migrate(db);
    options.onMigrated?.(applied);
    return guardConnectionErrors(db);
  }
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    const db = openPostgres({
      url: options.databaseUrl,
      ...(options.password === undefined ? {} : { password: options.password }),
      ...(options.applicationName === undefined ? {} : { applicationName: options.applicationName }),
    });
    try {
      await db.ping();
      const applied = await migrate(db);
      options.onMigrated?.(applied);
      return guardConnectionErrors(db);
    } catch (err) {
      await db.close().catch(() => {});
      if (err instanceof HostError && err.code === 'PH_ERR_MIGRATION_FAILED' && !isConnectionError(err.cause)) throw err;
      const delay = backoffMs(attempt - 1, { firstMs: 200, maxMs: 5000 });
      if (options.signal?.aborted || (options.retryForMs !== undefined && Date.now() - started + delay > options.retryForMs)) {
        throw new HostError('PH_ERR_DB_UNAVAILABLE', `database unreachable: ${(err as Error).message}`, { cause: err });
      }
      options.onRetry?.(attempt, delay, err);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
