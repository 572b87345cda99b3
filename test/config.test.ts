import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, test } from 'node:test';
import { loadConfig, PROJECT_ROOT } from '../src/config/index.js';
import { isHostError } from '../src/errors/index.js';
import { ROOT, tempDir } from './support/util.js';

describe('configuration', () => {
  test('defaults resolve against the project root, not the working directory', () => {
    const c = loadConfig({});
    assert.equal(c.port, 3000);
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.databaseUrl, undefined);
    assert.equal(c.pluginsDir, path.join(PROJECT_ROOT, 'plugins'));
    assert.equal(c.dataDir, path.join(PROJECT_ROOT, 'data'));
    assert.equal(c.artifactsDir, path.join(PROJECT_ROOT, 'data', 'artifacts'));
  });

  test('overrides win over the environment', () => {
    const t = tempDir();
    try {
      const c = loadConfig({ PORT: '4000', PLUGINS_DIR: '/nonexistent' }, { port: '4100', pluginsDir: t.dir });
      assert.equal(c.port, 4100);
      assert.equal(c.pluginsDir, t.dir);
    } finally {
      t.cleanup();
    }
  });

  for (const [env, setting] of [
    [{ PORT: 'abc' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ PLUGINS_DIR: '/definitely/not/here' }, 'PLUGINS_DIR'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'],
  ] as const) {
    test(`a bad ${setting} is refused with PH_ERR_CONFIG_INVALID naming it`, () => {
      assert.throws(
        () => loadConfig(env),
        (err: unknown) => isHostError(err, 'PH_ERR_CONFIG_INVALID') && err.message.startsWith(`${setting}:`),
      );
    });
  }

  test('the server exits with one clear line for a bad setting, from any directory', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'plugin-host.mjs'), 'serve'], {
      cwd: '/',
      env: { ...process.env, PORT: 'not-a-port' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(r.status, 1);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one line, got: ${r.stderr}`);
    assert.match(lines[0] as string, /^plugin-host: PH_ERR_CONFIG_INVALID: PORT: /);
  });
});
