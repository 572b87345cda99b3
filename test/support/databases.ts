/**
 * The databases the tests run against: PGlite (embedded, in process) and the local PostgreSQL server, where each
 * suite creates a database of its own. `onEachDatabase` declares one suite per kind.
 */
import { randomUUID } from 'node:crypto';
import { after, before, describe } from 'node:test';
import postgres from 'postgres';

/** The local PostgreSQL server used by tests; each suite creates its own database on it. The database named here must exist. */
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

/** The database one suite of `onEachDatabase` runs on. */
export interface DatabaseUnderTest {
  readonly kind: DbKind;
  /** On PostgreSQL the URL of the suite's own database (set once the suite's first hook ran); on PGlite undefined. */
  readonly url: string | undefined;
  /** What `startTestHost` needs to use this database: the kind, and the URL on PostgreSQL. */
  readonly hostOptions: { kind: DbKind; databaseUrl?: string };
}

/**
 * Declares `describe(`${name} on ${kind}`)` for PGlite and for PostgreSQL. On PostgreSQL a database of the
 * suite's own is created before the suite's other `before` hooks and dropped after its `after` hooks.
 * `options` are the suite's, as for `describe` (e.g. `{ concurrency: 1 }` inside a parent that runs the two
 * suites side by side).
 */
export function onEachDatabase(name: string, fn: (db: DatabaseUnderTest) => void): void;
export function onEachDatabase(name: string, options: { concurrency?: number }, fn: (db: DatabaseUnderTest) => void): void;
export function onEachDatabase(
  name: string,
  a: { concurrency?: number } | ((db: DatabaseUnderTest) => void),
  b?: (db: DatabaseUnderTest) => void,
): void {
  const [options, fn] = typeof a === 'function' ? [{}, a] : [a, b as (db: DatabaseUnderTest) => void];
  for (const kind of DB_KINDS) {
    describe(`${name} on ${kind}`, options, () => {
      let created: TestDatabase | undefined;
      const db: DatabaseUnderTest = {
        kind,
        get url() {
          return created?.url;
        },
        get hostOptions() {
          return created === undefined ? { kind } : { kind, databaseUrl: created.url };
        },
      };
      if (kind === 'postgres') {
        before(async () => {
          created = await createTestDatabase();
        });
      }
      fn(db);
      // registered after the suite's own hooks, so it runs after them (hooks run in the order they were added)
      after(async () => {
        await created?.drop();
      });
    });
  }
}
