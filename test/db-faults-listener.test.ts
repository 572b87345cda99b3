// Database faults on the shared PostgreSQL server, limited to this file's own database and its own backends:
// the listening connection killed while plugins change, and a reconcile whose pool connection is killed mid-query.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import postgres from 'postgres';
import { createTestDatabase, PG_ADMIN_URL, type TestDatabase } from './support/databases.js';
import { pluginSource, pluginsDirWithPowertable, writePlugin } from './support/plugin-sources.js';
import { killAllServers, type ServerProcess, startServer } from './support/server-process.js';
import { getJson, tempDir, waitFor } from './support/util.js';

const LISTENER = 'plugin-host-listener';
const POOL = 'plugin-host';

describe('listener and pool connections killed (pg_terminate_backend)', () => {
  let db: TestDatabase;
  let plugins: { dir: string; cleanup(): void };
  let data: { dir: string; cleanup(): void };
  let node: ServerProcess;
  let sql: postgres.Sql;
  /** On the admin database: ALTER DATABASE cannot target the database it runs in. */
  let admin: postgres.Sql;

  const status = async (route: string) => (await fetch(`${node.url}${route}`)).status;
  const versionAt = async (route: string) => {
    const r = await getJson(`${node.url}${route}`);
    return r.status === 200 ? (r.body.version as string) : `status ${r.status}`;
  };
  const reconnects = () => node.logs.filter((l) => l.msg === 'listener reconnected; resyncing every plugin').length;

  before(async () => {
    db = await createTestDatabase();
    plugins = pluginsDirWithPowertable();
    data = tempDir('ph-data-');
    for (const n of ['alpha', 'beta']) writePlugin(plugins.dir, n, pluginSource({ name: n, version: '1.0.0' }));
    node = await startServer({
      name: 'node',
      env: {
        DATABASE_URL: db.url,
        PLUGINS_DIR: plugins.dir,
        DATA_DIR: data.dir,
        NODE_ID: 'listener-node',
        TYPECHECK: '0',
        // no safety-net tick during the test: only the resync after re-LISTEN (or a retry) can apply a missed change
        RECONCILE_INTERVAL_MS: '600000',
      },
    });
    sql = postgres(db.url, { max: 1, onnotice: () => {} });
    admin = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} });
    await sql`SELECT 1`; // connected before any test refuses new connections
    await waitFor(async () => (await status('/alpha')) === 200 && (await status('/beta')) === 200, 'alpha and beta served');
  });

  after(async () => {
    await killAllServers();
    await sql?.end({ timeout: 1 });
    await admin?.end({ timeout: 1 });
    await db?.drop();
    plugins?.cleanup();
    data?.cleanup();
  });

  /**
   * Terminates this database's listening backend while new connections to the database are refused (as in an
   * outage that outlasts the reconnect backoff), then commits `changes` and checks, in the same transaction, that
   * no listener existed at commit: the notifications of this commit are lost for good. Connections are allowed
   * again before returning; the listener gets back on its own.
   */
  async function changeWhileListenerDown(changes: string): Promise<{ killed: number; listenersAtCommit: number; readyz: number }> {
    await admin.unsafe(`ALTER DATABASE ${db.name} ALLOW_CONNECTIONS false`);
    try {
      const [k] = await sql.unsafe(
        `SELECT count(*)::int AS killed FROM (
           SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
           WHERE datname = current_database() AND application_name = '${LISTENER}') k`,
      );
      // pg_stat_activity is read once per transaction and then cached: this is the transaction's first read
      const results = (await sql
        .unsafe(
          `BEGIN;
           ${changes};
           SELECT count(*)::int AS listeners FROM pg_stat_activity
             WHERE datname = current_database() AND application_name = '${LISTENER}';
           COMMIT;`,
        )
        .simple()) as unknown as Array<Array<Record<string, number>>>;
      const listeners = results.find((r) => Array.isArray(r) && r[0]?.listeners !== undefined)?.[0]?.listeners ?? -1;
      const readyz = (await getJson(`${node.url}/readyz`)).status;
      return { killed: (k?.killed as number | undefined) ?? -1, listenersAtCommit: listeners, readyz };
    } finally {
      await admin.unsafe(`ALTER DATABASE ${db.name} ALLOW_CONNECTIONS true`);
    }
  }

  test('changes committed while the listener is down are all applied after it reconnects', async () => {
    writePlugin(plugins.dir, 'gamma', pluginSource({ name: 'gamma', version: '1.0.0' }));
    writePlugin(plugins.dir, 'beta', pluginSource({ name: 'beta', version: '2.0.0' }));
    const before1 = reconnects();
    const r1 = await changeWhileListenerDown(`
      UPDATE plugins SET status = 'inactive' WHERE name = 'alpha';
      UPDATE plugins SET generation = generation + 1 WHERE name = 'beta';
      INSERT INTO plugins (id, name, type, path, source_path, status)
        VALUES ('${randomUUID()}', 'gamma', 'dynamic', '${plugins.dir}/gamma', '${plugins.dir}/gamma', 'active')`);
    assert.equal(r1.killed, 1, 'exactly one listening backend (ours) was terminated');
    assert.equal(r1.listenersAtCommit, 0, 'the changes were committed while no listener was connected');
    assert.equal(r1.readyz, 503, 'not ready while the listener is down');
    await waitFor(() => reconnects() > before1, 'the listener to reconnect', 20_000);
    await waitFor(async () => (await status('/alpha')) === 404, 'alpha unloaded');
    await waitFor(async () => (await versionAt('/beta')) === '2.0.0', 'beta reloaded to 2.0.0');
    await waitFor(async () => (await versionAt('/gamma')) === '1.0.0', 'gamma loaded');
    assert.equal(await status('/hello'), 200, 'powertable kept serving');

    // second round, undoing and changing again
    writePlugin(plugins.dir, 'beta', pluginSource({ name: 'beta', version: '3.0.0' }));
    const before2 = reconnects();
    const r2 = await changeWhileListenerDown(`
      UPDATE plugins SET status = 'active' WHERE name = 'alpha';
      UPDATE plugins SET generation = generation + 1 WHERE name = 'beta';
      DELETE FROM plugins WHERE name = 'gamma'`);
    assert.equal(r2.killed, 1);
    assert.equal(r2.listenersAtCommit, 0);
    await waitFor(() => reconnects() > before2, 'the listener to reconnect again', 20_000);
    await waitFor(async () => (await status('/alpha')) === 200, 'alpha loaded again');
    await waitFor(async () => (await versionAt('/beta')) === '3.0.0', 'beta reloaded to 3.0.0');
    await waitFor(async () => (await status('/gamma')) === 404, 'gamma unloaded');
    const list = await getJson(`${node.url}/plugins`);
    assert.deepEqual(list.body.map((p: { name: string }) => p.name).sort(), ['alpha', 'beta', 'powertable']);
    assert.ok(
      list.body.every((p: { state: string }) => p.state === 'serving'),
      'every remaining plugin serving',
    );
  });

  test('killed five times in a row, then a change: the change is applied', async () => {
    // each kill lands on a listener: the one that came back after the kill before
    for (let i = 1; i <= 5; i++) {
      const before = reconnects();
      const [k] = await sql.unsafe(
        `SELECT count(*)::int AS killed FROM (SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
           WHERE datname = current_database() AND application_name = '${LISTENER}') k`,
      );
      assert.equal(k?.killed, 1, `kill ${i} found the listener`);
      await waitFor(() => reconnects() > before, `the listener to come back after kill ${i}`);
    }
    writePlugin(plugins.dir, 'beta', pluginSource({ name: 'beta', version: '4.0.0' }));
    await changeWhileListenerDown(`UPDATE plugins SET generation = generation + 1 WHERE name = 'beta'`);
    await waitFor(async () => (await versionAt('/beta')) === '4.0.0', 'beta reloaded to 4.0.0', 20_000);
    await waitFor(async () => (await getJson(`${node.url}/readyz`)).status === 200, 'ready again (listener connected)');
  });

  test('a reconcile whose pool connection is killed mid-query is retried, not dropped', async () => {
    writePlugin(plugins.dir, 'beta', pluginSource({ name: 'beta', version: '5.0.0' }));
    await sql.unsafe(`UPDATE plugins SET generation = generation + 1 WHERE name = 'beta'`);
    await waitFor(async () => (await versionAt('/beta')) === '5.0.0', 'beta reloaded to 5.0.0');
    const postponedBefore = node.logs.filter((l) => String(l.msg).startsWith('reconcile of beta postponed')).length;
    // Hold a lock the reconcile's endpoint read will wait on, so its query is in flight when its backend is killed.
    const locker = postgres(db.url, { max: 1, onnotice: () => {} });
    let lockedAt = Number.POSITIVE_INFINITY;
    try {
      const held = locker.begin(async (tx) => {
        await tx.unsafe('LOCK TABLE plugin_endpoints IN ACCESS EXCLUSIVE MODE');
        lockedAt = Date.now();
        // the listener is connected: this notification reaches the node, whose reconcile reads the row, then blocks
        await sql.unsafe(`UPDATE plugins SET generation = generation + 1 WHERE name = 'beta'`);
        // Kill whatever of the node waits on the lock (a publish still in flight may be queued ahead of the
        // reconcile in its lane) until the reconcile itself has been cut short.
        await waitFor(
          async () => {
            await sql.unsafe(
              `SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = current_database()
                 AND application_name = '${POOL}' AND wait_event_type = 'Lock'`,
            );
            return node.logs.filter((l) => String(l.msg).startsWith('reconcile of beta postponed')).length > postponedBefore;
          },
          'the reconcile to be cut short and postponed',
          15_000,
          50,
        ).catch((err) => {
          throw new Error(`${err.message}\n${node.tail(30)}`);
        });
        await tx.unsafe('SELECT 1'); // release by committing
      });
      await held;
    } finally {
      await locker.end({ timeout: 1 });
    }
    // no notification, no re-LISTEN, no periodic tick: only the retry can apply it
    const gen = Number((await sql.unsafe(`SELECT generation FROM plugins WHERE name = 'beta'`))[0]?.generation);
    await waitFor(async () => (await getJson(`${node.url}/plugins/beta`)).body.generation === gen, 'row re-read');
    await waitFor(
      async () => (await sql.unsafe(`SELECT 1 FROM plugin_node_state WHERE plugin_name = 'beta' AND state = 'serving'`)).length === 1,
      'observed state',
    );
    await waitFor(
      () => node.findLog((l) => l.plugin === 'beta' && String(l.msg).startsWith('plugin beta reloaded') && (l.time as number) > lockedAt),
      'beta reloaded (new generation) by the retry',
      20_000,
    );
    assert.equal(await status('/hello'), 200);
  });
});

describe('the periodic full reconcile is a safety net', () => {
  let db: TestDatabase;
  let plugins: { dir: string; cleanup(): void };
  let data: { dir: string; cleanup(): void };
  let node: ServerProcess;

  before(async () => {
    db = await createTestDatabase();
    plugins = pluginsDirWithPowertable();
    data = tempDir('ph-data-');
    node = await startServer({
      name: 'ticking',
      env: {
        DATABASE_URL: db.url,
        PLUGINS_DIR: plugins.dir,
        DATA_DIR: data.dir,
        NODE_ID: 'tick-node',
        TYPECHECK: '0',
        RECONCILE_INTERVAL_MS: '500',
      },
    });
  });

  after(async () => {
    await killAllServers();
    await db?.drop();
    plugins?.cleanup();
    data?.cleanup();
  });

  test('a change that sent no notification at all is applied by the next periodic reconcile', async () => {
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      // replica mode: no trigger fires, so no NOTIFY is sent for these writes
      await sql.begin(async (tx) => {
        await tx.unsafe('SET LOCAL session_replication_role = replica');
        await tx.unsafe(`UPDATE plugins SET status = 'inactive' WHERE name = 'powertable'`);
      });
      await waitFor(async () => (await fetch(`${node.url}/hello`)).status === 404, 'powertable unloaded by the tick');
      await sql.begin(async (tx) => {
        await tx.unsafe('SET LOCAL session_replication_role = replica');
        await tx.unsafe(`UPDATE plugins SET status = 'active' WHERE name = 'powertable'`);
      });
      await waitFor(async () => (await fetch(`${node.url}/hello`)).status === 200, 'powertable loaded by the tick');
      assert.ok(node.findLog((l) => l.msg === 'plugin powertable unloaded (disabled)'));
    } finally {
      await sql.end({ timeout: 1 });
    }
  });
});
