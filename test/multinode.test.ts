// Several server processes on one PostgreSQL database: a simultaneous start on an empty database, a node
// started later, a node without the plugins directory, plain-SQL changes reaching every node, every node's
// view of a plugin, and the reload latency (SQL commit -> new version answering) on each node.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import postgres from 'postgres';
import { MIGRATIONS } from '../src/db/index.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { pluginSource, pluginsDirWithPowertable, writePlugin } from './support/plugin-sources.js';
import { killAllServers, type ServerProcess, startServer } from './support/server-process.js';
import { getJson, quantile, tempDir, waitFor } from './support/util.js';

describe('three nodes on one database', () => {
  let db: TestDatabase;
  let sql: postgres.Sql;
  let shared: { dir: string; cleanup(): void };
  let empty: { dir: string; cleanup(): void };
  const dataDirs: Array<{ dir: string; cleanup(): void }> = [];
  let a: ServerProcess;
  let b: ServerProcess;
  let c: ServerProcess | undefined;

  const nodes = () => [a, b, ...(c ? [c] : [])];
  const body = async (n: ServerProcess, route: string) => {
    const r = await getJson(`${n.url}${route}`);
    return r.status === 200 ? r.body : { status: r.status };
  };
  const everywhere = (what: string, pred: (n: ServerProcess) => Promise<boolean>, timeoutMs = 20_000) =>
    Promise.all(nodes().map((n) => waitFor(() => pred(n), `${n.name}: ${what}`, timeoutMs)));

  function env(nodeId: string, pluginsDir: string, extra: Record<string, string> = {}): Record<string, string> {
    const data = tempDir(`ph-${nodeId}-`);
    dataDirs.push(data);
    return { DATABASE_URL: db.url, PLUGINS_DIR: pluginsDir, DATA_DIR: data.dir, NODE_ID: nodeId, ...extra };
  }

  before(async () => {
    db = await createTestDatabase();
    sql = postgres(db.url, { max: 1, onnotice: () => {} });
    // A and B share a plugins directory (as on a shared volume); C gets an empty one and never discovers.
    shared = pluginsDirWithPowertable();
    writePlugin(shared.dir, 'alpha', pluginSource({ name: 'alpha', version: '1.0.0', marked: true }));
    empty = tempDir('ph-empty-plugins-');
  });

  after(async () => {
    await killAllServers();
    await sql?.end({ timeout: 1 });
    await db?.drop();
    shared?.cleanup();
    empty?.cleanup();
    for (const d of dataDirs) d.cleanup();
  });

  test('two nodes starting at the same moment on an empty database: migrations applied once, each plugin registered once', async () => {
    [a, b] = await Promise.all([
      startServer({ name: 'A', env: env('node-a', shared.dir) }),
      startServer({ name: 'B', env: env('node-b', shared.dir) }),
    ]);
    const migrations = await sql`SELECT id, count(*)::int AS n FROM plugin_host_migrations GROUP BY id ORDER BY id`;
    assert.deepEqual(
      migrations.map((m) => [m.id, m.n]),
      MIGRATIONS.map((m) => [m.id, 1]),
    );
    const applied = nodes().filter((n) => n.findLog((l) => String(l.msg).startsWith('applied migrations')));
    assert.equal(applied.length, 1, 'exactly one node applied the migrations, the other found them applied');
    const rows = await sql`SELECT name, count(*)::int AS n FROM plugins GROUP BY name ORDER BY name`;
    assert.deepEqual(
      rows.map((r) => [r.name, r.n]),
      [
        ['alpha', 1],
        ['powertable', 1],
      ],
    );
    const endpoints =
      await sql`SELECT p.name, e.method, e.path, count(*)::int AS n FROM plugin_endpoints e JOIN plugins p ON p.id = e.plugin_id
      GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`;
    assert.deepEqual(
      endpoints.map((e) => `${e.name} ${e.method} ${e.path} x${e.n}`),
      ['alpha GET /alpha x1', 'powertable GET /hello x1'],
    );
    for (const name of ['alpha', 'powertable']) {
      const registeredBy = nodes().filter((n) => n.findLog((l) => l.msg === `registered plugin ${name}`));
      assert.equal(registeredBy.length, 1, `${name} registered by exactly one node`);
    }
    await everywhere(
      'alpha and hello served',
      async (n) => (await body(n, '/alpha')).version === '1.0.0' && (await body(n, '/hello')).plugin === 'powertable',
    );
  });

  test('a node started later without the plugins directory catches up from database artifacts', async () => {
    // changes made before C exists: a new version of alpha, a new plugin, powertable disabled
    writePlugin(shared.dir, 'alpha', pluginSource({ name: 'alpha', version: '2.0.0', marked: true }));
    writePlugin(shared.dir, 'beta', pluginSource({ name: 'beta', version: '1.0.0', marked: true }));
    await sql`UPDATE plugins SET generation = generation + 1 WHERE name = 'alpha'`;
    await sql`INSERT INTO plugins (id, name, type, path, source_path, status)
      VALUES (${randomUUID()}, 'beta', 'dynamic', ${path.join(shared.dir, 'beta')}, ${path.join(shared.dir, 'beta')}, 'active')`;
    await sql`UPDATE plugins SET status = 'inactive' WHERE name = 'powertable'`;
    await everywhere('alpha 2.0.0, beta, no hello', async (n) => {
      return (
        (await body(n, '/alpha')).version === '2.0.0' &&
        (await body(n, '/beta')).version === '1.0.0' &&
        (await body(n, '/hello')).status === 404
      );
    });
    // the artifacts the source nodes published
    await waitFor(async () => {
      const [r] =
        await sql`SELECT count(*)::int AS n FROM plugins p JOIN plugin_artifacts a ON a.hash = p.artifact_hash WHERE p.name IN ('alpha', 'beta')`;
      return r?.n === 2;
    }, 'alpha and beta artifacts published');

    const cEnv = env('node-c', empty.dir, { DISCOVER: '0' });
    c = await startServer({ name: 'C', env: cEnv });
    assert.deepEqual(readdirSync(empty.dir), [], 'C has no plugin sources');
    assert.equal((await body(c, '/alpha')).version, '2.0.0');
    assert.equal((await body(c, '/beta')).version, '1.0.0');
    assert.equal((await body(c, '/hello')).status, 404, 'disabled before C started: not served by C either');
    const alpha = (await getJson(`${c.url}/plugins/alpha`)).body;
    assert.equal(alpha.state, 'serving');
    assert.equal(alpha.serving.from, 'artifact', 'loaded by hash from plugin_artifacts');
    assert.equal(alpha.serving.hash, alpha.artifact_hash);
    const cached = path.join(cEnv.DATA_DIR as string, 'artifacts', `${alpha.artifact_hash}.cjs`);
    assert.ok(existsSync(cached), 'the fetched artifact is cached on disk');
    await everywhere('readyz', async (n) => (await getJson(`${n.url}/readyz`)).status === 200);
  });

  test('changes made with plain SQL are served by all three nodes', async () => {
    await sql`UPDATE plugins SET status = 'active' WHERE name = 'powertable'`;
    await everywhere('hello back', async (n) => (await body(n, '/hello')).plugin === 'powertable');

    await sql`UPDATE plugins SET status = 'inactive' WHERE name = 'beta'`;
    await everywhere('beta gone', async (n) => (await body(n, '/beta')).status === 404);
    await sql`UPDATE plugins SET status = 'active' WHERE name = 'beta'`;
    await everywhere('beta back', async (n) => (await body(n, '/beta')).version === '1.0.0');

    writePlugin(shared.dir, 'beta', pluginSource({ name: 'beta', version: '1.1.0', marked: true }));
    await sql`UPDATE plugins SET generation = generation + 1 WHERE name = 'beta'`;
    await everywhere('beta 1.1.0', async (n) => (await body(n, '/beta')).version === '1.1.0');

    await sql`DELETE FROM plugins WHERE name = 'beta'`;
    await everywhere('beta deleted', async (n) => (await body(n, '/beta')).status === 404);
    for (const n of nodes()) assert.equal((await getJson(`${n.url}/plugins/beta`)).status, 404, `${n.name}: beta unknown`);
    const [states] = await sql`SELECT count(*)::int AS n FROM plugin_node_state WHERE plugin_name = 'beta'`;
    assert.equal(states?.n, 0, 'every node dropped its observed state of the deleted plugin');

    const list = await Promise.all(
      nodes().map(async (n) =>
        (await getJson(`${n.url}/plugins`)).body.map((p: { name: string; state: string }) => `${p.name}:${p.state}`),
      ),
    );
    for (const l of list) assert.deepEqual(l, ['alpha:serving', 'powertable:serving'], 'every node reports the same loaded set');
  });

  test('GET /plugins/:name shows every live node: one failed where the others serve', async () => {
    // initialize needs its source directory: it works on A and B, fails on C (artifact only)
    const src = pluginSource({
      name: 'needsrc',
      initialize: "      if (ctx.sourceDir === undefined) throw new Error('needs its source directory');",
      routes: "      server.get('/needsrc', async () => ({ ok: true }));",
    });
    const dir = writePlugin(shared.dir, 'needsrc', src);
    await sql`INSERT INTO plugins (id, name, type, path, source_path, status) VALUES (${randomUUID()}, 'needsrc', 'dynamic', ${dir}, ${dir}, 'active')`;
    const view = await waitFor(async () => {
      const r = await getJson(`${(c as ServerProcess).url}/plugins/needsrc`);
      const ns = (r.body.nodes ?? []) as Array<{ node_id: string; state: string; last_error: { message: string } | null }>;
      const byId = Object.fromEntries(ns.map((n) => [n.node_id, n]));
      // (C may first report that nothing was published yet: it waits for A or B to publish the artifact)
      const cFailedInit = byId['node-c']?.state === 'error' && /initialize/.test(byId['node-c']?.last_error?.message ?? '');
      return byId['node-a']?.state === 'serving' && byId['node-b']?.state === 'serving' && cFailedInit ? r.body : undefined;
    }, 'every node to report its view of needsrc');
    assert.equal(view.status, 'active', 'the desired status is untouched by the failure');
    const cView = view.nodes.find((n: { node_id: string }) => n.node_id === 'node-c');
    assert.match(cView.last_error.message, /initialize\(\) threw: needs its source directory/);
    assert.equal(cView.last_error.code, 'PH_ERR_HOOK_FAILED');
    const aView = view.nodes.find((n: { node_id: string }) => n.node_id === 'node-a');
    assert.equal(aView.serving_version, '1.0.0');
    assert.equal(aView.serving_hash, view.artifact_hash);
    assert.ok(aView.address.startsWith('127.0.0.1:') && aView.heartbeat_at, 'address and heartbeat');
    assert.equal((await body(a, '/needsrc')).ok, true);
    assert.equal((await body(c as ServerProcess, '/needsrc')).status, 404);
    // the same view from any node
    const fromA = (await getJson(`${a.url}/plugins/needsrc`)).body;
    assert.deepEqual(
      fromA.nodes.map((n: { node_id: string; state: string }) => `${n.node_id}:${n.state}`),
      ['node-a:serving', 'node-b:serving', 'node-c:error'],
    );
    await sql`DELETE FROM plugins WHERE name = 'needsrc'`;
    await everywhere('needsrc gone', async (n) => (await getJson(`${n.url}/plugins/needsrc`)).status === 404);
  });

  test('quiet when nothing changes: no node rewrites the desired rows (no notification ping-pong)', async () => {
    // Every write to the desired-state tables is recorded with the application name of the connection that made
    // it: the nodes' pools are `plugin-host`, this test's connection is not.
    await sql.unsafe(`
      CREATE TABLE test_desired_writes (id bigserial PRIMARY KEY, app text NOT NULL, tbl text NOT NULL, op text NOT NULL);
      CREATE FUNCTION test_record_write() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO test_desired_writes (app, tbl, op) VALUES (current_setting('application_name'), TG_TABLE_NAME, TG_OP);
        RETURN NULL;
      END $$;
      CREATE TRIGGER test_record_write AFTER INSERT OR UPDATE OR DELETE ON plugins FOR EACH ROW EXECUTE FUNCTION test_record_write();
      CREATE TRIGGER test_record_write AFTER INSERT OR UPDATE OR DELETE ON plugin_endpoints FOR EACH ROW EXECUTE FUNCTION test_record_write();
      CREATE TRIGGER test_record_write AFTER INSERT OR UPDATE OR DELETE ON plugin_artifacts FOR EACH ROW EXECUTE FUNCTION test_record_write();
    `);
    const nodeWritesSince = async (id: number) =>
      (await sql`SELECT app, tbl, op FROM test_desired_writes WHERE id > ${id} AND app LIKE 'plugin-host%' ORDER BY id`).map(
        (r) => `${r.app}: ${r.op} ${r.tbl}`,
      );
    const loadedAt = async (n: ServerProcess): Promise<Record<string, string>> =>
      Object.fromEntries(
        (await getJson(`${n.url}/plugins`)).body.map((p: { name: string; serving: { loaded_at: string } | null }) => [
          p.name,
          p.serving?.loaded_at,
        ]),
      );
    /**
     * Bumps every plugin's generation and waits until every node serves a new instance of each. A plugin's runs
     * are serial on a node, so once this returns, every run a node started for it before the bump has finished.
     */
    const barrier = async (label: string) => {
      const before = new Map(await Promise.all(nodes().map(async (n) => [n.name, await loadedAt(n)] as const)));
      await sql`UPDATE plugins SET generation = generation + 1`;
      await everywhere(`every plugin reloaded (${label})`, async (n) => {
        const was = before.get(n.name) ?? {};
        const now = await loadedAt(n);
        return Object.keys(was).length > 0 && Object.entries(was).every(([name, at]) => now[name] !== undefined && now[name] !== at);
      });
    };

    // a change every node applies (and may publish once); after the second barrier every run of the first is done
    await barrier('a change');
    await barrier('settled');
    const [{ id: mark } = { id: 0 }] = await sql`SELECT coalesce(max(id), 0)::int AS id FROM test_desired_writes`;

    // nothing changes now, and every node reconciles every plugin: a full reconcile after a re-LISTEN ...
    const resyncs = (n: ServerProcess) => n.logs.filter((l) => l.msg === 'listener reconnected; resyncing every plugin').length;
    const resyncsBefore = new Map(nodes().map((n) => [n.name, resyncs(n)]));
    await sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'plugin-host-listener'`;
    await everywhere('a full reconcile after the listener came back', async (n) => resyncs(n) > (resyncsBefore.get(n.name) ?? 0));
    // ... and the runs that notifications of rows written by others start (whose reloads end in a publish step)
    await barrier('after the full reconcile');
    await barrier('runs before this one done');
    assert.deepEqual(await nodeWritesSince(mark), [], 'no node wrote the desired state while nothing was changed');
  });

  test('reload latency, SQL commit -> new version answering, on each node', async (t) => {
    const all = nodes();
    const results: Record<string, { reload: number[]; newVersion: number[] }> = {};
    for (const n of all) results[n.name] = { reload: [], newVersion: [] };

    /** Commits `change`, then polls every node until `done(body)`; returns ms per node from just before the commit. */
    async function measure(change: () => Promise<unknown>, done: (b: Record<string, unknown>) => boolean): Promise<Record<string, number>> {
      const t0 = performance.now();
      await change();
      const out: Record<string, number> = {};
      await Promise.all(
        all.map(async (n) => {
          await waitFor(async () => done(await body(n, '/alpha')), `${n.name}: new alpha`, 20_000, 2);
          out[n.name] = performance.now() - t0;
        }),
      );
      return out;
    }

    for (let i = 0; i < 5; i++) {
      const before = await body(a, '/alpha');
      const instances = new Map(await Promise.all(all.map(async (n) => [n.name, (await body(n, '/alpha')).instance] as const)));
      assert.ok(before.instance);
      const ms = await measure(
        () => sql`UPDATE plugins SET generation = generation + 1 WHERE name = 'alpha'`,
        (b) => b.version === before.version && b.instance !== undefined && ![...instances.values()].includes(b.instance),
      );
      for (const n of all) results[n.name]?.reload.push(ms[n.name] as number);
    }
    for (let i = 0; i < 3; i++) {
      const version = `3.0.${i}`;
      writePlugin(shared.dir, 'alpha', pluginSource({ name: 'alpha', version, marked: true }));
      const ms = await measure(
        () => sql`UPDATE plugins SET generation = generation + 1 WHERE name = 'alpha'`,
        (b) => b.version === version,
      );
      for (const n of all) results[n.name]?.newVersion.push(ms[n.name] as number);
    }
    const fmt = (xs: number[]) => `median ${quantile(xs, 0.5).toFixed(1)} ms, max ${Math.max(...xs).toFixed(1)} ms`;
    for (const n of all) {
      const r = results[n.name] as { reload: number[]; newVersion: number[] };
      const kind = n === c ? 'no source, loads the published artifact' : 'has the source, compiles';
      t.diagnostic(`node ${n.name} (${kind}): same version reloaded ${fmt(r.reload)}; new version (edit + bump) ${fmt(r.newVersion)}`);
    }
  });
});
