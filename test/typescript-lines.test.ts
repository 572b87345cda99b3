// Plugin authors' editors and command lines carry TypeScript 5.9 (the host's own checker) or TypeScript 7 (the
// native compiler): a plugin scaffolded by `plugin-host new`, checked with the tsconfig.json the README gives
// (docs/plugin-tsconfig.json), passes both; a plugin with a type error fails both; the SDK's published
// declarations (dist/sdk, through the package's `exports`) compile under both with `skipLibCheck` off.
//
// TypeScript 7 is not a dependency of the host: `.ci/run` fetches the npm package `typescript@7` into its cache
// outside the repository (PLUGIN_HOST_CI_CACHE, default /var/cache/plugin-host-ci) and sets TEST_REQUIRE_TSC7=1,
// so that in CI its absence fails instead of skipping.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { cli } from './support/cli.js';
import { ROOT, tempDir } from './support/util.js';

const CACHE = process.env.PLUGIN_HOST_CI_CACHE ?? '/var/cache/plugin-host-ci';
const TSC7 = path.join(CACHE, 'ts-7', 'node_modules', 'typescript', 'bin', 'tsc');
const COMPILERS = [
  { name: 'TypeScript 5.9', tsc: path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), version: /^Version 5\.9\./ },
  { name: 'TypeScript 7', tsc: TSC7, version: /^Version 7\./ },
];

function tsc(bin: string, args: string[], cwd: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { cwd, timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}

const tmp = tempDir('ph-ts-lines-');
after(() => tmp.cleanup());

/**
 * A plugin author's project as an install of the host leaves it: `plugin-host` (this checkout, so its `exports`
 * and dist/ declarations), and the packages hoisted beside it that a plugin's test imports (fastify, Node's types).
 */
function project(name: string): string {
  const dir = path.join(tmp.dir, name);
  mkdirSync(path.join(dir, 'node_modules', '@types'), { recursive: true });
  symlinkSync(ROOT, path.join(dir, 'node_modules', 'plugin-host'));
  symlinkSync(path.join(ROOT, 'node_modules', 'fastify'), path.join(dir, 'node_modules', 'fastify'));
  symlinkSync(path.join(ROOT, 'node_modules', '@types', 'node'), path.join(dir, 'node_modules', '@types', 'node'));
  writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify({ name, private: true, type: 'module' })}\n`);
  copyFileSync(path.join(ROOT, 'docs', 'plugin-tsconfig.json'), path.join(dir, 'tsconfig.json'));
  return dir;
}

describe('TypeScript 5.9 and 7 on plugins and the SDK', () => {
  let good = '';
  let broken = '';
  let sdk = '';

  test('setup: a scaffolded plugin, a broken one, a file importing the SDK', { timeout: 120_000 }, async () => {
    good = project('good');
    const made = await cli(['new', 'hello-ts', '--plugins-dir', path.join(good, 'plugins')]);
    assert.equal(made.code, 0, made.stderr);

    broken = project('broken');
    const made2 = await cli(['new', 'hello-bad', '--plugins-dir', path.join(broken, 'plugins')]);
    assert.equal(made2.code, 0, made2.stderr);
    // a version that is not a string: the SDK's types must refuse it under both compilers
    writeFileSync(
      path.join(broken, 'plugins', 'hello-bad', 'bad.ts'),
      `import { definePlugin } from 'plugin-host/sdk';
export const newPlugin = definePlugin(() => ({
  getMetadata: () => ({ name: 'hello-bad', version: 1, description: '', author: '' }),
  initialize() {},
  registerRoutes() {},
  cleanup() {},
}));
`,
    );

    sdk = project('sdk');
    mkdirSync(path.join(sdk, 'plugins'));
    writeFileSync(path.join(sdk, 'plugins', 'check.ts'), `import type * as sdk from 'plugin-host/sdk';\nexport type Sdk = typeof sdk;\n`);
  });

  for (const c of COMPILERS) {
    const absent = !existsSync(c.tsc);
    if (absent && process.env.TEST_REQUIRE_TSC7 === '1')
      throw new Error(`${c.name} is required (TEST_REQUIRE_TSC7=1) but ${c.tsc} is absent`);
    const skip = absent ? `${c.tsc} is absent (.ci/run fetches typescript@7 into ${CACHE})` : false;

    test(`${c.name}: the scaffolded plugin and its test type-check with docs/plugin-tsconfig.json`, {
      skip,
      timeout: 180_000,
    }, async () => {
      const v = await tsc(c.tsc, ['-v'], good);
      assert.match(v.out, c.version);
      const r = await tsc(c.tsc, ['-p', good], good);
      assert.equal(r.code, 0, r.out);
    });

    test(`${c.name}: a plugin whose metadata has a number for its version fails the check`, { skip, timeout: 180_000 }, async () => {
      const r = await tsc(c.tsc, ['-p', broken], broken);
      assert.notEqual(r.code, 0, 'the type error was not reported');
      assert.match(r.out, /plugins\/hello-bad\/bad\.ts\(\d+,\d+\): error TS\d+/);
      assert.doesNotMatch(r.out, /main\.ts|main\.test\.ts/, 'the scaffolded files themselves are clean');
    });

    test(`${c.name}: the SDK's published declarations compile with skipLibCheck off`, { skip, timeout: 180_000 }, async () => {
      const r = await tsc(c.tsc, ['-p', sdk, '--skipLibCheck', 'false'], sdk);
      assert.equal(r.code, 0, r.out);
    });
  }
});
