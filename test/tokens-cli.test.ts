// `plugin-host token create|list|revoke` against a real server process on the embedded database, and scoped
// tokens in `push` and the data commands: a publish token pushes its plugin and nothing else; a revoked one
// pushes nothing; the secret is printed once and never listed.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { expiryOf } from '../src/cli/commands/token.js';
import { cli } from './support/cli.js';
import { pluginSource, pluginsDirWithPowertable, writePlugin } from './support/plugin-sources.js';
import { killAllServers, type ServerProcess, startServer } from './support/server-process.js';
import { getJson, tempDir } from './support/util.js';

const ADMIN = 'tokens-cli-admin-token';

describe('token commands and scoped tokens on the command line', () => {
  const plugins = pluginsDirWithPowertable();
  const data = tempDir('ph-tok-cli-data-');
  const work = tempDir('ph-tok-cli-work-');
  let server: ServerProcess;
  let env: Record<string, string>;

  before(async () => {
    server = await startServer({ name: 'tokens', env: { PLUGINS_DIR: plugins.dir, DATA_DIR: data.dir, ADMIN_TOKEN: ADMIN } });
    env = { PLUGINS_DIR: plugins.dir, DATA_DIR: data.dir };
  });
  after(async () => {
    await killAllServers();
    plugins.cleanup();
    data.cleanup();
    work.cleanup();
  });

  let secret = '';
  let id = '';

  test('token create prints the secret once; token list shows the token without it', async () => {
    const made = await cli(['token', 'create', 'ci upt', '--scope', 'publish:upt', '--expires', '30d', '--token', ADMIN], env);
    assert.equal(made.code, 0, made.stderr);
    secret = made.stdout.trim();
    assert.match(secret, /^ph_[A-Za-z0-9_-]{43}$/);
    id = /token (tok_[0-9a-f]+)/.exec(made.stderr)?.[1] ?? '';
    assert.ok(id !== '', made.stderr);

    const list = await cli(['token', 'list', '--server', server.adminUrl, '--token', ADMIN], env);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`${id}\\s+ci upt\\s+publish:upt\\s+\\S+\\s+-\\s+active`));
    assert.ok(!list.stdout.includes(secret));
    const json = await cli(['token', 'list', '--json', '--token', ADMIN], env);
    assert.ok(!json.stdout.includes(secret));
    assert.equal((JSON.parse(json.stdout) as unknown[]).length, 1);
  });

  test('push with a publish:upt token uploads upt and is refused for another plugin; data commands are refused outside the scope', async () => {
    const upt = writePlugin(work.dir, 'upt', pluginSource({ name: 'upt' }));
    const pushed = await cli(['push', upt, '--server', server.adminUrl, '--token', secret], env);
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.equal((await getJson(`${server.url}/upt`)).status, 200);

    const other = writePlugin(work.dir, 'other', pluginSource({ name: 'other' }));
    const refused = await cli(['push', other, '--server', server.adminUrl, '--token', secret], env);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /PH_ERR_FORBIDDEN_SCOPE: .*publish:other/);
    assert.equal((await getJson(`${server.url}/plugins/other`)).status, 404);

    const disable = await cli(['disable', 'upt', '--token', secret], env);
    assert.equal(disable.code, 1);
    assert.match(disable.stderr, /PH_ERR_FORBIDDEN_SCOPE: .*operate:upt/);
    const escalate = await cli(['token', 'create', 'mine', '--scope', 'admin', '--token', secret], env);
    assert.equal(escalate.code, 1);
    assert.match(escalate.stderr, /PH_ERR_FORBIDDEN_SCOPE/);
    assert.equal((await getJson(`${server.url}/plugins/upt`)).body.status, 'active');
  });

  test('token revoke: the revoked token pushes nothing', async () => {
    const revoked = await cli(['token', 'revoke', id, '--token', ADMIN], env);
    assert.equal(revoked.code, 0, revoked.stderr);
    const upt = writePlugin(work.dir, 'upt', pluginSource({ name: 'upt', version: '2.0.0' }));
    const refused = await cli(['push', upt, '--server', server.adminUrl, '--token', secret], env);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /PH_ERR_TOKEN_REVOKED/);
    assert.equal((await getJson(`${server.url}/upt`)).body.version, '1.0.0');
    const unknown = await cli(['token', 'revoke', `tok_${'0'.repeat(24)}`, '--token', ADMIN], env);
    assert.match(unknown.stderr, /PH_ERR_TOKEN_NOT_FOUND/);
  });

  test('usage errors exit 2 with PH_ERR_USAGE; bad scopes are refused by the server', async () => {
    for (const args of [
      ['token'],
      ['token', 'create', 'x'],
      ['token', 'create'],
      ['token', 'revoke'],
      ['token', 'mint', 'x'],
      ['token', 'create', 'x', '--scope', 'read', '--expires', 'soon'],
    ]) {
      const r = await cli([...args, '--token', ADMIN], env);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /PH_ERR_USAGE/);
    }
    const bad = await cli(['token', 'create', 'x', '--scope', 'write', '--token', ADMIN], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /PH_ERR_SCOPE_INVALID/);
    const help = await cli(['token', '--help'], env);
    assert.match(help.stdout, /publish:NAME/);
  });

  test('--expires reads days, hours, minutes and dates', () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    assert.equal(expiryOf('30d', now).toISOString(), '2030-01-31T00:00:00.000Z');
    assert.equal(expiryOf('12h', now).toISOString(), '2030-01-01T12:00:00.000Z');
    assert.equal(expiryOf('2031-02-03T04:05:06Z', now).toISOString(), '2031-02-03T04:05:06.000Z');
  });
});
