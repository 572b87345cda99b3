import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cleanEnv, cli } from './support/cli.js';
import { ROOT } from './support/util.js';

describe('CLI new and build', () => {
  // Inside the project, so the generated test resolves fastify and the SDK like a plugin under ./plugins does.
  let work: string;
  before(() => {
    mkdirSync(path.join(ROOT, '.tmp'), { recursive: true });
    work = mkdtempSync(path.join(ROOT, '.tmp', 'cli-new-'));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  test('new scaffolds a plugin that builds and passes its own test', async () => {
    const r = await cli(['new', 'fresh-one', '--plugins-dir', work]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /serves GET \/fresh-one/);
    const dir = path.join(work, 'fresh-one');
    assert.ok(existsSync(path.join(dir, 'main.ts')) && existsSync(path.join(dir, 'main.test.ts')));

    const own = await new Promise<{ code: number; out: string }>((resolve) =>
      execFile(
        process.execPath,
        ['--import', 'tsx', '--test', path.join(dir, 'main.test.ts')],
        { cwd: ROOT, env: cleanEnv(), timeout: 60_000 },
        (err, stdout, stderr) => resolve({ code: err === null ? 0 : 1, out: stdout + stderr }),
      ),
    );
    assert.equal(own.code, 0, own.out);
    // the runner's summary: `# pass 1` from the TAP reporter of Node 20 and 22, `ℹ pass 1` from Node 24+'s spec reporter
    assert.match(own.out, /^(?:# |ℹ )pass 1$/m);

    const j = await cli(['build', dir, '--json']);
    assert.equal(j.code, 0, j.stderr);
    const parsed = JSON.parse(j.stdout);
    assert.equal(parsed.ok, true);
    assert.deepEqual(
      parsed.endpoints.map((e: { method: string; path: string }) => `${e.method} ${e.path}`),
      ['GET /fresh-one'],
    );

    const again = await cli(['new', 'fresh-one', '--plugins-dir', work]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /PH_ERR_PLUGIN_EXISTS/);
    const bad = await cli(['new', 'Bad Name', '--plugins-dir', work]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /PH_ERR_PLUGIN_NAME_INVALID/);

    const reserved = await cli(['new', 'metrics', '--plugins-dir', work]);
    assert.equal(reserved.code, 0, reserved.stderr);
    assert.match(reserved.stdout, /serves GET \/metrics-plugin/);
  });

  test('build prints file:line:column errors and exits 1 for a broken plugin', async () => {
    assert.equal((await cli(['new', 'breakme', '--plugins-dir', work])).code, 0);
    const dir = path.join(work, 'breakme');
    appendFileSync(path.join(dir, 'main.ts'), "\nconst n: number = 'not a number';\n");
    const typed = await cli(['build', dir]);
    assert.equal(typed.code, 1);
    assert.match(typed.stderr, /PH_ERR_COMPILE_TYPE: .*breakme\/main\.ts:\d+:\d+: Type 'string' is not assignable to type 'number'/);
    // without the type check the bundle is fine
    const bundled = await cli(['build', dir, '--no-typecheck']);
    assert.equal(bundled.code, 0, bundled.stderr);
    assert.match(bundled.stdout, /^ok breakme 0\.1\.0 /);

    appendFileSync(path.join(dir, 'main.ts'), '\nexport const = ;\n');
    const syntax = await cli(['build', dir, '--json']);
    assert.equal(syntax.code, 1);
    const parsed = JSON.parse(syntax.stdout);
    assert.equal(parsed.ok, false);
    assert.match(parsed.code, /^PH_ERR_COMPILE_/);
    assert.match(parsed.message, /breakme\/main\.ts:\d+:\d+/);

    const missing = await cli(['build', path.join(work, 'does-not-exist')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /PH_ERR_PLUGIN_NO_ENTRY/);
  });
});
