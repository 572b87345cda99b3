// Database outages against a private PostgreSQL cluster that this file starts, stops, restarts and removes
// (the shared server on 5432 is in use by other test files): unreachable at start, restarted under load,
// stopped for a while, and a listening backend that stops answering.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startLoad } from './support/load.js';
import { pluginSource, pluginsDirWithPowertable, writePlugin } from './support/plugin-sources.js';
import { PrivatePostgres } from './support/private-postgres.js';
import { killAllServers, type ServerProcess, startServer } from './support/server-process.js';
import { getJson, tempDir, waitFor } from './support/util.js';

const LISTENER = 'plugin-host-listener';

describe('database outages (private PostgreSQL cluster)', () => {
  let pg: PrivatePostgres;
  let plugins: { dir: string; cleanup(): void };
  let data: { dir: string; cleanup(): void };
  let node: ServerProcess;

  const versionAt = async (route: string) => {
    const r = await getJson(`${node.url}${route}`);
    return r.status === 200 ? (r.body.version as string) : `status ${r.status}`;
  };
  const bump = (name: string) => pg.sql(`UPDATE plugins SET generation = generation + 1 WHERE name = $1`, [name]);

  before(async () => {
    pg = await PrivatePostgres.create();
    plugins = pluginsDirWithPowertable();
    data = tempDir('ph-data-');
    writePlugin(plugins.dir, 'alpha', pluginSource({ name: 'alpha', version: '1.0.0' }));
    // started before its database exists on the network
    node = await startServer({
      name: 'node',
      waitReady: false,
      env: {
        DATABASE_URL: pg.url(),
        PLUGINS_DIR: plugins.dir,
        DATA_DIR: data.dir,
        NODE_ID: 'outage-node',
        TYPECHECK: '0',
        RECONCILE_INTERVAL_MS: '600000',
      },
    });
  });

  after(async () => {
    await killAllServers();
    await pg?.destroy();
    plugins?.cleanup();
    data?.cleanup();
  });

  test('unreachable at start: retried with backoff and one clear line per attempt, ready once it appears', async () => {
    const retry = (l: Record<string, unknown>) => String(l.msg).startsWith('database not reachable');
    await waitFor(() => node.logs.filter(retry).length >= 3, 'three retry lines', 20_000);
    const lines = node.logs.filter(retry);
    const delays = lines.map((l) => l.retryInMs as number);
    assert.ok(
      delays.every((d, i) => i === 0 || d >= (delays[i - 1] as number)),
      `backoff grows: ${delays.join(', ')}`,
    );
    assert.ok((delays[2] as number) > (delays[0] as number), `backoff grows: ${delays.join(', ')}`);
    assert.match(String(lines[0]?.msg), /ECONNREFUSED/, 'the line says why');
    assert.equal(lines[0]?.level, 40, 'a warning, not an error with a stack');
    assert.ok(!node.output.some((l) => /^\s+at /.test(l) || l.includes('"stack"')), `no stack trace:\n${node.tail()}`);
    assert.ok(node.running, 'still waiting, not exited');
    assert.equal(node.url, '', 'not listening before the database is there');

    await pg.start();
    await node.waitReady(30_000);
    await waitFor(async () => (await getJson(`${node.url}/readyz`)).status === 200, 'ready');
    assert.equal((await getJson(`${node.url}/hello`)).status, 200);
    assert.equal(await versionAt('/alpha'), '1.0.0');
  });

  test('PostgreSQL restarted (fast and immediate) under load: plugins answer throughout, then changes converge', async () => {
    const hello = startLoad(`${node.url}/hello`, { concurrency: 3, maxMs: 60_000 });
    const alpha = startLoad(`${node.url}/alpha`, { concurrency: 2, maxMs: 60_000, field: 'version' });
    await waitFor(() => hello.count > 50 && alpha.count > 50, 'load running');

    await pg.restart('fast');
    writePlugin(plugins.dir, 'alpha', pluginSource({ name: 'alpha', version: '2.0.0' }));
    await bump('alpha'); // committed while the node's listener is most likely still reconnecting
    await waitFor(async () => (await versionAt('/alpha')) === '2.0.0', 'alpha 2.0.0 after a fast restart', 30_000);

    await pg.restart('immediate'); // a crash: no goodbye to the clients, WAL recovery at start
    writePlugin(plugins.dir, 'alpha', pluginSource({ name: 'alpha', version: '3.0.0' }));
    await bump('alpha');
    await waitFor(async () => (await versionAt('/alpha')) === '3.0.0', 'alpha 3.0.0 after a crash restart', 30_000);
    await waitFor(async () => (await getJson(`${node.url}/readyz`)).status === 200, 'ready again');

    const h = await hello.stop();
    const a = await alpha.stop();
    assert.equal(h.non2xx + (h.byStatus[0] ?? 0), 0, `/hello never failed: ${JSON.stringify(h.byStatus)} ${h.errors.join('; ')}`);
    assert.equal(a.non2xx + (a.byStatus[0] ?? 0), 0, `/alpha never failed: ${JSON.stringify(a.byStatus)} ${a.errors.join('; ')}`);
    assert.ok(h.requests > 100 && a.requests > 100, `load really ran: ${h.requests} + ${a.requests}`);
    for (const v of Object.keys(a.seen)) assert.ok(['1.0.0', '2.0.0', '3.0.0'].includes(v), `only real versions answered: ${v}`);
  });

  test('outage: plugins keep serving, /plugins answers what it knows with a stale flag, converges when back', async () => {
    const hello = startLoad(`${node.url}/hello`, { concurrency: 3, maxMs: 60_000 });
    await waitFor(() => hello.count > 50, 'load running');
    await pg.stop('fast');

    const list = await getJson(`${node.url}/plugins`);
    assert.equal(list.status, 200);
    assert.equal(list.headers.get('x-plugin-host-stale'), '1');
    assert.deepEqual(list.body.map((p: { name: string }) => p.name).sort(), ['alpha', 'powertable']);
    for (const p of list.body) {
      assert.equal(p.stale, true, `${p.name} flagged stale`);
      assert.equal(p.state, 'serving', `${p.name} still serving here`);
    }
    const one = await getJson(`${node.url}/plugins/alpha`);
    assert.equal(one.status, 200);
    assert.equal(one.body.stale, true);
    assert.equal(one.body.serving.version, '3.0.0');
    const ready = await getJson(`${node.url}/readyz`);
    assert.equal(ready.status, 503);
    assert.match(ready.body.detail, /database unreachable/);
    assert.equal(await versionAt('/alpha'), '3.0.0', 'alpha answers during the outage');
    await waitFor(
      () => node.findLog((l) => l.msg === 'listener disconnected; reconnecting' && (l.time as number) > Date.now() - 10_000),
      'listener noticed',
    );
    // The outage lasts a while: long enough for several reconnect attempts to fail and the listener's backoff
    // to grow (a scenario's duration, not a window for a negative check: nothing logs each attempt to wait for)
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal((await getJson(`${node.url}/hello`)).status, 200);

    await pg.start();
    // committed as soon as the server is back: possibly before the node's listener is
    await pg.sql(`UPDATE plugins SET status = 'inactive' WHERE name = 'alpha'`);
    await waitFor(async () => (await getJson(`${node.url}/alpha`)).status === 404, 'alpha disabled after the outage', 30_000);
    const fresh = await waitFor(async () => {
      const r = await getJson(`${node.url}/plugins`);
      return r.headers.get('x-plugin-host-stale') === null ? r : undefined;
    }, '/plugins fresh again');
    assert.ok(fresh.body.every((p: { stale: boolean }) => p.stale === false));
    assert.equal(fresh.body.find((p: { name: string }) => p.name === 'alpha').status, 'inactive');
    await waitFor(async () => (await getJson(`${node.url}/readyz`)).status === 200, 'ready again');

    const h = await hello.stop();
    assert.equal(h.non2xx + (h.byStatus[0] ?? 0), 0, `/hello never failed: ${JSON.stringify(h.byStatus)} ${h.errors.join('; ')}`);
  });

  test('a listening backend that stops answering is detected by its ping and replaced; the change is applied', async () => {
    const [l] = await pg.sql<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE application_name = '${LISTENER}'`);
    assert.ok(l, 'the node has a listening backend');
    process.kill(l.pid, 'SIGSTOP'); // the TCP connection stays up, nothing answers: a half-open connection
    try {
      await pg.sql(`UPDATE plugins SET status = 'active' WHERE name = 'alpha'`); // queued for a backend that never reads it
      await waitFor(
        () => node.findLog((x) => String(x.err).startsWith('listener ping not answered')),
        'the ping timeout to declare the listener lost',
        30_000,
      );
      await waitFor(async () => (await versionAt('/alpha')) === '3.0.0', 'alpha enabled after the listener was replaced', 30_000);
    } finally {
      process.kill(l.pid, 'SIGCONT');
    }
  });
});
