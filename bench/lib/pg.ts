import { randomUUID } from 'node:crypto';
import postgres from 'postgres';

/** The local PostgreSQL server the benchmarks use; each run creates (and drops) its own databases. */
export const PG_ADMIN_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface BenchDatabase {
  url: string;
  sql: postgres.Sql;
  drop(): Promise<void>;
}

export async function createDatabase(label: string): Promise<BenchDatabase> {
  const name = `ph_bench_${label}_${randomUUID().replaceAll('-', '').slice(0, 10)}`;
  const admin = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = PG_ADMIN_URL.replace(/\/[^/]*$/, `/${name}`);
  const sql = postgres(url, { max: 2, onnotice: () => {} });
  return {
    url,
    sql,
    async drop() {
      await sql.end({ timeout: 1 }).catch(() => {});
      const a = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} });
      await a.unsafe(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${name}' AND pid <> pg_backend_pid()`);
      await a.unsafe(`DROP DATABASE IF EXISTS ${name}`);
      await a.end();
    },
  };
}
