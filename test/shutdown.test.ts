// Process lifecycle of real servers: graceful shutdown on SIGTERM and SIGINT (stop accepting, drain, clean up
// every plugin, close the database, exit 0, each step bounded), a second signal exiting at once, and kill -9
// in the middle of a reload followed by a restart that converges.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import postgres from 'postgres';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { pluginSource, pluginsDirWithPowertable, writePlugin } from './support/plugin-sources.js';
import { killAllServers, startServer } from './support/server-process.js';
import { getJson, tempDir, waitFor } from './support/util.js';

/** A plugin whose `cleanup` never settles. */
function stuckCleanupPlugin(name: string): string {
  return pluginSource({ name, cleanup: "ctx.log.info('cleanup started');\n      await new Promise(() => {});" });
}

/** GET over a keep-alive agent: the answer and whether the server asked to close the connection. */
function keepAliveGet(url: string, agent: http.Agent): Promise<{ status: number; body: string; connection: string | undefined }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, connection: res.headers.connection }));
      })
      .on('error', reject);
  });
}

describe('shutdown and crash', () => {
  const dbs: TestDatabase[] = [];
  const conns: postgres.Sql[] = [];
  const temps: Array<{ dir: string; cleanup(): void }> = [];
  let sql: postgres.Sql;

  /** A database, plugins directory and data directory of its own for each test; `sql` points at that database. */
  async function fresh(): Promise<{ plugins: string; data: string; url: string }> {
    const db = await createTestDatabase();
    dbs.push(db);
    sql = postgres(db.url, { max: 1, onnotice: () => {} });
    conns.push(sql);
    const plugins = pluginsDirWithPowertable();
    const data = tempDir('ph-data-');
    temps.push(plugins, data);
    return { plugins: plugins.dir, data: data.dir, url: db.url };
  }

  after(async () => {
    await killAllServers();
    for (const c of conns) await c.end({ timeout: 1 });
    for (const db of dbs) await db.drop();
    for (const t of temps) t.cleanup();
  });

  test('SIGTERM: stops accepting, lets in-flight requests finish, cleans up every plugin, closes the database, exits 0', async () => {
    const d = await fresh();
    writePlugin(d.plugins, 'slow', pluginSource({ name: 'slow', version: '1.0.0', route: '/slow', marked: true, slowMs: 1500 }));
    const node = await startServer({
      name: 'term',
      env: {
        DATABASE_URL: d.url,
        PLUGINS_DIR: d.plugins,
        DATA_DIR: d.data,
        NODE_ID: 'term-node',
        TYPECHECK: '0',
        DRAIN_TIMEOUT_MS: '10000',
      },
    });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      assert.equal((await keepAliveGet(`${node.url}/slow`, agent)).status, 200); // the connection is now open and idle
      const [{ n: before } = { n: 0 }] = await sql`SELECT count(*)::int AS n FROM plugin_host_nodes WHERE node_id = 'term-node'`;
      assert.equal(before, 1);

      const inflight = keepAliveGet(`${node.url}/slow/slow`, agent); // reuses the keep-alive connection
      await waitFor(() => node.findLog((l) => l.msg === 'slow request started'), 'the slow request in flight');
      node.signal('SIGTERM');
      await node.waitForLog((l) => l.msg === 'SIGTERM: shutting down', 'shutting down');
      // new connections are refused while the in-flight request still runs
      await waitFor(async () => {
        try {
          await fetch(`${node.url}/healthz`, { signal: AbortSignal.timeout(1000) });
          return false;
        } catch (err) {
          return /ECONNREFUSED/.test(String((err as Error).cause));
        }
      }, 'new connections refused');
      assert.ok(node.running, 'still draining');
      const r = await inflight;
      assert.equal(r.status, 200, 'the in-flight request finished');
      assert.equal(JSON.parse(r.body).plugin, 'slow');
      assert.equal(r.connection, 'close', 'and the server asked the client to close its keep-alive connection');

      const exit = await node.exited;
      assert.deepEqual(exit, { code: 0, signal: null });
      for (const msg of ['cleaned up slow 1.0.0', 'powertable cleaned up']) {
        assert.ok(
          node.findLog((l) => l.msg === msg),
          `cleanup ran: ${msg}`,
        );
      }
      const [{ n: afterExit } = { n: 1 }] = await sql`SELECT count(*)::int AS n FROM plugin_host_nodes WHERE node_id = 'term-node'`;
      assert.equal(afterExit, 0, 'the node removed itself before closing the pool');
      await waitFor(
        async () =>
          (
            await sql`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'plugin-host%'`
          )[0]?.n === 0,
        'listener and pool connections closed',
      );
      assert.ok(!node.output.some((l) => /unhandled|Error:/.test(l)), `a clean shutdown log:\n${node.tail()}`);
    } finally {
      agent.destroy();
    }
  });

  test('SIGINT with a request that never ends and a cleanup that hangs: both bounded, exits 0', async () => {
    const d = await fresh();
    writePlugin(
      d.plugins,
      'forever',
      pluginSource({ name: 'forever', version: '1.0.0', route: '/forever', marked: true, slowMs: 600_000 }),
    );
    writePlugin(d.plugins, 'stuck', stuckCleanupPlugin('stuck'));
    const node = await startServer({
      name: 'int',
      env: {
        DATABASE_URL: d.url,
        PLUGINS_DIR: d.plugins,
        DATA_DIR: d.data,
        NODE_ID: 'int-node',
        TYPECHECK: '0',
        DRAIN_TIMEOUT_MS: '1000',
        HOOK_TIMEOUT_MS: '1000',
      },
    });
    const hung = fetch(`${node.url}/forever/slow`).then(
      (r) => r.status,
      (err: Error) => `failed: ${String(err.cause ?? err)}`,
    );
    await waitFor(() => node.findLog((l) => l.msg === 'slow request started'), 'the endless request in flight');
    node.signal('SIGINT');
    const exit = await waitFor(() => node.exit, 'exit within the drain and hook bounds', 20_000);
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.ok(node.findLog((l) => l.msg === 'SIGINT: shutting down'));
    assert.ok(
      node.findLog((l) => l.plugin === 'stuck' && /cleanup\(\) did not finish within 1000 ms/.test(String(l.msg))),
      'the hanging cleanup was cut off and logged',
    );
    assert.ok(
      node.findLog((l) => l.msg === 'cleaned up forever 1.0.0'),
      'the other plugins were still cleaned up',
    );
    assert.match(String(await hung), /failed/, 'the request past the drain bound was cut');
  });

  test('a second signal exits at once', async () => {
    const d = await fresh();
    writePlugin(d.plugins, 'stuck', stuckCleanupPlugin('stuck'));
    const node = await startServer({
      name: 'twice',
      env: {
        DATABASE_URL: d.url,
        PLUGINS_DIR: d.plugins,
        DATA_DIR: d.data,
        NODE_ID: 'twice-node',
        TYPECHECK: '0',
        HOOK_TIMEOUT_MS: '120000',
      },
    });
    node.signal('SIGTERM');
    await node.waitForLog((l) => l.plugin === 'stuck' && l.msg === 'cleanup started', 'shutdown stuck in cleanup');
    node.signal('SIGINT');
    const exit = await waitFor(() => node.exit, 'exit long before the 120 s cleanup bound', 10_000);
    assert.equal(exit.code, 1, 'exits at once, non-zero: the shutdown was not completed');
    assert.ok(node.findLog((l) => /SIGINT again: exiting immediately/.test(String(l.msg))));
  });

  test('kill -9 in the middle of a reload, then restart: converges, nothing half-registered, artifacts consistent', async () => {
    const d = await fresh();
    writePlugin(d.plugins, 'target', pluginSource({ name: 'target', version: '1.0.0', marked: true }));
    const env = {
      DATABASE_URL: d.url,
      PLUGINS_DIR: d.plugins,
      DATA_DIR: d.data,
      NODE_ID: 'crash-node',
      TYPECHECK: '0',
      HOOK_TIMEOUT_MS: '10000',
    };
    const first = await startServer({ name: 'crash-1', env });
    assert.equal((await getJson(`${first.url}/target`)).body.version, '1.0.0');

    // version 2 initializes slowly: the process dies while 2 is loaded beside 1, before the swap
    writePlugin(d.plugins, 'target', pluginSource({ name: 'target', version: '2.0.0', route: '/target', marked: true, initMs: 2500 }));
    await sql`UPDATE plugins SET generation = generation + 1 WHERE name = 'target'`;
    await first.waitForLog((l) => l.msg === 'initializing target 2.0.0', 'reload of target in flight');
    first.signal('SIGKILL');
    assert.deepEqual(await first.exited, { code: null, signal: 'SIGKILL' });

    const second = await startServer({ name: 'crash-2', env });
    const v = await waitFor(async () => {
      const r = (await getJson(`${second.url}/plugins/target`)).body;
      return r.state === 'serving' && r.serving?.version === '2.0.0' ? r : undefined;
    }, 'target 2.0.0 after the restart');
    assert.equal((await getJson(`${second.url}/target`)).body.version, '2.0.0');
    assert.equal(v.last_error, null);
    assert.equal(v.version, '2.0.0', 'the row names what serves');
    assert.deepEqual(
      v.endpoints.map((e: { method: string; path: string }) => `${e.method} ${e.path}`),
      ['GET /target'],
    );
    const rows = await sql`SELECT name, count(*)::int AS n FROM plugins GROUP BY name ORDER BY name`;
    assert.deepEqual(
      rows.map((r) => `${r.name}:${r.n}`),
      ['powertable:1', 'target:1'],
    );
    const states =
      await sql`SELECT plugin_name, state, serving_version FROM plugin_node_state WHERE node_id = 'crash-node' ORDER BY plugin_name`;
    assert.deepEqual(
      states.map((s) => `${s.plugin_name}:${s.state}:${s.serving_version}`),
      ['powertable:serving:0.1.0', 'target:serving:2.0.0'],
    );
    const list = (await getJson(`${second.url}/plugins`)).body;
    assert.ok(
      list.every((p: { state: string }) => p.state === 'serving'),
      'no plugin left loading or reloading',
    );

    // every artifact file is complete, named by its hash, and equal to the published copy when there is one
    const dir = path.join(d.data, 'artifacts');
    const files = readdirSync(dir);
    assert.deepEqual(
      files.filter((f) => !f.endsWith('.cjs')),
      [],
      'no temporary files left behind',
    );
    for (const f of files) {
      const text = readFileSync(path.join(dir, f), 'utf8');
      const hash = f.slice(0, -'.cjs'.length);
      assert.match(text.split('\n')[0] as string, new RegExp(`hash=${hash} \\*/$`), `${f} header names its hash`);
      const [stored] = await sql`SELECT bundle FROM plugin_artifacts WHERE hash = ${hash}`;
      if (stored) assert.equal(stored.bundle, text, `${f} equals the published artifact`);
    }
    await second.stop('SIGTERM');
  });

  test('kill -9 in the middle of writing an artifact, then restart: nothing truncated under the final name, converges', async () => {
    const d = await fresh();
    writePlugin(d.plugins, 'target', pluginSource({ name: 'target', version: '1.0.0', marked: true }));
    const env = { DATABASE_URL: d.url, PLUGINS_DIR: d.plugins, DATA_DIR: d.data, NODE_ID: 'torn-node', TYPECHECK: '0' };
    // the test seam of the artifact writer: an artifact containing this text is written in two halves with a pause between
    const marker = `torn-write-${randomUUID()}`;
    const first = await startServer({ name: 'torn-1', env: { ...env, PLUGIN_HOST_TEST_PAUSE_ARTIFACT_WRITE: marker } });
    assert.equal((await getJson(`${first.url}/target`)).body.version, '1.0.0');

    writePlugin(
      d.plugins,
      'target',
      pluginSource({ name: 'target', version: '2.0.0', marked: true, initialize: `      ctx.log.info(${JSON.stringify(marker)});` }),
    );
    await sql`UPDATE plugins SET generation = generation + 1 WHERE name = 'target'`;
    const paused = await waitFor(
      () => first.output.find((l) => l.startsWith('plugin-host: test pause in the middle of writing ')),
      'the reload to stop in the middle of writing the new artifact',
    );
    first.signal('SIGKILL');
    assert.deepEqual(await first.exited, { code: null, signal: 'SIGKILL' });

    const artifacts = path.join(d.data, 'artifacts');
    const written = paused.slice('plugin-host: test pause in the middle of writing '.length);
    assert.equal(path.dirname(written), artifacts);
    const finalName = /^([0-9a-f]+\.cjs)\./.exec(path.basename(written))?.[1];
    assert.ok(finalName, `the artifact is written under another name than its final one: ${path.basename(written)}`);
    assert.ok(!existsSync(path.join(artifacts, finalName)), 'nothing is under the final name when the process dies');
    const torn = readFileSync(written, 'utf8');

    const second = await startServer({ name: 'torn-2', env });
    await waitFor(async () => {
      const r = (await getJson(`${second.url}/plugins/target`)).body;
      return r.state === 'serving' && r.serving?.version === '2.0.0' && r.last_error === null;
    }, 'target 2.0.0 after the restart');
    assert.equal((await getJson(`${second.url}/target`)).body.version, '2.0.0');
    assert.ok(
      second.findLog((l) => l.msg === marker && l.plugin === 'target'),
      'the version written in full was the one loaded',
    );

    // the artifact under its final name is complete (the torn write was a strict prefix of it), named by its
    // hash and equal to the published copy; the torn write's temporary file was removed at the restart
    const complete = readFileSync(path.join(artifacts, finalName), 'utf8');
    assert.ok(torn.length < complete.length && complete.startsWith(torn), 'the torn write was cut short');
    const hash = finalName.slice(0, -'.cjs'.length);
    assert.match(complete.split('\n')[0] as string, new RegExp(`hash=${hash} \\*/$`));
    const [stored] = await sql`SELECT bundle FROM plugin_artifacts WHERE hash = ${hash}`;
    assert.equal(stored?.bundle, complete, 'equal to the published artifact');
    assert.deepEqual(
      readdirSync(artifacts).filter((f) => !f.endsWith('.cjs')),
      [],
      'no temporary file left behind',
    );
    assert.ok(
      second.findLog((l) => Array.isArray(l.files) && l.files.includes(path.basename(written))),
      'the restart says it removed the torn write',
    );
    await second.stop('SIGTERM');
  });
});
