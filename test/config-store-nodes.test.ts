// Plugin configuration on two server processes sharing PostgreSQL, B without the plugin's source
// (DISCOVER=0, empty PLUGINS_DIR): a change reaches both, refusals change nothing anywhere, a secret
// reference resolves on each node from its own environment and shows in no answer, no log line and no
// pg_dump, a variable set on one node only fails the load on the other, and the CLI writes directly.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { configuredPlugin, shownKey } from './fixtures/configured-plugin.js';
import { cli } from './support/cli.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { writePlugin } from './support/plugin-sources.js';
import { killAllServers, type ServerProcess, startServer } from './support/server-process.js';
import { getJson, tempDir, waitFor } from './support/util.js';

const TOKEN = 'nodes-config-token-1';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const JSON_AUTH = { ...AUTH, 'content-type': 'application/json' };
const PG_DUMP = process.env.TEST_PG_DUMP ?? '/usr/lib/postgresql/15/bin/pg_dump';

describe('plugin configuration on two nodes (PostgreSQL), one without the source', () => {
  let db: TestDatabase;
  let sql: postgres.Sql;
  let plugins: { dir: string; cleanup(): void };
  let empty: { dir: string; cleanup(): void };
  const dataDirs: { dir: string; cleanup(): void }[] = [];
  let a: ServerProcess;
  let b: ServerProcess;
  const secretA = `node-a-secret-${randomUUID()}`;
  const secretB = `node-b-secret-${randomUUID()}`;
  const onlyOnA = `only-on-a-${randomUUID()}`;
  const secrets = [secretA, secretB, onlyOnA];

  function env(nodeId: string, pluginsDir: string, extra: Record<string, string>): Record<string, string> {
    const data = tempDir(`ph-${nodeId}-`);
    dataDirs.push(data);
    return { DATABASE_URL: db.url, PLUGINS_DIR: pluginsDir, DATA_DIR: data.dir, NODE_ID: nodeId, ADMIN_TOKEN: TOKEN, ...extra };
  }

  before(async () => {
    db = await createTestDatabase();
    sql = postgres(db.url, { max: 1, onnotice: () => {} });
    plugins = tempDir('ph-config-nodes-plugins-');
    empty = tempDir('ph-config-nodes-empty-');
    writePlugin(plugins.dir, 'greeter', configuredPlugin('greeter'));
    a = await startServer({ name: 'A', env: env('cfg-a', plugins.dir, { GREETER_KEY: secretA, ONLY_ON_A: onlyOnA }) });
    b = await startServer({ name: 'B', env: env('cfg-b', empty.dir, { GREETER_KEY: secretB, DISCOVER: '0' }) });
  });
  after(async () => {
    await killAllServers();
    await sql?.end({ timeout: 1 });
    await db?.drop();
    plugins?.cleanup();
    empty?.cleanup();
    for (const d of dataDirs) d.cleanup();
  });

  const route = async (n: ServerProcess) => (await getJson(`${n.url}/greeter`)).body;
  const put = (n: ServerProcess, body: unknown, headers: Record<string, string> = JSON_AUTH) =>
    getJson(`${n.adminUrl}/plugins/greeter/config`, {
      method: 'PUT',
      headers,
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const both = (what: string, pred: (n: ServerProcess) => Promise<boolean>) =>
    Promise.all([a, b].map((n) => waitFor(() => pred(n), `${n.name}: ${what}`, 20_000)));
  const stored = async () => sql`SELECT plugin_name, config, revision FROM plugin_configs ORDER BY plugin_name`;

  test('with nothing stored both nodes apply the defaults; B serves the published artifact', async () => {
    await both('greeter serving', async (n) => (await route(n))?.version === '1.0.0');
    for (const n of [a, b]) assert.deepEqual((await route(n)).config, { greeting: 'hello' });
    const onB = (await getJson(`${b.url}/plugins/greeter`)).body;
    assert.equal(onB.serving.from, 'artifact');
  });

  test('a PUT on the node without the source reaches both nodes', async () => {
    const r = await put(b, { greeting: 'from-b', count: 1 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.settled, true);
    assert.deepEqual(r.body.schema?.properties?.greeting, { type: 'string', default: 'hello' }, 'B read the schema from the artifact');
    await both('the new configuration', async (n) => (await route(n)).config.greeting === 'from-b');
    const view = (await getJson(`${a.url}/plugins/greeter`)).body;
    assert.equal(view.config_revision, r.body.revision);
    await waitFor(async () => {
      const nodes = (await getJson(`${a.url}/plugins/greeter`)).body.nodes as { serving_config_revision: number }[];
      return nodes.length === 2 && nodes.every((x) => x.serving_config_revision === r.body.revision);
    }, 'both nodes to record the revision they serve');
  });

  test('refusals on either node change nothing anywhere', async () => {
    const rows = await stored();
    const instances = await Promise.all([a, b].map(async (n) => (await route(n)).instance));
    const refusals = [
      [await put(b, { greeting: 42 }), 400, 'PH_ERR_PLUGIN_CONFIG_INVALID'],
      [await put(b, { greeting: 'x', unknown: true }), 400, 'PH_ERR_PLUGIN_CONFIG_INVALID'],
      [await put(a, [{ greeting: 'x' }]), 400, 'PH_ERR_PLUGIN_CONFIG_INVALID'],
      [await put(a, { greeting: 'x' }, { 'content-type': 'application/json' }), 401, 'PH_ERR_UNAUTHORIZED'],
      [
        await put(b, { greeting: 'x' }, { authorization: 'Bearer wrong-token-1', 'content-type': 'application/json' }),
        401,
        'PH_ERR_UNAUTHORIZED',
      ],
    ] as const;
    for (const [r, status, code] of refusals) {
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.equal(r.body.code, code);
    }
    assert.match(refusals[0][0].body.detail, /\/greeting must be string/);
    assert.match(refusals[1][0].body.detail, /\/unknown is not allowed/);
    assert.deepEqual(await stored(), rows, 'nothing written');
    assert.deepEqual(await Promise.all([a, b].map(async (n) => (await route(n)).instance)), instances, 'nothing reloaded');
  });

  test('a secret reference resolves on each node from its own environment, and shows in no answer, log line or pg_dump', async () => {
    const r = await put(a, { greeting: 'secret', key: { $env: 'GREETER_KEY' } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await both('the key', async (n) => typeof (await route(n)).config.key === 'string');
    assert.equal((await route(a)).config.key, shownKey(secretA));
    assert.equal((await route(b)).config.key, shownKey(secretB));

    for (const n of [a, b]) {
      const answers = await Promise.all(
        ['/plugins', '/plugins/greeter', '/plugins/greeter/health', '/cluster', '/openapi.json', '/metrics', '/plugins/greeter/errors'].map(
          // both planes: what one of them does not serve is a 404, which proves nothing alone
          async (p) => (await (await fetch(`${n.url}${p}`)).text()) + (await (await fetch(`${n.adminUrl}${p}`)).text()),
        ),
      );
      answers.push(JSON.stringify((await getJson(`${n.adminUrl}/plugins/greeter/config`, { headers: AUTH })).body));
      for (const text of answers) for (const s of secrets) assert.ok(!text.includes(s), `${n.name}: no secret in ${text.slice(0, 160)}`);
      assert.ok(
        n.output.some((l) => l.includes('initialized with key [REDACTED]')),
        `${n.name}: the plugin logged its key and the line was redacted`,
      );
    }
    const dump = await promisify(execFile)(PG_DUMP, ['-h', '127.0.0.1', '-p', '5432', '-U', 'postgres', '-d', db.name], {
      maxBuffer: 64 * 1024 * 1024,
    });
    assert.ok(dump.stdout.includes('GREETER_KEY'), 'the reference is in the dump');
    for (const s of secrets) assert.ok(!dump.stdout.includes(s), 'no value is');
  });

  test('a variable set on one node only: the other fails the load naming it and keeps its previous configuration', async () => {
    const previous = (await getJson(`${b.url}/plugins/greeter`)).body.serving.config_revision;
    const keyOnB = (await route(b)).config.key;
    const r = await put(a, { greeting: 'only-a', key: { $env: 'ONLY_ON_A' } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await waitFor(async () => (await route(a)).config.greeting === 'only-a', 'A to take it');
    assert.equal((await route(a)).config.key, shownKey(onlyOnA));
    const onB = await waitFor(async () => {
      const p = (await getJson(`${b.url}/plugins/greeter`)).body;
      return p.last_error?.code === 'PH_ERR_PLUGIN_CONFIG_SECRET' ? p : undefined;
    }, 'B to refuse it');
    assert.match(onB.last_error.message, /environment variable ONLY_ON_A is not set on this node/);
    assert.equal(onB.state, 'serving');
    assert.equal(onB.serving.config_revision, previous);
    assert.deepEqual((await route(b)).config, { greeting: 'secret', key: keyOnB }, 'B serves the previous configuration');
    const seenFromA = await waitFor(async () => {
      const nodes = (await getJson(`${a.url}/plugins/greeter`)).body.nodes as any[];
      const nb = nodes.find((x) => x.node_id === 'cfg-b');
      return nb?.last_error?.code === 'PH_ERR_PLUGIN_CONFIG_SECRET' ? nb : undefined;
    }, "A to show B's failure");
    assert.equal(seenFromA.serving_config_revision, previous);
    assert.ok(
      b.output.some((l) => l.includes('ONLY_ON_A') && l.includes('PH_ERR_PLUGIN_CONFIG_SECRET')),
      'logged on B',
    );
    for (const s of secrets) assert.ok(!a.output.join('\n').includes(s) && !b.output.join('\n').includes(s), 'no secret logged');
  });

  test('the CLI with DATABASE_URL validates and writes the database; both nodes follow', async () => {
    const cliEnv = { DATABASE_URL: db.url, PLUGINS_DIR: empty.dir, DATA_DIR: dataDirs[0]?.dir ?? '' };
    const set = await cli(['config', 'set', 'greeter', 'greeting=from-cli', 'key={"$env":"GREETER_KEY"}', '--json'], cliEnv);
    assert.equal(set.code, 0, set.stderr);
    const written = JSON.parse(set.stdout);
    assert.equal(written.changed, true);
    assert.deepEqual(written.config, { greeting: 'from-cli', key: { $env: 'GREETER_KEY' } });
    await both('the CLI change', async (n) => (await route(n)).config.greeting === 'from-cli');
    assert.equal((await route(b)).config.key, shownKey(secretB));

    const got = await cli(['config', 'get', 'greeter'], cliEnv);
    assert.equal(got.code, 0, got.stderr);
    assert.match(got.stdout, /"\$env": "GREETER_KEY"/);
    assert.match(got.stdout, /^greeter: revision \d+ \(by cli/m);

    const rows = await stored();
    const bad = await cli(['config', 'set', 'greeter', 'count=-2'], cliEnv);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^plugin-host: PH_ERR_PLUGIN_CONFIG_INVALID: greeter: configuration is invalid: \/count must be >= 0/);
    const usage = await cli(['config', 'set', 'greeter'], cliEnv);
    assert.equal(usage.code, 2);
    assert.deepEqual(await stored(), rows, 'nothing written');
  });
});
