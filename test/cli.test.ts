import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cli } from './support/cli.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';
import { startTestHost, type TestHost } from './support/host.js';
import { pluginsDirWithPowertable } from './support/plugin-sources.js';
import { tempDir, waitFor } from './support/util.js';

describe('CLI usage', () => {
  test('--help on the command and on each subcommand', async () => {
    const commands = ['list', 'enable', 'disable', 'reload', 'remove', 'config', 'new', 'build'];
    const [main, serve, ...subs] = await Promise.all([
      cli(['--help']),
      cli(['serve', '--help']),
      ...commands.map((c) => cli([c, '--help'])),
    ]);
    assert.equal(main?.code, 0);
    for (const c of commands) assert.match(main?.stdout ?? '', new RegExp(`^  ${c}\\b`, 'm'), `${c} listed`);
    assert.equal(serve?.code, 0);
    assert.match(serve?.stdout ?? '', /--watch/);
    subs.forEach((r, i) => {
      assert.equal(r.code, 0, `${commands[i]} --help: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^Usage: plugin-host ${commands[i]}\\b`));
    });
  });

  test('usage errors exit with 2 and a coded message', async () => {
    const [unknown, missing, extra, badOption] = await Promise.all([
      cli(['frobnicate']),
      cli(['enable']),
      cli(['disable', 'a', 'b']),
      cli(['list', '--nope']),
    ]);
    for (const r of [unknown, missing, extra, badOption]) {
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^plugin-host: PH_ERR_USAGE: /);
    }
  });
});

describe('CLI on PostgreSQL', () => {
  let db: TestDatabase;
  let t: TestHost | undefined;
  let plugins: { dir: string; cleanup(): void };
  let data: { dir: string; cleanup(): void };
  let env: Record<string, string>;

  before(async () => {
    db = await createTestDatabase();
    plugins = pluginsDirWithPowertable();
    data = tempDir('ph-cli-data-');
    env = { DATABASE_URL: db.url, PLUGINS_DIR: plugins.dir, DATA_DIR: data.dir };
    t = await startTestHost({ kind: 'postgres', databaseUrl: db.url, pluginsDir: plugins.dir });
  });
  after(async () => {
    await t?.close();
    await db?.drop();
    plugins.cleanup();
    data.cleanup();
  });

  test('commands write the database and a running server follows through the notification', async () => {
    const host = t as TestHost;
    const list = await cli(['list'], env);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^NAME\s+STATUS/);
    assert.match(list.stdout, /^powertable\s+active\s+0\.1\.0\s+0\s+\w+\s+1\/1/m);

    const off = await cli(['disable', 'powertable'], env);
    assert.equal(off.code, 0, off.stderr);
    assert.match(off.stdout, /powertable: inactive/);
    await waitFor(async () => (await fetch(`${host.url}/hello`)).status === 404, 'the server to unload');

    const on = await cli(['enable', 'powertable', '--json'], env);
    assert.equal(on.code, 0, on.stderr);
    assert.deepEqual(JSON.parse(on.stdout), { name: 'powertable', status: 'active', changed: true });
    await waitFor(async () => (await fetch(`${host.url}/hello`)).status === 200, 'the server to load');

    const reload = await cli(['reload', 'powertable', '--json'], env);
    assert.equal(reload.code, 0, reload.stderr);
    const r = JSON.parse(reload.stdout);
    assert.equal(r.generation, 1);
    assert.equal(r.recompiled, true);
    await waitFor(async () => {
      const p = (await (await fetch(`${host.url}/plugins/powertable`)).json()) as any;
      return p.state === 'serving' && p.nodes?.[0]?.state === 'serving' && p.generation === 1;
    }, 'the server to reload');

    const unknown = await cli(['enable', 'nope'], env);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^plugin-host: PH_ERR_PLUGIN_NOT_FOUND: /);
    const badName = await cli(['disable', '../etc'], env);
    assert.equal(badName.code, 1);
    assert.match(badName.stderr, /PH_ERR_PLUGIN_NAME_INVALID/);
  });

  test('commands work with no server running', async () => {
    await t?.close();
    t = undefined;
    const off = await cli(['disable', 'powertable'], env);
    assert.equal(off.code, 0, off.stderr);
    const listed = JSON.parse((await cli(['list', '--json'], env)).stdout);
    assert.equal(listed.length, 1);
    assert.equal(listed[0].name, 'powertable');
    assert.equal(listed[0].status, 'inactive');
    assert.equal((await cli(['list', '--status', 'active', '--json'], env)).stdout.trim(), '[]');

    const removed = await cli(['remove', 'powertable'], env);
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stdout, /powertable: removed/);
    assert.match((await cli(['list'], env)).stdout, /no plugins registered/);
    assert.equal((await cli(['remove', 'powertable'], env)).code, 1);
  });
});
