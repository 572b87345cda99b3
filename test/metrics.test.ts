import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { onEachDatabase } from './support/databases.js';
import { sqlByHand, startTestHost, type TestHost } from './support/host.js';
import { pluginSource, pluginsDirWithPowertable, writePlugin } from './support/plugin-sources.js';
import { waitFor } from './support/util.js';

const TOKEN = 'metrics-token-123';
const AUTH = { authorization: `Bearer ${TOKEN}` };

/** Parses the Prometheus text format into `name{labels}` -> value. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?) (\S+)$/.exec(line);
    assert.ok(m, `a valid sample line: ${line}`);
    out.set(m[1] as string, Number(m[2]));
  }
  return out;
}

async function scrape(url: string): Promise<Map<string, number>> {
  const res = await fetch(`${url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parseMetrics(await res.text());
}

onEachDatabase('metrics', (db) => {
  let t: TestHost;
  let plugins: { dir: string; cleanup(): void };

  before(async () => {
    plugins = pluginsDirWithPowertable();
    t = await startTestHost({ ...db.hostOptions, pluginsDir: plugins.dir, env: { ADMIN_TOKEN: TOKEN } });
  });
  after(async () => {
    await t?.close();
    plugins.cleanup();
  });

  test('plugins by state and status, loads and their duration after start', async () => {
    const m = await scrape(t.adminUrl);
    assert.equal(m.get('plugin_host_plugins{state="serving"}'), 1);
    assert.equal(m.get('plugin_host_plugins{state="error"}'), 0);
    assert.equal(m.get('plugin_host_plugins_desired{status="active"}'), 1);
    assert.equal(m.get('plugin_host_plugins_desired{status="inactive"}'), 0);
    assert.equal(m.get('plugin_host_plugin_loads_total{plugin="powertable",kind="load"}'), 1);
    assert.equal(m.get('plugin_host_plugin_load_duration_seconds_count{kind="load"}'), 1);
    assert.ok((m.get('plugin_host_plugin_load_duration_seconds_sum{kind="load"}') ?? 0) > 0);
    assert.ok(m.has('process_resident_memory_bytes'), 'process metrics');
  });

  test('requests per plugin route are counted, across a reload', async () => {
    const key = 'plugin_host_plugin_requests_total{plugin="powertable",method="GET",route="/hello"}';
    const before = (await scrape(t.adminUrl)).get(key) ?? 0;
    for (let i = 0; i < 7; i++) assert.equal((await fetch(`${t.url}/hello`)).status, 200);
    assert.equal((await fetch(`${t.url}/plugins`)).status, 200); // core routes are not plugin requests
    assert.equal((await scrape(t.adminUrl)).get(key), before + 7);

    const r = await fetch(`${t.adminUrl}/plugins/powertable/reload`, { method: 'POST', headers: AUTH });
    assert.equal(r.status, 200);
    for (let i = 0; i < 3; i++) await fetch(`${t.url}/hello`);
    const m = await scrape(t.adminUrl);
    assert.equal(m.get(key), before + 10, 'the counter keeps counting over versions');
    assert.equal(m.get('plugin_host_plugin_loads_total{plugin="powertable",kind="reload"}'), 1);
    assert.equal(m.get('plugin_host_plugin_load_duration_seconds_count{kind="reload"}'), 1);
    assert.equal(m.get('plugin_host_plugin_inflight_requests{plugin="powertable"}'), 0);
  });

  test('unloads and failures by code', async () => {
    assert.equal((await fetch(`${t.adminUrl}/plugins/powertable/disable`, { method: 'POST', headers: AUTH })).status, 200);
    let m = await scrape(t.adminUrl);
    assert.equal(m.get('plugin_host_plugins{state="unloaded"}'), 1);
    assert.equal(m.get('plugin_host_plugins{state="serving"}'), 0);
    assert.equal(m.get('plugin_host_plugins_desired{status="inactive"}'), 1);
    assert.equal(m.get('plugin_host_plugin_unloads_total{plugin="powertable"}'), 1);
    assert.equal((await fetch(`${t.adminUrl}/plugins/powertable/enable`, { method: 'POST', headers: AUTH })).status, 200);

    const dir = writePlugin(
      plugins.dir,
      'faulty',
      pluginSource({ name: 'faulty', endpoints: null, initThrows: 'cannot start', routes: '' }),
    );
    await sqlByHand(t, db.url, 'INSERT INTO plugins (id, name, type, path, source_path, status) VALUES ($1, $2, $3, $4, $4, $5)', [
      randomUUID(),
      'faulty',
      'dynamic',
      dir,
      'active',
    ]);
    m = await waitFor(async () => {
      const x = await scrape(t.adminUrl);
      return (x.get('plugin_host_plugin_failures_total{plugin="faulty",code="PH_ERR_HOOK_FAILED"}') ?? 0) >= 1 ? x : undefined;
    }, 'the failure to be counted');
    assert.equal(m.get('plugin_host_plugins{state="error"}'), 1);
    assert.equal(m.get('plugin_host_plugins{state="serving"}'), 1);
  });
});
