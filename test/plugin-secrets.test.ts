// Secrets per plugin, against real server processes on both databases: a variable one plugin's configuration
// names is not in any plugin's process.env (which keeps only PLUGIN_ENV_ALLOW), and `$file` reads only under
// SECRETS_DIR, symbolic links resolved, never /proc.
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { DEFAULT_PLUGIN_ENV_ALLOW, envAllowed } from '../src/config/plugin-env.js';
import { configuredPlugin, shownKey } from './fixtures/configured-plugin.js';
import { createTestDatabase, DB_KINDS, type DbKind, type TestDatabase } from './support/databases.js';
import { pluginSource, writePlugin } from './support/plugin-sources.js';
import { killAllServers, startServer } from './support/server-process.js';
import { getJson, tempDir } from './support/util.js';

const TOKEN = 'plugin-secrets-token';
const JSON_AUTH = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
const HOLDER_KEY = 'holder-secret-value-31f9';
const UNRELATED = 'unrelated-credential-77ab';
const IN_DIR = 'file-secret-in-dir-0c1d';
const OUTSIDE = 'file-secret-outside-9e8f';

/** A plugin answering what it can read of the process's environment. */
const SNOOP = pluginSource({
  name: 'snoop',
  routes: "      server.get('/snoop', async () => ({ names: Object.keys(process.env), holder: process.env.HOLDER_KEY ?? null }));",
});

for (const kind of DB_KINDS as DbKind[]) {
  describe(`plugin secrets on ${kind} (server processes)`, () => {
    const temps: Array<{ cleanup(): void }> = [];
    let db: TestDatabase | undefined;
    after(async () => {
      await killAllServers();
      await db?.drop();
      for (const t of temps) t.cleanup();
    });

    test("one plugin's $env is not in another's process.env; $file reads only under SECRETS_DIR, never /proc", async () => {
      const plugins = tempDir('ph-plugins-');
      const data = tempDir('ph-data-');
      const secrets = tempDir('ph-secrets-');
      const elsewhere = tempDir('ph-elsewhere-');
      temps.push(plugins, data, secrets, elsewhere);
      writePlugin(plugins.dir, 'holder', configuredPlugin('holder'));
      writePlugin(plugins.dir, 'snoop', SNOOP);
      mkdirSync(path.join(secrets.dir, 'holder'));
      writeFileSync(path.join(secrets.dir, 'holder', 'key'), `${IN_DIR}\n`);
      const outside = path.join(elsewhere.dir, 'key');
      writeFileSync(outside, `${OUTSIDE}\n`);
      symlinkSync(outside, path.join(secrets.dir, 'link-out'));
      const env: Record<string, string> = {
        PLUGINS_DIR: plugins.dir,
        DATA_DIR: data.dir,
        ADMIN_TOKEN: TOKEN,
        SECRETS_DIR: secrets.dir,
        HOLDER_KEY,
        UNRELATED_TOKEN: UNRELATED,
      };
      if (kind === 'postgres') {
        db = await createTestDatabase();
        env.DATABASE_URL = db.url;
      }
      const s = await startServer({ name: `plugin-secrets-${kind}`, env });
      const put = (body: unknown) =>
        getJson(`${s.adminUrl}/plugins/holder/config`, { method: 'PUT', headers: JSON_AUTH, body: JSON.stringify(body) });

      const held = await put({ key: { $env: 'HOLDER_KEY' } });
      assert.equal(held.status, 200, JSON.stringify(held.body));
      assert.equal(held.body.plugin.last_error, null);
      assert.equal((await getJson(`${s.url}/holder`)).body.config.key, shownKey(HOLDER_KEY), 'the plugin that names it gets it');

      const seen = (await getJson(`${s.url}/snoop`)).body as { names: string[]; holder: string | null };
      assert.equal(seen.holder, null, "another plugin's variable is not in process.env");
      for (const name of seen.names) assert.ok(envAllowed(name, DEFAULT_PLUGIN_ENV_ALLOW), `${name} is on the default allow-list`);
      for (const name of ['UNRELATED_TOKEN', 'ADMIN_TOKEN', 'SECRETS_DIR', 'PLUGINS_DIR']) assert.ok(!seen.names.includes(name), name);

      for (const [target, why] of [
        ['/proc/self/environ', /never read/],
        ['/proc/1/../self/environ', /never read/],
        [outside, /not under the secrets directory/],
        [path.join(secrets.dir, 'link-out'), /not under the secrets directory/],
        [path.join(secrets.dir, '..', path.basename(elsewhere.dir), 'key'), /not under the secrets directory/],
      ] as const) {
        const r = await put({ key: { $file: target } });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.equal(r.body.plugin.last_error?.code, 'PH_ERR_PLUGIN_CONFIG_SECRET', `${target}: ${JSON.stringify(r.body.plugin)}`);
        assert.match(r.body.plugin.last_error.message, why, target);
        assert.equal((await getJson(`${s.url}/holder`)).body.config.key, shownKey(HOLDER_KEY), 'the previous configuration serves');
      }
      const inDir = await put({ key: { $file: path.join(secrets.dir, 'holder', 'key') } });
      assert.equal(inDir.body.plugin.last_error, null, JSON.stringify(inDir.body.plugin));
      assert.equal((await getJson(`${s.url}/holder`)).body.config.key, shownKey(IN_DIR));

      const everything = JSON.stringify(s.logs);
      for (const v of [UNRELATED, OUTSIDE, TOKEN]) assert.ok(!everything.includes(v), `${v} in no log line`);
    });
  });
}
