// Per-plugin configuration through the admin API, on PGlite and on PostgreSQL: defaults, PUT and PATCH,
// every refusal changing nothing, secret references resolved and never shown, an unset variable, a
// version whose schema refuses the stored configuration, onConfigChange, and hand-written SQL.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { configuredPlugin, GREETER_SCHEMA, shownKey } from './fixtures/configured-plugin.js';
import { cli } from './support/cli.js';
import { createTestDatabase, DB_KINDS, type TestDatabase } from './support/databases.js';
import { sqlByHand, startTestHost, type TestHost } from './support/host.js';
import { writePlugin } from './support/plugin-sources.js';
import { getJson, tempDir, waitFor } from './support/util.js';

const TOKEN = 'config-admin-token-1';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const JSON_AUTH = { ...AUTH, 'content-type': 'application/json' };
const PG_DUMP = process.env.TEST_PG_DUMP ?? '/usr/lib/postgresql/15/bin/pg_dump';

type Answer = { status: number; body: any; headers: Headers };

for (const kind of DB_KINDS) {
  describe(`plugin configuration on ${kind}`, () => {
    let db: TestDatabase | undefined;
    let t: TestHost;
    let plugins: { dir: string; cleanup(): void };
    let secrets: { dir: string; cleanup(): void };
    const envSecret = `env-secret-${randomUUID()}`;
    const fileSecret = `file-secret-${randomUUID()}`;
    let secretFile: string;

    before(async () => {
      plugins = tempDir('ph-config-plugins-');
      secrets = tempDir('ph-config-secrets-');
      secretFile = path.join(secrets.dir, 'greeter-key');
      writeFileSync(secretFile, `${fileSecret}\n`);
      writePlugin(plugins.dir, 'greeter', configuredPlugin('greeter'));
      writePlugin(plugins.dir, 'tuner', configuredPlugin('tuner', { onConfigChange: true }));
      writePlugin(plugins.dir, 'plain', configuredPlugin('plain', { schema: null }));
      writePlugin(plugins.dir, 'w-greeter', configuredPlugin('w-greeter'));
      writePlugin(plugins.dir, 'w-tuner', configuredPlugin('w-tuner', { onConfigChange: true }));
      if (kind === 'postgres') db = await createTestDatabase();
      t = await startTestHost({
        kind,
        pluginsDir: plugins.dir,
        ...(db ? { databaseUrl: db.url } : {}),
        env: { ADMIN_TOKEN: TOKEN, SECRETS_DIR: secrets.dir },
        // what this node's secret references resolve from (a server process uses its own environment)
        environment: { GREETER_KEY: envSecret, ADMIN_TOKEN: TOKEN },
      });
    });
    after(async () => {
      await t?.close();
      await db?.drop();
      plugins?.cleanup();
      secrets?.cleanup();
    });

    const route = async (name: string) => (await getJson(`${t.url}/${name}`)).body;
    const config = (name: string, headers: Record<string, string> = AUTH) => getJson(`${t.adminUrl}/plugins/${name}/config`, { headers });
    const put = (name: string, body: unknown, headers: Record<string, string> = JSON_AUTH) =>
      getJson(`${t.adminUrl}/plugins/${name}/config`, {
        method: 'PUT',
        headers,
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
    const patch = (
      name: string,
      body: unknown,
      headers: Record<string, string> = { ...AUTH, 'content-type': 'application/merge-patch+json' },
    ) => getJson(`${t.adminUrl}/plugins/${name}/config`, { method: 'PATCH', headers, body: JSON.stringify(body) });
    const plugin = async (name: string) => (await getJson(`${t.url}/plugins/${name}`)).body;
    const waitForPlugin = (name: string, pred: (p: any) => boolean) =>
      waitFor(async () => {
        const p = await plugin(name);
        return pred(p) ? p : undefined;
      }, `${name} to match`);
    const storedRows = async () =>
      (await sqlByHand(t, db?.url, 'SELECT plugin_name, config::text AS config, revision FROM plugin_configs ORDER BY plugin_name')) as {
        plugin_name: string;
        config: string;
        revision: number;
      }[];

    function assertRefused(r: Answer, status: number, code: string, pointers: string[] = []): void {
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.equal(r.body.code, code);
      const named = ((r.body.details?.errors ?? []) as { pointer: string }[]).map((e) => e.pointer);
      for (const p of pointers) {
        assert.ok(named.includes(p), `${p} named in ${JSON.stringify(r.body)}`);
        assert.ok(r.body.detail.includes(p), `${p} in the detail`);
      }
    }

    test('with nothing stored, the schema defaults are applied; GET shows schema and revision 0', async () => {
      assert.deepEqual((await route('greeter')).config, { greeting: 'hello' });
      assert.deepEqual((await route('plain')).config, {});
      const c = await config('greeter');
      assert.equal(c.status, 200, JSON.stringify(c.body));
      assert.deepEqual(c.body.config, {});
      assert.deepEqual(c.body.effective, { greeting: 'hello' });
      assert.deepEqual(c.body.schema, GREETER_SCHEMA);
      assert.equal(c.body.revision, 0);
      assert.equal(c.headers.get('etag'), '"0"');
      assert.equal((await plugin('greeter')).config_revision, null);
    });

    test('PUT validates, stores, reloads blue/green with the same code and answers settled', async () => {
      const before = await route('greeter');
      const hash = (await plugin('greeter')).serving.hash;
      const r = await put('greeter', { greeting: 'hi', count: 2 });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.changed, true);
      assert.equal(r.body.settled, true);
      assert.deepEqual(r.body.config, { greeting: 'hi', count: 2 });
      assert.ok(r.body.revision > 0);
      assert.equal(r.headers.get('etag'), `"${r.body.revision}"`);
      assert.equal(r.body.plugin.state, 'serving');
      assert.equal(r.body.plugin.config_revision, r.body.revision);
      assert.equal(r.body.plugin.serving.config_revision, r.body.revision);
      const after = await route('greeter');
      assert.deepEqual(after.config, { greeting: 'hi', count: 2 });
      assert.notEqual(after.instance, before.instance, 'a new instance took the configuration');
      assert.equal((await plugin('greeter')).serving.hash, hash, 'the same artifact');
      const listed = (await getJson(`${t.url}/plugins`)).body.find((p: { name: string }) => p.name === 'greeter');
      assert.equal(listed.config_revision, r.body.revision);

      const again = await put('greeter', { count: 2, greeting: 'hi' });
      assert.equal(again.status, 200);
      assert.equal(again.body.changed, false, 'equal values are not written');
      assert.equal(again.body.revision, r.body.revision);
      assert.equal((await route('greeter')).instance, after.instance, 'and nothing reloads');
    });

    test('wrong types, unknown properties, a body that is not an object, no or a wrong token: refused, nothing changed', async () => {
      const stored = await storedRows();
      const serving = await route('greeter');
      assertRefused(await put('greeter', { greeting: 5 }), 400, 'PH_ERR_PLUGIN_CONFIG_INVALID', ['/greeting']);
      assertRefused(await put('greeter', { greeting: 'x', colour: 'red' }), 400, 'PH_ERR_PLUGIN_CONFIG_INVALID', ['/colour']);
      assertRefused(await put('greeter', { count: -1, key: 'short' }), 400, 'PH_ERR_PLUGIN_CONFIG_INVALID', ['/count', '/key']);
      assertRefused(await put('greeter', [1, 2]), 400, 'PH_ERR_PLUGIN_CONFIG_INVALID', ['/']);
      assertRefused(await put('greeter', '"text"'), 400, 'PH_ERR_PLUGIN_CONFIG_INVALID', ['/']);
      assertRefused(await put('greeter', 'null'), 400, 'PH_ERR_PLUGIN_CONFIG_INVALID', ['/']);
      assertRefused(await put('greeter', '{"greeting": '), 400, 'PH_ERR_INVALID_JSON');
      assertRefused(await put('greeter', { key: { $env: 'ADMIN_TOKEN' } }), 400, 'PH_ERR_PLUGIN_CONFIG_INVALID', ['/key']);
      assertRefused(await put('greeter', { key: { $env: 'A', $file: '/x' } }), 400, 'PH_ERR_PLUGIN_CONFIG_INVALID', ['/key']);
      assertRefused(await put('plain', { anything: 1 }), 400, 'PH_ERR_PLUGIN_CONFIG_INVALID', ['/anything']);
      assertRefused(await patch('greeter', { greeting: false }), 400, 'PH_ERR_PLUGIN_CONFIG_INVALID', ['/greeting']);
      assertRefused(await put('greeter', { greeting: 'x' }, { 'content-type': 'application/json' }), 401, 'PH_ERR_UNAUTHORIZED');
      assertRefused(
        await put('greeter', { greeting: 'x' }, { authorization: 'Bearer not-the-token', 'content-type': 'application/json' }),
        401,
        'PH_ERR_UNAUTHORIZED',
      );
      assertRefused(await config('greeter', {}), 401, 'PH_ERR_UNAUTHORIZED');
      assertRefused(await patch('greeter', { greeting: 'x' }, { 'content-type': 'application/json' }), 401, 'PH_ERR_UNAUTHORIZED');
      assertRefused(await put('nope', {}), 404, 'PH_ERR_PLUGIN_NOT_FOUND');
      assertRefused(await put('..%2Fetc', {}), 400, 'PH_ERR_PLUGIN_NAME_INVALID');
      const rev = (await config('greeter')).body.revision;
      assertRefused(
        await put('greeter', { greeting: 'x' }, { ...JSON_AUTH, 'if-match': `"${rev - 1}"` }),
        412,
        'PH_ERR_PLUGIN_CONFIG_CONFLICT',
      );
      assert.deepEqual(await storedRows(), stored, 'nothing written');
      const now = await route('greeter');
      assert.equal(now.instance, serving.instance, 'nothing reloaded');
      assert.deepEqual(now.config, serving.config);
      assert.equal(
        (await put('greeter', { greeting: 'hi', count: 2 }, { ...JSON_AUTH, 'if-match': `"${rev}"` })).status,
        200,
        'the right revision',
      );
    });

    test('PATCH merges: null removes a key, and its default is back', async () => {
      const r = await patch('greeter', { greeting: null, count: 3 });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.deepEqual(r.body.config, { count: 3 });
      assert.deepEqual((await route('greeter')).config, { greeting: 'hello', count: 3 });
    });

    test('secret references resolve on this node into ctx.config and appear in no answer, log line or stored row', async () => {
      const r = await put('greeter', { greeting: 'hi', key: { $env: 'GREETER_KEY' } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.deepEqual(r.body.config.key, { $env: 'GREETER_KEY' }, 'stored as written');
      assert.equal((await route('greeter')).config.key, shownKey(envSecret), 'the plugin got the value');
      const f = await put('tuner', { key: { $file: secretFile } });
      assert.equal(f.status, 200, JSON.stringify(f.body));
      assert.equal((await route('tuner')).config.key, shownKey(fileSecret));

      const answers = await Promise.all(
        [
          '/plugins',
          '/plugins/greeter',
          '/plugins/tuner',
          '/plugins/greeter/health',
          '/cluster',
          '/openapi.json',
          '/metrics',
          '/plugins/greeter/errors',
          // both planes: what one of them does not serve is a 404, which proves nothing alone
        ].map(async (p) => (await (await fetch(`${t.url}${p}`)).text()) + (await (await fetch(`${t.adminUrl}${p}`)).text())),
      );
      answers.push(JSON.stringify((await config('greeter')).body), JSON.stringify((await config('tuner')).body), JSON.stringify(r.body));
      for (const a of answers) {
        assert.ok(!a.includes(envSecret) && !a.includes(fileSecret), `no secret in ${a.slice(0, 200)}`);
      }
      assert.deepEqual(
        (await getJson(`${t.url}/plugins/greeter/health`)).body.detail,
        { key: '[REDACTED]' },
        'the health detail is redacted',
      );
      const logs = JSON.stringify(t.logs.lines);
      assert.ok(!logs.includes(envSecret) && !logs.includes(fileSecret), 'no secret in any log line');
      assert.ok(
        t.logs.find((l) => l.plugin === 'greeter' && l.msg === 'initialized with key [REDACTED]'),
        'the plugin logged the key, and the line was redacted',
      );
      const everything = (await sqlByHand(
        t,
        db?.url,
        `SELECT (SELECT coalesce(string_agg(c::text, ' '), '') FROM plugin_configs c) || (SELECT coalesce(string_agg(s::text, ' '), '') FROM plugin_node_state s)
           || (SELECT coalesce(string_agg(p::text, ' '), '') FROM plugins p) AS text`,
      )) as { text: string }[];
      assert.ok(everything[0]?.text.includes('GREETER_KEY'), 'the reference is stored');
      assert.ok(!everything[0]?.text.includes(envSecret) && !everything[0]?.text.includes(fileSecret), 'no value is stored');
      if (db !== undefined) {
        const dump = await promisify(execFile)(PG_DUMP, ['-h', '127.0.0.1', '-p', '5432', '-U', 'postgres', '-d', db.name], {
          maxBuffer: 64 * 1024 * 1024,
        });
        assert.ok(dump.stdout.includes('GREETER_KEY'), 'the dump holds the configuration');
        assert.ok(!dump.stdout.includes(envSecret) && !dump.stdout.includes(fileSecret), 'and no secret value');
      }
    });

    test('an unset variable fails the load naming it; the previous configuration keeps serving', async () => {
      const serving = await route('greeter');
      const r = await put('greeter', { greeting: 'new', key: { $env: 'GREETER_KEY_UNSET' } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.settled, true);
      assert.equal(r.body.plugin.state, 'serving');
      assert.equal(r.body.plugin.last_error?.code, 'PH_ERR_PLUGIN_CONFIG_SECRET');
      assert.match(r.body.plugin.last_error?.message, /\/key: environment variable GREETER_KEY_UNSET is not set on this node/);
      assert.ok(r.body.plugin.serving.config_revision < r.body.revision, 'the previous revision serves');
      const now = await route('greeter');
      assert.equal(now.instance, serving.instance);
      assert.deepEqual(now.config, serving.config);
      assert.ok(
        t.logs.find((l) => l.plugin === 'greeter' && l.code === 'PH_ERR_PLUGIN_CONFIG_SECRET'),
        'logged against the plugin',
      );

      const fixed = await put('greeter', { greeting: 'new', key: { $env: 'GREETER_KEY' } });
      assert.equal(fixed.body.plugin.last_error, null, 'a configuration that resolves clears the error');
      assert.deepEqual((await route('greeter')).config, { greeting: 'new', key: shownKey(envSecret) });
    });

    test('onConfigChange takes the change in place; a throw keeps the previous configuration and is recorded without the secret', async () => {
      const before = await route('tuner');
      const r = await put('tuner', { greeting: 'tuned', key: { $env: 'GREETER_KEY' } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const after = await route('tuner');
      assert.equal(after.instance, before.instance, 'the same instance keeps serving');
      assert.equal(after.changes, before.changes + 1);
      assert.deepEqual(after.config, { greeting: 'tuned', key: shownKey(envSecret) });
      assert.equal(r.body.plugin.serving.config_revision, r.body.revision);

      const refused = await put('tuner', { greeting: 'refuse', key: { $env: 'GREETER_KEY' } });
      assert.equal(refused.status, 200);
      assert.equal(refused.body.plugin.last_error?.code, 'PH_ERR_HOOK_FAILED');
      assert.match(refused.body.plugin.last_error?.message, /onConfigChange\(\) threw: refusing the key \[REDACTED\]/);
      const still = await route('tuner');
      assert.equal(still.instance, before.instance);
      assert.deepEqual(still.config, after.config, 'the previous configuration serves');
      assert.ok(!JSON.stringify(t.logs.lines).includes(envSecret));
    });

    test('a worker plugin gets its configuration through the same ctx: a new instance in a new worker, or onConfigChange inside its worker', async () => {
      for (const name of ['w-greeter', 'w-tuner']) {
        const r = await getJson(`${t.adminUrl}/plugins/${name}/isolation`, {
          method: 'POST',
          headers: JSON_AUTH,
          body: '{"mode":"worker"}',
        });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        await waitForPlugin(name, (p) => p.serving?.isolation === 'worker');
      }
      const g0 = await route('w-greeter');
      const g = await put('w-greeter', { greeting: 'from a worker', key: { $env: 'GREETER_KEY' } });
      assert.equal(g.status, 200, JSON.stringify(g.body));
      assert.equal(g.body.settled, true);
      assert.equal(g.body.plugin.serving.isolation, 'worker');
      const g1 = await route('w-greeter');
      assert.deepEqual(g1.config, { greeting: 'from a worker', key: shownKey(envSecret) });
      assert.notEqual(g1.instance, g0.instance, 'without onConfigChange a new worker took the configuration');

      const t0 = await route('w-tuner');
      const r = await put('w-tuner', { greeting: 'tuned in a worker' });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const t1 = await route('w-tuner');
      assert.equal(t1.instance, t0.instance, 'the same worker kept serving');
      assert.equal(t1.changes, t0.changes + 1);
      assert.deepEqual(t1.config, { greeting: 'tuned in a worker' });
      assert.equal(r.body.plugin.serving.config_revision, r.body.revision);

      const refused = await put('w-tuner', { greeting: 'refuse', key: { $env: 'GREETER_KEY' } });
      assert.equal(refused.body.plugin.last_error?.code, 'PH_ERR_HOOK_FAILED');
      assert.match(refused.body.plugin.last_error?.message, /onConfigChange\(\) threw: refusing the key \[REDACTED\]/);
      assert.deepEqual((await route('w-tuner')).config, t1.config, 'the previous configuration serves');
      assert.ok(!JSON.stringify(t.logs.lines).includes(envSecret), "the worker's log lines are redacted too");
    });

    test('a new version whose schema refuses the stored configuration is refused at load; the old one keeps serving', async () => {
      await put('greeter', { greeting: 'hi', count: 4 });
      const v1 = await route('greeter');
      // 2.0.0 no longer has `count`
      const { count: _gone, ...properties } = GREETER_SCHEMA.properties;
      writePlugin(plugins.dir, 'greeter', configuredPlugin('greeter', { version: '2.0.0', schema: { ...GREETER_SCHEMA, properties } }));
      const reload = await getJson(`${t.adminUrl}/plugins/greeter/reload`, { method: 'POST', headers: AUTH });
      assert.equal(reload.status, 200, JSON.stringify(reload.body));
      assert.equal(reload.body.last_error?.code, 'PH_ERR_PLUGIN_CONFIG_INVALID');
      assert.equal(reload.body.last_error?.version, '2.0.0');
      assert.match(reload.body.last_error?.message, /\/count is not allowed/);
      assert.equal(reload.body.serving.version, '1.0.0');
      assert.equal((await route('greeter')).instance, v1.instance, 'version 1.0.0 keeps serving');

      // the configuration is now checked against 2.0.0, the version being loaded
      const c = await config('greeter');
      assert.deepEqual(c.body.errors, [{ pointer: '/count', message: 'is not allowed (not in the schema)' }]);
      assert.equal(c.body.effective, null);
      assertRefused(await patch('greeter', { count: 5 }), 400, 'PH_ERR_PLUGIN_CONFIG_INVALID', ['/count']);
      const fixed = await patch('greeter', { count: null });
      assert.equal(fixed.status, 200, JSON.stringify(fixed.body));
      assert.equal(fixed.body.plugin.serving.version, '2.0.0');
      assert.equal(fixed.body.plugin.last_error, null);
      assert.deepEqual((await route('greeter')).config, { greeting: 'hi' });
    });

    test('a configuration written by hand in SQL is validated at load: refused with the old one serving', async () => {
      const serving = await route('greeter');
      await sqlByHand(t, db?.url, `UPDATE plugin_configs SET config = '{"greeting": 7}' WHERE plugin_name = 'greeter'`);
      const p = await waitForPlugin('greeter', (x) => x.last_error?.code === 'PH_ERR_PLUGIN_CONFIG_INVALID');
      assert.match(p.last_error.message, /\/greeting must be string/);
      assert.equal((await route('greeter')).instance, serving.instance);
      await sqlByHand(t, db?.url, `DELETE FROM plugin_configs WHERE plugin_name = 'greeter'`);
      await waitForPlugin('greeter', (x) => x.last_error === null && x.serving?.config_revision === 0);
      assert.deepEqual((await route('greeter')).config, { greeting: 'hello' }, 'no configuration: the defaults');
    });

    if (kind === 'pglite') {
      test("the CLI goes through the running server's admin API (the embedded database is the server's)", async () => {
        const env = { DATA_DIR: t.config.dataDir, PLUGINS_DIR: plugins.dir };
        const set = await cli(['config', 'set', 'greeter', 'greeting=via-cli', '--json'], { ...env, ADMIN_TOKEN: TOKEN });
        assert.equal(set.code, 0, set.stderr);
        const r = JSON.parse(set.stdout);
        assert.equal(r.settled, true);
        assert.equal(r.plugin.state, 'serving');
        assert.equal((await route('greeter')).config.greeting, 'via-cli');
        const got = await cli(['config', 'get', 'greeter', '--token', TOKEN], env);
        assert.equal(got.code, 0, got.stderr);
        assert.match(got.stdout, /"greeting": "via-cli"/);
        const refused = await cli(['config', 'set', 'greeter', 'greeting=5'], { ...env, ADMIN_TOKEN: TOKEN });
        assert.equal(refused.code, 1);
        assert.match(refused.stderr, /PH_ERR_PLUGIN_CONFIG_INVALID: greeter: configuration is invalid: \/greeting must be string/);
        const noToken = await cli(['config', 'get', 'greeter'], env);
        assert.equal(noToken.code, 1);
        assert.match(noToken.stderr, /PH_ERR_UNAUTHORIZED/);
      });
    }
  });
}
