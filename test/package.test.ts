// The package as a new user gets it: `npm pack`, `npm install` of the tarball in an empty project outside the
// checkout, `npx plugin-host new`, `npx plugin-host serve`, and the new plugin answers.
//
// The install is a real one (no symlink into this checkout's node_modules): only a real install proves that
// everything the host needs at run time (TypeScript, @types/node, Fastify's types, PGlite's files) is a
// dependency and is shipped. `--prefer-offline` takes the dependencies from the npm cache that `npm ci` of
// this checkout filled (the network only for what is missing), which keeps it to tens of seconds on a busy
// machine; the time it took is printed. The server uses a PostgreSQL database of its own rather than the embedded
// PGlite, whose first start (initdb in WebAssembly) would double the test's time.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { createTestDatabase } from './support/databases.js';
import { requireFreshDist } from './support/dist.js';
import { ServerProcess } from './support/server-process.js';
import { getJson, ROOT, tempDir } from './support/util.js';

const run = promisify(execFile);
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const NPX = process.platform === 'win32' ? 'npx.cmd' : 'npx';

const tmp = tempDir('ph-pack-');
after(() => tmp.cleanup());

/** The environment of the user's shell: none of the test runner's or the developer's settings. */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'info', PORT: '0' };
  for (const k of ['NODE_TEST_CONTEXT', 'NODE_OPTIONS', 'DATABASE_URL', 'ADMIN_TOKEN', 'DATA_DIR', 'PLUGINS_DIR', 'ARTIFACTS_DIR', 'WATCH'])
    delete env[k];
  return env;
}

test('npm pack, npm install of the tarball in an empty project, plugin-host new, plugin-host serve', { timeout: 300_000 }, async () => {
  requireFreshDist();
  // dist/ is built and fresh: packing need not run `prepare` again
  await run(NPM, ['pack', '--ignore-scripts', '--pack-destination', tmp.dir], { cwd: ROOT, env: userEnv() });
  const tarball = readdirSync(tmp.dir).find((f) => f.endsWith('.tgz'));
  assert.ok(tarball, 'npm pack wrote a tarball');

  const project = path.join(tmp.dir, 'project');
  await run('mkdir', [project]);
  writeFileSync(path.join(project, 'package.json'), `${JSON.stringify({ name: 'trial', private: true, type: 'module' })}\n`);
  const t0 = Date.now();
  await run(NPM, ['install', '--prefer-offline', '--no-audit', '--no-fund', path.join(tmp.dir, tarball)], {
    cwd: project,
    env: userEnv(),
    timeout: 240_000,
  });
  console.log(`# npm install of the tarball took ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  // `new` type-checks the plugin it wrote: TypeScript and the declarations come from the installed package
  const created = await run(NPX, ['--no', 'plugin-host', 'new', 'hello-x', '--plugins-dir', './plugins'], { cwd: project, env: userEnv() });
  assert.match(created.stdout, /serves GET \/hello-x/);

  // detached: npx runs the bin in a child of its own; the whole group is ended at the end
  const database = await createTestDatabase();
  const child = spawn(NPX, ['--no', 'plugin-host', 'serve', '--plugins-dir', './plugins'], {
    cwd: project,
    env: { ...userEnv(), DATABASE_URL: database.url },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const server = new ServerProcess('installed', child);
  try {
    await server.waitReady(120_000);
    const r = await getJson(`${server.url}/hello-x`);
    assert.equal(r.status, 200, server.tail());
    assert.equal(r.body.plugin, 'hello-x');
    // data (the artifacts) went to the user's project, not into node_modules
    assert.ok(readdirSync(project).includes('data'));
  } finally {
    try {
      process.kill(-(child.pid as number), 'SIGKILL');
    } catch {
      // already gone
    }
    await server.exited;
    await database.drop();
  }
});
