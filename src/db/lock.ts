import { randomUUID } from 'node:crypto';
import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { HostError } from '../errors/index.js';

/**
 * The embedded database is a directory one process may own: a lock file in
 * it holds the owner's pid. The server takes it; the CLI reads it to find the
 * server to talk to instead.
 */
export const LOCK_FILE = 'plugin-host.lock';

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOwner(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The live process (not this one) holding `dataDir`, if any. */
export function lockOwner(dataDir: string): number | undefined {
  const pid = readOwner(path.join(dataDir, LOCK_FILE));
  if (pid === undefined || pid === process.pid) return undefined;
  return processAlive(pid) ? pid : undefined;
}

function held(dataDir: string, owner: number): HostError {
  return new HostError(
    'PH_ERR_DB_UNAVAILABLE',
    `embedded database ${dataDir} is held by process ${owner}; use its admin API or set DATABASE_URL`,
    { details: { owner } },
  );
}

/**
 * Takes the lock of `dataDir` or throws `PH_ERR_DB_UNAVAILABLE` naming the
 * live owner. The pid is written to a private file first and then linked into
 * place, which fails if a lock exists: a reader never sees a lock file without
 * its pid. A lock left by a dead process is moved aside (one taker wins the
 * move) and taken over. Returns the release function.
 */
export function acquireLock(dataDir: string): () => void {
  const lockPath = path.join(dataDir, LOCK_FILE);
  const mine = `${lockPath}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`;
  writeFileSync(mine, String(process.pid));
  try {
    for (let tries = 0; tries < 3; tries++) {
      try {
        linkSync(mine, lockPath);
        return () => {
          if (readOwner(lockPath) === process.pid) rmSync(lockPath, { force: true });
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const owner = readOwner(lockPath);
      if (owner !== undefined && owner !== process.pid && processAlive(owner)) throw held(dataDir, owner);
      // stale (dead owner, or this pid from an earlier life): move it aside, then check what was moved
      const aside = `${lockPath}.stale.${process.pid}.${randomUUID().slice(0, 8)}`;
      try {
        renameSync(lockPath, aside);
      } catch {
        continue; // another process moved it first: try again
      }
      const moved = readOwner(aside);
      if (moved !== undefined && moved !== process.pid && processAlive(moved)) {
        // a live process took the lock between our read and the move: put it back
        try {
          linkSync(aside, lockPath);
        } catch {
          /* it has been replaced meanwhile; the loop decides */
        }
        rmSync(aside, { force: true });
        throw held(dataDir, moved);
      }
      rmSync(aside, { force: true });
    }
    throw new HostError('PH_ERR_DB_UNAVAILABLE', `cannot lock embedded database ${dataDir}`);
  } finally {
    rmSync(mine, { force: true });
  }
}
