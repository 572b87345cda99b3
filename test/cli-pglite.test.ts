import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readServerInfo, SERVER_INFO_FILE } from '../src/admin/index.js';
import { BIN, cleanEnv, cli } from './support/cli.js';
import { pluginsDirWithPowertable } from './support/plugin-sources.js';
import { ROOT, tempDir, waitFor } from './support/util.js';

const TOKEN = 'cli-pglite-token';

describe('CLI on the embedded database', () => {
  let plugins: { dir: string; cleanup(): void };
  let data: { dir: string; cleanup(): void };
  let server: ChildProcess | undefined;
  let output = '';
  let env: Record<string, string>;

  const startServer = async (): Promise<string> => {
    output = '';
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0'], {
      cwd: ROOT,
      env: cleanEnv({ ...env, ADMIN_TOKEN: TOKEN, LOG_LEVEL: 'info' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    server = child;
    child.stdout?.on('data', (c) => {
      output += String(c);
    });
    child.stderr?.on('data', (c) => {
      output += String(c);
    });
    const info = await waitFor(
      () => {
        if (child.exitCode !== null) throw new Error(`server exited: ${output.slice(-2000)}`);
        const i = readServerInfo(data.dir);
        return i?.pid === child.pid ? i : undefined;
      },
      'the server to publish its URL',
      45_000,
      100,
    );
    // the file names the control plane, which the CLI calls; the plugins answer on the data plane
    assert.equal((await fetch(`${info.url}/console`)).status, 200, 'the server-info URL is the control plane');
    assert.equal((await fetch(`${info.dataUrl}/console`)).status, 404, 'the data plane serves no console');
    return info.dataUrl as string;
  };
  const stopServer = async () => {
    const s = server;
    server = undefined;
    if (s === undefined || s.exitCode !== null) return;
    const exited = new Promise((r) => s.once('exit', r));
    s.kill('SIGTERM');
    const t = setTimeout(() => s.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(t);
  };

  before(() => {
    plugins = pluginsDirWithPowertable();
    data = tempDir('ph-cli-pglite-');
    env = { PLUGINS_DIR: plugins.dir, DATA_DIR: data.dir };
  });
  after(async () => {
    await stopServer();
    plugins.cleanup();
    data.cleanup();
  });

  test('while a server holds the database, commands go through its admin API', async () => {
    const url = await startServer();
    assert.equal((await fetch(`${url}/hello`)).status, 200);

    const list = await cli(['list'], env);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^powertable\s+active\s+serving\s+0\.1\.0/m);

    const noToken = await cli(['disable', 'powertable'], env);
    assert.equal(noToken.code, 1);
    assert.match(noToken.stderr, /PH_ERR_UNAUTHORIZED: .*ADMIN_TOKEN/);
    assert.equal((await fetch(`${url}/hello`)).status, 200, 'nothing changed');

    const off = await cli(['disable', 'powertable'], { ...env, ADMIN_TOKEN: TOKEN });
    assert.equal(off.code, 0, off.stderr);
    assert.match(off.stdout, /powertable: inactive, unloaded on the server/);
    assert.equal((await fetch(`${url}/hello`)).status, 404);

    const on = await cli(['enable', 'powertable', '--token', TOKEN, '--json'], env);
    assert.equal(on.code, 0, on.stderr);
    assert.equal(JSON.parse(on.stdout).state, 'serving');
    assert.equal((await fetch(`${url}/hello`)).status, 200);

    const reload = await cli(['reload', 'powertable', '--token', TOKEN], env);
    assert.equal(reload.code, 0, reload.stderr);
    assert.match(reload.stdout, /generation 1/);
    const missing = await cli(['remove', 'nope', '--token', TOKEN], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /PH_ERR_PLUGIN_NOT_FOUND/);
  });

  test('with no server running, commands open the embedded database themselves', async () => {
    await stopServer();
    assert.ok(!existsSync(path.join(data.dir, SERVER_INFO_FILE)), 'the server removed its URL file');
    const off = await cli(['disable', 'powertable'], env);
    assert.equal(off.code, 0, off.stderr);
    assert.match(off.stdout, /powertable: inactive/);
    const listed = JSON.parse((await cli(['list', '--json'], env)).stdout);
    assert.equal(listed[0].status, 'inactive');
    assert.equal(listed[0].generation, 1);

    // the next server start follows what the command wrote
    const url = await startServer();
    assert.equal((await fetch(`${url}/hello`)).status, 404);
    assert.equal(((await (await fetch(`${url}/plugins/powertable`)).json()) as any).status, 'inactive');
  });
});
