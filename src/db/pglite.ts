import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { drizzle } from 'drizzle-orm/pglite';
import { HostError } from '../errors/index.js';
import { acquireLock } from './lock.js';
import { schema } from './schema.js';
import type { Database, Listener, Orm, RawTx } from './types.js';

function rawTx(db: Pick<PGlite, 'exec' | 'query'>): RawTx {
  return {
    async exec(script) {
      await db.exec(script);
    },
    async query<T>(text: string, params: unknown[] = []) {
      return (await db.query<T>(text, params)).rows;
    },
  };
}

/** Embedded PGlite kept in `dataDir` (or in memory when `dataDir` is undefined, for tests). */
export async function openPglite(dataDir: string | undefined): Promise<Database> {
  let release = () => {};
  if (dataDir !== undefined) {
    mkdirSync(dataDir, { recursive: true });
    release = acquireLock(dataDir);
  }
  let pg: PGlite;
  try {
    pg = dataDir === undefined ? new PGlite() : new PGlite(path.join(dataDir, 'pglite'));
    await pg.waitReady;
  } catch (err) {
    release();
    throw new HostError('PH_ERR_DB_UNAVAILABLE', `cannot open embedded database: ${(err as Error).message}`, { cause: err });
  }
  const orm = drizzle(pg, { schema }) as unknown as Orm;
  return {
    kind: 'pglite',
    orm,
    transaction: (fn) => pg.transaction((tx) => fn(rawTx(tx))),
    query: (text, params) => rawTx(pg).query(text, params),
    async listen(channel, handlers) {
      // In-process: the subscription cannot drop while the instance lives.
      const unsub = await pg.listen(channel, (payload) => handlers.onNotify(payload));
      handlers.onListen();
      let connected = true;
      return {
        get connected() {
          return connected;
        },
        async close() {
          connected = false;
          await unsub();
        },
      } satisfies Listener;
    },
    async ping() {
      await pg.query('SELECT 1');
    },
    async close() {
      try {
        await pg.close();
      } finally {
        release();
      }
    },
  };
}

/** Exposes the underlying PGlite for tests that change rows "by hand". */
export type { PGlite };
