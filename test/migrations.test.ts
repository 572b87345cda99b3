import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import postgres from 'postgres';
import { MIGRATIONS, migrate } from '../src/db/index.js';
import { openPglite } from '../src/db/pglite.js';
import { openPostgres } from '../src/db/postgres.js';
import type { Database } from '../src/db/types.js';
import { isHostError } from '../src/errors/index.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { waitFor } from './support/util.js';

describe('migrations on PostgreSQL', () => {
  let tdb: TestDatabase;
  before(async () => {
    tdb = await createTestDatabase();
  });
  after(async () => {
    await tdb.drop();
  });

  test('several servers migrating at once apply each migration exactly once', async () => {
    const dbs: Database[] = Array.from({ length: 4 }, () => openPostgres({ url: tdb.url, max: 2 }));
    try {
      const applied = await Promise.all(dbs.map((d) => migrate(d)));
      const all = applied.flat().sort();
      assert.deepEqual(
        all,
        MIGRATIONS.map((m) => m.id),
        'each migration applied by exactly one of them',
      );
      const rows = await dbs[0]!.query<{ id: number }>('SELECT id FROM plugin_host_migrations ORDER BY id');
      assert.deepEqual(
        rows.map((r) => Number(r.id)),
        MIGRATIONS.map((m) => m.id),
      );
      assert.deepEqual(await migrate(dbs[0]!), [], 'idempotent');
    } finally {
      await Promise.all(dbs.map((d) => d.close()));
    }
  });

  test('a recorded migration whose text changed is refused', async () => {
    const d = openPostgres({ url: tdb.url });
    try {
      const changed = MIGRATIONS.map((m) => (m.id === 1 ? { ...m, sql: `${m.sql}\n-- edited` } : m));
      await assert.rejects(migrate(d, changed), (err: unknown) => isHostError(err, 'PH_ERR_MIGRATION_FAILED'));
    } finally {
      await d.close();
    }
  });

  test('the trigger notifies plugin_changes with the row named, never the row itself', async () => {
    const listener = postgres(tdb.url, { max: 1, onnotice: () => {} });
    const writer = postgres(tdb.url, { max: 1, onnotice: () => {} });
    const got: string[] = [];
    try {
      await listener.listen('plugin_changes', (p) => got.push(p));
      const big = 'x'.repeat(20_000); // larger than a NOTIFY payload may be
      await writer`INSERT INTO plugins (id, name, description) VALUES ('id-1', 'trig', ${big})`;
      await writer`UPDATE plugins SET status = 'inactive' WHERE name = 'trig'`;
      await writer`DELETE FROM plugins WHERE name = 'trig'`;
      await waitFor(() => got.length >= 3, 'three notifications');
      const events = got.map((g) => JSON.parse(g));
      assert.deepEqual(
        events.map((e) => e.operation),
        ['INSERT', 'UPDATE', 'DELETE'],
      );
      for (const e of events) {
        assert.deepEqual(Object.keys(e).sort(), ['id', 'name', 'operation', 'table', 'timestamp']);
        assert.equal(e.table, 'plugins');
        assert.equal(e.name, 'trig');
        assert.equal(e.id, 'id-1');
        assert.ok(!Number.isNaN(Date.parse(e.timestamp)));
      }
    } finally {
      await listener.end();
      await writer.end();
    }
  });
});

describe('migrations on PGlite', () => {
  test('apply once, then nothing to do; notifications reach a listener in the same process', async () => {
    const d = await openPglite(undefined);
    try {
      assert.deepEqual(
        await migrate(d),
        MIGRATIONS.map((m) => m.id),
      );
      assert.deepEqual(await migrate(d), []);
      const got: string[] = [];
      const l = await d.listen('plugin_changes', { onNotify: (p) => got.push(p), onListen: () => {}, onDisconnect: () => {} });
      await d.query("INSERT INTO plugins (id, name) VALUES ('a', 'lite')");
      await waitFor(() => got.length > 0, 'the notification');
      assert.equal(JSON.parse(got[0] as string).name, 'lite');
      await l.close();
    } finally {
      await d.close();
    }
  });
});
